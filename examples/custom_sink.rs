//! How to add a connector: a complete sink that counts rows per table and prints each batch.
//!
//! A connector is three small types and one line in `src/registry.rs`:
//!
//! 1. a factory (`SinkFactory`) that answers to a `sink.type` and validates its options offline
//!    through an `OptionReader` (unknown keys are reported with a did-you-mean hint);
//! 2. the validated settings (`ValidatedSink`), whose `build` connects;
//! 3. the running sink (`Sink`): `create_table`, `apply_schema_change`, `write` (a batch of
//!    Arrow rows of one table, with the op column), `flush`, and for exactly-once sinks
//!    `precommit`/`commit`, which the engine calls around each checkpoint.
//!
//! Run it: `cargo run --example custom_sink`. It drives the sink with the engine's pipeline
//! loop over a tiny in-memory source, so it needs no database.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::util::pretty::pretty_format_batches;
use async_trait::async_trait;
use cdcflow_engine::change::{ChangeBatch, ChangeEvent, SchemaChange, SourceOffset};
use cdcflow_engine::component::{
    BuildContext, PassThrough, Sink, SinkFactory, Source, ValidatedSink,
};
use cdcflow_engine::config::{
    ComponentDef, Diagnostics, Location, OptionReader, PipelineOptions, Spanned,
};
use cdcflow_engine::pipeline::{self, RunOptions};
use cdcflow_engine::schema_change::SchemaChangePolicy;
use cdcflow_engine::{CdcType, ColumnDef, Result, TableId, TableSchema, TableSchemaRef};
use tokio_util::sync::CancellationToken;

/// Answers to `sink: {type: print}`.
struct PrintSinkFactory;

/// The checked options of the print sink.
#[derive(Debug)]
struct ValidatedPrint {
    max_rows: usize,
}

impl SinkFactory for PrintSinkFactory {
    fn kind(&self) -> &'static str {
        "print"
    }

    fn validate(
        &self,
        def: &ComponentDef,
        _pipeline: &PipelineOptions,
        diags: &mut Diagnostics,
    ) -> Option<Box<dyn ValidatedSink>> {
        let before = diags.0.len();
        let mut r = OptionReader::new(def, diags);
        let max_rows = r.parse("print.max-rows", 10usize, "a row count");
        r.finish(&[]);
        (diags.0.len() == before)
            .then(|| Box::new(ValidatedPrint { max_rows }) as Box<dyn ValidatedSink>)
    }
}

#[async_trait]
impl ValidatedSink for ValidatedPrint {
    fn describe(&self) -> Vec<(String, String)> {
        vec![("print.max-rows".into(), self.max_rows.to_string())]
    }

    async fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(PrintSink {
            max_rows: self.max_rows,
            rows: BTreeMap::new(),
        }))
    }
}

/// Prints batches; a real sink would buffer them and load on `flush`.
struct PrintSink {
    max_rows: usize,
    rows: BTreeMap<TableId, u64>,
}

#[async_trait]
impl Sink for PrintSink {
    async fn create_table(&mut self, schema: &TableSchemaRef) -> Result<()> {
        println!(
            "create table {} ({} columns)",
            schema.id,
            schema.columns.len()
        );
        Ok(())
    }

    async fn apply_schema_change(
        &mut self,
        table: &TableId,
        change: &SchemaChange,
        _schema: &TableSchemaRef,
    ) -> Result<()> {
        println!("{} on {table}", change.tag());
        Ok(())
    }

    async fn write(&mut self, batch: ChangeBatch) -> Result<()> {
        *self.rows.entry(batch.table.id.clone()).or_default() += batch.num_rows() as u64;
        let shown = batch.data.slice(0, batch.num_rows().min(self.max_rows));
        println!("{}\n{}", batch.table.id, pretty_format_batches(&[shown])?);
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    fn loaded_rows(&self) -> Vec<(TableId, u64)> {
        self.rows.iter().map(|(t, n)| (t.clone(), *n)).collect()
    }
}

/// A source that replays a few events from memory.
struct MemorySource(std::vec::IntoIter<ChangeEvent>);

#[async_trait]
impl Source for MemorySource {
    async fn next_event(&mut self) -> Result<Option<ChangeEvent>> {
        Ok(self.0.next())
    }
}

fn demo_events() -> Vec<ChangeEvent> {
    let column = |name: &str, data_type: CdcType| ColumnDef {
        name: name.into(),
        data_type,
        nullable: true,
        default: None,
        comment: None,
        source_type: String::new(),
    };
    let schema = Arc::new(TableSchema::new(
        TableId::new("app_db", "products"),
        vec![
            column("id", CdcType::Int),
            column("name", CdcType::Varchar { length: 64 }),
        ],
        vec!["id".into()],
        None,
        1,
    ));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from(vec![1, 2, 1])),
        Arc::new(StringArray::from(vec!["Beer", "Cap", "Beer"])),
        Arc::new(Int8Array::from(vec![0, 0, 3])), // insert, insert, delete
        Arc::new(Int64Array::from(vec![0, 0, 1_700_000_000_000])),
    ];
    let data = RecordBatch::try_new(schema.arrow.clone(), columns).expect("valid batch");
    vec![
        ChangeEvent::CreateTable(schema.clone()),
        ChangeEvent::Data(ChangeBatch {
            table: schema,
            data,
            seq: 1,
            offset: Some(SourceOffset::new(serde_json::json!({"demo": 1}))),
        }),
    ]
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut diags = Diagnostics::default();
    let def = ComponentDef {
        path: "sink".into(),
        file: "inline".into(),
        loc: Location::default(),
        kind: Spanned::new("print".into(), Location::default()),
        name: None,
        options: BTreeMap::new(),
        include_schema_changes: None,
        exclude_schema_changes: None,
    };
    let pipeline_options = PipelineOptions::default();
    let validated = PrintSinkFactory
        .validate(&def, &pipeline_options, &mut diags)
        .expect("no options, nothing to get wrong");
    let summary = pipeline::run(
        Box::new(MemorySource(demo_events().into_iter())),
        Box::new(PassThrough),
        validated.as_ref(),
        BuildContext::new(pipeline_options.clone()),
        RunOptions {
            schema_policy: SchemaChangePolicy::new(
                pipeline_options.schema_change_behavior,
                None,
                None,
            ),
            ..RunOptions::new("custom-sink-demo")
        },
        CancellationToken::new(),
    )
    .await?;
    for (table, rows) in summary.per_table {
        println!("{table}: {rows} rows");
    }
    Ok(())
}
