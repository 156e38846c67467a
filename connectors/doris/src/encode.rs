//! Change batches → Stream Load bodies: JSON lines, CSV and Arrow IPC, one encoder per column.
//!
//! ```text
//!  ChangeBatch ──select_rows_keyed()──▶ Selection (row ids, delete flags)
//!      │                                   │
//!      └──── per column: make_cell_encoder(DataType)  (dispatch once per column per batch)
//!                      │
//!                      ▼
//!            row loop: cell.write(row, &mut Vec<u8>)  → {"a":1,...}\n   or   1\x01x\x01\N\x02
//! ```
//!
//! No per-row value objects: each column's encoder downcasts its Arrow array once and appends
//! the rendering of one cell straight into the (reused) body buffer.
//!
//! Value rendering (flink-cdc-pipeline.md §3.2/§3.5, with the fixes cdcflow chose):
//! - DATE `yyyy-MM-dd`; DATETIME `yyyy-MM-dd HH:mm:ss[.f…]` with exactly the column's precision
//!   (the fraction is **kept**, unlike StarRocks' Flink sink); TIMESTAMP_LTZ is first shifted to the
//!   pipeline's `local-time-zone`.
//! - TIME as text `[-]HH:mm:ss[.f…]` (hours may exceed 24, as MySQL allows).
//! - DECIMAL (128 and 256 bit) as exact decimal text; in JSON it is a *string* so no reader can
//!   round it through a double.
//! - BINARY/VARBINARY/BLOB as base64 text (the Doris/StarRocks column is STRING/VARBINARY text).
//! - Floats in shortest round-trip form; NaN/±inf (impossible from MySQL) become NULL.
//!
//! CSV is only safe when no value contains a separator byte or is the literal `\N`; the CSV encoder
//! checks every text cell and reports [`EncodeError::CsvUnsafe`] instead of writing a shifted row,
//! so the caller can re-encode the batch as JSON.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayAccessor, ArrayRef, AsArray, BooleanArray, DynComparator, Int8Array, Int64Array,
    RecordBatch, UInt32Array, make_comparator,
};
use arrow::compute::SortOptions;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Decimal256Type, DurationMicrosecondType, Field,
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, Schema, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use base64::Engine as _;
use cdcflow_engine::change::Op;
use cdcflow_engine::schema::{CdcType, TableSchema};
use chrono::{Offset, TimeZone};

use crate::error::SinkError;

/// Body format of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (`read_json_by_line` / NDJSON).
    Json,
    /// Delimited text; NULL is `\N`.
    Csv {
        /// Column separator bytes (already decoded from `\xHH`).
        column_sep: Vec<u8>,
        /// Row delimiter bytes.
        row_delim: Vec<u8>,
    },
    /// Concatenated Arrow IPC streams (Doris 2.1+ `format: arrow`).
    Arrow,
}

impl Format {
    /// The `format` header value.
    pub fn header_value(&self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv { .. } => "csv",
            Format::Arrow => "arrow",
        }
    }

    /// CSV with the separators cdcflow uses by default: `\x01` between fields, `\x02` between rows.
    pub fn safe_csv() -> Self {
        Format::Csv {
            column_sep: vec![1],
            row_delim: vec![2],
        }
    }
}

/// Decodes a separator as Doris and StarRocks headers spell it: `\xHH…` hex or literal text
/// (with Doris's `\t`, `\n`, `\r`, `\\` escapes).
pub fn decode_separator(s: &str) -> Option<Vec<u8>> {
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("\\x") {
        let mut out = Vec::new();
        for part in lower.split("\\x").skip(1) {
            if part.len() % 2 != 0 || part.is_empty() {
                return None;
            }
            for i in (0..part.len()).step_by(2) {
                out.push(u8::from_str_radix(&part[i..i + 2], 16).ok()?);
            }
        }
        return if out.is_empty() { None } else { Some(out) };
    }
    let unescaped = s
        .replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\\\", "\\");
    if unescaped.is_empty() {
        None
    } else {
        Some(unescaped.into_bytes())
    }
}

/// The pipeline's `local-time-zone`, resolved once: TIMESTAMP_LTZ values are rendered in it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LocalZone {
    /// A fixed offset (`UTC`, `+08:00`).
    Fixed(chrono::FixedOffset),
    /// An IANA zone with daylight-saving rules.
    Named(chrono_tz::Tz),
}

impl LocalZone {
    /// Parses `UTC`, `Z`, `+08:00`, `-0530`, `GMT+8` or an IANA name; `None` (unset) means UTC.
    pub fn parse(s: Option<&str>) -> Option<Self> {
        let Some(s) = s.map(str::trim) else {
            return Some(LocalZone::utc());
        };
        let up = s.to_ascii_uppercase();
        if up == "UTC" || up == "Z" || up == "GMT" {
            return Some(LocalZone::utc());
        }
        let off = up
            .strip_prefix("GMT")
            .or_else(|| up.strip_prefix("UTC"))
            .unwrap_or(&up);
        if let Some(rest) = off
            .strip_prefix('+')
            .map(|r| (1, r))
            .or_else(|| off.strip_prefix('-').map(|r| (-1, r)))
        {
            let (sign, digits) = rest;
            let (h, m) = if let Some((h, m)) = digits.split_once(':') {
                (h.parse::<i32>().ok()?, m.parse::<i32>().ok()?)
            } else if digits.len() == 4 {
                (
                    digits[..2].parse::<i32>().ok()?,
                    digits[2..].parse::<i32>().ok()?,
                )
            } else {
                (digits.parse::<i32>().ok()?, 0)
            };
            return chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).map(LocalZone::Fixed);
        }
        s.parse::<chrono_tz::Tz>().ok().map(LocalZone::Named)
    }

    /// UTC.
    pub fn utc() -> Self {
        LocalZone::Fixed(chrono::Utc.fix())
    }

    /// Shifts an instant (epoch µs) to local wall-clock µs.
    fn to_local_micros(self, micros: i64) -> i64 {
        let secs = match self {
            LocalZone::Fixed(f) => f.local_minus_utc() as i64,
            LocalZone::Named(tz) => {
                let s = micros.div_euclid(1_000_000);
                match chrono::DateTime::from_timestamp(s, 0) {
                    Some(dt) => tz
                        .offset_from_utc_datetime(&dt.naive_utc())
                        .fix()
                        .local_minus_utc() as i64,
                    None => 0,
                }
            }
        };
        micros.saturating_add(secs * 1_000_000)
    }
}

