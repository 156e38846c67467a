//! Watching a run from outside: the Prometheus endpoint and the live status line on a terminal.
//!
//! ```text
//!  engine, source, sink ──record──▶ Metrics::global() ──encode()──▶ GET /metrics (loopback HTTP/1.1)
//!                                                      └snapshot()─▶ status line every 500 ms (TTY only)
//! ```
//!
//! The endpoint is off unless `--metrics-addr`, `CDCFLOW_METRICS_ADDR` or the pipeline option
//! `cdcflow.metrics.address` names an address. It has no authentication, so it binds to a
//! loopback address only, unless `--metrics-allow-remote` says the operator protects it some
//! other way. It never serves anything but the metric text and a liveness answer: labels are
//! table and component names, never option values, so no credential can be scraped.
//!
//! The status line is drawn on stderr only when stderr is a terminal and logs are human-readable;
//! log lines go through [`ProgressDisplay::make_writer`], which hides the line while a log line
//! is printed so the two never interleave.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::{self, IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cdcflow_engine::config::PipelineDef;
use cdcflow_engine::metrics::{Metrics, Snapshot};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use indicatif::{HumanBytes, HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// Pipeline option naming the metrics address (the flag and env var take precedence).
pub const METRICS_ADDRESS_OPTION: &str = "cdcflow.metrics.address";

/// Content type of the Prometheus text exposition format the endpoint serves.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Connections served at once; more are closed at once (a scraper needs one).
const MAX_CONNECTIONS: usize = 32;

/// A client that has not sent its request headers by then is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the status line is refreshed.
pub const PROGRESS_REFRESH: Duration = Duration::from_millis(500);

/// Rates on the status line are averaged over this window, so they do not jump per refresh.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Why the metrics endpoint cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The address is not `ip:port` (or `localhost:port`, or a bare port).
    #[error(
        "{origin}: `{value}` is not an address with a port (e.g. `127.0.0.1:9464`, `[::1]:9464` or `9464`)"
    )]
    BadAddress {
        /// Where the address was given.
        origin: String,
        /// The value as given.
        value: String,
    },
    /// A non-loopback address without `--metrics-allow-remote`.
    #[error(
        "{origin}: {addr} is not a loopback address; the metrics endpoint has no authentication, so it \
         listens on 127.0.0.1 or [::1] only. Pass --metrics-allow-remote to listen on {addr} anyway \
         (behind a firewall or an authenticating proxy)"
    )]
    NotLoopback {
        /// Where the address was given.
        origin: String,
        /// The refused address.
        addr: SocketAddr,
    },
    /// Listening failed (address in use, no permission).
    #[error("cannot listen for metrics on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
}

/// Where the metrics endpoint should listen, if anywhere: the flag (or `CDCFLOW_METRICS_ADDR`,
/// which clap folds into it) wins over the pipeline option; an empty value means off.
///
/// # Errors
/// [`ObserveError::BadAddress`] for a malformed address, [`ObserveError::NotLoopback`] for a
/// non-loopback one without `allow_remote`.
pub fn metrics_address(
    flag: Option<&str>,
    def: &PipelineDef,
    allow_remote: bool,
) -> Result<Option<SocketAddr>, ObserveError> {
    let (value, origin) = match (
        flag,
        def.pipeline.engine_options.get(METRICS_ADDRESS_OPTION),
    ) {
        (Some(f), _) => (f.to_string(), "--metrics-addr".to_string()),
        (None, Some(o)) => (
            o.value.clone(),
            format!(
                "{}:{}: pipeline.{METRICS_ADDRESS_OPTION}",
                def.file, o.value_loc
            ),
        ),
        (None, None) => return Ok(None),
    };
    if value.trim().is_empty() {
        return Ok(None);
    }
    check_address(&value, &origin, allow_remote).map(Some)
}

/// Parses `value` and refuses a non-loopback address unless `allow_remote`.
///
/// # Errors
/// As [`metrics_address`].
pub fn check_address(
    value: &str,
    origin: &str,
    allow_remote: bool,
) -> Result<SocketAddr, ObserveError> {
    let addr = parse_address(value).ok_or_else(|| ObserveError::BadAddress {
        origin: origin.to_string(),
        value: value.to_string(),
    })?;
    if !allow_remote && !is_loopback(addr.ip()) {
        return Err(ObserveError::NotLoopback {
            origin: origin.to_string(),
            addr,
        });
    }
    Ok(addr)
}

