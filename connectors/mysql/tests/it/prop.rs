//! Property test: random rows of every type, inserted, snapshotted, compared cell by cell.

use proptest::prelude::*;

use cdcflow_mysql::snapshot::SnapshotOptions;

use crate::common::{fresh_db, load, server, snapshot, sort_by_id};

/// What a cell must read back as.
#[derive(Debug, Clone)]
enum Expect {
    /// The rendered text exactly.
    Text(String),
    /// A float equal to this value.
    F64(f64),
}

/// One generated cell: its SQL literal and what the snapshot must produce.
#[derive(Debug, Clone)]
struct Cell {
    sql: String,
    expect: Expect,
}

fn exact(sql: impl Into<String>, text: impl Into<String>) -> Cell {
    Cell {
        sql: sql.into(),
        expect: Expect::Text(text.into()),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Column definitions, in table order after `id`.
const COLUMNS: &[&str] = &[
    "c_bool TINYINT(1)",
    "c_tiny TINYINT",
    "c_utiny TINYINT UNSIGNED",
    "c_small SMALLINT",
    "c_usmall SMALLINT UNSIGNED",
    "c_med MEDIUMINT",
    "c_umed MEDIUMINT UNSIGNED",
    "c_int INT",
    "c_uint INT UNSIGNED",
    "c_big BIGINT",
    "c_ubig BIGINT UNSIGNED",
    "c_float FLOAT",
    "c_double DOUBLE",
    "c_dec DECIMAL(10,2)",
    "c_dec65 DECIMAL(65,30)",
    "c_bit1 BIT(1)",
    "c_bit10 BIT(10)",
    "c_date DATE",
    "c_dt DATETIME(6)",
    "c_ts TIMESTAMP(6) NULL",
    "c_time TIME(6)",
    "c_year YEAR",
    "c_char CHAR(10)",
    "c_varchar VARCHAR(40)",
    "c_latin1 VARCHAR(20) CHARACTER SET latin1",
    "c_text TEXT",
    "c_bin BINARY(4)",
    "c_varbin VARBINARY(10)",
    "c_blob BLOB",
    "c_enum ENUM('red','green','blue')",
    "c_set SET('a','b','c','d')",
    "c_json JSON",
    "c_geo GEOMETRY",
];

fn int_cell<T: std::fmt::Display>(v: T) -> Cell {
    exact(v.to_string(), v.to_string())
}

fn decimal(neg: bool, int: String, frac: String) -> Cell {
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let zero = int == "0" && frac.chars().all(|c| c == '0');
    let text = format!("{}{int}.{frac}", if neg && !zero { "-" } else { "" });
    exact(quote(&text), text)
}

fn datetime(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32, us: u32) -> Cell {
    let t = format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}");
    exact(quote(&t), t)
}

/// One strategy per column of [`COLUMNS`].
fn column_strategies() -> Vec<BoxedStrategy<Cell>> {
    let text = "[a-zA-Z0-9 éü中😀'\\\\]{0,12}";
    vec![
        any::<bool>()
            .prop_map(|b| exact(if b { "1" } else { "0" }, b.to_string()))
            .boxed(),
        any::<i8>().prop_map(int_cell).boxed(),
        any::<u8>().prop_map(int_cell).boxed(),
        any::<i16>().prop_map(int_cell).boxed(),
        any::<u16>().prop_map(int_cell).boxed(),
        (-8_388_608i32..=8_388_607).prop_map(int_cell).boxed(),
        (0u32..=16_777_215).prop_map(int_cell).boxed(),
        any::<i32>().prop_map(int_cell).boxed(),
        any::<u32>().prop_map(int_cell).boxed(),
        any::<i64>().prop_map(int_cell).boxed(),
        any::<u64>().prop_map(int_cell).boxed(),
        // Quarter steps are exact in FLOAT.
        (-4_000_000i32..4_000_000)
            .prop_map(|q| {
                let v = f64::from(q) / 4.0;
                Cell {
                    sql: format!("{v}"),
                    expect: Expect::F64(v),
                }
            })
            .boxed(),
        any::<f64>()
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(|v| Cell {
                sql: format!("{v:e}"),
                expect: Expect::F64(v),
            })
            .boxed(),
        (any::<bool>(), "[0-9]{1,8}", "[0-9]{2}")
            .prop_map(|(n, i, f)| decimal(n, i, f))
            .boxed(),
        (any::<bool>(), "[0-9]{1,35}", "[0-9]{30}")
            .prop_map(|(n, i, f)| decimal(n, i, f))
            .boxed(),
        any::<bool>()
            .prop_map(|b| exact(if b { "b'1'" } else { "b'0'" }, b.to_string()))
            .boxed(),
        (0u16..1024)
            .prop_map(|v| exact(v.to_string(), hex(&v.to_be_bytes())))
            .boxed(),
        (1000u32..=9999, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| {
                let t = format!("{y:04}-{m:02}-{d:02}");
                exact(quote(&t), t)
            })
            .boxed(),
        (
            1000u32..=9999,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
            0u32..1_000_000,
        )
            .prop_map(|(y, mo, d, h, mi, s, us)| datetime(y, mo, d, h, mi, s, us))
            .boxed(),
        (
            1971u32..=2037,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
            0u32..1_000_000,
        )
            .prop_map(|(y, mo, d, h, mi, s, us)| datetime(y, mo, d, h, mi, s, us))
            .boxed(),
        (any::<bool>(), 0i64..=3_020_399, 0i64..1_000_000)
            .prop_map(|(neg, secs, us)| {
                let mag = secs * 1_000_000 + us;
                let neg = neg && mag != 0;
                let lit = format!(
                    "{}{}:{:02}:{:02}.{us:06}",
                    if neg { "-" } else { "" },
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60
                );
                exact(quote(&lit), (if neg { -mag } else { mag }).to_string())
            })
            .boxed(),
        prop_oneof![Just(0u16), 1901u16..=2155]
            .prop_map(int_cell)
            .boxed(),
        "[a-z 😀]{0,10}"
            .prop_map(|s| exact(quote(&s), s.trim_end_matches(' ').to_string()))
            .boxed(),
        text.prop_map(|s| exact(quote(&s), s)).boxed(),
        "[a-zé ÆøÅ€]{0,10}"
            .prop_map(|s| exact(quote(&s), s))
            .boxed(),
        text.prop_map(|s| exact(quote(&s), s)).boxed(),
        proptest::collection::vec(any::<u8>(), 0..=4)
            .prop_map(|b| {
                let mut padded = b.clone();
                padded.resize(4, 0);
                exact(format!("X'{}'", hex(&b)), hex(&padded))
            })
            .boxed(),
        proptest::collection::vec(any::<u8>(), 0..=10)
            .prop_map(|b| exact(format!("X'{}'", hex(&b)), hex(&b)))
            .boxed(),
        proptest::collection::vec(any::<u8>(), 0..=64)
            .prop_map(|b| exact(format!("X'{}'", hex(&b)), hex(&b)))
            .boxed(),
        prop::sample::select(vec!["red", "green", "blue"])
            .prop_map(|l| exact(quote(l), l))
            .boxed(),
        (0u8..16)
            .prop_map(|bits| {
                let labels: Vec<&str> = ["a", "b", "c", "d"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, l)| *l)
                    .collect();
                let v = labels.join(",");
                exact(quote(&v), v)
            })
            .boxed(),
        (any::<i32>(), "[a-z😀]{0,6}")
            .prop_map(|(n, s)| {
                let j = format!("{{\"n\": {n}, \"s\": \"{s}\"}}");
                exact(quote(&j), j)
            })
            .boxed(),
        (-1000i32..1000, -1000i32..1000)
            .prop_map(|(x, y)| {
                let wkb = [
                    vec![1u8],
                    1u32.to_le_bytes().to_vec(),
                    f64::from(x).to_le_bytes().to_vec(),
                    f64::from(y).to_le_bytes().to_vec(),
                ]
                .concat();
                exact(format!("ST_GeomFromText('POINT({x} {y})')"), hex(&wkb))
            })
            .boxed(),
    ]
}

