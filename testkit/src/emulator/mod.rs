//! A Stream Load emulator for Apache Doris and StarRocks, built from their documented protocols
//! (see `/work/shared/reference/stream-load.md`), so sinks can be tested end to end without a
//! real cluster and without mocks.
//!
//! ```text
//!   client ──PUT /api/{db}/{t}/_stream_load──▶ FE (auth, Expect, 307) ──Location──▶ BE n
//!                                                                     (labels, txn, rows)
//!   client ──POST /api/query/default_cluster/{db} {"stmt"}──▶ FE      (Doris DDL over HTTP)
//!   client ──MySQL protocol──▶ query port                             (DDL, SHOW, SELECT)
//! ```
//!
//! One [`Emulator`] emulates one system ([`Mode::Doris`] or [`Mode::StarRocks`]) with one FE HTTP
//! port, `be_count` BE HTTP ports and one MySQL-protocol query port. Everything is in memory.
//!
//! What is emulated: FE 307 redirects (Doris puts `user:password@` in the Location, StarRocks
//! does not), Basic auth with each system's failure shape, the `Expect` requirement on the FE,
//! header validation, labels (regex, per-database dedup, `ExistingJobStatus`, retention), the
//! exact response JSON of each system, CSV/JSON/Arrow bodies with gz/lz4/deflate/zstd, strict
//! mode and `max_filter_ratio`, Unique/Duplicate/Aggregate/Primary key models, Doris delete
//! sign and sequence column, StarRocks `__op`, Doris 2PC, the StarRocks transaction API,
//! `get_load_state`, error logs, and the DDL the sinks send.
//!
//! # Test API
//!
//! - [`Emulator::start`]`(`[`EmulatorConfig::doris`]`()` / [`EmulatorConfig::starrocks`]`())`,
//!   then [`Emulator::fe_url`], [`Emulator::fe_addr`], [`Emulator::be_addrs`],
//!   [`Emulator::query_addr`] (MySQL protocol). Users: `root` with an empty password, plus
//!   [`EmulatorConfig::with_user`]. Free ports by default.
//! - Tables: [`Emulator::create_table_sql`] (creates the database too), [`Emulator::execute_sql`],
//!   [`Emulator::schema`], [`Emulator::rows`] (visible rows sorted by key, JSON cells).
//! - Labels: [`Emulator::label_state`], [`Emulator::set_label_state`] (make a label look
//!   RUNNING / PRECOMMITTED / FINISHED / ABORTED).
//! - Faults: [`Emulator::inject`]`(`[`FaultPoint`]`, `[`Fault`]`, times)`: HTTP 5xx, connection
//!   reset, hang, `Publish Timeout`, reply lost after commit.
//! - Switches: [`Emulator::set_down`] (a whole-cluster outage: every new FE/BE HTTP request and
//!   every query-port connection is closed unanswered; data is kept) and
//!   [`Emulator::set_stalled`] (BE stream loads, 2PC and transaction calls wait until released,
//!   never timing out on the server side: a stalled sink for backpressure tests).
//! - Observation: [`Emulator::requests`] (every request: node, path, label, auth, body,
//!   status) and [`Emulator::counters`].
//! - Timing knobs: [`EmulatorConfig::label_keep`], [`EmulatorConfig::precommit_timeout`],
//!   [`EmulatorConfig::json_max_bytes`].
//!
//! Not emulated: group-commit batching across requests (a group-commit load commits at once),
//! StarRocks merge commit, `parquet`/`orc`, `lzo`/`bz2`/`lz4_block`/`snappy` bodies (rejected
//! with a clear message), partitions, `columns` expressions beyond column references, literals
//! and `lower`/`upper`, and publish delay (a `Publish Timeout` load is applied at once).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), cdcflow_testkit::emulator::EmulatorError> {
//! use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
//! let emu = Emulator::start(EmulatorConfig::doris()).await?;
//! emu.create_table_sql("db", "CREATE TABLE t (id INT, v STRING) UNIQUE KEY(id) DISTRIBUTED BY HASH(id)")?;
//! // ... point the sink at emu.fe_url() with user "root", empty password ...
//! let rows = emu.rows("db", "t")?;
//! # Ok(()) }
//! ```

