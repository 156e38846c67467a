//! The binlog reader across a MariaDB restart (reconnect, exactly once) and its micro-batching of
//! small transactions. Each test owns a private server: a restart would disturb other tests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int32Type;
use cdcflow_engine::{ChangeEvent, Op, SourceOffset, TableId};
use cdcflow_mysql::binlog::{BinlogOptions, BinlogReader, StartPosition, current_offset};
use cdcflow_mysql::position::BinlogOffset;
use cdcflow_mysql::schema::{self, MySqlTable};
use cdcflow_testkit::mariadb::MariaDb;
use mysql_async::prelude::Queryable;

/// One row image seen in the stream: (id, op, v).
type Image = (i32, i8, i32);

/// What a reader emitted: row images in order, data batches, and offsets with the number of
/// images emitted up to and including the batch (or progress) that carried them.
#[derive(Debug, Default)]
struct Seen {
    images: Vec<Image>,
    batches: usize,
    offsets: Vec<(usize, SourceOffset)>,
}

impl Seen {
    fn apply(&mut self, ev: ChangeEvent) {
        match ev {
            ChangeEvent::Data(b) => {
                self.batches += 1;
                let d = &b.data;
                let ids = d.column(0).as_primitive::<Int32Type>();
                let vs = d.column(1).as_primitive::<Int32Type>();
                let ops = b.ops();
                for r in 0..d.num_rows() {
                    let v = if vs.is_null(r) { -1 } else { vs.value(r) };
                    self.images.push((ids.value(r), ops.value(r), v));
                }
                if let Some(o) = b.offset {
                    self.offsets.push((self.images.len(), o));
                }
            }
            ChangeEvent::Progress { offset, .. } => self.offsets.push((self.images.len(), offset)),
            _ => {}
        }
    }

    fn per_id(&self) -> BTreeMap<i32, Vec<(i8, i32)>> {
        let mut m: BTreeMap<i32, Vec<(i8, i32)>> = BTreeMap::new();
        for (id, op, v) in &self.images {
            m.entry(*id).or_default().push((*op, *v));
        }
        m
    }
}

async fn private_server(table_ddl: &str) -> (Arc<MariaDb>, MySqlTable) {
    let db = MariaDb::start().await.expect("start a private MariaDB");
    db.exec(&format!(
        "CREATE DATABASE rc; CREATE TABLE rc.t {table_ddl}"
    ))
    .await
    .expect("create table");
    let mut conn = db.conn().await.expect("connect");
    let mut tables = schema::load_tables(&mut conn, &[TableId::new("rc", "t")], true)
        .await
        .expect("load catalog");
    let _ = conn.disconnect().await;
    (Arc::new(db), tables.remove(0))
}

async fn end_offset(db: &MariaDb) -> BinlogOffset {
    let mut conn = db.conn().await.expect("connect");
    let o = current_offset(&mut conn).await.expect("binlog end");
    let _ = conn.disconnect().await;
    o
}

fn options(start: StartPosition) -> BinlogOptions {
    static ID: AtomicU32 = AtomicU32::new(7100);
    let mut o = BinlogOptions::new(ID.fetch_add(1, Ordering::Relaxed), start);
    o.heartbeat = Duration::from_secs(1);
    o
}

