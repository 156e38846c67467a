//! What happens to upstream DDL: `pipeline.schema.change.behavior` plus the sink's
//! `include.schema.changes` / `exclude.schema.changes` tags, with Flink CDC's semantics
//! (flink-cdc-pipeline.md §1.3).

use std::collections::BTreeSet;

use crate::change::{ColumnPosition, SchemaChange};
use crate::config::{
    SCHEMA_CHANGE_TAGS as ALL_TAGS, SchemaChangeBehavior, expand_schema_change_tag as expand_tag,
};
use crate::schema::TableSchema;

/// Decides, per schema change, whether and in what form it reaches the sink.
#[derive(Debug, Clone)]
pub struct SchemaChangePolicy {
    behavior: SchemaChangeBehavior,
    accepted: BTreeSet<&'static str>,
}

/// The policy's verdict on one schema change.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Apply these changes (possibly rewritten) to the sink.
    Apply(Vec<SchemaChange>),
    /// Drop it silently (logged at debug).
    Skip,
    /// Fail the pipeline (EXCEPTION mode).
    Fail(String),
}

impl SchemaChangePolicy {
    /// Builds the policy from the behavior and the sink's tag lists (as written; unknown tags
    /// match nothing, the config validator has already reported them).
    pub fn new(
        behavior: SchemaChangeBehavior,
        include: Option<&[String]>,
        exclude: Option<&[String]>,
    ) -> Self {
        let mut accepted: BTreeSet<&'static str> = match include {
            Some(list) if !list.is_empty() => {
                let mut s: BTreeSet<_> = list
                    .iter()
                    .filter_map(|t| expand_tag(t))
                    .flatten()
                    .collect();
                s.insert("create.table");
                s
            }
            _ => ALL_TAGS.iter().copied().collect(),
        };
        let default_exclude = ["drop.table".to_string(), "truncate.table".to_string()];
        let exclude: &[String] = match exclude {
            Some(e) => e,
            None if behavior == SchemaChangeBehavior::Lenient => &default_exclude,
            None => &[],
        };
        for t in exclude.iter().filter_map(|t| expand_tag(t)).flatten() {
            accepted.remove(t);
        }
        SchemaChangePolicy { behavior, accepted }
    }

    /// The behavior this policy implements.
    pub fn behavior(&self) -> SchemaChangeBehavior {
        self.behavior
    }

    /// Whether sink failures applying a change may be tolerated (TRY_EVOLVE).
    pub fn tolerates_sink_failure(&self) -> bool {
        self.behavior == SchemaChangeBehavior::TryEvolve
    }

    /// Judges one change; `after` is the source schema after the change.
    pub fn judge(&self, change: &SchemaChange, after: &TableSchema) -> Verdict {
        match self.behavior {
            SchemaChangeBehavior::Ignore => return Verdict::Skip,
            SchemaChangeBehavior::Exception => {
                return Verdict::Fail(format!(
                    "Unexpected schema change events occurred in EXCEPTION mode: {} on {}",
                    change.tag(),
                    after.id
                ));
            }
            _ => {}
        }
        let rewritten = if self.behavior == SchemaChangeBehavior::Lenient {
            lenient(change, after)
        } else {
            vec![change.clone()]
        };
        let kept: Vec<_> = rewritten
            .into_iter()
            .filter(|c| self.accepted.contains(c.tag()))
            .collect();
        if kept.is_empty() {
            Verdict::Skip
        } else {
            Verdict::Apply(kept)
        }
    }
}

/// LENIENT: nothing destructive reaches the sink. Added columns become nullable and go last;
/// dropped columns stay (they receive NULL); a rename adds the new name as a nullable column.
fn lenient(change: &SchemaChange, after: &TableSchema) -> Vec<SchemaChange> {
    match change {
        SchemaChange::AddColumn { columns } => vec![SchemaChange::AddColumn {
            columns: columns
                .iter()
                .map(|(c, _)| {
                    let mut c = c.clone();
                    c.nullable = true;
                    (c, ColumnPosition::Last)
                })
                .collect(),
        }],
        SchemaChange::DropColumn { .. } => Vec::new(),
        SchemaChange::RenameColumn { renames } => {
            let columns = renames
                .iter()
                .filter_map(|(_, new)| after.columns.iter().find(|c| &c.name == new))
                .map(|c| {
                    let mut c = c.clone();
                    c.nullable = true;
                    (c, ColumnPosition::Last)
                })
                .collect::<Vec<_>>();
            if columns.is_empty() {
                Vec::new()
            } else {
                vec![SchemaChange::AddColumn { columns }]
            }
        }
        other => vec![other.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{CdcType, ColumnDef, TableId};

    fn col(name: &str, nullable: bool) -> ColumnDef {
        ColumnDef {
            name: name.into(),
            data_type: CdcType::Int,
            nullable,
            default: None,
            comment: None,
            source_type: "int".into(),
        }
    }

    fn schema() -> TableSchema {
        TableSchema::new(
            TableId::new("db", "t"),
            vec![col("id", false), col("b", false)],
            vec!["id".into()],
            None,
            2,
        )
    }

    #[test]
    fn lenient_turns_rename_into_nullable_add_and_skips_drops() {
        let p = SchemaChangePolicy::new(SchemaChangeBehavior::Lenient, None, None);
        let v = p.judge(
            &SchemaChange::RenameColumn {
                renames: vec![("a".into(), "b".into())],
            },
            &schema(),
        );
        assert_eq!(
            v,
            Verdict::Apply(vec![SchemaChange::AddColumn {
                columns: vec![(col("b", true), ColumnPosition::Last)]
            }])
        );
        assert_eq!(
            p.judge(
                &SchemaChange::DropColumn {
                    columns: vec!["b".into()]
                },
                &schema()
            ),
            Verdict::Skip
        );
        assert_eq!(
            p.judge(&SchemaChange::DropTable, &schema()),
            Verdict::Skip,
            "drop.table excluded by default"
        );
    }

    #[test]
    fn exclude_wins_over_include_and_exception_fails() {
        let p = SchemaChangePolicy::new(
            SchemaChangeBehavior::Evolve,
            Some(&["column".to_string()]),
            Some(&["drop".to_string()]),
        );
        assert_eq!(
            p.judge(
                &SchemaChange::DropColumn {
                    columns: vec!["b".into()]
                },
                &schema()
            ),
            Verdict::Skip
        );
        assert!(matches!(
            p.judge(&SchemaChange::TruncateTable, &schema()),
            Verdict::Skip
        ));
        let e = SchemaChangePolicy::new(SchemaChangeBehavior::Exception, None, None);
        assert!(matches!(
            e.judge(&SchemaChange::TruncateTable, &schema()),
            Verdict::Fail(_)
        ));
    }
}
