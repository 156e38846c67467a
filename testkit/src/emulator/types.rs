//! Column types and cell values of the emulated tables, and the conversion of loaded text into
//! them with the checks Doris and StarRocks apply (integer ranges, DECIMAL precision and scale,
//! DATE/DATETIME formats, string length in bytes, BOOLEAN spellings).

use std::cmp::Ordering;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

/// A declared column type, as written in `CREATE TABLE` (V2/V3 spellings fold into one variant).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// `BOOLEAN`.
    Boolean,
    /// `TINYINT`, 1 byte signed.
    TinyInt,
    /// `SMALLINT`, 2 bytes signed.
    SmallInt,
    /// `INT`, 4 bytes signed.
    Int,
    /// `BIGINT`, 8 bytes signed.
    BigInt,
    /// `LARGEINT`, 16 bytes signed.
    LargeInt,
    /// `FLOAT`, single precision.
    Float,
    /// `DOUBLE`, double precision.
    Double,
    /// `DECIMAL`/`DECIMALV3(p,s)`.
    Decimal {
        /// Total digits.
        precision: u8,
        /// Digits after the point.
        scale: u8,
    },
    /// `DATE`/`DATEV2`.
    Date,
    /// `DATETIME`/`DATETIMEV2(p)`.
    DateTime {
        /// Fractional-second digits, 0..=6.
        precision: u8,
    },
    /// `CHAR(n)`, n in bytes.
    Char(u32),
    /// `VARCHAR(n)`, n in bytes.
    Varchar(u32),
    /// `STRING`/`TEXT`.
    String,
    /// `JSON`/`JSONB`.
    Json,
    /// `VARBINARY(n)`/`BINARY`.
    Varbinary(u32),
    /// Any other declared type (ARRAY<...>, MAP, BITMAP...), kept as text.
    Other(String),
}

