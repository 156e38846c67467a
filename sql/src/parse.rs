//! Offline parsing and validation of `transform:` rules: projection and filter strings become
//! sqlparser ASTs, every function name and metadata column is checked, and each problem is
//! reported at the YAML line:column of the offending character inside the expression.
//!
//! Nothing here needs a table schema; that comes at run time (see [`crate::plan`]).

use std::collections::{BTreeMap, HashSet};
use std::ops::ControlFlow;

use cdcflow_engine::config::{Diagnostic, Diagnostics, ExprText, Location, TransformDef};
use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, FunctionArguments, SelectItem, Spanned as _, visit_expressions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::Token;
use regex::Regex;

use crate::functions;
use crate::selector::TableSelector;

/// Metadata columns every transform can read (Flink CDC §4.3), plus MySQL's `op_ts`.
pub const METADATA_COLUMNS: &[&str] = &[
    "__namespace_name__",
    "__schema_name__",
    "__table_name__",
    "__data_event_type__",
    "op_ts",
];

/// One item of a projection list.
#[derive(Debug, Clone)]
pub(crate) enum ProjItem {
    /// `*`: every upstream column, in order.
    Star,
    /// An expression with its output column name.
    Expr {
        /// The parsed expression.
        expr: Box<SqlExpr>,
        /// Output column name (the alias, the column name, or the expression text).
        name: String,
    },
}

/// A transform rule after offline validation.
#[derive(Debug, Clone)]
pub(crate) struct ParsedRule {
    /// Position in the `transform:` list, for messages.
    pub index: usize,
    /// Which source tables the rule applies to.
    pub selector: TableSelector,
    /// The projection (`[Star]` when omitted).
    pub projection: Vec<ProjItem>,
    /// The filter, if any.
    pub filter: Option<SqlExpr>,
    /// `primary-keys` override.
    pub primary_keys: Option<Vec<String>>,
    /// `partition-keys` (kept for sinks that use them; Doris and StarRocks ignore it).
    #[expect(
        dead_code,
        reason = "validated and kept for lake sinks; Doris/StarRocks do not read it"
    )]
    pub partition_keys: Vec<String>,
    /// `table-options` pairs.
    #[expect(dead_code, reason = "validated; TableSchema has no options field yet")]
    pub table_options: BTreeMap<String, String>,
    /// `converter-after-transform: SOFT_DELETE`.
    pub soft_delete: bool,
}

/// Collects diagnostics for one rule with the file and key path filled in.
struct Reporter<'a> {
    file: &'a str,
    diags: &'a mut Diagnostics,
}

impl Reporter<'_> {
    fn push(&mut self, loc: Location, path: String, message: String, hint: Option<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            loc,
            path,
            message,
            hint,
        });
    }
}

