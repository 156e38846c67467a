//! End-to-end throughput benchmark: cdcflow against the raw limits of the same server, same run.
//!
//! ```text
//! cargo build --release --bin cdcflow
//! cargo run --release --example bench -- [--rows N] [--json out.json] [--svg out.svg]
//! cargo run --release --example bench -- --stall-sink [--rows N] [--json out.json]
//! ```
//!
//! 1. starts a throwaway MariaDB (2 GiB buffer pool, no row annotations) and loads N rows of the
//!    10-column `orders2` table (`/work/shared/reference/binlog.md` §3) with `INSERT … SELECT`;
//! 2. raw limits: the load's binlog streamed by mysql_async without decoding rows, `SELECT *` over
//!    the binary protocol (values dropped), and the emulator's own Stream Load ingest rate;
//! 3. cdcflow bulk load: `scan.startup.mode: snapshot` + `execution.runtime-mode: BATCH`, timed
//!    until the process exits, then the emulator's row count is checked against N;
//! 4. cdcflow CDC, live: the pipeline runs, then N inserts + N/5 updates are written; timed from
//!    the first write until the emulator holds every change (bounded by the server's ingest);
//! 5. cdcflow CDC, catch-up: the same binlog range replayed from a specific offset into a fresh
//!    emulator; timed from process start until every change arrived;
//! 6. the bulk load and the catch-up again into cdcflow's `values` sink with printing off (a
//!    discarding sink): cdcflow's own ceiling without the emulator, which tops out near 100 k rows/s.
//!
//! cdcflow runs as a child process (the real release binary, next to this example) under
//! `/usr/bin/time`, so its peak RSS and CPU seconds are its own; the emulator and the raw clients
//! run in this process. Set `CDCFLOW_BENCH_PERF=<dir>` to wrap each cdcflow run in `perf record`.
//!
//! With `--json FILE` (or `--svg FILE`) a bar chart of rows/s per path is written as SVG too
//! (`FILE` with the extension `.svg` unless `--svg` names another file; log scale).
//!
//! `--stall-sink` runs only a backpressure scenario instead (N defaults to 10 M there): CDC into
//! an emulator whose BE loads are stalled ([`Emulator::set_stalled`]) while N rows are written,
//! with `cdcflow.memory.budget: 256mb`; cdcflow's RSS (`VmRSS`) is sampled every 100 ms and the
//! spill files under `<checkpoint dir>/…/spill/` are summed; once cdcflow has read everything
//! (idle), the sink is released and the drain rate (all N rows in the emulator) is measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cdcflow_testkit::emulator::{Emulator, EmulatorConfig, SqlOutput, Value};
use cdcflow_testkit::mariadb::{MariaDb, MariaDbOptions};
use clap::Parser;
use futures::StreamExt;
use mysql_async::prelude::Queryable;
use serde_json::json;

/// Rows per `INSERT … SELECT` statement (one transaction each).
const LOAD_CHUNK: u64 = 100_000;
/// Rows per direct Stream Load when measuring the emulator (the Doris sink's default max-rows).
const EMULATOR_CHUNK: u64 = 500_000;
/// One in this many rows is updated in the CDC phase.
const UPDATE_EVERY: u64 = 5;
/// Give up waiting for cdcflow after this long.
const PHASE_TIMEOUT: Duration = Duration::from_secs(1800);

/// Rows of the default run.
const DEFAULT_ROWS: u64 = 2_000_000;
/// Rows of the default `--stall-sink` run.
const DEFAULT_STALL_ROWS: u64 = 10_000_000;
/// The memory budget passed in `--stall-sink` mode.
const STALL_BUDGET: &str = "256mb";
/// RSS and spill sampling interval in `--stall-sink` mode.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "cdcflow end-to-end throughput benchmark")]
struct Args {
    /// Rows in the benchmark table (default 2,000,000; 10,000,000 with --stall-sink).
    #[arg(long)]
    rows: Option<u64>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write a bar chart of rows/s per path as SVG to this file (default: next to --json).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Run only the stalled-sink backpressure scenario (peak RSS, spill bytes, drain rate).
    #[arg(long)]
    stall_sink: bool,
    /// Keep the work directory (pipeline YAMLs, cdcflow logs, checkpoints) and print its path.
    #[arg(long)]
    keep: bool,
    /// The cdcflow binary (default: `cdcflow` next to this example's directory).
    #[arg(long)]
    cdcflow: Option<PathBuf>,
}

/// One line of the results table.
#[derive(Debug, Clone)]
struct Line {
    path: String,
    rows: u64,
    bytes: u64,
    secs: f64,
    limit: Option<String>,
    ratio: Option<f64>,
    cpu_s: Option<f64>,
    rss_kib: Option<u64>,
}

impl Line {
    fn new(path: &str, rows: u64, bytes: u64, secs: f64) -> Self {
        Line {
            path: path.into(),
            rows,
            bytes,
            secs,
            limit: None,
            ratio: None,
            cpu_s: None,
            rss_kib: None,
        }
    }
    fn rows_s(&self) -> f64 {
        self.rows as f64 / self.secs.max(1e-9)
    }
    fn mb_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(1e-9)
    }
    fn vs(mut self, limit: &Line) -> Self {
        self.limit = Some(limit.path.clone());
        self.ratio = Some(self.rows_s() / limit.rows_s().max(1e-9));
        self
    }
    fn with_child(mut self, c: &ChildStats) -> Self {
        self.cpu_s = Some(c.user_s + c.sys_s);
        self.rss_kib = Some(c.max_rss_kib);
        self
    }
    fn to_json(&self) -> serde_json::Value {
        json!({
            "path": self.path, "rows": self.rows, "bytes": self.bytes, "seconds": self.secs,
            "rows_per_s": self.rows_s(), "mb_per_s": self.mb_s(),
            "raw_limit": self.limit, "ratio_to_limit": self.ratio,
            "cpu_seconds": self.cpu_s,
            "cpu_s_per_million_rows": self.cpu_s.map(|c| c * 1e6 / self.rows.max(1) as f64),
            "peak_rss_mib": self.rss_kib.map(|k| k as f64 / 1024.0),
        })
    }
}

