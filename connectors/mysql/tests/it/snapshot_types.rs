//! Every MySQL type through the snapshot path, compared cell by cell with what was inserted.

use cdcflow_mysql::snapshot::SnapshotOptions;

use crate::common::{fresh_db, load, server, snapshot, sort_by_id};

/// Columns of the all-types table; the expected rows below follow this order.
pub const ALL_TYPES_DDL: &str = "(
  id INT PRIMARY KEY,
  c_bool TINYINT(1), c_tiny TINYINT, c_utiny TINYINT UNSIGNED, c_small SMALLINT, c_usmall SMALLINT UNSIGNED,
  c_med MEDIUMINT, c_umed MEDIUMINT UNSIGNED, c_int INT, c_uint INT UNSIGNED, c_big BIGINT, c_ubig BIGINT UNSIGNED,
  c_float FLOAT, c_float2 FLOAT(7,4), c_double DOUBLE, c_dec DECIMAL(10,2), c_dec65 DECIMAL(65,30),
  c_bit1 BIT(1), c_bit10 BIT(10), c_date DATE, c_dt DATETIME, c_dt6 DATETIME(6), c_ts TIMESTAMP(3) NULL,
  c_time TIME(6), c_year YEAR, c_char CHAR(10), c_varchar VARCHAR(300), c_latin1 VARCHAR(20) CHARACTER SET latin1,
  c_text TEXT, c_bin BINARY(4), c_varbin VARBINARY(10), c_blob BLOB, c_enum ENUM('red','green','blue'),
  c_set SET('a','b','c','d'), c_json JSON, c_geo GEOMETRY
)";

const ROWS: &str = "
(1, 1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807, 18446744073709551615,
 3.14159, 123.4567, 2.718281828459045, 99999999.99, '99999999999999999999999999999999999.999999999999999999999999999999',
 b'1', b'1010101010', '9999-12-31', '1000-01-01 00:00:00', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999',
 '838:59:59.999999', 2155, 'héllo😀', 'emoji 😀🎉 ünïcödé 中文', 'café', 'long text 😀', X'DEADBEEF', X'00FF10', X'00FF10',
 'green', 'a,c', '{\"a\": [1, 2.5, \"x\"], \"k\": \"v😀\"}', ST_GeomFromText('POINT(1 2)')),
(2, 0, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
 -1.5e-10, -123.4567, -1.7976931348623157e308, -99999999.99, '-12345678901234567890123456789012345.123456789012345678901234567890',
 b'0', b'0', '1000-01-01', '1970-01-01 00:00:01', '1970-01-01 00:00:00.000001', '1970-01-01 00:00:01.000',
 '-838:59:59.000000', 1901, 'a  ', 'b  ', '', '', X'AB00', X'', X'',
 'red', '', '[]', ST_GeomFromText('LINESTRING(0 0, 1 1)')),
