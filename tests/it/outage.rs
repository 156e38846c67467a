//! Outages with the real binary: the sink (emulator) down for a minute while the source keeps
//! changing — batches spill to disk and drain once it is back — and MariaDB restarted mid-stream —
//! the source reconnects and resumes. Both end with the sink equal to the source, row by row, and
//! a graceful SIGTERM (exit 0).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cdcflow_testkit::compare::compare_table;
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;

const PIPELINE: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: shop.\.*
  server-id: 5701
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
  sink.max-retries: 1
pipeline:
  name: outage
  parallelism: 1
  cdcflow.checkpoint.interval: 1s
  cdcflow.memory.budget: 32mb
"#;

const SCHEMA: &str = "CREATE DATABASE shop; USE shop;
     CREATE TABLE shop.orders (id BIGINT PRIMARY KEY, customer VARCHAR(64) NOT NULL,
        amount DECIMAL(12,2), note TEXT, at DATETIME(6));
     INSERT INTO shop.orders SELECT seq, CONCAT('customer-', seq % 977), seq * 1.25,
        REPEAT('x', seq % 50), '2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_20000;";

struct Job {
    child: Child,
    log: PathBuf,
    ckpt: PathBuf,
}

impl Job {
    fn start(dir: &Path, db: &MariaDb, emulator: &Emulator) -> Job {
        let file = dir.join("p.yaml");
        std::fs::write(&file, PIPELINE).unwrap();
        let ckpt = dir.join("ckpt");
        let log = dir.join("run.log");
        let child = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .args(["run", file.to_str().unwrap(), "--checkpoint-dir"])
            .arg(&ckpt)
            .env("PORT", db.port().to_string())
            .env("FE", emulator.fe_addr().to_string())
            .env("CDCFLOW_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn cdcflow");
        Job { child, log, ckpt }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("cdcflow exited early ({status}); log:\n{}", self.log());
        }
    }

    fn spill_files(&self) -> usize {
        std::fs::read_dir(self.ckpt.join("spill"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn stop(mut self) -> String {
        let ok = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(ok.success());
        let status = self.child.wait().unwrap();
        let log = self.log();
        assert_eq!(status.code(), Some(0), "graceful stop exits 0; log:\n{log}");
        log
    }
}

async fn wait_equal(db: &MariaDb, emulator: &Emulator, job: &mut Job, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        job.assert_running();
        let c = compare_table(db, "shop", "orders", emulator, "shop", "orders", &["id"])
            .await
            .expect("compare");
        if c.is_equal() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sink differs after {timeout:?}: {c}\nlog:\n{}",
            job.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Inserts `n` rows after `from` in multi-row statements of 1,000 and updates every 7th of them.
async fn write_batch(db: &MariaDb, from: u64, n: u64) {
    for start in (from..from + n).step_by(1000) {
        let end = (start + 1000).min(from + n);
        db.exec(&format!(
            "INSERT INTO shop.orders SELECT seq, CONCAT('late-', seq % 131), seq * 0.5, REPEAT('y', seq % 200),
                '2026-02-01 00:00:00.123456' + INTERVAL seq SECOND FROM shop.seq_{}_to_{};
             UPDATE shop.orders SET amount = amount + 1 WHERE id BETWEEN {} AND {} AND id % 7 = 0;",
            start + 1,
            end,
            start + 1,
            end
        ))
        .await
        .expect("write");
    }
}

/// MariaDB with the seeded table, the emulator and a running job whose snapshot has arrived.
async fn start_synced() -> (MariaDb, Emulator, tempfile::TempDir, Job) {
    let db = MariaDb::start().await.expect("MariaDB");
    db.exec(SCHEMA).await.expect("seed");
    let emulator = Emulator::start(EmulatorConfig::doris())
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().unwrap();
    let mut job = Job::start(dir.path(), &db, &emulator);
    wait_equal(&db, &emulator, &mut job, Duration::from_secs(90)).await;
    (db, emulator, dir, job)
}

fn outage_secs() -> u64 {
    std::env::var("CDCFLOW_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// The sink is unreachable for a minute (`CDCFLOW_OUTAGE_SECS`) while 150,000 rows change: the
/// pipeline keeps reading, spills to Parquet instead of growing in memory, rebuilds the sink
/// when it is back, drains in order, and deletes the spill files once acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_down_for_a_minute_spills_then_drains() {
    let (db, emulator, _dir, mut job) = start_synced().await;

    let t0 = Instant::now();
    emulator.set_down(true);
    write_batch(&db, 20_000, 150_000).await;
    let mut spilled = 0;
    while t0.elapsed() < Duration::from_secs(outage_secs()) {
        job.assert_running();
        spilled = spilled.max(job.spill_files());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        spilled > 0,
        "150,000 changed rows over a 32 MiB budget must spill while the sink is down; log:\n{}",
        job.log()
    );
    emulator.set_down(false);
    let back = Instant::now();
    wait_equal(&db, &emulator, &mut job, Duration::from_secs(120)).await;
    let drained_in = back.elapsed();
    // The files go with the next checkpoint after the rows were acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while job.spill_files() > 0 {
        assert!(
            Instant::now() < deadline,
            "spill files left after the drain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = job.stop();
    println!(
        "outage {}s: at most {spilled} spill files; drained {drained_in:?} after the sink came back",
        outage_secs()
    );
    assert!(
        log.contains("rebuilding it from the last checkpoint"),
        "the sink was rebuilt after the outage: {log}"
    );
}

/// MariaDB is restarted twice while rows keep changing: the binlog reader reconnects and
/// resumes where it was, so nothing is lost or applied twice, and the process never exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restart_mid_stream_reconnects_and_resumes() {
    let (db, emulator, _dir, mut job) = start_synced().await;

    let mut next = 20_000;
    for round in 0..2 {
        write_batch(&db, next, 5_000).await;
        next += 5_000;
        db.restart().await.expect("restart MariaDB");
        job.assert_running();
        write_batch(&db, next, 5_000).await;
        next += 5_000;
        db.exec(&format!(
            "DELETE FROM shop.orders WHERE id % 11 = {round}; UPDATE shop.orders SET note = 'after restart' WHERE id % 13 = 0"
        ))
        .await
        .unwrap();
        wait_equal(&db, &emulator, &mut job, Duration::from_secs(90)).await;
    }
    let log = job.stop();
    assert!(
        log.to_lowercase().contains("reconnect"),
        "the source logged its reconnect: {log}"
    );
}
