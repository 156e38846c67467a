//! Stream Load request semantics: header validation (what the BE checks before reading the
//! body), body decoding (compression, CSV, JSON, Arrow IPC streams), and the conversion of each
//! row into the table's declared types with Doris/StarRocks filtering rules.
//!
//! ```text
//! headers ──validate──▶ LoadParams ──(label check, begin txn)──▶ body ──decompress──▶ records
//!    records ──map columns──▶ typed rows ──where──▶ PendingWrite (+ filtered/unselected counts)
//! ```

use std::io::Read;

use http::HeaderMap;

use super::Mode;
use super::json::{self, Json};
use super::model::{KeysType, Mutation, PendingWrite, SequenceMode, Table};
use super::sql::{Env, Expr, parse_expr};
use super::types::{ConvError, Value, convert_text};

/// Name of the Doris hidden delete-sign column.
pub const DORIS_DELETE_SIGN: &str = "__DORIS_DELETE_SIGN__";
/// Name of the Doris hidden sequence column.
pub const DORIS_SEQUENCE_COL: &str = "__DORIS_SEQUENCE_COL__";
/// Name of the StarRocks load-only operation column.
pub const STARROCKS_OP: &str = "__op";

/// Body format of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Plain CSV, optionally with a names (and types) header line.
    Csv {
        /// `csv_with_names` / `csv_with_names_and_types`: header lines to read or skip.
        header_lines: usize,
    },
    /// JSON objects.
    Json,
    /// Concatenated Arrow IPC streams (Doris 2.1+).
    Arrow,
}

/// Body compression codec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// gzip (`gz` / `gzip`).
    Gzip,
    /// LZ4 frame (`lz4` / `lz4_frame`).
    Lz4Frame,
    /// zlib deflate.
    Deflate,
    /// zstd (StarRocks).
    Zstd,
    /// A codec the protocol allows but the emulator cannot decode (named).
    Unsupported(&'static str),
}

/// How rows become deletes (Doris `merge_type`).
#[derive(Clone, Debug)]
pub enum MergeType {
    /// Rows are upserts unless they carry a delete sign.
    Append,
    /// Every row is a delete.
    Delete,
    /// Rows matching the `delete` condition are deletes.
    Merge(Expr),
}

/// One entry of the `columns` header: a source column, or a derived `name = expr`.
#[derive(Clone, Debug)]
pub struct ColumnSpec {
    /// Target (or temporary) column name.
    pub name: String,
    /// Expression for derived columns.
    pub expr: Option<Expr>,
}

