//! Typed binlog positions: file/position, MariaDB GTID positions and MySQL GTID sets, and the
//! resumable [`BinlogOffset`] stored in checkpoints as a [`SourceOffset`] JSON object.
//!
//! Ordering never compares file names as strings: `mysql-bin.000010` comes after
//! `mysql-bin.000009` because the numeric suffixes are compared (`mysql-bin.999999` rolls over to
//! `mysql-bin.1000000`, which a string comparison gets wrong).
//!
//! Offset JSON (keys chosen to match Flink CDC's MySQL offset where one exists):
//!
//! ```json
//! {"file": "mysql-bin.000003", "pos": 4711, "gtids": "0-1-100,1-2-5", "flavor": "mariadb"}
//! ```

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use cdcflow_engine::SourceOffset;
use serde::{Deserialize, Serialize};

/// A position in the binlog: file name and byte offset of an event boundary in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogPosition {
    /// Binlog file name (`mysql-bin.000003`).
    pub file: String,
    /// Byte offset in that file (4 = first event after the magic).
    pub pos: u64,
}

impl BinlogPosition {
    /// A position in `file` at `pos`.
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogPosition {
            file: file.into(),
            pos,
        }
    }

    /// The file's base name and numeric sequence (`mysql-bin`, 3); the sequence is `None` when
    /// the extension is not a number.
    pub fn file_seq(&self) -> (&str, Option<u64>) {
        match self.file.rsplit_once('.') {
            Some((base, ext)) if !ext.is_empty() && ext.bytes().all(|b| b.is_ascii_digit()) => {
                (base, ext.parse().ok())
            }
            _ => (&self.file, None),
        }
    }
}

impl Ord for BinlogPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        let (ab, an) = self.file_seq();
        let (bb, bn) = other.file_seq();
        ab.cmp(bb)
            .then_with(|| match (an, bn) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => self.file.cmp(&other.file),
            })
            .then(self.pos.cmp(&other.pos))
    }
}

impl PartialOrd for BinlogPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// A position text that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: {reason}")]
pub struct ParsePositionError {
    /// What was being parsed (`MariaDB GTID`, `MySQL GTID set`, `offset`).
    pub what: &'static str,
    /// The text.
    pub text: String,
    /// Why it is invalid.
    pub reason: String,
}

fn perr(what: &'static str, text: &str, reason: impl Into<String>) -> ParsePositionError {
    ParsePositionError {
        what,
        text: text.to_string(),
        reason: reason.into(),
    }
}

/// One MariaDB GTID: `domain-server-sequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MariaGtid {
    /// Replication domain.
    pub domain: u32,
    /// Server that wrote the transaction.
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl fmt::Display for MariaGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

impl FromStr for MariaGtid {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut it = s.trim().split('-');
        let mut next = |name: &str| {
            it.next()
                .ok_or_else(|| perr("MariaDB GTID", s, format!("missing {name}")))
                .and_then(|p| {
                    p.parse::<u64>()
                        .map_err(|e| perr("MariaDB GTID", s, e.to_string()))
                })
        };
        let domain = next("domain")?;
        let server = next("server id")?;
        let seq = next("sequence")?;
        if it.next().is_some() {
            return Err(perr("MariaDB GTID", s, "expected domain-server-sequence"));
        }
        Ok(MariaGtid {
            domain: u32::try_from(domain).map_err(|e| perr("MariaDB GTID", s, e.to_string()))?,
            server: u32::try_from(server).map_err(|e| perr("MariaDB GTID", s, e.to_string()))?,
            seq,
        })
    }
}

/// A MariaDB GTID position: the last GTID applied in each domain (`@@gtid_slave_pos` form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MariaGtidPos {
    domains: BTreeMap<u32, MariaGtid>,
}

impl MariaGtidPos {
    /// Records `gtid` as the latest of its domain.
    pub fn update(&mut self, gtid: MariaGtid) {
        self.domains.insert(gtid.domain, gtid);
    }

    /// The GTIDs, one per domain, in domain order.
    pub fn gtids(&self) -> impl Iterator<Item = &MariaGtid> {
        self.domains.values()
    }

    /// Whether no domain is known.
    pub fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// Whether every domain of `self` is at or beyond `other`'s (and `other` has no domain
    /// `self` lacks).
    pub fn covers(&self, other: &MariaGtidPos) -> bool {
        other
            .domains
            .values()
            .all(|g| self.domains.get(&g.domain).is_some_and(|s| s.seq >= g.seq))
    }
}

impl fmt::Display for MariaGtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.domains.values().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{g}")?;
        }
        Ok(())
    }
}

impl FromStr for MariaGtidPos {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut pos = MariaGtidPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let g: MariaGtid = part.parse()?;
            if pos.domains.contains_key(&g.domain) {
                return Err(perr(
                    "MariaDB GTID position",
                    s,
                    format!("domain {} twice", g.domain),
                ));
            }
            pos.update(g);
        }
        Ok(pos)
    }
}

