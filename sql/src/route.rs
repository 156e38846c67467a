//! `route:` rules: source table ids → sink table ids, and the merging of many upstream tables
//! into one sink table with Flink CDC's type widening.
//!
//! ```text
//!  db.order_1 ─┐                      sink schema = widest union of inputs (never drops a column)
//!  db.order_2 ─┼─▶ ods.orders         each batch is coerced: reorder by name, cast widened
//!  db.order_3 ─┘                      columns, NULL for columns its table lacks
//! ```
//!
//! A sink table fed by exactly one upstream table passes that table's schema changes through
//! unchanged (renamed); a merged one only ever receives AddColumn / AlterColumnType.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::{CastOptions, cast_with_options};
use cdcflow_engine::config::RouteMode;
use cdcflow_engine::{
    ChangeBatch, ChangeEvent, SchemaChange, TableId, TableSchema, TableSchemaRef,
};
use regex::Regex;

use crate::error::SqlError;
use crate::schema_util::{diff_steps, merge};
use crate::selector::parse_table_id;

/// One compiled `route:` rule.
#[derive(Debug, Clone)]
pub struct RouteRule {
    /// Position in `route:`.
    pub index: usize,
    /// Anchored, case-sensitive pattern over `db.table`.
    pub pattern: Regex,
    /// The `sink-table`, with `$n` already in Rust's `${n}` form.
    pub sink: String,
    /// `replace-symbol`: replaced by the source table name.
    pub replace_symbol: Option<String>,
}

impl RouteRule {
    /// The sink table for `id` if this rule matches it.
    pub fn resolve(&self, id: &TableId) -> Option<TableId> {
        let s = id.to_string();
        if !self.pattern.is_match(&s) {
            return None;
        }
        let target = match &self.replace_symbol {
            Some(sym) => self.sink.replace(sym.as_str(), &id.table),
            None => self.pattern.replace(&s, self.sink.as_str()).into_owned(),
        };
        Some(parse_table_id(&target))
    }
}

/// Converts Java's `$1` replacement references to Rust's unambiguous `${1}`.
pub(crate) fn java_replacement(s: &str) -> String {
    let re = Regex::new(r"\$(\d+)").expect("static regex");
    re.replace_all(s, "$${$1}").into_owned()
}

/// One sink table: its current schema and the latest schema of each upstream table feeding it.
#[derive(Debug)]
struct SinkTable {
    schema: TableSchemaRef,
    inputs: BTreeMap<TableId, TableSchemaRef>,
}

/// Routes events to sink tables and keeps merged schemas.
#[derive(Debug)]
pub struct Router {
    rules: Arc<Vec<RouteRule>>,
    mode: RouteMode,
    cache: HashMap<TableId, Vec<TableId>>,
    sinks: HashMap<TableId, SinkTable>,
    last_seq: u64,
}

fn renamed(s: &TableSchema, id: &TableId, version: u64) -> TableSchemaRef {
    Arc::new(TableSchema::new(
        id.clone(),
        s.columns.clone(),
        s.primary_key.clone(),
        s.comment.clone(),
        version,
    ))
}

/// Emits the schema changes from `old` to `new` (each with the schema after it) and returns the
/// sink table's schema afterwards.
fn emit_steps(
    out: &mut Vec<ChangeEvent>,
    old: &TableSchemaRef,
    new: &TableSchemaRef,
    seq: u64,
) -> TableSchemaRef {
    let steps = diff_steps(old, new, &[]);
    let last = steps
        .last()
        .map(|(_, s)| Arc::clone(s))
        .unwrap_or_else(|| Arc::clone(new));
    for (change, schema) in steps {
        out.push(ChangeEvent::SchemaChange {
            table: schema.id.clone(),
            change,
            schema,
            seq,
        });
    }
    last
}

impl Router {
    /// A router over compiled rules.
    pub fn new(rules: Arc<Vec<RouteRule>>, mode: RouteMode) -> Self {
        Router {
            rules,
            mode,
            cache: HashMap::new(),
            sinks: HashMap::new(),
            last_seq: 0,
        }
    }

