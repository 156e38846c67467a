//! Crash safety of the real `cdcflow` binary: SIGKILL at random points, restart, and the sink
//! still equals the source exactly.
//!
//! ```text
//!  MariaDB (2 PK tables + 1 table without a key) ◀── workload task: multi-statement transactions
//!     │                                                (inserts, updates, upserts, deletes;
//!     ▼                                                 inserts only on the keyless table)
//!  cdcflow run (child process) ── Doris 2PC ──▶ Stream Load emulator (in this process)
//!     ▲   └── SIGKILL after a random 0.15–3 s (or 50–300 ms) ── restart from --checkpoint-dir
//!     └── final run: wait until every table compares equal, then SIGTERM ⇒ exit 0
//! ```
//!
//! What must hold after any sequence of kills (the README's crash-safety promise):
//! - primary-key tables (Doris UNIQUE KEY, upserts, delete sign, labels): every source row is in
//!   the sink with the same values, and nothing else;
//! - the keyless table (Doris DUPLICATE KEY, insert-only): every source row exactly once — a
//!   multiset equality, checked through a column that is unique by construction but not
//!   declared as a key. Exactly-once here rests on 2PC: a precommitted load becomes visible
//!   only with the checkpoint that covers it.
//!
//! The kill points come from a seeded generator; the seed is printed and can be fixed with
//! `CDCFLOW_CRASH_SEED=<n>`. `CDCFLOW_CRASH_LOG=<filter>` sets the child's log filter, and
//! `CDCFLOW_CRASH_KEEP=1` keeps the run directory (logs, pipeline file, checkpoints), as a
//! failure does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cdcflow_testkit::compare::compare_table;
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;
use mysql_async::prelude::Queryable;

/// The two crash tests each start a MariaDB, a workload and the binary: on a 2-core machine they
/// run one after the other so neither starves the other into timeouts.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Whether the workload moves rows to a new primary key (`UPDATE … SET id = …`): the sink must
/// delete the old key (the `-U` of a key-changing update becomes a delete).
const KEY_MOVES: bool = true;

/// Share of updates and deletes that go to the first [`HOT_KEYS`] keys, so the same rows change
/// several times within a second and across checkpoints and restarts.
const HOT_PERCENT: u64 = 50;
const HOT_KEYS: u64 = 300;

/// A small deterministic generator (SplitMix64): the kill points and the workload's choices are
/// reproducible from the printed seed without another dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A key in `1..end`, often a hot one.
    fn key(&mut self, end: u64) -> u64 {
        if self.chance(HOT_PERCENT) {
            self.range(1, HOT_KEYS.min(end - 1))
        } else {
            self.range(1, end - 1)
        }
    }
}

fn seed(test: &str) -> u64 {
    let seed = std::env::var("CDCFLOW_CRASH_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(42)
        });
    println!("[{test}] seed {seed} (rerun with CDCFLOW_CRASH_SEED={seed})");
    seed
}

// ---------------------------------------------------------------------------------------------
// Source schema and workload
// ---------------------------------------------------------------------------------------------

/// Sizes of the initial data (rows before the pipeline starts).
#[derive(Debug, Clone, Copy)]
struct Sizes {
    accounts: u64,
    events: u64,
    audit: u64,
}

