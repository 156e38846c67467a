//! Stream Load labels: `<prefix>_<table>_<epoch>_<n>`, valid for both Doris
//! (`^[-_A-Za-z0-9:]{1,128}$`) and StarRocks (`^[-_A-Za-z0-9]{1,128}$`).
//!
//! A label is the idempotency key of one load, so it must be the same on every retry of that load
//! and different for every other load that may still be remembered by the server (12 h Doris,
//! 3 days StarRocks):
//!
//! - `epoch` is the checkpoint id the load will be committed under (exactly-once), or a run id
//!   (`r` + start time in base 36) for at-least-once loads, so a restarted pipeline that re-batches
//!   replayed rows never meets a label of its previous run and mistakes it for "already loaded".
//! - `n` counts the table's loads within the epoch.
//! - characters outside `[-_A-Za-z0-9]` are replaced by `_`; when that (or truncation to fit 128
//!   characters) changed the table part, a 16-hex-digit hash of the exact `db.table` is appended so
//!   two different tables can never share labels.

/// Longest label both systems accept (default `label_regex_length`).
pub const MAX_LABEL_LEN: usize = 128;

/// Builds labels for one table.
#[derive(Debug, Clone)]
pub struct LabelMaker {
    /// `<prefix>_<table part>`; everything before the epoch.
    stem: String,
}

impl LabelMaker {
    /// A label maker for `db.table` under `prefix` (an empty prefix becomes `cdcflow`).
    pub fn new(prefix: &str, db: &str, table: &str) -> Self {
        let prefix = if prefix.is_empty() {
            "cdcflow".to_string()
        } else {
            sanitize(prefix)
        };
        let clean = sanitize(table);
        // Room for `_<epoch>_<n>`: a checkpoint id / run id (≤ 14) and a counter (≤ 10) plus separators.
        let budget = MAX_LABEL_LEN.saturating_sub(prefix.len() + 1 + 28);
        let mut part = clean.clone();
        let changed = clean != table;
        if changed || part.len() > budget {
            let hash = format!("{:016x}", fnv1a(format!("{db}.{table}").as_bytes()));
            let keep = budget.saturating_sub(hash.len() + 1);
            part.truncate(keep);
            part = if part.is_empty() {
                hash
            } else {
                format!("{part}-{hash}")
            };
        }
        let mut stem = format!("{prefix}_{part}");
        stem.truncate(MAX_LABEL_LEN - 28);
        LabelMaker { stem }
    }

    /// The label of load `n` of `epoch`.
    pub fn label(&self, epoch: &str, n: u64) -> String {
        let mut l = format!("{}_{epoch}_{n}", self.stem);
        l.truncate(MAX_LABEL_LEN);
        l
    }

    /// Everything before the epoch, for scanning leftover transactions.
    pub fn stem(&self) -> &str {
        &self.stem
    }
}

/// A run id for at-least-once labels: `r` + the current time in ms, base 36.
pub fn run_epoch() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    format!("r{}", base36(ms))
}

/// Whether `label` is accepted by both Doris and StarRocks.
pub fn is_valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn base36(mut v: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if v == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while v > 0 {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// FNV-1a 64: stable across runs and platforms (std's hasher is randomly seeded).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_kept() {
        let m = LabelMaker::new("job", "app", "orders");
        assert_eq!(m.label("7", 3), "job_orders_7_3");
        assert!(is_valid_label(&m.label("7", 3)));
    }

    #[test]
    fn unsafe_names_are_sanitized_and_disambiguated() {
        let a = LabelMaker::new("p:x", "db", "a.b").label("1", 0);
        let b = LabelMaker::new("p:x", "db", "a_b").label("1", 0);
        assert!(is_valid_label(&a), "{a}");
        assert!(is_valid_label(&b), "{b}");
        assert_ne!(
            a, b,
            "tables differing only in unsafe characters must get distinct labels"
        );
        let u = LabelMaker::new("", "db", "订单").label("1", 0);
        assert!(is_valid_label(&u), "{u}");
        assert!(u.starts_with("cdcflow_"));
    }

    #[test]
    fn long_names_fit_128() {
        let long = "t".repeat(300);
        let l =
            LabelMaker::new(&"p".repeat(50), "db", &long).label("12345678901234", u32::MAX as u64);
        assert!(l.len() <= MAX_LABEL_LEN, "{} chars", l.len());
        assert!(is_valid_label(&l));
        let other =
            LabelMaker::new(&"p".repeat(50), "db", &"t".repeat(299)).label("12345678901234", 1);
        assert_ne!(l, other);
    }

    #[test]
    fn run_epochs_are_label_safe() {
        let e = run_epoch();
        assert!(e.starts_with('r'));
        assert!(is_valid_label(&LabelMaker::new("x", "d", "t").label(&e, 0)));
    }
}
