//! The pipeline file: Flink CDC 3.x pipeline YAML (`source`, `sink`, `transform`, `route`,
//! `pipeline`), loaded with the position of every key and value so that each error names the
//! file, line, column and option.
//!
//! Three stages, as everywhere in cdcflow: [`load`] turns YAML into a raw [`PipelineDef`] (syntax,
//! `${ENV}` substitution, block shapes, the `pipeline` options); each connector then validates its
//! own options through an [`OptionReader`] (pure: no network); `build` happens at run time.

mod diag;
mod load;
mod options;
mod pipeline;
mod values;

pub use diag::{Diagnostic, Diagnostics, Location, Spanned};
pub use load::{load, load_str, load_str_with_env};
pub use options::{OptionReader, OptionValue, Secret, did_you_mean, parse_duration};
pub use pipeline::{SCHEMA_CHANGE_TAGS, expand_schema_change_tag, is_valid_time_zone, route_regex};
pub use values::{VALUES_SINK_IGNORED, ValuesSinkConfig, validate_values_sink};

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Whether an option key names a secret (password, token, API key…) whose value must never be
/// printed: `Debug` output and `describe()` listings redact these.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "api-key",
        "api_key",
        "credential",
        "private-key",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// `Debug` of a string-keyed map with secret values replaced by `******`.
struct Redacted<'a, V>(&'a BTreeMap<String, V>);

impl<V: fmt::Debug> fmt::Debug for Redacted<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.0 {
            if is_secret_key(k) {
                m.entry(k, &"******");
            } else {
                m.entry(k, v);
            }
        }
        m.finish()
    }
}

impl fmt::Debug for ComponentDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ComponentDef")
            .field("path", &self.path)
            .field("file", &self.file)
            .field("loc", &self.loc)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("options", &Redacted(&self.options))
            .field("include_schema_changes", &self.include_schema_changes)
            .field("exclude_schema_changes", &self.exclude_schema_changes)
            .finish()
    }
}

impl fmt::Debug for UdfDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdfDef")
            .field("loc", &self.loc)
            .field("name", &self.name)
            .field("classpath", &self.classpath)
            .field("python_code", &self.python_code)
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

impl fmt::Debug for ModelDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelDef")
            .field("loc", &self.loc)
            .field("name", &self.name)
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

/// A `source:` or `sink:` block: its `type`, optional `name`, and every other key as a string option.
/// `Debug` redacts secret-looking options (see [`is_secret_key`]).
#[derive(Clone, PartialEq)]
pub struct ComponentDef {
    /// `source` or `sink` (the block's key path).
    pub path: String,
    /// The file the block came from.
    pub file: String,
    /// Where the block starts.
    pub loc: Location,
    /// The `type` key (`mysql`, `doris`, `starrocks`, `values`).
    pub kind: Spanned<String>,
    /// The optional `name` key.
    pub name: Option<Spanned<String>>,
    /// Every other key, as strings (YAML scalars are stringified as Flink CDC does).
    pub options: BTreeMap<String, OptionValue>,
    /// `include.schema.changes` (sink only): tags as written.
    pub include_schema_changes: Option<Vec<Spanned<String>>>,
    /// `exclude.schema.changes` (sink only): tags as written.
    pub exclude_schema_changes: Option<Vec<Spanned<String>>>,
}

/// One `transform:` rule, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformDef {
    /// Where the rule starts.
    pub loc: Location,
    /// `source-table` selector (required).
    pub source_table: Spanned<String>,
    /// `projection` SELECT-list (`\*` already replaced by `*`).
    pub projection: Option<ExprText>,
    /// `filter` WHERE-expression.
    pub filter: Option<ExprText>,
    /// `primary-keys` comma list.
    pub primary_keys: Option<Spanned<String>>,
    /// `partition-keys` comma list.
    pub partition_keys: Option<Spanned<String>>,
    /// `table-options` `k=v` list.
    pub table_options: Option<Spanned<String>>,
    /// `table-options.delimiter`.
    pub table_options_delimiter: Option<Spanned<String>>,
    /// `converter-after-transform` (only `SOFT_DELETE`).
    pub converter_after_transform: Option<Spanned<String>>,
    /// `description`.
    pub description: Option<String>,
}

/// An expression string from the YAML with enough position information to map an offset inside
/// the expression back to a file line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprText {
    /// The expression text as the YAML parser produced it.
    pub text: String,
    /// Location of the scalar's first character (the opening quote for quoted scalars).
    pub loc: Location,
    /// For each char index in `text`, its location in the file (same length as `text.chars()`),
    /// so an error at a character offset can be reported precisely even across folded lines.
    pub char_locs: Vec<Location>,
}

impl ExprText {
    /// File location of the character at `char_offset` in `text` (clamped to the end).
    pub fn location_of(&self, char_offset: usize) -> Location {
        self.char_locs
            .get(char_offset)
            .or(self.char_locs.last())
            .copied()
            .unwrap_or(self.loc)
    }
}

/// One `route:` rule, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteDef {
    /// Where the rule starts.
    pub loc: Location,
    /// `source-table` pattern (required).
    pub source_table: Spanned<String>,
    /// `sink-table` target (required).
    pub sink_table: Spanned<String>,
    /// `replace-symbol`.
    pub replace_symbol: Option<Spanned<String>>,
    /// `description`.
    pub description: Option<String>,
}

