//! `sink: {type: doris}` and `sink: {type: starrocks}` options with Flink CDC names and the
//! *effective* defaults (flink-cdc-pipeline.md §3.1 and §3.4), validated offline.
//!
//! "Effective" matters: Flink CDC forwards an optional option only when it is set, so an unset
//! option gets the underlying connector's builder default, not the one printed in the CDC docs.
//! Options that only tune Flink's streaming writer are accepted, type-checked, warned about and
//! listed in `ignored`.

use std::time::Duration;

use cdcflow_engine::config::{
    ComponentDef, Diagnostics, OptionReader, PipelineOptions, Secret, Spanned,
};

/// Validated Doris sink settings.
#[derive(Debug, Clone)]
pub struct DorisSinkConfig {
    /// `fenodes`: FE HTTP `host:port` list.
    pub fenodes: Vec<String>,
    /// `benodes`: BE HTTP `host:port` list; when set, loads go straight to BEs.
    pub benodes: Vec<String>,
    /// `jdbc-url` (optional; DDL goes over FE HTTP).
    pub jdbc_url: Option<String>,
    /// `username`.
    pub username: String,
    /// `password` (empty when unset).
    pub password: Secret,
    /// `auto-redirect` (false).
    pub auto_redirect: bool,
    /// `charset-encoding` (UTF-8): charset of the HTTP client for DDL calls.
    pub charset_encoding: String,
    /// `sink.enable.batch-mode` (true).
    pub batch_mode: bool,
    /// `sink.enable-2pc`: effective value; the builder default `true` applies only when batch mode
    /// is off (the batch writer never uses 2PC).
    pub enable_2pc: bool,
    /// `sink.label-prefix` ("").
    pub label_prefix: String,
    /// `sink.max-retries` (3).
    pub max_retries: u32,
    /// `sink.enable-delete` (true).
    pub enable_delete: bool,
    /// `sink.flush.queue-size` (2).
    pub flush_queue_size: usize,
    /// `sink.buffer-flush.max-rows` (effective 500000).
    pub buffer_flush_max_rows: usize,
    /// `sink.buffer-flush.max-bytes` (effective 104857600).
    pub buffer_flush_max_bytes: usize,
    /// `sink.buffer-flush.interval` (10s).
    pub buffer_flush_interval: Duration,
    /// `sink.ignore.update-before` (true).
    pub ignore_update_before: bool,
    /// `sink.properties.*`: Stream Load headers.
    pub properties: Vec<(String, String)>,
    /// `table.create.properties.*`: PROPERTIES of auto-created tables.
    pub table_create_properties: Vec<(String, String)>,
    /// `table.create.auto-partition.properties.*`: AUTO RANGE PARTITION settings of auto-created tables.
    pub auto_partition_properties: Vec<(String, String)>,
    /// Accepted Flink-only options with no effect here (warned).
    pub ignored: Vec<String>,
}

/// Validated StarRocks sink settings.
#[derive(Debug, Clone)]
pub struct StarRocksSinkConfig {
    /// `jdbc-url`: `jdbc:mysql://fe1:9030[,fe2:9030]` for DDL and metadata.
    pub jdbc_url: String,
    /// `load-url`: FE HTTP `host:port` list (`;`-separated in YAML).
    pub load_url: Vec<String>,
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: Secret,
    /// `sink.label-prefix`.
    pub label_prefix: Option<String>,
    /// `sink.connect.timeout-ms` (30000).
    pub connect_timeout: Duration,
    /// `sink.socket.timeout-ms` (-1 = none).
    pub socket_timeout: Option<Duration>,
    /// `sink.wait-for-continue.timeout-ms` (30000).
    pub wait_for_continue_timeout: Duration,
    /// `sink.buffer-flush.max-bytes` (effective 94371840).
    pub buffer_flush_max_bytes: usize,
    /// `sink.buffer-flush.interval-ms` (300000).
    pub buffer_flush_interval: Duration,
    /// `sink.io.thread-count` (2).
    pub io_thread_count: usize,
    /// `sink.at-least-once.use-transaction-stream-load` (true).
    pub use_transaction_stream_load: bool,
    /// `sink.properties.*`.
    pub properties: Vec<(String, String)>,
    /// `table.create.num-buckets`.
    pub num_buckets: Option<u32>,
    /// `table.create.properties.*` (keys lower-cased).
    pub table_create_properties: Vec<(String, String)>,
    /// `table.schema-change.timeout` (30min).
    pub schema_change_timeout: Duration,
    /// `unicode-char.max-bytes` (4 here, 3 in Flink CDC: 4 is what utf8mb4 needs).
    pub unicode_char_max_bytes: u32,
    /// `sink.semantic` (`at-least-once` default; `exactly-once` uses Transaction Stream Load
    /// prepared before and committed after each checkpoint).
    pub exactly_once: bool,
    /// Accepted Flink-only options with no effect here (warned).
    pub ignored: Vec<String>,
}