(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
 NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(4, 5, -1, 128, -100, 1, -1, 8388608, -1, 2147483648, -1, 9223372036854775808,
 0, 0, 0, -0.50, '0.000000000000000000000000000001',
 NULL, b'1111111111', '0000-00-00', '0000-00-00 00:00:00', '2024-00-10 00:00:00', NULL,
 '-00:00:01.500000', 0, ' x', '', 'Ærø', 'x', X'00000000', X'00', X'00',
 'blue', 'a,b,c,d', '{}', NULL)";

#[tokio::test]
async fn every_type_matches_what_was_inserted() {
    let db = fresh_db("types").await;
    let s = server().await;
    s.exec(&format!(
        "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00'; SET NAMES utf8mb4;
         CREATE TABLE {db}.t {ALL_TYPES_DDL}; INSERT INTO {db}.t VALUES {ROWS}"
    ))
    .await
    .expect("create and fill");
    let tables = load(&db, "t").await;
    let (mut rows, summary, _) = snapshot(&tables, SnapshotOptions::default()).await;
    let rows = &mut rows[0];
    sort_by_id(rows);
    let expected: Vec<Vec<&str>> = vec![
        vec![
            "1",
            "true",
            "127",
            "255",
            "32767",
            "65535",
            "8388607",
            "16777215",
            "2147483647",
            "4294967295",
            "9223372036854775807",
            "18446744073709551615",
            "3.14159",
            "123.4567",
            "2.718281828459045",
            "99999999.99",
            "99999999999999999999999999999999999.999999999999999999999999999999",
            "true",
            "02aa",
            "9999-12-31",
            "1000-01-01 00:00:00.000000",
            "2024-02-29 23:59:59.123456",
            "2038-01-19 03:14:07.999000",
            "3020399999999",
            "2155",
            "héllo😀",
            "emoji 😀🎉 ünïcödé 中文",
            "café",
            "long text 😀",
            "deadbeef",
            "00ff10",
            "00ff10",
            "green",
            "a,c",
            "{\"a\": [1, 2.5, \"x\"], \"k\": \"v😀\"}",
            "0101000000000000000000f03f0000000000000040",
        ],
        vec![
            "2",
            "false",
            "-128",
            "0",
            "-32768",
            "0",
            "-8388608",
            "0",
            "-2147483648",
            "0",
            "-9223372036854775808",
            "0",
            "-1.5e-10",
            "-123.4567",
            "-1.7976931348623157e308",
            "-99999999.99",
            "-12345678901234567890123456789012345.123456789012345678901234567890",
            "false",
            "0000",
            "1000-01-01",
            "1970-01-01 00:00:01.000000",
            "1970-01-01 00:00:00.000001",
            "1970-01-01 00:00:01.000000",
            "-3020399000000",
            "1901",
            "a",
            "b  ",
            "",
            "",
            "ab000000",
            "",
            "",
            "red",
            "",
            "[]",
            "01020000000200000000000000000000000000000000000000000000000000f03f000000000000f03f",
        ],
        {
            let mut v = vec!["3"];
            v.extend(std::iter::repeat_n("NULL", 35));
            v
        },
        vec![
            "4",
            "true",
            "-1",
            "128",
            "-100",
            "1",
            "-1",
            "8388608",
            "-1",
            "2147483648",
            "-1",
            "9223372036854775808",
            "0.0",
            "0.0",
            "0.0",
            "-0.50",
            "0.000000000000000000000000000001",
            "NULL",
            "03ff",
            "NULL",
            "NULL",
            "NULL",
            "NULL",
            "-1500000",
            "0",
            " x",
            "",
            "Ærø",
            "x",
            "00000000",
            "00",
            "00",
            "blue",
            "a,b,c,d",
            "{}",
            "NULL",
        ],
    ];
    assert_eq!(
        rows.len(),
        expected.len(),
        "one snapshot row per inserted row"
    );
    let names: Vec<&str> = tables[0].columns.iter().map(|c| c.name.as_str()).collect();
    for (got, want) in rows.iter().zip(&expected) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert_eq!(g, w, "row id {} column {} differs", want[0], names[i]);
        }
        assert_eq!(got.len(), want.len(), "column count");
    }
    assert!(summary.exact, "MariaDB gives exact snapshot points");
    assert_eq!(summary.marks.len(), 1, "4 rows fit one chunk");
    assert_eq!(summary.marks[0].rows, 4);
}

#[tokio::test]
async fn timestamps_are_instants_and_latin1_is_transcoded() {
    let db = fresh_db("tz").await;
    let s = server().await;
    // Written in +05:00: the instant is 5 hours earlier in UTC. DATETIME is wall-clock: unchanged.
    s.exec(&format!(
        "SET SESSION time_zone = '+05:00'; SET NAMES utf8mb4;
         CREATE TABLE {db}.t (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, dt DATETIME(6), l VARCHAR(10) CHARACTER SET latin1,
           l2 TEXT CHARACTER SET latin1) DEFAULT CHARSET = latin1;
         INSERT INTO {db}.t VALUES (1, '2024-01-01 05:00:00.5', '2024-01-01 05:00:00.5', 'Ærø€', 'naïve')"
    ))
    .await
    .expect("fill");
    let tables = load(&db, "t").await;
    let (rows, _, _) = snapshot(&tables, SnapshotOptions::default()).await;
    assert_eq!(
        rows[0][0],
        vec![
            "1",
            "2024-01-01 00:00:00.500000",
            "2024-01-01 05:00:00.500000",
            "Ærø€",
            "naïve"
        ],
        "TIMESTAMP is read as a UTC instant; latin1 (cp1252) text arrives as UTF-8"
    );
}
