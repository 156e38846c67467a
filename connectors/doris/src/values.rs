//! `sink: {type: values}`: Flink CDC's test sink. Prints every change (`print.enabled`, default
//! true) and can keep the tables materialized in memory (`materialized.in.memory`, default false)
//! in a process-wide store that examples and tests read with [`materialized_rows`].
//!
//! Rows are rendered with the same cell rendering as the Stream Load CSV encoder, so what this
//! sink shows is what Doris or StarRocks would receive.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use async_trait::async_trait;
use cdcflow_engine::change::{ChangeBatch, Op, SchemaChange};
use cdcflow_engine::component::{BuildContext, Sink, SinkFactory, ValidatedSink};
use cdcflow_engine::config::{ComponentDef, Diagnostics, PipelineOptions, validate_values_sink};
use cdcflow_engine::schema::{TableId, TableSchemaRef};

use crate::encode::{LocalZone, render_cell};

/// One row as text cells (`None` is NULL).
pub type Row = Vec<Option<String>>;

/// One materialized table: column names and rows by key (all columns when there is no key).
#[derive(Debug, Clone, Default)]
struct MemTable {
    columns: Vec<String>,
    rows: BTreeMap<Vec<Option<String>>, Vec<Option<String>>>,
}

fn store() -> &'static Mutex<HashMap<TableId, MemTable>> {
    static STORE: OnceLock<Mutex<HashMap<TableId, MemTable>>> = OnceLock::new();
    STORE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The rows of a table materialized by `values` sinks in this process, sorted by key (cells as
/// text, `None` for NULL), with the column names.
pub fn materialized_rows(table: &TableId) -> Option<(Vec<String>, Vec<Row>)> {
    let s = store().lock().ok()?;
    let t = s.get(table)?;
    Some((t.columns.clone(), t.rows.values().cloned().collect()))
}

/// Forgets every materialized table (tests).
pub fn clear_materialized() {
    if let Ok(mut s) = store().lock() {
        s.clear();
    }
}

/// Factory of the `values` sink.
#[derive(Debug, Default)]
pub struct ValuesSinkFactory;

/// A checked `values` sink block.
#[derive(Debug, Clone)]
pub struct ValidatedValues {
    /// `print.enabled`.
    pub print: bool,
    /// `materialized.in.memory`.
    pub materialize: bool,
    /// Zone for TIMESTAMP_LTZ rendering.
    pub zone: LocalZone,
}

impl SinkFactory for ValuesSinkFactory {
    fn kind(&self) -> &'static str {
        "values"
    }

    fn validate(
        &self,
        def: &ComponentDef,
        pipeline: &PipelineOptions,
        diags: &mut Diagnostics,
    ) -> Option<Box<dyn ValidatedSink>> {
        let cfg = validate_values_sink(def, diags)?;
        // The pipeline block's own validation reports a bad zone; fall back to UTC here.
        let zone =
            LocalZone::parse(pipeline.local_time_zone.as_deref()).unwrap_or_else(LocalZone::utc);
        Some(Box::new(ValidatedValues {
            print: cfg.print,
            materialize: cfg.materialize,
            zone,
        }))
    }
}

#[async_trait]
impl ValidatedSink for ValidatedValues {
    fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("type".into(), "values".into()),
            ("print.enabled".into(), self.print.to_string()),
            (
                "materialized.in.memory".into(),
                self.materialize.to_string(),
            ),
        ]
    }

    async fn build(&self, _ctx: &BuildContext) -> cdcflow_engine::Result<Box<dyn Sink>> {
        Ok(Box::new(ValuesSink {
            opts: self.clone(),
            loaded: BTreeMap::new(),
        }))
    }
}

/// The running `values` sink.
#[derive(Debug)]
pub struct ValuesSink {
    opts: ValidatedValues,
    loaded: BTreeMap<TableId, u64>,
}

impl ValuesSink {
    /// A sink with the given settings (for tests and examples that bypass YAML).
    pub fn new(print: bool, materialize: bool) -> Self {
        ValuesSink {
            opts: ValidatedValues {
                print,
                materialize,
                zone: LocalZone::utc(),
            },
            loaded: BTreeMap::new(),
        }
    }
}

#[async_trait]
impl Sink for ValuesSink {
    async fn create_table(&mut self, schema: &TableSchemaRef) -> cdcflow_engine::Result<()> {
        if self.opts.print {
            let cols: Vec<String> = schema
                .columns
                .iter()
                .map(|c| format!("{} {}", c.name, c.data_type.sql_name()))
                .collect();
            println!(
                "CreateTableEvent{{tableId={}, columns=[{}], primaryKeys={}}}",
                schema.id,
                cols.join(", "),
                schema.primary_key.join(",")
            );
        }
        if self.opts.materialize
            && let Ok(mut s) = store().lock()
        {
            let t = s.entry(schema.id.clone()).or_default();
            t.columns = schema.columns.iter().map(|c| c.name.clone()).collect();
        }
        Ok(())
    }

