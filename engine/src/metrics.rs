//! Process-wide metrics: what the Prometheus endpoint serves and the progress display reads.
//!
//! One registry per process ([`Metrics::global`]) so every component can record without
//! plumbing; labels are sink/source table names only (never option values, so no secret can
//! leak into a metric).
//!
//! NOTE: skeleton; the recording functions are no-ops until the registry is implemented.

use std::sync::OnceLock;
use std::time::Duration;

use crate::schema::TableId;

/// The process's metric registry.
#[derive(Debug, Default)]
pub struct Metrics {}

/// A point-in-time copy of the gauges the progress display shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Rows received from the source, all tables.
    pub rows_in: u64,
    /// Rows acknowledged by the sink, all tables.
    pub rows_out: u64,
    /// Seconds between now and the event time of the newest row handed to the sink.
    pub lag_seconds: f64,
    /// Bytes of binlog the source is behind the server's end, when known.
    pub lag_bytes: Option<u64>,
    /// Bytes currently spilled to disk.
    pub spill_bytes: u64,
    /// Bytes held in memory between source and sink.
    pub queue_bytes: u64,
    /// Snapshot chunks finished / total, all tables.
    pub snapshot_chunks: (u64, u64),
}

impl Metrics {
    /// The process-wide registry.
    pub fn global() -> &'static Metrics {
        static M: OnceLock<Metrics> = OnceLock::new();
        M.get_or_init(Metrics::default)
    }

    /// Rows read from the source for `table` (source table).
    pub fn rows_in(&self, table: &TableId, n: u64) {
        let _ = (table, n);
    }

    /// Rows acknowledged by the sink for `table` (sink table).
    pub fn rows_out(&self, table: &TableId, n: u64) {
        let _ = (table, n);
    }

    /// Size of one batch handed to the sink (histogram of rows).
    pub fn batch_rows(&self, n: usize) {
        let _ = n;
    }

    /// Replication lag in seconds (event time of the newest row handed to the sink vs now).
    pub fn set_lag_seconds(&self, seconds: f64) {
        let _ = seconds;
    }

    /// Replication lag in binlog bytes (server end minus our position).
    pub fn set_lag_bytes(&self, bytes: u64) {
        let _ = bytes;
    }

    /// Bytes and segment files currently spilled to disk.
    pub fn set_spill(&self, bytes: u64, segments: u64) {
        let _ = (bytes, segments);
    }

    /// Bytes written to spill files so far (counter).
    pub fn spilled(&self, bytes: u64) {
        let _ = bytes;
    }

    /// Bytes held in memory between source and sink (queue plus sink buffers).
    pub fn set_queue_bytes(&self, bytes: u64) {
        let _ = bytes;
    }

    /// One finished Stream Load (or transaction load) of `table`: latency, rows, body bytes.
    pub fn load(&self, table: &TableId, latency: Duration, rows: u64, bytes: u64, ok: bool) {
        let _ = (table, latency, rows, bytes, ok);
    }

    /// One retry by `component` (`sink`, `source`, `sink-restart`, `source-reconnect`).
    pub fn retry(&self, component: &str) {
        let _ = component;
    }

    /// One checkpoint written, and how long it took (precommit + save + commit).
    pub fn checkpoint(&self, took: Duration) {
        let _ = took;
    }

    /// Snapshot progress of one source table.
    pub fn snapshot_progress(&self, table: &TableId, chunks_done: u64, chunks_total: u64) {
        let _ = (table, chunks_done, chunks_total);
    }

    /// The gauges the progress display shows.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::default()
    }

    /// Prometheus text exposition format (version 0.0.4) of every metric.
    pub fn encode(&self) -> String {
        String::new()
    }
}
