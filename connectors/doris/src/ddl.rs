//! Table auto-creation and schema evolution: type mapping and DDL text for Doris and StarRocks.
//!
//! The mapping follows Flink CDC (flink-cdc-pipeline.md §3.7/§3.8) with these deliberate fixes:
//! - **Character lengths**: Doris VARCHAR/CHAR lengths are bytes; a utf8mb4 character takes up to
//!   4, so Doris uses ×4 (Flink: ×3, which rejects rows with 4-byte characters such as emoji).
//!   StarRocks follows `unicode-char.max-bytes` (Flink's option).
//! - **DATETIME precision is kept** on both systems (`DATETIMEV2(p)` in Doris; StarRocks
//!   `DATETIME` holds microseconds and cdcflow sends the fraction).
//! - **TIME** is text: Doris `STRING`; StarRocks `VARCHAR(10)` / `VARCHAR(11 + p)` so that
//!   `-838:59:59.999999` fits (Flink's `VARCHAR(8)` cannot hold negative or ≥ 100 h values).
//! - **Binary** values travel as base64 text, so their columns are text: Doris `STRING` (as Flink),
//!   StarRocks `VARCHAR(⌈n/3⌉·4)` instead of `VARBINARY(n)`.
//!
//! Every identifier is backquoted with embedded backquotes doubled, and every literal is
//! single-quoted with `\` and `'` escaped, so no table, column, comment or default can inject SQL.

use cdcflow_engine::schema::{CdcType, ColumnDef, TableSchema};

use crate::stream_load::System;

/// Longest StarRocks VARCHAR.
const SR_MAX_VARCHAR: u64 = 1_048_576;
/// Longest Doris VARCHAR (bytes).
const DORIS_MAX_VARCHAR: u64 = 65_533;

/// Quotes an identifier: `` `a``b` `` for ``a`b``.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Quotes a string literal with backslash escapes (both systems' SQL dialects accept them).
pub fn quote_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `` `db`.`table` ``.
pub fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

/// Options that shape generated DDL.
#[derive(Debug, Clone, Default)]
pub struct DdlOptions {
    /// `table.create.properties.*`, passed through verbatim (quoted).
    pub properties: Vec<(String, String)>,
    /// StarRocks `table.create.num-buckets`.
    pub num_buckets: Option<u32>,
    /// StarRocks `unicode-char.max-bytes` (Doris always uses 4).
    pub char_bytes: u32,
    /// StarRocks ALTER job timeout in seconds (`table.schema-change.timeout`).
    pub schema_change_timeout_s: u64,
}

/// The sink column type for a source column.
pub fn column_type(system: System, col: &ColumnDef, is_key: bool, opts: &DdlOptions) -> String {
    match system {
        System::Doris => doris_type(&col.data_type, is_key),
        System::StarRocks => {
            starrocks_type(&col.data_type, is_key, u64::from(opts.char_bytes.max(1)))
        }
    }
}

fn doris_text(is_key: bool) -> String {
    if is_key {
        format!("VARCHAR({DORIS_MAX_VARCHAR})")
    } else {
        "STRING".into()
    }
}

fn doris_varchar(bytes: u64, is_key: bool) -> String {
    if bytes < DORIS_MAX_VARCHAR {
        format!("VARCHAR({bytes})")
    } else {
        doris_text(is_key)
    }
}

fn doris_type(t: &CdcType, is_key: bool) -> String {
    match t {
        CdcType::Boolean => "BOOLEAN".into(),
        CdcType::TinyInt => "TINYINT".into(),
        CdcType::SmallInt => "SMALLINT".into(),
        CdcType::Int => "INT".into(),
        CdcType::BigInt => "BIGINT".into(),
        CdcType::Float => "FLOAT".into(),
        CdcType::Double => "DOUBLE".into(),
        CdcType::Decimal { precision, scale } if *precision <= 38 => {
            format!("DECIMALV3({precision},{scale})")
        }
        CdcType::Decimal { .. } => doris_text(is_key),
        CdcType::Date => "DATEV2".into(),
        CdcType::Timestamp { precision } | CdcType::TimestampLtz { precision } => {
            format!("DATETIMEV2({})", (*precision).min(6))
        }
        CdcType::Time { .. } => doris_text(is_key),
        CdcType::Char { length } => {
            let b = u64::from(*length) * 4;
            if b <= 255 {
                format!("CHAR({b})")
            } else {
                doris_varchar(b, is_key)
            }
        }
        CdcType::Varchar { length } => doris_varchar(u64::from(*length) * 4, is_key),
        CdcType::String => doris_text(is_key),
        CdcType::Binary { .. } | CdcType::Varbinary { .. } | CdcType::Bytes => doris_text(is_key),
    }
}

