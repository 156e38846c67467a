//! Doris: auto-created UNIQUE tables, upserts and deletes, every format, compression.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, DurationMicrosecondArray,
    Int64Array, StringArray, TimestampMicrosecondArray,
};
use cdcflow_doris::System;
use cdcflow_doris::encode::{Compression, Format};
use cdcflow_engine::change::Op;
use cdcflow_engine::component::Sink;
use cdcflow_engine::schema::{CdcType, TableSchemaRef};
use cdcflow_testkit::emulator::KeysType;
use serde_json::json;

use crate::common::*;

pub fn orders(db: &str) -> TableSchemaRef {
    schema(
        db,
        "orders",
        vec![
            col("id", CdcType::BigInt, false),
            col("name", CdcType::Varchar { length: 20 }, true),
            col(
                "price",
                CdcType::Decimal {
                    precision: 10,
                    scale: 2,
                },
                true,
            ),
            col("ts", CdcType::Timestamp { precision: 3 }, true),
            col("d", CdcType::Date, true),
            col("t", CdcType::Time { precision: 0 }, true),
            col("b", CdcType::Bytes, true),
            col("ok", CdcType::Boolean, true),
        ],
        &["id"],
        1,
    )
}

/// Rows: ids, names, prices (cents), ops, event ms.
pub fn orders_batch(
    s: &TableSchemaRef,
    ids: &[i64],
    names: &[Option<&str>],
    ops: &[Op],
    ts: &[i64],
    seq: u64,
) -> cdcflow_engine::change::ChangeBatch {
    let n = ids.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.to_vec())),
        Arc::new(StringArray::from(names.to_vec())),
        Arc::new(
            Decimal128Array::from(
                ids.iter()
                    .map(|i| Some(i128::from(i * 1000 + 5)))
                    .collect::<Vec<_>>(),
            )
            .with_precision_and_scale(10, 2)
            .unwrap(),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(
                1_704_164_645_123_000
            );
            n
        ])),
        Arc::new(Date32Array::from(vec![Some(19724); n])),
        Arc::new(DurationMicrosecondArray::from(vec![Some(3_723_000_000); n])),
        Arc::new(BinaryArray::from(vec![Some(&b"\x10"[..]); n])),
        Arc::new(BooleanArray::from(vec![Some(true); n])),
    ];
    batch(s, cols, ops, ts, seq)
}

fn expected(id: i64, name: &str) -> serde_json::Value {
    json!({
        "id": id,
        "name": name,
        "price": format!("{}.{:02}", (id * 1000 + 5) / 100, (id * 1000 + 5) % 100),
        "ts": "2024-01-02 03:04:05.123",
        "d": "2024-01-02",
        "t": "01:02:03",
        "b": "EA==",
        "ok": true,
    })
}

async fn roundtrip(format: Format, compression: Compression) {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.format = format.clone();
    s.compression = compression;
    let mut sink = sink(&emu, s, None).await;
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    let schema = emu.schema("app", "orders").unwrap();
    assert_eq!(schema.keys_type, KeysType::Unique);
    sink.write(orders_batch(
        &t,
        &[1, 2, 3],
        &[Some("a"), Some("b,\"x\""), None],
        &[Op::Insert; 3],
        &[0, 0, 0],
        1,
    ))
    .await
    .unwrap();
    sink.write(orders_batch(
        &t,
        &[2, 2, 3, 4],
        &[Some("b,\"x\""), Some("b2"), None, Some("d")],
        &[Op::UpdateBefore, Op::UpdateAfter, Op::Delete, Op::Insert],
        &[5000, 5000, 6000, 7000],
        2,
    ))
    .await
    .unwrap();
    sink.flush().await.unwrap();
    let got = rows(&emu, "app", "orders", "id");
    assert_eq!(
        got,
        vec![expected(1, "a"), expected(2, "b2"), expected(4, "d")],
        "format {format:?}, {compression:?}"
    );
    let loaded: u64 = sink.loaded_rows().iter().map(|(_, n)| n).sum();
    assert_eq!(loaded, 6, "the -U row is skipped, every other row is sent");
}

