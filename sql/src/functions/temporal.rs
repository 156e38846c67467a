//! Flink CDC's temporal functions, evaluated in the pipeline's `local-time-zone`.
//!
//! Type conventions (the same Arrow types [`cdcflow_engine::CdcType`] uses): TIMESTAMP is
//! `Timestamp(µs, None)` holding wall-clock time, TIMESTAMP_LTZ is `Timestamp(µs, "UTC")` holding
//! an instant, DATE is `Date32`, TIME is a `Duration` since midnight. Functions Flink types as
//! TIMESTAMP(3) return millisecond units so the output column gets precision 3. "Current time" functions
//! read the clock once per batch (Flink: once per record), and are never folded into a plan.
//! Unparsable input gives NULL instead of failing the pipeline (Flink throws for TO_TIMESTAMP),
//! except `UNIX_TIMESTAMP`, which returns `i64::MIN` like Flink.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType};
use chrono::{Datelike, Months, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use datafusion::common::{Result as DfResult, ScalarValue, exec_err};
use datafusion::logical_expr::ColumnarValue;

use super::{Kind, Zone, const_string, string_arg};

/// Arrow type of TIMESTAMP_LTZ values.
pub fn ltz_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// Arrow type of TIMESTAMP (wall-clock) values.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Arrow type of TIMESTAMP_LTZ(3) function results.
pub fn ltz_ms_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// Arrow type of TIMESTAMP(3) function results.
pub fn ts_ms_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, None)
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn naive_micros(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

fn naive_from_micros(us: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(us).map(|d| d.naive_utc())
}

fn date_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// Converts a Java `SimpleDateFormat` pattern into a chrono format string.
pub fn java_to_chrono(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal; '' is a single quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                push_literal(&mut out, chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            push_literal(&mut out, c);
            i += 1;
            continue;
        }
        let mut run = 1;
        while chars.get(i + run) == Some(&c) {
            run += 1;
        }
        let spec = match (c, run) {
            ('y', 2) => "%y",
            ('y', _) | ('u', _) => "%Y",
            ('M', 1) => "%-m",
            ('M', 2) => "%m",
            ('M', 3) => "%b",
            ('M', _) => "%B",
            ('d', 1) => "%-d",
            ('d', _) => "%d",
            ('H', 1) => "%-H",
            ('H', _) => "%H",
            ('h', 1) => "%-I",
            ('h', _) => "%I",
            ('m', 1) => "%-M",
            ('m', _) => "%M",
            ('s', 1) => "%-S",
            ('s', _) => "%S",
            ('S', 6) => "%6f",
            ('S', 9) => "%9f",
            ('S', _) => "%3f",
            ('a', _) => "%p",
            ('E', 4..) => "%A",
            ('E', _) => "%a",
            ('D', _) => "%j",
            ('z', _) => "%Z",
            ('Z', _) => "%z",
            ('X', _) | ('x', _) => "%:z",
            _ => {
                for _ in 0..run {
                    push_literal(&mut out, c);
                }
                ""
            }
        };
        out.push_str(spec);
        i += run;
    }
    out
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// Parses `s` with a chrono format; date-only formats give midnight.
fn parse_with(s: &str, fmt: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, fmt).ok().or_else(|| {
        NaiveDate::parse_from_str(s, fmt)
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

/// Parses SQL-style timestamp or date text (`2024-01-02 03:04:05[.123]`, ISO `T`, or a date).
fn parse_default(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d",
    ]
    .iter()
    .find_map(|f| parse_with(s, f))
}

/// Per-row wall-clock values of a temporal (or textual) argument, in `zone`.
fn locals(arr: &ArrayRef, zone: &Zone) -> DfResult<Vec<Option<NaiveDateTime>>> {
    let n = arr.len();
    Ok(match arr.data_type() {
        DataType::Timestamp(_, tz) => {
            let a = cast(arr, &DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))?;
            let a = a.as_primitive::<TimestampMicrosecondType>();
            (0..n)
                .map(|i| {
                    if a.is_null(i) {
                        return None;
                    }
                    let v = a.value(i);
                    if tz.is_some() {
                        zone.to_local(v.div_euclid(1000))
                    } else {
                        naive_from_micros(v)
                    }
                })
                .collect()
        }
        DataType::Date32 | DataType::Date64 => {
            let a = cast(arr, &DataType::Date32)?;
            let a = a.as_primitive::<arrow::datatypes::Date32Type>();
            (0..n)
                .map(|i| {
                    a.is_valid(i)
                        .then(|| {
                            NaiveDate::from_num_days_from_ce_opt(a.value(i) + EPOCH_DAYS_FROM_CE)
                        })
                        .flatten()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                })
                .collect()
        }
        _ => {
            let s = cast(arr, &DataType::Utf8)?;
            let s = s.as_string::<i32>();
            (0..n)
                .map(|i| {
                    if s.is_null(i) {
                        None
                    } else {
                        parse_default(s.value(i))
                    }
                })
                .collect()
        }
    })
}

/// Per-row instants (epoch ms) of a temporal argument; wall-clock values are read in `zone`.
fn instants(arr: &ArrayRef, zone: &Zone) -> DfResult<Vec<Option<i64>>> {
    if let DataType::Timestamp(_, Some(_)) = arr.data_type() {
        let a = cast(arr, &ltz_type())?;
        let a = a.as_primitive::<TimestampMicrosecondType>();
        return Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i).div_euclid(1000)))
            .collect());
    }
    if matches!(
        arr.data_type(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64
    ) {
        let a = cast(arr, &DataType::Int64)?;
        let a = a.as_primitive::<Int64Type>();
        return Ok((0..a.len())
            .map(|i| a.is_valid(i).then(|| a.value(i)))
            .collect());
    }
    Ok(locals(arr, zone)?
        .into_iter()
        .map(|l| l.map(|l| zone.from_local(l)))
        .collect())
}

