//! Wiring: source → transform → sink over a bounded channel, with periodic checkpoints and a
//! graceful drain on shutdown.
//!
//! ```text
//!  ┌────────┐  bounded mpsc   ┌───────────────────────────────────────────┐
//!  │ source │ ──ChangeEvent─▶ │ transform ─▶ schema policy ─▶ sink.write   │
//!  │  task  │   (capacity N)  │ every interval: sink.precommit ─▶ save cp  │
//!  └────────┘                 │                  ─▶ sink.commit            │
//!                             └───────────────────────────────────────────┘
//! ```
//!
//! Invariant: a checkpoint records the offset of the last event that was handed to the sink
//! *before* the sink's `precommit` returned, so every row up to that offset is durable (or
//! prepared) in the sink. Resuming from it loses nothing; what is replayed after it is
//! deduplicated by the sink (upsert keys, labels, 2PC).

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::change::{ChangeEvent, SourceOffset};
use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::component::{Sink, Source, Transform};
use crate::error::{EngineError, ErrorChain, Result};
use crate::schema::TableId;
use crate::schema_change::{SchemaChangePolicy, Verdict};

/// How a pipeline run is driven.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Pipeline name (checkpoint identity, logs).
    pub name: String,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Where checkpoints go; `None` runs without durable checkpoints.
    pub store: Option<CheckpointStore>,
    /// Id of the last checkpoint when resuming (new ids continue after it).
    pub last_checkpoint_id: u64,
    /// Events buffered between the source task and the sink loop.
    pub channel_capacity: usize,
    /// Schema-change handling.
    pub schema_policy: SchemaChangePolicy,
    /// Interval of the progress log line.
    pub progress_interval: Duration,
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// A bounded source finished.
    SourceFinished,
    /// Shutdown was requested (SIGTERM / Ctrl-C); everything read was flushed and checkpointed.
    Shutdown,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Rows received from the source.
    pub rows_in: u64,
    /// Rows handed to the sink after transforms.
    pub rows_out: u64,
    /// Data batches handed to the sink.
    pub batches: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Rows per sink table as the sink reports them.
    pub per_table: Vec<(TableId, u64)>,
    /// Why it ended.
    pub end: EndReason,
    /// The last offset checkpointed.
    pub last_offset: Option<SourceOffset>,
}

