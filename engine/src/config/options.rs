//! Typed reading of a connector's string options, with diagnostics and unknown-key detection.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::{ComponentDef, Diagnostic, Diagnostics, Location, Spanned};

/// One option value with the positions of its key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionValue {
    /// The value as a string (after `${ENV}` substitution).
    pub value: String,
    /// Where the key is.
    pub key_loc: Location,
    /// Where the value is.
    pub value_loc: Location,
    /// For each char of `value`, its location in the file (empty when unknown), so an error at an
    /// offset inside the value (e.g. the third table selector) points at the right column.
    pub char_locs: Vec<Location>,
}

impl OptionValue {
    /// A value whose characters all sit on one line, starting at `value_loc` (for tests and
    /// programmatic configs).
    pub fn new(value: impl Into<String>, key_loc: Location, value_loc: Location) -> Self {
        let value = value.into();
        let char_locs = (0..value.chars().count())
            .map(|i| Location {
                line: value_loc.line,
                column: value_loc.column + i,
            })
            .collect();
        OptionValue {
            value,
            key_loc,
            value_loc,
            char_locs,
        }
    }

    /// File location of the character at `char_offset` in `value` (clamped to the end).
    pub fn location_of(&self, char_offset: usize) -> Location {
        self.char_locs
            .get(char_offset)
            .or(self.char_locs.last())
            .copied()
            .unwrap_or(self.value_loc)
    }
}

/// A secret (password): never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself; call only where it is sent to the server.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"******\"")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

/// Reads a [`ComponentDef`]'s options by name, records every problem in `diags`, and at
/// [`OptionReader::finish`] reports keys nobody asked for, with a did-you-mean hint.
pub struct OptionReader<'a> {
    def: &'a ComponentDef,
    diags: &'a mut Diagnostics,
    known: BTreeSet<&'static str>,
    prefixes: Vec<&'static str>,
}

impl<'a> OptionReader<'a> {
    /// Starts reading `def`'s options; problems go to `diags`.
    pub fn new(def: &'a ComponentDef, diags: &'a mut Diagnostics) -> Self {
        OptionReader {
            def,
            diags,
            known: BTreeSet::new(),
            prefixes: Vec::new(),
        }
    }

    /// The block being read.
    pub fn def(&self) -> &ComponentDef {
        self.def
    }

    /// The raw value of `key`, marking it known.
    pub fn raw(&mut self, key: &'static str) -> Option<&'a OptionValue> {
        self.known.insert(key);
        self.def.options.get(key)
    }

    /// An optional string option.
    pub fn string(&mut self, key: &'static str) -> Option<Spanned<String>> {
        self.raw(key)
            .map(|v| Spanned::new(v.value.clone(), v.value_loc))
    }

    /// A required string option; reports it missing otherwise.
    pub fn required(&mut self, key: &'static str) -> Option<Spanned<String>> {
        let v = self.string(key);
        if v.is_none() {
            let (file, loc, path) = (self.def.file.clone(), self.def.loc, self.def.path.clone());
            self.diags.push(Diagnostic {
                file,
                loc,
                path: format!("{path}.{key}"),
                message: format!("missing required option `{key}`"),
                hint: None,
            });
        }
        v
    }

    /// A required option that must not be blank either (`hostname:` with no value is a mistake).
    pub fn required_non_empty(&mut self, key: &'static str) -> Option<Spanned<String>> {
        let v = self.required(key)?;
        if v.value.trim().is_empty() {
            self.error_at(key, v.loc, format!("`{key}` must not be empty"), None);
            return None;
        }
        Some(v)
    }

    /// A value parsed with `FromStr`, or `default` when absent. `expected` describes the type.
    pub fn parse<T: FromStr>(&mut self, key: &'static str, default: T, expected: &str) -> T {
        match self.raw(key) {
            None => default,
            Some(v) => match v.value.trim().parse::<T>() {
                Ok(t) => t,
                Err(_) => {
                    self.error_at(
                        key,
                        v.value_loc,
                        format!("expected {expected}, got `{}`", v.value),
                        None,
                    );
                    default
                }
            },
        }
    }

    /// An optional value parsed with `FromStr`.
    pub fn parse_opt<T: FromStr>(&mut self, key: &'static str, expected: &str) -> Option<T> {
        let v = self.raw(key)?;
        match v.value.trim().parse::<T>() {
            Ok(t) => Some(t),
            Err(_) => {
                self.error_at(
                    key,
                    v.value_loc,
                    format!("expected {expected}, got `{}`", v.value),
                    None,
                );
                None
            }
        }
    }

    /// A number within `min..=max` (either bound optional), or `default` when absent or invalid;
    /// `expected` describes the type (e.g. "an integer").
    pub fn bounded<T>(
        &mut self,
        key: &'static str,
        default: T,
        min: Option<T>,
        max: Option<T>,
        expected: &str,
    ) -> T
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(v) = self.raw(key) else {
            return default;
        };
        let Ok(n) = v.value.trim().parse::<T>() else {
            self.error_at(
                key,
                v.value_loc,
                format!("expected {expected}, got `{}`", v.value),
                None,
            );
            return default;
        };
        let message = match (min, max) {
            (Some(lo), Some(hi)) if n < lo || n > hi => {
                format!("must be between {lo} and {hi}, got `{}`", v.value)
            }
            (Some(lo), None) if n < lo => format!("must be at least {lo}, got `{}`", v.value),
            (None, Some(hi)) if n > hi => format!("must be at most {hi}, got `{}`", v.value),
            _ => return n,
        };
        self.error_at(key, v.value_loc, message, None);
        default
    }

