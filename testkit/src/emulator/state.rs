//! Shared mutable state of one emulated cluster: catalog, transactions and their labels,
//! injected faults, error logs and the request log. Every lock is short and never held across
//! an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::model::{Catalog, PendingWrite};
use super::{EmulatorConfig, Fault, FaultPoint, Mode, RequestRecord};

/// Transaction status as the FE reports it (`get_load_state`, `SHOW TRANSACTION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnState {
    /// Begun, data still arriving.
    Prepare,
    /// Doris 2PC: written, invisible until commit.
    Precommitted,
    /// StarRocks transaction API: prepared, invisible until commit.
    Prepared,
    /// Committed, publish pending (`Publish Timeout`).
    Committed,
    /// Committed and visible.
    Visible,
    /// Rolled back; the label is free again.
    Aborted,
}

impl TxnState {
    /// The upper-case status name used on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            TxnState::Prepare => "PREPARE",
            TxnState::Precommitted => "PRECOMMITTED",
            TxnState::Prepared => "PREPARED",
            TxnState::Committed => "COMMITTED",
            TxnState::Visible => "VISIBLE",
            TxnState::Aborted => "ABORTED",
        }
    }

    /// `ExistingJobStatus` for a `Label Already Exists` reply.
    pub fn existing_job_status(&self) -> &'static str {
        match self {
            TxnState::Prepare | TxnState::Prepared => "RUNNING",
            TxnState::Precommitted => "PRECOMMITTED",
            TxnState::Committed | TxnState::Visible => "FINISHED",
            TxnState::Aborted => "ABORTED",
        }
    }

    /// Whether the transaction is final (committed or aborted).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            TxnState::Visible | TxnState::Committed | TxnState::Aborted
        )
    }
}

/// Row accounting accumulated over the loads of a transaction.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadStats {
    /// NumberTotalRows.
    pub total: u64,
    /// NumberLoadedRows.
    pub loaded: u64,
    /// NumberFilteredRows.
    pub filtered: u64,
    /// NumberUnselectedRows.
    pub unselected: u64,
    /// LoadBytes.
    pub bytes: u64,
}

/// One load transaction.
#[derive(Clone, Debug)]
pub struct Txn {
    /// Transaction id (positive).
    pub id: i64,
    /// Database.
    pub db: String,
    /// Table.
    pub table: String,
    /// Label.
    pub label: String,
    /// Current state.
    pub state: TxnState,
    /// Rows to apply at commit.
    pub writes: Vec<PendingWrite>,
    /// When the state last changed.
    pub since: Instant,
    /// Last request touching this transaction (idle timeout).
    pub last_activity: Instant,
    /// BE index that owns it (StarRocks transaction API stickiness).
    pub be: usize,
    /// A request is currently streaming into it (`TXN_IN_PROCESSING`).
    pub busy: bool,
    /// At least one `load` succeeded (StarRocks transaction API).
    pub has_data: bool,
    /// PREPARE timeout.
    pub timeout: Duration,
    /// PREPARED timeout (StarRocks `prepared_timeout`).
    pub prepared_timeout: Duration,
    /// Idle timeout (StarRocks `idle_transaction_timeout`).
    pub idle_timeout: Option<Duration>,
    /// Accumulated row accounting.
    pub stats: LoadStats,
    /// Max filter ratio of the loads (StarRocks transaction API checks it at prepare).
    pub max_filter_ratio: f64,
    /// Why it was aborted, if it was.
    pub abort_reason: String,
    /// StarRocks transaction API: the (decompressed) bodies of all `load` calls, concatenated
    /// as the BE's pipe concatenates them; parsed at prepare with the first load's parameters.
    pub pending_data: Vec<u8>,
    /// Load parameters of the first `load` call.
    pub pending_params: Option<super::load::LoadParams>,
}

/// The mutable state behind one emulator.
#[derive(Debug)]
pub struct State {
    /// Databases and tables.
    pub catalog: Catalog,
    /// Transactions by id.
    pub txns: BTreeMap<i64, Txn>,
    /// (db, label) → transaction ids holding that label, oldest first.
    pub labels: HashMap<(String, String), Vec<i64>>,
    /// Next transaction id.
    pub next_txn: i64,
    /// Round-robin cursor over BEs.
    pub next_be: usize,
    /// StarRocks: label → BE chosen at `begin` by the FE.
    pub label_be: HashMap<(String, String), usize>,
    /// Pending faults.
    pub faults: Vec<(FaultPoint, Fault, usize)>,
    /// Error logs by file name (served at `/api/_load_error_log?file=`).
    pub error_logs: HashMap<String, String>,
    /// Every request seen.
    pub requests: Vec<RequestRecord>,
    /// When expiry last ran (it runs at most once per millisecond).
    pub last_sweep: Option<Instant>,
}

impl State {
    /// Fresh state.
    pub fn new() -> Self {
        State {
            catalog: Catalog::default(),
            txns: BTreeMap::new(),
            labels: HashMap::new(),
            next_txn: 1000,
            next_be: 0,
            label_be: HashMap::new(),
            faults: Vec::new(),
            error_logs: HashMap::new(),
            requests: Vec::new(),
            last_sweep: None,
        }
    }