/// How change kinds become rows of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowPolicy {
    /// Drop `-U` rows (Flink's `sink.ignore.update-before`, default true); otherwise they are deletes.
    pub ignore_update_before: bool,
    /// Whether deletes are sent (with the delete flag set); otherwise delete rows are dropped.
    pub deletes: bool,
}

/// The rows of one batch that go into a load.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Row indices into the batch, in order.
    pub rows: Vec<u32>,
    /// Per selected row: true when it is a delete.
    pub deletes: Vec<bool>,
}

impl Selection {
    /// Number of selected rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row is selected.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Picks the rows of a batch to load according to their op; unknown op codes are an error.
/// Without key columns a key change cannot be seen: see [`select_rows_keyed`].
pub fn select_rows(
    ops: &Int8Array,
    policy: RowPolicy,
    table: &str,
) -> Result<Selection, SinkError> {
    select_rows_keyed(ops, &[], policy, table)
}

/// Picks the rows of a batch to load, turning the `-U` of a key-changing update into a delete.
///
/// With `ignore_update_before`, a `-U` row is normally skipped (its `+U` upserts the same key).
/// When the `+U` that directly follows it has different values in `keys` (the primary-key
/// columns), the update moved the row to a new key and the old key must go: the `-U` is then
/// a delete (as Flink's MySQL source emits a delete + insert for a key change). A `-U` that is
/// not followed by a `+U` in this batch is a delete too (deleting then upserting the same key
/// converges to the same state). Keys are compared per column with Arrow comparators built
/// once per batch, and only when the batch has `-U` rows.
pub fn select_rows_keyed(
    ops: &Int8Array,
    keys: &[&dyn Array],
    policy: RowPolicy,
    table: &str,
) -> Result<Selection, SinkError> {
    let mut sel = Selection {
        rows: Vec::with_capacity(ops.len()),
        deletes: Vec::with_capacity(ops.len()),
    };
    let values = ops.values();
    // Built lazily at the first `-U` worth checking; `None` inside: no usable comparator (an
    // unsupported key type), so every `-U` is taken as a key change (a safe delete).
    let mut comparators: Option<Option<Vec<DynComparator>>> = None;
    for (i, v) in values.iter().enumerate() {
        let del = match Op::from_i8(*v) {
            Some(Op::Insert) | Some(Op::UpdateAfter) => false,
            Some(Op::UpdateBefore) if policy.ignore_update_before => {
                if !policy.deletes || keys.is_empty() {
                    continue;
                }
                let next_is_after = values
                    .get(i + 1)
                    .is_some_and(|n| Op::from_i8(*n) == Some(Op::UpdateAfter));
                if next_is_after {
                    let cmps = comparators.get_or_insert_with(|| {
                        keys.iter()
                            .map(|k| make_comparator(*k, *k, SortOptions::default()))
                            .collect::<Result<Vec<_>, _>>()
                            .ok()
                    });
                    let same_key = cmps
                        .as_ref()
                        .is_some_and(|c| c.iter().all(|f| f(i, i + 1).is_eq()));
                    if same_key {
                        continue;
                    }
                }
                true
            }
            Some(Op::UpdateBefore) | Some(Op::Delete) => {
                if !policy.deletes {
                    continue;
                }
                true
            }
            None => {
                return Err(SinkError::Encode {
                    table: table.to_string(),
                    column: cdcflow_engine::schema::OP_COLUMN.to_string(),
                    row: i,
                    format: "any",
                    message: format!("unknown op code {v}"),
                });
            }
        };
        sel.rows.push(i as u32);
        sel.deletes.push(del);
    }
    Ok(sel)
}

/// Which columns to write and which system columns to append.
#[derive(Debug, Clone)]
pub struct EncodeSpec<'a> {
    /// The table (names, logical types for precisions).
    pub table: &'a TableSchema,
    /// Indices of the user columns to write, in output order.
    pub columns: Vec<usize>,
    /// Name of the delete-flag column to append (`__DORIS_DELETE_SIGN__`, `__op`), if any.
    pub delete_column: Option<&'static str>,
    /// Name of the sequence column to append (`__DORIS_SEQUENCE_COL__`), if any; values come
    /// from the `sequence` argument of the encode functions.
    pub sequence_column: Option<&'static str>,
    /// Zone TIMESTAMP_LTZ values are rendered in.
    pub zone: LocalZone,
}

impl<'a> EncodeSpec<'a> {
    /// All user columns of `table`, with no system columns, rendered in UTC.
    pub fn all_columns(table: &'a TableSchema) -> Self {
        EncodeSpec {
            table,
            columns: (0..table.columns.len()).collect(),
            delete_column: None,
            sequence_column: None,
            zone: LocalZone::utc(),
        }
    }

    /// Names of the output columns, system columns included, in order.
    pub fn output_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .columns
            .iter()
            .map(|&i| self.table.columns[i].name.clone())
            .collect();
        v.extend(self.delete_column.map(str::to_string));
        v.extend(self.sequence_column.map(str::to_string));
        v
    }
}

