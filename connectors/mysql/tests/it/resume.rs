//! Crash safety of the source's offsets: a restart from any emitted offset must neither repeat
//! nor skip rows, including in a keyless table and with a writer running during the snapshot.
//! Run 1 reads everything and records each event; then runs restart from sampled offsets and
//! the rows emitted up to the offset plus those of the restarted run must equal the table.

use std::collections::BTreeMap;

use cdcflow_engine::{ChangeEvent, Op, SourceOffset};
use cdcflow_mysql::source::SnapshotOffset;
use mysql_async::prelude::Queryable;

use crate::common::{fresh_db, render, server};
use crate::source::{build, cdc_user, pipeline_yaml};

/// Rows as a multiset per table (keyless tables may hold equal rows).
type State = BTreeMap<String, BTreeMap<Vec<String>, i64>>;

fn apply(state: &mut State, ev: &ChangeEvent) {
    let ChangeEvent::Data(b) = ev else { return };
    // `a` has a primary key: the sinks upsert by it, so a replayed row is no duplicate there.
    // `k` has none: every row counts.
    let keyed = b.table.id.table == "a";
    let t = state.entry(b.table.id.table.clone()).or_default();
    let ops = b.ops().clone();
    for r in 0..b.num_rows() {
        let row: Vec<String> = (0..b.num_user_columns())
            .map(|c| render(b.data.column(c).as_ref(), r))
            .collect();
        if keyed {
            let old: Vec<Vec<String>> = t
                .range(vec![row[0].clone()]..)
                .take_while(|(o, _)| o[0] == row[0])
                .map(|(o, _)| o.clone())
                .collect();
            for o in old {
                t.remove(&o);
            }
        }
        match Op::from_i8(ops.value(r)).expect("op") {
            Op::Insert | Op::UpdateAfter => *t.entry(row).or_default() += 1,
            Op::UpdateBefore | Op::Delete if !keyed => *t.entry(row).or_default() -= 1,
            Op::UpdateBefore | Op::Delete => {}
        }
    }
    t.retain(|_, n| *n != 0);
}

fn offset_of(ev: &ChangeEvent) -> Option<&SourceOffset> {
    match ev {
        ChangeEvent::Data(b) => b.offset.as_ref(),
        ChangeEvent::Progress { offset, .. } => Some(offset),
        _ => None,
    }
}

fn has_sentinels(state: &State) -> bool {
    ["a", "k"].iter().all(|t| {
        state
            .get(*t)
            .is_some_and(|m| m.keys().any(|r| r[1] == "sentinel"))
    })
}

async fn table_state(db: &str) -> State {
    let mut out = State::new();
    for t in ["a", "k"] {
        let rows: Vec<(i64, Option<String>)> = server()
            .await
            .query(&format!("SELECT id, v FROM {db}.{t}"))
            .await
            .expect("select");
        let m = out.entry(t.to_string()).or_default();
        for (id, v) in rows {
            *m.entry(vec![id.to_string(), v.unwrap_or_else(|| "NULL".into())])
                .or_default() += 1;
        }
    }
    out
}

