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
            // A request that could not even be built (bad URL or header) is a configuration
            // problem; everything else on the wire (refused, reset, timeout) is the server's side.
            SinkError::Http { source, .. } if source.is_builder() => ErrorDomain::User,
            SinkError::Http { .. } => ErrorDomain::External,
            SinkError::Mysql { source, .. } => match source {
                mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => ErrorDomain::External,
                mysql_async::Error::Server(e) if matches!(e.code, 1044 | 1045) => ErrorDomain::User,
                mysql_async::Error::Server(_) => ErrorDomain::External,
                mysql_async::Error::Url(_) | mysql_async::Error::Other(_) => ErrorDomain::User,
            },
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

#[cfg(test)]
mod tests {
    //! Outages must read as "external, retry later" to the engine (which then restarts the sink
    //! from its checkpoint); data and user errors must not, or the engine would loop on them.

    use std::time::Duration;

    use bytes::Bytes;
    use cdcflow_engine::EngineError;
    use cdcflow_engine::config::Secret;
    use cdcflow_testkit::emulator::{Emulator, EmulatorConfig, Fault, FaultPoint};

    use super::*;
    use crate::stream_load::{
        ClientConfig, LoadRequest, StreamLoadClient, System, TxnOp, TxnRef, is_permanent_failure,
    };

    fn fast(cfg: &mut ClientConfig) {
        cfg.max_retries = 2;
        cfg.retry_backoff = Duration::from_millis(5);
        cfg.max_backoff = Duration::from_millis(10);
        cfg.connect_timeout = Duration::from_millis(500);
        cfg.request_timeout = Some(Duration::from_millis(500));
    }

    fn client_to(nodes: Vec<String>, password: &str) -> StreamLoadClient {
        let mut cfg = ClientConfig::new(System::Doris, nodes, "root", Secret::new(password));
        fast(&mut cfg);
        StreamLoadClient::new(cfg).expect("client builds")
    }

    fn request(body: &str, extra: &[(&str, &str)]) -> LoadRequest {
        let mut headers = vec![
            ("format".to_string(), "json".to_string()),
            ("read_json_by_line".to_string(), "true".to_string()),
        ];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        LoadRequest {
            db: "db".into(),
            table: "t".into(),
            label: format!("l{}", rand::random::<u32>()),
            headers,
            body: Bytes::from(body.to_string()),
            two_phase: false,
        }
    }

    async fn emulator() -> Emulator {
        let emu = Emulator::start(EmulatorConfig::doris())
            .await
            .expect("emulator starts");
        emu.create_table_sql(
            "db",
            "CREATE TABLE t (id INT NOT NULL, v STRING NOT NULL) UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1",
        )
        .expect("table");
        emu
    }

    /// Asserts the classification both on the sink error and as the engine sees it.
    fn assert_class(e: SinkError, domain: ErrorDomain, what: &str) {
        let hint = if domain == ErrorDomain::External {
            RetryHint::Retry
        } else {
            RetryHint::NoRetry
        };
        assert_eq!((e.domain(), e.retry_hint()), (domain, hint), "{what}: {e}");
        let engine: EngineError = e.into();
        assert_eq!(
            (engine.domain(), engine.retry_hint()),
            (domain, hint),
            "{what} (engine)"
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_external_and_retryable() {
        // Connection refused: a port nobody listens on.
        let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = free.local_addr().expect("addr");
        drop(free);
        let e = client_to(vec![addr.to_string()], "")
            .load(&request("{\"id\":1,\"v\":\"a\"}\n", &[]))
            .await
            .expect_err("refused");
        assert!(matches!(e, SinkError::Http { .. }), "{e}");
        assert_class(e, ErrorDomain::External, "connection refused");

        // Accepted, then closed without a reply (reset / node going away).
        let emu = emulator().await;
        emu.set_down(true);
        let c = client_to(vec![emu.fe_url()], "");
        let e = c
            .load(&request("{\"id\":1,\"v\":\"a\"}\n", &[]))
            .await
            .expect_err("down");
        assert_class(e, ErrorDomain::External, "connection closed");
        let e = c
            .doris_2pc("db", TxnOp::Commit, TxnRef::Label("x".into()))
            .await
            .expect_err("down");
        assert_class(e, ErrorDomain::External, "2PC while down");
        let e = c.load_state("db", "x").await.expect_err("down");
        assert_class(e, ErrorDomain::External, "get_load_state while down");
        emu.set_down(false);

        // Timeout: a server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = silent.accept().await {
                held.push(sock);
            }
        });
        let e = client_to(vec![silent_addr.to_string()], "")
            .load(&request("{\"id\":1,\"v\":\"a\"}\n", &[]))
            .await
            .expect_err("timeout");
        assert!(
            matches!(&e, SinkError::Http { source, .. } if source.is_timeout()),
            "{e}"
        );
        assert_class(e, ErrorDomain::External, "timeout");
        holder.abort();

