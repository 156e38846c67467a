//! Every retry path of the Stream Load client, driven by the emulator's fault injection.

use std::time::Duration;

use bytes::Bytes;
use cdcflow_doris::stream_load::{LoadRequest, StreamLoadClient};
use cdcflow_doris::{SinkError, System};
use cdcflow_engine::change::Op;
use cdcflow_engine::component::Sink;
use cdcflow_testkit::emulator::{Emulator, Fault, FaultPoint, TxnState};

use crate::common::*;
use crate::doris::{orders, orders_batch};

async fn with_table(system: System) -> Emulator {
    let emu = emulator(system).await;
    emu.create_table_sql(
        "db",
        match system {
            System::Doris => "CREATE TABLE t (id INT, v STRING) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1",
            System::StarRocks => "CREATE TABLE t (id INT NOT NULL, v STRING) PRIMARY KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1",
        },
    )
    .unwrap();
    emu
}

fn request(label: &str, body: &str) -> LoadRequest {
    LoadRequest {
        db: "db".into(),
        table: "t".into(),
        label: label.into(),
        headers: vec![
            ("format".into(), "json".into()),
            ("read_json_by_line".into(), "true".into()),
        ],
        body: Bytes::from(body.to_string()),
        two_phase: false,
    }
}

fn client(emu: &Emulator, system: System) -> StreamLoadClient {
    StreamLoadClient::new(client_config(emu, system)).unwrap()
}

fn ids(emu: &Emulator) -> Vec<i64> {
    let mut v: Vec<i64> = emu
        .rows("db", "t")
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    v.sort();
    v
}

const BODY: &str = "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n";

#[tokio::test]
async fn fe_probe_has_no_body_and_auth_is_resent_to_the_be() {
    let emu = with_table(System::Doris).await;
    let out = client(&emu, System::Doris)
        .load(&request("l1", BODY))
        .await
        .unwrap();
    assert_eq!(out.loaded_rows, 2);
    let reqs = emu.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!((reqs[0].node.as_str(), reqs[0].status), ("fe", 307));
    assert!(
        reqs[1].node.starts_with("be") && reqs[1].had_auth,
        "{reqs:?}"
    );
    assert_eq!(ids(&emu), vec![1, 2]);
}

#[tokio::test]
async fn http_5xx_is_retried_with_the_same_label() {
    for system in [System::Doris, System::StarRocks] {
        let emu = with_table(system).await;
        emu.inject(FaultPoint::BeStreamLoad, Fault::HttpStatus(503), 2);
        let out = client(&emu, system)
            .load(&request("l5xx", BODY))
            .await
            .unwrap();
        assert_eq!(out.loaded_rows, 2);
        let labels: Vec<_> = emu
            .requests()
            .iter()
            .filter(|r| r.node != "fe")
            .map(|r| r.label.clone())
            .collect();
        assert_eq!(
            labels,
            vec![Some("l5xx".to_string()); 3],
            "{system:?}: two failures, one success, one label"
        );
        assert_eq!(ids(&emu), vec![1, 2]);
    }
}

#[tokio::test]
async fn fe_5xx_and_connection_reset_are_retried() {
    let emu = with_table(System::Doris).await;
    emu.inject(FaultPoint::FeStreamLoad, Fault::HttpStatus(500), 1);
    emu.inject(FaultPoint::BeStreamLoad, Fault::ConnectionReset, 1);
    let out = client(&emu, System::Doris)
        .load(&request("lreset", BODY))
        .await
        .unwrap();
    assert_eq!(out.loaded_rows, 2);
    assert_eq!(ids(&emu), vec![1, 2]);
}

#[tokio::test]
async fn timeout_then_label_running_resolves_to_exactly_once() {
    let emu = with_table(System::Doris).await;
    // The BE sits on the load (label RUNNING) longer than the client's 2 s timeout, then commits.
    emu.inject(
        FaultPoint::BeStreamLoad,
        Fault::Hang(Duration::from_secs(3)),
        1,
    );
    let out = client(&emu, System::Doris)
        .load(&request("lhang", BODY))
        .await
        .unwrap();
    assert!(
        out.already_committed,
        "the retry found the first attempt committed: {out:?}"
    );
    assert_eq!(ids(&emu), vec![1, 2], "rows loaded exactly once");
}

