//! Binlog reader and decoder against a real throwaway MariaDB (testkit): every type, updates and
//! deletes, multi-table and large transactions, resume from GTID and file/position, compressed
//! events, DDL, and the errors a user must see.

use std::time::Duration;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::util::display::array_value_to_string;
use cdcflow_engine::{ChangeBatch, ChangeEvent, Op, SchemaChange, TableId};
use cdcflow_mysql::binlog::{
    BinlogError, BinlogOptions, BinlogReader, StartPosition, current_offset,
};
use cdcflow_mysql::position::{BinlogOffset, GtidPos};
use cdcflow_mysql::schema::{MySqlTable, load_tables};
use cdcflow_testkit::mariadb::{MariaDb, MariaDbOptions};
use mysql_async::prelude::Queryable;

/// Server ids must be unique per concurrent reader on one server.
fn server_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(7000);
    NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 1000 * 10
}

async fn tables(db: &MariaDb, ids: &[TableId]) -> Vec<MySqlTable> {
    let mut conn = db.conn().await.expect("connect");
    let t = load_tables(&mut conn, ids, true).await.expect("catalog");
    assert_eq!(t.len(), ids.len(), "all tables found in the catalog");
    t
}

async fn offset_now(db: &MariaDb) -> BinlogOffset {
    let mut conn = db.conn().await.expect("connect");
    current_offset(&mut conn).await.expect("binlog position")
}

/// Reads every event from `start` to the current end of the binlog (non-blocking).
async fn read_all(db: &MariaDb, start: StartPosition, tables: Vec<MySqlTable>) -> Vec<ChangeEvent> {
    read_all_with(db, start, tables, |_| {}).await
}

async fn read_all_with(
    db: &MariaDb,
    start: StartPosition,
    tables: Vec<MySqlTable>,
    tweak: impl FnOnce(&mut BinlogOptions),
) -> Vec<ChangeEvent> {
    let mut o = BinlogOptions::new(server_id(), start);
    o.non_blocking = true;
    o.heartbeat = Duration::ZERO;
    tweak(&mut o);
    let mut r = BinlogReader::connect(db.opts(), o, tables)
        .await
        .expect("binlog connect");
    let mut out = Vec::new();
    while let Some(e) = r.next_event().await.expect("binlog event") {
        out.push(e);
    }
    out
}

