//! Initial load: chunked, parallel, lock-free reads of every captured table into Arrow.
//!
//! ```text
//!  splitter task ──Chunk──▶ bounded queue ──▶ reader 1..N (one connection each) ──SnapshotEvent──▶ source
//!   (table by table:           (pipeline          START TRANSACTION WITH CONSISTENT SNAPSHOT
//!    even split or             parallelism:       read the binlog point of that snapshot
//!    LIMIT walk)               splitting and      SELECT cols WHERE lo <= k < hi  (binary protocol)
//!                              reading overlap)   → builders.rs → RecordBatch every `batch_rows`
//!                                                 COMMIT → ChunkDone(mark with LOW/HIGH points)
//! ```
//!
//! Chunking follows Flink CDC (flink-cdc-pipeline.md §2.4): the chunk key is the configured
//! `scan.incremental.snapshot.chunk.key-column` for the table, else the first primary-key column.
//! Integer keys whose distribution factor `(max - min + 1) / rows` lies in `[0.05, 1000]` are cut
//! into even ranges of `factor × chunk_size` keys; anything else walks the key with
//! `ORDER BY k LIMIT 1 OFFSET chunk_size`. The first chunk is open below (and takes NULL keys), the
//! last is open above.
//!
//! **Watermarks.** On MariaDB each chunk is read in a `WITH CONSISTENT SNAPSHOT` transaction and
//! the server reports the exact binlog position of that snapshot (`Binlog_snapshot_file/position`),
//! so LOW = HIGH and the chunk equals the table state at that point. On MySQL the position is read
//! before (LOW) and after (HIGH) the chunk. The binlog reader starts at the smallest LOW and applies
//! the watermark rule ([`SnapshotSummary::covers`]): a row event at position `p` for a key inside
//! a finished chunk is skipped when `p < LOW(chunk)` on MariaDB (exact), and replayed otherwise —
//! on MySQL the window `[LOW, HIGH)` is replayed, which converges on upsert sinks (at-least-once
//! for that window).
//!
//! **Tables without a key** (no PRIMARY KEY, no NOT NULL UNIQUE index, no configured chunk key) are
//! read as one chunk; Flink CDC refuses them instead. Their binlog events from the chunk's point on
//! are applied; nothing can be de-duplicated by key.
//!
//! Lock-free: no `FLUSH TABLES WITH READ LOCK`, no RELOAD privilege; each chunk is its own short
//! read-only transaction.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use arrow::array::RecordBatch;
use cdcflow_engine::{Op, TableId};
use mysql_async::Value;
use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use crate::builders::{Charset, TableBatchBuilder, ValueError};
use crate::error::{MySqlError, Result};
use crate::schema::{MySqlTable, TableFilter, quote_ident, quote_table};
use crate::types::{MySqlColumn, MySqlKind};

/// Flink CDC's default lower bound of the even-distribution factor.
pub const EVEN_FACTOR_LOWER: f64 = 0.05;
/// Flink CDC's default upper bound of the even-distribution factor.
pub const EVEN_FACTOR_UPPER: f64 = 1000.0;

/// A binlog position: where a chunk's snapshot sits in the binlog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPoint {
    /// Binlog file name (`mysql-bin.000003`).
    pub file: String,
    /// Byte position in that file.
    pub pos: u64,
    /// The GTID position at that point when the server reports it cheaply (MySQL
    /// `Executed_Gtid_Set`, MariaDB `@@gtid_binlog_pos` outside a snapshot transaction).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

impl BinlogPoint {
    /// The numeric suffix of the file name (`mysql-bin.000012` → 12), the order of binlog files.
    pub fn file_seq(&self) -> u64 {
        self.file
            .rsplit('.')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl Ord for BinlogPoint {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.file_seq(), &self.file, self.pos).cmp(&(other.file_seq(), &other.file, other.pos))
    }
}

impl PartialOrd for BinlogPoint {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A chunk-key value, kept in the form the server returned it (bindable, serializable, ordered
/// the way the server orders integers; other kinds compare bytewise and are only used for
/// equality).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    /// Signed integer.
    Int(i64),
    /// Unsigned integer above i64::MAX.
    UInt(u64),
    /// Floating point.
    Double(f64),
    /// Bytes (strings, decimals, binary).
    Bytes(Vec<u8>),
    /// Date/time fields: year, month, day, hour, minute, second, micros.
    DateTime([u32; 7]),
    /// TIME: negative, days, hours, minutes, seconds, micros.
    Time(bool, u32, u8, u8, u8, u32),
}

impl KeyValue {
    /// From a server value; `None` for NULL.
    pub fn from_value(v: &Value) -> Option<KeyValue> {
        Some(match v {
            Value::NULL => return None,
            Value::Int(i) => KeyValue::Int(*i),
            Value::UInt(u) => match i64::try_from(*u) {
                Ok(i) => KeyValue::Int(i),
                Err(_) => KeyValue::UInt(*u),
            },
            Value::Float(f) => KeyValue::Double(f64::from(*f)),
            Value::Double(f) => KeyValue::Double(*f),
            Value::Bytes(b) => KeyValue::Bytes(b.clone()),
            Value::Date(y, m, d, h, mi, s, us) => KeyValue::DateTime([
                u32::from(*y),
                u32::from(*m),
                u32::from(*d),
                u32::from(*h),
                u32::from(*mi),
                u32::from(*s),
                *us,
            ]),
            Value::Time(n, d, h, m, s, us) => KeyValue::Time(*n, *d, *h, *m, *s, *us),
        })
    }

