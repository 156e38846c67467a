//! One integration test binary: every module runs against real components (throwaway MariaDB,
//! Stream Load emulator), never mocks.

mod cli;
mod config;
mod crash;
mod end_to_end;
mod observability;
mod outage;
mod support;
mod transforms;