/// Why a batch could not be encoded.
#[derive(Debug)]
pub enum EncodeError {
    /// A text value contains a CSV separator or is the literal `\N`; re-encode as JSON.
    CsvUnsafe {
        /// Column name.
        column: String,
        /// Row index in the batch.
        row: usize,
    },
    /// Any other problem.
    Sink(Box<SinkError>),
}

impl From<SinkError> for EncodeError {
    fn from(e: SinkError) -> Self {
        EncodeError::Sink(Box::new(e))
    }
}

impl From<EncodeError> for SinkError {
    fn from(e: EncodeError) -> Self {
        match e {
            EncodeError::Sink(s) => *s,
            EncodeError::CsvUnsafe { column, row } => SinkError::Encode {
                table: String::new(),
                column,
                row,
                format: "csv",
                message: "value contains a separator or is `\\N`".into(),
            },
        }
    }
}

/// Appends the selected rows as JSON lines (`{"col":v,…}\n`) to `out`.
pub fn encode_json(
    batch: &RecordBatch,
    spec: &EncodeSpec<'_>,
    sel: &Selection,
    sequence: Option<&[i64]>,
    out: &mut Vec<u8>,
) -> Result<(), SinkError> {
    let mut cells = build_cells(batch, spec)?;
    let keys: Vec<Vec<u8>> = spec
        .output_names()
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut k = Vec::with_capacity(n.len() + 4);
            k.push(if i == 0 { b'{' } else { b',' });
            write_json_str(&mut k, n.as_bytes());
            k.push(b':');
            k
        })
        .collect();
    let ncols = cells.len();
    out.reserve(sel.len() * (16 * keys.len() + 8));
    for (k, &row) in sel.rows.iter().enumerate() {
        let row = row as usize;
        for (c, cell) in cells.iter_mut().enumerate() {
            out.extend_from_slice(&keys[c]);
            if cell.is_null(row) {
                out.extend_from_slice(b"null");
            } else {
                cell.write(row, out, Mode::Json);
            }
        }
        let mut next = ncols;
        if spec.delete_column.is_some() {
            out.extend_from_slice(&keys[next]);
            out.push(if sel.deletes[k] { b'1' } else { b'0' });
            next += 1;
        }
        if spec.sequence_column.is_some() {
            out.extend_from_slice(&keys[next]);
            write_i64(out, sequence.and_then(|s| s.get(k)).copied().unwrap_or(0));
        }
        if keys.is_empty() {
            out.push(b'{');
        }
        out.extend_from_slice(b"}\n");
    }
    Ok(())
}

/// Appends the selected rows as CSV to `out`; on [`EncodeError::CsvUnsafe`] `out` is restored.
pub fn encode_csv(
    batch: &RecordBatch,
    spec: &EncodeSpec<'_>,
    sel: &Selection,
    sequence: Option<&[i64]>,
    column_sep: &[u8],
    row_delim: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let mut cells = build_cells(batch, spec)?;
    let guard = CsvGuard::new(column_sep, row_delim);
    for (k, &row) in sel.rows.iter().enumerate() {
        let row = row as usize;
        let mut first = true;
        for (c, cell) in cells.iter_mut().enumerate() {
            if !first {
                out.extend_from_slice(column_sep);
            }
            first = false;
            if cell.is_null(row) {
                out.extend_from_slice(b"\\N");
                continue;
            }
            let at = out.len();
            cell.write(row, out, Mode::Csv);
            if cell.is_text() && !guard.is_safe(&out[at..]) {
                out.truncate(start);
                let column = spec.table.columns[spec.columns[c]].name.clone();
                return Err(EncodeError::CsvUnsafe { column, row });
            }
        }
        if spec.delete_column.is_some() {
            if !first {
                out.extend_from_slice(column_sep);
            }
            first = false;
            out.push(if sel.deletes[k] { b'1' } else { b'0' });
        }
        if spec.sequence_column.is_some() {
            if !first {
                out.extend_from_slice(column_sep);
            }
            write_i64(out, sequence.and_then(|s| s.get(k)).copied().unwrap_or(0));
        }
        out.extend_from_slice(row_delim);
    }
    Ok(())
}

/// Appends the selected rows as one complete Arrow IPC stream (schema, batch, end-of-stream).
///
/// Columns are converted to what the target column type loads from: TIME, DECIMAL(p > 38) and
/// binary become text (as in the JSON path), TIMESTAMP_LTZ becomes local wall-clock time.
pub fn encode_arrow(
    batch: &RecordBatch,
    spec: &EncodeSpec<'_>,
    sel: &Selection,
    sequence: Option<&[i64]>,
    out: &mut Vec<u8>,
) -> Result<(), SinkError> {
    let tname = spec.table.id.to_string();
    let arrow_err = |source| SinkError::Arrow {
        table: tname.clone(),
        source,
    };
    let idx = UInt32Array::from(sel.rows.clone());
    let mut fields = Vec::with_capacity(spec.columns.len() + 2);
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(spec.columns.len() + 2);
    for &c in &spec.columns {
        let col = batch.column(c);
        let taken = arrow::compute::take(col.as_ref(), &idx, None).map_err(arrow_err)?;
        let def = &spec.table.columns[c];
        let converted = arrow_convert(&taken, &def.data_type, spec)?;
        fields.push(Field::new(&def.name, converted.data_type().clone(), true));
        arrays.push(converted);
    }
    if let Some(name) = spec.delete_column {
        fields.push(Field::new(name, DataType::Int8, false));
        arrays.push(Arc::new(Int8Array::from_iter_values(
            sel.deletes.iter().map(|d| *d as i8),
        )));
    }
    if let Some(name) = spec.sequence_column {
        fields.push(Field::new(name, DataType::Int64, false));
        let vals: Vec<i64> = (0..sel.len())
            .map(|k| sequence.and_then(|s| s.get(k)).copied().unwrap_or(0))
            .collect();
        arrays.push(Arc::new(Int64Array::from(vals)));
    }
    let schema = Arc::new(Schema::new(fields));
    let rb = RecordBatch::try_new(schema.clone(), arrays).map_err(arrow_err)?;
    let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut *out, &schema).map_err(arrow_err)?;
    w.write(&rb).map_err(arrow_err)?;
    w.finish().map_err(arrow_err)?;
    Ok(())
}