impl ColumnType {
    /// Builds a type from its SQL name (upper case) and numeric arguments; `None` for a bad shape.
    pub fn from_sql(name: &str, args: &[u32], raw: &str) -> Option<ColumnType> {
        let arg = |i: usize| args.get(i).copied();
        Some(match name {
            "BOOLEAN" | "BOOL" => ColumnType::Boolean,
            "TINYINT" => ColumnType::TinyInt,
            "SMALLINT" => ColumnType::SmallInt,
            "INT" | "INTEGER" | "MEDIUMINT" => ColumnType::Int,
            "BIGINT" => ColumnType::BigInt,
            "LARGEINT" => ColumnType::LargeInt,
            "FLOAT" => ColumnType::Float,
            "DOUBLE" => ColumnType::Double,
            "DECIMAL" | "DECIMALV2" | "DECIMALV3" | "NUMERIC" => {
                let precision = arg(0).unwrap_or(if name == "DECIMALV2" { 27 } else { 9 });
                let scale = arg(1).unwrap_or(if name == "DECIMALV2" && args.is_empty() {
                    9
                } else {
                    0
                });
                if precision == 0 || precision > 38 || scale > precision {
                    return None;
                }
                ColumnType::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                }
            }
            "DATE" | "DATEV2" => ColumnType::Date,
            "DATETIME" | "DATETIMEV2" | "TIMESTAMP" => {
                let precision = arg(0).unwrap_or(0);
                if precision > 6 {
                    return None;
                }
                ColumnType::DateTime {
                    precision: precision as u8,
                }
            }
            "CHAR" => ColumnType::Char(arg(0).unwrap_or(1)),
            "VARCHAR" => ColumnType::Varchar(arg(0).unwrap_or(65533)),
            "STRING" | "TEXT" => ColumnType::String,
            "JSON" | "JSONB" => ColumnType::Json,
            "VARBINARY" | "BINARY" => ColumnType::Varbinary(arg(0).unwrap_or(1_048_576)),
            _ => ColumnType::Other(raw.to_string()),
        })
    }

    /// Lower-case base name, as `information_schema.COLUMNS.DATA_TYPE` shows it.
    pub fn data_type_name(&self) -> String {
        match self {
            ColumnType::Boolean => "boolean".into(),
            ColumnType::TinyInt => "tinyint".into(),
            ColumnType::SmallInt => "smallint".into(),
            ColumnType::Int => "int".into(),
            ColumnType::BigInt => "bigint".into(),
            ColumnType::LargeInt => "largeint".into(),
            ColumnType::Float => "float".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Decimal { .. } => "decimal".into(),
            ColumnType::Date => "date".into(),
            ColumnType::DateTime { .. } => "datetime".into(),
            ColumnType::Char(_) => "char".into(),
            ColumnType::Varchar(_) => "varchar".into(),
            ColumnType::String => "text".into(),
            ColumnType::Json => "json".into(),
            ColumnType::Varbinary(_) => "varbinary".into(),
            ColumnType::Other(s) => s.to_ascii_lowercase(),
        }
    }

    /// Character/byte length for string types (`CHARACTER_MAXIMUM_LENGTH`), else `None`.
    pub fn char_length(&self) -> Option<u64> {
        match self {
            ColumnType::Char(n) | ColumnType::Varchar(n) | ColumnType::Varbinary(n) => {
                Some(u64::from(*n))
            }
            ColumnType::String => Some(2_147_483_643),
            _ => None,
        }
    }

    /// Numeric precision (`NUMERIC_PRECISION` / `COLUMN_SIZE`) for numeric types, else `None`.
    pub fn numeric_precision(&self) -> Option<u64> {
        match self {
            ColumnType::TinyInt => Some(3),
            ColumnType::SmallInt => Some(5),
            ColumnType::Int => Some(10),
            ColumnType::BigInt => Some(19),
            ColumnType::LargeInt => Some(39),
            ColumnType::Float => Some(7),
            ColumnType::Double => Some(15),
            ColumnType::Decimal { precision, .. } => Some(u64::from(*precision)),
            ColumnType::Boolean => Some(1),
            _ => None,
        }
    }

    /// Numeric scale (`NUMERIC_SCALE` / `DECIMAL_DIGITS`) for numeric types, else `None`.
    pub fn numeric_scale(&self) -> Option<u64> {
        match self {
            ColumnType::Decimal { scale, .. } => Some(u64::from(*scale)),
            ColumnType::TinyInt
            | ColumnType::SmallInt
            | ColumnType::Int
            | ColumnType::BigInt
            | ColumnType::LargeInt
            | ColumnType::Boolean => Some(0),
            ColumnType::DateTime { precision } => Some(u64::from(*precision)),
            _ => None,
        }
    }

    /// Rank used to decide whether `MODIFY COLUMN` widens (allowed) or narrows (refused).
    fn int_rank(&self) -> Option<u8> {
        match self {
            ColumnType::TinyInt => Some(1),
            ColumnType::SmallInt => Some(2),
            ColumnType::Int => Some(3),
            ColumnType::BigInt => Some(4),
            ColumnType::LargeInt => Some(5),
            _ => None,
        }
    }

    /// Whether `MODIFY COLUMN` may change `self` into `to` (Doris and StarRocks only widen).
    pub fn can_widen_to(&self, to: &ColumnType) -> bool {
        if self == to {
            return true;
        }
        match (self, to) {
            (a, b) if a.int_rank().is_some() && b.int_rank().is_some() => {
                a.int_rank() <= b.int_rank()
            }
            (a, ColumnType::Decimal { .. }) if a.int_rank().is_some() => true,
            (ColumnType::Float, ColumnType::Double) => true,
            (ColumnType::Varchar(a), ColumnType::Varchar(b)) => a <= b,
            (ColumnType::Char(a), ColumnType::Varchar(b)) => a <= b,
            (ColumnType::Char(_) | ColumnType::Varchar(_), ColumnType::String) => true,
            (
                ColumnType::Decimal {
                    precision: p1,
                    scale: s1,
                },
                ColumnType::Decimal {
                    precision: p2,
                    scale: s2,
                },
            ) => s1 <= s2 && p1 - s1 <= p2 - s2,
            (ColumnType::DateTime { precision: a }, ColumnType::DateTime { precision: b }) => {
                a <= b
            }
            (ColumnType::Date, ColumnType::DateTime { .. }) => true,
            _ => false,
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Boolean => f.write_str("BOOLEAN"),
            ColumnType::TinyInt => f.write_str("TINYINT"),
            ColumnType::SmallInt => f.write_str("SMALLINT"),
            ColumnType::Int => f.write_str("INT"),
            ColumnType::BigInt => f.write_str("BIGINT"),
            ColumnType::LargeInt => f.write_str("LARGEINT"),
            ColumnType::Float => f.write_str("FLOAT"),
            ColumnType::Double => f.write_str("DOUBLE"),
            ColumnType::Decimal { precision, scale } => write!(f, "DECIMAL({precision}, {scale})"),
            ColumnType::Date => f.write_str("DATE"),
            ColumnType::DateTime { precision: 0 } => f.write_str("DATETIME"),
            ColumnType::DateTime { precision } => write!(f, "DATETIME({precision})"),
            ColumnType::Char(n) => write!(f, "CHAR({n})"),
            ColumnType::Varchar(n) => write!(f, "VARCHAR({n})"),
            ColumnType::String => f.write_str("TEXT"),
            ColumnType::Json => f.write_str("JSON"),
            ColumnType::Varbinary(n) => write!(f, "VARBINARY({n})"),
            ColumnType::Other(s) => f.write_str(s),
        }
    }
}

