//! Generated change batches for the criterion benches of several crates (included with
//! `#[path = "…/engine/benches/tables/mod.rs"] mod tables;`, so every crate measures the same data).
//!
//! - [`orders10`]: the realistic 10-column `orders2` table of binlog.md §3.
//! - [`wide50`]: a wide 50-column table with every integer width, decimals of several precisions,
//!   short and long text with some non-ASCII (accents, CJK, Cyrillic, emoji), DATETIME(6), DATE,
//!   DOUBLE/FLOAT, JSON text, and ~10 % NULLs in its nullable columns, the same shape as the
//!   `wide50` MySQL table of `connectors/mysql/benches/wide/mod.rs` after type mapping.
//!
//! Values are a pure function of the row number, so runs are comparable. Every batch carries
//! the engine's `__cdc_op` (1 in 10 an update pair, otherwise inserts) and `__cdc_ts_ms`.
#![allow(dead_code)]

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use cdcflow_engine::{CdcType, ColumnDef, TableId, TableSchema, TableSchemaRef};

/// Words text columns are cut from.
const WORDS: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];
const FIRST: &[&str] = &[
    "Anna",
    "José",
    "Zoë",
    "Łukasz",
    "美玲",
    "Ольга",
    "Søren",
    "Ahmed",
];
const LAST: &[&str] = &[
    "Müller",
    "García López",
    "O'Brien",
    "Nguyễn",
    "山田",
    "Иванова",
    "Kowalski",
    "Smith",
];
const CITY: &[&str] = &[
    "München",
    "São Paulo",
    "Zürich",
    "東京",
    "Kraków",
    "Reykjavík",
    "New York",
    "Paris",
];
const COUNTRY: &[&str] = &["DE", "BR", "CH", "JP", "PL", "IS", "US", "FR"];
const STATUS: &[&str] = &["new", "paid", "packed", "shipped", "delivered", "cancelled"];
const COMMENT: &[&str] = &[
    "ok ✓",
    "",
    "bitte schnell liefern",
    "🎁 gift",
    "call first",
    "n/a",
];
const AGENT: &[&str] = &[
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "curl/8.5.0",
];
const CURRENCY: &[&str] = &["EUR", "USD", "JPY", "PLN", "BRL"];
const LANG: &[&str] = &["de-DE", "en-US", "ja-JP", "pl", "pt-BR"];
const COLOR: &[&str] = &["red", "green", "blue", "black", "white"];

/// 2024-01-01 00:00:00 UTC in microseconds.
const T0_US: i64 = 1_704_067_200_000_000;

fn column(name: &str, data_type: CdcType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        source_type: data_type.sql_name().to_lowercase(),
        data_type,
        nullable,
        default: None,
        comment: None,
    }
}

fn vc(length: u32) -> CdcType {
    CdcType::Varchar { length }
}

fn dec(precision: u8, scale: u8) -> CdcType {
    CdcType::Decimal { precision, scale }
}

/// The 10-column `orders2` schema (binlog.md §3, MySQL types mapped).
pub fn orders10_schema() -> TableSchemaRef {
    let cols = vec![
        column("id", dec(20, 0), false),
        column("customer_id", CdcType::Int, false),
        column("email", vc(64), false),
        column("sku", CdcType::Char { length: 16 }, false),
        column("qty", CdcType::SmallInt, false),
        column("price", dec(12, 2), false),
        column("status", CdcType::String, false),
        column("created_at", CdcType::Timestamp { precision: 6 }, false),
        column("note", vc(255), true),
        column("score", CdcType::Double, true),
    ];
    Arc::new(TableSchema::new(
        TableId::new("bench", "orders2"),
        cols,
        vec!["id".into()],
        None,
        1,
    ))
}

