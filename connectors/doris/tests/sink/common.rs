//! Builders for schemas, change batches and sinks pointed at an emulator.

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int8Array, Int64Array, RecordBatch};
use cdcflow_doris::sink::{DdlTransport, SinkSettings, StreamLoadSink};
use cdcflow_doris::{ClientConfig, StreamLoadClient, System};
use cdcflow_engine::change::{ChangeBatch, Op};
use cdcflow_engine::config::Secret;
use cdcflow_engine::schema::{CdcType, ColumnDef, TableId, TableSchema, TableSchemaRef};
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig};
use serde_json::{Map, Value};

pub fn col(name: &str, t: CdcType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        data_type: t,
        nullable,
        default: None,
        comment: None,
        source_type: String::new(),
    }
}

pub fn schema(
    db: &str,
    table: &str,
    cols: Vec<ColumnDef>,
    pk: &[&str],
    version: u64,
) -> TableSchemaRef {
    Arc::new(TableSchema::new(
        TableId::new(db, table),
        cols,
        pk.iter().map(|s| s.to_string()).collect(),
        None,
        version,
    ))
}

/// A batch of `schema` from user columns, ops and event times.
pub fn batch(
    schema: &TableSchemaRef,
    cols: Vec<ArrayRef>,
    ops: &[Op],
    ts: &[i64],
    seq: u64,
) -> ChangeBatch {
    let mut all = cols;
    all.push(Arc::new(Int8Array::from(
        ops.iter().map(|o| *o as i8).collect::<Vec<_>>(),
    )));
    all.push(Arc::new(Int64Array::from(ts.to_vec())));
    let data =
        RecordBatch::try_new(schema.arrow.clone(), all).expect("test batch matches its schema");
    ChangeBatch {
        table: schema.clone(),
        data,
        seq,
        offset: None,
    }
}

pub async fn emulator(system: System) -> Emulator {
    let cfg = match system {
        System::Doris => EmulatorConfig::doris(),
        System::StarRocks => EmulatorConfig::starrocks(),
    };
    Emulator::start(cfg).await.expect("emulator starts")
}

/// Client settings with fast retries and a short request timeout, for fault tests.
pub fn client_config(emu: &Emulator, system: System) -> ClientConfig {
    let mut c = ClientConfig::new(system, vec![emu.fe_url()], "root", Secret::new(""));
    c.retry_backoff = Duration::from_millis(20);
    c.max_backoff = Duration::from_millis(100);
    c.request_timeout = Some(Duration::from_secs(2));
    c.connect_timeout = Duration::from_secs(2);
    c.label_wait = Duration::from_secs(10);
    c
}

pub fn settings(emu: &Emulator, system: System) -> SinkSettings {
    let mut s = SinkSettings::new(system);
    s.label_prefix = "test".into();
    if system == System::StarRocks {
        let q = emu.query_addr();
        s.ddl_transport = DdlTransport::Mysql {
            host: q.ip().to_string(),
            port: q.port(),
            user: "root".into(),
            password: Secret::new(""),
        };
        s.ddl.char_bytes = 3;
    }
    s
}

pub async fn sink(emu: &Emulator, s: SinkSettings, state: Option<&Value>) -> StreamLoadSink {
    let client = StreamLoadClient::new(client_config(emu, s.system)).expect("client builds");
    StreamLoadSink::build(s, client, state)
        .await
        .expect("sink builds")
}

/// The emulator's visible rows sorted by `key`, as JSON objects.
pub fn rows(emu: &Emulator, db: &str, table: &str, key: &str) -> Vec<Value> {
    let mut r: Vec<Map<String, Value>> = emu.rows(db, table).expect("table exists");
    let k = |m: &Map<String, Value>| m.get(key).map(|v| (v.as_i64(), v.to_string()));
    r.sort_by_key(k);
    r.into_iter().map(Value::Object).collect()
}