    /// The sink tables of a source table (itself when no rule matches).
    pub fn route(&mut self, id: &TableId) -> Vec<TableId> {
        if let Some(r) = self.cache.get(id) {
            return r.clone();
        }
        let mut out = Vec::new();
        for rule in self.rules.iter() {
            if let Some(t) = rule.resolve(id) {
                if !out.contains(&t) {
                    out.push(t);
                }
                if self.mode == RouteMode::FirstMatch {
                    break;
                }
            }
        }
        if out.is_empty() {
            out.push(id.clone());
        }
        self.cache.insert(id.clone(), out.clone());
        out
    }

    /// Registers `upstream`'s (new) schema with `sink` and emits what the sink must apply.
    fn upstream_schema(
        &mut self,
        sink: &TableId,
        upstream: &TableSchemaRef,
        change: Option<&SchemaChange>,
        seq: u64,
        out: &mut Vec<ChangeEvent>,
    ) {
        let Some(t) = self.sinks.get_mut(sink) else {
            let schema = renamed(upstream, sink, upstream.version);
            let mut inputs = BTreeMap::new();
            inputs.insert(upstream.id.clone(), Arc::clone(upstream));
            out.push(ChangeEvent::CreateTable(Arc::clone(&schema)));
            self.sinks
                .insert(sink.clone(), SinkTable { schema, inputs });
            return;
        };
        t.inputs.insert(upstream.id.clone(), Arc::clone(upstream));
        let version = t.schema.version + 1;
        if t.inputs.len() == 1 {
            // One-to-one: the sink follows its only upstream table exactly.
            let new = renamed(upstream, sink, version);
            match change {
                None => t.schema = emit_steps(out, &t.schema, &new, seq),
                Some(c) => {
                    out.push(ChangeEvent::SchemaChange {
                        table: sink.clone(),
                        change: c.clone(),
                        schema: Arc::clone(&new),
                        seq,
                    });
                    t.schema = new;
                }
            }
            return;
        }
        match change {
            Some(SchemaChange::TruncateTable | SchemaChange::DropTable) => {
                tracing::warn!(sink = %sink, upstream = %upstream.id, "Table-level change of one merged upstream table not applied to the merged sink table.");
                return;
            }
            Some(SchemaChange::AlterTableComment { .. }) => return,
            _ => {}
        }
        let cols = merge(&t.schema, upstream);
        if cols == t.schema.columns {
            return;
        }
        let new = Arc::new(TableSchema::new(
            sink.clone(),
            cols,
            t.schema.primary_key.clone(),
            t.schema.comment.clone(),
            version,
        ));
        t.schema = emit_steps(out, &t.schema, &new, seq);
    }

    /// Routes one event.
    pub fn apply(
        &mut self,
        event: ChangeEvent,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), SqlError> {
        if self.rules.is_empty() {
            // No routes: every table keeps its id and schema.
            out.push(event);
            return Ok(());
        }
        match event {
            ChangeEvent::CreateTable(s) => {
                for sink in self.route(&s.id) {
                    self.upstream_schema(&sink, &s, None, self.last_seq, out);
                }
            }
            ChangeEvent::SchemaChange {
                table,
                change,
                schema,
                seq,
            } => {
                self.last_seq = self.last_seq.max(seq);
                for sink in self.route(&table) {
                    if self.sinks.contains_key(&sink) {
                        self.upstream_schema(&sink, &schema, Some(&change), seq, out);
                    } else {
                        self.upstream_schema(&sink, &schema, None, seq, out);
                    }
                }
            }
            ChangeEvent::Data(batch) => {
                self.last_seq = self.last_seq.max(batch.seq);
                let sinks = self.route(&batch.table.id);
                for sink in sinks {
                    let known = self
                        .sinks
                        .get(&sink)
                        .and_then(|t| t.inputs.get(&batch.table.id))
                        .is_some_and(|s| s.columns == batch.table.columns);
                    if !known {
                        // Data in a shape the router has not seen: register it first.
                        let table = Arc::clone(&batch.table);
                        self.upstream_schema(&sink, &table, None, batch.seq, out);
                    }
                    let t = self.sinks.get(&sink).ok_or_else(|| {
                        SqlError::Internal(format!("sink table {sink} not registered"))
                    })?;
                    out.push(ChangeEvent::Data(coerce(&batch, &t.schema)?));
                }
            }
            ChangeEvent::Progress { seq, offset } => {
                self.last_seq = self.last_seq.max(seq);
                out.push(ChangeEvent::Progress { seq, offset });
            }
            other => out.push(other),
        }
        Ok(())
    }
}

