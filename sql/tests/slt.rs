//! Runner for the transform/route golden files in `tests/slt/*.slt`.
//!
//! Each file holds independent cases. A case declares rules and input events, and an `expect`
//! block with the output events as text. Run with `CDCFLOW_SLT_COMPLETE=1` to rewrite every
//! `expect` block from the actual output (then review the diff).
//!
//! ```text
//! case <name>
//! option local-time-zone: Asia/Shanghai        (also: route-mode: FIRST_MATCH)
//! transform <source-table selector>
//!   projection: <expr list>                    (keys indented by two spaces)
//!   filter: <expr>
//! route <source pattern> -> <sink table> [replace <symbol>]
//! table <db.table> (<col> <TYPE> [NOT NULL], ...) [pk <a,b>]       → CreateTable
//! alter <db.table> (<columns>) [pk <a,b>] [rename <a>-><b>]        → SchemaChange
//! data <db.table>
//!   +I 1 | 'alice' | NULL                      (ops +I -U +U -D; `+I@<ms>` sets op_ts)
//! expect
//! <rendered output, one line per event or row; ends at a blank line>
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Int8Array, Int64Array, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use cdcflow_engine::change::ColumnPosition;
use cdcflow_engine::component::Transform;
use cdcflow_engine::config::{
    ExprText, Location, PipelineOptions, RouteDef, RouteMode, Spanned, TransformDef,
};
use cdcflow_engine::error::ErrorChain;
use cdcflow_engine::{
    CdcType, ChangeBatch, ChangeEvent, ColumnDef, Op, SchemaChange, TableId, TableSchema,
    TableSchemaRef,
};
use cdcflow_sql::schema_util::diff;
use cdcflow_sql::selector::parse_table_id;

/// One input the case feeds to the transform.
enum Input {
    Table {
        id: TableId,
        columns: Vec<ColumnDef>,
        pk: Vec<String>,
    },
    Alter {
        id: TableId,
        columns: Vec<ColumnDef>,
        pk: Vec<String>,
        renames: Vec<(String, String)>,
    },
    Data {
        id: TableId,
        rows: Vec<(Op, i64, Vec<String>)>,
    },
}

#[derive(Default)]
struct Case {
    name: String,
    pipeline: PipelineOptions,
    transforms: Vec<TransformDef>,
    routes: Vec<RouteDef>,
    inputs: Vec<Input>,
    expected: Vec<String>,
    /// Line range (0-based, end exclusive) of the `expect` block including its header.
    expect_range: Option<(usize, usize)>,
    /// Last line of the case (0-based, exclusive), for appending a missing `expect`.
    end: usize,
}

fn loc(line: usize, column: usize) -> Location {
    Location { line, column }
}

fn expr_text(text: &str, line: usize, column: usize) -> ExprText {
    ExprText {
        text: text.to_string(),
        loc: loc(line, column),
        char_locs: (0..text.chars().count())
            .map(|i| loc(line, column + i))
            .collect(),
    }
}

