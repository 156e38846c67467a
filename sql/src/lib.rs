//! cdcflow's `transform:` and `route:` stage: Flink CDC 3.x pipeline expressions planned once on
//! DataFusion and evaluated per Arrow batch, then routed to sink tables.
//!
//! ```text
//!  compile(transforms, routes, pipeline)        offline: parse, check functions/metadata columns,
//!        │                                      report YAML line:col of every problem
//!        ▼
//!  CompiledPipeline::transform() ─▶ SqlTransform (engine `Transform`)
//!        per event:  rule lookup (first match) ─▶ plan per (table, schema version)
//!                    ─▶ filter (3.6 update/delete semantics) ─▶ projection ─▶ SOFT_DELETE
//!                    ─▶ Router (route rules, merge + widen, coerce batches)
//! ```
//!
//! Where DataFusion's semantics differ from Flink CDC's, Flink's win: comparisons with NULL are
//! FALSE, `||`/`CONCAT` render NULL as `null`, `REGEXP_REPLACE` replaces every match with a
//! literal replacement, "current time" functions read the clock per batch in `local-time-zone`.

mod error;
mod exec;
pub mod functions;
mod parse;
mod plan;
pub mod route;
pub mod schema_util;
pub mod selector;

use std::sync::Arc;

use cdcflow_engine::component::{PassThrough, Transform};
use cdcflow_engine::config::{
    Diagnostic, Diagnostics, Location, PipelineOptions, RouteDef, RouteMode, TransformDef,
};
use datafusion::execution::SessionState;
use datafusion::prelude::{SessionConfig, SessionContext};

pub use error::SqlError;
pub use exec::SqlTransform;
pub use functions::Zone;
pub use parse::METADATA_COLUMNS;

use crate::parse::ParsedRule;
use crate::route::{RouteRule, Router, java_replacement};

/// Validated `transform:` and `route:` rules, ready to build the running stage.
#[derive(Clone)]
pub struct CompiledPipeline {
    rules: Arc<Vec<ParsedRule>>,
    routes: Arc<Vec<RouteRule>>,
    route_mode: RouteMode,
    state: Arc<SessionState>,
}

impl std::fmt::Debug for CompiledPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPipeline")
            .field("rules", &self.rules.len())
            .field("routes", &self.routes.len())
            .field("route_mode", &self.route_mode)
            .finish()
    }
}

impl CompiledPipeline {
    /// The running stage (a [`PassThrough`] when there are no rules at all).
    pub fn transform(&self) -> Box<dyn Transform> {
        if self.rules.is_empty() && self.routes.is_empty() {
            return Box::new(PassThrough);
        }
        Box::new(self.sql_transform())
    }

    /// The running stage as its concrete type (tests and benches inspect it).
    pub fn sql_transform(&self) -> SqlTransform {
        SqlTransform::new(
            Arc::clone(&self.rules),
            Arc::clone(&self.state),
            Router::new(Arc::clone(&self.routes), self.route_mode),
        )
    }

    /// Number of `transform:` rules.
    pub fn num_rules(&self) -> usize {
        self.rules.len()
    }
}

/// Validates every transform and route rule offline and prepares the DataFusion session.
///
/// ```
/// use cdcflow_engine::config::{ExprText, Location, PipelineOptions, Spanned, TransformDef};
///
/// let at = |line, column| Location { line, column };
/// let text = "id > 1 AND uper(name) = 'X'";
/// let filter = ExprText {
///     text: text.into(),
///     loc: at(4, 13),
///     char_locs: (0..text.len()).map(|i| at(4, 13 + i)).collect(),
/// };
/// let rule = TransformDef {
///     loc: at(2, 5),
///     source_table: Spanned::new("app.orders".into(), at(2, 19)),
///     projection: None,
///     filter: Some(filter),
///     primary_keys: None,
///     partition_keys: None,
///     table_options: None,
///     table_options_delimiter: None,
///     converter_after_transform: None,
///     description: None,
/// };
/// let err = cdcflow_sql::compile(&[rule], &[], &PipelineOptions::default(), "p.yaml").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "p.yaml:4:24: transform[0].filter: unknown function `uper` (hint: did you mean `UPPER`?)"
/// );
/// ```
///
/// # Errors
/// All problems found, each with `file`, line and column (inside expressions: of the offending
/// character) and the key path such as `transform[1].filter`.
pub fn compile(
    transforms: &[TransformDef],
    routes: &[RouteDef],
    pipeline: &PipelineOptions,
    file: &str,
) -> Result<CompiledPipeline, Diagnostics> {
    let mut diags = Diagnostics::default();
    let zone = match &pipeline.local_time_zone {
        Some(z) => Zone::parse(z).unwrap_or_else(|| {
            diags.push(Diagnostic {
                file: file.to_string(),
                loc: Location::default(),
                path: "pipeline.local-time-zone".into(),
                message: format!("unknown time zone `{z}`"),
                hint: Some(
                    "use an IANA name such as `Asia/Shanghai` or an offset such as `GMT-08:00`"
                        .into(),
                ),
            });
            Zone::Fixed(0)
        }),
        None => Zone::system_default(),
    };

    let rules: Vec<ParsedRule> = transforms
        .iter()
        .enumerate()
        .filter_map(|(i, t)| parse::parse_rule(i, t, file, &mut diags))
        .collect();

    let mut compiled_routes = Vec::with_capacity(routes.len());
    for (i, r) in routes.iter().enumerate() {
        let path = format!("route[{i}]");
        let pattern = match selector::route_regex(&r.source_table.value) {
            Ok(p) => Some(p),
            Err(message) => {
                diags.push(Diagnostic {
                    file: file.to_string(),
                    loc: r.source_table.loc,
                    path: format!("{path}.source-table"),
                    message,
                    hint: None,
                });
                None
            }
        };
        let has_groups = r.sink_table.value.contains('$');
        if let Some(sym) = &r.replace_symbol {
            if sym.value.is_empty() {
                diags.push(Diagnostic {
                    file: file.to_string(),
                    loc: sym.loc,
                    path: format!("{path}.replace-symbol"),
                    message: "replace-symbol must not be empty".into(),
                    hint: None,
                });
            } else if has_groups {
                diags.push(Diagnostic {
                    file: file.to_string(),
                    loc: r.sink_table.loc,
                    path: format!("{path}.sink-table"),
                    message:
                        "capture group references (`$n`) cannot be combined with replace-symbol"
                            .into(),
                    hint: None,
                });
            }
        }
        if let Some(pattern) = pattern {
            compiled_routes.push(RouteRule {
                index: i,
                pattern,
                sink: if r.replace_symbol.is_some() {
                    r.sink_table.value.clone()
                } else {
                    java_replacement(&r.sink_table.value)
                },
                replace_symbol: r.replace_symbol.as_ref().map(|s| s.value.clone()),
            });
        }
    }

    if !diags.is_empty() {
        return Err(diags);
    }

    let mut config = SessionConfig::new();
    // Flink column names are case-sensitive (`ID`, `VERSION`); we resolve case ourselves.
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    for udf in functions::udfs(zone) {
        ctx.register_udf(udf);
    }
    Ok(CompiledPipeline {
        rules: Arc::new(rules),
        routes: Arc::new(compiled_routes),
        route_mode: pipeline.route_mode,
        state: Arc::new(ctx.state()),
    })
}
