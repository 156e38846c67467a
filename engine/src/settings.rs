//! cdcflow's own `pipeline:` options (`cdcflow.*` keys), checked offline like every other key.
//!
//! Flink CDC files never contain these keys; they tune what has no Flink equivalent (where
//! checkpoints and spill files live, the memory budget, how long a failing sink is retried).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{
    Diagnostic, Diagnostics, OptionValue, PipelineOptions, did_you_mean, parse_duration,
};
use crate::pipeline::DEFAULT_MEMORY_BUDGET;

/// Every `cdcflow.*` key the engine understands.
pub const KEYS: &[&str] = &[
    "cdcflow.checkpoint.dir",
    "cdcflow.checkpoint.interval",
    "cdcflow.memory.budget",
    "cdcflow.spill.dir",
    "cdcflow.sink.restart-timeout",
    "cdcflow.metrics.address",
];

/// Smallest memory budget accepted: below it the fixed costs (decoder builders, one batch in
/// flight per stage) alone exceed it.
pub const MIN_MEMORY_BUDGET: usize = 32 << 20;

/// The engine's resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    /// `cdcflow.checkpoint.dir`: overrides `.cdcflow/<pipeline name>`.
    pub checkpoint_dir: Option<PathBuf>,
    /// `cdcflow.checkpoint.interval` (default 5 s).
    pub checkpoint_interval: Duration,
    /// `cdcflow.memory.budget` in bytes (default 256 MiB): queue plus sink buffers plus slack.
    pub memory_budget: usize,
    /// `cdcflow.spill.dir`: overrides `<checkpoint dir>/spill`.
    pub spill_dir: Option<PathBuf>,
    /// `cdcflow.sink.restart-timeout` (default 10 min): how long a failing sink is rebuilt and
    /// retried before the run fails.
    pub sink_restart_timeout: Duration,
    /// `cdcflow.metrics.address`: where the Prometheus endpoint listens, if anywhere.
    pub metrics_address: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            checkpoint_dir: None,
            checkpoint_interval: Duration::from_secs(5),
            memory_budget: DEFAULT_MEMORY_BUDGET,
            spill_dir: None,
            sink_restart_timeout: Duration::from_secs(600),
            metrics_address: None,
        }
    }
}

impl EngineSettings {
    /// Reads and checks the `cdcflow.*` options; problems go to `diags` with their location.
    pub fn from_pipeline(p: &PipelineOptions, file: &str, diags: &mut Diagnostics) -> Self {
        let mut s = EngineSettings::default();
        for (key, v) in &p.engine_options {
            let mut err = |message: String, hint: Option<String>, at_key: bool| {
                diags.push(Diagnostic {
                    file: file.to_string(),
                    loc: if at_key { v.key_loc } else { v.value_loc },
                    path: format!("pipeline.{key}"),
                    message,
                    hint,
                })
            };
            match key.as_str() {
                "cdcflow.checkpoint.dir" => s.checkpoint_dir = Some(path(v)),
                "cdcflow.spill.dir" => s.spill_dir = Some(path(v)),
                "cdcflow.metrics.address" => s.metrics_address = Some(v.value.trim().to_string()),
                "cdcflow.checkpoint.interval" => match parse_duration(&v.value) {
                    Some(d) if d >= Duration::from_millis(10) => s.checkpoint_interval = d,
                    _ => err(
                        format!("expected a duration of at least 10ms, got `{}`", v.value),
                        Some("e.g. `5s`, `500ms`, `1min`".into()),
                        false,
                    ),
                },
                "cdcflow.sink.restart-timeout" => match parse_duration(&v.value) {
                    Some(d) => s.sink_restart_timeout = d,
                    None => err(
                        format!("expected a duration, got `{}`", v.value),
                        Some("e.g. `10min`, `0s` to fail at the first sink error".into()),
                        false,
                    ),
                },
                "cdcflow.memory.budget" => match parse_bytes(&v.value) {
                    Some(b) if b >= MIN_MEMORY_BUDGET => s.memory_budget = b,
                    Some(_) => err(
                        format!("`{}` is below the minimum of 32mb", v.value),
                        None,
                        false,
                    ),
                    None => err(
                        format!("expected a size, got `{}`", v.value),
                        Some("e.g. `256mb`, `1gb`, `512MiB`".into()),
                        false,
                    ),
                },
                other => err(
                    format!("unknown option `{other}`"),
                    did_you_mean(other, KEYS.iter().copied())
                        .map(|k| format!("did you mean `{k}`?"))
                        .or_else(|| Some(format!("cdcflow options: {}", KEYS.join(", ")))),
                    true,
                ),
            }
        }
        s
    }

    /// Bytes the queue keeps in memory before spilling.
    pub fn queue_memory(&self) -> usize {
        self.memory_budget / 4
    }

    /// Bytes the sink may buffer across tables.
    pub fn sink_buffer_budget(&self) -> usize {
        self.memory_budget / 4
    }
}

fn path(v: &OptionValue) -> PathBuf {
    PathBuf::from(v.value.trim())
}

/// Parses `256mb`, `1g`, `512 MiB`, `1048576` (bytes); units are powers of 1024.
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    fn settings(extra: &str) -> Result<EngineSettings, Vec<String>> {
        let yaml =
            format!("source:\n  type: mysql\nsink:\n  type: doris\npipeline:\n  name: p\n{extra}");
        let def = load_str(&yaml, "p.yaml").map_err(|d| d.lines())?;
        let mut diags = Diagnostics::default();
        let s = EngineSettings::from_pipeline(&def.pipeline, "p.yaml", &mut diags);
        if diags.is_empty() {
            Ok(s)
        } else {
            Err(diags.lines())
        }
    }

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(settings("").unwrap(), EngineSettings::default());
        let s = settings("  cdcflow.memory.budget: 64mb\n  cdcflow.checkpoint.interval: 500ms\n  cdcflow.sink.restart-timeout: 2min\n  cdcflow.spill.dir: /tmp/x\n").unwrap();
        assert_eq!(s.memory_budget, 64 << 20);
        assert_eq!(s.checkpoint_interval, Duration::from_millis(500));
        assert_eq!(s.sink_restart_timeout, Duration::from_secs(120));
        assert_eq!(s.spill_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(s.queue_memory(), 16 << 20);
    }

    #[test]
    fn bad_values_and_unknown_keys_are_reported_with_their_location() {
        let mut e = settings("  cdcflow.memory.budget: lots\n  cdcflow.memory.limit: 1g\n  cdcflow.checkpoint.interval: 1ms\n").unwrap_err();
        e.sort();
        assert_eq!(
            e,
            vec![
                "p.yaml:7:26: pipeline.cdcflow.memory.budget: expected a size, got `lots` (hint: e.g. `256mb`, `1gb`, `512MiB`)".to_string(),
                "p.yaml:8:3: pipeline.cdcflow.memory.limit: unknown option `cdcflow.memory.limit` (hint: did you mean `cdcflow.memory.budget`?)".to_string(),
                "p.yaml:9:32: pipeline.cdcflow.checkpoint.interval: expected a duration of at least 10ms, got `1ms` (hint: e.g. `5s`, `500ms`, `1min`)".to_string(),
            ]
        );
        let e = settings("  cdcflow.memory.budget: 1mb\n").unwrap_err();
        assert!(e[0].contains("below the minimum"), "{e:?}");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_bytes("256mb"), Some(256 << 20));
        assert_eq!(parse_bytes("1 GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("1.5g"), None);
        assert_eq!(parse_bytes("-1"), None);
    }
}