    /// The value to bind in a prepared statement.
    pub fn to_value(&self) -> Value {
        match self {
            KeyValue::Int(i) => Value::Int(*i),
            KeyValue::UInt(u) => Value::UInt(*u),
            KeyValue::Double(f) => Value::Double(*f),
            KeyValue::Bytes(b) => Value::Bytes(b.clone()),
            KeyValue::DateTime(f) => Value::Date(
                f[0] as u16,
                f[1] as u8,
                f[2] as u8,
                f[3] as u8,
                f[4] as u8,
                f[5] as u8,
                f[6],
            ),
            KeyValue::Time(n, d, h, m, s, us) => Value::Time(*n, *d, *h, *m, *s, *us),
        }
    }

    /// The integer value, for arithmetic splitting and exact chunk lookup.
    pub fn as_i128(&self) -> Option<i128> {
        match self {
            KeyValue::Int(i) => Some(i128::from(*i)),
            KeyValue::UInt(u) => Some(i128::from(*u)),
            KeyValue::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
            _ => None,
        }
    }

    fn from_i128(v: i128) -> KeyValue {
        match i64::try_from(v) {
            Ok(i) => KeyValue::Int(i),
            Err(_) => KeyValue::UInt(u64::try_from(v).unwrap_or(u64::MAX)),
        }
    }
}

/// Settings of one snapshot run.
#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    /// Rows per chunk (`scan.incremental.snapshot.chunk.size`).
    pub chunk_size: usize,
    /// Rows per emitted batch (`scan.snapshot.fetch.size`-ish; larger batches are faster).
    pub batch_rows: usize,
    /// Parallel chunk readers (one connection each).
    pub parallelism: usize,
    /// Per-table chunk key columns (`scan.incremental.snapshot.chunk.key-column`).
    pub chunk_keys: Vec<(TableFilter, String)>,
    /// Draw progress bars (on a terminal) instead of log lines.
    pub progress_bars: bool,
    /// `chunk-key.even-distribution.factor.lower-bound` (0.05).
    pub even_factor_lower: f64,
    /// `chunk-key.even-distribution.factor.upper-bound` (1000.0).
    pub even_factor_upper: f64,
    /// Per table (`db.table`): resume at this chunk-key value (every key below it was read
    /// before a restart), as recorded by [`ResumePoint`]s.
    pub resume: BTreeMap<String, ResumePoint>,
}

/// Where a partly read table continues after a restart: every row with `key < from` (and every
/// NULL key) was emitted before, and so was every chunk in `done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// The chunk-key column the table was split on (the resume is ignored if it changed).
    pub key_column: String,
    /// The first key value not yet known to be emitted (`None`: the table's start).
    #[serde(default)]
    pub from: Option<KeyValue>,
    /// Chunks above `from` that finished out of order (readers run in parallel), with their
    /// watermarks. A restart reads around them (integer keys) and keeps their marks for the
    /// watermark rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub done: Vec<ChunkMark>,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        SnapshotOptions {
            chunk_size: 8096,
            batch_rows: 8192,
            parallelism: 2,
            chunk_keys: Vec::new(),
            progress_bars: false,
            even_factor_lower: EVEN_FACTOR_LOWER,
            even_factor_upper: EVEN_FACTOR_UPPER,
            resume: BTreeMap::new(),
        }
    }
}

/// One unit of snapshot work: rows of one table with `lo <= key < hi` (open ends are `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Index of the table in the snapshot's table list.
    pub table: usize,
    /// Sequence number of the chunk within its table (0-based, in key order).
    pub id: u64,
    /// Chunk-key column index; `None` reads the whole table as one chunk.
    pub key_column: Option<usize>,
    /// Inclusive lower bound; `None` = open (the first chunk also takes NULL keys).
    pub lo: Option<KeyValue>,
    /// Exclusive upper bound; `None` = open.
    pub hi: Option<KeyValue>,
    /// Whether this is the table's last chunk.
    pub last: bool,
}

/// A finished chunk and where it sits in the binlog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkMark {
    /// The table.
    pub table: TableId,
    /// The chunk.
    pub chunk: Chunk,
    /// Binlog position before the chunk's read (MariaDB: the read's exact snapshot point).
    pub low: BinlogPoint,
    /// Binlog position after the chunk's read (MariaDB: equal to `low`).
    pub high: BinlogPoint,
    /// Rows read.
    pub rows: u64,
}

/// What the snapshot readers produce, in completion order.
#[derive(Debug)]
pub enum SnapshotEvent {
    /// Rows of one chunk (op +I, ts 0); a chunk may produce several batches.
    Rows {
        /// Index of the table in the snapshot's table list.
        table: usize,
        /// The chunk's id ([`Chunk::id`]), so consumers know which chunks are partly emitted.
        chunk: u64,
        /// The rows in the table's change-batch schema.
        batch: RecordBatch,
    },
    /// A chunk finished; all its rows were sent before this.
    ChunkDone(Box<ChunkMark>),
    /// Every chunk of a table finished.
    TableDone {
        /// Index of the table.
        table: usize,
        /// Rows read in total.
        rows: u64,
    },
}

/// The finished chunks of a snapshot: where the binlog must start and which events it already
/// reflects.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Every finished chunk.
    pub marks: Vec<ChunkMark>,
    /// Whether LOW is the chunk's exact snapshot point (MariaDB) rather than a bound (MySQL).
    pub exact: bool,
}

impl SnapshotSummary {
    /// Where the binlog must start: the smallest LOW over all chunks.
    pub fn min_low(&self) -> Option<&BinlogPoint> {
        self.marks.iter().map(|m| &m.low).min()
    }

