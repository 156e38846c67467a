//! Flink CDC's example pipelines with transforms and routes (flink-cdc-pipeline.md §7: E10, E12,
//! E14) run end to end into the Doris emulator. The expected sink content is written as a MariaDB
//! view over the source, so every comparison is row by row against live source data.

use std::time::Duration;

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use cdcflow_testkit::mariadb::MariaDb;

use crate::support::{start_pipeline, wait_equal};

const TIMEOUT: Duration = Duration::from_secs(120);

fn env(db: &MariaDb, emulator: &Emulator) -> Vec<(&'static str, String)> {
    vec![
        ("PORT", db.port().to_string()),
        ("FE", emulator.fe_addr().to_string()),
    ]
}

/// E10: `projection: \*, 'fine' AS FINE` and `filter: id <> 3 AND id <> 4`; an update that moves
/// a row out of the filter deletes it in the sink, one that moves a row in inserts it (3.6).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e10_wildcard_projection_and_filter() {
    let db = MariaDb::start().await.unwrap();
    db.exec(
        "CREATE DATABASE e10; USE e10;
         CREATE TABLE DATA_TYPES_TABLE (id INT PRIMARY KEY, name VARCHAR(20), price DECIMAL(8,4), ts DATETIME(3));
         INSERT INTO DATA_TYPES_TABLE SELECT seq, CONCAT('n', seq), seq / 3, '2024-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_50;
         CREATE VIEW expected AS SELECT *, 'fine' AS FINE FROM DATA_TYPES_TABLE WHERE id <> 3 AND id <> 4;",
    )
    .await
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::doris()).await.unwrap();
    let yaml = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: e10.\.*
  server-id: 5400-5404
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
  table.create.properties.replication_num: 1
transform:
  - source-table: e10.DATA_TYPES_TABLE
    projection: \*, 'fine' AS FINE
    filter: id <> 3 AND id <> 4
pipeline:
  parallelism: 1
"#;
    let running = start_pipeline(yaml, &env(&db, &emulator));
    let tables: &[(&str, &str, &str, &str, &[&str])] =
        &[("e10", "expected", "e10", "DATA_TYPES_TABLE", &["id"])];
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    // 4 is deleted outside the filter (nothing to do), 10 becomes 4 and leaves the filter
    // (→ delete), 3 becomes 10 and enters it (→ insert), 20 changes inside it, 30 is deleted.
    db.exec(
        "USE e10; DELETE FROM DATA_TYPES_TABLE WHERE id = 4; UPDATE DATA_TYPES_TABLE SET id = 4 WHERE id = 10; UPDATE DATA_TYPES_TABLE SET id = 10 WHERE id = 3;
         UPDATE DATA_TYPES_TABLE SET name = 'changed' WHERE id = 20; DELETE FROM DATA_TYPES_TABLE WHERE id = 30;",
    )
    .await
    .unwrap();
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    running.stop().await;
}

/// E12: every table of the database merged into `terminus` with per-table projections and a
/// filter on one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e12_merge_all_route_with_per_table_projections() {
    let db = MariaDb::start().await.unwrap();
    db.exec(
        "CREATE DATABASE e12; USE e12;
         CREATE TABLE TABLEALPHA (ID INT PRIMARY KEY, VERSION VARCHAR(17), PRICETAG INT);
         CREATE TABLE TABLEBETA (ID INT PRIMARY KEY, VERSION VARCHAR(17), CODENAME TINYINT);
         INSERT INTO TABLEALPHA SELECT 1000 + seq, CONCAT('v', seq), seq FROM seq_1_to_20;
         INSERT INTO TABLEBETA SELECT 2000 + seq, CONCAT('b', seq), seq FROM seq_1_to_20;
         CREATE DATABASE expect12;
         CREATE VIEW expect12.terminus AS
           SELECT ID, VERSION FROM e12.TABLEALPHA WHERE ID > 1008 UNION ALL SELECT ID, VERSION FROM e12.TABLEBETA;",
    )
    .await
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::doris()).await.unwrap();
    let yaml = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: e12.\.*
  server-id: 5400-5404
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
route:
  - source-table: e12.\.*
    sink-table: e12.terminus
transform:
  - source-table: e12.TABLEALPHA
    projection: ID, VERSION
    filter: ID > 1008
  - source-table: e12.TABLEBETA
    projection: ID, VERSION
pipeline:
  parallelism: 1
