//! The runtime sink shared by Doris and StarRocks: per-table buffers, parallel loads, exactly-once.
//!
//! ```text
//!  write(batch) ─▶ TableState[db.table] ─ encode rows into buf ─┬─ rows ≥ max-rows / bytes ≥ max-bytes
//!                                                              │  / age ≥ interval ─▶ start_load
//!  start_load ─ (wait for this table's previous load: order per table is kept)
//!             ─ (semaphore: at most `max_inflight` loads across tables)
//!             ─ spawn: compress ─▶ Stream Load (ALO)  |  Doris 2PC precommit  |  StarRocks begin/load/prepare
//!  flush      ─ start_load every table, await all
//!  tick       ─ (engine, ~1/s) settle finished loads; start_load tables whose rows are ≥ interval old
//!  budget     ─ before/after encoding: while buffers + bodies in flight > sink buffer budget,
//!               start the biggest buffers' loads, then wait for loads in flight
//!  precommit(ckpt) ─ flush ─▶ state {token, checkpoint, pending txns, tables}  (persisted by the engine)
//!  commit(ckpt)    ─ commit every pending txn (Doris `_stream_load_2pc`, StarRocks `/api/transaction/commit`)
//! ```
//!
//! Change semantics:
//! - Unique-key (Doris) / primary-key (StarRocks) tables get upserts; deletes carry
//!   `__DORIS_DELETE_SIGN__` = 1 (via `hidden_columns`) or `__op` = 1. `-U` rows are skipped unless
//!   `sink.ignore.update-before` is false (then they are deletes, as in Flink) — except when the
//!   update changed the primary key: then the `-U` is a delete of the old key, so the old row
//!   goes (see [`encode::select_rows_keyed`]).
//! - Duplicate-key (append-only) Doris tables — source tables without a primary key — get
//!   inserts and update-afters only: deletes cannot be expressed there and are dropped.
//! - Ordering: a table's loads run one after the other in source order, so "the later load
//!   wins" converges to the source state, also when a restart replays rows already loaded.
//!   Tables that cdcflow creates therefore get no Doris sequence column: a sequence made up by
//!   the sink (binlog event times have 1 s resolution, so it needs a per-run counter) would make
//!   replayed rows lose to the copies loaded by the previous run.
//! - Tables created by someone else that declare a Doris sequence column still get a value per
//!   row: `event_ms << 20 | n`, where `n` counts rows of the same millisecond of that table in
//!   this run (saturating at 2^20 − 1). Nothing the sink sees is monotonic across restarts, so a
//!   replay after a restart can lose to rows the previous run loaded in the same second (stale
//!   values, lost deletes); the sink warns once per such table. Use a sequence column mapped to
//!   a source column (`function_column.sequence_col`) or none to avoid it.
//!
//! Memory: [`StreamLoadSink::buffered_bytes`] counts encoded buffers plus the bodies of loads in
//! flight (not yet settled). With a budget (`BuildContext::sink_buffer_budget`), that sum is
//! brought back under the budget before every `write` returns: the biggest buffers are loaded
//! first (each table's loads still run in order), then the sink waits for loads in flight. A
//! table's buffer is capped at half the budget, so one load can run while the next buffer
//! fills, and batches bigger than that cap are written in slices.
//!
//! Labels are `<prefix>_<table>_<token>-<checkpoint>_<n>` (see [`crate::label`]); the token is
//! fresh per run for at-least-once loads and persisted with the checkpoint for exactly-once ones,
//! so recovery can find the leftovers of a crashed run by label.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::Array;
use async_trait::async_trait;
use bytes::Bytes;
use cdcflow_engine::change::{ChangeBatch, SchemaChange};
use cdcflow_engine::component::Sink;
use cdcflow_engine::error::{Classify, ErrorDomain};
use cdcflow_engine::metrics::Metrics;
use cdcflow_engine::schema::{TableId, TableSchema, TableSchemaRef};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::ddl::{self, DdlOptions};
use crate::encode::{
    self, Compression, EncodeError, EncodeSpec, Format, LocalZone, RowPolicy, Selection,
    select_rows_keyed,
};
use crate::error::{Result, SinkError};
use crate::label::{LabelMaker, run_epoch};
use crate::stream_load::{
    LabelState, LoadRequest, SrTxnOp, StreamLoadClient, System, TxnOp, TxnRef,
};

/// Doris's delete-flag column.
pub const DORIS_DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";
/// Doris's hidden sequence column.
pub const DORIS_SEQUENCE_COL: &str = "__DORIS_SEQUENCE_COL__";
/// StarRocks's upsert/delete column.
pub const STARROCKS_OP: &str = "__op";

/// Everything the runtime sink needs, resolved from the validated config.
#[derive(Debug, Clone)]
pub struct SinkSettings {
    /// Doris or StarRocks.
    pub system: System,
    /// `sink.label-prefix`.
    pub label_prefix: String,
    /// Doris 2PC / StarRocks Transaction Stream Load, committed at checkpoints.
    pub exactly_once: bool,
    /// Body format.
    pub format: Format,
    /// Body compression.
    pub compression: Compression,
    /// Extra Stream Load headers from `sink.properties.*` (format-related keys removed).
    pub headers: Vec<(String, String)>,
    /// Flush a table at this many rows.
    pub max_rows: usize,
    /// Flush a table at this many body bytes.
    pub max_bytes: usize,
    /// Flush a table whose oldest buffered row is this old.
    pub interval: Duration,
    /// Loads in flight across tables.
    pub max_inflight: usize,
    /// `sink.ignore.update-before`.
    pub ignore_update_before: bool,
    /// `sink.enable-delete`.
    pub enable_delete: bool,
    /// Zone for TIMESTAMP_LTZ.
    pub zone: LocalZone,
    /// DDL shaping (properties, buckets, char bytes).
    pub ddl: DdlOptions,
    /// The Stream Load `timeout` header, in seconds.
    pub load_timeout_s: u64,
    /// How to run DDL.
    pub ddl_transport: DdlTransport,
    /// Bytes all buffers plus the bodies of loads in flight may hold (`0`: no limit); see the
    /// module docs. Also caps `max_bytes` at half of it.
    pub buffer_budget: usize,
}

