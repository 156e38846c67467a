//! Wiring: source → transform → spilling queue → sink, with periodic checkpoints, sink restarts
//! and a graceful drain on shutdown.
//!
//! ```text
//!  ┌────────┐ bounded mpsc ┌──────────────┐ push/mark ┌─────────────┐ next ┌──────────────────────────────┐
//!  │ source │ ───────────▶ │ front task:  │ ────────▶ │ ChangeQueue │ ───▶ │ sink loop: schema policy,    │
//!  │  task  │  ChangeEvent │ transform    │           │ (mem budget,│      │ sink.write; at a mark every  │
//!  └────────┘              └──────────────┘           │  Parquet    │      │ interval: precommit ─▶ save  │
//!                                                     │  spill)     │      │ checkpoint ─▶ commit         │
//!                                                     └─────────────┘      └──────────────────────────────┘
//! ```
//!
//! Invariants:
//! - A checkpoint is taken only when the sink has consumed exactly up to a source resume point
//!   (a mark), after the sink's `precommit` acknowledged everything consumed. Its offset may go
//!   further when the items in between are durable spill files; those are listed in the
//!   checkpoint's ledger and replayed before the source resumes. Resuming therefore neither loses
//!   nor repeats a transaction.
//! - Spill files are deleted only after a checkpoint that no longer needs them is durable.
//! - When a sink call fails with a retryable (external) error, the sink is rebuilt from the last
//!   checkpoint's sink state (which commits or aborts its transactions) and everything consumed
//!   since that checkpoint is replayed from the queue, with backoff, until
//!   `sink_restart_timeout` passes without a successful checkpoint. Meanwhile the source keeps
//!   reading and the queue spills: an outage costs disk, not memory, and nothing is re-read.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::change::{ChangeEvent, SourceOffset};
use crate::checkpoint::{Checkpoint, CheckpointStore};
use crate::component::{BuildContext, Sink, Source, Transform, ValidatedSink};
use crate::error::{Classify, EngineError, ErrorChain, Result, RetryHint};
use crate::metrics::Metrics;
use crate::queue::{ChangeQueue, Next};
use crate::schema::TableId;
use crate::schema_change::{SchemaChangePolicy, Verdict};
use crate::spill::SpillDir;

/// Default memory budget (`cdcflow.memory.budget`).
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;

/// How long the front task keeps reading after a shutdown request to reach a transaction end.
const SHUTDOWN_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How a pipeline run is driven.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Pipeline name (checkpoint identity, logs).
    pub name: String,
    /// Time between checkpoints.
    pub checkpoint_interval: Duration,
    /// Where checkpoints go; `None` runs without durable checkpoints.
    pub store: Option<CheckpointStore>,
    /// The checkpoint being resumed (offset, sink state, spill ledger), if any.
    pub resume: Option<Checkpoint>,
    /// Events buffered between the source task and the front task.
    pub channel_capacity: usize,
    /// Schema-change handling.
    pub schema_policy: SchemaChangePolicy,
    /// Interval of the progress log line.
    pub progress_interval: Duration,
    /// Bytes of batches the queue keeps in memory before spilling (a share of the budget).
    pub queue_memory: usize,
    /// Where batches spill; `None` keeps everything in memory (tests, bounded runs).
    pub spill: Option<SpillDir>,
    /// How long a failing sink is rebuilt and retried before the run fails.
    pub sink_restart_timeout: Duration,
}

