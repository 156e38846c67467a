//! Catalog reading: every type's CDC mapping, keys, nullability, defaults, comments.

use cdcflow_engine::CdcType;
use cdcflow_mysql::schema::{self, TableFilter};

use crate::common::{fresh_db, load, selector, server, tid};
use crate::snapshot_types::ALL_TYPES_DDL;

#[tokio::test]
async fn every_type_maps_to_its_cdc_type() {
    let db = fresh_db("cat").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.t {ALL_TYPES_DDL} COMMENT 'all types'"
        ))
        .await
        .expect("create");
    let t = &load(&db, "t").await[0];
    let got: Vec<(&str, CdcType)> = t
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.cdc_type.clone()))
        .collect();
    use CdcType::*;
    let want = vec![
        ("id", Int),
        ("c_bool", Boolean),
        ("c_tiny", TinyInt),
        ("c_utiny", SmallInt),
        ("c_small", SmallInt),
        ("c_usmall", Int),
        ("c_med", Int),
        ("c_umed", Int),
        ("c_int", Int),
        ("c_uint", BigInt),
        ("c_big", BigInt),
        (
            "c_ubig",
            Decimal {
                precision: 20,
                scale: 0,
            },
        ),
        ("c_float", Float),
        ("c_float2", Double),
        ("c_double", Double),
        (
            "c_dec",
            Decimal {
                precision: 10,
                scale: 2,
            },
        ),
        (
            "c_dec65",
            Decimal {
                precision: 65,
                scale: 30,
            },
        ),
        ("c_bit1", Boolean),
        ("c_bit10", Bytes),
        ("c_date", Date),
        ("c_dt", Timestamp { precision: 0 }),
        ("c_dt6", Timestamp { precision: 6 }),
        ("c_ts", TimestampLtz { precision: 3 }),
        ("c_time", Time { precision: 6 }),
        ("c_year", Int),
        ("c_char", Char { length: 10 }),
        ("c_varchar", Varchar { length: 300 }),
        ("c_latin1", Varchar { length: 20 }),
        ("c_text", String),
        ("c_bin", Binary { length: 4 }),
        ("c_varbin", Varbinary { length: 10 }),
        ("c_blob", Bytes),
        ("c_enum", String),
        ("c_set", String),
        ("c_json", String),
        ("c_geo", Bytes),
    ];
    assert_eq!(got, want);
    assert_eq!(t.schema.primary_key, vec!["id".to_string()]);
    assert_eq!(t.schema.comment.as_deref(), Some("all types"));
    assert!(!t.schema.columns[0].nullable, "PK columns are NOT NULL");
    assert!(t.schema.columns[1].nullable);
    let enum_col = t.columns.iter().find(|c| c.name == "c_enum").unwrap();
    assert_eq!(enum_col.labels, vec!["red", "green", "blue"]);
    let latin = t.columns.iter().find(|c| c.name == "c_latin1").unwrap();
    assert_eq!(latin.charset.as_deref(), Some("latin1"));
    assert_eq!(
        t.schema.arrow.field(16).data_type(),
        &arrow::datatypes::DataType::Decimal256(65, 30),
        "DECIMAL(65,30) travels as Decimal256"
    );
}

#[tokio::test]
async fn keys_defaults_comments_and_selectors() {
    let db = fresh_db("cat2").await;
    server()
        .await
        .exec(&format!(
            "CREATE TABLE {db}.orders (a INT NOT NULL, b VARCHAR(10) NOT NULL DEFAULT 'x' COMMENT 'the b', \
               c INT DEFAULT 5, PRIMARY KEY (b, a));
             CREATE TABLE {db}.uniq (x INT NOT NULL, y INT, UNIQUE KEY uy (y), UNIQUE KEY ux (x));
             CREATE TABLE {db}.nokey (x INT);
             CREATE TABLE {db}.orders_bak (a INT)"
        ))
        .await
        .expect("create");
    let ts = load(&db, "orders|uniq|nokey").await;
    let names: Vec<String> = ts.iter().map(|t| t.id.table.clone()).collect();
    assert_eq!(
        names,
        vec!["nokey", "orders", "uniq"],
        "full match: orders_bak is not selected"
    );
    let orders = &ts[1];
    assert_eq!(
        orders.schema.primary_key,
        vec!["b".to_string(), "a".to_string()],
        "composite key in key order"
    );
    let b = &orders.schema.columns[1];
    assert_eq!(b.default.as_deref(), Some("'x'"));
    assert_eq!(b.comment.as_deref(), Some("the b"));
    assert_eq!(orders.schema.columns[2].default.as_deref(), Some("5"));
    assert_eq!(
        ts[2].schema.primary_key,
        vec!["x".to_string()],
        "NOT NULL unique index stands in for the PK"
    );
    assert!(ts[0].schema.primary_key.is_empty());

    // Exclusion and the "nothing matched" error.
    let mut conn = server().await.conn().await.unwrap();
    let f = TableFilter::new(
        &[selector(&db, "orders\\.*")],
        &[selector(&db, "orders_bak")],
    );
    let ids = schema::discover_tables(&mut conn, &f).await.unwrap();
    assert_eq!(ids, vec![tid(&db, "orders")]);
    let none = TableFilter::new(&[selector(&db, "missing")], &[]);
    let err = schema::discover_tables(&mut conn, &none).await.unwrap_err();
    assert!(err.to_string().contains("cannot find any table"), "{err}");
}
