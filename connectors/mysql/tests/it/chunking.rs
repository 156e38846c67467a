//! Chunk splitting: even numeric split, LIMIT walk on strings, composite keys, no key, NULL keys.

use std::collections::BTreeSet;

use cdcflow_mysql::schema::TableFilter;
use cdcflow_mysql::snapshot::SnapshotOptions;

use crate::common::{fresh_db, load, selector, server, snapshot};

fn opts(chunk_size: usize) -> SnapshotOptions {
    SnapshotOptions {
        chunk_size,
        batch_rows: 37,
        parallelism: 3,
        ..Default::default()
    }
}

/// Inserts `n` rows with `INSERT ... SELECT` over a sequence.
async fn fill(db: &str, table: &str, n: u32, select: &str) {
    server()
        .await
        .exec(&format!(
            "INSERT INTO {db}.{table} SELECT {select} FROM {db}.seq_1_to_{n}"
        ))
        .await
        .expect("fill");
}

#[tokio::test]
async fn numeric_keys_split_evenly_and_every_row_arrives_once() {
    let db = fresh_db("chunk_num").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, v VARCHAR(20))"
        ))
        .await
        .unwrap();
    fill(&db, "t", 1000, "seq * 3, CONCAT('v', seq)").await;
    server()
        .await
        .exec(&format!("ANALYZE TABLE {db}.t"))
        .await
        .unwrap();
    let tables = load(&db, "t").await;
    let (rows, summary, batches) = snapshot(&tables, opts(100)).await;
    let ids: Vec<i64> = rows[0].iter().map(|r| r[0].parse().unwrap()).collect();
    let set: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), 1000, "no duplicates");
    assert_eq!(set, (1..=1000).map(|i| i * 3).collect(), "every row");
    assert!(
        summary.marks.len() >= 5,
        "1000 rows / 100 per chunk gives several chunks, got {}",
        summary.marks.len()
    );
    assert_eq!(summary.marks.iter().map(|m| m.rows).sum::<u64>(), 1000);
    assert!(summary.marks.iter().all(|m| m.chunk.key_column == Some(0)));
    assert!(
        batches[0].iter().all(|b| b.num_rows() <= 37),
        "batches are cut at batch_rows"
    );
    let lasts = summary.marks.iter().filter(|m| m.chunk.last).count();
    assert_eq!(lasts, 1, "exactly one last chunk");
}

#[tokio::test]
async fn string_and_composite_keys_walk_with_limit() {
    let db = fresh_db("chunk_str").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.s (k VARCHAR(20) PRIMARY KEY, v INT);
             CREATE TABLE {db}.c (a INT, b VARCHAR(5), v INT, PRIMARY KEY (a, b))"
        ))
        .await
        .unwrap();
    fill(&db, "s", 500, "CONCAT('key', LPAD(seq, 5, '0')), seq").await;
    // Composite key: the first column repeats 50 times, so chunks must take whole groups.
    fill(&db, "c", 500, "seq DIV 50, CONCAT('b', seq), seq").await;
    let tables = load(&db, "s|c").await;
    let (rows, summary, _) = snapshot(&tables, opts(64)).await;
    for (i, t) in tables.iter().enumerate() {
        let vs: BTreeSet<i64> = rows[i]
            .iter()
            .map(|r| r.last().unwrap().parse().unwrap())
            .collect();
        assert_eq!(rows[i].len(), 500, "{}: no duplicates", t.id);
        assert_eq!(vs, (1..=500).collect(), "{}: every row", t.id);
        let chunks = summary.marks.iter().filter(|m| m.table == t.id).count();
        assert!(
            chunks > 1,
            "{}: split into several chunks, got {chunks}",
            t.id
        );
    }
}

#[tokio::test]
async fn tables_without_key_and_nullable_chunk_keys() {
    let db = fresh_db("chunk_nokey").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.nokey (x INT, y VARCHAR(5));
             CREATE TABLE {db}.nullable (x INT, y INT);
             CREATE TABLE {db}.empty (id INT PRIMARY KEY)"
        ))
        .await
        .unwrap();
    fill(&db, "nokey", 300, "seq, 'a'").await;
    fill(&db, "nullable", 300, "IF(seq % 10 = 0, NULL, seq), seq").await;
    let tables = load(&db, "nokey|nullable|empty").await;
    let mut o = opts(50);
    o.chunk_keys = vec![(
        TableFilter::new(&[selector(&db, "nullable")], &[]),
        "x".into(),
    )];
    let (rows, summary, _) = snapshot(&tables, o).await;
    // tables are sorted: empty, nokey, nullable
    assert!(rows[0].is_empty(), "empty table");
    assert_eq!(rows[1].len(), 300, "no-key table read whole");
    assert_eq!(
        summary
            .marks
            .iter()
            .filter(|m| m.table.table == "nokey")
            .count(),
        1,
        "one chunk without a key"
    );
    let ys: BTreeSet<i64> = rows[2].iter().map(|r| r[1].parse().unwrap()).collect();
    assert_eq!(
        rows[2].len(),
        300,
        "rows with NULL chunk keys are read once"
    );
    assert_eq!(ys, (1..=300).collect());
    assert!(
        summary
            .marks
            .iter()
            .filter(|m| m.table.table == "nullable")
            .count()
            > 1
    );
}

#[tokio::test]
async fn every_key_kind_splits_and_reads_each_row_once() {
    let db = fresh_db("chunk_kinds").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.ubig (k BIGINT UNSIGNED PRIMARY KEY, v INT);
             CREATE TABLE {db}.neg (k INT PRIMARY KEY, v INT);
             CREATE TABLE {db}.dt (k DATETIME(6) PRIMARY KEY, v INT);
             CREATE TABLE {db}.dec (k DECIMAL(20,4) PRIMARY KEY, v INT);
             CREATE TABLE {db}.vb (k VARBINARY(8) PRIMARY KEY, v INT)"
        ))
        .await
        .unwrap();
    // Keys straddling i64::MAX, negative keys, temporal, decimal and raw-byte keys.
    fill(
        &db,
        "ubig",
        400,
        "18446744073709551615 - seq * 100000000000000, seq",
    )
    .await;
    fill(&db, "neg", 400, "-7 * CAST(seq AS SIGNED), seq").await;
    fill(
        &db,
        "dt",
        400,
        "TIMESTAMPADD(SECOND, seq * 3601, '1999-12-31 23:00:00.5'), seq",
    )
    .await;
    fill(&db, "dec", 400, "seq / 7, seq").await;
    fill(&db, "vb", 400, "UNHEX(LPAD(HEX(seq * 977), 6, 'F')), seq").await;
    let tables = load(&db, "ubig|neg|dt|dec|vb").await;
    let (rows, summary, _) = snapshot(&tables, opts(50)).await;
    for (i, t) in tables.iter().enumerate() {
        let vs: BTreeSet<i64> = rows[i].iter().map(|r| r[1].parse().unwrap()).collect();
        assert_eq!(rows[i].len(), 400, "{}: no duplicates", t.id);
        assert_eq!(vs, (1..=400).collect(), "{}: every row", t.id);
        let chunks = summary.marks.iter().filter(|m| m.table == t.id).count();
        assert!(
            chunks > 1,
            "{}: split into several chunks, got {chunks}",
            t.id
        );
    }
}
