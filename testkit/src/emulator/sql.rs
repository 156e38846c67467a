//! A small hand-written SQL front for the emulator: the DDL the Doris and StarRocks sinks issue
//! (CREATE/DROP DATABASE, CREATE TABLE with key model, DISTRIBUTED BY and PROPERTIES, ALTER TABLE
//! ADD/DROP/RENAME/MODIFY COLUMN, TRUNCATE, DROP TABLE), the lookups they make
//! (`information_schema` COLUMNS/SCHEMATA/TABLES, SHOW ..., `@@` variables, `current_version()`),
//! and plain `SELECT` over user tables for tests. Every identifier may be backquoted.
//!
//! The expression part (`col = 'v' AND x IN (1, 2)`) is also used for the Stream Load `where`
//! and `delete` headers.

use std::collections::BTreeMap;

use super::Mode;
use super::model::{AggType, Catalog, Column, Database, KeysType, SequenceMode, Table};
use super::types::{ColumnType, Value, convert_text};

/// A SQL error with the MySQL error code used on the query port and the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("errCode = 2, detailMessage = {message}")]
pub struct SqlError {
    /// MySQL error number (1064 syntax, 1049 unknown db, 1050 table exists, 1146 no table, 1105 other).
    pub code: u16,
    /// Human-readable reason.
    pub message: String,
}

impl SqlError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        SqlError {
            code,
            message: message.into(),
        }
    }

    fn syntax(message: impl Into<String>) -> Self {
        SqlError::new(1064, message)
    }
}

type SqlResult<T> = Result<T, SqlError>;

/// The result of one statement.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlOutput {
    /// A statement without a result set.
    Ok,
    /// A result set: column names and rows.
    Rows {
        /// Column labels.
        columns: Vec<String>,
        /// Rows of values, one per column.
        rows: Vec<Vec<Value>>,
    },
}

// ---------------------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String, bool),
    Str(String),
    Num(String),
    Var(String),
    Sym(&'static str),
}

const SYMS: [&str; 17] = [
    "<=>", "<=", ">=", "!=", "<>", "=", "<", ">", "(", ")", ",", ".", ";", "*", "-", "+", "/",
];