fn starrocks_type(t: &CdcType, is_key: bool, k: u64) -> String {
    let varchar = |n: u64| format!("VARCHAR({})", n.clamp(1, SR_MAX_VARCHAR));
    match t {
        CdcType::Boolean => "BOOLEAN".into(),
        CdcType::TinyInt => "TINYINT".into(),
        CdcType::SmallInt => "SMALLINT".into(),
        CdcType::Int => "INT".into(),
        CdcType::BigInt => "BIGINT".into(),
        CdcType::Float => "FLOAT".into(),
        CdcType::Double => "DOUBLE".into(),
        CdcType::Decimal { precision, scale } if *precision <= 38 => {
            if is_key {
                varchar(u64::from(*precision) + if *scale == 0 { 1 } else { 2 })
            } else {
                format!("DECIMAL({precision},{scale})")
            }
        }
        CdcType::Decimal { .. } => varchar(SR_MAX_VARCHAR),
        CdcType::Date => "DATE".into(),
        CdcType::Timestamp { .. } | CdcType::TimestampLtz { .. } => "DATETIME".into(),
        CdcType::Time { precision } => {
            if *precision == 0 {
                varchar(10)
            } else {
                varchar(11 + u64::from((*precision).min(6)))
            }
        }
        CdcType::Char { length } => {
            let b = u64::from(*length) * k;
            if b <= 255 && !is_key {
                format!("CHAR({})", b.max(1))
            } else {
                varchar(b)
            }
        }
        CdcType::Varchar { length } => varchar(u64::from(*length) * k),
        CdcType::String => varchar(SR_MAX_VARCHAR),
        CdcType::Binary { length } | CdcType::Varbinary { length } => {
            varchar(u64::from(*length).div_ceil(3) * 4)
        }
        CdcType::Bytes => varchar(SR_MAX_VARCHAR),
    }
}

/// The `DEFAULT …` clause for a column, or empty. `NULL` and unusable defaults are dropped;
/// MySQL's zero datetime becomes `1970-01-01 00:00:00` (neither system accepts it).
pub fn default_clause(col: &ColumnDef) -> String {
    let Some(raw) = col.default.as_deref().map(str::trim) else {
        return String::new();
    };
    if raw.eq_ignore_ascii_case("null") || raw.is_empty() {
        return String::new();
    }
    let temporal = matches!(
        col.data_type,
        CdcType::Timestamp { .. } | CdcType::TimestampLtz { .. }
    );
    if raw.to_ascii_uppercase().starts_with("CURRENT_TIMESTAMP") {
        return if temporal {
            " DEFAULT CURRENT_TIMESTAMP".into()
        } else {
            String::new()
        };
    }
    if matches!(
        col.data_type,
        CdcType::Binary { .. } | CdcType::Varbinary { .. } | CdcType::Bytes
    ) {
        // Values travel as base64; a raw default would not match them.
        return String::new();
    }
    let mut v = if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        raw[1..raw.len() - 1].replace("''", "'").replace("\\'", "'")
    } else {
        raw.to_string()
    };
    if v.starts_with("0000-00-00") {
        v = if matches!(col.data_type, CdcType::Date) {
            "1970-01-01".into()
        } else {
            "1970-01-01 00:00:00".into()
        };
    }
    format!(" DEFAULT {}", quote_literal(&v))
}

fn comment_clause(c: Option<&str>) -> String {
    match c {
        Some(c) if !c.is_empty() => format!(" COMMENT {}", quote_literal(c)),
        _ => String::new(),
    }
}

