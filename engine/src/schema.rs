//! Table identity and schemas shared by sources, transforms and sinks.
//!
//! A table's columns are described twice: by [`CdcType`], the logical type in Flink CDC's vocabulary
//! (it keeps what sinks need for DDL: character lengths, precisions, key-ness), and by the Arrow
//! schema the data travels in. [`CdcType::arrow_type`] is the one mapping between the two, so a
//! source's snapshot path and binlog path cannot disagree about a cell's Arrow value.
//!
//! Every change batch carries two system columns after the table's own columns:
//! [`OP_COLUMN`] (the change kind, see [`crate::change::Op`]) and [`TS_COLUMN`] (the source event
//! time in epoch milliseconds, 0 for snapshot rows). User expressions never see them by name.

use std::fmt;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde::{Deserialize, Serialize};

/// Name of the system column that holds each row's [`crate::change::Op`] as `Int8`.
pub const OP_COLUMN: &str = "__cdc_op";
/// Name of the system column that holds the source event time (epoch ms, `Int64`; 0 for snapshot rows).
pub const TS_COLUMN: &str = "__cdc_ts_ms";

/// A table's identity: `namespace.schema.table`; MySQL, Doris and StarRocks use `schema.table` only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableId {
    /// Namespace part; `None` for MySQL, Doris and StarRocks.
    pub namespace: Option<String>,
    /// The database (MySQL "schema").
    pub schema: String,
    /// The table name.
    pub table: String,
}

impl TableId {
    /// Builds a two-part id (`db.table`), the form every supported system uses.
    pub fn new(schema: impl Into<String>, table: impl Into<String>) -> Self {
        TableId {
            namespace: None,
            schema: schema.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ns) = &self.namespace {
            write!(f, "{ns}.")?;
        }
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// Flink CDC's logical column types; sinks derive their DDL from these, not from Arrow types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CdcType {
    /// BOOLEAN (`TINYINT(1)`, `BIT(1)`).
    Boolean,
    /// TINYINT (signed 8-bit).
    TinyInt,
    /// SMALLINT (signed 16-bit; also `TINYINT UNSIGNED`).
    SmallInt,
    /// INT (signed 32-bit; also `SMALLINT UNSIGNED`, `MEDIUMINT`, `YEAR`).
    Int,
    /// BIGINT (signed 64-bit; also `INT UNSIGNED`).
    BigInt,
    /// FLOAT (32-bit).
    Float,
    /// DOUBLE (64-bit).
    Double,
    /// DECIMAL(p, s); p up to 65 (MySQL's maximum). `BIGINT UNSIGNED` is DECIMAL(20, 0).
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// CHAR(n), n in characters.
    Char {
        /// Declared length in characters.
        length: u32,
    },
    /// VARCHAR(n), n in characters.
    Varchar {
        /// Declared length in characters.
        length: u32,
    },
    /// Unbounded text (TEXT family, JSON, ENUM, SET, DECIMAL with p > 38 when rendered as text).
    String,
    /// BINARY(n).
    Binary {
        /// Declared length in bytes.
        length: u32,
    },
    /// VARBINARY(n).
    Varbinary {
        /// Declared length in bytes.
        length: u32,
    },
    /// Unbounded bytes (BLOB family, GEOMETRY as WKB, BIT(n > 1)).
    Bytes,
    /// DATE.
    Date,
    /// TIME(p); may be negative or beyond 24 h in MySQL.
    Time {
        /// Fractional-second digits (0-6).
        precision: u8,
    },
    /// TIMESTAMP(p) without time zone (MySQL `DATETIME`).
    Timestamp {
        /// Fractional-second digits (0-6).
        precision: u8,
    },
    /// TIMESTAMP_LTZ(p): an instant (MySQL `TIMESTAMP`), rendered in the pipeline's local time zone.
    TimestampLtz {
        /// Fractional-second digits (0-6).
        precision: u8,
    },
}

impl CdcType {
    /// The Arrow type a column of this logical type travels in. The single source of truth.
    pub fn arrow_type(&self) -> DataType {
        match self {
            CdcType::Boolean => DataType::Boolean,
            CdcType::TinyInt => DataType::Int8,
            CdcType::SmallInt => DataType::Int16,
            CdcType::Int => DataType::Int32,
            CdcType::BigInt => DataType::Int64,
            CdcType::Float => DataType::Float32,
            CdcType::Double => DataType::Float64,
            CdcType::Decimal { precision, scale } if *precision <= 38 => {
                DataType::Decimal128(*precision, *scale as i8)
            }
            CdcType::Decimal { precision, scale } => DataType::Decimal256(*precision, *scale as i8),
            CdcType::Char { .. } | CdcType::Varchar { .. } | CdcType::String => DataType::Utf8,
            CdcType::Binary { .. } | CdcType::Varbinary { .. } | CdcType::Bytes => DataType::Binary,
            CdcType::Date => DataType::Date32,
            // MySQL TIME spans -838:59:59 .. 838:59:59, which Time64 cannot hold.
            CdcType::Time { .. } => DataType::Duration(TimeUnit::Microsecond),
            CdcType::Timestamp { .. } => DataType::Timestamp(TimeUnit::Microsecond, None),
            CdcType::TimestampLtz { .. } => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
        }
    }

