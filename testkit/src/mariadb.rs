//! A throwaway MariaDB server for tests and scripts: its own datadir, port, socket and binlog.
//!
//! ```text
//!  MariaDb::start() ─▶ [install packages if mariadbd is missing]
//!                   ─▶ mariadb-install-db into $TMP/cdcflow-mariadb-<pid>-<n>/data
//!                   ─▶ mariadbd --no-defaults --log-bin --binlog-format=ROW
//!                      --binlog-row-metadata=FULL --binlog-row-image=FULL ... (spawner thread)
//!                   ─▶ poll until a TCP connection succeeds
//!  restart()        ─▶ SIGTERM + wait (clean shutdown) ─▶ mariadbd again, same port and datadir
//!  Drop             ─▶ SIGKILL + wait, remove the directory
//! ```
//!
//! Invariants that keep a test run from leaking servers:
//! - Every `mariadbd` is spawned from one dedicated thread that never ends, with
//!   `PR_SET_PDEATHSIG = SIGKILL`: when the test process dies (even by SIGKILL), the kernel kills
//!   the server. (The signal follows the *thread* that forked, hence the dedicated thread.)
//! - Each directory is named after the owning process id; [`MariaDb::start`] removes directories
//!   whose owner is gone (the shared instance's directory is never dropped, so this is how it goes).
//! - Root has an empty password over TCP (`127.0.0.1`); tests create other users as they need.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

/// Prefix of every server directory under the system temp dir; used to find stale ones.
const DIR_PREFIX: &str = "cdcflow-mariadb-";
/// How long a fresh server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of the harness; each says which step failed and where to look.
#[derive(Debug, thiserror::Error)]
pub enum MariaDbError {
    /// A program could not be run or failed.
    #[error("running {program}: {message}")]
    Command {
        /// The program (`apt-get`, `mariadb-install-db`, `mariadbd`).
        program: String,
        /// What happened, with the tail of its output.
        message: String,
    },
    /// File-system work on the server directory failed.
    #[error("server directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The server did not accept connections in time; `log` is the tail of its error log.
    #[error("mariadbd on port {port} did not become ready: {log}")]
    NotReady {
        /// The port it was started on.
        port: u16,
        /// Tail of the server's error log.
        log: String,
    },
    /// A statement sent through [`MariaDb::exec`] failed.
    #[error("executing `{sql}`: {source}")]
    Sql {
        /// The statement (truncated).
        sql: String,
        /// The driver's error.
        source: mysql_async::Error,
    },
}

/// Extra settings for [`MariaDb::start_with`].
#[derive(Debug, Clone)]
pub struct MariaDbOptions {
    /// Extra `mariadbd` arguments, appended after the defaults (so they override them), e.g.
    /// `--binlog-format=STATEMENT` for negative tests.
    pub extra_args: Vec<String>,
    /// `--server-id` of the server.
    pub server_id: u32,
}

impl Default for MariaDbOptions {
    fn default() -> Self {
        MariaDbOptions {
            extra_args: Vec::new(),
            server_id: 1,
        }
    }
}

impl MariaDbOptions {
    /// Adds one extra server argument (builder style).
    pub fn with_arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }
}

/// A running throwaway MariaDB server; killed and its directory removed on drop.
#[derive(Debug)]
pub struct MariaDb {
    dir: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
    /// The options it was started with (a restart uses them again).
    options: MariaDbOptions,
}

impl MariaDb {
    /// Starts a server with the default settings (ROW binlog, FULL metadata and image).
    ///
    /// # Errors
    /// When the packages cannot be installed, the datadir cannot be initialised or the server does
    /// not come up (the error carries the tail of its log).
    pub async fn start() -> Result<MariaDb, MariaDbError> {
        Self::start_with(MariaDbOptions::default()).await
    }

    /// Starts a server with extra arguments (e.g. a different binlog format).
    ///
    /// # Errors
    /// As [`MariaDb::start`].
    pub async fn start_with(opts: MariaDbOptions) -> Result<MariaDb, MariaDbError> {
        tokio::task::spawn_blocking(move || Self::start_blocking(&opts))
            .await
            .map_err(|e| MariaDbError::Command {
                program: "mariadbd".into(),
                message: e.to_string(),
            })?
    }

