//! The emulated catalog: databases, tables with a key model, and the visible rows of each table.
//!
//! Rows are keyed by the table's key columns, so Unique/Primary Key tables upsert and Duplicate
//! tables append. Doris deletes are kept as tombstones carrying `__DORIS_DELETE_SIGN__` = 1 and
//! their sequence value (as Doris stores them), so a later row with a lower sequence value cannot
//! resurrect a deleted key; StarRocks `__op` = 1 removes the row.

use std::collections::BTreeMap;

use super::types::{ColumnType, Value};

/// The data model of a table (`DUPLICATE KEY`, `UNIQUE KEY`, `AGGREGATE KEY`, `PRIMARY KEY`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeysType {
    /// Every row is kept; the key only orders rows.
    Duplicate,
    /// Last write per key wins (Doris Unique Key / StarRocks Unique Key).
    Unique,
    /// Value columns are merged with their aggregate function.
    Aggregate,
    /// StarRocks Primary Key: upsert and delete through `__op`.
    Primary,
}

impl KeysType {
    /// The SQL spelling (`DUP_KEYS` style names are what `information_schema.TABLES` shows).
    pub fn sql(&self) -> &'static str {
        match self {
            KeysType::Duplicate => "DUPLICATE KEY",
            KeysType::Unique => "UNIQUE KEY",
            KeysType::Aggregate => "AGGREGATE KEY",
            KeysType::Primary => "PRIMARY KEY",
        }
    }
}

/// Aggregate function of a value column in an Aggregate Key table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggType {
    /// Sum of loaded values.
    Sum,
    /// Maximum.
    Max,
    /// Minimum.
    Min,
    /// Last loaded value.
    Replace,
    /// Last loaded non-NULL value.
    ReplaceIfNotNull,
}

/// One declared column.
#[derive(Clone, Debug)]
pub struct Column {
    /// Column name as declared.
    pub name: String,
    /// Declared type.
    pub ty: ColumnType,
    /// Whether NULL is accepted (Doris default: nullable unless `NOT NULL`).
    pub nullable: bool,
    /// Declared default (already unquoted; `CURRENT_TIMESTAMP` kept as written).
    pub default: Option<String>,
    /// Column comment.
    pub comment: String,
    /// Whether the column is part of the key.
    pub is_key: bool,
    /// Aggregate function (Aggregate Key tables only).
    pub agg: Option<AggType>,
}

/// How the table orders versions of a key (Doris sequence column).
#[derive(Clone, Debug, PartialEq)]
pub enum SequenceMode {
    /// No sequence column.
    None,
    /// Hidden `__DORIS_SEQUENCE_COL__` of this type, fed via `function_column.sequence_col`.
    Hidden(ColumnType),
    /// The sequence is a real column (`function_column.sequence_col` table property).
    Mapped(String),
}

/// A stored row: its values in column order, the delete sign and the sequence value.
#[derive(Clone, Debug)]
pub struct StoredRow {
    /// Values in table column order.
    pub values: Vec<Value>,
    /// Doris `__DORIS_DELETE_SIGN__` = 1 (tombstone, invisible).
    pub deleted: bool,
    /// Sequence value, if the table has a sequence column.
    pub seq: Value,
}

/// One change to apply at commit: values by column name (`None` = keep the stored value).
#[derive(Clone, Debug)]
pub struct Mutation {
    /// Values for the named columns; absent ones take the default (or keep the old value
    /// under partial update).
    pub values: Vec<Option<Value>>,
    /// Delete sign / `__op` = 1.
    pub delete: bool,
    /// Sequence value (Doris), or NULL.
    pub seq: Value,
}

/// A batch of mutations for one table, with the column names they were parsed against.
#[derive(Clone, Debug)]
pub struct PendingWrite {
    /// Database name.
    pub db: String,
    /// Table name.
    pub table: String,
    /// Column names matching `Mutation::values`.
    pub columns: Vec<String>,
    /// The rows, in load order.
    pub rows: Vec<Mutation>,
    /// StarRocks `merge_condition` column: an upsert of an existing key applies only when its
    /// value there is >= the stored one.
    pub merge_condition: Option<String>,
}

/// An emulated table.
#[derive(Clone, Debug)]
pub struct Table {
    /// Table name.
    pub name: String,
    /// Columns in order.
    pub columns: Vec<Column>,
    /// Key model.
    pub keys_type: KeysType,
    /// `PROPERTIES (...)` as given.
    pub properties: BTreeMap<String, String>,
    /// Table comment.
    pub comment: String,
    /// Sequence column mode.
    pub sequence: SequenceMode,
    /// Whether Doris batch delete (`__DORIS_DELETE_SIGN__`) is available.
    pub batch_delete: bool,
    /// Stored rows by (key values, duplicate counter).
    pub rows: BTreeMap<(Vec<Value>, u64), StoredRow>,
    /// Counter that keeps duplicate rows apart.
    pub next_dup: u64,
    /// Incremented on every schema change.
    pub schema_version: u64,
}

impl Table {
    /// Position of a column by name (case-insensitive, as both systems resolve column names).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// Indexes of the key columns in key order.
    pub fn key_indexes(&self) -> Vec<usize> {
        (0..self.columns.len())
            .filter(|i| self.columns[*i].is_key)
            .collect()
    }

    /// A copy of the schema and settings without the stored rows (for parsing outside locks).
    pub fn without_rows(&self) -> Table {
        Table {
            name: self.name.clone(),
            columns: self.columns.clone(),
            keys_type: self.keys_type,
            properties: self.properties.clone(),
            comment: self.comment.clone(),
            sequence: self.sequence.clone(),
            batch_delete: self.batch_delete,
            rows: BTreeMap::new(),
            next_dup: 0,
            schema_version: self.schema_version,
        }
    }

