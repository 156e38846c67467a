//! MySQL/MariaDB source for cdcflow: snapshot and binlog rows decoded column-wise into Arrow.

pub mod config;
pub mod types;
