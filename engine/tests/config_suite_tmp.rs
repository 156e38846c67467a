//! TEMPORARY (config engineer), to be deleted: runs tests/it/config.rs while the root crate and
//! testkit do not compile. The connector config modules are compiled in via `#[path]`.
#![allow(missing_docs)]

extern crate self as cdcflow_mysql;
extern crate self as cdcflow_doris;

#[path = "../../connectors/mysql/src/config.rs"]
mod mysql_config;
#[path = "../../connectors/doris/src/config.rs"]
mod doris_config;

pub mod config {
    pub use crate::doris_config::*;
    pub use crate::mysql_config::*;
}

#[path = "../../tests/it/config.rs"]
mod suite;
