//! Building a validated pipeline's components and running them with the engine.

use std::path::PathBuf;

use cdcflow_engine::checkpoint::CheckpointStore;
use cdcflow_engine::component::BuildContext;
use cdcflow_engine::pipeline::{self, RunOptions, RunSummary};
use cdcflow_engine::schema_change::SchemaChangePolicy;
use cdcflow_engine::spill::SpillDir;
use cdcflow_engine::{EngineError, Result};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::plan::ValidatedPipeline;

/// Command-line choices that shape a run.
#[derive(Debug, Clone, Default)]
pub struct RunFlags {
    /// Ignore (and remove) the existing checkpoint.
    pub from_scratch: bool,
    /// Where checkpoints live; default `.cdcflow/<pipeline name>` or `cdcflow.checkpoint.dir`.
    pub checkpoint_dir: Option<PathBuf>,
}

/// The directory that holds a pipeline's checkpoint.
pub fn checkpoint_dir(v: &ValidatedPipeline, flags: &RunFlags) -> PathBuf {
    if let Some(d) = &flags.checkpoint_dir {
        return d.clone();
    }
    if let Some(d) = &v.engine.checkpoint_dir {
        return d.clone();
    }
    let slug: String = v
        .def
        .pipeline
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(".cdcflow").join(slug)
}

/// Builds the source, transforms and sink, resumes from the last checkpoint, and runs until the
/// source ends or `shutdown` is cancelled.
///
/// # Errors
/// Any build or runtime failure of a component, classified by [`cdcflow_engine::Classify`].
pub async fn run(
    v: &ValidatedPipeline,
    flags: &RunFlags,
    shutdown: CancellationToken,
) -> Result<RunSummary> {
    let store = CheckpointStore::new(checkpoint_dir(v, flags));
    if flags.from_scratch {
        store.clear()?;
    }
    let last = store.load()?;
    if let Some(cp) = &last {
        if cp.pipeline != v.def.pipeline.name {
            return Err(EngineError::Internal(format!(
                "checkpoint at {} belongs to pipeline `{}`, not `{}`; use --from-scratch or another --checkpoint-dir",
                store.path().display(),
                cp.pipeline,
                v.def.pipeline.name
            )));
        }
        info!(checkpoint = cp.id, path = %store.path().display(), "Resuming from checkpoint.");
    }
    let ctx = BuildContext {
        pipeline: v.def.pipeline.clone(),
        resume_from: last.as_ref().and_then(|c| c.offset.clone()),
        sink_state: last.as_ref().and_then(|c| c.sink_state.clone()),
        sink_buffer_budget: v.engine.sink_buffer_budget(),
    };
    let source = v.source.build(&ctx).await?;
    let transform = v.sql.transform();
    let include: Option<Vec<String>> = v
        .def
        .sink
        .include_schema_changes
        .as_ref()
        .map(|l| l.iter().map(|s| s.value.clone()).collect());
    let exclude: Option<Vec<String>> = v
        .def
        .sink
        .exclude_schema_changes
        .as_ref()
        .map(|l| l.iter().map(|s| s.value.clone()).collect());
    let spill_dir = v
        .engine
        .spill_dir
        .clone()
        .unwrap_or_else(|| store.dir().join("spill"));
    let opts = RunOptions {
        checkpoint_interval: v.engine.checkpoint_interval,
        store: Some(store),
        resume: last,
        schema_policy: SchemaChangePolicy::new(
            v.def.pipeline.schema_change_behavior,
            include.as_deref(),
            exclude.as_deref(),
        ),
        queue_memory: v.engine.queue_memory(),
        spill: Some(SpillDir::new(spill_dir)),
        sink_restart_timeout: v.engine.sink_restart_timeout,
        ..RunOptions::new(v.def.pipeline.name.clone())
    };
    pipeline::run(source, transform, v.sink.as_ref(), ctx, opts, shutdown).await
}
