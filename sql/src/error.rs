//! Errors raised while planning or evaluating transforms and routes at run time. Problems that
//! can be found offline are [`cdcflow_engine::config::Diagnostics`] from [`crate::compile`].

use arrow::error::ArrowError;
use cdcflow_engine::{Classify, EngineError, ErrorDomain};
use datafusion::error::DataFusionError;

/// A transform or route failed on a concrete table.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// A rule cannot be planned for a table's schema (unknown column, type mismatch).
    #[error("transform[{rule}] on table {table}: {message}")]
    Plan {
        /// The source table.
        table: String,
        /// Index of the rule in `transform:`.
        rule: usize,
        /// What is wrong.
        message: String,
    },
    /// Evaluating an expression on a batch failed (e.g. a CAST of a bad value).
    #[error("transform[{rule}] on table {table}: evaluating the {what} failed")]
    Eval {
        /// The source table.
        table: String,
        /// Index of the rule in `transform:`.
        rule: usize,
        /// `projection` or `filter`.
        what: &'static str,
        /// DataFusion's error.
        #[source]
        source: DataFusionError,
    },
    /// Coercing a batch into a merged sink table failed.
    #[error("route {source_table} -> {sink_table}: coercing column `{column}` failed")]
    Coerce {
        /// The upstream table.
        source_table: String,
        /// The sink table.
        sink_table: String,
        /// The column that could not be cast.
        column: String,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// A batch did not have the shape its schema promised (a bug upstream or here).
    #[error("table {table}: building the output batch failed")]
    Arrow {
        /// The table.
        table: String,
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },
    /// An invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Classify for SqlError {
    fn domain(&self) -> ErrorDomain {
        match self {
            SqlError::Plan { .. } | SqlError::Eval { .. } | SqlError::Coerce { .. } => {
                ErrorDomain::User
            }
            SqlError::Arrow { .. } | SqlError::Internal(_) => ErrorDomain::Internal,
        }
    }
}

impl From<SqlError> for EngineError {
    fn from(e: SqlError) -> Self {
        EngineError::connector("transform", e)
    }
}
