//! Table discovery and table schemas read from `information_schema`.
//!
//! ```text
//!  TABLES ──(tables / tables.exclude selectors)──▶ captured TableIds
//!  COLUMNS + STATISTICS + TABLES ──▶ MySqlColumn × n (+ CdcType) ──▶ engine TableSchema
//! ```
//!
//! The catalog, not the binlog TABLE_MAP, is the source of truth for names, signedness, ENUM/SET
//! labels, character sets and keys: TABLE_MAP carries them only with `binlog_row_metadata=FULL`.
//! The key is the PRIMARY KEY; a table without one uses its first UNIQUE index whose columns are
//! all NOT NULL (as Flink CDC does for CreateTableEvents), or has no key.

use std::collections::BTreeMap;
use std::sync::Arc;

use cdcflow_engine::{ColumnDef, TableId, TableSchema, TableSchemaRef};
use mysql_async::prelude::Queryable;

use crate::config::{TableSelector, any_matches};
use crate::error::{MySqlError, Result};
use crate::types::{CatalogColumn, MySqlColumn};

/// Schemas that are never captured.
const SYSTEM_SCHEMAS: [&str; 4] = ["mysql", "information_schema", "performance_schema", "sys"];

/// One captured table: its MySQL columns (what decoders need) and its engine schema.
#[derive(Debug, Clone)]
pub struct MySqlTable {
    /// `db.table`.
    pub id: TableId,
    /// Columns in table order, with their MySQL facts and CDC types.
    pub columns: Vec<MySqlColumn>,
    /// The engine schema (CDC types, key, defaults, comments, Arrow schema).
    pub schema: TableSchemaRef,
    /// `information_schema.TABLES.TABLE_ROWS`: InnoDB's estimate, for progress and chunking.
    pub estimated_rows: u64,
}

impl MySqlTable {
    /// Index of a column by name (MySQL column names are case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
}

/// The captured-table filter: `tables` minus `tables.exclude` (Flink CDC selector syntax; each
/// part is a case-insensitive full match, see [`TableSelector::matches`]).
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<TableSelector>,
    exclude: Vec<TableSelector>,
}