/// A format argument: parsed once when constant, else per row.
struct Format {
    constant: Option<Option<String>>,
    column: Option<ArrayRef>,
}

impl Format {
    fn new(args: &[ColumnarValue], i: usize, n: usize, default: &str) -> DfResult<Format> {
        if i >= args.len() {
            return Ok(Format {
                constant: Some(Some(java_to_chrono(default))),
                column: None,
            });
        }
        if let Some(c) = const_string(args, i) {
            return Ok(Format {
                constant: Some(c.map(|p| java_to_chrono(&p))),
                column: None,
            });
        }
        Ok(Format {
            constant: None,
            column: Some(string_arg(args, i, n)?),
        })
    }

    fn get(&self, row: usize) -> Option<String> {
        match (&self.constant, &self.column) {
            (Some(c), _) => c.clone(),
            (None, Some(col)) => {
                let s = col.as_string::<i32>();
                s.is_valid(row).then(|| java_to_chrono(s.value(row)))
            }
            (None, None) => None,
        }
    }
}

/// Formats a wall-clock time whose zone offset is `offset_secs`, with a chrono format.
fn format_local(t: NaiveDateTime, offset_secs: i32, fmt: &str) -> Option<String> {
    use std::fmt::Write as _;
    let off = chrono::FixedOffset::east_opt(offset_secs)?;
    let dt = off.from_local_datetime(&t).single()?;
    let mut s = String::new();
    // An invalid format makes chrono's Display fail; report it as NULL rather than panicking.
    write!(s, "{}", dt.format(fmt)).ok()?;
    Some(s)
}