/// Validates one `transform:` rule; `None` (with diagnostics) when it is invalid.
pub(crate) fn parse_rule(
    index: usize,
    def: &TransformDef,
    file: &str,
    diags: &mut Diagnostics,
) -> Option<ParsedRule> {
    let before = diags.0.len();
    let mut rep = Reporter { file, diags };
    let path = format!("transform[{index}]");

    let selector = match TableSelector::parse(&def.source_table.value) {
        Ok(s) => Some(s),
        Err(msg) => {
            rep.push(
                def.source_table.loc,
                format!("{path}.source-table"),
                msg,
                None,
            );
            None
        }
    };

    let projection = match &def.projection {
        Some(text) if !text.text.trim().is_empty() => {
            parse_projection(text, &format!("{path}.projection"), &mut rep).unwrap_or_default()
        }
        _ => vec![ProjItem::Star],
    };

    let filter = match &def.filter {
        Some(text) if !text.text.trim().is_empty() => {
            parse_filter(text, &format!("{path}.filter"), &mut rep)
        }
        _ => None,
    };

    let primary_keys = def.primary_keys.as_ref().map(|s| split_list(&s.value, ','));
    if let (Some(pks), Some(spk)) = (&primary_keys, &def.primary_keys) {
        let has_star = projection.iter().any(|p| matches!(p, ProjItem::Star));
        if !has_star {
            let names: HashSet<&str> = projection
                .iter()
                .filter_map(|p| match p {
                    ProjItem::Expr { name, .. } => Some(name.as_str()),
                    ProjItem::Star => None,
                })
                .collect();
            for pk in pks {
                if !names.contains(pk.as_str()) {
                    rep.push(
                        spk.loc,
                        format!("{path}.primary-keys"),
                        format!("primary key column `{pk}` is not in the projection"),
                        closest(pk, names.iter().copied()).map(|c| format!("did you mean `{c}`?")),
                    );
                }
            }
        }
    }

    let mut soft_delete = false;
    if let Some(c) = &def.converter_after_transform {
        if c.value.trim().eq_ignore_ascii_case("SOFT_DELETE") {
            soft_delete = true;
        } else {
            rep.push(
                c.loc,
                format!("{path}.converter-after-transform"),
                format!("unknown converter `{}`", c.value),
                Some("the only converter is `SOFT_DELETE`".into()),
            );
        }
    }

    let delimiter = def
        .table_options_delimiter
        .as_ref()
        .map(|d| d.value.clone())
        .unwrap_or_else(|| ",".into());
    let mut table_options = BTreeMap::new();
    if let Some(opts) = &def.table_options {
        for pair in opts
            .value
            .split(delimiter.as_str())
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some((k, v)) => {
                    table_options.insert(k.trim().to_string(), v.trim().to_string());
                }
                None => rep.push(
                    opts.loc,
                    format!("{path}.table-options"),
                    format!("`{pair}` is not a `key=value` pair"),
                    None,
                ),
            }
        }
    }
    let partition_keys = def
        .partition_keys
        .as_ref()
        .map(|s| split_list(&s.value, ','))
        .unwrap_or_default();

    if diags.0.len() > before {
        return None;
    }
    Some(ParsedRule {
        index,
        selector: selector?,
        projection,
        filter,
        primary_keys,
        partition_keys,
        table_options,
        soft_delete,
    })
}

fn split_list(s: &str, sep: char) -> Vec<String> {
    s.split(sep)
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Maps a sqlparser (line, column) inside `text` (both 1-based) to a char offset.
fn char_offset(text: &str, line: u64, column: u64) -> usize {
    if line == 0 {
        return 0;
    }
    let (mut l, mut c) = (1u64, 1u64);
    for (i, ch) in text.chars().enumerate() {
        if l == line && c == column {
            return i;
        }
        if ch == '\n' {
            l += 1;
            c = 1;
        } else {
            c += 1;
        }
    }
    text.chars().count()
}

fn loc_of(text: &ExprText, span: datafusion::sql::sqlparser::tokenizer::Span) -> Location {
    text.location_of(char_offset(&text.text, span.start.line, span.start.column))
}

/// Reports a parser error at the position its message names.
fn report_parse_error(text: &ExprText, path: &str, err: &ParserError, rep: &mut Reporter<'_>) {
    let msg = match err {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s.clone(),
        ParserError::RecursionLimitExceeded => "expression is nested too deeply".into(),
    };
    let re = Regex::new(r" at Line: (\d+), Column: (\d+)$").expect("static regex");
    let (message, loc) = match re.captures(&msg) {
        Some(c) => {
            let line = c[1].parse().unwrap_or(0);
            let col = c[2].parse().unwrap_or(0);
            let m = msg[..c.get(0).map_or(msg.len(), |m| m.start())].to_string();
            (m, text.location_of(char_offset(&text.text, line, col)))
        }
        None => (msg.clone(), text.location_of(0)),
    };
    rep.push(
        loc,
        path.to_string(),
        format!("syntax error: {message}"),
        None,
    );
}

fn parser_for(text: &str) -> Result<Parser<'static>, ParserError> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT).try_with_sql(text)
}

/// Reports anything left after a complete expression ("unexpected `x`").
fn expect_end(
    parser: &mut Parser<'_>,
    text: &ExprText,
    path: &str,
    rep: &mut Reporter<'_>,
) -> bool {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        return true;
    }
    rep.push(
        loc_of(text, next.span),
        path.to_string(),
        format!("syntax error: unexpected `{}`", next.token),
        None,
    );
    false
}