impl SinkSettings {
    /// Defaults for `system` (Flink's effective defaults; CSV with safe separators; at-least-once).
    pub fn new(system: System) -> Self {
        SinkSettings {
            system,
            label_prefix: String::new(),
            exactly_once: false,
            format: Format::safe_csv(),
            compression: Compression::None,
            headers: Vec::new(),
            max_rows: 500_000,
            max_bytes: 100 * 1024 * 1024,
            interval: Duration::from_secs(10),
            max_inflight: 2,
            ignore_update_before: true,
            enable_delete: true,
            zone: LocalZone::utc(),
            ddl: DdlOptions {
                char_bytes: 4,
                schema_change_timeout_s: 1800,
                ..DdlOptions::default()
            },
            load_timeout_s: 600,
            ddl_transport: DdlTransport::DorisHttp,
            buffer_budget: 0,
        }
    }
}

/// How DDL reaches the server.
#[derive(Debug, Clone)]
pub enum DdlTransport {
    /// Doris SQL over FE HTTP (`/api/query/default_cluster/{db}`).
    DorisHttp,
    /// MySQL protocol to the FE query port (StarRocks).
    Mysql {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// User.
        user: String,
        /// Password.
        password: cdcflow_engine::config::Secret,
    },
}

/// A prepared (precommitted) transaction waiting for its checkpoint to become durable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingTxn {
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Label.
    pub label: String,
    /// Doris transaction id (`-1` when unknown: commit by label).
    pub txn_id: i64,
    /// Checkpoint the transaction belongs to.
    pub checkpoint: u64,
}

/// What `precommit` hands the engine to persist, and `build` receives after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkState {
    /// Label token of the run that wrote the checkpoint (reused, so leftovers can be found).
    pub token: String,
    /// The checkpoint id.
    pub checkpoint: u64,
    /// Prepared transactions to commit.
    pub pending: Vec<PendingTxn>,
    /// Every table written so far (db, table), to scan for leftover transactions.
    pub tables: Vec<(String, String)>,
}

/// Result of one finished load task.
#[derive(Debug)]
struct Loaded {
    rows: u64,
    pending: Option<PendingTxn>,
}

/// Per sink table state.
struct TableState {
    db: String,
    table: String,
    /// Columns the sink table has, as far as cdcflow knows (`None`: unknown, write all).
    sink_columns: Option<Vec<String>>,
    /// Unique/primary key model: deletes and upserts possible.
    keyed: bool,
    /// The table (created by someone else) declares a Doris sequence column cdcflow feeds.
    sequence: bool,
    /// The replay limitation of `sequence` was logged for this table.
    sequence_warned: bool,
    format: Format,
    buf: Vec<u8>,
    rows: usize,
    first_at: Option<Instant>,
    /// Schema and column list the buffered rows were encoded with.
    buf_schema: Option<(TableSchemaRef, Vec<String>)>,
    labels: LabelMaker,
    next_n: u64,
    /// The load in flight: its task and the size of its (uncompressed) body.
    inflight: Option<(JoinHandle<Result<Loaded>>, usize)>,
    seq_clock: (i64, i64),
    loaded: u64,
    /// Encoded bytes and rows so far, for the size estimate of the next batch.
    enc_bytes: u64,
    enc_rows: u64,
}

/// The Doris / StarRocks runtime sink.
pub struct StreamLoadSink {
    settings: Arc<SinkSettings>,
    client: StreamLoadClient,
    tables: HashMap<TableId, TableState>,
    sem: Arc<Semaphore>,
    token: String,
    /// Checkpoint the next loads will be committed under.
    epoch: u64,
    pending: Vec<PendingTxn>,
    mysql: Option<mysql_async::Conn>,
}

impl std::fmt::Debug for StreamLoadSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamLoadSink")
            .field("system", &self.settings.system)
            .field("tables", &self.tables.len())
            .finish()
    }
}

impl StreamLoadSink {
    /// Builds the sink and, in exactly-once mode, settles what a previous run left behind:
    /// commits the transactions of the last durable checkpoint and aborts later ones.
    pub async fn build(
        settings: SinkSettings,
        client: StreamLoadClient,
        state: Option<&serde_json::Value>,
    ) -> Result<Self> {
        let mut settings = settings;
        if settings.buffer_budget > 0 {
            // Half the budget per buffer: a full buffer's load can run while the next one fills.
            settings.max_bytes = settings.max_bytes.min((settings.buffer_budget / 2).max(1));
        }
        let sem = Arc::new(Semaphore::new(settings.max_inflight.max(1)));
        let restored: Option<SinkState> = match state {
            Some(v) if !v.is_null() => Some(serde_json::from_value(v.clone()).map_err(|e| {
                SinkError::Config(format!("unreadable sink state in checkpoint: {e}"))
            })?),
            _ => None,
        };
        let mut sink = StreamLoadSink {
            settings: Arc::new(settings),
            client,
            tables: HashMap::new(),
            sem,
            token: run_epoch(),
            epoch: 1,
            pending: Vec::new(),
            mysql: None,
        };
        if let Some(st) = restored {
            if sink.settings.exactly_once {
                sink.token = st.token.clone();
                sink.epoch = st.checkpoint + 1;
            }
            sink.recover(&st).await?;
        }
        Ok(sink)
    }

