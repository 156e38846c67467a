//! The binlog reader: a replication stream from MySQL or MariaDB turned into [`ChangeEvent`]s.
//!
//! ```text
//!  BinlogReader::connect(opts, BinlogOptions { start, stop_at, .. }, tables)
//!     │  checks log_bin, resolves the start (earliest / latest / file:pos / GTID / timestamp),
//!     │  MariaDB: @mariadb_slave_capability=4 (+ @slave_connect_state for GTID starts)
//!     ▼
//!  mysql_async BinlogStream ──events──▶ ROTATE / FDE / TABLE_MAP / QUERY / XID / GTID / rows
//!     rows events of captured tables ─▶ RowDecoder ─▶ per-table TableBatchBuilder
//!        (accumulating across transactions) ─▶ flushed, all tables together, when a builder is
//!        full, `linger` passed, the stream is idle, at DDL, or at `stop_at`
//!        ─▶ ChangeEvent::Data (the last batch of committed rows carries the offset)
//!     commit with nothing buffered ─▶ ChangeEvent::Progress (rate-limited without captured rows)
//!     connection lost ─▶ reconnect with backoff at `resume`, skipping rows events already emitted
//!     side task every 2 s ─▶ Metrics::set_lag_bytes (server end − our position)
//!     DDL of captured tables ─▶ catalog re-read ─▶ ChangeEvent::SchemaChange / CreateTable
//!     heartbeat ─▶ ChangeEvent::Progress (rate-limited)
//! ```
//!
//! Use: build a [`BinlogReader`] with [`BinlogReader::connect`], then call
//! [`BinlogReader::next_event`] until it returns `Ok(None)` (only in non-blocking mode or once
//! `stop_at` is reached). [`BinlogReader::next_event_at`] also returns the binlog position of the
//! event (for a data batch: the start of its first rows event), which the snapshot watermark
//! logic needs; set [`BinlogOptions::coalesce`] to `false` to get one batch per rows event there.
//! [`current_offset`] and [`earliest_position`] read the server's binlog end and start.
//!
//! Invariants:
//! - A batch holds rows of one table at one schema version; rows of one table keep binlog order.
//!   Rows of many small transactions accumulate per table (micro-batching) and are flushed
//!   together when a builder reaches [`BinlogOptions::max_batch_rows`] / `max_batch_bytes`,
//!   [`BinlogOptions::linger`] after the first buffered row, when no event is ready (idle), before
//!   a schema change, or at `stop_at`. With `coalesce: false` every rows event is its own batch.
//! - `offset` is set only on the last batch of rows of committed transactions (the offset of the
//!   last commit): resuming there replays no committed transaction twice and skips none. Rows of
//!   a transaction still open at a flush follow in batches without an offset.
//! - Reconnect: only connection-level errors (I/O, closed stream, server shutdown/killed, no
//!   heartbeat for 3 periods) reconnect, with backoff 0.5 s doubling to 10 s, for at most
//!   [`BinlogOptions::reconnect_timeout`] (default 5 min). Unflushed rows are discarded; the
//!   stream restarts at `resume`, the last commit at or before the first rows event not yet
//!   emitted, and rows events up to the last one emitted (`emitted_upto`, by position and index)
//!   are skipped: no row is emitted twice or lost. Every emitted offset is at or before `resume`.
//! - Nothing is dropped silently: MariaDB compressed rows events are inflated; unknown rows-event
//!   kinds, INCIDENT events, checksum mismatches and corrupt events are errors with the position.
//! - The schema of a captured table comes from the catalog (`information_schema`), re-read after
//!   each DDL on it, and also when a TABLE_MAP disagrees with it (column count, or names under
//!   `binlog_row_metadata=FULL`): the difference is reported as schema changes before the rows.
//!   Replaying an old binlog across DDL therefore uses the current catalog (as Flink CDC does).
//! - A timestamp start reads from the newest binlog file that begins at or before the time and
//!   skips (neither decodes nor applies DDL of) transactions that begin before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use cdcflow_engine::change::ColumnPosition;
use cdcflow_engine::{
    ChangeBatch, ChangeEvent, SchemaChange, TableId, TableSchema, TableSchemaRef,
};
use futures::Stream;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn, Opts};
use mysql_common::binlog::events::{Event, EventData, TableMapEvent};
use tracing::{debug, info, warn};

use crate::builders::TableBatchBuilder;
use crate::decode::{
    ColumnLayout, DecodeError, DecodeErrorKind, EventAt, RowDecoder, RowsEventBody,
    inflate_mariadb, is_rows_event,
};
use crate::error::MySqlError;
use crate::position::{
    BinlogOffset, BinlogPosition, Flavor, GtidPos, MariaGtid, MariaGtidPos, MySqlGtidSet,
};
use crate::schema::{MySqlTable, TableFilter};

/// Where the binlog reader starts.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPosition {
    /// The oldest binlog file still on the server.
    Earliest,
    /// The current end of the binlog.
    Latest,
    /// A file and position (must be an event boundary, normally a transaction boundary).
    Position(BinlogPosition),
    /// A GTID position: MariaDB `domain-server-seq` list or MySQL GTID set (already executed).
    Gtid(GtidPos),
    /// The first transaction at or after this time (epoch milliseconds).
    Timestamp(i64),
    /// A checkpointed offset (file/position; its GTIDs are informative).
    Offset(BinlogOffset),
}

/// Settings of a [`BinlogReader`].
#[derive(Debug, Clone)]
pub struct BinlogOptions {
    /// Replica server id; must be unique among the server's replicas.
    pub server_id: u32,
    /// Where to start.
    pub start: StartPosition,
    /// End (bounded read) at the first transaction boundary at or after this position.
    pub stop_at: Option<BinlogPosition>,
    /// Heartbeat period requested from the server (zero: none).
    pub heartbeat: Duration,
    /// Flush a table's batch at this many rows even inside a transaction.
    pub max_batch_rows: usize,
    /// Flush a table's batch at about this many bytes even inside a transaction.
    pub max_batch_bytes: usize,
    /// Merge consecutive rows events of a table into one batch (`false`: one batch per event).
    pub coalesce: bool,
    /// End the stream at the current end of the binlog instead of waiting (tests, benches).
    pub non_blocking: bool,
    /// First sequence number to assign (continues the snapshot's sequence).
    pub first_seq: u64,
    /// `treat-tinyint1-as-boolean.enabled`, used when the catalog is re-read after DDL.
    pub tinyint1_as_boolean: bool,
    /// Tables created while streaming are captured when this filter matches them.
    pub filter: Option<TableFilter>,
    /// Verify each event's CRC32 when the server sends checksums.
    pub verify_checksums: bool,
    /// Rows of many transactions are gathered into one batch per table; buffered rows go out at
    /// the latest this long after the first of them (sooner when full or the stream is idle).
    pub linger: Duration,
    /// Time limit of one connection attempt (`connect.timeout`).
    pub connect_timeout: Duration,
    /// After a lost connection, keep reconnecting (with backoff) for this long before failing.
    pub reconnect_timeout: Duration,
}

/// Default [`BinlogOptions::linger`]: long enough to gather thousands of small transactions, short
/// enough to keep the end-to-end latency well under a second.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(200);

/// Default [`BinlogOptions::reconnect_timeout`]: a server restart or fail-over takes well under
/// five minutes; after that the run fails so an operator notices. (`connect.max-retries` counts
/// attempts of the first connect; a reconnect is bounded by time instead, since a restart takes a
/// variable number of attempts.)
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(300);

/// First wait before a reconnect attempt; doubled after each failure up to [`RECONNECT_MAX_DELAY`].
const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(500);
/// Longest wait between two reconnect attempts.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(10);
/// How often the lag in bytes is measured on a side connection.
const LAG_EVERY: Duration = Duration::from_secs(2);

impl BinlogOptions {
    /// Defaults for a reader with this server id starting at `start`.
    pub fn new(server_id: u32, start: StartPosition) -> Self {
        BinlogOptions {
            server_id,
            start,
            stop_at: None,
            heartbeat: Duration::from_secs(30),
            max_batch_rows: 16_384,
            max_batch_bytes: 16 << 20,
            coalesce: true,
            non_blocking: false,
            first_seq: 0,
            tinyint1_as_boolean: true,
            filter: None,
            verify_checksums: true,
            linger: DEFAULT_LINGER,
            connect_timeout: Duration::from_secs(30),
            reconnect_timeout: DEFAULT_RECONNECT_TIMEOUT,
        }
    }
}

/// Errors of the binlog reader, each with what a user needs to act.
#[derive(Debug, thiserror::Error)]
pub enum BinlogError {
    /// Connecting or a setup query failed.
    #[error("{context}")]
    Setup {
        /// What was being done.
        context: String,
        /// Driver error.
        source: mysql_async::Error,
    },
    /// Binary logging is off on the server.
    #[error(
        "binary logging is disabled on the server (log_bin=OFF); start it with --log-bin and --binlog-format=ROW"
    )]
    BinlogDisabled,
    /// Another replica uses the same server id.
    #[error(
        "another replica is connected with server id {server_id} (server said: {message}); give each pipeline its own 'server-id'"
    )]
    ServerIdCollision {
        /// Our server id.
        server_id: u32,
        /// The server's message.
        message: String,
    },
    /// The requested start is not in the server's binlog (purged, or never existed).
    #[error(
        "binlog start {start} is not available on the server (server said: {message}); it was probably purged: restart with a snapshot or a later offset"
    )]
    PositionUnavailable {
        /// The start asked for.
        start: String,
        /// The server's message.
        message: String,
    },
    /// The server ended the stream with another error.
    #[error("binlog stream at {position}: server error {code}: {message}")]
    Server {
        /// Last position read.
        position: String,
        /// Server error code.
        code: u16,
        /// Server message.
        message: String,
    },
    /// The connection failed while streaming (network, server gone).
    #[error("binlog stream at {position}: {source}")]
    Stream {
        /// Last position read.
        position: String,
        /// Driver error.
        source: mysql_async::Error,
    },
    /// An event failed its CRC32 check.
    #[error(
        "binlog {position}: checksum mismatch (event says {expected:#010x}, computed {actual:#010x})"
    )]
    Checksum {
        /// Event position.
        position: String,
        /// CRC in the event.
        expected: u32,
        /// CRC computed over the event.
        actual: u32,
    },
    /// An event could not be parsed or is not acceptable (corrupt, INCIDENT, unsupported).
    #[error("binlog {position}: {message}")]
    Event {
        /// Event position.
        position: String,
        /// What is wrong.
        message: String,
    },
    /// A row image could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Re-reading the catalog after a DDL failed.
    #[error("re-reading the schema of {table} after DDL at {position}")]
    Catalog {
        /// `db.table`.
        table: String,
        /// DDL position.
        position: String,
        /// What failed (boxed: `MySqlError` itself can wrap a `BinlogError`).
        source: Box<MySqlError>,
    },
    /// Arrow rejected a batch we built (a bug).
    #[error("building the batch of {table}: {source}")]
    Arrow {
        /// `db.table`.
        table: String,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
}

