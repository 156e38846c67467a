//! Sink tests against the Stream Load emulator (a real HTTP server, no mocks): ChangeBatches built
//! by hand go through the Doris / StarRocks sinks and the emulator's visible rows are compared
//! exactly. No MariaDB is needed here.

mod common;
mod doris;
mod exactly_once;
mod factory;
mod resilience;
mod retry;
mod schema_change;
mod starrocks;
