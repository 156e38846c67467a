//! Binlog decode throughput on a realistic 10-column table (`orders2` of binlog.md §3).
//!
//! Setup (outside the measurements): a throwaway MariaDB (testkit) gets `ROWS` rows of
//! `orders2`, and the binlog events are captured once through mysql_async's replication stream.
//!
//! Groups (all report rows/s and bytes/s of row-event data):
//! - `decode/cdcflow`: our column-wise decoder into Arrow builders (batches of 16k rows).
//! - `decode/mysql_common`: `RowsEvent::rows()` → `BinlogRow` on the same events.
//! - `wire/events_only`: mysql_async streaming the same binlog range, events framed, not decoded.
//! - `wire/cdcflow_reader`: our `BinlogReader` end to end (stream + decode + batches).
//!
//! Run: `cargo bench -p cdcflow-mysql --bench decode` (env `ORDERS_ROWS` overrides the size).

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

/// Captured input shared by all groups.
struct Input {
    db: &'static MariaDb,
    table: MySqlTable,
    start: BinlogOffset,
    tme: TableMapEvent<'static>,
    rows_events: Vec<Event>,
    rows: u64,
    bytes: u64,
}

fn rows_wanted() -> u64 {
    std::env::var("ORDERS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000)
}

async fn setup() -> Input {
    let db = MariaDb::shared().await.expect("mariadb");
    let n = rows_wanted();
    db.exec(
        "CREATE DATABASE IF NOT EXISTS bench; DROP TABLE IF EXISTS bench.orders2; \
         CREATE TABLE bench.orders2 (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT, \
           email VARCHAR(64), sku CHAR(16), qty SMALLINT, price DECIMAL(12,2), \
           status ENUM('new','paid','packed','shipped','delivered','cancelled'), \
           created_at DATETIME(6), note VARCHAR(255), score DOUBLE) DEFAULT CHARSET=utf8mb4",
    )
    .await
    .expect("create orders2");
    let mut conn = db.conn().await.expect("connect");
    let start = current_offset(&mut conn).await.expect("binlog position");
    // Deterministic rows, 20,000 per transaction like the reference load.
    let mut done = 0u64;
    while done < n {
        let k = (n - done).min(20_000);
        conn.query_drop(format!(
            "SET SESSION max_recursive_iterations = 1000000; \
             INSERT INTO bench.orders2 WITH RECURSIVE s(i) AS (SELECT {a} UNION ALL SELECT i + 1 FROM s WHERE i < {b}) \
             SELECT i, i * 7919 % 100000, CONCAT('user', i % 5000, '@example.com'), \
               CONCAT('SKU-', LPAD(i % 99991, 12, '0')), i % 50 + 1, (i % 100000) / 100 + 0.99, \
               ELT(i % 6 + 1, 'new','paid','packed','shipped','delivered','cancelled'), \
               TIMESTAMP('2024-01-01') + INTERVAL i SECOND + INTERVAL (i % 1000000) MICROSECOND, \
               CONCAT('note ', REPEAT('lorem ipsum ', i % 6 + 1), i), i / 3.0 \
             FROM s",
            a = done + 1,
            b = done + k
        ))
        .await
        .expect("load orders2");
        done += k;
    }
    let table = load_tables(&mut conn, &[TableId::new("bench", "orders2")], true)
        .await
        .expect("catalog")
        .pop()
        .expect("orders2");
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
                && m.table_name() == "orders2"
            {
                tme = Some(m.into_owned());
            }
        } else if is_rows_event(t) {
            rows_events.push(ev);
        }
    }
    let tme = tme.expect("a TABLE_MAP for orders2");
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
    let input = rt.block_on(setup());
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
        "orders2: {} rows, {} rows events, {:.1} MB of row data",
        input.rows,
        input.rows_events.len(),
        input.bytes as f64 / 1e6
    );

    let mut g = c.benchmark_group("decode");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(input.rows));
    g.bench_function("cdcflow/rows", |b| {
        b.iter(|| decode_ours(&input, &decoder, &schema, &mut out))
    });
    g.bench_function("mysql_common/rows", |b| {
        b.iter(|| decode_mysql_common(&input))
    });
    g.throughput(Throughput::Bytes(input.bytes));
    g.bench_function("cdcflow/bytes", |b| {
        b.iter(|| decode_ours(&input, &decoder, &schema, &mut out))
    });
    g.bench_function("mysql_common/bytes", |b| {
        b.iter(|| decode_mysql_common(&input))
    });
    g.finish();

    let mut g = c.benchmark_group("wire");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(input.rows));
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
