//! `cdcflow-mariadb`: starts a throwaway MariaDB for scripts, prints its port, runs until killed.
//!
//! Prints `port=<port>` and `url=<url>` on stdout (one per line) once the server accepts
//! connections; SIGINT/SIGTERM stop it and remove its directory.

use cdcflow_testkit::mariadb::{MariaDb, MariaDbOptions};
use clap::Parser;

/// Command line of `cdcflow-mariadb`.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "Start a throwaway MariaDB (ROW binlog, FULL metadata) until killed"
)]
struct Args {
    /// Extra mariadbd argument (repeatable), e.g. `--arg=--binlog-format=STATEMENT`.
    #[arg(long = "arg", allow_hyphen_values = true)]
    extra_args: Vec<String>,
    /// Server id.
    #[arg(long, default_value_t = 1)]
    server_id: u32,
    /// SQL to run as root once the server is up (e.g. a schema and sample data).
    #[arg(long)]
    init_sql: Option<std::path::PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let opts = MariaDbOptions {
        extra_args: args.extra_args,
        server_id: args.server_id,
    };
    let db = MariaDb::start_with(opts).await?;
    if let Some(path) = &args.init_sql {
        let sql = std::fs::read_to_string(path)?;
        db.exec(&sql).await?;
    }
    println!("port={}", db.port());
    println!("url={}", db.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    drop(db);
    Ok(())
}
