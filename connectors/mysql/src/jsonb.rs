//! MySQL binary JSON (the `JSON` column's binlog encoding) rendered as JSON text.
//!
//! The text follows the server's own `JSON` output (what a snapshot `SELECT` returns): `", "` and
//! `": "` separators, keys in stored order, doubles with a `.0` when integral, opaque DATE/TIME/
//! DATETIME/DECIMAL values as strings, other opaque values as `"base64:typeNN:..."`.
//!
//! Every read is bounds-checked and nesting is capped, so corrupt input is an error, never a panic
//! or a stack overflow. MariaDB's JSON is plain text and never reaches this module.

use std::fmt::Write as _;

use crate::builders::{ColumnBuilder, ValueError};
use crate::decode::DecodeErrorKind;

/// Deepest nesting accepted (MySQL's own limit is 100).
const MAX_DEPTH: usize = 150;

const SMALL_OBJECT: u8 = 0x00;
const LARGE_OBJECT: u8 = 0x01;
const SMALL_ARRAY: u8 = 0x02;
const LARGE_ARRAY: u8 = 0x03;
const LITERAL: u8 = 0x04;
const INT16: u8 = 0x05;
const UINT16: u8 = 0x06;
const INT32: u8 = 0x07;
const UINT32: u8 = 0x08;
const INT64: u8 = 0x09;
const UINT64: u8 = 0x0a;
const DOUBLE: u8 = 0x0b;
const STRING: u8 = 0x0c;
const OPAQUE: u8 = 0x0f;

fn corrupt(what: &str) -> DecodeErrorKind {
    DecodeErrorKind::Corrupt(format!("binary JSON: {what}"))
}

fn get(buf: &[u8], at: usize, n: usize) -> Result<&[u8], DecodeErrorKind> {
    at.checked_add(n)
        .and_then(|end| buf.get(at..end))
        .ok_or_else(|| corrupt("truncated"))
}

fn le(buf: &[u8], at: usize, n: usize) -> Result<u64, DecodeErrorKind> {
    Ok(get(buf, at, n)?
        .iter()
        .rev()
        .fold(0u64, |v, &b| (v << 8) | u64::from(b)))
}

/// Reads MySQL's variable-length integer (7 bits per byte); returns (value, bytes used).
fn varlen(buf: &[u8], at: usize) -> Result<(usize, usize), DecodeErrorKind> {
    let mut v: usize = 0;
    for i in 0..5 {
        let b = *buf.get(at + i).ok_or_else(|| corrupt("truncated length"))?;
        v |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(corrupt("length too long"))
}

/// Renders a binary JSON document as text (an empty document is `null`).
pub fn to_text(doc: &[u8], out: &mut String) -> Result<(), DecodeErrorKind> {
    let Some((&t, body)) = doc.split_first() else {
        out.push_str("null");
        return Ok(());
    };
    value(t, body, 0, out, 0)
}

/// Renders a binary JSON document and appends it as text to a column builder.
pub fn append_json_text(doc: &[u8], b: &mut ColumnBuilder) -> Result<(), DecodeErrorKind> {
    let mut s = String::with_capacity(doc.len() + doc.len() / 4);
    to_text(doc, &mut s)?;
    b.append_str(&s).map_err(|e: ValueError| e.into())
}

/// Renders the value of type `t` stored at `at` in `buf`.
fn value(
    t: u8,
    buf: &[u8],
    at: usize,
    out: &mut String,
    depth: usize,
) -> Result<(), DecodeErrorKind> {
    if depth > MAX_DEPTH {
        return Err(corrupt("nesting too deep"));
    }
    match t {
        SMALL_OBJECT | LARGE_OBJECT | SMALL_ARRAY | LARGE_ARRAY => {
            let container = buf.get(at..).ok_or_else(|| corrupt("container offset"))?;
            container_text(t, container, out, depth)
        }
        LITERAL => literal(le(buf, at, 1)? as u8, out),
        INT16 => int(le(buf, at, 2)? as u16 as i16 as i64, out),
        UINT16 => uint(le(buf, at, 2)?, out),
        INT32 => int(le(buf, at, 4)? as u32 as i32 as i64, out),
        UINT32 => uint(le(buf, at, 4)?, out),
        INT64 => int(le(buf, at, 8)? as i64, out),
        UINT64 => uint(le(buf, at, 8)?, out),
        DOUBLE => {
            let v = f64::from_bits(le(buf, at, 8)?);
            double(v, out);
            Ok(())
        }
        STRING => {
            let (len, n) = varlen(buf, at)?;
            let s = get(buf, at + n, len)?;
            string(s, out);
            Ok(())
        }
        OPAQUE => {
            let ft = *buf.get(at).ok_or_else(|| corrupt("opaque type"))?;
            let (len, n) = varlen(buf, at + 1)?;
            let data = get(buf, at + 1 + n, len)?;
            opaque(ft, data, out)
        }
        other => Err(corrupt(&format!("unknown value type {other:#x}"))),
    }
}

fn literal(v: u8, out: &mut String) -> Result<(), DecodeErrorKind> {
    out.push_str(match v {
        0 => "null",
        1 => "true",
        2 => "false",
        _ => return Err(corrupt("bad literal")),
    });
    Ok(())
}

fn int(v: i64, out: &mut String) -> Result<(), DecodeErrorKind> {
    let _ = write!(out, "{v}");
    Ok(())
}

fn uint(v: u64, out: &mut String) -> Result<(), DecodeErrorKind> {
    let _ = write!(out, "{v}");
    Ok(())
}

fn double(v: f64, out: &mut String) {
    if v.is_finite() {
        // Debug keeps a ".0" on integral values and uses exponents for huge/tiny ones.
        let _ = write!(out, "{v:?}");
    } else {
        out.push_str("null");
    }
}

/// Writes a JSON string literal with the escapes JSON requires.
fn string(bytes: &[u8], out: &mut String) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for ch in chunk.valid().chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{08}' => out.push_str("\\b"),
                '\u{0c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        if !chunk.invalid().is_empty() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    out.push('"');
}