fn parse_type(t: &str) -> Result<CdcType, String> {
    let t = t.trim().to_ascii_uppercase();
    let (name, args) = match t.split_once('(') {
        Some((n, rest)) => (
            n.trim().to_string(),
            rest.trim_end_matches(')')
                .split(',')
                .map(|a| a.trim().parse::<u32>().map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => (t.clone(), Vec::new()),
    };
    let a = |i: usize, d: u32| args.get(i).copied().unwrap_or(d);
    Ok(match name.as_str() {
        "BOOLEAN" => CdcType::Boolean,
        "TINYINT" => CdcType::TinyInt,
        "SMALLINT" => CdcType::SmallInt,
        "INT" => CdcType::Int,
        "BIGINT" => CdcType::BigInt,
        "FLOAT" => CdcType::Float,
        "DOUBLE" => CdcType::Double,
        "DECIMAL" => CdcType::Decimal {
            precision: a(0, 10) as u8,
            scale: a(1, 0) as u8,
        },
        "CHAR" => CdcType::Char { length: a(0, 1) },
        "VARCHAR" => CdcType::Varchar { length: a(0, 255) },
        "STRING" => CdcType::String,
        "BYTES" => CdcType::Bytes,
        "DATE" => CdcType::Date,
        "TIME" => CdcType::Time {
            precision: a(0, 0) as u8,
        },
        "TIMESTAMP" => CdcType::Timestamp {
            precision: a(0, 6) as u8,
        },
        "TIMESTAMP_LTZ" => CdcType::TimestampLtz {
            precision: a(0, 6) as u8,
        },
        other => return Err(format!("unknown type {other}")),
    })
}

/// Splits on commas outside parentheses.
fn split_top(s: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().expect("non-empty").push(c);
    }
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A parsed `table` / `alter` line: id, columns, key, renames.
type TableDecl = (TableId, Vec<ColumnDef>, Vec<String>, Vec<(String, String)>);

/// `db.t (a INT NOT NULL, b STRING) pk a rename x->y`
fn parse_table_decl(rest: &str) -> Result<TableDecl, String> {
    let open = rest.find('(').ok_or("missing column list")?;
    let close = rest.rfind(')').ok_or("missing `)`")?;
    let id = parse_table_id(rest[..open].trim());
    let mut columns = Vec::new();
    for col in split_top(&rest[open + 1..close]) {
        let (name, ty) = col
            .split_once(' ')
            .ok_or_else(|| format!("bad column `{col}`"))?;
        let not_null = ty.to_ascii_uppercase().ends_with("NOT NULL");
        let ty = if not_null {
            &ty[..ty.len() - "NOT NULL".len()]
        } else {
            ty
        };
        let data_type = parse_type(ty)?;
        columns.push(ColumnDef {
            name: name.to_string(),
            source_type: data_type.sql_name().to_lowercase(),
            data_type,
            nullable: !not_null,
            default: None,
            comment: None,
        });
    }
    let mut pk = Vec::new();
    let mut renames = Vec::new();
    let tail: Vec<&str> = rest[close + 1..].split_whitespace().collect();
    let mut i = 0;
    while i < tail.len() {
        match tail[i] {
            "pk" => {
                pk = tail
                    .get(i + 1)
                    .map(|s| s.split(',').map(str::to_string).collect())
                    .unwrap_or_default();
                i += 2;
            }
            "rename" => {
                if let Some((a, b)) = tail.get(i + 1).and_then(|s| s.split_once("->")) {
                    renames.push((a.to_string(), b.to_string()));
                }
                i += 2;
            }
            other => return Err(format!("unexpected `{other}`")),
        }
    }
    Ok((id, columns, pk, renames))
}

fn parse_file(path: &Path, text: &str) -> Result<Vec<Case>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cases: Vec<Case> = Vec::new();
    let mut i = 0;
    let file = path.display().to_string();
    while i < lines.len() {
        let line = lines[i];
        let lineno = i + 1;
        let err = |m: String| format!("{file}:{lineno}: {m}");
        if line.trim().is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        if let Some(name) = line.strip_prefix("case ") {
            if let Some(c) = cases.last_mut() {
                c.end = i;
            }
            cases.push(Case {
                name: name.trim().to_string(),
                ..Default::default()
            });
            i += 1;
            continue;
        }
        let case = cases
            .last_mut()
            .ok_or_else(|| err("directive before the first `case`".into()))?;
        if let Some(opt) = line.strip_prefix("option ") {
            let (k, v) = opt
                .split_once(':')
                .ok_or_else(|| err("expected `option key: value`".into()))?;
            match k.trim() {
                "local-time-zone" => case.pipeline.local_time_zone = Some(v.trim().to_string()),
                "route-mode" => {
                    case.pipeline.route_mode = if v.trim().eq_ignore_ascii_case("FIRST_MATCH") {
                        RouteMode::FirstMatch
                    } else {
                        RouteMode::AllMatch
                    }
                }
                other => return Err(err(format!("unknown option {other}"))),
            }
            i += 1;
        } else if let Some(sel) = line.strip_prefix("transform ") {
            let mut def = TransformDef {
                loc: loc(lineno, 1),
                source_table: Spanned::new(sel.trim().to_string(), loc(lineno, 11)),
                projection: None,
                filter: None,
                primary_keys: None,
                partition_keys: None,
                table_options: None,
                table_options_delimiter: None,
                converter_after_transform: None,
                description: None,
            };
            i += 1;
            while i < lines.len() && lines[i].starts_with("  ") {
                let l = lines[i];
                let (k, v) = l
                    .trim_start()
                    .split_once(':')
                    .ok_or_else(|| format!("{file}:{}: expected `key: value`", i + 1))?;
                let value = v.trim_start();
                let col = l.len() - value.len() + 1;
                let value = value.trim_end();
                let sp = Spanned::new(value.to_string(), loc(i + 1, col));
                match k {
                    // The YAML loader replaces `\*` by `*` (a plain scalar cannot start with `*`).
                    "projection" => {
                        def.projection = Some(expr_text(&value.replace("\\*", "*"), i + 1, col))
                    }
                    "filter" => def.filter = Some(expr_text(value, i + 1, col)),
                    "primary-keys" => def.primary_keys = Some(sp),
                    "partition-keys" => def.partition_keys = Some(sp),
                    "table-options" => def.table_options = Some(sp),
                    "converter-after-transform" => def.converter_after_transform = Some(sp),
                    other => {
                        return Err(format!("{file}:{}: unknown transform key {other}", i + 1));
                    }
                }
                i += 1;
            }
            case.transforms.push(def);
        } else if let Some(r) = line.strip_prefix("route ") {
            let (src, rest) = r
                .split_once(" -> ")
                .ok_or_else(|| err("expected `route <src> -> <sink>`".into()))?;
            let (sink, sym) = match rest.split_once(" replace ") {
                Some((s, sym)) => (s.trim(), Some(sym.trim())),
                None => (rest.trim(), None),
            };
            case.routes.push(RouteDef {
                loc: loc(lineno, 1),
                source_table: Spanned::new(src.trim().to_string(), loc(lineno, 7)),
                sink_table: Spanned::new(sink.to_string(), loc(lineno, 1)),
                replace_symbol: sym.map(|s| Spanned::new(s.to_string(), loc(lineno, 1))),
                description: None,
            });
            i += 1;
        } else if let Some(rest) = line.strip_prefix("table ") {
            let (id, columns, pk, _) = parse_table_decl(rest).map_err(err)?;
            case.inputs.push(Input::Table { id, columns, pk });
            i += 1;
        } else if let Some(rest) = line.strip_prefix("alter ") {
            let (id, columns, pk, renames) = parse_table_decl(rest).map_err(err)?;
            case.inputs.push(Input::Alter {
                id,
                columns,
                pk,
                renames,
            });
            i += 1;
        } else if let Some(rest) = line.strip_prefix("data ") {
            let id = parse_table_id(rest.trim());
            let mut rows = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].starts_with("  ") {
                let l = lines[i].trim();
                let (head, vals) = l.split_once(' ').unwrap_or((l, ""));
                let (op, ts) = match head.split_once('@') {
                    Some((o, t)) => (
                        o,
                        t.parse::<i64>()
                            .map_err(|e| format!("{file}:{}: {e}", i + 1))?,
                    ),
                    None => (head, 0),
                };
                let op = match op {
                    "+I" => Op::Insert,
                    "-U" => Op::UpdateBefore,
                    "+U" => Op::UpdateAfter,
                    "-D" => Op::Delete,
                    other => return Err(format!("{file}:{}: unknown op {other}", i + 1)),
                };
                let values = if vals.trim().is_empty() {
                    Vec::new()
                } else {
                    vals.split('|').map(|v| v.trim().to_string()).collect()
                };
                rows.push((op, ts, values));
                i += 1;
            }
            case.inputs.push(Input::Data { id, rows });
        } else if line.trim() == "expect" {
            let start = i;
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                case.expected.push(lines[i].to_string());
                i += 1;
            }
            case.expect_range = Some((start, i));
        } else {
            return Err(err(format!("unknown directive `{line}`")));
        }
    }
    if let Some(c) = cases.last_mut() {
        c.end = lines.len();
    }
    Ok(cases)
}