fn tokenize(sql: &str) -> SqlResult<Vec<Tok>> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') || c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                i += 1;
            }
            i += 2;
        } else if c == b'`' {
            let start = i + 1;
            let mut s = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => {
                        return Err(SqlError::syntax(format!(
                            "unterminated identifier at offset {start}"
                        )));
                    }
                    Some(b'`') if b.get(i + 1) == Some(&b'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some(b'`') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = sql[i..].chars().next().unwrap_or(' ');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push(Tok::Ident(s, true));
        } else if c == b'\'' || c == b'"' {
            let q = c;
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                match b.get(i) {
                    None => {
                        return Err(SqlError::syntax(format!(
                            "unterminated string at offset {start}"
                        )));
                    }
                    Some(&x) if x == q && b.get(i + 1) == Some(&q) => {
                        s.push(q as char);
                        i += 2;
                    }
                    Some(&x) if x == q => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') if i + 1 < b.len() => {
                        let e = b[i + 1];
                        s.push(match e {
                            b'n' => '\n',
                            b't' => '\t',
                            b'r' => '\r',
                            b'0' => '\0',
                            _ => e as char,
                        });
                        i += 2;
                    }
                    Some(_) => {
                        let ch = sql[i..].chars().next().unwrap_or(' ');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == b'@' {
            let mut j = i;
            while j < b.len() && b[j] == b'@' {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            let name = sql[start..j].to_ascii_lowercase();
            let name = name
                .strip_prefix("session.")
                .or_else(|| name.strip_prefix("global."))
                .unwrap_or(&name)
                .to_string();
            out.push(Tok::Var(name));
            i = j;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            out.push(Tok::Num(sql[start..i].to_string()));
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(Tok::Ident(sql[start..i].to_string(), false));
        } else {
            let sym = SYMS
                .iter()
                .find(|s| sql[i..].starts_with(**s))
                .ok_or_else(|| {
                    SqlError::syntax(format!(
                        "unexpected character '{}' at offset {i}",
                        c as char
                    ))
                })?;
            out.push(Tok::Sym(sym));
            i += sym.len();
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Expressions

/// A scalar expression of the supported subset.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Column reference (last name part).
    Col(String),
    /// Literal.
    Lit(Value),
    /// `@@variable`.
    Var(String),
    /// Function call (lower-case name).
    Func(String, Vec<Expr>),
    /// `COUNT(*)`.
    CountStar,
    /// Comparison with one of `=`, `!=`, `<`, `<=`, `>`, `>=`.
    Cmp(&'static str, Box<Expr>, Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `NOT a`.
    Not(Box<Expr>),
    /// `a IS [NOT] NULL` (bool = negated).
    IsNull(Box<Expr>, bool),
    /// `a [NOT] IN (...)`.
    In(Box<Expr>, Vec<Expr>, bool),
    /// `a [NOT] LIKE pattern`.
    Like(Box<Expr>, Box<Expr>, bool),
}

/// Resolves names while evaluating an expression.
pub trait Env {
    /// Value of a column (case-insensitive); `None` if there is no such column.
    fn column(&self, name: &str) -> Option<Value>;
    /// Value of a variable or zero-argument function such as `current_version`.
    fn var(&self, name: &str) -> Value;
}

fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Null => None,
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        _ => Some(true),
    }
}

fn coerce_cmp(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    if a.is_null() || b.is_null() {
        return None;
    }
    let numeric = |v: &Value| {
        matches!(
            v,
            Value::Int(_) | Value::Float(_) | Value::Decimal(..) | Value::Bool(_)
        )
    };
    match (a, b) {
        (Value::Str(s), other) if numeric(other) => s.trim().parse::<f64>().ok().map(|x| {
            let y = other
                .to_text()
                .and_then(|t| t.parse::<f64>().ok())
                .unwrap_or(0.0);
            x.total_cmp(&y)
        }),
        (other, Value::Str(_)) if numeric(other) => coerce_cmp(b, a).map(|o| o.reverse()),
        (Value::Str(s), Value::Date(_) | Value::DateTime(..)) => {
            convert_text(s, &ColumnType::DateTime { precision: 6 })
                .ok()
                .map(|v| v.cmp(b))
        }
        (Value::Date(_) | Value::DateTime(..), Value::Str(_)) => {
            coerce_cmp(b, a).map(|o| o.reverse())
        }
        _ => Some(a.cmp(b)),
    }
}

fn like(text: &str, pat: &str) -> bool {
    fn go(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|k| go(&t[k..], &p[1..])),
            Some('_') => !t.is_empty() && go(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&t[1..], &p[2..]),
            Some(c) => t.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(&t[1..], &p[1..]),
        }
    }
    let t: Vec<char> = text.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    go(&t, &p)
}

impl Expr {
    /// Evaluates the expression; comparisons with NULL give NULL as in SQL.
    pub fn eval(&self, env: &dyn Env) -> Value {
        match self {
            Expr::Col(n) => env.column(n).unwrap_or(Value::Null),
            Expr::Lit(v) => v.clone(),
            Expr::Var(n) => env.var(n),
            Expr::Func(n, args) => match (n.as_str(), args.as_slice()) {
                ("lower", [a]) => a
                    .eval(env)
                    .to_text()
                    .map(|s| Value::Str(s.to_lowercase()))
                    .unwrap_or(Value::Null),
                ("upper", [a]) => a
                    .eval(env)
                    .to_text()
                    .map(|s| Value::Str(s.to_uppercase()))
                    .unwrap_or(Value::Null),
                _ => env.var(n),
            },
            Expr::CountStar => Value::Null,
            Expr::Cmp(op, a, b) => match coerce_cmp(&a.eval(env), &b.eval(env)) {
                None => Value::Null,
                Some(o) => Value::Bool(match *op {
                    "=" => o.is_eq(),
                    "!=" => o.is_ne(),
                    "<" => o.is_lt(),
                    "<=" => o.is_le(),
                    ">" => o.is_gt(),
                    _ => o.is_ge(),
                }),
            },
            Expr::And(a, b) => match (truth(&a.eval(env)), truth(&b.eval(env))) {
                (Some(false), _) | (_, Some(false)) => Value::Bool(false),
                (Some(true), Some(true)) => Value::Bool(true),
                _ => Value::Null,
            },
            Expr::Or(a, b) => match (truth(&a.eval(env)), truth(&b.eval(env))) {
                (Some(true), _) | (_, Some(true)) => Value::Bool(true),
                (Some(false), Some(false)) => Value::Bool(false),
                _ => Value::Null,
            },
            Expr::Not(a) => truth(&a.eval(env))
                .map(|t| Value::Bool(!t))
                .unwrap_or(Value::Null),
            Expr::IsNull(a, neg) => Value::Bool(a.eval(env).is_null() != *neg),
            Expr::In(a, list, neg) => {
                let v = a.eval(env);
                if v.is_null() {
                    return Value::Null;
                }
                let found = list
                    .iter()
                    .any(|e| coerce_cmp(&v, &e.eval(env)).is_some_and(|o| o.is_eq()));
                Value::Bool(found != *neg)
            }
            Expr::Like(a, p, neg) => match (a.eval(env).to_text(), p.eval(env).to_text()) {
                (Some(t), Some(p)) => Value::Bool(like(&t, &p) != *neg),
                _ => Value::Null,
            },
        }
    }

    /// Whether the expression holds (NULL counts as false, as in a WHERE clause).
    pub fn holds(&self, env: &dyn Env) -> bool {
        truth(&self.eval(env)) == Some(true)
    }

    fn label(&self) -> String {
        match self {
            Expr::Col(n) => n.clone(),
            Expr::Var(n) => format!("@@{n}"),
            Expr::Func(n, _) => format!("{n}()"),
            Expr::CountStar => "count(*)".into(),
            Expr::Lit(v) => v.to_text().unwrap_or_else(|| "NULL".into()),
            _ => "expr".into(),
        }
    }
}

/// Parses a standalone expression (Stream Load `where` / `delete` headers).
pub fn parse_expr(text: &str) -> SqlResult<Expr> {
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err(SqlError::syntax(format!(
            "unexpected trailing input in expression `{text}`"
        )));
    }
    Ok(e)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// Qualified table name.
type QName = (Option<String>, String);

#[derive(Debug)]
enum AlterOp {
    Add(Column, Option<Position>),
    Drop(String),
    Rename(String, String),
    Modify(Column, Option<Position>),
    Comment(String),
    SetProps(BTreeMap<String, String>),
}

#[derive(Debug)]
enum Position {
    First,
    After(String),
}

#[derive(Debug)]
struct Select {
    items: Vec<(Expr, Option<String>)>,
    star: bool,
    from: Option<QName>,
    filter: Option<Expr>,
    order: Vec<(Expr, bool)>,
    limit: Option<usize>,
}

#[derive(Debug)]
enum Stmt {
    CreateDb(String, bool),
    DropDb(String, bool),
    CreateTable(Option<String>, Box<Table>, bool),
    DropTable(QName, bool),
    Truncate(QName),
    Alter(QName, Vec<AlterOp>),
    Select(Box<Select>),
    ShowDatabases,
    ShowTables(Option<String>),
    ShowColumns(QName, bool),
    ShowCreate(QName),
    ShowAlter(Option<String>, Option<Expr>),
    ShowTransaction(Option<String>, Option<Expr>),
    ShowVariables,
    Use(String),
    Noop,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s, false)) if s.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        if self.is_kw(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        let save = self.pos;
        for k in kws {
            if !self.eat_kw(k) {
                self.pos = save;
                return false;
            }
        }
        true
    }

    fn expect_kw(&mut self, kw: &str) -> SqlResult<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.err(&format!("expected {kw}")))
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        if self.is_sym(s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_sym(&mut self, s: &str) -> SqlResult<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{s}'")))
        }
    }

    fn err(&self, what: &str) -> SqlError {
        let near = match self.peek() {
            None => "end of input".to_string(),
            Some(Tok::Ident(s, _)) | Some(Tok::Num(s)) | Some(Tok::Var(s)) => format!("'{s}'"),
            Some(Tok::Str(s)) => format!("'{s}'"),
            Some(Tok::Sym(s)) => format!("'{s}'"),
        };
        SqlError::syntax(format!(
            "Syntax error: {what} near {near} (token {})",
            self.pos
        ))
    }

    fn ident(&mut self) -> SqlResult<String> {
        match self.peek().cloned() {
            Some(Tok::Ident(s, _)) => {
                self.pos += 1;
                Ok(s)
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err("expected an identifier")),
        }
    }

    fn qname(&mut self) -> SqlResult<QName> {
        let a = self.ident()?;
        if self.eat_sym(".") {
            let b = self.ident()?;
            Ok((Some(a), b))
        } else {
            Ok((None, a))
        }
    }

    fn string(&mut self) -> SqlResult<String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.err("expected a string literal")),
        }
    }

    fn number(&mut self) -> SqlResult<u32> {
        match self.peek().cloned() {
            Some(Tok::Num(s)) => {
                self.pos += 1;
                s.parse().map_err(|_| self.err("expected an integer"))
            }
            _ => Err(self.err("expected a number")),
        }
    }

    fn ident_list(&mut self) -> SqlResult<Vec<String>> {
        self.expect_sym("(")?;
        let mut out = Vec::new();
        if self.eat_sym(")") {
            return Ok(out);
        }
        loop {
            out.push(self.ident()?);
            if self.eat_sym(")") {
                return Ok(out);
            }
            self.expect_sym(",")?;
        }
    }

    /// Skips a balanced parenthesised group starting at the current `(`.
    fn skip_group(&mut self) -> SqlResult<()> {
        self.expect_sym("(")?;
        let mut depth = 1;
        while depth > 0 {
            match self.peek() {
                None => return Err(self.err("unbalanced parentheses")),
                Some(Tok::Sym("(")) => depth += 1,
                Some(Tok::Sym(")")) => depth -= 1,
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    fn properties(&mut self) -> SqlResult<BTreeMap<String, String>> {
        self.expect_sym("(")?;
        let mut out = BTreeMap::new();
        if self.eat_sym(")") {
            return Ok(out);
        }
        loop {
            let k = self.ident()?;
            self.expect_sym("=")?;
            let v = match self.peek().cloned() {
                Some(Tok::Str(s)) | Some(Tok::Num(s)) | Some(Tok::Ident(s, _)) => {
                    self.pos += 1;
                    s
                }
                _ => return Err(self.err("expected a property value")),
            };
            out.insert(k, v);
            if self.eat_sym(")") {
                return Ok(out);
            }
            self.expect_sym(",")?;
        }
    }

    fn at_end(&mut self) -> bool {
        while self.eat_sym(";") {}
        self.pos >= self.toks.len()
    }

    fn statement(&mut self) -> SqlResult<Stmt> {
        let stmt = if self.eat_kw("CREATE") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let ine = self.eat_kws(&["IF", "NOT", "EXISTS"]);
                let name = self.ident()?;
                if self.eat_kw("PROPERTIES") {
                    self.properties()?;
                }
                Stmt::CreateDb(name, ine)
            } else {
                self.eat_kw("EXTERNAL");
                self.expect_kw("TABLE")?;
                let ine = self.eat_kws(&["IF", "NOT", "EXISTS"]);
                let (db, t) = self.create_table()?;
                Stmt::CreateTable(db, Box::new(t), ine)
            }
        } else if self.eat_kw("DROP") {
            if self.eat_kw("DATABASE") || self.eat_kw("SCHEMA") {
                let ie = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.ident()?;
                self.eat_kw("FORCE");
                Stmt::DropDb(name, ie)
            } else {
                self.expect_kw("TABLE")?;
                let ie = self.eat_kws(&["IF", "EXISTS"]);
                let name = self.qname()?;
                self.eat_kw("FORCE");
                Stmt::DropTable(name, ie)
            }
        } else if self.eat_kw("TRUNCATE") {
            self.eat_kw("TABLE");
            Stmt::Truncate(self.qname()?)
        } else if self.eat_kw("ALTER") {
            self.expect_kw("TABLE")?;
            let name = self.qname()?;
            Stmt::Alter(name, self.alter_ops()?)
        } else if self.eat_kw("SELECT") {
            Stmt::Select(Box::new(self.select()?))
        } else if self.eat_kw("DESC") || self.eat_kw("DESCRIBE") {
            Stmt::ShowColumns(self.qname()?, false)
        } else if self.eat_kw("SHOW") {
            self.show()?
        } else if self.eat_kw("USE") {
            Stmt::Use(self.ident()?)
        } else if self.eat_kw("SET")
            || self.eat_kw("BEGIN")
            || self.eat_kw("COMMIT")
            || self.eat_kw("ROLLBACK")
        {
            self.pos = self.toks.len();
            Stmt::Noop
        } else {
            return Err(self.err("unsupported statement"));
        };
        if !self.at_end() {
            return Err(self.err("unexpected input after statement"));
        }
        Ok(stmt)
    }

    fn show(&mut self) -> SqlResult<Stmt> {
        if self.eat_kw("DATABASES") || self.eat_kw("SCHEMAS") {
            return Ok(Stmt::ShowDatabases);
        }
        self.eat_kw("FULL");
        if self.eat_kw("TABLES") {
            let db = if self.eat_kw("FROM") || self.eat_kw("IN") {
                Some(self.ident()?)
            } else {
                None
            };
            self.pos = self.toks.len();
            return Ok(Stmt::ShowTables(db));
        }
        if self.eat_kw("COLUMNS") || self.eat_kw("FIELDS") {
            if !(self.eat_kw("FROM") || self.eat_kw("IN")) {
                return Err(self.err("expected FROM"));
            }
            let (mut db, t) = self.qname()?;
            if self.eat_kw("FROM") || self.eat_kw("IN") {
                db = Some(self.ident()?);
            }
            return Ok(Stmt::ShowColumns((db, t), true));
        }
        if self.eat_kws(&["CREATE", "TABLE"]) {
            return Ok(Stmt::ShowCreate(self.qname()?));
        }
        if self.eat_kw("ALTER") {
            self.eat_kw("TABLE");
            let _ = self.eat_kw("COLUMN") || self.eat_kw("ROLLUP");
            let db = if self.eat_kw("FROM") || self.eat_kw("IN") {
                Some(self.ident()?)
            } else {
                None
            };
            let cond = if self.eat_kw("WHERE") {
                Some(self.expr()?)
            } else {
                None
            };
            // ORDER BY / LIMIT: every table has at most one (finished) job row.
            self.pos = self.toks.len();
            return Ok(Stmt::ShowAlter(db, cond));
        }
        if self.eat_kw("TRANSACTION") {
            let db = if self.eat_kw("FROM") || self.eat_kw("IN") {
                Some(self.ident()?)
            } else {
                None
            };
            let cond = if self.eat_kw("WHERE") {
                Some(self.expr()?)
            } else {
                None
            };
            return Ok(Stmt::ShowTransaction(db, cond));
        }
        if self.eat_kw("VARIABLES") {
            self.pos = self.toks.len();
            return Ok(Stmt::ShowVariables);
        }
        Err(self.err("unsupported SHOW"))
    }

    fn create_table(&mut self) -> SqlResult<(Option<String>, Table)> {
        let (db, name) = self.qname()?;
        self.expect_sym("(")?;
        let mut columns = Vec::new();
        loop {
            if self.eat_kw("INDEX") {
                self.ident()?;
                self.skip_group()?;
                if self.eat_kw("USING") {
                    self.ident()?;
                }
                if self.eat_kw("COMMENT") {
                    self.string()?;
                }
            } else {
                columns.push(self.column_def()?);
            }
            if self.eat_sym(")") {
                break;
            }
            self.expect_sym(",")?;
        }
        let mut keys_type = None;
        let mut key_names = Vec::new();
        let mut comment = String::new();
        let mut properties = BTreeMap::new();
        loop {
            if self.eat_kw("ENGINE") {
                self.eat_sym("=");
                self.ident()?;
            } else if let Some(kt) = ["DUPLICATE", "UNIQUE", "AGGREGATE", "PRIMARY"]
                .iter()
                .find(|k| self.is_kw(k))
            {
                self.pos += 1;
                self.expect_kw("KEY")?;
                keys_type = Some(match *kt {
                    "DUPLICATE" => KeysType::Duplicate,
                    "UNIQUE" => KeysType::Unique,
                    "AGGREGATE" => KeysType::Aggregate,
                    _ => KeysType::Primary,
                });
                key_names = self.ident_list()?;
            } else if self.eat_kw("COMMENT") {
                comment = self.string()?;
            } else if self.eat_kw("PROPERTIES") {
                properties = self.properties()?;
            } else if self.eat_kw("DISTRIBUTED") {
                self.expect_kw("BY")?;
                if self.eat_kw("HASH") {
                    self.ident_list()?;
                } else {
                    self.expect_kw("RANDOM")?;
                }
                if self.eat_kw("BUCKETS") && !self.eat_kw("AUTO") {
                    self.number()?;
                }
            } else if self.is_kw("AUTO")
                || self.is_kw("PARTITION")
                || self.is_kw("ORDER")
                || self.is_kw("ROLLUP")
            {
                // Partitioning, sort keys and rollups do not change what is stored: skip them.
                self.pos += 1;
                while let Some(t) = self.peek() {
                    let stop = matches!(t, Tok::Ident(s, false)
                        if ["DISTRIBUTED", "PROPERTIES", "COMMENT", "ORDER", "ROLLUP"].iter().any(|k| s.eq_ignore_ascii_case(k)));
                    if stop || matches!(t, Tok::Sym(";")) {
                        break;
                    }
                    if matches!(t, Tok::Sym("(")) {
                        self.skip_group()?;
                    } else {
                        self.pos += 1;
                    }
                }
            } else {
                break;
            }
        }
        let keys_type = keys_type.unwrap_or(KeysType::Duplicate);
        if key_names.is_empty()
            && let Some(first) = columns.first()
        {
            key_names.push(first.name.clone());
        }
        for (i, k) in key_names.iter().enumerate() {
            match columns.get(i) {
                Some(c) if c.name.eq_ignore_ascii_case(k) => {}
                Some(c) => {
                    return Err(SqlError::new(
                        1105,
                        format!(
                            "Key columns should be a ordered prefix of the schema. KeyColumns[{i}] (starts from zero) is {k}, but corresponding column is {} in the previous columns declaration.",
                            c.name
                        ),
                    ));
                }
                None => {
                    return Err(SqlError::new(
                        1105,
                        format!("Key column {k} does not exist in the table"),
                    ));
                }
            }
        }
        for (i, c) in columns.iter_mut().enumerate() {
            c.is_key = i < key_names.len();
            if keys_type == KeysType::Primary && c.is_key {
                c.nullable = false;
            }
            if keys_type == KeysType::Aggregate && !c.is_key && c.agg.is_none() {
                return Err(SqlError::new(
                    1105,
                    format!("The column {} must have aggregate type", c.name),
                ));
            }
            if keys_type != KeysType::Aggregate && c.agg.is_some() {
                return Err(SqlError::new(
                    1105,
                    format!(
                        "Aggregate type is only allowed in AGGREGATE KEY tables, column {}",
                        c.name
                    ),
                ));
            }
        }
        let mut sequence = SequenceMode::None;
        if let Some(col) = properties.get("function_column.sequence_col") {
            if !columns.iter().any(|c| c.name.eq_ignore_ascii_case(col)) {
                return Err(SqlError::new(
                    1105,
                    format!("The specified sequence column[{col}] not exists"),
                ));
            }
            sequence = SequenceMode::Mapped(col.clone());
        } else if let Some(ty) = properties.get("function_column.sequence_type") {
            let mut p = Parser {
                toks: tokenize(ty)?,
                pos: 0,
            };
            sequence = SequenceMode::Hidden(p.column_type()?);
        }
        if sequence != SequenceMode::None && keys_type != KeysType::Unique {
            return Err(SqlError::new(
                1105,
                "Sequence column only support UNIQUE_KEYS",
            ));
        }
        let batch_delete = keys_type == KeysType::Unique;
        let table = Table {
            name,
            columns,
            keys_type,
            properties,
            comment,
            sequence,
            batch_delete,
            rows: BTreeMap::new(),
            next_dup: 0,
            schema_version: 0,
        };
        Ok((db, table))
    }

    fn column_type(&mut self) -> SqlResult<ColumnType> {
        let start = self.pos;
        let name = self.ident()?.to_ascii_uppercase();
        let mut args = Vec::new();
        if self.is_sym("(") {
            self.pos += 1;
            loop {
                args.push(self.number()?);
                if self.eat_sym(")") {
                    break;
                }
                self.expect_sym(",")?;
            }
        }
        if self.is_sym("<") {
            let mut depth = 0;
            loop {
                match self.peek() {
                    Some(Tok::Sym("<")) => depth += 1,
                    Some(Tok::Sym(">")) => depth -= 1,
                    None => return Err(self.err("unbalanced '<'")),
                    _ => {}
                }
                self.pos += 1;
                if depth == 0 {
                    break;
                }
            }
        }
        let raw = self.toks[start..self.pos]
            .iter()
            .map(|t| match t {
                Tok::Ident(s, _) | Tok::Num(s) => s.to_ascii_uppercase(),
                Tok::Sym(s) => (*s).to_string(),
                _ => String::new(),
            })
            .collect::<String>();
        ColumnType::from_sql(&name, &args, &raw)
            .ok_or_else(|| SqlError::new(1105, format!("Invalid column type {raw}")))
    }

    fn column_def(&mut self) -> SqlResult<Column> {
        let name = self.ident()?;
        let ty = self.column_type()?;
        let mut col = Column {
            name,
            ty,
            nullable: true,
            default: None,
            comment: String::new(),
            is_key: false,
            agg: None,
        };
        loop {
            if self.eat_kw("KEY") {
                col.is_key = true;
            } else if let Some(agg) = self.agg_type() {
                col.agg = Some(agg);
            } else if self.eat_kws(&["NOT", "NULL"]) {
                col.nullable = false;
            } else if self.eat_kw("NULL") {
                col.nullable = true;
            } else if self.eat_kw("AUTO_INCREMENT") {
                if self.is_sym("(") {
                    self.skip_group()?;
                }
            } else if self.eat_kw("DEFAULT") {
                col.default = Some(match self.peek().cloned() {
                    Some(Tok::Str(s)) | Some(Tok::Num(s)) => {
                        self.pos += 1;
                        s
                    }
                    Some(Tok::Sym("-")) => {
                        self.pos += 1;
                        format!("-{}", self.number()?)
                    }
                    Some(Tok::Ident(s, false)) => {
                        self.pos += 1;
                        if self.is_sym("(") {
                            self.skip_group()?;
                        }
                        s.to_ascii_uppercase()
                    }
                    _ => return Err(self.err("expected a default value")),
                });
            } else if self.eat_kws(&["ON", "UPDATE"]) {
                self.ident()?;
                if self.is_sym("(") {
                    self.skip_group()?;
                }
            } else if self.eat_kw("COMMENT") {
                col.comment = self.string()?;
            } else {
                break;
            }
        }
        Ok(col)
    }

    fn agg_type(&mut self) -> Option<AggType> {
        let agg = match self.peek() {
            Some(Tok::Ident(s, false)) => match s.to_ascii_uppercase().as_str() {
                "SUM" => AggType::Sum,
                "MAX" => AggType::Max,
                "MIN" => AggType::Min,
                "REPLACE" => AggType::Replace,
                "REPLACE_IF_NOT_NULL" => AggType::ReplaceIfNotNull,
                _ => return None,
            },
            _ => return None,
        };
        self.pos += 1;
        Some(agg)
    }

    fn position(&mut self) -> SqlResult<Option<Position>> {
        if self.eat_kw("FIRST") {
            Ok(Some(Position::First))
        } else if self.eat_kw("AFTER") {
            Ok(Some(Position::After(self.ident()?)))
        } else {
            Ok(None)
        }
    }

    fn alter_ops(&mut self) -> SqlResult<Vec<AlterOp>> {
        let mut ops = Vec::new();
        loop {
            if self.eat_kw("ADD") {
                self.expect_kw("COLUMN")?;
                if self.eat_sym("(") {
                    loop {
                        ops.push(AlterOp::Add(self.column_def()?, None));
                        if self.eat_sym(")") {
                            break;
                        }
                        self.expect_sym(",")?;
                    }
                } else {
                    let c = self.column_def()?;
                    ops.push(AlterOp::Add(c, self.position()?));
                }
                if self.eat_kw("TO") {
                    self.ident()?;
                }
            } else if self.eat_kw("DROP") {
                self.expect_kw("COLUMN")?;
                ops.push(AlterOp::Drop(self.ident()?));
            } else if self.eat_kw("RENAME") {
                self.expect_kw("COLUMN")?;
                let old = self.ident()?;
                self.eat_kw("TO");
                ops.push(AlterOp::Rename(old, self.ident()?));
            } else if self.eat_kw("MODIFY") {
                if self.eat_kw("COMMENT") {
                    ops.push(AlterOp::Comment(self.string()?));
                } else {
                    self.expect_kw("COLUMN")?;
                    let c = self.column_def()?;
                    ops.push(AlterOp::Modify(c, self.position()?));
                }
            } else if self.eat_kw("SET") {
                ops.push(AlterOp::SetProps(self.properties()?));
            } else if self.eat_kw("PROPERTIES") {
                self.properties()?;
            } else {
                return Err(self.err("unsupported ALTER TABLE clause"));
            }
            if !self.eat_sym(",") {
                if self.eat_kw("PROPERTIES") {
                    self.properties()?;
                }
                return Ok(ops);
            }
        }
    }

    fn select(&mut self) -> SqlResult<Select> {
        let mut items = Vec::new();
        let mut star = false;
        loop {
            if self.eat_sym("*") {
                star = true;
            } else {
                let e = self.expr()?;
                let alias = if self.eat_kw("AS")
                    || matches!(self.peek(), Some(Tok::Ident(s, q)) if *q || !is_reserved(s))
                {
                    Some(self.ident()?)
                } else {
                    None
                };
                items.push((e, alias));
            }
            if !self.eat_sym(",") {
                break;
            }
        }
        let from = if self.eat_kw("FROM") {
            Some(self.qname()?)
        } else {
            None
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat_kws(&["ORDER", "BY"]) {
            loop {
                let e = self.expr()?;
                let desc = self.eat_kw("DESC");
                if !desc {
                    self.eat_kw("ASC");
                }
                order.push((e, desc));
                if !self.eat_sym(",") {
                    break;
                }
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.number()? as usize)
        } else {
            None
        };
        Ok(Select {
            items,
            star,
            from,
            filter,
            order,
            limit,
        })
    }

    fn expr(&mut self) -> SqlResult<Expr> {
        let mut l = self.and_expr()?;
        while self.eat_kw("OR") {
            l = Expr::Or(Box::new(l), Box::new(self.and_expr()?));
        }
        Ok(l)
    }

    fn and_expr(&mut self) -> SqlResult<Expr> {
        let mut l = self.not_expr()?;
        while self.eat_kw("AND") {
            l = Expr::And(Box::new(l), Box::new(self.not_expr()?));
        }
        Ok(l)
    }

    fn not_expr(&mut self) -> SqlResult<Expr> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.not_expr()?)));
        }
        let l = self.primary()?;
        if self.eat_kw("IS") {
            let neg = self.eat_kw("NOT");
            self.expect_kw("NULL")?;
            return Ok(Expr::IsNull(Box::new(l), neg));
        }
        let neg = self.eat_kw("NOT");
        if self.eat_kw("IN") {
            self.expect_sym("(")?;
            let mut list = Vec::new();
            loop {
                list.push(self.primary()?);
                if self.eat_sym(")") {
                    break;
                }
                self.expect_sym(",")?;
            }
            return Ok(Expr::In(Box::new(l), list, neg));
        }
        if self.eat_kw("LIKE") {
            return Ok(Expr::Like(Box::new(l), Box::new(self.primary()?), neg));
        }
        if neg {
            return Err(self.err("expected IN or LIKE after NOT"));
        }
        for (sym, op) in [
            ("=", "="),
            ("<=>", "="),
            ("!=", "!="),
            ("<>", "!="),
            ("<=", "<="),
            (">=", ">="),
            ("<", "<"),
            (">", ">"),
        ] {
            if self.eat_sym(sym) {
                return Ok(Expr::Cmp(op, Box::new(l), Box::new(self.primary()?)));
            }
        }
        Ok(l)
    }

    fn primary(&mut self) -> SqlResult<Expr> {
        match self.peek().cloned() {
            Some(Tok::Sym("(")) => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect_sym(")")?;
                Ok(e)
            }
            Some(Tok::Sym("-")) => {
                self.pos += 1;
                match self.primary()? {
                    Expr::Lit(Value::Int(i)) => Ok(Expr::Lit(Value::Int(-i))),
                    Expr::Lit(Value::Float(f)) => Ok(Expr::Lit(Value::Float(-f))),
                    _ => Err(self.err("expected a number after '-'")),
                }
            }
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(Expr::Lit(match n.parse::<i128>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => Value::Float(n.parse().map_err(|_| self.err("bad number"))?),
                }))
            }
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Expr::Lit(Value::Str(s)))
            }
            Some(Tok::Var(v)) => {
                self.pos += 1;
                Ok(Expr::Var(v))
            }
            Some(Tok::Ident(s, quoted)) => {
                self.pos += 1;
                if !quoted && s.eq_ignore_ascii_case("NULL") {
                    return Ok(Expr::Lit(Value::Null));
                }
                if !quoted && (s.eq_ignore_ascii_case("TRUE") || s.eq_ignore_ascii_case("FALSE")) {
                    return Ok(Expr::Lit(Value::Bool(s.eq_ignore_ascii_case("TRUE"))));
                }
                if !quoted && self.eat_sym("(") {
                    let fname = s.to_ascii_lowercase();
                    if fname == "count" {
                        if !self.eat_sym("*") {
                            self.primary()?;
                        }
                        self.expect_sym(")")?;
                        return Ok(Expr::CountStar);
                    }
                    let mut args = Vec::new();
                    if !self.eat_sym(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.eat_sym(")") {
                                break;
                            }
                            self.expect_sym(",")?;
                        }
                    }
                    return Ok(Expr::Func(fname, args));
                }
                let mut name = s;
                while self.eat_sym(".") {
                    name = self.ident()?;
                }
                Ok(Expr::Col(name))
            }
            _ => Err(self.err("expected an expression")),
        }
    }
}

fn is_reserved(s: &str) -> bool {
    [
        "FROM", "WHERE", "ORDER", "LIMIT", "AND", "OR", "AS", "GROUP", "UNION",
    ]
    .iter()
    .any(|k| s.eq_ignore_ascii_case(k))
}

// ---------------------------------------------------------------------------------------------
// Execution

/// One `SHOW TRANSACTION` row: (TransactionId, Label, TransactionStatus).
pub type TxnRow = (i64, String, String);

/// Lists the transactions of a database for `SHOW TRANSACTION`.
pub type TxnLister<'a> = &'a dyn Fn(&str) -> Vec<TxnRow>;

/// What a statement may consult besides the catalog.
pub struct SqlContext<'a> {
    /// Which system is emulated (engine names, version strings).
    pub mode: Mode,
    /// Default database (`USE`, or the `{db}` of the HTTP endpoint); updated by `USE`.
    pub current_db: Option<String>,
    /// Transaction rows for `SHOW TRANSACTION`: (db) → rows of
    /// (TransactionId, Label, TransactionStatus), evaluated against the WHERE clause.
    pub transactions: TxnLister<'a>,
}

struct RowEnv<'a> {
    names: &'a [String],
    row: &'a [Value],
    ctx: &'a SqlContext<'a>,
}

impl Env for RowEnv<'_> {
    fn column(&self, name: &str) -> Option<Value> {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))
            .map(|i| self.row[i].clone())
    }

    fn var(&self, name: &str) -> Value {
        variable(self.ctx, name)
    }
}

fn variable(ctx: &SqlContext<'_>, name: &str) -> Value {
    let s = |v: &str| Value::Str(v.to_string());
    match name {
        "max_allowed_packet" => Value::Int(16_777_216),
        "wait_timeout" | "interactive_timeout" => Value::Int(28_800),
        "version" => s("5.7.99"),
        "version_comment" => s(match ctx.mode {
            Mode::Doris => "Doris version doris-2.1.7 (cdcflow emulator)",
            Mode::StarRocks => "StarRocks version 3.5.0 (cdcflow emulator)",
        }),
        "current_version" => s(match ctx.mode {
            Mode::Doris => "doris-2.1.7-emulator",
            Mode::StarRocks => "3.5.0-emulator",
        }),
        "database" | "schema" => ctx
            .current_db
            .clone()
            .map(Value::Str)
            .unwrap_or(Value::Null),
        "lower_case_table_names" => Value::Int(0),
        "autocommit" => Value::Int(1),
        "auto_increment_increment" => Value::Int(1),
        "sql_mode" => s(""),
        "tx_isolation" | "transaction_isolation" => s("REPEATABLE-READ"),
        "time_zone" | "system_time_zone" => s("Asia/Shanghai"),
        "connection_id" => Value::Int(1),
        "user" | "current_user" => s("root"),
        n if n.starts_with("character_set") => s("utf8mb4"),
        n if n.starts_with("collation") => s("utf8mb4_general_ci"),
        _ => Value::Null,
    }
}

fn lookup_db<'c>(
    catalog: &'c Catalog,
    ctx: &SqlContext<'_>,
    db: &Option<String>,
) -> SqlResult<(String, &'c Database)> {
    let name = db
        .clone()
        .or_else(|| ctx.current_db.clone())
        .ok_or_else(|| SqlError::new(1046, "No database selected"))?;
    let d = catalog
        .dbs
        .get(&name)
        .ok_or_else(|| SqlError::new(1049, format!("Unknown database '{name}'")))?;
    Ok((name, d))
}

fn lookup_table_mut<'c>(
    catalog: &'c mut Catalog,
    ctx: &SqlContext<'_>,
    q: &QName,
) -> SqlResult<&'c mut Table> {
    let (db, _) = lookup_db(catalog, ctx, &q.0)?;
    catalog
        .table_mut(&db, &q.1)
        .ok_or_else(|| SqlError::new(1146, format!("Unknown table '{}'", q.1)))
}

/// Parses and runs one statement against the catalog.
pub fn execute(catalog: &mut Catalog, ctx: &mut SqlContext<'_>, sql: &str) -> SqlResult<SqlOutput> {
    let stmt = Parser {
        toks: tokenize(sql)?,
        pos: 0,
    }
    .statement()?;
    match stmt {
        Stmt::Noop => Ok(SqlOutput::Ok),
        Stmt::Use(db) => {
            if !catalog.dbs.contains_key(&db) {
                return Err(SqlError::new(1049, format!("Unknown database '{db}'")));
            }
            ctx.current_db = Some(db);
            Ok(SqlOutput::Ok)
        }
        Stmt::CreateDb(name, ine) => {
            if catalog.dbs.contains_key(&name) {
                if ine {
                    return Ok(SqlOutput::Ok);
                }
                return Err(SqlError::new(
                    1007,
                    format!("Can't create database '{name}'; database exists"),
                ));
            }
            catalog.dbs.insert(name, Database::default());
            Ok(SqlOutput::Ok)
        }
        Stmt::DropDb(name, ie) => {
            if catalog.dbs.remove(&name).is_none() && !ie {
                return Err(SqlError::new(
                    1008,
                    format!("Can't drop database '{name}'; database doesn't exist"),
                ));
            }
            Ok(SqlOutput::Ok)
        }
        Stmt::CreateTable(db, table, ine) => {
            let (db, _) = lookup_db(catalog, ctx, &db)?;
            let d = catalog
                .dbs
                .get_mut(&db)
                .ok_or_else(|| SqlError::new(1049, format!("Unknown database '{db}'")))?;
            if d.tables.contains_key(&table.name) {
                if ine {
                    return Ok(SqlOutput::Ok);
                }
                return Err(SqlError::new(
                    1050,
                    format!("Table '{}' already exists", table.name),
                ));
            }
            let mut table = *table;
            adapt_types(ctx.mode, &mut table);
            d.tables.insert(table.name.clone(), table);
            Ok(SqlOutput::Ok)
        }
        Stmt::DropTable(q, ie) => {
            let (db, _) = lookup_db(catalog, ctx, &q.0)?;
            let removed = catalog.dbs.get_mut(&db).and_then(|d| d.tables.remove(&q.1));
            if removed.is_none() && !ie {
                return Err(SqlError::new(1051, format!("Unknown table '{}'", q.1)));
            }
            Ok(SqlOutput::Ok)
        }
        Stmt::Truncate(q) => {
            let t = lookup_table_mut(catalog, ctx, &q)?;
            t.rows.clear();
            Ok(SqlOutput::Ok)
        }
        Stmt::Alter(q, ops) => {
            let t = lookup_table_mut(catalog, ctx, &q)?;
            let mut copy = t.clone();
            for op in ops {
                alter(&mut copy, op)?;
            }
            adapt_types(ctx.mode, &mut copy);
            copy.schema_version += 1;
            *t = copy;
            Ok(SqlOutput::Ok)
        }
        Stmt::Select(sel) => select(catalog, ctx, &sel),
        Stmt::ShowDatabases => Ok(SqlOutput::Rows {
            columns: vec!["Database".into()],
            rows: catalog
                .dbs
                .keys()
                .map(|d| vec![Value::Str(d.clone())])
                .collect(),
        }),
        Stmt::ShowTables(db) => {
            let (name, d) = lookup_db(catalog, ctx, &db)?;
            Ok(SqlOutput::Rows {
                columns: vec![format!("Tables_in_{name}")],
                rows: d
                    .tables
                    .keys()
                    .map(|t| vec![Value::Str(t.clone())])
                    .collect(),
            })
        }
        Stmt::ShowColumns(q, full) => {
            let (db, _) = lookup_db(catalog, ctx, &q.0)?;
            let t = catalog
                .table(&db, &q.1)
                .ok_or_else(|| SqlError::new(1146, format!("Unknown table '{}'", q.1)))?;
            let s = |v: &str| Value::Str(v.to_string());
            let mut columns: Vec<String> = ["Field", "Type", "Null", "Key", "Default", "Extra"]
                .map(String::from)
                .into();
            if full {
                columns = [
                    "Field",
                    "Type",
                    "Collation",
                    "Null",
                    "Key",
                    "Default",
                    "Extra",
                    "Privileges",
                    "Comment",
                ]
                .map(String::from)
                .into();
            }
            let rows = t
                .columns
                .iter()
                .map(|c| {
                    let null = s(if c.nullable { "YES" } else { "NO" });
                    let key = s(if c.is_key { "true" } else { "false" });
                    let default = c.default.clone().map(Value::Str).unwrap_or(Value::Null);
                    let extra = s(match c.agg {
                        Some(AggType::Sum) => "SUM",
                        Some(AggType::Max) => "MAX",
                        Some(AggType::Min) => "MIN",
                        Some(AggType::Replace) => "REPLACE",
                        Some(AggType::ReplaceIfNotNull) => "REPLACE_IF_NOT_NULL",
                        None => "",
                    });
                    if full {
                        vec![
                            s(&c.name),
                            s(&c.ty.to_string()),
                            Value::Null,
                            null,
                            key,
                            default,
                            extra,
                            s(""),
                            s(&c.comment),
                        ]
                    } else {
                        vec![s(&c.name), s(&c.ty.to_string()), null, key, default, extra]
                    }
                })
                .collect();
            Ok(SqlOutput::Rows { columns, rows })
        }
        Stmt::ShowCreate(q) => {
            let (db, _) = lookup_db(catalog, ctx, &q.0)?;
            let t = catalog
                .table(&db, &q.1)
                .ok_or_else(|| SqlError::new(1146, format!("Unknown table '{}'", q.1)))?;
            Ok(SqlOutput::Rows {
                columns: vec!["Table".into(), "Create Table".into()],
                rows: vec![vec![Value::Str(t.name.clone()), Value::Str(show_create(t))]],
            })
        }
        Stmt::ShowAlter(db, cond) => {
            // Schema changes apply synchronously, so the last job of a changed table is FINISHED.
            let (db, d) = lookup_db(catalog, ctx, &db)?;
            let names: Vec<String> = [
                "JobId",
                "TableName",
                "CreateTime",
                "FinishTime",
                "IndexName",
                "IndexId",
                "OriginIndexId",
                "SchemaVersion",
                "TransactionId",
                "State",
                "Msg",
                "Progress",
                "Timeout",
            ]
            .map(String::from)
            .into();
            let s = |v: &str| Value::Str(v.to_string());
            let mut rows = Vec::new();
            for t in d.tables.values().filter(|t| t.schema_version > 0) {
                let row = vec![
                    Value::Int(i128::from(t.schema_version)),
                    s(&t.name),
                    s(""),
                    s(""),
                    s(&t.name),
                    Value::Int(0),
                    Value::Int(0),
                    s(&format!("{}:0", t.schema_version)),
                    Value::Int(0),
                    s("FINISHED"),
                    s(""),
                    s("NULL"),
                    Value::Int(86_400),
                ];
                let env = RowEnv {
                    names: &names,
                    row: &row,
                    ctx,
                };
                if cond.as_ref().is_none_or(|c| c.holds(&env)) {
                    rows.push(row);
                }
            }
            let _ = db;
            Ok(SqlOutput::Rows {
                columns: names,
                rows,
            })
        }
        Stmt::ShowTransaction(db, cond) => {
            let (db, _) = lookup_db(catalog, ctx, &db)?;
            let names: Vec<String> = ["TransactionId", "Label", "TransactionStatus"]
                .map(String::from)
                .into();
            let mut rows = Vec::new();
            for (id, label, status) in (ctx.transactions)(&db) {
                let row = vec![
                    Value::Int(i128::from(id)),
                    Value::Str(label),
                    Value::Str(status),
                ];
                let env_names: Vec<String> = ["ID", "LABEL", "STATUS"].map(String::from).into();
                let env = RowEnv {
                    names: &env_names,
                    row: &row,
                    ctx,
                };
                if cond.as_ref().is_none_or(|c| c.holds(&env)) {
                    rows.push(row);
                }
            }
            Ok(SqlOutput::Rows {
                columns: names,
                rows,
            })
        }
        Stmt::ShowVariables => Ok(SqlOutput::Rows {
            columns: vec!["Variable_name".into(), "Value".into()],
            rows: [
                "version",
                "version_comment",
                "lower_case_table_names",
                "time_zone",
            ]
            .iter()
            .map(|v| vec![Value::Str((*v).into()), variable(ctx, v)])
            .collect(),
        }),
    }
}

/// StarRocks' DATETIME takes no precision argument and, since v3.3.5 (the version emulated),
/// keeps microseconds; Doris' DATETIME(p) keeps exactly p digits.
fn adapt_types(mode: Mode, t: &mut Table) {
    if mode == Mode::StarRocks {
        for c in &mut t.columns {
            if let ColumnType::DateTime { precision } = &mut c.ty {
                *precision = 6;
            }
        }
    }
}

fn alter(t: &mut Table, op: AlterOp) -> SqlResult<()> {
    let place = |t: &Table, pos: &Option<Position>| -> SqlResult<usize> {
        match pos {
            None => Ok(t.columns.len()),
            Some(Position::First) => Ok(0),
            Some(Position::After(c)) => t
                .column_index(c)
                .map(|i| i + 1)
                .ok_or_else(|| SqlError::new(1105, format!("Column[{c}] does not exists"))),
        }
    };
    match op {
        AlterOp::Add(mut col, pos) => {
            if t.column_index(&col.name).is_some() {
                return Err(SqlError::new(
                    1060,
                    format!(
                        "Can not add column which already exists in base table: {}",
                        col.name
                    ),
                ));
            }
            if t.keys_type == KeysType::Aggregate && !col.is_key && col.agg.is_none() {
                col.agg = Some(AggType::Replace);
            }
            let mut at = place(t, &pos)?;
            let nkeys = t.key_indexes().len();
            if !col.is_key && at < nkeys {
                at = nkeys;
            }
            let default = match &col.default {
                Some(d)
                    if !d.eq_ignore_ascii_case("null")
                        && !d.to_ascii_uppercase().starts_with("CURRENT") =>
                {
                    convert_text(d, &col.ty).unwrap_or(Value::Null)
                }
                _ => Value::Null,
            };
            if !col.nullable && col.default.is_none() && !t.rows.is_empty() {
                return Err(SqlError::new(
                    1105,
                    format!("Column {} is NOT NULL and has no default value", col.name),
                ));
            }
            t.columns.insert(at, col);
            for r in t.rows.values_mut() {
                r.values.insert(at, default.clone());
            }
        }
        AlterOp::Drop(name) => {
            let i = t
                .column_index(&name)
                .ok_or_else(|| SqlError::new(1091, format!("Column does not exists: {name}")))?;
            if t.columns[i].is_key
                && matches!(
                    t.keys_type,
                    KeysType::Unique | KeysType::Primary | KeysType::Aggregate
                )
            {
                let model = match t.keys_type {
                    KeysType::Primary => "primary",
                    KeysType::Aggregate => "Aggregate",
                    _ => "Unique",
                };
                return Err(SqlError::new(
                    1105,
                    format!("Can not drop key column in {model} data model table"),
                ));
            }
            if t.columns.len() == 1 {
                return Err(SqlError::new(1105, "Can not drop all columns of a table"));
            }
            if let SequenceMode::Mapped(s) = &t.sequence
                && s.eq_ignore_ascii_case(&name)
            {
                return Err(SqlError::new(
                    1105,
                    format!("Can not drop sequence mapping column[{name}]"),
                ));
            }
            t.columns.remove(i);
            if !t.columns.iter().any(|c| c.is_key) {
                t.columns[0].is_key = true;
            }
            for r in t.rows.values_mut() {
                r.values.remove(i);
            }
        }
        AlterOp::Rename(old, new) => {
            let i = t
                .column_index(&old)
                .ok_or_else(|| SqlError::new(1105, format!("Column[{old}] does not exists")))?;
            if t.column_index(&new).is_some() {
                return Err(SqlError::new(
                    1105,
                    format!("Column name[{new}] is already used"),
                ));
            }
            if let SequenceMode::Mapped(s) = &mut t.sequence
                && s.eq_ignore_ascii_case(&old)
            {
                *s = new.clone();
            }
            t.columns[i].name = new;
        }
        AlterOp::Modify(col, pos) => {
            let i = t.column_index(&col.name).ok_or_else(|| {
                SqlError::new(1105, format!("Column[{}] does not exists", col.name))
            })?;
            let old = t.columns[i].clone();
            if !old.ty.can_widen_to(&col.ty) {
                return Err(SqlError::new(
                    1105,
                    format!(
                        "Can not change {} to {} for column {}",
                        old.ty, col.ty, col.name
                    ),
                ));
            }
            if old.nullable && !col.nullable {
                return Err(SqlError::new(
                    1105,
                    "Can not change from nullable to non-nullable",
                ));
            }
            let mut new = col;
            new.is_key = old.is_key;
            if new.agg.is_none() {
                new.agg = old.agg;
            }
            for r in t.rows.values_mut() {
                let v = r.values[i]
                    .to_text()
                    .and_then(|s| convert_text(&s, &new.ty).ok())
                    .unwrap_or(Value::Null);
                r.values[i] = v;
            }
            t.columns[i] = new;
            if pos.is_some() {
                let to = place(t, &pos)?;
                let col = t.columns.remove(i);
                let to = if to > i { to - 1 } else { to };
                t.columns.insert(to, col);
                for r in t.rows.values_mut() {
                    let v = r.values.remove(i);
                    r.values.insert(to, v);
                }
            }
        }
        AlterOp::Comment(c) => t.comment = c,
        AlterOp::SetProps(p) => t.properties.extend(p),
    }
    Ok(())
}

/// Renders a table back as a `CREATE TABLE` statement (for `SHOW CREATE TABLE`).
pub fn show_create(t: &Table) -> String {
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("  `{}` {}", c.name, c.ty);
            s.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
            if let Some(d) = &c.default {
                s.push_str(&format!(" DEFAULT \"{d}\""));
            }
            if !c.comment.is_empty() {
                s.push_str(&format!(" COMMENT \"{}\"", c.comment));
            }
            s
        })
        .collect();
    let keys: Vec<String> = t
        .columns
        .iter()
        .filter(|c| c.is_key)
        .map(|c| format!("`{}`", c.name))
        .collect();
    let props: Vec<String> = t
        .properties
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\""))
        .collect();
    format!(
        "CREATE TABLE `{}` (\n{}\n) ENGINE=OLAP\n{}({})\nCOMMENT '{}'\nDISTRIBUTED BY HASH({}) BUCKETS AUTO\nPROPERTIES ({});",
        t.name,
        cols.join(",\n"),
        t.keys_type.sql(),
        keys.join(", "),
        t.comment,
        keys.join(", "),
        props.join(", ")
    )
}

fn info_schema(
    catalog: &Catalog,
    ctx: &SqlContext<'_>,
    table: &str,
) -> SqlResult<(Vec<String>, Vec<Vec<Value>>)> {
    let s = |v: &str| Value::Str(v.to_string());
    let opt = |v: Option<u64>| v.map(|x| Value::Int(i128::from(x))).unwrap_or(Value::Null);
    let names = |a: &[&str]| a.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    match table.to_ascii_lowercase().as_str() {
        "schemata" => Ok((
            names(&[
                "CATALOG_NAME",
                "SCHEMA_NAME",
                "DEFAULT_CHARACTER_SET_NAME",
                "DEFAULT_COLLATION_NAME",
                "SQL_PATH",
            ]),
            catalog
                .dbs
                .keys()
                .map(|d| {
                    vec![
                        s("def"),
                        s(d),
                        s("utf8mb4"),
                        s("utf8mb4_general_ci"),
                        Value::Null,
                    ]
                })
                .collect(),
        )),
        "tables" => {
            let engine = match ctx.mode {
                Mode::Doris => "Doris",
                Mode::StarRocks => "StarRocks",
            };
            let mut rows = Vec::new();
            for (dn, d) in &catalog.dbs {
                for (tn, t) in &d.tables {
                    let n = t.rows.values().filter(|r| !r.deleted).count() as i128;
                    rows.push(vec![
                        s("def"),
                        s(dn),
                        s(tn),
                        s("BASE TABLE"),
                        s(engine),
                        Value::Int(n),
                        s(&t.comment),
                    ]);
                }
            }
            Ok((
                names(&[
                    "TABLE_CATALOG",
                    "TABLE_SCHEMA",
                    "TABLE_NAME",
                    "TABLE_TYPE",
                    "ENGINE",
                    "TABLE_ROWS",
                    "TABLE_COMMENT",
                ]),
                rows,
            ))
        }
        "columns" => {
            let mut rows = Vec::new();
            for (dn, d) in &catalog.dbs {
                for (tn, t) in &d.tables {
                    for (i, c) in t.columns.iter().enumerate() {
                        let key = if !c.is_key {
                            ""
                        } else {
                            match t.keys_type {
                                KeysType::Primary => "PRI",
                                KeysType::Unique => "UNI",
                                KeysType::Duplicate => "DUP",
                                KeysType::Aggregate => "AGG",
                            }
                        };
                        let size = c.ty.char_length().or(c.ty.numeric_precision());
                        rows.push(vec![
                            s("def"),
                            s(dn),
                            s(tn),
                            s(&c.name),
                            Value::Int(i as i128 + 1),
                            c.default.clone().map(Value::Str).unwrap_or(Value::Null),
                            s(if c.nullable { "YES" } else { "NO" }),
                            s(&c.ty.data_type_name()),
                            opt(c.ty.char_length()),
                            opt(c.ty.char_length()),
                            opt(c.ty.numeric_precision()),
                            opt(c.ty.numeric_scale()),
                            match c.ty {
                                ColumnType::DateTime { precision } => {
                                    Value::Int(i128::from(precision))
                                }
                                _ => Value::Null,
                            },
                            s(&c.ty.to_string().to_ascii_lowercase()),
                            s(key),
                            s(""),
                            s(&c.comment),
                            opt(size),
                            opt(c.ty.numeric_scale()),
                        ]);
                    }
                }
            }
            Ok((
                names(&[
                    "TABLE_CATALOG",
                    "TABLE_SCHEMA",
                    "TABLE_NAME",
                    "COLUMN_NAME",
                    "ORDINAL_POSITION",
                    "COLUMN_DEFAULT",
                    "IS_NULLABLE",
                    "DATA_TYPE",
                    "CHARACTER_MAXIMUM_LENGTH",
                    "CHARACTER_OCTET_LENGTH",
                    "NUMERIC_PRECISION",
                    "NUMERIC_SCALE",
                    "DATETIME_PRECISION",
                    "COLUMN_TYPE",
                    "COLUMN_KEY",
                    "EXTRA",
                    "COLUMN_COMMENT",
                    "COLUMN_SIZE",
                    "DECIMAL_DIGITS",
                ]),
                rows,
            ))
        }
        other => Err(SqlError::new(
            1146,
            format!("Unknown table 'information_schema.{other}'"),
        )),
    }
}

fn select(catalog: &Catalog, ctx: &SqlContext<'_>, sel: &Select) -> SqlResult<SqlOutput> {
    let (names, mut rows) = match &sel.from {
        None => (Vec::new(), vec![Vec::new()]),
        Some((Some(db), t)) if db.eq_ignore_ascii_case("information_schema") => {
            info_schema(catalog, ctx, t)?
        }
        Some(q) => {
            let (db, _) = lookup_db(catalog, ctx, &q.0)?;
            let t = catalog
                .table(&db, &q.1)
                .ok_or_else(|| SqlError::new(1146, format!("Unknown table '{}'", q.1)))?;
            let rows = t
                .rows
                .values()
                .filter(|r| !r.deleted)
                .map(|r| r.values.clone())
                .collect();
            (t.columns.iter().map(|c| c.name.clone()).collect(), rows)
        }
    };
    if let Some(f) = &sel.filter {
        rows.retain(|r| {
            f.holds(&RowEnv {
                names: &names,
                row: r,
                ctx,
            })
        });
    }
    for (e, desc) in sel.order.iter().rev() {
        rows.sort_by(|a, b| {
            let x = e.eval(&RowEnv {
                names: &names,
                row: a,
                ctx,
            });
            let y = e.eval(&RowEnv {
                names: &names,
                row: b,
                ctx,
            });
            if *desc { y.cmp(&x) } else { x.cmp(&y) }
        });
    }
    if sel.items.iter().any(|(e, _)| *e == Expr::CountStar) {
        let n = rows.len() as i128;
        let columns = sel
            .items
            .iter()
            .map(|(e, a)| a.clone().unwrap_or_else(|| e.label()))
            .collect();
        let out = sel
            .items
            .iter()
            .map(|(e, _)| {
                if *e == Expr::CountStar {
                    Value::Int(n)
                } else {
                    Value::Null
                }
            })
            .collect();
        return Ok(SqlOutput::Rows {
            columns,
            rows: vec![out],
        });
    }
    if let Some(l) = sel.limit {
        rows.truncate(l);
    }
    let mut columns = Vec::new();
    if sel.star {
        columns.extend(names.iter().cloned());
    }
    for (e, a) in &sel.items {
        if let (Expr::Col(c), None) = (e, &sel.from) {
            return Err(SqlError::new(
                1054,
                format!("Unknown column '{c}' in 'field list'"),
            ));
        }
        if let Expr::Col(c) = e
            && !names.iter().any(|n| n.eq_ignore_ascii_case(c))
        {
            return Err(SqlError::new(
                1054,
                format!("Unknown column '{c}' in 'field list'"),
            ));
        }
        columns.push(a.clone().unwrap_or_else(|| e.label()));
    }
    let out = rows
        .iter()
        .map(|r| {
            let env = RowEnv {
                names: &names,
                row: r,
                ctx,
            };
            let mut v = if sel.star { r.clone() } else { Vec::new() };
            v.extend(sel.items.iter().map(|(e, _)| e.eval(&env)));
            v
        })
        .collect();
    Ok(SqlOutput::Rows { columns, rows: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_exec(cat: &mut Catalog, sql: &str) -> SqlResult<SqlOutput> {
        let none = |_: &str| Vec::new();
        let mut ctx = SqlContext {
            mode: Mode::Doris,
            current_db: Some("d".into()),
            transactions: &none,
        };
        execute(cat, &mut ctx, sql)
    }

    #[test]
    fn create_alter_and_describe_a_doris_table() {
        let mut cat = Catalog::default();
        ctx_exec(&mut cat, "CREATE DATABASE IF NOT EXISTS `d`").unwrap();
        ctx_exec(
            &mut cat,
            "CREATE TABLE IF NOT EXISTS `d`.`t` (`id` BIGINT COMMENT 'pk', `name` VARCHAR(765) DEFAULT 'x' COMMENT '', \
             `ts` DATETIMEV2(3), `amount` DECIMALV3(10,2)) UNIQUE KEY(`id`) COMMENT 'c' \
             AUTO PARTITION BY RANGE (date_trunc(`ts`, 'day')) () DISTRIBUTED BY HASH(`id`) BUCKETS AUTO \
             PROPERTIES ('replication_num' = '1')",
        )
        .unwrap();
        ctx_exec(
            &mut cat,
            "ALTER TABLE `d`.`t` ADD COLUMN `extra` INT COMMENT 'e'",
        )
        .unwrap();
        ctx_exec(&mut cat, "ALTER TABLE d.t RENAME COLUMN extra extra2").unwrap();
        ctx_exec(
            &mut cat,
            "ALTER TABLE d.t MODIFY COLUMN amount DECIMALV3(12,2)",
        )
        .unwrap();
        let err = ctx_exec(&mut cat, "ALTER TABLE d.t DROP COLUMN id").unwrap_err();
        assert!(err.message.contains("Can not drop key column"), "{err}");
        let out = ctx_exec(
            &mut cat,
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION",
        )
        .unwrap();
        let SqlOutput::Rows { rows, .. } = out else {
            panic!("expected rows")
        };
        let names: Vec<String> = rows.iter().map(|r| r[0].to_text().unwrap()).collect();
        assert_eq!(names, ["id", "name", "ts", "amount", "extra2"]);
        assert_eq!(rows[0][2].to_text().unwrap(), "UNI");
        assert_eq!(rows[3][1].to_text().unwrap(), "decimal");
    }

    #[test]
    fn key_columns_must_be_a_prefix() {
        let mut cat = Catalog::default();
        ctx_exec(&mut cat, "CREATE DATABASE d").unwrap();
        let err = ctx_exec(
            &mut cat,
            "CREATE TABLE t (a INT, b INT) UNIQUE KEY(b) DISTRIBUTED BY HASH(b)",
        )
        .unwrap_err();
        assert!(err.message.contains("ordered prefix"), "{err}");
    }

    #[test]
    fn where_expressions_evaluate_like_sql() {
        struct E;
        impl Env for E {
            fn column(&self, n: &str) -> Option<Value> {
                (n == "k").then_some(Value::Int(5))
            }
            fn var(&self, _: &str) -> Value {
                Value::Null
            }
        }
        assert!(parse_expr("k > 3 AND k IN (1, 5)").unwrap().holds(&E));
        assert!(!parse_expr("k = '6' OR k IS NULL").unwrap().holds(&E));
    }
}