    /// A boolean (`true`/`false`, case-insensitive), or `default`.
    pub fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.raw(key) {
            None => default,
            Some(v) => match v.value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    self.error_at(
                        key,
                        v.value_loc,
                        format!("expected true or false, got `{}`", v.value),
                        None,
                    );
                    default
                }
            },
        }
    }

    /// A Flink duration (`30s`, `3 min`, `1 h`, `500ms`; a bare number is milliseconds), or `default`.
    pub fn duration(&mut self, key: &'static str, default: Duration) -> Duration {
        match self.raw(key) {
            None => default,
            Some(v) => match parse_duration(&v.value) {
                Some(d) => d,
                None => {
                    self.error_at(
                        key,
                        v.value_loc,
                        format!(
                            "expected a duration such as `30s`, `3min` or `1 h`, got `{}`",
                            v.value
                        ),
                        None,
                    );
                    default
                }
            },
        }
    }

    /// All options under `prefix` (e.g. `sink.properties.`), with the prefix removed; passes through.
    pub fn prefixed(&mut self, prefix: &'static str) -> BTreeMap<String, Spanned<String>> {
        self.prefixes.push(prefix);
        self.def
            .options
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|rest| (rest.to_string(), Spanned::new(v.value.clone(), v.value_loc)))
            })
            .collect()
    }

    /// Reports a problem with option `key` at `loc`.
    pub fn error_at(&mut self, key: &str, loc: Location, message: String, hint: Option<String>) {
        let d = Diagnostic {
            file: self.def.file.clone(),
            loc,
            path: format!("{}.{key}", self.def.path),
            message,
            hint,
        };
        self.diags.push(d);
    }

    /// Reports a problem with option `key` at its value (or at the block when absent).
    pub fn error(&mut self, key: &str, message: String, hint: Option<String>) {
        let loc = self
            .def
            .options
            .get(key)
            .map(|v| v.value_loc)
            .unwrap_or(self.def.loc);
        self.error_at(key, loc, message, hint);
    }

    /// Ends reading: every option that was not asked for is reported as unknown, with the closest
    /// known key as a hint. `ignored` lists Flink-only keys accepted without effect (returned so
    /// the caller can warn).
    pub fn finish(self, ignored: &[&str]) -> Vec<Spanned<String>> {
        let mut skipped = Vec::new();
        for (k, v) in &self.def.options {
            if self.known.contains(k.as_str()) || self.prefixes.iter().any(|p| k.starts_with(p)) {
                continue;
            }
            if ignored.contains(&k.as_str()) {
                skipped.push(Spanned::new(k.clone(), v.key_loc));
                continue;
            }
            let hint = did_you_mean(k, self.known.iter().copied().chain(ignored.iter().copied()))
                .map(|s| format!("did you mean `{s}`?"));
            self.diags.push(Diagnostic {
                file: self.def.file.clone(),
                loc: v.key_loc,
                path: format!("{}.{k}", self.def.path),
                message: format!(
                    "unknown option `{k}` for {} `{}`",
                    self.def.path, self.def.kind.value
                ),
                hint,
            });
        }
        skipped
    }
}

/// The candidate closest to `input` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'b>(
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

/// Parses Flink's duration syntax: a number with an optional unit (`ms`, `s`, `sec`, `min`, `h`,
/// `d`, with or without a space); a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let ms = match unit.as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => n,
        "s" | "sec" | "secs" | "second" | "seconds" => n.checked_mul(1000)?,
        "m" | "min" | "mins" | "minute" | "minutes" => n.checked_mul(60_000)?,
        "h" | "hour" | "hours" => n.checked_mul(3_600_000)?,
        "d" | "day" | "days" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_flink_syntax() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("3min"), Some(Duration::from_secs(180)));
        assert_eq!(parse_duration("1 h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("10000"), Some(Duration::from_millis(10000)));
        assert_eq!(parse_duration("ten"), None);
    }

    #[test]
    fn typo_gets_a_hint() {
        assert_eq!(
            did_you_mean("hostnme", ["hostname", "port"]),
            Some("hostname")
        );
        assert_eq!(did_you_mean("zzz", ["hostname", "port"]), None);
    }
}
