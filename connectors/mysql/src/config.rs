//! `source: {type: mysql}` options, Flink CDC names and effective defaults
//! (flink-cdc-pipeline.md §2.2), validated offline into [`MySqlSourceConfig`].
//!
//! Validation is pure (no connection): every problem is reported with the option's position, and
//! the table selectors are compiled here so a bad regex is caught before anything connects.

use std::time::Duration;

use cdcflow_engine::config::{
    ComponentDef, Diagnostics, Location, OptionReader, PipelineOptions, RuntimeMode, Secret,
    Spanned, did_you_mean, is_valid_time_zone,
};

/// `scan.startup.mode` and its offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupMode {
    /// Snapshot every table, then follow the binlog (default).
    Initial,
    /// Snapshot every table consistently, then stop (bounded).
    Snapshot,
    /// Binlog from its current end.
    LatestOffset,
    /// Binlog from the oldest available file.
    EarliestOffset,
    /// Binlog from a file/position or a GTID set.
    SpecificOffset {
        /// Binlog file name.
        file: Option<String>,
        /// Position in that file.
        pos: Option<u64>,
        /// GTID set (MySQL `uuid:1-5` or MariaDB `0-1-100`); wins over file/pos.
        gtid_set: Option<String>,
        /// Events to skip after the offset.
        skip_events: u64,
        /// Rows to skip after the offset.
        skip_rows: u64,
    },
    /// The first binlog event at or after this time (epoch ms).
    Timestamp {
        /// Epoch milliseconds.
        millis: i64,
    },
}

/// A table selector from `tables` / `tables.exclude` (and transform `source-table`): Flink CDC
/// syntax compiled to case-insensitive full-match regexes, one per id part.
#[derive(Debug, Clone)]
pub struct TableSelector {
    /// The selector as written (one comma-separated entry), located at its first character.
    pub text: Spanned<String>,
    /// Namespace part (3-part selectors only; MySQL ids have none, so these never match MySQL).
    pub namespace: Option<regex::Regex>,
    /// Database part: case-insensitive full match (matches any database for 1-part selectors).
    pub db: regex::Regex,
    /// Table part: case-insensitive full match.
    pub table: regex::Regex,
}

impl TableSelector {
    /// Whether the MySQL table `db.table` is selected.
    pub fn matches(&self, db: &str, table: &str) -> bool {
        self.namespace.is_none() && self.db.is_match(db) && self.table.is_match(table)
    }
}

/// Whether any selector of the list selects `db.table`.
pub fn any_matches(selectors: &[TableSelector], db: &str, table: &str) -> bool {
    selectors.iter().any(|s| s.matches(db, table))
}

/// Validated MySQL source settings. Field defaults are Flink CDC's effective ones.
#[derive(Debug, Clone)]
pub struct MySqlSourceConfig {
    /// `hostname`.
    pub hostname: String,
    /// `port` (3306).
    pub port: u16,
    /// `username`.
    pub username: String,
    /// `password`.
    pub password: Secret,
    /// `tables`: captured tables.
    pub tables: Vec<TableSelector>,
    /// `tables.exclude`.
    pub tables_exclude: Vec<TableSelector>,
    /// `schema-change.enabled` (true).
    pub schema_change_enabled: bool,
    /// `server-id`: first..=last of the range (a single id gives first == last). Random 5400-6400 if unset.
    pub server_id: (u32, u32),
    /// `server-time-zone`: zone used to interpret TIMESTAMP values; `None` = the server's own.
    pub server_time_zone: Option<String>,
    /// `scan.incremental.snapshot.chunk.size` (8096).
    pub chunk_size: usize,
    /// `scan.snapshot.fetch.size` (1024).
    pub fetch_size: usize,
    /// `scan.startup.mode` (initial).
    pub startup: StartupMode,
    /// `connect.timeout` (30s).
    pub connect_timeout: Duration,
    /// `connect.max-retries` (3).
    pub connect_max_retries: u32,
    /// `connection.pool.size` (20).
    pub pool_size: usize,
    /// `heartbeat.interval` (30s; zero disables).
    pub heartbeat_interval: Duration,
    /// `scan.incremental.snapshot.chunk.key-column`: (table selector, column) pairs.
    pub chunk_key_columns: Vec<(TableSelector, String)>,
    /// `chunk-meta.group.size` (1000).
    pub chunk_meta_group_size: usize,
    /// `chunk-key.even-distribution.factor.upper-bound` (1000.0).
    pub even_distribution_factor_upper: f64,
    /// `chunk-key.even-distribution.factor.lower-bound` (0.05).
    pub even_distribution_factor_lower: f64,
    /// `scan.incremental.close-idle-reader.enabled` (false).
    pub close_idle_reader: bool,
    /// `scan.newly-added-table.enabled` (false): snapshot tables newly matched on restart.
    pub newly_added_table: bool,
    /// `scan.binlog.newly-added-table.enabled` (false): follow new tables from binlog only.
    pub binlog_newly_added_table: bool,
    /// `scan.parse.online.schema.changes.enabled` (false): gh-ost / pt-osc shadow tables.
    pub parse_online_schema_changes: bool,
    /// `include-comments.enabled` (false).
    pub include_comments: bool,
    /// `treat-tinyint1-as-boolean.enabled` (true).
    pub tinyint1_as_boolean: bool,
    /// `use.legacy.json.format` (true): JSON text without spaces after `:` and `,`.
    pub use_legacy_json_format: bool,
    /// `scan.incremental.snapshot.unbounded-chunk-first.enabled` (false).
    pub unbounded_chunk_first: bool,
    /// `scan.incremental.snapshot.backfill.skip` (false).
    pub backfill_skip: bool,
    /// `metadata.list`: only `op_ts` is allowed.
    pub metadata_list: Vec<String>,
    /// `jdbc.properties.*` passthrough (accepted; only a few apply to mysql_async).
    pub jdbc_properties: Vec<(String, String)>,
    /// `debezium.*` passthrough (accepted for compatibility; cdcflow reads the binlog itself).
    pub debezium_properties: Vec<(String, String)>,
}

