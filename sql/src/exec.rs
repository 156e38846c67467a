//! The running transform stage: picks each table's rule, keeps its plan per schema version,
//! evaluates batches, applies Flink CDC 3.6 filter semantics, then hands events to the router.
//!
//! Filter semantics per change (before and after images are judged separately):
//!
//! ```text
//!  +I / -D : kept when its image passes
//!  -U,+U   : both pass → -U,+U   before only → -D(before)   after only → +I(after)   none → dropped
//! ```
//!
//! The projection sees the ops after that decision, so `__data_event_type__` of an update that
//! left the filter reads `-D`. `SOFT_DELETE` then turns every `-D` into `+I`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int8Array, RecordBatch};
use arrow::buffer::BooleanBuffer;
use arrow::compute::filter_record_batch;
use cdcflow_engine::component::Transform;
use cdcflow_engine::{ChangeBatch, ChangeEvent, Op, SchemaChange, TableId, TableSchemaRef};
use datafusion::execution::SessionState;

use crate::error::SqlError;
use crate::parse::ParsedRule;
use crate::plan::{TablePlan, plan_table};
use crate::route::Router;
use crate::schema_util::diff_steps;

/// Per source table: which rule applies (resolved once) and its current plan.
#[derive(Debug, Default)]
struct TableState {
    rule: Option<usize>,
    plan: Option<TablePlan>,
    out_version: u64,
}

/// The transform + route stage built by [`crate::CompiledPipeline::transform`].
pub struct SqlTransform {
    rules: Arc<Vec<ParsedRule>>,
    state: Arc<SessionState>,
    tables: HashMap<TableId, TableState>,
    router: Router,
    scratch: Vec<ChangeEvent>,
}

impl std::fmt::Debug for SqlTransform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlTransform")
            .field("rules", &self.rules.len())
            .field("tables", &self.tables.len())
            .finish()
    }
}

impl SqlTransform {
    pub(crate) fn new(
        rules: Arc<Vec<ParsedRule>>,
        state: Arc<SessionState>,
        router: Router,
    ) -> Self {
        SqlTransform {
            rules,
            state,
            tables: HashMap::new(),
            router,
            scratch: Vec::new(),
        }
    }

    fn table_state(&mut self, id: &TableId) -> &mut TableState {
        if !self.tables.contains_key(id) {
            // First matching rule only (Flink CDC 3.6), resolved once per table.
            let rule = self.rules.iter().position(|r| r.selector.matches(id));
            self.tables.insert(
                id.clone(),
                TableState {
                    rule,
                    plan: None,
                    out_version: 0,
                },
            );
        }
        self.tables.get_mut(id).expect("inserted above")
    }

    /// Plans `input` and emits what the sink needs to see before data of the new shape.
    fn replan(
        &mut self,
        input: &TableSchemaRef,
        upstream: Option<&SchemaChange>,
        seq: u64,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), SqlError> {
        let state = Arc::clone(&self.state);
        let rules = Arc::clone(&self.rules);
        let ts = self.table_state(&input.id);
        let Some(rule) = ts.rule else { return Ok(()) };
        let mut plan = plan_table(&rules[rule], input, &state, ts.out_version + 1)?;
        tracing::debug!(
            table = %input.id,
            version = input.version,
            rule,
            columns = plan.out.columns.len(),
            "Transform planned for a table schema version."
        );
        match ts.plan.take() {
            None => {
                ts.out_version += 1;
                out.push(ChangeEvent::CreateTable(Arc::clone(&plan.out)));
            }
            Some(old) => {
                let renames = match upstream {
                    Some(SchemaChange::RenameColumn { renames }) => renames.clone(),
                    _ => Vec::new(),
                };
                let steps = diff_steps(&old.out, &plan.out, &renames);
                match steps.last() {
                    None if old.out.columns == plan.out.columns
                        && old.out.primary_key == plan.out.primary_key =>
                    {
                        plan.out = Arc::clone(&old.out);
                    }
                    // Only the column order changed: a new version, nothing for the sink to do.
                    None => ts.out_version += 1,
                    Some((_, last)) => {
                        ts.out_version = last.version;
                        plan.out = Arc::clone(last);
                        for (change, schema) in steps {
                            out.push(ChangeEvent::SchemaChange {
                                table: schema.id.clone(),
                                change,
                                schema,
                                seq,
                            });
                        }
                    }
                }
            }
        }
        ts.plan = Some(plan);
        Ok(())
    }