/// Everything the headers say about a load, validated.
#[derive(Clone, Debug)]
pub struct LoadParams {
    /// The client label, if any.
    pub label: Option<String>,
    /// Body format.
    pub format: Format,
    /// Field separator bytes.
    pub column_separator: Vec<u8>,
    /// Row separator bytes.
    pub line_delimiter: Vec<u8>,
    /// Quote byte.
    pub enclose: Option<u8>,
    /// Escape byte inside quoted fields.
    pub escape: Option<u8>,
    /// Strip outer double quotes of each field.
    pub trim_double_quotes: bool,
    /// StarRocks `trim_space`.
    pub trim_space: bool,
    /// Lines to skip at the start.
    pub skip_lines: usize,
    /// `columns` header.
    pub columns: Option<Vec<ColumnSpec>>,
    /// `where` filter.
    pub where_: Option<Expr>,
    /// Allowed filtered fraction.
    pub max_filter_ratio: f64,
    /// Strict conversion.
    pub strict_mode: bool,
    /// `jsonpaths`.
    pub jsonpaths: Option<Vec<String>>,
    /// `json_root`.
    pub json_root: Option<String>,
    /// `strip_outer_array`.
    pub strip_outer_array: bool,
    /// `read_json_by_line`.
    pub read_json_by_line: bool,
    /// StarRocks `ignore_json_size`.
    pub ignore_json_size: bool,
    /// Doris `merge_type` (+ `delete`).
    pub merge_type: MergeType,
    /// Doris `function_column.sequence_col`.
    pub sequence_col: Option<String>,
    /// Doris `hidden_columns`.
    pub hidden_columns: Vec<String>,
    /// Partial update (Doris `partial_columns`/`unique_key_update_mode`, StarRocks `partial_update`).
    pub partial: bool,
    /// Doris `two_phase_commit: true`.
    pub two_phase_commit: bool,
    /// Doris group commit mode (`async_mode`/`sync_mode`), `None` when off.
    pub group_commit: Option<String>,
    /// Body compression.
    pub codec: Option<Codec>,
    /// `timeout` in seconds.
    pub timeout_s: u64,
    /// Doris `comment` header (echoed in `Comment`).
    pub comment: String,
    /// StarRocks `merge_condition`: update only when the new value is >= the stored one.
    pub merge_condition: Option<String>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn bool_header(h: &HeaderMap, name: &str) -> bool {
    header(h, name).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn strict_bool(h: &HeaderMap, name: &str, msg: &str) -> Result<bool, String> {
    match header(h, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(msg.to_string()),
    }
}

/// Decodes a separator header: `\xHH...` hex or backslash escapes, else literal bytes.
pub fn decode_separator(v: &str) -> Result<Vec<u8>, String> {
    if v.len() >= 2 && (v.starts_with("\\x") || v.starts_with("\\X")) {
        let hex: String = v
            .split(['\\'])
            .filter(|s| !s.is_empty())
            .map(|s| s.trim_start_matches(['x', 'X']))
            .collect();
        if hex.is_empty() {
            return Err("Hex str is empty".into());
        }
        if !hex.is_ascii() {
            return Err("Hex str format error".into());
        }
        if !hex.len().is_multiple_of(2) {
            return Err("Hex str length error".into());
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| {
                u8::from_str_radix(&hex[i..i + 2], 16)
                    .map_err(|_| "Hex str format error".to_string())
            })
            .collect();
    }
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let e = match b[i + 1] {
                b't' => Some(b'\t'),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b'\\' => Some(b'\\'),
                b'\'' => Some(b'\''),
                b'"' => Some(b'"'),
                _ => None,
            };
            if let Some(e) = e {
                out.push(e);
                i += 2;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    if out.is_empty() {
        return Err("separator must not be empty".into());
    }
    Ok(out)
}

/// Splits a `columns` header at top-level commas and parses `name` / `name = expr` entries.
pub fn parse_columns_header(v: &str) -> Result<Vec<ColumnSpec>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0usize, None::<char>);
    for (i, c) in v.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&v[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&v[start..]);
    parts
        .into_iter()
        .map(|p| {
            let p = p.trim();
            let (name, expr) = match find_assign(p) {
                Some(i) => (&p[..i], Some(p[i + 1..].trim())),
                None => (p, None),
            };
            let name = name.trim().trim_matches('`').to_string();
            if name.is_empty() {
                return Err(format!(
                    "Invalid columns header: empty column name in `{v}`"
                ));
            }
            let expr = expr
                .map(|e| {
                    parse_expr(e)
                        .map_err(|e| format!("Invalid columns header `{v}`: {}", e.message))
                })
                .transpose()?;
            Ok(ColumnSpec { name, expr })
        })
        .collect()
}

fn find_assign(p: &str) -> Option<usize> {
    let b = p.as_bytes();
    (0..b.len()).find(|&i| {
        b[i] == b'='
            && !matches!(b.get(i + 1), Some(b'='))
            && (i == 0 || !matches!(b[i - 1], b'<' | b'>' | b'!'))
    })
}

/// Validates the headers the way the BE does before it reads the body.
pub fn parse_params(mode: Mode, h: &HeaderMap) -> Result<LoadParams, String> {
    let format_raw = header(h, "format").unwrap_or("csv").to_ascii_lowercase();
    let mut codec = None;
    let format = match (mode, format_raw.as_str()) {
        (_, "csv") => Format::Csv { header_lines: 0 },
        (_, "json") => Format::Json,
        (Mode::Doris, "csv_with_names") => Format::Csv { header_lines: 1 },
        (Mode::Doris, "csv_with_names_and_types") => Format::Csv { header_lines: 2 },
        (Mode::Doris, "arrow") => Format::Arrow,
        (Mode::Doris, "parquet" | "orc" | "hive_text") => {
            return Err(format!(
                "format {format_raw} is valid but not supported by the cdcflow emulator"
            ));
        }
        (Mode::StarRocks, "gzip") => {
            codec = Some(Codec::Gzip);
            Format::Csv { header_lines: 0 }
        }
        (Mode::StarRocks, "lz4") => {
            codec = Some(Codec::Lz4Frame);
            Format::Csv { header_lines: 0 }
        }
        (Mode::StarRocks, "deflate") => {
            codec = Some(Codec::Deflate);
            Format::Csv { header_lines: 0 }
        }
        (Mode::StarRocks, "zstd") => {
            codec = Some(Codec::Zstd);
            Format::Csv { header_lines: 0 }
        }
        (Mode::StarRocks, "bzip2") => {
            codec = Some(Codec::Unsupported("bzip2"));
            Format::Csv { header_lines: 0 }
        }
        _ => {
            return Err(format!(
                "unknown data format, format={}",
                header(h, "format").unwrap_or_default()
            ));
        }
    };
    match mode {
        Mode::Doris => {
            if let Some(c) = header(h, "compress_type") {
                codec = Some(match c.to_ascii_lowercase().as_str() {
                    "gz" => Codec::Gzip,
                    "lz4" => Codec::Lz4Frame,
                    "deflate" => Codec::Deflate,
                    "lzo" => Codec::Unsupported("lzo"),
                    "bz2" => Codec::Unsupported("bz2"),
                    "lz4_block" => Codec::Unsupported("lz4_block"),
                    "lzop" => Codec::Unsupported("lzop"),
                    "snappy_block" => Codec::Unsupported("snappy_block"),
                    _ => {
                        return Err(format!(
                            "unknown data format, format={format_raw}, compress_type={c}"
                        ));
                    }
                });
            }
        }
        Mode::StarRocks => {
            let (a, b) = (header(h, "compression"), header(h, "content-encoding"));
            if a.is_some() && b.is_some() {
                return Err(
                    "Only one of http header content-encoding and compression can be set".into(),
                );
            }
            if let Some(c) = a.or(b) {
                codec = Some(match c.to_ascii_lowercase().as_str() {
                    "gzip" => Codec::Gzip,
                    "lz4_frame" => Codec::Lz4Frame,
                    "deflate" => Codec::Deflate,
                    "zstd" => Codec::Zstd,
                    "bzip2" => Codec::Unsupported("bzip2"),
                    _ => return Err(format!("Unsupported compression type: {c}")),
                });
            }
        }
    }
    let column_separator = decode_separator(header(h, "column_separator").unwrap_or("\t"))?;
    let row_header = match mode {
        Mode::Doris => "line_delimiter",
        Mode::StarRocks => "row_delimiter",
    };
    let line_delimiter = decode_separator(header(h, row_header).unwrap_or("\n"))?;
    if mode == Mode::StarRocks && column_separator.len() > 50 {
        return Err("column separator is limited up to 50 bytes".into());
    }
    let single = |name: &str| -> Result<Option<u8>, String> {
        match header(h, name) {
            None => Ok(None),
            Some(v) if mode == Mode::Doris && v.len() != 1 => {
                Err(format!("{name} must be single-char, actually is {v}"))
            }
            Some(v) => Ok(v.bytes().next()),
        }
    };
    let enclose = single("enclose")?;
    let escape = single("escape")?;
    let strict_mode = strict_bool(
        h,
        "strict_mode",
        "Invalid strict mode format. Must be bool type",
    )?;
    let trim_space = match mode {
        Mode::StarRocks => strict_bool(
            h,
            "trim_space",
            "Invalid trim space format. Must be bool type",
        )?,
        Mode::Doris => false,
    };
    let timeout_s = match header(h, "timeout") {
        None => 600,
        Some(v) => {
            let t: u64 = v
                .trim()
                .parse()
                .map_err(|_| "Invalid timeout format".to_string())?;
            if !(1..=259_200).contains(&t) {
                return Err(format!(
                    "Invalid timeout: {t}. timeout should be in [1, 259200] seconds"
                ));
            }
            t
        }
    };
    if header(h, "partitions").is_some() && header(h, "temporary_partitions").is_some() {
        return Err("Can not specify both partitions and temporary partitions".into());
    }
    let max_filter_ratio = match header(h, "max_filter_ratio") {
        None => 0.0,
        Some(v) => match v.trim().parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                return Err(format!(
                    "Invalid max_filter_ratio: {v}. It should be in [0, 1]"
                ));
            }
        },
    };
    if let Some(v) = header(h, "exec_mem_limit")
        && v.trim().parse::<i64>().is_err()
    {
        return Err("Invalid mem limit format".into());
    }
    let skip_lines = match header(
        h,
        if mode == Mode::Doris {
            "skip_lines"
        } else {
            "skip_header"
        },
    ) {
        None => 0,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("Invalid skip lines: {v}"))?,
    };
    let columns = header(h, "columns")
        .filter(|v| !v.trim().is_empty())
        .map(parse_columns_header)
        .transpose()?;
    let where_ = header(h, "where")
        .map(|w| parse_expr(w).map_err(|e| format!("Invalid where: {}", e.message)))
        .transpose()?;
    let jsonpaths = header(h, "jsonpaths")
        .map(|v| {
            serde_json::from_str::<Vec<String>>(v).map_err(|e| format!("Invalid jsonpaths: {e}"))
        })
        .transpose()?;
    let strip_outer_array = bool_header(h, "strip_outer_array");
    let read_json_by_line = match mode {
        Mode::Doris => {
            bool_header(h, "read_json_by_line")
                || (header(h, "read_json_by_line").is_none()
                    && header(h, "strip_outer_array").is_none())
        }
        Mode::StarRocks => false,
    };
    let mut merge_type = MergeType::Append;
    let mut sequence_col = None;
    let mut hidden_columns = Vec::new();
    let mut partial;
    let mut two_phase_commit = false;
    let mut group_commit = None;
    if mode == Mode::Doris {
        let delete = header(h, "delete");
        merge_type = match header(h, "merge_type").map(|m| m.to_ascii_uppercase()) {
            None => MergeType::Append,
            Some(m) if m == "APPEND" => MergeType::Append,
            Some(m) if m == "DELETE" => MergeType::Delete,
            Some(m) if m == "MERGE" => {
                let d = delete.ok_or("Excepted DELETE ON clause when merge type is MERGE.")?;
                MergeType::Merge(
                    parse_expr(d)
                        .map_err(|e| format!("Invalid delete condition: {}", e.message))?,
                )
            }
            Some(m) => return Err(format!("Invalid merge type {m}")),
        };
        if delete.is_some() && !matches!(merge_type, MergeType::Merge(_)) {
            return Err("Not support DELETE ON clause when merge type is not MERGE.".into());
        }
        sequence_col = header(h, "function_column.sequence_col").map(str::to_string);
        hidden_columns = header(h, "hidden_columns")
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().trim_matches('`').to_string())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        partial = bool_header(h, "partial_columns");
        if let Some(m) = header(h, "unique_key_update_mode") {
            match m.to_ascii_uppercase().as_str() {
                "UPSERT" => partial = false,
                "UPDATE_FIXED_COLUMNS" => partial = true,
                "UPDATE_FLEXIBLE_COLUMNS" => {
                    if format != Format::Json {
                        return Err("flexible partial update only support json format as input file currently".into());
                    }
                    for (name, bad) in [
                        ("fuzzy_parse", bool_header(h, "fuzzy_parse")),
                        ("columns", header(h, "columns").is_some()),
                        ("jsonpaths", header(h, "jsonpaths").is_some()),
                        ("hidden_columns", header(h, "hidden_columns").is_some()),
                        ("function_column.sequence_col", sequence_col.is_some()),
                        ("merge_type", header(h, "merge_type").is_some()),
                        ("where", header(h, "where").is_some()),
                    ] {
                        if bad {
                            return Err(format!(
                                "Don't support flexible partial update when '{name}' is specified"
                            ));
                        }
                    }
                    partial = true;
                }
                _ => {
                    return Err(format!(
                        "Invalid unique_key_partial_mode {m}, must be one of 'UPSERT', 'UPDATE_FIXED_COLUMNS' or 'UPDATE_FLEXIBLE_COLUMNS'"
                    ));
                }
            }
        }
        if let Some(b) = header(h, "partial_update_new_key_behavior")
            && !["APPEND", "ERROR"].contains(&b.to_ascii_uppercase().as_str())
        {
            return Err(format!(
                "Invalid partial_update_new_key_behavior {b}, must be one of 'APPEND' or 'ERROR'"
            ));
        }
        two_phase_commit = header(h, "two_phase_commit") == Some("true");
        if let Some(g) = header(h, "group_commit") {
            let g = g.to_ascii_lowercase();
            if !["async_mode", "sync_mode", "off_mode"].contains(&g.as_str()) {
                return Err("group_commit can only be [async_mode, sync_mode, off_mode]".into());
            }
            if g != "off_mode" {
                if header(h, "label").is_some() {
                    return Err("label and group_commit can't be set at the same time".into());
                }
                if !two_phase_commit && !partial && header(h, "partitions").is_none() {
                    group_commit = Some(g);
                }
            }
        }
    } else {
        partial = strict_bool(
            h,
            "partial_update",
            "Invalid partial update flag format. Must be bool type",
        )?;
        if let Some(m) = header(h, "partial_update_mode")
            && !["row", "column", "auto"].contains(&m.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "Invalid partial update mode: {m}. Must be one of row, column, auto"
            ));
        }
    }
    Ok(LoadParams {
        label: header(h, "label").map(str::to_string),
        format,
        column_separator,
        line_delimiter,
        enclose,
        escape,
        trim_double_quotes: bool_header(h, "trim_double_quotes"),
        trim_space,
        skip_lines,
        columns,
        where_,
        max_filter_ratio,
        strict_mode,
        jsonpaths,
        json_root: header(h, "json_root").map(str::to_string),
        strip_outer_array,
        read_json_by_line,
        ignore_json_size: bool_header(h, "ignore_json_size"),
        merge_type,
        sequence_col,
        hidden_columns,
        partial,
        two_phase_commit,
        group_commit,
        codec,
        timeout_s,
        comment: header(h, "comment").unwrap_or_default().to_string(),
        merge_condition: match mode {
            Mode::StarRocks => {
                header(h, "merge_condition").map(|v| v.trim().trim_matches('`').to_string())
            }
            Mode::Doris => None,
        },
    })
}