impl cdcflow_engine::Classify for BinlogError {
    fn domain(&self) -> cdcflow_engine::ErrorDomain {
        use cdcflow_engine::ErrorDomain::*;
        match self {
            BinlogError::Setup { source, .. } => match source {
                mysql_async::Error::Server(_) => User,
                _ => External,
            },
            BinlogError::BinlogDisabled
            | BinlogError::ServerIdCollision { .. }
            | BinlogError::PositionUnavailable { .. } => User,
            BinlogError::Server { .. }
            | BinlogError::Stream { .. }
            | BinlogError::Checksum { .. } => External,
            BinlogError::Event { .. } => External,
            BinlogError::Decode(e) => e.domain(),
            BinlogError::Catalog { source, .. } => source.domain(),
            BinlogError::Arrow { .. } => Internal,
        }
    }
}

impl BinlogError {
    /// Whether the error means the connection was lost (network, server shutdown or restart,
    /// killed connection), so reconnecting and resuming is right. Decode, checksum and event
    /// errors, purged positions and configuration problems are not.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            BinlogError::Setup { source, .. } | BinlogError::Stream { source, .. } => {
                is_connection_error(source)
            }
            BinlogError::Server { code, .. } => is_connection_code(*code),
            _ => false,
        }
    }
}

/// Driver errors that mean "the connection is gone or never came up".
fn is_connection_error(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Other(_) => true,
        mysql_async::Error::Driver(d) => matches!(
            d,
            mysql_async::DriverError::ConnectionClosed
                | mysql_async::DriverError::PacketOutOfOrder
                | mysql_async::DriverError::PoolDisconnected
        ),
        mysql_async::Error::Server(s) => is_connection_code(s.code),
        mysql_async::Error::Url(_) => false,
    }
}

/// Server error codes of a server going away: ER_CON_COUNT_ERROR (1040), ER_SERVER_SHUTDOWN
/// (1053), ER_ABORTING_CONNECTION (1152), ER_NET_READ_INTERRUPTED (1159),
/// ER_NET_WRITE_INTERRUPTED (1161), ER_QUERY_INTERRUPTED (1317), ER_CONNECTION_KILLED (1927),
/// CR_SERVER_GONE_ERROR (2006), CR_SERVER_LOST (2013).
fn is_connection_code(code: u16) -> bool {
    matches!(
        code,
        1040 | 1053 | 1152 | 1159 | 1161 | 1317 | 1927 | 2006 | 2013
    )
}

/// Result alias of this module.
pub type Result<T, E = BinlogError> = std::result::Result<T, E>;

fn setup(context: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> BinlogError {
    let context = context.into();
    move |source| BinlogError::Setup { context, source }
}

/// Raw event type codes handled here.
mod et {
    pub const QUERY: u8 = 2;
    pub const STOP: u8 = 3;
    pub const ROTATE: u8 = 4;
    pub const FORMAT_DESCRIPTION: u8 = 15;
    pub const XID: u8 = 16;
    pub const TABLE_MAP: u8 = 19;
    pub const INCIDENT: u8 = 26;
    pub const HEARTBEAT: u8 = 27;
    pub const GTID: u8 = 33;
    pub const ANONYMOUS_GTID: u8 = 34;
    pub const PREVIOUS_GTIDS: u8 = 35;
    pub const TRANSACTION_PAYLOAD: u8 = 40;
    pub const XA_PREPARE: u8 = 38;
    pub const HEARTBEAT_V2: u8 = 41;
    pub const GTID_TAGGED: u8 = 42;
    pub const MARIADB_ANNOTATE_ROWS: u8 = 160;
    pub const MARIADB_BINLOG_CHECKPOINT: u8 = 161;
    pub const MARIADB_GTID: u8 = 162;
    pub const MARIADB_GTID_LIST: u8 = 163;
    pub const MARIADB_START_ENCRYPTION: u8 = 164;
    pub const MARIADB_QUERY_COMPRESSED: u8 = 165;
}

/// Reads the server's flavor from `SELECT VERSION()`.
pub async fn server_flavor(conn: &mut Conn) -> Result<Flavor> {
    let v: Option<String> = conn
        .query_first("SELECT VERSION()")
        .await
        .map_err(setup("reading the server version"))?;
    Ok(Flavor::from_version(&v.unwrap_or_default()))
}

/// The current end of the binlog, with the GTID position there (MariaDB: `BINLOG_GTID_POS`,
/// MySQL: `gtid_executed`), for `latest-offset` starts and snapshot watermarks.
///
/// # Errors
/// When binary logging is off or the queries fail.
pub async fn current_offset(conn: &mut Conn) -> Result<BinlogOffset> {
    let flavor = server_flavor(conn).await?;
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 removed SHOW MASTER STATUS.
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(setup(
                "reading the binlog position (SHOW BINARY LOG STATUS)",
            ))?,
    };
    let row = row.ok_or(BinlogError::BinlogDisabled)?;
    let file: String = row.get(0).unwrap_or_default();
    let pos: u64 = row.get(1).unwrap_or_default();
    if file.is_empty() {
        return Err(BinlogError::BinlogDisabled);
    }
    let gtid = match flavor {
        Flavor::Mariadb => mariadb_gtid_at(conn, &file, pos)
            .await?
            .map(GtidPos::MariaDb),
        Flavor::Mysql => {
            let set: Option<String> = row.get(4);
            set.filter(|s| !s.trim().is_empty())
                .and_then(|s| s.replace(['\n', ' '], "").parse::<MySqlGtidSet>().ok())
                .map(GtidPos::MySql)
        }
    };
    Ok(BinlogOffset {
        position: BinlogPosition::new(file, pos),
        gtid,
    })
}

/// MariaDB: the GTID position at a binlog file/position (`BINLOG_GTID_POS`).
async fn mariadb_gtid_at(conn: &mut Conn, file: &str, pos: u64) -> Result<Option<MariaGtidPos>> {
    let g: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
        .await
        .map_err(setup("reading BINLOG_GTID_POS"))?;
    Ok(g.flatten().and_then(|s| s.parse::<MariaGtidPos>().ok()))
}

/// The start of the oldest binlog file on the server.
///
/// # Errors
/// When binary logging is off or the query fails.
pub async fn earliest_position(conn: &mut Conn) -> Result<BinlogPosition> {
    let files = binlog_files(conn).await?;
    files
        .into_iter()
        .next()
        .map(|f| BinlogPosition::new(f, 4))
        .ok_or(BinlogError::BinlogDisabled)
}

/// Binlog file names in order (`SHOW BINARY LOGS`).
async fn binlog_files(conn: &mut Conn) -> Result<Vec<String>> {
    let rows: Vec<mysql_async::Row> =
        conn.query("SHOW BINARY LOGS").await.map_err(|e| match &e {
            mysql_async::Error::Server(s) if s.code == 1381 => BinlogError::BinlogDisabled,
            _ => BinlogError::Setup {
                context: "listing binlog files (SHOW BINARY LOGS)".into(),
                source: e,
            },
        })?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.get::<String, _>(0))
        .collect())
}

/// Maps a server error at stream start or while streaming to a clear error.
fn classify_server_error(
    e: mysql_async::Error,
    server_id: u32,
    start: &str,
    position: &str,
) -> BinlogError {
    match e {
        mysql_async::Error::Server(s) => {
            let lower = s.message.to_ascii_lowercase();
            if s.code == 4052
                || lower.contains("same server_uuid")
                || lower.contains("same server id")
            {
                BinlogError::ServerIdCollision {
                    server_id,
                    message: s.message,
                }
            } else if s.code == 1381 {
                BinlogError::BinlogDisabled
            } else if s.code == 1236 {
                BinlogError::PositionUnavailable {
                    start: start.to_string(),
                    message: s.message,
                }
            } else {
                BinlogError::Server {
                    position: position.to_string(),
                    code: s.code,
                    message: s.message,
                }
            }
        }
        other => BinlogError::Stream {
            position: position.to_string(),
            source: other,
        },
    }
}

/// The accumulating batch of one table inside the current transaction.
struct TableAcc {
    schema: TableSchemaRef,
    builder: TableBatchBuilder,
    /// Start position of the first rows event in the builder.
    first: Option<BinlogPosition>,
    /// Rows in the builder that belong to committed transactions (a prefix of it).
    committed_rows: usize,
}

/// A cached TABLE_MAP: its raw bytes, and the decoder when the table is captured.
struct TmEntry {
    raw: Vec<u8>,
    table: Option<TableId>,
    version: u64,
    decoder: Option<Arc<RowDecoder>>,
}

/// A binlog reader producing change events; see the module documentation.
pub struct BinlogReader {
    stream: BinlogStream,
    opts: Opts,
    options: BinlogOptions,
    flavor: Flavor,
    start_text: String,
    catalog: Option<Conn>,
    tables: HashMap<TableId, MySqlTable>,
    table_maps: HashMap<u64, TmEntry>,
    accs: Vec<(TableId, TableAcc)>,
    pending: std::collections::VecDeque<(ChangeEvent, BinlogPosition)>,
    seq: u64,
    /// Current binlog file.
    file: String,
    /// End position of the last event with a real position.
    pos: u64,
    /// Start position of the event being handled.
    event_start: u64,
    in_txn: bool,
    /// Header timestamp (epoch seconds) of the event being handled.
    event_ts: u32,
    /// Captured tables dropped while streaming: captured again if re-created.
    dropped: std::collections::HashSet<TableId>,
    /// An explicit BEGIN (or XA START) opened the current transaction.
    begun: bool,
    /// MariaDB: the current transaction's GTID; MySQL: (sid, gno).
    txn_gtid: Option<TxnGtid>,
    /// Standalone MariaDB GTID (DDL): the next QUERY ends the transaction.
    standalone: bool,
    /// Whether the current transaction emitted data (decides Progress at commit).
    txn_emitted: bool,
    gtid: Option<GtidPos>,
    committed: BinlogOffset,
    last_progress: Instant,
    skip_before_secs: Option<u32>,
    done: bool,
    /// Where a reconnect restarts: a transaction boundary at or before the first rows event not
    /// yet emitted (never after an offset already emitted).
    resume: BinlogOffset,
    /// The last rows event whose rows were emitted: (start position, index among the rows
    /// events sharing that position). Rows events up to it are skipped when replayed.
    emitted_upto: Option<(BinlogPosition, u32)>,
    /// The last rows event decoded into the builders, keyed as `emitted_upto`.
    last_rows: Option<(BinlogPosition, u32)>,
    /// When the oldest row now in the builders was decoded (for [`BinlogOptions::linger`]).
    first_buffered: Option<Instant>,
    /// Side task measuring the lag in bytes; reads the position we publish here.
    lag: Option<LagProbe>,
}

