//! YAML → [`PipelineDef`], keeping the line and column of every key, value and character.
//!
//! ```text
//!  text ──saphyr events──▶ positioned tree (Node) ──${ENV}──▶ blocks: source / sink / transform / route / pipeline
//! ```
//!
//! The tree is built from saphyr-parser's event stream, whose spans give every scalar's start and
//! end; each character of a value is then aligned with the source text, so an error at an offset
//! inside a value (a SQL expression, the third table selector) maps back to a file column. Every
//! problem is collected; the load fails only at the end, with all of them.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::{
    ComponentDef, Diagnostic, Diagnostics, ExprText, Location, OptionValue, PipelineDef, RouteDef,
    SchemaChangeBehavior, Spanned, TransformDef, did_you_mean, pipeline,
};

/// Loads and checks a pipeline file; `${VAR}` references are resolved from the process environment.
///
/// # Errors
/// Every problem found (syntax, unknown keys, bad `pipeline:` options, unset variables), each with
/// file, line, column and key path.
pub fn load(path: &Path) -> Result<PipelineDef, Diagnostics> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => load_str(&text, &file),
        Err(e) => Err(Diagnostics(vec![Diagnostic {
            file,
            loc: Location { line: 1, column: 1 },
            path: String::new(),
            message: format!("cannot read the pipeline file: {e}"),
            hint: None,
        }])),
    }
}

/// Loads a pipeline from text; `file` is only used to name the source in diagnostics.
///
/// # Errors
/// As [`load`].
pub fn load_str(text: &str, file: &str) -> Result<PipelineDef, Diagnostics> {
    load_str_with_env(text, file, &|name| std::env::var(name).ok())
}

/// Loads a pipeline from text, resolving `${VAR}` with `env` (lets tests avoid the process
/// environment, which is unsafe to mutate in edition 2024).
///
/// # Errors
/// As [`load`].
pub fn load_str_with_env(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PipelineDef, Diagnostics> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut cx = Ctx {
        file: file.to_string(),
        diags: Diagnostics::default(),
        env,
    };
    let root = build_tree(text, &mut cx);
    let def = root.and_then(|root| pipeline_def(&root, &mut cx));
    match def {
        Some(def) if cx.diags.is_empty() => {
            for ignored in &def.pipeline.ignored {
                tracing::warn!(
                    file = %def.file,
                    location = %ignored.loc,
                    option = %ignored.value,
                    "Flink-only pipeline option has no effect in cdcflow and is ignored."
                );
            }
            Ok(def)
        }
        _ => Err(cx.diags),
    }
}

/// State shared while loading: the file name, the problems found so far, and the environment.
pub(super) struct Ctx<'e> {
    /// File name for diagnostics.
    pub(super) file: String,
    /// Problems found so far.
    pub(super) diags: Diagnostics,
    /// `${VAR}` lookup.
    env: &'e dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    /// Records one problem.
    pub(super) fn error(
        &mut self,
        loc: Location,
        path: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let d = Diagnostic {
            file: self.file.clone(),
            loc,
            path: path.into(),
            message: message.into(),
            hint,
        };
        self.diags.push(d);
    }
}

/// A YAML node with its position.
#[derive(Debug, Clone)]
pub(super) struct Node {
    /// What the node holds.
    pub(super) kind: Kind,
    /// Where it starts (the opening quote for quoted scalars).
    pub(super) loc: Location,
}

/// The three YAML node shapes.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// A scalar, with the location of each of its characters.
    Scalar {
        /// The value (after `${VAR}` substitution for values; keys are never substituted).
        value: String,
        /// Location of each char of `value`.
        char_locs: Vec<Location>,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order (keys are nodes so that their positions survive).
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Short description of the node's shape, for "expected X, got Y" messages.
    pub(super) fn shape(&self) -> &'static str {
        match self.kind {
            Kind::Scalar { .. } => "a single value",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// The scalar's text, if this is a scalar.
    pub(super) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }
}

/// A container being filled while events stream in.
enum Frame {
    Seq {
        items: Vec<Node>,
        loc: Location,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        loc: Location,
        anchor: usize,
    },
}

