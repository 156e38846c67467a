//! Row-by-row comparison of a MariaDB table with what arrived in the Stream Load emulator.
//!
//! Both sides are turned into text cells: MariaDB's own text protocol rendering on the source
//! side, the emulator's stored value on the sink side. Cells are equal when the texts are equal,
//! or when they denote the same value in the sink's representation (BOOLEAN `1`/`true`,
//! floats equal at the source column's precision, binary sent base64-encoded into a STRING column).
//! Rows are matched by key, so a diff names the table, the key and the column.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use mysql_async::prelude::Queryable;

use crate::emulator::Emulator;
use crate::mariadb::MariaDb;

/// One cell that differs, or a row present on one side only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// The key exists in the source but not in the sink.
    MissingInSink {
        /// Key values as text.
        key: String,
    },
    /// The key exists in the sink but not in the source.
    ExtraInSink {
        /// Key values as text.
        key: String,
    },
    /// The key exists on both sides but a column differs.
    Cell {
        /// Key values as text.
        key: String,
        /// Column name.
        column: String,
        /// Source text (`None` = NULL).
        source: Option<String>,
        /// Sink value as JSON text.
        sink: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::MissingInSink { key } => write!(f, "row {key}: missing in sink"),
            Difference::ExtraInSink { key } => write!(f, "row {key}: in sink but not in source"),
            Difference::Cell {
                key,
                column,
                source,
                sink,
            } => {
                write!(
                    f,
                    "row {key}, column {column}: source {source:?}, sink {sink}"
                )
            }
        }
    }
}

/// The result of comparing one table.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// Rows in the source table.
    pub source_rows: usize,
    /// Rows visible in the sink table.
    pub sink_rows: usize,
    /// Every difference found.
    pub differences: Vec<Difference>,
}

impl Comparison {
    /// True when both sides hold exactly the same rows.
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty() && self.source_rows == self.sink_rows
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "source {} rows, sink {} rows",
            self.source_rows, self.sink_rows
        )?;
        for d in self.differences.iter().take(20) {
            write!(f, "\n  {d}")?;
        }
        if self.differences.len() > 20 {
            write!(f, "\n  ... and {} more", self.differences.len() - 20)?;
        }
        Ok(())
    }
}

/// Errors while reading either side.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The source query failed.
    #[error("reading {table} from MariaDB")]
    Source {
        /// `db.table`.
        table: String,
        /// Driver error.
        source: mysql_async::Error,
    },
    /// The sink table could not be read.
    #[error("reading {table} from the emulator: {message}")]
    Sink {
        /// `db.table`.
        table: String,
        /// What went wrong.
        message: String,
    },
}

/// Compares `src_db.table` in MariaDB with `sink_db.sink_table` in the emulator, matching rows on
/// `key` columns (the source primary key).
///
/// # Errors
/// When either side cannot be read (a missing sink table is reported as all rows missing).
pub async fn compare_table(
    db: &MariaDb,
    src_db: &str,
    table: &str,
    emulator: &Emulator,
    sink_db: &str,
    sink_table: &str,
    key: &[&str],
) -> Result<Comparison, CompareError> {
    let name = format!("{src_db}.{table}");
    let mut conn = db.conn().await.map_err(|e| CompareError::Sink {
        table: name.clone(),
        message: e.to_string(),
    })?;
    let sql = format!("SELECT * FROM `{src_db}`.`{table}`");
    // The text protocol gives MySQL's canonical rendering of every type.
    let rows: Vec<mysql_async::Row> =
        conn.query(sql)
            .await
            .map_err(|source| CompareError::Source {
                table: name.clone(),
                source,
            })?;
    let types: Vec<(String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (src_db, table),
        )
        .await
        .map_err(|source| CompareError::Source {
            table: name.clone(),
            source,
        })?;
    let _ = conn.disconnect().await;
    let type_of: BTreeMap<String, String> = types.into_iter().collect();

    let mut source: BTreeMap<String, BTreeMap<String, Option<Vec<u8>>>> = BTreeMap::new();
    for row in rows {
        let cols = row.columns();
        let mut cells = BTreeMap::new();
        for (i, c) in cols.iter().enumerate() {
            let v = match row.as_ref(i) {
                Some(mysql_async::Value::Bytes(b)) => Some(b.clone()),
                Some(mysql_async::Value::NULL) | None => None,
                Some(other) => Some(other.as_sql(true).into_bytes()),
            };
            cells.insert(c.name_str().to_string(), v);
        }
        let k = key_text(key, |c| {
            cells
                .get(c)
                .cloned()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        });
        source.insert(k, cells);
    }

    let sink_rows = match emulator.rows(sink_db, sink_table) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Comparison {
                source_rows: source.len(),
                sink_rows: 0,
                differences: if source.is_empty() {
                    Vec::new()
                } else {
                    vec![Difference::MissingInSink {
                        key: format!("(all; {e})"),
                    }]
                },
            });
        }
    };
    let mut sink: BTreeMap<String, serde_json::Map<String, serde_json::Value>> = BTreeMap::new();
    for r in sink_rows {
        let k = key_text(key, |c| r.get(c).and_then(json_text));
        sink.insert(k, r);
    }

    let mut out = Comparison {
        source_rows: source.len(),
        sink_rows: sink.len(),
        differences: Vec::new(),
    };
    for (k, cells) in &source {
        let Some(srow) = sink.get(k) else {
            out.differences
                .push(Difference::MissingInSink { key: k.clone() });
            continue;
        };
        for (col, sv) in cells {
            let jv = srow.get(col).cloned().unwrap_or(serde_json::Value::Null);
            let ty = type_of.get(col).map(String::as_str).unwrap_or("");
            if !cell_equal(sv.as_deref(), &jv, ty) {
                out.differences.push(Difference::Cell {
                    key: k.clone(),
                    column: col.clone(),
                    source: sv.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()),
                    sink: jv.to_string(),
                });
            }
        }
    }
    for k in sink.keys() {
        if !source.contains_key(k) {
            out.differences
                .push(Difference::ExtraInSink { key: k.clone() });
        }
    }
    Ok(out)
}