#[derive(Debug, Clone)]
enum TxnGtid {
    Maria(MariaGtid),
    MySql(String, u64),
}

impl std::fmt::Debug for BinlogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinlogReader")
            .field("file", &self.file)
            .field("pos", &self.pos)
            .field("committed", &self.committed)
            .field("tables", &self.tables.len())
            .finish()
    }
}

/// A freshly requested binlog stream and what was resolved on the way.
struct Opened {
    stream: BinlogStream,
    flavor: Flavor,
    position: Option<BinlogPosition>,
    gtid: Option<GtidPos>,
    start_text: String,
    skip_before_secs: Option<u32>,
}

/// Connects as a replica and requests the stream at `start` (first connect and reconnects).
async fn open_stream(
    opts: &Opts,
    options: &BinlogOptions,
    start: &StartPosition,
) -> Result<Opened> {
    let mut conn = Conn::new(opts.clone())
        .await
        .map_err(setup("connecting for the binlog stream"))?;
    let flavor = server_flavor(&mut conn).await?;
    let log_bin: Option<i64> = conn
        .query_first("SELECT @@log_bin")
        .await
        .map_err(setup("reading @@log_bin"))?;
    if log_bin.unwrap_or(0) == 0 {
        return Err(BinlogError::BinlogDisabled);
    }

    // Resolve the start into a file/position or a GTID position.
    let mut skip_before_secs = None;
    let (position, gtid_start): (Option<BinlogPosition>, Option<GtidPos>) = match start {
        StartPosition::Earliest => (Some(earliest_position(&mut conn).await?), None),
        StartPosition::Latest => {
            let o = current_offset(&mut conn).await?;
            (Some(o.position), None)
        }
        StartPosition::Position(p) => (Some(p.clone()), None),
        // An offset taken before the first commit of a GTID start has no file yet.
        StartPosition::Offset(o) if o.position.file.is_empty() => match &o.gtid {
            Some(g) => (None, Some(g.clone())),
            None => {
                return Err(BinlogError::PositionUnavailable {
                    start: o.to_string(),
                    message: "the offset has neither a binlog file nor GTIDs".into(),
                });
            }
        },
        StartPosition::Offset(o) => (Some(o.position.clone()), None),
        StartPosition::Gtid(g) => (None, Some(g.clone())),
        StartPosition::Timestamp(ms) => {
            let secs = u32::try_from(ms.div_euclid(1000)).unwrap_or(0);
            skip_before_secs = Some(secs);
            let file = find_file_for_timestamp(opts, options.server_id, secs).await?;
            (Some(BinlogPosition::new(file, 4)), None)
        }
    };
    let start_text = match (&position, &gtid_start) {
        (Some(p), _) => p.to_string(),
        (None, Some(g)) => format!("GTID {g}"),
        (None, None) => "?".into(),
    };

    // GTID state at the start.
    let gtid = match (&gtid_start, &position, flavor) {
        (Some(g), _, _) => Some(g.clone()),
        (None, Some(p), Flavor::Mariadb) => mariadb_gtid_at(&mut conn, &p.file, p.pos)
            .await
            .ok()
            .flatten()
            .map(GtidPos::MariaDb),
        _ => match start {
            StartPosition::Offset(o) => o.gtid.clone(),
            _ => None,
        },
    };

    if flavor == Flavor::Mariadb {
        conn.query_drop("SET @mariadb_slave_capability=4")
            .await
            .map_err(setup("SET @mariadb_slave_capability"))?;
        if let Some(GtidPos::MariaDb(g)) = &gtid_start {
            conn.query_drop(format!("SET @slave_connect_state='{g}'"))
                .await
                .map_err(setup("SET @slave_connect_state"))?;
            conn.query_drop("SET @slave_gtid_strict_mode=1")
                .await
                .map_err(setup("SET @slave_gtid_strict_mode"))?;
            conn.query_drop("SET @slave_gtid_ignore_duplicates=0")
                .await
                .map_err(setup("SET @slave_gtid_ignore_duplicates"))?;
        }
    }
    if !options.heartbeat.is_zero() {
        let ns = options
            .heartbeat
            .as_nanos()
            .min(u128::from(u32::MAX) * 1_000_000_000);
        conn.query_drop(format!("SET @master_heartbeat_period={ns}"))
            .await
            .map_err(setup("SET @master_heartbeat_period"))?;
    }

    let file_bytes = position
        .as_ref()
        .map(|p| p.file.clone().into_bytes())
        .unwrap_or_default();
    let mut req = BinlogStreamRequest::new(options.server_id);
    if options.non_blocking {
        req = req.with_non_blocking();
    }
    match (&position, &gtid_start) {
        (Some(p), _) => {
            req = req.with_filename(&file_bytes).with_pos(p.pos);
        }
        (None, Some(GtidPos::MariaDb(_))) => {
            // The server finds the file from @slave_connect_state.
            req = req.with_filename(&[]).with_pos(4);
        }
        (None, Some(GtidPos::MySql(set))) => {
            let sids = set
                .iter()
                .filter(|(sid, _)| !sid.contains(':'))
                .map(|(sid, iv)| {
                    let text = std::iter::once(sid.to_string())
                        .chain(iv.iter().map(|(a, b)| format!("{a}-{}", b + 1)))
                        .collect::<Vec<_>>()
                        .join(":");
                    text.parse::<mysql_common::packets::Sid<'static>>()
                        .map_err(|e| BinlogError::PositionUnavailable {
                            start: start_text.clone(),
                            message: format!("GTID set not accepted: {e}"),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            req = req.with_gtid().with_gtid_set(sids);
        }
        (None, None) => {}
    }
    let stream = conn
        .get_binlog_stream(req)
        .await
        .map_err(|e| classify_server_error(e, options.server_id, &start_text, &start_text))?;
    Ok(Opened {
        stream,
        flavor,
        position,
        gtid,
        start_text,
        skip_before_secs,
    })
}

/// Minimum time between two Progress events emitted for commits without captured rows.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

impl BinlogReader {
    /// Connects as a replica and starts streaming from `options.start`.
    ///
    /// `tables` are the captured tables (catalog columns + engine schema); rows of other tables
    /// are skipped without decoding.
    ///
    /// # Errors
    /// Binary logging off, a purged or unknown start, a server-id collision (these three are
    /// reported at the first [`BinlogReader::next_event`] when the server answers late), or a
    /// failing connection.
    pub async fn connect(
        opts: Opts,
        options: BinlogOptions,
        tables: Vec<MySqlTable>,
    ) -> Result<BinlogReader> {
        let o = open_stream(&opts, &options, &options.start).await?;
        let position = o.position;
        let gtid = o.gtid;
        let (stream, flavor, start_text, skip_before_secs) =
            (o.stream, o.flavor, o.start_text, o.skip_before_secs);
        info!(
            server_id = options.server_id,
            start = %start_text,
            flavor = ?flavor,
            tables = tables.len(),
            "Binlog stream requested."
        );

        let committed = BinlogOffset {
            position: position
                .clone()
                .unwrap_or_else(|| BinlogPosition::new("", 4)),
            gtid: gtid.clone(),
        };
        let seq = options.first_seq;
        let lag = (!options.non_blocking).then(|| LagProbe::spawn(opts.clone()));
        Ok(BinlogReader {
            resume: committed.clone(),
            emitted_upto: None,
            last_rows: None,
            first_buffered: None,
            lag,
            stream,
            opts,
            flavor,
            start_text,
            catalog: None,
            tables: tables.into_iter().map(|t| (t.id.clone(), t)).collect(),
            table_maps: HashMap::new(),
            accs: Vec::new(),
            pending: Default::default(),
            seq,
            file: position
                .as_ref()
                .map(|p| p.file.clone())
                .unwrap_or_default(),
            pos: position.as_ref().map(|p| p.pos).unwrap_or(4),
            event_start: 0,
            in_txn: false,
            event_ts: 0,
            dropped: Default::default(),
            begun: false,
            txn_gtid: None,
            standalone: false,
            txn_emitted: false,
            gtid,
            committed,
            last_progress: Instant::now(),
            skip_before_secs,
            done: false,
            options,
        })
    }

    /// The server flavor.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The offset of the last committed transaction read (a safe resume point).
    pub fn committed_offset(&self) -> &BinlogOffset {
        &self.committed
    }

    /// The captured tables with their current schemas (updated by DDL).
    pub fn tables(&self) -> impl Iterator<Item = &MySqlTable> {
        self.tables.values()
    }

    /// The next sequence number this reader will assign.
    pub fn next_seq(&self) -> u64 {
        self.seq
    }

    /// The next event; `Ok(None)` at the end of a bounded or non-blocking read.
    ///
    /// # Cancel safety
    /// Not cancel safe: an event being read when the future is dropped is lost. Resume from
    /// [`BinlogReader::committed_offset`] (or the last checkpoint) with a new reader.
    pub async fn next_event(&mut self) -> Result<Option<ChangeEvent>> {
        Ok(self.next_event_at().await?.map(|(e, _)| e))
    }

    /// The next event and its binlog position (for data: the start of its first rows event).
    ///
    /// # Cancel safety
    /// As [`BinlogReader::next_event`].
    pub async fn next_event_at(&mut self) -> Result<Option<(ChangeEvent, BinlogPosition)>> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                if let Some(lag) = &self.lag {
                    lag.publish(&self.file, self.pos);
                }
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            let next = match self.first_buffered {
                Some(since) => {
                    let left = self.options.linger.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        self.flush_all(false)?;
                        continue;
                    }
                    match futures::FutureExt::now_or_never(next_guarded(&mut self.stream)) {
                        Some(r) => r,
                        // Idle: hand over what committed transactions left in the builders
                        // rather than wait for more.
                        None if self.accs.iter().any(|(_, a)| a.committed_rows > 0) => {
                            self.flush_all(false)?;
                            continue;
                        }
                        None => {
                            match tokio::time::timeout(left, next_guarded(&mut self.stream)).await {
                                Ok(r) => r,
                                Err(_) => {
                                    self.flush_all(false)?;
                                    continue;
                                }
                            }
                        }
                    }
                }
                None => match self.silence_limit() {
                    // A server that vanished without closing the socket is noticed by the
                    // missing heartbeats.
                    Some(limit) => {
                        match tokio::time::timeout(limit, next_guarded(&mut self.stream)).await {
                            Ok(r) => r,
                            Err(_) => Some(Err(GuardedError::Silent(limit))),
                        }
                    }
                    None => next_guarded(&mut self.stream).await,
                },
            };
            match next {
                None if self.options.non_blocking => {
                    // End of a non-blocking stream: committed rows go out; rows of an unfinished
                    // transaction stay unreported (their transaction has no commit yet).
                    self.flush_all(true)?;
                    self.done = true;
                }
                None => {
                    let e = BinlogError::Stream {
                        position: self.here().to_string(),
                        source: mysql_async::Error::Driver(
                            mysql_async::DriverError::ConnectionClosed,
                        ),
                    };
                    self.reconnect(e).await?;
                }
                Some(Err(e)) => {
                    let here = self.here().to_string();
                    let err = match e {
                        GuardedError::Driver(e) => classify_server_error(
                            e,
                            self.options.server_id,
                            &self.start_text,
                            &here,
                        ),
                        GuardedError::Panic(msg) => BinlogError::Event {
                            position: here,
                            message: format!("corrupt event from the server ({msg})"),
                        },
                        GuardedError::Silent(limit) => BinlogError::Stream {
                            position: here,
                            source: mysql_async::Error::Other(
                                format!("no event nor heartbeat from the server for {limit:?}")
                                    .into(),
                            ),
                        },
                    };
                    if !err.is_connection_lost() {
                        return Err(err);
                    }
                    self.reconnect(err).await?;
                }
                Some(Ok(event)) => self.handle(event).await?,
            }
        }
    }

    /// How long the stream may stay silent before the connection counts as lost: three
    /// heartbeat periods (`None` without heartbeats or in non-blocking mode).
    fn silence_limit(&self) -> Option<Duration> {
        (!self.options.heartbeat.is_zero() && !self.options.non_blocking)
            .then(|| self.options.heartbeat * 3 + Duration::from_secs(5))
    }

    /// Re-establishes a lost stream at [`BinlogReader::resume`], with backoff, for at most
    /// [`BinlogOptions::reconnect_timeout`]. Unflushed rows are discarded; rows events that were
    /// already emitted are skipped when replayed (`emitted_upto`), so no row is emitted twice
    /// and none is lost.
    async fn reconnect(&mut self, cause: BinlogError) -> Result<()> {
        let began = Instant::now();
        let resume = self.resume.clone();
        warn!(error = %cause, resume = %resume, "Binlog connection lost; reconnecting.");
        // Everything after `resume` is read again.
        self.accs.clear();
        self.first_buffered = None;
        self.last_rows = None;
        self.table_maps.clear();
        self.catalog = None;
        self.in_txn = false;
        self.begun = false;
        self.standalone = false;
        self.txn_gtid = None;
        self.txn_emitted = false;
        let start = StartPosition::Offset(resume.clone());
        let mut delay = RECONNECT_FIRST_DELAY;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            cdcflow_engine::metrics::Metrics::global().retry("source-reconnect");
            tokio::time::sleep(delay).await;
            let res = tokio::time::timeout(
                self.options.connect_timeout,
                open_stream(&self.opts, &self.options, &start),
            )
            .await
            .unwrap_or_else(|_| {
                Err(BinlogError::Setup {
                    context: format!(
                        "reconnecting for the binlog stream (timed out after {:?})",
                        self.options.connect_timeout
                    ),
                    source: mysql_async::Error::Other("connect timed out".into()),
                })
            });
            match res {
                Ok(o) => {
                    self.stream = o.stream;
                    self.flavor = o.flavor;
                    self.file = o
                        .position
                        .as_ref()
                        .map(|p| p.file.clone())
                        .unwrap_or_default();
                    self.pos = o.position.as_ref().map(|p| p.pos).unwrap_or(4);
                    self.event_start = self.pos;
                    self.gtid = resume.gtid.clone().or(o.gtid);
                    self.committed = BinlogOffset {
                        position: resume.position.clone(),
                        gtid: self.gtid.clone(),
                    };
                    info!(attempt, resume = %resume, "Binlog stream reconnected.");
                    return Ok(());
                }
                Err(e)
                    if e.is_connection_lost()
                        && began.elapsed() < self.options.reconnect_timeout =>
                {
                    warn!(attempt, error = %e, next_in = ?(delay * 2).min(RECONNECT_MAX_DELAY), "Reconnecting the binlog stream failed; retrying.");
                }
                Err(e) => {
                    warn!(attempt, error = %e, "Reconnecting the binlog stream failed; giving up.");
                    return Err(e);
                }
            }
            delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        }
    }

    fn here(&self) -> BinlogPosition {
        BinlogPosition::new(self.file.clone(), self.event_start)
    }

    fn position_text(&self) -> String {
        self.here().to_string()
    }

    fn next_seq_value(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    /// Handles one event from the stream.
    async fn handle(&mut self, event: Event) -> Result<()> {
        let header = event.header();
        let t = header.event_type_raw();
        let log_pos = u64::from(header.log_pos());
        let size = u64::from(header.event_size());
        // ROTATE and heartbeats carry positions of another file or of the server's end.
        let positioned =
            log_pos != 0 && !matches!(t, et::ROTATE | et::HEARTBEAT | et::HEARTBEAT_V2);
        if positioned {
            self.event_start = log_pos.saturating_sub(size);
        }
        if self.options.verify_checksums {
            self.verify_checksum(&event)?;
        }
        self.event_ts = header.timestamp();
        if let Some(min) = self.skip_before_secs
            && positioned
            && self.event_ts >= min
            && matches!(
                t,
                et::MARIADB_GTID | et::GTID | et::ANONYMOUS_GTID | et::QUERY
            )
            && !self.in_txn
        {
            // The first transaction at or after the requested time starts here.
            self.skip_before_secs = None;
        }
        match t {
            et::ROTATE => self.on_rotate(&event)?,
            et::TRANSACTION_PAYLOAD => self.check_payload(&event)?,
            et::FORMAT_DESCRIPTION
            | et::STOP
            | et::PREVIOUS_GTIDS
            | et::MARIADB_ANNOTATE_ROWS
            | et::MARIADB_BINLOG_CHECKPOINT => {}
            // The server decrypts an encrypted binlog before sending it; were it not to, the
            // checksums of the following events would fail loudly.
            et::MARIADB_START_ENCRYPTION => {
                debug!(position = %self.here(), "Binlog encryption start.")
            }
            et::HEARTBEAT | et::HEARTBEAT_V2 => self.on_heartbeat(),
            et::TABLE_MAP => self.on_table_map(&event).await?,
            // XA: the rows are logged at PREPARE; the later `XA COMMIT` query has none.
            et::XID | et::XA_PREPARE => self.on_commit(log_pos)?,
            et::QUERY => {
                let (schema, query) = match event.read_data() {
                    Ok(Some(EventData::QueryEvent(q))) => {
                        (q.schema().into_owned(), q.query().into_owned())
                    }
                    other => {
                        return Err(self.event_error(format!("unreadable QUERY event: {other:?}")));
                    }
                };
                self.on_query(&schema, &query, log_pos).await?;
            }
            et::MARIADB_QUERY_COMPRESSED => {
                let (schema, query) = parse_compressed_query(event.data())
                    .map_err(|k| self.event_error(format!("compressed QUERY: {k}")))?;
                self.on_query(&schema, &query, log_pos).await?;
            }
            et::MARIADB_GTID => self.on_mariadb_gtid(&event)?,
            et::MARIADB_GTID_LIST => self.on_gtid_list(event.data())?,
            et::GTID | et::GTID_TAGGED => match event.read_data() {
                Ok(Some(EventData::GtidEvent(g))) => {
                    let sid = format_uuid(&g.sid());
                    let sid = match g.tag() {
                        Some(tag) => format!("{sid}:{}", tag.as_str()),
                        None => sid,
                    };
                    self.txn_gtid = Some(TxnGtid::MySql(sid, g.gno()));
                    self.in_txn = true;
                }
                other => return Err(self.event_error(format!("unreadable GTID event: {other:?}"))),
            },
            et::ANONYMOUS_GTID => {
                self.txn_gtid = None;
                self.in_txn = true;
            }
            et::INCIDENT => {
                return Err(self.event_error(
                    "INCIDENT event: the server lost changes here (e.g. LOST_EVENTS); the source must be re-snapshotted".into(),
                ));
            }
            t if is_rows_event(t) => self.on_rows(&event)?,
            _ => {}
        }
        if positioned {
            self.pos = log_pos;
        }
        Ok(())
    }

    fn event_error(&self, message: String) -> BinlogError {
        BinlogError::Event {
            position: self.position_text(),
            message,
        }
    }

    /// MySQL TRANSACTION_PAYLOAD: the driver expands it into the events that follow but ignores
    /// a decompression failure, which would silently drop a transaction. Check it ourselves.
    fn check_payload(&self, event: &Event) -> Result<()> {
        use mysql_common::binlog::events::TransactionPayloadEvent;
        let tpe = event
            .read_event::<TransactionPayloadEvent<'_>>()
            .map_err(|e| self.event_error(format!("unreadable TRANSACTION_PAYLOAD: {e}")))?;
        let mut r = tpe.decompressed().map_err(|e| {
            self.event_error(format!("TRANSACTION_PAYLOAD does not decompress: {e}"))
        })?;
        std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| {
            self.event_error(format!("TRANSACTION_PAYLOAD does not decompress: {e}"))
        })?;
        Ok(())
    }

    fn verify_checksum(&self, event: &Event) -> Result<()> {
        use mysql_common::binlog::consts::BinlogChecksumAlg;
        let Ok(Some(alg)) = event.footer().get_checksum_alg() else {
            return Ok(());
        };
        if alg != BinlogChecksumAlg::BINLOG_CHECKSUM_ALG_CRC32 {
            return Ok(());
        }
        let Some(crc) = event.checksum() else {
            return Ok(());
        };
        // Fake ROTATE (log_pos 0) and events inside TRANSACTION_PAYLOAD carry no real checksum.
        if event.header().log_pos() == 0 {
            return Ok(());
        }
        let expected = u32::from_le_bytes(crc);
        let actual = event.calc_checksum(alg);
        if expected != actual {
            return Err(BinlogError::Checksum {
                position: self.position_text(),
                expected,
                actual,
            });
        }
        Ok(())
    }

    fn on_rotate(&mut self, event: &Event) -> Result<()> {
        let data = event.data();
        if data.len() < 8 {
            return Err(self.event_error("ROTATE event too short".into()));
        }
        let pos = u64::from_le_bytes(data[..8].try_into().unwrap_or([0; 8]));
        let mut name = &data[8..];
        if event.header().log_pos() == 0 && name.len() > 4 {
            // The fake ROTATE arrives before the FDE, so the 4 CRC bytes are still in the body.
            let (body, crc) = name.split_at(name.len() - 4);
            let mut h = flate2::Crc::new();
            let header = event.header();
            let mut hb = Vec::with_capacity(19);
            hb.extend_from_slice(&header.timestamp().to_le_bytes());
            hb.push(header.event_type_raw());
            hb.extend_from_slice(&header.server_id().to_le_bytes());
            hb.extend_from_slice(&header.event_size().to_le_bytes());
            hb.extend_from_slice(&header.log_pos().to_le_bytes());
            hb.extend_from_slice(&header.flags_raw().to_le_bytes());
            h.update(&hb);
            h.update(&data[..8]);
            h.update(body);
            if h.sum() == u32::from_le_bytes(crc.try_into().unwrap_or([0; 4])) {
                name = body;
            }
        }
        let name = String::from_utf8_lossy(name).into_owned();
        debug!(file = %name, pos, fake = event.header().log_pos() == 0, "Binlog rotated.");
        if name != self.file {
            // A new file: TABLE_MAP ids are only valid within a file's events.
            self.table_maps.clear();
        }
        self.file = name;
        self.pos = pos;
        self.event_start = pos;
        Ok(())
    }

    fn on_heartbeat(&mut self) {
        if self.in_txn || self.first_buffered.is_some() {
            return;
        }
        self.resume = self.committed.clone();
        if self.last_progress.elapsed() >= PROGRESS_EVERY || self.pending.is_empty() {
            self.emit_progress();
        }
    }

    fn emit_progress(&mut self) {
        let seq = self.next_seq_value();
        let offset = self.committed.to_source_offset();
        self.pending.push_back((
            ChangeEvent::Progress { seq, offset },
            self.committed.position.clone(),
        ));
        self.last_progress = Instant::now();
    }

    fn on_mariadb_gtid(&mut self, event: &Event) -> Result<()> {
        let d = event.data();
        if d.len() < 13 {
            return Err(self.event_error("MariaDB GTID event too short".into()));
        }
        let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or([0; 8]));
        let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or([0; 4]));
        let flags = d[12];
        self.txn_gtid = Some(TxnGtid::Maria(MariaGtid {
            domain,
            server: event.header().server_id(),
            seq,
        }));
        // FL_STANDALONE (1): a single statement without BEGIN/COMMIT (DDL).
        self.standalone = flags & 1 != 0;
        self.in_txn = true;
        Ok(())
    }

    fn on_gtid_list(&mut self, d: &[u8]) -> Result<()> {
        if d.len() < 4 {
            return Err(self.event_error("GTID_LIST event too short".into()));
        }
        let count =
            (u32::from_le_bytes(d[0..4].try_into().unwrap_or([0; 4])) & 0x0fff_ffff) as usize;
        if d.len() < 4 + count * 16 {
            return Err(self.event_error("GTID_LIST event truncated".into()));
        }
        let mut list = MariaGtidPos::default();
        for i in 0..count {
            let e = &d[4 + i * 16..4 + (i + 1) * 16];
            list.update(MariaGtid {
                domain: u32::from_le_bytes(e[0..4].try_into().unwrap_or([0; 4])),
                server: u32::from_le_bytes(e[4..8].try_into().unwrap_or([0; 4])),
                seq: u64::from_le_bytes(e[8..16].try_into().unwrap_or([0; 8])),
            });
        }
        // GTID_LIST states what precedes this file: fill in domains we do not know yet.
        let mut cur = match self.gtid.take() {
            Some(GtidPos::MariaDb(p)) => p,
            _ => MariaGtidPos::default(),
        };
        for g in list.gtids() {
            if !cur.gtids().any(|c| c.domain == g.domain) {
                cur.update(*g);
            }
        }
        self.gtid = Some(GtidPos::MariaDb(cur));
        if !self.in_txn {
            self.committed.gtid = self.gtid.clone();
        }
        Ok(())
    }

    async fn on_table_map(&mut self, event: &Event) -> Result<()> {
        let raw = event.data();
        let table_id = u64::from_le_bytes({
            let mut b = [0u8; 8];
            b[..6.min(raw.len())].copy_from_slice(&raw[..6.min(raw.len())]);
            b
        });
        if let Some(e) = self.table_maps.get(&table_id)
            && e.raw == raw
            && e.table
                .as_ref()
                .and_then(|t| self.tables.get(t))
                .map(|t| t.schema.version)
                == e.table.as_ref().map(|_| e.version)
        {
            return Ok(());
        }
        let tme: TableMapEvent<'_> = match event.read_data() {
            Ok(Some(EventData::TableMapEvent(t))) => t,
            other => {
                return Err(self.event_error(format!("unreadable TABLE_MAP event: {other:?}")));
            }
        };
        let (db, name) = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        let id = TableId::new(db, name);
        let key = if self.tables.contains_key(&id) {
            Some(id)
        } else {
            self.tables
                .keys()
                .find(|k| {
                    k.schema.eq_ignore_ascii_case(&id.schema)
                        && k.table.eq_ignore_ascii_case(&id.table)
                })
                .cloned()
        };
        let Some(key) = key else {
            self.table_maps.insert(
                table_id,
                TmEntry {
                    raw: raw.to_vec(),
                    table: None,
                    version: 0,
                    decoder: None,
                },
            );
            return Ok(());
        };
        let at = self.here();
        let err = |kind: DecodeErrorKind| DecodeError {
            file: at.file.clone(),
            pos: at.pos,
            table: key.to_string(),
            column: None,
            kind: Box::new(kind),
        };
        let layout = ColumnLayout::from_table_map(&tme).map_err(err)?;
        let tm_names = table_map_column_names(&tme);
        let fits = |t: &MySqlTable| {
            t.columns.len() == layout.len()
                && tm_names.as_ref().is_none_or(|names| {
                    names
                        .iter()
                        .zip(&t.columns)
                        .all(|(a, c)| a.eq_ignore_ascii_case(&c.name))
                })
        };
        if self.tables.get(&key).is_some_and(|t| !fits(t)) {
            // The table changed without a DDL we understood: re-read the catalog once.
            self.resync(&key).await?;
        }
        let Some(t) = self.tables.get(&key) else {
            return Ok(());
        };
        let decoder = RowDecoder::try_new(t.schema.clone(), &t.columns, &layout).map_err(err)?;
        let entry = TmEntry {
            raw: raw.to_vec(),
            version: t.schema.version,
            table: Some(key),
            decoder: Some(Arc::new(decoder)),
        };
        self.table_maps.insert(table_id, entry);
        Ok(())
    }

    fn on_rows(&mut self, event: &Event) -> Result<()> {
        let t = event.header().event_type_raw();
        let at = self.here();
        let body = RowsEventBody::parse(t, event.data()).map_err(|kind| {
            let table = self
                .table_id_of(event.data())
                .and_then(|id| self.table_maps.get(&id))
                .and_then(|e| e.table.as_ref())
                .map(|t| t.to_string())
                .unwrap_or_else(|| "?".into());
            DecodeError {
                file: at.file.clone(),
                pos: at.pos,
                table,
                column: None,
                kind: Box::new(kind),
            }
        })?;
        let Some(entry) = self.table_maps.get(&body.table_id) else {
            return Err(self.event_error(format!(
                "rows event for table id {} without a preceding TABLE_MAP",
                body.table_id
            )));
        };
        let (Some(table), Some(decoder)) = (entry.table.clone(), entry.decoder.clone()) else {
            return Ok(()); // not captured
        };
        let ts = event.header().timestamp();
        if self.skip_before_secs.is_some() {
            return Ok(()); // a transaction before the requested start time
        }
        // Rows events sharing a position (inside a MySQL TRANSACTION_PAYLOAD) are told apart by
        // their index.
        let key = match &self.last_rows {
            Some((p, i)) if *p == at => (at.clone(), i + 1),
            _ => (at.clone(), 0),
        };
        if self.emitted_upto.as_ref().is_some_and(|e| key <= *e) {
            // Replayed after a reconnect: these rows were emitted before the connection broke.
            self.last_rows = Some(key);
            self.txn_emitted = true;
            return Ok(());
        }
        self.last_rows = Some(key);
        let idx = match self.accs.iter().position(|(id, _)| *id == table) {
            Some(i) => i,
            None => {
                let schema = decoder.table().clone();
                let builder = TableBatchBuilder::try_new(&schema).map_err(|e| DecodeError {
                    file: at.file.clone(),
                    pos: at.pos,
                    table: table.to_string(),
                    column: None,
                    kind: Box::new(DecodeErrorKind::Value(e)),
                })?;
                self.accs.push((
                    table.clone(),
                    TableAcc {
                        schema,
                        builder,
                        first: None,
                        committed_rows: 0,
                    },
                ));
                self.accs.len() - 1
            }
        };
        let acc = &mut self.accs[idx].1;
        if !Arc::ptr_eq(&acc.schema, decoder.table()) && !acc.builder.is_empty() {
            self.flush_all(false)?;
        }
        let acc = &mut self.accs[idx].1;
        if !Arc::ptr_eq(&acc.schema, decoder.table()) {
            acc.schema = decoder.table().clone();
            acc.builder = TableBatchBuilder::try_new(&acc.schema).map_err(|e| DecodeError {
                file: at.file.clone(),
                pos: at.pos,
                table: table.to_string(),
                column: None,
                kind: Box::new(DecodeErrorKind::Value(e)),
            })?;
        }
        if acc.first.is_none() {
            acc.first = Some(at.clone());
        }
        if self.first_buffered.is_none() {
            self.first_buffered = Some(Instant::now());
        }
        let ev_at = EventAt {
            file: &at.file,
            pos: at.pos,
        };
        if let Err(e) = decoder.decode(&body, &mut acc.builder, i64::from(ts) * 1000, ev_at) {
            acc.builder.reset();
            return Err(e.into());
        }
        let full = acc.builder.len() >= self.options.max_batch_rows
            || acc.builder.appended_bytes() >= self.options.max_batch_bytes;
        if full || !self.options.coalesce {
            self.flush_all(false)?;
        }
        Ok(())
    }

    fn table_id_of(&self, data: &[u8]) -> Option<u64> {
        let b = data.get(..6)?;
        let mut a = [0u8; 8];
        a[..6].copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }

    /// Emits every buffered row, all tables together. Per table, the rows of committed
    /// transactions go first and the last of those batches carries the offset of the last
    /// commit; rows of the open transaction follow without an offset (or are dropped with
    /// `drop_open`, at the end of a non-blocking read). Afterwards a reconnect restarts at the
    /// last commit and skips the rows events emitted here.
    fn flush_all(&mut self, drop_open: bool) -> Result<()> {
        self.first_buffered = None;
        if self.accs.iter().all(|(_, a)| a.builder.is_empty()) {
            return Ok(());
        }
        let last_committed = self.accs.iter().rposition(|(_, a)| a.committed_rows > 0);
        let offset = self.committed.to_source_offset();
        let mut open = Vec::new();
        for i in 0..self.accs.len() {
            let (id, acc) = &mut self.accs[i];
            if acc.builder.is_empty() {
                continue;
            }
            let committed_rows = std::mem::take(&mut acc.committed_rows);
            let first = acc
                .first
                .take()
                .unwrap_or_else(|| BinlogPosition::new("", 0));
            let mut batch = acc
                .builder
                .finish_change_batch(&acc.schema, 0, None)
                .map_err(|source| BinlogError::Arrow {
                    table: id.to_string(),
                    source,
                })?;
            let n = batch.data.num_rows();
            if committed_rows < n {
                let mut rest = batch.clone();
                rest.data = batch.data.slice(committed_rows, n - committed_rows);
                open.push((rest, first.clone()));
                batch.data = batch.data.slice(0, committed_rows);
            }
            if batch.data.num_rows() > 0 {
                if Some(i) == last_committed {
                    batch.offset = Some(offset.clone());
                }
                self.push_batch(batch, first);
            }
        }
        if !drop_open {
            for (batch, first) in open {
                self.txn_emitted = true;
                self.push_batch(batch, first);
            }
        }
        self.emitted_upto = self.last_rows.clone();
        self.resume = self.committed.clone();
        Ok(())
    }

    fn push_batch(&mut self, mut batch: ChangeBatch, first: BinlogPosition) {
        batch.seq = self.next_seq_value();
        self.pending.push_back((ChangeEvent::Data(batch), first));
    }

    /// Ends the current transaction at `end_pos` (the position after its last event).
    fn on_commit(&mut self, end_pos: u64) -> Result<()> {
        match self.txn_gtid.take() {
            Some(TxnGtid::Maria(g)) => {
                let mut p = match self.gtid.take() {
                    Some(GtidPos::MariaDb(p)) => p,
                    _ => MariaGtidPos::default(),
                };
                p.update(g);
                self.gtid = Some(GtidPos::MariaDb(p));
            }
            Some(TxnGtid::MySql(sid, gno)) => {
                if let Some(GtidPos::MySql(s)) = &mut self.gtid {
                    s.add(&sid, gno);
                }
            }
            None => {}
        }
        let end = if end_pos != 0 { end_pos } else { self.pos };
        self.committed = BinlogOffset {
            position: BinlogPosition::new(self.file.clone(), end),
            gtid: self.gtid.clone(),
        };
        // The transaction's rows stay buffered with those of earlier ones until a batch is full,
        // the linger time is up or the stream is idle (see next_event_at).
        for (_, a) in &mut self.accs {
            a.committed_rows = a.builder.len();
        }
        let stop = self
            .options
            .stop_at
            .as_ref()
            .is_some_and(|stop| self.committed.position >= *stop);
        let buffered = self.first_buffered.is_some();
        let linger_up = self
            .first_buffered
            .is_some_and(|t| t.elapsed() >= self.options.linger);
        let mut emitted = false;
        if buffered && (stop || linger_up || !self.options.coalesce) {
            self.flush_all(false)?;
            emitted = true;
        }
        let had_data = self.txn_emitted;
        self.in_txn = false;
        self.begun = false;
        self.standalone = false;
        self.txn_emitted = false;
        if self.first_buffered.is_none() {
            self.resume = self.committed.clone();
            if !emitted && (had_data || self.last_progress.elapsed() >= PROGRESS_EVERY) {
                // Mid-transaction batches went out without an offset: say where we are now.
                self.emit_progress();
            }
        }
        if stop {
            self.done = true;
        }
        Ok(())
    }

    async fn on_query(&mut self, schema: &str, query: &str, end_pos: u64) -> Result<()> {
        let q = query.trim_start();
        let head: String = q.chars().take(16).collect::<String>().to_ascii_uppercase();
        if head.starts_with("BEGIN") || head.starts_with("XA START") {
            self.in_txn = true;
            self.begun = true;
            return Ok(());
        }
        if head.starts_with("XA END") || head.starts_with("SAVEPOINT") || head.starts_with('#') {
            return Ok(());
        }
        if head.starts_with("COMMIT")
            || head.starts_with("XA COMMIT")
            || head.starts_with("ROLLBACK")
        {
            // ROLLBACK in the binlog: non-transactional changes were logged and did happen.
            self.on_commit(end_pos)?;
            return Ok(());
        }
        let before_start = self.skip_before_secs.is_some();
        let parsed = if before_start {
            None
        } else {
            ddl::parse(q, schema)
        };
        let Some(ddl) = parsed else {
            // A statement inside BEGIN..COMMIT (statement-logged DML) belongs to its transaction;
            // any other statement (GRANT, CREATE USER, ...) is a transaction of its own.
            if !self.begun {
                self.on_commit(end_pos)?;
            }
            return Ok(());
        };
        // DDL commits implicitly: buffered rows belong before the schema change.
        self.flush_all(false)?;
        self.accs.clear();
        // (Timestamp start: DDL before the requested time is neither applied nor reported; the
        // catalog already reflects it.)
        let events = self.apply_ddl(&ddl).await?;
        for e in events {
            let e = match e {
                DdlOutcome::Create(s) => ChangeEvent::CreateTable(s),
                DdlOutcome::Change(table, change, schema) => {
                    let seq = self.next_seq_value();
                    ChangeEvent::SchemaChange {
                        table,
                        change,
                        schema,
                        seq,
                    }
                }
            };
            self.txn_emitted = true;
            self.pending.push_back((e, self.here()));
        }
        self.on_commit(end_pos)?;
        Ok(())
    }

    /// Re-reads a captured table whose TABLE_MAP no longer matches the catalog and reports the
    /// difference as schema changes (ahead of the rows that follow).
    async fn resync(&mut self, key: &TableId) -> Result<()> {
        let Some(new) = self.reload(key).await? else {
            return Ok(());
        };
        let Some(old) = self.tables.get(key).cloned() else {
            return Ok(());
        };
        if new.schema.columns == old.schema.columns {
            return Ok(());
        }
        warn!(table = %key, position = %self.here(), "Table changed without a parsed DDL; schema re-read from the catalog.");
        // Rows read with the old schema go out before the change.
        self.flush_all(false)?;
        let schema = Arc::new(bump(&new.schema, old.schema.version + 1));
        for change in diff(&old.schema, &schema, &[]) {
            let seq = self.next_seq_value();
            let e = ChangeEvent::SchemaChange {
                table: key.clone(),
                change,
                schema: schema.clone(),
                seq,
            };
            self.pending.push_back((e, self.here()));
        }
        let mut t = new;
        t.schema = schema;
        t.id = key.clone();
        self.tables.insert(key.clone(), t);
        Ok(())
    }

    async fn catalog_conn(&mut self) -> Result<&mut Conn> {
        if self.catalog.is_none() {
            let c = Conn::new(self.opts.clone())
                .await
                .map_err(setup("connecting to re-read the catalog after DDL"))?;
            self.catalog = Some(c);
        }
        self.catalog.as_mut().ok_or_else(|| BinlogError::Event {
            position: String::new(),
            message: "catalog connection".into(),
        })
    }

    async fn reload(&mut self, id: &TableId) -> Result<Option<MySqlTable>> {
        let position = self.position_text();
        let tiny = self.options.tinyint1_as_boolean;
        let conn = self.catalog_conn().await?;
        let mut loaded = crate::schema::load_tables(conn, std::slice::from_ref(id), tiny)
            .await
            .map_err(|source| BinlogError::Catalog {
                table: id.to_string(),
                position,
                source: Box::new(source),
            })?;
        Ok(loaded.pop())
    }

    fn captured_key(&self, id: &TableId) -> Option<TableId> {
        if self.tables.contains_key(id) {
            return Some(id.clone());
        }
        self.tables
            .keys()
            .find(|k| {
                k.schema.eq_ignore_ascii_case(&id.schema) && k.table.eq_ignore_ascii_case(&id.table)
            })
            .cloned()
    }

    async fn apply_ddl(&mut self, ddl: &ddl::Ddl) -> Result<Vec<DdlOutcome>> {
        let mut out = Vec::new();
        match ddl {
            ddl::Ddl::Alter { table, renames } => {
                let Some(key) = self.captured_key(table) else {
                    return Ok(out);
                };
                let Some(new) = self.reload(&key).await? else {
                    return Ok(out);
                };
                let old = self.tables.get(&key).cloned();
                if let Some(old) = old {
                    let version = old.schema.version + 1;
                    let schema = Arc::new(bump(&new.schema, version));
                    for change in diff(&old.schema, &schema, renames) {
                        out.push(DdlOutcome::Change(key.clone(), change, schema.clone()));
                    }
                    let mut t = new;
                    t.schema = schema;
                    t.id = key.clone();
                    self.tables.insert(key, t);
                }
            }
            ddl::Ddl::Create { table } => {
                if self.captured_key(table).is_some() {
                    return Ok(out);
                }
                let wanted = self.dropped.remove(table)
                    || self
                        .options
                        .filter
                        .as_ref()
                        .is_some_and(|f| f.matches(&table.schema, &table.table));
                if wanted && let Some(t) = self.reload(table).await? {
                    info!(table = %table, "Captured table created.");
                    out.push(DdlOutcome::Create(t.schema.clone()));
                    self.tables.insert(t.id.clone(), t);
                }
            }
            ddl::Ddl::Drop { tables } => {
                for table in tables {
                    if let Some(key) = self.captured_key(table)
                        && let Some(old) = self.tables.remove(&key)
                    {
                        self.dropped.insert(key.clone());
                        out.push(DdlOutcome::Change(key, SchemaChange::DropTable, old.schema));
                    }
                }
            }
            ddl::Ddl::Truncate { table } => {
                if let Some(key) = self.captured_key(table)
                    && let Some(t) = self.tables.get(&key)
                {
                    out.push(DdlOutcome::Change(
                        key,
                        SchemaChange::TruncateTable,
                        t.schema.clone(),
                    ));
                }
            }
            ddl::Ddl::Rename { pairs } => {
                for (from, to) in pairs {
                    if let Some(key) = self.captured_key(from)
                        && let Some(mut t) = self.tables.remove(&key)
                    {
                        // Flink CDC emits no event for renames; the table is tracked under its
                        // new name so its rows keep flowing (to the old sink table).
                        info!(from = %key, to = %to, "Captured table renamed.");
                        t.id = to.clone();
                        self.tables.insert(to.clone(), t);
                    }
                }
            }
        }
        // TABLE_MAPs of changed tables must be re-planned.
        self.table_maps.clear();
        Ok(out)
    }
}

