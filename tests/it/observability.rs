//! Watching a real run from outside: the `cdcflow` binary against a throwaway MariaDB and the
//! Doris emulator, with `--metrics-addr`, scraped over HTTP. Checks the metric families and the
//! row counter, that no password reaches any log line (human and JSON, debug and trace), the
//! metrics text or `cdcflow validate`, and that a non-loopback address is refused.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cdcflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdcflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    // The tests choose every metrics setting themselves.
    c.env_remove("CDCFLOW_METRICS_ADDR")
        .env_remove("CDCFLOW_METRICS_ALLOW_REMOTE")
        .env_remove("CDCFLOW_LOG_FORMAT");
    c
}

/// A password no other text in the run can contain by accident.
fn secret(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("S3cr3t-Pa55-{tag}-{:x}{nanos:08x}", std::process::id())
}

/// Standard base64, to look for the HTTP Basic credentials as they travel.
fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `GET path` over HTTP/1.1; returns (status line, headers and body as text).
async fn http_get(addr: SocketAddr, path: &str) -> Option<(String, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    let status = out.lines().next()?.to_string();
    Some((status, out))
}

/// The value of the sample line `name_and_labels value`.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

const PIPELINE: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: cdc_obs
  password: "@MYSQL_PASSWORD@"
  tables: obs.t
  server-id: ${SERVER_ID}
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ${DORIS_PASSWORD}
pipeline:
  name: observability
  parallelism: 1
  cdcflow.checkpoint.interval: 1s
"#;

const FAMILIES: &[&str] = &[
    "cdcflow_build_info",
    "cdcflow_rows_in_total",
    "cdcflow_rows_out_total",
    "cdcflow_batch_rows",
    "cdcflow_lag_seconds",
    "cdcflow_lag_bytes",
    "cdcflow_spill_bytes",
    "cdcflow_spill_segments",
    "cdcflow_spilled_bytes_total",
    "cdcflow_queue_bytes",
    "cdcflow_load_seconds",
    "cdcflow_loaded_rows_total",
    "cdcflow_loaded_bytes_total",
    "cdcflow_load_failures_total",
    "cdcflow_retries_total",
    "cdcflow_checkpoints_total",
    "cdcflow_checkpoint_seconds",
    "cdcflow_snapshot_chunks_done",
    "cdcflow_snapshot_chunks_total",
];

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Kills the child if the test panics before stopping it.
struct Reap(Option<Child>);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Secrets {
    mysql: String,
    doris: String,
}

impl Secrets {
    /// Every form a password could leak in: as written, and inside HTTP Basic credentials.
    fn forms(&self) -> Vec<String> {
        vec![
            self.mysql.clone(),
            self.doris.clone(),
            base64(format!("root:{}", self.doris).as_bytes()),
        ]
    }

    fn assert_absent(&self, what: &str, text: &str) {
        for s in self.forms() {
            if let Some(line) = text.lines().find(|l| l.contains(&s)) {
                panic!("{what} leaks a password (`{s}`) in: {line}");
            }
        }
    }
}