/// Renders an object or array whose bytes (after the type byte) start at `c`.
fn container_text(t: u8, c: &[u8], out: &mut String, depth: usize) -> Result<(), DecodeErrorKind> {
    let large = t == LARGE_OBJECT || t == LARGE_ARRAY;
    let is_object = t == SMALL_OBJECT || t == LARGE_OBJECT;
    let w = if large { 4 } else { 2 };
    let count = le(c, 0, w)? as usize;
    let size = le(c, w, w)? as usize;
    if size > c.len() {
        return Err(corrupt("container size beyond document"));
    }
    let c = &c[..size];
    let key_entry = w + 2;
    let value_entry = 1 + w;
    let header = 2 * w;
    let keys_at = header;
    let values_at = header + if is_object { count * key_entry } else { 0 };
    if values_at
        .checked_add(
            count
                .checked_mul(value_entry)
                .ok_or_else(|| corrupt("count"))?,
        )
        .is_none_or(|end| end > c.len())
    {
        return Err(corrupt("entries beyond container"));
    }
    out.push(if is_object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push_str(", ");
        }
        if is_object {
            let e = keys_at + i * key_entry;
            let koff = le(c, e, w)? as usize;
            let klen = le(c, e + w, 2)? as usize;
            string(get(c, koff, klen)?, out);
            out.push_str(": ");
        }
        let e = values_at + i * value_entry;
        let vt = c[e];
        let inlined =
            matches!(vt, LITERAL | INT16 | UINT16) || (large && matches!(vt, INT32 | UINT32));
        if inlined {
            value(vt, c, e + 1, out, depth + 1)?;
        } else {
            let off = le(c, e + 1, w)? as usize;
            value(vt, c, off, out, depth + 1)?;
        }
    }
    out.push(if is_object { '}' } else { ']' });
    Ok(())
}

