//! Shared fixtures for the engine's unit tests: a one-column keyed table and its change batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch};

use crate::change::{ChangeBatch, ChangeEvent, SourceOffset};
use crate::schema::{CdcType, ColumnDef, TableId, TableSchema, TableSchemaRef};

/// `db.t (id INT PRIMARY KEY)`.
pub(crate) fn id_table() -> TableSchemaRef {
    Arc::new(TableSchema::new(
        TableId::new("db", "t"),
        vec![ColumnDef {
            name: "id".into(),
            data_type: CdcType::Int,
            nullable: false,
            default: None,
            comment: None,
            source_type: "int".into(),
        }],
        vec!["id".into()],
        None,
        1,
    ))
}

/// Inserts of `ids` into `s` as one batch.
pub(crate) fn id_batch(
    s: &TableSchemaRef,
    ids: impl IntoIterator<Item = i32>,
    seq: u64,
    offset: Option<SourceOffset>,
) -> ChangeEvent {
    let ids: Vec<i32> = ids.into_iter().collect();
    let n = ids.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(ids)),
        Arc::new(Int8Array::from(vec![0i8; n])),
        Arc::new(Int64Array::from(vec![0i64; n])),
    ];
    ChangeEvent::Data(ChangeBatch {
        table: s.clone(),
        data: RecordBatch::try_new(s.arrow.clone(), cols).expect("fixture batch"),
        seq,
        offset,
    })
}