/// Doris options that only tune Flink's streaming writer: type-checked, then ignored.
const DORIS_FLINK_ONLY: &[&str] = &[
    "sink.check-interval",
    "sink.buffer-size",
    "sink.buffer-count",
    "sink.use-cache",
];

/// StarRocks options that only tune the Flink connector's internals: type-checked, then ignored.
const STARROCKS_FLINK_ONLY: &[&str] = &[
    "sink.scan-frequency.ms",
    "sink.metric.histogram-window-size",
];

/// Validates a `sink: {type: doris}` block against §3.1; every problem goes to `diags`.
/// `None` when anything is wrong.
pub fn validate_doris(
    def: &ComponentDef,
    pipeline: &PipelineOptions,
    diags: &mut Diagnostics,
) -> Option<DorisSinkConfig> {
    let _ = pipeline;
    let before = diags.len();
    let mut r = OptionReader::new(def, diags);
    let fenodes = r
        .required("fenodes")
        .map(|v| host_ports(&mut r, "fenodes", &v, &[',']))
        .unwrap_or_default();
    let benodes = r
        .string("benodes")
        .map(|v| host_ports(&mut r, "benodes", &v, &[',']))
        .unwrap_or_default();
    let jdbc_url = r
        .string("jdbc-url")
        .map(|v| jdbc_url(&mut r, "jdbc-url", &v));
    let username = r.required_non_empty("username");
    let password = r.string("password").map(|p| p.value).unwrap_or_default();
    let auto_redirect = r.bool("auto-redirect", false);
    let charset_encoding = r
        .string("charset-encoding")
        .map(|s| s.value)
        .unwrap_or_else(|| "UTF-8".into());
    let batch_mode = r.bool("sink.enable.batch-mode", true);
    let enable_2pc_set = r.raw("sink.enable-2pc").is_some();
    let enable_2pc = r.bool("sink.enable-2pc", true) && !batch_mode;
    let label_prefix = r
        .string("sink.label-prefix")
        .map(|s| s.value)
        .unwrap_or_default();
    if !label_prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        r.error(
            "sink.label-prefix",
            format!("labels allow only letters, digits, `_` and `-`, got `{label_prefix}`"),
            None,
        );
    }
    let max_retries = r.bounded::<u32>("sink.max-retries", 3, None, None, "a non-negative integer");
    let enable_delete = r.bool("sink.enable-delete", true);
    let flush_queue_size =
        r.bounded::<usize>("sink.flush.queue-size", 2, Some(1), None, "an integer");
    let buffer_flush_max_rows = r.bounded::<usize>(
        "sink.buffer-flush.max-rows",
        500_000,
        Some(1),
        None,
        "an integer",
    );
    let buffer_flush_max_bytes = r.bounded::<usize>(
        "sink.buffer-flush.max-bytes",
        104_857_600,
        Some(1),
        None,
        "a byte count",
    );
    let buffer_flush_interval = r.duration("sink.buffer-flush.interval", Duration::from_secs(10));
    if buffer_flush_interval.is_zero() {
        r.error(
            "sink.buffer-flush.interval",
            "must be greater than zero".into(),
            None,
        );
    }
    let ignore_update_before = r.bool("sink.ignore.update-before", true);
    let _ = r.bounded::<u64>("sink.check-interval", 0, None, None, "milliseconds");
    let _ = r.bounded::<usize>("sink.buffer-size", 1_048_576, Some(1), None, "a byte count");
    let _ = r.bounded::<usize>("sink.buffer-count", 3, Some(1), None, "an integer");
    let _ = r.bool("sink.use-cache", false);
    let mut ignored = flink_only(&r, DORIS_FLINK_ONLY);
    if enable_2pc_set && batch_mode {
        ignored.push("sink.enable-2pc".to_string());
    }
    let properties = pairs(r.prefixed("sink.properties."), false);
    let table_create_properties = pairs(r.prefixed("table.create.properties."), false);
    let auto_partition_properties =
        pairs(r.prefixed("table.create.auto-partition.properties."), false);
    r.finish(&[]);
    warn_ignored(def, &ignored);
    if diags.len() != before {
        return None;
    }
    Some(DorisSinkConfig {
        fenodes,
        benodes,
        jdbc_url,
        username: username?.value,
        password: Secret::new(password),
        auto_redirect,
        charset_encoding,
        batch_mode,
        enable_2pc,
        label_prefix,
        max_retries,
        enable_delete,
        flush_queue_size,
        buffer_flush_max_rows,
        buffer_flush_max_bytes,
        buffer_flush_interval,
        ignore_update_before,
        properties,
        table_create_properties,
        auto_partition_properties,
        ignored,
    })
}