/// Decompresses the body according to the declared codec.
pub fn decompress(codec: Option<Codec>, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let res = match codec {
        None => return Ok(body.to_vec()),
        Some(Codec::Gzip) => flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out),
        Some(Codec::Deflate) => flate2::read::ZlibDecoder::new(body).read_to_end(&mut out),
        Some(Codec::Lz4Frame) => lz4_flex::frame::FrameDecoder::new(body).read_to_end(&mut out),
        Some(Codec::Zstd) => {
            zstd::stream::read::Decoder::new(body).and_then(|mut d| d.read_to_end(&mut out))
        }
        Some(Codec::Unsupported(name)) => {
            return Err(format!(
                "compression {name} is valid but not supported by the cdcflow emulator"
            ));
        }
    };
    res.map_err(|e| format!("Failed to decompress the body ({codec:?}): {e}"))?;
    Ok(out)
}

/// A source cell before conversion.
#[derive(Clone, Debug)]
enum Cell {
    /// Not present in the record (JSON key absent).
    Missing,
    /// Explicit NULL (`\N`, JSON null).
    Null,
    /// Text to convert.
    Text(String),
}

/// Where the error-log text of a record comes from (built only when the record is filtered).
enum Raw {
    /// Rebuild from the cells (CSV, Arrow).
    Cells,
    /// The JSON object of the record.
    Json(Json),
}

