//! The `pipeline:` block (Flink CDC `PipelineOptions` with its defaults), the sink's
//! schema-change tag lists, and the small validators other crates reuse (time zones, route
//! patterns).
//!
//! Unlike Flink CDC, an unknown key in `pipeline:` is an error (a typo there silently changes
//! behaviour); Flink-runtime keys we accept without effect are collected in
//! [`PipelineOptions::ignored`](super::PipelineOptions::ignored) and warned about.

use std::str::FromStr;

use super::load::{Ctx, Kind, Node, entries, join, scalar, spanned, unknown_key};
use super::{
    DecimalPrecisionMode, Location, ModelDef, OptionValue, PipelineOptions, RouteMode, RuntimeMode,
    SchemaChangeBehavior, SinkPartitioningStrategy, Spanned, UdfDef, did_you_mean, parse_duration,
};

/// Every exact schema-change tag Flink CDC knows, for `include.schema.changes` /
/// `exclude.schema.changes`.
pub const SCHEMA_CHANGE_TAGS: &[&str] = &[
    "create.table",
    "add.column",
    "alter.column.type",
    "drop.column",
    "rename.column",
    "truncate.table",
    "drop.table",
    "alter.table.comment",
];

/// Expands a tag as written (exact, or a family: `add`, `alter`, `create`, `drop`, `rename`,
/// `truncate`, `column`, `table`, `all`) into exact tags; `None` when the tag is unknown.
pub fn expand_schema_change_tag(tag: &str) -> Option<Vec<&'static str>> {
    let t = tag.trim().to_ascii_lowercase();
    if let Some(exact) = SCHEMA_CHANGE_TAGS.iter().find(|x| **x == t) {
        return Some(vec![*exact]);
    }
    Some(match t.as_str() {
        "add" => vec!["add.column"],
        "alter" => vec!["alter.column.type"],
        "create" => vec!["create.table"],
        "drop" => vec!["drop.column", "drop.table"],
        "rename" => vec!["rename.column"],
        "truncate" => vec!["truncate.table"],
        "column" => vec![
            "add.column",
            "alter.column.type",
            "drop.column",
            "rename.column",
        ],
        "table" => vec![
            "create.table",
            "drop.table",
            "truncate.table",
            "alter.table.comment",
        ],
        "all" => SCHEMA_CHANGE_TAGS.to_vec(),
        _ => return None,
    })
}

/// Family tags, offered in did-you-mean hints together with the exact ones.
const FAMILY_TAGS: &[&str] = &[
    "add", "alter", "create", "drop", "rename", "truncate", "column", "table", "all",
];

/// A sink's `include.schema.changes` / `exclude.schema.changes` list; unknown tags are errors.
pub(super) fn schema_change_tags(
    node: &Node,
    path: &str,
    cx: &mut Ctx<'_>,
) -> Vec<Spanned<String>> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        _ => {
            cx.error(
                node.loc,
                path,
                format!(
                    "expected a list of schema change tags, got {}",
                    node.shape()
                ),
                Some("write e.g. `[add.column, drop.column]`".into()),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let Some(tag) = spanned(item, &item_path, cx) else {
            continue;
        };
        if expand_schema_change_tag(&tag.value).is_none() {
            let candidates = SCHEMA_CHANGE_TAGS.iter().chain(FAMILY_TAGS).copied();
            let hint = match did_you_mean(&tag.value, candidates) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "tags are {} or a family: {}",
                    SCHEMA_CHANGE_TAGS.join(", "),
                    FAMILY_TAGS.join(", ")
                ),
            };
            cx.error(
                tag.loc,
                item_path,
                format!("unknown schema change tag `{}`", tag.value),
                Some(hint),
            );
        }
        out.push(tag);
    }
    out
}

