//! Time-based flushes on a quiet stream (`tick`), the sink buffer budget, and a Doris/StarRocks
//! outage: the sink fails with a retryable error, and a sink rebuilt from the last checkpoint
//! loads every row exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, StringArray};
use cdcflow_doris::sink::{SinkState, StreamLoadSink};
use cdcflow_doris::{DorisSinkFactory, StreamLoadClient, System};
use cdcflow_engine::change::{ChangeBatch, Op};
use cdcflow_engine::component::{BuildContext, Sink, SinkFactory};
use cdcflow_engine::config::{Diagnostics, load_str_with_env};
use cdcflow_engine::error::{Classify, ErrorDomain, RetryHint};
use cdcflow_engine::schema::{CdcType, TableSchemaRef};
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};

use crate::common::*;

/// `(id BIGINT, v VARCHAR(200))`, keyed on `id` when `keyed` (else a duplicate-key table).
fn table(db: &str, name: &str, keyed: bool) -> TableSchemaRef {
    schema(
        db,
        name,
        vec![
            col("id", CdcType::BigInt, false),
            col("v", CdcType::Varchar { length: 200 }, true),
        ],
        if keyed { &["id"] } else { &[] },
        1,
    )
}

/// One batch of `(id, v)` rows with the given ops; event times grow with `seq`.
fn rows_batch(t: &TableSchemaRef, rows: &[(i64, String)], ops: &[Op], seq: u64) -> ChangeBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter()
                .map(|(_, v)| Some(v.as_str()))
                .collect::<Vec<_>>(),
        )),
    ];
    let ts = vec![1_700_000_000_000 + seq as i64; rows.len()];
    batch(t, cols, ops, &ts, seq)
}

fn inserts(t: &TableSchemaRef, ids: std::ops::Range<i64>, tag: &str, seq: u64) -> ChangeBatch {
    let rows: Vec<(i64, String)> = ids.map(|i| (i, format!("{tag}-{i:0>110}"))).collect();
    let ops = vec![Op::Insert; rows.len()];
    rows_batch(t, &rows, &ops, seq)
}

/// Visible `(id, v)` pairs of a table, sorted (duplicates kept).
fn pairs(emu: &Emulator, db: &str, name: &str) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = emu
        .rows(db, name)
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("id is a number"),
                r["v"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn expected(ids: std::ops::Range<i64>, tag: &str) -> Vec<(i64, String)> {
    ids.map(|i| (i, format!("{tag}-{i:0>110}"))).collect()
}

#[tokio::test]
async fn tick_loads_a_quiet_stream_after_the_interval() {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.interval = Duration::from_millis(300);
    let mut sink = sink(&emu, s, None).await;
    let t = table("app", "quiet", true);
    sink.create_table(&t).await.unwrap();
    sink.write(inserts(&t, 0..5, "a", 1)).await.unwrap();
    let written_at = Instant::now();
    assert!(sink.buffered_bytes() > 0, "rows are buffered");
    sink.tick().await.unwrap();
    if written_at.elapsed() < Duration::from_millis(300) {
        assert!(
            pairs(&emu, "app", "quiet").is_empty(),
            "nothing is loaded before the interval"
        );
    }
    // No more writes: only ticks, as the engine sends them on a quiet stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while pairs(&emu, "app", "quiet").len() < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        sink.tick().await.unwrap();
    }
    assert_eq!(pairs(&emu, "app", "quiet"), expected(0..5, "a"));
    sink.tick().await.unwrap();
    assert_eq!(sink.buffered_bytes(), 0, "the settled load holds no memory");
    assert_eq!(
        sink.loaded_rows(),
        vec![(t.id.clone(), 5)],
        "tick recorded the load"
    );
}

#[tokio::test]
async fn a_stalled_load_counts_as_buffered_until_it_settles() {
    let emu = emulator(System::Doris).await;
    let mut s = settings(&emu, System::Doris);
    s.interval = Duration::from_millis(200);
    let mut sink = sink(&emu, s, None).await;
    let t = table("app", "stalled", true);
    sink.create_table(&t).await.unwrap();
    sink.write(inserts(&t, 0..50, "s", 1)).await.unwrap();
    let buffered = sink.buffered_bytes();
    assert!(buffered > 50 * 90, "{buffered}");
    emu.set_stalled(true);
    tokio::time::sleep(Duration::from_millis(250)).await;
    sink.tick().await.unwrap(); // starts the load, which the BE holds
    tokio::time::sleep(Duration::from_millis(300)).await;
    sink.tick().await.unwrap(); // the load is still in flight
    assert_eq!(
        sink.buffered_bytes(),
        buffered,
        "the body of the load in flight still counts"
    );
    assert!(pairs(&emu, "app", "stalled").is_empty());
    emu.set_stalled(false);
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.buffered_bytes() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        sink.tick().await.unwrap();
    }
    assert_eq!(sink.buffered_bytes(), 0, "settled after the release");
    assert_eq!(pairs(&emu, "app", "stalled"), expected(0..50, "s"));
}