    /// Commits the persisted transactions and aborts leftovers of the crashed epoch.
    async fn recover(&mut self, st: &SinkState) -> Result<()> {
        for p in &st.pending {
            info!(db = %p.db, table = %p.table, label = %p.label, checkpoint = p.checkpoint, "Committing transaction of the restored checkpoint.");
            self.commit_txn(p).await?;
        }
        if !self.settings.exactly_once {
            return Ok(());
        }
        let epoch = format!("{}-{}", st.token, st.checkpoint + 1);
        for (db, table) in &st.tables {
            let maker = LabelMaker::new(&self.settings.label_prefix, db, table);
            for n in 0..100_000u64 {
                let label = maker.label(&epoch, n);
                match self.client.load_state(db, &label).await? {
                    LabelState::Unknown | LabelState::Aborted => break,
                    LabelState::Prepared | LabelState::Running => {
                        info!(db = %db, table = %table, label = %label, "Aborting leftover transaction of a crashed run.");
                        self.client.abort_label(db, table, &label).await?;
                    }
                    LabelState::Committed => {
                        warn!(db = %db, table = %table, label = %label, "Transaction after the restored checkpoint is already committed; its rows are replayed as upserts.");
                    }
                }
            }
        }
        Ok(())
    }

    fn epoch_label(&self) -> String {
        format!("{}-{}", self.token, self.epoch)
    }

    async fn run_ddl(&mut self, db: &str, stmt: &str) -> Result<serde_json::Value> {
        debug!(db, stmt, "Running DDL.");
        match &self.settings.ddl_transport {
            DdlTransport::DorisHttp => self.client.doris_sql(db, stmt).await,
            DdlTransport::Mysql {
                host,
                port,
                user,
                password,
            } => {
                use mysql_async::prelude::Queryable;
                let addr = format!("{host}:{port}");
                if self.mysql.is_none() {
                    let opts = mysql_async::OptsBuilder::default()
                        .ip_or_hostname(host.clone())
                        .tcp_port(*port)
                        .user(Some(user.clone()))
                        .pass(Some(password.expose().to_string()));
                    let conn =
                        mysql_async::Conn::new(opts)
                            .await
                            .map_err(|source| SinkError::Mysql {
                                addr: addr.clone(),
                                source,
                            })?;
                    self.mysql = Some(conn);
                }
                let Some(conn) = self.mysql.as_mut() else {
                    return Err(SinkError::Config("no MySQL connection".into()));
                };
                let res: std::result::Result<Vec<mysql_async::Row>, _> = conn.query(stmt).await;
                match res {
                    Ok(rows) => {
                        let text: Vec<serde_json::Value> = rows
                            .into_iter()
                            .map(|r| {
                                serde_json::Value::Array(
                                    (0..r.len())
                                        .map(|i| match r.as_ref(i) {
                                            Some(mysql_async::Value::Bytes(b)) => {
                                                serde_json::Value::String(
                                                    String::from_utf8_lossy(b).into_owned(),
                                                )
                                            }
                                            Some(v) => serde_json::Value::String(v.as_sql(true)),
                                            None => serde_json::Value::Null,
                                        })
                                        .collect(),
                                )
                            })
                            .collect();
                        Ok(serde_json::Value::Array(text))
                    }
                    Err(mysql_async::Error::Server(e)) => Err(SinkError::Ddl {
                        table: db.to_string(),
                        stmt: stmt.to_string(),
                        message: e.message,
                        retryable: false,
                    }),
                    Err(source) => {
                        self.mysql = None;
                        Err(SinkError::Mysql { addr, source })
                    }
                }
            }
        }
    }

    /// Runs DDL whose failure with one of `benign` (lower-case substrings) means "already done".
    async fn run_idempotent(&mut self, db: &str, stmt: &str, benign: &[&str]) -> Result<()> {
        match self.run_ddl(db, stmt).await {
            Ok(_) => Ok(()),
            Err(SinkError::Ddl { message, .. })
                if benign
                    .iter()
                    .any(|b| message.to_ascii_lowercase().contains(b)) =>
            {
                debug!(db, stmt, message, "DDL already applied.");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn state_for(&mut self, id: &TableId) -> &mut TableState {
        let s = &self.settings;
        self.tables.entry(id.clone()).or_insert_with(|| TableState {
            db: id.schema.clone(),
            table: id.table.clone(),
            sink_columns: None,
            keyed: true,
            sequence: false,
            sequence_warned: false,
            format: s.format.clone(),
            buf: Vec::new(),
            rows: 0,
            first_at: None,
            buf_schema: None,
            labels: LabelMaker::new(&s.label_prefix, &id.schema, &id.table),
            next_n: 0,
            inflight: None,
            seq_clock: (i64::MIN, 0),
            loaded: 0,
            enc_bytes: 0,
            enc_rows: 0,
        })
    }

    /// Waits for the table's load in flight, if any, and records its result.
    async fn settle(&mut self, id: &TableId) -> Result<()> {
        let Some(t) = self.tables.get_mut(id) else {
            return Ok(());
        };
        let Some((handle, _)) = t.inflight.take() else {
            return Ok(());
        };
        let res = handle.await.map_err(|e| SinkError::Task {
            table: id.to_string(),
            message: e.to_string(),
        })?;
        let loaded = res?;
        t.loaded += loaded.rows;
        if let Some(p) = loaded.pending {
            self.pending.push(p);
        }
        Ok(())
    }

    /// Starts loading the table's buffer (after its previous load finished).
    async fn start_load(&mut self, id: &TableId) -> Result<()> {
        self.settle(id).await?;
        let epoch = self.epoch_label();
        let checkpoint = self.epoch;
        let settings = self.settings.clone();
        let client = self.client.clone();
        let Some(t) = self.tables.get_mut(id) else {
            return Ok(());
        };
        if t.rows == 0 {
            t.buf.clear();
            t.buf_schema = None;
            t.first_at = None;
            return Ok(());
        }
        let label = t.labels.label(&epoch, t.next_n);
        t.next_n += 1;
        let body = std::mem::take(&mut t.buf);
        let rows = t.rows;
        t.rows = 0;
        t.first_at = None;
        let names = t.buf_schema.take().map(|(_, n)| n).unwrap_or_default();
        let headers = load_headers(&settings, t, &names);
        let permit = self
            .sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| SinkError::Task {
                table: id.to_string(),
                message: e.to_string(),
            })?;
        let (db, table) = (t.db.clone(), t.table.clone());
        let body_len = body.len();
        debug!(db = %db, table = %table, label = %label, rows, bytes = body_len, "Starting load.");
        let handle = tokio::spawn(async move {
            let started = Instant::now();
            let metric_table = TableId::new(db.clone(), table.clone());
            let _permit = permit;
            let body = if settings.compression == Compression::None {
                Bytes::from(body)
            } else {
                let c = settings.compression;
                let tname = format!("{db}.{table}");
                let out = tokio::task::spawn_blocking(move || encode::compress(c, &body))
                    .await
                    .map_err(|e| SinkError::Task {
                        table: tname.clone(),
                        message: e.to_string(),
                    })?
                    .map_err(|source| SinkError::Compress {
                        table: tname,
                        source,
                    })?;
                Bytes::from(out)
            };
            let sent = body.len() as u64;
            let res = run_load(
                &settings, &client, db, table, label, headers, body, rows, checkpoint,
            )
            .await;
            let loaded = res.as_ref().map_or(rows as u64, |l| l.rows);
            Metrics::global().load(&metric_table, started.elapsed(), loaded, sent, res.is_ok());
            res
        });
        t.inflight = Some((handle, body_len));
        Ok(())
    }

    /// Records the results of loads that have already finished, without waiting for others.
    async fn reap(&mut self) -> Result<()> {
        let done: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, t)| t.inflight.as_ref().is_some_and(|(h, _)| h.is_finished()))
            .map(|(k, _)| k.clone())
            .collect();
        for id in &done {
            self.settle(id).await?;
        }
        Ok(())
    }