#[tokio::test]
async fn json_lines_upsert_and_delete() {
    roundtrip(Format::Json, Compression::None).await;
}

#[tokio::test]
async fn csv_with_safe_separators_upsert_and_delete() {
    roundtrip(Format::safe_csv(), Compression::None).await;
}

#[tokio::test]
async fn arrow_ipc_upsert_and_delete() {
    roundtrip(Format::Arrow, Compression::None).await;
}

#[tokio::test]
async fn gzip_and_lz4_bodies() {
    roundtrip(Format::Json, Compression::Gzip).await;
    roundtrip(Format::safe_csv(), Compression::Lz4Frame).await;
}

#[tokio::test]
async fn csv_switches_to_json_when_data_holds_a_separator() {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.format = Format::safe_csv();
    let mut sink = sink(&emu, s, None).await;
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    sink.write(orders_batch(
        &t,
        &[1],
        &[Some("plain")],
        &[Op::Insert],
        &[0],
        1,
    ))
    .await
    .unwrap();
    sink.write(orders_batch(
        &t,
        &[2],
        &[Some("evil\u{1}value\u{2}")],
        &[Op::Insert],
        &[0],
        2,
    ))
    .await
    .unwrap();
    sink.flush().await.unwrap();
    let got = rows(&emu, "app", "orders", "id");
    assert_eq!(
        got,
        vec![expected(1, "plain"), expected(2, "evil\u{1}value\u{2}")]
    );
}

#[tokio::test]
async fn created_tables_have_no_sequence_and_a_replay_ends_with_the_newest_rows() {
    let emu = emulator(System::Doris).await;
    let t = orders("app");
    // Run 1 loads a burst of changes, all within one binlog second.
    let mut run1 = sink(&emu, settings(&emu, System::Doris), None).await;
    run1.create_table(&t).await.unwrap();
    let sch = emu.schema("app", "orders").unwrap();
    assert!(
        !sch.properties
            .iter()
            .any(|(k, _)| k.starts_with("function_column.")),
        "{:?}",
        sch.properties
    );
    assert!(
        !sch.columns.iter().any(|c| c.name.contains("SEQUENCE")),
        "no hidden sequence column: {:?}",
        sch.columns
    );
    let older = |seq| {
        orders_batch(
            &t,
            &[1, 1, 1, 2, 3, 3],
            &[
                Some("a"),
                Some("a"),
                Some("b"),
                Some("x"),
                Some("y"),
                Some("y"),
            ],
            &[
                Op::Insert,
                Op::UpdateBefore,
                Op::UpdateAfter,
                Op::Insert,
                Op::Insert,
                Op::Delete,
            ],
            &[7000; 6],
            seq,
        )
    };
    run1.write(older(1)).await.unwrap();
    run1.flush().await.unwrap();
    let checkpointed_tail = || {
        orders_batch(
            &t,
            &[1, 1, 2, 5],
            &[Some("b"), Some("c"), Some("x"), Some("w")],
            &[Op::UpdateBefore, Op::UpdateAfter, Op::Delete, Op::Insert],
            &[7000; 4],
            2,
        )
    };
    run1.write(checkpointed_tail()).await.unwrap();
    run1.flush().await.unwrap();
    assert_eq!(
        rows(&emu, "app", "orders", "id"),
        vec![expected(1, "c"), expected(5, "w")]
    );
    drop(run1);
    // Run 2 (after a crash; the checkpoint is after the first load) replays the second load's
    // rows — same second, fresh sink, so fewer rows of that second precede them than in run 1 —
    // then the newer changes of that same second.
    let mut run2 = sink(&emu, settings(&emu, System::Doris), None).await;
    run2.write(checkpointed_tail()).await.unwrap();
    run2.flush().await.unwrap();
    run2.write(orders_batch(
        &t,
        &[1, 1, 4, 5],
        &[Some("c"), Some("d"), Some("z"), Some("w")],
        &[Op::UpdateBefore, Op::UpdateAfter, Op::Insert, Op::Delete],
        &[7000; 4],
        3,
    ))
    .await
    .unwrap();
    run2.flush().await.unwrap();
    assert_eq!(
        rows(&emu, "app", "orders", "id"),
        vec![expected(1, "d"), expected(4, "z")],
        "newest values win and deletes are applied"
    );
}

