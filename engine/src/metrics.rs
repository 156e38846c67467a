//! Process-wide metrics: what the Prometheus endpoint serves and the progress display reads.
//!
//! One registry per process ([`Metrics::global`]) so every component can record without
//! plumbing; labels are sink/source table names and fixed component names only (never option
//! values, so no secret can leak into a metric).
//!
//! ```text
//!  source ──rows_in, snapshot_progress, set_lag_bytes──┐
//!  engine ──rows_out, batch_rows, set_lag_seconds,     ├─▶ atomics ─▶ snapshot() ─▶ progress line
//!           checkpoint, set_queue_bytes, set_spill──────┤            └▶ encode() ─▶ GET /metrics
//!  sink   ──load, retry────────────────────────────────┘
//! ```
//!
//! Recording is called per batch, never per row, and is lock-free apart from one uncontended
//! read lock to find a table's series (a write lock only the first time a table is seen).
//! Everything is plain atomics rather than the `prometheus-client` crate: that crate writes only
//! the OpenMetrics format (`# EOF`, `info` type, counters typed without their `_total`), which
//! is not the `text/plain; version=0.0.4` format the endpoint promises, and its label families
//! cannot be summed for [`Metrics::snapshot`] without a second copy of every counter anyway.
//!
//! Histograms count observations per bucket without locks; [`Metrics::encode`] makes them
//! cumulative and derives `_count` from the buckets, so a scrape is always self-consistent even
//! while observations land.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::schema::TableId;

/// Upper bounds of `cdcflow_batch_rows` buckets (rows per batch handed to the sink).
const BATCH_ROWS_BUCKETS: &[f64] = &[
    1.0, 10.0, 100.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0, 100_000.0,
    500_000.0,
];

/// Upper bounds of `cdcflow_load_seconds` buckets (one Stream Load round trip).
const LOAD_SECONDS_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Upper bounds of `cdcflow_checkpoint_seconds` buckets (precommit + save + commit).
const CHECKPOINT_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// `lag_bytes` value meaning "never reported".
const UNKNOWN: u64 = u64::MAX;