#[tokio::test]
async fn restart_from_any_offset_neither_repeats_nor_skips_rows() {
    let s = server().await;
    let db = fresh_db("src_crash").await;
    cdc_user(s, "cdc_crash").await;
    s.exec(&format!(
        "CREATE TABLE {db}.a (id INT PRIMARY KEY, v VARCHAR(30));
         INSERT INTO {db}.a SELECT seq, CONCAT('a', seq) FROM {db}.seq_1_to_30000;
         CREATE TABLE {db}.k (id INT, v VARCHAR(30));
         INSERT INTO {db}.k SELECT seq, CONCAT('k', seq) FROM {db}.seq_1_to_9000;
         INSERT INTO {db}.k SELECT seq, CONCAT('k', seq) FROM {db}.seq_1_to_100"
    ))
    .await
    .unwrap();
    // Chunks of 10000 rows, batches of 4096: every chunk spans several batches.
    let yaml = pipeline_yaml(
        s.port(),
        "cdc_crash",
        &format!("{db}.(a|k)"),
        "  scan.incremental.snapshot.chunk.size: 10000\n  scan.snapshot.fetch.size: 4096\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (wdb, wstop) = (db.clone(), stop.clone());
    let writer = tokio::spawn(async move {
        let mut conn = server().await.conn().await.expect("writer connects");
        let mut i = 0u32;
        while !wstop.load(std::sync::atomic::Ordering::SeqCst) || i < 20 {
            let k = i * 487 % 30000 + 1;
            let kk = i * 97 % 9000 + 1;
            conn.query_drop(format!(
                "UPDATE {wdb}.a SET v = 'u{i}' WHERE id = {k};
                 DELETE FROM {wdb}.a WHERE id = {};
                 INSERT INTO {wdb}.a VALUES ({}, 'new{i}');
                 INSERT INTO {wdb}.k VALUES ({}, 'new{i}');
                 DELETE FROM {wdb}.k WHERE id = {kk} LIMIT 1;
                 UPDATE {wdb}.k SET v = 'u{i}' WHERE id = {} LIMIT 1",
                (k + 11) % 30000 + 1,
                40000 + i,
                20000 + i,
                (kk + 5) % 9000 + 1,
            ))
            .await
            .expect("write");
            i += 1;
        }
        conn.query_drop(format!(
            "INSERT INTO {wdb}.a VALUES (999999, 'sentinel'); INSERT INTO {wdb}.k VALUES (999999, 'sentinel')"
        ))
        .await
        .expect("sentinel");
    });

    // Run 1: everything, recording the events.
    let mut src = build(&yaml, None).await.expect("build");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut events = Vec::new();
    let mut state = State::new();
    while !has_sentinels(&state) {
        let ev = tokio::time::timeout_at(deadline, src.next_event())
            .await
            .expect("events keep coming")
            .expect("event")
            .expect("initial mode is unbounded");
        if let ChangeEvent::Data(b) = &ev
            && let Some(o) = &b.offset
        {
            assert!(
                SnapshotOffset::from_source_offset(o).is_none(),
                "snapshot row batches carry no offset (only chunk ends do)"
            );
        }
        if offset_of(&ev).is_some_and(|o| SnapshotOffset::from_source_offset(o).is_none()) {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        apply(&mut state, &ev);
        events.push(ev);
    }
    drop(src);
    writer.await.unwrap();
    let want = table_state(&db).await;
    assert_eq!(state, want, "run 1 equals the tables");

    // Offsets to restart from: every snapshot-phase one and the first binlog one.
    let snap_marks: Vec<usize> = (0..events.len())
        .filter(|&i| {
            offset_of(&events[i]).is_some_and(|o| SnapshotOffset::from_source_offset(o).is_some())
        })
        .collect();
    let first_binlog = (0..events.len()).find(|&i| {
        offset_of(&events[i]).is_some_and(|o| SnapshotOffset::from_source_offset(o).is_none())
    });
    assert!(
        snap_marks.len() >= 3,
        "several snapshot offsets: {}",
        snap_marks.len()
    );
    let marks: Vec<usize> = snap_marks.into_iter().chain(first_binlog).collect();
    for &i in &marks {
        let mut state = State::new();
        for ev in &events[..=i] {
            apply(&mut state, ev);
        }
        let offset = offset_of(&events[i]).cloned().expect("offset");
        let mut src = build(&yaml, Some(offset)).await.expect("resume");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        // Until the sentinels (the last writes) are in and the source has gone quiet.
        loop {
            let quiet = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            let until = if has_sentinels(&state) {
                quiet
            } else {
                deadline
            };
            let Ok(ev) = tokio::time::timeout_at(until, src.next_event()).await else {
                assert!(has_sentinels(&state), "resumed run from event {i} stalls");
                break;
            };
            apply(&mut state, &ev.expect("event").expect("unbounded"));
        }
        drop(src);
        for t in ["a", "k"] {
            let diff: Vec<_> = want[t]
                .iter()
                .filter(|(r, n)| state[t].get(*r) != Some(*n))
                .map(|(r, n)| (r.clone(), *n, state[t].get(r).copied()))
                .chain(
                    state[t]
                        .iter()
                        .filter(|(r, _)| !want[t].contains_key(*r))
                        .map(|(r, n)| (r.clone(), 0, Some(*n))),
                )
                .take(5)
                .collect();
            assert!(
                diff.is_empty(),
                "restart from event {i} of {}: table {t} differs (row, want, got): {diff:?}",
                events.len()
            );
        }
    }
}