#[tokio::test]
async fn key_changing_updates_leave_only_the_new_rows() {
    let emu = emulator(System::Doris).await;
    for format in [Format::Json, Format::safe_csv(), Format::Arrow] {
        let db = match format {
            Format::Json => "kj",
            Format::Arrow => "ka",
            Format::Csv { .. } => "kc",
        };
        let mut s = settings(&emu, System::Doris);
        s.format = format.clone();
        let mut sink = sink(&emu, s, None).await;
        let t = orders(db);
        sink.create_table(&t).await.unwrap();
        sink.write(orders_batch(
            &t,
            &[1, 2, 3],
            &[Some("a"), Some("b"), Some("c")],
            &[Op::Insert; 3],
            &[0; 3],
            1,
        ))
        .await
        .unwrap();
        // UPDATE SET id = id + 1000 for 1 and 3; 2 only changes its name; a -U at the end of a
        // batch whose +U comes in the next one.
        sink.write(orders_batch(
            &t,
            &[1, 1001, 2, 2, 3],
            &[Some("a"), Some("a"), Some("b"), Some("b2"), Some("c")],
            &[
                Op::UpdateBefore,
                Op::UpdateAfter,
                Op::UpdateBefore,
                Op::UpdateAfter,
                Op::UpdateBefore,
            ],
            &[5000; 5],
            2,
        ))
        .await
        .unwrap();
        sink.write(orders_batch(
            &t,
            &[1003],
            &[Some("c")],
            &[Op::UpdateAfter],
            &[5000],
            3,
        ))
        .await
        .unwrap();
        sink.flush().await.unwrap();
        assert_eq!(
            rows(&emu, db, "orders", "id"),
            vec![expected(2, "b2"), expected(1001, "a"), expected(1003, "c")],
            "{format:?}"
        );
    }
}

#[tokio::test]
async fn duplicate_tables_get_inserts_only() {
    let emu = emulator(System::Doris).await;
    let mut sink = sink(&emu, settings(&emu, System::Doris), None).await;
    let t = schema(
        "app",
        "log",
        vec![
            col("id", CdcType::BigInt, true),
            col("msg", CdcType::String, true),
        ],
        &[],
        1,
    );
    sink.create_table(&t).await.unwrap();
    assert_eq!(
        emu.schema("app", "log").unwrap().keys_type,
        KeysType::Duplicate
    );
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 1, 2])),
        Arc::new(StringArray::from(vec!["a", "a", "b"])),
    ];
    sink.write(batch(
        &t,
        cols,
        &[Op::Insert, Op::Delete, Op::Insert],
        &[0, 0, 0],
        1,
    ))
    .await
    .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        rows(&emu, "app", "log", "id"),
        vec![json!({"id": 1, "msg": "a"}), json!({"id": 2, "msg": "b"})]
    );
}

#[tokio::test]
async fn flush_on_row_limit_loads_without_explicit_flush() {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.max_rows = 2;
    let mut sink = sink(&emu, s, None).await;
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    sink.write(orders_batch(
        &t,
        &[1, 2],
        &[Some("a"), Some("b")],
        &[Op::Insert; 2],
        &[0, 0],
        1,
    ))
    .await
    .unwrap();
    // The next write waits for the table's load in flight before starting another one.
    sink.write(orders_batch(
        &t,
        &[3, 4],
        &[Some("c"), Some("d")],
        &[Op::Insert; 2],
        &[0, 0],
        2,
    ))
    .await
    .unwrap();
    sink.write(orders_batch(&t, &[5], &[Some("e")], &[Op::Insert], &[0], 3))
        .await
        .unwrap();
    assert!(
        emu.rows("app", "orders").unwrap().len() >= 2,
        "a full buffer is loaded by write"
    );
    sink.flush().await.unwrap();
    assert_eq!(emu.rows("app", "orders").unwrap().len(), 5);
    assert!(emu.counters().be_stream_loads >= 3, "{:?}", emu.counters());
}

