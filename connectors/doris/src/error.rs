//! The sink's error type: every variant names what it was doing (table, label, URL, statement)
//! and says through [`Classify`] whether retrying can help, so no retry loop matches strings.

use cdcflow_engine::error::{Classify, ErrorDomain, RetryHint};

/// Errors of the Doris / StarRocks sinks and their Stream Load client.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The server answered a load with a failure status.
    #[error(
        "stream load into {table} (label {label}) failed with status `{status}`: {message}{}",
        error_url.as_deref().map(|u| format!(" (error log: {u})")).unwrap_or_default()
    )]
    LoadFailed {
        /// Target `db.table`.
        table: String,
        /// Label of the load.
        label: String,
        /// The `Status` the server gave.
        status: String,
        /// The server's `Message`.
        message: String,
        /// `ErrorURL`, when the server logged rejected rows.
        error_url: Option<String>,
        /// Whether sending the same load again may succeed.
        retryable: bool,
    },
    /// The HTTP exchange itself failed (connect, reset, timeout).
    #[error("HTTP {method} {url} failed")]
    Http {
        /// Method used.
        method: &'static str,
        /// URL (never with credentials).
        url: String,
        /// What reqwest reported.
        #[source]
        source: reqwest::Error,
    },
    /// A reply that is not what the protocol allows (bad status line, unparsable JSON).
    #[error("unexpected reply to {what} from {url}: HTTP {status}: {body}")]
    BadReply {
        /// Which operation (`stream load`, `2pc commit`, ...).
        what: &'static str,
        /// URL (never with credentials).
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the body, for the log.
        body: String,
        /// Whether sending the same request again may succeed.
        retryable: bool,
    },
    /// The server refused our credentials or privileges.
    #[error("access denied by {url}: {message}")]
    Auth {
        /// URL (never with credentials).
        url: String,
        /// Server text.
        message: String,
    },
    /// A transaction operation (2PC commit/abort, StarRocks begin/prepare/commit/rollback) failed.
    #[error("transaction {op} of label {label} in {db} failed with `{status}`: {message}")]
    Txn {
        /// The operation.
        op: &'static str,
        /// Target database.
        db: String,
        /// The transaction's label.
        label: String,
        /// Status text from the server.
        status: String,
        /// Message from the server.
        message: String,
        /// Whether sending the same request again may succeed.
        retryable: bool,
    },
    /// A cell could not be rendered for the chosen format.
    #[error("cannot encode {table}.{column} (row {row}) as {format}: {message}")]
    Encode {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Row index in the batch.
        row: usize,
        /// Body format.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A column type the sink cannot write.
    #[error("{table}.{column}: type {data_type} is not supported by the {system} sink")]
    UnsupportedType {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The offending type.
        data_type: String,
        /// `doris` or `starrocks`.
        system: &'static str,
    },
    /// A DDL statement failed.
    #[error("DDL on {table} failed: {message}; statement: {stmt}")]
    Ddl {
        /// Target table (`db.table`).
        table: String,
        /// The statement.
        stmt: String,
        /// Server message.
        message: String,
        /// Whether re-running the statement may succeed.
        retryable: bool,
    },
    /// The MySQL protocol connection used for StarRocks DDL failed.
    #[error("MySQL protocol to {addr} failed")]
    Mysql {
        /// `host:port`.
        addr: String,
        /// Driver error.
        #[source]
        source: mysql_async::Error,
    },
    /// A schema change cannot be applied under the configured behaviour.
    #[error("schema change `{tag}` on {table} rejected: {reason}")]
    SchemaChange {
        /// Table.
        table: String,
        /// Flink CDC tag of the change.
        tag: &'static str,
        /// Why.
        reason: String,
    },
    /// Invalid settings discovered at build time (URLs, recovered state).
    #[error("invalid sink configuration: {0}")]
    Config(String),
    /// Arrow failed on a batch we built (a bug).
    #[error("arrow error while encoding {table}")]
    Arrow {
        /// Table.
        table: String,
        /// Arrow's error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Compression of a load body failed.
    #[error("compressing the body for {table} failed")]
    Compress {
        /// Table.
        table: String,
        /// I/O error of the encoder.
        #[source]
        source: std::io::Error,
    },
    /// A background load task ended abnormally (a bug or shutdown).
    #[error("load task for {table} ended abnormally: {message}")]
    Task {
        /// Table.
        table: String,
        /// Join error text.
        message: String,
    },
}

impl SinkError {
    /// Whether the failed request may be sent again unchanged (same label).
    pub fn is_retryable(&self) -> bool {
        matches!(self.retry_hint(), RetryHint::Retry)
    }
}

impl Classify for SinkError {
    fn domain(&self) -> ErrorDomain {
        match self {
            SinkError::LoadFailed { retryable, .. }
            | SinkError::BadReply { retryable, .. }
            | SinkError::Txn { retryable, .. }
            | SinkError::Ddl { retryable, .. } => {
                if *retryable {
                    ErrorDomain::External
                } else {
                    ErrorDomain::User
                }
            }
            SinkError::Http { .. } | SinkError::Mysql { .. } => ErrorDomain::External,
            SinkError::Auth { .. }
            | SinkError::Encode { .. }
            | SinkError::UnsupportedType { .. }
            | SinkError::SchemaChange { .. }
            | SinkError::Config(_) => ErrorDomain::User,
            SinkError::Arrow { .. } | SinkError::Compress { .. } | SinkError::Task { .. } => {
                ErrorDomain::Internal
            }
        }
    }
}

impl From<SinkError> for cdcflow_engine::EngineError {
    fn from(e: SinkError) -> Self {
        cdcflow_engine::EngineError::connector("sink", e)
    }
}

/// Result alias of this crate.
pub type Result<T, E = SinkError> = std::result::Result<T, E>;