mod http;
pub mod json;
pub mod load;
pub mod model;
mod mysql;
pub mod sql;
pub mod state;
pub mod types;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use model::KeysType;
pub use sql::{SqlError, SqlOutput};
pub use state::TxnState;
pub use types::{ColumnType, Value};

/// Which system an emulator instance behaves as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Apache Doris (2.1/3.x behaviour).
    Doris,
    /// StarRocks (3.x behaviour).
    StarRocks,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "doris" => Ok(Mode::Doris),
            "starrocks" => Ok(Mode::StarRocks),
            other => Err(format!(
                "unknown mode `{other}` (expected doris or starrocks)"
            )),
        }
    }
}

/// Errors of the emulator's Rust API.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A listening socket could not be bound.
    #[error("cannot bind {role} on {addr}: {source}")]
    Bind {
        /// fe / be / query.
        role: &'static str,
        /// Requested address.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A SQL statement failed.
    #[error("SQL failed in database `{db}`: {source}")]
    Sql {
        /// Database context.
        db: String,
        /// The parser/executor error.
        source: SqlError,
    },
    /// The table does not exist.
    #[error("table `{db}`.`{table}` does not exist")]
    NoTable {
        /// Database.
        db: String,
        /// Table.
        table: String,
    },
}

/// Where a fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultPoint {
    /// `PUT /api/{db}/{table}/_stream_load` on the FE.
    FeStreamLoad,
    /// `PUT /api/{db}/{table}/_stream_load` on a BE.
    BeStreamLoad,
    /// Doris `_stream_load_2pc` on a BE.
    TwoPhaseCommit,
    /// StarRocks `/api/transaction/*` (FE or BE).
    Transaction,
}

/// A fault to inject into the next matching requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (e.g. 500, 503) and a text body; nothing is loaded.
    HttpStatus(u16),
    /// Close the connection without any reply; nothing is loaded.
    ConnectionReset,
    /// Wait this long, then continue normally: lets a client time out. On a BE stream load
    /// the wait starts once the body has arrived (the label reads `RUNNING`), and the load
    /// still commits after it even if the client has gone, like a slow BE. Elsewhere the wait
    /// comes before the request is handled.
    Hang(Duration),
    /// Commit the load, then answer `Status: Publish Timeout` (txn COMMITTED, rows applied).
    PublishTimeout,
    /// Commit the load, then close the connection: the reply is lost.
    DropReplyAfterCommit,
}

/// One request seen by the emulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// `fe`, `be0`, `be1`, ...
    pub node: String,
    /// HTTP method.
    pub method: String,
    /// Request path (without query).
    pub path: String,
    /// `label` header, if any.
    pub label: Option<String>,
    /// Whether an `Authorization` header was present.
    pub had_auth: bool,
    /// Whether the request declared a body (`Content-Length` > 0 or chunked). An FE stream
    /// load with a body breaks rule 4 (send nothing before `100 Continue` or the 307).
    pub body_declared: bool,
    /// HTTP status answered (0 when the connection was dropped).
    pub status: u16,
}

/// Counts of requests by kind, derived from the request log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Stream loads received by the FE.
    pub fe_stream_loads: usize,
    /// Stream loads received by BEs.
    pub be_stream_loads: usize,
    /// 307 redirects answered.
    pub redirects: usize,
    /// Doris 2PC requests (FE + BE).
    pub two_phase: usize,
    /// StarRocks transaction API requests (FE + BE).
    pub transaction_ops: usize,
    /// SQL statements over HTTP.
    pub sql_http: usize,
    /// `get_load_state` lookups.
    pub load_state: usize,
    /// FE stream loads that carried a body (rule 4 violations by the client).
    pub fe_bodies: usize,
    /// All HTTP requests.
    pub total: usize,
}

