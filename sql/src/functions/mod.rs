//! Flink CDC's built-in functions: which names a transform may call, how each maps onto DataFusion,
//! and the UDFs for the ones whose semantics differ from DataFusion's (Flink's semantics win).
//!
//! Every name a user can write is listed in [`SUPPORTED`] with its arity, so `cdcflow validate`
//! rejects unknown functions offline. A name is then either a DataFusion built-in with the same
//! meaning, a rename ([`rename`]), or one of our own UDFs ([`udfs`]).

mod temporal;
mod zone;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, Int32Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use base64::Engine as _;
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use regex::Regex;

pub use zone::Zone;

/// One callable name: how many arguments it takes (inclusive bounds).
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// Lower-case name as written by users.
    pub name: &'static str,
    /// Fewest arguments.
    pub min_args: usize,
    /// Most arguments (`usize::MAX`: variadic).
    pub max_args: usize,
}

const fn f(name: &'static str, min_args: usize, max_args: usize) -> FunctionSpec {
    FunctionSpec {
        name,
        min_args,
        max_args,
    }
}

const VARIADIC: usize = usize::MAX;

/// Every function name a transform expression may call (Flink CDC 3.2-3.6 plus most of master).
/// Operators and special syntax (`CASE`, `CAST`, `TRY_CAST`, `EXTRACT`, `SUBSTRING(.. FROM ..)`,
/// `TRIM(..)`, `POSITION(.. IN ..)`, `OVERLAY`, `LIKE`, `BETWEEN`, `IN`) are not function calls.
pub const SUPPORTED: &[FunctionSpec] = &[
    // arithmetic
    f("abs", 1, 1),
    f("ceil", 1, 1),
    f("ceiling", 1, 1),
    f("floor", 1, 1),
    f("round", 1, 2),
    f("mod", 2, 2),
    f("power", 2, 2),
    f("uuid", 0, 0),
    // string
    f("char_length", 1, 1),
    f("character_length", 1, 1),
    f("upper", 1, 1),
    f("lower", 1, 1),
    f("trim", 1, 2),
    f("ltrim", 1, 2),
    f("rtrim", 1, 2),
    f("btrim", 1, 2),
    f("regexp_replace", 3, 3),
    f("regexp_extract", 2, 3),
    f("regexp_substr", 2, 2),
    f("regexp_count", 2, 2),
    f("regexp_instr", 2, 2),
    f("substring", 2, 3),
    f("substr", 2, 3),
    f("concat", 1, VARIADIC),
    f("concat_ws", 2, VARIADIC),
    f("lpad", 3, 3),
    f("rpad", 3, 3),
    f("replace", 3, 3),
    f("repeat", 2, 2),
    f("left", 2, 2),
    f("right", 2, 2),
    f("locate", 2, 3),
    f("instr", 2, 2),
    f("startswith", 2, 2),
    f("endswith", 2, 2),
    f("to_base64", 1, 1),
    f("from_base64", 1, 1),
    f("from_base64_binary", 1, 1),
    // temporal
    f("localtime", 0, 0),
    f("localtimestamp", 0, 0),
    f("current_time", 0, 0),
    f("current_date", 0, 0),
    f("current_timestamp", 0, 0),
    f("now", 0, 0),
    f("date_format", 2, 2),
    f("date_format_tz", 3, 3),
    f("timestampdiff", 3, 3),
    f("timestampadd", 3, 3),
    f("to_date", 1, 2),
    f("to_timestamp", 1, 2),
    f("to_timestamp_ltz", 1, 2),
    f("from_unixtime", 1, 2),
    f("unix_timestamp", 0, 2),
    f("date_add", 2, 2),
    f("year", 1, 1),
    f("quarter", 1, 1),
    f("month", 1, 1),
    f("week", 1, 1),
    f("dayofyear", 1, 1),
    f("dayofmonth", 1, 1),
    f("dayofweek", 1, 1),
    f("hour", 1, 1),
    f("minute", 1, 1),
    f("second", 1, 1),
    // conditional
    f("coalesce", 1, VARIADIC),
    f("if", 3, 3),
    f("ifnull", 2, 2),
    f("nullif", 2, 2),
];

/// Looks up a function by its (case-insensitive) name.
pub fn lookup(name: &str) -> Option<&'static FunctionSpec> {
    let lower = name.to_ascii_lowercase();
    SUPPORTED.iter().find(|s| s.name == lower)
}

/// How a Flink name is spelled for DataFusion when the meaning is the same.
pub fn rename(name: &str) -> &str {
    match name {
        "ceiling" => "ceil",
        "startswith" => "starts_with",
        "endswith" => "ends_with",
        "ifnull" => "nvl",
        _ => name,
    }
}