/// One column definition for CREATE / ADD / MODIFY.
pub fn column_definition(
    system: System,
    col: &ColumnDef,
    is_key: bool,
    opts: &DdlOptions,
) -> String {
    let ty = column_type(system, col, is_key, opts);
    let null = match system {
        // Flink creates every Doris column nullable; keeping that means LENIENT drops stay loadable.
        System::Doris => "",
        System::StarRocks if !col.nullable || is_key => " NOT NULL",
        System::StarRocks => " NULL",
    };
    format!(
        "{} {ty}{null}{}{}",
        quote_ident(&col.name),
        default_clause(col),
        comment_clause(col.comment.as_deref())
    )
}

/// `CREATE DATABASE IF NOT EXISTS`.
pub fn create_database(db: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {}", quote_ident(db))
}

/// `CREATE TABLE IF NOT EXISTS` for `schema` in `db.table`.
///
/// Doris: UNIQUE KEY on the primary key (DUPLICATE KEY on the first column when there is none),
/// key columns first, `DISTRIBUTED BY HASH(key) BUCKETS AUTO`. StarRocks: PRIMARY KEY, key columns
/// first; a table without a primary key is refused (as Flink CDC does), because deletes and
/// upserts need one.
pub fn create_table(
    system: System,
    db: &str,
    table: &str,
    schema: &TableSchema,
    opts: &DdlOptions,
) -> Result<String, String> {
    let keys: Vec<&ColumnDef> = schema
        .primary_key
        .iter()
        .filter_map(|k| schema.columns.iter().find(|c| &c.name == k))
        .collect();
    if system == System::StarRocks && keys.is_empty() {
        return Err(format!(
            "{}: StarRocks tables need a primary key (only Primary Key tables are written)",
            schema.id
        ));
    }
    if schema.columns.is_empty() {
        return Err(format!("{}: a table needs at least one column", schema.id));
    }
    let mut ordered: Vec<(&ColumnDef, bool)> = keys.iter().map(|c| (*c, true)).collect();
    let dup_key = if keys.is_empty() {
        Some(&schema.columns[0])
    } else {
        None
    };
    if let Some(first) = dup_key {
        ordered.push((first, true));
    }
    for c in &schema.columns {
        if !ordered.iter().any(|(o, _)| o.name == c.name) {
            ordered.push((c, false));
        }
    }
    let cols: Vec<String> = ordered
        .iter()
        .map(|(c, k)| column_definition(system, c, *k, opts))
        .collect();
    let key_names: Vec<String> = match dup_key {
        Some(c) => vec![quote_ident(&c.name)],
        None => keys.iter().map(|c| quote_ident(&c.name)).collect(),
    };
    let key_list = key_names.join(", ");
    let props: Vec<(String, String)> = opts.properties.clone();
    let mut sql = format!(
        "CREATE TABLE IF NOT EXISTS {} (\n  {}\n)",
        qualified(db, table),
        cols.join(",\n  ")
    );
    match system {
        System::Doris => {
            let model = if dup_key.is_some() {
                "DUPLICATE KEY"
            } else {
                "UNIQUE KEY"
            };
            sql.push_str(&format!("\n{model}({key_list})"));
            sql.push_str(&comment_clause(schema.comment.as_deref()));
            sql.push_str(&format!("\nDISTRIBUTED BY HASH({key_list}) BUCKETS AUTO"));
            // No hidden sequence column: loads of a table run in source order, so "the later
            // load wins" is already right, and a sequence made up by the sink would lose on
            // replay after a restart (see the sink docs).
        }
        System::StarRocks => {
            sql.push_str(&format!("\nPRIMARY KEY ({key_list})"));
            sql.push_str(&comment_clause(schema.comment.as_deref()));
            sql.push_str(&format!("\nDISTRIBUTED BY HASH ({key_list})"));
            if let Some(n) = opts.num_buckets {
                sql.push_str(&format!(" BUCKETS {n}"));
            }
        }
    }
    if !props.is_empty() {
        let p: Vec<String> = props
            .iter()
            .map(|(k, v)| format!("{} = {}", quote_literal(k), quote_literal(v)))
            .collect();
        sql.push_str(&format!("\nPROPERTIES ({})", p.join(", ")));
    }
    Ok(sql)
}

