//! cdcflow's runtime: the data model (change batches of Arrow rows), the pipeline file, the
//! connector API, and the machinery between source and sink (batching, checkpoints, spill).
//!
//! ```text
//!  MySQL binlog/snapshot ─▶ Source ─▶ [transforms] ─▶ [routes] ─▶ Sink ─▶ Doris / StarRocks
//!                           ChangeEvent stream over bounded channels; checkpoint after sink acks
//! ```
//!
//! This crate knows no concrete connector and has no MySQL, HTTP or DataFusion dependency.

pub mod change;
pub mod checkpoint;
pub mod component;
pub mod config;
pub mod error;
pub mod metrics;
pub mod pipeline;
pub mod queue;
pub mod schema;
pub mod schema_change;
pub mod settings;
pub mod spill;
#[cfg(test)]
mod test_fixtures;

pub use change::{ChangeBatch, ChangeEvent, Op, SchemaChange, SourceOffset};
pub use error::{Classify, EngineError, ErrorDomain, Result, RetryHint};
pub use schema::{CdcType, ColumnDef, TableId, TableSchema, TableSchemaRef};
