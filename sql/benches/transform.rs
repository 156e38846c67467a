//! Throughput of a typical transform (projection + filter) over change rows, next to a plain
//! DataFusion `SELECT ... WHERE` over the same batches (SessionContext + MemTable).
//!
//! Groups: `transform_1m_rows` (a 4-column table, 1M rows), `transform_orders10` (the 10-column
//! `orders2` table, 1M rows) and `transform_wide50` (the 50-column table of
//! `engine/benches/tables/mod.rs`, 200k rows: non-ASCII text, decimals, JSON, ~10 % NULLs), each
//! reporting rows/s and Arrow input bytes/s.
//!
//! Run: `cargo bench -p cdcflow-sql --bench transform` (in the shared dev checkout add
//! `--profile dev`, which keeps one build profile but measures unoptimized code; compare the
//! two lines with each other, not with release numbers). Both sides see 1M rows as 8192-row
//! batches, the size a source emits. The cdcflow side plans once (per table schema version) and
//! evaluates per batch, including Flink's update/delete filter decision; the DataFusion side
//! plans the SQL query once per iteration and scans all 1M rows from a MemTable.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use cdcflow_engine::config::{ExprText, Location, PipelineOptions, Spanned, TransformDef};
use cdcflow_engine::{
    CdcType, ChangeBatch, ChangeEvent, ColumnDef, TableId, TableSchema, TableSchemaRef,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

#[path = "../../engine/benches/tables/mod.rs"]
mod tables;

const ROWS: usize = 1_000_000;
const BATCH: usize = 8192;
const PROJECTION: &str = "id, UPPER(name) AS name_u, amount * 1.1 AS amount_tax, status";
const FILTER: &str = "amount > 100 AND status <> 3";

fn text(s: &str) -> ExprText {
    ExprText {
        text: s.to_string(),
        loc: Location { line: 1, column: 1 },
        char_locs: (0..s.chars().count())
            .map(|i| Location {
                line: 1,
                column: i + 1,
            })
            .collect(),
    }
}

fn column(name: &str, data_type: CdcType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        source_type: data_type.sql_name().to_lowercase(),
        data_type,
        nullable,
        default: None,
        comment: None,
    }
}

fn schema() -> TableSchemaRef {
    Arc::new(TableSchema::new(
        TableId::new("app", "orders"),
        vec![
            column("id", CdcType::BigInt, false),
            column("name", CdcType::Varchar { length: 64 }, true),
            column("amount", CdcType::Double, true),
            column("status", CdcType::Int, true),
        ],
        vec!["id".into()],
        None,
        1,
    ))
}

/// Deterministic rows: every 10th change is an update pair, the rest inserts.
fn batches(schema: &TableSchemaRef) -> Vec<RecordBatch> {
    (0..ROWS.div_ceil(BATCH))
        .map(|b| {
            let start = b * BATCH;
            let n = BATCH.min(ROWS - start);
            let ids: Vec<i64> = (start..start + n).map(|i| i as i64).collect();
            let names: Vec<String> = (start..start + n)
                .map(|i| format!("customer-{}", i % 977))
                .collect();
            let amounts: Vec<f64> = (start..start + n).map(|i| (i % 250) as f64 + 0.5).collect();
            let status: Vec<i32> = (start..start + n).map(|i| (i % 5) as i32).collect();
            let ops: Vec<i8> = (0..n)
                .map(|i| {
                    if i % 10 == 8 {
                        1
                    } else if i % 10 == 9 {
                        2
                    } else {
                        0
                    }
                })
                .collect();
            let cols: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(StringArray::from(names)),
                Arc::new(Float64Array::from(amounts)),
                Arc::new(Int32Array::from(status)),
                Arc::new(Int8Array::from(ops)),
                Arc::new(Int64Array::from(vec![1_700_000_000_000i64; n])),
            ];
            RecordBatch::try_new(Arc::clone(&schema.arrow), cols).expect("valid batch")
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let schema = schema();
    let data = batches(&schema);
    bench_rules(c, "transform_1m_rows", &schema, &data, PROJECTION, FILTER);

    let orders = tables::orders10_schema();
    let data = tables::batches(&orders, ROWS, BATCH);
    bench_rules(
        c,
        "transform_orders10",
        &orders,
        &data,
        "id, UPPER(email) AS email_u, price * 1.1 AS price_tax, status, created_at",
        "qty > 10 AND status <> 'cancelled'",
    );
    drop(data);

    let wide = tables::wide50_schema();
    let data = tables::batches(&wide, 200_000, BATCH);
    bench_rules(
        c,
        "transform_wide50",
        &wide,
        &data,
        "id, customer_id, UPPER(city) AS city_u, CONCAT(first_name, ' ', last_name) AS full_name, \
         price * qty AS total, score * 2 AS score2, created_at, attrs, status, lat, lon, email",
        "price > 100 AND status <> 'cancelled' AND qty > 5",
    );
}

/// One group: the cdcflow transform and a DataFusion `SELECT … WHERE` on the same batches.
fn bench_rules(
    c: &mut Criterion,
    group: &str,
    schema: &TableSchemaRef,
    data: &[RecordBatch],
    projection: &str,
    filter: &str,
) {
    let rows: usize = data.iter().map(RecordBatch::num_rows).sum();
    let bytes: u64 = data.iter().map(|b| b.get_array_memory_size() as u64).sum();
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::ElementsAndBytes {
        elements: rows as u64,
        bytes,
    });
    group.sample_size(10);

    let id = &schema.id;
    let def = TransformDef {
        loc: Location::default(),
        source_table: Spanned::new(format!("{}.{}", id.schema, id.table), Location::default()),
        projection: Some(text(projection)),
        filter: Some(text(filter)),
        primary_keys: None,
        partition_keys: None,
        table_options: None,
        table_options_delimiter: None,
        converter_after_transform: None,
        description: None,
    };
    let compiled = cdcflow_sql::compile(&[def], &[], &PipelineOptions::default(), "bench.yaml")
        .expect("valid rules");
    group.bench_function("cdcflow_projection_filter", |b| {
        let mut t = compiled.transform();
        let mut out = Vec::with_capacity(4);
        t.apply(ChangeEvent::CreateTable(Arc::clone(schema)), &mut out)
            .expect("create");
        b.iter(|| {
            let mut rows = 0;
            for (seq, rb) in data.iter().enumerate() {
                out.clear();
                let batch = ChangeBatch {
                    table: Arc::clone(schema),
                    data: rb.clone(),
                    seq: seq as u64,
                    offset: None,
                };
                t.apply(ChangeEvent::Data(batch), &mut out)
                    .expect("transform");
                for e in &out {
                    if let ChangeEvent::Data(b) = e {
                        rows += b.num_rows();
                    }
                }
            }
            black_box(rows)
        });
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ctx = SessionContext::new();
    let table =
        MemTable::try_new(Arc::clone(&schema.arrow), vec![data.to_vec()]).expect("mem table");
    ctx.register_table("t", Arc::new(table)).expect("register");
    let sql = format!("SELECT {projection} FROM t WHERE {filter}");
    group.bench_function("datafusion_select_where", |b| {
        b.iter(|| {
            let rows: usize = rt.block_on(async {
                let df = ctx.sql(&sql).await.expect("plan");
                df.collect()
                    .await
                    .expect("run")
                    .iter()
                    .map(RecordBatch::num_rows)
                    .sum()
            });
            black_box(rows)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
