//! cdcflow: change-data-capture from MySQL/MariaDB into Apache Doris and StarRocks.
//!
//! The binary is a thin shell over this library: [`plan::validate_file`] turns a Flink CDC
//! pipeline YAML into a [`plan::ValidatedPipeline`] (offline), and [`run::run`] builds its
//! components and drives them with the engine until the source ends or shutdown is requested.

pub mod observe;
pub mod plan;
pub mod registry;
pub mod run;