/// Configuration of one emulator instance.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Which system to emulate.
    pub mode: Mode,
    /// Accepted users and passwords (user, password).
    pub users: Vec<(String, String)>,
    /// IP to listen on and to advertise in redirects.
    pub host: IpAddr,
    /// FE HTTP port (0 = any free port).
    pub fe_port: u16,
    /// BE HTTP ports; when shorter than `be_count`, the rest use free ports.
    pub be_ports: Vec<u16>,
    /// Number of BEs.
    pub be_count: usize,
    /// MySQL-protocol query port (0 = any free port).
    pub query_port: u16,
    /// How long final labels are remembered (Doris 12 h, StarRocks 3 days).
    pub label_keep: Duration,
    /// Doris PRECOMMITTED auto-abort (`stream_load_default_precommit_timeout_second`, 3600 s).
    pub precommit_timeout: Duration,
    /// JSON body cap without line mode / `ignore_json_size` (100 MB).
    pub json_max_bytes: usize,
    /// Whether the FE answers `100 Continue` and reads the body before its 307 (off: the FE
    /// never reads the body, as the code read for the spec does; on: the other behaviour the
    /// spec leaves open, to test clients against both).
    pub fe_sends_continue: bool,
}

impl EmulatorConfig {
    /// Doris defaults: user `root` with an empty password, one BE, free ports.
    pub fn doris() -> Self {
        EmulatorConfig {
            mode: Mode::Doris,
            users: vec![("root".into(), String::new())],
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            fe_port: 0,
            be_ports: Vec::new(),
            be_count: 1,
            query_port: 0,
            label_keep: Duration::from_secs(43_200),
            precommit_timeout: Duration::from_secs(3_600),
            json_max_bytes: 100 * 1024 * 1024,
            fe_sends_continue: false,
        }
    }

    /// StarRocks defaults: user `root` with an empty password, one BE, free ports.
    pub fn starrocks() -> Self {
        EmulatorConfig {
            mode: Mode::StarRocks,
            label_keep: Duration::from_secs(259_200),
            ..Self::doris()
        }
    }

    /// Adds (or replaces) a user.
    pub fn with_user(mut self, user: &str, password: &str) -> Self {
        self.users.retain(|(u, _)| u != user);
        self.users.push((user.into(), password.into()));
        self
    }

    /// Sets the number of BEs.
    pub fn with_be_count(mut self, n: usize) -> Self {
        self.be_count = n.max(1);
        self
    }
}

/// State shared by all listeners of one emulator.
#[derive(Debug)]
struct Shared {
    cfg: EmulatorConfig,
    state: Mutex<state::State>,
    fe_addr: SocketAddr,
    be_addrs: Vec<SocketAddr>,
    /// [`Emulator::set_down`]: new requests and connections are closed unanswered.
    down: AtomicBool,
    /// [`Emulator::set_stalled`]: `true` while loads and transaction calls must wait.
    stalled: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, state::State> {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.sweep(&self.cfg);
        g
    }

    /// Whether the emulated cluster is down (see [`Emulator::set_down`]).
    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    /// Waits while the emulator is stalled (see [`Emulator::set_stalled`]); no server-side timeout.
    async fn wait_unstalled(&self) {
        let mut rx = self.stalled.subscribe();
        // `wait_for` fails only when the sender is gone, and `self` owns it.
        let _ = rx.wait_for(|stalled| !*stalled).await;
    }
}

/// A running emulator. Dropping it stops every listener and connection.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    query_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

async fn bind(role: &'static str, host: IpAddr, port: u16) -> Result<TcpListener, EmulatorError> {
    let addr = SocketAddr::new(host, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| EmulatorError::Bind { role, addr, source })
}