fn schema_sql(s: Sizes) -> String {
    format!(
        r#"
CREATE DATABASE crash;
USE crash;
CREATE TABLE accounts (
  id BIGINT NOT NULL PRIMARY KEY,
  tenant INT NOT NULL,
  balance DECIMAL(18, 4) NULL,
  name VARCHAR(64) NOT NULL,
  note TEXT NULL,
  created DATETIME(6) NOT NULL,
  touched DATETIME(6) NULL,
  score DOUBLE NULL,
  active BOOLEAN NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO accounts
  SELECT seq, seq % 97, IF(seq % 11 = 0, NULL, (seq * 7919 % 10000000) / 10000),
         CONCAT('acct ', seq, ELT(1 + seq % 4, '', ' ünïcødé', ' 账户', ' 😀')),
         IF(seq % 3 = 0, NULL, REPEAT('n', seq % 40)),
         TIMESTAMP('2024-01-01 00:00:00.000001') + INTERVAL seq SECOND,
         IF(seq % 5 = 0, NULL, TIMESTAMP('2024-06-01 12:00:00.5') + INTERVAL seq MINUTE),
         IF(seq % 13 = 0, NULL, seq / 8),
         IF(seq % 7 = 0, NULL, seq % 2)
  FROM seq_1_to_{accounts};
CREATE TABLE events (
  n BIGINT NOT NULL,
  shard SMALLINT NOT NULL,
  kind VARCHAR(16) NOT NULL,
  payload JSON NULL,
  data BLOB NULL,
  amount DECIMAL(12, 2) NULL,
  at DATETIME(6) NULL,
  PRIMARY KEY (n, shard)
) DEFAULT CHARSET = utf8mb4;
INSERT INTO events
  SELECT seq, seq % 8, ELT(1 + seq % 3, 'click', 'view', 'buy'),
         IF(seq % 6 = 0, NULL, JSON_OBJECT('n', seq, 'tag', CONCAT('t', seq % 10), 'ü', seq % 2 = 0)),
         IF(seq % 4 = 0, NULL, UNHEX(CONCAT(LPAD(HEX(seq % 256), 2, '0'), '0001FF', HEX(seq)))),
         IF(seq % 9 = 0, NULL, (seq % 100000) / 100),
         TIMESTAMP('2025-03-01 08:00:00.123456') + INTERVAL seq SECOND
  FROM seq_1_to_{events};
CREATE TABLE audit_log (
  uid BIGINT NOT NULL,
  src VARCHAR(16) NOT NULL,
  msg VARCHAR(200) NULL,
  at DATETIME(6) NOT NULL,
  amount DECIMAL(10, 2) NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO audit_log
  SELECT seq, 'seed', CONCAT('seeded row ', seq, IF(seq % 2 = 0, ' — ok ✓', '')),
         TIMESTAMP('2025-01-01 00:00:00.000007') + INTERVAL seq SECOND,
         IF(seq % 5 = 0, NULL, seq / 100)
  FROM seq_1_to_{audit};
"#,
        accounts = s.accounts,
        events = s.events,
        audit = s.audit,
    )
}

/// `(source table, key columns)`; sink tables have the same names.
const PK_TABLES: &[(&str, &[&str])] = &[("accounts", &["id"]), ("events", &["n", "shard"])];
/// The keyless table and the column that is unique by construction (not declared).
const KEYLESS: (&str, &str) = ("audit_log", "uid");

/// What the workload did, for the report.
#[derive(Debug, Default, Clone, Copy)]
struct WorkStats {
    txns: u64,
    inserts: u64,
    updates: u64,
    key_moves: u64,
    deletes: u64,
    keyless_inserts: u64,
}

const NAMES: &[&str] = &["plain", "ünïcødé", "账户", "emoji 😀", "mixed Ω≈ç", ""];

fn account_values(rng: &mut Rng, id: u64) -> String {
    let balance = if rng.chance(10) {
        "NULL".to_string()
    } else {
        format!("{}.{:04}", rng.range(0, 99_999_999), rng.range(0, 9999))
    };
    let note = if rng.chance(30) {
        "NULL".to_string()
    } else {
        format!("'note {}'", rng.range(0, 1_000_000))
    };
    let touched = if rng.chance(20) { "NULL" } else { "NOW(6)" };
    let active = if rng.chance(10) {
        "NULL".to_string()
    } else {
        rng.range(0, 1).to_string()
    };
    format!(
        "({id}, {}, {balance}, 'live {id} {}', {note}, NOW(6), {touched}, {}.5, {active})",
        rng.range(0, 96),
        NAMES[rng.range(0, NAMES.len() as u64 - 1) as usize],
        rng.range(0, 100_000),
    )
}

fn event_values(rng: &mut Rng, n: u64) -> String {
    let payload = if rng.chance(15) {
        "NULL".to_string()
    } else {
        format!(
            "JSON_OBJECT('n', {n}, 'live', true, 'w', '{}')",
            NAMES[rng.range(0, NAMES.len() as u64 - 1) as usize]
        )
    };
    let data = if rng.chance(20) {
        "NULL".to_string()
    } else {
        format!("X'{:016x}00010a0d'", rng.next_u64())
    };
    format!(
        "({n}, {}, '{}', {payload}, {data}, {}.{:02}, NOW(6))",
        rng.range(0, 7),
        ["click", "view", "buy"][rng.range(0, 2) as usize],
        rng.range(0, 9_999_999),
        rng.range(0, 99),
    )
}

/// Runs multi-statement transactions until `stop` is set: inserts, updates (including key
/// moves) and deletes on the primary-key tables, inserts on the keyless table.
async fn workload_on(
    opts: mysql_async::Opts,
    sizes: Sizes,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> WorkStats {
    let mut rng = Rng(seed ^ 0x005e_ed0f_0ad5);
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .expect("workload connects");
    let mut st = WorkStats::default();
    let (mut next_acc, mut next_ev, mut next_uid) =
        (sizes.accounts + 1, sizes.events + 1, sizes.audit + 1);
    while !stop.load(Ordering::SeqCst) {
        let mut sql = String::from("START TRANSACTION;\n");
        let inserts = rng.range(0, 3);
        if inserts > 0 {
            let rows: Vec<String> = (0..inserts)
                .map(|_| {
                    next_acc += 1;
                    account_values(&mut rng, next_acc - 1)
                })
                .collect();
            sql += &format!("INSERT INTO crash.accounts VALUES {};\n", rows.join(", "));
            st.inserts += inserts;
        }
        for _ in 0..rng.range(1, 4) {
            let id = rng.key(next_acc);
            let set = match rng.range(0, 3) {
                0 => "balance = balance + 1.2345, touched = NOW(6)".to_string(),
                1 => format!(
                    "name = 'renamed {} {}', note = NULL",
                    rng.range(0, 1000),
                    NAMES[rng.range(0, NAMES.len() as u64 - 1) as usize]
                ),
                2 => "active = NOT active, score = score * 2, balance = NULL".to_string(),
                _ => format!("note = 'n{}', tenant = tenant + 1", rng.next_u64() % 1000),
            };
            sql += &format!("UPDATE crash.accounts SET {set} WHERE id = {id};\n");
            st.updates += 1;
        }
        if KEY_MOVES && rng.chance(25) {
            let id = rng.range(1, next_acc - 1);
            sql += &format!("UPDATE crash.accounts SET id = {next_acc} WHERE id = {id};\n");
            next_acc += 1;
            st.key_moves += 1;
        }
        if rng.chance(40) {
            // Re-create (or overwrite) a hot row, so deleted hot keys come back.
            let id = rng.range(1, HOT_KEYS);
            sql += &format!(
                "INSERT INTO crash.accounts VALUES {} ON DUPLICATE KEY UPDATE name = VALUES(name), balance = VALUES(balance), touched = VALUES(touched);\n",
                account_values(&mut rng, id)
            );
            st.updates += 1;
        }
        if rng.chance(35) {
            let id = rng.key(next_acc);
            sql += &format!("DELETE FROM crash.accounts WHERE id = {id};\n");
            st.deletes += 1;
        }
        let evs = rng.range(0, 2);
        if evs > 0 {
            let rows: Vec<String> = (0..evs)
                .map(|_| {
                    next_ev += 1;
                    event_values(&mut rng, next_ev - 1)
                })
                .collect();
            sql += &format!("INSERT INTO crash.events VALUES {};\n", rows.join(", "));
            st.inserts += evs;
        }
        if rng.chance(60) {
            let n = rng.key(next_ev);
            sql += &format!(
                "UPDATE crash.events SET payload = JSON_OBJECT('upd', {}), amount = amount + 1, data = X'ff00{:08x}' WHERE n = {n};\n",
                rng.range(0, 1000),
                rng.next_u64() as u32
            );
            st.updates += 1;
        }
        if KEY_MOVES && rng.chance(10) {
            let n = rng.range(1, next_ev - 1);
            sql += &format!("UPDATE crash.events SET n = {next_ev} WHERE n = {n};\n");
            next_ev += 1;
            st.key_moves += 1;
        }
        if rng.chance(25) {
            let n = rng.key(next_ev);
            sql += &format!("DELETE FROM crash.events WHERE n = {n};\n");
            st.deletes += 1;
        }
        let audits = rng.range(1, 5);
        let rows: Vec<String> = (0..audits)
            .map(|_| {
                next_uid += 1;
                let amount = if rng.chance(20) {
                    "NULL".to_string()
                } else {
                    format!("{}.{:02}", rng.range(0, 99_999), rng.range(0, 99))
                };
                format!(
                    "({}, 'live', 'txn {} {}', NOW(6), {amount})",
                    next_uid - 1,
                    st.txns,
                    NAMES[rng.range(0, NAMES.len() as u64 - 1) as usize]
                )
            })
            .collect();
        sql += &format!("INSERT INTO crash.audit_log VALUES {};\n", rows.join(", "));
        st.keyless_inserts += audits;
        sql += "COMMIT;";
        conn.query_drop(sql).await.expect("workload transaction");
        st.txns += 1;
        tokio::time::sleep(Duration::from_millis(rng.range(5, 30))).await;
    }
    let _ = conn.disconnect().await;
    st
}

// ---------------------------------------------------------------------------------------------
// The binary, its pipeline file and checkpoints
// ---------------------------------------------------------------------------------------------

const PIPELINE: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: crash.\.*
  server-id: 5800-5803
  server-time-zone: UTC
  scan.incremental.snapshot.chunk.size: ${CHUNK}
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
  sink.enable.batch-mode: false
  sink.enable-2pc: true
  sink.label-prefix: crash
  table.create.properties.replication_num: 1
pipeline:
  name: crash-safety
  parallelism: 2
  local-time-zone: UTC
  cdcflow.checkpoint.interval: ${CKPT}
"#;

/// One source, one emulator, one checkpoint directory; spawns the binary as often as needed.
struct Harness {
    name: &'static str,
    db: MariaDb,
    emulator: Emulator,
    dir: tempfile::TempDir,
    file: PathBuf,
    ckpt: PathBuf,
    chunk: usize,
    interval: &'static str,
    runs: usize,
}

/// Phase of the last durable checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    None,
    Snapshot,
    Binlog,
}

impl Harness {
    async fn start(name: &'static str, sizes: Sizes, chunk: usize, interval: &'static str) -> Self {
        let t = Instant::now();
        let db = MariaDb::start().await.expect("MariaDB");
        db.exec(&schema_sql(sizes)).await.expect("seed the source");
        let emulator = Emulator::start(EmulatorConfig::doris())
            .await
            .expect("emulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("pipeline.yaml");
        std::fs::write(&file, PIPELINE).expect("pipeline file");
        let ckpt = dir.path().join("checkpoints");
        println!(
            "[{name}] setup: MariaDB + {} seeded rows + emulator in {:.1?}",
            sizes.accounts + sizes.events + sizes.audit,
            t.elapsed()
        );
        Harness {
            name,
            db,
            emulator,
            dir,
            file,
            ckpt,
            chunk,
            interval,
            runs: 0,
        }
    }

    fn log_path(&self, run: usize) -> PathBuf {
        self.dir.path().join(format!("run{run:02}.log"))
    }

    /// Starts the binary once more with the same pipeline and checkpoint directory.
    fn spawn(&mut self) -> (Child, PathBuf) {
        self.runs += 1;
        let log = self.log_path(self.runs);
        let filter = std::env::var("CDCFLOW_CRASH_LOG").unwrap_or_else(|_| "info".into());
        let child = Command::new(env!("CARGO_BIN_EXE_cdcflow"))
            .current_dir(self.dir.path())
            .arg("run")
            .arg(&self.file)
            .arg("--checkpoint-dir")
            .arg(&self.ckpt)
            .env("PORT", self.db.port().to_string())
            .env("FE", self.emulator.fe_addr().to_string())
            .env("CHUNK", self.chunk.to_string())
            .env("CKPT", self.interval)
            .env("CDCFLOW_LOG", filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn cdcflow");
        (child, log)
    }

    /// Id and phase of the last durable checkpoint.
    fn checkpoint(&self) -> (u64, Phase) {
        let Ok(bytes) = std::fs::read(self.ckpt.join("checkpoint.json")) else {
            return (0, Phase::None);
        };
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "[{}] the checkpoint file must always be whole and valid JSON: {e}",
                self.name
            )
        });
        let id = v.get("id").and_then(|i| i.as_u64()).unwrap_or(0);
        let phase = match v.pointer("/offset/phase").and_then(|p| p.as_str()) {
            Some("snapshot") => Phase::Snapshot,
            _ if v.get("offset").is_some_and(|o| !o.is_null()) => Phase::Binlog,
            _ => Phase::None,
        };
        (id, phase)
    }

    /// Visible rows per sink table, for progress lines.
    fn sink_counts(&self) -> String {
        let mut out = Vec::new();
        for t in PK_TABLES.iter().map(|(t, _)| *t).chain([KEYLESS.0]) {
            let n = self.emulator.rows("crash", t).map(|r| r.len()).unwrap_or(0);
            out.push(format!("{t}={n}"));
        }
        out.join(" ")
    }

    /// Compares every table; `None` when all are exactly equal, else a readable report.
    async fn differences(&self) -> Option<String> {
        let t0 = Instant::now();
        let mut report = String::new();
        for (t, key) in PK_TABLES {
            let c = compare_table(&self.db, "crash", t, &self.emulator, "crash", t, key)
                .await
                .expect("compare");
            if !c.is_equal() {
                report += &format!("\ncrash.{t}: {c}");
            }
        }
        let (t, unique) = KEYLESS;
        let c = compare_table(&self.db, "crash", t, &self.emulator, "crash", t, &[unique])
            .await
            .expect("compare");
        if !c.is_equal() {
            report += &format!("\ncrash.{t} (rows matched on {unique}): {c}");
        }
        // `compare_table` matches rows by key, so a row the sink holds twice looks like one:
        // count every value of the unique column on the sink side.
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let sink_rows = self.emulator.rows("crash", t).unwrap_or_default();
        for r in &sink_rows {
            let k = r.get(unique).map(|v| v.to_string()).unwrap_or_default();
            *seen.entry(k).or_default() += 1;
        }
        let dups: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
        let source_rows: Vec<u64> = self
            .db
            .query(&format!("SELECT COUNT(*) FROM crash.{t}"))
            .await
            .expect("count");
        let source_rows = source_rows.first().copied().unwrap_or(0) as usize;
        if !dups.is_empty() || sink_rows.len() != source_rows {
            report += &format!(
                "\ncrash.{t} as a multiset: source {source_rows} rows, sink {} rows, {} {unique} values loaded more than once, e.g. {:?}",
                sink_rows.len(),
                dups.len(),
                dups.iter().take(10).collect::<Vec<_>>()
            );
        }
        if report.is_empty() {
            println!(
                "[{}] all tables equal (compared in {:.1?})",
                self.name,
                t0.elapsed()
            );
        }
        (!report.is_empty()).then_some(report)
    }

    /// Whether the last checkpoint's binlog offset has reached the end of the source's binlog
    /// (`None` when the offset is not a `{file, pos}` binlog offset).
    async fn caught_up(&self) -> Option<bool> {
        let bytes = std::fs::read(self.ckpt.join("checkpoint.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let file = v.pointer("/offset/file")?.as_str()?.to_string();
        let pos = v.pointer("/offset/pos")?.as_u64()?;
        let rows: Vec<mysql_async::Row> = self.db.query("SHOW MASTER STATUS").await.ok()?;
        let row = rows.first()?;
        let mfile: String = row.get(0)?;
        let mpos: u64 = row.get(1)?;
        Some(file > mfile || (file == mfile && pos >= mpos))
    }

    /// Waits until every table is exactly equal; panics with the differences and the log tail
    /// after `timeout` or when the child exits. Compares (slow on 100k rows) once the checkpoint
    /// has reached the end of the binlog, and every 8 s regardless.
    async fn wait_equal(&self, child: &mut Child, log: &Path, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut last_compare: Option<Instant> = None;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "[{}] cdcflow exited with {status} before the sink matched the source; log:\n{}",
                    self.name,
                    tail(log, 40)
                );
            }
            let due = self.caught_up().await != Some(false)
                || last_compare.is_none_or(|t| t.elapsed() > Duration::from_secs(8))
                || Instant::now() > deadline;
            if !due {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            last_compare = Some(Instant::now());
            let Some(diff) = self.differences().await else {
                return;
            };
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "[{}] the sink differs from the source {timeout:?} after the last restart (checkpoint {:?}):{diff}\nlog of the last run:\n{}",
                    self.name,
                    self.checkpoint(),
                    tail(log, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Fails when the child already exited on its own (it must only stop when killed).
    fn assert_alive(&self, child: &mut Child, log: &Path) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "[{}] cdcflow run {} exited with {status} on its own after a restart; log:\n{}",
                self.name,
                self.runs,
                tail(log, 40)
            );
        }
    }

    /// SIGKILLs the child and reaps it.
    fn kill(&self, child: &mut Child, log: &Path) {
        self.assert_alive(child, log);
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "killed by SIGKILL"
        );
    }

    /// SIGTERM, then the exit status: a graceful stop must drain, checkpoint and exit 0.
    fn terminate(&self, mut child: Child, log: &Path) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "[{}] cdcflow did not stop within 30 s of SIGTERM; log:\n{}",
                    self.name,
                    tail(log, 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(
            status.code(),
            Some(0),
            "[{}] SIGTERM must drain, checkpoint and exit 0; log:\n{}",
            self.name,
            tail(log, 40)
        );
    }

    /// No run may have panicked, whatever the kills did.
    fn assert_no_panics(&self) {
        for run in 1..=self.runs {
            let text = std::fs::read_to_string(self.log_path(run)).unwrap_or_default();
            assert!(
                !text.contains("panicked at"),
                "[{}] run {run} panicked:\n{}",
                self.name,
                tail(&self.log_path(run), 40)
            );
        }
    }
}