    /// Where a bounded (`snapshot` mode) read ends: the largest HIGH.
    pub fn max_high(&self) -> Option<&BinlogPoint> {
        self.marks.iter().map(|m| &m.high).max()
    }

    /// The watermark rule: whether a row event of `table` at `at` for chunk-key value `key` is
    /// already reflected in the snapshot (so the binlog reader must skip it). Conservative: when
    /// the key cannot be placed exactly (non-integer keys), the event is replayed.
    pub fn covers(&self, table: &TableId, key: Option<&KeyValue>, at: &BinlogPoint) -> bool {
        if !self.exact {
            return false;
        }
        let mut in_table = self.marks.iter().filter(|m| &m.table == table).peekable();
        if in_table.peek().is_none() {
            return false;
        }
        let k = key.and_then(KeyValue::as_i128);
        for m in in_table {
            if m.chunk.key_column.is_none() {
                return at < &m.low;
            }
            let Some(k) = k else { continue };
            let lo_ok = m
                .chunk
                .lo
                .as_ref()
                .and_then(KeyValue::as_i128)
                .is_none_or(|lo| k >= lo);
            let hi_ok = m
                .chunk
                .hi
                .as_ref()
                .and_then(KeyValue::as_i128)
                .is_none_or(|hi| k < hi);
            if lo_ok && hi_ok {
                return at < &m.low;
            }
        }
        false
    }
}

/// A running snapshot: pull [`SnapshotEvent`]s with [`Snapshot::next`].
#[derive(Debug)]
pub struct Snapshot {
    rx: mpsc::Receiver<Result<SnapshotEvent>>,
    tasks: JoinSet<()>,
    /// Whether the server is MariaDB (exact snapshot points).
    pub exact: bool,
}