fn parse_projection(text: &ExprText, path: &str, rep: &mut Reporter<'_>) -> Option<Vec<ProjItem>> {
    let mut parser = match parser_for(&text.text) {
        Ok(p) => p,
        Err(e) => {
            report_parse_error(text, path, &e, rep);
            return None;
        }
    };
    let items = match parser.parse_projection() {
        Ok(items) => items,
        Err(e) => {
            report_parse_error(text, path, &e, rep);
            return None;
        }
    };
    if !expect_end(&mut parser, text, path, rep) {
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut names: HashSet<String> = HashSet::new();
    for item in items {
        let (expr, name, alias_span) = match item {
            SelectItem::Wildcard(_) => {
                out.push(ProjItem::Star);
                continue;
            }
            SelectItem::QualifiedWildcard(kind, _) => {
                rep.push(
                    loc_of(text, kind.span()),
                    path.to_string(),
                    "qualified `*` is not supported".into(),
                    Some("write `*`".into()),
                );
                continue;
            }
            SelectItem::UnnamedExpr(expr) => {
                let name = match &expr {
                    SqlExpr::Identifier(id) => id.value.clone(),
                    other => other.to_string(),
                };
                (expr, name, None)
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                (expr, alias.value.clone(), Some(alias.span))
            }
            SelectItem::ExprWithAliases { expr, aliases } => {
                rep.push(
                    loc_of(text, expr.span()),
                    path.to_string(),
                    "multiple aliases are not supported".into(),
                    None,
                );
                let name = aliases.first().map(|a| a.value.clone()).unwrap_or_default();
                (expr, name, None)
            }
        };
        if let Some(span) = alias_span
            && METADATA_COLUMNS.contains(&name.as_str())
        {
            rep.push(
                loc_of(text, span),
                path.to_string(),
                format!("`{name}` is a metadata column and cannot be used as an alias"),
                None,
            );
        }
        if !names.insert(name.clone()) {
            rep.push(
                loc_of(text, expr.span()),
                path.to_string(),
                format!("duplicate output column `{name}`"),
                None,
            );
        }
        check_expr(&expr, text, path, rep);
        out.push(ProjItem::Expr {
            expr: Box::new(expr),
            name,
        });
    }
    Some(out)
}

fn parse_filter(text: &ExprText, path: &str, rep: &mut Reporter<'_>) -> Option<SqlExpr> {
    let mut parser = match parser_for(&text.text) {
        Ok(p) => p,
        Err(e) => {
            report_parse_error(text, path, &e, rep);
            return None;
        }
    };
    let expr = match parser.parse_expr() {
        Ok(e) => e,
        Err(e) => {
            report_parse_error(text, path, &e, rep);
            return None;
        }
    };
    if !expect_end(&mut parser, text, path, rep) {
        return None;
    }
    let before = rep.diags.0.len();
    check_expr(&expr, text, path, rep);
    (rep.diags.0.len() == before).then_some(expr)
}

/// The closest candidate to `input`, when it is likely a typo.
pub(crate) fn closest<'b>(
    input: &str,
    candidates: impl IntoIterator<Item = &'b str>,
) -> Option<&'b str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(&input.to_ascii_lowercase(), &c.to_ascii_lowercase());
        if score > 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// Checks function names, arities, metadata columns and unsupported constructs in one expression.
