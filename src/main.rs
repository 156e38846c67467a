//! The `cdcflow` command: parse arguments, set up logging, validate or run a pipeline.
//! The only place `anyhow` is used; exit codes: 0 ok, 2 bad configuration, 1 runtime failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cdcflow::observe::{self, LogWriter, MetricsServer, ProgressDisplay};
use cdcflow::plan;
use cdcflow::run::{self, RunFlags};
use cdcflow_engine::error::ErrorChain;
use cdcflow_engine::metrics::Metrics;
use cdcflow_engine::{Classify, EngineError, ErrorDomain};
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Change-data-capture from MySQL/MariaDB into Apache Doris and StarRocks.
///
/// Reads a Flink CDC 3.x pipeline YAML: existing pipeline files work unchanged.
#[derive(Debug, Parser)]
#[command(name = "cdcflow", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "CDCFLOW_LOG_FORMAT")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline: snapshot and/or binlog from the source into the sink, until the source
    /// ends (snapshot mode) or SIGTERM/Ctrl-C (flush, checkpoint, exit 0).
    Run {
        /// The pipeline YAML file.
        pipeline: PathBuf,
        /// Ignore and delete the existing checkpoint, start as configured.
        #[arg(long)]
        from_scratch: bool,
        /// Directory for checkpoints (default `.cdcflow/<pipeline name>`).
        #[arg(long)]
        checkpoint_dir: Option<PathBuf>,
        /// Serve Prometheus metrics at http://ADDR/metrics (and /healthz), e.g. `127.0.0.1:9464`.
        /// Off by default; overrides the pipeline option `cdcflow.metrics.address`. Loopback
        /// addresses only, unless --metrics-allow-remote: the endpoint has no authentication.
        #[arg(long, value_name = "ADDR", env = "CDCFLOW_METRICS_ADDR")]
        metrics_addr: Option<String>,
        /// Allow a non-loopback metrics address (protect it with a firewall or an
        /// authenticating proxy: anyone who reaches it can read the metrics).
        #[arg(long, env = "CDCFLOW_METRICS_ALLOW_REMOTE")]
        metrics_allow_remote: bool,
    },
    /// Check a pipeline file offline (no network): every option, regex and expression; prints the
    /// resolved plan. Exit code 2 with every problem listed as file:line:column when invalid.
    Validate {
        /// The pipeline YAML file.
        pipeline: PathBuf,
    },
}

/// Logs go to stderr; through `writer`, which hides the status line while a line is written.
fn init_tracing(format: LogFormat, writer: LogWriter) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("CDCFLOW_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Human => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The live status line is for a person at a terminal running a pipeline, nothing else.
    let progress = match cli.command {
        Command::Run { .. } => {
            ProgressDisplay::for_terminal(matches!(cli.log_format, LogFormat::Human))
        }
        Command::Validate { .. } => None,
    };
    init_tracing(
        cli.log_format,
        progress
            .as_ref()
            .map_or_else(LogWriter::stderr, ProgressDisplay::make_writer),
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Validate { pipeline } => match plan::validate_file(&pipeline) {
            Ok(v) => {
                print!("{}", v.render());
                ExitCode::SUCCESS
            }
            Err(d) => {
                eprintln!("{d}");
                eprintln!("{} problem(s) found", d.0.len());
                ExitCode::from(2)
            }
        },
        Command::Run {
            pipeline,
            from_scratch,
            checkpoint_dir,
            metrics_addr,
            metrics_allow_remote,
        } => {
            let v = match plan::validate_file(&pipeline) {
                Ok(v) => v,
                Err(d) => {
                    eprintln!("{d}");
                    eprintln!("{} problem(s) found", d.0.len());
                    return ExitCode::from(2);
                }
            };
            let metrics_addr = match observe::metrics_address(
                metrics_addr.as_deref(),
                &v.def,
                metrics_allow_remote,
            ) {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let flags = RunFlags {
                from_scratch,
                checkpoint_dir,
            };
            let result = run_blocking(&v, &flags, metrics_addr, progress.as_ref());
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    error!(error = %ErrorChain(&e), "Pipeline failed.");
                    if e.domain() == ErrorDomain::User {
                        ExitCode::from(2)
                    } else {
                        ExitCode::from(1)
                    }
                }
            }
        }
    }
}

fn run_blocking(
    v: &plan::ValidatedPipeline,
    flags: &RunFlags,
    metrics_addr: Option<SocketAddr>,
    progress: Option<&ProgressDisplay>,
) -> Result<(), EngineError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| EngineError::Internal(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        // Bound before the source starts, so the whole run (snapshot included) can be scraped;
        // stops when this block ends.
        let _metrics_server = match metrics_addr {
            Some(addr) => Some(MetricsServer::bind(addr, Metrics::global()).await.map_err(
                |e| EngineError::Connector {
                    component: "metrics endpoint",
                    source: Box::new(e),
                    domain: ErrorDomain::External,
                },
            )?),
            None => None,
        };
        let ticker = progress.map(|p| p.start(Metrics::global()));
        let shutdown = CancellationToken::new();
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            warn!("Shutdown requested: flushing and checkpointing.");
            signals.cancel();
        });
        let result = run::run(v, flags, shutdown).await;
        if let (Some(t), Some(p)) = (ticker, progress) {
            t.abort();
            p.finish();
        }
        let summary = result?;
        info!(
            rows = summary.rows_out,
            checkpoints = summary.checkpoints,
            "Done."
        );
        for (t, n) in &summary.per_table {
            println!("{t}: {n} rows loaded");
        }
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