#[tokio::test]
async fn identifiers_cannot_inject_sql() {
    let emu = emulator(System::Doris).await;
    let mut sink = sink(&emu, settings(&emu, System::Doris), None).await;
    let evil = "t`; DROP TABLE x; --";
    let t = schema(
        "app",
        evil,
        vec![
            col("id", CdcType::Int, false),
            col("we`ird name", CdcType::String, true),
        ],
        &["id"],
        1,
    );
    sink.create_table(&t).await.unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(arrow::array::Int32Array::from(vec![7])),
        Arc::new(StringArray::from(vec!["v"])),
    ];
    sink.write(batch(&t, cols, &[Op::Insert], &[0], 1))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        rows(&emu, "app", evil, "id"),
        vec![json!({"id": 7, "we`ird name": "v"})]
    );
}

#[tokio::test]
async fn many_tables_load_in_parallel_and_in_order_per_table() {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.max_rows = 1;
    s.max_inflight = 2;
    let mut sink = sink(&emu, s, None).await;
    let tables: Vec<TableSchemaRef> = (0..3)
        .map(|i| {
            schema(
                "app",
                &format!("t{i}"),
                vec![
                    col("id", CdcType::BigInt, false),
                    col("v", CdcType::String, true),
                ],
                &["id"],
                1,
            )
        })
        .collect();
    for t in &tables {
        sink.create_table(t).await.unwrap();
    }
    // Every write fills a buffer, so loads of different tables overlap; updates of one key must
    // still land in order.
    for round in 0..5i64 {
        for t in &tables {
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(StringArray::from(vec![format!("r{round}")])),
            ];
            sink.write(batch(t, cols, &[Op::UpdateAfter], &[0], round as u64))
                .await
                .unwrap();
        }
    }
    sink.flush().await.unwrap();
    for i in 0..3 {
        assert_eq!(
            rows(&emu, "app", &format!("t{i}"), "id"),
            vec![json!({"id": 1, "v": "r4"})]
        );
    }
    let per_table: Vec<u64> = sink.loaded_rows().into_iter().map(|(_, n)| n).collect();
    assert_eq!(per_table, vec![5, 5, 5]);
}

#[tokio::test]
async fn existing_tables_are_inspected_before_the_first_write() {
    let emu = emulator(System::Doris).await;
    emu.create_table_sql("app", "CREATE TABLE log (id BIGINT, msg STRING) DUPLICATE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1")
        .unwrap();
    emu.create_table_sql(
        "app",
        "CREATE TABLE kv (id BIGINT, msg STRING) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 \
         PROPERTIES ('function_column.sequence_type' = 'BIGINT')",
    )
    .unwrap();
    let mut sink = sink(&emu, settings(&emu, System::Doris), None).await;
    for name in ["log", "kv"] {
        let t = schema(
            "app",
            name,
            vec![
                col("id", CdcType::BigInt, false),
                col("msg", CdcType::String, true),
            ],
            &["id"],
            1,
        );
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![1, 1])),
            Arc::new(StringArray::from(vec!["a", "b"])),
        ];
        // No create_table: the sink must not send a delete sign to the duplicate table, and must
        // feed the unique table's sequence column.
        sink.write(batch(&t, cols, &[Op::Insert, Op::UpdateAfter], &[5, 6], 1))
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    assert_eq!(
        emu.rows("app", "log").unwrap().len(),
        2,
        "duplicate table appends"
    );
    assert_eq!(
        rows(&emu, "app", "kv", "id"),
        vec![json!({"id": 1, "msg": "b"})]
    );
}