/// What a DDL produced.
enum DdlOutcome {
    Create(TableSchemaRef),
    Change(TableId, SchemaChange, TableSchemaRef),
}

/// A copy of `s` with another version.
fn bump(s: &TableSchema, version: u64) -> TableSchema {
    TableSchema::new(
        s.id.clone(),
        s.columns.clone(),
        s.primary_key.clone(),
        s.comment.clone(),
        version,
    )
}

/// Schema changes that turn `old` into `new`, in Flink CDC's vocabulary.
fn diff(old: &TableSchema, new: &TableSchema, renames: &[(String, String)]) -> Vec<SchemaChange> {
    let mut changes = Vec::new();
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    // Renames stated by the DDL, when both sides check out.
    let renames: Vec<(String, String)> = renames
        .iter()
        .filter(|(a, b)| {
            !eq(a, b)
                && old.columns.iter().any(|c| eq(&c.name, a))
                && new.columns.iter().any(|c| eq(&c.name, b))
                && !new.columns.iter().any(|c| eq(&c.name, a))
        })
        .cloned()
        .collect();
    let renamed_from = |n: &str| {
        renames
            .iter()
            .find(|(_, b)| eq(b, n))
            .map(|(a, _)| a.clone())
    };
    let renamed_to = |n: &str| renames.iter().any(|(a, _)| eq(a, n));
    if !renames.is_empty() {
        changes.push(SchemaChange::RenameColumn {
            renames: renames.clone(),
        });
    }
    let dropped: Vec<String> = old
        .columns
        .iter()
        .filter(|c| !renamed_to(&c.name) && !new.columns.iter().any(|n| eq(&n.name, &c.name)))
        .map(|c| c.name.clone())
        .collect();
    if !dropped.is_empty() {
        changes.push(SchemaChange::DropColumn { columns: dropped });
    }
    let mut added = Vec::new();
    for (i, c) in new.columns.iter().enumerate() {
        let old_name = renamed_from(&c.name).unwrap_or_else(|| c.name.clone());
        match old.columns.iter().find(|o| eq(&o.name, &old_name)) {
            None => {
                let pos = if i == 0 {
                    ColumnPosition::First
                } else if i + 1 == new.columns.len() {
                    ColumnPosition::Last
                } else {
                    ColumnPosition::After(new.columns[i - 1].name.clone())
                };
                added.push((c.clone(), pos));
            }
            Some(o) if o.data_type != c.data_type => {
                changes.push(SchemaChange::AlterColumnType { column: c.clone() });
            }
            Some(_) => {}
        }
    }
    if !added.is_empty() {
        changes.push(SchemaChange::AddColumn { columns: added });
    }
    if old.comment != new.comment {
        changes.push(SchemaChange::AlterTableComment {
            comment: new.comment.clone(),
        });
    }
    changes
}