/// Builds a Doris sink through the factory with `budget` bytes of sink buffer budget.
async fn budget_sink(emu: &Emulator, budget: usize) -> Box<dyn Sink> {
    let text = format!(
        "source:\n  type: mysql\nsink:\n  type: doris\n  fenodes: {}\n  username: loader\n  password: pw\n  sink.buffer-flush.interval: 600s\n",
        emu.fe_addr()
    );
    let def = load_str_with_env(&text, "p.yaml", &|_| None).expect("pipeline file loads");
    let mut diags = Diagnostics::default();
    let validated = DorisSinkFactory
        .validate(&def.sink, &def.pipeline, &mut diags)
        .unwrap_or_else(|| panic!("valid block: {diags}"));
    let mut ctx = BuildContext::new(def.pipeline.clone());
    ctx.sink_buffer_budget = budget;
    validated.build(&ctx).await.expect("sink builds")
}

#[tokio::test]
async fn buffer_budget_loads_the_biggest_buffer_first() {
    const BUDGET: usize = 100_000;
    let emu = Emulator::start(EmulatorConfig::doris().with_user("loader", "pw"))
        .await
        .unwrap();
    let mut sink = budget_sink(&emu, BUDGET).await;
    let (a, b, c) = (
        table("app", "a", true),
        table("app", "b", true),
        table("app", "c", true),
    );
    for t in [&a, &b, &c] {
        sink.create_table(t).await.unwrap();
    }
    // About 115 bytes a row: a ≈ 46 KB, b ≈ 9 KB, c ≈ 5 KB buffered, all under the budget.
    sink.write(inserts(&a, 0..400, "a", 1)).await.unwrap();
    sink.write(inserts(&b, 0..80, "b", 2)).await.unwrap();
    sink.write(inserts(&c, 0..40, "c", 3)).await.unwrap();
    let before = sink.buffered_bytes();
    assert!(
        (45_000..BUDGET).contains(&before),
        "three buffers under the budget: {before}"
    );
    assert!(
        pairs(&emu, "app", "a").is_empty() && pairs(&emu, "app", "b").is_empty(),
        "nothing loaded yet"
    );
    // c grows by ≈ 50 KB: that does not fit, so the biggest buffer (a) is loaded, not b or c.
    sink.write(inserts(&c, 40..480, "c", 4)).await.unwrap();
    assert!(
        sink.buffered_bytes() <= BUDGET,
        "{} > {BUDGET}",
        sink.buffered_bytes()
    );
    assert_eq!(
        pairs(&emu, "app", "a"),
        expected(0..400, "a"),
        "the biggest buffer was loaded"
    );
    assert!(
        pairs(&emu, "app", "b").is_empty(),
        "the small buffer waits for its own trigger"
    );

    // One write far bigger than the budget (≈ 300 KB) is loaded in slices, in order, within it.
    sink.write(inserts(&b, 80..3080, "b", 5)).await.unwrap();
    assert!(
        sink.buffered_bytes() <= BUDGET,
        "{} > {BUDGET}",
        sink.buffered_bytes()
    );
    // Updates of the same keys after it must win: each table's loads stay in order.
    let upd: Vec<(i64, String)> = (0..3080).map(|i| (i, format!("u{i}"))).collect();
    sink.write(rows_batch(&b, &upd, &vec![Op::UpdateAfter; upd.len()], 6))
        .await
        .unwrap();
    assert!(sink.buffered_bytes() <= BUDGET);
    sink.flush().await.unwrap();
    assert_eq!(sink.buffered_bytes(), 0);
    assert_eq!(pairs(&emu, "app", "b"), upd);
    assert_eq!(pairs(&emu, "app", "c"), expected(0..480, "c"));
    let loads_b = emu
        .requests()
        .iter()
        .filter(|r| r.node != "fe" && r.path.ends_with("/b/_stream_load"))
        .count();
    assert!(
        loads_b >= 6,
        "≈ 600 KB for b went out in loads of at most half the budget: {loads_b} loads"
    );
}

/// The engine's view of a sink failure must say "retry later" for an outage.
fn assert_retryable(e: &cdcflow_engine::EngineError, what: &str) {
    // `what` names the step; the chain names the request that failed.
    assert_eq!(
        (e.domain(), e.retry_hint()),
        (ErrorDomain::External, RetryHint::Retry),
        "{what}: {}",
        cdcflow_engine::error::ErrorChain(e)
    );
}