/// The process's metric registry.
#[derive(Debug)]
pub struct Metrics {
    /// Wall-clock start of this registry (process start for the global one), Unix seconds.
    start_time: f64,
    rows_in: Family<TableId, AtomicU64>,
    rows_out: Family<TableId, AtomicU64>,
    /// Sums of `rows_in` / `rows_out` over every table, for [`Metrics::snapshot`].
    rows_in_all: AtomicU64,
    rows_out_all: AtomicU64,
    batch_rows: Histogram,
    /// `f64` bits.
    lag_seconds: AtomicU64,
    /// [`UNKNOWN`] until the source reports it.
    lag_bytes: AtomicU64,
    spill_bytes: AtomicU64,
    spill_segments: AtomicU64,
    spilled_bytes: AtomicU64,
    queue_bytes: AtomicU64,
    loads: Family<TableId, LoadStats>,
    retries: Family<String, AtomicU64>,
    checkpoints: AtomicU64,
    checkpoint_seconds: Histogram,
    snapshot: Family<TableId, SnapshotStats>,
}

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

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The process-wide registry.
    pub fn global() -> &'static Metrics {
        static M: OnceLock<Metrics> = OnceLock::new();
        M.get_or_init(Metrics::default)
    }

    /// A fresh, empty registry (tests and embedders that want their own; the engine records
    /// into [`Metrics::global`]).
    pub fn new() -> Self {
        let start_time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Metrics {
            start_time,
            rows_in: Family::default(),
            rows_out: Family::default(),
            rows_in_all: AtomicU64::new(0),
            rows_out_all: AtomicU64::new(0),
            batch_rows: Histogram::new(BATCH_ROWS_BUCKETS),
            lag_seconds: AtomicU64::new(0f64.to_bits()),
            lag_bytes: AtomicU64::new(UNKNOWN),
            spill_bytes: AtomicU64::new(0),
            spill_segments: AtomicU64::new(0),
            spilled_bytes: AtomicU64::new(0),
            queue_bytes: AtomicU64::new(0),
            loads: Family::default(),
            retries: Family::default(),
            checkpoints: AtomicU64::new(0),
            checkpoint_seconds: Histogram::new(CHECKPOINT_SECONDS_BUCKETS),
            snapshot: Family::default(),
        }
    }

    /// Rows read from the source for `table` (source table).
    pub fn rows_in(&self, table: &TableId, n: u64) {
        self.rows_in.get(table).fetch_add(n, Relaxed);
        self.rows_in_all.fetch_add(n, Relaxed);
    }

    /// Rows acknowledged by the sink for `table` (sink table).
    pub fn rows_out(&self, table: &TableId, n: u64) {
        self.rows_out.get(table).fetch_add(n, Relaxed);
        self.rows_out_all.fetch_add(n, Relaxed);
    }

    /// Size of one batch handed to the sink (histogram of rows).
    pub fn batch_rows(&self, n: usize) {
        self.batch_rows.observe(n as f64);
    }

    /// Replication lag in seconds (event time of the newest row handed to the sink vs now).
    pub fn set_lag_seconds(&self, seconds: f64) {
        let s = if seconds.is_finite() {
            seconds.max(0.0)
        } else {
            0.0
        };
        self.lag_seconds.store(s.to_bits(), Relaxed);
    }

    /// Replication lag in binlog bytes (server end minus our position).
    pub fn set_lag_bytes(&self, bytes: u64) {
        // u64::MAX marks "unknown"; a real lag of 16 EiB is not a concern.
        self.lag_bytes.store(bytes.min(UNKNOWN - 1), Relaxed);
    }

    /// Bytes and segment files currently spilled to disk.
    pub fn set_spill(&self, bytes: u64, segments: u64) {
        self.spill_bytes.store(bytes, Relaxed);
        self.spill_segments.store(segments, Relaxed);
    }

    /// Bytes written to spill files so far (counter).
    pub fn spilled(&self, bytes: u64) {
        self.spilled_bytes.fetch_add(bytes, Relaxed);
    }

    /// Bytes held in memory between source and sink (queue plus sink buffers).
    pub fn set_queue_bytes(&self, bytes: u64) {
        self.queue_bytes.store(bytes, Relaxed);
    }

    /// One finished Stream Load (or transaction load) of `table`: latency, rows, body bytes.
    ///
    /// The latency of failed loads is recorded too (a timing-out cluster shows there first);
    /// rows and bytes count only when `ok`, a failure counts in `cdcflow_load_failures_total`.
    pub fn load(&self, table: &TableId, latency: Duration, rows: u64, bytes: u64, ok: bool) {
        let s = self.loads.get(table);
        s.seconds.observe(latency.as_secs_f64());
        if ok {
            s.rows.fetch_add(rows, Relaxed);
            s.bytes.fetch_add(bytes, Relaxed);
        } else {
            s.failures.fetch_add(1, Relaxed);
        }
    }

    /// One retry by `component` (`sink`, `source`, `sink-restart`, `source-reconnect`).
    pub fn retry(&self, component: &str) {
        self.retries.get(component).fetch_add(1, Relaxed);
    }

    /// One checkpoint written, and how long it took (precommit + save + commit).
    pub fn checkpoint(&self, took: Duration) {
        self.checkpoints.fetch_add(1, Relaxed);
        self.checkpoint_seconds.observe(took.as_secs_f64());
    }

    /// Snapshot progress of one source table.
    pub fn snapshot_progress(&self, table: &TableId, chunks_done: u64, chunks_total: u64) {
        let s = self.snapshot.get(table);
        s.done.store(chunks_done, Relaxed);
        s.total.store(chunks_total, Relaxed);
    }

    /// The gauges the progress display shows.
    pub fn snapshot(&self) -> Snapshot {
        let snapshot_chunks = self
            .snapshot
            .series()
            .iter()
            .fold((0, 0), |(d, t), (_, s)| {
                (d + s.done.load(Relaxed), t + s.total.load(Relaxed))
            });
        let lag_bytes = self.lag_bytes.load(Relaxed);
        Snapshot {
            rows_in: self.rows_in_all.load(Relaxed),
            rows_out: self.rows_out_all.load(Relaxed),
            lag_seconds: f64::from_bits(self.lag_seconds.load(Relaxed)),
            lag_bytes: (lag_bytes != UNKNOWN).then_some(lag_bytes),
            spill_bytes: self.spill_bytes.load(Relaxed),
            queue_bytes: self.queue_bytes.load(Relaxed),
            snapshot_chunks,
        }
    }

    /// Rows acknowledged by the sink for one sink table so far (tests and summaries).
    pub fn rows_out_of(&self, table: &TableId) -> u64 {
        self.rows_out
            .find(table)
            .map(|c| c.load(Relaxed))
            .unwrap_or(0)
    }

    /// Prometheus text exposition format (version 0.0.4) of every metric.
    ///
    /// Every family is listed with `# HELP` and `# TYPE` even before its first sample, so a
    /// scraper (and a test) can tell "not yet recorded" from "not exported".
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        // Writing to a String cannot fail; the Result is only fmt's signature.
        let _ = self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, o: &mut String) -> fmt::Result {
        header(
            o,
            "cdcflow_build_info",
            "gauge",
            "Build of the running cdcflow; always 1.",
        )?;
        writeln!(
            o,
            "cdcflow_build_info{{version=\"{}\"}} 1",
            escape(env!("CARGO_PKG_VERSION"))
        )?;
        header(
            o,
            "cdcflow_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
        )?;
        writeln!(o, "cdcflow_start_time_seconds {}", float(self.start_time))?;

        counter_family(
            o,
            "cdcflow_rows_in_total",
            "Rows read from the source, per source table.",
            &self.rows_in,
            |c| c.load(Relaxed),
        )?;
        counter_family(
            o,
            "cdcflow_rows_out_total",
            "Rows handed to and acknowledged by the sink, per sink table.",
            &self.rows_out,
            |c| c.load(Relaxed),
        )?;
        header(
            o,
            "cdcflow_batch_rows",
            "histogram",
            "Rows per batch handed to the sink.",
        )?;
        self.batch_rows.encode(o, "cdcflow_batch_rows", "")?;

        let gauges: [(&str, &str, String); 6] = [
            (
                "cdcflow_lag_seconds",
                "Seconds between now and the event time of the newest row handed to the sink.",
                float(f64::from_bits(self.lag_seconds.load(Relaxed))),
            ),
            (
                "cdcflow_spill_bytes",
                "Bytes currently spilled to disk.",
                self.spill_bytes.load(Relaxed).to_string(),
            ),
            (
                "cdcflow_spill_segments",
                "Spill segment files currently on disk.",
                self.spill_segments.load(Relaxed).to_string(),
            ),
            (
                "cdcflow_queue_bytes",
                "Bytes held in memory between source and sink.",
                self.queue_bytes.load(Relaxed).to_string(),
            ),
            (
                "cdcflow_checkpoints_total",
                "Checkpoints written.",
                self.checkpoints.load(Relaxed).to_string(),
            ),
            (
                "cdcflow_spilled_bytes_total",
                "Bytes written to spill files since the start.",
                self.spilled_bytes.load(Relaxed).to_string(),
            ),
        ];
        for (name, help, value) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            header(o, name, kind, help)?;
            writeln!(o, "{name} {value}")?;
        }
        header(
            o,
            "cdcflow_lag_bytes",
            "gauge",
            "Bytes of binlog the source is behind the server's end (absent until measured).",
        )?;
        let lag_bytes = self.lag_bytes.load(Relaxed);
        if lag_bytes != UNKNOWN {
            writeln!(o, "cdcflow_lag_bytes {lag_bytes}")?;
        }

        let loads = self.loads.series();
        header(
            o,
            "cdcflow_load_seconds",
            "histogram",
            "Duration of one Stream Load (or transaction load), failed ones included, per sink table.",
        )?;
        for (t, s) in &loads {
            s.seconds
                .encode(o, "cdcflow_load_seconds", &table_label(t))?;
        }
        let load_counters: [(&str, &str, PickCounter); 3] = [
            (
                "cdcflow_loaded_rows_total",
                "Rows in successful loads, per sink table.",
                |s| &s.rows,
            ),
            (
                "cdcflow_loaded_bytes_total",
                "Body bytes of successful loads, per sink table.",
                |s| &s.bytes,
            ),
            (
                "cdcflow_load_failures_total",
                "Loads that failed (each retry of a load counts), per sink table.",
                |s| &s.failures,
            ),
        ];
        for (name, help, pick) in load_counters {
            header(o, name, "counter", help)?;
            for (t, s) in &loads {
                writeln!(o, "{name}{{{}}} {}", table_label(t), pick(s).load(Relaxed))?;
            }
        }

        header(
            o,
            "cdcflow_retries_total",
            "counter",
            "Retries, per component (sink, source, sink-restart, source-reconnect).",
        )?;
        for (c, n) in self.retries.series() {
            writeln!(
                o,
                "cdcflow_retries_total{{component=\"{}\"}} {}",
                escape(&c),
                n.load(Relaxed)
            )?;
        }

        header(
            o,
            "cdcflow_checkpoint_seconds",
            "histogram",
            "Duration of one checkpoint (precommit + save + commit).",
        )?;
        self.checkpoint_seconds
            .encode(o, "cdcflow_checkpoint_seconds", "")?;

        let snap = self.snapshot.series();
        header(
            o,
            "cdcflow_snapshot_chunks_done",
            "gauge",
            "Snapshot chunks finished, per source table.",
        )?;
        for (t, s) in &snap {
            writeln!(
                o,
                "cdcflow_snapshot_chunks_done{{{}}} {}",
                table_label(t),
                s.done.load(Relaxed)
            )?;
        }
        header(
            o,
            "cdcflow_snapshot_chunks_total",
            "gauge",
            "Snapshot chunks planned, per source table.",
        )?;
        for (t, s) in &snap {
            writeln!(
                o,
                "cdcflow_snapshot_chunks_total{{{}}} {}",
                table_label(t),
                s.total.load(Relaxed)
            )?;
        }
        Ok(())
    }
}

