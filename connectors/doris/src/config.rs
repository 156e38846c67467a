//! `sink: {type: doris}` and `sink: {type: starrocks}` options with Flink CDC names and the
//! *effective* defaults (flink-cdc-pipeline.md §3.1 and §3.4), validated offline.

use std::time::Duration;

use cdcflow_engine::config::Secret;

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
    /// `sink.enable.batch-mode` (true).
    pub batch_mode: bool,
    /// `sink.enable-2pc` (effective: true when batch mode is off).
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
    /// `unicode-char.max-bytes` (3; 4 is the safe value for utf8mb4).
    pub unicode_char_max_bytes: u32,
    /// Accepted Flink-only options with no effect here (warned).
    pub ignored: Vec<String>,
}
