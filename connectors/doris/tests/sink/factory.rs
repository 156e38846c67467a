//! The `doris` / `starrocks` sink types end to end: YAML block → validate → build → write.

use cdcflow_doris::{DorisSinkFactory, StarRocksSinkFactory, System};
use cdcflow_engine::change::Op;
use cdcflow_engine::component::{BuildContext, SinkFactory};
use cdcflow_engine::config::{Diagnostics, load_str_with_env};

use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};

use crate::doris::{orders, orders_batch};

async fn run(system: System, sink_yaml: String) {
    let cfg = match system {
        System::Doris => EmulatorConfig::doris(),
        System::StarRocks => EmulatorConfig::starrocks(),
    };
    let emu = Emulator::start(cfg.with_user("loader", "secret-pw"))
        .await
        .unwrap();
    let text = format!(
        "source:\n  type: mysql\nsink:\n{}",
        sink_yaml
            .replace("{fe}", &emu.fe_addr().to_string())
            .replace("{query}", &emu.query_addr().to_string())
    );
    let def = load_str_with_env(&text, "p.yaml", &|_| None).expect("pipeline file loads");
    let mut diags = Diagnostics::default();
    let factory: Box<dyn SinkFactory> = match system {
        System::Doris => Box::new(DorisSinkFactory),
        System::StarRocks => Box::new(StarRocksSinkFactory),
    };
    let validated = factory
        .validate(&def.sink, &def.pipeline, &mut diags)
        .unwrap_or_else(|| panic!("valid block: {diags}"));
    assert!(
        validated
            .describe()
            .iter()
            .all(|(_, v)| !v.contains("secret-pw")),
        "describe never shows the password"
    );
    let ctx = BuildContext::new(def.pipeline.clone());
    let mut sink = validated.build(&ctx).await.expect("sink builds");
    let t = orders("app");
    sink.create_table(&t).await.unwrap();
    sink.write(orders_batch(
        &t,
        &[1, 2],
        &[Some("a"), Some("b")],
        &[Op::Insert, Op::Insert],
        &[0, 0],
        1,
    ))
    .await
    .unwrap();
    sink.write(orders_batch(
        &t,
        &[1],
        &[Some("a")],
        &[Op::Delete],
        &[10],
        2,
    ))
    .await
    .unwrap();
    let state = sink.precommit(1).await.unwrap();
    assert!(state.is_none(), "at-least-once by default");
    sink.commit(1).await.unwrap();
    let got: Vec<i64> = emu
        .rows("app", "orders")
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, vec![2], "{system:?}");
    let props = emu.schema("app", "orders").unwrap().properties;
    assert!(
        props
            .iter()
            .any(|(k, v)| k == "replication_num" && v == "1"),
        "table.create.properties passed through: {props:?}"
    );
}

#[tokio::test]
async fn doris_block_builds_a_working_sink() {
    run(
        System::Doris,
        "  type: doris\n  fenodes: {fe}\n  username: loader\n  password: secret-pw\n  sink.label-prefix: job1\n  sink.properties.format: csv\n  sink.properties.compress_type: gz\n  table.create.properties.replication_num: 1\n".into(),
    )
    .await;
}

#[tokio::test]
async fn starrocks_block_builds_a_working_sink() {
    run(
        System::StarRocks,
        "  type: starrocks\n  jdbc-url: jdbc:mysql://{query}\n  load-url: {fe}\n  username: loader\n  password: secret-pw\n  table.create.properties.replication_num: 1\n".into(),
    )
    .await;
}