fn raw_text(raw: &Raw, cells: &[Cell]) -> String {
    match raw {
        Raw::Json(j) => j.to_text(),
        Raw::Cells => cells
            .iter()
            .map(|c| match c {
                Cell::Text(s) => s.as_str(),
                _ => "\\N",
            })
            .collect::<Vec<_>>()
            .join("|"),
    }
}

/// A decoded record: named cells plus the source of its error-log text.
struct Record {
    names: std::rc::Rc<Vec<String>>,
    cells: Vec<Cell>,
    raw: Raw,
}

/// The outcome of parsing a load body against a table.
#[derive(Debug)]
pub struct ParsedLoad {
    /// Records seen.
    pub total: u64,
    /// Records filtered by data-quality checks.
    pub filtered: u64,
    /// Records rejected by `where`.
    pub unselected: u64,
    /// Error-log lines, one per filtered record.
    pub errors: Vec<String>,
    /// The rows to apply at commit.
    pub write: PendingWrite,
}

fn split_records(data: &[u8], p: &LoadParams) -> Vec<Vec<Vec<u8>>> {
    let (sep, delim) = (&p.column_separator[..], &p.line_delimiter[..]);
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut cur = Vec::new();
    let mut i = 0;
    let mut at_field_start = true;
    while i < data.len() {
        if at_field_start
            && let Some(q) = p.enclose
            && data[i] == q
        {
            // Quoted field: read to the closing quote; escape char or a doubled quote is literal.
            i += 1;
            while i < data.len() {
                if Some(data[i]) == p.escape && i + 1 < data.len() {
                    cur.push(data[i + 1]);
                    i += 2;
                } else if data[i] == q && data.get(i + 1) == Some(&q) {
                    cur.push(q);
                    i += 2;
                } else if data[i] == q {
                    i += 1;
                    break;
                } else {
                    cur.push(data[i]);
                    i += 1;
                }
            }
            at_field_start = false;
            continue;
        }
        if data[i..].starts_with(delim) {
            fields.push(std::mem::take(&mut cur));
            records.push(std::mem::take(&mut fields));
            i += delim.len();
            at_field_start = true;
        } else if data[i..].starts_with(sep) {
            fields.push(std::mem::take(&mut cur));
            i += sep.len();
            at_field_start = true;
        } else {
            cur.push(data[i]);
            i += 1;
            at_field_start = false;
        }
    }
    if !cur.is_empty() || !fields.is_empty() {
        fields.push(cur);
        records.push(fields);
    }
    records
}

