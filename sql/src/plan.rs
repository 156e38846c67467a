//! Planning one transform rule for one table at one schema version: sqlparser AST → DataFusion
//! logical `Expr` (with Flink's rewrites) → coerced `PhysicalExpr`, done once and reused for
//! every batch until the table's schema version moves.
//!
//! ```text
//!  AST ─prepare_ast─▶ AST' ─SqlToRel─▶ Expr ─aliases, metadata, Flink NULL rules─▶ Expr' ─coerce─▶ PhysicalExpr
//! ```
//!
//! Metadata columns exist only while planning: `__schema_name__` and friends become literals,
//! `__data_event_type__` a `CASE` over the op column, `op_ts` the event-time column.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use cdcflow_engine::schema::{OP_COLUMN, TS_COLUMN};
use cdcflow_engine::{ColumnDef, TableSchema, TableSchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result as DfResult, ScalarValue};
use datafusion::execution::SessionState;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Operator, ScalarUDF, case, lit, when,
};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column as PhysColumn, cast};
use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectNamePart,
    Value, visit_expressions, visit_expressions_mut,
};

use crate::error::SqlError;
use crate::functions;
use crate::parse::{METADATA_COLUMNS, ParsedRule, ProjItem};
use crate::schema_util::cdc_type_of;

/// A rule planned for one table at one schema version.
#[derive(Debug)]
pub(crate) struct TablePlan {
    /// The input schema version this plan was built for.
    pub input_version: u64,
    /// The output schema (same table id; routes rename later).
    pub out: TableSchemaRef,
    /// One expression per output user column, evaluated against the input batch.
    pub columns: Vec<Arc<dyn PhysicalExpr>>,
    /// The filter, evaluated against the input batch.
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// `converter-after-transform: SOFT_DELETE`.
    pub soft_delete: bool,
    /// True when the output is the input unchanged (only the filter applies).
    pub identity: bool,
}

