//! Shared helpers: run a pipeline YAML in-process against a throwaway MariaDB and an emulator,
//! and wait until the sink equals the source.

use std::time::{Duration, Instant};

use cdcflow::plan;
use cdcflow::run::{self, RunFlags};
use cdcflow_engine::pipeline::RunSummary;
use cdcflow_testkit::compare::{Comparison, compare_table};
use cdcflow_testkit::emulator::Emulator;
use cdcflow_testkit::mariadb::MariaDb;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A pipeline running in a task of the test's runtime.
pub struct Running {
    pub task: JoinHandle<cdcflow_engine::Result<RunSummary>>,
    pub shutdown: CancellationToken,
    pub _checkpoints: tempfile::TempDir,
}

impl Running {
    /// Requests a graceful stop and returns the run summary.
    pub async fn stop(self) -> RunSummary {
        self.shutdown.cancel();
        self.task
            .await
            .expect("pipeline task panicked")
            .expect("pipeline failed")
    }
}

/// Validates `yaml` (with `${VAR}` resolved from `env`) and starts it.
pub fn start_pipeline(yaml: &str, env: &[(&str, String)]) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let lookup = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone());
    let def = cdcflow_engine::config::load_str_with_env(yaml, "test.yaml", &lookup)
        .unwrap_or_else(|d| panic!("pipeline does not load:\n{d}"));
    let pipeline = plan::validate_def(def).unwrap_or_else(|d| panic!("pipeline is invalid:\n{d}"));
    let checkpoints = tempfile::tempdir().expect("temp dir");
    let flags = RunFlags {
        from_scratch: true,
        checkpoint_dir: Some(checkpoints.path().to_path_buf()),
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { run::run(&pipeline, &flags, shutdown).await }
    });
    Running {
        task,
        shutdown,
        _checkpoints: checkpoints,
    }
}

/// Waits until every `(source db, table, sink db, sink table, key)` matches, or panics with the
/// differences after `timeout`.
pub async fn wait_equal(
    db: &MariaDb,
    emulator: &Emulator,
    running: &Running,
    tables: &[(&str, &str, &str, &str, &[&str])],
    timeout: Duration,
) {
    let deadline = Instant::now() + timeout;
    loop {
        assert!(
            !running.task.is_finished(),
            "the pipeline stopped before the tables matched"
        );
        let mut diff: Option<(String, Comparison)> = None;
        for (sdb, st, ddb, dt, key) in tables {
            let c = compare_table(db, sdb, st, emulator, ddb, dt, key)
                .await
                .expect("compare");
            if !c.is_equal() {
                diff = Some((format!("{sdb}.{st} -> {ddb}.{dt}"), c));
                break;
            }
        }
        match diff {
            None => return,
            Some((name, c)) if Instant::now() > deadline => {
                panic!("{name} differs after {timeout:?}: {c}")
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