/// Location (1-based line and column) of every char index of the text, plus one past the end.
fn char_table(text: &str) -> Vec<Location> {
    let mut out = Vec::with_capacity(text.len() + 1);
    let (mut line, mut column) = (1, 1);
    for c in text.chars() {
        out.push(Location { line, column });
        if c == '\n' {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    out.push(Location { line, column });
    out
}

/// Parses `text` into a positioned tree; `None` (with a diagnostic) on a syntax error.
fn build_tree(text: &str, cx: &mut Ctx<'_>) -> Option<Node> {
    let chars: Vec<char> = text.chars().collect();
    let locs = char_table(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut documents = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = match event {
            Ok(e) => e,
            Err(e) => {
                let m = e.marker();
                let loc = Location {
                    line: m.line(),
                    column: m.col() + 1,
                };
                cx.error(loc, "", format!("invalid YAML: {}", e.info()), None);
                return None;
            }
        };
        let start = Location {
            line: span.start.line(),
            column: span.start.col() + 1,
        };
        let done: Option<(Node, usize)> = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    cx.error(
                        start,
                        "",
                        "a pipeline file must hold a single YAML document",
                        None,
                    );
                    return None;
                }
                None
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    loc: start,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    key: None,
                    loc: start,
                    anchor,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Frame::Seq { items, loc, anchor }) => Some((
                    Node {
                        kind: Kind::Seq(items),
                        loc,
                    },
                    anchor,
                )),
                Some(Frame::Map {
                    entries,
                    loc,
                    anchor,
                    ..
                }) => Some((
                    Node {
                        kind: Kind::Map(entries),
                        loc,
                    },
                    anchor,
                )),
                None => None,
            },
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => Some((n.clone(), 0)),
                None => {
                    cx.error(start, "", "alias refers to an unknown anchor", None);
                    return None;
                }
            },
            Event::Scalar(value, style, anchor, _) => {
                let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                let char_locs = align(
                    &value,
                    style,
                    &chars,
                    &locs,
                    span.start.index(),
                    span.end.index(),
                );
                let is_null = style == ScalarStyle::Plain
                    && matches!(&*value, "~" | "null" | "Null" | "NULL");
                let (value, char_locs) = if is_key {
                    (value.into_owned(), char_locs)
                } else if is_null {
                    // A YAML null (`key:`, `key: ~`) is an empty value, as a string map reads it.
                    (String::new(), Vec::new())
                } else {
                    substitute_env(&value, char_locs, cx)
                };
                Some((
                    Node {
                        kind: Kind::Scalar { value, char_locs },
                        loc: start,
                    },
                    anchor,
                ))
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        if let Some((node, anchor)) = done {
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
    if root.is_none() {
        cx.error(
            Location { line: 1, column: 1 },
            "",
            "the pipeline file is empty",
            Some("a pipeline needs at least a `source` and a `sink` block".into()),
        );
    }
    root
}

/// Maps each char of a parsed scalar to its location in the file: exact for plain and single-line
/// quoted scalars, best effort (line folding, escapes, block indentation) otherwise.
fn align(
    value: &str,
    style: ScalarStyle,
    src: &[char],
    locs: &[Location],
    start: usize,
    end: usize,
) -> Vec<Location> {
    let end = end.min(src.len());
    let (mut p, end) = match style {
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => {
            (start + 1, end.saturating_sub(1).max(start + 1))
        }
        _ => (start, end),
    };
    let at = |i: usize| locs.get(i).copied().unwrap_or_default();
    let mut out = Vec::with_capacity(value.len());
    for c in value.chars() {
        if p >= end {
            out.push(at(end.saturating_sub(1).max(start)));
            continue;
        }
        if style == ScalarStyle::DoubleQuoted && src[p] == '\\' {
            // An escaped line break produces nothing: skip it and the next line's indentation.
            while p < end && src[p] == '\\' && matches!(src.get(p + 1), Some('\n' | '\r')) {
                p += 1;
                while p < end && matches!(src[p], '\n' | '\r' | ' ' | '\t') {
                    p += 1;
                }
            }
            if p < end && src[p] == '\\' {
                out.push(at(p));
                p += match src.get(p + 1) {
                    Some('x') => 4,
                    Some('u') => 6,
                    Some('U') => 10,
                    _ => 2,
                };
                continue;
            }
        }
        if style == ScalarStyle::SingleQuoted
            && c == '\''
            && src[p] == '\''
            && src.get(p + 1) == Some(&'\'')
        {
            out.push(at(p));
            p += 2;
            continue;
        }
        if p < end && src[p] == c {
            out.push(at(p));
            p += 1;
            continue;
        }
        // Folded line breaks and indentation: skip source whitespace until the char shows up.
        let first = p;
        let mut q = p;
        while q < end && src[q] != c && matches!(src[q], ' ' | '\t' | '\n' | '\r') {
            q += 1;
        }
        if q < end && src[q] == c {
            out.push(at(q));
            p = q + 1;
        } else {
            out.push(at(first));
        }
    }
    out
}

/// Replaces `${VAR}` and `${VAR:-default}` in a value (`$${` is a literal `${`); unset variables
/// without a default are reported at the `$`.
fn substitute_env(value: &str, locs: Vec<Location>, cx: &mut Ctx<'_>) -> (String, Vec<Location>) {
    if !value.contains("${") {
        return (value.to_string(), locs);
    }
    let chars: Vec<char> = value.chars().collect();
    let loc_at = |i: usize| locs.get(i).or(locs.last()).copied().unwrap_or_default();
    let (mut out, mut out_locs) = (
        String::with_capacity(value.len()),
        Vec::with_capacity(locs.len()),
    );
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
            out.push('$');
            out_locs.push(loc_at(i));
            i += 2;
            continue;
        }
        if chars[i] != '$' || chars.get(i + 1) != Some(&'{') {
            out.push(chars[i]);
            out_locs.push(loc_at(i));
            i += 1;
            continue;
        }
        let dollar = loc_at(i);
        let Some(close) = chars[i + 2..]
            .iter()
            .position(|c| *c == '}')
            .map(|p| p + i + 2)
        else {
            cx.error(
                dollar,
                "",
                "unterminated `${` in value",
                Some("write `${NAME}`, or `$${` for a literal `${`".into()),
            );
            out.extend(&chars[i..]);
            out_locs.extend((i..chars.len()).map(loc_at));
            break;
        };
        let inner: String = chars[i + 2..close].iter().collect();
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner.as_str(), None),
        };
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let replacement = if !valid {
            cx.error(
                dollar,
                "",
                format!("invalid environment variable name `{name}`"),
                Some("names are letters, digits and `_`, e.g. `${MYSQL_PASSWORD}`".into()),
            );
            String::new()
        } else {
            match ((cx.env)(name), default) {
                (Some(v), _) => v,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    cx.error(
                        dollar,
                        "",
                        format!("environment variable `{name}` is not set"),
                        Some(format!("set it, or give a default: `${{{name}:-value}}`")),
                    );
                    String::new()
                }
            }
        };
        out_locs.extend(std::iter::repeat_n(dollar, replacement.chars().count()));
        out.push_str(&replacement);
        i = close + 1;
    }
    (out, out_locs)
}