/// Startup modes as written in YAML.
const STARTUP_MODES: &[&str] = &[
    "initial",
    "snapshot",
    "latest-offset",
    "earliest-offset",
    "specific-offset",
    "timestamp",
];

/// Validates a `source: {type: mysql}` block against §2.2; every problem goes to `diags`.
/// `None` when anything is wrong.
pub fn validate(
    def: &ComponentDef,
    pipeline: &PipelineOptions,
    diags: &mut Diagnostics,
) -> Option<MySqlSourceConfig> {
    let before = diags.len();
    let mut r = OptionReader::new(def, diags);
    let hostname = r.required_non_empty("hostname");
    let port = r.bounded::<u32>("port", 3306, Some(1), Some(65535), "a port number");
    let username = r.required_non_empty("username");
    let password = r.required("password");
    let tables = selectors_option(&mut r, "tables", true);
    let tables_exclude = selectors_option(&mut r, "tables.exclude", false);
    let schema_change_enabled = r.bool("schema-change.enabled", true);
    let server_id = server_id(&mut r, pipeline.parallelism);
    let server_time_zone = r.string("server-time-zone").and_then(|z| {
        let zone = z.value.trim().to_string();
        if is_valid_time_zone(&zone) {
            Some(zone)
        } else {
            r.error_at("server-time-zone", z.loc, format!("unknown time zone `{}`", z.value), Some(
                "use an IANA name such as `UTC` or `Asia/Shanghai`, or an offset such as `+08:00`".into(),
            ));
            None
        }
    });
    let chunk_size = r.bounded::<usize>(
        "scan.incremental.snapshot.chunk.size",
        8096,
        Some(2),
        None,
        "an integer",
    );
    let fetch_size = r.bounded::<usize>(
        "scan.snapshot.fetch.size",
        1024,
        Some(2),
        None,
        "an integer",
    );
    let startup = startup_mode(&mut r, pipeline);
    let connect_timeout = r.duration("connect.timeout", Duration::from_secs(30));
    if connect_timeout < Duration::from_millis(250) {
        r.error(
            "connect.timeout",
            format!(
                "must be at least 250ms, got `{}`",
                raw_value(&r, "connect.timeout")
            ),
            None,
        );
    }
    let connect_max_retries = r.bounded::<u32>(
        "connect.max-retries",
        3,
        None,
        None,
        "a non-negative integer",
    );
    let pool_size = r.bounded::<usize>("connection.pool.size", 20, Some(1), None, "an integer");
    let heartbeat_interval = r.duration("heartbeat.interval", Duration::from_secs(30));
    let chunk_key_columns = chunk_key_columns(&mut r);
    let chunk_meta_group_size =
        r.bounded::<usize>("chunk-meta.group.size", 1000, Some(2), None, "an integer");
    let upper_key = if r
        .def()
        .options
        .contains_key("chunk-key.even-distribution.factor.upper-bound")
    {
        "chunk-key.even-distribution.factor.upper-bound"
    } else {
        "split-key.even-distribution.factor.upper-bound"
    };
    let lower_key = if r
        .def()
        .options
        .contains_key("chunk-key.even-distribution.factor.lower-bound")
    {
        "chunk-key.even-distribution.factor.lower-bound"
    } else {
        "split-key.even-distribution.factor.lower-bound"
    };
    // Read both spellings so the fallback keys are known options too.
    for k in [
        "chunk-key.even-distribution.factor.upper-bound",
        "split-key.even-distribution.factor.upper-bound",
    ] {
        if k != upper_key {
            let _ = r.raw(k);
        }
    }
    for k in [
        "chunk-key.even-distribution.factor.lower-bound",
        "split-key.even-distribution.factor.lower-bound",
    ] {
        if k != lower_key {
            let _ = r.raw(k);
        }
    }
    let even_distribution_factor_upper =
        r.bounded::<f64>(upper_key, 1000.0, Some(1.0), None, "a number");
    let even_distribution_factor_lower =
        r.bounded::<f64>(lower_key, 0.05, Some(0.0), Some(1.0), "a number");
    let close_idle_reader = r.bool("scan.incremental.close-idle-reader.enabled", false);
    let newly_added_table = r.bool("scan.newly-added-table.enabled", false);
    let binlog_newly_added_table = r.bool("scan.binlog.newly-added-table.enabled", false);
    if newly_added_table && binlog_newly_added_table {
        r.error(
            "scan.binlog.newly-added-table.enabled",
            "cannot be combined with `scan.newly-added-table.enabled`".into(),
            Some(
                "pick one: snapshot new tables on restart, or follow them from binlog only".into(),
            ),
        );
    }
    let parse_online_schema_changes = r.bool("scan.parse.online.schema.changes.enabled", false);
    let include_comments = r.bool("include-comments.enabled", false);
    let tinyint1_as_boolean = r.bool("treat-tinyint1-as-boolean.enabled", true);
    let use_legacy_json_format = r.bool("use.legacy.json.format", true);
    let unbounded_chunk_first = r.bool(
        "scan.incremental.snapshot.unbounded-chunk-first.enabled",
        false,
    );
    let backfill_skip = r.bool("scan.incremental.snapshot.backfill.skip", false);
    let metadata_list = metadata_list(&mut r);
    let jdbc_properties = r
        .prefixed("jdbc.properties.")
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect();
    let debezium_properties = r
        .prefixed("debezium.")
        .into_iter()
        .map(|(k, v)| (k, v.value))
        .collect();
    r.finish(&[]);
    if diags.len() != before {
        return None;
    }
    Some(MySqlSourceConfig {
        hostname: hostname?.value,
        port: u16::try_from(port).ok()?,
        username: username?.value,
        password: Secret::new(password?.value),
        tables,
        tables_exclude,
        schema_change_enabled,
        server_id,
        server_time_zone,
        chunk_size,
        fetch_size,
        startup,
        connect_timeout,
        connect_max_retries,
        pool_size,
        heartbeat_interval,
        chunk_key_columns,
        chunk_meta_group_size,
        even_distribution_factor_upper,
        even_distribution_factor_lower,
        close_idle_reader,
        newly_added_table,
        binlog_newly_added_table,
        parse_online_schema_changes,
        include_comments,
        tinyint1_as_boolean,
        use_legacy_json_format,
        unbounded_chunk_first,
        backfill_skip,
        metadata_list,
        jdbc_properties,
        debezium_properties,
    })
}