fn json_cell(v: Option<&Json>) -> Cell {
    match v {
        None => Cell::Missing,
        Some(Json::Null) => Cell::Null,
        Some(Json::Str(s)) => Cell::Text(s.clone()),
        Some(Json::Num(n)) => Cell::Text(n.clone()),
        Some(other) => Cell::Text(other.to_text()),
    }
}

fn json_path<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    let p = path.trim().strip_prefix('$').unwrap_or(path);
    let mut cur = v;
    for part in p.split('.').filter(|s| !s.is_empty()) {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = idx {
            cur = cur.index(i)?;
        }
    }
    Some(cur)
}

/// The source column names a record is read into, before any `columns` mapping.
fn source_names(p: &LoadParams, table: &Table) -> Vec<String> {
    match &p.columns {
        Some(cols) => cols
            .iter()
            .filter(|c| c.expr.is_none())
            .map(|c| c.name.clone())
            .collect(),
        None => {
            let mut n: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
            n.extend(p.hidden_columns.iter().cloned());
            n
        }
    }
}

fn decode_records(
    mode: Mode,
    p: &LoadParams,
    table: &Table,
    data: &[u8],
    json_max: usize,
) -> Result<Vec<Result<Record, String>>, String> {
    let mut out = Vec::new();
    match p.format {
        Format::Csv { header_lines } => {
            let mut recs = split_records(data, p).into_iter().skip(p.skip_lines);
            let mut names = source_names(p, table);
            if header_lines > 0 {
                match recs.next() {
                    Some(h) if p.columns.is_none() => {
                        names = h
                            .iter()
                            .map(|f| String::from_utf8_lossy(f).trim().to_string())
                            .collect();
                    }
                    _ => {}
                }
                for _ in 1..header_lines {
                    recs.next();
                }
            }
            let names = std::rc::Rc::new(names);
            for fields in recs {
                if fields.len() != names.len() {
                    let raw = fields
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect::<Vec<_>>()
                        .join("|");
                    let cmp = if fields.len() < names.len() {
                        "less"
                    } else {
                        "more"
                    };
                    out.push(Err(format!(
                        "Reason: actual column number in csv file is {cmp} than schema column number.actual number: {}, schema column number: {}. src line [{raw}]; ",
                        fields.len(),
                        names.len()
                    )));
                    continue;
                }
                let cells = fields
                    .into_iter()
                    .map(|f| {
                        let mut s = String::from_utf8_lossy(&f).into_owned();
                        if p.trim_space {
                            s = s.trim_matches(' ').to_string();
                        }
                        if p.trim_double_quotes
                            && s.len() >= 2
                            && s.starts_with('"')
                            && s.ends_with('"')
                        {
                            s = s[1..s.len() - 1].to_string();
                        }
                        if s == "\\N" {
                            Cell::Null
                        } else {
                            Cell::Text(s)
                        }
                    })
                    .collect();
                out.push(Ok(Record {
                    names: names.clone(),
                    cells,
                    raw: Raw::Cells,
                }));
            }
        }
        Format::Json => {
            let line_mode = mode == Mode::Doris && p.read_json_by_line;
            let capped = match mode {
                Mode::Doris => !line_mode,
                Mode::StarRocks => !p.ignore_json_size,
            };
            if capped && data.len() > json_max {
                return Err(format!(
                    "The size of this batch exceed the max size [{json_max}] of json type data  data [ {} ]. Set ignore_json_size to skip the check, although it may lead huge memory consuming.",
                    data.len()
                ));
            }
            let mut docs: Vec<Result<Json, String>> = Vec::new();
            if line_mode {
                for line in data.split(|b| *b == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    docs.push(json::parse_one(line).map_err(|e| {
                        format!(
                            "Reason: Parse json data failed: {e}. src line [{}]; ",
                            String::from_utf8_lossy(line)
                        )
                    }));
                }
            } else {
                let (parsed, err) = json::parse_many(data);
                docs.extend(parsed.into_iter().map(Ok));
                if let Some(e) = err {
                    docs.push(Err(format!(
                        "Reason: Parse json data failed: {e}. src line [...]; "
                    )));
                }
            }
            let mut objects = Vec::new();
            for d in docs {
                let d = match d {
                    Ok(d) => d,
                    Err(e) => {
                        objects.push(Err(e));
                        continue;
                    }
                };
                let d = match &p.json_root {
                    Some(root) => match json_path(&d, root) {
                        Some(v) => v.clone(),
                        None => {
                            objects.push(Err(format!(
                                "Reason: JSON Root not found. src line [{}]; ",
                                d.to_text()
                            )));
                            continue;
                        }
                    },
                    None => d,
                };
                match d {
                    Json::Arr(items) if p.strip_outer_array => {
                        objects.extend(items.into_iter().map(Ok))
                    }
                    Json::Arr(_) => {
                        return Err(
                            "JSON data is array-object, `strip_outer_array` must be TRUE.".into(),
                        );
                    }
                    obj @ Json::Obj(_) if !p.strip_outer_array => objects.push(Ok(obj)),
                    other if p.strip_outer_array => {
                        let _ = other;
                        return Err(
                            "JSON data is not an array-object, `strip_outer_array` must be FALSE."
                                .into(),
                        );
                    }
                    other => objects.push(Err(format!(
                        "Reason: Expected an object. src line [{}]; ",
                        other.to_text()
                    ))),
                }
            }
            let names: Vec<String> = match (&p.jsonpaths, &p.columns) {
                (Some(_), Some(cols)) => cols
                    .iter()
                    .filter(|c| c.expr.is_none())
                    .map(|c| c.name.clone())
                    .collect(),
                (Some(paths), None) => table
                    .columns
                    .iter()
                    .take(paths.len())
                    .map(|c| c.name.clone())
                    .collect(),
                (None, _) => {
                    let mut n = source_names(p, table);
                    let seq = p.sequence_col.as_deref().into_iter();
                    for extra in [DORIS_DELETE_SIGN, STARROCKS_OP].into_iter().chain(seq) {
                        if !n.iter().any(|x| x.eq_ignore_ascii_case(extra)) {
                            n.push(extra.to_string());
                        }
                    }
                    n
                }
            };
            let names = std::rc::Rc::new(names);
            for o in objects {
                let o = match o {
                    Ok(o) => o,
                    Err(e) => {
                        out.push(Err(e));
                        continue;
                    }
                };
                let cells = match &p.jsonpaths {
                    Some(paths) => paths
                        .iter()
                        .take(names.len())
                        .map(|path| json_cell(json_path(&o, path)))
                        .collect(),
                    None => names.iter().map(|n| json_cell(o.get(n))).collect(),
                };
                out.push(Ok(Record {
                    names: names.clone(),
                    cells,
                    raw: Raw::Json(o),
                }));
            }
        }
        Format::Arrow => {
            let mut cursor = std::io::Cursor::new(data);
            while (cursor.position() as usize) < data.len() {
                let reader = arrow::ipc::reader::StreamReader::try_new(&mut cursor, None)
                    .map_err(|e| format!("Failed to read arrow stream: {e}"))?;
                let schema = reader.schema();
                let names = std::rc::Rc::new(
                    schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .collect::<Vec<_>>(),
                );
                for batch in reader {
                    let batch = batch.map_err(|e| format!("Failed to read arrow batch: {e}"))?;
                    let opts = arrow::util::display::FormatOptions::default();
                    let fmts = batch
                        .columns()
                        .iter()
                        .map(|c| arrow::util::display::ArrayFormatter::try_new(c.as_ref(), &opts))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| format!("Unsupported arrow column: {e}"))?;
                    for row in 0..batch.num_rows() {
                        let cells: Vec<Cell> = batch
                            .columns()
                            .iter()
                            .zip(&fmts)
                            .map(|(c, f)| {
                                if c.is_null(row) {
                                    Cell::Null
                                } else {
                                    Cell::Text(f.value(row).to_string())
                                }
                            })
                            .collect();
                        out.push(Ok(Record {
                            names: names.clone(),
                            cells,
                            raw: Raw::Cells,
                        }));
                    }
                }
            }
        }
    }
    Ok(out)
}