    /// Starts the loads of tables whose oldest buffered row has waited `interval`, unless the
    /// table's previous load is still running (the next tick or write retries it).
    async fn flush_aged(&mut self) -> Result<()> {
        let due: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, t)| t.inflight.is_none() && self.needs_flush(t))
            .map(|(k, _)| k.clone())
            .collect();
        for id in &due {
            self.start_load(id).await?;
        }
        Ok(())
    }

    /// Brings buffers plus bodies in flight plus `incoming` (bytes about to be encoded) under the
    /// buffer budget: settles finished loads, starts the biggest buffers' loads while what is in
    /// flight cannot cover the excess, then waits for the biggest loads in flight.
    async fn make_room(&mut self, incoming: usize) -> Result<()> {
        let budget = self.settings.buffer_budget;
        if budget == 0 {
            return Ok(());
        }
        self.reap().await?;
        loop {
            let buffered: usize = self.tables.values().map(|t| t.buf.len()).sum();
            let inflight: usize = self
                .tables
                .values()
                .filter_map(|t| t.inflight.as_ref().map(|(_, n)| *n))
                .sum();
            let total = buffered + inflight + incoming;
            if total <= budget {
                return Ok(());
            }
            let excess = total - budget;
            let biggest_buf = self
                .tables
                .iter()
                .filter(|(_, t)| t.rows > 0)
                .max_by_key(|(_, t)| t.buf.len())
                .map(|(k, _)| k.clone());
            let biggest_load = self
                .tables
                .iter()
                .filter_map(|(k, t)| t.inflight.as_ref().map(|(_, n)| (k, *n)))
                .max_by_key(|(_, n)| *n)
                .map(|(k, _)| k.clone());
            match (biggest_buf, biggest_load) {
                (Some(id), _) if inflight < excess => {
                    debug!(table = %id, buffered, inflight, budget, "Sink buffer budget reached; loading the biggest buffer.");
                    self.start_load(&id).await?;
                }
                (_, Some(id)) => {
                    debug!(table = %id, buffered, inflight, budget, "Sink buffer budget reached; waiting for a load in flight.");
                    self.settle(&id).await?;
                }
                (Some(id), None) => self.start_load(&id).await?,
                // Nothing left to free: the incoming batch alone exceeds the budget.
                (None, None) => return Ok(()),
            }
        }
    }

    /// Estimated encoded size per row of `id`'s next rows: its average so far, else `fallback`.
    fn row_estimate(&self, id: &TableId, fallback: usize) -> usize {
        match self.tables.get(id) {
            Some(t) if t.enc_rows > 0 => (t.enc_bytes / t.enc_rows) as usize + 1,
            _ => fallback.max(1),
        }
    }

    /// Buffers one batch (a slice of what the engine wrote) of about `row_est` bytes per row.
    async fn write_one(&mut self, batch: ChangeBatch, row_est: usize) -> Result<()> {
        let id = batch.table.id.clone();
        // A buffer holds rows of one schema version only: flush when the version changes.
        let stale = self
            .tables
            .get(&id)
            .and_then(|t| t.buf_schema.as_ref())
            .is_some_and(|(s, _)| !Arc::ptr_eq(s, &batch.table) && !same_columns(s, &batch.table));
        if stale {
            self.start_load(&id).await?;
        }
        self.make_room(batch.num_rows().saturating_mul(row_est))
            .await?;
        if !self.encode_into(&batch)? {
            self.start_load(&id).await?;
            self.state_for(&id).format = Format::Json;
            self.encode_into(&batch)?;
        }
        let due: Vec<TableId> = self
            .tables
            .iter()
            .filter(|(_, t)| self.needs_flush(t))
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            self.start_load(&id).await?;
        }
        self.make_room(0).await
    }

    async fn commit_txn(&self, p: &PendingTxn) -> Result<()> {
        match self.settings.system {
            System::Doris => {
                let r = if p.txn_id >= 0 {
                    TxnRef::Id(p.txn_id)
                } else {
                    TxnRef::Label(p.label.clone())
                };
                self.client.doris_2pc(&p.db, TxnOp::Commit, r).await
            }
            System::StarRocks => {
                match self
                    .client
                    .sr_txn(
                        SrTxnOp::Commit,
                        &p.db,
                        &p.table,
                        &p.label,
                        &[],
                        Bytes::new(),
                    )
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => match self.client.load_state(&p.db, &p.label).await {
                        Ok(LabelState::Committed) => Ok(()),
                        _ => Err(e),
                    },
                }
            }
        }
    }

    /// Learns the key model and sequence support of an existing table from `SHOW CREATE TABLE`.
    /// `Ok(None)` when the server cannot tell (no such table, statement refused); an unreachable
    /// server is an error, so an outage never makes the sink guess the key model.
    async fn inspect_table(&mut self, db: &str, table: &str) -> Result<Option<(bool, bool)>> {
        let stmt = format!("SHOW CREATE TABLE {}", ddl::qualified(db, table));
        let v = match self.run_ddl(db, &stmt).await {
            Ok(v) => v,
            Err(e) if e.domain() == ErrorDomain::External => return Err(e),
            Err(e) => {
                debug!(db, table, error = %e, "Cannot inspect the sink table.");
                return Ok(None);
            }
        };
        let text = v.to_string().to_ascii_uppercase();
        let keyed = text.contains("UNIQUE KEY") || text.contains("PRIMARY KEY");
        let seq = text.contains("FUNCTION_COLUMN.SEQUENCE_TYPE")
            || text.contains("FUNCTION_COLUMN.SEQUENCE_COL");
        Ok(Some((keyed, seq)))
    }

    fn sink_table_of(&self, id: &TableId) -> (String, String) {
        (id.schema.clone(), id.table.clone())
    }

    /// Encodes the batch into its table's buffer; `Ok(false)` when CSV cannot carry a value (the
    /// buffer is left as it was).
    fn encode_into(&mut self, batch: &ChangeBatch) -> Result<bool> {
        let settings = self.settings.clone();
        let id = batch.table.id.clone();
        let t = self.state_for(&id);
        let schema = &batch.table;
        let policy = RowPolicy {
            ignore_update_before: settings.ignore_update_before,
            deletes: t.keyed && settings.enable_delete,
        };
        let keys: Vec<&dyn Array> = schema
            .primary_key
            .iter()
            .filter_map(|k| schema.columns.iter().position(|c| &c.name == k))
            .filter(|&i| i < batch.data.num_columns())
            .map(|i| batch.data.column(i).as_ref())
            .collect();
        let sel = select_rows_keyed(batch.ops(), &keys, policy, &id.to_string())?;
        if sel.is_empty() {
            return Ok(true);
        }
        let columns: Vec<usize> = match &t.sink_columns {
            Some(names) => (0..schema.columns.len())
                .filter(|&i| names.contains(&schema.columns[i].name))
                .collect(),
            None => (0..schema.columns.len()).collect(),
        };
        let sequence = if t.sequence && settings.system == System::Doris {
            if !t.sequence_warned {
                t.sequence_warned = true;
                warn!(table = %id, "The sink table declares a Doris sequence column; cdcflow feeds it `event_ms << 20 | n` with `n` restarting every run, so rows replayed after a restart within the same second as rows already loaded can lose to them (stale values, lost deletes). Drop the sequence column to rely on load order.");
            }
            Some(sequence_values(batch, &sel, &mut t.seq_clock))
        } else {
            None
        };
        let spec = EncodeSpec {
            table: schema,
            columns,
            delete_column: match (settings.system, policy.deletes) {
                (System::Doris, true) => Some(DORIS_DELETE_SIGN),
                (System::StarRocks, _) if t.keyed => Some(STARROCKS_OP),
                _ => None,
            },
            sequence_column: sequence.as_ref().map(|_| DORIS_SEQUENCE_COL),
            zone: settings.zone,
        };
        let names = spec.output_names();
        if matches!(t.format, Format::Csv { .. }) && names.iter().any(|n| !csv_safe_name(n)) {
            // The CSV `columns` header cannot name this column unambiguously; JSON keys can.
            warn!(table = %id, "A column name cannot be listed in a CSV `columns` header; this table is loaded as JSON.");
            return Ok(false);
        }
        let start = t.buf.len();
        let res: std::result::Result<(), EncodeError> = match &t.format {
            Format::Json => {
                encode::encode_json(&batch.data, &spec, &sel, sequence.as_deref(), &mut t.buf)
                    .map_err(Into::into)
            }
            Format::Csv {
                column_sep,
                row_delim,
            } => encode::encode_csv(
                &batch.data,
                &spec,
                &sel,
                sequence.as_deref(),
                column_sep,
                row_delim,
                &mut t.buf,
            ),
            Format::Arrow => {
                encode::encode_arrow(&batch.data, &spec, &sel, sequence.as_deref(), &mut t.buf)
                    .map_err(Into::into)
            }
        };
        match res {
            Ok(()) => {}
            Err(EncodeError::CsvUnsafe { column, row }) => {
                t.buf.truncate(start);
                warn!(table = %id, column = %column, row, "A value contains a CSV separator or is `\\N`; this table is loaded as JSON from now on.");
                return Ok(false);
            }
            Err(EncodeError::Sink(e)) => return Err(*e),
        }
        t.rows += sel.len();
        t.enc_rows += sel.len() as u64;
        t.enc_bytes += (t.buf.len() - start) as u64;
        if t.first_at.is_none() {
            t.first_at = Some(Instant::now());
        }
        t.buf_schema = Some((batch.table.clone(), names));
        Ok(true)
    }

    fn needs_flush(&self, t: &TableState) -> bool {
        t.rows > 0
            && (t.rows >= self.settings.max_rows
                || t.buf.len() >= self.settings.max_bytes
                || t.first_at
                    .is_some_and(|f| f.elapsed() >= self.settings.interval))
    }

    /// Encoded bytes buffered plus the bodies of loads not yet settled, across tables.
    pub fn buffered_bytes(&self) -> usize {
        self.tables
            .values()
            .map(|t| t.buf.len() + t.inflight.as_ref().map_or(0, |(_, n)| *n))
            .sum()
    }

    /// Rows loaded so far per table (committed or precommitted).
    pub fn loaded(&self) -> BTreeMap<TableId, u64> {
        self.tables
            .iter()
            .map(|(k, v)| (k.clone(), v.loaded))
            .collect()
    }
}

