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

impl MySqlKind {
    /// Maps `information_schema.COLUMNS.DATA_TYPE` (lower-case type name) to a kind; `None` for
    /// types we do not support (the caller reports them with table and column).
    pub fn from_data_type(data_type: &str) -> Option<MySqlKind> {
        Some(match data_type.to_ascii_lowercase().as_str() {
            "tinyint" | "bool" | "boolean" => MySqlKind::TinyInt,
            "smallint" => MySqlKind::SmallInt,
            "mediumint" => MySqlKind::MediumInt,
            "int" | "integer" => MySqlKind::Int,
            "bigint" | "serial" => MySqlKind::BigInt,
            "float" => MySqlKind::Float,
            "double" | "real" | "double precision" => MySqlKind::Double,
            "decimal" | "numeric" | "fixed" => MySqlKind::Decimal,
            "bit" => MySqlKind::Bit,
            "date" => MySqlKind::Date,
            "datetime" => MySqlKind::DateTime,
            "timestamp" => MySqlKind::Timestamp,
            "time" => MySqlKind::Time,
            "year" => MySqlKind::Year,
            "char" => MySqlKind::Char,
            "varchar" => MySqlKind::VarChar,
            "tinytext" | "text" | "mediumtext" | "longtext" | "long" | "long varchar" => {
                MySqlKind::Text
            }
            "binary" => MySqlKind::Binary,
            "varbinary" => MySqlKind::VarBinary,
            "tinyblob" | "blob" | "mediumblob" | "longblob" => MySqlKind::Blob,
            "enum" => MySqlKind::Enum,
            "set" => MySqlKind::Set,
            "json" => MySqlKind::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => MySqlKind::Geometry,
            _ => return None,
        })
    }

    /// Whether chunk boundaries of this kind can be computed arithmetically (even splitting).
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            MySqlKind::TinyInt
                | MySqlKind::SmallInt
                | MySqlKind::MediumInt
                | MySqlKind::Int
                | MySqlKind::BigInt
                | MySqlKind::Year
        )
    }
}

/// The display width or length in parentheses right after the type name: `tinyint(1)` → 1,
/// `float(7,4)` → 7; `None` when the type text has none.
pub fn declared_width(column_type: &str) -> Option<u32> {
    let open = column_type.find('(')?;
    let rest = &column_type[open + 1..];
    let end = rest.find([',', ')'])?;
    rest[..end].trim().parse().ok()
}

/// ENUM/SET labels from a `COLUMN_TYPE` such as `enum('a','it''s','b\\c')`, in declaration order.
pub fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return Vec::new();
    };
    let mut labels = Vec::new();
    let mut chars = column_type[open + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\'' {
            continue;
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => match chars.next() {
                    Some('n') => label.push('\n'),
                    Some('t') => label.push('\t'),
                    Some('0') => label.push('\0'),
                    Some(other) => label.push(other),
                    None => break,
                },
                other => label.push(other),
            }
        }
        labels.push(label);
    }
    labels
}

/// Facts about one column as `information_schema.COLUMNS` states them, before type mapping.
#[derive(Debug, Clone, Default)]
pub struct CatalogColumn {
    /// `COLUMN_NAME`.
    pub name: String,
    /// `ORDINAL_POSITION` (1-based).
    pub ordinal_position: u32,
    /// `DATA_TYPE`.
    pub data_type: String,
    /// `COLUMN_TYPE`.
    pub column_type: String,
    /// `IS_NULLABLE = 'YES'`.
    pub nullable: bool,
    /// `CHARACTER_MAXIMUM_LENGTH`.
    pub char_max_length: Option<u64>,
    /// `NUMERIC_PRECISION`.
    pub numeric_precision: Option<u64>,
    /// `NUMERIC_SCALE`.
    pub numeric_scale: Option<u64>,
    /// `DATETIME_PRECISION`.
    pub datetime_precision: Option<u64>,
    /// `CHARACTER_SET_NAME`.
    pub charset: Option<String>,
}