/// A MySQL GTID set: per source UUID (optionally `uuid:tag`), sorted disjoint intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MySqlGtidSet {
    sids: BTreeMap<String, Vec<(u64, u64)>>,
}

impl MySqlGtidSet {
    /// Adds transaction `gno` of source `sid` (`uuid` or `uuid:tag`).
    pub fn add(&mut self, sid: &str, gno: u64) {
        let iv = self.sids.entry(sid.to_ascii_lowercase()).or_default();
        // Fast path: extends the last interval (the common, in-order case).
        if let Some(last) = iv.last_mut() {
            if last.1 + 1 == gno {
                last.1 = gno;
                return;
            }
            if gno >= last.0 && gno <= last.1 {
                return;
            }
        }
        iv.push((gno, gno));
        normalize(iv);
    }

    /// Whether the set has no transaction.
    pub fn is_empty(&self) -> bool {
        self.sids.is_empty()
    }

    /// Sources and their intervals (inclusive), for building a dump request.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[(u64, u64)])> {
        self.sids.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

fn normalize(iv: &mut Vec<(u64, u64)>) {
    iv.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(iv.len());
    for &(a, b) in iv.iter() {
        match out.last_mut() {
            Some(l) if a <= l.1.saturating_add(1) => l.1 = l.1.max(b),
            _ => out.push((a, b)),
        }
    }
    *iv = out;
}

impl fmt::Display for MySqlGtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (sid, iv)) in self.sids.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(sid)?;
            for (a, b) in iv {
                if a == b {
                    write!(f, ":{a}")?;
                } else {
                    write!(f, ":{a}-{b}")?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for MySqlGtidSet {
    type Err = ParsePositionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = MySqlGtidSet::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split(':');
            let uuid = it.next().unwrap_or_default().trim();
            if uuid.len() != 36 || uuid.bytes().filter(|&b| b == b'-').count() != 4 {
                return Err(perr("MySQL GTID set", s, format!("bad UUID {uuid:?}")));
            }
            let mut sid = uuid.to_ascii_lowercase();
            let mut any = false;
            for iv in it {
                let iv = iv.trim();
                if iv
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                {
                    // A tag (MySQL 8.4): applies to the intervals after it.
                    sid = format!("{}:{}", uuid.to_ascii_lowercase(), iv.to_ascii_lowercase());
                    continue;
                }
                let (a, b) = match iv.split_once('-') {
                    Some((a, b)) => (a, b),
                    None => (iv, iv),
                };
                let a: u64 = a
                    .parse()
                    .map_err(|_| perr("MySQL GTID set", s, format!("bad interval {iv:?}")))?;
                let b: u64 = b
                    .parse()
                    .map_err(|_| perr("MySQL GTID set", s, format!("bad interval {iv:?}")))?;
                if a == 0 || b < a {
                    return Err(perr("MySQL GTID set", s, format!("bad interval {iv:?}")));
                }
                let v = set.sids.entry(sid.clone()).or_default();
                v.push((a, b));
                normalize(v);
                any = true;
            }
            if !any {
                return Err(perr("MySQL GTID set", s, format!("no interval for {uuid}")));
            }
        }
        Ok(set)
    }
}

/// Which server family wrote the binlog (GTIDs differ completely between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// MySQL (and Percona, Aurora MySQL).
    Mysql,
    /// MariaDB.
    Mariadb,
}

impl Flavor {
    /// Detects the flavor from `SELECT VERSION()`.
    pub fn from_version(version: &str) -> Flavor {
        if version.to_ascii_lowercase().contains("mariadb") {
            Flavor::Mariadb
        } else {
            Flavor::Mysql
        }
    }
}

/// A GTID position of either flavor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GtidPos {
    /// MariaDB `domain-server-seq` list.
    MariaDb(MariaGtidPos),
    /// MySQL GTID set.
    MySql(MySqlGtidSet),
}

impl GtidPos {
    /// Parses a GTID text for the given flavor.
    pub fn parse(flavor: Flavor, text: &str) -> Result<GtidPos, ParsePositionError> {
        Ok(match flavor {
            Flavor::Mariadb => GtidPos::MariaDb(text.parse()?),
            Flavor::Mysql => GtidPos::MySql(text.parse()?),
        })
    }

    /// Guesses the flavor from the text: MySQL sets contain UUIDs, MariaDB positions never do.
    pub fn parse_any(text: &str) -> Result<GtidPos, ParsePositionError> {
        if text.contains(':') {
            GtidPos::parse(Flavor::Mysql, text)
        } else {
            GtidPos::parse(Flavor::Mariadb, text)
        }
    }

    /// The flavor of this position.
    pub fn flavor(&self) -> Flavor {
        match self {
            GtidPos::MariaDb(_) => Flavor::Mariadb,
            GtidPos::MySql(_) => Flavor::Mysql,
        }
    }
}

impl fmt::Display for GtidPos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidPos::MariaDb(p) => p.fmt(f),
            GtidPos::MySql(s) => s.fmt(f),
        }
    }
}