/// Whether a column name can appear in a CSV `columns` header (backquoted) without escaping.
fn csv_safe_name(n: &str) -> bool {
    !n.is_empty() && !n.contains(['`', ',', '=']) && !n.chars().any(char::is_control)
}

/// Sequence values for the selected rows of a table that declares a sequence column:
/// `event_ms << 20 | n` (see the module docs for why this is not replay-safe).
fn sequence_values(batch: &ChangeBatch, sel: &Selection, clock: &mut (i64, i64)) -> Vec<i64> {
    const LOW: i64 = (1 << 20) - 1;
    let ts = batch.event_ts();
    sel.rows
        .iter()
        .map(|&r| {
            let ms = ts.value(r as usize).clamp(0, i64::MAX >> 21);
            if ms == clock.0 {
                clock.1 = (clock.1 + 1).min(LOW);
            } else {
                *clock = (ms, 0);
            }
            (ms << 20) | clock.1
        })
        .collect()
}

/// The Stream Load headers of one load of table `t` whose rows carry `names` (in order).
fn load_headers(s: &SinkSettings, t: &TableState, names: &[String]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = Vec::new();
    let fmt = &t.format;
    h.push(("format".into(), fmt.header_value().into()));
    h.push(("timeout".into(), s.load_timeout_s.to_string()));
    let has = |n: &str| names.iter().any(|x| x == n);
    match fmt {
        Format::Json => match s.system {
            System::Doris => h.push(("read_json_by_line".into(), "true".into())),
            System::StarRocks => {
                h.push(("strip_outer_array".into(), "false".into()));
                h.push(("ignore_json_size".into(), "true".into()));
            }
        },
        Format::Csv {
            column_sep,
            row_delim,
        } => {
            h.push(("column_separator".into(), hex_sep(column_sep)));
            let key = if s.system == System::Doris {
                "line_delimiter"
            } else {
                "row_delimiter"
            };
            h.push((key.into(), hex_sep(row_delim)));
            // Name every field: CSV is positional, and the sink table's column order may differ
            // from the source's after schema changes.
            let cols: Vec<String> = names
                .iter()
                .map(|n| {
                    if [DORIS_DELETE_SIGN, DORIS_SEQUENCE_COL, STARROCKS_OP].contains(&n.as_str()) {
                        n.clone()
                    } else {
                        ddl::quote_ident(n)
                    }
                })
                .collect();
            h.push(("columns".into(), cols.join(",")));
        }
        Format::Arrow => {}
    }
    if s.system == System::Doris && !matches!(fmt, Format::Csv { .. }) {
        let hidden: Vec<&str> = [DORIS_DELETE_SIGN, DORIS_SEQUENCE_COL]
            .into_iter()
            .filter(|c| has(c))
            .collect();
        if !hidden.is_empty() {
            h.push(("hidden_columns".into(), hidden.join(",")));
        }
    }
    if s.system == System::Doris && has(DORIS_SEQUENCE_COL) {
        h.push((
            "function_column.sequence_col".into(),
            DORIS_SEQUENCE_COL.into(),
        ));
    }
    match (s.system, s.compression) {
        (_, Compression::None) => {}
        (System::Doris, Compression::Gzip) => h.push(("compress_type".into(), "gz".into())),
        (System::Doris, Compression::Lz4Frame) => h.push(("compress_type".into(), "lz4".into())),
        (System::StarRocks, Compression::Gzip) => h.push(("compression".into(), "gzip".into())),
        (System::StarRocks, Compression::Lz4Frame) => {
            h.push(("compression".into(), "lz4_frame".into()))
        }
    }
    if s.exactly_once && s.system == System::Doris {
        h.push(("two_phase_commit".into(), "true".into()));
    }
    for (k, v) in &s.headers {
        if !h.iter().any(|(x, _)| x.eq_ignore_ascii_case(k)) {
            h.push((k.clone(), v.clone()));
        }
    }
    h
}