/// Temporal shortcut functions that become `date_part('<unit>', t)` (DataFusion's EXTRACT).
pub fn date_part_unit(name: &str) -> Option<&'static str> {
    Some(match name {
        "year" => "year",
        "quarter" => "quarter",
        "month" => "month",
        "week" => "week",
        "dayofyear" => "doy",
        "dayofmonth" => "day",
        "dayofweek" => "dow",
        "hour" => "hour",
        "minute" => "minute",
        "second" => "second",
        _ => return None,
    })
}

/// Name of the placeholder UDF that `IF(c, a, b)` parses into before it is rewritten to `CASE`.
pub const IF_PLACEHOLDER: &str = "if";

/// Our UDFs, registered over DataFusion's built-ins of the same name; `zone` is `local-time-zone`.
pub fn udfs(zone: Zone) -> Vec<ScalarUDF> {
    use Kind::*;
    let kinds = [
        Concat,
        RegexpReplace,
        RegexpExtract,
        RegexpSubstr,
        Locate,
        ToBase64,
        FromBase64,
        FromBase64Binary,
        If,
        Now,
        CurrentTimestamp,
        LocalTimestamp,
        CurrentDate,
        CurrentTime,
        LocalTime,
        DateFormat,
        DateFormatTz,
        TimestampDiff,
        TimestampAdd,
        ToDate,
        ToTimestamp,
        ToTimestampLtz,
        FromUnixtime,
        UnixTimestamp,
        DateAdd,
    ];
    kinds
        .into_iter()
        .map(|k| ScalarUDF::new_from_impl(FlinkFunction::new(k, zone.clone())))
        .collect()
}

/// Which Flink function a [`FlinkFunction`] implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Concat,
    RegexpReplace,
    RegexpExtract,
    RegexpSubstr,
    Locate,
    ToBase64,
    FromBase64,
    FromBase64Binary,
    If,
    Now,
    CurrentTimestamp,
    LocalTimestamp,
    CurrentDate,
    CurrentTime,
    LocalTime,
    DateFormat,
    DateFormatTz,
    TimestampDiff,
    TimestampAdd,
    ToDate,
    ToTimestamp,
    ToTimestampLtz,
    FromUnixtime,
    UnixTimestamp,
    DateAdd,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Concat => "concat",
            Kind::RegexpReplace => "regexp_replace",
            Kind::RegexpExtract => "regexp_extract",
            Kind::RegexpSubstr => "regexp_substr",
            Kind::Locate => "locate",
            Kind::ToBase64 => "to_base64",
            Kind::FromBase64 => "from_base64",
            Kind::FromBase64Binary => "from_base64_binary",
            Kind::If => IF_PLACEHOLDER,
            Kind::Now => "now",
            Kind::CurrentTimestamp => "current_timestamp",
            Kind::LocalTimestamp => "localtimestamp",
            Kind::CurrentDate => "current_date",
            Kind::CurrentTime => "current_time",
            Kind::LocalTime => "localtime",
            Kind::DateFormat => "date_format",
            Kind::DateFormatTz => "date_format_tz",
            Kind::TimestampDiff => "timestampdiff",
            Kind::TimestampAdd => "timestampadd",
            Kind::ToDate => "to_date",
            Kind::ToTimestamp => "to_timestamp",
            Kind::ToTimestampLtz => "to_timestamp_ltz",
            Kind::FromUnixtime => "from_unixtime",
            Kind::UnixTimestamp => "unix_timestamp",
            Kind::DateAdd => "date_add",
        }
    }
}

/// A Flink built-in implemented by us; one struct dispatching on [`Kind`] keeps registration simple.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlinkFunction {
    kind: Kind,
    zone: Zone,
    signature: Signature,
}

impl FlinkFunction {
    fn new(kind: Kind, zone: Zone) -> Self {
        // Arity is checked offline against SUPPORTED; argument types are converted inside invoke,
        // so DataFusion must not coerce them. Volatile: the "current time" functions must not be
        // folded at plan time, because plans live as long as a table's schema version.
        let signature = Signature::one_of(
            vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
            Volatility::Volatile,
        );
        FlinkFunction {
            kind,
            zone,
            signature,
        }
    }
}

