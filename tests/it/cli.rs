//! The `cdcflow` binary as a user runs it: exit codes, messages, and a real run that is stopped
//! with SIGTERM and resumed from its checkpoint.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;

fn cdcflow() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cdcflow"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn run(args: &[&str]) -> Output {
    cdcflow().args(args).output().expect("cdcflow runs")
}

#[test]
fn version_and_help() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let help = String::from_utf8_lossy(&run(&["--help"]).stdout).into_owned();
    for word in ["run", "validate"] {
        assert!(help.contains(word), "--help lists `{word}`: {help}");
    }
}

#[test]
fn validate_accepts_a_flink_example_and_redacts_the_password() {
    let out = run(&[
        "validate",
        "tests/fixtures/flink-examples/e01-mysql-to-doris.yaml",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("valid"), "{stdout}");
    assert!(
        stdout.contains("source: mysql") && stdout.contains("sink: doris"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("123456"),
        "the source password must not be printed: {stdout}"
    );
}

#[test]
fn validate_rejects_a_bad_file_with_exit_code_2_and_line_column() {
    let out = run(&["validate", "tests/fixtures/bad/misspelt-option.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("misspelt-option.yaml:3:3: source.hostnme: unknown option `hostnme` for source `mysql` (hint: did you mean `hostname`?)"),
        "{stderr}"
    );
}

#[test]
fn run_with_an_invalid_file_exits_2_without_connecting() {
    let out = run(&["run", "tests/fixtures/bad/bad-port.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PIPELINE: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: cdc
  password: ${MYSQL_PASSWORD}
  tables: demo.t
  server-id: 5600
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
pipeline:
  name: cli-resume
  parallelism: 1
  cdcflow.checkpoint.interval: 1s
"#;

async fn wait_for_rows(emulator: &Emulator, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = emulator.rows("demo", "t").map(|r| r.len()).unwrap_or(0);
        if got == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} rows in the sink, have {got}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

/// SIGTERM drains and checkpoints (exit 0); a second run resumes from the binlog offset in the
/// checkpoint instead of re-reading the table, and picks up changes made while it was down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_checkpoints_and_the_next_run_resumes() {
    let db = MariaDb::start().await.expect("MariaDB");
    db.exec(
        "CREATE DATABASE demo; CREATE TABLE demo.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO demo.t SELECT seq, CONCAT('v', seq) FROM demo.seq_1_to_100;
         CREATE USER cdc@'127.0.0.1' IDENTIFIED BY 's3cret-pw';
         GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO cdc@'127.0.0.1';",
    )
    .await
    .expect("seed");
    let emulator = Emulator::start(EmulatorConfig::doris())
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.yaml");
    std::fs::write(&file, PIPELINE).unwrap();
    let ckpt = dir.path().join("ckpt");
    let spawn = |log: &Path| {
        cdcflow()
            .args([
                "run",
                file.to_str().unwrap(),
                "--checkpoint-dir",
                ckpt.to_str().unwrap(),
            ])
            .env("PORT", db.port().to_string())
            .env("MYSQL_PASSWORD", "s3cret-pw")
            .env("FE", emulator.fe_addr().to_string())
            .env("CDCFLOW_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("spawn cdcflow")
    };

    let log1 = dir.path().join("run1.log");
    let mut first = spawn(&log1);
    wait_for_rows(&emulator, 100).await;
    db.exec("INSERT INTO demo.t VALUES (101, 'live')")
        .await
        .unwrap();
    wait_for_rows(&emulator, 101).await;
    sigterm(&first);
    let status = first.wait().unwrap();
    let log = std::fs::read_to_string(&log1).unwrap();
    assert_eq!(status.code(), Some(0), "graceful stop exits 0; log:\n{log}");
    assert!(
        !log.contains("s3cret-pw"),
        "the password must never be logged"
    );
    assert!(
        ckpt.join("checkpoint.json").exists(),
        "a checkpoint was written"
    );

    // Changes while cdcflow is down must arrive after the restart, without a new snapshot.
    db.exec("UPDATE demo.t SET v = 'changed' WHERE id <= 10; DELETE FROM demo.t WHERE id = 50; INSERT INTO demo.t VALUES (102, 'offline')")
        .await
        .unwrap();
    let loads_before = emulator.counters();
    let log2 = dir.path().join("run2.log");
    let mut second = spawn(&log2);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = cdcflow_testkit::compare::compare_table(
            &db,
            "demo",
            "t",
            &emulator,
            "demo",
            "t",
            &["id"],
        )
        .await
        .unwrap();
        if c.is_equal() {
            break;
        }
        assert!(Instant::now() < deadline, "sink differs after restart: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    sigterm(&second);
    assert_eq!(second.wait().unwrap().code(), Some(0));
    let log = std::fs::read_to_string(&log2).unwrap();
    assert!(
        log.contains("Resuming from checkpoint"),
        "second run resumed: {log}"
    );
    assert!(
        !log.contains("Snapshot of table finished"),
        "no second snapshot after resume: {log}"
    );
    let _ = loads_before;
}
