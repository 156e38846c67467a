//! Schema evolution applied to the sink table, and data written across it.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, StringArray};
use cdcflow_doris::System;
use cdcflow_engine::change::{ColumnPosition, Op, SchemaChange};
use cdcflow_engine::component::Sink;
use cdcflow_engine::schema::{CdcType, TableId};
use serde_json::json;

use crate::common::*;

async fn evolve(system: System) {
    let emu = emulator(system).await;
    let mut sink = sink(&emu, settings(&emu, system), None).await;
    let id = TableId::new("app", "t");
    let v1 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("a", CdcType::Varchar { length: 10 }, true),
        ],
        &["id"],
        1,
    );
    sink.create_table(&v1).await.unwrap();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(StringArray::from(vec!["x"])),
    ];
    sink.write(batch(&v1, cols, &[Op::Insert], &[0], 1))
        .await
        .unwrap();

    // ADD COLUMN b, then rows carrying it.
    let b = col("b", CdcType::Int, true);
    let v2 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("a", CdcType::Varchar { length: 10 }, true),
            b.clone(),
        ],
        &["id"],
        2,
    );
    sink.flush().await.unwrap();
    sink.apply_schema_change(
        &id,
        &SchemaChange::AddColumn {
            columns: vec![(b, ColumnPosition::Last)],
        },
        &v2,
    )
    .await
    .unwrap();
    let names: Vec<String> = emu
        .schema("app", "t")
        .unwrap()
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, vec!["id", "a", "b"], "{system:?}");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![2])),
        Arc::new(StringArray::from(vec!["y"])),
        Arc::new(arrow::array::Int32Array::from(vec![7])),
    ];
    sink.write(batch(&v2, cols, &[Op::Insert], &[0], 2))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        rows(&emu, "app", "t", "id"),
        vec![
            json!({"id": 1, "a": "x", "b": null}),
            json!({"id": 2, "a": "y", "b": 7})
        ],
        "{system:?}"
    );

    // RENAME a → c.
    let v3 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("c", CdcType::Varchar { length: 10 }, true),
            col("b", CdcType::Int, true),
        ],
        &["id"],
        3,
    );
    sink.apply_schema_change(
        &id,
        &SchemaChange::RenameColumn {
            renames: vec![("a".into(), "c".into())],
        },
        &v3,
    )
    .await
    .unwrap();
    // MODIFY b to BIGINT (widening).
    let v4 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("c", CdcType::Varchar { length: 10 }, true),
            col("b", CdcType::BigInt, true),
        ],
        &["id"],
        4,
    );
    sink.apply_schema_change(
        &id,
        &SchemaChange::AlterColumnType {
            column: col("b", CdcType::BigInt, true),
        },
        &v4,
    )
    .await
    .unwrap();
    // DROP c.
    let v5 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("b", CdcType::BigInt, true),
        ],
        &["id"],
        5,
    );
    sink.apply_schema_change(
        &id,
        &SchemaChange::DropColumn {
            columns: vec!["c".into()],
        },
        &v5,
    )
    .await
    .unwrap();
    let sch = emu.schema("app", "t").unwrap();
    let names: Vec<String> = sch.columns.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, vec!["id", "b"], "{system:?}");
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![3])),
        Arc::new(Int64Array::from(vec![5_000_000_000])),
    ];
    sink.write(batch(&v5, cols, &[Op::Insert], &[0], 3))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(rows(&emu, "app", "t", "id").len(), 3, "{system:?}");

    // Applying the same ADD again (a replay after a restart) is idempotent.
    let again = col("b", CdcType::BigInt, true);
    sink.apply_schema_change(
        &id,
        &SchemaChange::AddColumn {
            columns: vec![(again, ColumnPosition::Last)],
        },
        &v5,
    )
    .await
    .unwrap();

    // TRUNCATE, then DROP TABLE.
    sink.apply_schema_change(&id, &SchemaChange::TruncateTable, &v5)
        .await
        .unwrap();
    assert!(emu.rows("app", "t").unwrap().is_empty(), "{system:?}");
    sink.apply_schema_change(&id, &SchemaChange::DropTable, &v5)
        .await
        .unwrap();
    assert!(emu.rows("app", "t").is_err(), "{system:?}: table dropped");
}

#[tokio::test]
async fn doris_add_rename_modify_drop_truncate() {
    evolve(System::Doris).await;
}

#[tokio::test]
async fn starrocks_add_rename_modify_drop_truncate() {
    evolve(System::StarRocks).await;
}

#[tokio::test]
async fn ignored_new_columns_are_cut_off() {
    // IGNORE mode: the engine never applies the ADD COLUMN, but rows carry the new column.
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.format = cdcflow_doris::encode::Format::safe_csv();
    let mut sink = sink(&emu, s, None).await;
    let v1 = schema(
        "app",
        "t",
        vec![col("id", CdcType::BigInt, false)],
        &["id"],
        1,
    );
    sink.create_table(&v1).await.unwrap();
    let v2 = schema(
        "app",
        "t",
        vec![
            col("id", CdcType::BigInt, false),
            col("extra", CdcType::String, true),
        ],
        &["id"],
        2,
    );
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1])),
        Arc::new(StringArray::from(vec!["e"])),
    ];
    sink.write(batch(&v2, cols, &[Op::Insert], &[0], 1))
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(rows(&emu, "app", "t", "id"), vec![json!({"id": 1})]);
}
