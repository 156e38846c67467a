//! Arrow column builders shared by the snapshot reader and the binlog decoder.
//!
//! Both paths append cells through the same typed methods of [`ColumnBuilder`], so the same MySQL
//! cell becomes the same Arrow value whichever path read it. A builder is chosen once per column
//! from the column's Arrow type ([`cdcflow_engine::CdcType::arrow_type`]); each append converts
//! the MySQL value to that type exactly or fails with a [`ValueError`] (never a panic).
//!
//! ```text
//!  snapshot row / binlog row image ──append_*()──▶ ColumnBuilder × n ─┐
//!                                     end_row(op, ts_ms) ──▶ op, ts ──┴─finish()─▶ RecordBatch
//! ```
//!
//! Builders are reusable: [`TableBatchBuilder::finish`] hands out the batch and leaves the builder
//! empty, keeping nothing but Arrow's own buffers. Appending allocates nothing per row beyond the
//! growth of those buffers (text is transcoded straight into the string buffer).
//!
//! Value rules (the same on both paths):
//! - zero or partial-zero dates (`0000-00-00`, `2024-00-10`) become NULL;
//! - `TIMESTAMP` is an instant: microseconds since the epoch in UTC;
//! - `TIME` is a signed duration in microseconds (it may be negative or exceed 24 h);
//! - `ENUM` becomes its label (index 0, MySQL's "invalid value", becomes the empty string), `SET`
//!   the comma-joined labels of its bits;
//! - `BINARY(n)` values are re-padded with `0x00` to `n` bytes (the binlog strips trailing zeros);
//! - a `FLOAT` stored into a `DOUBLE` column keeps its shortest decimal form (3.14 stays 3.14).

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    DurationMicrosecondBuilder, Float32Builder, Float64Builder, Int8Builder, Int16Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, TimeUnit, i256};
use arrow::error::ArrowError;
use cdcflow_engine::{ChangeBatch, Op, SourceOffset, TableSchema, TableSchemaRef};

/// A cell that cannot be stored in its column's Arrow type; the caller adds table/column context.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValueError {
    /// The value does not fit the column's Arrow type (e.g. 300 into Int8).
    #[error("value {value} out of range for {target}")]
    OutOfRange {
        /// The value as text.
        value: String,
        /// The Arrow type it was meant for.
        target: DataType,
    },
    /// This kind of value cannot go into this Arrow type (a catalog/type-mapping mismatch).
    #[error("cannot store a {value_kind} value in a {target} column")]
    Mismatch {
        /// What was appended (`integer`, `date`, ...).
        value_kind: &'static str,
        /// The column's Arrow type.
        target: DataType,
    },
    /// A decimal text that is not a number, or has more fractional digits than the column scale.
    #[error("invalid decimal {text:?} for scale {scale}")]
    InvalidDecimal {
        /// The text as received (lossy UTF-8).
        text: String,
        /// The column's scale.
        scale: i8,
    },
    /// An ENUM index beyond the known labels.
    #[error("ENUM index {index} beyond the {labels} known labels")]
    EnumIndex {
        /// The 1-based index read.
        index: u64,
        /// Number of labels known for the column.
        labels: usize,
    },
    /// An impossible date or time (month 13, minute 61, ...).
    #[error("invalid date/time {text}")]
    InvalidDateTime {
        /// The fields as text.
        text: String,
    },
    /// The Arrow type is not one a MySQL column maps to.
    #[error("unsupported Arrow type {0} for a MySQL column")]
    UnsupportedType(DataType),
}

/// Result of one append.
pub type AppendResult = Result<(), ValueError>;

/// How the bytes of a text column are encoded, so they can be transcoded to UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charset {
    /// utf8mb4 / utf8mb3 / utf8 / ascii: stored as is (invalid sequences become U+FFFD).
    Utf8,
    /// MySQL `latin1`, which is Windows-1252 (0x80-0x9F are the cp1252 characters).
    Latin1,
    /// `binary` (BLOB/BINARY bytes in a text column): invalid UTF-8 becomes U+FFFD.
    Binary,
    /// `ucs2` / `utf16`: big-endian UTF-16.
    Utf16Be,
    /// `utf16le`.
    Utf16Le,
    /// `utf32`: big-endian UTF-32.
    Utf32Be,
}

impl Charset {
    /// Maps a MySQL character-set name (`latin1`, `utf8mb4`, ...) to how we transcode it; unknown
    /// single-byte or multi-byte sets fall back to lossy UTF-8.
    pub fn from_name(name: &str) -> Charset {
        match name.to_ascii_lowercase().as_str() {
            "latin1" | "cp1252" => Charset::Latin1,
            "binary" => Charset::Binary,
            "ucs2" | "utf16" => Charset::Utf16Be,
            "utf16le" => Charset::Utf16Le,
            "utf32" => Charset::Utf32Be,
            _ => Charset::Utf8,
        }
    }

    /// Maps a collation id (binlog TABLE_MAP metadata, result-set column) to its character set.
    pub fn from_collation_id(id: u16) -> Charset {
        match id {
            5 | 8 | 15 | 31 | 47 | 48 | 49 | 94 => Charset::Latin1,
            63 => Charset::Binary,
            35 | 90 | 128..=151 | 159 => Charset::Utf16Be,
            54 | 55 | 101..=124 | 1078..=1100 => Charset::Utf16Be,
            56 | 62 => Charset::Utf16Le,
            60 | 61 | 160..=183 => Charset::Utf32Be,
            _ => Charset::Utf8,
        }
    }
}