/// Column names from TABLE_MAP optional metadata (`binlog_row_metadata=FULL`), if present.
fn table_map_column_names(tme: &TableMapEvent<'_>) -> Option<Vec<String>> {
    use mysql_common::binlog::events::OptionalMetaExtractor;
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta()).ok()?;
    let names: Vec<String> = meta
        .iter_column_name()
        .map(|n| n.ok().map(|n| n.name().into_owned()))
        .collect::<Option<Vec<_>>>()?;
    (!names.is_empty()).then_some(names)
}

/// Formats a 16-byte server UUID.
fn format_uuid(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Parses MariaDB's QUERY_COMPRESSED_EVENT: the QUERY layout with a compressed query text.
fn parse_compressed_query(d: &[u8]) -> Result<(String, String), DecodeErrorKind> {
    let short = || DecodeErrorKind::Corrupt("QUERY_COMPRESSED too short".into());
    if d.len() < 13 {
        return Err(short());
    }
    let db_len = usize::from(d[8]);
    let status_len = usize::from(u16::from_le_bytes([d[11], d[12]]));
    let db_at = 13 + status_len;
    let q_at = db_at + db_len + 1;
    let db = d.get(db_at..db_at + db_len).ok_or_else(short)?;
    let q = d.get(q_at..).ok_or_else(short)?;
    let text = inflate_mariadb(q)?;
    Ok((
        String::from_utf8_lossy(db).into_owned(),
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// An error from the guarded stream poll.
enum GuardedError {
    Driver(mysql_async::Error),
    Panic(String),
    /// Nothing arrived for this long although heartbeats were requested.
    Silent(Duration),
}

/// Polls the stream, turning a panic inside the driver (it unwraps on truncated events) into an
/// error instead of tearing down the pipeline.
async fn next_guarded(stream: &mut BinlogStream) -> Option<Result<Event, GuardedError>> {
    futures::future::poll_fn(|cx| {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            std::pin::Pin::new(&mut *stream).poll_next(cx)
        }));
        match r {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(None)) => Poll::Ready(None),
            Ok(Poll::Ready(Some(Ok(e)))) => Poll::Ready(Some(Ok(e))),
            Ok(Poll::Ready(Some(Err(e)))) => Poll::Ready(Some(Err(GuardedError::Driver(e)))),
            Err(p) => {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "driver panicked".into());
                Poll::Ready(Some(Err(GuardedError::Panic(msg))))
            }
        }
    })
    .await
}

