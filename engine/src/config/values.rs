//! `sink: {type: values}`: the test sink of Flink CDC, which cdcflow also offers (prints rows and
//! can keep tables in memory), so Flink CDC's e2e example pipelines load unchanged.
//!
//! Its options are Flink's: `print.enabled` and `materialized.in.memory`; the runtime sink lives
//! in cdcflow-doris (`values.rs`) and reads the same keys.

use super::{ComponentDef, Diagnostics, OptionReader};

/// Flink `values` sink options that have no effect in cdcflow (accepted, warned).
pub const VALUES_SINK_IGNORED: &[&str] = &["error.on.schema.change", "sink.print.logger"];

/// Validated `values` sink settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuesSinkConfig {
    /// The block's optional `name`.
    pub name: Option<String>,
    /// `print.enabled` (true): print every change.
    pub print: bool,
    /// `materialized.in.memory` (false): keep the tables in memory for tests and examples.
    pub materialize: bool,
}

/// Validates a `values` sink block; any other option is unknown. `None` when invalid.
pub fn validate_values_sink(
    def: &ComponentDef,
    diags: &mut Diagnostics,
) -> Option<ValuesSinkConfig> {
    let before = diags.len();
    let mut r = OptionReader::new(def, diags);
    let print = r.bool("print.enabled", true);
    let materialize = r.bool("materialized.in.memory", false);
    r.finish(VALUES_SINK_IGNORED);
    (diags.len() == before).then(|| ValuesSinkConfig {
        name: def.name.as_ref().map(|n| n.value.clone()),
        print,
        materialize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str_with_env;

    fn check(sink: &str) -> (Option<ValuesSinkConfig>, Vec<String>) {
        let text = format!("source:\n  type: mysql\nsink:\n  type: values\n{sink}");
        let def = load_str_with_env(&text, "v.yaml", &|_| None).expect("the file itself must load");
        let mut d = Diagnostics::default();
        let c = validate_values_sink(&def.sink, &mut d);
        (c, d.lines())
    }

    #[test]
    fn values_sink_options() {
        let (c, errors) = check("  name: out\n");
        assert!(errors.is_empty());
        assert_eq!(
            c,
            Some(ValuesSinkConfig {
                name: Some("out".into()),
                print: true,
                materialize: false
            })
        );
        let (c, _) = check(
            "  print.enabled: false\n  materialized.in.memory: true\n  error.on.schema.change: true\n",
        );
        assert_eq!(c.map(|c| (c.print, c.materialize)), Some((false, true)));
        let (c, errors) = check("  print.enable: true\n");
        assert_eq!(c, None);
        assert_eq!(
            errors,
            vec![
                "v.yaml:5:3: sink.print.enable: unknown option `print.enable` for sink `values` (hint: did you mean `print.enabled`?)"
            ]
        );
    }
}