/// A resumable binlog offset: always a file/position at a transaction boundary, plus the GTID
/// position reached there when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogOffset {
    /// Where the next transaction starts.
    pub position: BinlogPosition,
    /// GTIDs executed up to `position`, when known.
    pub gtid: Option<GtidPos>,
}

/// The JSON form of [`BinlogOffset`].
#[derive(Serialize, Deserialize)]
struct OffsetJson {
    file: String,
    pos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gtids: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    flavor: Option<Flavor>,
}

impl BinlogOffset {
    /// The offset as checkpoint JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let j = OffsetJson {
            file: self.position.file.clone(),
            pos: self.position.pos,
            gtids: self.gtid.as_ref().map(|g| g.to_string()),
            flavor: self.gtid.as_ref().map(GtidPos::flavor),
        };
        serde_json::to_value(j).unwrap_or(serde_json::Value::Null)
    }

    /// Reads an offset from checkpoint JSON.
    ///
    /// # Errors
    /// When the JSON is not an offset object or its GTID text does not parse.
    pub fn from_json(v: &serde_json::Value) -> Result<BinlogOffset, ParsePositionError> {
        let j: OffsetJson = serde_json::from_value(v.clone())
            .map_err(|e| perr("offset", &v.to_string(), e.to_string()))?;
        let gtid = match (j.gtids.as_deref(), j.flavor) {
            (None, _) => None,
            (Some(t), _) if t.trim().is_empty() => None,
            (Some(t), Some(f)) => Some(GtidPos::parse(f, t)?),
            (Some(t), None) => Some(GtidPos::parse_any(t)?),
        };
        Ok(BinlogOffset {
            position: BinlogPosition {
                file: j.file,
                pos: j.pos,
            },
            gtid,
        })
    }

    /// The offset wrapped for the engine.
    pub fn to_source_offset(&self) -> SourceOffset {
        SourceOffset::new(self.to_json())
    }

    /// Reads an offset from an engine [`SourceOffset`].
    ///
    /// # Errors
    /// As [`BinlogOffset::from_json`].
    pub fn from_source_offset(o: &SourceOffset) -> Result<BinlogOffset, ParsePositionError> {
        BinlogOffset::from_json(&o.0)
    }
}

impl fmt::Display for BinlogOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.position)?;
        if let Some(g) = &self.gtid {
            write!(f, " (gtid {g})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_file_number_not_text() {
        let a = BinlogPosition::new("mysql-bin.999999", 900);
        let b = BinlogPosition::new("mysql-bin.1000000", 4);
        assert!(a < b, "file sequence numbers compare numerically");
        assert!(
            BinlogPosition::new("mysql-bin.000002", 10)
                < BinlogPosition::new("mysql-bin.000002", 11)
        );
        assert!(
            BinlogPosition::new("mysql-bin.000010", 4)
                > BinlogPosition::new("mysql-bin.000009", 99999)
        );
    }

    #[test]
    fn mariadb_gtid_positions_parse_and_print() {
        let p: MariaGtidPos = "0-1-100, 1-2-5".parse().unwrap();
        assert_eq!(p.to_string(), "0-1-100,1-2-5");
        assert!("0-1".parse::<MariaGtidPos>().is_err());
        assert!(
            "0-1-2,0-1-3".parse::<MariaGtidPos>().is_err(),
            "a domain appears once"
        );
        let mut q = p.clone();
        q.update(MariaGtid {
            domain: 0,
            server: 3,
            seq: 101,
        });
        assert!(q.covers(&p) && !p.covers(&q));
    }

    #[test]
    fn mysql_gtid_sets_merge_intervals() {
        let u = "3E11FA47-71CA-11E1-9E33-C80AA9429562";
        let s: MySqlGtidSet = format!("{u}:1-5:7,{u}:6").parse().unwrap();
        assert_eq!(s.to_string(), format!("{}:1-7", u.to_ascii_lowercase()));
        let mut t = MySqlGtidSet::default();
        t.add(u, 1);
        t.add(u, 2);
        t.add(u, 4);
        t.add(u, 3);
        assert_eq!(t.to_string(), format!("{}:1-4", u.to_ascii_lowercase()));
        assert!("nope:1-2".parse::<MySqlGtidSet>().is_err());
        let tagged: MySqlGtidSet = format!("{u}:1-3:mytag:1-14").parse().unwrap();
        assert_eq!(tagged.iter().count(), 2);
    }

    #[test]
    fn offsets_round_trip_through_json() {
        let o = BinlogOffset {
            position: BinlogPosition::new("mysql-bin.000003", 4711),
            gtid: Some(GtidPos::MariaDb("0-1-100".parse().unwrap())),
        };
        let j = o.to_json();
        assert_eq!(j["file"], "mysql-bin.000003");
        assert_eq!(j["gtids"], "0-1-100");
        assert_eq!(BinlogOffset::from_json(&j).unwrap(), o);
        let plain = serde_json::json!({"file": "b.000001", "pos": 4});
        assert_eq!(BinlogOffset::from_json(&plain).unwrap().gtid, None);
        assert!(BinlogOffset::from_json(&serde_json::json!({"pos": 4})).is_err());
    }
}