fn key_text(key: &[&str], get: impl Fn(&str) -> Option<String>) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|c| get(c).unwrap_or_else(|| "NULL".into()))
        .collect();
    format!("({})", parts.join(", "))
}

fn json_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Whether a source cell (MySQL text rendering) and a sink cell (emulator JSON) hold the same value.
fn cell_equal(source: Option<&[u8]>, sink: &serde_json::Value, mysql_type: &str) -> bool {
    let Some(src) = source else {
        return sink.is_null();
    };
    let Some(dst) = json_text(sink) else {
        return false;
    };
    let src_text = String::from_utf8_lossy(src);
    if src_text == dst {
        return true;
    }
    match mysql_type {
        "tinyint" | "bit" if sink.is_boolean() => {
            let b = sink.as_bool().unwrap_or(false);
            let s = src.iter().any(|&x| x != 0 && x != b'0');
            b == s
        }
        // Sinks may store more fraction digits than the source column has (StarRocks DATETIME).
        "datetime" | "timestamp" | "time" => trim_fraction(&src_text) == trim_fraction(&dst),
        "float" => match (src_text.parse::<f32>(), dst.parse::<f32>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        "double" | "decimal" => match (src_text.parse::<f64>(), dst.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        "binary" | "varbinary" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "bit"
        | "geometry" => {
            base64::engine::general_purpose::STANDARD
                .decode(dst.as_bytes())
                .is_ok_and(|b| b == src)
                || hex_eq(src, &dst)
        }
        _ => false,
    }
}

fn trim_fraction(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn hex_eq(src: &[u8], hex: &str) -> bool {
    let h = hex.trim_start_matches("0x").trim_start_matches("0X");
    h.len() == src.len() * 2
        && src.iter().zip(h.as_bytes().chunks(2)).all(|(b, pair)| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                == Some(*b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_floats_and_binary_compare_by_value() {
        assert!(cell_equal(Some(b"1"), &serde_json::json!(true), "tinyint"));
        assert!(!cell_equal(Some(b"0"), &serde_json::json!(true), "tinyint"));
        assert!(cell_equal(Some(b"1.25"), &serde_json::json!(1.25), "float"));
        assert!(cell_equal(
            Some(&[0xde, 0xad]),
            &serde_json::json!("3q0="),
            "varbinary"
        ));
        assert!(cell_equal(None, &serde_json::Value::Null, "int"));
        assert!(!cell_equal(None, &serde_json::json!(0), "int"));
        assert!(!cell_equal(
            Some(b"abc"),
            &serde_json::json!("abd"),
            "varchar"
        ));
        assert!(cell_equal(
            Some(b"2024-01-01 00:00:10.000"),
            &serde_json::json!("2024-01-01 00:00:10.000000"),
            "datetime"
        ));
        assert!(!cell_equal(
            Some(b"2024-01-01 00:00:10.5"),
            &serde_json::json!("2024-01-01 00:00:10"),
            "datetime"
        ));
    }
}