impl TableFilter {
    /// Combines `tables` and `tables.exclude`.
    pub fn new(include: &[TableSelector], exclude: &[TableSelector]) -> Self {
        TableFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        }
    }

    /// Whether `db.table` is captured.
    pub fn matches(&self, db: &str, table: &str) -> bool {
        any_matches(&self.include, db, table) && !any_matches(&self.exclude, db, table)
    }

    /// The `tables` option as written, for messages.
    pub fn text(&self) -> String {
        self.include
            .iter()
            .map(|s| s.text.value.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Lists the base tables the filter captures, sorted by `db.table`.
///
/// # Errors
/// [`MySqlError::NoTables`] when nothing matches (as Flink CDC: "Cannot find any table").
pub async fn discover_tables(
    conn: &mut mysql_async::Conn,
    filter: &TableFilter,
) -> Result<Vec<TableId>> {
    let sql = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
               WHERE TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME";
    let rows: Vec<(String, String)> = conn
        .query(sql)
        .await
        .map_err(|e| MySqlError::query("listing tables", e))?;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (db, table) in rows {
        if SYSTEM_SCHEMAS.iter().any(|s| s.eq_ignore_ascii_case(&db)) {
            continue;
        }
        if filter.matches(&db, &table) {
            out.push(TableId::new(db, table));
        } else if seen.len() < 20 {
            seen.push(format!("{db}.{table}"));
        }
    }
    if out.is_empty() {
        return Err(MySqlError::NoTables {
            selectors: filter.text(),
            seen: seen.join(", "),
        });
    }
    Ok(out)
}

/// Reads the catalog of `ids` and builds each table's columns and engine schema (version 1).
///
/// # Errors
/// A failed query, an unsupported column type, or a table that vanished.
pub async fn load_tables(
    conn: &mut mysql_async::Conn,
    ids: &[TableId],
    tinyint1_as_boolean: bool,
) -> Result<Vec<MySqlTable>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let dbs: Vec<String> = {
        let mut v: Vec<String> = ids.iter().map(|i| quote_literal(&i.schema)).collect();
        v.sort();
        v.dedup();
        v
    };
    let in_dbs = dbs.join(",");
    let wanted: BTreeMap<(String, String), usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ((id.schema.clone(), id.table.clone()), i))
        .collect();

    // Tables: comment and row estimate.
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, CAST(IFNULL(TABLE_ROWS, 0) AS UNSIGNED), IFNULL(TABLE_COMMENT, '') \
         FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({in_dbs})"
    );
    let rows: Vec<(String, String, u64, String)> = conn
        .query(sql)
        .await
        .map_err(|e| MySqlError::query("reading information_schema.TABLES", e))?;
    let mut meta: BTreeMap<usize, (u64, Option<String>)> = BTreeMap::new();
    for (db, t, n, comment) in rows {
        if let Some(&i) = wanted.get(&(db, t)) {
            meta.insert(i, (n, (!comment.is_empty()).then_some(comment)));
        }
    }

    // Columns.
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
         CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, \
         COLUMN_DEFAULT, COLUMN_COMMENT \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({in_dbs}) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
    );
    let rows: Vec<mysql_async::Row> = conn
        .query(sql)
        .await
        .map_err(|e| MySqlError::query("reading information_schema.COLUMNS", e))?;
    let mut cols: BTreeMap<usize, Vec<ColumnFacts>> = BTreeMap::new();
    for mut r in rows {
        let db: String = take(&mut r, 0);
        let t: String = take(&mut r, 1);
        let Some(&i) = wanted.get(&(db, t)) else {
            continue;
        };
        let c = CatalogColumn {
            name: take(&mut r, 2),
            ordinal_position: take::<u64>(&mut r, 3) as u32,
            data_type: take(&mut r, 4),
            column_type: take(&mut r, 5),
            nullable: take::<String>(&mut r, 6).eq_ignore_ascii_case("YES"),
            char_max_length: take(&mut r, 7),
            numeric_precision: take(&mut r, 8),
            numeric_scale: take(&mut r, 9),
            datetime_precision: take(&mut r, 10),
            charset: take(&mut r, 11),
        };
        let default: Option<String> = take(&mut r, 12);
        let comment: Option<String> = take::<Option<String>>(&mut r, 13).filter(|c| !c.is_empty());
        cols.entry(i).or_default().push((c, default, comment));
    }

    // Keys: PRIMARY, else the first unique index whose columns are all NOT NULL.
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, NULLABLE \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({in_dbs}) \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
    );
    let rows: Vec<(String, String, String, i64, u64, String, String)> = conn
        .query(sql)
        .await
        .map_err(|e| MySqlError::query("reading information_schema.STATISTICS", e))?;
    // table index → index name → (unique, all-not-null, columns)
    let mut indexes: BTreeMap<usize, BTreeMap<String, IndexInfo>> = BTreeMap::new();
    for (db, t, index, non_unique, _seq, column, nullable) in rows {
        let Some(&i) = wanted.get(&(db, t)) else {
            continue;
        };
        let e = indexes
            .entry(i)
            .or_default()
            .entry(index)
            .or_insert(IndexInfo {
                unique: non_unique == 0,
                not_null: true,
                columns: Vec::new(),
            });
        e.not_null &= nullable.is_empty();
        e.columns.push(column);
    }

    let mut out = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let Some(table_cols) = cols.remove(&i) else {
            return Err(MySqlError::ChunkKey {
                table: id.to_string(),
                message: "table not found in information_schema.COLUMNS".into(),
            });
        };
        let mut columns = Vec::with_capacity(table_cols.len());
        let mut defs = Vec::with_capacity(table_cols.len());
        for (c, default, comment) in table_cols {
            let col = MySqlColumn::from_catalog(&c, tinyint1_as_boolean).ok_or_else(|| {
                MySqlError::UnsupportedType {
                    table: id.to_string(),
                    column: c.name.clone(),
                    column_type: c.column_type.clone(),
                }
            })?;
            defs.push(ColumnDef {
                name: col.name.clone(),
                data_type: col.cdc_type.clone(),
                nullable: col.nullable,
                default,
                comment,
                source_type: col.column_type.clone(),
            });
            columns.push(col);
        }
        let idx = indexes.remove(&i).unwrap_or_default();
        let primary_key = match idx.get("PRIMARY") {
            Some(pk) => pk.columns.clone(),
            None => idx
                .values()
                .find(|x| x.unique && x.not_null)
                .map(|x| x.columns.clone())
                .unwrap_or_default(),
        };
        let (estimated_rows, comment) = meta.remove(&i).unwrap_or((0, None));
        let schema = Arc::new(TableSchema::new(id.clone(), defs, primary_key, comment, 1));
        out.push(MySqlTable {
            id: id.clone(),
            columns,
            schema,
            estimated_rows,
        });
    }
    Ok(out)
}

/// A catalog column with its default expression and comment.
type ColumnFacts = (CatalogColumn, Option<String>, Option<String>);

/// One index from `information_schema.STATISTICS`.
struct IndexInfo {
    unique: bool,
    not_null: bool,
    columns: Vec<String>,
}

/// Takes column `i` of a catalog row, converting to `T` (NULL → default for `Option`s).
fn take<T: mysql_async::prelude::FromValue + Default>(row: &mut mysql_async::Row, i: usize) -> T {
    row.take_opt::<T, usize>(i)
        .and_then(|r| r.ok())
        .unwrap_or_default()
}

/// Quotes a string as an SQL literal (for catalog queries over names we read from the server).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Quotes an identifier with backticks (`db`.`table`, column names).
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// `db`.`table`, quoted.
pub fn quote_table(id: &TableId) -> String {
    format!("{}.{}", quote_ident(&id.schema), quote_ident(&id.table))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_delimiters() {
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(quote_literal("it's\\"), "'it''s\\\\'");
        assert_eq!(quote_table(&TableId::new("d", "t")), "`d`.`t`");
    }
}
