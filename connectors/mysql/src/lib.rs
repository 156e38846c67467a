//! MySQL/MariaDB source for cdcflow: snapshot and binlog rows decoded column-wise into Arrow.
//!
//! ```text
//!  information_schema ──schema.rs──▶ MySqlTable (MySqlColumn + TableSchema)
//!  chunked SELECTs (binary protocol) ──snapshot.rs──▶ builders.rs ──▶ ChangeBatch (+I)
//!  binlog row events ──binlog.rs / decode.rs──▶ builders.rs ──▶ ChangeBatch (+I -U +U -D)
//!  source.rs: startup modes, start checks, offsets ──▶ cdcflow_engine::component::Source
//! ```

pub mod binlog;
pub mod builders;
pub mod config;
pub mod decode;
pub mod error;
pub mod jsonb;
pub mod position;
pub mod schema;
pub mod snapshot;
pub mod source;
pub mod types;