        // 5xx on every attempt: retries exhausted, still retryable for the engine.
        let emu = emulator().await;
        emu.inject(FaultPoint::BeStreamLoad, Fault::HttpStatus(503), 10);
        let e = client_to(vec![emu.fe_url()], "")
            .load(&request("{\"id\":1,\"v\":\"a\"}\n", &[]))
            .await
            .expect_err("503");
        assert!(matches!(e, SinkError::BadReply { status: 503, .. }), "{e}");
        assert_class(e, ErrorDomain::External, "HTTP 503");
    }

    #[tokio::test]
    async fn data_and_user_errors_are_not_retryable() {
        let emu = emulator().await;
        let c = client_to(vec![emu.fe_url()], "");
        // Strict mode filters a bad row: too many filtered rows.
        let e = c
            .load(&request(
                "{\"id\":\"x\",\"v\":\"a\"}\n",
                &[("strict_mode", "true")],
            ))
            .await
            .expect_err("filtered");
        assert_class(e, ErrorDomain::User, "strict mode filtered rows");
        // Schema mismatch: the rows do not carry a NOT NULL column without default.
        let e = c
            .load(&request(
                "{\"id\":1}\n",
                &[("columns", "id"), ("strict_mode", "true")],
            ))
            .await
            .expect_err("schema mismatch");
        assert_class(e, ErrorDomain::User, "schema mismatch");
        // Wrong password: 401.
        let e = client_to(vec![emu.fe_url()], "wrong")
            .load(&request("{\"id\":1,\"v\":\"a\"}\n", &[]))
            .await
            .expect_err("auth");
        assert!(matches!(e, SinkError::Auth { .. }), "{e}");
        assert_class(e, ErrorDomain::User, "401");
        // A request that cannot even be built is a configuration error.
        let e = client_to(vec!["http://[::1".into()], "")
            .load(&request("{}\n", &[]))
            .await
            .expect_err("bad URL");
        assert_class(e, ErrorDomain::User, "unbuildable request");
    }

    #[test]
    fn publish_timeout_that_outlives_the_retries_stays_retryable() {
        let msg =
            "transaction [42] commit successfully, BUT publish timeout, data will be visible later";
        assert!(!is_permanent_failure(msg));
        let e = SinkError::Txn {
            op: "commit",
            db: "db".into(),
            label: "l".into(),
            status: "Publish Timeout".into(),
            message: msg.into(),
            retryable: !is_permanent_failure(msg),
        };
        assert_class(e, ErrorDomain::External, "publish timeout");
        let e = SinkError::LoadFailed {
            table: "db.t".into(),
            label: "l".into(),
            status: "Fail".into(),
            message: "[DATA_QUALITY_ERROR]too many filtered rows".into(),
            error_url: None,
            retryable: !is_permanent_failure("[DATA_QUALITY_ERROR]too many filtered rows"),
        };
        assert_class(e, ErrorDomain::User, "data quality");
        for m in [
            "Unknown column 'x' in 'db.t'",
            "Column has no default value. column: v",
            "load by MERGE or DELETE need to upgrade table to support batch delete. table: t",
            "Table t has sequence column, need to specify the sequence column",
        ] {
            assert!(is_permanent_failure(m), "schema mismatch is permanent: {m}");
        }
    }
}