#[tokio::test]
async fn lost_reply_after_commit_is_not_loaded_twice() {
    for system in [System::Doris, System::StarRocks] {
        let emu = with_table(system).await;
        emu.inject(FaultPoint::BeStreamLoad, Fault::DropReplyAfterCommit, 1);
        let out = client(&emu, system)
            .load(&request("llost", BODY))
            .await
            .unwrap();
        assert!(out.already_committed, "{system:?}: {out:?}");
        assert_eq!(ids(&emu), vec![1, 2]);
    }
}

#[tokio::test]
async fn publish_timeout_counts_as_success() {
    let emu = with_table(System::Doris).await;
    emu.inject(FaultPoint::BeStreamLoad, Fault::PublishTimeout, 1);
    let out = client(&emu, System::Doris)
        .load(&request("lpub", BODY))
        .await
        .unwrap();
    assert!(!out.already_committed);
    let be_loads = emu.requests().iter().filter(|r| r.node != "fe").count();
    assert_eq!(be_loads, 1, "no retry after Publish Timeout");
    assert_eq!(ids(&emu), vec![1, 2]);
}

#[tokio::test]
async fn label_already_exists_with_each_existing_job_status() {
    for system in [System::Doris, System::StarRocks] {
        // FINISHED: an earlier attempt committed; nothing is loaded again.
        let emu = with_table(system).await;
        emu.set_label_state("db", "t", "lfin", TxnState::Visible);
        let out = client(&emu, system)
            .load(&request("lfin", BODY))
            .await
            .unwrap();
        assert!(out.already_committed);
        assert!(
            ids(&emu).is_empty(),
            "{system:?}: a FINISHED label loads nothing"
        );

        // RUNNING that never settles: the client waits a bounded time, then gives up without
        // loading (a RUNNING label that does commit is covered by the timeout test).
        let emu = with_table(system).await;
        emu.set_label_state("db", "t", "lrun", TxnState::Prepare);
        let mut cfg = client_config(&emu, system);
        cfg.label_wait = Duration::from_millis(200);
        cfg.max_retries = 1;
        let err = StreamLoadClient::new(cfg)
            .unwrap()
            .load(&request("lrun", BODY))
            .await
            .expect_err("label stays RUNNING");
        assert!(err.is_retryable(), "{system:?}: {err}");
        assert!(ids(&emu).is_empty(), "{system:?}");
        assert!(
            emu.counters().load_state >= 2,
            "{system:?}: the label state was polled"
        );

        // PRECOMMITTED / PREPARED: a leftover transaction is aborted, then the load goes through.
        let emu = with_table(system).await;
        let held = if system == System::Doris {
            TxnState::Precommitted
        } else {
            TxnState::Prepared
        };
        emu.set_label_state("db", "t", "lpre", held);
        let out = client(&emu, system)
            .load(&request("lpre", BODY))
            .await
            .unwrap();
        assert!(!out.already_committed);
        assert_eq!(ids(&emu), vec![1, 2], "{system:?}");
    }
}

#[tokio::test]
async fn data_errors_are_not_retried() {
    let emu = with_table(System::Doris).await;
    let mut req = request("lbad", "{\"id\":\"x\",\"v\":1}\n");
    req.headers.push(("strict_mode".into(), "true".into()));
    let err = client(&emu, System::Doris).load(&req).await;
    let err = err.expect_err("a bad row fails the load");
    assert!(!err.is_retryable(), "{err}");
    assert!(matches!(err, SinkError::LoadFailed { .. }), "{err}");
    let be_loads = emu.requests().iter().filter(|r| r.node != "fe").count();
    assert_eq!(be_loads, 1, "filtered rows are a data error: no retry");
}