    /// Takes one occurrence of a fault armed for `point`, if any.
    pub fn take_fault(&mut self, point: FaultPoint) -> Option<Fault> {
        let i = self
            .faults
            .iter()
            .position(|(p, _, n)| *p == point && *n > 0)?;
        self.faults[i].2 -= 1;
        let f = self.faults[i].1.clone();
        if self.faults[i].2 == 0 {
            self.faults.remove(i);
        }
        Some(f)
    }

    /// Expires timed-out transactions and forgets labels past their retention.
    pub fn sweep(&mut self, cfg: &EmulatorConfig) {
        let now = Instant::now();
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(1))
        {
            return;
        }
        self.last_sweep = Some(now);
        for t in self.txns.values_mut() {
            let age = now.duration_since(t.since);
            let expired = match t.state {
                TxnState::Precommitted => age > cfg.precommit_timeout,
                TxnState::Prepared => age > t.prepared_timeout,
                TxnState::Prepare if !t.busy => {
                    age > t.timeout
                        || t.idle_timeout
                            .is_some_and(|i| now.duration_since(t.last_activity) > i)
                }
                _ => false,
            };
            if expired {
                t.state = TxnState::Aborted;
                t.since = now;
                t.writes.clear();
                t.abort_reason = "timeout".into();
            }
        }
        let keep = cfg.label_keep;
        let forgotten: Vec<i64> = self
            .txns
            .values()
            .filter(|t| t.state.is_final() && now.duration_since(t.since) > keep)
            .map(|t| t.id)
            .collect();
        for id in forgotten {
            if let Some(t) = self.txns.remove(&id)
                && let Some(ids) = self.labels.get_mut(&(t.db.clone(), t.label.clone()))
            {
                ids.retain(|x| *x != id);
            }
        }
        self.labels.retain(|_, v| !v.is_empty());
    }

    /// The transaction currently holding a label (not aborted), if any.
    pub fn holder(&self, db: &str, label: &str) -> Option<&Txn> {
        self.labels
            .get(&(db.to_string(), label.to_string()))?
            .iter()
            .filter_map(|id| self.txns.get(id))
            .find(|t| t.state != TxnState::Aborted)
    }

    /// The most relevant transaction for a label: the holder, else the latest aborted one.
    pub fn latest(&self, db: &str, label: &str) -> Option<&Txn> {
        self.holder(db, label).or_else(|| {
            self.labels
                .get(&(db.to_string(), label.to_string()))?
                .iter()
                .rev()
                .find_map(|id| self.txns.get(id))
        })
    }

    /// Begins a transaction for a label (the caller checked that the label is free).
    pub fn begin(
        &mut self,
        db: &str,
        table: &str,
        label: &str,
        be: usize,
        timeout: Duration,
    ) -> i64 {
        let id = self.next_txn;
        self.next_txn += 1;
        let now = Instant::now();
        self.txns.insert(
            id,
            Txn {
                id,
                db: db.to_string(),
                table: table.to_string(),
                label: label.to_string(),
                state: TxnState::Prepare,
                writes: Vec::new(),
                since: now,
                last_activity: now,
                be,
                busy: false,
                has_data: false,
                timeout,
                prepared_timeout: Duration::from_secs(86_400),
                idle_timeout: None,
                stats: LoadStats::default(),
                max_filter_ratio: 0.0,
                abort_reason: String::new(),
                pending_data: Vec::new(),
                pending_params: None,
            },
        );
        self.labels
            .entry((db.to_string(), label.to_string()))
            .or_default()
            .push(id);
        id
    }

    /// Moves a transaction to a new state.
    pub fn set_state(&mut self, id: i64, state: TxnState, reason: &str) {
        if let Some(t) = self.txns.get_mut(&id) {
            t.state = state;
            t.since = Instant::now();
            t.busy = false;
            if state == TxnState::Aborted {
                t.writes.clear();
                t.pending_data.clear();
                t.abort_reason = reason.to_string();
            }
        }
    }

    /// Applies a transaction's writes to the catalog and marks it committed (`visible` or not).
    pub fn commit(&mut self, id: i64, visible: bool) {
        let writes = match self.txns.get_mut(&id) {
            Some(t) => std::mem::take(&mut t.writes),
            None => return,
        };
        for w in &writes {
            if let Some(t) = self.catalog.table_mut(&w.db, &w.table) {
                t.apply(w);
            }
        }
        self.set_state(
            id,
            if visible {
                TxnState::Visible
            } else {
                TxnState::Committed
            },
            "",
        );
    }

    /// Rows of `SHOW TRANSACTION` for a database.
    pub fn transaction_rows(&self, db: &str, mode: Mode) -> Vec<(i64, String, String)> {
        self.txns
            .values()
            .filter(|t| t.db == db)
            .map(|t| {
                let s = match (mode, t.state) {
                    (Mode::StarRocks, TxnState::Precommitted) => "PREPARED",
                    (_, s) => s.as_str(),
                };
                (t.id, t.label.clone(), s.to_string())
            })
            .collect()
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}