fn hex_sep(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\x{x:02X}")).collect()
}

/// One load task: at-least-once Stream Load, Doris 2PC precommit, or a StarRocks transaction
/// (begin, load, prepare) — each under one label, retried as a whole for StarRocks transactions.
#[allow(clippy::too_many_arguments)]
async fn run_load(
    s: &SinkSettings,
    client: &StreamLoadClient,
    db: String,
    table: String,
    label: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    rows: usize,
    checkpoint: u64,
) -> Result<Loaded> {
    if s.exactly_once && s.system == System::StarRocks {
        return sr_transaction(client, db, table, label, headers, body, rows, checkpoint).await;
    }
    let req = LoadRequest {
        db: db.clone(),
        table: table.clone(),
        label: label.clone(),
        headers,
        body,
        two_phase: s.exactly_once,
    };
    let out = client.load(&req).await?;
    if out.already_committed {
        debug!(db = %db, table = %table, label = %label, "Load was already committed.");
    }
    let pending = (s.exactly_once && !out.already_committed).then_some(PendingTxn {
        db,
        table,
        label,
        txn_id: out.txn_id,
        checkpoint,
    });
    Ok(Loaded {
        rows: rows as u64,
        pending,
    })
}

#[allow(clippy::too_many_arguments)]
async fn sr_transaction(
    client: &StreamLoadClient,
    db: String,
    table: String,
    label: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    rows: usize,
    checkpoint: u64,
) -> Result<Loaded> {
    let max = client.config().max_retries;
    let mut last = None;
    for attempt in 0..=max {
        if attempt > 0 {
            Metrics::global().retry("sink");
            tokio::time::sleep(client.config().retry_backoff * attempt).await;
        }
        let pending = PendingTxn {
            db: db.clone(),
            table: table.clone(),
            label: label.clone(),
            txn_id: -1,
            checkpoint,
        };
        let begin_headers = vec![("timeout".to_string(), "600".to_string())];
        match client
            .sr_txn(
                SrTxnOp::Begin,
                &db,
                &table,
                &label,
                &begin_headers,
                Bytes::new(),
            )
            .await
        {
            Ok(_) => {}
            Err(SinkError::Txn { status, .. }) if status == "LABEL_ALREADY_EXISTS" => {
                match client.load_state(&db, &label).await? {
                    LabelState::Prepared => {
                        return Ok(Loaded {
                            rows: rows as u64,
                            pending: Some(pending),
                        });
                    }
                    LabelState::Committed => {
                        return Ok(Loaded {
                            rows: 0,
                            pending: None,
                        });
                    }
                    _ => {
                        client.abort_label(&db, &table, &label).await?;
                        continue;
                    }
                }
            }
            Err(e) => return Err(e),
        }
        let step = async {
            client
                .sr_txn(SrTxnOp::Load, &db, &table, &label, &headers, body.clone())
                .await?;
            client
                .sr_txn(SrTxnOp::Prepare, &db, &table, &label, &[], Bytes::new())
                .await
        };
        match step.await {
            Ok(_) => {
                return Ok(Loaded {
                    rows: rows as u64,
                    pending: Some(pending),
                });
            }
            Err(e) if e.is_retryable() => {
                warn!(db = %db, table = %table, label = %label, attempt, error = %cdcflow_engine::error::ErrorChain(&e), "Transaction load failed; rolling back and retrying.");
                let _ = client.abort_label(&db, &table, &label).await;
                last = Some(e);
            }
            Err(e) => {
                let _ = client.abort_label(&db, &table, &label).await;
                return Err(e);
            }
        }
    }
    Err(last.unwrap_or_else(|| SinkError::Config("max retries exhausted".into())))
}