/// One stored cell. Ordered so that key tuples sort like the server sorts them.
#[derive(Clone, Debug)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOLEAN.
    Bool(bool),
    /// Any integer type (LARGEINT fits).
    Int(i128),
    /// FLOAT/DOUBLE.
    Float(f64),
    /// DECIMAL as unscaled integer and scale.
    Decimal(i128, u8),
    /// Strings, JSON text, binary as text, unknown types.
    Str(String),
    /// DATE.
    Date(NaiveDate),
    /// DATETIME with its declared precision (for rendering).
    DateTime(NaiveDateTime, u8),
}

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) | Value::Decimal(..) => 2,
            Value::Date(_) | Value::DateTime(..) => 3,
            Value::Str(_) => 4,
        }
    }

    /// Whether this is SQL NULL.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The cell as JSON: integers as numbers (strings beyond i64/u64), DECIMAL as a string with
    /// exactly `scale` digits, DATE `YYYY-MM-DD`, DATETIME `YYYY-MM-DD HH:MM:SS[.f]`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    v.into()
                } else if let Ok(v) = u64::try_from(*i) {
                    v.into()
                } else {
                    serde_json::Value::String(i.to_string())
                }
            }
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or_else(|| serde_json::Value::String(f.to_string())),
            other => serde_json::Value::String(other.to_text().unwrap_or_default()),
        }
    }

    /// The cell as MySQL text-protocol bytes (`None` is NULL); BOOLEAN renders as `1`/`0`.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Decimal(u, s) => format_decimal(*u, *s),
            Value::Str(s) => s.clone(),
            Value::Date(d) => d.format("%Y-%m-%d").to_string(),
            Value::DateTime(dt, p) => format_datetime(dt, *p),
        })
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Decimal(u, s) => Some(*u as f64 / 10f64.powi(i32::from(*s))),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Decimal(a, sa), Value::Decimal(b, sb)) if sa == sb => a.cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Date(a), Value::Date(b)) => a.cmp(b),
            (Value::DateTime(a, _), Value::DateTime(b, _)) => a.cmp(b),
            (Value::Date(a), Value::DateTime(b, _)) => {
                a.and_hms_opt(0, 0, 0).unwrap_or_default().cmp(b)
            }
            (Value::DateTime(a, _), Value::Date(b)) => {
                a.cmp(&b.and_hms_opt(0, 0, 0).unwrap_or_default())
            }
            (a, b) if a.rank() == 2 && b.rank() == 2 => {
                let (x, y) = (a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// Renders an unscaled decimal with exactly `scale` fractional digits.
pub fn format_decimal(unscaled: i128, scale: u8) -> String {
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let scale = usize::from(scale);
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if scale == 0 {
        out.push_str(&digits);
        return out;
    }
    let padded = if digits.len() <= scale {
        format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    out.push_str(int);
    out.push('.');
    out.push_str(frac);
    out
}

fn format_datetime(dt: &NaiveDateTime, precision: u8) -> String {
    let base = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    if precision == 0 {
        return base;
    }
    let micros = dt.nanosecond() / 1000;
    let frac = format!("{micros:06}");
    format!("{base}.{}", &frac[..usize::from(precision.min(6))])
}

/// Why a loaded value does not fit its column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvError {
    /// The text is not a value of the type (e.g. `abc` for INT, `2024-13-01` for DATE).
    Invalid,
    /// The value is of the right kind but out of range (INT overflow, DECIMAL precision).
    OutOfRange,
    /// A string longer (in bytes) than the declared length: filtered even outside strict mode.
    TooLong,
}

/// Converts loaded text into a cell of type `ty`.
pub fn convert_text(text: &str, ty: &ColumnType) -> Result<Value, ConvError> {
    match ty {
        ColumnType::Boolean => match text.trim().to_ascii_lowercase().as_str() {
            "1" | "true" => Ok(Value::Bool(true)),
            "0" | "false" => Ok(Value::Bool(false)),
            _ => Err(ConvError::Invalid),
        },
        ColumnType::TinyInt => parse_int(text, -128, 127),
        ColumnType::SmallInt => parse_int(text, -32768, 32767),
        ColumnType::Int => parse_int(text, i128::from(i32::MIN), i128::from(i32::MAX)),
        ColumnType::BigInt => parse_int(text, i128::from(i64::MIN), i128::from(i64::MAX)),
        ColumnType::LargeInt => parse_int(text, i128::MIN, i128::MAX),
        ColumnType::Float => {
            let v: f64 = text.trim().parse().map_err(|_| ConvError::Invalid)?;
            if v.is_finite() && v.abs() > f64::from(f32::MAX) {
                return Err(ConvError::OutOfRange);
            }
            Ok(Value::Float(f64::from(v as f32)))
        }
        ColumnType::Double => text
            .trim()
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| ConvError::Invalid),
        ColumnType::Decimal { precision, scale } => parse_decimal(text.trim(), *precision, *scale),
        ColumnType::Date => parse_datetime(text.trim(), 0).map(|dt| Value::Date(dt.date())),
        ColumnType::DateTime { precision } => {
            parse_datetime(text.trim(), *precision).map(|dt| Value::DateTime(dt, *precision))
        }
        ColumnType::Char(n) | ColumnType::Varchar(n) | ColumnType::Varbinary(n) => {
            if text.len() > *n as usize {
                Err(ConvError::TooLong)
            } else {
                Ok(Value::Str(text.to_string()))
            }
        }
        ColumnType::Json => serde_json::from_str::<serde_json::Value>(text)
            .map(|_| Value::Str(text.to_string()))
            .map_err(|_| ConvError::Invalid),
        ColumnType::String | ColumnType::Other(_) => Ok(Value::Str(text.to_string())),
    }
}

fn parse_int(text: &str, min: i128, max: i128) -> Result<Value, ConvError> {
    let t = text.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConvError::Invalid);
    }
    let v: i128 = t.parse().map_err(|_| ConvError::OutOfRange)?;
    if v < min || v > max {
        Err(ConvError::OutOfRange)
    } else {
        Ok(Value::Int(v))
    }
}