/// `ALTER TABLE … ADD COLUMN …` (appended last: StarRocks key columns must stay first, and loads
/// name their columns, so the position does not matter to cdcflow).
pub fn add_column(
    system: System,
    db: &str,
    table: &str,
    col: &ColumnDef,
    opts: &DdlOptions,
) -> String {
    let mut s = format!(
        "ALTER TABLE {} ADD COLUMN {}",
        qualified(db, table),
        column_definition(system, col, false, opts)
    );
    if system == System::StarRocks {
        s.push_str(&format!(
            " PROPERTIES ('timeout' = '{}')",
            opts.schema_change_timeout_s.max(1)
        ));
    }
    s
}

/// `ALTER TABLE … DROP COLUMN …`.
pub fn drop_column(system: System, db: &str, table: &str, col: &str, opts: &DdlOptions) -> String {
    let mut s = format!(
        "ALTER TABLE {} DROP COLUMN {}",
        qualified(db, table),
        quote_ident(col)
    );
    if system == System::StarRocks {
        s.push_str(&format!(
            " PROPERTIES ('timeout' = '{}')",
            opts.schema_change_timeout_s.max(1)
        ));
    }
    s
}

/// `ALTER TABLE … RENAME COLUMN old [TO] new` (Doris has no `TO`).
pub fn rename_column(system: System, db: &str, table: &str, old: &str, new: &str) -> String {
    let to = if system == System::StarRocks {
        " TO"
    } else {
        ""
    };
    format!(
        "ALTER TABLE {} RENAME COLUMN {}{to} {}",
        qualified(db, table),
        quote_ident(old),
        quote_ident(new)
    )
}

/// `ALTER TABLE … MODIFY COLUMN …` with the new type.
pub fn modify_column(
    system: System,
    db: &str,
    table: &str,
    col: &ColumnDef,
    is_key: bool,
    opts: &DdlOptions,
) -> String {
    format!(
        "ALTER TABLE {} MODIFY COLUMN {}",
        qualified(db, table),
        column_definition(system, col, is_key, opts)
    )
}

/// `TRUNCATE TABLE`.
pub fn truncate_table(db: &str, table: &str) -> String {
    format!("TRUNCATE TABLE {}", qualified(db, table))
}

/// `DROP TABLE IF EXISTS`.
pub fn drop_table(db: &str, table: &str) -> String {
    format!("DROP TABLE IF EXISTS {}", qualified(db, table))
}