/// Reshapes a batch into the sink table's schema (by column name).
fn coerce(batch: &ChangeBatch, sink: &TableSchemaRef) -> Result<ChangeBatch, SqlError> {
    if batch.table.columns == sink.columns {
        return Ok(ChangeBatch {
            table: Arc::clone(sink),
            data: batch.data.clone(),
            seq: batch.seq,
            offset: batch.offset.clone(),
        });
    }
    let rb = &batch.data;
    let n = rb.num_rows();
    let ncols = rb.num_columns();
    if ncols < 2 {
        return Err(SqlError::Internal(format!(
            "batch of {} has no system columns",
            batch.table.id
        )));
    }
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(sink.columns.len() + 2);
    for c in &sink.columns {
        let want = c.data_type.arrow_type();
        match batch.table.column_index(&c.name) {
            Some(i) => {
                let a = rb.column(i);
                if a.data_type() == &want {
                    cols.push(Arc::clone(a));
                } else {
                    let v =
                        cast_with_options(a, &want, &opts).map_err(|source| SqlError::Coerce {
                            source_table: batch.table.id.to_string(),
                            sink_table: sink.id.to_string(),
                            column: c.name.clone(),
                            source,
                        })?;
                    cols.push(v);
                }
            }
            None => cols.push(new_null_array(&want, n)),
        }
    }
    cols.push(Arc::clone(rb.column(ncols - 2)));
    cols.push(Arc::clone(rb.column(ncols - 1)));
    let data =
        RecordBatch::try_new(Arc::clone(&sink.arrow), cols).map_err(|source| SqlError::Arrow {
            table: sink.id.to_string(),
            source,
        })?;
    Ok(ChangeBatch {
        table: Arc::clone(sink),
        data,
        seq: batch.seq,
        offset: batch.offset.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::route_regex;

    fn rule(src: &str, sink: &str, sym: Option<&str>) -> RouteRule {
        RouteRule {
            index: 0,
            pattern: route_regex(src).expect("valid"),
            sink: java_replacement(sink),
            replace_symbol: sym.map(str::to_string),
        }
    }

    #[test]
    fn capture_groups_and_replace_symbol_resolve_like_flink() {
        let r = rule("db_(\\.*).(\\.*)_tbl", "sink_db_$1.sink_table_$2", None);
        assert_eq!(
            r.resolve(&TableId::new("db_foo", "bar_tbl")),
            Some(TableId::new("sink_db_foo", "sink_table_bar"))
        );
        let r = rule("mydb.\\.*", "ods_db.ods_<>", Some("<>"));
        assert_eq!(
            r.resolve(&TableId::new("mydb", "users")),
            Some(TableId::new("ods_db", "ods_users"))
        );
    }

    #[test]
    fn first_match_stops_and_all_match_fans_out() {
        let rules = Arc::new(vec![
            rule("a.t", "x.one", None),
            rule("a.\\.*", "x.all", None),
        ]);
        let mut all = Router::new(Arc::clone(&rules), RouteMode::AllMatch);
        assert_eq!(
            all.route(&TableId::new("a", "t")),
            vec![TableId::new("x", "one"), TableId::new("x", "all")]
        );
        let mut first = Router::new(rules, RouteMode::FirstMatch);
        assert_eq!(
            first.route(&TableId::new("a", "t")),
            vec![TableId::new("x", "one")]
        );
        assert_eq!(
            first.route(&TableId::new("b", "t")),
            vec![TableId::new("b", "t")],
            "unmatched keeps its id"
        );
    }
}
