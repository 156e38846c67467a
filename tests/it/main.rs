//! One integration test binary: every module runs against real components (throwaway MariaDB,
//! Stream Load emulator), never mocks.

mod cli;
mod config;
mod end_to_end;
mod support;
mod transforms;