impl Snapshot {
    /// Starts the splitter and `opts.parallelism` readers over `tables`.
    ///
    /// # Errors
    /// When the first connection fails (later failures arrive through [`Snapshot::next`]).
    pub async fn start(
        conn_opts: mysql_async::Opts,
        tables: Vec<Arc<MySqlTable>>,
        opts: SnapshotOptions,
    ) -> Result<Snapshot> {
        let addr = format!("{}:{}", conn_opts.ip_or_hostname(), conn_opts.tcp_port());
        let mut probe = mysql_async::Conn::new(conn_opts.clone())
            .await
            .map_err(|source| MySqlError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let version: Option<String> = probe
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| MySqlError::query("reading the server version", e))?;
        let _ = probe.disconnect().await;
        let exact = version
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("mariadb");

        let parallelism = opts.parallelism.max(1);
        let (out_tx, out_rx) = mpsc::channel(parallelism * 2 + 2);
        let (chunk_tx, chunk_rx) = mpsc::channel::<Chunk>(parallelism * 2);
        let chunk_rx = Arc::new(Mutex::new(chunk_rx));
        let progress = Arc::new(Progress::new(&tables, opts.progress_bars));
        let mut tasks = JoinSet::new();

        let splitter = Splitter {
            conn_opts: conn_opts.clone(),
            addr: addr.clone(),
            tables: tables.clone(),
            opts: opts.clone(),
        };
        let tx = out_tx.clone();
        let progress_s = progress.clone();
        tasks.spawn(async move {
            if let Err(e) = splitter.run(chunk_tx, &progress_s).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        for _ in 0..parallelism {
            let reader = Reader {
                conn_opts: conn_opts.clone(),
                addr: addr.clone(),
                tables: tables.clone(),
                batch_rows: opts.batch_rows.max(1),
                exact,
                progress: progress.clone(),
            };
            let queue = chunk_rx.clone();
            let tx = out_tx.clone();
            tasks.spawn(async move {
                if let Err(e) = reader.run(queue, &tx).await {
                    let _ = tx.send(Err(e)).await;
                }
            });
        }
        drop(out_tx);
        Ok(Snapshot {
            rx: out_rx,
            tasks,
            exact,
        })
    }

    /// The next event; `None` once every table is done (or after an error was returned).
    ///
    /// # Cancel safety
    /// Cancel safe: an event not yet received stays queued.
    pub async fn next(&mut self) -> Option<Result<SnapshotEvent>> {
        match self.rx.recv().await {
            Some(Err(e)) => {
                self.tasks.abort_all();
                self.rx.close();
                Some(Err(e))
            }
            other => other,
        }
    }

    /// Reads everything into memory: all batches per table plus the summary (tests, small tables).
    ///
    /// # Errors
    /// The first reader or splitter error.
    pub async fn collect(mut self) -> Result<(BTreeMap<usize, Vec<RecordBatch>>, SnapshotSummary)> {
        let mut batches: BTreeMap<usize, Vec<RecordBatch>> = BTreeMap::new();
        let mut summary = SnapshotSummary {
            marks: Vec::new(),
            exact: self.exact,
        };
        while let Some(ev) = self.next().await {
            match ev? {
                SnapshotEvent::Rows { table, batch, .. } => {
                    batches.entry(table).or_default().push(batch)
                }
                SnapshotEvent::ChunkDone(m) => summary.marks.push(*m),
                SnapshotEvent::TableDone { .. } => {}
            }
        }
        Ok((batches, summary))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

/// Per-table progress: rows done / estimated, as bars on a terminal or log lines.
struct Progress {
    bars: Option<(indicatif::MultiProgress, Vec<indicatif::ProgressBar>)>,
    rows: Vec<AtomicU64>,
    chunks_left: Vec<AtomicU64>,
    split_done: Vec<std::sync::atomic::AtomicBool>,
    names: Vec<String>,
    estimates: Vec<u64>,
}

impl Progress {
    fn new(tables: &[Arc<MySqlTable>], bars: bool) -> Self {
        let bars = bars.then(|| {
            let mp = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:>30} {bar:30} {pos}/{len} rows {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            let v = tables
                .iter()
                .map(|t| {
                    let b = mp.add(indicatif::ProgressBar::new(t.estimated_rows.max(1)));
                    b.set_style(style.clone());
                    b.set_prefix(t.id.to_string());
                    b
                })
                .collect();
            (mp, v)
        });
        Progress {
            bars,
            rows: tables.iter().map(|_| AtomicU64::new(0)).collect(),
            chunks_left: tables.iter().map(|_| AtomicU64::new(0)).collect(),
            split_done: tables
                .iter()
                .map(|_| std::sync::atomic::AtomicBool::new(false))
                .collect(),
            names: tables.iter().map(|t| t.id.to_string()).collect(),
            estimates: tables.iter().map(|t| t.estimated_rows).collect(),
        }
    }

    fn chunk_planned(&self, table: usize) {
        self.chunks_left[table].fetch_add(1, AtomicOrdering::SeqCst);
    }

    /// Marks splitting of `table` finished (its last chunk is counted already).
    fn split_finished(&self, table: usize) {
        self.split_done[table].store(true, AtomicOrdering::SeqCst);
    }

    /// Records a finished chunk; returns the table's total rows when the table is complete.
    fn chunk_done(&self, table: usize, rows: u64) -> Option<u64> {
        let total = self.rows[table].fetch_add(rows, AtomicOrdering::SeqCst) + rows;
        let left = self.chunks_left[table].fetch_sub(1, AtomicOrdering::SeqCst) - 1;
        let est = self.estimates[table];
        match &self.bars {
            Some((_, bars)) => {
                bars[table].set_length(est.max(total));
                bars[table].set_position(total);
            }
            None => {
                // Log lines instead of bars: one per 10 % of the estimate (and per chunk at debug).
                let step = (est / 10).max(1);
                if (total - rows) / step != total / step {
                    tracing::info!(table = %self.names[table], rows_done = total, rows_estimated = est, "Snapshot progress.");
                } else {
                    tracing::debug!(table = %self.names[table], rows_done = total, rows_estimated = est, "Snapshot chunk finished.");
                }
            }
        }
        let done = left == 0 && self.split_done[table].load(AtomicOrdering::SeqCst);
        if done {
            match &self.bars {
                Some((_, bars)) => bars[table].finish_with_message("done"),
                None => {
                    tracing::info!(table = %self.names[table], rows = total, "Snapshot of table finished.")
                }
            }
        }
        done.then_some(total)
    }
}

/// Chunk planning, table after table, on its own connection.
struct Splitter {
    conn_opts: mysql_async::Opts,
    addr: String,
    tables: Vec<Arc<MySqlTable>>,
    opts: SnapshotOptions,
}

impl Splitter {
    async fn run(self, tx: mpsc::Sender<Chunk>, progress: &Progress) -> Result<()> {
        let mut conn = mysql_async::Conn::new(self.conn_opts.clone())
            .await
            .map_err(|source| MySqlError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        for (ti, table) in self.tables.iter().enumerate() {
            let key = self.chunk_key(table)?;
            let mut sink = ChunkSink {
                tx: &tx,
                table: ti,
                key,
                next_id: 0,
                progress,
                pending: None,
                holes: Vec::new(),
            };
            match key {
                None => {
                    tracing::warn!(table = %table.id, "Table has no primary key and no chunk key column; reading it as one chunk.");
                    sink.push(None, None).await?;
                }
                Some(k) => {
                    let point = self
                        .opts
                        .resume
                        .get(&table.id.to_string())
                        .filter(|r| r.key_column.eq_ignore_ascii_case(&table.columns[k].name));
                    let resume = point.and_then(|r| r.from.clone());
                    if table.columns[k].kind.is_integer() {
                        sink.holes = point.map(|r| holes(&r.done)).unwrap_or_default();
                    }
                    if let Some(from) = &resume {
                        tracing::info!(table = %table.id, from = ?from, "Resuming the snapshot of a partly read table.");
                    }
                    self.split_table(&mut conn, table, k, resume, &mut sink)
                        .await?
                }
            }
            sink.finish().await?;
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    fn chunk_key(&self, table: &MySqlTable) -> Result<Option<usize>> {
        for (filter, column) in &self.opts.chunk_keys {
            if filter.matches(&table.id.schema, &table.id.table) {
                return table
                    .column_index(column)
                    .map(Some)
                    .ok_or_else(|| MySqlError::ChunkKey {
                        table: table.id.to_string(),
                        message: format!("chunk key column `{column}` does not exist"),
                    });
            }
        }
        Ok(table
            .schema
            .primary_key
            .first()
            .and_then(|k| table.column_index(k)))
    }

    async fn split_table(
        &self,
        conn: &mut mysql_async::Conn,
        table: &MySqlTable,
        key: usize,
        resume: Option<KeyValue>,
        sink: &mut ChunkSink<'_>,
    ) -> Result<()> {
        let t = quote_table(&table.id);
        let k = quote_ident(&table.columns[key].name);
        let ctx = |what: &str| {
            format!(
                "{what} of {} (chunk key {})",
                table.id, table.columns[key].name
            )
        };
        // On resume the first chunk starts at the resume key (NULL keys were read before).
        let first_lo = resume.clone();
        let row: Option<(Value, Value)> = match &resume {
            None => {
                conn.exec_first(format!("SELECT MIN({k}), MAX({k}) FROM {t}"), ())
                    .await
            }
            Some(from) => {
                conn.exec_first(
                    format!("SELECT MIN({k}), MAX({k}) FROM {t} WHERE {k} >= ?"),
                    (from.to_value(),),
                )
                .await
            }
        }
        .map_err(|e| MySqlError::query(ctx("reading MIN/MAX"), e))?;
        let Some((min, max)) = row else {
            return sink.push(first_lo, None).await;
        };
        let (Some(min), Some(max)) = (KeyValue::from_value(&min), KeyValue::from_value(&max))
        else {
            // Empty table (or only NULL keys): one open chunk.
            return sink.push(first_lo, None).await;
        };
        let chunk_size = self.opts.chunk_size.max(1) as i128;
        if table.columns[key].kind.is_integer()
            && let (Some(lo), Some(hi)) = (min.as_i128(), max.as_i128())
        {
            let rows = i128::from(table.estimated_rows.max(1));
            let span = hi - lo + 1;
            let factor = span as f64 / rows as f64;
            if (self.opts.even_factor_lower..=self.opts.even_factor_upper).contains(&factor) {
                let step = ((factor * chunk_size as f64) as i128).max(1);
                let mut start: Option<KeyValue> = first_lo.clone();
                let mut end = lo + step;
                while end <= hi {
                    sink.push(start, Some(KeyValue::from_i128(end))).await?;
                    start = Some(KeyValue::from_i128(end));
                    end += step;
                }
                return sink.push(start, None).await;
            }
        }
        // LIMIT walk: the next chunk starts at the (chunk_size+1)-th key >= start.
        let next_sql = format!(
            "SELECT {k} FROM {t} WHERE {k} >= ? ORDER BY {k} LIMIT 1 OFFSET {}",
            self.opts.chunk_size.max(1)
        );
        let after_sql = format!("SELECT MIN({k}) FROM {t} WHERE {k} > ?");
        let mut start = min;
        let mut first = true;
        loop {
            let next: Option<Value> = conn
                .exec_first(next_sql.as_str(), (start.to_value(),))
                .await
                .map_err(|e| MySqlError::query(ctx("walking chunk boundaries"), e))?;
            let mut next = next.as_ref().and_then(KeyValue::from_value);
            if next.as_ref() == Some(&start) {
                // Many equal keys: the chunk takes all of them.
                let after: Option<Value> = conn
                    .exec_first(after_sql.as_str(), (start.to_value(),))
                    .await
                    .map_err(|e| MySqlError::query(ctx("walking chunk boundaries"), e))?;
                next = after.as_ref().and_then(KeyValue::from_value);
            }
            let lo = if first {
                first_lo.clone()
            } else {
                Some(start.clone())
            };
            first = false;
            match next {
                Some(n) => {
                    sink.push(lo, Some(n.clone())).await?;
                    start = n;
                }
                None => return sink.push(lo, None).await,
            }
        }
    }
}

/// Integer key ranges `[lo, hi)` of chunks finished before a restart (`None`: open end), in
/// key order; empty when a bound is not an integer (those chunks are read again).
fn holes(done: &[ChunkMark]) -> Vec<(Option<i128>, Option<i128>)> {
    let mut out = Vec::with_capacity(done.len());
    for m in done {
        let bound = |b: &Option<KeyValue>| match b {
            None => Some(None),
            Some(v) => v.as_i128().map(Some),
        };
        match (bound(&m.chunk.lo), bound(&m.chunk.hi)) {
            (Some(lo), Some(hi)) => out.push((lo, hi)),
            _ => return Vec::new(),
        }
    }
    out.sort_by_key(|h| h.0.unwrap_or(i128::MIN));
    out
}

/// Numbers chunks and marks the last one of a table (sent one step behind).
struct ChunkSink<'a> {
    tx: &'a mpsc::Sender<Chunk>,
    table: usize,
    key: Option<usize>,
    next_id: u64,
    progress: &'a Progress,
    pending: Option<Chunk>,
    /// Key ranges finished before a restart: chunks are cut around them.
    holes: Vec<(Option<i128>, Option<i128>)>,
}

impl ChunkSink<'_> {
    /// Plans the chunk `[lo, hi)` minus the finished ranges (`holes`).
    async fn push(&mut self, lo: Option<KeyValue>, hi: Option<KeyValue>) -> Result<()> {
        if self.holes.is_empty() {
            return self.push_range(lo, hi).await;
        }
        let (Some(lo_i), Some(hi_i)) = (
            lo.as_ref().map_or(Some(None), |v| v.as_i128().map(Some)),
            hi.as_ref().map_or(Some(None), |v| v.as_i128().map(Some)),
        ) else {
            return self.push_range(lo, hi).await;
        };
        // Whether a start below the chunk's end remains (an open end is +inf).
        let before_end = |c: i128| hi_i.is_none_or(|e| c < e);
        let mut cur = (lo, lo_i);
        for (h_lo, h_hi) in self.holes.clone() {
            // Hole entirely below the current start, or at/after the chunk's end: not in the way.
            if h_hi.is_some_and(|h| cur.1.is_some_and(|c| h <= c)) {
                continue;
            }
            if let (Some(h), Some(e)) = (h_lo, hi_i)
                && h >= e
            {
                break;
            }
            if h_lo.is_some_and(|h| cur.1.is_none_or(|c| c < h)) {
                self.push_range(cur.0.clone(), h_lo.map(KeyValue::from_i128))
                    .await?;
            }
            let Some(h_hi) = h_hi else {
                return Ok(()); // the rest of the table is finished
            };
            cur = (Some(KeyValue::from_i128(h_hi)), Some(h_hi));
            if !before_end(h_hi) {
                return Ok(());
            }
        }
        self.push_range(cur.0, hi).await
    }

    async fn push_range(&mut self, lo: Option<KeyValue>, hi: Option<KeyValue>) -> Result<()> {
        let chunk = Chunk {
            table: self.table,
            id: self.next_id,
            key_column: self.key,
            lo,
            hi,
            last: false,
        };
        self.next_id += 1;
        if let Some(prev) = self.pending.replace(chunk) {
            self.send(prev).await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<()> {
        if self.pending.is_none() && self.next_id == 0 && !self.holes.is_empty() {
            // Everything left was finished before a restart: an empty chunk ends the table.
            self.push_range(Some(KeyValue::Int(0)), Some(KeyValue::Int(0)))
                .await?;
        }
        if let Some(mut last) = self.pending.take() {
            last.last = true;
            // Count the chunk before declaring the split finished, so no reader sees "0 left and
            // split finished" while the last chunk is still unsent.
            self.progress.chunk_planned(self.table);
            self.progress.split_finished(self.table);
            self.tx
                .send(last)
                .await
                .map_err(|_| MySqlError::Task("snapshot readers stopped".into()))?;
        }
        Ok(())
    }

    async fn send(&self, chunk: Chunk) -> Result<()> {
        self.progress.chunk_planned(self.table);
        self.tx
            .send(chunk)
            .await
            .map_err(|_| MySqlError::Task("snapshot readers stopped".into()))
    }
}

/// How one column's server value is appended (decided once per table).
#[derive(Debug, Clone, Copy)]
enum Cell {
    Int,
    Float,
    Double,
    Decimal,
    Bit,
    Date,
    DateTime,
    Time,
    Text,
    BinaryPadded(usize),
    Bytes,
    Geometry,
}

impl Cell {
    fn of(c: &MySqlColumn) -> Cell {
        match c.kind {
            MySqlKind::TinyInt
            | MySqlKind::SmallInt
            | MySqlKind::MediumInt
            | MySqlKind::Int
            | MySqlKind::BigInt
            | MySqlKind::Year => Cell::Int,
            MySqlKind::Float => Cell::Float,
            MySqlKind::Double => Cell::Double,
            MySqlKind::Decimal => Cell::Decimal,
            MySqlKind::Bit => Cell::Bit,
            MySqlKind::Date => Cell::Date,
            MySqlKind::DateTime | MySqlKind::Timestamp => Cell::DateTime,
            MySqlKind::Time => Cell::Time,
            MySqlKind::Char
            | MySqlKind::VarChar
            | MySqlKind::Text
            | MySqlKind::Enum
            | MySqlKind::Set
            | MySqlKind::Json => Cell::Text,
            MySqlKind::Binary => Cell::BinaryPadded(c.length as usize),
            MySqlKind::VarBinary | MySqlKind::Blob => Cell::Bytes,
            MySqlKind::Geometry => Cell::Geometry,
        }
    }
}

/// Appends one server value to a column builder; the session sends text as utf8mb4 and
/// TIMESTAMPs in UTC, so no further zone or charset work is needed here.
fn append_cell(
    b: &mut crate::builders::ColumnBuilder,
    cell: Cell,
    v: &Value,
) -> std::result::Result<(), ValueError> {
    match (v, cell) {
        (Value::NULL, _) => {
            b.append_null();
            Ok(())
        }
        (Value::Int(i), Cell::Int | Cell::Decimal | Cell::Bit) => b.append_i64(*i),
        (Value::UInt(u), Cell::Int | Cell::Decimal | Cell::Bit) => b.append_u64(*u),
        (Value::Float(f), _) => b.append_f32(*f),
        (Value::Double(f), Cell::Float) => b.append_f32(*f as f32),
        (Value::Double(f), _) => b.append_f64(*f),
        (Value::Date(y, m, d, h, mi, s, us), Cell::Date)
            if *h == 0 && *mi == 0 && *s == 0 && *us == 0 =>
        {
            b.append_date(u32::from(*y), u32::from(*m), u32::from(*d))
        }
        (Value::Date(y, m, d, h, mi, s, us), _) => b.append_datetime(
            u32::from(*y),
            u32::from(*m),
            u32::from(*d),
            u32::from(*h),
            u32::from(*mi),
            u32::from(*s),
            *us,
        ),
        (Value::Time(neg, d, h, m, s, us), _) => {
            let mag =
                ((i64::from(*d) * 24 + i64::from(*h)) * 3600 + i64::from(*m) * 60 + i64::from(*s))
                    * 1_000_000
                    + i64::from(*us);
            b.append_time_us(if *neg { -mag } else { mag })
        }
        (Value::Bytes(x), Cell::Decimal) => b.append_decimal_str(x),
        (Value::Bytes(x), Cell::Bit) => b.append_bit(x),
        (Value::Bytes(x), Cell::Text) => b.append_text(x, Charset::Utf8),
        (Value::Bytes(x), Cell::BinaryPadded(n)) => b.append_bytes_padded(x, n),
        (Value::Bytes(x), Cell::Bytes) => b.append_bytes(x),
        // MySQL stores GEOMETRY as a 4-byte SRID followed by WKB; we carry the WKB.
        (Value::Bytes(x), Cell::Geometry) => b.append_bytes(x.get(4..).unwrap_or_default()),
        (Value::Bytes(x), Cell::Int) => match std::str::from_utf8(x)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            Some(i) => b.append_i64(i),
            None => match std::str::from_utf8(x)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
            {
                Some(u) => b.append_u64(u),
                None => Err(ValueError::Mismatch {
                    value_kind: "text",
                    target: b.data_type().clone(),
                }),
            },
        },
        (Value::Bytes(x), Cell::Float | Cell::Double) => match std::str::from_utf8(x)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
        {
            Some(f) => b.append_f64(f),
            None => Err(ValueError::Mismatch {
                value_kind: "text",
                target: b.data_type().clone(),
            }),
        },
        (Value::Int(i), _) => b.append_i64(*i),
        (Value::UInt(u), _) => b.append_u64(*u),
        (Value::Bytes(_), _) => Err(ValueError::Mismatch {
            value_kind: "bytes",
            target: b.data_type().clone(),
        }),
    }
}

/// One chunk reader with its own connection.
struct Reader {
    conn_opts: mysql_async::Opts,
    addr: String,
    tables: Vec<Arc<MySqlTable>>,
    batch_rows: usize,
    exact: bool,
    progress: Arc<Progress>,
}

impl Reader {
    async fn run(
        self,
        queue: Arc<Mutex<mpsc::Receiver<Chunk>>>,
        tx: &mpsc::Sender<Result<SnapshotEvent>>,
    ) -> Result<()> {
        let mut conn = mysql_async::Conn::new(self.conn_opts.clone())
            .await
            .map_err(|source| MySqlError::Connect {
                addr: self.addr.clone(),
                source,
            })?;
        conn.query_drop(
            "SET SESSION time_zone = '+00:00', character_set_results = utf8mb4; \
             SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        )
        .await
        .map_err(|e| MySqlError::query("preparing the snapshot session", e))?;
        let mut builders: BTreeMap<usize, TableBatchBuilder> = BTreeMap::new();
        loop {
            let chunk = { queue.lock().await.recv().await };
            let Some(chunk) = chunk else { break };
            let table = self.tables[chunk.table].clone();
            let b = match builders.entry(chunk.table) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(TableBatchBuilder::try_new(&table.schema).map_err(|source| {
                        MySqlError::Value {
                            table: table.id.to_string(),
                            column: String::new(),
                            chunk: format!("{}", chunk.id),
                            source,
                        }
                    })?)
                }
            };
            let mark = self.read_chunk(&mut conn, &table, &chunk, b, tx).await?;
            let rows = mark.rows;
            if tx
                .send(Ok(SnapshotEvent::ChunkDone(Box::new(mark))))
                .await
                .is_err()
            {
                break;
            }
            if let Some(total) = self.progress.chunk_done(chunk.table, rows)
                && tx
                    .send(Ok(SnapshotEvent::TableDone {
                        table: chunk.table,
                        rows: total,
                    }))
                    .await
                    .is_err()
            {
                break;
            }
        }
        let _ = conn.disconnect().await;
        Ok(())
    }

    async fn read_chunk(
        &self,
        conn: &mut mysql_async::Conn,
        table: &MySqlTable,
        chunk: &Chunk,
        b: &mut TableBatchBuilder,
        tx: &mpsc::Sender<Result<SnapshotEvent>>,
    ) -> Result<ChunkMark> {
        let chunk_name = || format!("{} [{:?} .. {:?})", chunk.id, chunk.lo, chunk.hi);
        let ctx = |what: &str| format!("{what} chunk {} of {}", chunk_name(), table.id);
        let low_before = if self.exact {
            None
        } else {
            Some(master_status(conn).await?)
        };
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(|e| MySqlError::query(ctx("starting the transaction of"), e))?;
        let low = match low_before {
            Some(p) => p,
            None => snapshot_point(conn).await?,
        };
        let cols: Vec<String> = table.columns.iter().map(|c| quote_ident(&c.name)).collect();
        let mut sql = format!("SELECT {} FROM {}", cols.join(", "), quote_table(&table.id));
        let mut params: Vec<Value> = Vec::new();
        if let Some(k) = chunk.key_column {
            let k = quote_ident(&table.columns[k].name);
            match (&chunk.lo, &chunk.hi) {
                (None, None) => {}
                (None, Some(hi)) => {
                    sql.push_str(&format!(" WHERE ({k} < ? OR {k} IS NULL)"));
                    params.push(hi.to_value());
                }
                (Some(lo), Some(hi)) => {
                    sql.push_str(&format!(" WHERE {k} >= ? AND {k} < ?"));
                    params.extend([lo.to_value(), hi.to_value()]);
                }
                (Some(lo), None) => {
                    sql.push_str(&format!(" WHERE {k} >= ?"));
                    params.push(lo.to_value());
                }
            }
        }
        let cells: Vec<Cell> = table.columns.iter().map(Cell::of).collect();
        let mut rows = 0u64;
        {
            let mut result = conn
                .exec_iter(sql.as_str(), params)
                .await
                .map_err(|e| MySqlError::query(ctx("reading"), e))?;
            while let Some(row) = result
                .next()
                .await
                .map_err(|e| MySqlError::query(ctx("reading"), e))?
            {
                for (i, cell) in cells.iter().enumerate() {
                    let v = row.as_ref(i).unwrap_or(&Value::NULL);
                    if let Err(source) = append_cell(b.column(i), *cell, v) {
                        b.reset();
                        return Err(MySqlError::Value {
                            table: table.id.to_string(),
                            column: table.columns[i].name.clone(),
                            chunk: chunk_name(),
                            source,
                        });
                    }
                }
                b.end_row(Op::Insert, 0);
                rows += 1;
                if b.len() >= self.batch_rows {
                    let batch = b
                        .finish(&table.schema)
                        .map_err(|source| MySqlError::Arrow {
                            table: table.id.to_string(),
                            source,
                        })?;
                    if tx
                        .send(Ok(SnapshotEvent::Rows {
                            table: chunk.table,
                            chunk: chunk.id,
                            batch,
                        }))
                        .await
                        .is_err()
                    {
                        return Err(MySqlError::Task("snapshot consumer stopped".into()));
                    }
                }
            }
        }
        if !b.is_empty() {
            let batch = b
                .finish(&table.schema)
                .map_err(|source| MySqlError::Arrow {
                    table: table.id.to_string(),
                    source,
                })?;
            if tx
                .send(Ok(SnapshotEvent::Rows {
                    table: chunk.table,
                    chunk: chunk.id,
                    batch,
                }))
                .await
                .is_err()
            {
                return Err(MySqlError::Task("snapshot consumer stopped".into()));
            }
        }
        conn.query_drop("COMMIT")
            .await
            .map_err(|e| MySqlError::query(ctx("committing"), e))?;
        let high = if self.exact {
            low.clone()
        } else {
            master_status(conn).await?
        };
        Ok(ChunkMark {
            table: table.id.clone(),
            chunk: chunk.clone(),
            low,
            high,
            rows,
        })
    }
}

/// The current end of the binlog (`SHOW MASTER STATUS`; `SHOW BINARY LOG STATUS` on MySQL 8.4+).
///
/// # Errors
/// When binary logging is off (empty result) or the user lacks REPLICATION CLIENT.
pub async fn master_status(conn: &mut mysql_async::Conn) -> Result<BinlogPoint> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| {
                MySqlError::query("reading the binlog position (SHOW MASTER STATUS)", e)
            })?,
    };
    let Some(mut row) = row else {
        return Err(MySqlError::ServerCheck {
            message: "SHOW MASTER STATUS returned nothing: binary logging is off".into(),
            hint: "start the server with --log-bin and --binlog-format=ROW".into(),
        });
    };
    let file: String = row.take_opt(0).and_then(|r| r.ok()).unwrap_or_default();
    let pos: u64 = row.take_opt(1).and_then(|r| r.ok()).unwrap_or_default();
    let gtid: Option<String> = match row.take_opt::<Option<String>, usize>(4) {
        Some(Ok(Some(g))) if !g.is_empty() => Some(g),
        _ => conn
            .query_first::<Option<String>, _>("SELECT @@gtid_binlog_pos")
            .await
            .ok()
            .flatten()
            .flatten(),
    };
    Ok(BinlogPoint { file, pos, gtid })
}

/// MariaDB: the binlog position of the current consistent-snapshot transaction.
async fn snapshot_point(conn: &mut mysql_async::Conn) -> Result<BinlogPoint> {
    let rows: Vec<(String, String)> = conn
        .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
        .await
        .map_err(|e| MySqlError::query("reading Binlog_snapshot_file/position", e))?;
    let mut file = String::new();
    let mut pos = 0u64;
    for (k, v) in rows {
        match k.to_ascii_lowercase().as_str() {
            "binlog_snapshot_file" => file = v,
            "binlog_snapshot_position" => pos = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    if file.is_empty() {
        return Err(MySqlError::ServerCheck {
            message: "Binlog_snapshot_file is empty: binary logging is off".into(),
            hint: "start the server with --log-bin and --binlog-format=ROW".into(),
        });
    }
    // No GTID here: BINLOG_GTID_POS scans the binlog file up to `pos`, too slow per chunk; the
    // hand-off resumes by file/position.
    Ok(BinlogPoint {
        file,
        pos,
        gtid: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(file: &str, pos: u64) -> BinlogPoint {
        BinlogPoint {
            file: file.into(),
            pos,
            gtid: None,
        }
    }

    #[test]
    fn binlog_points_order_by_file_number_then_position() {
        assert!(point("mysql-bin.000002", 4) > point("mysql-bin.000001", 900));
        assert!(
            point("mysql-bin.000010", 4) > point("mysql-bin.000009", 4),
            "numeric, not lexical"
        );
        assert!(point("mysql-bin.000001", 5) > point("mysql-bin.000001", 4));
    }

    #[test]
    fn watermark_rule_skips_only_events_before_the_chunk_point() {
        let t = TableId::new("d", "t");
        let chunk = |id, lo: Option<i64>, hi: Option<i64>, pos| ChunkMark {
            table: t.clone(),
            chunk: Chunk {
                table: 0,
                id,
                key_column: Some(0),
                lo: lo.map(KeyValue::Int),
                hi: hi.map(KeyValue::Int),
                last: hi.is_none(),
            },
            low: point("b.000001", pos),
            high: point("b.000001", pos),
            rows: 0,
        };
        let s = SnapshotSummary {
            marks: vec![
                chunk(0, None, Some(100), 500),
                chunk(1, Some(100), None, 900),
            ],
            exact: true,
        };
        assert_eq!(s.min_low(), Some(&point("b.000001", 500)));
        assert!(s.covers(&t, Some(&KeyValue::Int(5)), &point("b.000001", 400)));
        assert!(
            !s.covers(&t, Some(&KeyValue::Int(5)), &point("b.000001", 600)),
            "after chunk 0's point: apply"
        );
        assert!(
            s.covers(&t, Some(&KeyValue::Int(150)), &point("b.000001", 600)),
            "before chunk 1's point: skip"
        );
        assert!(!s.covers(
            &TableId::new("d", "other"),
            Some(&KeyValue::Int(5)),
            &point("b.000001", 1)
        ));
        let inexact = SnapshotSummary { exact: false, ..s };
        assert!(
            !inexact.covers(&t, Some(&KeyValue::Int(5)), &point("b.000001", 400)),
            "MySQL: replay"
        );
    }
}