/// Runs a pipeline until the source ends or `shutdown` is cancelled.
///
/// # Errors
/// The first error of the source, the transform or the sink; nothing is checkpointed past it.
pub async fn run(
    mut source: Box<dyn Source>,
    mut transform: Box<dyn Transform>,
    mut sink: Box<dyn Sink>,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel::<Result<Option<ChangeEvent>>>(opts.channel_capacity.max(1));
    let stop_source = shutdown.child_token();
    let source_task = tokio::spawn({
        let stop = stop_source.clone();
        async move {
            loop {
                // Reserve capacity before reading: a cancelled read never holds a decoded event.
                let permit = tokio::select! {
                    p = tx.reserve() => match p { Ok(p) => p, Err(_) => return },
                    _ = stop.cancelled() => return,
                };
                let ev = tokio::select! {
                    ev = source.next_event() => ev,
                    _ = stop.cancelled() => return,
                };
                let done = !matches!(ev, Ok(Some(_)));
                permit.send(ev);
                if done {
                    return;
                }
            }
        }
    });

    let mut state = LoopState {
        checkpoint_id: opts.last_checkpoint_id,
        last_offset: None,
        offset_since_checkpoint: false,
        rows_in: 0,
        rows_out: 0,
        batches: 0,
        checkpoints: 0,
    };
    let mut out = Vec::new();
    let mut ticker = tokio::time::interval(opts.checkpoint_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut progress = tokio::time::interval(opts.progress_interval);
    progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    progress.tick().await;
    let mut last_report = (Instant::now(), 0u64);

    let end = loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break EndReason::Shutdown,
            msg = rx.recv() => {
                let ev = match msg {
                    None | Some(Ok(None)) => break EndReason::SourceFinished,
                    Some(Err(e)) => { source_task.abort(); return Err(e); }
                    Some(Ok(Some(ev))) => ev,
                };
                if matches!(ev, ChangeEvent::End) {
                    break EndReason::SourceFinished;
                }
                if let Err(e) = handle_event(ev, &mut *transform, &mut *sink, &opts, &mut state, &mut out).await {
                    source_task.abort();
                    return Err(e);
                }
            }
            _ = ticker.tick() => {
                if state.offset_since_checkpoint
                    && let Err(e) = checkpoint(&mut *sink, &opts, &mut state).await
                {
                    source_task.abort();
                    return Err(e);
                }
            }
            _ = progress.tick() => {
                let (t0, r0) = last_report;
                let rate = (state.rows_in - r0) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                info!(rows_in = state.rows_in, rows_out = state.rows_out, rows_per_sec = rate as u64, "Pipeline progress.");
                last_report = (Instant::now(), state.rows_in);
            }
        }
    };
    stop_source.cancel();
    source_task.abort();
    // Drain: everything handed to the sink is flushed and checkpointed before we return.
    checkpoint(&mut *sink, &opts, &mut state).await?;
    let summary = RunSummary {
        rows_in: state.rows_in,
        rows_out: state.rows_out,
        batches: state.batches,
        checkpoints: state.checkpoints,
        elapsed: started.elapsed(),
        per_table: sink.loaded_rows(),
        end,
        last_offset: state.last_offset.clone(),
    };
    info!(
        rows_in = summary.rows_in,
        rows_out = summary.rows_out,
        elapsed_ms = summary.elapsed.as_millis() as u64,
        end = ?summary.end,
        "Pipeline stopped."
    );
    Ok(summary)
}

struct LoopState {
    checkpoint_id: u64,
    last_offset: Option<SourceOffset>,
    offset_since_checkpoint: bool,
    rows_in: u64,
    rows_out: u64,
    batches: u64,
    checkpoints: u64,
}

async fn handle_event(
    ev: ChangeEvent,
    transform: &mut dyn Transform,
    sink: &mut dyn Sink,
    opts: &RunOptions,
    state: &mut LoopState,
    out: &mut Vec<ChangeEvent>,
) -> Result<()> {
    match &ev {
        ChangeEvent::Data(b) => {
            state.rows_in += b.num_rows() as u64;
            if let Some(o) = &b.offset {
                state.last_offset = Some(o.clone());
                state.offset_since_checkpoint = true;
            }
        }
        ChangeEvent::Progress { offset, .. } => {
            state.last_offset = Some(offset.clone());
            state.offset_since_checkpoint = true;
        }
        _ => {}
    }
    out.clear();
    transform.apply(ev, out)?;
    for ev in out.drain(..) {
        match ev {
            ChangeEvent::CreateTable(schema) => sink.create_table(&schema).await?,
            ChangeEvent::SchemaChange {
                table,
                change,
                schema,
                ..
            } => match opts.schema_policy.judge(&change, &schema) {
                Verdict::Skip => {
                    debug!(table = %table, change = change.tag(), "Schema change skipped by policy.")
                }
                Verdict::Fail(msg) => return Err(EngineError::SchemaChangeRejected(msg)),
                Verdict::Apply(changes) => {
                    sink.flush().await?;
                    for c in changes {
                        if let Err(e) = sink.apply_schema_change(&table, &c, &schema).await {
                            if opts.schema_policy.tolerates_sink_failure() {
                                warn!(table = %table, change = c.tag(), error = %ErrorChain(&e), "Schema change not applied; continuing (TRY_EVOLVE).");
                            } else {
                                return Err(e);
                            }
                        }
                    }
                }
            },
            ChangeEvent::Data(batch) => {
                if batch.num_rows() == 0 {
                    continue;
                }
                state.rows_out += batch.num_rows() as u64;
                state.batches += 1;
                sink.write(batch).await?;
            }
            ChangeEvent::Progress { .. } | ChangeEvent::End => {}
        }
    }
    Ok(())
}