fn arrow_convert(
    a: &ArrayRef,
    cdc: &CdcType,
    spec: &EncodeSpec<'_>,
) -> Result<ArrayRef, SinkError> {
    let needs_text = matches!(
        a.data_type(),
        DataType::Duration(_)
            | DataType::Decimal256(_, _)
            | DataType::Binary
            | DataType::LargeBinary
    );
    if needs_text {
        let mut cell = make_cell(
            a.as_ref(),
            Some(cdc),
            spec.zone,
            &spec.table.id.to_string(),
            "",
        )?;
        let mut buf = Vec::new();
        let mut b = arrow::array::StringBuilder::with_capacity(a.len(), a.len() * 16);
        for row in 0..a.len() {
            if cell.is_null(row) {
                b.append_null();
            } else {
                buf.clear();
                cell.write(row, &mut buf, Mode::Csv);
                b.append_value(String::from_utf8_lossy(&buf));
            }
        }
        return Ok(Arc::new(b.finish()));
    }
    if let DataType::Timestamp(TimeUnit::Microsecond, Some(_)) = a.data_type() {
        let ts = a.as_primitive::<TimestampMicrosecondType>();
        let shifted: arrow::array::TimestampMicrosecondArray =
            ts.unary(|v| spec.zone.to_local_micros(v));
        return Ok(Arc::new(shifted));
    }
    Ok(a.clone())
}

/// Text form of one cell, for the in-memory `values` sink and messages: same rendering as CSV.
pub fn render_cell(
    array: &dyn Array,
    row: usize,
    cdc: Option<&CdcType>,
    zone: LocalZone,
) -> Option<String> {
    let mut cell = make_cell(array, cdc, zone, "", "").ok()?;
    if cell.is_null(row) {
        return None;
    }
    let mut buf = Vec::new();
    cell.write(row, &mut buf, Mode::Csv);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// Which syntax a cell is rendered in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Csv,
}

/// One column's encoder for one batch: downcast once, then render cells by row index.
trait Cell {
    fn is_null(&self, row: usize) -> bool;
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode);
    /// True when the rendering may contain arbitrary bytes (strings), so CSV must check it.
    fn is_text(&self) -> bool {
        false
    }
}

fn build_cells<'b>(
    batch: &'b RecordBatch,
    spec: &EncodeSpec<'_>,
) -> Result<Vec<Box<dyn Cell + 'b>>, SinkError> {
    let tname = spec.table.id.to_string();
    spec.columns
        .iter()
        .map(|&c| {
            let def = spec.table.columns.get(c);
            let name = def.map(|d| d.name.as_str()).unwrap_or("?");
            let col = batch.columns().get(c).ok_or_else(|| SinkError::Encode {
                table: tname.clone(),
                column: name.to_string(),
                row: 0,
                format: "any",
                message: "column missing from batch".into(),
            })?;
            make_cell(
                col.as_ref(),
                def.map(|d| &d.data_type),
                spec.zone,
                &tname,
                name,
            )
        })
        .collect()
}

fn precision_of(cdc: Option<&CdcType>) -> Option<u8> {
    match cdc {
        Some(CdcType::Timestamp { precision })
        | Some(CdcType::TimestampLtz { precision })
        | Some(CdcType::Time { precision }) => Some((*precision).min(6)),
        _ => None,
    }
}

fn make_cell<'b>(
    a: &'b dyn Array,
    cdc: Option<&CdcType>,
    zone: LocalZone,
    table: &str,
    column: &str,
) -> Result<Box<dyn Cell + 'b>, SinkError> {
    let prec = precision_of(cdc);
    Ok(match a.data_type() {
        DataType::Null => Box::new(NullCell),
        DataType::Boolean => Box::new(BoolCell(a.as_boolean())),
        DataType::Int8 => Box::new(IntCell(a.as_primitive::<Int8Type>())),
        DataType::Int16 => Box::new(IntCell(a.as_primitive::<Int16Type>())),
        DataType::Int32 => Box::new(IntCell(a.as_primitive::<Int32Type>())),
        DataType::Int64 => Box::new(IntCell(a.as_primitive::<Int64Type>())),
        DataType::UInt8 => Box::new(IntCell(a.as_primitive::<UInt8Type>())),
        DataType::UInt16 => Box::new(IntCell(a.as_primitive::<UInt16Type>())),
        DataType::UInt32 => Box::new(IntCell(a.as_primitive::<UInt32Type>())),
        DataType::UInt64 => Box::new(U64Cell(a.as_primitive::<UInt64Type>())),
        DataType::Float32 => Box::new(FloatCell(a.as_primitive::<Float32Type>())),
        DataType::Float64 => Box::new(FloatCell(a.as_primitive::<Float64Type>())),
        DataType::Decimal128(_, s) => Box::new(Dec128Cell(a.as_primitive::<Decimal128Type>(), *s)),
        DataType::Decimal256(_, s) => Box::new(Dec256Cell(a.as_primitive::<Decimal256Type>(), *s)),
        DataType::Utf8 => Box::new(StrCell(a.as_string::<i32>())),
        DataType::LargeUtf8 => Box::new(StrCell(a.as_string::<i64>())),
        DataType::Utf8View => Box::new(StrCell(a.as_string_view())),
        DataType::Binary => Box::new(BinCell(a.as_binary::<i32>())),
        DataType::LargeBinary => Box::new(BinCell(a.as_binary::<i64>())),
        DataType::Date32 => Box::new(DateCell(a.as_primitive::<Date32Type>())),
        DataType::Timestamp(unit, tz) => {
            let local = tz.as_ref().map(|_| zone);
            let micros: Box<dyn Fn(usize) -> i64 + 'b> = match unit {
                TimeUnit::Second => {
                    let p = a.as_primitive::<TimestampSecondType>();
                    Box::new(move |r| p.value(r).saturating_mul(1_000_000))
                }
                TimeUnit::Millisecond => {
                    let p = a.as_primitive::<TimestampMillisecondType>();
                    Box::new(move |r| p.value(r).saturating_mul(1000))
                }
                TimeUnit::Microsecond => {
                    let p = a.as_primitive::<TimestampMicrosecondType>();
                    Box::new(move |r| p.value(r))
                }
                TimeUnit::Nanosecond => {
                    let p = a.as_primitive::<TimestampNanosecondType>();
                    Box::new(move |r| p.value(r).div_euclid(1000))
                }
            };
            Box::new(TsCell {
                nulls: a,
                micros,
                local,
                prec,
            })
        }
        DataType::Duration(TimeUnit::Microsecond) => {
            Box::new(TimeCell(a.as_primitive::<DurationMicrosecondType>(), prec))
        }
        other => {
            return Err(SinkError::Encode {
                table: table.to_string(),
                column: column.to_string(),
                row: 0,
                format: "any",
                message: format!("Arrow type {other} has no Stream Load rendering"),
            });
        }
    })
}

