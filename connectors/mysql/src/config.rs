//! `source: {type: mysql}` options, Flink CDC names and effective defaults
//! (flink-cdc-pipeline.md §2.2), validated offline into [`MySqlSourceConfig`].

use std::time::Duration;

use cdcflow_engine::config::{Secret, Spanned};

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

/// A table selector from `tables` / `tables.exclude`: Flink CDC syntax compiled to regexes.
#[derive(Debug, Clone)]
pub struct TableSelector {
    /// The selector as written.
    pub text: Spanned<String>,
    /// Database part: case-insensitive full match.
    pub db: regex::Regex,
    /// Table part: case-insensitive full match.
    pub table: regex::Regex,
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
    /// `treat-tinyint1-as-boolean.enabled` (true).
    pub tinyint1_as_boolean: bool,
    /// `scan.incremental.snapshot.backfill.skip` (false).
    pub backfill_skip: bool,
    /// `metadata.list`: only `op_ts` is allowed.
    pub metadata_list: Vec<String>,
    /// `jdbc.properties.*` passthrough (accepted; only a few apply to mysql_async).
    pub jdbc_properties: Vec<(String, String)>,
}