/// `pipeline.schema.change.behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchemaChangeBehavior {
    /// Only CREATE TABLE reaches the sink.
    Ignore,
    /// Nothing destructive reaches the sink (Flink CDC's code default).
    #[default]
    Lenient,
    /// Apply as-is; tolerate changes the sink does not support.
    TryEvolve,
    /// Apply as-is; any failure fails the pipeline.
    Evolve,
    /// Any schema change other than CREATE TABLE fails the pipeline.
    Exception,
}

/// `pipeline.execution.runtime-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuntimeMode {
    /// Unbounded: snapshot then binlog forever.
    #[default]
    Streaming,
    /// Bounded: requires `scan.startup.mode: snapshot`.
    Batch,
}

/// `pipeline.route-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteMode {
    /// Every matching rule applies.
    #[default]
    AllMatch,
    /// The first matching rule wins.
    FirstMatch,
}

/// `pipeline.sink.partitioning.strategy`: the shuffle key in front of the sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SinkPartitioningStrategy {
    /// The sink decides (Doris and StarRocks: table id + primary key).
    #[default]
    SinkDefined,
    /// Hash of table id and primary-key values.
    PrimaryKey,
    /// Hash of the table id only.
    TableId,
}

/// `pipeline.transform.decimal.precision.mode`: the widest DECIMAL transform arithmetic may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecimalPrecisionMode {
    /// Up to DECIMAL(19, s) (Flink CDC's default).
    #[default]
    UpTo19,
    /// Up to DECIMAL(38, s).
    UpTo38,
}

/// One `pipeline.user-defined-function` entry, kept so that errors can name it.
#[derive(Clone, PartialEq)]
pub struct UdfDef {
    /// Where the entry starts.
    pub loc: Location,
    /// `name`: the function name used in expressions.
    pub name: Spanned<String>,
    /// `classpath`: a Java class (cdcflow cannot run these).
    pub classpath: Option<Spanned<String>>,
    /// `python-code`: a Python function body (cdcflow cannot run these).
    pub python_code: Option<Spanned<String>>,
    /// `options`: passed to the function when it opens.
    pub options: BTreeMap<String, String>,
}

/// One `pipeline.model` entry (AI model functions), kept so that errors can name it.
#[derive(Clone, PartialEq)]
pub struct ModelDef {
    /// Where the entry starts.
    pub loc: Location,
    /// `name` or legacy `model-name`.
    pub name: Spanned<String>,
    /// Every other scalar key of the entry, as written.
    pub options: BTreeMap<String, String>,
}

/// The validated `pipeline:` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineOptions {
    /// Job name.
    pub name: String,
    /// Parallelism (snapshot readers, concurrent loads).
    pub parallelism: usize,
    /// Streaming or batch.
    pub runtime_mode: RuntimeMode,
    /// What to do with upstream DDL.
    pub schema_change_behavior: SchemaChangeBehavior,
    /// How route rules combine.
    pub route_mode: RouteMode,
    /// Session time zone for TIMESTAMP_LTZ rendering and temporal functions (IANA name or offset).
    pub local_time_zone: Option<String>,
    /// `schema-operator.rpc-timeout`: how long a DDL may take to apply before the pipeline fails.
    pub schema_operator_rpc_timeout: Duration,
    /// `sink.partitioning.strategy`.
    pub sink_partitioning_strategy: SinkPartitioningStrategy,
    /// `transform.decimal.precision.mode`.
    pub decimal_precision_mode: DecimalPrecisionMode,
    /// `user-defined-function` entries (cdcflow reports them as unsupported at load time).
    pub user_defined_functions: Vec<UdfDef>,
    /// `model` entries (cdcflow reports them as unsupported at load time).
    pub models: Vec<ModelDef>,
    /// Flink-only options that were accepted and ignored (reported as warnings).
    pub ignored: Vec<Spanned<String>>,
    /// cdcflow's own options (`cdcflow.*` keys), raw, for the engine to read.
    pub engine_options: BTreeMap<String, OptionValue>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            name: "Flink CDC Pipeline Job".into(),
            parallelism: 1,
            runtime_mode: RuntimeMode::default(),
            schema_change_behavior: SchemaChangeBehavior::default(),
            route_mode: RouteMode::default(),
            local_time_zone: None,
            schema_operator_rpc_timeout: Duration::from_secs(180),
            sink_partitioning_strategy: SinkPartitioningStrategy::default(),
            decimal_precision_mode: DecimalPrecisionMode::default(),
            user_defined_functions: Vec::new(),
            models: Vec::new(),
            ignored: Vec::new(),
            engine_options: BTreeMap::new(),
        }
    }
}

/// A whole pipeline file after syntax and shape checks; connector options are still raw.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineDef {
    /// The file it came from.
    pub file: String,
    /// `source:` block.
    pub source: ComponentDef,
    /// `sink:` block.
    pub sink: ComponentDef,
    /// `transform:` rules in order.
    pub transforms: Vec<TransformDef>,
    /// `route:` rules in order.
    pub routes: Vec<RouteDef>,
    /// `pipeline:` block.
    pub pipeline: PipelineOptions,
}
