//! The quickstart: runs `examples/quickstart.yaml` end to end on an embedded default.
//!
//! 1. starts a throwaway MariaDB (binlog on, ROW format) and loads the sample `app_db`;
//! 2. starts the Stream Load emulator standing in for Doris (FE + BE HTTP endpoints);
//! 3. runs the pipeline: the initial snapshot, then live changes read from the binlog;
//! 4. compares every table in the emulator with MariaDB, row by row, and prints what arrived.
//!
//! `cargo run --example quickstart`. Nothing outside a temporary directory is touched.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cdcflow::plan;
use cdcflow::run::{self, RunFlags};
use cdcflow_testkit::compare::compare_table;
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;
use tokio_util::sync::CancellationToken;

const TABLES: [&str; 3] = ["orders", "products", "shipments"];

const SAMPLE_DATA: &str = r#"
CREATE DATABASE app_db;
USE app_db;
CREATE TABLE app_db.orders (
  id INT NOT NULL PRIMARY KEY,
  customer VARCHAR(64) NOT NULL,
  price DECIMAL(10, 2) NOT NULL,
  status ENUM('new', 'paid', 'shipped') NOT NULL DEFAULT 'new',
  created_at DATETIME(3) NOT NULL,
  note TEXT NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO app_db.orders
  SELECT seq, CONCAT('customer-', seq % 97), (seq % 1000) + 0.99, ELT(1 + seq % 3, 'new', 'paid', 'shipped'),
         TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL ((seq % 1000) * 1000) MICROSECOND,
         IF(seq % 5 = 0, NULL, CONCAT('note ', seq, ' ünïcødé 😀'))
  FROM seq_1_to_20000;
CREATE TABLE app_db.products (
  id INT NOT NULL PRIMARY KEY,
  product VARCHAR(255) NOT NULL,
  in_stock BOOLEAN NOT NULL,
  weight DOUBLE NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO app_db.products VALUES
  (1, 'Beer', TRUE, 0.5), (2, 'Cap', FALSE, 0.1), (3, 'Peanut', TRUE, NULL), (4, 'Spicy chips', TRUE, 0.25);
CREATE TABLE app_db.shipments (
  id INT NOT NULL PRIMARY KEY,
  city VARCHAR(255) NOT NULL,
  shipped_on DATE NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO app_db.shipments VALUES (1, 'Beijing', '2024-03-01'), (2, 'Hangzhou', NULL), (3, 'São Paulo', '2024-03-02');
"#;

const LIVE_CHANGES: &str = r#"
INSERT INTO app_db.orders VALUES (20001, 'late customer', 12.34, 'new', '2024-06-01 12:00:00.123', 'arrived via binlog');
UPDATE app_db.orders SET price = price + 1, status = 'shipped' WHERE id <= 500;
DELETE FROM app_db.orders WHERE id BETWEEN 1000 AND 1099;
UPDATE app_db.products SET product = 'Craft beer', weight = 0.33 WHERE id = 1;
DELETE FROM app_db.shipments WHERE id = 2;
INSERT INTO app_db.shipments VALUES (4, 'Shanghai', '2024-03-04');
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CDCFLOW_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,cdcflow=info,cdcflow_testkit=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();

    println!("Starting a throwaway MariaDB (binlog on, ROW format)...");
    let db = MariaDb::start().await.context("starting MariaDB")?;
    db.exec(SAMPLE_DATA)
        .await
        .context("loading the sample data")?;
    println!(
        "  MariaDB on 127.0.0.1:{} with app_db: orders (20000 rows), products, shipments",
        db.port()
    );

    let emulator = Emulator::start(EmulatorConfig::doris())
        .await
        .context("starting the emulator")?;
    println!("Stream Load emulator (Doris) FE on {}", emulator.fe_addr());

    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/quickstart.yaml");
    let yaml = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let port = db.port().to_string();
    let fe = emulator.fe_addr().to_string();
    let env = |name: &str| match name {
        "MYSQL_PORT" => Some(port.clone()),
        "DORIS_FENODES" => Some(fe.clone()),
        "MYSQL_HOST" => Some("127.0.0.1".into()),
        _ => None,
    };
    let def = cdcflow_engine::config::load_str_with_env(&yaml, "examples/quickstart.yaml", &env)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let pipeline = plan::validate_def(def).map_err(|d| anyhow::anyhow!("{d}"))?;
    println!("\n{}", pipeline.render());

    let checkpoints = tempfile::tempdir()?;
    let flags = RunFlags {
        from_scratch: true,
        checkpoint_dir: Some(checkpoints.path().to_path_buf()),
    };
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run::run(&pipeline, &flags, shutdown).await }
    });

    println!("Running: initial snapshot...");
    wait_until_equal(&db, &emulator, &task)
        .await
        .context("snapshot")?;
    println!(
        "  snapshot arrived and matches the source ({:.1?})",
        started.elapsed()
    );

    println!("Applying live changes in MariaDB (insert, 500 updates, 100 deletes, ...)...");
    db.exec(LIVE_CHANGES)
        .await
        .context("applying live changes")?;
    let t = Instant::now();
    wait_until_equal(&db, &emulator, &task)
        .await
        .context("binlog changes")?;
    println!(
        "  changes arrived from the binlog and match the source ({:.1?})",
        t.elapsed()
    );

    shutdown.cancel();
    let summary = task.await.context("pipeline task")??;
    println!(
        "\nPipeline stopped: {} rows read, {} rows loaded, {} checkpoints, {:.1?}",
        summary.rows_in, summary.rows_out, summary.checkpoints, summary.elapsed
    );
    println!("\nWhat arrived in Doris (emulated):");
    for t in TABLES {
        let rows = emulator
            .rows("app_db", t)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("  app_db.{t}: {} rows", rows.len());
        for r in rows.iter().take(3) {
            println!("    {}", serde_json::Value::Object(r.clone()));
        }
    }
    println!("\nEvery table matches MariaDB row by row.");
    Ok(())
}

/// Polls until every sample table in the emulator equals MariaDB, or fails after a timeout.
async fn wait_until_equal(
    db: &MariaDb,
    emulator: &Emulator,
    task: &tokio::task::JoinHandle<cdcflow_engine::Result<cdcflow_engine::pipeline::RunSummary>>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if task.is_finished() {
            bail!("the pipeline stopped early");
        }
        let mut last = None;
        let mut all = true;
        for t in TABLES {
            let c = compare_table(db, "app_db", t, emulator, "app_db", t, &["id"]).await?;
            if !c.is_equal() {
                all = false;
                last = Some(format!("app_db.{t}: {c}"));
                break;
            }
        }
        if all {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "tables still differ after 120 s: {}",
                last.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