struct RecordEnv<'a> {
    names: &'a [String],
    values: &'a [Value],
}

impl Env for RecordEnv<'_> {
    fn column(&self, name: &str) -> Option<Value> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| self.values[i].clone())
    }

    fn var(&self, _: &str) -> Value {
        Value::Null
    }
}

fn raw_value(c: &Cell) -> Value {
    match c {
        Cell::Missing | Cell::Null => Value::Null,
        Cell::Text(s) => Value::Str(s.clone()),
    }
}

/// Where each needed name sits among a record's cells (source columns, then derived columns).
struct Layout {
    source: std::rc::Rc<Vec<String>>,
    env_names: Vec<String>,
    col_idx: Vec<Option<usize>>,
    delete_idx: Option<usize>,
    op_idx: Option<usize>,
    seq_idx: Option<usize>,
}

impl Layout {
    fn new(
        source: std::rc::Rc<Vec<String>>,
        derived: &[&ColumnSpec],
        table: &Table,
        seq: Option<&str>,
    ) -> Self {
        let mut env_names = source.to_vec();
        env_names.extend(derived.iter().map(|d| d.name.clone()));
        let find = |name: &str| env_names.iter().rposition(|n| n.eq_ignore_ascii_case(name));
        Layout {
            col_idx: table.columns.iter().map(|c| find(&c.name)).collect(),
            delete_idx: find(DORIS_DELETE_SIGN),
            op_idx: find(STARROCKS_OP),
            seq_idx: seq.and_then(find),
            source,
            env_names,
        }
    }
}