    /// Visible rows as JSON objects, sorted by key.
    pub fn visible_rows(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .values()
            .filter(|r| !r.deleted)
            .map(|r| {
                self.columns
                    .iter()
                    .zip(&r.values)
                    .map(|(c, v)| (c.name.clone(), v.to_json()))
                    .collect()
            })
            .collect()
    }

    /// Default value of a column for a row that does not provide it.
    fn default_value(&self, idx: usize) -> Value {
        let col = &self.columns[idx];
        match &col.default {
            None => Value::Null,
            Some(d) if d.eq_ignore_ascii_case("null") => Value::Null,
            Some(d) if d.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP") => {
                let now = chrono::Local::now().naive_local();
                match col.ty {
                    ColumnType::Date => Value::Date(now.date()),
                    _ => super::types::convert_text(
                        &now.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                        &col.ty,
                    )
                    .unwrap_or(Value::Null),
                }
            }
            Some(d) => super::types::convert_text(d, &col.ty).unwrap_or(Value::Null),
        }
    }

    /// Applies committed mutations in order, following the key model and sequence rules.
    pub fn apply(&mut self, write: &PendingWrite) {
        let mapping: Vec<Option<usize>> =
            write.columns.iter().map(|n| self.column_index(n)).collect();
        let keys = self.key_indexes();
        let cond_idx = write
            .merge_condition
            .as_deref()
            .and_then(|c| self.column_index(c));
        let seq_idx = match &self.sequence {
            SequenceMode::Mapped(name) => self.column_index(name),
            _ => None,
        };
        for m in &write.rows {
            let mut provided: Vec<Option<Value>> = vec![None; self.columns.len()];
            for (v, idx) in m.values.iter().zip(&mapping) {
                if let (Some(v), Some(idx)) = (v, idx) {
                    provided[*idx] = Some(v.clone());
                }
            }
            let key: Vec<Value> = keys
                .iter()
                .map(|i| {
                    provided[*i]
                        .clone()
                        .unwrap_or_else(|| self.default_value(*i))
                })
                .collect();
            if self.keys_type == KeysType::Duplicate {
                let values = (0..self.columns.len())
                    .map(|i| provided[i].clone().unwrap_or_else(|| self.default_value(i)))
                    .collect();
                let n = self.next_dup;
                self.next_dup += 1;
                self.rows.insert(
                    (key, n),
                    StoredRow {
                        values,
                        deleted: false,
                        seq: Value::Null,
                    },
                );
                continue;
            }
            let slot = (key, 0);
            let existing = self.rows.get(&slot);
            let seq = match seq_idx {
                Some(i) => provided[i]
                    .clone()
                    .or_else(|| existing.map(|e| e.values[i].clone()))
                    .unwrap_or(Value::Null),
                None => m.seq.clone(),
            };
            if self.sequence != SequenceMode::None
                && let Some(old) = existing
                && seq < old.seq
            {
                continue;
            }
            if m.delete && self.keys_type == KeysType::Primary {
                self.rows.remove(&slot);
                continue;
            }
            let live_old = existing.filter(|e| !e.deleted);
            if let (Some(ci), Some(old)) = (cond_idx, live_old)
                && !m.delete
                && provided[ci]
                    .as_ref()
                    .is_some_and(|new| *new < old.values[ci])
            {
                continue;
            }
            let values: Vec<Value> = (0..self.columns.len())
                .map(|i| {
                    let old = live_old.map(|e| e.values[i].clone());
                    match (
                        self.keys_type,
                        self.columns[i].agg,
                        provided[i].clone(),
                        old,
                    ) {
                        (KeysType::Aggregate, Some(agg), Some(new), Some(old))
                            if !self.columns[i].is_key =>
                        {
                            aggregate(agg, old, new)
                        }
                        (_, _, Some(new), _) => new,
                        (_, _, None, Some(old)) => old,
                        (_, _, None, None) => self.default_value(i),
                    }
                })
                .collect();
            self.rows.insert(
                slot,
                StoredRow {
                    values,
                    deleted: m.delete,
                    seq,
                },
            );
        }
    }
}

fn aggregate(agg: AggType, old: Value, new: Value) -> Value {
    match agg {
        AggType::Replace => new,
        AggType::ReplaceIfNotNull => {
            if new.is_null() {
                old
            } else {
                new
            }
        }
        AggType::Max => {
            if old.is_null() || (!new.is_null() && new > old) {
                new
            } else {
                old
            }
        }
        AggType::Min => {
            if old.is_null() || (!new.is_null() && new < old) {
                new
            } else {
                old
            }
        }
        AggType::Sum => match (&old, &new) {
            (Value::Int(a), Value::Int(b)) => Value::Int(a.saturating_add(*b)),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            (Value::Decimal(a, s), Value::Decimal(b, _)) => {
                Value::Decimal(a.saturating_add(*b), *s)
            }
            (Value::Null, _) => new,
            _ => old,
        },
    }
}

/// A database: its tables by name.
#[derive(Clone, Debug, Default)]
pub struct Database {
    /// Tables by (case-sensitive) name.
    pub tables: BTreeMap<String, Table>,
}

/// All databases of one emulated cluster.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    /// Databases by name.
    pub dbs: BTreeMap<String, Database>,
}

impl Catalog {
    /// Looks a table up.
    pub fn table(&self, db: &str, table: &str) -> Option<&Table> {
        self.dbs.get(db)?.tables.get(table)
    }

    /// Looks a table up for change.
    pub fn table_mut(&mut self, db: &str, table: &str) -> Option<&mut Table> {
        self.dbs.get_mut(db)?.tables.get_mut(table)
    }
}