impl Emulator {
    /// Binds all ports and starts serving.
    ///
    /// # Errors
    /// [`EmulatorError::Bind`] when a port is taken.
    pub async fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let fe = bind("fe", cfg.host, cfg.fe_port).await?;
        let mut bes = Vec::new();
        for i in 0..cfg.be_count.max(1) {
            bes.push(bind("be", cfg.host, cfg.be_ports.get(i).copied().unwrap_or(0)).await?);
        }
        let query = bind("query", cfg.host, cfg.query_port).await?;
        let local = |l: &TcpListener, role: &'static str| {
            l.local_addr().map_err(|source| EmulatorError::Bind {
                role,
                addr: SocketAddr::new(cfg.host, 0),
                source,
            })
        };
        let fe_addr = local(&fe, "fe")?;
        let be_addrs = bes
            .iter()
            .map(|l| local(l, "be"))
            .collect::<Result<Vec<_>, _>>()?;
        let query_addr = local(&query, "query")?;
        let shared = Arc::new(Shared {
            cfg,
            state: Mutex::new(state::State::new()),
            fe_addr,
            be_addrs,
            down: AtomicBool::new(false),
            stalled: watch::Sender::new(false),
        });
        let mut tasks = vec![tokio::spawn(http::serve(
            fe,
            shared.clone(),
            http::Node::Fe,
        ))];
        for (i, l) in bes.into_iter().enumerate() {
            tasks.push(tokio::spawn(http::serve(
                l,
                shared.clone(),
                http::Node::Be(i),
            )));
        }
        tasks.push(tokio::spawn(mysql::serve(query, shared.clone())));
        tracing::info!(mode = ?shared.cfg.mode, fe = %fe_addr, query = %query_addr, bes = ?shared.be_addrs, "Stream Load emulator started.");
        Ok(Emulator {
            shared,
            query_addr,
            tasks,
        })
    }

    /// The emulated system.
    pub fn mode(&self) -> Mode {
        self.shared.cfg.mode
    }

    /// FE HTTP address (stream load entry, 2PC, `get_load_state`, Doris SQL over HTTP).
    pub fn fe_addr(&self) -> SocketAddr {
        self.shared.fe_addr
    }

    /// `http://host:port` of the FE.
    pub fn fe_url(&self) -> String {
        format!("http://{}", self.shared.fe_addr)
    }

    /// BE HTTP addresses.
    pub fn be_addrs(&self) -> Vec<SocketAddr> {
        self.shared.be_addrs.clone()
    }

    /// MySQL-protocol query port address (the 9030 equivalent).
    pub fn query_addr(&self) -> SocketAddr {
        self.query_addr
    }

    /// Runs one SQL statement with `db` as the default database.
    ///
    /// # Errors
    /// [`EmulatorError::Sql`] with the parser or executor error.
    pub fn execute_sql(&self, db: &str, sql: &str) -> Result<SqlOutput, EmulatorError> {
        http::run_sql(&self.shared, Some(db.to_string()), sql).map_err(|source| {
            EmulatorError::Sql {
                db: db.to_string(),
                source,
            }
        })
    }

    /// Creates database `db` if needed, then runs a `CREATE TABLE` statement in it.
    ///
    /// # Errors
    /// [`EmulatorError::Sql`] when the statement is invalid.
    pub fn create_table_sql(&self, db: &str, create_table: &str) -> Result<(), EmulatorError> {
        let create_db = format!("CREATE DATABASE IF NOT EXISTS `{}`", db.replace('`', "``"));
        http::run_sql(&self.shared, None, &create_db).map_err(|source| EmulatorError::Sql {
            db: db.into(),
            source,
        })?;
        self.execute_sql(db, create_table).map(|_| ())
    }

    /// Visible rows of a table as JSON objects (column → value), sorted by the key columns.
    /// Integers are JSON numbers, DECIMAL a string with exactly `scale` digits, DATE
    /// `YYYY-MM-DD`, DATETIME `YYYY-MM-DD HH:MM:SS[.f]` (declared precision), BOOLEAN a bool.
    ///
    /// # Errors
    /// [`EmulatorError::NoTable`].
    pub fn rows(
        &self,
        db: &str,
        table: &str,
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, EmulatorError> {
        let st = self.shared.lock();
        st.catalog
            .table(db, table)
            .map(|t| t.visible_rows())
            .ok_or_else(|| EmulatorError::NoTable {
                db: db.into(),
                table: table.into(),
            })
    }

    /// The current schema of a table.
    ///
    /// # Errors
    /// [`EmulatorError::NoTable`].
    pub fn schema(&self, db: &str, table: &str) -> Result<TableSchema, EmulatorError> {
        let st = self.shared.lock();
        let t = st
            .catalog
            .table(db, table)
            .ok_or_else(|| EmulatorError::NoTable {
                db: db.into(),
                table: table.into(),
            })?;
        Ok(TableSchema {
            keys_type: t.keys_type,
            columns: t
                .columns
                .iter()
                .map(|c| ColumnSchema {
                    name: c.name.clone(),
                    ty: c.ty.clone(),
                    nullable: c.nullable,
                    is_key: c.is_key,
                    default: c.default.clone(),
                    comment: c.comment.clone(),
                })
                .collect(),
            properties: t.properties.clone().into_iter().collect(),
            schema_version: t.schema_version,
        })
    }

    /// Arms a fault for the next `times` requests at `point`.
    pub fn inject(&self, point: FaultPoint, fault: Fault, times: usize) {
        self.shared.lock().faults.push((point, fault, times));
    }

    /// Simulates a whole-cluster outage (FE, BEs and the query port) or ends it.
    ///
    /// While down, every new FE/BE HTTP request — on a new or a kept-alive connection — and every
    /// new query-port connection is accepted and closed at once without an answer, so clients see
    /// a connection closed before any reply (as with a crashed or restarting node). Requests
    /// already being handled finish normally. Tables, rows and labels are kept: after
    /// `set_down(false)` everything works as before.
    pub fn set_down(&self, down: bool) {
        tracing::info!(down, "Emulator outage switch set.");
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// Stalls or releases BE stream loads, Doris 2PC calls and StarRocks transaction calls.
    ///
    /// While stalled, such requests wait before doing anything (nothing is read, loaded or
    /// committed) for as long as the stall lasts — the server never times them out; on release
    /// they proceed normally. FE redirects, `get_load_state` and SQL are not stalled. A client
    /// that gives up meanwhile leaves nothing behind. Meant for "stalled sink" backpressure tests.
    pub fn set_stalled(&self, stalled: bool) {
        tracing::info!(stalled, "Emulator stall switch set.");
        self.shared.stalled.send_replace(stalled);
    }

    /// Makes `label` in `db` look held by a transaction in `state` (for `Label Already Exists`
    /// with each `ExistingJobStatus`, or for crash-recovery lookups). Returns the txn id.
    pub fn set_label_state(&self, db: &str, table: &str, label: &str, state: TxnState) -> i64 {
        let mut st = self.shared.lock();
        let id = st.begin(db, table, label, 0, Duration::from_secs(3_600));
        st.set_state(id, state, "set by test");
        id
    }

    /// The state `get_load_state` would report for a label (`None` = UNKNOWN).
    pub fn label_state(&self, db: &str, label: &str) -> Option<TxnState> {
        self.shared.lock().latest(db, label).map(|t| t.state)
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Request counts by kind.
    pub fn counters(&self) -> Counters {
        let st = self.shared.lock();
        let mut c = Counters::default();
        for r in &st.requests {
            c.total += 1;
            let load = r.path.ends_with("/_stream_load");
            if load && r.node == "fe" {
                c.fe_stream_loads += 1;
                if r.body_declared {
                    c.fe_bodies += 1;
                }
            }
            if load && r.node != "fe" {
                c.be_stream_loads += 1;
            }
            if r.status == 307 {
                c.redirects += 1;
            }
            if r.path.ends_with("/_stream_load_2pc") {
                c.two_phase += 1;
            }
            if r.path.starts_with("/api/transaction/") {
                c.transaction_ops += 1;
            }
            if r.path.starts_with("/api/query/") {
                c.sql_http += 1;
            }
            if r.path.ends_with("/get_load_state") {
                c.load_state += 1;
            }
        }
        c
    }

    /// Stops all listeners.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A column as [`Emulator::schema`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnSchema {
    /// Name.
    pub name: String,
    /// Declared type.
    pub ty: ColumnType,
    /// Nullable.
    pub nullable: bool,
    /// Key column.
    pub is_key: bool,
    /// Default as declared.
    pub default: Option<String>,
    /// Comment.
    pub comment: String,
}

/// A table schema as [`Emulator::schema`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct TableSchema {
    /// Key model.
    pub keys_type: KeysType,
    /// Columns in order.
    pub columns: Vec<ColumnSchema>,
    /// Table properties.
    pub properties: Vec<(String, String)>,
    /// Bumped by each ALTER.
    pub schema_version: u64,
}