impl MySqlColumn {
    /// Builds the column description and its Flink CDC type (flink-cdc-pipeline.md §2.6) from the
    /// catalog facts; `None` when the type is not supported.
    ///
    /// Deviations from Flink CDC, on purpose: DECIMAL with p > 38 stays DECIMAL (Arrow
    /// Decimal256) instead of STRING, `BIT(n > 1)` is BYTES, `SET` is STRING (comma-joined labels),
    /// GEOMETRY is BYTES holding WKB (the 4-byte SRID prefix stripped).
    pub fn from_catalog(c: &CatalogColumn, tinyint1_as_boolean: bool) -> Option<MySqlColumn> {
        let kind = MySqlKind::from_data_type(&c.data_type)?;
        let ct = c.column_type.to_ascii_lowercase();
        let unsigned = ct.contains("unsigned");
        let width = declared_width(&ct);
        let precision = c.numeric_precision.unwrap_or(0).min(65) as u8;
        let scale = c.numeric_scale.unwrap_or(0).min(30) as u8;
        let fsp = c.datetime_precision.unwrap_or(0).min(6) as u8;
        let length: u32 = match kind {
            MySqlKind::Char | MySqlKind::VarChar | MySqlKind::Binary | MySqlKind::VarBinary => {
                c.char_max_length.unwrap_or(0).min(u64::from(u32::MAX)) as u32
            }
            MySqlKind::Bit => width.or(c.numeric_precision.map(|p| p as u32)).unwrap_or(1),
            _ => width.unwrap_or(0),
        };
        let cdc_type = match kind {
            MySqlKind::TinyInt
                if tinyint1_as_boolean && !unsigned && ct.starts_with("tinyint(1)") =>
            {
                CdcType::Boolean
            }
            MySqlKind::TinyInt if unsigned => CdcType::SmallInt,
            MySqlKind::TinyInt => CdcType::TinyInt,
            MySqlKind::SmallInt if unsigned => CdcType::Int,
            MySqlKind::SmallInt => CdcType::SmallInt,
            MySqlKind::MediumInt | MySqlKind::Year => CdcType::Int,
            MySqlKind::Int if unsigned => CdcType::BigInt,
            MySqlKind::Int => CdcType::Int,
            MySqlKind::BigInt if unsigned => CdcType::Decimal {
                precision: 20,
                scale: 0,
            },
            MySqlKind::BigInt => CdcType::BigInt,
            // `FLOAT(p,s)` (any explicit length) is DOUBLE in Flink CDC; plain FLOAT stays FLOAT.
            MySqlKind::Float if ct.contains('(') => CdcType::Double,
            MySqlKind::Float => CdcType::Float,
            MySqlKind::Double => CdcType::Double,
            MySqlKind::Decimal => CdcType::Decimal {
                precision: precision.max(1),
                scale,
            },
            MySqlKind::Bit if length <= 1 => CdcType::Boolean,
            MySqlKind::Bit => CdcType::Bytes,
            MySqlKind::Date => CdcType::Date,
            MySqlKind::DateTime => CdcType::Timestamp { precision: fsp },
            MySqlKind::Timestamp => CdcType::TimestampLtz { precision: fsp },
            MySqlKind::Time => CdcType::Time { precision: fsp },
            MySqlKind::Char => CdcType::Char { length },
            MySqlKind::VarChar if length == 0 => CdcType::String,
            MySqlKind::VarChar => CdcType::Varchar { length },
            MySqlKind::Text | MySqlKind::Enum | MySqlKind::Set | MySqlKind::Json => CdcType::String,
            MySqlKind::Binary => CdcType::Binary { length },
            MySqlKind::VarBinary => CdcType::Varbinary { length },
            MySqlKind::Blob | MySqlKind::Geometry => CdcType::Bytes,
        };
        let labels = match kind {
            MySqlKind::Enum | MySqlKind::Set => parse_labels(&c.column_type),
            _ => Vec::new(),
        };
        Some(MySqlColumn {
            name: c.name.clone(),
            ordinal: c.ordinal_position.saturating_sub(1) as usize,
            kind,
            unsigned,
            length,
            precision,
            scale,
            fsp,
            charset: c.charset.clone(),
            labels,
            nullable: c.nullable,
            column_type: c.column_type.clone(),
            cdc_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str) -> CatalogColumn {
        CatalogColumn {
            name: "c".into(),
            ordinal_position: 1,
            data_type: data_type.into(),
            column_type: column_type.into(),
            nullable: true,
            ..Default::default()
        }
    }

    fn map(data_type: &str, column_type: &str) -> CdcType {
        MySqlColumn::from_catalog(&col(data_type, column_type), true)
            .expect("supported")
            .cdc_type
    }

    #[test]
    fn integer_mapping_follows_flink_cdc() {
        assert_eq!(map("tinyint", "tinyint(1)"), CdcType::Boolean);
        assert_eq!(
            MySqlColumn::from_catalog(&col("tinyint", "tinyint(1)"), false)
                .unwrap()
                .cdc_type,
            CdcType::TinyInt,
            "treat-tinyint1-as-boolean=false keeps TINYINT"
        );
        assert_eq!(map("tinyint", "tinyint(4)"), CdcType::TinyInt);
        assert_eq!(map("tinyint", "tinyint(3) unsigned"), CdcType::SmallInt);
        assert_eq!(map("smallint", "smallint(5) unsigned"), CdcType::Int);
        assert_eq!(map("mediumint", "mediumint(9)"), CdcType::Int);
        assert_eq!(map("int", "int(10) unsigned"), CdcType::BigInt);
        assert_eq!(
            map("bigint", "bigint(20) unsigned"),
            CdcType::Decimal {
                precision: 20,
                scale: 0
            }
        );
        assert_eq!(map("year", "year(4)"), CdcType::Int);
        assert_eq!(map("float", "float"), CdcType::Float);
        assert_eq!(map("float", "float(7,4)"), CdcType::Double);
    }

    #[test]
    fn labels_are_unescaped() {
        assert_eq!(
            parse_labels("enum('a','it''s','b\\\\c','x,y')"),
            vec!["a", "it's", "b\\c", "x,y"]
        );
        assert_eq!(parse_labels("set('')"), vec![""]);
        assert_eq!(declared_width("bit(10)"), Some(10));
        assert_eq!(declared_width("decimal(65,30)"), Some(65));
        assert_eq!(declared_width("text"), None);
    }

    #[test]
    fn unknown_types_are_rejected() {
        assert!(MySqlColumn::from_catalog(&col("vector", "vector(3)"), true).is_none());
    }
}