struct NullCell;
impl Cell for NullCell {
    fn is_null(&self, _: usize) -> bool {
        true
    }
    fn write(&mut self, _: usize, _: &mut Vec<u8>, _: Mode) {}
}

struct BoolCell<'b>(&'b BooleanArray);
impl Cell for BoolCell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        let v = self.0.value(row);
        match mode {
            Mode::Json => out.extend_from_slice(if v { b"true" } else { b"false" }),
            Mode::Csv => out.push(if v { b'1' } else { b'0' }),
        }
    }
}

struct IntCell<'b, T: arrow::datatypes::ArrowPrimitiveType>(&'b arrow::array::PrimitiveArray<T>);
impl<T> Cell for IntCell<'_, T>
where
    T: arrow::datatypes::ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, _: Mode) {
        write_i64(out, self.0.value(row).into());
    }
}

struct U64Cell<'b>(&'b arrow::array::UInt64Array);
impl Cell for U64Cell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, _: Mode) {
        write_u128(out, self.0.value(row) as u128);
    }
}

struct FloatCell<'b, T: arrow::datatypes::ArrowPrimitiveType>(&'b arrow::array::PrimitiveArray<T>);
impl<T> Cell for FloatCell<'_, T>
where
    T: arrow::datatypes::ArrowPrimitiveType,
    T::Native: Into<f64> + ryu::Float + Copy,
{
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row) || !self.0.value(row).into().is_finite()
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, _: Mode) {
        // Shortest text that parses back to the same value (finite: NaN/inf are NULL above).
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(self.0.value(row)).as_bytes());
    }
}

struct Dec128Cell<'b>(&'b arrow::array::Decimal128Array, i8);
impl Cell for Dec128Cell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        if mode == Mode::Json {
            out.push(b'"');
        }
        let v = self.0.value(row);
        if v < 0 {
            out.push(b'-');
        }
        let mut digits = [0u8; 40];
        let n = u128_digits(v.unsigned_abs(), &mut digits);
        write_scaled(out, &digits[digits.len() - n..], self.1);
        if mode == Mode::Json {
            out.push(b'"');
        }
    }
}

struct Dec256Cell<'b>(&'b arrow::array::Decimal256Array, i8);
impl Cell for Dec256Cell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        if mode == Mode::Json {
            out.push(b'"');
        }
        let s = self.0.value(row).to_string();
        let (neg, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.as_str()),
        };
        if neg {
            out.push(b'-');
        }
        write_scaled(out, digits.as_bytes(), self.1);
        if mode == Mode::Json {
            out.push(b'"');
        }
    }
}

/// Writes unsigned `digits` with `scale` digits after the point (`scale` < 0 appends zeros).
fn write_scaled(out: &mut Vec<u8>, digits: &[u8], scale: i8) {
    if scale <= 0 {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', scale.unsigned_abs() as usize));
        return;
    }
    let s = scale as usize;
    if digits.len() > s {
        let (int, frac) = digits.split_at(digits.len() - s);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    } else {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', s - digits.len()));
        out.extend_from_slice(digits);
    }
}

/// Any Arrow string layout (`Utf8`, `LargeUtf8`, `Utf8View`): one cell type for all three.
struct StrCell<A>(A);
impl<'b, A: ArrayAccessor<Item = &'b str>> Cell for StrCell<A> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        write_text(out, self.0.value(row).as_bytes(), mode);
    }
    fn is_text(&self) -> bool {
        true
    }
}

fn write_text(out: &mut Vec<u8>, s: &[u8], mode: Mode) {
    match mode {
        Mode::Json => write_json_str(out, s),
        Mode::Csv => out.extend_from_slice(s),
    }
}

/// Any Arrow binary layout (`Binary`, `LargeBinary`), written as base64 text.
struct BinCell<A>(A);
impl<'b, A: ArrayAccessor<Item = &'b [u8]>> Cell for BinCell<A> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        write_base64(out, self.0.value(row), mode);
    }
}

fn write_base64(out: &mut Vec<u8>, bytes: &[u8], mode: Mode) {
    if mode == Mode::Json {
        out.push(b'"');
    }
    let start = out.len();
    let len = bytes.len().div_ceil(3) * 4;
    out.resize(start + len, 0);
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + n);
    if mode == Mode::Json {
        out.push(b'"');
    }
}