fn check_expr(expr: &SqlExpr, text: &ExprText, path: &str, rep: &mut Reporter<'_>) {
    let _ = visit_expressions(expr, |e| {
        match e {
            SqlExpr::Function(func) => check_function(func, text, path, rep),
            SqlExpr::Identifier(id) => {
                let v = id.value.as_str();
                if id.quote_style.is_none()
                    && v.len() > 4
                    && v.starts_with("__")
                    && v.ends_with("__")
                    && !METADATA_COLUMNS.contains(&v)
                {
                    rep.push(
                        loc_of(text, id.span),
                        path.to_string(),
                        format!("unknown metadata column `{v}`"),
                        closest(v, METADATA_COLUMNS.iter().copied())
                            .map(|c| format!("did you mean `{c}`?")),
                    );
                }
            }
            SqlExpr::CompoundIdentifier(ids) => {
                let name: Vec<_> = ids.iter().map(|i| i.value.as_str()).collect();
                rep.push(
                    loc_of(text, e.span()),
                    path.to_string(),
                    format!(
                        "qualified column `{}` cannot exist in a transform",
                        name.join(".")
                    ),
                    ids.last()
                        .map(|l| format!("write the column name alone: `{}`", l.value)),
                );
            }
            SqlExpr::Subquery(_) | SqlExpr::Exists { .. } | SqlExpr::InSubquery { .. } => {
                rep.push(
                    loc_of(text, e.span()),
                    path.to_string(),
                    "subqueries are not supported in transforms".into(),
                    None,
                );
            }
            SqlExpr::Wildcard(_) | SqlExpr::QualifiedWildcard(..) => {
                rep.push(
                    loc_of(text, e.span()),
                    path.to_string(),
                    "`*` is only allowed as a projection item".into(),
                    None,
                );
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

fn check_function(func: &ast::Function, text: &ExprText, path: &str, rep: &mut Reporter<'_>) {
    let loc = loc_of(text, func.name.span());
    if func.name.0.len() != 1 {
        rep.push(
            loc,
            path.to_string(),
            format!("unknown function `{}`", func.name),
            None,
        );
        return;
    }
    let name = func.name.0[0]
        .as_ident()
        .map(|i| i.value.clone())
        .unwrap_or_else(|| func.name.to_string());
    let Some(spec) = functions::lookup(&name) else {
        rep.push(
            loc,
            path.to_string(),
            format!("unknown function `{name}`"),
            closest(&name, functions::SUPPORTED.iter().map(|s| s.name))
                .map(|c| format!("did you mean `{}`?", c.to_uppercase())),
        );
        return;
    };
    if func.over.is_some() {
        rep.push(
            loc,
            path.to_string(),
            format!("`{name}` cannot be used as a window function"),
            None,
        );
    }
    let argc = match &func.args {
        FunctionArguments::None => 0,
        FunctionArguments::Subquery(_) => {
            rep.push(
                loc,
                path.to_string(),
                "subqueries are not supported in transforms".into(),
                None,
            );
            return;
        }
        FunctionArguments::List(list) => list.args.len(),
    };
    if argc < spec.min_args || argc > spec.max_args {
        let expected = match (spec.min_args, spec.max_args) {
            (a, b) if a == b => format!("{a}"),
            (a, usize::MAX) => format!("at least {a}"),
            (a, b) => format!("{a} to {b}"),
        };
        rep.push(
            loc,
            path.to_string(),
            format!(
                "function `{}` takes {expected} argument(s), got {argc}",
                name.to_uppercase()
            ),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str, line: usize, col: usize) -> ExprText {
        ExprText {
            text: s.to_string(),
            loc: Location { line, column: col },
            char_locs: (0..s.chars().count())
                .map(|i| Location {
                    line,
                    column: col + i,
                })
                .collect(),
        }
    }

    #[test]
    fn char_offsets_follow_lines() {
        assert_eq!(char_offset("ab\ncd", 2, 2), 4);
        assert_eq!(char_offset("abc", 1, 3), 2);
    }

    #[test]
    fn unknown_function_is_reported_at_its_name() {
        let mut diags = Diagnostics::default();
        let mut rep = Reporter {
            file: "p.yaml",
            diags: &mut diags,
        };
        let t = text("id > 1 AND fooo(id) = 2", 7, 13);
        assert!(parse_filter(&t, "transform[0].filter", &mut rep).is_none());
        assert_eq!(diags.0.len(), 1, "exactly one problem: {diags}");
        assert_eq!(
            diags.0[0].loc,
            Location {
                line: 7,
                column: 13 + 11
            },
            "position of `fooo`"
        );
    }
}