    fn transform(
        &mut self,
        event: ChangeEvent,
        out: &mut Vec<ChangeEvent>,
    ) -> Result<(), SqlError> {
        match event {
            ChangeEvent::CreateTable(schema) => {
                let ts = self.table_state(&schema.id);
                if ts.rule.is_none() {
                    out.push(ChangeEvent::CreateTable(schema));
                    return Ok(());
                }
                // A re-created table starts afresh.
                ts.plan = None;
                self.replan(&schema, None, 0, out)
            }
            ChangeEvent::SchemaChange {
                table,
                change,
                schema,
                seq,
            } => {
                let ts = self.table_state(&table);
                if ts.rule.is_none() {
                    out.push(ChangeEvent::SchemaChange {
                        table,
                        change,
                        schema,
                        seq,
                    });
                    return Ok(());
                }
                match change {
                    SchemaChange::TruncateTable
                    | SchemaChange::DropTable
                    | SchemaChange::AlterTableComment { .. } => {
                        if ts
                            .plan
                            .as_ref()
                            .is_none_or(|p| p.input_version != schema.version)
                        {
                            self.replan(&schema, None, seq, out)?;
                        }
                        let ts = self.table_state(&table);
                        let out_schema = ts
                            .plan
                            .as_ref()
                            .map(|p| Arc::clone(&p.out))
                            .unwrap_or(schema);
                        out.push(ChangeEvent::SchemaChange {
                            table: out_schema.id.clone(),
                            change,
                            schema: out_schema,
                            seq,
                        });
                        Ok(())
                    }
                    other => self.replan(&schema, Some(&other), seq, out),
                }
            }
            ChangeEvent::Data(batch) => {
                let ts = self.table_state(&batch.table.id);
                let Some(rule) = ts.rule else {
                    out.push(ChangeEvent::Data(batch));
                    return Ok(());
                };
                if ts
                    .plan
                    .as_ref()
                    .is_none_or(|p| p.input_version != batch.table.version)
                {
                    let table = Arc::clone(&batch.table);
                    self.replan(&table, None, batch.seq, out)?;
                }
                let ts = self.table_state(&batch.table.id);
                let plan = ts
                    .plan
                    .as_ref()
                    .ok_or_else(|| SqlError::Internal("plan missing after replan".into()))?;
                let (seq, offset) = (batch.seq, batch.offset.clone());
                match eval(plan, rule, batch)? {
                    Some(b) => out.push(ChangeEvent::Data(b)),
                    None => {
                        if let Some(offset) = offset {
                            out.push(ChangeEvent::Progress { seq, offset });
                        }
                    }
                }
                Ok(())
            }
            other => {
                out.push(other);
                Ok(())
            }
        }
    }
}

impl Transform for SqlTransform {
    fn apply(
        &mut self,
        event: ChangeEvent,
        out: &mut Vec<ChangeEvent>,
    ) -> cdcflow_engine::Result<()> {
        let mut tmp = std::mem::take(&mut self.scratch);
        tmp.clear();
        let res = self.transform(event, &mut tmp);
        if let Err(e) = res {
            self.scratch = tmp;
            return Err(e.into());
        }
        for e in tmp.drain(..) {
            self.router.apply(e, out)?;
        }
        self.scratch = tmp;
        Ok(())
    }
}