/// The entries of a mapping node as (key, key location, value); reports non-scalar and duplicate
/// keys. `path` names the mapping (`source`, `transform[1]`); `""` for the root.
pub(super) fn entries<'n>(
    node: &'n Node,
    path: &str,
    cx: &mut Ctx<'_>,
) -> Vec<(String, Location, &'n Node)> {
    let Kind::Map(map) = &node.kind else {
        return Vec::new();
    };
    let mut seen: HashMap<String, Location> = HashMap::new();
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            cx.error(
                k.loc,
                path,
                format!("keys must be plain names, got {}", k.shape()),
                None,
            );
            continue;
        };
        let full = join(path, key);
        if let Some(first) = seen.get(key) {
            cx.error(
                k.loc,
                full,
                format!("duplicate key `{key}` (first set at {first})"),
                None,
            );
            continue;
        }
        seen.insert(key.to_string(), k.loc);
        out.push((key.to_string(), k.loc, v));
    }
    out
}

/// `a.b` key path, or `b` at the root.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A scalar value with positions, or a diagnostic naming `path` when the node is a list or map.
pub(super) fn scalar(node: &Node, path: &str, cx: &mut Ctx<'_>) -> Option<(String, Vec<Location>)> {
    match &node.kind {
        Kind::Scalar { value, char_locs } => Some((value.clone(), char_locs.clone())),
        _ => {
            cx.error(
                node.loc,
                path,
                format!("expected a single value, got {}", node.shape()),
                None,
            );
            None
        }
    }
}

/// A scalar value as a [`Spanned`] string.
pub(super) fn spanned(node: &Node, path: &str, cx: &mut Ctx<'_>) -> Option<Spanned<String>> {
    scalar(node, path, cx).map(|(v, _)| Spanned::new(v, node.loc))
}

/// Reports `key` as unknown in a mapping whose known keys are `known`, with a did-you-mean hint.
pub(super) fn unknown_key(
    key: &str,
    loc: Location,
    path: &str,
    what: &str,
    known: &[&str],
    cx: &mut Ctx<'_>,
) {
    let hint = match did_you_mean(key, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("expected one of: {}", known.join(", ")),
    };
    cx.error(
        loc,
        join(path, key),
        format!("unknown key `{key}` in {what}"),
        Some(hint),
    );
}

