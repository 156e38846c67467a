//! The HTTP side of Stream Load for both systems.
//!
//! ```text
//!  load(req) ─┬─ attempt on node i (round-robin over the FE or BE list)
//!             │    FE: PUT without body ──307──▶ PUT with body to Location (Authorization re-sent)
//!             │    BE: PUT with body
//!             ├─ Success / Publish Timeout ─────────────▶ Ok
//!             ├─ Label Already Exists ─ FINISHED ────────▶ Ok (an earlier attempt committed)
//!             │                        ─ RUNNING ─ poll get_load_state ─▶ Ok | retry
//!             │                        ─ PRECOMMITTED ─ abort by label ─▶ retry
//!             ├─ Fail (data/user error) ─────────────────▶ Err, no retry
//!             └─ Fail / 5xx / reset / timeout ─ backoff ─▶ next attempt, SAME label
//! ```
//!
//! Redirects are followed by hand (reqwest's policy is `none`): reqwest drops `Authorization` on
//! a cross-host redirect, and the body must not reach the FE (it answers 307 without reading it, so
//! a client that streams anyway cannot replay). Doris puts credentials into the `Location`
//! userinfo; they are stripped and the header is sent instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use cdcflow_engine::config::Secret;
use cdcflow_engine::metrics::Metrics;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{
    AUTHORIZATION, CONTENT_TYPE, EXPECT, HeaderMap, HeaderName, HeaderValue, LOCATION,
};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use tracing::{debug, warn};

use super::reply::{
    LabelState, LoadReply, ReplyKind, System, is_permanent_failure, is_success, parse_load_state,
    parse_reply,
};
use crate::error::{Result, SinkError};

/// Path segments are percent-encoded except for RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Most redirects followed for one request (FE → BE is one).
const MAX_REDIRECTS: usize = 3;

/// How the client reaches the cluster and how hard it tries.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Doris or StarRocks.
    pub system: System,
    /// FE HTTP endpoints (`host:port` or `http://host:port`): load state, 2PC, transactions, SQL.
    pub fe_nodes: Vec<String>,
    /// BE HTTP endpoints; when non-empty, loads go straight to them (no redirect).
    pub be_nodes: Vec<String>,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (headers to end of reply); `None` waits forever.
    pub request_timeout: Option<Duration>,
    /// Attempts after the first for a retryable outcome.
    pub max_retries: u32,
    /// First backoff; doubles per attempt up to `max_backoff`.
    pub retry_backoff: Duration,
    /// Longest backoff.
    pub max_backoff: Duration,
    /// How long to wait for a `RUNNING` label to become final before retrying.
    pub label_wait: Duration,
}

impl ClientConfig {
    /// Defaults for `system` with the given FE list and user (connect 30 s, 3 retries, 1 s backoff).
    pub fn new(system: System, fe_nodes: Vec<String>, username: &str, password: Secret) -> Self {
        ClientConfig {
            system,
            fe_nodes,
            be_nodes: Vec::new(),
            username: username.to_string(),
            password,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Some(Duration::from_secs(660)),
            max_retries: 3,
            retry_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            label_wait: Duration::from_secs(60),
        }
    }
}

/// One load: where, under which label, with which headers and body.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// Target database.
    pub db: String,
    /// Target table.
    pub table: String,
    /// The label (same on every retry).
    pub label: String,
    /// Format and behaviour headers (`format`, `hidden_columns`, `timeout`, `two_phase_commit`, ...).
    pub headers: Vec<(String, String)>,
    /// The body, already encoded (and compressed if a compression header is set).
    pub body: Bytes,
    /// Whether this is a Doris two-phase-commit load (changes how leftovers are resolved).
    pub two_phase: bool,
}

/// The result of a load that is durable (committed, or precommitted for 2PC).
#[derive(Debug, Clone, PartialEq)]
pub struct LoadOutcome {
    /// The label.
    pub label: String,
    /// Transaction id (`-1` when the label was found already committed).
    pub txn_id: i64,
    /// Rows the server loaded (0 when already committed by an earlier attempt).
    pub loaded_rows: u64,
    /// True when an earlier attempt had already committed this label.
    pub already_committed: bool,
}

/// What one attempt concluded.
enum Attempt {
    Done(LoadOutcome),
    Retry(SinkError),
}

