//! TEMPORARY (config engineer): runs tests/it/config.rs until the lead wires it into tests/it/main.rs.

#[path = "it/config.rs"]
mod config;
