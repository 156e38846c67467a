//! The engine's error type and the classification every retry loop reads.
//!
//! Errors say *who* must act (the user, an external system, or us) and whether retrying can help,
//! so retry loops never string-match messages.

use std::fmt;

/// Who has to act to fix an error: decides exit codes and whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorDomain {
    /// Bad configuration or bad data: retrying will not help, the user must change something.
    User,
    /// MySQL, Doris, StarRocks or the network misbehaved: often transient.
    External,
    /// A bug in cdcflow.
    Internal,
}

/// Whether an operation that failed with this error may be retried as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetryHint {
    /// Retrying the same request (same label) is safe and may succeed.
    Retry,
    /// Do not retry.
    NoRetry,
}

/// Implemented by every cdcflow error so the runtime can classify failures uniformly.
pub trait Classify {
    /// Who must act on this error.
    fn domain(&self) -> ErrorDomain;
    /// Whether retrying may help.
    fn retry_hint(&self) -> RetryHint {
        match self.domain() {
            ErrorDomain::External => RetryHint::Retry,
            ErrorDomain::User | ErrorDomain::Internal => RetryHint::NoRetry,
        }
    }
}

/// Errors raised by the engine runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The pipeline file is invalid; the diagnostics carry file, line and column.
    #[error("invalid pipeline configuration:\n{0}")]
    Config(#[from] crate::config::Diagnostics),
    /// A connector failed; the message carries its own context (table, column, position).
    #[error("{component} failed")]
    Connector {
        /// Which component failed (`source`, `sink`, `transform`).
        component: &'static str,
        /// The connector's own error, classified.
        source: BoxedError,
        /// The connector's classification of `source`.
        domain: ErrorDomain,
    },
    /// Checkpoint store I/O.
    #[error("checkpoint {path}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// Underlying I/O or encoding error.
        source: std::io::Error,
    },
    /// Spill file I/O or encoding (Parquet).
    #[error("spill file {path}: {message}")]
    Spill {
        /// The spill file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A schema change the pipeline's `schema.change.behavior` does not allow.
    #[error("{0}")]
    SchemaChangeRejected(String),
    /// A bug: an invariant did not hold.
    #[error("internal error: {0}")]
    Internal(String),
    /// Arrow rejected a batch we built (a bug in a decoder or transform).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// A connector error behind a box, so the engine stays independent of connector crates.
pub type BoxedError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl EngineError {
    /// Wraps a connector error together with its classification.
    pub fn connector<E>(component: &'static str, err: E) -> Self
    where
        E: std::error::Error + Classify + Send + Sync + 'static,
    {
        let domain = err.domain();
        EngineError::Connector {
            component,
            source: Box::new(err),
            domain,
        }
    }
}

impl Classify for EngineError {
    fn domain(&self) -> ErrorDomain {
        match self {
            EngineError::Config(_) | EngineError::SchemaChangeRejected(_) => ErrorDomain::User,
            EngineError::Connector { domain, .. } => *domain,
            EngineError::Checkpoint { .. } | EngineError::Spill { .. } => ErrorDomain::External,
            EngineError::Internal(_) | EngineError::Arrow(_) => ErrorDomain::Internal,
        }
    }
}

/// Result alias used across the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// Renders an error with its whole `source()` chain, for logs (never log only the top `Display`).
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cur = self.0.source();
        while let Some(e) = cur {
            write!(f, ": {e}")?;
            cur = e.source();
        }
        Ok(())
    }
}