/// Windows-1252 code points for bytes 0x80..=0x9F (MySQL's latin1 is cp1252).
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// Powers of ten as i128, 10^0 ..= 10^38.
const POW10_I128: [i128; 39] = {
    let mut t = [1i128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 10^n as i256 (n ≤ 76).
fn pow10_i256(n: u32) -> i256 {
    if n <= 38 {
        i256::from_i128(POW10_I128[n as usize])
    } else {
        i256::from_i128(POW10_I128[38]).wrapping_mul(i256::from_i128(POW10_I128[(n - 38) as usize]))
    }
}

/// Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian, any year).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32; // [0, 399]
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe as i32 - 719_468
}

/// Number of days in month `m` of year `y`.
fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Microseconds per day.
const DAY_US: i64 = 86_400_000_000;

/// The typed Arrow builder behind a [`ColumnBuilder`].
enum Inner {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal128(Decimal128Builder, i8),
    Decimal256(Decimal256Builder, i8),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Duration(DurationMicrosecondBuilder),
}

/// One column's Arrow builder with typed appends for every MySQL value kind.
pub struct ColumnBuilder {
    inner: Inner,
    data_type: DataType,
    /// Bytes appended since the last finish (fixed width + variable data), for batch limits.
    bytes: usize,
}

impl std::fmt::Debug for ColumnBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnBuilder")
            .field("data_type", &self.data_type)
            .finish()
    }
}

