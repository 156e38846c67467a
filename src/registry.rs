//! The explicit list of connectors: adding a connector means adding its factory here.
//! This list is the documented connector API's registration point (see `examples/custom_sink.rs`).

use cdcflow_engine::component::{SinkFactory, SourceFactory};

/// Every source connector cdcflow knows, by `source.type`.
pub fn sources() -> Vec<Box<dyn SourceFactory>> {
    vec![Box::new(cdcflow_mysql::source::MySqlSourceFactory)]
}

/// Every sink connector cdcflow knows, by `sink.type`.
pub fn sinks() -> Vec<Box<dyn SinkFactory>> {
    vec![
        Box::new(cdcflow_doris::DorisSinkFactory),
        Box::new(cdcflow_doris::StarRocksSinkFactory),
        Box::new(cdcflow_doris::ValuesSinkFactory),
    ]
}
