//! Encode throughput (rows/s and MB/s of output) of JSON lines, CSV and Arrow IPC on a 10-column
//! change batch of 8192 rows, the body formats the Doris / StarRocks sinks can send.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int8Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use cdcflow_doris::encode::{
    EncodeSpec, RowPolicy, encode_arrow, encode_csv, encode_json, select_rows,
};
use cdcflow_engine::schema::{CdcType, ColumnDef, TableId, TableSchema};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const ROWS: usize = 8192;

fn col(name: &str, t: CdcType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        data_type: t,
        nullable: true,
        default: None,
        comment: None,
        source_type: String::new(),
    }
}

fn input() -> (TableSchema, RecordBatch) {
    let t = TableSchema::new(
        TableId::new("bench", "orders"),
        vec![
            col("id", CdcType::BigInt),
            col("user_id", CdcType::Int),
            col("sku", CdcType::Varchar { length: 32 }),
            col("title", CdcType::Varchar { length: 255 }),
            col("qty", CdcType::Int),
            col(
                "price",
                CdcType::Decimal {
                    precision: 12,
                    scale: 2,
                },
            ),
            col("weight", CdcType::Double),
            col("paid", CdcType::Boolean),
            col("created", CdcType::Timestamp { precision: 6 }),
            col("ship_date", CdcType::Date),
        ],
        vec!["id".into()],
        None,
        1,
    );
    let n = ROWS as i64;
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..n)),
        Arc::new(Int32Array::from_iter_values(
            (0..n).map(|i| (i * 7919 % 100_000) as i32),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..n).map(|i| format!("SKU-{:08}", i * 31)),
        )),
        Arc::new(StringArray::from_iter_values((0..n).map(|i| {
            format!("Product title number {i} with some words \"quoted\"")
        }))),
        Arc::new(Int32Array::from_iter_values(
            (0..n).map(|i| (i % 17) as i32),
        )),
        Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| i128::from(i) * 137 + 99))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(Float64Array::from_iter_values(
            (0..n).map(|i| i as f64 * 0.37),
        )),
        Arc::new(BooleanArray::from_iter((0..n).map(|i| Some(i % 3 == 0)))),
        Arc::new(TimestampMicrosecondArray::from_iter_values(
            (0..n).map(|i| 1_700_000_000_000_000 + i * 1_234_567),
        )),
        Arc::new(Date32Array::from_iter_values(
            (0..n).map(|i| 19_000 + (i % 1000) as i32),
        )),
        Arc::new(Int8Array::from_iter_values(
            (0..n).map(|i| if i % 10 == 9 { 3 } else { 0 }),
        )),
        Arc::new(Int64Array::from_iter_values(
            (0..n).map(|i| 1_700_000_000_000 + i),
        )),
    ];
    let b = RecordBatch::try_new(t.arrow.clone(), cols).unwrap();
    (t, b)
}

fn bench(c: &mut Criterion) {
    let (t, b) = input();
    let mut spec = EncodeSpec::all_columns(&t);
    spec.delete_column = Some("__DORIS_DELETE_SIGN__");
    let ops = b.column(10).as_any().downcast_ref::<Int8Array>().unwrap();
    let sel = select_rows(
        ops,
        RowPolicy {
            ignore_update_before: true,
            deletes: true,
        },
        "orders",
    )
    .unwrap();
    let mut out = Vec::with_capacity(4 << 20);

    let sizes: Vec<(&str, usize)> = {
        let mut sz = Vec::new();
        out.clear();
        encode_json(&b, &spec, &sel, None, &mut out).unwrap();
        sz.push(("json", out.len()));
        out.clear();
        encode_csv(&b, &spec, &sel, None, b"\x01", b"\x02", &mut out).unwrap();
        sz.push(("csv", out.len()));
        out.clear();
        encode_arrow(&b, &spec, &sel, None, &mut out).unwrap();
        sz.push(("arrow", out.len()));
        sz
    };

    for (name, bytes) in sizes {
        let mut g = c.benchmark_group(format!("encode_{name}"));
        g.throughput(Throughput::Elements(ROWS as u64));
        g.bench_function("rows", |bch| {
            bch.iter(|| {
                out.clear();
                run(name, &b, &spec, &sel, &mut out);
            })
        });
        g.throughput(Throughput::Bytes(bytes as u64));
        g.bench_function("bytes", |bch| {
            bch.iter(|| {
                out.clear();
                run(name, &b, &spec, &sel, &mut out);
            })
        });
        g.finish();
    }
}

fn run(
    name: &str,
    b: &RecordBatch,
    spec: &EncodeSpec<'_>,
    sel: &cdcflow_doris::encode::Selection,
    out: &mut Vec<u8>,
) {
    match name {
        "json" => encode_json(b, spec, sel, None, out).unwrap(),
        "csv" => encode_csv(b, spec, sel, None, b"\x01", b"\x02", out)
            .map_err(|_| ())
            .unwrap(),
        _ => encode_arrow(b, spec, sel, None, out).unwrap(),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