/// One run of the binary until 100 rows are in a fresh emulator, scraped, then SIGTERM.
/// Returns (log text, metrics text).
async fn run_and_scrape(
    db: &MariaDb,
    secrets: &Secrets,
    dir: &Path,
    format: &str,
    log_level: &str,
    server_id: u32,
) -> (String, String) {
    let emulator = Emulator::start(EmulatorConfig::doris().with_user("root", &secrets.doris))
        .await
        .expect("emulator");
    let file = dir.join("p.yaml");
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let stdout = dir.join(format!("{format}.stdout"));
    let stderr = dir.join(format!("{format}.stderr"));
    let child = cdcflow()
        .args([
            "--log-format",
            format,
            "run",
            file.to_str().expect("utf-8 path"),
            "--from-scratch",
            "--checkpoint-dir",
        ])
        .arg(dir.join(format!("ckpt-{format}")))
        .args(["--metrics-addr", &addr.to_string()])
        .env("PORT", db.port().to_string())
        .env("FE", emulator.fe_addr().to_string())
        .env("DORIS_PASSWORD", &secrets.doris)
        .env("SERVER_ID", server_id.to_string())
        .env("CDCFLOW_LOG", log_level)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("spawn cdcflow");
    let mut child = Reap(Some(child));
    let log = || {
        format!(
            "{}{}",
            std::fs::read_to_string(&stdout).unwrap_or_default(),
            std::fs::read_to_string(&stderr).unwrap_or_default()
        )
    };

    // The rows arrive in the sink, and the endpoint counts them.
    let deadline = Instant::now() + Duration::from_secs(45);
    let metrics = loop {
        if let Some(c) = child.0.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("cdcflow exited early ({status}); log:\n{}", log());
        }
        let rows = emulator.rows("obs", "t").map(|r| r.len()).unwrap_or(0);
        if rows == 100
            && let Some((status, text)) = http_get(addr, "/metrics").await
        {
            assert!(status.starts_with("HTTP/1.1 200"), "{status}");
            // Recorded by the engine and the sink around the load; they can trail the emulator
            // by a moment.
            let counted = |name: &str| {
                sample(&text, &format!("{name}{{table=\"obs.t\"}}")).unwrap_or(0.0) >= 100.0
            };
            if counted("cdcflow_rows_out_total") && counted("cdcflow_loaded_rows_total") {
                break text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no 100 rows counted in time (sink has {rows}); log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (status, health) = http_get(addr, "/healthz").await.expect("healthz answers");
    assert!(
        status.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
        "{health}"
    );

    let c = child.0.take().expect("child");
    sigterm(&c);
    let out = c.wait_with_output().expect("wait");
    let log = log();
    assert_eq!(out.status.code(), Some(0), "graceful stop; log:\n{log}");
    assert!(
        log.contains("Serving Prometheus metrics") && log.contains(&addr.to_string()),
        "the bound address is logged; log:\n{log}"
    );
    (log, metrics)
}

fn check_metrics_text(secrets: &Secrets, text: &str) {
    for f in FAMILIES {
        assert!(
            text.contains(&format!("\n# TYPE {f} ")) || text.starts_with(&format!("# TYPE {f} ")),
            "family {f} missing from /metrics:\n{text}"
        );
    }
    assert!(
        sample(text, "cdcflow_rows_in_total{table=\"obs.t\"}").unwrap_or(0.0) >= 100.0,
        "rows in counted:\n{text}"
    );
    secrets.assert_absent("/metrics", text);
}

/// Real run, both log formats, debug and trace: metrics served and counted, no password leaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_and_no_password_leaks() {
    let secrets = Secrets {
        mysql: secret("my"),
        doris: secret("doris"),
    };
    let db = MariaDb::start().await.expect("MariaDB");
    db.exec(&format!(
        "CREATE DATABASE obs; CREATE TABLE obs.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO obs.t SELECT seq, CONCAT('v', seq) FROM obs.seq_1_to_100;
         CREATE USER cdc_obs@'127.0.0.1' IDENTIFIED BY '{}';
         GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO cdc_obs@'127.0.0.1';",
        secrets.mysql
    ))
    .await
    .expect("seed");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, PIPELINE.replace("@MYSQL_PASSWORD@", &secrets.mysql)).expect("yaml");

    // `validate` prints the resolved plan: no password there either.
    let out: Output = cdcflow()
        .args(["validate", file.to_str().expect("utf-8 path")])
        .env("PORT", db.port().to_string())
        .env("FE", "127.0.0.1:1")
        .env("DORIS_PASSWORD", &secrets.doris)
        .env("SERVER_ID", "5700")
        .env("CDCFLOW_LOG", "trace")
        .output()
        .expect("validate runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    secrets.assert_absent("`cdcflow validate`", &text);

    for (format, level, server_id) in [("human", "debug", 5701), ("json", "trace", 5702)] {
        let (log, metrics) =
            run_and_scrape(&db, &secrets, dir.path(), format, level, server_id).await;
        assert!(
            log.lines().count() > 5,
            "{format}/{level}: expected a real log to search:\n{log}"
        );
        if format == "json" {
            let first = log.lines().find(|l| l.starts_with('{'));
            assert!(first.is_some(), "JSON log lines expected:\n{log}");
        }
        secrets.assert_absent(&format!("the {format} log at {level}"), &log);
        check_metrics_text(&secrets, &metrics);
    }
}

/// A non-loopback address is refused before anything connects, from each place it can be set.
#[test]
fn a_non_loopback_metrics_address_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Valid, but nothing listens on port 1: a run that got past the check would fail with 1.
    let yaml = |extra: &str| {
        format!(
            "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: 1\n  username: u\n  password: p\n  tables: a.b\n  server-id: 5710\nsink:\n  type: doris\n  fenodes: 127.0.0.1:1\n  username: root\n  password: \"\"\npipeline:\n  name: refuse\n{extra}"
        )
    };
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, yaml("")).expect("yaml");
    let with_option = dir.path().join("option.yaml");
    std::fs::write(
        &with_option,
        yaml("  cdcflow.metrics.address: \"[::]:9464\"\n"),
    )
    .expect("yaml");
    let ckpt = dir.path().join("ckpt");

    let cases: [(&str, &Path, Option<&str>, Option<&str>); 4] = [
        ("flag", &plain, Some("0.0.0.0:9464"), None),
        ("env", &plain, None, Some("192.0.2.1:9464")),
        ("pipeline option", &with_option, None, None),
        ("malformed flag", &plain, Some("metrics.example:9464"), None),
    ];
    for (what, file, flag, env) in cases {
        let mut c = cdcflow();
        c.args([
            "run",
            file.to_str().expect("utf-8 path"),
            "--checkpoint-dir",
        ])
        .arg(&ckpt);
        if let Some(f) = flag {
            c.args(["--metrics-addr", f]);
        }
        if let Some(e) = env {
            c.env("CDCFLOW_METRICS_ADDR", e);
        }
        let out = c.output().expect("cdcflow runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        if what == "malformed flag" {
            assert!(
                stderr.contains("is not an address with a port"),
                "{what}: {stderr}"
            );
        } else {
            assert!(
                stderr.contains("not a loopback address")
                    && stderr.contains("no authentication")
                    && stderr.contains("--metrics-allow-remote"),
                "{what}: the refusal says why and how to override: {stderr}"
            );
        }
        if what == "pipeline option" {
            assert!(
                stderr.contains("option.yaml:16:28: pipeline.cdcflow.metrics.address"),
                "{what}: points at the file position: {stderr}"
            );
        }
        assert!(
            !stderr.contains("Serving Prometheus metrics"),
            "{what}: nothing was bound: {stderr}"
        );
    }
}