fn batches(events: &[ChangeEvent]) -> Vec<&ChangeBatch> {
    events
        .iter()
        .filter_map(|e| match e {
            ChangeEvent::Data(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Every row of the table's batches as `op|v1|v2|...` (Arrow's display of each cell).
fn rows(events: &[ChangeEvent], table: &str) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches(events)
        .into_iter()
        .filter(|b| b.table.id.table == table)
    {
        out.extend(render(&b.data));
    }
    out
}

fn render(batch: &RecordBatch) -> Vec<String> {
    let ops = batch
        .column(batch.num_columns() - 2)
        .as_primitive::<arrow::datatypes::Int8Type>();
    (0..batch.num_rows())
        .map(|r| {
            let mut s = Op::from_i8(ops.value(r))
                .expect("valid op")
                .short_name()
                .to_string();
            for c in 0..batch.num_columns() - 2 {
                let col = batch.column(c);
                s.push('|');
                if col.is_null(r) {
                    s.push_str("NULL");
                } else {
                    s.push_str(&array_value_to_string(col, r).expect("displayable"));
                }
            }
            s
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_the_binlog() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_types; DROP TABLE IF EXISTS bl_types.t; \
         CREATE TABLE bl_types.t (
           id INT UNSIGNED PRIMARY KEY,
           ti TINYINT, tiu TINYINT UNSIGNED, tb TINYINT(1), si SMALLINT, siu SMALLINT UNSIGNED,
           mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
           d65 DECIMAL(65,30), d10 DECIMAL(10,2), f FLOAT, db DOUBLE,
           dt6 DATETIME(6), dt0 DATETIME, ts3 TIMESTAMP(3) NULL, dte DATE, tm6 TIME(6), yr YEAR,
           c10 CHAR(10) CHARACTER SET utf8mb4, vc VARCHAR(300) CHARACTER SET utf8mb4,
           vl VARCHAR(20) CHARACTER SET latin1, bl BLOB, bin4 BINARY(4), vb VARBINARY(10),
           js JSON, en ENUM('red','green','blue'), st SET('a','b','c','d'), bt BIT(10), b1 BIT(1),
           tx TEXT CHARACTER SET utf8mb4, g GEOMETRY
         ) DEFAULT CHARSET=utf8mb4",
    )
    .await
    .expect("create table");
    let id = TableId::new("bl_types", "t");
    let start = offset_now(db).await;
    let mut conn = db.conn().await.expect("connect");
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
        .await
        .expect("session");
    conn.query_drop(
        "INSERT INTO bl_types.t VALUES
         (1, -128, 255, 1, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
          -9223372036854775808, 18446744073709551615,
          -12345678901234567890123456789012345.123456789012345678901234567890, -99999999.99,
          3.14159, -1.7976931348623157e308,
          '2024-02-29 23:59:59.123456', '1000-01-01 00:00:00', '2038-01-19 03:14:07.999', '9999-12-31',
          '-838:59:59.000000', 2155,
          'héllo😀', 'emoji 😀🎉 ünïcödé 中文', 'café', X'00FF10', X'AB00', X'00AB',
          '{\"a\": [1, 2.5, \"x\"]}', 'green', 'a,c', b'1010101010', b'1',
          'long text 😀', ST_GeomFromText('POINT(1 2)')),
         (2, 127, 0, 0, 32767, 0, -1, 8388608, 2147483647, 0,
          9223372036854775807, 9223372036854775808,
          0.000000000000000000000000000001, 0.01, -1.5e-10, 2.718281828459045,
          '1970-01-01 00:00:00.000001', '2000-06-15 12:30:45', '1970-01-01 00:00:01.000', '1000-01-01',
          '838:59:59.999999', 0,
          'a  ', 'b  ', '', '', X'00000000', '',
          '[]', 'red', '', b'0', b'0', '', NULL),
         (3, NULL, NULL, NULL, NULL, NULL, -100, NULL, NULL, NULL, NULL, 0,
          99999999999999999999999999999999999.999999999999999999999999999999, -0.50, NULL, NULL,
          '0000-00-00 00:00:00', NULL, '0000-00-00 00:00:00', '0000-00-00', '-00:00:01.500000', 1901,
          ' x', NULL, NULL, NULL, X'DEADBEEF', NULL, '{\"k\":\"v😀\"}', 'blue', 'a,b,c,d',
          b'1111111111', NULL, NULL, NULL)",
    )
    .await
    .expect("insert");
    drop(conn);

    let tabs = tables(db, &[id]).await;
    let events = read_all(db, StartPosition::Offset(start), tabs.clone()).await;
    let got = rows(&events, "t");

    // The snapshot path must give the very same Arrow values for the same cells.
    let snap = cdcflow_mysql::snapshot::Snapshot::start(
        db.opts(),
        tabs.into_iter().map(std::sync::Arc::new).collect(),
        cdcflow_mysql::snapshot::SnapshotOptions::default(),
    )
    .await
    .expect("snapshot start");
    let (snap_batches, _) = snap.collect().await.expect("snapshot");
    let mut snap_rows: Vec<String> = snap_batches.values().flatten().flat_map(render).collect();
    snap_rows.sort_by_key(|r| r.split('|').nth(1).and_then(|v| v.parse::<u32>().ok()));
    assert_eq!(snap_rows, got, "snapshot and binlog agree cell by cell");
    let expected = vec![
        "+I|1|-128|255|true|-32768|65535|-8388608|16777215|-2147483648|4294967295|\
         -9223372036854775808|18446744073709551615|\
         -12345678901234567890123456789012345.123456789012345678901234567890|-99999999.99|\
         3.14159|-1.7976931348623157e308|\
         2024-02-29T23:59:59.123456|1000-01-01T00:00:00|2038-01-19T03:14:07.999Z|9999-12-31|\
         -PT3020399S|2155|\
         héllo😀|emoji 😀🎉 ünïcödé 中文|café|00ff10|ab000000|00ab|\
         {\"a\": [1, 2.5, \"x\"]}|green|a,c|02aa|true|long text 😀|0101000000000000000000f03f0000000000000040",
        "+I|2|127|0|false|32767|0|-1|8388608|2147483647|0|\
         9223372036854775807|9223372036854775808|\
         0.000000000000000000000000000001|0.01|-1.5e-10|2.718281828459045|\
         1970-01-01T00:00:00.000001|2000-06-15T12:30:45|1970-01-01T00:00:01Z|1000-01-01|\
         PT3020399.999999S|0|\
         a|b  |||00000000||[]|red||0000|false||NULL",
        "+I|3|NULL|NULL|NULL|NULL|NULL|-100|NULL|NULL|NULL|NULL|0|\
         99999999999999999999999999999999999.999999999999999999999999999999|-0.50|NULL|NULL|\
         NULL|NULL|NULL|NULL|-PT1.5S|1901| x|\
         NULL|NULL|NULL|deadbeef|NULL|{\"k\":\"v😀\"}|blue|a,b,c,d|03ff|NULL|NULL|NULL",
    ];
    assert_eq!(got.len(), 3, "three inserted rows: {got:#?}");
    for (g, e) in got.iter().zip(&expected) {
        let gc: Vec<&str> = g.split('|').collect();
        let ec: Vec<&str> = e.split('|').collect();
        for (i, (a, b)) in gc.iter().zip(&ec).enumerate() {
            assert_eq!(a, b, "column {i} of row {e}\n got {g}");
        }
        assert_eq!(gc.len(), ec.len(), "column count");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_deletes_and_multi_table_transactions() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_txn; DROP TABLE IF EXISTS bl_txn.a, bl_txn.b, bl_txn.skip; \
         CREATE TABLE bl_txn.a (id INT PRIMARY KEY, v VARCHAR(10)); \
         CREATE TABLE bl_txn.b (id BIGINT PRIMARY KEY, n DECIMAL(5,1)); \
         CREATE TABLE bl_txn.skip (id INT PRIMARY KEY)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_txn", "a"), TableId::new("bl_txn", "b")];
    let start = offset_now(db).await;
    db.exec(
        "INSERT INTO bl_txn.a VALUES (1,'x'),(2,'y'); \
         BEGIN; INSERT INTO bl_txn.b VALUES (10, 1.5); INSERT INTO bl_txn.skip VALUES (1); \
           UPDATE bl_txn.a SET v='z' WHERE id=1; INSERT INTO bl_txn.b VALUES (11, -2.0); COMMIT; \
         DELETE FROM bl_txn.a WHERE id=2; INSERT INTO bl_txn.skip VALUES (2)",
    )
    .await
    .expect("dml");
    let events = read_all(
        db,
        StartPosition::Offset(start.clone()),
        tables(db, &ids).await,
    )
    .await;

    assert_eq!(
        rows(&events, "a"),
        vec!["+I|1|x", "+I|2|y", "-U|1|x", "+U|1|z", "-D|2|y"]
    );
    assert_eq!(rows(&events, "b"), vec!["+I|10|1.5", "+I|11|-2.0"]);
    assert!(
        rows(&events, "skip").is_empty(),
        "tables not captured are skipped"
    );

    // The multi-table transaction: a's and b's rows in separate batches, only the last one
    // carries the resume offset, and sequence numbers increase.
    let bs = batches(&events);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| match e {
            ChangeEvent::Data(b) => b.seq,
            ChangeEvent::Progress { seq, .. } | ChangeEvent::SchemaChange { seq, .. } => *seq,
            _ => 0,
        })
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing seqs: {seqs:?}"
    );
    let b_batch = bs
        .iter()
        .find(|b| b.table.id.table == "b")
        .expect("batch of b");
    let a_update = bs
        .iter()
        .find(|b| b.ops().values().contains(&(Op::UpdateBefore as i8)))
        .expect("update batch");
    let offsets = [a_update.offset.is_some(), b_batch.offset.is_some()];
    assert_eq!(
        offsets.iter().filter(|o| **o).count(),
        1,
        "one offset per transaction: {offsets:?}"
    );
    // Every committed transaction ends with an offset (data or progress) past the start.
    let last = events
        .iter()
        .rev()
        .find_map(|e| match e {
            ChangeEvent::Data(b) => b.offset.clone(),
            ChangeEvent::Progress { offset, .. } => Some(offset.clone()),
            _ => None,
        })
        .expect("an offset");
    let last = BinlogOffset::from_source_offset(&last).expect("our offset");
    assert!(
        last.position > start.position,
        "{} > {}",
        last.position,
        start.position
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transaction_is_split_but_offset_only_at_commit() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_big; DROP TABLE IF EXISTS bl_big.t; \
         CREATE TABLE bl_big.t (id INT PRIMARY KEY, s VARCHAR(40), d DOUBLE)",
    )
    .await
    .expect("create");
    let start = offset_now(db).await;
    // 60,000 rows in one transaction (several thousand rows events).
    db.exec(
        "SET SESSION max_recursive_iterations = 100000; BEGIN; \
         INSERT INTO bl_big.t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) \
         SELECT i, CONCAT('row-', i), i / 7 FROM n; COMMIT",
    )
    .await
    .expect("big insert");
    let events = read_all_with(
        db,
        StartPosition::Offset(start),
        tables(db, &[TableId::new("bl_big", "t")]).await,
        |o| o.max_batch_rows = 16_384,
    )
    .await;
    let bs = batches(&events);
    let total: usize = bs.iter().map(|b| b.num_rows()).sum();
    assert_eq!(total, 60_000);
    assert!(
        bs.len() >= 4,
        "split at max_batch_rows: {} batches",
        bs.len()
    );
    assert!(
        bs.iter().all(|b| b.num_rows() <= 16_384 + 1000),
        "batches stay near the limit"
    );
    let with_offset: Vec<usize> = bs
        .iter()
        .enumerate()
        .filter(|(_, b)| b.offset.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        with_offset,
        vec![bs.len() - 1],
        "only the transaction's last batch is a resume point"
    );
    // Row order is kept across batches.
    let ids: Vec<i32> = bs
        .iter()
        .flat_map(|b| {
            b.data
                .column(0)
                .as_primitive::<arrow::datatypes::Int32Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] + 1 == w[1]) && ids[0] == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_from_file_position_and_from_mariadb_gtid() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_resume; DROP TABLE IF EXISTS bl_resume.t; \
         CREATE TABLE bl_resume.t (id INT PRIMARY KEY)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_resume", "t")];
    let start = offset_now(db).await;
    assert!(
        matches!(start.gtid, Some(GtidPos::MariaDb(_))),
        "MariaDB GTID at the start: {start}"
    );
    db.exec("INSERT INTO bl_resume.t VALUES (1); INSERT INTO bl_resume.t VALUES (2)")
        .await
        .expect("first");
    let first = read_all(db, StartPosition::Offset(start), tables(db, &ids).await).await;
    assert_eq!(rows(&first, "t"), vec!["+I|1", "+I|2"]);
    let resume = first
        .iter()
        .rev()
        .find_map(|e| match e {
            ChangeEvent::Data(b) => b.offset.clone(),
            _ => None,
        })
        .expect("offset after the second insert");
    let resume = BinlogOffset::from_source_offset(&resume).expect("offset json");
    let Some(GtidPos::MariaDb(gtid)) = resume.gtid.clone() else {
        panic!("gtid in {resume}")
    };

    db.exec("INSERT INTO bl_resume.t VALUES (3); INSERT INTO bl_resume.t VALUES (4)")
        .await
        .expect("more");
    let by_pos = read_all(
        db,
        StartPosition::Offset(resume.clone()),
        tables(db, &ids).await,
    )
    .await;
    assert_eq!(
        rows(&by_pos, "t"),
        vec!["+I|3", "+I|4"],
        "resume by file/position: nothing twice, nothing lost"
    );
    // A checkpoint taken before the first commit of a GTID start has GTIDs but no file.
    let gtid_only = BinlogOffset {
        position: cdcflow_mysql::position::BinlogPosition::new("", 4),
        gtid: Some(GtidPos::MariaDb(gtid.clone())),
    };
    let by_gtid_offset =
        read_all(db, StartPosition::Offset(gtid_only), tables(db, &ids).await).await;
    assert_eq!(
        rows(&by_gtid_offset, "t"),
        vec!["+I|3", "+I|4"],
        "resume by a GTID-only offset"
    );
    let by_gtid = read_all(
        db,
        StartPosition::Gtid(GtidPos::MariaDb(gtid)),
        tables(db, &ids).await,
    )
    .await;
    assert_eq!(
        rows(&by_gtid, "t"),
        vec!["+I|3", "+I|4"],
        "resume by MariaDB GTID"
    );
    // The GTID reached after the resumed read covers the one we resumed from.
    let after = by_gtid
        .iter()
        .rev()
        .find_map(|e| match e {
            ChangeEvent::Data(b) => b.offset.clone(),
            _ => None,
        })
        .map(|o| BinlogOffset::from_source_offset(&o).expect("json"))
        .expect("offset");
    match (after.gtid, resume.gtid) {
        (Some(GtidPos::MariaDb(a)), Some(GtidPos::MariaDb(b))) => {
            assert!(a.covers(&b) && a != b, "{a} advanced beyond {b}")
        }
        other => panic!("MariaDB GTIDs expected: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_becomes_schema_changes_and_new_rows_use_the_new_schema() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_ddl; DROP TABLE IF EXISTS bl_ddl.t; \
         CREATE TABLE bl_ddl.t (id INT PRIMARY KEY, a INT)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_ddl", "t")];
    let tabs = tables(db, &ids).await;
    let start = offset_now(db).await;
    db.exec(
        "INSERT INTO bl_ddl.t VALUES (1, 10); \
         ALTER TABLE bl_ddl.t RENAME COLUMN a TO a2; ALTER TABLE bl_ddl.t ADD COLUMN b VARCHAR(5); \
         INSERT INTO bl_ddl.t VALUES (2, 20, 'x'); TRUNCATE TABLE bl_ddl.t",
    )
    .await
    .expect("ddl");
    let events = read_all(db, StartPosition::Offset(start), tabs).await;
    let changes: Vec<&SchemaChange> = events
        .iter()
        .filter_map(|e| match e {
            ChangeEvent::SchemaChange { change, .. } => Some(change),
            _ => None,
        })
        .collect();
    let tags: Vec<&str> = changes.iter().map(|c| c.tag()).collect();
    assert_eq!(
        tags,
        vec!["rename.column", "add.column", "truncate.table"],
        "{changes:#?}"
    );
    assert_eq!(rows(&events, "t"), vec!["+I|1|10", "+I|2|20|x"]);
    let last = batches(&events)
        .last()
        .map(|b| b.table.clone())
        .expect("batch");
    assert_eq!(
        last.version, 3,
        "rows after the DDL carry the bumped schema version"
    );
    assert_eq!(
        last.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        vec!["id", "a2", "b"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_row_events_are_decoded() {
    let db = MariaDb::start_with(
        MariaDbOptions::default()
            .with_arg("--log-bin-compress=ON")
            .with_arg("--log-bin-compress-min-len=10"),
    )
    .await
    .expect("mariadb with log_bin_compress");
    db.exec(
        "CREATE DATABASE bl_z; CREATE TABLE bl_z.t (id INT PRIMARY KEY, s VARCHAR(200)); \
         CREATE TABLE bl_z.u (id INT PRIMARY KEY, s TEXT)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_z", "t"), TableId::new("bl_z", "u")];
    let start = offset_now(&db).await;
    let long = "compressible ".repeat(10);
    db.exec(&format!(
        "INSERT INTO bl_z.t VALUES (1, '{long}'), (2, '{long}'); \
         UPDATE bl_z.t SET s = 'short' WHERE id = 1; DELETE FROM bl_z.t WHERE id = 2; \
         INSERT INTO bl_z.u VALUES (1, '{long}')"
    ))
    .await
    .expect("dml");
    // Prove the server wrote compressed events (type 166-168) rather than trusting the flag.
    let kinds: Vec<(String, u64, String, u64, u64, String)> = db
        .query(&format!(
            "SHOW BINLOG EVENTS IN '{}' FROM {}",
            start.position.file, start.position.pos
        ))
        .await
        .expect("binlog events");
    assert!(
        kinds
            .iter()
            .any(|k| k.2.to_ascii_lowercase().contains("compressed")),
        "server wrote compressed rows events: {:?}",
        kinds.iter().map(|k| &k.2).collect::<Vec<_>>()
    );
    let events = read_all(&db, StartPosition::Offset(start), tables(&db, &ids).await).await;
    assert_eq!(
        rows(&events, "t"),
        vec![
            format!("+I|1|{long}"),
            format!("+I|2|{long}"),
            format!("-U|1|{long}"),
            "+U|1|short".to_string(),
            format!("-D|2|{long}"),
        ]
    );
    assert_eq!(rows(&events, "u"), vec![format!("+I|1|{long}")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_errors_for_purged_positions_and_server_id_collisions() {
    let db = MariaDb::shared().await.expect("mariadb");
    // A position in a file that does not exist (as after PURGE BINARY LOGS).
    let o = BinlogOptions::new(
        server_id(),
        StartPosition::Position(cdcflow_mysql::position::BinlogPosition::new(
            "mysql-bin.999999",
            4,
        )),
    );
    let err = match BinlogReader::connect(db.opts(), o, Vec::new()).await {
        Err(e) => e,
        Ok(mut r) => r.next_event().await.expect_err("missing file must fail"),
    };
    assert!(
        matches!(err, BinlogError::PositionUnavailable { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("mysql-bin.999999"), "{err}");

    // Two replicas with one server id: the server drops the first one.
    let id = server_id();
    let mut o = BinlogOptions::new(id, StartPosition::Latest);
    o.heartbeat = Duration::from_secs(1);
    let mut first = BinlogReader::connect(db.opts(), o.clone(), Vec::new())
        .await
        .expect("first");
    // Let the first dump thread register before the second replica connects.
    let _ = tokio::time::timeout(Duration::from_millis(1500), first.next_event()).await;
    let mut second = BinlogReader::connect(db.opts(), o, Vec::new())
        .await
        .expect("second");
    let _ = tokio::time::timeout(Duration::from_millis(1500), second.next_event()).await;
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(20), first.next_event()).await {
            Ok(Err(e)) => break e,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None)) => panic!("stream ended without an error"),
            Err(_) => panic!("first replica was not disconnected"),
        }
    };
    assert!(
        matches!(err, BinlogError::ServerIdCollision { server_id, .. } if server_id == id),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_and_truncated_real_events_are_errors_not_panics() {
    use cdcflow_mysql::builders::TableBatchBuilder;
    use cdcflow_mysql::decode::{ColumnLayout, EventAt, RowDecoder, RowsEventBody, is_rows_event};
    use futures::StreamExt;
    use mysql_common::binlog::events::EventData;

    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_bad; DROP TABLE IF EXISTS bl_bad.t; \
         CREATE TABLE bl_bad.t (id BIGINT PRIMARY KEY, d DECIMAL(20,6), s VARCHAR(300), \
           t TIME(4), dt DATETIME(6), e ENUM('x','y'), b BLOB, j JSON, bt BIT(12), f FLOAT)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_bad", "t")];
    let table = tables(db, &ids).await.pop().expect("table");
    let start = offset_now(db).await;
    db.exec(
        "INSERT INTO bl_bad.t VALUES (1, -123.456789, REPEAT('é', 120), '-101:02:03.4567', \
           '2020-02-02 02:02:02.020202', 'y', X'0102', '{\"a\":1}', b'101', 1.5), \
           (2, NULL, 'x', '00:00:00', NULL, 'x', NULL, '[]', NULL, NULL); \
         UPDATE bl_bad.t SET s = 'changed', d = 1 WHERE id = 1; DELETE FROM bl_bad.t WHERE id = 2",
    )
    .await
    .expect("dml");

    // Capture the raw TABLE_MAP and rows events.
    let mut conn = db.conn().await.expect("connect");
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .expect("capability");
    let file = start.position.file.clone().into_bytes();
    let req = mysql_async::BinlogStreamRequest::new(server_id())
        .with_non_blocking()
        .with_filename(&file)
        .with_pos(start.position.pos);
    let mut stream = conn.get_binlog_stream(req).await.expect("stream");
    let mut tme = None;
    let mut events = Vec::new();
    while let Some(ev) = stream.next().await {
        let ev = ev.expect("event");
        let t = ev.header().event_type_raw();
        if t == 19 {
            if let Ok(Some(EventData::TableMapEvent(m))) = ev.read_data() {
                tme = Some(m.into_owned());
            }
        } else if is_rows_event(t) {
            events.push((t, ev.data().to_vec()));
        }
    }
    let tme = tme.expect("table map");
    let layout = ColumnLayout::from_table_map(&tme).expect("layout");
    let decoder =
        RowDecoder::try_new(table.schema.clone(), &table.columns, &layout).expect("decoder");
    assert_eq!(events.len(), 3, "write, update, delete events");

    let at = EventAt {
        file: "mysql-bin.000001",
        pos: 4,
    };
    let decode = |t: u8, data: &[u8]| -> Result<usize, String> {
        let body = RowsEventBody::parse(t, data).map_err(|e| e.to_string())?;
        let mut out = TableBatchBuilder::try_new(&table.schema).expect("builders");
        let n = decoder
            .decode(&body, &mut out, 0, at)
            .map_err(|e| e.to_string())?;
        out.finish(&table.schema).map_err(|e| e.to_string())?;
        Ok(n)
    };
    let clean: Vec<usize> = events
        .iter()
        .map(|(t, d)| decode(*t, d).expect("clean event"))
        .collect();
    assert_eq!(clean, vec![2, 2, 1]);

    // Every truncation fails with a positioned error (a shorter event cannot hold all rows).
    let mut errors = 0;
    for ((t, d), full) in events.iter().zip(&clean) {
        for cut in 0..d.len() {
            match decode(*t, &d[..cut]) {
                Err(msg) => {
                    errors += 1;
                    assert!(
                        msg.contains("table bl_bad.t") || msg.contains("truncated"),
                        "{msg}"
                    );
                }
                // Cut exactly at a row boundary: fewer rows, never all of them.
                Ok(n) => assert!(n < *full, "a truncated event decoded all {n} rows"),
            }
        }
    }
    assert!(errors > 0);
    // Deterministic byte flips: decode or error, never panic (the test would abort).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000 {
        let (t, d) = &events[round % events.len()];
        let mut d = d.clone();
        for _ in 0..1 + round % 3 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % d.len();
            d[i] ^= (x >> 32) as u8 | 1;
        }
        let _ = decode(*t, &d);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_report_progress_while_idle() {
    let db = MariaDb::shared().await.expect("mariadb");
    let mut o = BinlogOptions::new(server_id(), StartPosition::Latest);
    o.heartbeat = Duration::from_millis(300);
    let mut r = BinlogReader::connect(db.opts(), o, Vec::new())
        .await
        .expect("connect");
    // Other tests may write meanwhile; any event is fine until a Progress arrives. The timeout
    // only guards against a hang, it asserts nothing about speed.
    let progress = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match r.next_event().await.expect("event") {
                Some(ChangeEvent::Progress { offset, .. }) => break offset,
                Some(_) => continue,
                None => panic!("blocking stream ended"),
            }
        }
    })
    .await
    .expect("a heartbeat within 30 s");
    let o = BinlogOffset::from_source_offset(&progress).expect("offset");
    assert!(o.position.pos >= 4 && !o.position.file.is_empty(), "{o}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamp_start_skips_earlier_transactions() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_ts; DROP TABLE IF EXISTS bl_ts.t; \
         CREATE TABLE bl_ts.t (id INT PRIMARY KEY)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_ts", "t")];
    db.exec("INSERT INTO bl_ts.t VALUES (1)")
        .await
        .expect("before");
    // Binlog timestamps have second resolution: leave a clear gap on both sides.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    db.exec("INSERT INTO bl_ts.t VALUES (2)")
        .await
        .expect("after");
    let events = read_all(db, StartPosition::Timestamp(now_ms), tables(db, &ids).await).await;
    assert_eq!(
        rows(&events, "t"),
        vec!["+I|2"],
        "only the transaction after the timestamp"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_map_mismatch_resyncs_the_schema_from_the_catalog() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_sync; DROP TABLE IF EXISTS bl_sync.t; \
         CREATE TABLE bl_sync.t (id INT PRIMARY KEY, x INT)",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_sync", "t")];
    let tabs = tables(db, &ids).await;
    let start = offset_now(db).await;
    // CREATE OR REPLACE of a captured table is not turned into schema changes by the DDL path;
    // the next TABLE_MAP (FULL metadata names the columns) shows the mismatch.
    db.exec(
        "INSERT INTO bl_sync.t VALUES (1, 1); \
         CREATE OR REPLACE TABLE bl_sync.t (id INT PRIMARY KEY, x INT, y VARCHAR(3)); \
         INSERT INTO bl_sync.t VALUES (2, 2, 'abc')",
    )
    .await
    .expect("dml");
    let events = read_all(db, StartPosition::Offset(start), tabs).await;
    let tags: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            ChangeEvent::SchemaChange { change, .. } => Some(change.tag()),
            _ => None,
        })
        .collect();
    assert_eq!(tags, vec!["add.column"]);
    assert_eq!(rows(&events, "t"), vec!["+I|1|1", "+I|2|2|abc"]);
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(std::cell::Cell<u64>);

impl Rng {
    fn next(&self) -> u64 {
        let mut x = self.0.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }
    fn digits(&self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn pick<'a>(&self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn text(&self, alphabet: &[&str], max: u64) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| self.pick(alphabet))
            .collect::<String>()
            .replace('\\', "\\\\")
            .replace('\'', "''")
    }
}

/// Civil date of a day count since 1970-01-01.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_rows_of_every_type_agree_between_binlog_and_snapshot() {
    let db = MariaDb::shared().await.expect("mariadb");
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bl_rand; DROP TABLE IF EXISTS bl_rand.t; \
         CREATE TABLE bl_rand.t (
           id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, mi MEDIUMINT,
           miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
           d65 DECIMAL(65,30), d10 DECIMAL(10,2), d38 DECIMAL(38,10), f FLOAT, db DOUBLE,
           dt6 DATETIME(6), dt0 DATETIME, ts3 TIMESTAMP(3) NULL, dte DATE, tm6 TIME(6), tm0 TIME,
           yr YEAR, c10 CHAR(10), vc VARCHAR(300), vl VARCHAR(20) CHARACTER SET latin1,
           tx TEXT, bl BLOB, bin4 BINARY(4), vb VARBINARY(10), js JSON,
           en ENUM('red','green','blue'), st SET('a','b','c','d'), bt BIT(10), b1 BIT(1), g GEOMETRY
         ) DEFAULT CHARSET=utf8mb4",
    )
    .await
    .expect("create");
    let ids = [TableId::new("bl_rand", "t")];
    let tabs = tables(db, &ids).await;
    let start = offset_now(db).await;

    let rng = Rng(std::cell::Cell::new(0x5eed_cdc0_f10e_2026));
    let utf8 = [
        "a", "Z", " ", "é", "ü", "中", "😀", "'", "\\", "\"", "x", "0",
    ];
    let latin1 = ["a", "é", "ü", "ß", "€", "Œ", "ÿ", " ", "'"];
    let mut values = Vec::new();
    for id in 1..=300 {
        let hex = |rng: &Rng, n: u64| {
            let bytes: String = (0..n).map(|_| format!("{:02X}", rng.below(256))).collect();
            if bytes.is_empty() {
                "''".to_string()
            } else {
                format!("X'{bytes}'")
            }
        };
        let (y, m, d) = civil(rng.range(-354_285, 2_932_896));
        let (ty, tm, td) = civil(rng.range(0, 24_855));
        let secs = rng.range(0, 86_399);
        let tsecs = rng.range(1, 86_399);
        let time_s = rng.range(-3_020_399, 3_020_399);
        let sign = if time_s < 0 { "-" } else { "" };
        let a = time_s.unsigned_abs();
        let cols: Vec<String> = vec![
            id.to_string(),
            (rng.range(-128, 127).to_string()),
            (rng.range(0, 255).to_string()),
            (rng.range(-32768, 32767).to_string()),
            (rng.range(-8_388_608, 8_388_607).to_string()),
            (rng.range(0, 16_777_215).to_string()),
            (rng.range(i64::from(i32::MIN), i64::from(i32::MAX))
                .to_string()),
            (rng.range(0, i64::from(u32::MAX)).to_string()),
            ((rng.next() as i64).to_string()),
            (rng.next().to_string()),
            ({
                let neg = if rng.below(2) == 0 { "-" } else { "" };
                let int = rng.below(36) as usize;
                format!(
                    "{neg}{}.{}",
                    rng.digits(int.max(1)),
                    rng.digits(rng.below(31) as usize).to_string() + "0"
                )
            }),
            (format!(
                "-{}.{}",
                rng.digits(1 + rng.below(8) as usize),
                rng.digits(2)
            )),
            (format!(
                "{}.{}",
                rng.digits(1 + rng.below(28) as usize),
                rng.digits(10)
            )),
            (format!(
                "{:e}",
                (rng.range(-999_999, 999_999) as f32) * 10f32.powi(rng.range(-20, 20) as i32)
            )),
            (format!(
                "{:e}",
                f64::from_bits(rng.next() & !(0x7ff << 52) | (rng.range(900, 1100) as u64) << 52)
            )),
            (format!(
                "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}'",
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                rng.below(1_000_000)
            )),
            (format!(
                "'{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}'",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            )),
            (format!(
                "'{ty:04}-{tm:02}-{td:02} {:02}:{:02}:{:02}.{:03}'",
                tsecs / 3600,
                tsecs / 60 % 60,
                tsecs % 60,
                rng.below(1000)
            )),
            (format!("'{y:04}-{m:02}-{d:02}'")),
            (format!(
                "'{sign}{}:{:02}:{:02}.{:06}'",
                a / 3600,
                a / 60 % 60,
                a % 60,
                if a == 3_020_399 {
                    0
                } else {
                    rng.below(1_000_000)
                }
            )),
            (format!("'{sign}{}:{:02}:{:02}'", a / 3600, a / 60 % 60, a % 60)),
            (if rng.below(8) == 0 {
                "0".into()
            } else {
                rng.range(1901, 2155).to_string()
            }),
            (format!("'{}'", rng.text(&utf8, 10))),
            (format!("'{}'", rng.text(&utf8, 60))),
            (format!("'{}'", rng.text(&latin1, 20))),
            (format!("'{}'", rng.text(&utf8, 200))),
            (hex(&rng, rng.below(40))),
            (hex(&rng, rng.below(5))),
            (hex(&rng, rng.below(11))),
            (format!(
                "'{{\"k{}\": [{}, \"{}\"]}}'",
                rng.below(100),
                rng.range(-1000, 1000),
                rng.text(&["a", "é", "😀"], 5)
            )),
            (format!("'{}'", rng.pick(&["red", "green", "blue"]))),
            ({
                let bits = rng.below(16);
                let labels: Vec<&str> = ["a", "b", "c", "d"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, l)| *l)
                    .collect();
                format!("'{}'", labels.join(","))
            }),
            (format!("b'{:b}'", rng.below(1024))),
            (format!("b'{}'", rng.below(2))),
            (format!(
                "ST_GeomFromText('POINT({} {})')",
                rng.range(-180, 180),
                rng.range(-90, 90)
            )),
        ];
        let mut cols = cols;
        for c in cols.iter_mut().skip(1) {
            if rng.below(10) == 0 {
                *c = "NULL".to_string();
            }
        }
        values.push(format!("({})", cols.join(", ")));
    }
    let mut conn = db.conn().await.expect("connect");
    conn.query_drop("SET time_zone = '+00:00', NAMES utf8mb4, sql_mode = ''")
        .await
        .expect("session");
    for chunk in values.chunks(50) {
        conn.query_drop(format!("INSERT INTO bl_rand.t VALUES {}", chunk.join(", ")))
            .await
            .expect("insert");
    }
    drop(conn);

    let events = read_all(db, StartPosition::Offset(start), tabs.clone()).await;
    let binlog = rows(&events, "t");
    assert_eq!(binlog.len(), 300);
    let snap = cdcflow_mysql::snapshot::Snapshot::start(
        db.opts(),
        tabs.into_iter().map(std::sync::Arc::new).collect(),
        cdcflow_mysql::snapshot::SnapshotOptions::default(),
    )
    .await
    .expect("snapshot start");
    let (snap_batches, _) = snap.collect().await.expect("snapshot");
    let mut snapshot: Vec<String> = snap_batches.values().flatten().flat_map(render).collect();
    snapshot.sort_by_key(|r| r.split('|').nth(1).and_then(|v| v.parse::<u32>().ok()));
    let names: Vec<String> = tables(db, &ids).await[0]
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(snapshot.len(), binlog.len(), "both paths see every row");
    let mut diffs = Vec::new();
    for (b, s) in binlog.iter().zip(&snapshot) {
        for (i, (x, y)) in b.split('|').zip(s.split('|')).enumerate().skip(1) {
            if x != y {
                diffs.push(format!(
                    "row {} column {}: binlog {x:?} snapshot {y:?}",
                    b.split('|').nth(1).unwrap_or("?"),
                    names[i - 1]
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} cells differ:\n{}",
        diffs.len(),
        diffs
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