/// Renders an opaque value (a MySQL type stored inside JSON).
fn opaque(field_type: u8, data: &[u8], out: &mut String) -> Result<(), DecodeErrorKind> {
    use crate::decode::column_type as ct;
    match field_type {
        ct::NEWDECIMAL => {
            let (&p, rest) = data.split_first().ok_or_else(|| corrupt("decimal"))?;
            let (&s, bin) = rest.split_first().ok_or_else(|| corrupt("decimal"))?;
            if p == 0 || p > 65 || s > p || bin.len() < crate::decode::decimal_bin_size(p, s) {
                return Err(corrupt("decimal header"));
            }
            let text = crate::decode::decimal_to_string(bin, p, s)?;
            out.push_str(&text);
            Ok(())
        }
        ct::DATE
        | ct::TIME
        | ct::DATETIME
        | ct::TIMESTAMP
        | ct::DATETIME2
        | ct::TIMESTAMP2
        | ct::TIME2 => {
            let packed = le(data, 0, 8)? as i64;
            let neg = packed < 0;
            let a = packed.unsigned_abs();
            let frac = a & 0xff_ffff;
            let int = a >> 24;
            out.push('"');
            if matches!(field_type, ct::TIME | ct::TIME2) {
                let (h, m, s) = ((int >> 12) & 0x3ff, (int >> 6) & 0x3f, int & 0x3f);
                let _ = write!(
                    out,
                    "{}{h:02}:{m:02}:{s:02}.{frac:06}",
                    if neg { "-" } else { "" }
                );
            } else {
                let ymd = int >> 17;
                let ym = ymd >> 5;
                let hms = int & 0x1_ffff;
                let _ = write!(out, "{:04}-{:02}-{:02}", ym / 13, ym % 13, ymd & 31);
                if field_type != ct::DATE {
                    let _ = write!(
                        out,
                        " {:02}:{:02}:{:02}.{frac:06}",
                        hms >> 12,
                        (hms >> 6) & 63,
                        hms & 63
                    );
                }
            }
            out.push('"');
            Ok(())
        }
        other => {
            let _ = write!(out, "\"base64:type{other}:");
            base64(data, out);
            out.push('"');
            Ok(())
        }
    }
}

/// Standard base64 with padding.
fn base64(data: &[u8], out: &mut String) {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(doc: &[u8]) -> String {
        let mut s = String::new();
        to_text(doc, &mut s).expect("valid document");
        s
    }

    #[test]
    fn scalars_and_containers() {
        assert_eq!(text(&[]), "null");
        assert_eq!(text(&[LITERAL, 1]), "true");
        assert_eq!(text(&[INT16, 0xff, 0xff]), "-1");
        assert_eq!(text(&[STRING, 3, b'a', b'"', b'b']), "\"a\\\"b\"");
        let mut d = vec![DOUBLE];
        d.extend_from_slice(&2.5f64.to_le_bytes());
        assert_eq!(text(&d), "2.5");
        // Small array [1, "x"]: count 2, size, entries (int16 inline, string at offset).
        let arr = [
            SMALL_ARRAY,
            2,
            0,
            12,
            0, // count, size
            INT16,
            1,
            0, // inline 1
            STRING,
            10,
            0, // string at offset 10
            1,
            b'x',
        ];
        assert_eq!(text(&arr[..]), "[1, \"x\"]");
        // Small object {"a": true}.
        let obj = [SMALL_OBJECT, 1, 0, 12, 0, 11, 0, 1, 0, LITERAL, 1, 0, b'a'];
        assert_eq!(text(&obj[..]), "{\"a\": true}");
    }

    #[test]
    fn corrupt_documents_are_errors() {
        assert!(to_text(&[SMALL_ARRAY, 5, 0, 200, 0], &mut String::new()).is_err());
        assert!(to_text(&[STRING, 10, b'a'], &mut String::new()).is_err());
        assert!(to_text(&[0x42], &mut String::new()).is_err());
        // 200 nested one-element arrays: valid bytes, but deeper than any server writes.
        let mut c: Vec<u8> = vec![0, 0, 4, 0];
        for _ in 0..200 {
            let size = (7 + c.len()) as u16;
            let mut outer = vec![1, 0];
            outer.extend_from_slice(&size.to_le_bytes());
            outer.extend_from_slice(&[SMALL_ARRAY, 7, 0]);
            outer.extend_from_slice(&c);
            c = outer;
        }
        let mut doc = vec![SMALL_ARRAY];
        doc.extend_from_slice(&c);
        let err = to_text(&doc, &mut String::new()).expect_err("too deep");
        assert!(err.to_string().contains("deep"), "{err}");
    }

    #[test]
    fn base64_matches_rfc4648() {
        let mut s = String::new();
        base64(b"U", &mut s);
        assert_eq!(s, "VQ==");
        s.clear();
        base64(b"foobar", &mut s);
        assert_eq!(s, "Zm9vYmFy");
    }
}