/// The raw text of an option, for messages.
fn raw_value(r: &OptionReader<'_>, key: &str) -> String {
    r.def()
        .options
        .get(key)
        .map(|v| v.value.clone())
        .unwrap_or_default()
}

/// `tables` / `tables.exclude`: compiled selectors; MySQL ids have two parts, so 3-part selectors
/// are rejected here rather than silently matching nothing.
fn selectors_option(
    r: &mut OptionReader<'_>,
    key: &'static str,
    required: bool,
) -> Vec<TableSelector> {
    let v = if required {
        r.required(key).map(|_| ())
    } else {
        r.string(key).map(|_| ())
    };
    let Some(raw) = v.and_then(|_| r.raw(key)) else {
        return Vec::new();
    };
    let (list, errors) = parse_selectors(&raw.value, &|i| raw.location_of(i));
    let mut problems: Vec<(Location, String, Option<String>)> =
        errors.into_iter().map(|(l, m)| (l, m, None)).collect();
    let mut out = Vec::with_capacity(list.len());
    for s in list {
        if s.namespace.is_some() {
            let message = format!(
                "`{}` has three parts, but MySQL tables are `db.table`",
                s.text.value
            );
            problems.push((
                s.text.loc,
                message,
                Some("write `\\.` for a regex dot inside a name".into()),
            ));
        } else {
            out.push(s);
        }
    }
    problems.sort_by_key(|p| p.0);
    for (loc, message, hint) in problems {
        r.error_at(key, loc, message, hint);
    }
    out
}

/// Parses a comma-separated selector list (`db.table` patterns, §2.2 syntax) into compiled
/// selectors. Locations are positions inside `text` as if it were line 1.
///
/// # Errors
/// The first problem found, with its character position, e.g.
/// ``invalid regex `*` in `adb.*` at character 5: repetition operator missing expression``.
pub fn table_selectors(text: &str) -> Result<Vec<TableSelector>, String> {
    table_selectors_located(text, &|i| Location {
        line: 1,
        column: i + 1,
    })
    .map_err(|errors| {
        let (loc, message) = errors.into_iter().next().unwrap_or_default();
        format!("{message} (at character {})", loc.column)
    })
}