/// `ip:port`, `[v6]:port`, `localhost:port` or a bare port (on 127.0.0.1). No name lookups:
/// which interface a host name resolves to must not depend on DNS at start-up.
fn parse_address(value: &str) -> Option<SocketAddr> {
    let v = value.trim();
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Some(a);
    }
    let port = v
        .strip_prefix("localhost:")
        .unwrap_or(v)
        .parse::<u16>()
        .ok()?;
    Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
}

/// 127.0.0.0/8, ::1, and IPv4-mapped loopback (`::ffff:127.0.0.1`).
fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The running metrics endpoint; stops accepting when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `metrics` until dropped (or the runtime stops).
    ///
    /// # Errors
    /// [`ObserveError::Bind`] when the address cannot be listened on.
    pub async fn bind(addr: SocketAddr, metrics: &'static Metrics) -> Result<Self, ObserveError> {
        let bind_err = |source| ObserveError::Bind { addr, source };
        let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
        let bound = listener.local_addr().map_err(bind_err)?;
        if !is_loopback(bound.ip()) {
            warn!(address = %bound, "Metrics endpoint reachable beyond this host, without authentication.");
        }
        info!(address = %bound, "Serving Prometheus metrics on http://{bound}/metrics.");
        let task = tokio::spawn(accept_loop(listener, metrics));
        Ok(MetricsServer { addr: bound, task })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Accepts connections until aborted; each is served on its own task, at most
/// [`MAX_CONNECTIONS`] at once.
async fn accept_loop(listener: TcpListener, metrics: &'static Metrics) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "Metrics endpoint cannot accept a connection.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            debug!(%peer, "Too many metrics connections; closing this one.");
            continue;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let svc =
                service_fn(move |req| async move { Ok::<_, Infallible>(respond(&req, metrics)) });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "Metrics connection ended with an error.");
            }
        });
    }
}

/// Routes one request: `/metrics`, `/healthz`, or 404/405.
fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    match req.uri().path() {
        "/metrics" if read => text(StatusCode::OK, METRICS_CONTENT_TYPE, metrics.encode()),
        "/healthz" if read => text(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        "/metrics" | "/healthz" => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "only GET and HEAD\n".into(),
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found; try /metrics or /healthz\n".into(),
        ),
    }
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The live status line on a terminal, and the log writer that keeps logs from tearing it.
#[derive(Debug, Clone)]
pub struct ProgressDisplay {
    bar: ProgressBar,
}

impl ProgressDisplay {
    /// A status line on stderr, when stderr is a terminal and logs are human-readable (JSON
    /// logs go to machines, which must not get terminal control codes). Nothing is drawn until
    /// [`ProgressDisplay::start`].
    pub fn for_terminal(human_logs: bool) -> Option<Self> {
        (human_logs && io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The template is a constant; a parse failure would leave the default spinner style.
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            ProgressDisplay { bar }
        })
    }

    /// A tracing writer: stderr, with the status line hidden while each log line is written.
    pub fn make_writer(&self) -> LogWriter {
        LogWriter {
            bar: Some(self.bar.clone()),
        }
    }

    /// Refreshes the line from `metrics` every [`PROGRESS_REFRESH`] until the returned task is
    /// aborted; call [`ProgressDisplay::finish`] after.
    pub fn start(&self, metrics: &'static Metrics) -> JoinHandle<()> {
        let bar = self.bar.clone();
        tokio::spawn(async move {
            let mut rates = RateWindow::default();
            let mut tick = tokio::time::interval(PROGRESS_REFRESH);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let s = metrics.snapshot();
                let (rate_in, rate_out) = rates.push(Instant::now(), s.rows_in, s.rows_out);
                bar.set_message(status_line(&s, rate_in, rate_out));
                bar.tick();
            }
        })
    }

    /// Removes the line, so what follows (summary, errors) starts on a clean terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A [`tracing_subscriber::fmt::MakeWriter`] for stderr that suspends the status line around