fn unit_arg(args: &[ColumnarValue]) -> DfResult<String> {
    match const_string(args, 0) {
        Some(Some(u)) => Ok(u.to_ascii_uppercase()),
        _ => {
            exec_err!("the time unit of TIMESTAMPDIFF/TIMESTAMPADD must be a constant such as DAY")
        }
    }
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Evaluates one temporal function over a batch.
pub(crate) fn invoke(
    kind: Kind,
    zone: &Zone,
    args: &[ColumnarValue],
    n: usize,
    return_type: &DataType,
) -> DfResult<ColumnarValue> {
    let scalar = |v: ScalarValue| Ok(ColumnarValue::Scalar(v));
    match kind {
        Kind::Now | Kind::CurrentTimestamp => scalar(ScalarValue::TimestampMillisecond(
            Some(now_ms()),
            Some("UTC".into()),
        )),
        Kind::LocalTimestamp => {
            let local = zone
                .to_local(now_ms())
                .map(|t| t.and_utc().timestamp_millis());
            scalar(ScalarValue::TimestampMillisecond(local, None))
        }
        Kind::CurrentDate => scalar(ScalarValue::Date32(
            zone.to_local(now_ms()).map(|t| date_days(t.date())),
        )),
        Kind::CurrentTime | Kind::LocalTime => {
            // TIME(0): whole seconds since local midnight.
            let secs = zone
                .to_local(now_ms())
                .map(|t| t.num_seconds_from_midnight() as i64);
            scalar(ScalarValue::DurationSecond(secs))
        }
        Kind::DateFormat => {
            let ts = args[0].to_array(n)?;
            let fmt = Format::new(args, 1, n, "yyyy-MM-dd HH:mm:ss")?;
            let vals = locals(&ts, zone)?;
            let mut b = StringBuilder::with_capacity(n, n * 20);
            for (row, v) in vals.into_iter().enumerate() {
                let out = v.zip(fmt.get(row)).and_then(|(t, f)| {
                    let off = zone.offset_at(zone.from_local(t));
                    format_local(t, off, &f)
                });
                b.append_option(out);
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::DateFormatTz => {
            let ts = args[0].to_array(n)?;
            let fmt = Format::new(args, 1, n, "yyyy-MM-dd HH:mm:ss")?;
            let tzs = string_arg(args, 2, n)?;
            let tzs = tzs.as_string::<i32>();
            let vals = instants(&ts, zone)?;
            let mut b = StringBuilder::with_capacity(n, n * 20);
            for (row, v) in vals.into_iter().enumerate() {
                let target = if tzs.is_null(row) {
                    None
                } else {
                    Zone::parse(tzs.value(row))
                };
                let out = v
                    .zip(fmt.get(row))
                    .zip(target)
                    .and_then(|((ms, f), z)| format_local(z.to_local(ms)?, z.offset_at(ms), &f));
                b.append_option(out);
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::TimestampDiff => {
            let unit = unit_arg(args)?;
            let a = args[1].to_array(n)?;
            let c = args[2].to_array(n)?;
            let mut b = Int32Builder::with_capacity(n);
            let calendar = matches!(unit.as_str(), "MONTH" | "QUARTER" | "YEAR");
            if calendar {
                let (la, lc) = (locals(&a, zone)?, locals(&c, zone)?);
                for (x, y) in la.into_iter().zip(lc) {
                    let v = x.zip(y).map(|(x, y)| {
                        let months = (y.year() * 12 + y.month0() as i32)
                            - (x.year() * 12 + x.month0() as i32);
                        match unit.as_str() {
                            "MONTH" => months,
                            "QUARTER" => months / 3,
                            _ => y.year() - x.year(),
                        }
                    });
                    b.append_option(v);
                }
            } else {
                let div: i64 = match unit.as_str() {
                    "MILLISECOND" => 1,
                    "SECOND" => 1000,
                    "MINUTE" => 60_000,
                    "HOUR" => 3_600_000,
                    "DAY" => 86_400_000,
                    "WEEK" => 7 * 86_400_000,
                    other => return exec_err!("unsupported TIMESTAMPDIFF unit {other}"),
                };
                let (ia, ic) = (instants(&a, zone)?, instants(&c, zone)?);
                for (x, y) in ia.into_iter().zip(ic) {
                    b.append_option(x.zip(y).map(|(x, y)| ((y - x) / div) as i32));
                }
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::TimestampAdd => {
            let unit = unit_arg(args)?;
            let amount = cast(&args[1].to_array(n)?, &DataType::Int64)?;
            let amount = amount.as_primitive::<Int64Type>();
            let ts = args[2].to_array(n)?;
            let ltz = matches!(return_type, DataType::Timestamp(_, Some(_)));
            let vals = locals(&ts, zone)?;
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            for (row, v) in vals.into_iter().enumerate() {
                let k = amount.is_valid(row).then(|| amount.value(row));
                let out = v.zip(k).and_then(|(t, k)| add_unit(t, &unit, k)).map(|t| {
                    if ltz {
                        zone.from_local(t) * 1000
                    } else {
                        naive_micros(t)
                    }
                });
                b.append_option(out);
            }
            let arr = b
                .finish()
                .with_timezone_opt(if ltz { Some("UTC") } else { None });
            Ok(ColumnarValue::Array(Arc::new(arr)))
        }
        Kind::ToDate => {
            let s = string_arg(args, 0, n)?;
            let s = s.as_string::<i32>();
            let fmt = Format::new(args, 1, n, "yyyy-MM-dd")?;
            let mut b = Date32Builder::with_capacity(n);
            for row in 0..n {
                let v = if s.is_null(row) {
                    None
                } else {
                    fmt.get(row)
                        .and_then(|f| parse_with(s.value(row).trim(), &f))
                };
                b.append_option(v.map(|t| date_days(t.date())));
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::ToTimestamp => {
            let s = string_arg(args, 0, n)?;
            let s = s.as_string::<i32>();
            let fmt = Format::new(args, 1, n, "yyyy-MM-dd HH:mm:ss")?;
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            for row in 0..n {
                let v = if s.is_null(row) {
                    None
                } else {
                    fmt.get(row)
                        .and_then(|f| parse_with(s.value(row).trim(), &f))
                };
                b.append_option(v.map(naive_micros));
            }
            let arr: ArrayRef = Arc::new(b.finish());
            Ok(ColumnarValue::Array(cast(&arr, return_type)?))
        }
        Kind::ToTimestampLtz => {
            let v = args[0].to_array(n)?;
            let precision = match const_string(args, 1) {
                Some(Some(p)) => p.parse::<u32>().unwrap_or(3),
                _ => 3,
            };
            let mut b = TimestampMicrosecondBuilder::with_capacity(n);
            if v.data_type().is_numeric() {
                let a = cast(&v, &DataType::Int64)?;
                let a = a.as_primitive::<Int64Type>();
                let scale: i64 = if precision == 0 { 1_000_000 } else { 1000 };
                for row in 0..n {
                    b.append_option(a.is_valid(row).then(|| a.value(row).saturating_mul(scale)));
                }
            } else {
                for ms in instants(&v, zone)? {
                    b.append_option(ms.map(|m| m * 1000));
                }
            }
            let arr: ArrayRef = Arc::new(b.finish().with_timezone("UTC"));
            Ok(ColumnarValue::Array(cast(&arr, return_type)?))
        }
        Kind::FromUnixtime => {
            let secs = cast(&args[0].to_array(n)?, &DataType::Int64)?;
            let secs = secs.as_primitive::<Int64Type>();
            let fmt = Format::new(args, 1, n, "yyyy-MM-dd HH:mm:ss")?;
            let mut b = StringBuilder::with_capacity(n, n * 20);
            for row in 0..n {
                let out = secs
                    .is_valid(row)
                    .then(|| secs.value(row).saturating_mul(1000))
                    .and_then(|ms| {
                        let f = fmt.get(row)?;
                        format_local(zone.to_local(ms)?, zone.offset_at(ms), &f)
                    });
                b.append_option(out);
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::UnixTimestamp => {
            if args.is_empty() {
                return scalar(ScalarValue::Int64(Some(now_ms().div_euclid(1000))));
            }
            let v = args[0].to_array(n)?;
            let mut b = Int64Builder::with_capacity(n);
            if matches!(v.data_type(), DataType::Timestamp(_, _) | DataType::Date32) {
                for ms in instants(&v, zone)? {
                    b.append_option(ms.map(|m| m.div_euclid(1000)));
                }
            } else {
                let s = cast(&v, &DataType::Utf8)?;
                let s = s.as_string::<i32>();
                let fmt = Format::new(args, 1, n, "yyyy-MM-dd HH:mm:ss")?;
                for row in 0..n {
                    if s.is_null(row) {
                        b.append_null();
                        continue;
                    }
                    let parsed = fmt
                        .get(row)
                        .and_then(|f| parse_with(s.value(row).trim(), &f));
                    b.append_value(
                        parsed
                            .map(|t| zone.from_local(t).div_euclid(1000))
                            .unwrap_or(i64::MIN),
                    );
                }
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        Kind::DateAdd => {
            let d = args[0].to_array(n)?;
            let k = cast(&args[1].to_array(n)?, &DataType::Int64)?;
            let k = k.as_primitive::<Int64Type>();
            let vals = locals(&d, zone)?;
            let mut b = Date32Builder::with_capacity(n);
            for (row, v) in vals.into_iter().enumerate() {
                let days = k.is_valid(row).then(|| k.value(row));
                b.append_option(v.zip(days).and_then(|(t, k)| {
                    i32::try_from(k)
                        .ok()
                        .and_then(|k| date_days(t.date()).checked_add(k))
                }));
            }
            Ok(ColumnarValue::Array(Arc::new(b.finish())))
        }
        _ => exec_err!("not a temporal function: {kind:?}"),
    }
}

fn add_unit(t: NaiveDateTime, unit: &str, k: i64) -> Option<NaiveDateTime> {
    let months = |m: i64| {
        if m >= 0 {
            t.checked_add_months(Months::new(u32::try_from(m).ok()?))
        } else {
            t.checked_sub_months(Months::new(u32::try_from(-m).ok()?))
        }
    };
    match unit {
        "MILLISECOND" => t.checked_add_signed(chrono::Duration::try_milliseconds(k)?),
        "SECOND" => t.checked_add_signed(chrono::Duration::try_seconds(k)?),
        "MINUTE" => t.checked_add_signed(chrono::Duration::try_minutes(k)?),
        "HOUR" => t.checked_add_signed(chrono::Duration::try_hours(k)?),
        "DAY" => t.checked_add_signed(chrono::Duration::try_days(k)?),
        "WEEK" => t.checked_add_signed(chrono::Duration::try_weeks(k)?),
        "MONTH" => months(k),
        "QUARTER" => months(k.checked_mul(3)?),
        "YEAR" => months(k.checked_mul(12)?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns_become_chrono_formats() {
        assert_eq!(java_to_chrono("yyyy-MM-dd HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(java_to_chrono("yyyyMMdd'T'HH"), "%Y%m%dT%H");
        assert_eq!(java_to_chrono("dd/MM/yy SSS"), "%d/%m/%y %3f");
        assert_eq!(java_to_chrono("100%"), "100%%");
    }
}