impl RunOptions {
    /// Options with the engine's defaults for everything but the name.
    pub fn new(name: impl Into<String>) -> Self {
        RunOptions {
            name: name.into(),
            checkpoint_interval: Duration::from_secs(5),
            store: None,
            resume: None,
            channel_capacity: 4,
            schema_policy: SchemaChangePolicy::new(
                crate::config::SchemaChangeBehavior::Lenient,
                None,
                None,
            ),
            progress_interval: Duration::from_secs(10),
            queue_memory: DEFAULT_MEMORY_BUDGET / 4,
            spill: None,
            sink_restart_timeout: Duration::from_secs(600),
        }
    }
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
    /// Rows handed to the sink after transforms (replays after a sink restart count again).
    pub rows_out: u64,
    /// Data batches handed to the sink.
    pub batches: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Times the sink was rebuilt after a failure.
    pub sink_restarts: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Rows per sink table as the sink reports them.
    pub per_table: Vec<(TableId, u64)>,
    /// Why it ended.
    pub end: EndReason,
    /// The last offset checkpointed.
    pub last_offset: Option<SourceOffset>,
}

/// Runs a pipeline until the source ends or `shutdown` is cancelled. The sink is built here
/// (from `ctx`) so it can be rebuilt after failures.
///
/// # Errors
/// The first error of the source or the transform, a sink error that is not retryable or
/// outlasts `sink_restart_timeout`; nothing is checkpointed past it.
pub async fn run(
    mut source: Box<dyn Source>,
    transform: Box<dyn Transform>,
    sink: &dyn ValidatedSink,
    ctx: BuildContext,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    let started = Instant::now();
    let queue = ChangeQueue::new(opts.queue_memory, opts.spill.clone());
    if let Some(spill) = &opts.spill {
        let keep: Vec<&str> = opts
            .resume
            .iter()
            .flat_map(|c| c.ledger.iter())
            .filter_map(|e| match e {
                crate::spill::LedgerEntry::Batch { file, .. } => Some(file.as_str()),
                _ => None,
            })
            .collect();
        let removed = spill.remove_unreferenced(&keep)?;
        if removed > 0 {
            info!(files = removed, dir = %spill.path().display(), "Removed spill files of an earlier run that no checkpoint references.");
        }
    }
    if let Some(cp) = &opts.resume
        && !cp.ledger.is_empty()
    {
        info!(
            items = cp.ledger.len(),
            "Replaying the spill ledger of the checkpoint first."
        );
        queue.preload(&cp.ledger, cp.offset.clone());
    }
    let built = sink.build(&ctx).await?;

    let (tx, rx) = mpsc::channel::<Result<Option<ChangeEvent>>>(opts.channel_capacity.max(1));
    let stop_source = CancellationToken::new();
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
    let rows_in = Arc::new(AtomicU64::new(0));
    let front_task = tokio::spawn(front(
        rx,
        transform,
        queue.clone(),
        shutdown.clone(),
        rows_in.clone(),
    ));

    let mut lp = SinkLoop {
        sink: built,
        validated: sink,
        ctx,
        queue: queue.clone(),
        opts: &opts,
        known: HashSet::new(),
        checkpoint_id: opts.resume.as_ref().map(|c| c.id).unwrap_or(0),
        saved_offset: opts.resume.as_ref().and_then(|c| c.offset.clone()),
        failing_since: None,
        attempt: 0,
        rows_out: 0,
        batches: 0,
        checkpoints: 0,
        restarts: 0,
    };
    let outcome = lp.drive(&shutdown, &rows_in).await;
    stop_source.cancel();
    source_task.abort();
    let end = match outcome {
        Ok(end) => end,
        Err(e) => {
            front_task.abort();
            return Err(e);
        }
    };
    let front_result = front_task
        .await
        .map_err(|e| EngineError::Internal(format!("transform task: {e}")))?;
    let end = match front_result {
        Err(e) => return Err(e),
        Ok(true) if end == EndReason::SourceFinished => EndReason::SourceFinished,
        Ok(_) => EndReason::Shutdown,
    };
    // Drain: everything the sink consumed is flushed and checkpointed before we return.
    if lp.queue.at_boundary() {
        lp.checkpoint().await?;
    } else {
        warn!(
            "Stopped inside a source transaction; the next run resumes from checkpoint {} and replays it.",
            lp.checkpoint_id
        );
    }
    let summary = RunSummary {
        rows_in: rows_in.load(Ordering::Relaxed),
        rows_out: lp.rows_out,
        batches: lp.batches,
        checkpoints: lp.checkpoints,
        sink_restarts: lp.restarts,
        elapsed: started.elapsed(),
        per_table: lp.sink.loaded_rows(),
        end,
        last_offset: lp.saved_offset.clone(),
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

/// The front task: source events through the transform into the queue. Returns `true` when the
/// source finished, `false` when it stopped for a shutdown (at a resume point when possible).
async fn front(
    mut rx: mpsc::Receiver<Result<Option<ChangeEvent>>>,
    mut transform: Box<dyn Transform>,
    queue: Arc<ChangeQueue>,
    shutdown: CancellationToken,
    rows_in: Arc<AtomicU64>,
) -> Result<bool> {
    let r = front_loop(&mut rx, &mut *transform, &queue, &shutdown, &rows_in).await;
    match &r {
        Ok(_) => queue.close(),
        Err(e) => queue.fail(e.to_string()),
    }
    r
}

async fn front_loop(
    rx: &mut mpsc::Receiver<Result<Option<ChangeEvent>>>,
    transform: &mut dyn Transform,
    queue: &ChangeQueue,
    shutdown: &CancellationToken,
    rows_in: &AtomicU64,
) -> Result<bool> {
    let metrics = Metrics::global();
    let mut out = Vec::new();
    // Whether the last item pushed was a resume point (or nothing was pushed yet).
    let mut at_mark = true;
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let msg = match drain_until {
            None => tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    if at_mark {
                        return Ok(false);
                    }
                    drain_until = Some(tokio::time::Instant::now() + SHUTDOWN_DRAIN_LIMIT);
                    continue;
                }
                m = rx.recv() => m,
            },
            Some(deadline) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    warn!(
                        "No transaction end within {SHUTDOWN_DRAIN_LIMIT:?} of the shutdown request; stopping mid-transaction."
                    );
                    return Ok(false);
                }
            },
        };
        let ev = match msg {
            None | Some(Ok(None)) => return Ok(true),
            Some(Err(e)) => return Err(e),
            Some(Ok(Some(ChangeEvent::End))) => return Ok(true),
            Some(Ok(Some(ev))) => ev,
        };
        let offset = match &ev {
            ChangeEvent::Data(b) => {
                let n = b.num_rows() as u64;
                rows_in.fetch_add(n, Ordering::Relaxed);
                metrics.rows_in(&b.table.id, n);
                b.offset.clone()
            }
            ChangeEvent::Progress { offset, .. } => Some(offset.clone()),
            _ => None,
        };
        out.clear();
        transform.apply(ev, &mut out)?;
        for e in out.drain(..) {
            match e {
                ChangeEvent::Progress { .. } | ChangeEvent::End => {}
                ChangeEvent::Data(b) if b.num_rows() == 0 => {}
                e => {
                    queue.push(e).await?;
                    at_mark = false;
                }
            }
        }
        if let Some(o) = offset {
            queue.mark(o);
            at_mark = true;
            if drain_until.is_some() {
                return Ok(false);
            }
        }
    }
}

