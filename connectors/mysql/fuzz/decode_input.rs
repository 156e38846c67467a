// Shared by the cargo-fuzz target and `tests/binlog_decode_fuzz.rs` (included with `include!`).
//
// Input layout:
//   [0]            n = data[0] % 12 + 1 columns
//   [1 + 3*i ..]   per column: type selector, metadata byte 0, metadata byte 1
//   [next]         rows-event type selector
//   [rest]         rows-event body (what follows the 19-byte event header)

/// The column shapes the fuzzer can pick: (binlog type, catalog kind, unsigned, charset).
const SHAPES: &[(u8, cdcflow_mysql::types::MySqlKind, bool, Option<&str>)] = {
    use cdcflow_mysql::types::MySqlKind as K;
    &[
        (1, K::TinyInt, false, None),
        (1, K::TinyInt, true, None),
        (2, K::SmallInt, false, None),
        (9, K::MediumInt, false, None),
        (3, K::Int, true, None),
        (8, K::BigInt, false, None),
        (8, K::BigInt, true, None),
        (4, K::Float, false, None),
        (5, K::Double, false, None),
        (246, K::Decimal, false, None),
        (13, K::Year, false, None),
        (10, K::Date, false, None),
        (19, K::Time, false, None),
        (18, K::DateTime, false, None),
        (17, K::Timestamp, false, None),
        (15, K::VarChar, false, Some("utf8mb4")),
        (15, K::VarChar, false, Some("latin1")),
        (252, K::Blob, false, None),
        (252, K::Text, false, Some("utf8mb4")),
        (254, K::Char, false, Some("utf8mb4")),
        (254, K::Binary, false, None),
        (254, K::Enum, false, Some("utf8mb4")),
        (254, K::Set, false, Some("utf8mb4")),
        (16, K::Bit, false, None),
        (245, K::Json, false, Some("utf8mb4")),
        (255, K::Geometry, false, None),
        (11, K::Time, false, None),
        (12, K::DateTime, false, None),
        (7, K::Timestamp, false, None),
    ]
};

/// Rows-event types the fuzzer can pick.
const EVENT_TYPES: [u8; 10] = [23, 24, 25, 30, 31, 32, 166, 167, 168, 39];

/// Decodes one fuzz input; returns the number of rows decoded (0 on any error).
pub fn decode_input(data: &[u8]) -> usize {
    use cdcflow_engine::{CdcType, ColumnDef, TableId, TableSchema};
    use cdcflow_mysql::builders::TableBatchBuilder;
    use cdcflow_mysql::decode::{ColumnLayout, EventAt, RowDecoder, RowsEventBody};
    use cdcflow_mysql::types::{MySqlColumn, MySqlKind as K};

    let Some((&n, rest)) = data.split_first() else {
        return 0;
    };
    let n = usize::from(n % 12) + 1;
    if rest.len() < n * 3 + 1 {
        return 0;
    }
    let (cols, rest) = rest.split_at(n * 3);
    let (&et, body) = rest.split_first().unwrap_or((&23, &[]));
    let mut columns = Vec::new();
    let mut layout = Vec::new();
    for (i, c) in cols.chunks_exact(3).enumerate() {
        let (col_type, kind, unsigned, charset) = SHAPES[usize::from(c[0]) % SHAPES.len()];
        let (m0, m1) = (c[1], c[2]);
        let precision = (m0 % 65).max(1);
        let scale = m1 % 31 % (precision + 1);
        let meta = match kind {
            K::Decimal => [precision, scale],
            K::Enum => [247, m1 % 3],
            K::Set => [248, m1 % 9],
            K::Char | K::Binary => [254, m1],
            _ => [m0, m1],
        };
        let cdc_type = match kind {
            K::TinyInt if unsigned => CdcType::SmallInt,
            K::TinyInt => CdcType::TinyInt,
            K::SmallInt => CdcType::SmallInt,
            K::MediumInt | K::Year => CdcType::Int,
            K::Int => CdcType::BigInt,
            K::BigInt if unsigned => CdcType::Decimal {
                precision: 20,
                scale: 0,
            },
            K::BigInt => CdcType::BigInt,
            K::Float => CdcType::Float,
            K::Double => CdcType::Double,
            K::Decimal => CdcType::Decimal { precision, scale },
            K::Date => CdcType::Date,
            K::Time => CdcType::Time { precision: 6 },
            K::DateTime => CdcType::Timestamp { precision: 6 },
            K::Timestamp => CdcType::TimestampLtz { precision: 6 },
            K::Binary => CdcType::Binary {
                length: u32::from(m1),
            },
            K::Blob | K::Geometry => CdcType::Bytes,
            K::Bit if m0 & 1 == 0 => CdcType::Boolean,
            K::Bit => CdcType::Bytes,
            _ => CdcType::String,
        };
        columns.push(MySqlColumn {
            name: format!("c{i}"),
            ordinal: i,
            kind,
            unsigned,
            length: u32::from(m1),
            precision,
            scale,
            fsp: m0 % 7,
            charset: charset.map(str::to_string),
            labels: vec!["a".into(), "b".into(), "c".into()],
            nullable: true,
            column_type: format!("{kind:?}"),
            cdc_type,
        });
        layout.push(ColumnLayout { col_type, meta });
    }
    let defs = columns
        .iter()
        .map(|c| ColumnDef {
            name: c.name.clone(),
            data_type: c.cdc_type.clone(),
            nullable: true,
            default: None,
            comment: None,
            source_type: c.column_type.clone(),
        })
        .collect();
    let schema = std::sync::Arc::new(TableSchema::new(
        TableId::new("fuzz", "t"),
        defs,
        vec![],
        None,
        1,
    ));
    let _ = cdcflow_mysql::jsonb::to_text(body, &mut String::new());
    let Ok(decoder) = RowDecoder::try_new(schema.clone(), &columns, &layout) else {
        return 0;
    };
    let et = EVENT_TYPES[usize::from(et) % EVENT_TYPES.len()];
    let Ok(ev) = RowsEventBody::parse(et, body) else {
        return 0;
    };
    let Ok(mut out) = TableBatchBuilder::try_new(&schema) else {
        return 0;
    };
    match decoder.decode(
        &ev,
        &mut out,
        0,
        EventAt {
            file: "fuzz",
            pos: 4,
        },
    ) {
        Ok(rows) => {
            let batch = out
                .finish(&schema)
                .expect("a decoded batch is always valid Arrow");
            assert_eq!(batch.num_rows(), rows);
            rows
        }
        Err(_) => 0,
    }
}