struct DateCell<'b>(&'b arrow::array::Date32Array);
impl Cell for DateCell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        if mode == Mode::Json {
            out.push(b'"');
        }
        write_date(out, self.0.value(row) as i64);
        if mode == Mode::Json {
            out.push(b'"');
        }
    }
}

struct TsCell<'b> {
    nulls: &'b dyn Array,
    micros: Box<dyn Fn(usize) -> i64 + 'b>,
    local: Option<LocalZone>,
    prec: Option<u8>,
}
impl Cell for TsCell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.nulls.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        let mut us = (self.micros)(row);
        if let Some(z) = &self.local {
            us = z.to_local_micros(us);
        }
        if mode == Mode::Json {
            out.push(b'"');
        }
        let days = us.div_euclid(86_400_000_000);
        let rem = us.rem_euclid(86_400_000_000);
        write_date(out, days);
        out.push(b' ');
        write_clock(out, rem / 1_000_000, (rem % 1_000_000) as u32, self.prec);
        if mode == Mode::Json {
            out.push(b'"');
        }
    }
}

struct TimeCell<'b>(&'b arrow::array::DurationMicrosecondArray, Option<u8>);
impl Cell for TimeCell<'_> {
    fn is_null(&self, row: usize) -> bool {
        self.0.is_null(row)
    }
    fn write(&mut self, row: usize, out: &mut Vec<u8>, mode: Mode) {
        let v = self.0.value(row);
        if mode == Mode::Json {
            out.push(b'"');
        }
        if v < 0 {
            out.push(b'-');
        }
        let a = v.unsigned_abs();
        write_clock(out, (a / 1_000_000) as i64, (a % 1_000_000) as u32, self.1);
        if mode == Mode::Json {
            out.push(b'"');
        }
    }
}

/// `HH:mm:ss[.f…]` from seconds (hours may exceed 23) and microseconds.
fn write_clock(out: &mut Vec<u8>, secs: i64, micros: u32, prec: Option<u8>) {
    let h = secs / 3600;
    let m = (secs / 60) % 60;
    let s = secs % 60;
    if h < 10 {
        out.push(b'0');
    }
    write_i64(out, h);
    out.extend_from_slice(&[b':', b'0' + (m / 10) as u8, b'0' + (m % 10) as u8, b':']);
    out.extend_from_slice(&[b'0' + (s / 10) as u8, b'0' + (s % 10) as u8]);
    let digits = match prec {
        Some(p) => p as usize,
        None if micros != 0 => 6,
        None => 0,
    };
    if digits > 0 {
        out.push(b'.');
        let mut f = [b'0'; 6];
        let mut v = micros;
        for i in (0..6).rev() {
            f[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&f[..digits]);
    }
}

/// `yyyy-MM-dd` from days since 1970-01-01 (proleptic Gregorian, civil-from-days).
fn write_date(out: &mut Vec<u8>, days: i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    if (0..=9999).contains(&y) {
        let y = y as u32;
        out.extend_from_slice(&[
            b'0' + (y / 1000) as u8,
            b'0' + (y / 100 % 10) as u8,
            b'0' + (y / 10 % 10) as u8,
            b'0' + (y % 10) as u8,
        ]);
    } else {
        write_i64(out, y);
    }
    out.extend_from_slice(&[b'-', b'0' + (m / 10) as u8, b'0' + (m % 10) as u8, b'-']);
    out.extend_from_slice(&[b'0' + (d / 10) as u8, b'0' + (d % 10) as u8]);
}

/// Appends the decimal form of `v`.
pub fn write_i64(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    write_u128(out, v.unsigned_abs() as u128);
}

fn write_u128(out: &mut Vec<u8>, v: u128) {
    let mut buf = [0u8; 40];
    let n = u128_digits(v, &mut buf);
    out.extend_from_slice(&buf[buf.len() - n..]);
}

/// Writes the digits of `v` right-aligned into `buf`; returns how many.
fn u128_digits(mut v: u128, buf: &mut [u8; 40]) -> usize {
    let mut i = buf.len();
    if v == 0 {
        buf[i - 1] = b'0';
        return 1;
    }
    // Fast path on u64 once the value fits: 128-bit division is slow.
    while v > u64::MAX as u128 {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
    let mut w = v as u64;
    while w > 0 {
        i -= 1;
        buf[i] = b'0' + (w % 10) as u8;
        w /= 10;
    }
    buf.len() - i
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    if !s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(s);
        out.push(b'"');
        return;
    }
    let mut last = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&s[last..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]);
        } else {
            out.extend_from_slice(esc);
        }
        last = i + 1;
    }
    out.extend_from_slice(&s[last..]);
    out.push(b'"');
}

struct CsvGuard<'s> {
    sep: &'s [u8],
    delim: &'s [u8],
}

impl<'s> CsvGuard<'s> {
    fn new(sep: &'s [u8], delim: &'s [u8]) -> Self {
        CsvGuard { sep, delim }
    }

    fn is_safe(&self, v: &[u8]) -> bool {
        if v == b"\\N" {
            return false;
        }
        !contains(v, self.sep) && !contains(v, self.delim)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    match needle.len() {
        0 => false,
        1 => hay.contains(&needle[0]),
        n => hay.windows(n).any(|w| w == needle),
    }
}

/// Body compression applied before sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain body.
    None,
    /// gzip (Doris `compress_type: gz`, StarRocks `compression: gzip`).
    Gzip,
    /// LZ4 frame (Doris `compress_type: lz4`, StarRocks `compression: lz4_frame`).
    Lz4Frame,
}

