//! The connector API: how a source or sink is declared, validated and built.
//!
//! Every component has a three-stage life:
//!
//! ```text
//!  ComponentDef (raw YAML) ──validate()──▶ Validated* (typed, checked, offline) ──build()──▶ Source / Sink
//! ```
//!
//! `validate` is pure (no network, no files): `cdcflow validate` runs it alone. `build` connects,
//! checks the server and returns the runtime object. A connector is registered by adding its
//! factory to the explicit list in the binary's `registry.rs`.

use async_trait::async_trait;

use crate::change::{ChangeBatch, ChangeEvent, SchemaChange, SourceOffset};
use crate::config::{ComponentDef, Diagnostics, PipelineOptions};
use crate::error::Result;
use crate::schema::{TableId, TableSchemaRef};

/// What a component needs from the running pipeline when it is built.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The validated `pipeline:` block.
    pub pipeline: PipelineOptions,
    /// The offset saved by the last checkpoint, if resuming.
    pub resume_from: Option<SourceOffset>,
    /// Sink-specific state saved by the last checkpoint (e.g. pending 2PC transactions).
    pub sink_state: Option<serde_json::Value>,
    /// Bytes a sink may hold in its own buffers across all tables: its share of the pipeline's
    /// memory budget (`cdcflow.memory.budget`), so buffering cannot push the process over it.
    pub sink_buffer_budget: usize,
}

impl BuildContext {
    /// A context for a fresh run with default limits (tests and examples).
    pub fn new(pipeline: PipelineOptions) -> Self {
        BuildContext {
            pipeline,
            resume_from: None,
            sink_state: None,
            sink_buffer_budget: 64 << 20,
        }
    }
}

/// A source connector's factory: the YAML `type` it answers to and how to validate its options.
pub trait SourceFactory: Send + Sync {
    /// The `source.type` value (e.g. `mysql`).
    fn kind(&self) -> &'static str;
    /// Validates the block offline; problems go to `diags`. `None` when invalid.
    fn validate(
        &self,
        def: &ComponentDef,
        pipeline: &PipelineOptions,
        diags: &mut Diagnostics,
    ) -> Option<Box<dyn ValidatedSource>>;
}

/// A source whose options are checked; `build` connects.
#[async_trait]
pub trait ValidatedSource: Send + Sync + std::fmt::Debug {
    /// Human-readable resolved settings, for `cdcflow validate` (secrets redacted).
    fn describe(&self) -> Vec<(String, String)>;
    /// Connects and returns the running source.
    async fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Source>>;
}

/// A running source: yields events in order; positions are carried by the events.
#[async_trait]
pub trait Source: Send {
    /// The next event, waiting for one if needed; `Ok(None)` when a bounded source is done.
    ///
    /// # Cancel safety
    /// Not cancel safe: an event being decoded when the future is dropped is lost. The engine
    /// only drops it on shutdown, and resumes from the last checkpointed offset.
    async fn next_event(&mut self) -> Result<Option<ChangeEvent>>;
}

/// A sink connector's factory.
pub trait SinkFactory: Send + Sync {
    /// The `sink.type` value (e.g. `doris`).
    fn kind(&self) -> &'static str;
    /// Validates the block offline; problems go to `diags`. `None` when invalid.
    fn validate(
        &self,
        def: &ComponentDef,
        pipeline: &PipelineOptions,
        diags: &mut Diagnostics,
    ) -> Option<Box<dyn ValidatedSink>>;
}

/// A sink whose options are checked; `build` connects.
#[async_trait]
pub trait ValidatedSink: Send + Sync + std::fmt::Debug {
    /// Human-readable resolved settings, for `cdcflow validate` (secrets redacted).
    fn describe(&self) -> Vec<(String, String)>;
    /// Connects and returns the running sink; recovers leftover transactions from `ctx.sink_state`.
    async fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Sink>>;
}

/// A running sink. Batches are buffered by the sink; `flush` makes everything written durable.
///
/// Exactly-once sinks implement `precommit`/`commit`: the engine calls `precommit`, persists the
/// returned state in the checkpoint, then calls `commit`. After a crash, `build` receives that
/// state and commits or aborts what was left.
#[async_trait]
pub trait Sink: Send {
    /// Creates the table in the sink if it does not exist (idempotent).
    async fn create_table(&mut self, schema: &TableSchemaRef) -> Result<()>;
    /// Applies a schema change to `table` (already routed). Called after the table's buffered rows
    /// were flushed.
    async fn apply_schema_change(
        &mut self,
        table: &TableId,
        change: &SchemaChange,
        schema: &TableSchemaRef,
    ) -> Result<()>;
    /// Buffers rows (of an already routed table); may load when a buffer reaches its limits.
    async fn write(&mut self, batch: ChangeBatch) -> Result<()>;
    /// Loads everything buffered and waits until the sink has acknowledged it.
    async fn flush(&mut self) -> Result<()>;
    /// Prepares everything buffered for commit under `checkpoint_id`; returns state to persist.
    /// The default flushes and returns no state (at-least-once sinks).
    async fn precommit(&mut self, checkpoint_id: u64) -> Result<Option<serde_json::Value>> {
        let _ = checkpoint_id;
        self.flush().await?;
        Ok(None)
    }
    /// Commits what `precommit` prepared, after the checkpoint holding its state is durable.
    async fn commit(&mut self, checkpoint_id: u64) -> Result<()> {
        let _ = checkpoint_id;
        Ok(())
    }
    /// Rows successfully loaded so far, per sink table (for the run summary and tests).
    fn loaded_rows(&self) -> Vec<(TableId, u64)> {
        Vec::new()
    }
    /// Called by the engine about once a second, also when no rows arrive, so time-based
    /// flushes (e.g. `sink.buffer-flush.interval`) happen on a quiet stream. Default: nothing.
    async fn tick(&mut self) -> Result<()> {
        Ok(())
    }
    /// Bytes currently held in the sink's own buffers (encoded bodies, pending loads), which the
    /// engine counts against the memory budget. Default 0.
    fn buffered_bytes(&self) -> usize {
        0
    }
}

/// A stage between source and sink: SQL transforms, then routes. Works a batch at a time.
///
/// It receives every event in order and appends its output to `out`: zero events (filtered),
/// one (rewritten), or several (a route fanning out to many sink tables). Data events it emits
/// carry the *sink* table's schema, and a `CreateTable`/`SchemaChange` for that schema precedes
/// its first batch.
pub trait Transform: Send {
    /// Processes one event.
    fn apply(&mut self, event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()>;
}

/// The identity stage, used when a pipeline has no `transform:` and no `route:` rules.
#[derive(Debug, Default)]
pub struct PassThrough;

impl Transform for PassThrough {
    fn apply(&mut self, event: ChangeEvent, out: &mut Vec<ChangeEvent>) -> Result<()> {
        out.push(event);
        Ok(())
    }
}
