//! HTTP front of the emulator: FE routes (auth, `Expect`, 307 redirects, 2PC entry,
//! `get_load_state`, Doris SQL over HTTP, StarRocks transaction API entry) and BE routes
//! (stream load, 2PC, transaction API, error logs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value as Json, json};
use tokio::net::TcpListener;

use super::load::{self, LoadParams};
use super::sql::{self, SqlContext, SqlError, SqlOutput};
use super::state::{LoadStats, State, TxnState};
use super::{Fault, FaultPoint, Mode, RequestRecord, Shared};

/// Which listener a request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Node {
    /// The FE HTTP port.
    Fe,
    /// BE number n.
    Be(usize),
}

/// Returned by a handler to close the connection without a reply (fault injection, body errors).
#[derive(Debug)]
pub(super) struct Dropped(&'static str);

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection dropped by the emulator: {}", self.0)
    }
}

impl std::error::Error for Dropped {}

type Resp = Response<Full<Bytes>>;
type Handled = Result<Resp, Dropped>;

/// Accepts connections until the task is aborted; connection tasks die with it.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, node: Node) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shared.is_down() {
            tracing::debug!(%peer, "Emulator is down; closing the connection unanswered.");
            drop(stream);
            continue;
        }
        let shared = shared.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(shared.clone(), node, peer, req));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "Connection ended with an error.");
            }
        });
        while conns.try_join_next().is_some() {}
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn handle(
    shared: Arc<Shared>,
    node: Node,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Handled {
    if shared.is_down() {
        // A kept-alive connection of a client: close it like a node that went away.
        return Err(Dropped("emulator is down"));
    }
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let label = header(req.headers(), "label").map(str::to_string);
    let had_auth = req.headers().contains_key(http::header::AUTHORIZATION);
    let body_declared = header(req.headers(), "content-length").is_some_and(|v| v.trim() != "0")
        || header(req.headers(), "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let result = route(&shared, node, peer, req).await;
    let status = result.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
    let node_name = match node {
        Node::Fe => "fe".to_string(),
        Node::Be(i) => format!("be{i}"),
    };
    tracing::info!(node = %node_name, %method, %path, label = ?label, status, "Request handled.");
    shared.lock().requests.push(RequestRecord {
        node: node_name,
        method,
        path,
        label,
        had_auth,
        body_declared,
        status,
    });
    result
}

fn respond(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn json_resp(status: StatusCode, v: &Json, pretty: bool) -> Resp {
    let body = if pretty {
        let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
        s.push('\n');
        s
    } else {
        v.to_string()
    };
    let mut r = respond(status, body);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn ok_json(v: &Json) -> Resp {
    json_resp(StatusCode::OK, v, false)
}

fn not_found() -> Resp {
    respond(StatusCode::NOT_FOUND, "Not Found")
}

async fn route(
    shared: &Arc<Shared>,
    node: Node,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Handled {
    let mode = shared.cfg.mode;
    let segs: Vec<String> = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let m = req.method().clone();
    match (node, mode, segs.as_slice()) {
        (_, _, ["api", db, table, "_stream_load"]) => {
            if m != Method::PUT {
                return Ok(respond(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("Request method '{m}' not supported"),
                ));
            }
            let (db, table) = (db.to_string(), table.to_string());
            match node {
                Node::Fe => fe_stream_load(shared, peer, req, &db, &table).await,
                Node::Be(i) => be_stream_load(shared, i, req, &db, &table).await,
            }
        }
        (_, Mode::Doris, ["api", db, "_stream_load_2pc"] | ["api", db, _, "_stream_load_2pc"])
            if m == Method::PUT =>
        {
            let db = db.to_string();
            match node {
                Node::Fe => fe_two_phase(shared, peer, req, &db).await,
                Node::Be(i) => be_two_phase(shared, i, req, &db).await,
            }
        }
        (Node::Fe, _, ["api", db, "get_load_state"]) if m == Method::GET => {
            Ok(load_state(shared, peer, &req, db))
        }
        (Node::Fe, Mode::Doris, ["api", "query", _, db]) if m == Method::POST => {
            let db = db.to_string();
            sql_over_http(shared, peer, req, &db).await
        }
        (Node::Fe, Mode::Doris, ["api", "backends"]) => {
            let bes: Vec<Json> = shared
                .be_addrs
                .iter()
                .map(|a| json!({"ip": a.ip().to_string(), "http_port": a.port(), "is_alive": true}))
                .collect();
            Ok(ok_json(
                &json!({"msg": "success", "code": 0, "data": {"backends": bes}, "count": 0}),
            ))
        }
        (Node::Fe, Mode::Doris, ["api", "enable_light_schema_change", _, _]) => Ok(ok_json(
            &json!({"msg": "success", "code": 0, "data": null, "count": 0}),
        )),
        (Node::Fe, Mode::Doris, ["api", db, table, "_schema"]) if m == Method::GET => {
            let st = shared.lock();
            Ok(match st.catalog.table(db, table) {
                None => ok_json(
                    &json!({"msg": format!("unknown table {table}"), "code": 1, "data": null, "count": 0}),
                ),
                Some(t) => {
                    let props: Vec<Json> = t
                        .columns
                        .iter()
                        .map(|c| json!({"name": c.name, "aggregation_type": "", "comment": c.comment, "type": c.ty.to_string()}))
                        .collect();
                    let kt = match t.keys_type {
                        super::KeysType::Duplicate => "DUP_KEYS",
                        super::KeysType::Unique => "UNIQUE_KEYS",
                        super::KeysType::Aggregate => "AGG_KEYS",
                        super::KeysType::Primary => "PRIMARY_KEYS",
                    };
                    ok_json(
                        &json!({"msg": "success", "code": 0, "data": {"properties": props, "keysType": kt, "status": 200}, "count": 0}),
                    )
                }
            })
        }
        (Node::Be(_), _, ["api", "_load_error_log"]) if m == Method::GET => {
            let file = query_param(req.uri().query(), "file").unwrap_or_default();
            let st = shared.lock();
            Ok(match st.error_logs.get(&file) {
                Some(text) => respond(StatusCode::OK, text.clone()),
                None => not_found(),
            })
        }
        (_, Mode::StarRocks, ["api", "transaction", op])
            if m == Method::POST || m == Method::PUT =>
        {
            let op = op.to_string();
            starrocks_txn(shared, node, peer, req, &op).await
        }
        (Node::Fe, Mode::StarRocks, ["api", db, table, "_cancel"]) if m == Method::POST => {
            let label = query_param(req.uri().query(), "label").unwrap_or_default();
            if let Err(r) = fe_auth(shared, peer, req.headers()) {
                return Ok(*r);
            }
            let mut st = shared.lock();
            let _ = table;
            let held = st.holder(db, &label).map(|t| (t.id, t.state));
            Ok(match held {
                Some((id, TxnState::Prepare | TxnState::Prepared)) => {
                    st.set_state(id, TxnState::Aborted, "cancelled");
                    ok_json(&json!({"status": "OK", "msg": ""}))
                }
                Some((_, s)) => ok_json(
                    &json!({"status": "FAILED", "msg": format!("transaction with label {label} is {}", s.as_str())}),
                ),
                None => ok_json(
                    &json!({"status": "FAILED", "msg": format!("transaction with label {label} not exists")}),
                ),
            })
        }
        _ => Ok(not_found()),
    }
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then(|| {
            percent_decode_str(&v.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

/// Parses `Authorization: Basic ...` into (user, password); `user@cluster` drops the cluster.
fn parse_basic(h: &HeaderMap) -> Option<(String, String)> {
    let v = header(h, "authorization")?;
    let (scheme, token) = v.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, pass) = text.split_once(':')?;
    let user = user.split('@').next().unwrap_or(user);
    Some((user.to_string(), pass.to_string()))
}

fn credentials_ok(shared: &Shared, user: &str, pass: &str) -> bool {
    shared.cfg.users.iter().any(|(u, p)| u == user && p == pass)
}

/// FE authentication in each system's failure shape: Doris HTTP 200 with body code 401,
/// StarRocks HTTP 401 with `WWW-Authenticate`.
fn fe_auth(
    shared: &Shared,
    peer: SocketAddr,
    h: &HeaderMap,
) -> Result<(String, String), Box<Resp>> {
    let reason = match parse_basic(h) {
        None => "Need auth information.".to_string(),
        Some((u, p)) if credentials_ok(shared, &u, &p) => return Ok((u, p)),
        Some((u, _)) => format!("Access denied for {u}@{}", peer.ip()),
    };
    Err(Box::new(match shared.cfg.mode {
        Mode::Doris => {
            ok_json(&json!({"msg": "Unauthorized", "code": 401, "data": reason, "count": 0}))
        }
        Mode::StarRocks => {
            let mut r = json_resp(
                StatusCode::UNAUTHORIZED,
                &json!({"status": "FAILED", "msg": reason}),
                false,
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Basic realm=\"\""),
            );
            r
        }
    }))
}

fn fe_failed(mode: Mode, msg: &str) -> Resp {
    match mode {
        Mode::Doris => ok_json(&json!({"status": "FAILED", "msg": msg})),
        Mode::StarRocks => ok_json(
            &json!({"Status": "FAILED", "Message": format!("class com.starrocks.common.DdlException: {msg}")}),
        ),
    }
}

/// Characters kept verbatim in the Location userinfo: what `java.net.URI` leaves unquoted there
/// (unreserved plus `;:&=+$,`), so `user:pa:ss` stays as Doris writes it.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b';')
    .remove(b':')
    .remove(b'&')
    .remove(b'=')
    .remove(b'+')
    .remove(b'$')
    .remove(b',');

fn redirect(
    shared: &Shared,
    be: usize,
    path_and_query: &str,
    creds: Option<&(String, String)>,
) -> Resp {
    let addr = shared.be_addrs[be % shared.be_addrs.len()];
    let userinfo = match (shared.cfg.mode, creds) {
        (Mode::Doris, Some((u, p))) => format!(
            "{}:{}@",
            utf8_percent_encode(u, USERINFO),
            utf8_percent_encode(p, USERINFO)
        ),
        _ => String::new(),
    };
    let location = format!("http://{userinfo}{addr}{path_and_query}");
    let mut r = respond(StatusCode::TEMPORARY_REDIRECT, Bytes::new());
    if let Ok(v) = http::HeaderValue::from_str(&location) {
        r.headers_mut().insert(http::header::LOCATION, v);
    }
    r
}

fn location_path(shared: &Shared, req: &Request<Incoming>) -> String {
    let path = req.uri().path();
    match (shared.cfg.mode, req.uri().query()) {
        (Mode::Doris, q) => format!("{path}?{}", q.unwrap_or("")),
        (Mode::StarRocks, Some(q)) => format!("{path}?{q}"),
        (Mode::StarRocks, None) => path.to_string(),
    }
}

fn pick_be(shared: &Shared) -> usize {
    let mut st = shared.lock();
    let be = st.next_be % shared.be_addrs.len();
    st.next_be += 1;
    be
}

/// Applies a pre-handling fault. `Ok(Some(resp))` answers at once, `Err` drops the connection.
async fn pre_fault(shared: &Shared, point: FaultPoint) -> Result<Option<Resp>, Dropped> {
    let fault = shared.lock().take_fault(point);
    match fault {
        Some(Fault::HttpStatus(code)) => Ok(Some(respond(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            format!("injected HTTP {code}"),
        ))),
        Some(Fault::ConnectionReset) => Err(Dropped("injected connection reset")),
        Some(Fault::Hang(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
        Some(other) => {
            // Commit-time faults are re-armed for the commit step of this request.
            shared.lock().faults.insert(0, (point, other, 1));
            Ok(None)
        }
        None => Ok(None),
    }
}

async fn fe_stream_load(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
    db: &str,
    table: &str,
) -> Handled {
    if let Some(r) = pre_fault(shared, FaultPoint::FeStreamLoad).await? {
        return Ok(r);
    }
    let mode = shared.cfg.mode;
    let creds = match fe_auth(shared, peer, req.headers()) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    if !req.headers().contains_key(http::header::EXPECT) {
        return Ok(fe_failed(mode, "There is no 100-continue header"));
    }
    if db.is_empty() {
        return Ok(fe_failed(mode, "No database selected."));
    }
    if table.is_empty() {
        return Ok(fe_failed(mode, "No table selected."));
    }
    let be = pick_be(shared);
    let location = location_path(shared, &req);
    if shared.cfg.fe_sends_continue {
        // The other reading of the protocol (spec 5.3): accept the body first, then redirect.
        let _ = req.into_body().collect().await;
    }
    // Otherwise the body is never read: with `Expect: 100-continue`, hyper sends no
    // `100 Continue` and the client replays the whole request at the Location.
    Ok(redirect(shared, be, &location, Some(&creds)))
}

/// Fields of one stream-load reply.
struct Reply {
    txn_id: i64,
    label: String,
    status: &'static str,
    existing: Option<&'static str>,
    message: String,
    stats: LoadStats,
    two_pc: bool,
    group_commit: bool,
    comment: String,
    error_url: Option<String>,
    started: Instant,
    read_ms: u64,
}

impl Reply {
    fn new(label: &str, started: Instant) -> Self {
        Reply {
            txn_id: -1,
            label: label.to_string(),
            status: "Fail",
            existing: None,
            message: String::new(),
            stats: LoadStats::default(),
            two_pc: false,
            group_commit: false,
            comment: String::new(),
            error_url: None,
            started,
            read_ms: 0,
        }
    }

    fn fail(label: &str, started: Instant, msg: impl Into<String>) -> Self {
        Reply {
            message: msg.into(),
            ..Reply::new(label, started)
        }
    }

    fn render(&self, mode: Mode) -> Resp {
        let mut m = Map::new();
        let total_ms = self.started.elapsed().as_millis() as u64;
        m.insert("TxnId".into(), json!(self.txn_id));
        m.insert("Label".into(), json!(self.label));
        if mode == Mode::Doris {
            m.insert("Comment".into(), json!(self.comment));
            if self.group_commit {
                m.insert("GroupCommit".into(), json!(true));
            } else {
                m.insert(
                    "TwoPhaseCommit".into(),
                    json!(if self.two_pc { "true" } else { "false" }),
                );
            }
        }
        m.insert("Status".into(), json!(self.status));
        if let Some(e) = self.existing {
            m.insert("ExistingJobStatus".into(), json!(e));
        }
        m.insert("Message".into(), json!(self.message));
        m.insert("NumberTotalRows".into(), json!(self.stats.total));
        m.insert("NumberLoadedRows".into(), json!(self.stats.loaded));
        m.insert("NumberFilteredRows".into(), json!(self.stats.filtered));
        m.insert("NumberUnselectedRows".into(), json!(self.stats.unselected));
        m.insert("LoadBytes".into(), json!(self.stats.bytes));
        m.insert("LoadTimeMs".into(), json!(total_ms));
        if !self.group_commit {
            m.insert("BeginTxnTimeMs".into(), json!(0));
        }
        let plan_key = if mode == Mode::Doris {
            "StreamLoadPutTimeMs"
        } else {
            "StreamLoadPlanTimeMs"
        };
        m.insert(plan_key.into(), json!(0));
        m.insert("ReadDataTimeMs".into(), json!(self.read_ms));
        m.insert(
            "WriteDataTimeMs".into(),
            json!(total_ms.saturating_sub(self.read_ms)),
        );
        if mode == Mode::Doris {
            m.insert("ReceiveDataTimeMs".into(), json!(self.read_ms));
        }
        if !self.group_commit {
            m.insert("CommitAndPublishTimeMs".into(), json!(0));
        }
        if let Some(u) = &self.error_url {
            m.insert("ErrorURL".into(), json!(u));
        }
        json_resp(StatusCode::OK, &Json::Object(m), true)
    }
}

fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0xf))
        .collect()
}

fn uuid_label() -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        random_hex(8),
        random_hex(4),
        random_hex(3),
        random_hex(3),
        random_hex(12)
    )
}

/// Checks a label against each system's `FeNameFormat` rule; `Err` is the reply message.
fn check_label(mode: Mode, label: &str) -> Result<(), String> {
    let (ok_char, regex): (fn(char) -> bool, &str) = match mode {
        Mode::Doris => (
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':',
            "^[-_A-Za-z0-9:]{1,128}$",
        ),
        Mode::StarRocks => (
            |c| c.is_ascii_alphanumeric() || c == '-' || c == '_',
            "^[-\\w]{1,128}$",
        ),
    };
    if label.is_empty() || label.chars().count() > 128 || !label.chars().all(ok_char) {
        return Err(format!(
            "Label format error. regex: {regex}, label: {label}"
        ));
    }
    Ok(())
}

fn label_exists_message(mode: Mode, label: &str, txn_id: i64) -> String {
    match mode {
        Mode::Doris => format!(
            "errCode = 2, detailMessage = Label [{label}] has already been used, relate to txn [{txn_id}]"
        ),
        Mode::StarRocks => format!("Label [{label}] has already been used."),
    }
}

fn save_error_log(
    st: &mut State,
    be_addr: SocketAddr,
    label: &str,
    txn_id: i64,
    errors: &[String],
) -> Option<String> {
    if errors.is_empty() {
        return None;
    }
    let file = format!("__shard_0/error_log_insert_stmt_{label}_{txn_id}");
    st.error_logs.insert(file.clone(), errors.join("\n") + "\n");
    let q: String = utf8_percent_encode(&file, NON_ALPHANUMERIC).collect();
    Some(format!("http://{be_addr}/api/_load_error_log?file={q}"))
}

fn too_many_filtered(stats: &LoadStats, ratio: f64) -> bool {
    let denom = stats.total.saturating_sub(stats.unselected);
    denom > 0 && stats.filtered as f64 / denom as f64 > ratio
}

async fn be_stream_load(
    shared: &Arc<Shared>,
    be: usize,
    req: Request<Incoming>,
    db: &str,
    table: &str,
) -> Handled {
    let started = Instant::now();
    let mode = shared.cfg.mode;
    let be_addr = shared.be_addrs[be];
    shared.wait_unstalled().await;
    if let Some(r) = pre_fault_except_hang(shared, FaultPoint::BeStreamLoad).await? {
        return Ok(r);
    }
    let h = req.headers().clone();
    let label_hdr = header(&h, "label").unwrap_or_default().to_string();
    // 1. Checks done in on_header, before the body: reply at once, no `100 Continue`.
    let creds = match parse_basic(&h) {
        Some(c) => c,
        None => {
            return Ok(
                Reply::fail(&label_hdr, started, "no valid Basic authorization").render(mode),
            );
        }
    };
    if mode == Mode::Doris {
        let cl = h.contains_key(http::header::CONTENT_LENGTH);
        let chunked = header(&h, "transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if !cl && !chunked {
            return Ok(Reply::fail(&label_hdr, started, "content_length is empty and transfer-encoding!=chunked, please set content_length or transfer-encoding=chunked").render(mode));
        }
        if cl && chunked {
            return Ok(Reply::fail(
                &label_hdr,
                started,
                "please do not set both content_length and transfer-encoding",
            )
            .render(mode));
        }
    }
    let params = match load::parse_params(mode, &h) {
        Ok(p) => p,
        Err(e) => return Ok(Reply::fail(&label_hdr, started, e).render(mode)),
    };
    let mut reply = Reply::new(&label_hdr, started);
    reply.comment = params.comment.clone();
    reply.two_pc = params.two_phase_commit;
    reply.group_commit = params.group_commit.is_some();
    if !credentials_ok(shared, &creds.0, &creds.1) {
        reply.message = format!(
            "errCode = 2, detailMessage = Access denied for user '{}'",
            creds.0
        );
        return Ok(reply.render(mode));
    }
    let label = match (&params.label, reply.group_commit) {
        (_, true) => format!("group_commit_{}_{}", random_hex(16), random_hex(16)),
        (Some(l), false) => l.clone(),
        (None, false) => uuid_label(),
    };
    reply.label = label.clone();
    let txn_id = {
        let mut st = shared.lock();
        let Some(t) = st.catalog.table(db, table) else {
            reply.message = if st.catalog.dbs.contains_key(db) {
                format!("errCode = 7, detailMessage = unknown table, tableName={table}")
            } else {
                format!("errCode = 7, detailMessage = unknown databases, dbName={db}")
            };
            return Ok(reply.render(mode));
        };
        if let Err(e) = load::check_against_table(mode, &params, t) {
            reply.message = e;
            return Ok(reply.render(mode));
        }
        if let Err(e) = check_label(mode, &label) {
            reply.message = format!("errCode = 2, detailMessage = {e}");
            return Ok(reply.render(mode));
        }
        if let Some(holder) = st.holder(db, &label) {
            reply.status = "Label Already Exists";
            reply.existing = Some(holder.state.existing_job_status());
            reply.message = label_exists_message(mode, &label, holder.id);
            return Ok(reply.render(mode));
        }
        st.begin(db, table, &label, be, Duration::from_secs(params.timeout_s))
    };
    reply.txn_id = txn_id;
    let fault = shared.lock().take_fault(FaultPoint::BeStreamLoad);
    // 2. Read the body (hyper sends `100 Continue` now, if it was asked for). A client that
    //    goes away before the body is complete aborts the load, as on a real BE.
    let read_start = Instant::now();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            shared.lock().set_state(
                txn_id,
                TxnState::Aborted,
                "receive body don't equal with body bytes",
            );
            return Err(Dropped("body read failed"));
        }
    };
    reply.read_ms = read_start.elapsed().as_millis() as u64;
    reply.stats.bytes = body.len() as u64;
    // 3. With the whole body received, the load runs to its end even if the client leaves
    //    (a slow BE still commits): it runs in its own task. A hang fault delays it while the
    //    label reads RUNNING.
    let job = LoadJob {
        shared: shared.clone(),
        params,
        db: db.to_string(),
        table: table.to_string(),
        label,
        txn_id,
        be_addr,
        reply,
        fault,
        body,
    };
    tokio::spawn(job.run())
        .await
        .unwrap_or(Err(Dropped("load task failed")))
}

/// The part of a BE stream load after the body has arrived.
struct LoadJob {
    shared: Arc<Shared>,
    params: LoadParams,
    db: String,
    table: String,
    label: String,
    txn_id: i64,
    be_addr: SocketAddr,
    reply: Reply,
    fault: Option<Fault>,
    body: Bytes,
}

impl LoadJob {
    async fn run(self) -> Handled {
        if let Some(Fault::Hang(d)) = &self.fault {
            tokio::time::sleep(*d).await;
        }
        self.finish()
    }

    /// Decodes, converts, accounts and commits (or precommits) the load.
    fn finish(self) -> Handled {
        let LoadJob {
            shared,
            params,
            db,
            table,
            label,
            txn_id,
            be_addr,
            mut reply,
            fault,
            body,
        } = self;
        let mode = shared.cfg.mode;
        let outcome = parse_load(&shared, &params, &db, &table, &body);
        let mut st = shared.lock();
        let parsed = match outcome {
            Ok(p) => p,
            Err(e) => {
                st.set_state(txn_id, TxnState::Aborted, &e);
                reply.message = e;
                return Ok(reply.render(mode));
            }
        };
        reply.stats.total = parsed.total;
        reply.stats.filtered = parsed.filtered;
        reply.stats.unselected = parsed.unselected;
        reply.error_url = save_error_log(&mut st, be_addr, &label, txn_id, &parsed.errors);
        if too_many_filtered(&reply.stats, params.max_filter_ratio) {
            st.set_state(txn_id, TxnState::Aborted, "too many filtered rows");
            reply.message = match mode {
                Mode::Doris => "[DATA_QUALITY_ERROR]too many filtered rows".into(),
                Mode::StarRocks => "too many filtered rows".into(),
            };
            return Ok(reply.render(mode));
        }
        reply.stats.loaded = parsed.write.rows.len() as u64;
        if let Some(t) = st.txns.get_mut(&txn_id) {
            t.writes.push(parsed.write);
            t.stats = reply.stats;
        }
        reply.status = "Success";
        reply.message = "OK".into();
        if params.two_phase_commit {
            st.set_state(txn_id, TxnState::Precommitted, "");
            return Ok(reply.render(mode));
        }
        match fault {
            Some(Fault::PublishTimeout) => {
                st.commit(txn_id, false);
                reply.status = "Publish Timeout";
                reply.message =
                    "transaction commit successfully, BUT data will be visible later".into();
            }
            Some(Fault::DropReplyAfterCommit) => {
                st.commit(txn_id, true);
                return Err(Dropped("injected reply loss after commit"));
            }
            _ => st.commit(txn_id, true),
        }
        Ok(reply.render(mode))
    }
}

/// Like [`pre_fault`] but leaves `Hang` and commit-time faults for later steps.
async fn pre_fault_except_hang(
    shared: &Shared,
    point: FaultPoint,
) -> Result<Option<Resp>, Dropped> {
    let next = {
        let st = shared.lock();
        st.faults
            .iter()
            .find(|(p, _, n)| *p == point && *n > 0)
            .map(|(_, f, _)| f.clone())
    };
    match next {
        Some(Fault::HttpStatus(_) | Fault::ConnectionReset) => pre_fault(shared, point).await,
        _ => Ok(None),
    }
}

/// Parses a load body against a row-less copy of the table, without holding the state lock.
fn parse_load(
    shared: &Shared,
    params: &LoadParams,
    db: &str,
    table: &str,
    body: &[u8],
) -> Result<load::ParsedLoad, String> {
    let schema = shared
        .lock()
        .catalog
        .table(db, table)
        .map(|t| t.without_rows());
    let t = schema
        .ok_or_else(|| format!("errCode = 7, detailMessage = unknown table, tableName={table}"))?;
    let data = load::decompress(params.codec, body)?;
    load::parse_body(
        shared.cfg.mode,
        params,
        db,
        &t,
        &data,
        shared.cfg.json_max_bytes,
    )
}

// ---------------------------------------------------------------------------------------------
// Doris 2PC

async fn fe_two_phase(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
    _db: &str,
) -> Handled {
    let creds = match fe_auth(shared, peer, req.headers()) {
        Ok(c) => c,
        Err(r) => return Ok(*r),
    };
    let h = req.headers();
    if header(h, "txn_id").is_none() && header(h, "label").is_none() {
        return Ok(fe_failed(
            Mode::Doris,
            "No transaction id or label selected.",
        ));
    }
    if header(h, "txn_operation").is_none() {
        return Ok(fe_failed(
            Mode::Doris,
            "No transaction operation('commit' or 'abort') selected.",
        ));
    }
    let be = pick_be(shared);
    Ok(redirect(
        shared,
        be,
        &location_path(shared, &req),
        Some(&creds),
    ))
}

fn two_pc_reply(status: &str, msg: String) -> Resp {
    json_resp(StatusCode::OK, &json!({"status": status, "msg": msg}), true)
}

async fn be_two_phase(
    shared: &Arc<Shared>,
    _be: usize,
    req: Request<Incoming>,
    db: &str,
) -> Handled {
    shared.wait_unstalled().await;
    if let Some(r) = pre_fault(shared, FaultPoint::TwoPhaseCommit).await? {
        return Ok(r);
    }
    let h = req.headers();
    let Some((user, pass)) = parse_basic(h) else {
        return Ok(two_pc_reply(
            "INTERNAL_ERROR",
            "no valid Basic authorization".into(),
        ));
    };
    if !credentials_ok(shared, &user, &pass) {
        return Ok(two_pc_reply(
            "INTERNAL_ERROR",
            format!("errCode = 2, detailMessage = Access denied for user '{user}'"),
        ));
    }
    let op = match header(h, "txn_operation") {
        None => {
            return Ok(two_pc_reply(
                "INTERNAL_ERROR",
                "No transaction operation('commit' or 'abort') selected.".into(),
            ));
        }
        Some(o @ ("commit" | "abort")) => o.to_string(),
        Some(_) => {
            return Ok(two_pc_reply(
                "INTERNAL_ERROR",
                "transaction operation should be 'commit' or 'abort'".into(),
            ));
        }
    };
    let by_id = header(h, "txn_id").map(str::to_string);
    let by_label = header(h, "label").map(str::to_string);
    let mut st = shared.lock();
    let (id, subject) = match (&by_id, &by_label) {
        (Some(v), label) => match v.trim().parse::<i64>() {
            Ok(id) => {
                let subject = match label {
                    Some(l) => format!("label [{l}] transaction [{id}]"),
                    None => format!("transaction [{id}]"),
                };
                (
                    st.txns.get(&id).filter(|t| t.db == db).map(|t| t.id),
                    subject,
                )
            }
            Err(e) => {
                return Ok(two_pc_reply(
                    "INTERNAL_ERROR",
                    format!("convert txn_id [{v}] failed, reason: {e}"),
                ));
            }
        },
        (None, Some(l)) => (st.latest(db, l).map(|t| t.id), format!("label [{l}]")),
        (None, None) => {
            return Ok(two_pc_reply(
                "INTERNAL_ERROR",
                "No transaction id or label selected.".into(),
            ));
        }
    };
    let Some(id) = id else {
        return Ok(two_pc_reply(
            "INTERNAL_ERROR",
            format!("errCode = 7, detailMessage = {subject} not found"),
        ));
    };
    let state = st
        .txns
        .get(&id)
        .map(|t| t.state)
        .unwrap_or(TxnState::Aborted);
    let txn = format!("transaction [{id}]");
    let reply = match (op.as_str(), state) {
        ("commit", TxnState::Precommitted) => {
            st.commit(id, true);
            two_pc_reply("Success", format!("{subject} commit successfully."))
        }
        ("commit", TxnState::Visible) => two_pc_reply(
            "INTERNAL_ERROR",
            format!("{txn} is already visible, not pre-committed."),
        ),
        ("commit", TxnState::Committed) => two_pc_reply(
            "INTERNAL_ERROR",
            format!("{txn} is already committed, not pre-committed."),
        ),
        ("commit", TxnState::Aborted) => {
            let reason = st
                .txns
                .get(&id)
                .map(|t| t.abort_reason.clone())
                .unwrap_or_default();
            two_pc_reply(
                "INTERNAL_ERROR",
                format!("{txn} is already aborted, abort reason: {reason}"),
            )
        }
        ("commit", _) => two_pc_reply(
            "INTERNAL_ERROR",
            format!(
                "{txn} is not pre-committed, current status is {}",
                state.as_str()
            ),
        ),
        ("abort", TxnState::Precommitted | TxnState::Prepare | TxnState::Prepared) => {
            st.set_state(id, TxnState::Aborted, "user abort");
            two_pc_reply("Success", format!("{subject} abort successfully."))
        }
        ("abort", TxnState::Aborted) => {
            two_pc_reply("INTERNAL_ERROR", format!("{txn} is already aborted"))
        }
        (_, _) => two_pc_reply(
            "INTERNAL_ERROR",
            format!(
                "{txn} is already {}, could not abort.",
                state.as_str().to_lowercase()
            ),
        ),
    };
    drop(st);
    Ok(reply)
}

// ---------------------------------------------------------------------------------------------
// get_load_state

fn load_state(shared: &Arc<Shared>, peer: SocketAddr, req: &Request<Incoming>, db: &str) -> Resp {
    if let Err(r) = fe_auth(shared, peer, req.headers()) {
        return *r;
    }
    let mode = shared.cfg.mode;
    let Some(label) = query_param(req.uri().query(), "label").filter(|l| !l.is_empty()) else {
        return match mode {
            Mode::Doris => {
                ok_json(&json!({"msg": "No label selected.", "code": 1, "data": null, "count": 0}))
            }
            Mode::StarRocks => ok_json(&json!({"status": "FAILED", "msg": "No label selected."})),
        };
    };
    let st = shared.lock();
    let state = st
        .latest(db, &label)
        .map(|t| t.state.as_str())
        .unwrap_or("UNKNOWN");
    match mode {
        Mode::Doris => ok_json(&json!({"msg": "success", "code": 0, "data": state, "count": 0})),
        Mode::StarRocks => ok_json(&json!({"status": "OK", "msg": "Success", "state": state})),
    }
}

// ---------------------------------------------------------------------------------------------
// SQL

/// Runs one SQL statement against the shared catalog (used by HTTP, MySQL and the Rust API).
pub(super) fn run_sql(
    shared: &Shared,
    db: Option<String>,
    sql_text: &str,
) -> Result<SqlOutput, SqlError> {
    run_sql_in(shared, &mut db.clone(), sql_text)
}

/// Like [`run_sql`], updating the session database on `USE`.
pub(super) fn run_sql_in(
    shared: &Shared,
    db: &mut Option<String>,
    sql_text: &str,
) -> Result<SqlOutput, SqlError> {
    let mode = shared.cfg.mode;
    let mut st = shared.lock();
    let State { catalog, txns, .. } = &mut *st;
    let txn_rows = |d: &str| -> Vec<(i64, String, String)> {
        txns.values()
            .filter(|t| t.db == d)
            .map(|t| (t.id, t.label.clone(), t.state.as_str().to_string()))
            .collect()
    };
    let mut ctx = SqlContext {
        mode,
        current_db: db.clone(),
        transactions: &txn_rows,
    };
    let out = sql::execute(catalog, &mut ctx, sql_text);
    *db = ctx.current_db;
    tracing::debug!(sql = %sql_text, ok = out.is_ok(), "SQL statement executed.");
    out
}

fn meta_type(rows: &[Vec<super::Value>], i: usize) -> &'static str {
    match rows.iter().map(|r| &r[i]).find(|v| !v.is_null()) {
        Some(super::Value::Int(_)) => "BIGINT",
        Some(super::Value::Float(_)) => "DOUBLE",
        Some(super::Value::Decimal(..)) => "DECIMAL",
        Some(super::Value::Bool(_)) => "BOOLEAN",
        Some(super::Value::Date(_)) => "DATE",
        Some(super::Value::DateTime(..)) => "DATETIME",
        _ => "CHAR",
    }
}

async fn sql_over_http(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
    db: &str,
) -> Handled {
    if let Err(r) = fe_auth(shared, peer, req.headers()) {
        return Ok(*r);
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped("body read failed")),
    };
    let stmt = match serde_json::from_slice::<Json>(&body)
        .ok()
        .and_then(|v| v.get("stmt").and_then(Json::as_str).map(str::to_string))
    {
        Some(s) => s,
        None => {
            return Ok(ok_json(
                &json!({"msg": "statement is missing: expected a JSON body {\"stmt\": \"...\"}", "code": 1, "data": null, "count": 0}),
            ));
        }
    };
    let started = Instant::now();
    Ok(match run_sql(shared, Some(db.to_string()), &stmt) {
        Ok(SqlOutput::Ok) => ok_json(
            &json!({"msg": "success", "code": 0, "data": {"type": "exec_status", "status": {}}, "count": 0}),
        ),
        Ok(SqlOutput::Rows { columns, rows }) => {
            let meta: Vec<Json> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| json!({"name": c, "type": meta_type(&rows, i)}))
                .collect();
            let data: Vec<Json> = rows
                .iter()
                .map(|r| Json::Array(r.iter().map(super::Value::to_json).collect()))
                .collect();
            ok_json(&json!({
                "msg": "success",
                "code": 0,
                "data": {"type": "result_set", "meta": meta, "data": data, "status": {}, "time": started.elapsed().as_millis() as u64},
                "count": 0
            }))
        }
        Err(e) => ok_json(&json!({"msg": e.to_string(), "code": 1, "data": null, "count": 0})),
    })
}