"#;
    let running = start_pipeline(yaml, &env(&db, &emulator));
    let tables: &[(&str, &str, &str, &str, &[&str])] =
        &[("expect12", "terminus", "e12", "terminus", &["ID"])];
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    db.exec(
        "USE e12; INSERT INTO TABLEALPHA VALUES (1100, 'late', 1), (1000, 'low', 1);
         UPDATE TABLEBETA SET VERSION = 'beta2' WHERE ID = 2005; DELETE FROM TABLEALPHA WHERE ID = 1010;",
    )
    .await
    .unwrap();
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    running.stop().await;
}

/// E14: a replace-symbol route maps every table `t` of the database to `NEW_db.NEW_t`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e14_replace_symbol_route() {
    let db = MariaDb::start().await.unwrap();
    db.exec(
        "CREATE DATABASE e14; USE e14;
         CREATE TABLE alpha (id INT PRIMARY KEY, v VARCHAR(10));
         CREATE TABLE beta (id INT PRIMARY KEY, w DOUBLE);
         INSERT INTO alpha SELECT seq, CONCAT('a', seq) FROM seq_1_to_30;
         INSERT INTO beta SELECT seq, seq / 4 FROM seq_1_to_30;",
    )
    .await
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::doris()).await.unwrap();
    let yaml = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: e14.\.*
  server-id: 5400-5404
  server-time-zone: UTC
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
route:
  - source-table: e14.\.*
    sink-table: NEW_e14.NEW_<>
    replace-symbol: <>
pipeline:
  parallelism: 1
"#;
    let running = start_pipeline(yaml, &env(&db, &emulator));
    let tables: &[(&str, &str, &str, &str, &[&str])] = &[
        ("e14", "alpha", "NEW_e14", "NEW_alpha", &["id"]),
        ("e14", "beta", "NEW_e14", "NEW_beta", &["id"]),
    ];
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    db.exec("USE e14; UPDATE alpha SET v = 'x' WHERE id < 5; DELETE FROM beta WHERE id > 25;")
        .await
        .unwrap();
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    running.stop().await;
}

/// E6: metadata columns and `op_ts` (via `metadata.list`). Snapshot rows are `+I` with `op_ts` 0;
/// a binlog update arrives as `+U` with the event's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e06_metadata_columns_and_op_ts() {
    let db = MariaDb::start().await.unwrap();
    db.exec(
        "CREATE DATABASE testdb; USE testdb;
         CREATE TABLE customer (id INT PRIMARY KEY, name VARCHAR(20));
         INSERT INTO customer SELECT seq, CONCAT('c', seq) FROM seq_1_to_10;
         CREATE VIEW expected AS
           SELECT *, 'null.testdb.customer' AS identifier_name, '+I' AS type, 0 AS opts FROM customer;",
    )
    .await
    .unwrap();
    let emulator = Emulator::start(EmulatorConfig::doris()).await.unwrap();
    let yaml = r#"
source:
  type: mysql
  hostname: 127.0.0.1
  port: ${PORT}
  username: root
  password: ""
  tables: testdb.customer
  server-id: 5400-5404
  server-time-zone: UTC
  metadata.list: op_ts
transform:
  - source-table: testdb.customer
    projection: \*, __namespace_name__ || '.' || __schema_name__ || '.' || __table_name__ AS identifier_name, __data_event_type__ AS type, op_ts AS opts
sink:
  type: doris
  fenodes: ${FE}
  username: root
  password: ""
"#;
    let running = start_pipeline(yaml, &env(&db, &emulator));
    let tables: &[(&str, &str, &str, &str, &[&str])] =
        &[("testdb", "expected", "testdb", "customer", &["id"])];
    wait_equal(&db, &emulator, &running, tables, TIMEOUT).await;
    let before = chrono::Utc::now().timestamp_millis();
    db.exec("UPDATE testdb.customer SET name = 'renamed' WHERE id = 7")
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + TIMEOUT;
    let row = loop {
        let rows = emulator.rows("testdb", "customer").unwrap();
        let r = rows
            .into_iter()
            .find(|r| r["id"] == serde_json::json!(7))
            .unwrap();
        if r["name"] == serde_json::json!("renamed") {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "update did not arrive: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(row["type"], serde_json::json!("+U"), "{row:?}");
    let opts = row["opts"].as_i64().expect("op_ts is a BIGINT");
    // The binlog carries whole seconds; the event happened after `before` (rounded down).
    assert!(
        opts >= before / 1000 * 1000 && opts <= chrono::Utc::now().timestamp_millis(),
        "op_ts {opts} vs {before}"
    );
    running.stop().await;
}