/// Whether `zone` is a time zone Flink CDC (Java `ZoneId.of`) and cdcflow both accept: an IANA
/// name (`Asia/Shanghai`, `UTC`), `Z`, or a fixed offset (`+08:00`, `GMT-8`, `UTC+05:30`).
pub fn is_valid_time_zone(zone: &str) -> bool {
    if chrono_tz::Tz::from_str(zone).is_ok() || zone == "Z" {
        return true;
    }
    let offset = ["GMT", "UTC", "UT"]
        .iter()
        .find_map(|p| zone.strip_prefix(p))
        .unwrap_or(zone);
    let Some(rest) = offset.strip_prefix(['+', '-']) else {
        return false;
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, Some(m)),
        None if rest.len() == 4 && rest.is_ascii() => (&rest[..2], Some(&rest[2..])),
        None => (rest, None),
    };
    let digits = |s: &str, max: u32| {
        !s.is_empty()
            && s.len() <= 2
            && s.bytes().all(|b| b.is_ascii_digit())
            && s.parse::<u32>().is_ok_and(|n| n <= max)
    };
    digits(h, 18) && m.is_none_or(|m| m.len() == 2 && digits(m, 59))
}

/// Compiles a route `source-table` pattern as Flink CDC does: `,` separates alternatives, an
/// unescaped `.` is a literal dot, `\.` is the regex "any char"; the whole `db.table` id must
/// match, case-sensitively.
///
/// # Errors
/// The regex compiler's message (one line) when the pattern is not a valid regex.
pub fn route_regex(pattern: &str) -> Result<regex::Regex, String> {
    let mut re = String::with_capacity(pattern.len() + 8);
    re.push_str("^(?:");
    let mut chars = pattern.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                chars.next();
                re.push('.');
            }
            '\\' => {
                re.push('\\');
                if let Some(n) = chars.next() {
                    re.push(n);
                }
            }
            '.' => re.push_str("\\."),
            ',' => {
                re.push('|');
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            c => re.push(c),
        }
    }
    re.push_str(")$");
    regex::Regex::new(&re).map_err(|e| regex_message(&e))
}

/// The one-line reason of a regex error (the crate's Display spans several lines with a caret).
pub(crate) fn regex_message(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_string())
}

/// Pipeline keys cdcflow reads.
const PIPELINE_KEYS: &[&str] = &[
    "name",
    "parallelism",
    "execution.runtime-mode",
    "schema.change.behavior",
    "route-mode",
    "local-time-zone",
    "schema-operator.rpc-timeout",
    "operator.uid.prefix",
    "schema.operator.uid",
    "sink.partitioning.strategy",
    "transform.decimal.precision.mode",
    "user-defined-function",
    "model",
];

/// Flink runtime keys that some users put in the pipeline file: accepted, warned, no effect.
const FLINK_ONLY_KEYS: &[&str] = &[
    "execution.checkpointing.interval",
    "execution.checkpointing.mode",
    "execution.checkpointing.timeout",
    "execution.checkpointing.min-pause",
    "execution.checkpointing.max-concurrent-checkpoints",
    "execution.checkpointing.tolerable-failed-checkpoints",
    "execution.checkpointing.externalized-checkpoint-retention",
    "state.backend.type",
    "state.checkpoints.dir",
    "state.savepoints.dir",
    "restart-strategy.type",
    "restart-strategy.fixed-delay.attempts",
    "restart-strategy.fixed-delay.delay",
    "taskmanager.numberOfTaskSlots",
    "taskmanager.memory.process.size",
    "jobmanager.memory.process.size",
];

