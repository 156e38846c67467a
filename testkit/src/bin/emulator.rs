//! `cdcflow-emulator`: runs the Stream Load emulator as a standalone server (for manual tests or
//! for pointing other tools at it) until Ctrl-C. Requests are logged to stderr.

use std::net::IpAddr;

use anyhow::Context;
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig, Mode};
use clap::Parser;

/// Command-line options of the emulator.
#[derive(Debug, Parser)]
#[command(
    name = "cdcflow-emulator",
    about = "Doris / StarRocks Stream Load emulator (in memory)"
)]
struct Args {
    /// System to emulate: doris or starrocks.
    #[arg(long, default_value = "doris")]
    mode: Mode,
    /// FE HTTP port (Doris/StarRocks default 8030; 0 = any free port).
    #[arg(long, default_value_t = 8030)]
    fe_port: u16,
    /// First BE HTTP port (default 8040; further BEs use the next ports; 0 = free ports).
    #[arg(long, default_value_t = 8040)]
    be_port: u16,
    /// Number of BEs.
    #[arg(long, default_value_t = 1)]
    be_count: usize,
    /// MySQL-protocol query port (default 9030; 0 = any free port).
    #[arg(long, default_value_t = 9030)]
    query_port: u16,
    /// User name accepted by the emulator.
    #[arg(long, default_value = "root")]
    user: String,
    /// Password of that user (empty by default).
    #[arg(
        long,
        default_value = "",
        env = "CDCFLOW_EMULATOR_PASSWORD",
        hide_env_values = true
    )]
    password: String,
    /// Address to listen on and advertise in redirects.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let base = match args.mode {
        Mode::Doris => EmulatorConfig::doris(),
        Mode::StarRocks => EmulatorConfig::starrocks(),
    };
    let mut cfg = base.with_be_count(args.be_count);
    cfg.users = vec![(args.user.clone(), args.password)];
    cfg.host = args.host;
    cfg.fe_port = args.fe_port;
    cfg.query_port = args.query_port;
    cfg.be_ports = (0..cfg.be_count)
        .map(|i| {
            if args.be_port == 0 {
                0
            } else {
                args.be_port.saturating_add(i as u16)
            }
        })
        .collect();
    let emu = Emulator::start(cfg)
        .await
        .context("starting the emulator")?;
    println!("mode:  {:?}", emu.mode());
    println!("fe:    http://{}", emu.fe_addr());
    for (i, be) in emu.be_addrs().iter().enumerate() {
        println!("be{i}:   http://{be}");
    }
    println!("query: {} (MySQL protocol)", emu.query_addr());
    println!("user:  {}", args.user);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emu.shutdown();
    Ok(())
}
