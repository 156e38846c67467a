//! Binlog decode throughput on a realistic 10-column table (`orders2` of binlog.md §3) and on a
//! wide 50-column table (`wide50`, see `wide/mod.rs`: every integer width, decimals, short and
//! long text with non-ASCII, DATETIME(6), DATE, DOUBLE, JSON, ~10 % NULLs).
//!
//! Setup (outside the measurements), per table: a throwaway MariaDB (testkit) gets the rows, and
//! the binlog events are captured once through mysql_async's replication stream.
//!
//! Groups, `<t>` = `orders10` or `wide50` (all report rows/s and bytes/s of row-event data):
//! - `decode_<t>/cdcflow`: our column-wise decoder into Arrow builders (batches of 16k rows).
//! - `decode_<t>/mysql_common`: `RowsEvent::rows()` → `BinlogRow` on the same events.
//! - `wire_<t>/events_only`: mysql_async streaming the same binlog range, events framed, not decoded.
//! - `wire_<t>/cdcflow_reader`: our `BinlogReader` end to end (stream + decode + batches).
//!
//! Run: `cargo bench -p cdcflow-mysql --bench decode` (env `ORDERS_ROWS`, default 200 000, and
//! `WIDE_ROWS`, default 50 000, override the sizes).

use std::hint::black_box;
use std::time::Duration;

use cdcflow_engine::{ChangeEvent, TableId, TableSchemaRef};
use cdcflow_mysql::binlog::{BinlogOptions, BinlogReader, StartPosition, current_offset};
use cdcflow_mysql::builders::TableBatchBuilder;
use cdcflow_mysql::decode::{ColumnLayout, EventAt, RowDecoder, RowsEventBody, is_rows_event};
use cdcflow_mysql::position::BinlogOffset;
use cdcflow_mysql::schema::{MySqlTable, load_tables};
use cdcflow_testkit::mariadb::MariaDb;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStreamRequest, Conn};
use mysql_common::binlog::events::{Event, EventData, TableMapEvent};

mod wide;

/// Captured input shared by all groups of one table.
struct Input {
    db: &'static MariaDb,
    table: MySqlTable,
    start: BinlogOffset,
    tme: TableMapEvent<'static>,
    rows_events: Vec<Event>,
    rows: u64,
    bytes: u64,
}

/// One benchmark table: its name, DDL and the statements that fill it.
struct Spec {
    label: &'static str,
    table: &'static str,
    create: String,
    fills: Vec<String>,
    rows: u64,
}

fn env_rows(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `orders2` of binlog.md §3, 20,000 rows per transaction like the reference load.
fn orders10() -> Spec {
    let n = env_rows("ORDERS_ROWS", 200_000);
    let fills = (0..n)
        .step_by(20_000)
        .map(|done| {
            format!(
                "INSERT INTO bench.orders2 WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i < {b}) \
                 SELECT i, i * 7919 % 100000, CONCAT('user', i % 5000, '@example.com'), \
                   CONCAT('SKU-', LPAD(i % 99991, 12, '0')), i % 50 + 1, (i % 100000) / 100 + 0.99, \
                   ELT(i % 6 + 1, 'new','paid','packed','shipped','delivered','cancelled'), \
                   TIMESTAMP('2024-01-01') + INTERVAL i SECOND + INTERVAL (i % 1000000) MICROSECOND, \
                   CONCAT('note ', REPEAT('lorem ipsum ', i % 6 + 1), i), i / 3.0 \
                 FROM s",
                a = done + 1,
                b = (done + 20_000).min(n)
            )
        })
        .collect();
    Spec {
        label: "orders10",
        table: "orders2",
        create: "CREATE TABLE bench.orders2 (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT, \
           email VARCHAR(64), sku CHAR(16), qty SMALLINT, price DECIMAL(12,2), \
           status ENUM('new','paid','packed','shipped','delivered','cancelled'), \
           created_at DATETIME(6), note VARCHAR(255), score DOUBLE) DEFAULT CHARSET=utf8mb4"
            .into(),
        fills,
        rows: n,
    }
}

/// The 50-column `wide50` table, 5,000 rows per transaction.
fn wide50() -> Spec {
    let n = env_rows("WIDE_ROWS", 50_000);
    assert_eq!(wide::COLUMN_COUNT, 50, "the wide table has 50 columns");
    Spec {
        label: "wide50",
        table: "wide50",
        create: wide::ddl("bench"),
        fills: wide::fill_statements("bench", n, 5_000),
        rows: n,
    }
}

async fn setup(spec: &Spec) -> Input {
    let db = MariaDb::shared().await.expect("mariadb");
    let n = spec.rows;
    db.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.{}; {}",
        spec.table, spec.create
    ))
    .await
    .expect("create table");
    let mut conn = db.conn().await.expect("connect");
    let start = current_offset(&mut conn).await.expect("binlog position");
    conn.query_drop("SET SESSION max_recursive_iterations = 1000000")
        .await
        .expect("session");
    for fill in &spec.fills {
        conn.query_drop(fill).await.expect("load rows");
    }
    let table = load_tables(&mut conn, &[TableId::new("bench", spec.table)], true)
        .await
        .expect("catalog")
        .pop()
        .expect("the bench table");
    drop(conn);

    // Capture the events once.
    let mut conn = Conn::new(db.opts()).await.expect("connect");
    conn.query_drop("SET @mariadb_slave_capability=4")
        .await
        .expect("capability");
    let file = start.position.file.clone().into_bytes();
    let req = BinlogStreamRequest::new(9_001)
        .with_non_blocking()
        .with_filename(&file)
        .with_pos(start.position.pos);
    let mut stream = conn.get_binlog_stream(req).await.expect("binlog stream");
    let mut tme = None;
    let mut rows_events = Vec::new();
    while let Some(ev) = stream.next().await {
        let ev = ev.expect("event");
        let t = ev.header().event_type_raw();
        if t == 19 {
            if let Ok(Some(EventData::TableMapEvent(m))) = ev.read_data()
                && m.table_name() == spec.table
            {
                tme = Some(m.into_owned());
            }
        } else if is_rows_event(t) {
            rows_events.push(ev);
        }
    }
    let tme = tme.expect("a TABLE_MAP for the bench table");
    let bytes = rows_events.iter().map(|e| e.data().len() as u64).sum();
    Input {
        db,
        table,
        start,
        tme,
        rows_events,
        rows: n,
        bytes,
    }
}