/// Keeps the emulator down until `since + 10 s`, then brings it back.
async fn end_outage(emu: &Emulator, since: Instant) {
    let up_at = since + Duration::from_secs(10);
    tokio::time::sleep_until(up_at.into()).await;
    emu.set_down(false);
}

#[tokio::test]
async fn exactly_once_outage_fails_retryably_and_a_rebuilt_sink_loads_exactly_once() {
    // Doris 2PC and StarRocks Transaction Stream Load.
    for system in [System::Doris, System::StarRocks] {
        exactly_once_outage(system).await;
    }
}

async fn exactly_once_outage(system: System) {
    let emu = emulator(system).await;
    let mut s = settings(&emu, system);
    s.exactly_once = true;
    s.interval = Duration::from_secs(600);
    // Doris: a duplicate-key table, where a row loaded twice would show twice. StarRocks writes
    // primary-key tables only; there the replayed rows must still equal what was written.
    let t = table("app", "events", system == System::StarRocks);
    let mut a = sink(&emu, s.clone(), None).await;
    a.create_table(&t).await.unwrap();
    a.write(inserts(&t, 0..3, "x", 1)).await.unwrap();
    let st1 = a.precommit(1).await.unwrap().expect("2PC state");
    a.commit(1).await.unwrap();
    // Loaded and precommitted after checkpoint 1, never committed: a leftover for recovery.
    let b2 = inserts(&t, 3..6, "y", 2);
    let b3 = inserts(&t, 6..9, "z", 3);
    a.write(b2.clone()).await.unwrap();
    a.flush().await.unwrap();

    let down_since = Instant::now();
    emu.set_down(true);
    a.write(b3.clone()).await.unwrap();
    let err = a.precommit(2).await.expect_err("no checkpoint while down");
    assert_retryable(&err, "precommit during the outage");
    drop(a);
    // The engine restarts the sink from checkpoint 1; while still down that fails retryably too.
    let client = StreamLoadClient::new(client_config(&emu, system)).unwrap();
    let err = StreamLoadSink::build(s.clone(), client, Some(&st1))
        .await
        .expect_err("recovery needs the cluster");
    assert_retryable(&err.into(), "rebuild during the outage");

    end_outage(&emu, down_since).await;
    let mut b = sink(&emu, s, Some(&st1)).await;
    b.create_table(&t).await.unwrap();
    b.write(b2).await.unwrap();
    b.write(b3).await.unwrap();
    let st2: SinkState = serde_json::from_value(b.precommit(2).await.unwrap().unwrap()).unwrap();
    assert_eq!(st2.checkpoint, 2);
    b.commit(2).await.unwrap();
    let want: Vec<(i64, String)> = expected(0..3, "x")
        .into_iter()
        .chain(expected(3..6, "y"))
        .chain(expected(6..9, "z"))
        .collect();
    assert_eq!(
        pairs(&emu, "app", "events"),
        want,
        "{system:?}: every row exactly once after the outage"
    );
}

#[tokio::test]
async fn at_least_once_outage_fails_retryably_and_a_rebuilt_sink_loads_everything() {
    for system in [System::Doris, System::StarRocks] {
        at_least_once_outage(system).await;
    }
}

async fn at_least_once_outage(system: System) {
    let emu = emulator(system).await;
    let mut s = settings(&emu, system);
    s.interval = Duration::from_secs(600);
    let t = table("app", "accounts", true);
    let mut a = sink(&emu, s.clone(), None).await;
    a.create_table(&t).await.unwrap();
    a.write(inserts(&t, 0..5, "x", 1)).await.unwrap();
    assert!(a.precommit(1).await.unwrap().is_none(), "no state");

    let down_since = Instant::now();
    emu.set_down(true);
    // Update 1, delete 2, insert 5: not acknowledged, so the engine replays it.
    let changes = rows_batch(
        &t,
        &[
            (1, "updated".to_string()),
            (2, String::new()),
            (5, "new".to_string()),
        ],
        &[Op::UpdateAfter, Op::Delete, Op::Insert],
        2,
    );
    a.write(changes.clone()).await.unwrap();
    let err = a.flush().await.expect_err("no flush while down");
    assert_retryable(&err, "flush during the outage");
    drop(a);

    end_outage(&emu, down_since).await;
    let mut b = sink(&emu, s, None).await;
    b.create_table(&t).await.unwrap();
    b.write(changes).await.unwrap();
    assert!(b.precommit(2).await.unwrap().is_none());
    let mut want = expected(0..5, "x");
    want[1].1 = "updated".into();
    want.remove(2);
    want.push((5, "new".into()));
    assert_eq!(pairs(&emu, "app", "accounts"), want, "{system:?}");
}
