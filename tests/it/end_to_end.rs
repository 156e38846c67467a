//! MariaDB → Doris and MariaDB → StarRocks (emulated) end to end: snapshot, then a mixed binlog
//! workload (inserts, updates, deletes, multi-table transactions), compared row by row.

use std::time::Duration;

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;

use crate::support::{start_pipeline, wait_equal};

const SCHEMA: &str = r#"
CREATE DATABASE shop;
USE shop;
CREATE TABLE items (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  tiny TINYINT NULL, small_u SMALLINT UNSIGNED NULL, med MEDIUMINT NULL, big BIGINT NULL,
  price DECIMAL(12, 2) NULL, ratio DOUBLE NULL, f FLOAT NULL,
  name VARCHAR(64) NULL, body TEXT NULL, flag BOOLEAN NULL,
  made DATE NULL, at_dt DATETIME(6) NULL, at_ts TIMESTAMP(3) NULL,
  kind ENUM('a', 'b', 'c') NULL, yr YEAR NULL
) DEFAULT CHARSET = utf8mb4;
INSERT INTO items
  SELECT seq, seq % 128 - 64, seq % 65536, seq * 37 % 8388607 - 4194303, seq * 1000003 - 5000000000,
         (seq % 100000) / 100, seq / 7, seq % 100 + 0.5,
         CONCAT('item ', seq, IF(seq % 3 = 0, ' ünï 😀', '')), IF(seq % 4 = 0, NULL, REPEAT('x', seq % 50)),
         seq % 2, '2024-01-01' + INTERVAL (seq % 365) DAY,
         TIMESTAMP('2024-01-01 00:00:00.000001') + INTERVAL seq SECOND,
         TIMESTAMP('2024-02-01 00:00:00') + INTERVAL seq MINUTE,
         ELT(1 + seq % 3, 'a', 'b', 'c'), 1990 + seq % 50
  FROM (SELECT CAST(seq AS SIGNED) AS seq FROM seq_1_to_5000) AS s;
CREATE TABLE orders (
  order_id INT NOT NULL, line INT NOT NULL, item_id BIGINT UNSIGNED NOT NULL, qty INT NOT NULL,
  PRIMARY KEY (order_id, line)
);
INSERT INTO orders SELECT seq DIV 3, seq % 3, seq % 5000 + 1, seq % 7 FROM seq_0_to_2999;
"#;

async fn seed(db: &MariaDb) {
    db.exec(SCHEMA).await.expect("seed schema");
}

async fn workload(db: &MariaDb) {
    // Inserts, updates, deletes, NULLs, and one transaction spanning two tables.
    db.exec(
        "USE shop;
         INSERT INTO items (id, name, price, at_dt) VALUES (6001, 'new one', 1.25, '2030-12-31 23:59:59.999999');
         UPDATE items SET price = price * 2, name = CONCAT(name, ' (updated)') WHERE id % 10 = 0;
         DELETE FROM items WHERE id BETWEEN 100 AND 199;
         UPDATE items SET tiny = NULL, body = NULL, at_ts = NULL WHERE id = 5;
         START TRANSACTION;
         INSERT INTO orders VALUES (5000, 0, 6001, 3), (5000, 1, 1, 1);
         UPDATE orders SET qty = qty + 10 WHERE order_id < 50;
         DELETE FROM items WHERE id = 4999;
         COMMIT;",
    )
    .await
    .expect("workload");
}

const TABLES: &[(&str, &str, &str, &str, &[&str])] = &[
    ("shop", "items", "shop", "items", &["id"]),
    ("shop", "orders", "shop", "orders", &["order_id", "line"]),
];

const DORIS: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: shop.\.*
  server-id: 5500-5501
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
  table.create.properties.replication_num: 1
pipeline:
  name: e2e-doris
  parallelism: 2
  local-time-zone: UTC
"#;

const STARROCKS: &str = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: shop.\.*
  server-id: 5510-5511
  server-time-zone: UTC
sink:
  type: starrocks
  jdbc-url: jdbc:mysql://${QUERY}
  load-url: ${FE}
  username: root
  password: ""
pipeline:
  name: e2e-starrocks
  parallelism: 2
  local-time-zone: UTC
"#;

async fn snapshot_then_binlog(emulator: Emulator, yaml: &str) {
    let db = MariaDb::start().await.expect("MariaDB");
    seed(&db).await;
    let env = [
        ("PORT", db.port().to_string()),
        ("FE", emulator.fe_addr().to_string()),
        ("QUERY", emulator.query_addr().to_string()),
    ];
    let running = start_pipeline(yaml, &env);
    wait_equal(&db, &emulator, &running, TABLES, Duration::from_secs(120)).await;
    workload(&db).await;
    wait_equal(&db, &emulator, &running, TABLES, Duration::from_secs(120)).await;
    let summary = running.stop().await;
    assert!(
        summary.rows_in >= 8000,
        "snapshot and binlog rows were read: {summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_to_doris_snapshot_and_binlog_match_row_by_row() {
    let emulator = Emulator::start(EmulatorConfig::doris())
        .await
        .expect("emulator");
    snapshot_then_binlog(emulator, DORIS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_to_starrocks_snapshot_and_binlog_match_row_by_row() {
    let emulator = Emulator::start(EmulatorConfig::starrocks())
        .await
        .expect("emulator");
    snapshot_then_binlog(emulator, STARROCKS).await;
}