/// Validates a `sink: {type: starrocks}` block against §3.4; every problem goes to `diags`.
/// `None` when anything is wrong.
pub fn validate_starrocks(
    def: &ComponentDef,
    pipeline: &PipelineOptions,
    diags: &mut Diagnostics,
) -> Option<StarRocksSinkConfig> {
    let _ = pipeline;
    let before = diags.len();
    let mut r = OptionReader::new(def, diags);
    let jdbc = r
        .required("jdbc-url")
        .map(|v| jdbc_url(&mut r, "jdbc-url", &v));
    let load_url = r
        .required("load-url")
        .map(|v| host_ports(&mut r, "load-url", &v, &[';', ',']))
        .unwrap_or_default();
    let username = r.required_non_empty("username");
    let password = r.required("password");
    let label_prefix = r.string("sink.label-prefix").map(|s| s.value);
    if let Some(p) = &label_prefix
        && !p
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        r.error(
            "sink.label-prefix",
            format!("labels allow only letters, digits, `_` and `-`, got `{p}`"),
            None,
        );
    }
    let connect_ms = r.bounded::<u64>(
        "sink.connect.timeout-ms",
        30_000,
        Some(100),
        Some(60_000),
        "milliseconds",
    );
    let socket_ms = r.bounded::<i64>(
        "sink.socket.timeout-ms",
        -1,
        Some(-1),
        None,
        "milliseconds (-1 = none)",
    );
    let continue_ms = r.bounded::<u64>(
        "sink.wait-for-continue.timeout-ms",
        30_000,
        Some(3_000),
        Some(600_000),
        "milliseconds",
    );
    let buffer_flush_max_bytes = r.bounded::<usize>(
        "sink.buffer-flush.max-bytes",
        94_371_840,
        Some(67_108_864),
        Some(10_737_418_240),
        "a byte count",
    );
    let interval_ms = r.bounded::<u64>(
        "sink.buffer-flush.interval-ms",
        300_000,
        Some(1),
        Some(3_600_000),
        "milliseconds",
    );
    let _ = r.bounded::<u64>("sink.scan-frequency.ms", 50, Some(1), None, "milliseconds");
    let io_thread_count =
        r.bounded::<usize>("sink.io.thread-count", 2, Some(1), None, "an integer");
    let use_transaction_stream_load =
        r.bool("sink.at-least-once.use-transaction-stream-load", true);
    let _ = r.bounded::<u32>(
        "sink.metric.histogram-window-size",
        100,
        Some(1),
        None,
        "an integer",
    );
    let num_buckets =
        r.string("table.create.num-buckets")
            .and_then(|v| match v.value.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    r.error(
                        "table.create.num-buckets",
                        format!("expected a positive integer, got `{}`", v.value),
                        None,
                    );
                    None
                }
            });
    let schema_change_timeout =
        r.duration("table.schema-change.timeout", Duration::from_secs(1800));
    if schema_change_timeout.subsec_nanos() != 0 || schema_change_timeout.is_zero() {
        let raw = r
            .def()
            .options
            .get("table.schema-change.timeout")
            .map(|v| v.value.clone())
            .unwrap_or_default();
        r.error(
            "table.schema-change.timeout",
            format!("must be a whole, positive number of seconds, got `{raw}`"),
            None,
        );
    }
    let unicode_char_max_bytes =
        // Flink CDC defaults to 3 bytes per character, which truncates 4-byte utf8mb4 text
        // (emoji); cdcflow defaults to 4 so every MySQL VARCHAR(n) value fits.
        r.bounded::<u32>("unicode-char.max-bytes", 4, Some(1), Some(4), "an integer");
    // The StarRocks connector's own option: exactly-once runs Transaction Stream Load tied to
    // cdcflow's checkpoints (Flink CDC forces at-least-once).
    let exactly_once = match r.string("sink.semantic") {
        None => false,
        Some(v) => match v.value.trim().to_ascii_lowercase().as_str() {
            "at-least-once" => false,
            "exactly-once" => true,
            _ => {
                r.error(
                    "sink.semantic",
                    format!(
                        "expected `at-least-once` or `exactly-once`, got `{}`",
                        v.value
                    ),
                    None,
                );
                false
            }
        },
    };
    let ignored = flink_only(&r, STARROCKS_FLINK_ONLY);
    let properties = pairs(r.prefixed("sink.properties."), false);
    let table_create_properties = pairs(r.prefixed("table.create.properties."), true);
    r.finish(&[]);
    warn_ignored(def, &ignored);
    if diags.len() != before {
        return None;
    }
    Some(StarRocksSinkConfig {
        jdbc_url: jdbc?,
        load_url,
        username: username?.value,
        password: Secret::new(password?.value),
        label_prefix,
        connect_timeout: Duration::from_millis(connect_ms),
        socket_timeout: u64::try_from(socket_ms).ok().map(Duration::from_millis),
        wait_for_continue_timeout: Duration::from_millis(continue_ms),
        buffer_flush_max_bytes,
        buffer_flush_interval: Duration::from_millis(interval_ms),
        io_thread_count,
        use_transaction_stream_load,
        properties,
        num_buckets,
        table_create_properties,
        schema_change_timeout,
        unicode_char_max_bytes,
        exactly_once,
        ignored,
    })
}

