//! Building a validated pipeline's components and running them with the engine.

use std::path::PathBuf;
use std::time::Duration;

use cdcflow_engine::checkpoint::CheckpointStore;
use cdcflow_engine::component::BuildContext;
use cdcflow_engine::config::parse_duration;
use cdcflow_engine::pipeline::{self, RunOptions, RunSummary};
use cdcflow_engine::schema_change::SchemaChangePolicy;
use cdcflow_engine::{EngineError, Result};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::plan::ValidatedPipeline;

/// Default time between checkpoints (`cdcflow.checkpoint.interval`).
pub const DEFAULT_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(5);

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
    if let Some(d) = v.def.pipeline.engine_options.get("cdcflow.checkpoint.dir") {
        return PathBuf::from(&d.value);
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
        sink_buffer_budget: 64 << 20,
    };
    let sink = v.sink.build(&ctx).await?;
    let source = v.source.build(&ctx).await?;
    let transform = v.sql.transform();
    let interval = v
        .def
        .pipeline
        .engine_options
        .get("cdcflow.checkpoint.interval")
        .and_then(|o| parse_duration(&o.value))
        .unwrap_or(DEFAULT_CHECKPOINT_INTERVAL);
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
    let opts = RunOptions {
        name: v.def.pipeline.name.clone(),
        checkpoint_interval: interval,
        store: Some(store),
        last_checkpoint_id: last.as_ref().map(|c| c.id).unwrap_or(0),
        channel_capacity: 16,
        schema_policy: SchemaChangePolicy::new(
            v.def.pipeline.schema_change_behavior,
            include.as_deref(),
            exclude.as_deref(),
        ),
        progress_interval: Duration::from_secs(10),
    };
    pipeline::run(source, transform, sink, opts, shutdown).await
}