/// Measures how far the reader is behind the server's binlog end, in bytes, every
/// [`LAG_EVERY`] on its own connection, and reports it as `Metrics::set_lag_bytes`. Failures are
/// logged at debug and ignored (the metric is informative). The task ends when the probe drops.
struct LagProbe {
    /// The reader's position (file, end of the last event read), published per emitted event.
    at: Arc<std::sync::Mutex<Option<(String, u64)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LagProbe {
    fn spawn(opts: Opts) -> LagProbe {
        let at: Arc<std::sync::Mutex<Option<(String, u64)>>> = Default::default();
        let shared = at.clone();
        let task = tokio::spawn(async move {
            let mut conn: Option<Conn> = None;
            loop {
                tokio::time::sleep(LAG_EVERY).await;
                let here = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let Some((file, pos)) = here else { continue };
                if conn.is_none() {
                    match tokio::time::timeout(LAG_EVERY, Conn::new(opts.clone())).await {
                        Ok(Ok(c)) => conn = Some(c),
                        Ok(Err(e)) => {
                            debug!(error = %e, "Lag probe: connecting failed.");
                            continue;
                        }
                        Err(_) => continue,
                    }
                }
                let Some(c) = conn.as_mut() else { continue };
                match lag_bytes(c, &file, pos).await {
                    Ok(bytes) => cdcflow_engine::metrics::Metrics::global().set_lag_bytes(bytes),
                    Err(e) => {
                        debug!(error = %e, "Lag probe: reading the binlog end failed.");
                        conn = None;
                    }
                }
            }
        });
        LagProbe { at, task }
    }

    fn publish(&self, file: &str, pos: u64) {
        let mut g = self.at.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_mut() {
            Some((f, p)) if f == file => *p = pos,
            _ => *g = Some((file.to_string(), pos)),
        }
    }
}

impl Drop for LagProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Bytes between `file:pos` and the server's binlog end (`SHOW BINARY LOGS` sizes when the
/// files differ).
async fn lag_bytes(conn: &mut Conn, file: &str, pos: u64) -> Result<u64, mysql_async::Error> {
    let row: Option<mysql_async::Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(_) => conn.query_first("SHOW BINARY LOG STATUS").await?,
    };
    let Some(row) = row else { return Ok(0) };
    let end_file: String = row.get(0).unwrap_or_default();
    let end_pos: u64 = row.get(1).unwrap_or_default();
    if end_file == file || file.is_empty() {
        return Ok(end_pos.saturating_sub(pos));
    }
    let here = BinlogPosition::new(file, pos);
    let end = BinlogPosition::new(end_file.clone(), end_pos);
    if end < here {
        return Ok(0);
    }
    let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await?;
    let mut bytes = end_pos;
    for r in logs {
        let name: String = r.get(0).unwrap_or_default();
        let size: u64 = r.get(1).unwrap_or_default();
        let p = BinlogPosition::new(name.clone(), 0);
        if name == file {
            bytes += size.saturating_sub(pos);
        } else if p > here && name != end_file && p < end {
            bytes += size;
        }
    }
    Ok(bytes)
}

