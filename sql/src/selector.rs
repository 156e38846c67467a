//! Flink CDC's table selector syntax for `transform[].source-table` (case-insensitive, per part):
//! `,` separates alternatives (`\,` is a literal comma), an unescaped `.` separates
//! namespace/schema/table, and `\.` is the regex "any character".

use cdcflow_engine::TableId;
use regex::Regex;

/// A compiled `source-table` selector.
#[derive(Debug, Clone)]
pub struct TableSelector {
    alternatives: Vec<Vec<Regex>>,
}

/// Splits on `sep` where it is not preceded by a backslash; `\sep` is kept as written.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut prev_backslash = false;
    for c in s.chars() {
        if c == sep && !prev_backslash {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("non-empty").push(c);
        }
        prev_backslash = c == '\\' && !prev_backslash;
    }
    parts
}

impl TableSelector {
    /// Compiles a selector; the error explains which part is not a valid regex.
    pub fn parse(s: &str) -> Result<TableSelector, String> {
        let mut alternatives = Vec::new();
        for entry in split_unescaped(s, ',') {
            let entry = entry.trim().replace("\\,", ",");
            if entry.is_empty() {
                continue;
            }
            let parts = split_unescaped(&entry, '.');
            if parts.len() > 3 {
                return Err(format!(
                    "selector `{entry}` has {} parts; use `table`, `db.table` or `namespace.db.table` (write `\\.` for a regex dot)",
                    parts.len()
                ));
            }
            let mut regexes = Vec::with_capacity(parts.len());
            for p in parts {
                let pattern = p.replace("\\.", ".");
                let re = Regex::new(&format!("(?i)^(?:{pattern})$")).map_err(|e| {
                    format!(
                        "invalid pattern `{pattern}` in selector `{entry}` ({})",
                        one_line(&e)
                    )
                })?;
                regexes.push(re);
            }
            alternatives.push(regexes);
        }
        if alternatives.is_empty() {
            return Err("empty table selector".into());
        }
        Ok(TableSelector { alternatives })
    }

    /// Whether the table id is selected.
    pub fn matches(&self, id: &TableId) -> bool {
        self.alternatives
            .iter()
            .any(|parts| match parts.as_slice() {
                [t] => t.is_match(&id.table),
                [s, t] => s.is_match(&id.schema) && t.is_match(&id.table),
                [n, s, t] => {
                    id.namespace.as_deref().is_some_and(|ns| n.is_match(ns))
                        && s.is_match(&id.schema)
                        && t.is_match(&id.table)
                }
                _ => false,
            })
    }
}

/// The last line of a regex error (its multi-line form draws a caret under the pattern).
fn one_line(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .last()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Flink's route pattern conversion (`TableIdRouter`): `,` → `|`, an unescaped `.` is a literal
/// dot, `\.` is the regex "any character". Anchored, case-sensitive.
pub fn route_regex(pattern: &str) -> Result<Regex, String> {
    let joined = pattern
        .split(',')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("|");
    const PLACEHOLDER: &str = "\u{0}DOT\u{0}";
    let converted = joined
        .replace("\\.", PLACEHOLDER)
        .replace('.', "\\.")
        .replace(PLACEHOLDER, ".");
    Regex::new(&format!("^(?:{converted})$")).map_err(|e| {
        format!(
            "invalid route pattern `{pattern}` ({}); `.` separates db and table, write `\\.` for a regex dot",
            one_line(&e)
        )
    })
}

/// Parses a routed table id (`db.table` or `ns.db.table`; a bare name has an empty schema).
pub fn parse_table_id(s: &str) -> TableId {
    let parts: Vec<&str> = s.split('.').collect();
    match parts.as_slice() {
        [t] => TableId::new("", *t),
        [d, t] => TableId::new(*d, *t),
        [n, d, rest @ ..] => TableId {
            namespace: Some((*n).to_string()),
            schema: (*d).to_string(),
            table: rest.join("."),
        },
        [] => TableId::new("", ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parts_are_case_insensitive_full_matches() {
        let s = TableSelector::parse("app_db.\\.*, bdb.user_table_[0-9]+").expect("valid");
        assert!(s.matches(&TableId::new("APP_DB", "orders")));
        assert!(s.matches(&TableId::new("bdb", "user_table_12")));
        assert!(
            !s.matches(&TableId::new("bdb", "user_table_x")),
            "full match required"
        );
        assert!(!s.matches(&TableId::new("other", "orders")));
    }

    #[test]
    fn route_patterns_swap_dot_meanings() {
        assert_eq!(
            route_regex("foo.bar").expect("valid").as_str(),
            "^(?:foo\\.bar)$"
        );
        let re = route_regex("db.\\.*").expect("valid");
        assert!(re.is_match("db.anything"));
        assert!(!re.is_match("dbXanything"), "an unescaped dot is literal");
        assert!(!re.is_match("DB.x"), "routes are case-sensitive");
    }
}
