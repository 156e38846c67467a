//! Exactly-once: Doris 2PC and StarRocks Transaction Stream Load tied to checkpoints, including a
//! crash between precommit and commit and leftovers of a crashed epoch.

use cdcflow_doris::System;
use cdcflow_doris::label::LabelMaker;
use cdcflow_doris::sink::SinkState;
use cdcflow_engine::change::Op;
use cdcflow_engine::component::Sink;
use cdcflow_testkit::emulator::TxnState;

use crate::common::*;
use crate::doris::{orders, orders_batch};

fn eo(emu: &cdcflow_testkit::emulator::Emulator, system: System) -> cdcflow_doris::SinkSettings {
    let mut s = settings(emu, system);
    s.exactly_once = true;
    s
}

fn ids(emu: &cdcflow_testkit::emulator::Emulator) -> Vec<i64> {
    let mut v: Vec<i64> = emu
        .rows("app", "orders")
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn rows_become_visible_only_at_commit() {
    for system in [System::Doris, System::StarRocks] {
        let emu = emulator(system).await;
        let mut sink = sink(&emu, eo(&emu, system), None).await;
        let t = orders("app");
        sink.create_table(&t).await.unwrap();
        sink.write(orders_batch(
            &t,
            &[1, 2],
            &[Some("a"), Some("b")],
            &[Op::Insert; 2],
            &[0, 0],
            1,
        ))
        .await
        .unwrap();
        let state = sink
            .precommit(1)
            .await
            .unwrap()
            .expect("exactly-once sinks return state");
        let st: SinkState = serde_json::from_value(state).unwrap();
        assert_eq!(st.pending.len(), 1, "{system:?}: one prepared transaction");
        assert!(
            ids(&emu).is_empty(),
            "{system:?}: prepared rows are invisible"
        );
        sink.commit(1).await.unwrap();
        assert_eq!(ids(&emu), vec![1, 2], "{system:?}");
        let c = emu.counters();
        match system {
            System::Doris => assert!(c.two_phase >= 1, "{c:?}"),
            System::StarRocks => assert!(
                c.transaction_ops >= 4,
                "{c:?}: begin, load, prepare, commit"
            ),
        }
    }
}

#[tokio::test]
async fn crash_between_precommit_and_commit_is_committed_on_restart() {
    for system in [System::Doris, System::StarRocks] {
        let emu = emulator(system).await;
        let t = orders("app");
        let state = {
            let mut a = sink(&emu, eo(&emu, system), None).await;
            a.create_table(&t).await.unwrap();
            a.write(orders_batch(
                &t,
                &[1, 2],
                &[Some("a"), Some("b")],
                &[Op::Insert; 2],
                &[0, 0],
                1,
            ))
            .await
            .unwrap();
            a.precommit(1).await.unwrap().unwrap()
            // The engine persisted `state`, then the process died before `commit`.
        };
        assert!(ids(&emu).is_empty(), "{system:?}");
        let _b = sink(&emu, eo(&emu, system), Some(&state)).await;
        assert_eq!(
            ids(&emu),
            vec![1, 2],
            "{system:?}: build committed the checkpoint's transactions"
        );
        // Building again from the same state (a second crash) is harmless.
        let _c = sink(&emu, eo(&emu, system), Some(&state)).await;
        assert_eq!(ids(&emu), vec![1, 2], "{system:?}");
    }
}

#[tokio::test]
async fn leftovers_after_the_checkpoint_are_aborted_and_replayed() {
    for system in [System::Doris, System::StarRocks] {
        let emu = emulator(system).await;
        let t = orders("app");
        let state = {
            let mut a = sink(&emu, eo(&emu, system), None).await;
            a.create_table(&t).await.unwrap();
            a.write(orders_batch(&t, &[1], &[Some("a")], &[Op::Insert], &[0], 1))
                .await
                .unwrap();
            let s = a.precommit(1).await.unwrap().unwrap();
            a.commit(1).await.unwrap();
            // Rows after checkpoint 1 are loaded and prepared, then the process dies.
            a.write(orders_batch(&t, &[2], &[Some("b")], &[Op::Insert], &[0], 2))
                .await
                .unwrap();
            a.flush().await.unwrap();
            s
        };
        let st: SinkState = serde_json::from_value(state.clone()).unwrap();
        let leftover =
            LabelMaker::new("test", "app", "orders").label(&format!("{}-2", st.token), 0);
        let before = emu.label_state("app", &leftover);
        assert!(
            matches!(before, Some(TxnState::Precommitted | TxnState::Prepared)),
            "{system:?}: {before:?}"
        );
        let mut b = sink(&emu, eo(&emu, system), Some(&state)).await;
        assert_eq!(
            emu.label_state("app", &leftover),
            Some(TxnState::Aborted),
            "{system:?}: leftover aborted at build"
        );
        assert_eq!(ids(&emu), vec![1], "{system:?}");
        // The source replays from checkpoint 1; the same label is reused and committed.
        b.create_table(&t).await.unwrap();
        b.write(orders_batch(&t, &[2], &[Some("b")], &[Op::Insert], &[0], 2))
            .await
            .unwrap();
        b.precommit(2).await.unwrap();
        b.commit(2).await.unwrap();
        assert_eq!(ids(&emu), vec![1, 2], "{system:?}");
        assert!(
            matches!(
                emu.label_state("app", &leftover),
                Some(TxnState::Visible | TxnState::Committed)
            ),
            "{system:?}"
        );
    }
}