/// Finds the binlog file to start from for a timestamp: the newest file whose first event is
/// not later than `secs` (or the oldest file).
async fn find_file_for_timestamp(opts: &Opts, server_id: u32, secs: u32) -> Result<String> {
    let mut conn = Conn::new(opts.clone())
        .await
        .map_err(setup("connecting to search binlog files"))?;
    let files = binlog_files(&mut conn).await?;
    drop(conn);
    let mut chosen = files.first().cloned().ok_or(BinlogError::BinlogDisabled)?;
    for f in files.iter().rev() {
        let ts = first_event_time(opts, server_id, f).await?;
        if ts.is_some_and(|t| t <= secs) {
            chosen = f.clone();
            break;
        }
    }
    Ok(chosen)
}

/// Timestamp of the first real event (the FORMAT_DESCRIPTION) of a binlog file.
async fn first_event_time(opts: &Opts, server_id: u32, file: &str) -> Result<Option<u32>> {
    use futures::StreamExt;
    let mut conn = Conn::new(opts.clone())
        .await
        .map_err(setup("connecting to search binlog files"))?;
    if server_flavor(&mut conn).await? == Flavor::Mariadb {
        let _ = conn.query_drop("SET @mariadb_slave_capability=4").await;
    }
    let req = BinlogStreamRequest::new(server_id)
        .with_non_blocking()
        .with_filename(file.as_bytes())
        .with_pos(4);
    let mut stream = conn
        .get_binlog_stream(req)
        .await
        .map_err(|e| classify_server_error(e, server_id, file, file))?;
    let mut found = None;
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|e| classify_server_error(e, server_id, file, file))?;
        if ev.header().log_pos() != 0 && ev.header().timestamp() != 0 {
            found = Some(ev.header().timestamp());
            break;
        }
    }
    let _ = stream.close().await;
    Ok(found)
}

/// Just enough DDL parsing to know which tables a statement touches.
mod ddl {
    use cdcflow_engine::TableId;