/// Applies the filter decision table to one batch: which rows stay, and their new ops.
/// Returns `None` for a part that does not change (all rows kept / no op rewritten).
///
/// Every row stays exactly when its own image passes (NULL does not pass); for an update pair
/// whose images disagree only the ops change: the kept `-U` becomes `-D`, the kept `+U` `+I`.
pub(crate) fn decide(
    ops: &Int8Array,
    pass: &BooleanArray,
) -> (Option<BooleanArray>, Option<Int8Array>) {
    let n = ops.len();
    let keep: BooleanBuffer = match pass.nulls() {
        Some(nulls) => pass.values() & nulls.inner(),
        None => pass.values().clone(),
    };
    let ov = ops.values();
    let mut new_ops: Option<Vec<i8>> = None;
    let (before, after) = (Op::UpdateBefore as i8, Op::UpdateAfter as i8);
    let mut i = 0;
    while let Some(off) = ov[i..].iter().position(|&o| o == before) {
        let at = i + off;
        if at + 1 < n && ov[at + 1] == after {
            let (b, a) = (keep.value(at), keep.value(at + 1));
            if b != a {
                let v = new_ops.get_or_insert_with(|| ov.to_vec());
                if b {
                    v[at] = Op::Delete as i8;
                } else {
                    v[at + 1] = Op::Insert as i8;
                }
            }
        }
        i = at + 1;
    }
    let keep = (keep.count_set_bits() != n).then(|| BooleanArray::new(keep, None));
    (keep, new_ops.map(Int8Array::from))
}

fn eval_err(
    plan: &TablePlan,
    rule: usize,
    what: &'static str,
) -> impl Fn(datafusion::error::DataFusionError) -> SqlError {
    let table = plan.out.id.to_string();
    move |source| SqlError::Eval {
        table: table.clone(),
        rule,
        what,
        source,
    }
}