/// Runs `sql` until it succeeds, reconnecting across a server restart. A duplicate key means an
/// earlier attempt committed before its answer was lost.
async fn exec_retrying(db: &MariaDb, conn: &mut Option<mysql_async::Conn>, sql: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "writer could not run `{sql}` for 60 s"
        );
        if conn.is_none() {
            *conn = db.conn().await.ok();
        }
        let Some(c) = conn.as_mut() else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        match c.query_drop(sql).await {
            Ok(()) => return,
            Err(mysql_async::Error::Server(e)) if e.code == 1062 => return,
            Err(_) => {
                *conn = None;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_stream_emits_every_row_exactly_once_in_order() {
    let (db, table) = private_server("(id INT PRIMARY KEY, v INT NOT NULL)").await;
    const N: i32 = 1200;
    let mut reader = BinlogReader::connect(db.opts(), options(StartPosition::Latest), vec![table])
        .await
        .expect("connect the reader");

    // Writer: per id an insert and an idempotent update, each its own transaction.
    let written = Arc::new(AtomicU32::new(0));
    let writer = {
        let (db, written) = (db.clone(), written.clone());
        tokio::spawn(async move {
            let mut conn = None;
            for id in 1..=N {
                exec_retrying(
                    &db,
                    &mut conn,
                    &format!("INSERT INTO rc.t VALUES ({id}, 0)"),
                )
                .await;
                exec_retrying(
                    &db,
                    &mut conn,
                    &format!("UPDATE rc.t SET v = v + 1 WHERE id = {id} AND v = 0"),
                )
                .await;
                written.store(id as u32, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    let restarter = {
        let (db, written) = (db.clone(), written.clone());
        tokio::spawn(async move {
            while written.load(Ordering::Relaxed) < (N / 4) as u32 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            db.restart().await.expect("restart the server");
        })
    };

    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(50);
    let complete = |s: &Seen| s.per_id().values().filter(|v| v.len() >= 3).count() == N as usize;
    while !complete(&seen) {
        assert!(
            Instant::now() < deadline,
            "not all rows arrived in time: {} images, {} ids complete",
            seen.images.len(),
            seen.per_id().values().filter(|v| v.len() >= 3).count()
        );
        match tokio::time::timeout(Duration::from_secs(5), reader.next_event()).await {
            Ok(ev) => {
                if let Some(ev) = ev.expect("the reader survives the restart") {
                    seen.apply(ev);
                }
            }
            Err(_) => continue,
        }
    }
    writer.await.expect("writer");
    restarter.await.expect("restarter");

    let per_id = seen.per_id();
    let want = vec![
        (Op::Insert as i8, 0),
        (Op::UpdateBefore as i8, 0),
        (Op::UpdateAfter as i8, 1),
    ];
    for id in 1..=N {
        assert_eq!(
            per_id.get(&id),
            Some(&want),
            "id {id}: every change exactly once and in order"
        );
    }
    assert_eq!(per_id.len(), N as usize, "no row outside the written ids");
    let table_rows: Vec<(i32, i32)> = db
        .query("SELECT id, v FROM rc.t ORDER BY id")
        .await
        .expect("read the table");
    let streamed: Vec<(i32, i32)> = per_id
        .iter()
        .map(|(id, v)| (*id, v.last().map_or(-1, |x| x.1)))
        .collect();
    assert_eq!(streamed, table_rows, "the stream ends where the table is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_inside_a_large_transaction_skips_the_rows_already_emitted() {
    let (db, table) = private_server("(id INT PRIMARY KEY, v INT NOT NULL)").await;
    let start = end_offset(&db).await;
    // One transaction of 20 statements × 100 rows (one rows event each), then a small one.
    let mut sql = String::from("BEGIN;");
    for k in 0..20 {
        let values: Vec<String> = (1..=100)
            .map(|i| format!("({}, {k})", k * 100 + i))
            .collect();
        sql.push_str(&format!("INSERT INTO rc.t VALUES {};", values.join(",")));
    }
    sql.push_str("COMMIT; INSERT INTO rc.t VALUES (5000, 99);");
    db.exec(&sql).await.expect("write the transactions");
    let end = end_offset(&db).await;

    let mut o = options(StartPosition::Position(start.position));
    o.max_batch_rows = 250;
    let mut reader = BinlogReader::connect(db.opts(), o, vec![table])
        .await
        .expect("connect the reader");
    let mut seen = Seen::default();
    // The first batch is a full builder in the middle of the big transaction.
    while seen.batches == 0 {
        let ev = tokio::time::timeout(Duration::from_secs(10), reader.next_event())
            .await
            .expect("an event in time")
            .expect("read")
            .expect("an event");
        seen.apply(ev);
    }
    assert!(
        seen.offsets.is_empty() && seen.images.len() < 2000,
        "the first batch is mid-transaction, without an offset ({} rows)",
        seen.images.len()
    );
    db.restart().await.expect("restart the server");

    let deadline = Instant::now() + Duration::from_secs(40);
    let done = |s: &Seen| {
        s.offsets
            .last()
            .and_then(|(_, o)| BinlogOffset::from_source_offset(o).ok())
            .is_some_and(|o| o.position >= end.position)
    };
    while !done(&seen) {
        assert!(
            Instant::now() < deadline,
            "the stream did not reach the end in time"
        );
        if let Ok(ev) = tokio::time::timeout(Duration::from_secs(5), reader.next_event()).await
            && let Some(ev) = ev.expect("the reader survives the restart")
        {
            seen.apply(ev);
        }
    }
    let per_id = seen.per_id();
    assert_eq!(per_id.len(), 2001, "every row arrived");
    for (id, images) in &per_id {
        assert_eq!(images.len(), 1, "row {id} emitted exactly once");
    }
    let ids: Vec<i32> = seen.images.iter().map(|i| i.0).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "rows keep binlog order across the reconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_transactions_are_batched_and_resume_replays_exactly_the_rest() {
    let (db, table) = private_server("(id INT PRIMARY KEY, v INT NOT NULL)").await;
    let start = end_offset(&db).await;
    const N: i32 = 2000;
    let sql: String = (1..=N)
        .map(|id| format!("INSERT INTO rc.t VALUES ({id}, {id});"))
        .collect();
    db.exec(&sql).await.expect("2000 single-row transactions");
    let end = end_offset(&db).await;

    let read_all = |start: StartPosition| {
        let (db, table) = (db.clone(), table.clone());
        async move {
            let mut o = options(start);
            o.non_blocking = true;
            o.max_batch_rows = 700;
            o.linger = Duration::from_secs(30);
            let mut reader = BinlogReader::connect(db.opts(), o, vec![table])
                .await
                .expect("connect the reader");
            let mut seen = Seen::default();
            while let Some(ev) = reader.next_event().await.expect("read") {
                seen.apply(ev);
            }
            seen
        }
    };
    let first = read_all(StartPosition::Position(start.position.clone())).await;
    let ids: Vec<i32> = first.images.iter().map(|i| i.0).collect();
    assert_eq!(ids, (1..=N).collect::<Vec<_>>(), "every row once, in order");
    assert!(
        first.batches <= 20,
        "{N} single-row transactions must come out as few batches, got {}",
        first.batches
    );
    let (n_last, last) = first.offsets.last().expect("an offset");
    assert_eq!(*n_last, N as usize, "the last offset covers every row");
    assert_eq!(
        BinlogOffset::from_source_offset(last)
            .expect("offset")
            .position,
        end.position,
        "the final offset is the end of the last committed transaction"
    );

    // Resume from an intermediate offset: exactly the rows after it come again.
    let (n_mid, mid) = first
        .offsets
        .iter()
        .find(|(n, _)| *n > 0 && *n < N as usize)
        .cloned()
        .expect("an intermediate offset (batches are capped at 700 rows)");
    let mid = BinlogOffset::from_source_offset(&mid).expect("offset");
    let rest = read_all(StartPosition::Offset(mid)).await;
    assert_eq!(
        rest.images,
        first.images[n_mid..].to_vec(),
        "resuming replays exactly the rows after the offset"
    );
}
