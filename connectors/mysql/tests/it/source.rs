//! The source end to end through its factory: snapshot mode, initial mode with the binlog
//! hand-off under concurrent writes, and resume from a snapshot-phase offset.

use std::collections::BTreeMap;

use cdcflow_engine::component::{BuildContext, Source, SourceFactory};
use cdcflow_engine::config::{Diagnostics, load_str};
use cdcflow_engine::{ChangeEvent, Op, SourceOffset};
use cdcflow_mysql::source::{MySqlSourceFactory, SnapshotOffset};
use cdcflow_testkit::mariadb::MariaDb;

use crate::common::{fresh_db, render, server};

/// A pipeline YAML for `db` with extra source options (already indented by 2).
pub fn pipeline_yaml(port: u16, user: &str, tables: &str, extra: &str) -> String {
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {port}\n  username: {user}\n  password: \"pw\"\n  \
         tables: {tables}\n  server-id: 5401-5404\n{extra}sink:\n  type: values\npipeline:\n  parallelism: 2\n"
    )
}

/// Validates and builds a source from YAML.
pub async fn build(
    yaml: &str,
    resume: Option<SourceOffset>,
) -> cdcflow_engine::Result<Box<dyn Source>> {
    let def = load_str(yaml, "test.yaml").expect("pipeline parses");
    let mut diags = Diagnostics::default();
    let v = MySqlSourceFactory
        .validate(&def.source, &def.pipeline, &mut diags)
        .unwrap_or_else(|| panic!("valid: {diags}"));
    v.build(&BuildContext {
        pipeline: def.pipeline.clone(),
        resume_from: resume,
        sink_state: None,
    })
    .await
}

/// A CDC user with the grants the source documents (password `pw`).
pub async fn cdc_user(db: &MariaDb, name: &str) {
    db.exec(&format!(
        "CREATE USER IF NOT EXISTS '{name}'@'127.0.0.1' IDENTIFIED BY 'pw'; \
         GRANT SELECT, SHOW DATABASES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '{name}'@'127.0.0.1'"
    ))
    .await
    .expect("create cdc user");
}

/// Rows materialised from change events, keyed by the first column (per table).
#[derive(Debug, Default)]
struct Materialized {
    rows: BTreeMap<i64, Vec<String>>,
    per_table: BTreeMap<String, BTreeMap<i64, Vec<String>>>,
    created: Vec<String>,
    data_before_create: bool,
    last_offset: Option<SourceOffset>,
    ended: bool,
}

impl Materialized {
    fn apply(&mut self, ev: ChangeEvent) {
        match ev {
            ChangeEvent::CreateTable(s) => self.created.push(s.id.to_string()),
            ChangeEvent::Data(b) => {
                if !self.created.contains(&b.table.id.to_string()) {
                    self.data_before_create = true;
                }
                if b.offset.is_some() {
                    self.last_offset = b.offset.clone();
                }
                let ops = b.ops().clone();
                for r in 0..b.num_rows() {
                    let row: Vec<String> = (0..b.num_user_columns())
                        .map(|c| render(b.data.column(c).as_ref(), r))
                        .collect();
                    let key: i64 = row[0].parse().expect("integer key");
                    let t = self.per_table.entry(b.table.id.table.clone()).or_default();
                    match Op::from_i8(ops.value(r)).expect("op") {
                        Op::Insert | Op::UpdateAfter => {
                            t.insert(key, row.clone());
                            self.rows.insert(key, row);
                        }
                        Op::UpdateBefore | Op::Delete => {
                            t.remove(&key);
                            self.rows.remove(&key);
                        }
                    }
                }
            }
            ChangeEvent::Progress { offset, .. } => self.last_offset = Some(offset),
            ChangeEvent::End => self.ended = true,
            ChangeEvent::SchemaChange { .. } => {}
        }
    }
}

/// The table's current rows rendered like the snapshot renders them (id, v as text).
async fn source_rows(db: &str, table: &str) -> BTreeMap<i64, Vec<String>> {
    let rows: Vec<(i64, Option<String>)> = server()
        .await
        .query(&format!("SELECT id, v FROM {db}.{table}"))
        .await
        .expect("select");
    rows.into_iter()
        .map(|(id, v)| (id, vec![id.to_string(), v.unwrap_or_else(|| "NULL".into())]))
        .collect()
}