/// Plans `rule` for `input`; `out_version` is the version the output schema gets.
pub(crate) fn plan_table(
    rule: &ParsedRule,
    input: &TableSchema,
    state: &SessionState,
    out_version: u64,
) -> Result<TablePlan, SqlError> {
    let table = input.id.to_string();
    let err = |message: String| SqlError::Plan {
        table: table.clone(),
        rule: rule.index,
        message,
    };
    let df = |e: datafusion::error::DataFusionError| SqlError::Plan {
        table: input.id.to_string(),
        rule: rule.index,
        message: e.to_string(),
    };

    // The planning schema: user columns (with their declared nullability), the system columns,
    // and the metadata columns that no user column shadows.
    let mut fields: Vec<Field> = input
        .columns
        .iter()
        .map(|c| Field::new(&c.name, c.data_type.arrow_type(), c.nullable))
        .collect();
    fields.push(Field::new(OP_COLUMN, DataType::Int8, false));
    fields.push(Field::new(TS_COLUMN, DataType::Int64, false));
    let user_names: HashSet<&str> = input.columns.iter().map(|c| c.name.as_str()).collect();
    let mut virtual_cols: HashMap<String, Expr> = HashMap::new();
    for m in METADATA_COLUMNS {
        if user_names.contains(m) {
            continue;
        }
        let (dt, nullable, replacement) = match *m {
            "__namespace_name__" => (
                DataType::Utf8,
                true,
                lit(ScalarValue::Utf8(input.id.namespace.clone())),
            ),
            "__schema_name__" => (DataType::Utf8, false, lit(input.id.schema.clone())),
            "__table_name__" => (DataType::Utf8, false, lit(input.id.table.clone())),
            "__data_event_type__" => (DataType::Utf8, false, event_type_expr()),
            "op_ts" => (
                DataType::Int64,
                false,
                Expr::Column(Column::from_name(TS_COLUMN)),
            ),
            _ => continue,
        };
        fields.push(Field::new(*m, dt, nullable));
        virtual_cols.insert((*m).to_string(), replacement);
    }
    let plan_arrow = Schema::new(fields);
    let plan_schema = DFSchema::try_from(plan_arrow.clone()).map_err(df)?;
    let known: Vec<String> = plan_arrow
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();

    let concat = state
        .scalar_functions()
        .get("concat")
        .cloned()
        .ok_or_else(|| SqlError::Internal("concat UDF not registered".into()))?;
    let to_logical = |sql: &SqlExpr, schema: &DFSchema| -> Result<Expr, SqlError> {
        let mut sql = sql.clone();
        prepare_ast(&mut sql, &known);
        check_columns(&sql, &known).map_err(&err)?;
        let e = state
            .create_logical_expr_from_sql_expr(
                ast::ExprWithAlias {
                    expr: sql,
                    alias: None,
                },
                schema,
            )
            .map_err(df)?;
        for c in e.column_refs() {
            if schema.field_with_unqualified_name(&c.name).is_err() {
                let hint = crate::parse::closest(&c.name, known.iter().map(String::as_str))
                    .map(|h| format!(" (did you mean `{h}`?)"))
                    .unwrap_or_default();
                return Err(err(format!("unknown column `{}`{hint}", c.name)));
            }
        }
        Ok(e)
    };

    // Projection: (output name, logical expr, source column def when it is a plain reference).
    let mut outputs: Vec<(String, Expr, Option<ColumnDef>)> = Vec::new();
    let mut aliases: HashMap<String, Expr> = HashMap::new();
    let mut alias_fields: Vec<Field> = Vec::new();
    for item in &rule.projection {
        match item {
            ProjItem::Star => {
                for c in &input.columns {
                    if outputs.iter().any(|(n, _, _)| n == &c.name) {
                        continue;
                    }
                    outputs.push((
                        c.name.clone(),
                        Expr::Column(Column::from_name(&c.name)),
                        Some(c.clone()),
                    ));
                }
            }
            ProjItem::Expr { expr, name } => {
                let e = to_logical(expr, &plan_schema)?;
                let passthrough = match &e {
                    Expr::Column(c) => input.columns.iter().find(|d| d.name == c.name).map(|d| {
                        let mut d = d.clone();
                        d.name = name.clone();
                        d
                    }),
                    _ => None,
                };
                let is_self_ref = matches!(&e, Expr::Column(c) if &c.name == name);
                if !is_self_ref {
                    let (_, field) = e.to_field(&plan_schema).map_err(df)?;
                    alias_fields.push(Field::new(
                        name,
                        field.data_type().clone(),
                        field.is_nullable(),
                    ));
                    aliases.insert(name.clone(), e.clone());
                }
                // An alias that shadows a `*` column replaces it in place.
                if let Some(slot) = outputs.iter_mut().find(|(n, _, _)| n == name) {
                    *slot = (name.clone(), e, passthrough);
                } else {
                    outputs.push((name.clone(), e, passthrough));
                }
            }
        }
    }

    // Filter: may reference source columns and the rule's computed aliases (aliases win).
    let filter = match &rule.filter {
        None => None,
        Some(f) => {
            let mut ext = plan_arrow
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect::<Vec<_>>();
            for af in &alias_fields {
                if !ext.iter().any(|f| f.name() == af.name()) {
                    ext.push(af.clone());
                }
            }
            let ext_schema = DFSchema::try_from(Schema::new(ext)).map_err(df)?;
            let mut known_ext = known.clone();
            known_ext.extend(alias_fields.iter().map(|f| f.name().clone()));
            let mut sql = f.clone();
            prepare_ast(&mut sql, &known_ext);
            check_columns(&sql, &known_ext).map_err(&err)?;
            let e = state
                .create_logical_expr_from_sql_expr(
                    ast::ExprWithAlias {
                        expr: sql,
                        alias: None,
                    },
                    &ext_schema,
                )
                .map_err(df)?;
            for c in e.column_refs() {
                if ext_schema.field_with_unqualified_name(&c.name).is_err() {
                    let hint = crate::parse::closest(&c.name, known_ext.iter().map(String::as_str))
                        .map(|h| format!(" (did you mean `{h}`?)"))
                        .unwrap_or_default();
                    return Err(err(format!("unknown column `{}` in filter{hint}", c.name)));
                }
            }
            let e = substitute(e, &aliases).map_err(df)?;
            Some(e)
        }
    };

    let exec_schema: SchemaRef = input.arrow.clone();
    let exec_df = DFSchema::try_from(exec_schema.as_ref().clone()).map_err(df)?;
    // Simplification folds constants and rewrites functions DataFusion only implements through
    // the simplifier (COALESCE, NVL). Our "current time" UDFs are volatile, so they survive.
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::new(exec_df.clone()))
            .with_config_options(Arc::clone(state.config_options()))
            .build(),
    );
    let finish = |e: Expr, positive: bool| -> Result<Arc<dyn PhysicalExpr>, SqlError> {
        let e = substitute(e, &virtual_cols).map_err(df)?;
        let e = flinkify(e, positive, &plan_schema, &concat).map_err(df)?;
        let e = simplifier.coerce(e, &exec_df).map_err(df)?;
        let e = simplifier.simplify(e).map_err(df)?;
        state.create_physical_expr(e, &exec_df).map_err(df)
    };

    let filter = filter.map(|f| finish(f, true)).transpose()?;

    let mut columns = Vec::with_capacity(outputs.len());
    let mut defs = Vec::with_capacity(outputs.len());
    for (name, e, passthrough) in outputs {
        let text = e.to_string();
        let phys = finish(e, false)?;
        let def = match passthrough {
            Some(d) => d,
            None => {
                let dt = phys.data_type(&exec_schema).map_err(df)?;
                let nullable = phys.nullable(&exec_schema).map_err(df)?;
                let cdc = cdc_type_of(&dt);
                ColumnDef {
                    name: name.clone(),
                    data_type: cdc,
                    nullable,
                    default: None,
                    comment: None,
                    source_type: text,
                }
            }
        };
        let want = def.data_type.arrow_type();
        let phys = if phys.data_type(&exec_schema).map_err(df)? == want {
            phys
        } else {
            cast(phys, &exec_schema, want).map_err(df)?
        };
        columns.push(phys);
        defs.push(def);
    }

    let names: HashSet<&str> = defs.iter().map(|d| d.name.as_str()).collect();
    let primary_key = match &rule.primary_keys {
        Some(pks) => {
            for pk in pks {
                if !names.contains(pk.as_str()) {
                    return Err(err(format!(
                        "primary key column `{pk}` is not in the output"
                    )));
                }
            }
            pks.clone()
        }
        None if input.primary_key.iter().all(|k| names.contains(k.as_str())) => {
            input.primary_key.clone()
        }
        None => {
            tracing::warn!(table = %input.id, rule = rule.index, "Primary key columns are not all projected; the output has no key.");
            Vec::new()
        }
    };
    for d in &mut defs {
        if primary_key.contains(&d.name) {
            d.nullable = false;
        }
    }

    let identity = defs.len() == input.columns.len()
        && defs.iter().zip(&input.columns).all(|(a, b)| a == b)
        && primary_key == input.primary_key
        && columns.iter().enumerate().all(|(i, c)| {
            c.downcast_ref::<PhysColumn>()
                .is_some_and(|c| c.index() == i)
        });
    let out = Arc::new(TableSchema::new(
        input.id.clone(),
        defs,
        primary_key,
        input.comment.clone(),
        out_version,
    ));
    Ok(TablePlan {
        input_version: input.version,
        out,
        columns,
        filter,
        soft_delete: rule.soft_delete,
        identity,
    })
}