/// The top-level blocks Flink CDC's parser accepts.
const TOP_LEVEL: &[&str] = &["source", "sink", "transform", "route", "pipeline"];

/// Walks the root mapping into a [`PipelineDef`]; `None` when a required block is unusable.
fn pipeline_def(root: &Node, cx: &mut Ctx<'_>) -> Option<PipelineDef> {
    if !matches!(root.kind, Kind::Map(_)) {
        cx.error(
            root.loc,
            "",
            format!(
                "expected a mapping of blocks ({}), got {}",
                TOP_LEVEL.join(", "),
                root.shape()
            ),
            None,
        );
        return None;
    }
    let mut blocks: BTreeMap<&str, (Location, &Node)> = BTreeMap::new();
    for (key, loc, value) in entries(root, "", cx) {
        match TOP_LEVEL.iter().find(|k| **k == key) {
            // An empty optional block (`transform:` with nothing under it) is the same as none.
            Some(k)
                if matches!(*k, "transform" | "route" | "pipeline")
                    && value.as_str() == Some("") => {}
            Some(k) => {
                blocks.insert(k, (loc, value));
            }
            None => {
                let hint = match did_you_mean(&key, TOP_LEVEL.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", TOP_LEVEL.join(", ")),
                };
                cx.error(
                    loc,
                    key.clone(),
                    format!("unknown top-level block `{key}`"),
                    Some(hint),
                );
            }
        }
    }
    let top = Location { line: 1, column: 1 };
    let component = |name: &str, cx: &mut Ctx<'_>| match blocks.get(name) {
        Some((loc, node)) => component_def(name, *loc, node, cx),
        None => {
            cx.error(top, name, format!("missing required block `{name}`"), None);
            None
        }
    };
    let source = component("source", cx);
    let sink = component("sink", cx);
    let transforms = blocks
        .get("transform")
        .map(|(_, n)| transforms(n, cx))
        .unwrap_or_default();
    let routes = blocks
        .get("route")
        .map(|(_, n)| routes(n, cx))
        .unwrap_or_default();
    let pipeline = match blocks.get("pipeline") {
        Some((_, n)) => pipeline::pipeline_options(n, cx),
        None => super::PipelineOptions::default(),
    };
    let (source, mut sink) = (source?, sink?);
    if pipeline.schema_change_behavior == SchemaChangeBehavior::Lenient
        && sink.exclude_schema_changes.is_none()
    {
        sink.exclude_schema_changes = Some(vec![
            Spanned::new("drop.table".to_string(), sink.loc),
            Spanned::new("truncate.table".to_string(), sink.loc),
        ]);
    }
    Some(PipelineDef {
        file: cx.file.clone(),
        source,
        sink,
        transforms,
        routes,
        pipeline,
    })
}

/// A `source:` / `sink:` block: `type`, `name`, stringified options, and (sink) schema-change tags.
fn component_def(
    path: &str,
    key_loc: Location,
    node: &Node,
    cx: &mut Ctx<'_>,
) -> Option<ComponentDef> {
    if !matches!(node.kind, Kind::Map(_)) {
        cx.error(
            node.loc,
            path,
            format!("expected a mapping of options, got {}", node.shape()),
            None,
        );
        return None;
    }
    let (mut kind, mut name) = (None, None);
    let (mut include, mut exclude) = (None, None);
    let mut options = BTreeMap::new();
    for (key, loc, value) in entries(node, path, cx) {
        let full = join(path, &key);
        match key.as_str() {
            "type" => kind = spanned(value, &full, cx),
            "name" => name = spanned(value, &full, cx),
            "include.schema.changes" | "exclude.schema.changes" if path == "sink" => {
                let tags = pipeline::schema_change_tags(value, &full, cx);
                if key.starts_with("include") {
                    include = Some(tags)
                } else {
                    exclude = Some(tags)
                }
            }
            _ => {
                if let Some((v, char_locs)) = scalar(value, &full, cx) {
                    options.insert(
                        key,
                        OptionValue {
                            value: v,
                            key_loc: loc,
                            value_loc: value.loc,
                            char_locs,
                        },
                    );
                }
            }
        }
    }
    let Some(kind) = kind else {
        cx.error(
            key_loc,
            join(path, "type"),
            "missing required option `type`",
            Some(match path {
                "source" => "cdcflow offers `type: mysql`".to_string(),
                _ => {
                    "cdcflow offers `type: doris`, `type: starrocks` and `type: values`".to_string()
                }
            }),
        );
        return None;
    };
    Some(ComponentDef {
        path: path.to_string(),
        file: cx.file.clone(),
        loc: key_loc,
        kind,
        name,
        options,
        include_schema_changes: include,
        exclude_schema_changes: exclude,
    })
}

