//! The source end to end through its factory: snapshot mode, initial mode with the binlog
//! hand-off under concurrent writes, and resume from a snapshot-phase offset.

use std::collections::BTreeMap;

use cdcflow_engine::component::{BuildContext, Source, SourceFactory};
use cdcflow_engine::config::{Diagnostics, load_str};
use cdcflow_engine::{ChangeEvent, Op, SourceOffset};
use cdcflow_mysql::source::{MySqlSource, MySqlSourceFactory, SnapshotOffset};
use cdcflow_testkit::mariadb::MariaDb;
use mysql_async::prelude::Queryable;

use crate::common::{fresh_db, render, server};

/// A pipeline YAML for `db` with extra source options (already indented by 2).
/// Each source gets its own server id: tests share one server and run in parallel.
pub fn pipeline_yaml(port: u16, user: &str, tables: &str, extra: &str) -> String {
    static NEXT_ID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(5400);
    let id = NEXT_ID.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    format!(
        "source:\n  type: mysql\n  hostname: 127.0.0.1\n  port: {port}\n  username: {user}\n  password: \"pw\"\n  \
         tables: {tables}\n  server-id: {id}-{}\n{extra}sink:\n  type: values\npipeline:\n  parallelism: 2\n",
        id + 1
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
        resume_from: resume,
        ..BuildContext::new(def.pipeline.clone())
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

/// Builds the source directly (not through the trait object) to look at its snapshot summary.
async fn build_direct(yaml: &str, resume: Option<SourceOffset>) -> MySqlSource {
    let def = load_str(yaml, "test.yaml").expect("pipeline parses");
    let mut diags = Diagnostics::default();
    let cfg = cdcflow_mysql::config::validate(&def.source, &def.pipeline, &mut diags)
        .unwrap_or_else(|| panic!("valid: {diags}"));
    MySqlSource::start(cfg, 2, resume).await.expect("start")
}

fn is_binlog_offset(ev: &ChangeEvent) -> bool {
    let off = match ev {
        ChangeEvent::Data(b) => b.offset.as_ref(),
        ChangeEvent::Progress { offset, .. } => Some(offset),
        _ => None,
    };
    off.is_some_and(|o| SnapshotOffset::from_source_offset(o).is_none())
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
    // Writer: updates, deletes, inserts and key changes spread over the key space, running from
    // before the snapshot starts until the source has switched to the binlog.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (writer_db, writer_stop) = (db.clone(), stop.clone());
    let writer = tokio::spawn(async move {
        let s = server().await;
        let mut conn = s.conn().await.expect("writer connects");
        let mut i = 0u32;
        while !writer_stop.load(std::sync::atomic::Ordering::SeqCst) || i < 20 {
            let k = i * 487 % 20000 + 1;
            conn.query_drop(format!(
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
            i += 1;
        }
        conn.query_drop(format!(
            "INSERT INTO {writer_db}.t VALUES (999999, 'sentinel')"
        ))
        .await
        .expect("sentinel");
        i
    });
    let mut src = build_direct(&yaml, None).await;
    let mut m = Materialized::default();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    while !m.rows.contains_key(&999999) {
        let ev = tokio::time::timeout_at(deadline, src.next_event())
            .await
            .expect("events keep coming")
            .expect("event");
        let ev = ev.expect("initial mode is unbounded");
        if is_binlog_offset(&ev) {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        m.apply(ev);
    }
    let writes = writer.await.unwrap();
    let summary = src.snapshot_summary();
    assert!(summary.marks.len() >= 20, "20000 rows in chunks of 500");
    assert!(
        summary.min_low() < summary.max_high(),
        "writes ({writes} rounds) moved the binlog during the snapshot, so the catch-up window was exercised"
    );
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
async fn binlog_only_start_and_resume_from_a_binlog_offset() {
    let s = server().await;
    let db = fresh_db("src_latest").await;
    cdc_user(s, "cdc_latest").await;
    s.exec(&format!("CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(30)); INSERT INTO {db}.t VALUES (1, 'old')"))
        .await
        .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_latest",
        &format!("{db}.t"),
        "  scan.startup.mode: latest-offset\n",
    );
    let mut src = build(&yaml, None).await.expect("build");
    // Row 3 is written once row 2 arrived: transactions read together share a batch.
    s.exec(&format!("INSERT INTO {db}.t VALUES (2, 'two')"))
        .await
        .unwrap();
    let mut m = Materialized::default();
    let mut first_offset = None;
    while !m.rows.contains_key(&3) {
        let ev = src.next_event().await.expect("event").expect("unbounded");
        if let ChangeEvent::Data(b) = &ev
            && first_offset.is_none()
        {
            first_offset = b.offset.clone();
            s.exec(&format!("INSERT INTO {db}.t VALUES (3, 'three')"))
                .await
                .unwrap();
        }
        m.apply(ev);
    }
    assert!(!m.rows.contains_key(&1), "latest-offset reads no snapshot");
    assert_eq!(m.rows[&2], vec!["2".to_string(), "two".to_string()]);
    drop(src);

    // Resume after the first transaction: only row 3 comes again.
    let mut src = build(&yaml, first_offset).await.expect("resume");
    s.exec(&format!("INSERT INTO {db}.t VALUES (4, 'four')"))
        .await
        .unwrap();
    let mut m = Materialized::default();
    while !m.rows.contains_key(&4) {
        m.apply(src.next_event().await.expect("event").expect("unbounded"));
    }
    let keys: Vec<i64> = m.rows.keys().copied().collect();
    assert_eq!(keys, vec![3, 4], "resumed after row 2's transaction");
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

#[tokio::test]
async fn restart_mid_table_resumes_at_the_finished_chunk_prefix() {
    let s = server().await;
    let db = fresh_db("src_resume_mid").await;
    cdc_user(s, "cdc_resume_mid").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO {db}.a SELECT seq, 'a' FROM {db}.seq_1_to_3000"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_resume_mid",
        &format!("{db}.a"),
        "  scan.startup.mode: snapshot\n  scan.incremental.snapshot.chunk.size: 200\n  scan.snapshot.fetch.size: 50\n",
    );
    // Run 1: stop at the first batch whose offset has a resume point past id 1000.
    let mut src = build(&yaml, None).await.expect("build");
    let mut before: std::collections::BTreeSet<i64> = Default::default();
    let (offset, from) = loop {
        let ev = src
            .next_event()
            .await
            .expect("event")
            .expect("not ended before the stop point");
        let o = match &ev {
            ChangeEvent::Data(b) => {
                for r in 0..b.num_rows() {
                    before.insert(render(b.data.column(0).as_ref(), r).parse().unwrap());
                }
                b.offset.clone()
            }
            ChangeEvent::Progress { offset, .. } => Some(offset.clone()),
            _ => None,
        };
        if let Some(o) = o {
            let snap = SnapshotOffset::from_source_offset(&o).expect("snapshot offset");
            if let Some(p) = snap.in_progress.get(&format!("{db}.a"))
                && let Some(from) = p.from.as_ref().and_then(|f| f.as_i128())
                && from > 1000
            {
                assert_eq!(p.key_column, "id");
                break (o, from as i64);
            }
        }
    };
    drop(src);
    assert!(
        (1..from).all(|k| before.contains(&k)),
        "every key below the resume point was emitted before it"
    );

    // Run 2 from that offset: starts at the resume point, and both runs together cover the table.
    let mut src = build(&yaml, Some(offset)).await.expect("resume");
    let mut after: std::collections::BTreeSet<i64> = Default::default();
    while let Some(ev) = src.next_event().await.expect("event") {
        if let ChangeEvent::Data(b) = ev {
            for r in 0..b.num_rows() {
                after.insert(render(b.data.column(0).as_ref(), r).parse().unwrap());
            }
        }
    }
    assert_eq!(
        after.first().copied(),
        Some(from),
        "run 2 starts at the resume point"
    );
    assert_eq!(
        after.len() as i64,
        3000 - from + 1,
        "run 2 reads the rest once"
    );
    let all: std::collections::BTreeSet<i64> = before.union(&after).copied().collect();
    assert_eq!(all, (1..=3000).collect(), "nothing lost across the restart");
}

#[tokio::test]
async fn restart_mid_table_skips_chunks_finished_out_of_order() {
    use cdcflow_mysql::snapshot::{Chunk, ChunkMark, KeyValue, ResumePoint};
    let s = server().await;
    let db = fresh_db("src_resume_gap").await;
    cdc_user(s, "cdc_resume_gap").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO {db}.a SELECT seq, 'a' FROM {db}.seq_1_to_3000"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_resume_gap",
        &format!("{db}.a"),
        "  scan.startup.mode: snapshot\n  scan.incremental.snapshot.chunk.size: 200\n",
    );
    // A checkpoint from run 1: keys below 201 done (the prefix), and [1001, 1401) finished out
    // of order beyond a gap.
    let mut conn = s.conn().await.unwrap();
    let point = cdcflow_mysql::snapshot::master_status(&mut conn)
        .await
        .expect("binlog point");
    drop(conn);
    let mark = ChunkMark {
        table: cdcflow_engine::TableId::new(db.clone(), "a"),
        chunk: Chunk {
            table: 0,
            id: 5,
            key_column: Some(0),
            lo: Some(KeyValue::Int(1001)),
            hi: Some(KeyValue::Int(1401)),
            last: false,
        },
        low: point.clone(),
        high: point.clone(),
        rows: 400,
    };
    let offset = SnapshotOffset {
        phase: "snapshot".into(),
        done_tables: Vec::new(),
        binlog_start: Some(point.clone()),
        in_progress: [(
            format!("{db}.a"),
            ResumePoint {
                key_column: "id".into(),
                from: Some(KeyValue::Int(201)),
                done: vec![mark],
            },
        )]
        .into_iter()
        .collect(),
        done_marks: Vec::new(),
    };
    let offset = SourceOffset::new(serde_json::to_value(&offset).unwrap());
    let mut src = build(&yaml, Some(offset)).await.expect("resume");
    let mut read: Vec<i64> = Vec::new();
    let mut last_offset = None;
    while let Some(ev) = src.next_event().await.expect("event") {
        match ev {
            ChangeEvent::Data(b) => {
                for r in 0..b.num_rows() {
                    read.push(render(b.data.column(0).as_ref(), r).parse().unwrap());
                }
                last_offset = b.offset.clone().or(last_offset);
            }
            ChangeEvent::Progress { offset, .. } => last_offset = Some(offset),
            _ => {}
        }
    }
    read.sort_unstable();
    let want: Vec<i64> = (201..=1000).chain(1401..=3000).collect();
    assert_eq!(
        read, want,
        "run 2 reads the rest once, neither the prefix nor the chunk finished out of order"
    );
    let last = SnapshotOffset::from_source_offset(&last_offset.expect("an offset"))
        .expect("snapshot offset");
    assert!(
        last.done_tables.contains(&format!("{db}.a")),
        "the table is complete"
    );
}

/// Rows of `table` as the tests render them (id, v), for tables with those two columns.
async fn table_state(db: &str, table: &str) -> BTreeMap<i64, Vec<String>> {
    source_rows(db, table).await
}

#[tokio::test]
async fn initial_mode_mixed_workload_with_a_large_transaction() {
    let big: u32 = std::env::var("CDCFLOW_BIG_TXN_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let s = server().await;
    let db = fresh_db("src_mixed").await;
    cdc_user(s, "cdc_mixed").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(30)); CREATE TABLE {db}.b (id BIGINT PRIMARY KEY, v VARCHAR(30));
         INSERT INTO {db}.a SELECT seq, CONCAT('a', seq) FROM {db}.seq_1_to_5000;
         INSERT INTO {db}.b SELECT seq, CONCAT('b', seq) FROM {db}.seq_1_to_5000"
    ))
    .await
    .unwrap();
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_mixed",
        &format!("{db}.a,{db}.b"),
        "  scan.incremental.snapshot.chunk.size: 400\n",
    );
    let mut src = build(&yaml, None).await.expect("build");
    let writer_db = db.clone();
    let writer = tokio::spawn(async move {
        let s = server().await;
        let mut conn = s.conn().await.expect("connect");
        for i in 0..30 {
            // Multi-table transactions: both tables change atomically.
            conn.query_drop(format!(
                "START TRANSACTION;
                 UPDATE {writer_db}.a SET v = 'ta{i}' WHERE id % 30 = {i};
                 DELETE FROM {writer_db}.b WHERE id % 97 = {i};
                 INSERT INTO {writer_db}.b VALUES ({}, 'tb{i}');
                 COMMIT",
                100_000 + i
            ))
            .await
            .expect("txn");
        }
        // One large transaction.
        conn.query_drop(format!(
            "START TRANSACTION; INSERT INTO {writer_db}.a SELECT 1000000 + seq, 'big' FROM {writer_db}.seq_1_to_{big};
             UPDATE {writer_db}.b SET v = 'after-big' WHERE id <= 100; COMMIT;
             INSERT INTO {writer_db}.b VALUES (999999, 'sentinel')"
        ))
        .await
        .expect("big txn");
    });
    let mut m = Materialized::default();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    while m
        .per_table
        .get("b")
        .is_none_or(|b| !b.contains_key(&999999))
    {
        let ev = tokio::time::timeout_at(deadline, src.next_event())
            .await
            .expect("events keep coming")
            .expect("event")
            .expect("unbounded");
        m.apply(ev);
    }
    writer.await.unwrap();
    for t in ["a", "b"] {
        let want = table_state(&db, t).await;
        let got = m.per_table.get(t).cloned().unwrap_or_default();
        assert_eq!(got.len(), want.len(), "table {t}: row count");
        assert!(got == want, "table {t} differs from the source");
    }
}
