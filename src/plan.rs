//! From a pipeline file to a checked plan, without touching the network: the YAML is loaded
//! with positions, each connector validates its own options, transforms and routes are
//! compiled, and every problem found is reported at once.

use std::fmt::Write as _;
use std::path::Path;

use cdcflow_engine::component::{SinkFactory, ValidatedSink, ValidatedSource};
use cdcflow_engine::config::{self, ComponentDef, Diagnostic, Diagnostics, PipelineDef};
use cdcflow_engine::settings::EngineSettings;

use crate::registry;

/// A pipeline whose every part has been checked offline; `run` builds it.
pub struct ValidatedPipeline {
    /// The raw definition (file, blocks, pipeline options).
    pub def: PipelineDef,
    /// The checked source.
    pub source: Box<dyn ValidatedSource>,
    /// The checked sink.
    pub sink: Box<dyn ValidatedSink>,
    /// Compiled transforms and routes.
    pub sql: cdcflow_sql::CompiledPipeline,
    /// cdcflow's own `cdcflow.*` options.
    pub engine: EngineSettings,
}

impl std::fmt::Debug for ValidatedPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatedPipeline")
            .field("file", &self.def.file)
            .finish_non_exhaustive()
    }
}

/// Loads and validates a pipeline file.
///
/// # Errors
/// Every problem found, each with file, line, column and option.
pub fn validate_file(path: &Path) -> Result<ValidatedPipeline, Diagnostics> {
    let def = config::load(path)?;
    validate_def(def)
}

/// Validates an already loaded definition.
///
/// # Errors
/// Every problem found, each with file, line, column and option.
pub fn validate_def(def: PipelineDef) -> Result<ValidatedPipeline, Diagnostics> {
    let mut diags = Diagnostics::default();
    let sources = registry::sources();
    let sinks = registry::sinks();
    let source = match find(
        &def.source,
        sources.iter().map(|f| (f.kind(), f.as_ref())),
        &mut diags,
    ) {
        Some(f) => f.validate(&def.source, &def.pipeline, &mut diags),
        None => None,
    };
    let sink = match find(
        &def.sink,
        sinks.iter().map(|f| (f.kind(), f.as_ref())),
        &mut diags,
    ) {
        Some(f) => SinkFactory::validate(f, &def.sink, &def.pipeline, &mut diags),
        None => None,
    };
    let engine = EngineSettings::from_pipeline(&def.pipeline, &def.file, &mut diags);
    let sql = match cdcflow_sql::compile(&def.transforms, &def.routes, &def.pipeline, &def.file) {
        Ok(s) => Some(s),
        Err(d) => {
            diags.0.extend(d.0);
            None
        }
    };
    match (source, sink, sql) {
        (Some(source), Some(sink), Some(sql)) if diags.is_empty() => Ok(ValidatedPipeline {
            def,
            source,
            sink,
            sql,
            engine,
        }),
        _ => {
            if diags.is_empty() {
                diags.push(Diagnostic {
                    file: def.file.clone(),
                    loc: def.source.loc,
                    path: "pipeline".into(),
                    message: "validation failed without a message (this is a bug)".into(),
                    hint: None,
                });
            }
            diags
                .0
                .sort_by(|a, b| (a.loc, &a.path).cmp(&(b.loc, &b.path)));
            Err(diags)
        }
    }
}

fn find<'a, F: ?Sized>(
    def: &ComponentDef,
    factories: impl Iterator<Item = (&'static str, &'a F)>,
    diags: &mut Diagnostics,
) -> Option<&'a F> {
    let factories: Vec<_> = factories.collect();
    let wanted = def.kind.value.trim().to_ascii_lowercase();
    if let Some((_, f)) = factories.iter().find(|(k, _)| *k == wanted) {
        return Some(*f);
    }
    let kinds: Vec<&str> = factories.iter().map(|(k, _)| *k).collect();
    let hint = config::did_you_mean(&wanted, kinds.iter().copied())
        .map(|k| format!("did you mean `{k}`?"))
        .or_else(|| Some(format!("supported: {}", kinds.join(", "))));
    diags.push(Diagnostic {
        file: def.file.clone(),
        loc: def.kind.loc,
        path: format!("{}.type", def.path),
        message: format!("unknown {} type `{}`", def.path, def.kind.value),
        hint,
    });
    None
}

impl ValidatedPipeline {
    /// The resolved plan as `cdcflow validate` prints it (secrets redacted).
    pub fn render(&self) -> String {
        let p = &self.def.pipeline;
        let mut s = String::new();
        let _ = writeln!(s, "pipeline `{}` ({}): valid", p.name, self.def.file);
        let _ = writeln!(s, "  parallelism: {}", p.parallelism);
        let _ = writeln!(s, "  runtime mode: {:?}", p.runtime_mode);
        let _ = writeln!(
            s,
            "  schema change behavior: {:?}",
            p.schema_change_behavior
        );
        let _ = writeln!(s, "  route mode: {:?}", p.route_mode);
        if let Some(tz) = &p.local_time_zone {
            let _ = writeln!(s, "  local time zone: {tz}");
        }
        let e = &self.engine;
        let _ = writeln!(
            s,
            "  memory budget: {} MiB; checkpoint interval: {:?}; sink restart timeout: {:?}",
            e.memory_budget >> 20,
            e.checkpoint_interval,
            e.sink_restart_timeout
        );
        let _ = writeln!(s, "source: {}", self.def.source.kind.value);
        for (k, v) in self.source.describe() {
            let _ = writeln!(s, "  {k}: {v}");
        }
        let _ = writeln!(s, "sink: {}", self.def.sink.kind.value);
        for (k, v) in self.sink.describe() {
            let _ = writeln!(s, "  {k}: {v}");
        }
        let _ = writeln!(
            s,
            "transforms: {} rule(s); routes: {} rule(s)",
            self.def.transforms.len(),
            self.def.routes.len()
        );
        for ig in &p.ignored {
            let _ = writeln!(
                s,
                "warning: {}:{}: pipeline.{}: Flink runtime option accepted and ignored",
                self.def.file, ig.loc, ig.value
            );
        }
        s
    }
}
