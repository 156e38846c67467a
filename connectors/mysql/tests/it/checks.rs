//! Start checks: each misconfiguration fails with a message that names it.

use cdcflow_testkit::mariadb::{MariaDb, MariaDbOptions};

use crate::common::{fresh_db, server};
use crate::source::{build, cdc_user, pipeline_yaml};

async fn build_err(yaml: &str) -> String {
    match build(yaml, None).await {
        Ok(_) => panic!("the source must refuse to start"),
        Err(e) => cdcflow_engine::error::ErrorChain(&e).to_string(),
    }
}

#[tokio::test]
async fn binlog_format_not_row_is_refused() {
    let db = MariaDb::start_with(MariaDbOptions::default().with_arg("--binlog-format=STATEMENT"))
        .await
        .unwrap();
    db.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    cdc_user(&db, "cdc").await;
    let err = build_err(&pipeline_yaml(db.port(), "cdc", "d.t", "")).await;
    assert!(err.contains("binlog_format is STATEMENT"), "{err}");
}

#[tokio::test]
async fn binlog_off_row_image_and_purged_files_are_refused() {
    let off = MariaDb::start_with(MariaDbOptions::default().with_arg("--skip-log-bin"))
        .await
        .unwrap();
    cdc_user(&off, "cdc").await;
    off.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    let err = build_err(&pipeline_yaml(off.port(), "cdc", "d.t", "")).await;
    assert!(err.contains("binary logging is off"), "{err}");
    drop(off);

    let db = MariaDb::start().await.unwrap();
    cdc_user(&db, "cdc").await;
    db.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")
        .await
        .unwrap();
    db.exec("SET GLOBAL binlog_row_image = 'MINIMAL'")
        .await
        .unwrap();
    let err = build_err(&pipeline_yaml(db.port(), "cdc", "d.t", "")).await;
    assert!(err.contains("binlog_row_image is MINIMAL"), "{err}");
    db.exec("SET GLOBAL binlog_row_image = 'FULL'")
        .await
        .unwrap();

    db.exec("FLUSH BINARY LOGS; FLUSH BINARY LOGS; PURGE BINARY LOGS TO 'mysql-bin.000003'")
        .await
        .unwrap();
    let err = build_err(&pipeline_yaml(
        db.port(),
        "cdc",
        "d.t",
        "  scan.startup.mode: specific-offset\n  scan.startup.specific-offset.file: mysql-bin.000001\n  \
         scan.startup.specific-offset.pos: 4\n",
    ))
    .await;
    assert!(
        err.contains("mysql-bin.000001 is not on the server"),
        "{err}"
    );
    // MariaDB may keep one more file than asked while its binlog checkpoint needs it.
    assert!(err.contains("oldest available is mysql-bin.00000"), "{err}");
}

#[tokio::test]
async fn missing_grants_and_unknown_tables_are_refused() {
    let s = server().await;
    let db = fresh_db("checks").await;
    s.exec(&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    s.exec(
        "CREATE USER IF NOT EXISTS 'sel_only'@'127.0.0.1' IDENTIFIED BY 'pw'; GRANT SELECT ON *.* TO 'sel_only'@'127.0.0.1';
         CREATE USER IF NOT EXISTS 'no_client'@'127.0.0.1' IDENTIFIED BY 'pw';
         GRANT SELECT, REPLICATION SLAVE ON *.* TO 'no_client'@'127.0.0.1'",
    )
    .await
    .unwrap();
    let err = build_err(&pipeline_yaml(s.port(), "sel_only", &format!("{db}.t"), "")).await;
    assert!(err.contains("REPLICATION SLAVE"), "{err}");
    let err = build_err(&pipeline_yaml(
        s.port(),
        "no_client",
        &format!("{db}.t"),
        "",
    ))
    .await;
    assert!(err.contains("REPLICATION CLIENT"), "{err}");

    cdc_user(s, "cdc_checks").await;
    let err = build_err(&pipeline_yaml(
        s.port(),
        "cdc_checks",
        &format!("{db}.nope"),
        "",
    ))
    .await;
    assert!(err.contains("cannot find any table"), "{err}");
}