impl Drop for Harness {
    /// Keeps the run directory (logs, pipeline, checkpoints) when the test failed or
    /// `CDCFLOW_CRASH_KEEP` is set.
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("CDCFLOW_CRASH_KEEP").is_some() {
            self.dir.disable_cleanup(true);
            println!(
                "[{}] logs and checkpoints kept in {}",
                self.name,
                self.dir.path().display()
            );
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Polls `log` until it contains `needle`; false when the child exits or `timeout` passes.
async fn wait_for_log(child: &mut Child, log: &Path, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read_to_string(log).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// SIGKILL 10+ times at random points (0.3–3 s after each start) during the snapshot and the
/// binlog phase of a mixed workload; after a final run the sink equals the source exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_during_snapshot_and_binlog_loses_and_duplicates_nothing() {
    let _serial = SERIAL.lock().await;
    const NAME: &str = "crash-random";
    let started = Instant::now();
    let seed = seed(NAME);
    let mut rng = Rng(seed);
    let sizes = Sizes {
        accounts: 80_000,
        events: 30_000,
        audit: 10_000,
    };
    let mut h = Harness::start(NAME, sizes, 1_000, "500ms").await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        // The workload needs the server for as long as it runs; it connects by port.
        let opts = h.db.opts();
        let stop = stop.clone();
        async move { workload_on(opts, sizes, seed, stop).await }
    });