    async fn apply_schema_change(
        &mut self,
        table: &TableId,
        change: &SchemaChange,
        schema: &TableSchemaRef,
    ) -> cdcflow_engine::Result<()> {
        if self.opts.print {
            println!(
                "SchemaChangeEvent{{tableId={table}, change={}}}",
                change.tag()
            );
        }
        if self.opts.materialize
            && let Ok(mut s) = store().lock()
        {
            let t = s.entry(table.clone()).or_default();
            match change {
                SchemaChange::TruncateTable | SchemaChange::DropTable => t.rows.clear(),
                _ => {}
            }
            // Re-shape stored rows to the new column list by name.
            let new_cols: Vec<String> = schema.columns.iter().map(|c| c.name.clone()).collect();
            let old = std::mem::take(&mut t.columns);
            for row in t.rows.values_mut() {
                let mut next = Vec::with_capacity(new_cols.len());
                for c in &new_cols {
                    let old_name = match change {
                        SchemaChange::RenameColumn { renames } => renames
                            .iter()
                            .find(|(_, n)| n == c)
                            .map(|(o, _)| o.clone())
                            .unwrap_or_else(|| c.clone()),
                        _ => c.clone(),
                    };
                    next.push(
                        old.iter()
                            .position(|o| *o == old_name)
                            .and_then(|i| row.get(i).cloned().flatten()),
                    );
                }
                *row = next;
            }
            t.columns = new_cols;
        }
        Ok(())
    }

    async fn write(&mut self, batch: ChangeBatch) -> cdcflow_engine::Result<()> {
        let schema = batch.table.clone();
        let ops = batch.ops();
        let keys = schema.key_indices();
        let n_user = batch.num_user_columns();
        let mut guard = if self.opts.materialize {
            store().lock().ok()
        } else {
            None
        };
        for row in 0..batch.num_rows() {
            let cells: Vec<Option<String>> = (0..n_user)
                .map(|c| {
                    render_cell(
                        batch.data.column(c).as_ref(),
                        row,
                        Some(&schema.columns[c].data_type),
                        self.opts.zone,
                    )
                })
                .collect();
            let op = Op::from_i8(ops.value(row)).unwrap_or(Op::Insert);
            if self.opts.print {
                let shown: Vec<String> = cells
                    .iter()
                    .map(|c| c.clone().unwrap_or_else(|| "null".into()))
                    .collect();
                println!(
                    "DataChangeEvent{{tableId={}, op={}, row=[{}]}}",
                    schema.id,
                    op.short_name(),
                    shown.join(", ")
                );
            }
            if let Some(s) = guard.as_mut() {
                let t = s.entry(schema.id.clone()).or_default();
                if t.columns.is_empty() {
                    t.columns = schema.columns.iter().map(|c| c.name.clone()).collect();
                }
                let key: Vec<Option<String>> = if keys.is_empty() {
                    cells.clone()
                } else {
                    keys.iter().map(|&k| cells[k].clone()).collect()
                };
                match op {
                    Op::Insert | Op::UpdateAfter => {
                        t.rows.insert(key, cells);
                    }
                    Op::Delete | Op::UpdateBefore => {
                        t.rows.remove(&key);
                    }
                }
            }
        }
        *self.loaded.entry(schema.id.clone()).or_default() += batch.num_rows() as u64;
        Ok(())
    }

    async fn flush(&mut self) -> cdcflow_engine::Result<()> {
        Ok(())
    }

    fn loaded_rows(&self) -> Vec<(TableId, u64)> {
        self.loaded.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray};
    use cdcflow_engine::schema::{CdcType, ColumnDef, TableSchema};

    use super::*;

    #[tokio::test]
    async fn materializes_upserts_and_deletes_by_key() {
        let cols = vec![
            ColumnDef {
                name: "id".into(),
                data_type: CdcType::Int,
                nullable: false,
                default: None,
                comment: None,
                source_type: String::new(),
            },
            ColumnDef {
                name: "v".into(),
                data_type: CdcType::String,
                nullable: true,
                default: None,
                comment: None,
                source_type: String::new(),
            },
        ];
        let schema = Arc::new(TableSchema::new(
            TableId::new("values_test", "t"),
            cols,
            vec!["id".into()],
            None,
            1,
        ));
        let data = RecordBatch::try_new(
            schema.arrow.clone(),
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 1, 1, 2])) as ArrayRef,
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    Some("b"),
                    Some("a"),
                    Some("a2"),
                    None,
                ])),
                Arc::new(Int8Array::from(vec![0, 0, 1, 2, 3])),
                Arc::new(Int64Array::from(vec![0; 5])),
            ],
        )
        .unwrap();
        let mut sink = ValuesSink::new(false, true);
        sink.create_table(&schema).await.unwrap();
        sink.write(ChangeBatch {
            table: schema.clone(),
            data,
            seq: 1,
            offset: None,
        })
        .await
        .unwrap();
        let (names, rows) = materialized_rows(&schema.id).unwrap();
        assert_eq!(names, vec!["id", "v"]);
        assert_eq!(
            rows,
            vec![vec![Some("1".to_string()), Some("a2".to_string())]]
        );
        assert_eq!(sink.loaded_rows(), vec![(schema.id.clone(), 5)]);
    }
}