impl ScalarUDFImpl for FlinkFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        use Kind::*;
        Ok(match self.kind {
            Concat | RegexpReplace | RegexpExtract | RegexpSubstr | ToBase64 | FromBase64
            | DateFormat | DateFormatTz | FromUnixtime => DataType::Utf8,
            FromBase64Binary => DataType::Binary,
            Locate | TimestampDiff => DataType::Int32,
            UnixTimestamp => DataType::Int64,
            If => match arg_types {
                [_, DataType::Null, b] => b.clone(),
                [_, a, _] => a.clone(),
                _ => return plan_err!("IF takes 3 arguments"),
            },
            // Flink types these TIMESTAMP_LTZ(3) / TIMESTAMP(3): millisecond units carry that.
            Now | CurrentTimestamp | ToTimestampLtz => temporal::ltz_ms_type(),
            LocalTimestamp | ToTimestamp => temporal::ts_ms_type(),
            CurrentDate | ToDate | DateAdd => DataType::Date32,
            CurrentTime | LocalTime => DataType::Duration(arrow::datatypes::TimeUnit::Second),
            TimestampAdd => match arg_types.get(2) {
                Some(DataType::Timestamp(_, tz)) => {
                    DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz.clone())
                }
                _ => temporal::ts_type(),
            },
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let a = &args.args;
        use Kind::*;
        let out: ArrayRef = match self.kind {
            Concat => concat(a, n)?,
            RegexpReplace => regexp_replace(a, n)?,
            RegexpExtract => regexp_extract(a, n, false)?,
            RegexpSubstr => regexp_extract(a, n, true)?,
            Locate => locate(a, n)?,
            ToBase64 => to_base64(a, n)?,
            FromBase64 => from_base64(a, n, false)?,
            FromBase64Binary => from_base64(a, n, true)?,
            If => return exec_err!("IF must be rewritten to CASE before execution"),
            _ => return temporal::invoke(self.kind, &self.zone, a, n, args.return_type()),
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Argument `i` as a string array of `n` rows (any type is rendered with Arrow's cast).
pub(crate) fn string_arg(args: &[ColumnarValue], i: usize, n: usize) -> DfResult<ArrayRef> {
    let arr = args[i].to_array(n)?;
    if arr.data_type() == &DataType::Utf8 {
        return Ok(arr);
    }
    Ok(cast(&arr, &DataType::Utf8)?)
}

/// The value of argument `i` when it is a constant string (so patterns compile once per batch).
pub(crate) fn const_string(args: &[ColumnarValue], i: usize) -> Option<Option<String>> {
    match args.get(i)? {
        ColumnarValue::Scalar(s) => {
            if s.is_null() {
                Some(None)
            } else {
                Some(Some(s.to_string()))
            }
        }
        ColumnarValue::Array(_) => None,
    }
}

/// Flink's `||` and `CONCAT`: Java `String.join("", ..)`, so a NULL argument renders as `null`.
fn concat(args: &[ColumnarValue], n: usize) -> DfResult<ArrayRef> {
    let cols = (0..args.len())
        .map(|i| string_arg(args, i, n))
        .collect::<DfResult<Vec<_>>>()?;
    let strs: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
    let mut b = StringBuilder::with_capacity(n, n * 16);
    let mut buf = String::new();
    for row in 0..n {
        buf.clear();
        for s in &strs {
            if s.is_null(row) {
                buf.push_str("null");
            } else {
                buf.push_str(s.value(row));
            }
        }
        b.append_value(&buf);
    }
    Ok(Arc::new(b.finish()))
}

/// Compiles a pattern per row unless it is a constant; invalid patterns yield NULL, as in Flink.
struct PatternCache {
    constant: Option<Option<Regex>>,
}

impl PatternCache {
    fn new(args: &[ColumnarValue], i: usize) -> Self {
        PatternCache {
            constant: const_string(args, i).map(|p| p.and_then(|p| Regex::new(&p).ok())),
        }
    }

    fn get(&self, row_pattern: Option<&str>) -> Option<Regex> {
        match &self.constant {
            Some(r) => r.clone(),
            None => row_pattern.and_then(|p| Regex::new(p).ok()),
        }
    }
}

/// `REGEXP_REPLACE(s, regex, replacement)`: Java `replaceAll` with a literal replacement.
fn regexp_replace(args: &[ColumnarValue], n: usize) -> DfResult<ArrayRef> {
    let s = string_arg(args, 0, n)?;
    let p = string_arg(args, 1, n)?;
    let r = string_arg(args, 2, n)?;
    let (s, p, r) = (
        s.as_string::<i32>(),
        p.as_string::<i32>(),
        r.as_string::<i32>(),
    );
    let cache = PatternCache::new(args, 1);
    let mut b = StringBuilder::with_capacity(n, n * 16);
    for row in 0..n {
        if s.is_null(row) || p.is_null(row) || r.is_null(row) {
            b.append_null();
            continue;
        }
        match cache.get(Some(p.value(row))) {
            Some(re) => b.append_value(re.replace_all(s.value(row), regex::NoExpand(r.value(row)))),
            None => b.append_null(),
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `REGEXP_EXTRACT(s, regex[, group])` (group 1 by default) and `REGEXP_SUBSTR(s, regex)` (whole match).
fn regexp_extract(args: &[ColumnarValue], n: usize, whole: bool) -> DfResult<ArrayRef> {
    let s = string_arg(args, 0, n)?;
    let p = string_arg(args, 1, n)?;
    let (s, p) = (s.as_string::<i32>(), p.as_string::<i32>());
    let group: Option<ArrayRef> = match args.get(2) {
        Some(g) => Some(cast(&g.to_array(n)?, &DataType::Int64)?),
        None => None,
    };
    let cache = PatternCache::new(args, 1);
    let mut b = StringBuilder::with_capacity(n, n * 8);
    for row in 0..n {
        if s.is_null(row) || p.is_null(row) {
            b.append_null();
            continue;
        }
        let idx = if whole {
            0
        } else {
            match &group {
                Some(g) => {
                    let g = g.as_primitive::<arrow::datatypes::Int64Type>();
                    if g.is_null(row) {
                        b.append_null();
                        continue;
                    }
                    usize::try_from(g.value(row)).unwrap_or(usize::MAX)
                }
                None => 1,
            }
        };
        let value = cache.get(Some(p.value(row))).and_then(|re| {
            re.captures(s.value(row))
                .and_then(|c| c.get(idx).map(|m| m.as_str().to_owned()))
        });
        b.append_option(value);
    }
    Ok(Arc::new(b.finish()))
}

/// `LOCATE(needle, haystack[, from])`: 1-based character position, 0 when absent.
fn locate(args: &[ColumnarValue], n: usize) -> DfResult<ArrayRef> {
    let needle = string_arg(args, 0, n)?;
    let hay = string_arg(args, 1, n)?;
    let (needle, hay) = (needle.as_string::<i32>(), hay.as_string::<i32>());
    let from: Option<ArrayRef> = match args.get(2) {
        Some(g) => Some(cast(&g.to_array(n)?, &DataType::Int64)?),
        None => None,
    };
    let mut b = Int32Builder::with_capacity(n);
    for row in 0..n {
        if needle.is_null(row) || hay.is_null(row) {
            b.append_null();
            continue;
        }
        let start = match &from {
            Some(f) => {
                let f = f.as_primitive::<arrow::datatypes::Int64Type>();
                if f.is_null(row) {
                    b.append_null();
                    continue;
                }
                f.value(row).max(1) as usize
            }
            None => 1,
        };
        let h = hay.value(row);
        let skip_bytes = h.char_indices().nth(start - 1).map(|(i, _)| i);
        let pos = skip_bytes.and_then(|sb| {
            h[sb..]
                .find(needle.value(row))
                .map(|bi| (h[..sb + bi].chars().count() + 1) as i32)
        });
        b.append_value(pos.unwrap_or(0));
    }
    Ok(Arc::new(b.finish()))
}

fn to_base64(args: &[ColumnarValue], n: usize) -> DfResult<ArrayRef> {
    let arr = args[0].to_array(n)?;
    let mut b = StringBuilder::with_capacity(n, n * 8);
    let engine = base64::engine::general_purpose::STANDARD;
    match arr.data_type() {
        DataType::Binary => {
            let a = arr.as_binary::<i32>();
            for row in 0..n {
                b.append_option(a.is_valid(row).then(|| engine.encode(a.value(row))));
            }
        }
        _ => {
            let s = string_arg(args, 0, n)?;
            let a = s.as_string::<i32>();
            for row in 0..n {
                b.append_option(a.is_valid(row).then(|| engine.encode(a.value(row))));
            }
        }
    }
    Ok(Arc::new(b.finish()))
}

/// `FROM_BASE64(s)`: NULL when `s` is not valid Base64 (or, for the string form, not UTF-8).
fn from_base64(args: &[ColumnarValue], n: usize, binary: bool) -> DfResult<ArrayRef> {
    let s = string_arg(args, 0, n)?;
    let a = s.as_string::<i32>();
    let engine = base64::engine::general_purpose::STANDARD;
    if binary {
        let mut b = BinaryBuilder::with_capacity(n, n * 8);
        for row in 0..n {
            b.append_option(if a.is_null(row) {
                None
            } else {
                engine.decode(a.value(row)).ok()
            });
        }
        return Ok(Arc::new(b.finish()));
    }
    let mut b = StringBuilder::with_capacity(n, n * 8);
    for row in 0..n {
        let v = if a.is_null(row) {
            None
        } else {
            engine
                .decode(a.value(row))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
        };
        b.append_option(v);
    }
    Ok(Arc::new(b.finish()))
}