/// Resources used by one cdcflow child process, as reported by `/usr/bin/time`.
#[derive(Debug, Clone, Copy, Default)]
struct ChildStats {
    wall_s: f64,
    user_s: f64,
    sys_s: f64,
    max_rss_kib: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CDCFLOW_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let default_rows = if args.stall_sink {
        DEFAULT_STALL_ROWS
    } else {
        DEFAULT_ROWS
    };
    let n = args.rows.unwrap_or(default_rows).max(1);
    let cdcflow = match &args.cdcflow {
        Some(p) => p.clone(),
        None => default_binary()?,
    };
    if !cdcflow.exists() {
        bail!(
            "{} not found: build it first with `cargo build --release --bin cdcflow` (or pass --cdcflow)",
            cdcflow.display()
        );
    }
    let mut work = tempfile::tempdir()?;
    if args.keep {
        work.disable_cleanup(true);
        eprintln!("[bench] work directory: {}", work.path().display());
    }
    let mut lines: Vec<Line> = Vec::new();
    let mut notes: BTreeMap<&str, serde_json::Value> = BTreeMap::new();

    eprintln!("[bench] starting MariaDB ...");
    let db = MariaDb::start_with(
        MariaDbOptions::default()
            .with_arg("--innodb-buffer-pool-size=2G")
            .with_arg("--binlog-annotate-row-events=OFF")
            .with_arg("--max-allowed-packet=256M"),
    )
    .await
    .context("starting MariaDB")?;
    db.exec(&format!(
        "CREATE DATABASE bulk; CREATE DATABASE live; {}; {}",
        create_table("bulk"),
        create_table("live")
    ))
    .await?;
    if args.stall_sink {
        return stall_sink(&args, &cdcflow, work.path(), &db, n).await;
    }

    // -- load ----------------------------------------------------------------------------
    eprintln!("[bench] loading {n} rows into bulk.orders2 ...");
    let load_start = master_pos(&db).await?;
    let t = Instant::now();
    let mut conn = db.conn().await?;
    for lo in (1..=n).step_by(LOAD_CHUNK as usize) {
        let hi = (lo + LOAD_CHUNK - 1).min(n);
        conn.query_drop(insert_generated("bulk", lo, hi)).await?;
    }
    let load_secs = t.elapsed().as_secs_f64();
    let load_end = master_pos(&db).await?;
    lines.push(Line::new(
        "MariaDB ingest (INSERT … SELECT, 1 session)",
        n,
        0,
        load_secs,
    ));

    // -- raw limits ------------------------------------------------------------------------
    eprintln!("[bench] raw limits ...");
    let (ev, bytes, secs) = raw_binlog(&db, &load_start, 901).await?;
    notes.insert(
        "binlog_of_load",
        json!({"events": ev, "bytes": bytes, "from": load_start, "to": load_end}),
    );
    let raw_binlog_load = Line::new("raw: binlog → client, framed (load range)", n, bytes, secs);
    let (rows, vbytes, secs) = raw_select(&db, "bulk").await?;
    if rows != n {
        bail!("SELECT * returned {rows} rows, expected {n}");
    }
    let raw_select_line = Line::new("raw: SELECT * binary protocol (exec_iter)", n, vbytes, secs);
    let (erows, ebytes, esecs) = emulator_ingest(n).await?;
    let raw_emulator = Line::new(
        "raw: emulator Stream Load ingest (CSV)",
        erows,
        ebytes,
        esecs,
    );

    // -- bulk ------------------------------------------------------------------------------
    eprintln!("[bench] cdcflow bulk load ...");
    let emu = Emulator::start(EmulatorConfig::doris()).await?;
    let yaml = pipeline_yaml(
        "5600-5601",
        "bulk",
        &db,
        Some(&emu),
        "snapshot",
        "",
        "  execution.runtime-mode: BATCH\n",
    );
    let (child, stats) = spawn_cdcflow(&cdcflow, work.path(), "bulk", &yaml)?;
    let st = wait_child(child, &stats, work.path(), "bulk").await?;
    let got = emu_count(&emu, "bulk", "SELECT COUNT(*) FROM orders2")?;
    if got != n {
        bail!("bulk load: emulator has {got} rows, expected {n}");
    }
    let bulk = Line::new("cdcflow bulk load (snapshot → Doris)", n, vbytes, st.wall_s)
        .vs(&raw_select_line)
        .with_child(&st);
    drop(emu);