// ---------------------------------------------------------------------------------------------
// StarRocks transaction API

fn txn_reply(status: &str, message: impl Into<String>, extra: &[(&str, Json)]) -> Resp {
    let mut m = Map::new();
    m.insert("Status".into(), json!(status));
    m.insert("Message".into(), json!(message.into()));
    for (k, v) in extra {
        m.insert((*k).into(), v.clone());
    }
    json_resp(StatusCode::OK, &Json::Object(m), true)
}

fn stats_fields(label: &str, id: i64, s: &LoadStats) -> Vec<(&'static str, Json)> {
    vec![
        ("Label", json!(label)),
        ("TxnId", json!(id)),
        ("NumberTotalRows", json!(s.total)),
        ("NumberLoadedRows", json!(s.loaded)),
        ("NumberFilteredRows", json!(s.filtered)),
        ("NumberUnselectedRows", json!(s.unselected)),
        ("LoadBytes", json!(s.bytes)),
        ("LoadTimeMs", json!(0)),
        ("StreamLoadPlanTimeMs", json!(0)),
        ("ReceivedDataTimeMs", json!(0)),
        ("WriteDataTimeMs", json!(0)),
        ("CommitAndPublishTimeMs", json!(0)),
    ]
}

async fn starrocks_txn(
    shared: &Arc<Shared>,
    node: Node,
    peer: SocketAddr,
    req: Request<Incoming>,
    op: &str,
) -> Handled {
    if !["begin", "load", "prepare", "commit", "rollback"].contains(&op) {
        return Ok(txn_reply(
            "FAILED",
            format!("Invalid transaction operation {op}"),
            &[],
        ));
    }
    if let Some(r) = pre_fault(shared, FaultPoint::Transaction).await? {
        return Ok(r);
    }
    let h = req.headers().clone();
    let label = header(&h, "label").unwrap_or_default().to_string();
    let db = header(&h, "db").unwrap_or_default().to_string();
    let table = header(&h, "table").unwrap_or_default().to_string();
    if node == Node::Fe {
        let creds = match fe_auth(shared, peer, &h) {
            Ok(c) => c,
            Err(r) => return Ok(*r),
        };
        if label.is_empty() {
            return Ok(txn_reply("FAILED", "empty label", &[]));
        }
        if db.is_empty() {
            return Ok(txn_reply("FAILED", "No database selected.", &[]));
        }
        let key = (db.clone(), label.clone());
        let (be, prepared) = {
            let mut st = shared.lock();
            let prepared = st
                .holder(&db, &label)
                .is_some_and(|t| t.state == TxnState::Prepared);
            let be = match st.label_be.get(&key) {
                Some(b) if op != "begin" => *b,
                _ => {
                    let b = st.next_be % shared.be_addrs.len();
                    st.next_be += 1;
                    if op == "begin" {
                        st.label_be.insert(key, b);
                    }
                    b
                }
            };
            (be, prepared)
        };
        if matches!(op, "commit" | "rollback") && prepared {
            // The FE finishes a PREPARED transaction itself (no redirect).
            return starrocks_txn_exec(shared, None, req, op, &label, &db, &table).await;
        }
        let _ = creds;
        return Ok(redirect(shared, be, &location_path(shared, &req), None));
    }
    let Node::Be(be) = node else {
        return Ok(not_found());
    };
    match parse_basic(&h) {
        Some((u, p)) if credentials_ok(shared, &u, &p) => {}
        Some((u, _)) => {
            return Ok(txn_reply(
                "FAILED",
                format!("Access denied for user '{u}'"),
                &[],
            ));
        }
        None => return Ok(txn_reply("FAILED", "no valid Basic authorization", &[])),
    }
    starrocks_txn_exec(shared, Some(be), req, op, &label, &db, &table).await
}