/// Checks that header-level options fit the table (before the body is read).
pub fn check_against_table(mode: Mode, p: &LoadParams, table: &Table) -> Result<(), String> {
    let uses_delete_sign = !matches!(p.merge_type, MergeType::Append)
        || p.hidden_columns
            .iter()
            .any(|c| c.eq_ignore_ascii_case(DORIS_DELETE_SIGN))
        || p.columns.as_ref().is_some_and(|c| {
            c.iter()
                .any(|c| c.name.eq_ignore_ascii_case(DORIS_DELETE_SIGN))
        });
    if mode == Mode::Doris && uses_delete_sign && !table.batch_delete {
        return Err(format!(
            "load by MERGE or DELETE need to upgrade table to support batch delete. table: {}",
            table.name
        ));
    }
    if mode == Mode::Doris {
        match (&table.sequence, &p.sequence_col) {
            (SequenceMode::Hidden(_), None) if p.partial => {}
            (SequenceMode::Hidden(_), None) => {
                return Err(format!(
                    "Table {} has sequence column, need to specify the sequence column",
                    table.name
                ));
            }
            (SequenceMode::None, Some(_)) => {
                return Err("There is no sequence column in the table".into());
            }
            _ => {}
        }
    }
    if mode == Mode::StarRocks
        && table.keys_type != KeysType::Primary
        && p.columns
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c.name.eq_ignore_ascii_case(STARROCKS_OP)))
    {
        return Err(format!(
            "Unknown column '{STARROCKS_OP}' in '{}': __op is only valid for primary key tables",
            table.name
        ));
    }
    if let Some(c) = &p.merge_condition {
        if table.keys_type != KeysType::Primary {
            return Err("merge condition is only supported on primary key tables".into());
        }
        match table.column_index(c) {
            None => {
                return Err(format!(
                    "Invalid merge condition column: {c} does not exist"
                ));
            }
            Some(i) if table.columns[i].is_key => {
                return Err(format!(
                    "Invalid merge condition column: {c} is a primary key column"
                ));
            }
            Some(_) => {}
        }
    }
    if p.partial && !matches!(table.keys_type, KeysType::Unique | KeysType::Primary) {
        return Err("Only unique key / primary key table support partial update".into());
    }
    if let Some(cols) = &p.columns {
        for c in &table.columns {
            let given = cols.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name));
            if !given && !c.nullable && c.default.is_none() && !p.partial {
                return Err(format!("Column has no default value. column: {}", c.name));
            }
        }
    }
    Ok(())
}