/// Like [`table_selectors`], mapping each character offset of `text` to a file location with
/// `locate` (e.g. [`ExprText::location_of`](cdcflow_engine::config::ExprText::location_of)).
///
/// # Errors
/// Every bad entry, each with its location and message.
pub fn table_selectors_located(
    text: &str,
    locate: &dyn Fn(usize) -> Location,
) -> Result<Vec<TableSelector>, Vec<(Location, String)>> {
    let (list, errors) = parse_selectors(text, locate);
    if errors.is_empty() {
        Ok(list)
    } else {
        Err(errors)
    }
}

/// The selectors that compiled, and a (location, message) for every entry that did not.
fn parse_selectors(
    text: &str,
    locate: &dyn Fn(usize) -> Location,
) -> (Vec<TableSelector>, Vec<(Location, String)>) {
    let chars: Vec<char> = text.chars().collect();
    let (mut out, mut errors) = (Vec::new(), Vec::new());
    // Matches any database for 1-part selectors; a constant pattern, so compiling cannot fail.
    let any_name = regex::Regex::new("(?s)^.*$").expect("constant regex");
    let entries = split_unescaped(&chars, 0, chars.len(), ',');
    if entries
        .iter()
        .all(|&(s, e)| chars[s..e].iter().all(|c| c.is_whitespace()))
    {
        return (
            Vec::new(),
            vec![(
                locate(0),
                "expected at least one table selector such as `db.table`".to_string(),
            )],
        );
    }
    for (mut s, mut e) in entries {
        while s < e && chars[s].is_whitespace() {
            s += 1;
        }
        while e > s && chars[e - 1].is_whitespace() {
            e -= 1;
        }
        let entry: String = chars[s..e].iter().collect();
        if entry.is_empty() {
            errors.push((locate(s), "empty entry in the table list".to_string()));
            continue;
        }
        let parts = split_unescaped(&chars, s, e, '.');
        if parts.len() > 3 {
            errors.push((locate(s), format!("`{entry}` has {} parts; a selector is `table`, `db.table` or `namespace.db.table`", parts.len())));
            continue;
        }
        let mut regexes = Vec::with_capacity(3);
        for &(ps, pe) in &parts {
            let part: String = chars[ps..pe].iter().collect();
            if part.is_empty() {
                errors.push((
                    locate(ps.min(e.saturating_sub(1))),
                    format!("empty name in `{entry}`"),
                ));
                continue;
            }
            match part_regex(&chars[ps..pe]) {
                Ok(re) => regexes.push(re),
                Err(m) => errors.push((
                    locate(ps),
                    format!("invalid regex `{part}` in `{entry}`: {m}"),
                )),
            }
        }
        if regexes.len() != parts.len() {
            continue;
        }
        let any = || any_name.clone();
        let mut it = regexes.into_iter();
        let (namespace, db, table) = match parts.len() {
            1 => (None, any(), it.next().unwrap_or_else(any)),
            2 => (
                None,
                it.next().unwrap_or_else(any),
                it.next().unwrap_or_else(any),
            ),
            _ => (
                it.next(),
                it.next().unwrap_or_else(any),
                it.next().unwrap_or_else(any),
            ),
        };
        out.push(TableSelector {
            text: Spanned::new(entry, locate(s)),
            namespace,
            db,
            table,
        });
    }
    (out, errors)
}