async fn starrocks_txn_exec(
    shared: &Arc<Shared>,
    be: Option<usize>,
    req: Request<Incoming>,
    op: &str,
    label: &str,
    db: &str,
    table: &str,
) -> Handled {
    shared.wait_unstalled().await;
    let h = req.headers().clone();
    if label.is_empty() {
        return Ok(txn_reply("INVALID_ARGUMENT", "empty label", &[]));
    }
    if db.is_empty() {
        return Ok(txn_reply("INVALID_ARGUMENT", "empty database", &[]));
    }
    let secs = |name: &str| -> Result<Option<u64>, String> {
        header(&h, name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("Invalid {name} format"))
            })
            .transpose()
    };
    if op == "load" {
        return starrocks_txn_load(shared, be, req, label, db, table).await;
    }
    let mut st = shared.lock();
    match op {
        "begin" => {
            if table.is_empty() {
                return Ok(txn_reply("INVALID_ARGUMENT", "empty table", &[]));
            }
            if let Err(e) = check_label(Mode::StarRocks, label) {
                return Ok(txn_reply("INVALID_ARGUMENT", e, &[]));
            }
            if let Some(holder) = st.holder(db, label) {
                let existing = holder.state.existing_job_status();
                return Ok(txn_reply(
                    "LABEL_ALREADY_EXISTS",
                    label_exists_message(Mode::StarRocks, label, holder.id),
                    &[
                        ("Label", json!(label)),
                        ("ExistingJobStatus", json!(existing)),
                    ],
                ));
            }
            if st.catalog.table(db, table).is_none() {
                return Ok(txn_reply(
                    "INTERNAL_ERROR",
                    format!("Unknown table '{db}.{table}'"),
                    &[],
                ));
            }
            let (timeout, idle) = match (secs("timeout"), secs("idle_transaction_timeout")) {
                (Ok(t), Ok(i)) => (t.unwrap_or(600), i),
                (Err(e), _) | (_, Err(e)) => return Ok(txn_reply("INVALID_ARGUMENT", e, &[])),
            };
            let id = st.begin(
                db,
                table,
                label,
                be.unwrap_or(0),
                Duration::from_secs(timeout),
            );
            if let Some(t) = st.txns.get_mut(&id) {
                t.idle_timeout = idle.map(Duration::from_secs);
            }
            Ok(txn_reply(
                "OK",
                "",
                &[
                    ("Label", json!(label)),
                    ("TxnId", json!(id)),
                    ("BeginTxnTimeMs", json!(0)),
                ],
            ))
        }
        "prepare" | "commit" => {
            let Some(t) = st.latest(db, label) else {
                return Ok(txn_reply(
                    "TXN_NOT_EXISTS",
                    format!("Transaction with label {label} not exists"),
                    &[],
                ));
            };
            let (id, state, has_data, mut stats, ratio, busy) = (
                t.id,
                t.state,
                t.has_data,
                t.stats,
                t.max_filter_ratio,
                t.busy,
            );
            if t.state == TxnState::Prepare && be.is_some_and(|b| b != t.be) {
                return Ok(txn_reply(
                    "TXN_NOT_EXISTS",
                    format!("Transaction with label {label} not exists"),
                    &[],
                ));
            }
            if busy {
                return Ok(txn_reply(
                    "TXN_IN_PROCESSING",
                    "Transaction in processing, please retry later",
                    &[("Label", json!(label))],
                ));
            }
            match state {
                TxnState::Aborted if op == "commit" => {
                    return Ok(txn_reply(
                        "FAILED",
                        format!("cannot commit aborted transaction {id}, label {label}"),
                        &[],
                    ));
                }
                TxnState::Aborted => {
                    return Ok(txn_reply(
                        "TXN_NOT_EXISTS",
                        format!("Transaction with label {label} not exists"),
                        &[],
                    ));
                }
                TxnState::Visible | TxnState::Committed if op == "commit" => {
                    return Ok(txn_reply(
                        "OK",
                        format!("label {label} transaction {id} has already committed"),
                        &stats_fields(label, id, &stats),
                    ));
                }
                TxnState::Visible | TxnState::Committed => {
                    return Ok(txn_reply(
                        "FAILED",
                        format!("transaction {id} with label {label} is already committed"),
                        &[],
                    ));
                }
                TxnState::Prepared if op == "prepare" => {
                    return Ok(txn_reply("OK", "", &stats_fields(label, id, &stats)));
                }
                _ => {}
            }
            if state == TxnState::Prepare {
                if !has_data {
                    st.set_state(id, TxnState::Aborted, "no data");
                    return Ok(txn_reply(
                        "INTERNAL_ERROR",
                        format!("Transaction {label} hasn't send any data yet"),
                        &[],
                    ));
                }
                let pt = match secs("prepared_timeout") {
                    Ok(Some(0)) | Err(_) => {
                        return Ok(txn_reply(
                            "INVALID_ARGUMENT",
                            "Invalid prepared_timeout: must be a positive integer",
                            &[],
                        ));
                    }
                    Ok(v) => v.unwrap_or(86_400),
                };
                let (params, data, table_name) = match st.txns.get_mut(&id) {
                    Some(t) => (
                        t.pending_params.take(),
                        std::mem::take(&mut t.pending_data),
                        t.table.clone(),
                    ),
                    None => (None, Vec::new(), String::new()),
                };
                let parsed = match (params, st.catalog.table(db, &table_name)) {
                    (Some(p), Some(t)) => load::parse_body(
                        Mode::StarRocks,
                        &p,
                        db,
                        t,
                        &data,
                        shared.cfg.json_max_bytes,
                    ),
                    _ => Err(format!("Unknown table '{db}.{table_name}'")),
                };
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        st.set_state(id, TxnState::Aborted, &e);
                        return Ok(txn_reply("INTERNAL_ERROR", e, &[]));
                    }
                };
                stats.total = parsed.total;
                stats.filtered = parsed.filtered;
                stats.unselected = parsed.unselected;
                stats.loaded = parsed.write.rows.len() as u64;
                let be_addr = shared.be_addrs[0];
                let url = save_error_log(&mut st, be_addr, label, id, &parsed.errors);
                if let Some(t) = st.txns.get_mut(&id) {
                    t.stats = stats;
                    t.writes.push(parsed.write);
                }
                if too_many_filtered(&stats, ratio) {
                    stats.loaded = 0;
                    st.set_state(id, TxnState::Aborted, "too many filtered rows");
                    let mut fields = stats_fields(label, id, &stats);
                    if let Some(u) = url {
                        fields.push(("ErrorURL", json!(u)));
                    }
                    return Ok(txn_reply(
                        "INTERNAL_ERROR",
                        "too many filtered rows",
                        &fields,
                    ));
                }
                st.set_state(id, TxnState::Prepared, "");
                if let Some(t) = st.txns.get_mut(&id) {
                    t.prepared_timeout = Duration::from_secs(pt);
                }
            }
            if op == "prepare" {
                return Ok(txn_reply("OK", "", &stats_fields(label, id, &stats)));
            }
            let fault = st.take_fault(FaultPoint::Transaction);
            match fault {
                Some(Fault::PublishTimeout) => {
                    st.commit(id, false);
                    Ok(txn_reply(
                        "PUBLISH_TIMEOUT",
                        "transaction commit successfully, BUT data will be visible later",
                        &stats_fields(label, id, &stats),
                    ))
                }
                Some(Fault::DropReplyAfterCommit) => {
                    st.commit(id, true);
                    Err(Dropped("injected reply loss after commit"))
                }
                _ => {
                    st.commit(id, true);
                    Ok(txn_reply("OK", "", &stats_fields(label, id, &stats)))
                }
            }
        }
        _ => {
            // rollback
            let Some(t) = st.latest(db, label) else {
                return Ok(txn_reply(
                    "TXN_NOT_EXISTS",
                    format!("Transaction with label {label} not exists"),
                    &[],
                ));
            };
            let (id, state) = (t.id, t.state);
            match state {
                TxnState::Aborted => Ok(txn_reply(
                    "OK",
                    format!("label {label} transaction {id} has already aborted"),
                    &[],
                )),
                TxnState::Visible | TxnState::Committed => Ok(txn_reply(
                    "FAILED",
                    format!("cannot abort committed transaction {id}, label {label}"),
                    &[],
                )),
                _ => {
                    st.set_state(id, TxnState::Aborted, "user rollback");
                    Ok(txn_reply(
                        "OK",
                        "",
                        &[("Label", json!(label)), ("TxnId", json!(id))],
                    ))
                }
            }
        }
    }
}