/// `__data_event_type__` as an expression over the op column.
fn event_type_expr() -> Expr {
    let op = Expr::Column(Column::from_name(OP_COLUMN));
    case(op)
        .when(lit(0i8), lit("+I"))
        .when(lit(1i8), lit("-U"))
        .when(lit(2i8), lit("+U"))
        .when(lit(3i8), lit("-D"))
        .otherwise(lit(ScalarValue::Utf8(None)))
        .unwrap_or_else(|_| lit(ScalarValue::Utf8(None)))
}

/// Replaces column references found in `map` by their expressions.
fn substitute(e: Expr, map: &HashMap<String, Expr>) -> DfResult<Expr> {
    if map.is_empty() {
        return Ok(e);
    }
    e.transform_up(|e| match &e {
        Expr::Column(c) if c.relation.is_none() => match map.get(&c.name) {
            Some(r) => Ok(Transformed::yes(r.clone())),
            None => Ok(Transformed::no(e)),
        },
        _ => Ok(Transformed::no(e)),
    })
    .map(|t| t.data)
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    )
}

/// Applies Flink's semantics where DataFusion's differ: a comparison with NULL is FALSE (not
/// NULL), `||` renders NULL as `null`, and `IF` becomes `CASE`. Under AND/OR from a filter's
/// root (`positive`), NULL and FALSE drop the row alike, so no wrapping is needed there.
fn flinkify(e: Expr, positive: bool, schema: &DFSchema, concat: &Arc<ScalarUDF>) -> DfResult<Expr> {
    let rec = |e: Expr, p: bool| flinkify(e, p, schema, concat);
    let wrap = |e: Expr| -> DfResult<Expr> {
        if !positive && e.nullable(schema)? {
            // `x IS TRUE` is FALSE for NULL and evaluates `x` once.
            Ok(Expr::IsTrue(Box::new(e)))
        } else {
            Ok(e)
        }
    };
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let child_pos = positive && matches!(op, Operator::And | Operator::Or);
            let l = rec(*left, child_pos)?;
            let r = rec(*right, child_pos)?;
            if op == Operator::StringConcat {
                return Ok(concat.call(vec![l, r]));
            }
            let out = Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r)));
            if is_comparison(op) {
                wrap(out)
            } else {
                Ok(out)
            }
        }
        Expr::ScalarFunction(f) if f.func.name() == functions::IF_PLACEHOLDER => {
            let mut args = f.args.into_iter();
            let (Some(c), Some(a), Some(b)) = (args.next(), args.next(), args.next()) else {
                return datafusion::common::plan_err!("IF takes 3 arguments");
            };
            when(rec(c, true)?, rec(a, false)?).otherwise(rec(b, false)?)
        }
        Expr::Like(mut like) if like.escape_char.is_some_and(|c| c != '\\') => {
            // DataFusion only escapes with a backslash: re-escape a literal pattern.
            let esc = like.escape_char.take().unwrap_or('\\');
            if let Expr::Literal(ScalarValue::Utf8(Some(p)), meta) = like.pattern.as_ref() {
                like.pattern = Box::new(Expr::Literal(
                    ScalarValue::Utf8(Some(reescape(p, esc))),
                    meta.clone(),
                ));
            } else {
                return datafusion::common::plan_err!(
                    "LIKE ... ESCAPE '{esc}' needs a constant pattern"
                );
            }
            rec(Expr::Like(like), positive)
        }
        Expr::SimilarTo(mut like) => {
            // DataFusion evaluates SIMILAR TO as an unanchored regex search; SQL means a full
            // match where `%` and `_` are wildcards. Translate a constant pattern.
            let Expr::Literal(ScalarValue::Utf8(Some(p)), meta) = like.pattern.as_ref() else {
                return datafusion::common::plan_err!("SIMILAR TO needs a constant pattern");
            };
            let esc = like.escape_char.take();
            like.pattern = Box::new(Expr::Literal(
                ScalarValue::Utf8(Some(similar_to_regex(p, esc))),
                meta.clone(),
            ));
            like.expr = Box::new(rec(*like.expr, false)?);
            wrap(Expr::SimilarTo(like))
        }
        e @ (Expr::Like(_) | Expr::Between(_) | Expr::InList(_)) => {
            let inner = e
                .map_children(|c| rec(c, false).map(Transformed::yes))?
                .data;
            wrap(inner)
        }
        // Calcite types an integer literal that fits in INT as INT, so `int_col + 1` stays INT.
        Expr::Literal(ScalarValue::Int64(Some(v)), meta) if i32::try_from(v).is_ok() => {
            Ok(Expr::Literal(ScalarValue::Int32(Some(v as i32)), meta))
        }
        e => e
            .map_children(|c| rec(c, false).map(Transformed::yes))
            .map(|t| t.data),
    }
}