/// Ranges of `chars[from..to]` split at `sep` when not escaped by a backslash.
fn split_unescaped(chars: &[char], from: usize, to: usize, sep: char) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let (mut start, mut i) = (from, from);
    while i < to {
        match chars[i] {
            '\\' => i += 2,
            c if c == sep => {
                out.push((start, i));
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    out.push((start, to.max(start)));
    out
}

/// One name part as a case-insensitive full-match regex: `\.` is the regex "any char", `\,` a
/// literal comma; everything else is regex syntax.
fn part_regex(part: &[char]) -> Result<regex::Regex, String> {
    let mut re = String::from("(?i)^(?:");
    let mut i = 0;
    while i < part.len() {
        match (part[i], part.get(i + 1)) {
            ('\\', Some('.')) => {
                re.push('.');
                i += 2;
            }
            ('\\', Some(',')) => {
                re.push(',');
                i += 2;
            }
            ('\\', Some(c)) => {
                re.push('\\');
                re.push(*c);
                i += 2;
            }
            (c, _) => {
                re.push(c);
                i += 1;
            }
        }
    }
    re.push_str(")$");
    regex::Regex::new(&re).map_err(|e| {
        let text = e.to_string();
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("error: ").map(str::to_string))
            .unwrap_or_else(|| text.lines().last().unwrap_or_default().trim().to_string())
    })
}

/// `server-id`: one id or `first-last`; the range must hold at least `parallelism` ids. Unset:
/// a random range inside 5400-6400, as Flink CDC does.
fn server_id(r: &mut OptionReader<'_>, parallelism: usize) -> (u32, u32) {
    let Some(v) = r.string("server-id") else {
        let width = u32::try_from(parallelism.max(1))
            .unwrap_or(u32::MAX)
            .saturating_sub(1);
        let span = 1000u32.saturating_sub(width);
        let first = 5400 + random_below(span + 1);
        return (first, first.saturating_add(width));
    };
    let text = v.value.trim();
    let parsed = match text.split_once('-') {
        Some((a, b)) => a
            .trim()
            .parse::<u32>()
            .ok()
            .zip(b.trim().parse::<u32>().ok()),
        None => text.parse::<u32>().ok().map(|n| (n, n)),
    };
    let Some((first, last)) = parsed else {
        r.error_at(
            "server-id",
            v.loc,
            format!(
                "expected a server id such as `5400` or a range such as `5400-5404`, got `{}`",
                v.value
            ),
            None,
        );
        return (5400, 5400);
    };
    if first == 0 {
        r.error_at(
            "server-id",
            v.loc,
            "server ids start at 1, got `0`".into(),
            None,
        );
    } else if first > last {
        r.error_at(
            "server-id",
            v.loc,
            format!("range `{text}` ends before it starts"),
            None,
        );
    } else {
        let count = u64::from(last - first) + 1;
        if count < parallelism as u64 {
            let suggestion = format!("{first}-{}", u64::from(first) + parallelism as u64 - 1);
            r.error_at(
                "server-id",
                v.loc,
                format!(
                    "`{text}` gives {count} server id(s) but pipeline.parallelism is {parallelism}"
                ),
                Some(format!(
                    "each parallel reader needs its own id; use a range such as `{suggestion}`"
                )),
            );
        }
    }
    (first, last)
}

/// A random number in `0..n` (`n` > 0) from std's per-process hasher seed: a server id only has
/// to differ between concurrent readers, so no RNG dependency is needed.
fn random_below(n: u32) -> u32 {
    use std::hash::BuildHasher;
    let seed =
        std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    u32::try_from(seed % u64::from(n.max(1))).unwrap_or(0)
}

/// `scan.startup.mode` with the offsets its mode needs; BATCH pipelines need `snapshot`.
fn startup_mode(r: &mut OptionReader<'_>, pipeline: &PipelineOptions) -> StartupMode {
    let file = r
        .string("scan.startup.specific-offset.file")
        .map(|s| s.value);
    let pos = r.parse_opt::<u64>(
        "scan.startup.specific-offset.pos",
        "a binlog position (non-negative integer)",
    );
    let gtid_set = r
        .string("scan.startup.specific-offset.gtid-set")
        .map(|s| s.value);
    let skip_events = r.bounded::<u64>(
        "scan.startup.specific-offset.skip-events",
        0,
        None,
        None,
        "a non-negative integer",
    );
    let skip_rows = r.bounded::<u64>(
        "scan.startup.specific-offset.skip-rows",
        0,
        None,
        None,
        "a non-negative integer",
    );
    let millis = r.parse_opt::<i64>("scan.startup.timestamp-millis", "epoch milliseconds");
    let mode = r.string("scan.startup.mode");
    let name = mode
        .as_ref()
        .map(|m| m.value.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "initial".into());
    let startup = match name.as_str() {
        "initial" => StartupMode::Initial,
        "snapshot" => StartupMode::Snapshot,
        "latest-offset" => StartupMode::LatestOffset,
        "earliest-offset" => StartupMode::EarliestOffset,
        "specific-offset" => {
            if gtid_set.is_none() && (file.is_none() || pos.is_none()) {
                r.error(
                    "scan.startup.mode",
                    "`specific-offset` needs `scan.startup.specific-offset.gtid-set`, or both `scan.startup.specific-offset.file` and `scan.startup.specific-offset.pos`".into(),
                    None,
                );
            }
            StartupMode::SpecificOffset {
                file,
                pos,
                gtid_set,
                skip_events,
                skip_rows,
            }
        }
        "timestamp" => match millis {
            Some(millis) if millis >= 0 => StartupMode::Timestamp { millis },
            Some(_) => {
                r.error(
                    "scan.startup.timestamp-millis",
                    "must not be negative".into(),
                    None,
                );
                StartupMode::Initial
            }
            None => {
                r.error(
                    "scan.startup.mode",
                    "`timestamp` needs `scan.startup.timestamp-millis`".into(),
                    None,
                );
                StartupMode::Initial
            }
        },
        other => {
            let hint = did_you_mean(other, STARTUP_MODES.iter().copied())
                .map(|m| format!("did you mean `{m}`?"));
            let raw = mode.as_ref().map(|m| m.value.clone()).unwrap_or_default();
            r.error(
                "scan.startup.mode",
                format!("expected one of {}, got `{raw}`", STARTUP_MODES.join(", ")),
                hint,
            );
            StartupMode::Initial
        }
    };
    if pipeline.runtime_mode == RuntimeMode::Batch
        && startup != StartupMode::Snapshot
        && STARTUP_MODES.contains(&name.as_str())
    {
        r.error(
            "scan.startup.mode",
            format!(
                "`execution.runtime-mode: BATCH` needs `scan.startup.mode: snapshot`, got `{name}`"
            ),
            Some("a bounded pipeline reads a consistent snapshot and stops".into()),
        );
    }
    startup
}

/// `scan.incremental.snapshot.chunk.key-column`: `tableSelector:column;…` pairs.
fn chunk_key_columns(r: &mut OptionReader<'_>) -> Vec<(TableSelector, String)> {
    const KEY: &str = "scan.incremental.snapshot.chunk.key-column";
    let Some(raw) = r.raw(KEY) else {
        return Vec::new();
    };
    let chars: Vec<char> = raw.value.chars().collect();
    let mut out = Vec::new();
    for (s, e) in split_unescaped(&chars, 0, chars.len(), ';') {
        let pair: String = chars[s..e].iter().collect();
        if pair.trim().is_empty() {
            continue;
        }
        let Some(colon) = pair.rfind(':').map(|b| pair[..b].chars().count()) else {
            r.error_at(
                KEY,
                raw.location_of(s),
                format!(
                    "expected `table:column` pairs separated by `;`, got `{}`",
                    pair.trim()
                ),
                None,
            );
            continue;
        };
        let column: String = chars[s + colon + 1..e]
            .iter()
            .collect::<String>()
            .trim()
            .to_string();
        if column.is_empty() {
            r.error_at(
                KEY,
                raw.location_of(s + colon),
                format!("missing column name in `{}`", pair.trim()),
                None,
            );
            continue;
        }
        let table: String = chars[s..s + colon].iter().collect();
        match table_selectors_located(&table, &|i| raw.location_of(s + i)) {
            Ok(selectors) => out.extend(selectors.into_iter().map(|sel| (sel, column.clone()))),
            Err(errors) => {
                for (loc, m) in errors {
                    r.error_at(KEY, loc, m, None);
                }
            }
        }
    }
    out
}

/// `metadata.list`: the metadata columns offered to transforms; MySQL has only `op_ts`.
fn metadata_list(r: &mut OptionReader<'_>) -> Vec<String> {
    let Some(raw) = r.raw("metadata.list") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut offset = 0;
    for item in raw.value.split(',') {
        let name = item.trim();
        let at = offset + item.chars().take_while(|c| c.is_whitespace()).count();
        offset += item.chars().count() + 1;
        if name.is_empty() {
            continue;
        }
        if name == "op_ts" {
            out.push(name.to_string());
        } else {
            r.error_at(
                "metadata.list",
                raw.location_of(at),
                format!("unknown metadata column `{name}`"),
                Some("the MySQL source offers only `op_ts`".into()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdcflow_engine::config::{PipelineDef, load_str_with_env};

    fn def(options: &str, pipeline: &str) -> PipelineDef {
        let text = format!("source:\n  type: mysql\n{options}sink:\n  type: values\n{pipeline}");
        load_str_with_env(&text, "m.yaml", &|_| None).expect("the file itself must load")
    }

    const REQUIRED: &str = "  hostname: db\n  username: u\n  password: p\n  tables: app.\\.*\n";

    fn check(options: &str, pipeline: &str) -> Result<MySqlSourceConfig, Vec<String>> {
        let d = def(options, pipeline);
        let mut diags = Diagnostics::default();
        let cfg = validate(&d.source, &d.pipeline, &mut diags);
        match cfg {
            Some(c) if diags.is_empty() => Ok(c),
            _ => Err(diags.lines()),
        }
    }

    #[test]
    fn defaults_are_flink_effective_defaults() {
        let c = check(REQUIRED, "").expect("valid");
        assert_eq!(
            (c.hostname.as_str(), c.port, c.username.as_str()),
            ("db", 3306, "u")
        );
        assert_eq!(c.password.expose(), "p");
        assert_eq!(
            (
                c.chunk_size,
                c.fetch_size,
                c.pool_size,
                c.connect_max_retries
            ),
            (8096, 1024, 20, 3)
        );
        assert_eq!(
            (c.connect_timeout, c.heartbeat_interval),
            (Duration::from_secs(30), Duration::from_secs(30))
        );
        assert_eq!(c.startup, StartupMode::Initial);
        assert!(c.schema_change_enabled && c.tinyint1_as_boolean && c.use_legacy_json_format);
        assert!(!c.backfill_skip && !c.newly_added_table && !c.include_comments);
        assert_eq!(
            (
                c.even_distribution_factor_upper,
                c.even_distribution_factor_lower
            ),
            (1000.0, 0.05)
        );
        assert!((5400..=6400).contains(&c.server_id.0) && c.server_id.0 == c.server_id.1);
        assert!(c.tables[0].matches("APP", "Orders") && !c.tables[0].matches("app2", "orders"));
    }

    #[test]
    fn missing_required_options_are_all_reported() {
        assert_eq!(
            check("", "").unwrap_err(),
            vec![
                "m.yaml:1:1: source.hostname: missing required option `hostname`",
                "m.yaml:1:1: source.username: missing required option `username`",
                "m.yaml:1:1: source.password: missing required option `password`",
                "m.yaml:1:1: source.tables: missing required option `tables`",
            ]
        );
    }

    #[test]
    fn ranges_types_and_typos() {
        let opts = format!(
            "{REQUIRED}  port: 70000\n  scan.incremental.snapshot.chunk.size: 1\n  connect.timeout: 100ms\n  heartbeat.interval: often\n  hostnme: x\n  metadata.list: op_ts, op_type\n"
        );
        assert_eq!(
            check(&opts, "").unwrap_err(),
            vec![
                "m.yaml:7:9: source.port: must be between 1 and 65535, got `70000`",
                "m.yaml:8:41: source.scan.incremental.snapshot.chunk.size: must be at least 2, got `1`",
                "m.yaml:9:20: source.connect.timeout: must be at least 250ms, got `100ms`",
                "m.yaml:10:23: source.heartbeat.interval: expected a duration such as `30s`, `3min` or `1 h`, got `often`",
                "m.yaml:12:25: source.metadata.list: unknown metadata column `op_type` (hint: the MySQL source offers only `op_ts`)",
                "m.yaml:11:3: source.hostnme: unknown option `hostnme` for source `mysql` (hint: did you mean `hostname`?)",
            ]
        );
    }

    #[test]
    fn selectors_follow_flink_syntax() {
        let s =
            table_selectors(r"adb.\.*, bdb.user_table_[0-9]+, [app|web].order_\.*").expect("valid");
        assert_eq!(s.len(), 3);
        assert!(s[0].matches("adb", "anything") && !s[0].matches("adbx", "t"));
        assert!(s[1].matches("BDB", "user_table_12") && !s[1].matches("bdb", "user_table_"));
        assert!(s[2].matches("a", "order_1") && s[2].matches("w", "ORDER_x"));
        assert_eq!(
            s[2].text,
            Spanned::new(
                r"[app|web].order_\.*".to_string(),
                Location {
                    line: 1,
                    column: 33
                }
            )
        );
        let one = table_selectors("orders").expect("valid");
        assert!(
            one[0].matches("any_db", "orders"),
            "a 1-part selector matches every database"
        );
        let escaped = table_selectors(r"db.a\,b").expect("valid");
        assert!(escaped[0].matches("db", "a,b") && escaped.len() == 1);
        assert_eq!(
            table_selectors("adb.*").unwrap_err(),
            "invalid regex `*` in `adb.*`: repetition operator missing expression (at character 5)"
        );
        assert_eq!(
            table_selectors("a.b.c.d").unwrap_err(),
            "`a.b.c.d` has 4 parts; a selector is `table`, `db.table` or `namespace.db.table` (at character 1)"
        );
        assert_eq!(
            table_selectors(" , ").unwrap_err(),
            "expected at least one table selector such as `db.table` (at character 1)"
        );
    }

    proptest::proptest! {
        #[test]
        fn selector_parsing_never_panics(text in "[a-z.,\\\\*()\\[\\]|+?é ]{0,40}") {
            let _ = table_selectors(&text);
        }
    }

    #[test]
    fn bad_regex_in_tables_points_at_the_entry() {
        let opts =
            "  hostname: db\n  username: u\n  password: p\n  tables: app.ok, bdb.(x, c.d.e\n";
        assert_eq!(
            check(opts, "").unwrap_err(),
            vec![
                "m.yaml:6:23: source.tables: invalid regex `(x` in `bdb.(x`: unclosed group",
                "m.yaml:6:27: source.tables: `c.d.e` has three parts, but MySQL tables are `db.table` (hint: write `\\.` for a regex dot inside a name)",
            ]
        );
    }

    #[test]
    fn server_id_must_cover_parallelism() {
        let opts = format!("{REQUIRED}  server-id: 5400-5401\n");
        assert_eq!(
            check(&opts, "pipeline:\n  parallelism: 4\n").unwrap_err(),
            vec![
                "m.yaml:7:14: source.server-id: `5400-5401` gives 2 server id(s) but pipeline.parallelism is 4 (hint: each parallel reader needs its own id; use a range such as `5400-5403`)",
            ]
        );
        let c = check(
            &format!("{REQUIRED}  server-id: 5400-5404\n"),
            "pipeline:\n  parallelism: 4\n",
        )
        .expect("valid");
        assert_eq!(c.server_id, (5400, 5404));
        let c = check(REQUIRED, "pipeline:\n  parallelism: 4\n").expect("valid");
        assert_eq!(
            c.server_id.1 - c.server_id.0,
            3,
            "a random range is wide enough for every reader"
        );
        assert!(c.server_id.1 <= 6400);
        for (bad, msg) in [
            (
                "abc",
                "expected a server id such as `5400` or a range such as `5400-5404`, got `abc`",
            ),
            ("5404-5400", "range `5404-5400` ends before it starts"),
            ("0", "server ids start at 1, got `0`"),
        ] {
            let err = check(&format!("{REQUIRED}  server-id: {bad}\n"), "").unwrap_err();
            assert_eq!(err, vec![format!("m.yaml:7:14: source.server-id: {msg}")]);
        }
    }

    #[test]
    fn startup_modes_need_their_offsets() {
        let c = check(&format!("{REQUIRED}  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: mysql-bin.000003\n  scan.startup.specific-offset.pos: 4\n"), "").expect("valid");
        assert_eq!(
            c.startup,
            StartupMode::SpecificOffset {
                file: Some("mysql-bin.000003".into()),
                pos: Some(4),
                gtid_set: None,
                skip_events: 0,
                skip_rows: 0
            }
        );
        let c = check(&format!("{REQUIRED}  scan.startup.mode: Timestamp\n  scan.startup.timestamp-millis: 1667232000000\n"), "").expect("valid");
        assert_eq!(
            c.startup,
            StartupMode::Timestamp {
                millis: 1_667_232_000_000
            }
        );
        assert_eq!(check(&format!("{REQUIRED}  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: f\n"), "").unwrap_err(), vec![
            "m.yaml:7:22: source.scan.startup.mode: `specific-offset` needs `scan.startup.specific-offset.gtid-set`, or both `scan.startup.specific-offset.file` and `scan.startup.specific-offset.pos`",
        ]);
        assert_eq!(
            check(&format!("{REQUIRED}  scan.startup.mode: latest\n"), "").unwrap_err(),
            vec![
                "m.yaml:7:22: source.scan.startup.mode: expected one of initial, snapshot, latest-offset, earliest-offset, specific-offset, timestamp, got `latest` (hint: did you mean `latest-offset`?)",
            ]
        );
    }

    #[test]
    fn batch_mode_requires_snapshot() {
        let batch = "pipeline:\n  execution.runtime-mode: BATCH\n";
        assert_eq!(
            check(REQUIRED, batch).unwrap_err(),
            vec![
                "m.yaml:1:1: source.scan.startup.mode: `execution.runtime-mode: BATCH` needs `scan.startup.mode: snapshot`, got `initial` (hint: a bounded pipeline reads a consistent snapshot and stops)",
            ]
        );
        let c = check(&format!("{REQUIRED}  scan.startup.mode: snapshot\n"), batch).expect("valid");
        assert_eq!(c.startup, StartupMode::Snapshot);
    }

    #[test]
    fn chunk_keys_passthroughs_and_exclusive_flags() {
        let opts = format!(
            "{REQUIRED}  scan.incremental.snapshot.chunk.key-column: app.orders:id; app.log_\\.*:ts\n  jdbc.properties.useSSL: false\n  debezium.binary.handling.mode: base64\n  split-key.even-distribution.factor.upper-bound: 50\n"
        );
        let c = check(&opts, "").expect("valid");
        let keys: Vec<_> = c
            .chunk_key_columns
            .iter()
            .map(|(s, c)| (s.text.value.as_str(), c.as_str()))
            .collect();
        assert_eq!(keys, [("app.orders", "id"), (r"app.log_\.*", "ts")]);
        assert!(c.chunk_key_columns[1].0.matches("app", "log_2024"));
        assert_eq!(
            c.jdbc_properties,
            [("useSSL".to_string(), "false".to_string())]
        );
        assert_eq!(
            c.debezium_properties,
            [("binary.handling.mode".to_string(), "base64".to_string())]
        );
        assert_eq!(
            c.even_distribution_factor_upper, 50.0,
            "the fallback key is read"
        );
        let opts = format!(
            "{REQUIRED}  scan.incremental.snapshot.chunk.key-column: app.orders\n  scan.newly-added-table.enabled: true\n  scan.binlog.newly-added-table.enabled: true\n"
        );
        assert_eq!(
            check(&opts, "").unwrap_err(),
            vec![
                "m.yaml:7:47: source.scan.incremental.snapshot.chunk.key-column: expected `table:column` pairs separated by `;`, got `app.orders`",
                "m.yaml:9:42: source.scan.binlog.newly-added-table.enabled: cannot be combined with `scan.newly-added-table.enabled` (hint: pick one: snapshot new tables on restart, or follow them from binlog only)",
            ]
        );
    }
}