    /// The DDL kinds that matter for captured tables.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Ddl {
        /// `ALTER TABLE t ...`, with column renames it states.
        Alter {
            table: TableId,
            renames: Vec<(String, String)>,
        },
        /// `CREATE TABLE t ...`.
        Create { table: TableId },
        /// `DROP TABLE a, b`.
        Drop { tables: Vec<TableId> },
        /// `TRUNCATE [TABLE] t`.
        Truncate { table: TableId },
        /// `RENAME TABLE a TO b, ...` / `ALTER TABLE a RENAME TO b`.
        Rename { pairs: Vec<(TableId, TableId)> },
    }

    /// A tiny tokenizer: words, quoted identifiers, punctuation; comments skipped.
    struct Lexer<'a> {
        s: &'a str,
        i: usize,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Word(String),
        Quoted(String),
        Punct(char),
        Str,
    }

    impl<'a> Lexer<'a> {
        fn next(&mut self) -> Option<Tok> {
            let b = self.s.as_bytes();
            loop {
                while self.i < b.len() && b[self.i].is_ascii_whitespace() {
                    self.i += 1;
                }
                if self.s[self.i..].starts_with("/*") {
                    self.i = self.s[self.i + 2..]
                        .find("*/")
                        .map(|j| self.i + j + 4)
                        .unwrap_or(b.len());
                    continue;
                }
                if self.s[self.i..].starts_with("-- ") || self.s[self.i..].starts_with('#') {
                    self.i = self.s[self.i..]
                        .find('\n')
                        .map(|j| self.i + j + 1)
                        .unwrap_or(b.len());
                    continue;
                }
                break;
            }
            let c = *b.get(self.i)?;
            if c == b'`' {
                let mut out = String::new();
                let mut j = self.i + 1;
                while j < b.len() {
                    if b[j] == b'`' {
                        if b.get(j + 1) == Some(&b'`') {
                            out.push('`');
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    let ch = self.s[j..].chars().next()?;
                    out.push(ch);
                    j += ch.len_utf8();
                }
                self.i = (j + 1).min(b.len());
                return Some(Tok::Quoted(out));
            }
            if c == b'\'' || c == b'"' {
                let mut j = self.i + 1;
                while j < b.len() && b[j] != c {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                self.i = (j + 1).min(b.len());
                return Some(Tok::Str);
            }
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                let start = self.i;
                while self.i < b.len()
                    && (b[self.i].is_ascii_alphanumeric()
                        || b[self.i] == b'_'
                        || b[self.i] == b'$'
                        || b[self.i] >= 0x80)
                {
                    self.i += 1;
                }
                return Some(Tok::Word(self.s[start..self.i].to_string()));
            }
            let ch = self.s[self.i..].chars().next()?;
            self.i += ch.len_utf8();
            Some(Tok::Punct(ch))
        }
    }

    fn is_kw(t: &Option<Tok>, kw: &str) -> bool {
        matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn ident(t: Option<Tok>) -> Option<String> {
        match t? {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            _ => None,
        }
    }

    /// Reads `[db.]name`; returns the table id and the token after it.
    fn table_name(
        lx: &mut Lexer<'_>,
        first: Option<Tok>,
        default_db: &str,
    ) -> Option<(TableId, Option<Tok>)> {
        let a = ident(first)?;
        let next = lx.next();
        if next == Some(Tok::Punct('.')) {
            let b = ident(lx.next())?;
            Some((TableId::new(a, b), lx.next()))
        } else {
            Some((TableId::new(default_db, a), next))
        }
    }

    /// Classifies a statement; `None` when it touches no table's shape.
    pub fn parse(sql: &str, default_db: &str) -> Option<Ddl> {
        let mut lx = Lexer { s: sql, i: 0 };
        let mut t = lx.next();
        if is_kw(&t, "ALTER") {
            t = lx.next();
            while is_kw(&t, "ONLINE") || is_kw(&t, "IGNORE") {
                t = lx.next();
            }
            if !is_kw(&t, "TABLE") {
                return None;
            }
            t = lx.next();
            if is_kw(&t, "IF") {
                lx.next();
                t = lx.next();
            }
            let (table, mut t) = table_name(&mut lx, t, default_db)?;
            let mut renames = Vec::new();
            let mut rename_to = None;
            let mut depth = 0i32;
            while let Some(tok) = t.clone() {
                match tok {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth -= 1,
                    Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("RENAME") => {
                        let n = lx.next();
                        if is_kw(&n, "COLUMN") {
                            let from = ident(lx.next());
                            let _to_kw = lx.next();
                            let to = ident(lx.next());
                            if let (Some(a), Some(b)) = (from, to) {
                                renames.push((a, b));
                            }
                        } else if is_kw(&n, "TO") || is_kw(&n, "AS") {
                            let n = lx.next();
                            rename_to = table_name(&mut lx, n, &table.schema).map(|(id, _)| id);
                            break;
                        } else if matches!(n, Some(Tok::Word(_)) | Some(Tok::Quoted(_)))
                            && !is_kw(&n, "INDEX")
                            && !is_kw(&n, "KEY")
                        {
                            rename_to = table_name(&mut lx, n, &table.schema).map(|(id, _)| id);
                            break;
                        }
                    }
                    Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("CHANGE") => {
                        let mut n = lx.next();
                        if is_kw(&n, "COLUMN") {
                            n = lx.next();
                        }
                        if is_kw(&n, "IF") {
                            lx.next();
                            n = lx.next();
                        }
                        if let (Some(a), Some(b)) = (ident(n), ident(lx.next())) {
                            renames.push((a, b));
                        }
                    }
                    _ => {}
                }
                t = lx.next();
            }
            if let Some(to) = rename_to {
                return Some(Ddl::Rename {
                    pairs: vec![(table, to)],
                });
            }
            return Some(Ddl::Alter { table, renames });
        }
        if is_kw(&t, "CREATE") {
            t = lx.next();
            if is_kw(&t, "OR") {
                lx.next();
                t = lx.next();
            }
            if is_kw(&t, "TEMPORARY") {
                return None;
            }
            if !is_kw(&t, "TABLE") {
                return None;
            }
            t = lx.next();
            if is_kw(&t, "IF") {
                lx.next();
                lx.next();
                t = lx.next();
            }
            let (table, _) = table_name(&mut lx, t, default_db)?;
            return Some(Ddl::Create { table });
        }
        if is_kw(&t, "DROP") {
            t = lx.next();
            if is_kw(&t, "TEMPORARY") {
                return None;
            }
            if !is_kw(&t, "TABLE") {
                return None;
            }
            t = lx.next();
            if is_kw(&t, "IF") {
                lx.next();
                t = lx.next();
            }
            let mut tables = Vec::new();
            while let Some((id, next)) = table_name(&mut lx, t, default_db) {
                tables.push(id);
                if next != Some(Tok::Punct(',')) {
                    break;
                }
                t = lx.next();
            }
            return Some(Ddl::Drop { tables });
        }
        if is_kw(&t, "TRUNCATE") {
            t = lx.next();
            if is_kw(&t, "TABLE") {
                t = lx.next();
            }
            let (table, _) = table_name(&mut lx, t, default_db)?;
            return Some(Ddl::Truncate { table });
        }
        if is_kw(&t, "RENAME") {
            t = lx.next();
            if !is_kw(&t, "TABLE") && !is_kw(&t, "TABLES") {
                return None;
            }
            let mut pairs = Vec::new();
            t = lx.next();
            while let Some((from, next)) = table_name(&mut lx, t, default_db) {
                if !is_kw(&next, "TO") {
                    break;
                }
                let n = lx.next();
                let Some((to, next)) = table_name(&mut lx, n, default_db) else {
                    break;
                };
                pairs.push((from, to));
                if next != Some(Tok::Punct(',')) {
                    break;
                }
                t = lx.next();
            }
            return Some(Ddl::Rename { pairs });
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ddl_statements_name_their_tables() {
            assert_eq!(
                parse("ALTER TABLE `app`.`t` ADD COLUMN c INT", "x"),
                Some(Ddl::Alter {
                    table: TableId::new("app", "t"),
                    renames: vec![]
                })
            );
            assert_eq!(
                parse(
                    "/* c */ alter online table t RENAME COLUMN a TO b, CHANGE x y INT",
                    "db"
                ),
                Some(Ddl::Alter {
                    table: TableId::new("db", "t"),
                    renames: vec![("a".into(), "b".into()), ("x".into(), "y".into())]
                })
            );
            assert_eq!(
                parse(
                    "DROP TABLE IF EXISTS `a`, db2.b /* generated by server */",
                    "db"
                ),
                Some(Ddl::Drop {
                    tables: vec![TableId::new("db", "a"), TableId::new("db2", "b")]
                })
            );
            assert_eq!(
                parse("TRUNCATE t", "db"),
                Some(Ddl::Truncate {
                    table: TableId::new("db", "t")
                })
            );
            assert_eq!(
                parse("CREATE TABLE IF NOT EXISTS n (id INT)", "db"),
                Some(Ddl::Create {
                    table: TableId::new("db", "n")
                })
            );
            assert_eq!(
                parse("RENAME TABLE a TO b, c TO d", "db"),
                Some(Ddl::Rename {
                    pairs: vec![
                        (TableId::new("db", "a"), TableId::new("db", "b")),
                        (TableId::new("db", "c"), TableId::new("db", "d"))
                    ]
                })
            );
            assert_eq!(
                parse("ALTER TABLE a RENAME TO b", "db"),
                Some(Ddl::Rename {
                    pairs: vec![(TableId::new("db", "a"), TableId::new("db", "b"))]
                })
            );
            assert_eq!(parse("CREATE TEMPORARY TABLE t (a int)", "db"), None);
            assert_eq!(parse("INSERT INTO t VALUES (1)", "db"), None);
            assert_eq!(parse("", "db"), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdcflow_engine::{CdcType, ColumnDef};

    fn col(name: &str, t: CdcType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: t,
            nullable: true,
            default: None,
            comment: None,
            source_type: String::new(),
        }
    }

    #[test]
    fn schema_diff_names_each_change() {
        let id = TableId::new("db", "t");
        let old = TableSchema::new(
            id.clone(),
            vec![
                col("id", CdcType::Int),
                col("a", CdcType::Int),
                col("b", CdcType::Int),
            ],
            vec!["id".into()],
            None,
            1,
        );
        let new = TableSchema::new(
            id,
            vec![
                col("id", CdcType::BigInt),
                col("a2", CdcType::Int),
                col("c", CdcType::String),
                col("d", CdcType::Int),
            ],
            vec!["id".into()],
            Some("x".into()),
            2,
        );
        let changes = diff(&old, &new, &[("a".into(), "a2".into())]);
        let tags: Vec<_> = changes.iter().map(|c| c.tag()).collect();
        assert_eq!(
            tags,
            vec![
                "rename.column",
                "drop.column",
                "alter.column.type",
                "add.column",
                "alter.table.comment"
            ]
        );
        let SchemaChange::AddColumn { columns } = &changes[3] else {
            panic!("add expected")
        };
        assert_eq!(columns[0].1, ColumnPosition::After("a2".into()));
        assert_eq!(columns[1].1, ColumnPosition::Last);
    }

    #[test]
    fn uuids_are_formatted_canonically() {
        let b = [
            0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
            0x95, 0x62,
        ];
        assert_eq!(format_uuid(&b), "3e11fa47-71ca-11e1-9e33-c80aa9429562");
    }
}