impl ColumnBuilder {
    /// Creates a builder for a column of this Arrow type (one of those `CdcType::arrow_type` gives).
    pub fn try_new(data_type: &DataType) -> Result<Self, ValueError> {
        let inner = match data_type {
            DataType::Boolean => Inner::Boolean(BooleanBuilder::new()),
            DataType::Int8 => Inner::Int8(Int8Builder::new()),
            DataType::Int16 => Inner::Int16(Int16Builder::new()),
            DataType::Int32 => Inner::Int32(Int32Builder::new()),
            DataType::Int64 => Inner::Int64(Int64Builder::new()),
            DataType::Float32 => Inner::Float32(Float32Builder::new()),
            DataType::Float64 => Inner::Float64(Float64Builder::new()),
            DataType::Decimal128(p, s) => Inner::Decimal128(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|_| ValueError::UnsupportedType(data_type.clone()))?,
                *s,
            ),
            DataType::Decimal256(p, s) => Inner::Decimal256(
                Decimal256Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .map_err(|_| ValueError::UnsupportedType(data_type.clone()))?,
                *s,
            ),
            DataType::Utf8 => Inner::Utf8(StringBuilder::new()),
            DataType::Binary => Inner::Binary(BinaryBuilder::new()),
            DataType::Date32 => Inner::Date32(Date32Builder::new()),
            DataType::Timestamp(TimeUnit::Microsecond, tz) => {
                Inner::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(tz.clone()))
            }
            DataType::Duration(TimeUnit::Microsecond) => {
                Inner::Duration(DurationMicrosecondBuilder::new())
            }
            other => return Err(ValueError::UnsupportedType(other.clone())),
        };
        Ok(ColumnBuilder {
            inner,
            data_type: data_type.clone(),
            bytes: 0,
        })
    }

    /// The Arrow type this builder produces.
    pub fn data_type(&self) -> &DataType {
        &self.data_type
    }

    /// Bytes appended since the last `finish`, an estimate for batch byte limits.
    pub fn appended_bytes(&self) -> usize {
        self.bytes
    }

    fn mismatch(&self, value_kind: &'static str) -> ValueError {
        ValueError::Mismatch {
            value_kind,
            target: self.data_type.clone(),
        }
    }

    fn out_of_range(&self, value: impl std::fmt::Display) -> ValueError {
        ValueError::OutOfRange {
            value: value.to_string(),
            target: self.data_type.clone(),
        }
    }

    /// Appends SQL NULL.
    pub fn append_null(&mut self) {
        self.bytes += 1;
        match &mut self.inner {
            Inner::Boolean(b) => b.append_null(),
            Inner::Int8(b) => b.append_null(),
            Inner::Int16(b) => b.append_null(),
            Inner::Int32(b) => b.append_null(),
            Inner::Int64(b) => b.append_null(),
            Inner::Float32(b) => b.append_null(),
            Inner::Float64(b) => b.append_null(),
            Inner::Decimal128(b, _) => b.append_null(),
            Inner::Decimal256(b, _) => b.append_null(),
            Inner::Utf8(b) => b.append_null(),
            Inner::Binary(b) => b.append_null(),
            Inner::Date32(b) => b.append_null(),
            Inner::Timestamp(b) => b.append_null(),
            Inner::Duration(b) => b.append_null(),
        }
    }

    /// Appends a signed integer (TINYINT..BIGINT, YEAR, signed BIT values).
    pub fn append_i64(&mut self, v: i64) -> AppendResult {
        self.bytes += 8;
        match &mut self.inner {
            Inner::Int64(b) => b.append_value(v),
            Inner::Int32(b) => match i32::try_from(v) {
                Ok(x) => b.append_value(x),
                Err(_) => return Err(self.out_of_range(v)),
            },
            Inner::Int16(b) => match i16::try_from(v) {
                Ok(x) => b.append_value(x),
                Err(_) => return Err(self.out_of_range(v)),
            },
            Inner::Int8(b) => match i8::try_from(v) {
                Ok(x) => b.append_value(x),
                Err(_) => return Err(self.out_of_range(v)),
            },
            Inner::Boolean(b) => b.append_value(v != 0),
            Inner::Decimal128(..) | Inner::Decimal256(..) => {
                return self.append_decimal_i128(i128::from(v), 0);
            }
            Inner::Float64(b) => b.append_value(v as f64),
            Inner::Float32(b) => b.append_value(v as f32),
            Inner::Utf8(b) => {
                let _ = write!(b, "{v}");
                b.append_value("");
            }
            _ => return Err(self.mismatch("integer")),
        }
        Ok(())
    }

    /// Appends an unsigned integer (`... UNSIGNED` columns; `BIGINT UNSIGNED` may exceed i64).
    pub fn append_u64(&mut self, v: u64) -> AppendResult {
        match i64::try_from(v) {
            Ok(x) => self.append_i64(x),
            Err(_) => match &mut self.inner {
                Inner::Decimal128(..) | Inner::Decimal256(..) => {
                    self.bytes += 8;
                    self.append_decimal_i128(i128::from(v), 0)
                }
                Inner::Float64(b) => {
                    self.bytes += 8;
                    b.append_value(v as f64);
                    Ok(())
                }
                Inner::Utf8(b) => {
                    self.bytes += 8;
                    let _ = write!(b, "{v}");
                    b.append_value("");
                    Ok(())
                }
                _ => Err(self.out_of_range(v)),
            },
        }
    }

    /// Appends a boolean (`TINYINT(1)`, `BIT(1)`).
    pub fn append_bool(&mut self, v: bool) -> AppendResult {
        match &mut self.inner {
            Inner::Boolean(b) => {
                self.bytes += 1;
                b.append_value(v);
                Ok(())
            }
            _ => self.append_i64(i64::from(v)),
        }
    }

    /// Appends a `DOUBLE`.
    pub fn append_f64(&mut self, v: f64) -> AppendResult {
        self.bytes += 8;
        match &mut self.inner {
            Inner::Float64(b) => b.append_value(v),
            Inner::Float32(b) => b.append_value(v as f32),
            Inner::Utf8(b) => {
                let _ = write!(b, "{v}");
                b.append_value("");
            }
            _ => return Err(self.mismatch("floating-point")),
        }
        Ok(())
    }

    /// Appends a `FLOAT`; into a `DOUBLE` column it keeps its shortest decimal form.
    pub fn append_f32(&mut self, v: f32) -> AppendResult {
        match &mut self.inner {
            Inner::Float32(b) => {
                self.bytes += 4;
                b.append_value(v);
                Ok(())
            }
            Inner::Float64(_) => {
                // Widen through the shortest round-trip text, as the server prints FLOATs: the
                // snapshot (text) path then yields the same f64.
                let mut buf = StackStr::<48>::new();
                let _ = write!(buf, "{v}");
                let wide = buf.as_str().parse::<f64>().unwrap_or(f64::from(v));
                self.append_f64(wide)
            }
            _ => self.append_f64(f64::from(v)),
        }
    }

    /// Appends an exact decimal given as its unscaled integer and scale (`123.45` = `12345`, 2).
    pub fn append_decimal_i128(&mut self, unscaled: i128, scale: u8) -> AppendResult {
        self.bytes += 16;
        let scale = scale as i8;
        match &mut self.inner {
            Inner::Decimal128(_, s) => {
                let v = rescale_i128(unscaled, scale, *s)
                    .filter(|v| fits_precision(i256::from_i128(*v), &self.data_type));
                match (v, &mut self.inner) {
                    (Some(v), Inner::Decimal128(b, _)) => {
                        b.append_value(v);
                        Ok(())
                    }
                    _ => Err(self.out_of_range(FmtDecimal(i256::from_i128(unscaled), scale))),
                }
            }
            Inner::Decimal256(..) => {
                self.append_decimal_i256(i256::from_i128(unscaled), scale as u8)
            }
            Inner::Utf8(b) => {
                let _ = write!(b, "{}", FmtDecimal(i256::from_i128(unscaled), scale));
                b.append_value("");
                Ok(())
            }
            Inner::Float64(b) => {
                b.append_value(unscaled as f64 / 10f64.powi(i32::from(scale)));
                Ok(())
            }
            _ => Err(self.mismatch("decimal")),
        }
    }

    /// Appends an exact decimal with up to 76 digits given as unscaled integer and scale.
    pub fn append_decimal_i256(&mut self, unscaled: i256, scale: u8) -> AppendResult {
        self.bytes += 32;
        let scale = scale as i8;
        let target_scale = match &self.inner {
            Inner::Decimal128(_, s) | Inner::Decimal256(_, s) => Some(*s),
            _ => None,
        };
        let rescaled = target_scale.map(|s| rescale_i256(unscaled, scale, s));
        match &mut self.inner {
            Inner::Decimal256(b, _) => match rescaled.flatten() {
                Some(v) if fits_precision(v, &self.data_type) => {
                    b.append_value(v);
                    Ok(())
                }
                _ => Err(self.out_of_range(FmtDecimal(unscaled, scale))),
            },
            Inner::Decimal128(b, _) => match rescaled.flatten().and_then(|v| v.to_i128()) {
                Some(v) if fits_precision(i256::from_i128(v), &self.data_type) => {
                    b.append_value(v);
                    Ok(())
                }
                _ => Err(self.out_of_range(FmtDecimal(unscaled, scale))),
            },
            Inner::Utf8(b) => {
                let _ = write!(b, "{}", FmtDecimal(unscaled, scale));
                b.append_value("");
                Ok(())
            }
            Inner::Float64(b) => {
                let mut buf = StackStr::<96>::new();
                let _ = write!(buf, "{}", FmtDecimal(unscaled, scale));
                b.append_value(buf.as_str().parse::<f64>().unwrap_or(f64::NAN));
                Ok(())
            }
            _ => Err(self.mismatch("decimal")),
        }
    }

    /// Appends a decimal written as text (`-123.4500`, as both MySQL protocols send DECIMAL).
    pub fn append_decimal_str(&mut self, text: &[u8]) -> AppendResult {
        let bad = || ValueError::InvalidDecimal {
            text: String::from_utf8_lossy(text).into_owned(),
            scale: match &self.inner {
                Inner::Decimal128(_, s) | Inner::Decimal256(_, s) => *s,
                _ => 0,
            },
        };
        let (neg, digits) = match text.first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        if digits.is_empty() || digits.len() > 80 {
            return Err(bad());
        }
        let mut v = i256::ZERO;
        let mut scale: u32 = 0;
        let mut seen_point = false;
        let mut any_digit = false;
        let ten = i256::from_i128(10);
        for &c in digits {
            match c {
                b'0'..=b'9' => {
                    v = v
                        .checked_mul(ten)
                        .and_then(|v| v.checked_add(i256::from_i128(i128::from(c - b'0'))))
                        .ok_or_else(bad)?;
                    any_digit = true;
                    if seen_point {
                        scale += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => return Err(bad()),
            }
        }
        if !any_digit || scale > 76 {
            return Err(bad());
        }
        if neg {
            v = v.wrapping_neg();
        }
        // Drop fractional zeros beyond the column scale so `1.50` fits DECIMAL(_, 1).
        if let Inner::Decimal128(_, s) | Inner::Decimal256(_, s) = &self.inner {
            let s = (*s).max(0) as u32;
            while scale > s && v.wrapping_rem(ten) == i256::ZERO {
                v = v.wrapping_div(ten);
                scale -= 1;
            }
            if scale > s {
                return Err(bad());
            }
        }
        self.append_decimal_i256(v, scale as u8)
    }

    /// Appends text in the given character set, transcoded to UTF-8 without a temporary string.
    pub fn append_text(&mut self, bytes: &[u8], charset: Charset) -> AppendResult {
        self.bytes += bytes.len() + 4;
        let Inner::Utf8(b) = &mut self.inner else {
            return match &mut self.inner {
                // Text into a binary column (e.g. a charset-less catalog mapping): keep bytes.
                Inner::Binary(b) => {
                    b.append_value(bytes);
                    Ok(())
                }
                _ => Err(self.mismatch("text")),
            };
        };
        match charset {
            Charset::Utf8 | Charset::Binary => match std::str::from_utf8(bytes) {
                Ok(s) => b.append_value(s),
                Err(_) => {
                    for chunk in bytes.utf8_chunks() {
                        let _ = b.write_str(chunk.valid());
                        if !chunk.invalid().is_empty() {
                            let _ = b.write_char(char::REPLACEMENT_CHARACTER);
                        }
                    }
                    b.append_value("");
                }
            },
            Charset::Latin1 => {
                if bytes.is_ascii() {
                    // Fast path: ASCII is valid UTF-8 as is.
                    b.append_value(std::str::from_utf8(bytes).unwrap_or_default());
                } else {
                    for &c in bytes {
                        let ch = match c {
                            0x80..=0x9F => CP1252_HIGH[(c - 0x80) as usize],
                            _ => char::from(c),
                        };
                        let _ = b.write_char(ch);
                    }
                    b.append_value("");
                }
            }
            Charset::Utf16Be | Charset::Utf16Le => {
                let be = charset == Charset::Utf16Be;
                let units = bytes.chunks_exact(2).map(|c| {
                    if be {
                        u16::from_be_bytes([c[0], c[1]])
                    } else {
                        u16::from_le_bytes([c[0], c[1]])
                    }
                });
                for ch in char::decode_utf16(units) {
                    let _ = b.write_char(ch.unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                b.append_value("");
            }
            Charset::Utf32Be => {
                for c in bytes.chunks_exact(4) {
                    let cp = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                    let _ = b.write_char(char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER));
                }
                b.append_value("");
            }
        }
        Ok(())
    }

    /// Appends UTF-8 text (labels, JSON rendered by us, server-formatted values).
    pub fn append_str(&mut self, s: &str) -> AppendResult {
        if let Inner::Utf8(b) = &mut self.inner {
            // Already UTF-8: no validation pass (ENUM labels, rendered JSON).
            self.bytes += s.len() + 4;
            b.append_value(s);
            return Ok(());
        }
        self.append_text(s.as_bytes(), Charset::Utf8)
    }

    /// Appends raw bytes (VARBINARY, BLOB, GEOMETRY WKB, BIT(n > 1)).
    pub fn append_bytes(&mut self, bytes: &[u8]) -> AppendResult {
        self.bytes += bytes.len() + 4;
        match &mut self.inner {
            Inner::Binary(b) => b.append_value(bytes),
            Inner::Utf8(_) => return self.append_text(bytes, Charset::Binary),
            _ => return Err(self.mismatch("binary")),
        }
        Ok(())
    }

    /// Appends `BINARY(len)` bytes re-padded with `0x00` up to `len` (the binlog strips them).
    pub fn append_bytes_padded(&mut self, bytes: &[u8], len: usize) -> AppendResult {
        if bytes.len() >= len {
            return self.append_bytes(bytes);
        }
        self.bytes += len + 4;
        match &mut self.inner {
            Inner::Binary(b) => {
                use std::io::Write as _;
                let _ = b.write_all(bytes);
                let mut pad = len - bytes.len();
                while pad > 0 {
                    let n = pad.min(ZEROS.len());
                    let _ = b.write_all(&ZEROS[..n]);
                    pad -= n;
                }
                b.append_value([]);
                Ok(())
            }
            _ => self.append_bytes(bytes),
        }
    }

    /// Appends a `BIT(n)` value given as its big-endian bytes.
    pub fn append_bit(&mut self, bytes: &[u8]) -> AppendResult {
        match &self.inner {
            Inner::Boolean(_) => self.append_bool(bytes.iter().any(|&b| b != 0)),
            Inner::Binary(_) | Inner::Utf8(_) => self.append_bytes(bytes),
            _ => {
                let mut v: u64 = 0;
                for &b in bytes.iter().rev().take(8).rev() {
                    v = (v << 8) | u64::from(b);
                }
                self.append_u64(v)
            }
        }
    }

    /// Appends a `DATE`; zero or partial-zero dates become NULL.
    pub fn append_date(&mut self, year: u32, month: u32, day: u32) -> AppendResult {
        if month == 0 || day == 0 {
            self.append_null();
            return Ok(());
        }
        if month > 12 || day > days_in_month(year as i32, month) || year > 9999 {
            return Err(ValueError::InvalidDateTime {
                text: format!("{year:04}-{month:02}-{day:02}"),
            });
        }
        self.bytes += 4;
        let days = days_from_civil(year as i32, month, day);
        match &mut self.inner {
            Inner::Date32(b) => b.append_value(days),
            Inner::Timestamp(b) => b.append_value(i64::from(days) * DAY_US),
            Inner::Utf8(b) => {
                let _ = write!(b, "{year:04}-{month:02}-{day:02}");
                b.append_value("");
            }
            _ => return Err(self.mismatch("date")),
        }
        Ok(())
    }

    /// Appends a `DATETIME` (wall-clock, no zone) or, in a UTC column, a UTC date-time;
    /// zero or partial-zero dates become NULL.
    #[expect(clippy::too_many_arguments, reason = "one argument per DATETIME field")]
    pub fn append_datetime(
        &mut self,
        year: u32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    ) -> AppendResult {
        if month == 0 || day == 0 {
            self.append_null();
            return Ok(());
        }
        if month > 12
            || day > days_in_month(year as i32, month)
            || year > 9999
            || hour > 23
            || minute > 59
            || second > 59
            || micros > 999_999
        {
            return Err(ValueError::InvalidDateTime {
                text: format!(
                    "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}.{micros:06}"
                ),
            });
        }
        let days = days_from_civil(year as i32, month, day);
        let us = i64::from(days) * DAY_US
            + (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * 1_000_000
            + i64::from(micros);
        match &mut self.inner {
            Inner::Timestamp(b) => {
                self.bytes += 8;
                b.append_value(us);
                Ok(())
            }
            Inner::Date32(_) => self.append_date(year, month, day),
            _ => Err(self.mismatch("datetime")),
        }
    }

    /// Appends an instant in microseconds since 1970-01-01 UTC (`TIMESTAMP` columns).
    pub fn append_timestamp_us(&mut self, epoch_us: i64) -> AppendResult {
        self.bytes += 8;
        match &mut self.inner {
            Inner::Timestamp(b) => b.append_value(epoch_us),
            Inner::Int64(b) => b.append_value(epoch_us),
            _ => return Err(self.mismatch("timestamp")),
        }
        Ok(())
    }

    /// Appends a `TIME` as signed microseconds (may be negative or beyond 24 h).
    pub fn append_time_us(&mut self, micros: i64) -> AppendResult {
        self.bytes += 8;
        match &mut self.inner {
            Inner::Duration(b) => b.append_value(micros),
            Inner::Int64(b) => b.append_value(micros),
            _ => return Err(self.mismatch("time")),
        }
        Ok(())
    }

    /// Appends a `YEAR` (0 stays 0; MySQL stores 0000 as its own value).
    pub fn append_year(&mut self, year: u16) -> AppendResult {
        self.append_i64(i64::from(year))
    }

    /// Appends an `ENUM` value by 1-based index: its label; index 0 (invalid value) is `""`.
    pub fn append_enum(&mut self, index: u64, labels: &[String]) -> AppendResult {
        if index == 0 {
            return self.append_str("");
        }
        match usize::try_from(index - 1).ok().and_then(|i| labels.get(i)) {
            Some(label) => self.append_str(label),
            None => Err(ValueError::EnumIndex {
                index,
                labels: labels.len(),
            }),
        }
    }

    /// Appends a `SET` value given as its bitmask: the labels of the set bits, comma-joined.
    pub fn append_set(&mut self, bits: u64, labels: &[String]) -> AppendResult {
        let Inner::Utf8(b) = &mut self.inner else {
            return self.append_u64(bits);
        };
        let mut first = true;
        let mut len = 0;
        for (i, label) in labels.iter().enumerate().take(64) {
            if bits & (1u64 << i) != 0 {
                if !first {
                    let _ = b.write_char(',');
                }
                let _ = b.write_str(label);
                len += label.len() + 1;
                first = false;
            }
        }
        b.append_value("");
        self.bytes += len + 4;
        Ok(())
    }

    /// Finishes the column into an array and resets the builder for the next batch.
    pub fn finish(&mut self) -> ArrayRef {
        self.bytes = 0;
        match &mut self.inner {
            Inner::Boolean(b) => Arc::new(b.finish()),
            Inner::Int8(b) => Arc::new(b.finish()),
            Inner::Int16(b) => Arc::new(b.finish()),
            Inner::Int32(b) => Arc::new(b.finish()),
            Inner::Int64(b) => Arc::new(b.finish()),
            Inner::Float32(b) => Arc::new(b.finish()),
            Inner::Float64(b) => Arc::new(b.finish()),
            Inner::Decimal128(b, _) => Arc::new(b.finish()),
            Inner::Decimal256(b, _) => Arc::new(b.finish()),
            Inner::Utf8(b) => Arc::new(b.finish()),
            Inner::Binary(b) => Arc::new(b.finish()),
            Inner::Date32(b) => Arc::new(b.finish()),
            Inner::Timestamp(b) => Arc::new(b.finish()),
            Inner::Duration(b) => Arc::new(b.finish()),
        }
    }

    /// Number of cells appended since the last `finish`.
    pub fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match &self.inner {
            Inner::Boolean(b) => b.len(),
            Inner::Int8(b) => b.len(),
            Inner::Int16(b) => b.len(),
            Inner::Int32(b) => b.len(),
            Inner::Int64(b) => b.len(),
            Inner::Float32(b) => b.len(),
            Inner::Float64(b) => b.len(),
            Inner::Decimal128(b, _) => b.len(),
            Inner::Decimal256(b, _) => b.len(),
            Inner::Utf8(b) => b.len(),
            Inner::Binary(b) => b.len(),
            Inner::Date32(b) => b.len(),
            Inner::Timestamp(b) => b.len(),
            Inner::Duration(b) => b.len(),
        }
    }

    /// Whether no cell was appended since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Zero bytes used to re-pad BINARY values.
const ZEROS: [u8; 256] = [0; 256];

/// Whether `v` has at most the precision digits of a decimal Arrow type.
fn fits_precision(v: i256, dt: &DataType) -> bool {
    let p = match dt {
        DataType::Decimal128(p, _) | DataType::Decimal256(p, _) => u32::from(*p),
        _ => return true,
    };
    let max = pow10_i256(p);
    v < max && v > max.wrapping_neg()
}

/// Changes the scale of an unscaled i128; `None` on overflow or when non-zero digits would be lost.
fn rescale_i128(v: i128, from: i8, to: i8) -> Option<i128> {
    match to.cmp(&from) {
        std::cmp::Ordering::Equal => Some(v),
        std::cmp::Ordering::Greater => v.checked_mul(*POW10_I128.get((to - from) as usize)?),
        std::cmp::Ordering::Less => {
            let d = *POW10_I128.get((from - to) as usize)?;
            (v % d == 0).then_some(v / d)
        }
    }
}

/// Changes the scale of an unscaled i256; `None` on overflow or when non-zero digits would be lost.
fn rescale_i256(v: i256, from: i8, to: i8) -> Option<i256> {
    match to.cmp(&from) {
        std::cmp::Ordering::Equal => Some(v),
        std::cmp::Ordering::Greater => v.checked_mul(pow10_i256((to - from) as u32)),
        std::cmp::Ordering::Less => {
            let d = pow10_i256((from - to) as u32);
            (v.wrapping_rem(d) == i256::ZERO).then(|| v.wrapping_div(d))
        }
    }
}

/// Renders an unscaled decimal with its scale (`12345`, 2 → `123.45`).
pub fn format_decimal(unscaled: i256, scale: u8) -> String {
    FmtDecimal(unscaled, scale as i8).to_string()
}

/// Formats an unscaled decimal with its scale (`12345`, 2 → `123.45`; `-5`, 2 → `-0.05`).
struct FmtDecimal(i256, i8);

impl std::fmt::Display for FmtDecimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let FmtDecimal(v, scale) = *self;
        let mut digits = StackStr::<96>::new();
        let neg = v.is_negative();
        // i256's Display prints the sign; print the magnitude's digits ourselves.
        let _ = write!(digits, "{v}");
        let d = digits.as_str().trim_start_matches('-');
        let scale = scale.max(0) as usize;
        if neg {
            f.write_char('-')?;
        }
        if scale == 0 {
            return f.write_str(d);
        }
        if d.len() <= scale {
            f.write_str("0.")?;
            for _ in 0..scale - d.len() {
                f.write_char('0')?;
            }
            f.write_str(d)
        } else {
            let (i, frac) = d.split_at(d.len() - scale);
            f.write_str(i)?;
            f.write_char('.')?;
            f.write_str(frac)
        }
    }
}

/// A fixed-capacity string on the stack for formatting numbers without allocating.
struct StackStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> StackStr<N> {
    fn new() -> Self {
        StackStr {
            buf: [0; N],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Write for StackStr<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > N {
            return Err(std::fmt::Error);
        }
        self.buf[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Builders for one table's change batch: a [`ColumnBuilder`] per user column plus the op and
/// event-time system columns.
///
/// Append every user column of a row (in table order), then call [`TableBatchBuilder::end_row`].
/// If an append fails mid-row the builder's columns have different lengths: discard it with
/// [`TableBatchBuilder::reset`] (the decoder treats such errors as fatal anyway).
#[derive(Debug)]
pub struct TableBatchBuilder {
    columns: Vec<ColumnBuilder>,
    ops: Int8Builder,
    ts: Int64Builder,
    rows: usize,
}

impl TableBatchBuilder {
    /// Creates builders for every user column of `schema`.
    pub fn try_new(schema: &TableSchema) -> Result<Self, ValueError> {
        let columns = schema
            .columns
            .iter()
            .map(|c| ColumnBuilder::try_new(&c.data_type.arrow_type()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TableBatchBuilder {
            columns,
            ops: Int8Builder::new(),
            ts: Int64Builder::new(),
            rows: 0,
        })
    }

    /// The builder of user column `i` (table order).
    ///
    /// # Panics
    /// If `i` is not a column index of the table (a caller bug).
    pub fn column(&mut self, i: usize) -> &mut ColumnBuilder {
        &mut self.columns[i]
    }

    /// All user-column builders, in table order.
    pub fn columns_mut(&mut self) -> &mut [ColumnBuilder] {
        &mut self.columns
    }

    /// Number of user columns.
    pub fn num_columns(&self) -> usize {
        self.columns.len()
    }

    /// Completes the current row with its op and event time (epoch ms; 0 for snapshot rows).
    pub fn end_row(&mut self, op: Op, ts_ms: i64) {
        self.ops.append_value(op as i8);
        self.ts.append_value(ts_ms);
        self.rows += 1;
    }

    /// Rows completed since the last finish.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was completed since the last finish.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes appended since the last finish (for byte-based batch limits).
    pub fn appended_bytes(&self) -> usize {
        self.columns
            .iter()
            .map(ColumnBuilder::appended_bytes)
            .sum::<usize>()
            + self.rows * 9
    }

    /// Builds the batch for `schema` (the schema these builders were made for) and resets.
    ///
    /// # Errors
    /// If the columns have different lengths (a row was left half-appended) or do not match the
    /// schema's types: both are bugs in the caller.
    pub fn finish(&mut self, schema: &TableSchemaRef) -> Result<RecordBatch, ArrowError> {
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len() + 2);
        for c in &mut self.columns {
            arrays.push(c.finish());
        }
        arrays.push(Arc::new(self.ops.finish()));
        arrays.push(Arc::new(self.ts.finish()));
        self.rows = 0;
        RecordBatch::try_new(schema.arrow.clone(), arrays)
    }

    /// Builds a [`ChangeBatch`] of the rows so far and resets.
    ///
    /// # Errors
    /// As [`TableBatchBuilder::finish`].
    pub fn finish_change_batch(
        &mut self,
        schema: &TableSchemaRef,
        seq: u64,
        offset: Option<SourceOffset>,
    ) -> Result<ChangeBatch, ArrowError> {
        let data = self.finish(schema)?;
        Ok(ChangeBatch {
            table: schema.clone(),
            data,
            seq,
            offset,
        })
    }

    /// Drops everything appended since the last finish (after an append error).
    pub fn reset(&mut self) {
        for c in &mut self.columns {
            let _ = c.finish();
        }
        let _ = self.ops.finish();
        let _ = self.ts.finish();
        self.rows = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, AsArray, BinaryArray, Date32Array, Decimal128Array, Decimal256Array,
        DurationMicrosecondArray, Float64Array, Int32Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{Decimal128Type, Int8Type, Int16Type};
    use cdcflow_engine::{CdcType, ColumnDef, TableId};

    fn col(dt: DataType) -> ColumnBuilder {
        ColumnBuilder::try_new(&dt).expect("supported type")
    }

    #[test]
    fn integers_convert_exactly_or_fail() {
        let mut b = col(DataType::Int8);
        b.append_i64(-128).unwrap();
        b.append_i64(127).unwrap();
        assert!(b.append_i64(128).is_err(), "128 must not fit Int8");
        let a = b.finish();
        assert_eq!(a.as_primitive::<Int8Type>().values(), &[-128, 127]);

        let mut b = col(DataType::Int16);
        b.append_u64(255).unwrap();
        assert_eq!(b.finish().as_primitive::<Int16Type>().value(0), 255);

        let mut b = col(DataType::Decimal128(20, 0));
        b.append_u64(u64::MAX).unwrap();
        b.append_u64(0).unwrap();
        let a = b.finish();
        let a = a.as_primitive::<Decimal128Type>();
        assert_eq!(a.value(0), i128::from(u64::MAX));
        assert_eq!(a.value(1), 0);
    }

    #[test]
    fn decimals_keep_every_digit() {
        let mut b = col(DataType::Decimal256(65, 30));
        let text = "-12345678901234567890123456789012345.123456789012345678901234567890";
        b.append_decimal_str(text.as_bytes()).unwrap();
        b.append_decimal_str(b"0.000000000000000000000000000001")
            .unwrap();
        let a = b.finish();
        let a = a.as_any().downcast_ref::<Decimal256Array>().unwrap();
        assert_eq!(a.value_as_string(0), text);
        assert_eq!(a.value_as_string(1), "0.000000000000000000000000000001");

        let mut b = col(DataType::Decimal128(10, 2));
        b.append_decimal_str(b"-99999999.99").unwrap();
        b.append_decimal_str(b"-0.5").unwrap();
        b.append_decimal_str(b"1.500").unwrap();
        assert!(
            b.append_decimal_str(b"1.555").is_err(),
            "3 fractional digits into scale 2"
        );
        assert!(
            b.append_decimal_str(b"100000000.00").is_err(),
            "11 digits into precision 10"
        );
        assert!(b.append_decimal_str(b"1e5").is_err(), "not a plain decimal");
        let a = b.finish();
        let a = a.as_any().downcast_ref::<Decimal128Array>().unwrap();
        assert_eq!(a.value_as_string(0), "-99999999.99");
        assert_eq!(a.value_as_string(1), "-0.50");
        assert_eq!(a.value_as_string(2), "1.50");

        let mut b = col(DataType::Utf8);
        b.append_decimal_i128(-5, 2).unwrap();
        b.append_decimal_i128(12345, 2).unwrap();
        let a = b.finish();
        let a = a.as_string::<i32>();
        assert_eq!(a.value(0), "-0.05");
        assert_eq!(a.value(1), "123.45");
    }

    #[test]
    fn text_is_transcoded_to_utf8() {
        let mut b = col(DataType::Utf8);
        b.append_text(&[0x63, 0x61, 0x66, 0xe9], Charset::Latin1)
            .unwrap();
        b.append_text(&[0x80], Charset::Latin1).unwrap();
        b.append_text("emoji 😀".as_bytes(), Charset::Utf8).unwrap();
        b.append_text(&[0x61, 0xff], Charset::Utf8).unwrap();
        b.append_text(&[0x00, 0x41, 0xd8, 0x3d, 0xde, 0x00], Charset::Utf16Be)
            .unwrap();
        let a = b.finish();
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(a.value(0), "café");
        assert_eq!(a.value(1), "€");
        assert_eq!(a.value(2), "emoji 😀");
        assert_eq!(a.value(3), "a\u{FFFD}");
        assert_eq!(a.value(4), "A😀");
        assert_eq!(Charset::from_collation_id(8), Charset::Latin1);
        assert_eq!(Charset::from_collation_id(45), Charset::Utf8);
    }

    #[test]
    fn binary_is_repadded() {
        let mut b = col(DataType::Binary);
        b.append_bytes_padded(&[0xab], 4).unwrap();
        b.append_bytes_padded(&[], 4).unwrap();
        b.append_bytes_padded(&[0xde, 0xad, 0xbe, 0xef], 4).unwrap();
        let a = b.finish();
        let a = a.as_any().downcast_ref::<BinaryArray>().unwrap();
        assert_eq!(a.value(0), &[0xab, 0, 0, 0]);
        assert_eq!(a.value(1), &[0, 0, 0, 0]);
        assert_eq!(a.value(2), &[0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn temporal_values() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19782);
        assert_eq!(days_from_civil(1000, 1, 1), -354285);

        let mut b = col(DataType::Date32);
        b.append_date(9999, 12, 31).unwrap();
        b.append_date(0, 0, 0).unwrap();
        assert!(
            b.append_date(2023, 2, 29).is_err(),
            "2023 is not a leap year"
        );
        let a = b.finish();
        let a = a.as_any().downcast_ref::<Date32Array>().unwrap();
        assert_eq!(a.value(0), 2_932_896);
        assert!(a.is_null(1), "zero date becomes NULL");

        let mut b = col(DataType::Timestamp(TimeUnit::Microsecond, None));
        b.append_datetime(2024, 2, 29, 23, 59, 59, 123_456).unwrap();
        let a = b.finish();
        let a = a
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), 19782 * DAY_US + 86_399_123_456);

        let mut b = col(DataType::Duration(TimeUnit::Microsecond));
        b.append_time_us(-(838 * 3600 + 59 * 60 + 59) * 1_000_000)
            .unwrap();
        let a = b.finish();
        let a = a
            .as_any()
            .downcast_ref::<DurationMicrosecondArray>()
            .unwrap();
        assert_eq!(a.value(0), -3_020_399_000_000);
    }

    #[test]
    fn enum_set_and_float_widening() {
        let labels: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let mut b = col(DataType::Utf8);
        b.append_enum(2, &labels).unwrap();
        b.append_enum(0, &labels).unwrap();
        assert!(b.append_enum(5, &labels).is_err(), "index beyond labels");
        b.append_set(0b0101, &labels).unwrap();
        b.append_set(0, &labels).unwrap();
        let a = b.finish();
        let a = a.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(
            (a.value(0), a.value(1), a.value(2), a.value(3)),
            ("b", "", "a,c", "")
        );

        let mut b = col(DataType::Float64);
        b.append_f32(1.1).unwrap();
        let a = b.finish();
        assert_eq!(
            a.as_any().downcast_ref::<Float64Array>().unwrap().value(0),
            1.1
        );
    }

    #[test]
    fn table_batch_builder_is_reusable() {
        let schema = Arc::new(TableSchema::new(
            TableId::new("db", "t"),
            vec![ColumnDef {
                name: "id".into(),
                data_type: CdcType::Int,
                nullable: false,
                default: None,
                comment: None,
                source_type: "int".into(),
            }],
            vec!["id".into()],
            None,
            1,
        ));
        let mut tb = TableBatchBuilder::try_new(&schema).unwrap();
        for round in 0..2 {
            tb.column(0).append_i64(round).unwrap();
            tb.end_row(Op::Insert, 7);
            tb.column(0).append_null();
            tb.end_row(Op::Delete, 8);
            let batch = tb.finish_change_batch(&schema, 1, None).unwrap();
            assert_eq!(batch.num_rows(), 2);
            assert_eq!(batch.ops().values(), &[0, 3]);
            assert_eq!(batch.event_ts().values(), &[7, 8]);
            let ids = batch
                .data
                .column(0)
                .as_any()
                .downcast_ref::<Int32Array>()
                .unwrap();
            assert_eq!(ids.value(0), round as i32);
            assert!(tb.is_empty());
        }
    }
}