fn render_cols(s: &TableSchema) -> String {
    let cols: Vec<String> = s.columns.iter().map(render_col).collect();
    let mut out = format!("({})", cols.join(", "));
    if !s.primary_key.is_empty() {
        write!(out, " pk {}", s.primary_key.join(",")).ok();
    }
    out
}

fn render_col(c: &ColumnDef) -> String {
    format!(
        "{} {}{}",
        c.name,
        c.data_type.sql_name(),
        if c.nullable { "" } else { " NOT NULL" }
    )
}

fn render_change(c: &SchemaChange) -> String {
    match c {
        SchemaChange::AddColumn { columns } => {
            let parts: Vec<String> = columns
                .iter()
                .map(|(c, p)| {
                    let pos = match p {
                        ColumnPosition::First => "first".to_string(),
                        ColumnPosition::Last => "last".to_string(),
                        ColumnPosition::Before(x) => format!("before {x}"),
                        ColumnPosition::After(x) => format!("after {x}"),
                    };
                    format!("{} {pos}", render_col(c))
                })
                .collect();
            format!("add {}", parts.join(", "))
        }
        SchemaChange::DropColumn { columns } => format!("drop {}", columns.join(", ")),
        SchemaChange::RenameColumn { renames } => {
            let r: Vec<String> = renames.iter().map(|(a, b)| format!("{a}->{b}")).collect();
            format!("rename {}", r.join(", "))
        }
        SchemaChange::AlterColumnType { column } => format!("alter {}", render_col(column)),
        SchemaChange::TruncateTable => "truncate".into(),
        SchemaChange::DropTable => "drop_table".into(),
        SchemaChange::AlterTableComment { comment } => format!("comment {comment:?}"),
    }
}