/// A row: every column either NULL (1 in 8) or a generated value.
fn row_strategy() -> impl Strategy<Value = Vec<Cell>> {
    column_strategies()
        .into_iter()
        .map(|s| prop_oneof![1 => Just(Cell { sql: "NULL".into(), expect: Expect::Text("NULL".into()) }), 7 => s].boxed())
        .collect::<Vec<_>>()
}

fn check(rows: &[Vec<Cell>]) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = fresh_db("prop").await;
        let cols = COLUMNS.join(", ");
        let values: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| format!("({}, {})", i + 1, r.iter().map(|c| c.sql.as_str()).collect::<Vec<_>>().join(", ")))
            .collect();
        server()
            .await
            .exec(&format!(
                "SET SESSION time_zone = '+00:00'; SET NAMES utf8mb4; CREATE TABLE {db}.t (id INT PRIMARY KEY, {cols});
                 INSERT INTO {db}.t VALUES {}",
                values.join(", ")
            ))
            .await
            .map_err(|e| TestCaseError::fail(format!("insert: {e}")))?;
        let tables = load(&db, "t").await;
        let (mut got, _, _) = snapshot(&tables, SnapshotOptions { chunk_size: 3, parallelism: 2, ..Default::default() }).await;
        let got = &mut got[0];
        sort_by_id(got);
        prop_assert_eq!(got.len(), rows.len());
        for (i, (g, want)) in got.iter().zip(rows).enumerate() {
            for (c, (cell, w)) in g[1..].iter().zip(want).enumerate() {
                match &w.expect {
                    Expect::Text(t) => prop_assert_eq!(cell, t, "row {} column {} (inserted {})", i + 1, COLUMNS[c], w.sql),
                    Expect::F64(v) => {
                        let parsed: f64 = cell.parse().map_err(|_| TestCaseError::fail(format!("not a float: {cell}")))?;
                        prop_assert_eq!(parsed, *v, "row {} column {}", i + 1, COLUMNS[c]);
                    }
                }
            }
        }
        let _ = server().await.exec(&format!("DROP DATABASE {db}")).await;
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_rows_of_every_type_survive_the_snapshot(rows in proptest::collection::vec(row_strategy(), 1..12)) {
        check(&rows)?;
    }
}
