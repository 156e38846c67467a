//! Schema helpers shared by transforms and routes: logical types of computed columns, schema
//! diffs as Flink CDC schema-change events, and Flink's type widening for merged tables (§1.3).

use arrow::datatypes::{DataType, TimeUnit};
use cdcflow_engine::change::ColumnPosition;
use std::sync::Arc;

use cdcflow_engine::{CdcType, ColumnDef, SchemaChange, TableSchema, TableSchemaRef};

/// The logical type of a computed column from its Arrow type (text for anything exotic).
pub fn cdc_type_of(dt: &DataType) -> CdcType {
    let precision = |u: &TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond | TimeUnit::Nanosecond => 6,
    };
    match dt {
        DataType::Boolean => CdcType::Boolean,
        DataType::Int8 => CdcType::TinyInt,
        DataType::Int16 | DataType::UInt8 => CdcType::SmallInt,
        DataType::Int32 | DataType::UInt16 => CdcType::Int,
        DataType::Int64 | DataType::UInt32 => CdcType::BigInt,
        DataType::UInt64 => CdcType::Decimal {
            precision: 20,
            scale: 0,
        },
        DataType::Float16 | DataType::Float32 => CdcType::Float,
        DataType::Float64 => CdcType::Double,
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => CdcType::Decimal {
            precision: *p,
            scale: (*s).max(0) as u8,
        },
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => CdcType::Bytes,
        DataType::Date32 | DataType::Date64 => CdcType::Date,
        DataType::Duration(u) | DataType::Time32(u) | DataType::Time64(u) => CdcType::Time {
            precision: precision(u),
        },
        DataType::Timestamp(u, None) => CdcType::Timestamp {
            precision: precision(u),
        },
        DataType::Timestamp(u, Some(_)) => CdcType::TimestampLtz {
            precision: precision(u),
        },
        _ => CdcType::String,
    }
}

/// The changes that turn `old` into `new`, as events a sink can apply in order: renames (from
/// `renames`, when they explain the difference), drops, type changes, then additions with their
/// positions. Reordering alone produces no event.
pub fn diff(
    old: &TableSchema,
    new: &TableSchema,
    renames: &[(String, String)],
) -> Vec<SchemaChange> {
    diff_columns(old, new, renames)
        .into_iter()
        .map(|(c, _)| c)
        .collect()
}

/// Like [`diff`], with the table's schema after each change: versions count up from
/// `old.version`, and the last one has exactly `new`'s columns and key.
pub fn diff_steps(
    old: &TableSchema,
    new: &TableSchema,
    renames: &[(String, String)],
) -> Vec<(SchemaChange, TableSchemaRef)> {
    let steps = diff_columns(old, new, renames);
    let n = steps.len();
    steps
        .into_iter()
        .enumerate()
        .map(|(i, (change, cols))| {
            let has = |keys: &[String]| keys.iter().all(|k| cols.iter().any(|c| &c.name == k));
            let pk = if i + 1 == n || has(&new.primary_key) {
                new.primary_key.clone()
            } else if has(&old.primary_key) {
                old.primary_key.clone()
            } else {
                Vec::new()
            };
            let version = old.version + i as u64 + 1;
            let schema = TableSchema::new(new.id.clone(), cols, pk, new.comment.clone(), version);
            (change, Arc::new(schema))
        })
        .collect()
}

fn diff_columns(
    old: &TableSchema,
    new: &TableSchema,
    renames: &[(String, String)],
) -> Vec<(SchemaChange, Vec<ColumnDef>)> {
    let mut out = Vec::new();
    let mut cur: Vec<ColumnDef> = old.columns.clone();
    let applied: Vec<(String, String)> = renames
        .iter()
        .filter(|(from, to)| {
            cur.iter().any(|c| &c.name == from)
                && new.column_index(from).is_none()
                && new.column_index(to).is_some()
                && old.column_index(to).is_none()
        })
        .cloned()
        .collect();
    if !applied.is_empty() {
        for (from, to) in &applied {
            if let Some(c) = cur.iter_mut().find(|c| &c.name == from) {
                c.name = to.clone();
            }
        }
        out.push((SchemaChange::RenameColumn { renames: applied }, cur.clone()));
    }
    let dropped: Vec<String> = cur
        .iter()
        .filter(|c| new.column_index(&c.name).is_none())
        .map(|c| c.name.clone())
        .collect();
    if !dropped.is_empty() {
        cur.retain(|c| !dropped.contains(&c.name));
        out.push((SchemaChange::DropColumn { columns: dropped }, cur.clone()));
    }
    for i in 0..cur.len() {
        if let Some(n) = new.columns.iter().find(|n| n.name == cur[i].name)
            && (n.data_type != cur[i].data_type || n.nullable != cur[i].nullable)
        {
            cur[i] = n.clone();
            out.push((
                SchemaChange::AlterColumnType { column: n.clone() },
                cur.clone(),
            ));
        }
    }
    let mut added = Vec::new();
    for (i, n) in new.columns.iter().enumerate() {
        if cur.iter().any(|c| c.name == n.name) {
            continue;
        }
        let pos = if i == 0 {
            ColumnPosition::First
        } else {
            ColumnPosition::After(new.columns[i - 1].name.clone())
        };
        added.push((n.clone(), pos));
    }
    if !added.is_empty() {
        out.push((
            SchemaChange::AddColumn { columns: added },
            new.columns.clone(),
        ));
    }
    // The last step carries `new` exactly (also when only a reorder remains).
    if let Some(last) = out.last_mut() {
        last.1 = new.columns.clone();
    }
    out
}