struct SinkLoop<'a> {
    sink: Box<dyn Sink>,
    validated: &'a dyn ValidatedSink,
    ctx: BuildContext,
    queue: Arc<ChangeQueue>,
    opts: &'a RunOptions,
    /// Sink tables the current sink instance was told about.
    known: HashSet<TableId>,
    checkpoint_id: u64,
    saved_offset: Option<SourceOffset>,
    failing_since: Option<Instant>,
    attempt: u32,
    rows_out: u64,
    batches: u64,
    checkpoints: u64,
    restarts: u64,
}

enum Step {
    Stop,
    Item(Option<Next>),
    CheckpointDue,
    Tick,
    Progress,
}

impl SinkLoop<'_> {
    /// Consumes the queue until the front task is done (or a shutdown reached a resume point).
    async fn drive(
        &mut self,
        shutdown: &CancellationToken,
        rows_in: &AtomicU64,
    ) -> Result<EndReason> {
        let mut ckpt = tokio::time::interval(self.opts.checkpoint_interval);
        ckpt.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ckpt.tick().await;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut progress = tokio::time::interval(self.opts.progress_interval);
        progress.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        progress.tick().await;
        let mut last_report = (Instant::now(), 0u64);
        let mut due = false;
        let mut stopping = false;
        let early = self.opts.queue_memory / 2;
        loop {
            if stopping && self.queue.at_boundary() {
                return Ok(EndReason::Shutdown);
            }
            let step = tokio::select! {
                biased;
                _ = shutdown.cancelled(), if !stopping => Step::Stop,
                // Timers before the queue: under sustained load the queue is always ready, and
                // the interval must still be honoured.
                _ = ckpt.tick() => Step::CheckpointDue,
                _ = tick.tick() => Step::Tick,
                _ = progress.tick() => Step::Progress,
                n = self.queue.next() => Step::Item(n?),
            };
            let r = match step {
                Step::Stop => {
                    stopping = true;
                    Ok(())
                }
                Step::Item(None) => return Ok(EndReason::SourceFinished),
                Step::Item(Some(Next::Event(ev))) => self.handle(ev).await,
                Step::Item(Some(Next::Mark(_))) => {
                    if due || self.queue.unacked_bytes() > early {
                        due = false;
                        self.checkpoint().await
                    } else {
                        Ok(())
                    }
                }
                Step::CheckpointDue => {
                    if self.queue.at_boundary() && self.queue.has_unacked() {
                        self.checkpoint().await
                    } else {
                        due = self.queue.has_unacked();
                        Ok(())
                    }
                }
                Step::Tick => {
                    if self.queue.is_drained() {
                        // Caught up: nothing waits between source and sink.
                        Metrics::global().set_lag_seconds(0.0);
                    }
                    self.sink.tick().await
                }
                Step::Progress => {
                    let (t0, r0) = last_report;
                    let n = rows_in.load(Ordering::Relaxed);
                    let rate = (n - r0) as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                    info!(
                        rows_in = n,
                        rows_out = self.rows_out,
                        rows_per_sec = rate as u64,
                        queue_bytes = self.queue.mem_bytes(),
                        spill_bytes = self.queue.spill_bytes(),
                        "Pipeline progress."
                    );
                    last_report = (Instant::now(), n);
                    Ok(())
                }
            };
            if let Err(e) = r {
                self.restart_sink(e, shutdown).await?;
            }
        }
    }

    async fn handle(&mut self, ev: ChangeEvent) -> Result<()> {
        match ev {
            ChangeEvent::CreateTable(schema) => {
                self.sink.create_table(&schema).await?;
                self.known.insert(schema.id.clone());
            }
            ChangeEvent::SchemaChange {
                table,
                change,
                schema,
                ..
            } => match self.opts.schema_policy.judge(&change, &schema) {
                Verdict::Skip => {
                    debug!(table = %table, change = change.tag(), "Schema change skipped by policy.")
                }
                Verdict::Fail(msg) => return Err(EngineError::SchemaChangeRejected(msg)),
                Verdict::Apply(changes) => {
                    if !self.known.contains(&table) {
                        self.sink.create_table(&schema).await?;
                        self.known.insert(table.clone());
                    }
                    self.sink.flush().await?;
                    for c in changes {
                        if let Err(e) = self.sink.apply_schema_change(&table, &c, &schema).await {
                            if self.opts.schema_policy.tolerates_sink_failure() {
                                warn!(table = %table, change = c.tag(), error = %ErrorChain(&e), "Schema change not applied; continuing (TRY_EVOLVE).");
                            } else {
                                return Err(e);
                            }
                        }
                    }
                }
            },
            ChangeEvent::Data(batch) => {
                if !self.known.contains(&batch.table.id) {
                    self.sink.create_table(&batch.table).await?;
                    self.known.insert(batch.table.id.clone());
                }
                let n = batch.num_rows();
                let m = Metrics::global();
                m.rows_out(&batch.table.id, n as u64);
                m.batch_rows(n);
                if let Some(ts) = arrow::compute::max(batch.event_ts())
                    && ts > 0
                {
                    let lag = chrono::Utc::now().timestamp_millis() - ts;
                    m.set_lag_seconds(lag.max(0) as f64 / 1000.0);
                }
                self.rows_out += n as u64;
                self.batches += 1;
                self.sink.write(batch).await?;
            }
            ChangeEvent::Progress { .. } | ChangeEvent::End => {}
        }
        Ok(())
    }

    async fn checkpoint(&mut self) -> Result<()> {
        let started = Instant::now();
        let id = self.checkpoint_id + 1;
        let sink_state = self.sink.precommit(id).await?;
        let plan = self.queue.plan_checkpoint();
        let offset = plan.offset.clone().or_else(|| self.saved_offset.clone());
        if let Some(store) = &self.opts.store {
            if let Some(spill) = &self.opts.spill
                && !plan.ledger.is_empty()
            {
                spill.sync()?;
            }
            store.save(&Checkpoint {
                id,
                offset: offset.clone(),
                sink_state: sink_state.clone(),
                pipeline: self.opts.name.clone(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                ledger: plan.ledger.clone(),
            })?;
        }
        self.checkpoint_id = id;
        self.ctx.sink_state = sink_state;
        self.saved_offset = offset;
        self.queue.complete(&plan)?;
        self.checkpoints += 1;
        self.failing_since = None;
        self.attempt = 0;
        self.sink.commit(id).await?;
        Metrics::global().checkpoint(started.elapsed());
        debug!(
            checkpoint = id,
            ledger = plan.ledger.len(),
            "Checkpoint complete."
        );
        Ok(())
    }

    /// Rebuilds the sink after a retryable failure and rewinds the queue; fails otherwise.
    async fn restart_sink(&mut self, err: EngineError, shutdown: &CancellationToken) -> Result<()> {
        let mut err = err;
        loop {
            if err.retry_hint() != RetryHint::Retry {
                return Err(err);
            }
            let since = *self.failing_since.get_or_insert_with(Instant::now);
            if since.elapsed() > self.opts.sink_restart_timeout {
                warn!(
                    timeout = ?self.opts.sink_restart_timeout,
                    "Sink kept failing for longer than the restart timeout; giving up."
                );
                return Err(err);
            }
            let backoff =
                Duration::from_millis(500 << self.attempt.min(5)).min(Duration::from_secs(10));
            self.attempt += 1;
            self.restarts += 1;
            Metrics::global().retry("sink-restart");
            warn!(
                error = %ErrorChain(&err),
                attempt = self.attempt,
                backoff_ms = backoff.as_millis() as u64,
                checkpoint = self.checkpoint_id,
                "Sink failed; rebuilding it from the last checkpoint and replaying what it had not acknowledged."
            );
            if self.queue.is_released() {
                warn!(
                    checkpoint = self.checkpoint_id,
                    "More than the queue's memory share was consumed since the last checkpoint (one very large transaction), so it cannot be replayed in-process; failing so that a restart resumes from the checkpoint."
                );
                return Err(err);
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => return Err(err),
            }
            match self.validated.build(&self.ctx).await {
                Ok(s) => {
                    self.sink = s;
                    self.known.clear();
                    if !self.queue.rewind() {
                        return Err(err);
                    }
                    return Ok(());
                }
                Err(e) => err = e,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use arrow::array::Int32Array;
    use async_trait::async_trait;

    use super::*;
    use crate::change::{ChangeBatch, SchemaChange};
    use crate::component::PassThrough;
    use crate::config::SchemaChangeBehavior;
    use crate::schema::TableSchemaRef;
    use crate::test_fixtures::{id_batch, id_table};

    fn schema() -> TableSchemaRef {
        id_table()
    }

    fn batch(s: &TableSchemaRef, seq: u64, ids: &[i32]) -> ChangeEvent {
        let offset = SourceOffset::new(serde_json::json!({ "seq": seq }));
        id_batch(s, ids.iter().copied(), seq, Some(offset))
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

    #[derive(Debug, Default, Clone)]
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

    #[derive(Debug)]
    struct CollectFactory(Arc<Mutex<Collected>>);

    #[async_trait]
    impl ValidatedSink for CollectFactory {
        fn describe(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        async fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Sink>> {
            Ok(Box::new(CollectSink(self.0.clone())))
        }
    }

    fn ctx() -> BuildContext {
        BuildContext::new(crate::config::PipelineOptions::default())
    }

    fn opts(dir: &std::path::Path, behavior: SchemaChangeBehavior) -> RunOptions {
        RunOptions {
            checkpoint_interval: Duration::from_secs(3600),
            store: Some(CheckpointStore::new(dir)),
            channel_capacity: 2,
            schema_policy: SchemaChangePolicy::new(behavior, None, None),
            progress_interval: Duration::from_secs(3600),
            ..RunOptions::new("t")
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
            &CollectFactory(got.clone()),
            ctx(),
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
            &CollectFactory(got.clone()),
            ctx(),
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
            &CollectFactory(Arc::default()),
            ctx(),
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
            &CollectFactory(Arc::default()),
            ctx(),
            opts(dir.path(), SchemaChangeBehavior::Exception),
            CancellationToken::new(),
        )
        .await;
        assert!(
            matches!(r, Err(EngineError::SchemaChangeRejected(_))),
            "EXCEPTION mode must fail on a schema change"
        );
    }

    #[tokio::test]
    async fn a_slow_sink_makes_every_batch_spill_and_all_arrive_in_order() {
        let s = schema();
        let mut events = vec![Ok(ChangeEvent::CreateTable(s.clone()))];
        for i in 0..40 {
            events.push(Ok(batch(&s, i + 1, &[i as i32 * 2, i as i32 * 2 + 1])));
        }
        let got = Arc::new(Mutex::new(Collected::default()));
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillDir::new(dir.path().join("spill"));
        let summary = run(
            Box::new(VecSource(events.into_iter(), false)),
            Box::new(PassThrough),
            &CollectFactory(got.clone()),
            ctx(),
            RunOptions {
                queue_memory: 1,
                spill: Some(spill.clone()),
                ..opts(dir.path(), SchemaChangeBehavior::Lenient)
            },
            CancellationToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(got.lock().unwrap().rows, (0..80).collect::<Vec<i32>>());
        assert_eq!(summary.rows_out, 80);
        assert_eq!(
            std::fs::read_dir(spill.path())
                .map(|d| d.count())
                .unwrap_or(0),
            0,
            "acknowledged spill files are deleted"
        );
        let cp = CheckpointStore::new(dir.path()).load().unwrap().unwrap();
        assert!(cp.ledger.is_empty());
        assert_eq!(
            cp.offset,
            Some(SourceOffset::new(serde_json::json!({ "seq": 40 })))
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("backend unreachable")]
    struct Unreachable(bool);

    impl crate::error::Classify for Unreachable {
        fn domain(&self) -> crate::error::ErrorDomain {
            if self.0 {
                crate::error::ErrorDomain::External
            } else {
                crate::error::ErrorDomain::User
            }
        }
    }

    /// Fails its `fail_at`-th write (counted across instances) once, with a retryable error
    /// when `retryable`.
    #[derive(Debug)]
    struct FlakyFactory {
        writes: Arc<std::sync::atomic::AtomicUsize>,
        fail_at: usize,
        retryable: bool,
        instances: Arc<Mutex<Vec<Arc<Mutex<Collected>>>>>,
    }

    struct FlakySink {
        got: Arc<Mutex<Collected>>,
        writes: Arc<std::sync::atomic::AtomicUsize>,
        fail_at: usize,
        retryable: bool,
    }

    #[async_trait]
    impl ValidatedSink for FlakyFactory {
        fn describe(&self) -> Vec<(String, String)> {
            Vec::new()
        }
        async fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Sink>> {
            let got = Arc::new(Mutex::new(Collected::default()));
            self.instances.lock().unwrap().push(got.clone());
            Ok(Box::new(FlakySink {
                got,
                writes: self.writes.clone(),
                fail_at: self.fail_at,
                retryable: self.retryable,
            }))
        }
    }

    #[async_trait]
    impl Sink for FlakySink {
        async fn create_table(&mut self, _s: &TableSchemaRef) -> Result<()> {
            self.got.lock().unwrap().created += 1;
            Ok(())
        }
        async fn apply_schema_change(
            &mut self,
            _t: &TableId,
            _c: &SchemaChange,
            _s: &TableSchemaRef,
        ) -> Result<()> {
            Ok(())
        }
        async fn write(&mut self, b: ChangeBatch) -> Result<()> {
            let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
            if n == self.fail_at {
                return Err(EngineError::connector("sink", Unreachable(self.retryable)));
            }
            let ids = b
                .data
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            self.got
                .lock()
                .unwrap()
                .rows
                .extend(ids.values().iter().copied());
            Ok(())
        }
        async fn flush(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn flaky_events(s: &TableSchemaRef) -> Vec<Result<ChangeEvent>> {
        let mut events = vec![Ok(ChangeEvent::CreateTable(s.clone()))];
        for i in 0..10 {
            events.push(Ok(batch(s, i + 1, &[i as i32])));
        }
        events
    }

    /// Runs the flaky events into a [`FlakyFactory`] failing at write `fail_at`.
    async fn run_flaky(
        fail_at: usize,
        retryable: bool,
    ) -> (FlakyFactory, Result<RunSummary>, tempfile::TempDir) {
        let s = schema();
        let f = FlakyFactory {
            writes: Arc::default(),
            fail_at,
            retryable,
            instances: Arc::default(),
        };
        let dir = tempfile::tempdir().unwrap();
        let r = run(
            Box::new(VecSource(flaky_events(&s).into_iter(), false)),
            Box::new(PassThrough),
            &f,
            ctx(),
            opts(dir.path(), SchemaChangeBehavior::Lenient),
            CancellationToken::new(),
        )
        .await;
        (f, r, dir)
    }

    #[tokio::test]
    async fn a_retryable_sink_failure_rebuilds_the_sink_and_replays_what_it_had_not_acknowledged() {
        let (f, r, _dir) = run_flaky(6, true).await;
        let summary = r.unwrap();
        assert_eq!(summary.sink_restarts, 1);
        let inst = f.instances.lock().unwrap().clone();
        assert_eq!(inst.len(), 2, "one rebuild");
        assert_eq!(inst[0].lock().unwrap().rows, vec![0, 1, 2, 3, 4]);
        let second = inst[1].lock().unwrap().clone();
        assert_eq!(
            second.rows,
            (0..10).collect::<Vec<i32>>(),
            "no checkpoint happened before the failure, so the new sink gets everything again"
        );
        assert_eq!(
            second.created, 1,
            "the rebuilt sink is told about the table first"
        );
    }

    #[tokio::test]
    async fn a_non_retryable_sink_failure_fails_the_run() {
        let (f, r, dir) = run_flaky(3, false).await;
        assert!(r.is_err());
        assert_eq!(f.instances.lock().unwrap().len(), 1);
        assert!(CheckpointStore::new(dir.path()).load().unwrap().is_none());
    }
}