/// Per sink table: one histogram and three counters of finished loads.
#[derive(Debug)]
struct LoadStats {
    seconds: Histogram,
    rows: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

impl Default for LoadStats {
    fn default() -> Self {
        LoadStats {
            seconds: Histogram::new(LOAD_SECONDS_BUCKETS),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }
}

/// Selects one of a [`LoadStats`]' counters, to encode them in one loop.
type PickCounter = fn(&LoadStats) -> &AtomicU64;

/// Per source table: snapshot chunks done and planned.
#[derive(Debug, Default)]
struct SnapshotStats {
    done: AtomicU64,
    total: AtomicU64,
}

/// Series of one metric keyed by a label value, created on first use.
#[derive(Debug)]
struct Family<K, V> {
    map: RwLock<HashMap<K, Arc<V>>>,
}

impl<K, V> Default for Family<K, V> {
    fn default() -> Self {
        Family {
            map: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Hash + Eq + Clone + Ord, V: Default> Family<K, V> {
    /// The series for `key`; a read lock on the hot path, a write lock only for a new key.
    fn get<Q>(&self, key: &Q) -> Arc<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(v) = self.find(key) {
            return v;
        }
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut w = self.map.write().unwrap_or_else(|p| p.into_inner());
        Arc::clone(w.entry(key.to_owned()).or_default())
    }

    /// The series for `key`, if it was ever recorded.
    fn find<Q>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let r = self.map.read().unwrap_or_else(|p| p.into_inner());
        r.get(key).cloned()
    }

    /// Every series, sorted by key so the exposition is stable between scrapes.
    fn series(&self) -> Vec<(K, Arc<V>)> {
        let r = self.map.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(K, Arc<V>)> = r.iter().map(|(k, s)| (k.clone(), Arc::clone(s))).collect();
        drop(r);
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// A fixed-bucket histogram: one atomic count per bucket (not cumulative) and the sum.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// `bounds.len() + 1` counts; the last one is the `+Inf` bucket.
    counts: Box<[AtomicU64]>,
    /// `f64` bits of the sum of observations.
    sum: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn observe(&self, v: f64) {
        let v = if v.is_finite() { v } else { 0.0 };
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i].fetch_add(1, Relaxed);
        // fetch_update only fails when the closure returns None, which it never does.
        let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| {
            Some((f64::from_bits(s) + v).to_bits())
        });
    }