/// Evaluates one batch; `None` when no row survives.
fn eval(
    plan: &TablePlan,
    rule: usize,
    batch: ChangeBatch,
) -> Result<Option<ChangeBatch>, SqlError> {
    let arrow_err = |source| SqlError::Arrow {
        table: batch.table.id.to_string(),
        source,
    };
    let rb = &batch.data;
    let n = rb.num_rows();
    let ncols = rb.num_columns();
    if ncols < 2 {
        return Err(SqlError::Internal(format!(
            "batch of {} has no system columns",
            batch.table.id
        )));
    }
    let ops = rb
        .column(ncols - 2)
        .as_any()
        .downcast_ref::<Int8Array>()
        .ok_or_else(|| {
            SqlError::Internal(format!("op column of {} is not Int8", batch.table.id))
        })?;

    let (keep, new_ops) = match &plan.filter {
        None => (None, None),
        Some(f) => {
            let m = f
                .evaluate(rb)
                .and_then(|v| v.into_array(n))
                .map_err(eval_err(plan, rule, "filter"))?;
            let m = m.as_boolean_opt().ok_or_else(|| SqlError::Plan {
                table: batch.table.id.to_string(),
                rule,
                message: "filter is not a boolean expression".into(),
            })?;
            decide(ops, m)
        }
    };

    // Filter first, so computed columns are evaluated only for surviving rows.
    let mut input: RecordBatch = match &new_ops {
        Some(o) => {
            let mut cols = rb.columns().to_vec();
            cols[ncols - 2] = Arc::new(o.clone());
            RecordBatch::try_new(rb.schema(), cols).map_err(arrow_err)?
        }
        None => rb.clone(),
    };
    if let Some(k) = &keep {
        input = filter_record_batch(&input, k).map_err(arrow_err)?;
    }
    let n = input.num_rows();
    if n == 0 {
        return Ok(None);
    }

    let mut cols: Vec<ArrayRef> = Vec::with_capacity(plan.columns.len() + 2);
    if plan.identity {
        cols.extend(input.columns()[..ncols - 2].iter().cloned());
    } else {
        for c in &plan.columns {
            let v = c
                .evaluate(&input)
                .and_then(|v| v.into_array(n))
                .map_err(eval_err(plan, rule, "projection"))?;
            cols.push(v);
        }
    }
    let mut op_col = Arc::clone(input.column(ncols - 2));
    if plan.soft_delete {
        let o = op_col.as_primitive::<arrow::datatypes::Int8Type>();
        let converted: Int8Array = o.unary(|v| {
            if v == Op::Delete as i8 {
                Op::Insert as i8
            } else {
                v
            }
        });
        op_col = Arc::new(converted);
    }
    cols.push(op_col);
    cols.push(Arc::clone(input.column(ncols - 1)));
    let data = RecordBatch::try_new(Arc::clone(&plan.out.arrow), cols).map_err(arrow_err)?;
    if data.num_rows() == 0 {
        return Ok(None);
    }
    Ok(Some(ChangeBatch {
        table: Arc::clone(&plan.out),
        data,
        seq: batch.seq,
        offset: batch.offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The decision table of Flink CDC 3.6, row by row: (row index, op it is emitted with).
    fn model(ops: &[i8], pass: &[Option<bool>]) -> Vec<(usize, i8)> {
        let p = |i: usize| pass[i] == Some(true);
        let mut out = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            if ops[i] == 1 && i + 1 < ops.len() && ops[i + 1] == 2 {
                match (p(i), p(i + 1)) {
                    (true, true) => out.extend([(i, 1), (i + 1, 2)]),
                    (true, false) => out.push((i, 3)),
                    (false, true) => out.push((i + 1, 0)),
                    (false, false) => {}
                }
                i += 2;
            } else {
                if p(i) {
                    out.push((i, ops[i]));
                }
                i += 1;
            }
        }
        out
    }

    /// Change streams as sources emit them: single ops and adjacent update pairs.
    fn changes() -> impl Strategy<Value = (Vec<i8>, Vec<Option<bool>>)> {
        prop::collection::vec(
            (0..3u8, any::<Option<bool>>(), any::<Option<bool>>()),
            0..40,
        )
        .prop_map(|items| {
            let (mut ops, mut pass) = (Vec::new(), Vec::new());
            for (kind, a, b) in items {
                match kind {
                    0 => ops.push(0),
                    1 => ops.push(3),
                    _ => {
                        ops.extend([1, 2]);
                        pass.push(b);
                    }
                }
                pass.push(a);
            }
            (ops, pass)
        })
    }

    proptest! {
        #[test]
        fn decide_matches_the_flink_decision_table((ops, pass) in changes()) {
            let (keep, new_ops) = decide(&Int8Array::from(ops.clone()), &BooleanArray::from(pass.clone()));
            let final_ops = new_ops.map(|o| o.values().to_vec()).unwrap_or_else(|| ops.clone());
            let got: Vec<(usize, i8)> = (0..ops.len())
                .filter(|&i| keep.as_ref().is_none_or(|k| k.value(i)))
                .map(|i| (i, final_ops[i]))
                .collect();
            prop_assert_eq!(got, model(&ops, &pass));
        }
    }

    #[test]
    fn update_leaving_the_filter_becomes_delete_of_before() {
        let ops = Int8Array::from(vec![1, 2, 1, 2, 0, 3]);
        let pass = BooleanArray::from(vec![
            Some(true),
            Some(false),
            Some(false),
            Some(true),
            None,
            Some(true),
        ]);
        let (keep, new_ops) = decide(&ops, &pass);
        let keep: Vec<bool> = keep
            .expect("some rows drop")
            .iter()
            .map(|v| v.unwrap_or(false))
            .collect();
        assert_eq!(keep, vec![true, false, false, true, false, true]);
        let o = new_ops.expect("ops rewritten");
        assert_eq!(
            o.values().to_vec(),
            vec![3, 2, 1, 0, 0, 3],
            "-U kept as -D, +U kept as +I"
        );
    }
}