    // -- CDC live --------------------------------------------------------------------------
    eprintln!("[bench] cdcflow CDC, live ...");
    let updates = n / UPDATE_EVERY;
    let changes = n + updates;
    let emu = Emulator::start(EmulatorConfig::doris()).await?;
    let yaml = pipeline_yaml("5610-5611", "live", &db, Some(&emu), "initial", "", "");
    let (mut child, stats) = spawn_cdcflow(&cdcflow, work.path(), "live", &yaml)?;
    let ready = Instant::now();
    while emu_count(&emu, "live", "SELECT COUNT(*) FROM orders2").is_err()
        && ready.elapsed() < Duration::from_secs(30)
    {
        if let Some(s) = child.try_wait()? {
            bail!(
                "cdcflow (live) exited early with {s}; log: {}",
                log_tail(work.path(), "live")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cdc_start = master_pos(&db).await?;
    let t = Instant::now();
    let writer = {
        let opts = db.opts();
        tokio::spawn(async move { write_changes(opts, n).await })
    };
    wait_changes(&emu, "live", n, updates, &mut child, work.path(), "live").await?;
    let live_secs = t.elapsed().as_secs_f64();
    let write_secs = writer.await??;
    let cdc_end = master_pos(&db).await?;
    let st = stop_child(child, &stats, work.path(), "live").await?;
    drop(emu);

    // Raw binlog of exactly the CDC range: the ratio's denominator for both CDC lines.
    let (cev, cbytes, csecs) = raw_binlog(&db, &cdc_start, 902).await?;
    notes.insert(
        "binlog_of_cdc",
        json!({"events": cev, "bytes": cbytes, "from": cdc_start, "to": cdc_end,
               "inserts": n, "updates": updates, "write_seconds": write_secs}),
    );
    let raw_binlog_cdc = Line::new(
        "raw: binlog → client, framed (CDC range)",
        changes,
        cbytes,
        csecs,
    );
    let live = Line::new(
        "cdcflow CDC live (first write → all in Doris)",
        changes,
        cbytes,
        live_secs,
    )
    .vs(&raw_binlog_cdc)
    .with_child(&st);

    // -- CDC catch-up ----------------------------------------------------------------------
    eprintln!("[bench] cdcflow CDC, catch-up from a binlog offset ...");
    let emu = Emulator::start(EmulatorConfig::doris()).await?;
    let offset = format!(
        "  scan.startup.specific-offset.file: {}\n  scan.startup.specific-offset.pos: {}\n",
        cdc_start.0, cdc_start.1
    );
    let yaml = pipeline_yaml(
        "5620-5621",
        "live",
        &db,
        Some(&emu),
        "specific-offset",
        &offset,
        "",
    );
    let t = Instant::now();
    let (mut child, stats) = spawn_cdcflow(&cdcflow, work.path(), "catchup", &yaml)?;
    wait_changes(&emu, "live", n, updates, &mut child, work.path(), "catchup").await?;
    let catchup_secs = t.elapsed().as_secs_f64();
    let st = stop_child(child, &stats, work.path(), "catchup").await?;
    drop(emu);
    let catchup = Line::new(
        "cdcflow CDC catch-up (binlog backlog → Doris)",
        changes,
        cbytes,
        catchup_secs,
    )
    .vs(&raw_binlog_cdc)
    .with_child(&st);

    // -- discarding sink: cdcflow's own ceiling, without the emulator --------------------------
    eprintln!("[bench] cdcflow bulk load into a discarding sink ...");
    let yaml = pipeline_yaml(
        "5630-5631",
        "bulk",
        &db,
        None,
        "snapshot",
        "",
        "  execution.runtime-mode: BATCH\n",
    );
    let (child, stats) = spawn_cdcflow(&cdcflow, work.path(), "bulk-null", &yaml)?;
    let st = wait_child(child, &stats, work.path(), "bulk-null").await?;
    let rows_in = log_rows_in(work.path(), "bulk-null");
    if rows_in != Some(n) {
        bail!("bulk load into the discarding sink read {rows_in:?} rows, expected {n}");
    }
    let bulk_null = Line::new(
        "cdcflow bulk load → discarding sink (no Doris)",
        n,
        vbytes,
        st.wall_s,
    )
    .vs(&raw_select_line)
    .with_child(&st);

    eprintln!("[bench] cdcflow CDC catch-up into a discarding sink ...");
    let yaml = pipeline_yaml(
        "5640-5641",
        "live",
        &db,
        None,
        "specific-offset",
        &offset,
        "",
    );
    let t = Instant::now();
    let (mut child, stats) = spawn_cdcflow(&cdcflow, work.path(), "catchup-null", &yaml)?;
    let busy = wait_idle(&mut child, t, work.path(), "catchup-null").await?;
    let st = stop_child(child, &stats, work.path(), "catchup-null").await?;
    // Updates carry a before and an after image: 2 rows each in cdcflow's count.
    let expected_in = n + 2 * updates;
    let rows_in = log_rows_in(work.path(), "catchup-null");
    if rows_in != Some(expected_in) {
        bail!(
            "CDC catch-up into the discarding sink read {rows_in:?} rows, expected {expected_in}"
        );
    }
    let catchup_null = Line::new(
        "cdcflow CDC catch-up → discarding sink (no Doris)",
        changes,
        cbytes,
        busy,
    )
    .vs(&raw_binlog_cdc)
    .with_child(&st);

    lines.extend([
        raw_binlog_load,
        raw_binlog_cdc,
        raw_select_line,
        raw_emulator,
        bulk,
        live,
        catchup,
        bulk_null,
        catchup_null,
    ]);
    let self_hwm = self_hwm_kib();
    println!("{}", render(&lines, n));
    println!(
        "cdcflow runs as a child process: CPU and peak RSS are its own (/usr/bin/time).\n\
         This process (MariaDB clients + the in-process Stream Load emulator) peaked at {:.0} MiB.",
        self_hwm as f64 / 1024.0
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "rows": n,
            "machine": {"cpus": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0)},
            "results": lines.iter().map(Line::to_json).collect::<Vec<_>>(),
            "notes": notes,
            "bench_process_peak_rss_mib": self_hwm as f64 / 1024.0,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    write_svg(&args, &lines, &format!("cdcflow bench, {n} rows"))?;
    Ok(())
}

/// Writes the rows/s bar chart where `--svg` or `--json` says (nothing if neither is given).
fn write_svg(args: &Args, lines: &[Line], title: &str) -> anyhow::Result<()> {
    let path = match (&args.svg, &args.json) {
        (Some(p), _) => p.clone(),
        (None, Some(j)) => j.with_extension("svg"),
        (None, None) => return Ok(()),
    };
    std::fs::write(&path, svg_chart(lines, title))
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Escapes text for SVG.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart of rows/s per path, log-scaled (the paths span 50 k to 10 M rows/s);
/// cdcflow's own paths in blue, raw limits and references in grey. Plain SVG text.
fn svg_chart(lines: &[Line], title: &str) -> String {
    const LABEL_W: f64 = 430.0;
    const BAR_W: f64 = 480.0;
    const ROW_H: f64 = 26.0;
    const TOP: f64 = 50.0;
    let max = lines.iter().map(Line::rows_s).fold(1.0, f64::max);
    let min = lines
        .iter()
        .map(Line::rows_s)
        .filter(|v| *v > 0.0)
        .fold(max, f64::min);
    let lo = 10f64.powf(min.log10().floor());
    let hi = 10f64.powf(max.log10().ceil()).max(lo * 10.0);
    let x = |v: f64| LABEL_W + BAR_W * ((v.max(lo) / lo).log10() / (hi / lo).log10());
    let height = TOP + ROW_H * lines.len() as f64 + 40.0;
    let width = LABEL_W + BAR_W + 100.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">{} — rows/s (log scale)</text>"#,
        xml(title)
    );
    let mut tick = lo;
    while tick <= hi * 1.0001 {
        let tx = x(tick);
        let _ = writeln!(
            s,
            r##"<line x1="{tx:.1}" y1="{y0}" x2="{tx:.1}" y2="{y1}" stroke="#ddd"/><text x="{tx:.1}" y="{yl}" text-anchor="middle" fill="#555">{}</text>"##,
            human(tick),
            y0 = TOP - 8.0,
            y1 = TOP + ROW_H * lines.len() as f64,
            yl = TOP + ROW_H * lines.len() as f64 + 16.0,
        );
        tick *= 10.0;
    }
    for (i, l) in lines.iter().enumerate() {
        let y = TOP + ROW_H * i as f64;
        let ours = l.path.starts_with("cdcflow");
        let fill = if ours { "#2b6cb0" } else { "#a0aec0" };
        let w = (x(l.rows_s()) - LABEL_W).max(1.0);
        let _ = writeln!(
            s,
            r#"<text x="{lx}" y="{ty:.1}" text-anchor="end">{}</text><rect x="{LABEL_W}" y="{y:.1}" width="{w:.1}" height="{bh}" fill="{fill}"/><text x="{vx:.1}" y="{ty:.1}">{}</text>"#,
            xml(&l.path),
            human(l.rows_s()),
            lx = LABEL_W - 8.0,
            ty = y + ROW_H * 0.55,
            bh = ROW_H - 8.0,
            vx = LABEL_W + w + 5.0,
        );
    }
    s.push_str("</svg>\n");
    s
}

/// `1.23 M`, `456 k`, `789`.
fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// One sample of the stalled run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at_s: f64,
    rss_kib: u64,
    spill_bytes: u64,
}

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Bytes of the files under any directory named `spill` below `dir` (missing: 0).
fn spill_bytes(dir: &Path) -> u64 {
    fn walk(dir: &Path, inside: bool) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut sum = 0;
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                sum += walk(&e.path(), inside || e.file_name() == "spill");
            } else if inside {
                sum += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        sum
    }
    walk(dir, false)
}

/// The backpressure scenario (`--stall-sink`): N inserts with the sink stalled, then drained.
async fn stall_sink(
    args: &Args,
    cdcflow: &Path,
    work: &Path,
    db: &MariaDb,
    n: u64,
) -> anyhow::Result<()> {
    let phase = "stall";
    eprintln!("[bench] stalled sink: cdcflow CDC with the emulator's loads stalled, {n} rows ...");
    let emu = Emulator::start(EmulatorConfig::doris()).await?;
    emu.set_stalled(true);
    let yaml = pipeline_yaml(
        "5650-5651",
        "live",
        db,
        Some(&emu),
        "initial",
        "",
        &format!("  cdcflow.memory.budget: {STALL_BUDGET}\n"),
    );
    let (mut child, stats) = spawn_cdcflow(cdcflow, work, phase, &yaml)?;
    let ckpt = work.join(format!("{phase}.ckpt"));
    let ready = Instant::now();
    while emu_count(&emu, "live", "SELECT COUNT(*) FROM orders2").is_err() {
        if let Some(s) = child.try_wait()? {
            bail!(
                "cdcflow ({phase}) exited early with {s}; log:\n{}",
                log_tail(work, phase)
            );
        }
        if ready.elapsed() > Duration::from_secs(60) {
            bail!("cdcflow ({phase}) did not create the table within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root = child.id().context("child already reaped")?;
    let pid = find_descendant(root, "cdcflow").context("finding the cdcflow process")?;

    // Stalled: write N rows while sampling RSS and spill bytes; stop when cdcflow went idle.
    let t = Instant::now();
    let writer = {
        let opts = db.opts();
        tokio::spawn(async move {
            let t = Instant::now();
            let mut conn = mysql_async::Conn::new(opts).await?;
            for lo in (1..=n).step_by(LOAD_CHUNK as usize) {
                let hi = (lo + LOAD_CHUNK - 1).min(n);
                conn.query_drop(insert_generated("live", lo, hi)).await?;
            }
            anyhow::Ok(t.elapsed().as_secs_f64())
        })
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut write_secs = None;
    let mut last_ticks = 0u64;
    let mut last_busy = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            bail!(
                "cdcflow ({phase}) exited while the sink was stalled with {s}; log:\n{}",
                log_tail(work, phase)
            );
        }
        samples.push(Sample {
            at_s: t.elapsed().as_secs_f64(),
            rss_kib: rss_kib(pid).unwrap_or(0),
            spill_bytes: spill_bytes(&ckpt),
        });
        if let Some(ticks) = cpu_ticks(pid) {
            // ≥ 2 ticks (20 ms of CPU) in a 100 ms sample: still reading.
            if ticks >= last_ticks + 2 {
                last_busy = Instant::now();
            }
            last_ticks = ticks;
        }
        if write_secs.is_none() && writer.is_finished() {
            write_secs = Some(t.elapsed().as_secs_f64());
        }
        if write_secs.is_some() && last_busy.elapsed() >= Duration::from_secs(3) {
            break;
        }
        if t.elapsed() > PHASE_TIMEOUT {
            bail!("cdcflow ({phase}) did not go idle within {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
    let write_secs = writer.await??;
    let stalled_secs = last_busy.duration_since(t).as_secs_f64();
    let peak_rss = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let peak_spill = samples.iter().map(|s| s.spill_bytes).max().unwrap_or(0);
    let spill_at_release = spill_bytes(&ckpt);
    let loaded_while_stalled = emu_count(&emu, "live", "SELECT COUNT(*) FROM orders2").unwrap_or(0);

    // Released: time until every row is in the emulator.
    eprintln!("[bench] releasing the sink ...");
    emu.set_stalled(false);
    let t_drain = Instant::now();
    let t_drain_at = t.elapsed().as_secs_f64();
    let sampler = {
        let ckpt = ckpt.clone();
        tokio::spawn(async move {
            let mut out = Vec::new();
            let t0 = Instant::now();
            while rss_kib(pid).is_some() {
                out.push(Sample {
                    at_s: t_drain_at + t0.elapsed().as_secs_f64(),
                    rss_kib: rss_kib(pid).unwrap_or(0),
                    spill_bytes: spill_bytes(&ckpt),
                });
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
            out
        })
    };
    wait_changes(&emu, "live", n, 0, &mut child, work, phase).await?;
    let drain_secs = t_drain.elapsed().as_secs_f64();
    let spill_after = spill_bytes(&ckpt);
    let st = stop_child(child, &stats, work, phase).await?;
    samples.extend(sampler.await.unwrap_or_default());
    drop(emu);

    let stalled = Line {
        rss_kib: Some(peak_rss),
        cpu_s: None,
        ..Line::new(
            "cdcflow CDC, sink stalled (rows read while nothing loads)",
            n,
            0,
            stalled_secs,
        )
    };
    let drain = Line::new(
        "cdcflow drain after the sink is released (→ Doris emulator)",
        n.saturating_sub(loaded_while_stalled),
        0,
        drain_secs,
    )
    .with_child(&st);
    let lines = vec![stalled, drain];
    println!("{}", render(&lines, n));
    println!(
        "memory budget {STALL_BUDGET}: peak RSS while stalled {:.0} MiB (whole run {:.0} MiB); \
         spill on disk: peak {:.1} MiB, {:.1} MiB at release, {:.1} MiB after the drain; \
         writes took {write_secs:.1} s; {loaded_while_stalled} rows were loaded before the stall held.",
        peak_rss as f64 / 1024.0,
        st.max_rss_kib as f64 / 1024.0,
        peak_spill as f64 / 1048576.0,
        spill_at_release as f64 / 1048576.0,
        spill_after as f64 / 1048576.0,
    );
    if let Some(path) = &args.json {
        let doc = json!({
            "rows": n,
            "mode": "stall-sink",
            "memory_budget": STALL_BUDGET,
            "machine": {"cpus": std::thread::available_parallelism().map(|p| p.get()).unwrap_or(0)},
            "results": lines.iter().map(Line::to_json).collect::<Vec<_>>(),
            "peak_rss_stalled_mib": peak_rss as f64 / 1024.0,
            "peak_rss_run_mib": st.max_rss_kib as f64 / 1024.0,
            "spill_bytes_peak": peak_spill,
            "spill_bytes_at_release": spill_at_release,
            "spill_bytes_after_drain": spill_after,
            "write_seconds": write_secs,
            "rows_loaded_before_stall_held": loaded_while_stalled,
            "samples": samples.iter().map(|s| json!({"t": s.at_s, "rss_kib": s.rss_kib, "spill_bytes": s.spill_bytes})).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    write_svg(args, &lines, &format!("cdcflow stalled sink, {n} rows"))?;
    Ok(())
}

/// `target/<profile>/cdcflow`, next to `target/<profile>/examples/bench`.
fn default_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("locating the target directory")?;
    Ok(dir.join("cdcflow"))
}

/// The 10-column `orders2` table of binlog.md §3.
fn create_table(db: &str) -> String {
    format!(
        "CREATE TABLE {db}.orders2 (
           id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
           customer_id INT NOT NULL,
           email VARCHAR(64) NOT NULL,
           sku CHAR(16) NOT NULL,
           qty SMALLINT NOT NULL,
           price DECIMAL(12, 2) NOT NULL,
           status ENUM('new', 'paid', 'packed', 'shipped', 'delivered', 'cancelled') NOT NULL,
           created_at DATETIME(6) NOT NULL,
           note VARCHAR(255) NULL,
           score DOUBLE NULL
         ) DEFAULT CHARSET = utf8mb4"
    )
}

/// Words the `note` column is cut from (3–18 words per row).
const WORDS: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua";

/// One `INSERT … SELECT` generating rows `lo..=hi` server-side.
fn insert_generated(db: &str, lo: u64, hi: u64) -> String {
    format!(
        "INSERT INTO {db}.orders2 SELECT seq, seq * 7919 % 100000, CONCAT('user', seq % 100000, '@example.com'),
           LPAD(HEX(seq * 2654435761 % 4294967296), 16, 'S'), seq % 50 + 1, (seq % 100000) / 100 + 0.99,
           ELT(1 + seq % 6, 'new', 'paid', 'packed', 'shipped', 'delivered', 'cancelled'),
           TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
           SUBSTRING_INDEX('{WORDS}', ' ', 3 + seq % 16), seq / 3
         FROM {db}.seq_{lo}_to_{hi}"
    )
}

/// `SHOW MASTER STATUS` as (file, position).
async fn master_pos(db: &MariaDb) -> anyhow::Result<(String, u64)> {
    let rows: Vec<mysql_async::Row> = db.query("SHOW MASTER STATUS").await?;
    let row = rows
        .first()
        .context("SHOW MASTER STATUS returned nothing")?;
    let file: String = row.get(0).context("binlog file")?;
    let pos: u64 = row.get(1).context("binlog position")?;
    Ok((file, pos))
}

/// Streams the binlog from `from` to its current end (non-blocking dump), counting events and
/// bytes without decoding rows: the upper bound for any binlog reader on this server.
async fn raw_binlog(
    db: &MariaDb,
    from: &(String, u64),
    server_id: u32,
) -> anyhow::Result<(u64, u64, f64)> {
    let mut conn = db.conn().await?;
    conn.query_drop("SET @mariadb_slave_capability=4").await?;
    let t = Instant::now();
    let req = mysql_async::BinlogStreamRequest::new(server_id)
        .with_filename(from.0.as_bytes())
        .with_pos(from.1)
        .with_non_blocking();
    let mut stream = conn.get_binlog_stream(req).await?;
    let (mut events, mut bytes) = (0u64, 0u64);
    while let Some(ev) = stream.next().await {
        let ev = ev.context("reading the binlog stream")?;
        events += 1;
        bytes += u64::from(ev.header().event_size());
    }
    let secs = t.elapsed().as_secs_f64();
    let _ = stream.close().await;
    Ok((events, bytes, secs))
}

/// `SELECT *` over the binary protocol; values are counted (bytes as sent) and dropped.
async fn raw_select(db: &MariaDb, schema: &str) -> anyhow::Result<(u64, u64, f64)> {
    let mut conn = db.conn().await?;
    let t = Instant::now();
    let mut result = conn
        .exec_iter(format!("SELECT * FROM {schema}.orders2"), ())
        .await?;
    let (mut rows, mut bytes) = (0u64, 0u64);
    while let Some(row) = result.next().await? {
        rows += 1;
        for v in row.unwrap() {
            bytes += match v {
                mysql_async::Value::NULL => 0,
                mysql_async::Value::Bytes(b) => b.len() as u64,
                mysql_async::Value::Date(..) => 11,
                mysql_async::Value::Time(..) => 12,
                _ => 8,
            };
        }
    }
    Ok((rows, bytes, t.elapsed().as_secs_f64()))
}

/// Times direct Stream Loads of pre-encoded CSV (the same row shape) into a fresh emulator BE:
/// the ceiling the emulator itself puts on any sink.
async fn emulator_ingest(n: u64) -> anyhow::Result<(u64, u64, f64)> {
    let emu = Emulator::start(EmulatorConfig::doris()).await?;
    emu.create_table_sql(
        "raw",
        "CREATE TABLE orders2 (id BIGINT, customer_id INT, email VARCHAR(256), sku VARCHAR(64),
           qty SMALLINT, price DECIMAL(12, 2), status VARCHAR(32), created_at DATETIME(6),
           note VARCHAR(1024), score DOUBLE)
         UNIQUE KEY(id) DISTRIBUTED BY HASH(id) BUCKETS 1 PROPERTIES ('replication_num' = '1')",
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut bodies = Vec::new();
    for lo in (1..=n).step_by(EMULATOR_CHUNK as usize) {
        let hi = (lo + EMULATOR_CHUNK - 1).min(n);
        let mut body = String::with_capacity(((hi - lo + 1) * 150) as usize);
        for seq in lo..=hi {
            csv_row(seq, &mut body);
        }
        bodies.push(body.into_bytes());
    }
    let be = emu.be_addrs()[0];
    let client = reqwest::Client::new();
    let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    let t = Instant::now();
    for (i, body) in bodies.into_iter().enumerate() {
        let resp = client
            .put(format!("http://{be}/api/raw/orders2/_stream_load"))
            .basic_auth("root", Some(""))
            .header("label", format!("bench-raw-{i}"))
            .header("format", "csv")
            .body(body)
            .send()
            .await?;
        let text = resp.text().await?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("stream load answer: {text}"))?;
        if v.get("Status").and_then(|s| s.as_str()) != Some("Success") {
            bail!("direct stream load failed: {text}");
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let got = emu_count(&emu, "raw", "SELECT COUNT(*) FROM orders2")?;
    if got != n {
        bail!("direct stream load: emulator has {got} rows, expected {n}");
    }
    Ok((n, bytes, secs))
}

/// One CSV line of the generated row `seq` (tab-separated, as the SQL generator makes it).
fn csv_row(seq: u64, out: &mut String) {
    const STATUS: [&str; 6] = ["new", "paid", "packed", "shipped", "delivered", "cancelled"];
    let words: Vec<&str> = WORDS.split(' ').take(3 + (seq % 16) as usize).collect();
    let base = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    let ts = base
        + chrono::Duration::seconds(seq as i64)
        + chrono::Duration::microseconds((seq % 1_000_000) as i64);
    let cents = (seq % 100_000) + 99;
    let _ = writeln!(
        out,
        "{seq}\t{}\tuser{}@example.com\t{:S>16X}\t{}\t{}.{:02}\t{}\t{}\t{}\t{}",
        seq * 7919 % 100_000,
        seq % 100_000,
        seq * 2_654_435_761 % 4_294_967_296,
        seq % 50 + 1,
        cents / 100,
        cents % 100,
        STATUS[(seq % 6) as usize],
        ts.format("%Y-%m-%d %H:%M:%S%.6f"),
        words.join(" "),
        seq as f64 / 3.0,
    );
}

/// The pipeline YAML for one phase: `db`.orders2 from MariaDB into the emulator.
fn pipeline_yaml(
    server_ids: &str,
    db_name: &str,
    db: &MariaDb,
    emu: Option<&Emulator>,
    mode: &str,
    source_extra: &str,
    pipeline_extra: &str,
) -> String {
    let sink = match emu {
        Some(emu) => format!(
            "sink:
  type: doris
  fenodes: {fe}
  username: root
  password: \"\"
  table.create.properties.replication_num: 1
  sink.buffer-flush.interval: 1s
",
            fe = emu.fe_addr()
        ),
        None => "sink:\n  type: values\n  print.enabled: false\n".to_string(),
    };
    format!(
        "source:
  type: mysql
  hostname: 127.0.0.1
  port: {port}
  username: root
  password: \"\"
  tables: {db_name}.orders2
  server-id: {server_ids}
  server-time-zone: UTC
  scan.startup.mode: {mode}
{source_extra}{sink}pipeline:
  name: bench-{db_name}
  parallelism: 2
  local-time-zone: UTC
  cdcflow.checkpoint.interval: 1s
{pipeline_extra}",
        port = db.port(),
    )
}

/// Starts `cdcflow run` under `/usr/bin/time` (optionally `perf record`); returns the child and
/// the file `time` writes its figures to.
fn spawn_cdcflow(
    bin: &Path,
    work: &Path,
    phase: &str,
    yaml: &str,
) -> anyhow::Result<(tokio::process::Child, PathBuf)> {
    let file = work.join(format!("{phase}.yaml"));
    std::fs::write(&file, yaml)?;
    let stats = work.join(format!("{phase}.time"));
    let log = std::fs::File::create(work.join(format!("{phase}.log")))?;
    let mut cmd = tokio::process::Command::new("/usr/bin/time");
    cmd.arg("-f").arg("%e %U %S %M").arg("-o").arg(&stats);
    if let Ok(dir) = std::env::var("CDCFLOW_BENCH_PERF") {
        cmd.args(["perf", "record", "-F", "999", "-o"])
            .arg(Path::new(&dir).join(format!("{phase}.perf.data")))
            .arg("--");
    }
    cmd.arg(bin)
        .arg("run")
        .arg(&file)
        .arg("--from-scratch")
        .arg("--checkpoint-dir")
        .arg(work.join(format!("{phase}.ckpt")))
        .env(
            "CDCFLOW_LOG",
            std::env::var("CDCFLOW_BENCH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true);
    let child = cmd.spawn().context("spawning /usr/bin/time cdcflow run")?;
    Ok((child, stats))
}

/// The last lines of a phase's cdcflow log, for error messages.
fn log_tail(work: &Path, phase: &str) -> String {
    let text = std::fs::read_to_string(work.join(format!("{phase}.log"))).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Waits for a bounded (BATCH) run to exit by itself and reads its resource figures.
async fn wait_child(
    mut child: tokio::process::Child,
    stats: &Path,
    work: &Path,
    phase: &str,
) -> anyhow::Result<ChildStats> {
    let status = tokio::time::timeout(PHASE_TIMEOUT, child.wait())
        .await
        .context("cdcflow did not finish in time")??;
    if !status.success() {
        bail!(
            "cdcflow ({phase}) failed with {status}; log:\n{}",
            log_tail(work, phase)
        );
    }
    read_stats(stats)
}

/// SIGTERMs the cdcflow process of an unbounded run, waits for its clean exit, reads its figures.
async fn stop_child(
    mut child: tokio::process::Child,
    stats: &Path,
    work: &Path,
    phase: &str,
) -> anyhow::Result<ChildStats> {
    let root = child.id().context("child already reaped")?;
    let target = find_descendant(root, "cdcflow").unwrap_or(root);
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(target.to_string())
        .status();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("cdcflow did not stop after SIGTERM")??;
    if !status.success() {
        eprintln!(
            "[bench] cdcflow ({phase}) exited with {status}; log:\n{}",
            log_tail(work, phase)
        );
    }
    read_stats(stats)
}

/// The first descendant of `pid` whose command name is `name` (breadth-first via /proc).
fn find_descendant(pid: u32, name: &str) -> Option<u32> {
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if comm.trim() == name {
            return Some(p);
        }
        let kids = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).ok()?;
        queue.extend(
            kids.split_whitespace()
                .filter_map(|k| k.parse::<u32>().ok()),
        );
    }
    None
}

/// Parses `/usr/bin/time -f "%e %U %S %M"` output (the last line; earlier ones are notes).
fn read_stats(path: &Path) -> anyhow::Result<ChildStats> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let line = text.lines().last().unwrap_or_default();
    let f: Vec<f64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() != 4 {
        bail!("unexpected /usr/bin/time output: {text}");
    }
    Ok(ChildStats {
        wall_s: f[0],
        user_s: f[1],
        sys_s: f[2],
        max_rss_kib: f[3] as u64,
    })
}

/// `rows_in` of the child's "Pipeline stopped." log line (every row the source produced).
fn log_rows_in(work: &Path, phase: &str) -> Option<u64> {
    let text = std::fs::read_to_string(work.join(format!("{phase}.log"))).ok()?;
    let plain = strip_ansi(&text);
    let line = plain
        .lines()
        .rev()
        .find(|l| l.contains("Pipeline stopped."))?;
    let at = line.find("rows_in=")? + "rows_in=".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Removes terminal colour sequences (`ESC [ … m`) from a log.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// CPU clock ticks (user + system) used so far by `pid`, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// For an unbounded run into the discarding sink (which reports no progress): waits until the
/// cdcflow process has been nearly idle for 1.5 s and returns the time from `start` to its last
/// busy 50 ms slice (≥ 2 ticks), i.e. when it finished the backlog.
async fn wait_idle(
    child: &mut tokio::process::Child,
    start: Instant,
    work: &Path,
    phase: &str,
) -> anyhow::Result<f64> {
    let root = child.id().context("child already reaped")?;
    let mut pid = None;
    let mut last_ticks = 0u64;
    let mut last_busy: Option<Instant> = None;
    loop {
        if let Some(s) = child.try_wait()? {
            bail!(
                "cdcflow ({phase}) exited early with {s}; log:\n{}",
                log_tail(work, phase)
            );
        }
        if pid.is_none() {
            pid = find_descendant(root, "cdcflow");
        }
        if let Some(ticks) = pid.and_then(cpu_ticks) {
            if ticks >= last_ticks + 2 {
                last_busy = Some(Instant::now());
            }
            last_ticks = ticks;
        }
        if let Some(b) = last_busy
            && b.elapsed() >= Duration::from_millis(1500)
        {
            return Ok(b.duration_since(start).as_secs_f64());
        }
        if start.elapsed() > PHASE_TIMEOUT {
            bail!("cdcflow ({phase}) did not go idle within {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One integer from a `SELECT COUNT(*) …` in the emulator.
fn emu_count(emu: &Emulator, db: &str, sql: &str) -> anyhow::Result<u64> {
    match emu
        .execute_sql(db, sql)
        .map_err(|e| anyhow::anyhow!("{e}"))?
    {
        SqlOutput::Rows { rows, .. } => match rows.first().and_then(|r| r.first()) {
            Some(Value::Int(v)) => Ok(u64::try_from(*v)?),
            other => bail!("unexpected count value {other:?}"),
        },
        SqlOutput::Ok => bail!("no result set for `{sql}`"),
    }
}

/// The CDC workload: N inserts (copied from bulk.orders2 in chunks), then every fifth row updated.
async fn write_changes(opts: mysql_async::Opts, n: u64) -> anyhow::Result<f64> {
    let t = Instant::now();
    let mut conn = mysql_async::Conn::new(opts).await?;
    for lo in (1..=n).step_by(LOAD_CHUNK as usize) {
        let hi = (lo + LOAD_CHUNK - 1).min(n);
        conn.query_drop(format!(
            "INSERT INTO live.orders2 SELECT * FROM bulk.orders2 WHERE id BETWEEN {lo} AND {hi}"
        ))
        .await?;
    }
    for lo in (1..=n).step_by(LOAD_CHUNK as usize) {
        let hi = (lo + LOAD_CHUNK - 1).min(n);
        conn.query_drop(format!(
            "UPDATE live.orders2 SET score = -1, qty = qty + 100 WHERE id BETWEEN {lo} AND {hi} AND id % {UPDATE_EVERY} = 0"
        ))
        .await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Polls the emulator until `db.orders2` has `n` rows of which `updates` carry the update; the
/// expensive counts run only after a new stream load arrived, so polling barely slows the sink.
async fn wait_changes(
    emu: &Emulator,
    db: &str,
    n: u64,
    updates: u64,
    child: &mut tokio::process::Child,
    work: &Path,
    phase: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + PHASE_TIMEOUT;
    let mut seen_loads = usize::MAX;
    loop {
        if let Some(s) = child.try_wait()? {
            bail!(
                "cdcflow exited early with {s}; log:\n{}",
                log_tail(work, phase)
            );
        }
        let loads = emu.counters().be_stream_loads;
        if loads != seen_loads {
            seen_loads = loads;
            let rows = emu_count(emu, db, "SELECT COUNT(*) FROM orders2").unwrap_or(0);
            if rows == n {
                let upd = emu_count(emu, db, "SELECT COUNT(*) FROM orders2 WHERE score < 0")?;
                if upd == updates {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            bail!("changes did not all arrive within {PHASE_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// This process's peak RSS (VmHWM) in KiB.
fn self_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The results as a Markdown table.
fn render(lines: &[Line], n: u64) -> String {
    let mut s = format!(
        "\ncdcflow bench, {n} rows, {} CPUs\n\n| path | rows | s | rows/s | MB/s | ratio to raw limit | CPU s / M rows | peak RSS MiB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        std::thread::available_parallelism()
            .map(|p| p.get())
            .unwrap_or(0)
    );
    for l in lines {
        let _ = writeln!(
            s,
            "| {} | {} | {:.2} | {:.0} | {} | {} | {} | {} |",
            l.path,
            l.rows,
            l.secs,
            l.rows_s(),
            if l.bytes > 0 {
                format!("{:.1}", l.mb_s())
            } else {
                "-".into()
            },
            l.ratio.map(|r| format!("{r:.2}")).unwrap_or("-".into()),
            l.cpu_s
                .map(|c| format!("{:.2}", c * 1e6 / l.rows.max(1) as f64))
                .unwrap_or("-".into()),
            l.rss_kib
                .map(|k| format!("{:.0}", k as f64 / 1024.0))
                .unwrap_or("-".into()),
        );
    }
    s
}