/// Parses the (decompressed) body against the table, applying strict mode and `where`.
pub fn parse_body(
    mode: Mode,
    p: &LoadParams,
    db: &str,
    table: &Table,
    data: &[u8],
    json_max: usize,
) -> Result<ParsedLoad, String> {
    let records = decode_records(mode, p, table, data, json_max)?;
    let target_names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let seq_source = match &table.sequence {
        SequenceMode::Hidden(ty) => p.sequence_col.clone().map(|c| (c, ty.clone())),
        _ => None,
    };
    let mut parsed = ParsedLoad {
        total: 0,
        filtered: 0,
        unselected: 0,
        errors: Vec::new(),
        write: PendingWrite {
            db: db.to_string(),
            table: table.name.clone(),
            columns: target_names.clone(),
            rows: Vec::new(),
            merge_condition: p.merge_condition.clone(),
        },
    };
    let derived: Vec<&ColumnSpec> = p
        .columns
        .iter()
        .flatten()
        .filter(|c| c.expr.is_some())
        .collect();
    let mut layout: Option<Layout> = None;
    'records: for rec in records {
        parsed.total += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                parsed.filtered += 1;
                parsed.errors.push(e);
                continue;
            }
        };
        // Name lookups are resolved once per distinct source layout, not per row.
        if !layout
            .as_ref()
            .is_some_and(|l| std::rc::Rc::ptr_eq(&l.source, &rec.names))
        {
            layout = Some(Layout::new(
                rec.names.clone(),
                &derived,
                table,
                seq_source.as_ref().map(|s| s.0.as_str()),
            ));
        }
        let Some(lay) = layout.as_ref() else { continue };
        let env_names = lay.env_names.as_slice();
        // Source values visible to expressions: raw source columns plus derived ones.
        let needs_values = !derived.is_empty() || matches!(p.merge_type, MergeType::Merge(_));
        let mut env_values: Vec<Value> = if needs_values {
            rec.cells.iter().map(raw_value).collect()
        } else {
            Vec::new()
        };
        let mut cells = rec.cells;
        for d in &derived {
            let v = d
                .expr
                .as_ref()
                .map(|e| {
                    e.eval(&RecordEnv {
                        names: &env_names[..env_values.len()],
                        values: &env_values,
                    })
                })
                .unwrap_or(Value::Null);
            cells.push(match v.to_text() {
                None => Cell::Null,
                Some(t) => Cell::Text(t),
            });
            env_values.push(v);
        }
        let mut values: Vec<Option<Value>> = Vec::with_capacity(table.columns.len());
        for (ci, col) in table.columns.iter().enumerate() {
            let cell = lay.col_idx[ci].map(|i| &cells[i]).unwrap_or(&Cell::Missing);
            let v = match cell {
                Cell::Missing if p.partial => None,
                Cell::Missing => {
                    if !col.nullable && col.default.is_none() {
                        parsed.filtered += 1;
                        parsed.errors.push(format!("Reason: column({}) values is null while columns is not nullable. src line [{}]; ", col.name, raw_text(&rec.raw, &cells)));
                        continue 'records;
                    }
                    None
                }
                Cell::Null => Some(Value::Null),
                Cell::Text(t) => Some(match convert_text(t, &col.ty) {
                    Ok(v) => v,
                    Err(ConvError::TooLong) => {
                        parsed.filtered += 1;
                        parsed.errors.push(format!(
                            "Reason: column_name[{}], the length of input is too long than schema. first 32 bytes of input str: [{}] schema length: {}; actual length: {}; . src line [{}]; ",
                            col.name,
                            t.chars().take(32).collect::<String>(),
                            col.ty.char_length().unwrap_or(0),
                            t.len(),
                            raw_text(&rec.raw, &cells)
                        ));
                        continue 'records;
                    }
                    Err(_) if p.strict_mode => {
                        parsed.filtered += 1;
                        parsed.errors.push(format!(
                            "Reason: column({}) value is incorrect while strict mode is true, src value is {t}. src line [{}]; ",
                            col.name, raw_text(&rec.raw, &cells)
                        ));
                        continue 'records;
                    }
                    Err(_) => Value::Null,
                }),
            };
            if matches!(v, Some(Value::Null)) && !col.nullable {
                parsed.filtered += 1;
                parsed.errors.push(format!("Reason: column({}) values is null while columns is not nullable. src line [{}]; ", col.name, raw_text(&rec.raw, &cells)));
                continue 'records;
            }
            values.push(v);
        }
        // Operation: Doris delete sign / merge type, StarRocks __op.
        let mut delete = false;
        match mode {
            Mode::Doris => match &p.merge_type {
                MergeType::Delete => delete = true,
                MergeType::Merge(cond) => {
                    delete = cond.holds(&RecordEnv {
                        names: env_names,
                        values: &env_values,
                    })
                }
                MergeType::Append => {
                    if let Some(i) = lay.delete_idx
                        && table.batch_delete
                    {
                        match &cells[i] {
                            Cell::Text(t) if t.trim() == "1" => delete = true,
                            Cell::Text(t) if t.trim() == "0" => {}
                            Cell::Missing | Cell::Null => {}
                            Cell::Text(t) => {
                                parsed.filtered += 1;
                                parsed.errors.push(format!("Reason: column({DORIS_DELETE_SIGN}) value is incorrect, src value is {t}. src line [{}]; ", raw_text(&rec.raw, &cells)));
                                continue 'records;
                            }
                        }
                    }
                }
            },
            Mode::StarRocks => {
                if let Some(i) = lay.op_idx
                    && table.keys_type == KeysType::Primary
                {
                    match &cells[i] {
                        Cell::Text(t) if t.trim() == "1" || t.eq_ignore_ascii_case("delete") => {
                            delete = true
                        }
                        Cell::Text(t) if t.trim() == "0" || t.eq_ignore_ascii_case("upsert") => {}
                        Cell::Missing | Cell::Null => {}
                        Cell::Text(t) => {
                            parsed.filtered += 1;
                            parsed.errors.push(format!("Reason: invalid value of column {STARROCKS_OP}: {t}. src line [{}]; ", raw_text(&rec.raw, &cells)));
                            continue 'records;
                        }
                    }
                }
            }
        }
        let seq = match &seq_source {
            Some((_, ty)) => match lay.seq_idx.map(|i| &cells[i]) {
                Some(Cell::Text(t)) => match convert_text(t, ty) {
                    Ok(v) => v,
                    Err(_) => {
                        parsed.filtered += 1;
                        parsed.errors.push(format!("Reason: sequence column value is incorrect, src value is {t}. src line [{}]; ", raw_text(&rec.raw, &cells)));
                        continue 'records;
                    }
                },
                _ => Value::Null,
            },
            None => Value::Null,
        };
        if let Some(w) = &p.where_ {
            let vals: Vec<Value> = values
                .iter()
                .map(|v| v.clone().unwrap_or(Value::Null))
                .collect();
            if !w.holds(&RecordEnv {
                names: &target_names,
                values: &vals,
            }) {
                parsed.unselected += 1;
                continue;
            }
        }
        parsed.write.rows.push(Mutation {
            values,
            delete,
            seq,
        });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_decode_hex_and_escapes() {
        assert_eq!(decode_separator("\\x01").unwrap(), vec![1]);
        assert_eq!(decode_separator("\\x01\\x02").unwrap(), vec![1, 2]);
        assert_eq!(decode_separator("\\t").unwrap(), b"\t");
        assert_eq!(decode_separator("||").unwrap(), b"||");
        assert_eq!(
            decode_separator("\\x0").unwrap_err(),
            "Hex str length error"
        );
        assert_eq!(
            decode_separator("\\xzz").unwrap_err(),
            "Hex str format error"
        );
    }

    #[test]
    fn columns_header_splits_at_top_level_commas() {
        let cols = parse_columns_header("`id`,name, tmp, v = upper(tmp),__op").unwrap();
        let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "tmp", "v", "__op"]);
        assert!(cols[3].expr.is_some() && cols[0].expr.is_none());
    }
}