/// Keys of a `transform:` rule.
const TRANSFORM_KEYS: &[&str] = &[
    "source-table",
    "projection",
    "filter",
    "primary-keys",
    "partition-keys",
    "table-options",
    "table-options.delimiter",
    "converter-after-transform",
    "description",
];

/// Keys of a `route:` rule.
const ROUTE_KEYS: &[&str] = &[
    "source-table",
    "sink-table",
    "replace-symbol",
    "description",
];

/// The rules of a list block, each a mapping; reports a non-list block and non-mapping rules.
fn rules<'n>(node: &'n Node, block: &str, cx: &mut Ctx<'_>) -> Vec<(String, &'n Node)> {
    let Kind::Seq(items) = &node.kind else {
        cx.error(
            node.loc,
            block,
            format!("expected a list of rules, got {}", node.shape()),
            Some(format!(
                "write each rule as a list item: `{block}:\\n  - source-table: ...`"
            )),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{block}[{i}]");
        if matches!(item.kind, Kind::Map(_)) {
            out.push((path, item));
        } else {
            cx.error(
                item.loc,
                path,
                format!(
                    "expected a mapping with `source-table`, got {}",
                    item.shape()
                ),
                None,
            );
        }
    }
    out
}

/// Turns a scalar into an [`ExprText`] (used for projection and filter).
fn expr_text(node: &Node, path: &str, cx: &mut Ctx<'_>) -> Option<ExprText> {
    let (text, char_locs) = scalar(node, path, cx)?;
    Some(ExprText {
        text,
        loc: node.loc,
        char_locs,
    })
}

/// Flink CDC replaces `\*` by `*` in projections (a plain YAML scalar cannot start with `*`).
fn unescape_star(mut e: ExprText) -> ExprText {
    if !e.text.contains("\\*") {
        return e;
    }
    let chars: Vec<char> = e.text.chars().collect();
    let (mut text, mut locs) = (
        String::with_capacity(e.text.len()),
        Vec::with_capacity(chars.len()),
    );
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'*') {
            i += 1;
        }
        text.push(chars[i]);
        locs.push(e.location_of(i));
        i += 1;
    }
    e.text = text;
    e.char_locs = locs;
    e
}

/// The `transform:` block.
fn transforms(node: &Node, cx: &mut Ctx<'_>) -> Vec<TransformDef> {
    let mut out = Vec::new();
    for (path, rule) in rules(node, "transform", cx) {
        let mut t = TransformDef {
            loc: rule.loc,
            source_table: Spanned::new(String::new(), rule.loc),
            projection: None,
            filter: None,
            primary_keys: None,
            partition_keys: None,
            table_options: None,
            table_options_delimiter: None,
            converter_after_transform: None,
            description: None,
        };
        let mut has_source = false;
        for (key, loc, value) in entries(rule, &path, cx) {
            let full = join(&path, &key);
            match key.as_str() {
                "source-table" => {
                    if let Some(v) = spanned(value, &full, cx) {
                        t.source_table = v;
                        has_source = true;
                    }
                }
                // An empty projection or filter is the same as none (projection `*`, no filter).
                "projection" => {
                    t.projection = expr_text(value, &full, cx)
                        .map(unescape_star)
                        .filter(|e| !e.text.trim().is_empty())
                }
                "filter" => {
                    t.filter = expr_text(value, &full, cx).filter(|e| !e.text.trim().is_empty())
                }
                "primary-keys" => t.primary_keys = spanned(value, &full, cx),
                "partition-keys" => t.partition_keys = spanned(value, &full, cx),
                "table-options" => t.table_options = spanned(value, &full, cx),
                "table-options.delimiter" => t.table_options_delimiter = spanned(value, &full, cx),
                "converter-after-transform" => {
                    t.converter_after_transform = spanned(value, &full, cx);
                    if let Some(c) = &t.converter_after_transform
                        && !c.value.trim().eq_ignore_ascii_case("SOFT_DELETE")
                    {
                        cx.error(
                            c.loc,
                            full,
                            format!("unknown converter `{}`", c.value),
                            Some("the only converter is `SOFT_DELETE`".into()),
                        );
                    }
                }
                "description" => t.description = spanned(value, &full, cx).map(|s| s.value),
                _ => unknown_key(&key, loc, &path, "transform rule", TRANSFORM_KEYS, cx),
            }
        }
        if !has_source {
            cx.error(
                rule.loc,
                join(&path, "source-table"),
                "missing required key `source-table`",
                None,
            );
        } else if t.source_table.value.trim().is_empty() {
            cx.error(
                t.source_table.loc,
                join(&path, "source-table"),
                "`source-table` is empty",
                None,
            );
        }
        out.push(t);
    }
    out
}