/// The 50-column `wide50` schema (MySQL types of `wide/mod.rs` mapped to cdcflow types).
pub fn wide50_schema() -> TableSchemaRef {
    use CdcType::*;
    let cols = vec![
        column("id", dec(20, 0), false),
        column("tenant_id", TinyInt, false),
        column("region", SmallInt, false),
        column("qty", SmallInt, false),
        column("port", Int, false),
        column("delta", Int, false),
        column("umed", Int, true),
        column("customer_id", Int, false),
        column("uint_col", BigInt, false),
        column("big_col", BigInt, false),
        column("ubig_col", dec(20, 0), true),
        column("is_active", Boolean, false),
        column("price", dec(12, 2), false),
        column("tax_rate", dec(5, 4), true),
        column("balance", dec(20, 6), false),
        column("big_dec", dec(38, 10), true),
        column("score", Double, false),
        column("ratio", Double, true),
        column("weight", Float, false),
        column("created_at", Timestamp { precision: 6 }, false),
        column("updated_at", Timestamp { precision: 6 }, true),
        column("shipped_at", Timestamp { precision: 0 }, true),
        column("birth_date", Date, false),
        column("due_date", Date, true),
        column("email", vc(64), false),
        column("sku", Char { length: 16 }, false),
        column("first_name", vc(32), false),
        column("last_name", vc(48), true),
        column("city", vc(40), false),
        column("country", Char { length: 2 }, false),
        column("phone", vc(20), true),
        column("status", String, false),
        column("tags", vc(100), true),
        column("note", vc(255), true),
        column("description", String, true),
        column("comment", String, true),
        column("url", vc(255), false),
        column("user_agent", vc(200), true),
        column("ip", vc(45), false),
        column("uuid", Char { length: 36 }, false),
        column("attrs", String, true),
        column("payload", String, false),
        column("currency", Char { length: 3 }, false),
        column("lang", vc(8), false),
        column("version", Int, true),
        column("priority", TinyInt, true),
        column("discount", dec(6, 2), true),
        column("lat", Double, false),
        column("lon", Double, false),
        column("etag", vc(40), false),
    ];
    Arc::new(TableSchema::new(
        TableId::new("bench", "wide50"),
        cols,
        vec!["id".into()],
        None,
        1,
    ))
}

/// Deterministic 64-bit mix of a row number and a column index.
fn mix(i: i64, c: usize) -> u64 {
    let mut x = (i as u64).wrapping_add((c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// `true` for ~10 % of the rows of a nullable column (different rows per column).
fn is_null(def: &ColumnDef, i: i64, c: usize) -> bool {
    def.nullable && mix(i, c + 1000) % 10 == 3
}

fn pick<'a>(list: &[&'a str], i: i64) -> &'a str {
    list[(i as usize) % list.len()]
}