/// An enum option: `(name as written in Flink, value)`, matched case-insensitively.
fn choice<T: Copy>(
    v: &Spanned<String>,
    path: &str,
    choices: &[(&'static str, T)],
    cx: &mut Ctx<'_>,
) -> Option<T> {
    let s = v.value.trim();
    if let Some((_, t)) = choices.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
        return Some(*t);
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let hint = did_you_mean(s, names.iter().copied()).map(|n| format!("did you mean `{n}`?"));
    cx.error(
        v.loc,
        path,
        format!("expected one of {}, got `{}`", names.join(", "), v.value),
        hint,
    );
    None
}

/// The `pipeline:` block with Flink CDC's code defaults for everything not set.
pub(super) fn pipeline_options(node: &Node, cx: &mut Ctx<'_>) -> PipelineOptions {
    let mut o = PipelineOptions::default();
    if !matches!(node.kind, Kind::Map(_)) {
        cx.error(
            node.loc,
            "pipeline",
            format!("expected a mapping of options, got {}", node.shape()),
            None,
        );
        return o;
    }
    let (mut uid_prefix, mut schema_uid) = (None, None);
    for (key, loc, value) in entries(node, "pipeline", cx) {
        let path = join("pipeline", &key);
        match key.as_str() {
            "user-defined-function" => o.user_defined_functions = udfs(value, &path, cx),
            "model" => o.models = models(value, &path, cx),
            k if k.starts_with("cdcflow.") => {
                if let Some((v, char_locs)) = scalar(value, &path, cx) {
                    o.engine_options.insert(
                        key.clone(),
                        OptionValue {
                            value: v,
                            key_loc: loc,
                            value_loc: value.loc,
                            char_locs,
                        },
                    );
                }
            }
            k if FLINK_ONLY_KEYS.contains(&k) => {
                let _ = scalar(value, &path, cx);
                o.ignored.push(Spanned::new(key.clone(), loc));
            }
            k if PIPELINE_KEYS.contains(&k) => {
                let Some(v) = spanned(value, &path, cx) else {
                    continue;
                };
                match k {
                    "name" => o.name = v.value,
                    "parallelism" => match v.value.trim().parse::<usize>() {
                        Ok(n) if n >= 1 => o.parallelism = n,
                        _ => cx.error(
                            v.loc,
                            path,
                            format!("expected a positive integer, got `{}`", v.value),
                            None,
                        ),
                    },
                    "execution.runtime-mode" => {
                        let c = [
                            ("STREAMING", RuntimeMode::Streaming),
                            ("BATCH", RuntimeMode::Batch),
                        ];
                        o.runtime_mode = choice(&v, &path, &c, cx).unwrap_or_default();
                    }
                    "schema.change.behavior" => {
                        let c = [
                            ("IGNORE", SchemaChangeBehavior::Ignore),
                            ("LENIENT", SchemaChangeBehavior::Lenient),
                            ("TRY_EVOLVE", SchemaChangeBehavior::TryEvolve),
                            ("EVOLVE", SchemaChangeBehavior::Evolve),
                            ("EXCEPTION", SchemaChangeBehavior::Exception),
                        ];
                        o.schema_change_behavior = choice(&v, &path, &c, cx).unwrap_or_default();
                    }
                    "route-mode" => {
                        let c = [
                            ("ALL_MATCH", RouteMode::AllMatch),
                            ("FIRST_MATCH", RouteMode::FirstMatch),
                        ];
                        o.route_mode = choice(&v, &path, &c, cx).unwrap_or_default();
                    }
                    "local-time-zone" => {
                        if is_valid_time_zone(v.value.trim()) {
                            o.local_time_zone = Some(v.value.trim().to_string());
                        } else {
                            cx.error(v.loc, path, format!("unknown time zone `{}`", v.value), Some(
                                "use an IANA name such as `Asia/Shanghai` or an offset such as `GMT+08:00`".into(),
                            ));
                        }
                    }
                    "schema-operator.rpc-timeout" => match parse_duration(&v.value) {
                        Some(d) if !d.is_zero() => o.schema_operator_rpc_timeout = d,
                        _ => cx.error(
                            v.loc,
                            path,
                            format!(
                                "expected a duration such as `30s`, `3min` or `1 h`, got `{}`",
                                v.value
                            ),
                            None,
                        ),
                    },
                    "sink.partitioning.strategy" => {
                        let c = [
                            ("SINK_DEFINED", SinkPartitioningStrategy::SinkDefined),
                            ("PRIMARY_KEY", SinkPartitioningStrategy::PrimaryKey),
                            ("TABLE_ID", SinkPartitioningStrategy::TableId),
                        ];
                        o.sink_partitioning_strategy =
                            choice(&v, &path, &c, cx).unwrap_or_default();
                    }
                    "transform.decimal.precision.mode" => {
                        let c = [
                            ("UP_TO_19", DecimalPrecisionMode::UpTo19),
                            ("UP_TO_38", DecimalPrecisionMode::UpTo38),
                        ];
                        o.decimal_precision_mode = choice(&v, &path, &c, cx).unwrap_or_default();
                    }
                    "operator.uid.prefix" => {
                        uid_prefix = Some(v.loc);
                        o.ignored.push(Spanned::new(key.clone(), loc));
                    }
                    "schema.operator.uid" => {
                        schema_uid = Some(v.loc);
                        o.ignored.push(Spanned::new(key.clone(), loc));
                    }
                    _ => {}
                }
            }
            _ => {
                let known: Vec<&str> = PIPELINE_KEYS
                    .iter()
                    .chain(FLINK_ONLY_KEYS)
                    .copied()
                    .collect();
                let hint = match did_you_mean(&key, known.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "cdcflow's own options start with `cdcflow.`".to_string(),
                };
                cx.error(
                    loc,
                    path,
                    format!("unknown pipeline option `{key}`"),
                    Some(hint),
                );
            }
        }
    }
    if let (Some(_), Some(at)) = (uid_prefix, schema_uid) {
        cx.error(
            at,
            "pipeline.schema.operator.uid",
            "`schema.operator.uid` cannot be combined with `operator.uid.prefix`",
            Some("drop the deprecated `schema.operator.uid`".into()),
        );
    }
    o
}

/// Keys of a `user-defined-function` entry.
const UDF_KEYS: &[&str] = &[
    "name",
    "classpath",
    "options",
    "python-code",
    "python-executable",
    "python-files",
];

/// `pipeline.user-defined-function`: parsed so each entry can be reported by name; cdcflow runs
/// no Java or Python code, so every entry is an error.
fn udfs(node: &Node, path: &str, cx: &mut Ctx<'_>) -> Vec<UdfDef> {
    let Kind::Seq(items) = &node.kind else {
        cx.error(
            node.loc,
            path,
            format!("expected a list of functions, got {}", node.shape()),
            None,
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !matches!(item.kind, Kind::Map(_)) {
            cx.error(
                item.loc,
                p,
                format!(
                    "expected a mapping with `name` and `classpath`, got {}",
                    item.shape()
                ),
                None,
            );
            continue;
        }
        let mut u = UdfDef {
            loc: item.loc,
            name: Spanned::new(String::new(), item.loc),
            classpath: None,
            python_code: None,
            options: Default::default(),
        };
        let mut named = false;
        for (key, loc, value) in entries(item, &p, cx) {
            let kp = join(&p, &key);
            match key.as_str() {
                "name" => {
                    if let Some(n) = spanned(value, &kp, cx) {
                        u.name = n;
                        named = true;
                    }
                }
                "classpath" => u.classpath = spanned(value, &kp, cx),
                "python-code" => u.python_code = spanned(value, &kp, cx),
                "python-executable" | "python-files" => {}
                "options" => {
                    for (k, _, v) in entries(value, &kp, cx) {
                        if let Some((v, _)) = scalar(v, &join(&kp, &k), cx) {
                            u.options.insert(k, v);
                        }
                    }
                }
                _ => unknown_key(&key, loc, &p, "user-defined function", UDF_KEYS, cx),
            }
        }
        if !named {
            cx.error(
                item.loc,
                join(&p, "name"),
                "missing required key `name`",
                None,
            );
        }
        let (what, at) = match (&u.classpath, &u.python_code) {
            (Some(c), _) => (format!("Java class `{}`", c.value), c.loc),
            (None, Some(c)) => ("Python code".to_string(), c.loc),
            (None, None) => ("a function without `classpath`".to_string(), item.loc),
        };
        cx.error(at, p, format!("user-defined function `{}` cannot run in cdcflow: {what}", u.name.value), Some(
            "cdcflow runs no Java or Python code; rewrite the expression with built-in SQL functions".into(),
        ));
        out.push(u);
    }
    out
}

/// `pipeline.model`: parsed so each entry can be reported by name; AI model functions are not
/// offered by cdcflow, so every entry is an error.
fn models(node: &Node, path: &str, cx: &mut Ctx<'_>) -> Vec<ModelDef> {
    let items: Vec<&Node> = match &node.kind {
        Kind::Seq(items) => items.iter().collect(),
        Kind::Map(_) => vec![node],
        Kind::Scalar { .. } => {
            cx.error(
                node.loc,
                path,
                "expected a list of models, got a single value",
                None,
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut m = ModelDef {
            loc: item.loc,
            name: Spanned::new(String::new(), item.loc),
            options: Default::default(),
        };
        for (key, _, value) in entries(item, &p, cx) {
            if key == "name" || key == "model-name" {
                if let Some(n) = spanned(value, &join(&p, &key), cx) {
                    m.name = n;
                }
            } else if let Some(v) = value.as_str() {
                m.options.insert(key, v.to_string());
            }
        }
        let at: Location = if m.name.value.is_empty() {
            item.loc
        } else {
            m.name.loc
        };
        cx.error(
            at,
            p,
            format!(
                "model `{}` cannot run in cdcflow: AI model functions are not supported",
                m.name.value
            ),
            None,
        );
        out.push(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Diagnostics, PipelineDef, load_str_with_env};
    use std::time::Duration;

    const BASE: &str = "source:\n  type: mysql\nsink:\n  type: doris\n";

    fn load(text: &str) -> Result<PipelineDef, Diagnostics> {
        load_str_with_env(text, "p.yaml", &|_| None)
    }

    fn errors(text: &str) -> Vec<String> {
        load(text).expect_err("must be rejected").lines()
    }

    #[test]
    fn defaults_follow_flink_code() {
        let def = load(BASE).expect("valid");
        assert_eq!(def.pipeline, PipelineOptions::default());
        assert_eq!(def.pipeline.name, "Flink CDC Pipeline Job");
        assert_eq!(
            def.pipeline.schema_operator_rpc_timeout,
            Duration::from_secs(180)
        );
        let ex: Vec<_> = def
            .sink
            .exclude_schema_changes
            .expect("LENIENT default")
            .into_iter()
            .map(|s| s.value)
            .collect();
        assert_eq!(ex, ["drop.table", "truncate.table"]);
    }

    #[test]
    fn options_parse_case_insensitively() {
        let text = format!(
            "{BASE}pipeline:\n  name: job\n  parallelism: 4\n  schema.change.behavior: try_evolve\n  route-mode: first_match\n  execution.runtime-mode: batch\n  local-time-zone: GMT+08:00\n  schema-operator.rpc-timeout: 1 h\n  sink.partitioning.strategy: TABLE_ID\n  transform.decimal.precision.mode: UP_TO_38\n  execution.checkpointing.interval: 3s\n  cdcflow.memory.limit: 1g\n"
        );
        let p = load(&text).expect("valid").pipeline;
        assert_eq!((p.name.as_str(), p.parallelism), ("job", 4));
        assert_eq!(p.schema_change_behavior, SchemaChangeBehavior::TryEvolve);
        assert_eq!(p.route_mode, RouteMode::FirstMatch);
        assert_eq!(p.runtime_mode, RuntimeMode::Batch);
        assert_eq!(p.local_time_zone.as_deref(), Some("GMT+08:00"));
        assert_eq!(p.schema_operator_rpc_timeout, Duration::from_secs(3600));
        assert_eq!(
            p.sink_partitioning_strategy,
            SinkPartitioningStrategy::TableId
        );
        assert_eq!(p.decimal_precision_mode, DecimalPrecisionMode::UpTo38);
        assert_eq!(
            p.ignored,
            vec![Spanned::new(
                "execution.checkpointing.interval".to_string(),
                Location {
                    line: 15,
                    column: 3
                }
            )]
        );
        assert_eq!(p.engine_options["cdcflow.memory.limit"].value, "1g");
    }

    #[test]
    fn bad_pipeline_options_are_all_reported() {
        let text = format!(
            "{BASE}pipeline:\n  parallelism: 0\n  schema.change.behavior: evolv\n  local-time-zone: Mars/Olympus\n  schema-operator.rpc-timeout: soon\n  paralelism: 2\n  operator.uid.prefix: a\n  schema.operator.uid: b\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:6:16: pipeline.parallelism: expected a positive integer, got `0`",
                "p.yaml:7:27: pipeline.schema.change.behavior: expected one of IGNORE, LENIENT, TRY_EVOLVE, EVOLVE, EXCEPTION, got `evolv` (hint: did you mean `EVOLVE`?)",
                "p.yaml:8:20: pipeline.local-time-zone: unknown time zone `Mars/Olympus` (hint: use an IANA name such as `Asia/Shanghai` or an offset such as `GMT+08:00`)",
                "p.yaml:9:32: pipeline.schema-operator.rpc-timeout: expected a duration such as `30s`, `3min` or `1 h`, got `soon`",
                "p.yaml:10:3: pipeline.paralelism: unknown pipeline option `paralelism` (hint: did you mean `parallelism`?)",
                "p.yaml:12:24: pipeline.schema.operator.uid: `schema.operator.uid` cannot be combined with `operator.uid.prefix` (hint: drop the deprecated `schema.operator.uid`)",
            ]
        );
    }

    #[test]
    fn schema_change_tags_are_validated_and_explicit_exclude_wins() {
        let text = "source:\n  type: mysql\nsink:\n  type: doris\n  include.schema.changes: [add.column, drop]\n  exclude.schema.changes: [drop.tabel]\n";
        assert_eq!(
            errors(text),
            vec![
                "p.yaml:6:28: sink.exclude.schema.changes[0]: unknown schema change tag `drop.tabel` (hint: did you mean `drop.table`?)"
            ]
        );
        let text =
            "source:\n  type: mysql\nsink:\n  type: doris\n  exclude.schema.changes: [column]\n";
        let def = load(text).expect("valid");
        let ex: Vec<_> = def
            .sink
            .exclude_schema_changes
            .expect("set")
            .into_iter()
            .map(|s| s.value)
            .collect();
        assert_eq!(
            ex,
            ["column"],
            "an explicit exclude list replaces LENIENT's default"
        );
        let text = format!("{BASE}pipeline:\n  schema.change.behavior: EVOLVE\n");
        assert_eq!(
            load(&text).expect("valid").sink.exclude_schema_changes,
            None,
            "no default outside LENIENT"
        );
    }

    #[test]
    fn tags_expand_families() {
        assert_eq!(
            expand_schema_change_tag("DROP"),
            Some(vec!["drop.column", "drop.table"])
        );
        assert_eq!(
            expand_schema_change_tag("all").map(|v| v.len()),
            Some(SCHEMA_CHANGE_TAGS.len())
        );
        assert_eq!(expand_schema_change_tag("nope"), None);
    }

    #[test]
    fn time_zones() {
        for ok in [
            "Asia/Shanghai",
            "UTC",
            "Z",
            "GMT-08:00",
            "+05:30",
            "UTC+8",
            "GMT+0800",
            "Europe/Berlin",
        ] {
            assert!(is_valid_time_zone(ok), "{ok} must be accepted");
        }
        for bad in [
            "Mars/Olympus",
            "GMT+25:00",
            "+8:7",
            "asia/shanghai",
            "",
            "GMT+",
        ] {
            assert!(!is_valid_time_zone(bad), "{bad} must be rejected");
        }
    }

    #[test]
    fn route_patterns_follow_flink_conversion() {
        let r = route_regex("db_(\\.*).(\\.*)_tbl").expect("valid");
        assert!(r.is_match("db_foo.bar_tbl"));
        assert!(
            !r.is_match("db_fooXbar_tbl"),
            "an unescaped dot is a literal dot"
        );
        assert!(!r.is_match("DB_foo.bar_tbl"), "routes are case-sensitive");
        let r = route_regex("a.b, c.d").expect("valid");
        assert!(r.is_match("c.d") && r.is_match("a.b") && !r.is_match("a.d"));
        assert_eq!(route_regex("db.(x").unwrap_err(), "unclosed group");
    }

    #[test]
    fn udfs_and_models_are_reported_by_name() {
        let text = format!(
            "{BASE}pipeline:\n  user-defined-function:\n    - name: addone\n      classpath: com.example.AddOne\n      options:\n        k: v\n  model:\n    - model-name: EMB\n      class-name: OpenAIEmbeddingModel\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:8:18: pipeline.user-defined-function[0]: user-defined function `addone` cannot run in cdcflow: Java class `com.example.AddOne` (hint: cdcflow runs no Java or Python code; rewrite the expression with built-in SQL functions)",
                "p.yaml:12:19: pipeline.model[0]: model `EMB` cannot run in cdcflow: AI model functions are not supported",
            ]
        );
    }
}