/// The `route:` block; each `source-table` is compiled to catch bad patterns early.
fn routes(node: &Node, cx: &mut Ctx<'_>) -> Vec<RouteDef> {
    let mut out = Vec::new();
    for (path, rule) in rules(node, "route", cx) {
        let (mut source, mut sink, mut replace, mut description) = (None, None, None, None);
        for (key, loc, value) in entries(rule, &path, cx) {
            let full = join(&path, &key);
            match key.as_str() {
                "source-table" => source = spanned(value, &full, cx),
                "sink-table" => sink = spanned(value, &full, cx),
                "replace-symbol" => replace = spanned(value, &full, cx),
                "description" => description = spanned(value, &full, cx).map(|s| s.value),
                _ => unknown_key(&key, loc, &path, "route rule", ROUTE_KEYS, cx),
            }
        }
        for (v, key) in [(&source, "source-table"), (&sink, "sink-table")] {
            if v.is_none() {
                cx.error(
                    rule.loc,
                    join(&path, key),
                    format!("missing required key `{key}`"),
                    None,
                );
            }
        }
        if let Some(s) = &source
            && let Err(e) = pipeline::route_regex(&s.value)
        {
            cx.error(
                s.loc,
                join(&path, "source-table"),
                format!("invalid table pattern `{}`: {e}", s.value),
                None,
            );
        }
        if let (Some(r), Some(t)) = (&replace, &sink) {
            if r.value.is_empty() {
                cx.error(
                    r.loc,
                    join(&path, "replace-symbol"),
                    "`replace-symbol` is empty",
                    None,
                );
            } else if has_capture_reference(&t.value) {
                cx.error(r.loc, join(&path, "replace-symbol"), "`replace-symbol` cannot be combined with `$n` capture references in `sink-table`", None);
            }
        }
        if let (Some(source_table), Some(sink_table)) = (source, sink) {
            out.push(RouteDef {
                loc: rule.loc,
                source_table,
                sink_table,
                replace_symbol: replace,
                description,
            });
        }
    }
    out
}