fn int_rank(t: &CdcType) -> Option<u8> {
    match t {
        CdcType::TinyInt => Some(1),
        CdcType::SmallInt => Some(2),
        CdcType::Int => Some(3),
        CdcType::BigInt => Some(4),
        _ => None,
    }
}

/// Digits an integer type needs.
fn int_digits(t: &CdcType) -> u8 {
    match t {
        CdcType::TinyInt => 3,
        CdcType::SmallInt => 5,
        CdcType::Int => 10,
        _ => 19,
    }
}

fn ts_precision(t: &CdcType) -> Option<u8> {
    match t {
        CdcType::Date => Some(0),
        CdcType::Timestamp { precision } | CdcType::TimestampLtz { precision } => Some(*precision),
        _ => None,
    }
}

/// The narrowest type both `a` and `b` widen to, following Flink CDC's `SchemaMergingUtils` tree.
pub fn widen(a: &CdcType, b: &CdcType) -> CdcType {
    use CdcType::*;
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (x, y) if int_rank(x).is_some() && int_rank(y).is_some() => {
            if int_rank(x) >= int_rank(y) {
                x.clone()
            } else {
                y.clone()
            }
        }
        (
            Decimal {
                precision: p1,
                scale: s1,
            },
            Decimal {
                precision: p2,
                scale: s2,
            },
        ) => {
            let scale = (*s1).max(*s2);
            let int_digits = p1.saturating_sub(*s1).max(p2.saturating_sub(*s2));
            Decimal {
                precision: int_digits.saturating_add(scale).min(38),
                scale,
            }
        }
        (Decimal { precision, scale }, i) | (i, Decimal { precision, scale })
            if int_rank(i).is_some() =>
        {
            let int_digits = precision.saturating_sub(*scale).max(int_digits(i));
            Decimal {
                precision: int_digits.saturating_add(*scale).min(38),
                scale: *scale,
            }
        }
        (Float, i) | (i, Float) if matches!(i, TinyInt | SmallInt) => Float,
        (Float | Double, x) | (x, Float | Double)
            if int_rank(x).is_some() || matches!(x, Decimal { .. } | Float | Double) =>
        {
            Double
        }
        (Date, Timestamp { precision }) | (Timestamp { precision }, Date) => Timestamp {
            precision: *precision,
        },
        (Timestamp { precision: p1 }, Timestamp { precision: p2 }) => Timestamp {
            precision: (*p1).max(*p2),
        },
        (x, y) if ts_precision(x).is_some() && ts_precision(y).is_some() => TimestampLtz {
            precision: ts_precision(x).max(ts_precision(y)).unwrap_or(0),
        },
        _ => String,
    }
}

/// Merges an upstream table's schema into a sink table's: missing columns are appended as
/// nullable, shared columns are widened. Never drops a column.
pub fn merge(sink: &TableSchema, upstream: &TableSchema) -> Vec<ColumnDef> {
    let mut cols = sink.columns.clone();
    for u in &upstream.columns {
        match cols.iter_mut().find(|c| c.name == u.name) {
            Some(c) => {
                let w = widen(&c.data_type, &u.data_type);
                if w != c.data_type {
                    c.data_type = w;
                    c.source_type = c.data_type.sql_name();
                }
                c.nullable |= u.nullable;
            }
            None => {
                let mut n = u.clone();
                n.nullable = true;
                cols.push(n);
            }
        }
    }
    cols
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_follows_flink_tree() {
        assert_eq!(widen(&CdcType::TinyInt, &CdcType::Int), CdcType::Int);
        assert_eq!(
            widen(&CdcType::Int, &CdcType::Float),
            CdcType::Double,
            "INT skips FLOAT"
        );
        assert_eq!(widen(&CdcType::SmallInt, &CdcType::Float), CdcType::Float);
        assert_eq!(
            widen(
                &CdcType::BigInt,
                &CdcType::Decimal {
                    precision: 10,
                    scale: 2
                }
            ),
            CdcType::Decimal {
                precision: 21,
                scale: 2
            }
        );
        assert_eq!(
            widen(&CdcType::Date, &CdcType::Timestamp { precision: 3 }),
            CdcType::Timestamp { precision: 3 }
        );
        assert_eq!(
            widen(
                &CdcType::Varchar { length: 10 },
                &CdcType::Varchar { length: 20 }
            ),
            CdcType::String
        );
        assert_eq!(widen(&CdcType::Boolean, &CdcType::Int), CdcType::String);
    }
}
