//! The config suite: Flink CDC's example pipelines (tests/fixtures/flink-examples, E1-E15 of
//! flink-cdc-pipeline.md §7) and malformed files (tests/fixtures/bad), each either validating
//! cleanly or failing with the exact diagnostics cdcflow must print.
//!
//! The pipeline is checked the way `cdcflow validate` does it, minus the SQL layer: load the file,
//! then validate the source and sink blocks with their connector's validator.

use std::path::{Path, PathBuf};

use cdcflow_doris::config::{
    DorisSinkConfig, StarRocksSinkConfig, validate_doris, validate_starrocks,
};
use cdcflow_engine::config::{
    self, Diagnostic, Diagnostics, Location, PipelineDef, RouteMode, RuntimeMode,
    SchemaChangeBehavior, ValuesSinkConfig, did_you_mean, validate_values_sink,
};
use cdcflow_mysql::config::{MySqlSourceConfig, StartupMode, table_selectors_located};

/// A validated sink of any kind.
#[derive(Debug)]
enum Sink {
    Doris(DorisSinkConfig),
    StarRocks(StarRocksSinkConfig),
    Values(ValuesSinkConfig),
}

/// A pipeline whose file, source and sink all validated.
#[derive(Debug)]
struct Checked {
    def: PipelineDef,
    source: MySqlSourceConfig,
    sink: Sink,
}

/// `tests/fixtures` of the workspace root (found upwards, so the suite can also be compiled from a
/// member crate).
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|p| p.join("tests/fixtures"))
        .find(|p| p.is_dir())
        .expect("tests/fixtures above the crate")
}

/// Reports an unknown `type` as the binary's registry does.
fn unknown_type(def: &config::ComponentDef, kinds: &[&str], diags: &mut Diagnostics) {
    let wanted = def.kind.value.trim().to_ascii_lowercase();
    let hint = did_you_mean(&wanted, kinds.iter().copied())
        .map(|k| format!("did you mean `{k}`?"))
        .unwrap_or_else(|| format!("supported: {}", kinds.join(", ")));
    diags.push(Diagnostic {
        file: def.file.clone(),
        loc: def.kind.loc,
        path: format!("{}.type", def.path),
        message: format!("unknown {} type `{}`", def.path, def.kind.value),
        hint: Some(hint),
    });
}

/// Loads `text` and validates its source, sink and transform selectors; all problems as lines.
fn check_text(text: &str, file: &str) -> Result<Checked, Vec<String>> {
    let def = config::load_str(text, file).map_err(|d| d.lines())?;
    let mut diags = Diagnostics::default();
    let source = match def.source.kind.value.as_str() {
        "mysql" => cdcflow_mysql::config::validate(&def.source, &def.pipeline, &mut diags),
        _ => {
            unknown_type(&def.source, &["mysql"], &mut diags);
            None
        }
    };
    let sink = match def.sink.kind.value.as_str() {
        "doris" => validate_doris(&def.sink, &def.pipeline, &mut diags).map(Sink::Doris),
        "starrocks" => {
            validate_starrocks(&def.sink, &def.pipeline, &mut diags).map(Sink::StarRocks)
        }
        "values" => validate_values_sink(&def.sink, &mut diags).map(Sink::Values),
        _ => {
            unknown_type(&def.sink, &["doris", "starrocks", "values"], &mut diags);
            None
        }
    };
    for (i, t) in def.transforms.iter().enumerate() {
        let at = t.source_table.loc;
        let locate = |offset: usize| Location {
            line: at.line,
            column: at.column + offset,
        };
        if let Err(errors) = table_selectors_located(&t.source_table.value, &locate) {
            for (loc, message) in errors {
                let path = format!("transform[{i}].source-table");
                diags.push(Diagnostic {
                    file: def.file.clone(),
                    loc,
                    path,
                    message,
                    hint: None,
                });
            }
        }
    }
    match (source, sink) {
        (Some(source), Some(sink)) if diags.is_empty() => Ok(Checked { def, source, sink }),
        _ => Err(diags.lines()),
    }
}