/// Whether a sink-table template uses `$1`…`$n`.
fn has_capture_reference(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(2).any(|w| w[0] == b'$' && w[1].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "source:\n  type: mysql\n  hostname: localhost\n  port: 3306\nsink:\n  type: doris\n  fenodes: fe:8030\n";

    fn load_env(text: &str, env: &[(&str, &str)]) -> Result<PipelineDef, Diagnostics> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load_str_with_env(text, "p.yaml", &move |n| {
            env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    fn errors(text: &str) -> Vec<String> {
        load_env(text, &[])
            .expect_err("the file must be rejected")
            .lines()
    }

    fn at(line: usize, column: usize) -> Location {
        Location { line, column }
    }

    #[test]
    fn options_are_stringified_with_key_and_value_positions() {
        let def = load_env(BASE, &[]).expect("valid file");
        let port = &def.source.options["port"];
        assert_eq!(
            port.value, "3306",
            "numbers are kept as written, as strings"
        );
        assert_eq!((port.key_loc, port.value_loc), (at(4, 3), at(4, 9)));
        assert_eq!(def.source.kind, Spanned::new("mysql".to_string(), at(2, 9)));
        assert_eq!(def.source.loc, at(1, 1));
        assert_eq!(def.sink.options["fenodes"].location_of(3), at(7, 15));
    }

    #[test]
    fn yaml_syntax_error_has_line_and_column() {
        assert_eq!(
            errors("source:\n  type: mysql\n  bad: [1, 2\nsink: x\n"),
            vec!["p.yaml:4:5: invalid YAML: illegal placement of ':' indicator"]
        );
    }

    #[test]
    fn unknown_top_level_block_and_missing_sink_are_both_reported() {
        let text = "source:\n  type: mysql\nsinks:\n  type: doris\n";
        assert_eq!(
            errors(text),
            vec![
                "p.yaml:3:1: sinks: unknown top-level block `sinks` (hint: did you mean `sink`?)",
                "p.yaml:1:1: sink: missing required block `sink`",
            ]
        );
    }

    #[test]
    fn env_vars_are_substituted_with_defaults_and_unset_ones_reported_at_the_dollar() {
        let text = format!(
            "{BASE}  password: ${{DORIS_PW}}\n  username: u_${{USER_X:-admin}}\n  label: $${{x}}\n"
        );
        let def = load_env(&text, &[("DORIS_PW", "s3cret")]).expect("valid");
        assert_eq!(def.sink.options["password"].value, "s3cret");
        assert_eq!(def.sink.options["username"].value, "u_admin");
        assert_eq!(
            def.sink.options["label"].value, "${x}",
            "a doubled dollar escapes a literal dollar-brace"
        );
        let text = format!("{BASE}  password: pw-${{NOPE_UNSET}}\n");
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:8:16: environment variable `NOPE_UNSET` is not set (hint: set it, or give a default: `${NOPE_UNSET:-value}`)"
            ]
        );
    }

    #[test]
    fn transform_keys_are_checked_and_star_is_unescaped() {
        let text = format!(
            "{BASE}transform:\n  - source-table: db.t\n    projection: \\*, a + 1 AS b\n    filtr: a > 1\n  - projection: x\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:11:5: transform[0].filtr: unknown key `filtr` in transform rule (hint: did you mean `filter`?)",
                "p.yaml:12:5: transform[1].source-table: missing required key `source-table`",
            ]
        );
        let text =
            format!("{BASE}transform:\n  - source-table: db.t\n    projection: \\*, a + 1 AS b\n");
        let def = load_env(&text, &[]).expect("valid");
        let p = def.transforms[0].projection.as_ref().expect("projection");
        assert_eq!(p.text, "*, a + 1 AS b");
        assert_eq!(
            p.location_of(0),
            at(10, 18),
            "`*` maps to the star in the file"
        );
        assert_eq!(
            p.location_of(3),
            at(10, 21),
            "`a` keeps its own column after the removed backslash"
        );
    }

    #[test]
    fn char_locs_cover_quoted_and_block_scalars() {
        let text = format!(
            "{BASE}transform:\n  - source-table: db.t\n    filter: 'a = ''x'' AND b'\n    projection: \"a\\tb\"\n  - source-table: db.u\n    filter: |\n      x > 1\n      AND y < 2\n"
        );
        let def = load_env(&text, &[]).expect("valid");
        let f = def.transforms[0].filter.as_ref().expect("filter");
        assert_eq!(f.text, "a = 'x' AND b");
        assert_eq!(f.loc, at(10, 13), "loc is the opening quote");
        assert_eq!(f.location_of(0), at(10, 14));
        assert_eq!(
            f.location_of(4),
            at(10, 18),
            "a doubled quote maps to its first quote"
        );
        assert_eq!(
            f.location_of(5),
            at(10, 20),
            "the char after a doubled quote"
        );
        assert_eq!(f.location_of(8), at(10, 24));
        let p = def.transforms[0].projection.as_ref().expect("projection");
        assert_eq!(p.text, "a\tb");
        assert_eq!(p.location_of(2), at(11, 21), "the char after an escape");
        let f = def.transforms[1].filter.as_ref().expect("block filter");
        assert_eq!(f.text, "x > 1\nAND y < 2\n");
        assert_eq!(f.location_of(0), at(14, 7));
        assert_eq!(
            f.location_of(6),
            at(15, 7),
            "`AND` on the second line of the block"
        );
        assert_eq!(f.location_of(10), at(15, 11));
    }

    #[test]
    fn folded_plain_scalar_maps_to_following_lines() {
        let text = format!(
            "{BASE}transform:\n  - source-table: db.t\n    filter: a > 1\n      AND b < 2\n"
        );
        let def = load_env(&text, &[]).expect("valid");
        let f = def.transforms[0].filter.as_ref().expect("filter");
        assert_eq!(f.text, "a > 1 AND b < 2");
        assert_eq!(f.location_of(6), at(11, 7));
        assert_eq!(f.location_of(10), at(11, 11));
    }

    #[test]
    fn route_rules_are_checked() {
        let text = format!(
            "{BASE}route:\n  - source-table: db.(a\n    sink-tabel: x.y\n  - source-table: db.t_(\\.*)\n    sink-table: ods.$1\n    replace-symbol: <>\n"
        );
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:10:5: route[0].sink-tabel: unknown key `sink-tabel` in route rule (hint: did you mean `sink-table`?)",
                "p.yaml:9:5: route[0].sink-table: missing required key `sink-table`",
                "p.yaml:9:19: route[0].source-table: invalid table pattern `db.(a`: unclosed group",
                "p.yaml:13:21: route[1].replace-symbol: `replace-symbol` cannot be combined with `$n` capture references in `sink-table`",
            ]
        );
    }

    #[test]
    fn duplicate_keys_and_non_scalar_options_are_errors() {
        let text = format!("{BASE}  fenodes: other:8030\n  username: [a, b]\n");
        assert_eq!(
            errors(&text),
            vec![
                "p.yaml:8:3: sink.fenodes: duplicate key `fenodes` (first set at 7:3)",
                "p.yaml:9:13: sink.username: expected a single value, got a list",
            ]
        );
    }

    #[test]
    fn empty_and_non_mapping_files_are_rejected() {
        assert_eq!(
            errors(""),
            vec![
                "p.yaml:1:1: the pipeline file is empty (hint: a pipeline needs at least a `source` and a `sink` block)"
            ]
        );
        assert_eq!(
            errors("- a\n"),
            vec![
                "p.yaml:1:1: expected a mapping of blocks (source, sink, transform, route, pipeline), got a list"
            ]
        );
        assert_eq!(
            errors("source: mysql\nsink:\n  fenodes: x\n"),
            vec![
                "p.yaml:1:9: source: expected a mapping of options, got a single value",
                "p.yaml:2:1: sink.type: missing required option `type` (hint: cdcflow offers `type: doris`, `type: starrocks` and `type: values`)",
            ]
        );
    }

    #[test]
    fn yaml_nulls_are_empty_values_and_empty_blocks_are_absent() {
        let text = format!("{BASE}  password:\n  label: ~\ntransform:\nroute: null\npipeline:\n");
        let def = load_env(&text, &[]).expect("valid");
        assert_eq!(def.sink.options["password"].value, "");
        assert_eq!(
            def.sink.options["label"].value, "",
            "`~` is YAML null, read as empty"
        );
        assert!(def.transforms.is_empty() && def.routes.is_empty());
        let text =
            format!("{BASE}transform:\n  - source-table: db.t\n    projection:\n    filter: ' '\n");
        let t = &load_env(&text, &[]).expect("valid").transforms[0];
        assert_eq!(
            (&t.projection, &t.filter),
            (&None, &None),
            "empty expressions are absent"
        );
        let quoted = format!("{BASE}  label: 'null'\n");
        assert_eq!(
            load_env(&quoted, &[]).expect("valid").sink.options["label"].value,
            "null"
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = load_env(&text, &[]);
        }

        #[test]
        fn yaml_like_text_never_panics(text in "[a-z:\\-\\[\\]{}'\"|>&*!#$ \n\\\\é]{0,120}") {
            let _ = load_env(&text, &[]);
        }

        #[test]
        fn plain_scalar_chars_map_to_their_exact_column(value in "[a-zA-Z0-9_(][a-zA-Z0-9_ ()<>=+.,é]{0,40}[a-zA-Z0-9_)]") {
            let text = format!("{BASE}transform:\n  - source-table: db.t\n    filter: {value}\n");
            let def = load_env(&text, &[]).expect("valid");
            let f = def.transforms[0].filter.clone().expect("filter");
            proptest::prop_assert_eq!(&f.text, &value);
            for i in 0..value.chars().count() {
                proptest::prop_assert_eq!(f.location_of(i), at(10, 13 + i));
            }
        }
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let text = format!("{BASE}  password: hunter2\n  username: admin\n");
        let def = load_env(&text, &[]).expect("valid");
        let shown = format!("{def:?}");
        assert!(!shown.contains("hunter2"), "password leaked: {shown}");
        assert!(shown.contains("admin") && shown.contains("******"));
        assert!(
            crate::config::is_secret_key("openai.apikey")
                && !crate::config::is_secret_key("hostname")
        );
    }

    #[test]
    fn anchors_and_aliases_resolve() {
        let text =
            "source:\n  type: mysql\n  hostname: &h db1\nsink:\n  type: doris\n  fenodes: *h\n";
        let def = load_env(text, &[]).expect("valid");
        assert_eq!(def.sink.options["fenodes"].value, "db1");
    }
}