#[async_trait]
impl Sink for StreamLoadSink {
    async fn create_table(&mut self, schema: &TableSchemaRef) -> cdcflow_engine::Result<()> {
        let (db, table) = self.sink_table_of(&schema.id);
        let sys = self.settings.system;
        let stmt =
            ddl::create_table(sys, &db, &table, schema, &self.settings.ddl).map_err(|reason| {
                SinkError::SchemaChange {
                    table: schema.id.to_string(),
                    tag: "create.table",
                    reason,
                }
            })?;
        let create_db = ddl::create_database(&db);
        let db_ctx = if sys == System::Doris {
            "information_schema".to_string()
        } else {
            db.clone()
        };
        self.run_ddl(&db_ctx, &create_db).await?;
        self.run_ddl(&db, &stmt).await?;
        let (keyed, seq) = match self.inspect_table(&db, &table).await? {
            Some(found) => found,
            None => (!schema.primary_key.is_empty(), false),
        };
        info!(db = %db, table = %table, keyed, sequence = seq, "Sink table ready.");
        self.settle(&schema.id).await?;
        let t = self.state_for(&schema.id);
        t.sink_columns = Some(schema.columns.iter().map(|c| c.name.clone()).collect());
        t.keyed = keyed;
        t.sequence = seq;
        Ok(())
    }

    async fn apply_schema_change(
        &mut self,
        table_id: &TableId,
        change: &SchemaChange,
        schema: &TableSchemaRef,
    ) -> cdcflow_engine::Result<()> {
        self.start_load(table_id).await?;
        self.settle(table_id).await?;
        let (db, table) = self.sink_table_of(table_id);
        let sys = self.settings.system;
        let o = self.settings.ddl.clone();
        let is_key = |n: &str| schema.primary_key.iter().any(|k| k == n);
        match change {
            SchemaChange::AddColumn { columns } => {
                for (c, _) in columns {
                    let stmt = ddl::add_column(sys, &db, &table, c, &o);
                    self.run_idempotent(&db, &stmt, &["duplicate column", "already exist"])
                        .await?;
                    wait_alter(self, &db, &table).await?;
                    let t = self.state_for(table_id);
                    if let Some(cols) = &mut t.sink_columns
                        && !cols.contains(&c.name)
                    {
                        cols.push(c.name.clone());
                    }
                }
            }
            SchemaChange::DropColumn { columns } => {
                for c in columns {
                    let stmt = ddl::drop_column(sys, &db, &table, c, &o);
                    self.run_idempotent(
                        &db,
                        &stmt,
                        &["does not exist", "unknown column", "not exist"],
                    )
                    .await?;
                    wait_alter(self, &db, &table).await?;
                    if let Some(cols) = &mut self.state_for(table_id).sink_columns {
                        cols.retain(|x| x != c);
                    }
                }
            }
            SchemaChange::RenameColumn { renames } => {
                for (old, new) in renames {
                    let stmt = ddl::rename_column(sys, &db, &table, old, new);
                    self.run_idempotent(&db, &stmt, &["already exist", "duplicate column"])
                        .await?;
                    if let Some(cols) = &mut self.state_for(table_id).sink_columns {
                        for x in cols.iter_mut().filter(|x| *x == old) {
                            *x = new.clone();
                        }
                    }
                }
            }
            SchemaChange::AlterColumnType { column } => {
                let stmt = ddl::modify_column(sys, &db, &table, column, is_key(&column.name), &o);
                self.run_ddl(&db, &stmt).await?;
                wait_alter(self, &db, &table).await?;
            }
            SchemaChange::TruncateTable => {
                let stmt = ddl::truncate_table(&db, &table);
                self.run_ddl(&db, &stmt).await?;
            }
            SchemaChange::DropTable => {
                let stmt = ddl::drop_table(&db, &table);
                self.run_ddl(&db, &stmt).await?;
                if let Some(t) = self.tables.get_mut(table_id) {
                    t.sink_columns = Some(Vec::new());
                }
            }
            SchemaChange::AlterTableComment { comment } => match sys {
                System::Doris => {
                    let stmt = ddl::alter_comment(&db, &table, comment.as_deref());
                    self.run_ddl(&db, &stmt).await?;
                }
                System::StarRocks => {
                    warn!(db = %db, table = %table, "Table comment changes are not applied to StarRocks.")
                }
            },
        }
        Ok(())
    }