fn render_batch(b: &ChangeBatch, out: &mut Vec<String>) {
    let opts = FormatOptions::default().with_null("NULL");
    let rb = &b.data;
    let n_user = rb.num_columns() - 2;
    let fmts: Vec<ArrayFormatter<'_>> = (0..n_user)
        .map(|i| ArrayFormatter::try_new(rb.column(i).as_ref(), &opts).expect("displayable column"))
        .collect();
    for row in 0..rb.num_rows() {
        let op = Op::from_i8(b.ops().value(row))
            .map(Op::short_name)
            .unwrap_or("??");
        let vals: Vec<String> = fmts.iter().map(|f| f.value(row).to_string()).collect();
        out.push(
            format!("{} {op} {}", b.table.id, vals.join(" | "))
                .trim_end()
                .to_string(),
        );
    }
}

fn build_batch(
    schema: &TableSchemaRef,
    rows: &[(Op, i64, Vec<String>)],
    seq: u64,
) -> Result<ChangeBatch, String> {
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (ci, c) in schema.columns.iter().enumerate() {
        let texts: Vec<Option<String>> = rows
            .iter()
            .map(|(_, _, v)| {
                let t = v.get(ci).map(String::as_str).unwrap_or("NULL");
                if t == "NULL" {
                    None
                } else {
                    Some(
                        t.strip_prefix('\'')
                            .and_then(|t| t.strip_suffix('\''))
                            .unwrap_or(t)
                            .to_string(),
                    )
                }
            })
            .collect();
        let s: ArrayRef = Arc::new(StringArray::from(texts));
        let arr =
            cast(&s, &c.data_type.arrow_type()).map_err(|e| format!("column {}: {e}", c.name))?;
        cols.push(arr);
    }
    cols.push(Arc::new(Int8Array::from(
        rows.iter().map(|r| r.0 as i8).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(Int64Array::from(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
    )));
    let data = RecordBatch::try_new(Arc::clone(&schema.arrow), cols).map_err(|e| e.to_string())?;
    Ok(ChangeBatch {
        table: Arc::clone(schema),
        data,
        seq,
        offset: None,
    })
}

fn run_case(case: &Case, file: &str) -> Vec<String> {
    let compiled = match cdcflow_sql::compile(&case.transforms, &case.routes, &case.pipeline, file)
    {
        Ok(c) => c,
        Err(diags) => return diags.0.iter().map(|d| format!("error: {d}")).collect(),
    };
    let mut t = compiled.sql_transform();
    let mut schemas: std::collections::HashMap<TableId, TableSchemaRef> = Default::default();
    let mut out_lines = Vec::new();
    let mut seq = 0u64;
    for input in &case.inputs {
        seq += 1;
        let event = match input {
            Input::Table { id, columns, pk } => {
                let s = Arc::new(TableSchema::new(
                    id.clone(),
                    columns.clone(),
                    pk.clone(),
                    None,
                    1,
                ));
                schemas.insert(id.clone(), Arc::clone(&s));
                ChangeEvent::CreateTable(s)
            }
            Input::Alter {
                id,
                columns,
                pk,
                renames,
            } => {
                let Some(old) = schemas.get(id).cloned() else {
                    out_lines.push(format!("harness error: alter of unknown table {id}"));
                    continue;
                };
                let s = Arc::new(TableSchema::new(
                    id.clone(),
                    columns.clone(),
                    pk.clone(),
                    None,
                    old.version + 1,
                ));
                let change = diff(&old, &s, renames)
                    .into_iter()
                    .next()
                    .unwrap_or(SchemaChange::AlterTableComment { comment: None });
                schemas.insert(id.clone(), Arc::clone(&s));
                ChangeEvent::SchemaChange {
                    table: id.clone(),
                    change,
                    schema: s,
                    seq,
                }
            }
            Input::Data { id, rows } => {
                let Some(s) = schemas.get(id) else {
                    out_lines.push(format!("harness error: data for unknown table {id}"));
                    continue;
                };
                match build_batch(s, rows, seq) {
                    Ok(b) => ChangeEvent::Data(b),
                    Err(e) => {
                        out_lines.push(format!("harness error: {e}"));
                        continue;
                    }
                }
            }
        };
        let mut out = Vec::new();
        if let Err(e) = t.apply(event, &mut out) {
            out_lines.push(format!("runtime error: {}", ErrorChain(&e)));
            continue;
        }
        for ev in out {
            match ev {
                ChangeEvent::CreateTable(s) => {
                    out_lines.push(format!("create {} {}", s.id, render_cols(&s)))
                }
                ChangeEvent::SchemaChange {
                    table,
                    change,
                    schema,
                    ..
                } => out_lines.push(format!(
                    "change {table} {} => {}",
                    render_change(&change),
                    render_cols(&schema)
                )),
                ChangeEvent::Data(b) => render_batch(&b, &mut out_lines),
                ChangeEvent::Progress { seq, .. } => out_lines.push(format!("progress {seq}")),
                ChangeEvent::End => out_lines.push("end".into()),
            }
        }
    }
    out_lines
}

/// Multi-line messages become several lines, so an `expect` block stays line-oriented.
fn split_lines(lines: Vec<String>) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| l.lines().map(|p| p.trim_end().to_string()))
        .filter(|l| !l.is_empty())
        .collect()
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

#[test]
fn slt_golden_files() {
    let complete = std::env::var_os("CDCFLOW_SLT_COMPLETE").is_some();
    let mut failures = Vec::new();
    let mut total = 0;
    for path in slt_files() {
        let text = std::fs::read_to_string(&path).expect("readable slt file");
        let cases = match parse_file(&path, &text) {
            Ok(c) => c,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let file_name = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut rewrites: Vec<((usize, usize), Vec<String>)> = Vec::new();
        for case in &cases {
            total += 1;
            let actual = split_lines(run_case(case, &file_name));
            if complete {
                let mut block = vec!["expect".to_string()];
                block.extend(actual.iter().cloned());
                let range = case.expect_range.unwrap_or((case.end, case.end));
                rewrites.push((range, block));
            } else if actual != case.expected {
                failures.push(format!(
                    "{}: case `{}`\n--- expected\n{}\n--- actual\n{}\n",
                    path.display(),
                    case.name,
                    case.expected.join("\n"),
                    actual.join("\n")
                ));
            }
        }
        if complete {
            let lines: Vec<&str> = text.lines().collect();
            let mut out: Vec<String> = Vec::new();
            let mut pos = 0;
            for ((start, end), block) in rewrites {
                while pos < start {
                    out.push(lines[pos].to_string());
                    pos += 1;
                }
                // A case without an `expect` block gets one, separated by a blank line.
                if start == end && out.last().is_some_and(|l| !l.trim().is_empty()) {
                    out.push(String::new());
                }
                out.extend(block);
                if start == end && lines.get(end).is_some_and(|l| !l.trim().is_empty()) {
                    out.push(String::new());
                }
                pos = end;
            }
            while pos < lines.len() {
                out.push(lines[pos].to_string());
                pos += 1;
            }
            let mut s = out.join("\n");
            s.push('\n');
            std::fs::write(&path, s).expect("rewrite slt file");
        }
    }
    assert!(total > 0, "no slt cases found");
    assert!(
        failures.is_empty(),
        "{} of {total} slt cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