/// [`check_text`] on a fixture; diagnostics name it by its path under tests/fixtures.
fn check_fixture(rel: &str) -> Result<Checked, Vec<String>> {
    let text =
        std::fs::read_to_string(fixtures().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    check_text(&text, rel)
}

fn valid(rel: &str) -> Checked {
    check_fixture(rel)
        .unwrap_or_else(|e| panic!("{rel} must validate cleanly, got:\n{}", e.join("\n")))
}

fn rejected(rel: &str) -> Vec<String> {
    match check_fixture(rel) {
        Ok(_) => panic!("{rel} must be rejected"),
        Err(lines) => lines,
    }
}

/// The Flink examples cdcflow runs as they are.
const CLEAN_EXAMPLES: &[&str] = &[
    "e01-mysql-to-doris.yaml",
    "e02-doris-benodes-routes.yaml",
    "e03-mysql-to-starrocks.yaml",
    "e04-multi-pattern-tables.yaml",
    "e06-metadata-columns.yaml",
    "e07-first-match-route.yaml",
    "e10-all-types-to-doris.yaml",
    "e11-batch-snapshot.yaml",
    "e12-merge-all-route.yaml",
    "e14-replace-symbol-route.yaml",
    "e15-lenient-rename-route.yaml",
];

/// The Flink examples cdcflow must reject (Java UDFs, AI models).
const REJECTED_EXAMPLES: &[&str] = &[
    "e05-transform-route-udf.yaml",
    "e08-parser-full.yaml",
    "e09-udf-options.yaml",
    "e13-java-udfs.yaml",
];

#[test]
fn every_flink_example_has_a_decided_outcome() {
    let mut files: Vec<String> = std::fs::read_dir(fixtures().join("flink-examples"))
        .expect("fixture dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    let mut decided: Vec<String> = CLEAN_EXAMPLES
        .iter()
        .chain(REJECTED_EXAMPLES)
        .map(|s| s.to_string())
        .collect();
    decided.sort();
    assert_eq!(
        files, decided,
        "each example E1-E15 must be listed as clean or rejected"
    );
    assert_eq!(files.len(), 15);
}

#[test]
fn clean_flink_examples_validate() {
    for f in CLEAN_EXAMPLES {
        valid(&format!("flink-examples/{f}"));
    }
}

#[test]
fn e01_whole_database_to_doris() {
    let c = valid("flink-examples/e01-mysql-to-doris.yaml");
    assert_eq!(
        (c.source.hostname.as_str(), c.source.port),
        ("localhost", 3306)
    );
    assert_eq!(
        c.source.password.expose(),
        "123456",
        "a numeric password is read as text"
    );
    assert_eq!(c.source.server_id, (5400, 5404));
    assert_eq!(c.source.server_time_zone.as_deref(), Some("UTC"));
    assert!(
        c.source.tables[0].matches("app_db", "orders")
            && !c.source.tables[0].matches("other", "orders")
    );
    assert_eq!(
        (c.def.pipeline.name.as_str(), c.def.pipeline.parallelism),
        ("Sync MySQL Database to Doris", 2)
    );
    let Sink::Doris(d) = c.sink else {
        panic!("doris sink expected")
    };
    assert_eq!(d.fenodes, ["127.0.0.1:8030"]);
    assert_eq!(d.password.expose(), "");
    assert_eq!(
        d.table_create_properties,
        [
            ("light_schema_change".to_string(), "true".to_string()),
            ("replication_num".to_string(), "1".to_string()),
        ]
    );
}

#[test]
fn e02_routes_and_benodes() {
    let c = valid("flink-examples/e02-doris-benodes-routes.yaml");
    let routes: Vec<_> = c
        .def
        .routes
        .iter()
        .map(|r| (r.source_table.value.as_str(), r.sink_table.value.as_str()))
        .collect();
    assert_eq!(
        routes,
        [
            ("app_db.orders", "ods_db.ods_orders"),
            ("app_db.shipments", "ods_db.ods_shipments"),
            ("app_db.products", "ods_db.ods_products"),
        ]
    );
    assert_eq!(
        c.def.routes[1].source_table.loc,
        Location {
            line: 26,
            column: 20
        }
    );
    let Sink::Doris(d) = c.sink else {
        panic!("doris sink expected")
    };
    assert_eq!(d.benodes, ["127.0.0.1:8040"]);
}

#[test]
fn e03_whole_database_to_starrocks() {
    let c = valid("flink-examples/e03-mysql-to-starrocks.yaml");
    assert_eq!(
        c.def.sink.name.as_ref().map(|n| n.value.as_str()),
        Some("StarRocks Sink")
    );
    let Sink::StarRocks(s) = c.sink else {
        panic!("starrocks sink expected")
    };
    assert_eq!(
        (s.jdbc_url.as_str(), s.load_url.as_slice()),
        (
            "jdbc:mysql://127.0.0.1:9030",
            &["127.0.0.1:8080".to_string()][..]
        )
    );
    assert_eq!(
        s.table_create_properties,
        [("replication_num".to_string(), "1".to_string())]
    );
}

#[test]
fn e04_multi_pattern_tables() {
    let c = valid("flink-examples/e04-multi-pattern-tables.yaml");
    let t = &c.source.tables;
    assert_eq!(t.len(), 3);
    assert_eq!(t[2].text.value, r"[app|web].order_\.*");
    assert_eq!(
        t[2].text.loc,
        Location {
            line: 8,
            column: 44
        }
    );
    assert!(
        t[0].matches("adb", "x")
            && t[1].matches("bdb", "user_table_7")
            && t[2].matches("w", "order_9")
    );
    assert!(!t[1].matches("bdb", "user_table_x"));
    assert_eq!(c.def.pipeline.parallelism, 4);
    assert_eq!(c.source.server_id, (5401, 5404), "4 ids for parallelism 4");
}

#[test]
fn e06_metadata_columns() {
    let c = valid("flink-examples/e06-metadata-columns.yaml");
    assert_eq!(c.source.metadata_list, ["op_ts"]);
    let p = c.def.transforms[0].projection.as_ref().expect("projection");
    assert!(
        p.text.starts_with("*, __namespace_name__ || '.' ||"),
        "`\\*` becomes `*`: {}",
        p.text
    );
    let op_ts = p.text.find("op_ts AS opts").expect("op_ts in projection");
    let offset = p.text[..op_ts].chars().count();
    assert_eq!(
        p.location_of(offset),
        Location {
            line: 14,
            column: 140
        },
        "exact column of `op_ts` in the file"
    );
    let Sink::Values(v) = c.sink else {
        panic!("values sink expected")
    };
    assert_eq!(v.name, None);
}

#[test]
fn e07_first_match_routing() {
    let c = valid("flink-examples/e07-first-match-route.yaml");
    assert_eq!(c.def.pipeline.route_mode, RouteMode::FirstMatch);
    assert_eq!(c.def.routes.len(), 3);
    assert_eq!(
        c.def.routes[2]
            .replace_symbol
            .as_ref()
            .map(|s| s.value.as_str()),
        Some("<>")
    );
    assert_eq!(
        c.def.routes[0].description.as_deref(),
        Some("Merge all order sharded tables")
    );
}

#[test]
fn e10_e11_e12_substituted_e2e_pipelines() {
    let c = valid("flink-examples/e10-all-types-to-doris.yaml");
    assert_eq!(
        c.def.transforms[0]
            .projection
            .as_ref()
            .map(|p| p.text.as_str()),
        Some("*, 'fine' AS FINE")
    );
    assert_eq!(
        c.def.transforms[0].filter.as_ref().map(|p| p.text.as_str()),
        Some("id <> 3 AND id <> 4")
    );
    let c = valid("flink-examples/e11-batch-snapshot.yaml");
    assert_eq!(
        (c.def.pipeline.runtime_mode, &c.source.startup),
        (RuntimeMode::Batch, &StartupMode::Snapshot)
    );
    let c = valid("flink-examples/e12-merge-all-route.yaml");
    assert_eq!(c.def.transforms.len(), 2);
    assert!(c.def.transforms[1].filter.is_none());
    assert_eq!(c.def.routes[0].sink_table.value, "transform_test.terminus");
}

#[test]
fn e14_e15_routes_and_lenient_defaults() {
    let c = valid("flink-examples/e14-replace-symbol-route.yaml");
    assert_eq!(c.def.routes[0].sink_table.value, "NEW_route_test.NEW_<>");
    let c = valid("flink-examples/e15-lenient-rename-route.yaml");
    assert_eq!(
        c.def.pipeline.schema_change_behavior,
        SchemaChangeBehavior::Lenient
    );
    let ex: Vec<_> = c
        .def
        .sink
        .exclude_schema_changes
        .iter()
        .flatten()
        .map(|t| t.value.as_str())
        .collect();
    assert_eq!(
        ex,
        ["drop.table", "truncate.table"],
        "LENIENT excludes destructive changes by default"
    );
}

#[test]
fn e05_java_udfs_are_rejected() {
    let hint = "(hint: cdcflow runs no Java or Python code; rewrite the expression with built-in SQL functions)";
    assert_eq!(
        rejected("flink-examples/e05-transform-route-udf.yaml"),
        vec![
            format!(
                "flink-examples/e05-transform-route-udf.yaml:38:21: pipeline.user-defined-function[0]: user-defined function `addone` cannot run in cdcflow: Java class `com.example.functions.AddOneFunctionClass` {hint}"
            ),
            format!(
                "flink-examples/e05-transform-route-udf.yaml:40:21: pipeline.user-defined-function[1]: user-defined function `format` cannot run in cdcflow: Java class `com.example.functions.FormatFunctionClass` {hint}"
            ),
        ]
    );
}

#[test]
fn e08_model_is_rejected() {
    assert_eq!(
        rejected("flink-examples/e08-parser-full.yaml"),
        vec![
            "flink-examples/e08-parser-full.yaml:48:19: pipeline.model[0]: model `GET_EMBEDDING` cannot run in cdcflow: AI model functions are not supported",
        ]
    );
}

#[test]
fn e08_without_model_reports_every_placeholder_option() {
    let text = std::fs::read_to_string(fixtures().join("flink-examples/e08-parser-full.yaml"))
        .expect("read");
    let cut = text.find("  model:").expect("model block");
    assert_eq!(
        check_text(&text[..cut], "e08.yaml").unwrap_err(),
        vec![
            "e08.yaml:1:1: source.hostname: missing required option `hostname`",
            "e08.yaml:8:15: source.tables: invalid regex `*` in `adb.*`: repetition operator missing expression",
            "e08.yaml:8:58: source.tables: invalid regex `*` in `[app|web]_order_.*`: repetition operator missing expression",
            "e08.yaml:10:3: source.capture-new-tables: unknown option `capture-new-tables` for source `mysql`",
            "e08.yaml:9:3: source.chunk-column: unknown option `chunk-column` for source `mysql`",
            "e08.yaml:4:3: source.host: unknown option `host` for source `mysql` (hint: did you mean `hostname`?)",
            "e08.yaml:13:9: sink.type: unknown sink type `kafka` (hint: supported: doris, starrocks, values)",
            "e08.yaml:27:35: transform[0].source-table: invalid regex `*` in `mydb.app_order_.*`: repetition operator missing expression",
            "e08.yaml:35:35: transform[1].source-table: invalid regex `*` in `mydb.web_order_.*`: repetition operator missing expression",
        ]
    );
}

#[test]
fn e09_udf_with_options_is_rejected() {
    assert_eq!(
        rejected("flink-examples/e09-udf-options.yaml"),
        vec![
            "flink-examples/e09-udf-options.yaml:16:18: pipeline.user-defined-function[0]: user-defined function `query_redis` cannot run in cdcflow: Java class `org.apache.flink.cdc.udf.examples.java.RedisQueryFunction` (hint: cdcflow runs no Java or Python code; rewrite the expression with built-in SQL functions)",
        ]
    );
}

#[test]
fn e13_every_java_udf_is_named() {
    let lines = rejected("flink-examples/e13-java-udfs.yaml");
    let names: Vec<_> = lines
        .iter()
        .map(|l| l.split('`').nth(1).unwrap_or_default())
        .collect();
    assert_eq!(names, ["addone", "format", "lifecycle", "typeof", "answer"]);
    assert!(
        lines[0].starts_with(
            "flink-examples/e13-java-udfs.yaml:27:18: pipeline.user-defined-function[0]: "
        ),
        "{}",
        lines[0]
    );
}

/// The `# expect:` lines at the end of a bad fixture.
fn expectations(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_string)
        .collect()
}

#[test]
fn malformed_files_fail_with_exact_diagnostics() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures().join("bad"))
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "the bad-config suite lost files: {files:?}"
    );
    let mut failures = Vec::new();
    for path in files {
        let name = format!("bad/{}", path.file_name().expect("name").to_string_lossy());
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let expected = expectations(&text);
        assert!(!expected.is_empty(), "{name} has no `# expect:` line");
        let actual = match check_text(&text, &name) {
            Ok(_) => vec!["<validated cleanly>".to_string()],
            Err(lines) => lines,
        };
        if actual != expected {
            failures.push(format!(
                "{name}\n  expected:\n    {}\n  actual:\n    {}",
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn load_reads_files_and_reports_unreadable_ones() {
    let def = config::load(&fixtures().join("flink-examples/e01-mysql-to-doris.yaml"))
        .expect("E1 loads from disk");
    assert!(def.file.ends_with("e01-mysql-to-doris.yaml"));
    let missing = fixtures().join("no-such-pipeline.yaml");
    let err = config::load(&missing).expect_err("a missing file is an error");
    let line = err.lines().remove(0);
    assert!(
        line.starts_with(&format!(
            "{}:1:1: cannot read the pipeline file: ",
            missing.display()
        )),
        "unexpected: {line}"
    );
}