/// Compresses a whole body.
pub fn compress(c: Compression, body: &[u8]) -> std::io::Result<Vec<u8>> {
    match c {
        Compression::None => Ok(body.to_vec()),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            e.write_all(body)?;
            e.finish()
        }
        Compression::Lz4Frame => {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(body.len() / 2));
            e.write_all(body)?;
            e.finish().map_err(std::io::Error::other)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        BinaryArray, Date32Array, Decimal128Array, Decimal256Array, DurationMicrosecondArray,
        Float64Array, Int32Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::i256;
    use cdcflow_engine::schema::{ColumnDef, TableId};

    fn col(name: &str, t: CdcType) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: t,
            nullable: true,
            default: None,
            comment: None,
            source_type: String::new(),
        }
    }

    fn table() -> TableSchema {
        TableSchema::new(
            TableId::new("db", "t"),
            vec![
                col("id", CdcType::Int),
                col("name", CdcType::String),
                col(
                    "price",
                    CdcType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                col("d", CdcType::Date),
                col("ts", CdcType::Timestamp { precision: 3 }),
                col("ltz", CdcType::TimestampLtz { precision: 0 }),
                col("t", CdcType::Time { precision: 1 }),
                col("b", CdcType::Bytes),
                col("f", CdcType::Double),
                col(
                    "big",
                    CdcType::Decimal {
                        precision: 65,
                        scale: 3,
                    },
                ),
            ],
            vec!["id".into()],
            None,
            1,
        )
    }

    fn batch(t: &TableSchema) -> RecordBatch {
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(vec![Some(1), Some(-2), Some(3)])),
            Arc::new(StringArray::from(vec![
                Some("a\"b\\c\n"),
                None,
                Some("x\u{1}y"),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(12345), Some(-5), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(Date32Array::from(vec![Some(0), Some(19723), Some(-1)])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_500_000),
                Some(0),
                Some(-1),
            ])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(0), None, Some(3_600_000_000)])
                    .with_timezone("UTC"),
            ),
            Arc::new(DurationMicrosecondArray::from(vec![
                Some(-(838 * 3600 + 59 * 60 + 59) * 1_000_000),
                Some(1_500_000),
                Some(0),
            ])),
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x10"[..]),
                Some(&b""[..]),
                None,
            ])),
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(f64::NAN),
                Some(-1e21),
            ])),
            Arc::new(
                Decimal256Array::from(vec![
                    Some(i256::from_i128(-1)),
                    None,
                    Some(i256::from_i128(123456)),
                ])
                .with_precision_and_scale(65, 3)
                .unwrap(),
            ),
            Arc::new(Int8Array::from(vec![0, 3, 2])),
            Arc::new(Int64Array::from(vec![0, 0, 0])),
        ];
        RecordBatch::try_new(t.arrow.clone(), cols).unwrap()
    }

    #[test]
    fn json_lines_render_every_type() {
        let t = table();
        let b = batch(&t);
        let mut spec = EncodeSpec::all_columns(&t);
        spec.delete_column = Some("__DORIS_DELETE_SIGN__");
        spec.zone = LocalZone::parse(Some("+08:00")).unwrap();
        let sel = select_rows(
            b.column(10).as_primitive::<Int8Type>(),
            RowPolicy {
                ignore_update_before: true,
                deletes: true,
            },
            "t",
        )
        .unwrap();
        let mut out = Vec::new();
        encode_json(&b, &spec, &sel, None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            r#"{"id":1,"name":"a\"b\\c\n","price":"123.45","d":"1970-01-01","ts":"1970-01-01 00:00:01.500","ltz":"1970-01-01 08:00:00","t":"-838:59:59.0","b":"EA==","f":0.1,"big":"-0.001","__DORIS_DELETE_SIGN__":0}"#
        );
        assert_eq!(
            lines[1],
            r#"{"id":-2,"name":null,"price":"-0.05","d":"2024-01-01","ts":"1970-01-01 00:00:00.000","ltz":null,"t":"00:00:01.5","b":"","f":null,"big":null,"__DORIS_DELETE_SIGN__":1}"#
        );
        assert!(lines[2].contains(r#""name":"x\u0001y""#), "{}", lines[2]);
        assert!(lines[2].contains(r#""d":"1969-12-31""#), "{}", lines[2]);
        assert!(
            lines[2].contains(r#""ts":"1969-12-31 23:59:59.999""#),
            "{}",
            lines[2]
        );
        assert!(lines[2].contains(r#""big":"123.456""#), "{}", lines[2]);
        assert!(lines[2].contains(r#""f":-1e21"#), "{}", lines[2]);
        for l in &lines {
            serde_json::from_str::<serde_json::Value>(l).expect("every line is valid JSON");
        }
    }

    #[test]
    fn key_changing_update_before_is_a_delete() {
        // -U/+U pairs: same key (skipped), key 1 -> 5 (delete), key (2,"a") -> (2,"b")
        // (second key column changed: delete), then a -U at the end with no +U (delete).
        let ops = Int8Array::from(vec![1, 2, 1, 2, 1, 2, 0, 1]);
        let k1 = Int64Array::from(vec![1, 1, 1, 5, 2, 2, 7, 9]);
        let k2 = arrow::array::StringArray::from(vec!["x", "x", "x", "x", "a", "b", "z", "q"]);
        let keys: [&dyn Array; 2] = [&k1, &k2];
        let p = RowPolicy {
            ignore_update_before: true,
            deletes: true,
        };
        let s = select_rows_keyed(&ops, &keys, p, "t").unwrap();
        assert_eq!(s.rows, vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            s.deletes,
            vec![false, true, false, true, false, false, true]
        );
        // Without deletes (duplicate-key tables) nothing changes.
        let s = select_rows_keyed(
            &ops,
            &keys,
            RowPolicy {
                ignore_update_before: true,
                deletes: false,
            },
            "t",
        )
        .unwrap();
        assert_eq!(s.rows, vec![1, 3, 5, 6]);
    }

    #[test]
    fn update_before_is_skipped_or_a_delete() {
        let ops = Int8Array::from(vec![0, 1, 2, 3]);
        let s = select_rows(
            &ops,
            RowPolicy {
                ignore_update_before: true,
                deletes: true,
            },
            "t",
        )
        .unwrap();
        assert_eq!(s.rows, vec![0, 2, 3]);
        assert_eq!(s.deletes, vec![false, false, true]);
        let s = select_rows(
            &ops,
            RowPolicy {
                ignore_update_before: false,
                deletes: true,
            },
            "t",
        )
        .unwrap();
        assert_eq!(s.deletes, vec![false, true, false, true]);
        let s = select_rows(
            &ops,
            RowPolicy {
                ignore_update_before: true,
                deletes: false,
            },
            "t",
        )
        .unwrap();
        assert_eq!(s.rows, vec![0, 2]);
        assert!(
            select_rows(
                &Int8Array::from(vec![9]),
                RowPolicy {
                    ignore_update_before: true,
                    deletes: true
                },
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn csv_refuses_unsafe_values_and_restores_buffer() {
        let t = table();
        let b = batch(&t);
        let spec = EncodeSpec::all_columns(&t);
        let sel = Selection {
            rows: vec![0, 1],
            deletes: vec![false, false],
        };
        let mut out = b"prefix".to_vec();
        encode_csv(&b, &spec, &sel, None, b"\x01", b"\x02", &mut out).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        let rows: Vec<&str> = text.trim_start_matches("prefix").split('\x02').collect();
        assert_eq!(
            rows[0],
            "1\x01a\"b\\c\n\x01123.45\x011970-01-01\x011970-01-01 00:00:01.500\x011970-01-01 00:00:00\x01-838:59:59.0\x01EA==\x010.1\x01-0.001"
        );
        assert_eq!(
            rows[1],
            "-2\x01\\N\x01-0.05\x012024-01-01\x011970-01-01 00:00:00.000\x01\\N\x0100:00:01.5\x01\x01\\N\x01\\N"
        );
        let sel = Selection {
            rows: vec![2],
            deletes: vec![false],
        };
        let before = out.clone();
        match encode_csv(&b, &spec, &sel, None, b"\x01", b"\x02", &mut out) {
            Err(EncodeError::CsvUnsafe { column, row }) => {
                assert_eq!((column.as_str(), row), ("name", 2))
            }
            other => panic!("expected CsvUnsafe, got {other:?}"),
        }
        assert_eq!(out, before, "a refused batch leaves the buffer untouched");
    }

    #[test]
    fn arrow_ipc_round_trips_with_text_conversions() {
        let t = table();
        let b = batch(&t);
        let mut spec = EncodeSpec::all_columns(&t);
        spec.delete_column = Some("__DORIS_DELETE_SIGN__");
        let sel = Selection {
            rows: vec![0, 2],
            deletes: vec![false, true],
        };
        let mut out = Vec::new();
        encode_arrow(&b, &spec, &sel, None, &mut out).unwrap();
        encode_arrow(&b, &spec, &sel, None, &mut out).unwrap();
        let mut total = 0;
        let mut cursor = std::io::Cursor::new(&out[..]);
        while (cursor.position() as usize) < out.len() {
            let r = arrow::ipc::reader::StreamReader::try_new(&mut cursor, None).unwrap();
            for rb in r {
                let rb = rb.unwrap();
                assert_eq!(rb.num_columns(), 11);
                assert_eq!(
                    rb.column(6).data_type(),
                    &DataType::Utf8,
                    "TIME travels as text"
                );
                assert_eq!(rb.column(7).as_string::<i32>().value(0), "EA==");
                assert_eq!(
                    rb.column(10).as_primitive::<Int8Type>().values().to_vec(),
                    vec![0, 1]
                );
                total += rb.num_rows();
            }
        }
        assert_eq!(total, 4, "two concatenated IPC streams of two rows each");
    }

    #[test]
    fn separators_decode_hex_and_escapes() {
        assert_eq!(decode_separator("\\x01"), Some(vec![1]));
        assert_eq!(decode_separator("\\x0102"), Some(vec![1, 2]));
        assert_eq!(decode_separator("\\x01\\x02"), Some(vec![1, 2]));
        assert_eq!(decode_separator("\\t"), Some(vec![b'\t']));
        assert_eq!(decode_separator(","), Some(vec![b',']));
        assert_eq!(decode_separator("\\x1"), None);
        assert_eq!(decode_separator(""), None);
    }

    #[test]
    fn zones_parse() {
        assert_eq!(LocalZone::parse(None), Some(LocalZone::utc()));
        assert!(matches!(
            LocalZone::parse(Some("Asia/Shanghai")),
            Some(LocalZone::Named(_))
        ));
        let z = LocalZone::parse(Some("Europe/Berlin")).unwrap();
        // 2024-07-01 00:00:00 UTC is 02:00 in Berlin (CEST).
        assert_eq!(
            z.to_local_micros(1_719_792_000_000_000),
            1_719_792_000_000_000 + 7_200_000_000
        );
        assert_eq!(
            LocalZone::parse(Some("-05:30")).unwrap().to_local_micros(0),
            -(5 * 3600 + 1800) * 1_000_000
        );
        assert!(LocalZone::parse(Some("Mars/Base")).is_none());
    }

    #[test]
    fn compression_round_trips() {
        let body = b"hello hello hello hello".repeat(100);
        let gz = compress(Compression::Gzip, &body).unwrap();
        let mut d = flate2::read::GzDecoder::new(&gz[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        assert_eq!(back, body);
        let lz = compress(Compression::Lz4Frame, &body).unwrap();
        let mut d = lz4_flex::frame::FrameDecoder::new(&lz[..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut back).unwrap();
        assert_eq!(back, body);
    }
}