/// Parses a decimal literal, rounds half away from zero to `scale`, checks the integer digits.
fn parse_decimal(t: &str, precision: u8, scale: u8) -> Result<Value, ConvError> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ConvError::Invalid);
    }
    let int_trim = int_part.trim_start_matches('0');
    let scale_us = usize::from(scale);
    let mut frac: String = frac_part.chars().take(scale_us).collect();
    while frac.len() < scale_us {
        frac.push('0');
    }
    let round_up = frac_part
        .as_bytes()
        .get(scale_us)
        .is_some_and(|d| *d >= b'5');
    let all = format!("{int_trim}{frac}");
    let mut unscaled: i128 = if all.is_empty() {
        0
    } else {
        all.parse().map_err(|_| ConvError::OutOfRange)?
    };
    if round_up {
        unscaled = unscaled.checked_add(1).ok_or(ConvError::OutOfRange)?;
    }
    let limit = 10i128
        .checked_pow(u32::from(precision))
        .ok_or(ConvError::OutOfRange)?;
    if unscaled >= limit {
        return Err(ConvError::OutOfRange);
    }
    Ok(Value::Decimal(
        if neg { -unscaled } else { unscaled },
        scale,
    ))
}

/// The common shapes `YYYY-MM-DD` and `YYYY-MM-DD[ T]HH:MM:SS[.f]` without format parsing.
fn fast_datetime(t: &str) -> Option<NaiveDateTime> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = b.get(r)?;
        s.iter()
            .all(u8::is_ascii_digit)
            .then(|| s.iter().fold(0u32, |a, d| a * 10 + u32::from(d - b'0')))
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)?;
    if b.len() == 10 {
        return date.and_hms_opt(0, 0, 0);
    }
    if b.len() < 19 || !matches!(b[10], b' ' | b'T') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let mut nanos = 0u32;
    if b.len() > 19 {
        let frac = b.get(20..)?;
        if b[19] != b'.'
            || frac.is_empty()
            || frac.len() > 9
            || !frac.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        nanos = num(20..b.len())? * 10u32.pow(9 - frac.len() as u32);
    }
    date.and_hms_nano_opt(num(11..13)?, num(14..16)?, num(17..19)?, nanos)
}