async fn starrocks_txn_load(
    shared: &Arc<Shared>,
    be: Option<usize>,
    req: Request<Incoming>,
    label: &str,
    db: &str,
    table: &str,
) -> Handled {
    let h = req.headers().clone();
    let pre = {
        let mut st = shared.lock();
        // The BE keeps transactions by label; the database is compared afterwards.
        let found = st.holder(db, label).or_else(|| {
            st.txns
                .values()
                .find(|t| t.label == label && t.state != TxnState::Aborted)
        });
        let Some(t) = found else {
            return Ok(txn_reply(
                "TXN_NOT_EXISTS",
                format!("Transaction with label {label} not exists"),
                &[],
            ));
        };
        let (id, tdb, ttable, state, busy) = (t.id, t.db.clone(), t.table.clone(), t.state, t.busy);
        // The stream-load context lives on the BE that began the transaction.
        if be.is_some_and(|b| b != t.be) {
            return Ok(txn_reply(
                "TXN_NOT_EXISTS",
                format!("Transaction with label {label} not exists"),
                &[],
            ));
        }
        if busy {
            return Ok(txn_reply(
                "TXN_IN_PROCESSING",
                "Transaction in processing, please retry later",
                &[("Label", json!(label))],
            ));
        }
        if tdb != db {
            return Ok(txn_reply(
                "INVALID_ARGUMENT",
                format!("Request database {db} not equal transaction database {tdb}"),
                &[],
            ));
        }
        if !table.is_empty() && ttable != table {
            return Ok(txn_reply(
                "INVALID_ARGUMENT",
                format!("Request table {table} not equal transaction table {ttable}"),
                &[],
            ));
        }
        if state != TxnState::Prepare {
            return Ok(txn_reply(
                "INTERNAL_ERROR",
                format!(
                    "Transaction {label} is {}, can not load data",
                    state.as_str()
                ),
                &[],
            ));
        }
        let params = match load::parse_params(Mode::StarRocks, &h) {
            Ok(p) => p,
            Err(e) => {
                st.set_state(id, TxnState::Aborted, &e);
                return Ok(txn_reply("INVALID_ARGUMENT", e, &[]));
            }
        };
        if let Some(t) = st.txns.get_mut(&id) {
            t.busy = true;
            t.last_activity = Instant::now();
        }

        (id, tdb, ttable, params)
    };
    let (id, tdb, ttable, params) = pre;
    let read_start = Instant::now();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            shared
                .lock()
                .set_state(id, TxnState::Aborted, "body read failed");
            return Err(Dropped("body read failed"));
        }
    };
    let read_ms = read_start.elapsed().as_millis() as u64;
    let mut st = shared.lock();
    let _ = (&tdb, &ttable);
    // Bodies are concatenated as the BE's pipe does (rule 54: CSV chunks must end with the
    // row delimiter); rows are parsed once, at prepare.
    match load::decompress(params.codec, &body) {
        Err(e) => {
            st.set_state(id, TxnState::Aborted, &e);
            Ok(txn_reply("INTERNAL_ERROR", e, &[]))
        }
        Ok(data) => {
            if let Some(t) = st.txns.get_mut(&id) {
                t.busy = false;
                t.has_data = true;
                t.last_activity = Instant::now();
                t.stats.bytes += body.len() as u64;
                t.pending_data.extend_from_slice(&data);
                if t.pending_params.is_none() {
                    t.max_filter_ratio = params.max_filter_ratio;
                    t.pending_params = Some(params);
                }
            }
            let _ = be;
            Ok(txn_reply(
                "OK",
                "",
                &[
                    ("Label", json!(label)),
                    ("TxnId", json!(id)),
                    ("LoadBytes", json!(body.len())),
                    ("StreamLoadPlanTimeMs", json!(0)),
                    ("ReceivedDataTimeMs", json!(read_ms)),
                ],
            ))
        }
    }
}