    /// Writes `_bucket`, `_sum` and `_count` lines; `labels` is `""` or `k="v",...` without
    /// braces.
    fn encode(&self, o: &mut String, name: &str, labels: &str) -> fmt::Result {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Relaxed);
            let le = self
                .bounds
                .get(i)
                .map(|b| float(*b))
                .unwrap_or_else(|| "+Inf".into());
            writeln!(o, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}")?;
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        writeln!(
            o,
            "{name}_sum{braces} {}",
            float(f64::from_bits(self.sum.load(Relaxed)))
        )?;
        writeln!(o, "{name}_count{braces} {cumulative}")
    }
}

fn header(o: &mut String, name: &str, kind: &str, help: &str) -> fmt::Result {
    writeln!(o, "# HELP {name} {help}")?;
    writeln!(o, "# TYPE {name} {kind}")
}

fn counter_family(
    o: &mut String,
    name: &str,
    help: &str,
    family: &Family<TableId, AtomicU64>,
    value: impl Fn(&AtomicU64) -> u64,
) -> fmt::Result {
    header(o, name, "counter", help)?;
    for (t, c) in family.series() {
        writeln!(o, "{name}{{{}}} {}", table_label(&t), value(&c))?;
    }
    Ok(())
}

/// `table="db.name"`, escaped.
fn table_label(t: &TableId) -> String {
    format!("table=\"{}\"", escape(&t.to_string()))
}

/// Label value escaping of the 0.0.4 text format: backslash, double quote and newline.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus parses it (`+Inf`, `-Inf`, `NaN` for the non-finite ones).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TableId {
        TableId::new("shop", name)
    }

    /// The value of the one sample line starting with `prefix` (name plus labels).
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn empty_registry_lists_every_family_with_help_and_type() {
        let text = Metrics::new().encode();
        for (family, kind) in [
            ("cdcflow_build_info", "gauge"),
            ("cdcflow_rows_in_total", "counter"),
            ("cdcflow_rows_out_total", "counter"),
            ("cdcflow_batch_rows", "histogram"),
            ("cdcflow_lag_seconds", "gauge"),
            ("cdcflow_lag_bytes", "gauge"),
            ("cdcflow_spill_bytes", "gauge"),
            ("cdcflow_spill_segments", "gauge"),
            ("cdcflow_spilled_bytes_total", "counter"),
            ("cdcflow_queue_bytes", "gauge"),
            ("cdcflow_load_seconds", "histogram"),
            ("cdcflow_loaded_rows_total", "counter"),
            ("cdcflow_loaded_bytes_total", "counter"),
            ("cdcflow_load_failures_total", "counter"),
            ("cdcflow_retries_total", "counter"),
            ("cdcflow_checkpoints_total", "counter"),
            ("cdcflow_checkpoint_seconds", "histogram"),
            ("cdcflow_snapshot_chunks_done", "gauge"),
            ("cdcflow_snapshot_chunks_total", "gauge"),
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} {kind}\n")),
                "{family} must be typed {kind}:\n{text}"
            );
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} needs a HELP line"
            );
        }
        assert!(text.contains(&format!(
            "cdcflow_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(
            !text.contains("\ncdcflow_lag_bytes "),
            "an unmeasured byte lag has no sample:\n{text}"
        );
        assert_eq!(Metrics::new().snapshot().lag_bytes, None);
    }

    #[test]
    fn counters_add_per_table_and_in_total() {
        let m = Metrics::new();
        m.rows_in(&t("a"), 10);
        m.rows_in(&t("a"), 5);
        m.rows_in(&t("b"), 1);
        m.rows_out(&t("a"), 7);
        let text = m.encode();
        assert_eq!(
            sample(&text, "cdcflow_rows_in_total{table=\"shop.a\"}"),
            Some(15.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_rows_in_total{table=\"shop.b\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_rows_out_total{table=\"shop.a\"}"),
            Some(7.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_rows_out_total{table=\"shop.b\"}"),
            None,
            "a table never loaded has no rows_out series"
        );
        let s = m.snapshot();
        assert_eq!((s.rows_in, s.rows_out), (16, 7));
        assert_eq!(m.rows_out_of(&t("a")), 7);
        assert_eq!(m.rows_out_of(&t("zzz")), 0);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_count_matches() {
        let m = Metrics::new();
        for n in [1, 5, 100, 1_000, 1_000_000] {
            m.batch_rows(n);
        }
        let text = m.encode();
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"1\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"10\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"100\"}"),
            Some(3.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"1000\"}"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"500000\"}"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_batch_rows_bucket{le=\"+Inf\"}"),
            Some(5.0)
        );
        assert_eq!(sample(&text, "cdcflow_batch_rows_count"), Some(5.0));
        assert_eq!(sample(&text, "cdcflow_batch_rows_sum"), Some(1_001_106.0));
    }

    #[test]
    fn loads_split_success_and_failure() {
        let m = Metrics::new();
        let tb = t("items");
        m.load(&tb, Duration::from_millis(30), 100, 4096, true);
        m.load(&tb, Duration::from_millis(70), 50, 2048, true);
        m.load(&tb, Duration::from_secs(200), 50, 2048, false);
        let text = m.encode();
        let l = "{table=\"shop.items\"}";
        assert_eq!(
            sample(&text, &format!("cdcflow_loaded_rows_total{l}")),
            Some(150.0)
        );
        assert_eq!(
            sample(&text, &format!("cdcflow_loaded_bytes_total{l}")),
            Some(6144.0)
        );
        assert_eq!(
            sample(&text, &format!("cdcflow_load_failures_total{l}")),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, &format!("cdcflow_load_seconds_count{l}")),
            Some(3.0)
        );
        assert_eq!(
            sample(
                &text,
                "cdcflow_load_seconds_bucket{table=\"shop.items\",le=\"0.05\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "cdcflow_load_seconds_bucket{table=\"shop.items\",le=\"120\"}"
            ),
            Some(2.0)
        );
        let sum = sample(&text, &format!("cdcflow_load_seconds_sum{l}")).unwrap_or(0.0);
        assert!((sum - 200.1).abs() < 1e-9, "sum of latencies: {sum}");
    }

    #[test]
    fn gauges_hold_the_last_value_and_snapshot_sums_chunks() {
        let m = Metrics::new();
        m.set_lag_seconds(3.5);
        m.set_lag_seconds(f64::NAN);
        m.set_lag_seconds(1.25);
        m.set_lag_bytes(4096);
        m.set_spill(10, 2);
        m.set_spill(20, 3);
        m.spilled(100);
        m.spilled(50);
        m.set_queue_bytes(77);
        m.snapshot_progress(&t("a"), 1, 4);
        m.snapshot_progress(&t("a"), 4, 4);
        m.snapshot_progress(&t("b"), 0, 2);
        m.retry("sink");
        m.retry("sink");
        m.retry("source-reconnect");
        m.checkpoint(Duration::from_millis(3));
        assert_eq!(
            m.snapshot(),
            Snapshot {
                rows_in: 0,
                rows_out: 0,
                lag_seconds: 1.25,
                lag_bytes: Some(4096),
                spill_bytes: 20,
                queue_bytes: 77,
                snapshot_chunks: (4, 6),
            }
        );
        let text = m.encode();
        assert_eq!(sample(&text, "cdcflow_lag_seconds"), Some(1.25));
        assert_eq!(sample(&text, "cdcflow_lag_bytes"), Some(4096.0));
        assert_eq!(sample(&text, "cdcflow_spill_bytes"), Some(20.0));
        assert_eq!(sample(&text, "cdcflow_spill_segments"), Some(3.0));
        assert_eq!(sample(&text, "cdcflow_spilled_bytes_total"), Some(150.0));
        assert_eq!(sample(&text, "cdcflow_queue_bytes"), Some(77.0));
        assert_eq!(
            sample(&text, "cdcflow_retries_total{component=\"sink\"}"),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                "cdcflow_retries_total{component=\"source-reconnect\"}"
            ),
            Some(1.0)
        );
        assert_eq!(sample(&text, "cdcflow_checkpoints_total"), Some(1.0));
        assert_eq!(sample(&text, "cdcflow_checkpoint_seconds_count"), Some(1.0));
        assert_eq!(
            sample(&text, "cdcflow_snapshot_chunks_done{table=\"shop.a\"}"),
            Some(4.0)
        );
        assert_eq!(
            sample(&text, "cdcflow_snapshot_chunks_total{table=\"shop.b\"}"),
            Some(2.0)
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.rows_in(&TableId::new("d\"b", "t\\x\ny"), 1);
        let text = m.encode();
        assert!(
            text.contains("cdcflow_rows_in_total{table=\"d\\\"b.t\\\\x\\ny\"} 1\n"),
            "{text}"
        );
        assert!(
            text.lines().all(|l| !l.is_empty()),
            "no raw newline may split a sample"
        );
    }

    #[test]
    fn every_sample_line_is_well_formed() {
        let m = Metrics::new();
        m.rows_out(&t("a"), 1);
        m.load(&t("a"), Duration::from_millis(5), 1, 1, true);
        m.batch_rows(3);
        for line in m.encode().lines() {
            if line.starts_with('#') {
                assert!(
                    line.starts_with("# HELP cdcflow_") || line.starts_with("# TYPE cdcflow_"),
                    "{line}"
                );
                continue;
            }
            let (name_labels, value) = line.rsplit_once(' ').expect("name and value");
            assert!(name_labels.starts_with("cdcflow_"), "{line}");
            assert!(
                value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
                "value of {line}"
            );
        }
    }

    #[test]
    fn concurrent_recording_loses_nothing() {
        let m = Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let m = Arc::clone(&m);
                std::thread::spawn(move || {
                    let table = t(if i % 2 == 0 { "even" } else { "odd" });
                    for _ in 0..10_000 {
                        m.rows_out(&table, 2);
                        m.batch_rows(2);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().expect("recording thread");
        }
        assert_eq!(m.snapshot().rows_out, 80_000);
        assert_eq!(m.rows_out_of(&t("even")), 40_000);
        let text = m.encode();
        assert_eq!(sample(&text, "cdcflow_batch_rows_count"), Some(40_000.0));
        assert_eq!(sample(&text, "cdcflow_batch_rows_sum"), Some(80_000.0));
    }
}
