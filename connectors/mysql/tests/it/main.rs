//! Integration tests of the MySQL source against a real throwaway MariaDB (testkit), one binary.

mod catalog;
mod checks;
mod chunking;
mod common;
mod prop;
mod reconnect;
mod resume;
mod snapshot_types;
mod source;