/// Doris `ALTER TABLE … MODIFY COMMENT`.
pub fn alter_comment(db: &str, table: &str, comment: Option<&str>) -> String {
    format!(
        "ALTER TABLE {} MODIFY COMMENT {}",
        qualified(db, table),
        quote_literal(comment.unwrap_or(""))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdcflow_engine::schema::TableId;

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

    #[test]
    fn identifiers_and_literals_cannot_inject() {
        assert_eq!(
            quote_ident("a`; DROP TABLE x; --"),
            "`a``; DROP TABLE x; --`"
        );
        assert_eq!(quote_literal("it's \\ fine"), "'it\\'s \\\\ fine'");
        let mut c = col("x", CdcType::Int);
        c.comment = Some("c'); DROP DATABASE d; --".into());
        let d = column_definition(System::Doris, &c, false, &DdlOptions::default());
        assert_eq!(d, "`x` INT COMMENT 'c\\'); DROP DATABASE d; --'");
    }

    #[test]
    fn doris_mapping_fixes_lengths_and_precision() {
        let o = DdlOptions::default();
        let t = |c: CdcType, k: bool| column_type(System::Doris, &col("c", c), k, &o);
        assert_eq!(t(CdcType::Varchar { length: 255 }, false), "VARCHAR(1020)");
        assert_eq!(t(CdcType::Varchar { length: 20000 }, false), "STRING");
        assert_eq!(
            t(CdcType::Varchar { length: 20000 }, true),
            "VARCHAR(65533)"
        );
        assert_eq!(t(CdcType::Char { length: 3 }, false), "CHAR(12)");
        assert_eq!(t(CdcType::Char { length: 100 }, false), "VARCHAR(400)");
        assert_eq!(
            t(CdcType::Timestamp { precision: 3 }, false),
            "DATETIMEV2(3)"
        );
        assert_eq!(
            t(
                CdcType::Decimal {
                    precision: 20,
                    scale: 0
                },
                false
            ),
            "DECIMALV3(20,0)"
        );
        assert_eq!(
            t(
                CdcType::Decimal {
                    precision: 65,
                    scale: 1
                },
                false
            ),
            "STRING"
        );
        assert_eq!(t(CdcType::Time { precision: 0 }, false), "STRING");
        assert_eq!(t(CdcType::Bytes, false), "STRING");
        assert_eq!(t(CdcType::Date, false), "DATEV2");
    }

    #[test]
    fn starrocks_mapping_follows_flink_with_fixes() {
        let o = DdlOptions {
            char_bytes: 3,
            ..DdlOptions::default()
        };
        let t = |c: CdcType, k: bool| column_type(System::StarRocks, &col("c", c), k, &o);
        assert_eq!(
            t(
                CdcType::Decimal {
                    precision: 8,
                    scale: 4
                },
                true
            ),
            "VARCHAR(10)"
        );
        assert_eq!(
            t(
                CdcType::Decimal {
                    precision: 6,
                    scale: 0
                },
                true
            ),
            "VARCHAR(7)"
        );
        assert_eq!(
            t(
                CdcType::Decimal {
                    precision: 8,
                    scale: 4
                },
                false
            ),
            "DECIMAL(8,4)"
        );
        assert_eq!(t(CdcType::Char { length: 3 }, false), "CHAR(9)");
        assert_eq!(t(CdcType::Char { length: 3 }, true), "VARCHAR(9)");
        assert_eq!(t(CdcType::Varchar { length: 255 }, false), "VARCHAR(765)");
        assert_eq!(t(CdcType::String, false), "VARCHAR(1048576)");
        assert_eq!(t(CdcType::Time { precision: 3 }, false), "VARCHAR(14)");
        assert_eq!(t(CdcType::Varbinary { length: 16 }, false), "VARCHAR(24)");
    }

    #[test]
    fn create_table_shapes() {
        let mut id = col("id", CdcType::BigInt);
        id.nullable = false;
        let mut name = col("name", CdcType::Varchar { length: 10 });
        name.default = Some("'flink'".into());
        let ts = ColumnDef {
            default: Some("0000-00-00 00:00:00".into()),
            ..col("ts", CdcType::Timestamp { precision: 0 })
        };
        let s = TableSchema::new(
            TableId::new("app", "t"),
            vec![name, id, ts],
            vec!["id".into()],
            Some("orders".into()),
            1,
        );
        let o = DdlOptions {
            properties: vec![("replication_num".into(), "1".into())],
            char_bytes: 3,
            ..DdlOptions::default()
        };
        let d = create_table(System::Doris, "db", "t", &s, &o).unwrap();
        assert_eq!(
            d,
            "CREATE TABLE IF NOT EXISTS `db`.`t` (\n  `id` BIGINT,\n  `name` VARCHAR(40) DEFAULT 'flink',\n  `ts` DATETIMEV2(0) DEFAULT '1970-01-01 00:00:00'\n)\nUNIQUE KEY(`id`) COMMENT 'orders'\nDISTRIBUTED BY HASH(`id`) BUCKETS AUTO\nPROPERTIES ('replication_num' = '1')"
        );
        let r = create_table(System::StarRocks, "db", "t", &s, &o).unwrap();
        assert!(r.contains("`id` BIGINT NOT NULL"), "{r}");
        assert!(r.contains("PRIMARY KEY (`id`)"), "{r}");
        let nokey = TableSchema::new(
            TableId::new("app", "l"),
            vec![col("msg", CdcType::String)],
            vec![],
            None,
            1,
        );
        assert!(create_table(System::StarRocks, "db", "l", &nokey, &o).is_err());
        let d = create_table(System::Doris, "db", "l", &nokey, &o).unwrap();
        assert!(
            d.contains("`msg` VARCHAR(65533)") && d.contains("DUPLICATE KEY(`msg`)"),
            "{d}"
        );
        assert!(
            !d.contains("sequence"),
            "duplicate tables get no sequence column: {d}"
        );
    }
}