async fn checkpoint(sink: &mut dyn Sink, opts: &RunOptions, state: &mut LoopState) -> Result<()> {
    state.checkpoint_id += 1;
    let id = state.checkpoint_id;
    let sink_state = sink.precommit(id).await?;
    if let Some(store) = &opts.store {
        store.save(&Checkpoint {
            id,
            offset: state.last_offset.clone(),
            sink_state,
            pipeline: opts.name.clone(),
            created_ms: chrono::Utc::now().timestamp_millis(),
        })?;
    }
    sink.commit(id).await?;
    state.checkpoints += 1;
    state.offset_since_checkpoint = false;
    debug!(checkpoint = id, "Checkpoint complete.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow::array::{ArrayRef, Int8Array, Int32Array, Int64Array, RecordBatch};
    use async_trait::async_trait;

    use super::*;
    use crate::change::{ChangeBatch, SchemaChange};
    use crate::component::PassThrough;
    use crate::config::SchemaChangeBehavior;
    use crate::schema::{CdcType, ColumnDef, TableSchema, TableSchemaRef};

    fn schema() -> TableSchemaRef {
        Arc::new(TableSchema::new(
            TableId::new("db", "t"),
            vec![ColumnDef {
                name: "id".into(),
                data_type: CdcType::Int,
                nullable: false,
                default: None,
                comment: None,
                source_type: "int".into(),
            }],
            vec!["id".into()],
            None,
            1,
        ))
    }

    fn batch(s: &TableSchemaRef, seq: u64, ids: &[i32]) -> ChangeEvent {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(ids.to_vec())),
            Arc::new(Int8Array::from(vec![0i8; ids.len()])),
            Arc::new(Int64Array::from(vec![0i64; ids.len()])),
        ];
        ChangeEvent::Data(ChangeBatch {
            table: s.clone(),
            data: RecordBatch::try_new(s.arrow.clone(), cols).unwrap(),
            seq,
            offset: Some(SourceOffset::new(serde_json::json!({ "seq": seq }))),
        })
    }

    struct VecSource(std::vec::IntoIter<Result<ChangeEvent>>, bool);

    #[async_trait]
    impl Source for VecSource {
        async fn next_event(&mut self) -> Result<Option<ChangeEvent>> {
            match self.0.next() {
                Some(r) => r.map(Some),
                None if self.1 => std::future::pending().await,
                None => Ok(None),
            }
        }
    }

    #[derive(Default, Clone)]
    struct Collected {
        rows: Vec<i32>,
        created: usize,
        flushes: usize,
        changes: Vec<SchemaChange>,
    }

    struct CollectSink(Arc<Mutex<Collected>>);

    #[async_trait]
    impl Sink for CollectSink {
        async fn create_table(&mut self, _s: &TableSchemaRef) -> Result<()> {
            self.0.lock().unwrap().created += 1;
            Ok(())
        }
        async fn apply_schema_change(
            &mut self,
            _t: &TableId,
            c: &SchemaChange,
            _s: &TableSchemaRef,
        ) -> Result<()> {
            self.0.lock().unwrap().changes.push(c.clone());
            Ok(())
        }
        async fn write(&mut self, b: ChangeBatch) -> Result<()> {
            let ids = b
                .data
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            self.0
                .lock()
                .unwrap()
                .rows
                .extend(ids.values().iter().copied());
            Ok(())
        }
        async fn flush(&mut self) -> Result<()> {
            self.0.lock().unwrap().flushes += 1;
            Ok(())
        }
    }

    fn opts(dir: &std::path::Path, behavior: SchemaChangeBehavior) -> RunOptions {
        RunOptions {
            name: "t".into(),
            checkpoint_interval: Duration::from_secs(3600),
            store: Some(CheckpointStore::new(dir)),
            last_checkpoint_id: 0,
            channel_capacity: 2,
            schema_policy: SchemaChangePolicy::new(behavior, None, None),
            progress_interval: Duration::from_secs(3600),
        }
    }

    #[tokio::test]
    async fn bounded_run_delivers_everything_and_checkpoints_the_last_offset() {
        let s = schema();
        let events = vec![
            Ok(ChangeEvent::CreateTable(s.clone())),
            Ok(batch(&s, 1, &[1, 2])),
            Ok(batch(&s, 2, &[3])),
        ];
        let got = Arc::new(Mutex::new(Collected::default()));
        let dir = tempfile::tempdir().unwrap();
        let summary = run(
            Box::new(VecSource(events.into_iter(), false)),
            Box::new(PassThrough),
            Box::new(CollectSink(got.clone())),
            opts(dir.path(), SchemaChangeBehavior::Lenient),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(summary.end, EndReason::SourceFinished);
        assert_eq!(summary.rows_out, 3);
        let g = got.lock().unwrap().clone();
        assert_eq!(g.rows, vec![1, 2, 3]);
        assert_eq!(g.created, 1);
        assert!(g.flushes >= 1, "the final checkpoint flushes the sink");
        let cp = CheckpointStore::new(dir.path())
            .load()
            .unwrap()
            .expect("a checkpoint was written");
        assert_eq!(
            cp.offset,
            Some(SourceOffset::new(serde_json::json!({ "seq": 2 })))
        );
    }

    #[tokio::test]
    async fn shutdown_flushes_and_checkpoints_what_was_handled() {
        let s = schema();
        let events = vec![
            Ok(ChangeEvent::CreateTable(s.clone())),
            Ok(batch(&s, 7, &[1])),
        ];
        let got = Arc::new(Mutex::new(Collected::default()));
        let dir = tempfile::tempdir().unwrap();
        let token = CancellationToken::new();
        let t2 = token.clone();
        let watch = got.clone();
        tokio::spawn(async move {
            while watch.lock().unwrap().rows.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            t2.cancel();
        });
        let summary = run(
            Box::new(VecSource(events.into_iter(), true)),
            Box::new(PassThrough),
            Box::new(CollectSink(got.clone())),
            opts(dir.path(), SchemaChangeBehavior::Lenient),
            token,
        )
        .await
        .unwrap();
        assert_eq!(summary.end, EndReason::Shutdown);
        let cp = CheckpointStore::new(dir.path()).load().unwrap().unwrap();
        assert_eq!(
            cp.offset,
            Some(SourceOffset::new(serde_json::json!({ "seq": 7 })))
        );
    }

    #[tokio::test]
    async fn source_error_fails_the_run_without_checkpointing_past_it() {
        let s = schema();
        let events = vec![
            Ok(batch(&s, 1, &[1])),
            Err(EngineError::Internal("boom".into())),
        ];
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            Box::new(VecSource(events.into_iter(), false)),
            Box::new(PassThrough),
            Box::new(CollectSink(Arc::default())),
            opts(dir.path(), SchemaChangeBehavior::Lenient),
            CancellationToken::new(),
        )
        .await;
        assert!(matches!(r, Err(EngineError::Internal(m)) if m == "boom"));
        assert!(CheckpointStore::new(dir.path()).load().unwrap().is_none());
    }

    #[tokio::test]
    async fn exception_mode_fails_on_schema_change() {
        let s = schema();
        let events = vec![Ok(ChangeEvent::SchemaChange {
            table: s.id.clone(),
            change: SchemaChange::TruncateTable,
            schema: s.clone(),
            seq: 1,
        })];
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            Box::new(VecSource(events.into_iter(), false)),
            Box::new(PassThrough),
            Box::new(CollectSink(Arc::default())),
            opts(dir.path(), SchemaChangeBehavior::Exception),
            CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(r, Err(EngineError::SchemaChangeRejected(_))),
            "EXCEPTION mode must fail on a schema change"
        );
    }
}
