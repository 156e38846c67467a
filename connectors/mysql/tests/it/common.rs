//! Shared helpers: the shared server, per-test databases, selectors and cell rendering.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, DurationMicrosecondType, TimeUnit, TimestampMicrosecondType};
use cdcflow_engine::TableId;
use cdcflow_mysql::config::TableSelector;
use cdcflow_mysql::schema::{self, MySqlTable, TableFilter};
use cdcflow_mysql::snapshot::{Snapshot, SnapshotOptions, SnapshotSummary};
use cdcflow_testkit::mariadb::MariaDb;

/// The process-wide server.
pub async fn server() -> &'static MariaDb {
    MariaDb::shared().await.expect("start the shared MariaDB")
}

/// A fresh database name for one test (tests share the server and run in parallel).
pub async fn fresh_db(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    server()
        .await
        .exec(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"
        ))
        .await
        .expect("create db");
    name
}

/// A `tables` selector `db.table_regex` (Flink CDC syntax: `\.` is "any character").
pub fn selector(db: &str, table_re: &str) -> TableSelector {
    let mut v =
        cdcflow_mysql::config::table_selectors(&format!("{db}.{table_re}")).expect("selector");
    assert_eq!(v.len(), 1, "one selector");
    v.remove(0)
}

/// Loads the catalog of every table in `db` matching `table_re`.
pub async fn load(db: &str, table_re: &str) -> Vec<Arc<MySqlTable>> {
    let s = server().await;
    let mut conn = s.conn().await.expect("connect");
    let filter = TableFilter::new(&[selector(db, table_re)], &[]);
    let ids = schema::discover_tables(&mut conn, &filter)
        .await
        .expect("discover");
    let tables = schema::load_tables(&mut conn, &ids, true)
        .await
        .expect("load catalog");
    tables.into_iter().map(Arc::new).collect()
}

/// Snapshots `tables` and returns every table's rows rendered as strings, plus the summary.
pub async fn snapshot(
    tables: &[Arc<MySqlTable>],
    opts: SnapshotOptions,
) -> (
    Vec<Vec<Vec<String>>>,
    SnapshotSummary,
    Vec<Vec<RecordBatch>>,
) {
    let s = server().await;
    let snap = Snapshot::start(s.opts(), tables.to_vec(), opts)
        .await
        .expect("start snapshot");
    let (batches, summary) = snap.collect().await.expect("snapshot");
    let mut rendered = Vec::new();
    let mut raw = Vec::new();
    for i in 0..tables.len() {
        let bs = batches.get(&i).cloned().unwrap_or_default();
        let mut rows = Vec::new();
        for b in &bs {
            for r in 0..b.num_rows() {
                rows.push(
                    (0..b.num_columns() - 2)
                        .map(|c| render(b.column(c).as_ref(), r))
                        .collect::<Vec<_>>(),
                );
            }
        }
        rendered.push(rows);
        raw.push(bs);
    }
    (rendered, summary, raw)
}

/// One cell as text: NULL, integers, decimals as Arrow prints them; timestamps as
/// `YYYY-MM-DD HH:MM:SS.ffffff` (UTC for instants), durations as signed microseconds, bytes as hex.
pub fn render(a: &dyn Array, row: usize) -> String {
    if a.is_null(row) {
        return "NULL".into();
    }
    match a.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let us = a.as_primitive::<TimestampMicrosecondType>().value(row);
            chrono::DateTime::from_timestamp_micros(us)
                .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                .unwrap_or_else(|| format!("µs {us}"))
        }
        DataType::Duration(TimeUnit::Microsecond) => a
            .as_primitive::<DurationMicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Binary => a
            .as_binary::<i32>()
            .value(row)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        _ => arrow::util::display::array_value_to_string(a, row).expect("displayable"),
    }
}

/// Sorts rendered rows by their first cell parsed as an integer (the tests' ids).
pub fn sort_by_id(rows: &mut [Vec<String>]) {
    rows.sort_by_key(|r| r[0].parse::<i64>().unwrap_or(i64::MAX));
}

/// Table id helper.
pub fn tid(db: &str, t: &str) -> TableId {
    TableId::new(db, t)
}