    /// The process-wide shared server (started on first use, dies with the test process).
    ///
    /// # Errors
    /// As [`MariaDb::start`]; a failed start is retried by the next caller.
    pub async fn shared() -> Result<&'static MariaDb, MariaDbError> {
        static SHARED: tokio::sync::OnceCell<MariaDb> = tokio::sync::OnceCell::const_new();
        SHARED.get_or_try_init(Self::start).await
    }

    /// TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own directory (datadir, binlogs, socket, error log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Connection URL for root (empty password) over TCP.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// mysql_async options for root over TCP (never switching to the socket, so grants for
    /// `'user'@'127.0.0.1'` apply as they would for a remote client).
    pub fn opts(&self) -> mysql_async::Opts {
        self.opts_for("root", "").into()
    }

    /// mysql_async options builder for another user over TCP.
    pub fn opts_for(&self, user: &str, password: &str) -> mysql_async::OptsBuilder {
        mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some(user))
            .pass(if password.is_empty() {
                None
            } else {
                Some(password)
            })
            .prefer_socket(false)
    }

    /// Opens a new root connection.
    ///
    /// # Errors
    /// When the server refuses the connection.
    pub async fn conn(&self) -> Result<mysql_async::Conn, MariaDbError> {
        mysql_async::Conn::new(self.opts())
            .await
            .map_err(|source| MariaDbError::Sql {
                sql: "<connect>".into(),
                source,
            })
    }

    /// Runs SQL as root on a fresh connection (several `;`-separated statements are allowed).
    ///
    /// # Errors
    /// The first failing statement, with its text.
    pub async fn exec(&self, sql: &str) -> Result<(), MariaDbError> {
        let mut conn = self.conn().await?;
        let res = conn.query_drop(sql).await;
        let _ = conn.disconnect().await;
        res.map_err(|source| MariaDbError::Sql {
            sql: truncate(sql),
            source,
        })
    }

    /// Runs a query as root and returns all rows.
    ///
    /// # Errors
    /// When the query fails.
    pub async fn query<T: mysql_async::prelude::FromRow + Send + 'static>(
        &self,
        sql: &str,
    ) -> Result<Vec<T>, MariaDbError> {
        let mut conn = self.conn().await?;
        let res = conn.query(sql).await;
        let _ = conn.disconnect().await;
        res.map_err(|source| MariaDbError::Sql {
            sql: truncate(sql),
            source,
        })
    }

    fn start_blocking(opts: &MariaDbOptions) -> Result<MariaDb, MariaDbError> {
        ensure_installed()?;
        remove_stale_dirs();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["data", "binlog", "tmp"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(|source| MariaDbError::Io { path: p, source })?;
        }
        // From here on, a failure removes the directory through Drop.
        let mut db = MariaDb {
            dir,
            port: 0,
            child: Mutex::new(None),
            options: opts.clone(),
        };
        if let Err(first) = db.install_db() {
            // A concurrent bootstrap elsewhere on the machine can disturb the first attempt.
            tracing::warn!(error = %first, "mariadb-install-db failed; retrying once.");
            let data = db.dir.join("data");
            let _ = std::fs::remove_dir_all(&data);
            std::fs::create_dir_all(&data)
                .map_err(|source| MariaDbError::Io { path: data, source })?;
            db.install_db()?;
        }
        let mut last = None;
        // A free port can be taken between probing and binding: retry with another one.
        for _ in 0..3 {
            match db.spawn_server(opts) {
                Ok(()) => return Ok(db),
                Err(e) => {
                    db.kill();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| MariaDbError::NotReady {
            port: 0,
            log: String::new(),
        }))
    }

    fn install_db(&self) -> Result<(), MariaDbError> {
        let out = Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.dir.join("data").display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args([
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg("--skip-name-resolve")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| MariaDbError::Command {
                program: "mariadb-install-db".into(),
                message: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(MariaDbError::Command {
                program: "mariadb-install-db".into(),
                message: format!(
                    "{}: {}",
                    out.status,
                    tail(&String::from_utf8_lossy(&out.stderr))
                ),
            });
        }
        Ok(())
    }

    fn spawn_server(&mut self, opts: &MariaDbOptions) -> Result<(), MariaDbError> {
        let port = free_port().map_err(|source| MariaDbError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let child = self.spawn_on(port, opts)?;
        *self.child.get_mut().unwrap_or_else(|e| e.into_inner()) = Some(child);
        self.port = port;
        self.wait_ready()
    }

    /// Stops the server cleanly (SIGTERM, then waits for it to exit; SIGKILL after 60 s) and
    /// starts it again on the same port and datadir, returning once it accepts connections.
    /// Clients see their connections closed, as on a real server restart.
    ///
    /// # Errors
    /// When the server does not stop or does not come back (with the tail of its log).
    pub async fn restart(&self) -> Result<(), MariaDbError> {
        self.stop().await?;
        self.start_again().await
    }

    /// Stops the server with SIGTERM and waits until it has exited (SIGKILL after 60 s). The
    /// directory is kept for [`MariaDb::start_again`].
    ///
    /// # Errors
    /// When the signal cannot be sent.
    pub async fn stop(&self) -> Result<(), MariaDbError> {
        let pid = {
            let guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
            guard.as_ref().map(Child::id)
        };
        let Some(pid) = pid else { return Ok(()) };
        sigterm(pid).map_err(|e| MariaDbError::Command {
            program: "kill -TERM mariadbd".into(),
            message: e.to_string(),
        })?;
        let deadline = Instant::now() + START_TIMEOUT;
        while self.try_wait().is_none() {
            if Instant::now() > deadline {
                tracing::warn!(port = self.port, "mariadbd ignored SIGTERM; killing it.");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
        tracing::info!(port = self.port, "Throwaway MariaDB stopped.");
        Ok(())
    }

    /// Starts a stopped server again on the same port and datadir and waits until it accepts
    /// connections.
    ///
    /// # Errors
    /// When it cannot be spawned or does not become ready (with the tail of its log).
    pub async fn start_again(&self) -> Result<(), MariaDbError> {
        let child = self.spawn_on(self.port, &self.options)?;
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(MariaDbError::NotReady {
                    port: self.port,
                    log: format!("exited with {status}: {}", self.error_log_tail()),
                });
            }
            if let Ok(c) = mysql_async::Conn::new(self.opts()).await {
                let _ = c.disconnect().await;
                tracing::info!(port = self.port, "Throwaway MariaDB is ready again.");
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(MariaDbError::NotReady {
                    port: self.port,
                    log: self.error_log_tail(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Spawns `mariadbd` on `port` (tied to this process, see the module docs).
    fn spawn_on(&self, port: u16, opts: &MariaDbOptions) -> Result<Child, MariaDbError> {
        let d = &self.dir;
        let err_log = d.join("err.log");
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", d.join("mysqld.pid").display()))
            .arg(format!("--log-error={}", err_log.display()))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!(
                "--log-bin={}",
                d.join("binlog").join("mysql-bin").display()
            ))
            .arg(format!("--port={port}"))
            .arg(format!("--server-id={}", opts.server_id))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--binlog-format=ROW",
                "--binlog-row-metadata=FULL",
                "--binlog-row-image=FULL",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--innodb-flush-log-at-trx-commit=2",
                "--sync-binlog=0",
                "--max-connections=500",
                "--innodb-buffer-pool-size=256M",
            ])
            .args(&opts.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        spawn_tied_to_process(cmd).map_err(|e| MariaDbError::Command {
            program: "mariadbd".into(),
            message: e.to_string(),
        })
    }

    fn wait_ready(&self) -> Result<(), MariaDbError> {
        let deadline = Instant::now() + START_TIMEOUT;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MariaDbError::Command {
                program: "tokio".into(),
                message: e.to_string(),
            })?;
        loop {
            if let Some(status) = self.try_wait() {
                return Err(MariaDbError::NotReady {
                    port: self.port,
                    log: format!("exited with {status}: {}", self.error_log_tail()),
                });
            }
            let ok = rt.block_on(async {
                match mysql_async::Conn::new(self.opts()).await {
                    Ok(c) => {
                        let _ = c.disconnect().await;
                        true
                    }
                    Err(_) => false,
                }
            });
            if ok {
                tracing::info!(port = self.port, dir = %self.dir.display(), "Throwaway MariaDB is ready.");
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(MariaDbError::NotReady {
                    port: self.port,
                    log: self.error_log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn try_wait(&self) -> Option<std::process::ExitStatus> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    fn error_log_tail(&self) -> String {
        tail(&std::fs::read_to_string(self.dir.join("err.log")).unwrap_or_default())
    }

    fn kill(&self) {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = guard.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Installs Debian's MariaDB packages when `mariadbd` is not on the PATH (retried once: a
/// concurrent apt run on the same machine can make the first attempt fail).
fn ensure_installed() -> Result<(), MariaDbError> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if which("mariadbd") && which("mariadb-install-db") {
        return Ok(());
    }
    tracing::warn!(
        "mariadbd not found; installing mariadb-server and mariadb-client with apt-get."
    );
    let mut last = String::new();
    for _attempt in 0..2 {
        let update = run_quiet(Command::new("apt-get").arg("update"));
        let install = run_quiet(
            Command::new("apt-get")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .args(["install", "-y", "mariadb-server", "mariadb-client"]),
        );
        match (update, install) {
            (_, Ok(())) if which("mariadbd") => return Ok(()),
            (_, Err(e)) => last = e,
            (_, Ok(())) => last = "installed, but mariadbd is still not on the PATH".into(),
        }
    }
    Err(MariaDbError::Command {
        program: "apt-get".into(),
        message: last,
    })
}

fn run_quiet(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

fn which(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .any(|p| p.join(program).is_file())
}

/// Removes server directories whose owning process no longer exists (its servers died with it).
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            tracing::debug!(dir = %e.path().display(), "Removing stale MariaDB directory.");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from the dedicated spawner thread with `PR_SET_PDEATHSIG = SIGKILL`, so the child
/// dies when this process dies.
fn spawn_tied_to_process(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("cdcflow-mariadb-spawner".into())
            .spawn(move || {
                // Never returns while the process lives: the death signal is tied to this thread.
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(spawn_with_deathsig(&mut cmd));
                }
                loop {
                    std::thread::park();
                }
            })
            .expect("spawning the MariaDB spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("spawner thread is gone"))?
}

/// Sends SIGTERM (a clean shutdown request) to `pid`.
#[expect(unsafe_code, reason = "kill(2) through libc")]
fn sigterm(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(io::Error::other)?;
    // SAFETY: kill has no memory-safety preconditions; `pid` is our own child.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[expect(
    unsafe_code,
    reason = "pre_exec runs prctl(PR_SET_PDEATHSIG) in the forked child"
)]
fn spawn_with_deathsig(cmd: &mut Command) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() as u32 != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn truncate(sql: &str) -> String {
    match sql.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &sql[..i]),
        None => sql.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn starts_with_row_binlog_and_full_metadata() {
        let db = MariaDb::start().await.expect("start MariaDB");
        let rows: Vec<(String, String)> = db
            .query(
                "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES \
                 WHERE VARIABLE_NAME IN ('LOG_BIN','BINLOG_FORMAT','BINLOG_ROW_METADATA','BINLOG_ROW_IMAGE') \
                 ORDER BY VARIABLE_NAME",
            )
            .await
            .expect("query variables");
        let got: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("BINLOG_FORMAT", "ROW"),
                ("BINLOG_ROW_IMAGE", "FULL"),
                ("BINLOG_ROW_METADATA", "FULL"),
                ("LOG_BIN", "ON")
            ],
            "the harness must start a server the CDC source accepts"
        );
        let dir = db.dir().to_path_buf();
        drop(db);
        assert!(!dir.exists(), "drop must remove the server directory");
    }

    #[tokio::test]
    async fn extra_args_override_defaults() {
        let db =
            MariaDb::start_with(MariaDbOptions::default().with_arg("--binlog-format=STATEMENT"))
                .await
                .expect("start MariaDB");
        let fmt: Vec<String> = db.query("SELECT @@binlog_format").await.expect("query");
        assert_eq!(fmt, vec!["STATEMENT".to_string()]);
    }

    #[tokio::test]
    async fn restart_keeps_port_and_data_and_closes_connections() {
        let db = MariaDb::start().await.expect("start MariaDB");
        db.exec(
            "CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY); INSERT INTO r.t VALUES (1)",
        )
        .await
        .expect("setup");
        let mut held = db.conn().await.expect("connect");
        let port = db.port();
        db.restart().await.expect("restart");
        assert_eq!(db.port(), port, "a restart keeps the port");
        assert!(
            held.query_drop("SELECT 1").await.is_err(),
            "connections from before the restart are closed"
        );
        let ids: Vec<i32> = db.query("SELECT id FROM r.t").await.expect("query");
        assert_eq!(ids, vec![1], "a restart keeps the datadir");
    }

    #[tokio::test]
    async fn shared_instance_is_reused() {
        let a = MariaDb::shared().await.expect("shared");
        let b = MariaDb::shared().await.expect("shared");
        assert_eq!(a.port(), b.port());
        a.exec("CREATE DATABASE IF NOT EXISTS harness_t; CREATE TABLE IF NOT EXISTS harness_t.x (id INT)")
            .await
            .expect("exec multi-statement");
    }
}