/// The Stream Load client shared by the Doris and StarRocks sinks.
#[derive(Debug, Clone)]
pub struct StreamLoadClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: ClientConfig,
    http: reqwest::Client,
    auth: HeaderValue,
    next_fe: AtomicUsize,
    next_be: AtomicUsize,
}

/// Installs the ring crypto provider for rustls once per process (reqwest is built without one).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl StreamLoadClient {
    /// Builds the client (no I/O).
    pub fn new(cfg: ClientConfig) -> Result<Self> {
        if cfg.fe_nodes.is_empty() && cfg.be_nodes.is_empty() {
            return Err(SinkError::Config("no FE or BE address given".into()));
        }
        install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(cfg.connect_timeout);
        if let Some(t) = cfg.request_timeout {
            b = b.timeout(t);
        }
        let http = b
            .build()
            .map_err(|e| SinkError::Config(format!("HTTP client: {e}")))?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            cfg.username,
            cfg.password.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| SinkError::Config("user name is not a valid header value".into()))?;
        auth.set_sensitive(true);
        Ok(StreamLoadClient {
            inner: Arc::new(Inner {
                cfg,
                http,
                auth,
                next_fe: AtomicUsize::new(0),
                next_be: AtomicUsize::new(0),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    fn base(node: &str) -> String {
        let n = node.trim().trim_end_matches('/');
        if n.starts_with("http://") || n.starts_with("https://") {
            n.to_string()
        } else {
            format!("http://{n}")
        }
    }

    fn pick_fe(&self) -> String {
        let nodes = if self.inner.cfg.fe_nodes.is_empty() {
            &self.inner.cfg.be_nodes
        } else {
            &self.inner.cfg.fe_nodes
        };
        let i = self.inner.next_fe.fetch_add(1, Ordering::Relaxed) % nodes.len();
        Self::base(&nodes[i])
    }

    /// The node for the next load attempt and whether it is a BE (body sent at once).
    fn pick_load_node(&self) -> (String, bool) {
        let be = &self.inner.cfg.be_nodes;
        if be.is_empty() {
            (self.pick_fe(), false)
        } else {
            let i = self.inner.next_be.fetch_add(1, Ordering::Relaxed) % be.len();
            (Self::base(&be[i]), true)
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let c = &self.inner.cfg;
        c.retry_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(c.max_backoff)
    }

    /// Percent-encodes one path segment (db or table names may hold any character).
    pub fn segment(s: &str) -> String {
        utf8_percent_encode(s, SEGMENT).to_string()
    }

    /// Sends one request, following FE→BE redirects by hand. When `probe` is set and there is a
    /// body, the first hop goes without it; the body is sent only to a redirect target.
    async fn exchange(
        &self,
        method: Method,
        url: String,
        headers: &HeaderMap,
        body: Bytes,
        probe: bool,
    ) -> Result<(StatusCode, String, Bytes)> {
        let mut url = url;
        let mut send_body = !probe || body.is_empty();
        for _ in 0..=MAX_REDIRECTS {
            let payload = if send_body {
                body.clone()
            } else {
                Bytes::new()
            };
            let req = self
                .inner
                .http
                .request(method.clone(), &url)
                .headers(headers.clone())
                .header(AUTHORIZATION, self.inner.auth.clone())
                .body(payload);
            let m = method_name(&method);
            let resp = req.send().await.map_err(|source| SinkError::Http {
                method: m,
                url: url.clone(),
                source,
            })?;
            let status = resp.status();
            if status == StatusCode::TEMPORARY_REDIRECT || status == StatusCode::PERMANENT_REDIRECT
            {
                let loc = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let Some(loc) = loc else {
                    return Err(bad_reply(
                        "redirect",
                        &url,
                        status,
                        b"307 without Location",
                        true,
                    ));
                };
                let mut next = Url::parse(&loc)
                    .or_else(|_| Url::parse(&url).and_then(|u| u.join(&loc)))
                    .map_err(|_| bad_reply("redirect", &url, status, loc.as_bytes(), false))?;
                let _ = next.set_username("");
                let _ = next.set_password(None);
                debug!(from = %url, to = %next, "Following Stream Load redirect.");
                url = next.to_string();
                send_body = true;
                continue;
            }
            let bytes = resp.bytes().await.map_err(|source| SinkError::Http {
                method: m,
                url: url.clone(),
                source,
            })?;
            if probe && !send_body && !body.is_empty() && status == StatusCode::OK {
                // The FE answered itself: fine for errors, but a load it accepted would be empty.
                if let Some(ReplyKind::Load(r)) = parse_reply(&bytes)
                    && is_success(&r.status)
                {
                    return Err(bad_reply(
                        "stream load",
                        &url,
                        status,
                        b"FE accepted a load without redirecting to a BE; refusing to treat an empty load as success",
                        false,
                    ));
                }
            }
            return Ok((status, url, bytes));
        }
        Err(bad_reply(
            "redirect",
            &url,
            StatusCode::TEMPORARY_REDIRECT,
            b"too many redirects",
            true,
        ))
    }

    fn base_headers(&self, extra: &[(String, String)]) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        for (k, v) in extra {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SinkError::Config(format!("invalid header name `{k}`")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| SinkError::Config(format!("invalid value for header `{k}`")))?;
            h.insert(name, value);
        }
        Ok(h)
    }

    /// Loads one body with retries under the same label; see the module docs for the decisions.
    pub async fn load(&self, req: &LoadRequest) -> Result<LoadOutcome> {
        let mut headers = self.base_headers(&req.headers)?;
        headers.insert(
            "label",
            HeaderValue::from_str(&req.label)
                .map_err(|_| SinkError::Config(format!("bad label {}", req.label)))?,
        );
        if self.inner.cfg.system == System::StarRocks {
            // Harmless on plain loads, required by the transaction API; the StarRocks SDK sends them too.
            headers.insert("db", hv(&req.db)?);
            headers.insert("table", hv(&req.table)?);
        }
        let path = format!(
            "/api/{}/{}/_stream_load",
            Self::segment(&req.db),
            Self::segment(&req.table)
        );
        let mut last = None;
        for attempt in 0..=self.inner.cfg.max_retries {
            if attempt > 0 {
                Metrics::global().retry("sink");
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            match self.load_once(req, &path, &headers).await {
                Ok(Attempt::Done(o)) => return Ok(o),
                Ok(Attempt::Retry(e)) | Err(e) if e.is_retryable() => {
                    warn!(db = %req.db, table = %req.table, label = %req.label, attempt, error = %cdcflow_engine::error::ErrorChain(&e), "Stream Load attempt failed, retrying with the same label.");
                    last = Some(e);
                }
                Ok(Attempt::Retry(e)) | Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| SinkError::Config("max retries exhausted".into())))
    }

    async fn load_once(
        &self,
        req: &LoadRequest,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Attempt> {
        let (node, is_be) = self.pick_load_node();
        let url = format!("{node}{path}");
        let (status, url, body) = self
            .exchange(Method::PUT, url, headers, req.body.clone(), !is_be)
            .await?;
        let fail = |status: String, message: String, error_url: Option<String>, retryable: bool| {
            SinkError::LoadFailed {
                table: format!("{}.{}", req.db, req.table),
                label: req.label.clone(),
                status,
                message,
                error_url,
                retryable,
            }
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(SinkError::Auth {
                url,
                message: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        if status != StatusCode::OK {
            let retryable = status.is_server_error()
                || status == StatusCode::TOO_MANY_REQUESTS
                || status == StatusCode::REQUEST_TIMEOUT;
            return Ok(Attempt::Retry(bad_reply(
                "stream load",
                &url,
                status,
                &body,
                retryable,
            )));
        }
        let reply = match parse_reply(&body) {
            Some(ReplyKind::Load(r)) => r,
            Some(ReplyKind::Unauthorized(m)) => return Err(SinkError::Auth { url, message: m }),
            Some(ReplyKind::FeError(m)) => {
                let permanent = is_permanent_failure(&m);
                return Ok(Attempt::Retry(fail("FAILED".into(), m, None, !permanent)));
            }
            None => {
                return Ok(Attempt::Retry(bad_reply(
                    "stream load",
                    &url,
                    status,
                    &body,
                    true,
                )));
            }
        };
        if is_success(&reply.status) {
            if reply.status == "Publish Timeout" {
                warn!(db = %req.db, table = %req.table, label = %req.label, "Load committed but not yet visible (Publish Timeout).");
            }
            return Ok(Attempt::Done(LoadOutcome {
                label: req.label.clone(),
                txn_id: reply.txn_id,
                loaded_rows: reply.loaded_rows,
                already_committed: false,
            }));
        }
        if reply.status == "Label Already Exists" {
            return self.resolve_existing_label(req, &reply).await;
        }
        let permanent = is_permanent_failure(&reply.message);
        Ok(Attempt::Retry(fail(
            reply.status,
            reply.message,
            reply.error_url,
            !permanent,
        )))
    }

    /// `Label Already Exists`: settle what the earlier holder of our label did.
    async fn resolve_existing_label(
        &self,
        req: &LoadRequest,
        reply: &LoadReply,
    ) -> Result<Attempt> {
        let existing = reply.existing_job_status.as_deref().map(LabelState::parse);
        let mut state = existing.unwrap_or(LabelState::Running);
        let deadline = tokio::time::Instant::now() + self.inner.cfg.label_wait;
        let mut pause = Duration::from_millis(50);
        while state == LabelState::Running && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
            state = self
                .load_state(&req.db, &req.label)
                .await
                .unwrap_or(LabelState::Running);
        }
        let again = |why: &str| {
            Attempt::Retry(SinkError::LoadFailed {
                table: format!("{}.{}", req.db, req.table),
                label: req.label.clone(),
                status: "Label Already Exists".into(),
                message: why.to_string(),
                error_url: None,
                retryable: true,
            })
        };
        match state {
            LabelState::Committed => {
                debug!(db = %req.db, label = %req.label, "Label already committed by an earlier attempt.");
                Ok(Attempt::Done(LoadOutcome {
                    label: req.label.clone(),
                    txn_id: -1,
                    loaded_rows: 0,
                    already_committed: true,
                }))
            }
            LabelState::Prepared => {
                // A precommitted transaction holds our label (an attempt whose reply was lost, or a
                // leftover of a crashed run): abort it so the label is free, then load again.
                self.abort_label(&req.db, &req.table, &req.label).await?;
                Ok(again(
                    "an uncommitted transaction held the label; aborted it",
                ))
            }
            LabelState::Aborted | LabelState::Unknown => {
                Ok(again("the earlier transaction of the label did not commit"))
            }
            LabelState::Running => Ok(again(
                "the earlier transaction of the label is still running",
            )),
        }
    }

    /// Aborts whatever prepared transaction holds `label` (Doris 2PC abort / StarRocks rollback).
    pub async fn abort_label(&self, db: &str, table: &str, label: &str) -> Result<()> {
        match self.inner.cfg.system {
            System::Doris => {
                self.doris_2pc(db, TxnOp::Abort, TxnRef::Label(label.to_string()))
                    .await
            }
            System::StarRocks => self
                .sr_txn(SrTxnOp::Rollback, db, table, label, &[], Bytes::new())
                .await
                .map(|_| ()),
        }
    }

    /// The state of `label` in `db` (`GET /api/{db}/get_load_state?label=`).
    pub async fn load_state(&self, db: &str, label: &str) -> Result<LabelState> {
        let base = self.pick_fe();
        let url = format!(
            "{base}/api/{}/get_load_state?label={}",
            Self::segment(db),
            Self::segment(label)
        );
        let (status, url, body) = self
            .exchange(Method::GET, url, &HeaderMap::new(), Bytes::new(), false)
            .await?;
        if status != StatusCode::OK {
            return Err(bad_reply(
                "get_load_state",
                &url,
                status,
                &body,
                status.is_server_error(),
            ));
        }
        parse_load_state(&body)
            .ok_or_else(|| bad_reply("get_load_state", &url, status, &body, true))
    }

    /// Doris 2PC: commit or abort a precommitted transaction (`PUT /api/{db}/_stream_load_2pc`).
    /// Committing an already visible one and aborting an already aborted/unknown one succeed.
    pub async fn doris_2pc(&self, db: &str, op: TxnOp, txn: TxnRef) -> Result<()> {
        let mut h = HeaderMap::new();
        h.insert(EXPECT, HeaderValue::from_static("100-continue"));
        h.insert("txn_operation", HeaderValue::from_static(op.word()));
        let label = match &txn {
            TxnRef::Id(id) => {
                h.insert("txn_id", hv(&id.to_string())?);
                format!("txn {id}")
            }
            TxnRef::Label(l) => {
                h.insert("label", hv(l)?);
                l.clone()
            }
        };
        let mut last = None;
        for attempt in 0..=self.inner.cfg.max_retries {
            if attempt > 0 {
                Metrics::global().retry("sink");
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let url = format!(
                "{}/api/{}/_stream_load_2pc",
                self.pick_fe(),
                Self::segment(db)
            );
            let res = self
                .exchange(Method::PUT, url, &h, Bytes::new(), false)
                .await;
            let e = match res {
                Err(e) => e,
                Ok((status, url, body)) if status != StatusCode::OK => {
                    bad_reply("2pc", &url, status, &body, status.is_server_error())
                }
                Ok((_, url, body)) => {
                    let v: Value = serde_json::from_slice(&body)
                        .map_err(|_| bad_reply("2pc", &url, StatusCode::OK, &body, true))?;
                    let status = json_str(&v, &["status", "Status"]);
                    let msg = json_str(&v, &["msg", "Message", "message"]);
                    let lower = msg.to_ascii_lowercase();
                    let settled = status == "Success"
                        || match op {
                            TxnOp::Commit => {
                                lower.contains("already visible")
                                    || lower.contains("already committed")
                            }
                            TxnOp::Abort => {
                                lower.contains("already aborted") || lower.contains("not found")
                            }
                        };
                    if settled {
                        debug!(db, txn = %label, op = op.word(), "2PC transaction settled.");
                        return Ok(());
                    }
                    if v.get("code").and_then(Value::as_i64) == Some(401) {
                        return Err(SinkError::Auth { url, message: msg });
                    }
                    // A commit of an aborted or vanished transaction cannot succeed later.
                    let permanent = op == TxnOp::Commit
                        && (lower.contains("aborted") || lower.contains("not found"))
                        || is_permanent_failure(&msg);
                    let e = SinkError::Txn {
                        op: op.word(),
                        db: db.into(),
                        label: label.clone(),
                        status,
                        message: msg,
                        retryable: !permanent,
                    };
                    if permanent {
                        return Err(e);
                    }
                    e
                }
            };
            if !e.is_retryable() {
                return Err(e);
            }
            warn!(db, txn = %label, attempt, error = %cdcflow_engine::error::ErrorChain(&e), "2PC request failed, retrying.");
            last = Some(e);
        }
        Err(last.unwrap_or_else(|| SinkError::Config("max retries exhausted".into())))
    }

    /// StarRocks transaction API call (`/api/transaction/{op}`); returns the reply JSON when its
    /// `Status` is `OK`. Retries `TXN_IN_PROCESSING` and transport failures.
    pub async fn sr_txn(
        &self,
        op: SrTxnOp,
        db: &str,
        table: &str,
        label: &str,
        extra: &[(String, String)],
        body: Bytes,
    ) -> Result<Value> {
        let mut h = self.base_headers(extra)?;
        h.insert("label", hv(label)?);
        h.insert("db", hv(db)?);
        h.insert("table", hv(table)?);
        let method = if op == SrTxnOp::Load {
            Method::PUT
        } else {
            Method::POST
        };
        let mut last = None;
        for attempt in 0..=self.inner.cfg.max_retries {
            if attempt > 0 {
                Metrics::global().retry("sink");
                tokio::time::sleep(self.backoff(attempt - 1)).await;
            }
            let url = format!("{}/api/transaction/{}", self.pick_fe(), op.word());
            let e = match self
                .exchange(method.clone(), url, &h, body.clone(), true)
                .await
            {
                Err(e) => e,
                Ok((status, url, reply)) if status == StatusCode::UNAUTHORIZED => {
                    return Err(SinkError::Auth {
                        url,
                        message: String::from_utf8_lossy(&reply).into_owned(),
                    });
                }
                Ok((status, url, reply)) if status != StatusCode::OK => bad_reply(
                    "transaction",
                    &url,
                    status,
                    &reply,
                    status.is_server_error(),
                ),
                Ok((_, url, reply)) => {
                    let v: Value = serde_json::from_slice(&reply).map_err(|_| {
                        bad_reply("transaction", &url, StatusCode::OK, &reply, true)
                    })?;
                    let status = json_str(&v, &["Status", "status"]);
                    let msg = json_str(&v, &["Message", "msg"]);
                    if status == "OK" || status == "Success" {
                        return Ok(v);
                    }
                    if op == SrTxnOp::Rollback
                        && (status == "TXN_NOT_EXISTS" || msg.contains("already aborted"))
                    {
                        return Ok(v);
                    }
                    let retryable = match status.as_str() {
                        "TXN_IN_PROCESSING" => true,
                        "FAILED" | "INTERNAL_ERROR" | "Fail" => !is_permanent_failure(&msg),
                        _ => false,
                    };
                    let e = SinkError::Txn {
                        op: op.word(),
                        db: db.into(),
                        label: label.into(),
                        status,
                        message: msg,
                        retryable,
                    };
                    if !retryable {
                        return Err(e);
                    }
                    e
                }
            };
            if !e.is_retryable() {
                return Err(e);
            }
            warn!(db, label, op = op.word(), attempt, error = %cdcflow_engine::error::ErrorChain(&e), "Transaction request failed, retrying.");
            last = Some(e);
        }
        Err(last.unwrap_or_else(|| SinkError::Config("max retries exhausted".into())))
    }

    /// Doris SQL over FE HTTP (`POST /api/query/default_cluster/{db}`, `{"stmt": …}`); returns the
    /// reply's `data` when `code` is 0.
    pub async fn doris_sql(&self, db: &str, stmt: &str) -> Result<Value> {
        let url = format!(
            "{}/api/query/default_cluster/{}",
            self.pick_fe(),
            Self::segment(db)
        );
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let body = Bytes::from(serde_json::json!({ "stmt": stmt }).to_string());
        let (status, url, reply) = self.exchange(Method::POST, url, &h, body, false).await?;
        let ddl_err = |message: String, retryable: bool| SinkError::Ddl {
            table: db.to_string(),
            stmt: stmt.to_string(),
            message,
            retryable,
        };
        if status == StatusCode::UNAUTHORIZED {
            return Err(SinkError::Auth {
                url,
                message: String::from_utf8_lossy(&reply).into_owned(),
            });
        }
        if status != StatusCode::OK {
            return Err(bad_reply(
                "SQL",
                &url,
                status,
                &reply,
                status.is_server_error(),
            ));
        }
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|_| bad_reply("SQL", &url, status, &reply, true))?;
        match v.get("code").and_then(Value::as_i64) {
            Some(0) => Ok(v.get("data").cloned().unwrap_or(Value::Null)),
            Some(401) => Err(SinkError::Auth {
                url,
                message: json_str(&v, &["data", "msg"]),
            }),
            _ => {
                let msg = json_str(&v, &["data", "msg"]);
                let m = if msg.is_empty() {
                    json_str(&v, &["msg"])
                } else {
                    msg
                };
                Err(ddl_err(m, false))
            }
        }
    }
}

/// A Doris 2PC operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOp {
    /// Make the precommitted rows visible.
    Commit,
    /// Discard them.
    Abort,
}

impl TxnOp {
    /// The `txn_operation` header value.
    pub fn word(self) -> &'static str {
        match self {
            TxnOp::Commit => "commit",
            TxnOp::Abort => "abort",
        }
    }
}

/// Which Doris transaction a 2PC operation addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnRef {
    /// By transaction id.
    Id(i64),
    /// By label.
    Label(String),
}

/// A StarRocks Transaction Stream Load operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrTxnOp {
    /// Open a transaction under a label.
    Begin,
    /// Send a body into it.
    Load,
    /// Make it durable but invisible.
    Prepare,
    /// Make it visible.
    Commit,
    /// Discard it.
    Rollback,
}

impl SrTxnOp {
    /// The path word.
    pub fn word(self) -> &'static str {
        match self {
            SrTxnOp::Begin => "begin",
            SrTxnOp::Load => "load",
            SrTxnOp::Prepare => "prepare",
            SrTxnOp::Commit => "commit",
            SrTxnOp::Rollback => "rollback",
        }
    }
}

fn hv(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s)
        .map_err(|_| SinkError::Config(format!("`{s}` is not a valid header value")))
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        _ => "HTTP",
    }
}

fn json_str(v: &Value, keys: &[&str]) -> String {
    keys.iter()
        .find_map(|k| v.get(*k).filter(|x| !x.is_null()))
        .map(|x| match x {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

fn bad_reply(
    what: &'static str,
    url: &str,
    status: StatusCode,
    body: &[u8],
    retryable: bool,
) -> SinkError {
    let mut text = String::from_utf8_lossy(body).into_owned();
    if text.len() > 512 {
        let mut cut = 512;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    SinkError::BadReply {
        what,
        url: url.to_string(),
        status: status.as_u16(),
        body: text,
        retryable,
    }
}