    async fn write(&mut self, batch: ChangeBatch) -> cdcflow_engine::Result<()> {
        let id = batch.table.id.clone();
        if !self.tables.contains_key(&id) {
            // Rows for a table this run has not created (e.g. resumed without a CreateTable):
            // learn its key model and sequence column from the server.
            let (db, table) = self.sink_table_of(&id);
            let found = self.inspect_table(&db, &table).await?;
            let t = self.state_for(&id);
            if let Some((keyed, seq)) = found {
                t.keyed = keyed;
                t.sequence = seq;
            }
        }
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(());
        }
        // Arrow's in-memory size stands in for the encoded size until the table has history.
        let row_est = self.row_estimate(&id, batch.data.get_array_memory_size() / rows);
        let cap = self.settings.max_bytes.max(1);
        if self.settings.buffer_budget == 0 || rows.saturating_mul(row_est) <= cap {
            return Ok(self.write_one(batch, row_est).await?);
        }
        // Bigger than one buffer may hold: write it in slices of about half a buffer.
        let step = (cap / 2 / row_est).max(1);
        let mut off = 0;
        while off < rows {
            let len = step.min(rows - off);
            let part = ChangeBatch {
                table: batch.table.clone(),
                data: batch.data.slice(off, len),
                seq: batch.seq,
                offset: batch.offset.clone(),
            };
            self.write_one(part, row_est).await?;
            off += len;
        }
        Ok(())
    }

    async fn tick(&mut self) -> cdcflow_engine::Result<()> {
        self.reap().await?;
        self.flush_aged().await?;
        Ok(())
    }

    fn buffered_bytes(&self) -> usize {
        StreamLoadSink::buffered_bytes(self)
    }

    async fn flush(&mut self) -> cdcflow_engine::Result<()> {
        let ids: Vec<TableId> = self.tables.keys().cloned().collect();
        for id in &ids {
            self.start_load(id).await?;
        }
        for id in &ids {
            self.settle(id).await?;
        }
        Ok(())
    }

    async fn precommit(
        &mut self,
        checkpoint_id: u64,
    ) -> cdcflow_engine::Result<Option<serde_json::Value>> {
        self.flush().await?;
        if !self.settings.exactly_once {
            return Ok(None);
        }
        // Loads of this epoch are committed under `checkpoint_id`, whatever id they were labelled with.
        for p in &mut self.pending {
            p.checkpoint = p.checkpoint.min(checkpoint_id);
        }
        let mut tables: Vec<(String, String)> = self
            .tables
            .values()
            .map(|t| (t.db.clone(), t.table.clone()))
            .collect();
        tables.sort();
        let state = SinkState {
            token: self.token.clone(),
            checkpoint: checkpoint_id,
            pending: self.pending.clone(),
            tables,
        };
        self.epoch = checkpoint_id + 1;
        for t in self.tables.values_mut() {
            t.next_n = 0;
        }
        serde_json::to_value(&state)
            .map(Some)
            .map_err(|e| cdcflow_engine::EngineError::Internal(format!("sink state: {e}")))
    }

    async fn commit(&mut self, checkpoint_id: u64) -> cdcflow_engine::Result<()> {
        let (ready, rest): (Vec<PendingTxn>, Vec<PendingTxn>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.checkpoint <= checkpoint_id);
        self.pending = rest;
        for (i, p) in ready.iter().enumerate() {
            if let Err(e) = self.commit_txn(p).await {
                // Keep what was not committed so a later commit (or the restart) can finish it.
                self.pending.extend(ready[i..].iter().cloned());
                return Err(e.into());
            }
        }
        Ok(())
    }

    fn loaded_rows(&self) -> Vec<(TableId, u64)> {
        self.loaded().into_iter().collect()
    }
}

fn same_columns(a: &TableSchema, b: &TableSchema) -> bool {
    a.columns.len() == b.columns.len()
        && a.columns
            .iter()
            .zip(&b.columns)
            .all(|(x, y)| x.name == y.name && x.data_type == y.data_type)
}

/// StarRocks schema changes are asynchronous jobs: wait until the last one of the table is done.
async fn wait_alter(sink: &mut StreamLoadSink, db: &str, table: &str) -> Result<()> {
    if sink.settings.system != System::StarRocks {
        return Ok(());
    }
    let stmt = format!(
        "SHOW ALTER TABLE COLUMN FROM {} WHERE TableName = {} ORDER BY JobId DESC LIMIT 1",
        ddl::quote_ident(db),
        ddl::quote_literal(table)
    );
    let deadline =
        Instant::now() + Duration::from_secs(sink.settings.ddl.schema_change_timeout_s.max(1));
    loop {
        let v = match sink.run_ddl(db, &stmt).await {
            Ok(v) => v,
            // An unreachable server says nothing about the job: fail (retryably), never assume.
            Err(e) if e.domain() == ErrorDomain::External => return Err(e),
            Err(e) => {
                debug!(db, table, error = %e, "Cannot poll ALTER jobs; assuming done.");
                return Ok(());
            }
        };
        let text = v.to_string().to_ascii_uppercase();
        if text.contains("CANCELLED") {
            return Err(SinkError::Ddl {
                table: format!("{db}.{table}"),
                stmt,
                message: "ALTER job cancelled".into(),
                retryable: false,
            });
        }
        if !text.contains("RUNNING") && !text.contains("PENDING") && !text.contains("WAITING") {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(SinkError::Ddl {
                table: format!("{db}.{table}"),
                stmt,
                message: "ALTER job timed out".into(),
                retryable: false,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