#[tokio::test]
async fn snapshot_mode_is_bounded_and_creates_tables_first() {
    let s = server().await;
    let db = fresh_db("src_snap").await;
    cdc_user(s, "cdc_snap").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE {db}.b (id BIGINT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO {db}.a SELECT seq, CONCAT('a', seq) FROM {db}.seq_1_to_2000;
         INSERT INTO {db}.b SELECT seq, CONCAT('b', seq) FROM {db}.seq_1_to_10"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_snap",
        &format!("{db}.\\.*"),
        "  scan.startup.mode: snapshot\n  scan.incremental.snapshot.chunk.size: 300\n",
    );
    let mut src = build(&yaml, None).await.expect("build");
    let mut m = Materialized::default();
    while let Some(ev) = src.next_event().await.expect("event") {
        m.apply(ev);
    }
    assert!(m.ended, "snapshot mode ends with End");
    assert!(!m.data_before_create, "CreateTable precedes a table's rows");
    assert_eq!(m.created, vec![format!("{db}.a"), format!("{db}.b")]);
    assert_eq!(
        m.per_table["a"],
        source_rows(&db, "a").await,
        "table a equals the source"
    );
    assert_eq!(
        m.per_table["b"],
        source_rows(&db, "b").await,
        "table b equals the source"
    );
    let off = SnapshotOffset::from_source_offset(m.last_offset.as_ref().expect("offset"))
        .expect("snapshot offset");
    let mut done = off.done_tables.clone();
    done.sort();
    assert_eq!(
        done,
        vec![format!("{db}.a"), format!("{db}.b")],
        "both tables done in the last offset"
    );
    assert!(
        off.binlog_start.is_some(),
        "the offset says where the binlog must start"
    );
}

#[tokio::test]
async fn initial_mode_equals_the_source_under_concurrent_writes() {
    let s = server().await;
    let db = fresh_db("src_init").await;
    cdc_user(s, "cdc_init").await;
    s.exec(&format!(
        "CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(30));
         INSERT INTO {db}.t SELECT seq, CONCAT('v', seq) FROM {db}.seq_1_to_20000"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_init",
        &format!("{db}.t"),
        "  scan.incremental.snapshot.chunk.size: 500\n  scan.snapshot.fetch.size: 100\n",
    );
    let mut src = build(&yaml, None).await.expect("build");
    // Writer: updates, deletes and inserts spread over the key space while the snapshot runs.
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let s = server().await;
        for i in 0..40 {
            let k = i * 487 % 20000 + 1;
            s.exec(&format!(
                "UPDATE {writer_db}.t SET v = 'u{i}' WHERE id = {k};
                 DELETE FROM {writer_db}.t WHERE id = {};
                 INSERT INTO {writer_db}.t VALUES ({}, 'new{i}');
                 UPDATE {writer_db}.t SET id = id + 100000 WHERE id = {}",
                k + 1,
                30000 + i,
                (k + 7) % 20000 + 1
            ))
            .await
            .expect("write");
        }
    });
    let mut m = Materialized::default();
    let mut writer_done = false;
    let mut writer = Some(writer);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let ev = tokio::time::timeout_at(deadline, src.next_event())
            .await
            .expect("events keep coming")
            .expect("event");
        m.apply(ev.expect("initial mode is unbounded"));
        if !writer_done && writer.as_ref().is_some_and(|w| w.is_finished()) {
            writer.take().unwrap().await.unwrap();
            writer_done = true;
            // Mark the end of the writes with a sentinel row.
            s.exec(&format!("INSERT INTO {db}.t VALUES (999999, 'sentinel')"))
                .await
                .unwrap();
        }
        if writer_done && m.rows.contains_key(&999999) {
            break;
        }
    }
    let want = source_rows(&db, "t").await;
    let missing: Vec<_> = want
        .keys()
        .filter(|k| !m.rows.contains_key(k))
        .take(10)
        .collect();
    let extra: Vec<_> = m
        .rows
        .keys()
        .filter(|k| !want.contains_key(k))
        .take(10)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (k, v) in &want {
        assert_eq!(&m.rows[k], v, "row {k}");
    }
}

#[tokio::test]
async fn restart_from_a_snapshot_offset_skips_finished_tables() {
    let s = server().await;
    let db = fresh_db("src_resume").await;
    cdc_user(s, "cdc_resume").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE {db}.b (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO {db}.a SELECT seq, 'a' FROM {db}.seq_1_to_100; INSERT INTO {db}.b SELECT seq, 'b' FROM {db}.seq_1_to_50"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_resume",
        &format!("{db}.\\.*"),
        "  scan.startup.mode: snapshot\n",
    );
    let offset = SourceOffset::new(
        serde_json::json!({"phase": "snapshot", "done_tables": [format!("{db}.a")]}),
    );
    let mut src = build(&yaml, Some(offset)).await.expect("build");
    let mut tables_with_rows = std::collections::BTreeSet::new();
    let mut rows = 0;
    while let Some(ev) = src.next_event().await.expect("event") {
        if let ChangeEvent::Data(b) = ev {
            tables_with_rows.insert(b.table.id.table.clone());
            rows += b.num_rows();
        }
    }
    assert_eq!(
        tables_with_rows.into_iter().collect::<Vec<_>>(),
        vec!["b".to_string()],
        "a was done"
    );
    assert_eq!(rows, 50);
}