/// each write (tracing's formatter writes each event in one call).
#[derive(Debug, Clone, Default)]
pub struct LogWriter {
    bar: Option<ProgressBar>,
}

impl LogWriter {
    /// Plain stderr, for when there is no status line.
    pub fn stderr() -> Self {
        LogWriter { bar: None }
    }
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &self.bar {
            Some(bar) => bar
                .suspend(|| io::stderr().lock().write_all(buf))
                .map(|()| buf.len()),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Row counts over the last [`RATE_WINDOW`], for per-second rates.
#[derive(Debug, Default)]
struct RateWindow {
    points: VecDeque<(Instant, u64, u64)>,
}

impl RateWindow {
    /// Adds a sample and returns rows/s in and out over the window.
    fn push(&mut self, at: Instant, rows_in: u64, rows_out: u64) -> (f64, f64) {
        self.points.push_back((at, rows_in, rows_out));
        while self.points.len() > 2
            && self
                .points
                .front()
                .is_some_and(|(t, _, _)| at.duration_since(*t) > RATE_WINDOW)
        {
            self.points.pop_front();
        }
        match self.points.front() {
            Some((t0, in0, out0)) if at > *t0 => {
                let dt = at.duration_since(*t0).as_secs_f64();
                (
                    rows_in.saturating_sub(*in0) as f64 / dt,
                    rows_out.saturating_sub(*out0) as f64 / dt,
                )
            }
            _ => (0.0, 0.0),
        }
    }
}

/// The status line's text, e.g.
/// `rows in 12,000 (2,400/s) · out 11,500 (2,300/s) · snapshot 3/8 chunks · lag 0.4 s, 12.00 KiB · spill 0 B · queue 1.50 MiB`.
pub fn status_line(s: &Snapshot, rate_in: f64, rate_out: f64) -> String {
    let mut line = format!(
        "rows in {} ({}/s) · out {} ({}/s)",
        HumanCount(s.rows_in),
        HumanCount(rate_in.max(0.0).round() as u64),
        HumanCount(s.rows_out),
        HumanCount(rate_out.max(0.0).round() as u64),
    );
    let (done, total) = s.snapshot_chunks;
    if total > 0 {
        line.push_str(&format!(" · snapshot {done}/{total} chunks"));
    }
    line.push_str(&format!(" · lag {:.1} s", s.lag_seconds));
    if let Some(b) = s.lag_bytes {
        line.push_str(&format!(", {}", HumanBytes(b)));
    }
    line.push_str(&format!(
        " · spill {} · queue {}",
        HumanBytes(s.spill_bytes),
        HumanBytes(s.queue_bytes)
    ));
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn loopback_addresses_are_accepted() {
        for (v, want) in [
            ("127.0.0.1:9464", "127.0.0.1:9464"),
            ("127.1.2.3:1", "127.1.2.3:1"),
            ("[::1]:9464", "[::1]:9464"),
            ("[::ffff:127.0.0.1]:9464", "[::ffff:127.0.0.1]:9464"),
            ("localhost:9464", "127.0.0.1:9464"),
            (" 9464 ", "127.0.0.1:9464"),
        ] {
            let a = check_address(v, "--metrics-addr", false)
                .unwrap_or_else(|e| panic!("{v} must be accepted: {e}"));
            assert_eq!(a.to_string(), want);
        }
    }

    #[test]
    fn other_addresses_are_refused_unless_allowed() {
        for v in [
            "0.0.0.0:9464",
            "[::]:9464",
            "10.1.2.3:9464",
            "[2001:db8::1]:80",
        ] {
            let e = check_address(v, "--metrics-addr", false).expect_err(v);
            let msg = e.to_string();
            assert!(
                matches!(e, ObserveError::NotLoopback { .. })
                    && msg.contains("no authentication")
                    && msg.contains("--metrics-allow-remote"),
                "{msg}"
            );
            assert!(
                check_address(v, "--metrics-addr", true).is_ok(),
                "{v} allowed"
            );
        }
    }

    #[test]
    fn malformed_addresses_are_reported_with_their_origin() {
        for v in [
            "",
            "127.0.0.1",
            "example.com:80",
            "127.0.0.1:99999",
            "localhost",
        ] {
            let e = check_address(v, "p.yaml:9:3: pipeline.cdcflow.metrics.address", false)
                .expect_err(v);
            assert!(matches!(e, ObserveError::BadAddress { .. }), "{v}: {e}");
            assert!(e.to_string().starts_with("p.yaml:9:3: "), "{e}");
        }
    }

    #[test]
    fn the_flag_wins_over_the_pipeline_option() {
        let yaml = "source:\n  type: mysql\nsink:\n  type: doris\npipeline:\n  cdcflow.metrics.address: 0.0.0.0:1\n";
        let def = cdcflow_engine::config::load_str_with_env(yaml, "p.yaml", &|_: &str| None)
            .expect("loads");
        let e = metrics_address(None, &def, false).expect_err("pipeline option is checked");
        assert!(e.to_string().starts_with("p.yaml:6:28: "), "{e}");
        assert_eq!(
            metrics_address(Some("127.0.0.1:9"), &def, false).expect("flag"),
            Some("127.0.0.1:9".parse().expect("addr"))
        );
        assert_eq!(metrics_address(Some(""), &def, false).expect("off"), None);
    }

    #[test]
    fn rates_are_averaged_over_the_window() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        assert_eq!(w.push(t0, 0, 0), (0.0, 0.0));
        let (i, o) = w.push(t0 + Duration::from_secs(2), 2_000, 1_000);
        assert!(
            (i - 1_000.0).abs() < 1e-6 && (o - 500.0).abs() < 1e-6,
            "{i} {o}"
        );
        // Samples older than the window drop out: only the last 5 s count.
        w.push(t0 + Duration::from_secs(8), 2_000, 1_000);
        let (i, _) = w.push(t0 + Duration::from_secs(10), 4_000, 1_000);
        assert!((i - 1_000.0).abs() < 1e-6, "{i}");
    }

    #[test]
    fn status_line_shows_what_is_known() {
        let s = Snapshot {
            rows_in: 12_000,
            rows_out: 11_500,
            lag_seconds: 0.42,
            lag_bytes: Some(12 * 1024),
            spill_bytes: 0,
            queue_bytes: 3 << 19,
            snapshot_chunks: (3, 8),
        };
        assert_eq!(
            status_line(&s, 2_400.4, 2_300.0),
            "rows in 12,000 (2,400/s) · out 11,500 (2,300/s) · snapshot 3/8 chunks · lag 0.4 s, 12.00 KiB · spill 0 B · queue 1.50 MiB"
        );
        let quiet = status_line(&Snapshot::default(), 0.0, 0.0);
        assert!(
            !quiet.contains("snapshot") && !quiet.contains("lag 0.0 s,"),
            "{quiet}"
        );
    }

    async fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn endpoint_serves_metrics_health_and_nothing_else() {
        let m: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        m.rows_out(&cdcflow_engine::TableId::new("d", "t"), 3);
        let server = MetricsServer::bind("127.0.0.1:0".parse().expect("addr"), m)
            .await
            .expect("bind");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);

        let r = get(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{r}"
        );
        assert!(r.contains("\r\n\r\n# HELP cdcflow_build_info "), "{r}");
        assert!(
            r.contains("cdcflow_rows_out_total{table=\"d.t\"} 3\n"),
            "{r}"
        );

        let r = get(
            addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\nok\n"),
            "{r}"
        );
        let r = get(
            addr,
            "HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = get(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            r.starts_with("HTTP/1.1 405 ") && r.to_ascii_lowercase().contains("allow: get, head"),
            "{r}"
        );
        let r = get(
            addr,
            "GET /../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 404 "), "{r}");

        drop(server);
        // The listener closes with the server (give the aborted task a moment to drop it).
        let mut refused = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(addr).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(refused, "the endpoint must stop listening when dropped");
    }

    #[tokio::test]
    async fn a_busy_port_is_a_bind_error_naming_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = MetricsServer::bind(addr, Metrics::global())
            .await
            .expect_err("port in use");
        assert!(
            matches!(e, ObserveError::Bind { .. }) && e.to_string().contains(&addr.to_string()),
            "{e}"
        );
    }
}