/// Parses `YYYY-MM-DD`, `YYYYMMDD`, and `YYYY-MM-DD[ T]HH:MM[:SS[.f]]`; rounds to `precision`.
fn parse_datetime(t: &str, precision: u8) -> Result<NaiveDateTime, ConvError> {
    const FORMATS: [&str; 5] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y%m%d%H%M%S",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ];
    let parsed = fast_datetime(t)
        .or_else(|| {
            FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok())
        })
        .or_else(|| {
            ["%Y-%m-%d", "%Y%m%d"]
                .iter()
                .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or(ConvError::Invalid)?;
    if parsed.year() < 0 || parsed.year() > 9999 {
        return Err(ConvError::OutOfRange);
    }
    let unit = 10u32.pow(9 - u32::from(precision.min(6)));
    let nanos = parsed.nanosecond() % 1_000_000_000;
    let rem = nanos % unit;
    let base = parsed
        .with_nanosecond(nanos - rem)
        .ok_or(ConvError::Invalid)?;
    if rem * 2 >= unit {
        base.checked_add_signed(chrono::Duration::nanoseconds(i64::from(unit)))
            .ok_or(ConvError::OutOfRange)
    } else {
        Ok(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_rounds_and_checks_precision() {
        let ty = ColumnType::Decimal {
            precision: 5,
            scale: 2,
        };
        assert_eq!(
            convert_text("123.456", &ty).map(|v| v.to_text()),
            Ok(Some("123.46".into()))
        );
        assert_eq!(
            convert_text("-0.5", &ty).map(|v| v.to_text()),
            Ok(Some("-0.50".into()))
        );
        assert_eq!(
            convert_text("1234.5", &ty),
            Err(ConvError::OutOfRange),
            "4 integer digits exceed p-s=3"
        );
        assert_eq!(convert_text("1x", &ty), Err(ConvError::Invalid));
    }

    #[test]
    fn ints_dates_and_strings_follow_declared_types() {
        assert_eq!(
            convert_text("128", &ColumnType::TinyInt),
            Err(ConvError::OutOfRange)
        );
        assert_eq!(
            convert_text("1.5", &ColumnType::Int),
            Err(ConvError::Invalid)
        );
        assert_eq!(
            convert_text("2024-02-30", &ColumnType::Date),
            Err(ConvError::Invalid)
        );
        let dt = convert_text(
            "2024-01-02 03:04:05.1234567",
            &ColumnType::DateTime { precision: 3 },
        )
        .unwrap();
        assert_eq!(dt.to_text().unwrap(), "2024-01-02 03:04:05.123");
        assert_eq!(
            convert_text("héllo", &ColumnType::Varchar(5)),
            Err(ConvError::TooLong),
            "é is 2 bytes"
        );
        assert_eq!(
            convert_text("TRUE", &ColumnType::Boolean),
            Ok(Value::Bool(true))
        );
    }
}
