//! The MySQL source's error type: every variant names what a user needs to act (table, column,
//! chunk, binlog position) and says who must act ([`Classify`]).

use cdcflow_engine::{Classify, ErrorDomain};

use crate::builders::ValueError;

/// Errors of the MySQL/MariaDB source (catalog, snapshot, start checks).
#[derive(Debug, thiserror::Error)]
pub enum MySqlError {
    /// Could not connect to the server.
    #[error("connecting to MySQL at {addr}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Driver error.
        source: mysql_async::Error,
    },
    /// A statement failed; `context` says what we were doing (and for which table).
    #[error("{context}")]
    Query {
        /// What was being done, e.g. "reading chunk 3 of app.orders".
        context: String,
        /// Driver error.
        source: mysql_async::Error,
    },
    /// `tables` / `tables.exclude` selected nothing.
    #[error("cannot find any table by the option 'tables' ({selectors}); tables seen: {seen}")]
    NoTables {
        /// The selectors as written.
        selectors: String,
        /// Some of the tables that exist (for the hint).
        seen: String,
    },
    /// The catalog describes a column type we do not support.
    #[error("table {table}, column {column}: MySQL type '{column_type}' is not supported yet")]
    UnsupportedType {
        /// `db.table`.
        table: String,
        /// Column name.
        column: String,
        /// The `COLUMN_TYPE` text.
        column_type: String,
    },
    /// The server is not set up for CDC (binlog off, not ROW, image not FULL, grants, purged logs).
    #[error("server check failed: {message}; hint: {hint}")]
    ServerCheck {
        /// What is wrong, with the value seen.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// The chunk key of a table is unusable (missing column, configured key unknown).
    #[error("table {table}: {message}")]
    ChunkKey {
        /// `db.table`.
        table: String,
        /// What is wrong.
        message: String,
    },
    /// A cell could not be stored in its Arrow column (bad data or a mapping bug).
    #[error("table {table}, column {column}, chunk {chunk}: {source}")]
    Value {
        /// `db.table`.
        table: String,
        /// Column name.
        column: String,
        /// Which chunk was being read.
        chunk: String,
        /// What was wrong with the value.
        source: ValueError,
    },
    /// A resume offset from a checkpoint could not be understood.
    #[error("resume offset is not a MySQL source offset: {message}")]
    BadOffset {
        /// What is wrong.
        message: String,
    },
    /// Arrow rejected a batch we built (a bug).
    #[error("building the Arrow batch of {table}: {source}")]
    Arrow {
        /// `db.table`.
        table: String,
        /// Arrow's error.
        source: arrow::error::ArrowError,
    },
    /// A requested feature is not available in this build (e.g. a binlog start mode before the
    /// binlog reader is wired in).
    #[error("{what} is not available in this build")]
    NotAvailable {
        /// What was requested.
        what: String,
    },
    /// The binlog reader failed (its error carries the position).
    #[error(transparent)]
    Binlog(#[from] crate::binlog::BinlogError),
    /// A reader task ended unexpectedly (a bug or a panic in a task).
    #[error("snapshot reader task failed: {0}")]
    Task(String),
}

/// Result alias of this crate.
pub type Result<T, E = MySqlError> = std::result::Result<T, E>;

impl MySqlError {
    /// Wraps a driver error with what we were doing.
    pub fn query(context: impl Into<String>, source: mysql_async::Error) -> Self {
        MySqlError::Query {
            context: context.into(),
            source,
        }
    }
}

impl Classify for MySqlError {
    fn domain(&self) -> ErrorDomain {
        match self {
            MySqlError::Connect { .. } => ErrorDomain::External,
            MySqlError::Query { source, .. } => match source {
                // A server error (bad grant, unknown table) will not go away by retrying.
                mysql_async::Error::Server(_) => ErrorDomain::User,
                _ => ErrorDomain::External,
            },
            MySqlError::NoTables { .. }
            | MySqlError::UnsupportedType { .. }
            | MySqlError::ServerCheck { .. }
            | MySqlError::ChunkKey { .. }
            | MySqlError::Value { .. }
            | MySqlError::BadOffset { .. }
            | MySqlError::NotAvailable { .. } => ErrorDomain::User,
            MySqlError::Binlog(e) => e.domain(),
            MySqlError::Arrow { .. } | MySqlError::Task(_) => ErrorDomain::Internal,
        }
    }
}

impl From<MySqlError> for cdcflow_engine::EngineError {
    fn from(e: MySqlError) -> Self {
        cdcflow_engine::EngineError::connector("source", e)
    }
}