fn decode_ours(
    input: &Input,
    decoder: &RowDecoder,
    schema: &TableSchemaRef,
    out: &mut TableBatchBuilder,
) -> u64 {
    let mut rows = 0u64;
    for ev in &input.rows_events {
        let body =
            RowsEventBody::parse(ev.header().event_type_raw(), ev.data()).expect("rows event");
        let at = EventAt {
            file: "bench",
            pos: u64::from(ev.header().log_pos()),
        };
        rows += decoder.decode(&body, out, 0, at).expect("decode") as u64;
        if out.len() >= 16_384 {
            black_box(out.finish(schema).expect("batch"));
        }
    }
    black_box(out.finish(schema).expect("batch"));
    rows
}

fn decode_mysql_common(input: &Input) -> u64 {
    let mut rows = 0u64;
    for ev in &input.rows_events {
        let Ok(Some(EventData::RowsEvent(re))) = ev.read_data() else {
            panic!("rows event")
        };
        for r in re.rows(&input.tme) {
            let (before, after) = r.expect("row");
            black_box((before, after));
            rows += 1;
        }
    }
    rows
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // One table after the other, so each `wire` range holds only its own table's events.
    for spec in [orders10(), wide50()] {
        bench_table(c, &rt, &spec);
    }
}

fn bench_table(c: &mut Criterion, rt: &tokio::runtime::Runtime, spec: &Spec) {
    let input = rt.block_on(setup(spec));
    let schema = input.table.schema.clone();
    let layout = ColumnLayout::from_table_map(&input.tme).expect("layout");
    let decoder =
        RowDecoder::try_new(schema.clone(), &input.table.columns, &layout).expect("decoder");
    let mut out = TableBatchBuilder::try_new(&schema).expect("builders");
    assert_eq!(
        decode_ours(&input, &decoder, &schema, &mut out),
        input.rows,
        "all rows decoded"
    );
    eprintln!(
        "{}: {} rows × {} columns, {} rows events, {:.1} MB of row data ({:.0} B/row)",
        spec.table,
        input.rows,
        input.table.columns.len(),
        input.rows_events.len(),
        input.bytes as f64 / 1e6,
        input.bytes as f64 / input.rows.max(1) as f64
    );

    let mut g = c.benchmark_group(format!("decode_{}", spec.label));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::ElementsAndBytes {
        elements: input.rows,
        bytes: input.bytes,
    });
    g.bench_function("cdcflow", |b| {
        b.iter(|| decode_ours(&input, &decoder, &schema, &mut out))
    });
    g.bench_function("mysql_common", |b| b.iter(|| decode_mysql_common(&input)));
    g.finish();

    let mut g = c.benchmark_group(format!("wire_{}", spec.label));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::ElementsAndBytes {
        elements: input.rows,
        bytes: input.bytes,
    });
    let opts = input.db.opts();
    let start = input.start.clone();
    g.bench_function("events_only", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut conn = Conn::new(opts.clone()).await.expect("connect");
                conn.query_drop("SET @mariadb_slave_capability=4")
                    .await
                    .expect("capability");
                let file = start.position.file.clone().into_bytes();
                let req = BinlogStreamRequest::new(9_002)
                    .with_non_blocking()
                    .with_filename(&file)
                    .with_pos(start.position.pos);
                let mut stream = conn.get_binlog_stream(req).await.expect("stream");
                let mut n = 0u64;
                while let Some(ev) = stream.next().await {
                    black_box(ev.expect("event"));
                    n += 1;
                }
                n
            })
        })
    });
    let table = input.table.clone();
    g.bench_function("cdcflow_reader", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut o = BinlogOptions::new(9_003, StartPosition::Offset(start.clone()));
                o.non_blocking = true;
                o.heartbeat = Duration::ZERO;
                let mut r = BinlogReader::connect(opts.clone(), o, vec![table.clone()])
                    .await
                    .expect("reader");
                let mut rows = 0u64;
                while let Some(e) = r.next_event().await.expect("event") {
                    if let ChangeEvent::Data(b) = e {
                        rows += b.num_rows() as u64;
                    }
                }
                assert_eq!(rows, input.rows);
                rows
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
