//! MySQL/MariaDB column types: what the catalog says about each column, and its [`CdcType`].
//!
//! A [`MySqlColumn`] is built once per table (and schema version) from `information_schema`
//! (cross-checked with binlog TABLE_MAP full metadata when present). The snapshot reader and the
//! binlog decoder both append cells through the same per-column description, so the same cell
//! becomes the same Arrow value on both paths.

use cdcflow_engine::CdcType;

/// The MySQL type family of a column, as declared in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MySqlKind {
    /// TINYINT.
    TinyInt,
    /// SMALLINT.
    SmallInt,
    /// MEDIUMINT.
    MediumInt,
    /// INT / INTEGER.
    Int,
    /// BIGINT.
    BigInt,
    /// FLOAT.
    Float,
    /// DOUBLE / REAL.
    Double,
    /// DECIMAL / NUMERIC.
    Decimal,
    /// BIT(n).
    Bit,
    /// DATE.
    Date,
    /// DATETIME(fsp).
    DateTime,
    /// TIMESTAMP(fsp).
    Timestamp,
    /// TIME(fsp).
    Time,
    /// YEAR.
    Year,
    /// CHAR(n).
    Char,
    /// VARCHAR(n).
    VarChar,
    /// TINYTEXT .. LONGTEXT.
    Text,
    /// BINARY(n).
    Binary,
    /// VARBINARY(n).
    VarBinary,
    /// TINYBLOB .. LONGBLOB.
    Blob,
    /// ENUM(...).
    Enum,
    /// SET(...).
    Set,
    /// JSON (binary JSON in MySQL, LONGTEXT alias in MariaDB).
    Json,
    /// GEOMETRY and its subtypes (stored as SRID + WKB).
    Geometry,
}

/// One column as the catalog describes it, with everything a decoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlColumn {
    /// Column name.
    pub name: String,
    /// Ordinal position (0-based) in the table.
    pub ordinal: usize,
    /// Type family.
    pub kind: MySqlKind,
    /// UNSIGNED.
    pub unsigned: bool,
    /// Declared length: characters for CHAR/VARCHAR, bytes for BINARY/VARBINARY, bits for BIT,
    /// display width for integers (`TINYINT(1)`).
    pub length: u32,
    /// DECIMAL precision.
    pub precision: u8,
    /// DECIMAL scale.
    pub scale: u8,
    /// Fractional-second precision of TIME/DATETIME/TIMESTAMP (0-6).
    pub fsp: u8,
    /// Character set name for text columns (`utf8mb4`, `latin1`, ...); `binary` for byte types.
    pub charset: Option<String>,
    /// ENUM or SET labels in declaration order.
    pub labels: Vec<String>,
    /// NULL allowed.
    pub nullable: bool,
    /// The full type text from `COLUMN_TYPE` (e.g. `int(10) unsigned`).
    pub column_type: String,
    /// The logical type this column maps to (Flink CDC's mapping, §2.6).
    pub cdc_type: CdcType,
}
