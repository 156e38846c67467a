//! One integration test binary: every module runs against real components (throwaway MariaDB,
//! Stream Load emulator), never mocks.

mod config;
mod end_to_end;
mod support;
mod cli;
mod transforms;