    /// Flink CDC's spelling of the type, for plans and messages.
    pub fn sql_name(&self) -> String {
        match self {
            CdcType::Boolean => "BOOLEAN".into(),
            CdcType::TinyInt => "TINYINT".into(),
            CdcType::SmallInt => "SMALLINT".into(),
            CdcType::Int => "INT".into(),
            CdcType::BigInt => "BIGINT".into(),
            CdcType::Float => "FLOAT".into(),
            CdcType::Double => "DOUBLE".into(),
            CdcType::Decimal { precision, scale } => format!("DECIMAL({precision}, {scale})"),
            CdcType::Char { length } => format!("CHAR({length})"),
            CdcType::Varchar { length } => format!("VARCHAR({length})"),
            CdcType::String => "STRING".into(),
            CdcType::Binary { length } => format!("BINARY({length})"),
            CdcType::Varbinary { length } => format!("VARBINARY({length})"),
            CdcType::Bytes => "BYTES".into(),
            CdcType::Date => "DATE".into(),
            CdcType::Time { precision } => format!("TIME({precision})"),
            CdcType::Timestamp { precision } => format!("TIMESTAMP({precision})"),
            CdcType::TimestampLtz { precision } => format!("TIMESTAMP_LTZ({precision})"),
        }
    }
}

/// One column as the source describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Column name as in the source.
    pub name: String,
    /// Logical type.
    pub data_type: CdcType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Default value expression as text (`NULL`, `'flink'`, `CURRENT_TIMESTAMP`), if any.
    pub default: Option<String>,
    /// Column comment, if any.
    pub comment: Option<String>,
    /// The source's own type text (e.g. `int(10) unsigned`), for messages and DDL fidelity.
    pub source_type: String,
}

/// A table's schema at one version: columns, key and the Arrow schema of its change batches.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSchema {
    /// Which table.
    pub id: TableId,
    /// Columns in table order.
    pub columns: Vec<ColumnDef>,
    /// Primary-key column names in key order (empty: no key).
    pub primary_key: Vec<String>,
    /// Table comment, if any.
    pub comment: Option<String>,
    /// Bumped by every schema change of this table; transforms re-plan when it moves.
    pub version: u64,
    /// Arrow schema of change batches: the columns, then [`OP_COLUMN`] and [`TS_COLUMN`].
    pub arrow: SchemaRef,
}

/// Shared handle to a table schema.
pub type TableSchemaRef = Arc<TableSchema>;

impl TableSchema {
    /// Builds a schema and derives its Arrow schema from the columns.
    pub fn new(
        id: TableId,
        columns: Vec<ColumnDef>,
        primary_key: Vec<String>,
        comment: Option<String>,
        version: u64,
    ) -> Self {
        let arrow = Arc::new(change_batch_schema(&columns));
        TableSchema {
            id,
            columns,
            primary_key,
            comment,
            version,
            arrow,
        }
    }

    /// Index of a column by exact name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Indices of the primary-key columns.
    pub fn key_indices(&self) -> Vec<usize> {
        self.primary_key
            .iter()
            .filter_map(|k| self.column_index(k))
            .collect()
    }
}

/// Arrow schema of a change batch for these columns: user columns, then the op and ts columns.
pub fn change_batch_schema(columns: &[ColumnDef]) -> Schema {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.data_type.arrow_type(), true))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Int8, false));
    fields.push(Field::new(TS_COLUMN, DataType::Int64, false));
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_above_38_digits_needs_decimal256() {
        assert_eq!(
            CdcType::Decimal {
                precision: 65,
                scale: 30
            }
            .arrow_type(),
            DataType::Decimal256(65, 30)
        );
        assert_eq!(
            CdcType::Decimal {
                precision: 38,
                scale: 2
            }
            .arrow_type(),
            DataType::Decimal128(38, 2)
        );
    }

    #[test]
    fn change_batch_schema_appends_system_columns() {
        let cols = vec![ColumnDef {
            name: "id".into(),
            data_type: CdcType::BigInt,
            nullable: false,
            default: None,
            comment: None,
            source_type: "bigint".into(),
        }];
        let s = change_batch_schema(&cols);
        let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, vec!["id", OP_COLUMN, TS_COLUMN]);
    }
}