#[tokio::test]
async fn wrong_password_is_not_retried() {
    for system in [System::Doris, System::StarRocks] {
        let emu = with_table(system).await;
        let mut cfg = client_config(&emu, system);
        cfg.password = cdcflow_engine::config::Secret::new("wrong");
        let err = StreamLoadClient::new(cfg)
            .unwrap()
            .load(&request("lauth", BODY))
            .await
            .expect_err("auth fails");
        assert!(matches!(err, SinkError::Auth { .. }), "{system:?}: {err}");
        assert_eq!(
            emu.requests().len(),
            1,
            "{system:?}: no retry after an auth failure"
        );
    }
}

#[tokio::test]
async fn retries_exhausted_surface_the_last_error() {
    let emu = with_table(System::Doris).await;
    emu.inject(FaultPoint::BeStreamLoad, Fault::HttpStatus(500), 10);
    let err = client(&emu, System::Doris)
        .load(&request("lfail", BODY))
        .await
        .expect_err("always 500");
    assert!(err.is_retryable(), "{err}");
    let be_loads = emu.requests().iter().filter(|r| r.node != "fe").count();
    assert_eq!(be_loads, 4, "first attempt + sink.max-retries (3)");
    assert!(ids(&emu).is_empty());
}

#[tokio::test]
async fn sink_survives_faults_without_duplicates() {
    let emu = emulator(System::Doris).await;
    let mut sink = sink(&emu, settings(&emu, System::Doris), None).await;
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    emu.inject(FaultPoint::BeStreamLoad, Fault::DropReplyAfterCommit, 1);
    emu.inject(FaultPoint::BeStreamLoad, Fault::HttpStatus(502), 1);
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
    sink.flush().await.unwrap();
    assert_eq!(emu.rows("app", "orders").unwrap().len(), 2);
}

#[tokio::test]
async fn dead_fe_fails_over_to_the_next_one() {
    let emu = with_table(System::Doris).await;
    // Grab a free port and close it again: connecting to it is refused.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = client_config(&emu, System::Doris);
    cfg.fe_nodes = vec![dead.to_string(), emu.fe_url()];
    let out = StreamLoadClient::new(cfg)
        .unwrap()
        .load(&request("lfailover", BODY))
        .await
        .unwrap();
    assert_eq!(out.loaded_rows, 2);
    assert_eq!(ids(&emu), vec![1, 2]);
}

#[tokio::test]
async fn benodes_load_straight_to_backends() {
    let emu = with_table(System::Doris).await;
    let mut cfg = client_config(&emu, System::Doris);
    cfg.be_nodes = emu.be_addrs().iter().map(|a| a.to_string()).collect();
    let out = StreamLoadClient::new(cfg)
        .unwrap()
        .load(&request("lbe", BODY))
        .await
        .unwrap();
    assert_eq!(out.loaded_rows, 2);
    let c = emu.counters();
    assert_eq!(
        (c.fe_stream_loads, c.redirects, c.be_stream_loads),
        (0, 0, 1),
        "{c:?}"
    );
    assert_eq!(ids(&emu), vec![1, 2]);
}

#[tokio::test]
async fn request_timeout_is_retried_with_the_same_label() {
    for system in [System::Doris, System::StarRocks] {
        let emu = with_table(system).await;
        // The FE would sit on the first request for an hour: only the client's own 2 s timeout
        // and a retry let this test finish at all.
        emu.inject(
            FaultPoint::FeStreamLoad,
            Fault::Hang(Duration::from_secs(3600)),
            1,
        );
        let out = client(&emu, system)
            .load(&request("ltimeout", BODY))
            .await
            .unwrap();
        assert_eq!(out.loaded_rows, 2, "{system:?}");
        let labels: Vec<_> = emu.requests().iter().map(|r| r.label.clone()).collect();
        assert!(
            labels.iter().all(|l| l.as_deref() == Some("ltimeout")),
            "{system:?}: {labels:?}"
        );
        assert_eq!(ids(&emu), vec![1, 2], "{system:?}");
    }
}