/// A `host:port` list split at any of `seps` (`http://` / `https://` prefixes kept); each entry
/// must have a host and a port in 1..=65535. The first separator is the one hints suggest.
fn host_ports(
    r: &mut OptionReader<'_>,
    key: &'static str,
    v: &Spanned<String>,
    seps: &[char],
) -> Vec<String> {
    let raw = r.def().options.get(key).cloned();
    let sep = seps.first().copied().unwrap_or(',');
    let mut out = Vec::new();
    let mut offset = 0;
    for item in v.value.split(seps) {
        let entry = item.trim();
        let at = offset + item.chars().take_while(|c| c.is_whitespace()).count();
        offset += item.chars().count() + 1;
        if entry.is_empty() {
            continue;
        }
        let bare = entry
            .strip_prefix("http://")
            .or_else(|| entry.strip_prefix("https://"))
            .unwrap_or(entry);
        let ok = bare.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty()
                && !host.contains(|c: char| c.is_whitespace() || c == ',' || c == ';')
                && port.parse::<u16>().is_ok_and(|p| p >= 1)
        });
        if ok {
            out.push(entry.to_string());
        } else {
            let loc = raw.as_ref().map(|o| o.location_of(at)).unwrap_or(v.loc);
            r.error_at(
                key,
                loc,
                format!("expected `host:port`, got `{entry}`"),
                Some(format!("list several as `host1:port{sep}host2:port`")),
            );
        }
    }
    if v.value.trim().is_empty() {
        r.error_at(key, v.loc, "expected at least one `host:port`".into(), None);
    }
    out
}

/// A `jdbc:mysql://host:port[,host2:port][/db]` URL.
fn jdbc_url(r: &mut OptionReader<'_>, key: &'static str, v: &Spanned<String>) -> String {
    let url = v.value.trim();
    if url
        .strip_prefix("jdbc:mysql://")
        .is_none_or(|rest| rest.is_empty())
    {
        r.error_at(
            key,
            v.loc,
            format!("expected `jdbc:mysql://host:port`, got `{url}`"),
            None,
        );
    }
    url.to_string()
}

