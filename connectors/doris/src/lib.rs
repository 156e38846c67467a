//! Doris and StarRocks sinks for cdcflow, over one shared Stream Load client.
//!
//! ```text
//!  ChangeBatch ─▶ StreamLoadSink (per-table buffers, encode.rs: JSON / CSV / Arrow per column)
//!                     │ rows / bytes / interval
//!                     ▼
//!               StreamLoadClient ── PUT FE (no body) ─307─▶ PUT BE (body, Authorization re-sent)
//!                     │ same label on every retry; Label Already Exists resolved by state
//!                     ▼
//!               exactly-once: Doris 2PC / StarRocks transaction, committed after the checkpoint
//! ```
//!
//! Modules: [`stream_load`] (HTTP protocol), [`encode`] (bodies), [`label`] (idempotency keys),
//! [`ddl`] (auto-create and schema evolution), [`sink`] (the runtime sink), [`factory`] (the
//! `doris` / `starrocks` sink types), [`values`] (Flink CDC's `values` test sink).

pub mod config;
pub mod ddl;
pub mod encode;
pub mod error;
pub mod factory;
pub mod label;
pub mod sink;
pub mod stream_load;
pub mod values;

pub use error::SinkError;
pub use factory::{DorisSinkFactory, StarRocksSinkFactory, ValidatedDoris, ValidatedStarRocks};
pub use sink::{SinkSettings, SinkState, StreamLoadSink};
pub use stream_load::{ClientConfig, StreamLoadClient, System};
pub use values::ValuesSinkFactory;
