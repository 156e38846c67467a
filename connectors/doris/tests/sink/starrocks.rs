//! StarRocks: Primary Key tables over the MySQL protocol, `__op` upserts and deletes.

use cdcflow_doris::System;
use cdcflow_doris::encode::{Compression, Format};
use cdcflow_engine::change::Op;
use cdcflow_engine::component::Sink;
use cdcflow_engine::schema::CdcType;
use cdcflow_testkit::emulator::{ColumnType, KeysType};
use serde_json::json;

use crate::common::*;
use crate::doris::{orders, orders_batch};

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
    let emu = emulator(System::StarRocks).await;
    let mut s = settings(&emu, System::StarRocks);
    s.format = format.clone();
    s.compression = compression;
    let mut sink = sink(&emu, s, None).await;
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    let sch = emu.schema("app", "orders").unwrap();
    assert_eq!(sch.keys_type, KeysType::Primary);
    let ts = sch.columns.iter().find(|c| c.name == "ts").unwrap();
    assert!(matches!(ts.ty, ColumnType::DateTime { .. }), "{:?}", ts.ty);
    sink.write(orders_batch(
        &t,
        &[1, 2, 3],
        &[Some("a"), Some("b"), None],
        &[Op::Insert; 3],
        &[0, 0, 0],
        1,
    ))
    .await
    .unwrap();
    sink.write(orders_batch(
        &t,
        &[2, 2, 3, 4],
        &[Some("b"), Some("b2"), None, Some("d")],
        &[Op::UpdateBefore, Op::UpdateAfter, Op::Delete, Op::Insert],
        &[5000, 5000, 6000, 7000],
        2,
    ))
    .await
    .unwrap();
    sink.flush().await.unwrap();
    let got = rows(&emu, "app", "orders", "id");
    // StarRocks DATETIME keeps the fraction cdcflow sends (Flink's sink drops it).
    let mut want = vec![expected(1, "a"), expected(2, "b2"), expected(4, "d")];
    for (w, g) in want.iter_mut().zip(&got) {
        w["ts"] = g["ts"].clone();
        assert!(
            g["ts"].as_str().unwrap().starts_with("2024-01-02 03:04:05"),
            "{g}"
        );
    }
    assert_eq!(got, want, "format {format:?}, {compression:?}");
}

#[tokio::test]
async fn json_upsert_and_delete() {
    roundtrip(Format::Json, Compression::None).await;
}

#[tokio::test]
async fn csv_upsert_and_delete_with_op_column() {
    roundtrip(Format::safe_csv(), Compression::None).await;
}

#[tokio::test]
async fn compressed_bodies() {
    roundtrip(Format::Json, Compression::Gzip).await;
    roundtrip(Format::safe_csv(), Compression::Lz4Frame).await;
}

#[tokio::test]
async fn tables_without_primary_key_are_refused() {
    let emu = emulator(System::StarRocks).await;
    let mut sink = sink(&emu, settings(&emu, System::StarRocks), None).await;
    let t = schema(
        "app",
        "log",
        vec![col("msg", CdcType::String, true)],
        &[],
        1,
    );
    let err = sink
        .create_table(&t)
        .await
        .expect_err("StarRocks needs a primary key");
    assert!(err.to_string().contains("sink"), "{err}");
}

#[tokio::test]
async fn decimal_keys_become_varchar() {
    let emu = emulator(System::StarRocks).await;
    let mut sink = sink(&emu, settings(&emu, System::StarRocks), None).await;
    let t = schema(
        "app",
        "dk",
        vec![
            col(
                "k",
                CdcType::Decimal {
                    precision: 8,
                    scale: 4,
                },
                false,
            ),
            col("v", CdcType::Int, true),
        ],
        &["k"],
        1,
    );
    sink.create_table(&t).await.unwrap();
    let sch = emu.schema("app", "dk").unwrap();
    assert_eq!(sch.columns[0].ty, ColumnType::Varchar(10));
}

#[tokio::test]
async fn key_changing_updates_leave_only_the_new_rows() {
    let emu = emulator(System::StarRocks).await;
    let mut sink = sink(&emu, settings(&emu, System::StarRocks), None).await;
    let t = orders("app");
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
    sink.flush().await.unwrap();
    // UPDATE SET id = id + 1000 for 1 and 3; 2 only changes its name.
    sink.write(orders_batch(
        &t,
        &[1, 1001, 2, 2, 3, 1003],
        &[
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b2"),
            Some("c"),
            Some("c"),
        ],
        &[
            Op::UpdateBefore,
            Op::UpdateAfter,
            Op::UpdateBefore,
            Op::UpdateAfter,
            Op::UpdateBefore,
            Op::UpdateAfter,
        ],
        &[5000; 6],
        2,
    ))
    .await
    .unwrap();
    sink.flush().await.unwrap();
    let got: Vec<(i64, String)> = rows(&emu, "app", "orders", "id")
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(2, "b2".into()), (1001, "a".into()), (1003, "c".into())]
    );
}