/// Prefixed passthrough options as `(key, value)` pairs, keys optionally lower-cased.
fn pairs(
    map: std::collections::BTreeMap<String, Spanned<String>>,
    lower: bool,
) -> Vec<(String, String)> {
    map.into_iter()
        .map(|(k, v)| (if lower { k.to_ascii_lowercase() } else { k }, v.value))
        .collect()
}

/// Which of the Flink-only options are set.
fn flink_only(r: &OptionReader<'_>, keys: &[&str]) -> Vec<String> {
    keys.iter()
        .filter(|k| r.def().options.contains_key(**k))
        .map(|k| k.to_string())
        .collect()
}

/// Logs once per accepted-but-ignored option.
fn warn_ignored(def: &ComponentDef, ignored: &[String]) {
    for key in ignored {
        let loc = def.options.get(key).map(|v| v.key_loc).unwrap_or(def.loc);
        tracing::warn!(file = %def.file, location = %loc, option = %key, sink = %def.kind.value, "Sink option has no effect in cdcflow and is ignored.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdcflow_engine::config::{PipelineDef, load_str_with_env};

    fn def(sink: &str) -> PipelineDef {
        let text = format!("source:\n  type: mysql\nsink:\n{sink}");
        load_str_with_env(&text, "s.yaml", &|_| None).expect("the file itself must load")
    }

    fn doris(options: &str) -> Result<DorisSinkConfig, Vec<String>> {
        let d = def(&format!("  type: doris\n{options}"));
        let mut diags = Diagnostics::default();
        match validate_doris(&d.sink, &d.pipeline, &mut diags) {
            Some(c) if diags.is_empty() => Ok(c),
            _ => Err(diags.lines()),
        }
    }

    fn starrocks(options: &str) -> Result<StarRocksSinkConfig, Vec<String>> {
        let d = def(&format!("  type: starrocks\n{options}"));
        let mut diags = Diagnostics::default();
        match validate_starrocks(&d.sink, &d.pipeline, &mut diags) {
            Some(c) if diags.is_empty() => Ok(c),
            _ => Err(diags.lines()),
        }
    }

    #[test]
    fn doris_defaults_are_the_effective_ones() {
        let c = doris("  fenodes: fe1:8030, fe2:8030\n  username: root\n").expect("valid");
        assert_eq!(c.fenodes, ["fe1:8030", "fe2:8030"]);
        assert_eq!(c.password.expose(), "");
        assert!(
            c.batch_mode
                && !c.enable_2pc
                && c.enable_delete
                && c.ignore_update_before
                && !c.auto_redirect
        );
        assert_eq!(
            (c.buffer_flush_max_rows, c.buffer_flush_max_bytes),
            (500_000, 104_857_600),
            "connector builder defaults, not CDC docs"
        );
        assert_eq!((c.max_retries, c.flush_queue_size), (3, 2));
        assert_eq!(c.buffer_flush_interval, Duration::from_secs(10));
        assert_eq!(c.charset_encoding, "UTF-8");
        let c = doris("  fenodes: fe:8030\n  username: root\n  sink.enable.batch-mode: false\n")
            .expect("valid");
        assert!(c.enable_2pc, "streaming writer defaults to 2PC");
    }

    #[test]
    fn doris_passthroughs_and_ignored_options() {
        let c = doris(
            "  fenodes: fe:8030\n  username: root\n  sink.properties.strict_mode: true\n  table.create.properties.replication_num: 1\n  table.create.auto-partition.properties.default-partition-unit: DAY\n  sink.use-cache: true\n  sink.enable-2pc: true\n",
        )
        .expect("valid");
        assert_eq!(
            c.properties,
            [("strict_mode".to_string(), "true".to_string())]
        );
        assert_eq!(
            c.table_create_properties,
            [("replication_num".to_string(), "1".to_string())]
        );
        assert_eq!(
            c.auto_partition_properties,
            [("default-partition-unit".to_string(), "DAY".to_string())]
        );
        assert_eq!(c.ignored, ["sink.use-cache", "sink.enable-2pc"]);
        assert!(!c.enable_2pc, "the batch writer never uses 2PC");
    }

    #[test]
    fn doris_errors_are_all_reported() {
        let err = doris("  fenodes: fe1:8030,fe2\n  jdbc-url: mysql://fe:9030\n  sink.max-retries: -1\n  sink.buffer-flush.interval: 0s\n  sink.label-prefix: a b\n  sink.enable-deletes: true\n").unwrap_err();
        assert_eq!(
            err,
            vec![
                "s.yaml:5:21: sink.fenodes: expected `host:port`, got `fe2` (hint: list several as `host1:port,host2:port`)",
                "s.yaml:6:13: sink.jdbc-url: expected `jdbc:mysql://host:port`, got `mysql://fe:9030`",
                "s.yaml:3:1: sink.username: missing required option `username`",
                "s.yaml:9:22: sink.sink.label-prefix: labels allow only letters, digits, `_` and `-`, got `a b`",
                "s.yaml:7:21: sink.sink.max-retries: expected a non-negative integer, got `-1`",
                "s.yaml:8:31: sink.sink.buffer-flush.interval: must be greater than zero",
                "s.yaml:10:3: sink.sink.enable-deletes: unknown option `sink.enable-deletes` for sink `doris` (hint: did you mean `sink.enable-delete`?)",
            ]
        );
    }

    #[test]
    fn starrocks_defaults_and_ranges() {
        let base = "  jdbc-url: jdbc:mysql://fe:9030\n  load-url: fe1:8030;fe2:8030\n  username: root\n  password: \"\"\n";
        let c = starrocks(base).expect("valid");
        assert_eq!(c.load_url, ["fe1:8030", "fe2:8030"]);
        let commas = base.replace("fe1:8030;fe2:8030", "fe1:8030, fe2:8030");
        assert_eq!(
            starrocks(&commas).expect("valid").load_url,
            ["fe1:8030", "fe2:8030"],
            "`,` also separates"
        );
        assert_eq!(
            (c.connect_timeout, c.socket_timeout),
            (Duration::from_secs(30), None)
        );
        assert_eq!(
            c.buffer_flush_max_bytes, 94_371_840,
            "connector default, not CDC docs"
        );
        assert_eq!(
            (c.buffer_flush_interval, c.io_thread_count),
            (Duration::from_secs(300), 2)
        );
        assert_eq!(
            (c.schema_change_timeout, c.unicode_char_max_bytes),
            (Duration::from_secs(1800), 4),
            "4 bytes per character by default so utf8mb4 text always fits"
        );
        assert!(c.use_transaction_stream_load);
        assert!(
            !c.exactly_once,
            "at-least-once unless sink.semantic says otherwise"
        );
        let c = starrocks(&format!("{base}  table.create.properties.Replication_Num: 1\n  table.create.num-buckets: 8\n  sink.socket.timeout-ms: 5000\n")).expect("valid");
        assert_eq!(
            c.table_create_properties,
            [("replication_num".to_string(), "1".to_string())]
        );
        assert_eq!(
            (c.num_buckets, c.socket_timeout),
            (Some(8), Some(Duration::from_millis(5000)))
        );
        let err = starrocks(&format!(
            "{base}  sink.connect.timeout-ms: 50\n  sink.wait-for-continue.timeout-ms: 1000\n  sink.buffer-flush.max-bytes: 1024\n  table.schema-change.timeout: 1500ms\n  unicode-char.max-bytes: 5\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            vec![
                "s.yaml:9:28: sink.sink.connect.timeout-ms: must be between 100 and 60000, got `50`",
                "s.yaml:10:38: sink.sink.wait-for-continue.timeout-ms: must be between 3000 and 600000, got `1000`",
                "s.yaml:11:32: sink.sink.buffer-flush.max-bytes: must be between 67108864 and 10737418240, got `1024`",
                "s.yaml:12:32: sink.table.schema-change.timeout: must be a whole, positive number of seconds, got `1500ms`",
                "s.yaml:13:27: sink.unicode-char.max-bytes: must be between 1 and 4, got `5`",
            ]
        );
        assert_eq!(
            starrocks("  load-url: fe:8030\n").unwrap_err(),
            vec![
                "s.yaml:3:1: sink.jdbc-url: missing required option `jdbc-url`",
                "s.yaml:3:1: sink.username: missing required option `username`",
                "s.yaml:3:1: sink.password: missing required option `password`",
            ]
        );
    }
}