    // Kill loop: at least 10 kills, of which at least 3 after the binlog phase began (more
    // kills if the snapshot is slow), at most 16. A kill comes 0.3–3 s after the start (the first
    // three 0.15–1.2 s, to land inside the snapshot); after two
    // runs in a row without a new checkpoint, the next run's 0.3–3 s start at its first new
    // checkpoint instead, so the pipeline always moves on.
    let t = Instant::now();
    let (mut kills, mut in_snapshot, mut in_binlog, mut stalled) = (0, 0, 0, 0);
    let mut last_id = 0;
    while kills < 16 && (kills < 10 || in_binlog < 3) {
        let (mut child, log) = h.spawn();
        let mut from = "start";
        if stalled >= 2 {
            let deadline = Instant::now() + Duration::from_secs(30);
            while h.checkpoint().0 == last_id {
                h.assert_alive(&mut child, &log);
                assert!(
                    Instant::now() < deadline,
                    "[{NAME}] no checkpoint within 30 s of a restart; log:\n{}",
                    tail(&log, 40)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            from = "new checkpoint";
        }
        // The first kills come early so that some land inside the snapshot however fast it is.
        let wait = if kills < 3 {
            Duration::from_millis(rng.range(150, 1_200))
        } else {
            Duration::from_millis(rng.range(300, 3_000))
        };
        tokio::time::sleep(wait).await;
        h.kill(&mut child, &log);
        kills += 1;
        let (id, phase) = h.checkpoint();
        match phase {
            Phase::Binlog => in_binlog += 1,
            Phase::Snapshot | Phase::None => in_snapshot += 1,
        }
        stalled = if id == last_id { stalled + 1 } else { 0 };
        last_id = id;
        println!(
            "[{NAME}] kill {kills:2} {:>4} ms after the {from}: checkpoint {id:3} {phase:?}; sink {}",
            wait.as_millis(),
            h.sink_counts()
        );
    }
    println!(
        "[{NAME}] kill loop: {kills} kills ({in_snapshot} in the snapshot phase, {in_binlog} in the binlog phase) in {:.1?}",
        t.elapsed()
    );

    stop.store(true, Ordering::SeqCst);
    let stats = writer.await.expect("workload task");
    println!("[{NAME}] workload: {stats:?}");
    assert!(stats.txns > 50, "the workload ran: {stats:?}");
    assert!(
        in_snapshot >= 1 && in_binlog >= 1,
        "kills must land in both phases ({in_snapshot} snapshot, {in_binlog} binlog)"
    );

    let t = Instant::now();
    let (mut child, log) = h.spawn();
    h.wait_equal(&mut child, &log, Duration::from_secs(60))
        .await;
    println!(
        "[{NAME}] final run converged in {:.1?}: sink {}",
        t.elapsed(),
        h.sink_counts()
    );
    h.terminate(child, &log);
    h.assert_no_panics();
    println!("[{NAME}] total {:.1?}", started.elapsed());
}

/// In the binlog phase only, SIGKILL 15 times 50–300 ms after the binlog reader started, with a
/// 100 ms checkpoint interval, to land kills between precommit, checkpoint write and commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_sigkills_in_the_binlog_phase_keep_the_sink_exact() {
    let _serial = SERIAL.lock().await;
    const NAME: &str = "crash-rapid";
    let started = Instant::now();
    let seed = seed(NAME);
    let mut rng = Rng(seed);
    let sizes = Sizes {
        accounts: 3_000,
        events: 2_000,
        audit: 1_000,
    };
    let mut h = Harness::start(NAME, sizes, 1_000, "100ms").await;

    // A clean first run: the snapshot; then the workload starts, and the first kill comes once
    // a binlog-phase checkpoint exists.
    let t = Instant::now();
    let (mut child, log) = h.spawn();
    h.wait_equal(&mut child, &log, Duration::from_secs(60))
        .await;
    println!("[{NAME}] snapshot done in {:.1?}", t.elapsed());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let opts = h.db.opts();
        let stop = stop.clone();
        async move { workload_on(opts, sizes, seed, stop).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.checkpoint().1 != Phase::Binlog {
        assert!(
            Instant::now() < deadline,
            "[{NAME}] a binlog-phase checkpoint follows the snapshot once the binlog moves; log:\n{}",
            tail(&log, 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.kill(&mut child, &log);

    let t = Instant::now();
    let mut first_ckpt = h.checkpoint().0;
    for kill in 1..=15 {
        let (mut child, log) = h.spawn();
        assert!(
            wait_for_log(
                &mut child,
                &log,
                "Binlog reading started",
                Duration::from_secs(30)
            )
            .await,
            "[{NAME}] run {} did not reach the binlog; log:\n{}",
            h.runs,
            tail(&log, 40)
        );
        let wait = Duration::from_millis(rng.range(50, 300));
        tokio::time::sleep(wait).await;
        h.kill(&mut child, &log);
        let (id, phase) = h.checkpoint();
        assert_eq!(phase, Phase::Binlog, "[{NAME}] still in the binlog phase");
        println!(
            "[{NAME}] kill {kill:2} {:>3} ms into the binlog: checkpoint {id:3} (+{}); sink {}",
            wait.as_millis(),
            id - first_ckpt,
            h.sink_counts()
        );
        first_ckpt = id;
    }
    println!("[{NAME}] 15 kills in {:.1?}", t.elapsed());
    stop.store(true, Ordering::SeqCst);
    let stats = writer.await.expect("workload task");
    println!("[{NAME}] workload: {stats:?}");

    let t = Instant::now();
    let (mut child, log) = h.spawn();
    h.wait_equal(&mut child, &log, Duration::from_secs(60))
        .await;
    println!(
        "[{NAME}] final run converged in {:.1?}: sink {}",
        t.elapsed(),
        h.sink_counts()
    );
    h.terminate(child, &log);
    h.assert_no_panics();
    println!("[{NAME}] total {:.1?}", started.elapsed());
}