/// The text of string column `name` for row `i`.
fn text(name: &str, i: i64, h: u64) -> String {
    match name {
        "email" => format!("user{}@example.com", i % 100_000),
        "sku" => format!("{:S>16X}", i),
        "first_name" => pick(FIRST, i).to_string(),
        "last_name" => pick(LAST, i / 3).to_string(),
        "city" => pick(CITY, i / 7).to_string(),
        "country" => pick(COUNTRY, i / 7).to_string(),
        "phone" => format!("+49 30 {:07}", h % 10_000_000),
        "status" => pick(STATUS, i).to_string(),
        "tags" => COLOR[..1 + (i as usize) % COLOR.len()].join(","),
        "note" => WORDS[..3 + (i as usize) % 16].join(" "),
        "description" => format!(
            "Beschreibung für Artikel {i}: {}",
            WORDS
                .iter()
                .cycle()
                .take(4 + (h % 60) as usize)
                .copied()
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "comment" => pick(COMMENT, i).to_string(),
        "url" => format!("https://shop.example.com/p/{i}?ref={:x}", h % 9973),
        "user_agent" => pick(AGENT, i).to_string(),
        "ip" => format!(
            "{}.{}.{}.{}",
            h & 255,
            (h >> 8) & 255,
            (h >> 16) & 255,
            (h >> 24) & 255
        ),
        "uuid" => {
            let x = format!("{h:016x}{:016x}", mix(i, 77));
            format!(
                "{}-{}-{}-{}-{}",
                &x[..8],
                &x[8..12],
                &x[12..16],
                &x[16..20],
                &x[20..32]
            )
        }
        "attrs" => format!(
            "{{\"color\": \"{}\", \"size\": {}, \"gift\": {}, \"label\": \"größe {}\"}}",
            pick(COLOR, i),
            i % 5,
            i % 2 == 0,
            i % 50
        ),
        "payload" => format!("[{i}, {}, \"x\", {{\"k\": {}}}]", i % 7, h % 1000),
        "currency" => pick(CURRENCY, i).to_string(),
        "lang" => pick(LANG, i).to_string(),
        "etag" => format!("{h:016x}{:024x}", i),
        _ => format!("{name}-{i}"),
    }
}

/// One column of rows `start..start + n`, by logical type (values depend on name and index).
fn array(def: &ColumnDef, c: usize, start: i64, n: usize) -> ArrayRef {
    let rows = start..start + n as i64;
    let null = |i: i64| is_null(def, i, c);
    macro_rules! prim {
        ($arr:ty, $f:expr) => {
            Arc::new(
                rows.clone()
                    .map(|i| {
                        if null(i) {
                            None
                        } else {
                            Some($f(i, mix(i, c)))
                        }
                    })
                    .collect::<$arr>(),
            ) as ArrayRef
        };
    }
    match &def.data_type {
        CdcType::Boolean => prim!(BooleanArray, |i: i64, _| i % 2 == 0),
        CdcType::TinyInt => prim!(Int8Array, |_, h: u64| ((h % 200) as i16 - 100) as i8),
        CdcType::SmallInt => prim!(Int16Array, |i: i64, h: u64| if def.name == "qty" {
            (i % 50 + 1) as i16
        } else {
            (h % 3000) as i16
        }),
        CdcType::Int => prim!(Int32Array, |i: i64, h: u64| if def.name == "customer_id" {
            (i * 7919 % 100_000) as i32
        } else {
            (h % 16_000_000) as i32 - 8_000_000
        }),
        CdcType::BigInt => prim!(Int64Array, |_, h: u64| (h >> 2) as i64 - (1 << 60)),
        CdcType::Float => prim!(Float32Array, |i: i64, _| (i % 1000) as f32 / 8.0),
        CdcType::Double => prim!(Float64Array, |i: i64, h: u64| match def.name.as_str() {
            "lat" => (h % 180_000_000) as f64 / 1e6 - 90.0,
            "lon" => (h % 360_000_000) as f64 / 1e6 - 180.0,
            _ => i as f64 / (c as f64 + 3.0),
        }),
        CdcType::Decimal { precision, scale } => {
            let p = u32::from(*precision).min(18);
            let a = Arc::new(
                rows.clone()
                    .map(|i| {
                        if null(i) {
                            None
                        } else if def.name == "id" {
                            Some(i128::from(i))
                        } else {
                            Some(i128::from(mix(i, c) % 10u64.pow(p - 1)))
                        }
                    })
                    .collect::<Decimal128Array>()
                    .with_precision_and_scale(*precision, *scale as i8)
                    .expect("valid decimal"),
            );
            a as ArrayRef
        }
        CdcType::Date => prim!(Date32Array, |i: i64, h: u64| if def.name == "birth_date" {
            -7305 + (h % 20_000) as i32
        } else {
            19_723 + (i % 1000) as i32
        }),
        CdcType::Timestamp { precision } => {
            let whole = *precision == 0;
            prim!(TimestampMicrosecondArray, |i: i64, _| {
                let t = T0_US + i * 1_000_000 + i % 1_000_000 + c as i64 * 86_400_000_000;
                if whole { t - t % 1_000_000 } else { t }
            })
        }
        _ => Arc::new(
            rows.clone()
                .map(|i| {
                    if null(i) {
                        None
                    } else {
                        Some(text(&def.name, i, mix(i, c)))
                    }
                })
                .collect::<StringArray>(),
        ),
    }
}

/// Rows `start..start + n` of `schema` as a change batch (with `__cdc_op` and `__cdc_ts_ms`).
pub fn batch(schema: &TableSchemaRef, start: i64, n: usize) -> RecordBatch {
    let mut cols: Vec<ArrayRef> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(c, def)| array(def, c, start, n))
        .collect();
    cols.push(Arc::new(Int8Array::from_iter_values(
        (start..start + n as i64).map(|i| match i % 10 {
            8 => 1,
            9 => 2,
            _ => 0,
        }),
    )));
    cols.push(Arc::new(Int64Array::from_iter_values(
        (start..start + n as i64).map(|i| 1_704_067_200_000 + i),
    )));
    RecordBatch::try_new(Arc::clone(&schema.arrow), cols).expect("generated batch matches schema")
}

/// `total` rows of `schema` as batches of `batch_rows` (the size a source emits).
pub fn batches(schema: &TableSchemaRef, total: usize, batch_rows: usize) -> Vec<RecordBatch> {
    (0..total.div_ceil(batch_rows))
        .map(|b| {
            let start = b * batch_rows;
            batch(schema, start as i64 + 1, batch_rows.min(total - start))
        })
        .collect()
}

/// Arrow in-memory bytes of `batches` (buffers as allocated).
pub fn arrow_bytes(batches: &[RecordBatch]) -> u64 {
    batches
        .iter()
        .map(|b| b.get_array_memory_size() as u64)
        .sum()
}