/// Translates a SQL `SIMILAR TO` pattern into an anchored regex.
fn similar_to_regex(p: &str, esc: Option<char>) -> String {
    let mut out = String::from("^(?:");
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            c if Some(c) == esc => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            '%' => out.push_str(".*"),
            '_' => out.push('.'),
            '.' | '^' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push_str(")$");
    out
}

/// Rewrites a LIKE pattern escaped with `esc` into one escaped with a backslash.
fn reescape(p: &str, esc: char) -> String {
    let mut out = String::with_capacity(p.len() + 2);
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == esc {
            if let Some(n) = chars.next() {
                out.push('\\');
                out.push(n);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// Rewrites the AST before DataFusion sees it: case-insensitive column names (exact match
/// first), lower-case function names with Flink → DataFusion renames, `YEAR(t)`-style
/// shortcuts as `date_part`, and `TIMESTAMPDIFF(DAY, ..)` units as string literals.
pub(crate) fn prepare_ast(expr: &mut SqlExpr, known: &[String]) {
    let _ = visit_expressions_mut(expr, |e| {
        match e {
            SqlExpr::Identifier(id) if !known.iter().any(|k| k == &id.value) => {
                let lower = id.value.to_lowercase();
                let mut matches = known.iter().filter(|k| k.to_lowercase() == lower);
                if let (Some(m), None) = (matches.next(), matches.next()) {
                    id.value = m.clone();
                }
            }
            SqlExpr::Function(func) if func.name.0.len() == 1 => {
                let Some(ident) = func.name.0[0].as_ident() else {
                    return ControlFlow::<()>::Continue(());
                };
                let lower = ident.value.to_ascii_lowercase();
                let mut dow = false;
                if let Some(unit) = functions::date_part_unit(&lower) {
                    func.name.0[0] = ObjectNamePart::Identifier(Ident::new("date_part"));
                    if let FunctionArguments::List(list) = &mut func.args {
                        list.args.insert(0, string_arg(unit));
                    }
                    dow = lower == "dayofweek";
                } else {
                    let renamed = functions::rename(&lower).to_string();
                    func.name.0[0] = ObjectNamePart::Identifier(Ident::new(renamed));
                    if (lower == "timestampdiff" || lower == "timestampadd")
                        && let FunctionArguments::List(list) = &mut func.args
                        && let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(
                            SqlExpr::Identifier(unit),
                        ))) = list.args.first()
                    {
                        let unit = unit.value.to_ascii_uppercase();
                        list.args[0] = string_arg(&unit);
                    }
                }
                if lower == "mod"
                    && let SqlExpr::Function(f) = &*e
                    && let FunctionArguments::List(list) = &f.args
                    && let [
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(a)),
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(b)),
                    ] = list.args.as_slice()
                {
                    // DataFusion has `%` but no MOD function.
                    *e = SqlExpr::Nested(Box::new(SqlExpr::BinaryOp {
                        left: Box::new(a.clone()),
                        op: ast::BinaryOperator::Modulo,
                        right: Box::new(b.clone()),
                    }));
                    return ControlFlow::Continue(());
                }
                if dow {
                    // DataFusion's dow is 0 = Sunday; Flink's DAYOFWEEK is 1 = Sunday.
                    let inner = e.clone();
                    *e = SqlExpr::BinaryOp {
                        left: Box::new(inner),
                        op: ast::BinaryOperator::Plus,
                        right: Box::new(SqlExpr::value(Value::Number("1".into(), false))),
                    };
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Reports the first identifier that names no column (after case resolution), with a hint.
fn check_columns(expr: &SqlExpr, known: &[String]) -> Result<(), String> {
    let mut unknown: Option<String> = None;
    let _ = visit_expressions(expr, |e| {
        if let SqlExpr::Identifier(id) = e
            && !known.iter().any(|k| k == &id.value)
        {
            unknown = Some(id.value.clone());
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    match unknown {
        None => Ok(()),
        Some(name) => {
            let hint = crate::parse::closest(&name, known.iter().map(String::as_str))
                .map(|h| format!(" (did you mean `{h}`?)"))
                .unwrap_or_default();
            Err(format!("unknown column `{name}`{hint}"))
        }
    }
}

fn string_arg(s: &str) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(SqlExpr::value(
        Value::SingleQuotedString(s.to_string()),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cdcflow_engine::CdcType;

    #[test]
    fn schema_util_maps_back_to_the_same_arrow_type() {
        for t in [
            CdcType::Int,
            CdcType::String,
            CdcType::Date,
            CdcType::Timestamp { precision: 6 },
        ] {
            assert_eq!(cdc_type_of(&t.arrow_type()).arrow_type(), t.arrow_type());
        }
    }
}
