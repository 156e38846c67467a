//! Diagnostics for user input: every message names the file, line, column and the option,
//! with a hint when one can be given. All problems are collected, not just the first.

use std::fmt;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where the value starts in the file.
    pub loc: Location,
}

impl<T> Spanned<T> {
    /// Pairs a value with its location.
    pub fn new(value: T, loc: Location) -> Self {
        Spanned { value, loc }
    }
}

/// One problem in the user's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in (as given on the command line).
    pub file: String,
    /// Where in the file.
    pub loc: Location,
    /// Key path of the option, e.g. `source.server-id` or `transform[1].filter`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known (e.g. "did you mean `hostname`?").
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.loc, self.message)?;
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.loc, self.path, self.message
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// A collection of problems; an error when non-empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds one problem.
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }

    /// True when nothing was reported.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of problems reported.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The problems, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// One rendered line per problem (`file:line:col: path: message (hint: …)`), for tests and logs.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(|d| d.to_string()).collect()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}
