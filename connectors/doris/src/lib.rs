//! Doris and StarRocks sinks for cdcflow, over one shared Stream Load client.

pub mod config;
