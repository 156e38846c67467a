//! What flows through a pipeline: change batches, schema changes and source progress.
//!
//! ```text
//!  source ──ChangeEvent──▶ transforms ──ChangeEvent──▶ router ──▶ sink
//!           (Data = ChangeBatch: RecordBatch of one table, op + ts columns, seq)
//! ```
//!
//! A [`ChangeBatch`] holds rows of exactly one table at one schema version. Its `seq` is assigned by
//! the source in strictly increasing order; the source remembers which resumable offset each `seq`
//! ends at, so the engine can checkpoint "everything up to seq N is in the sink" without knowing
//! what a binlog position is.

use arrow::array::{Array, Int8Array, Int64Array, RecordBatch};
use serde::{Deserialize, Serialize};

use crate::schema::{ColumnDef, OP_COLUMN, TS_COLUMN, TableId, TableSchemaRef};

/// The kind of one row change, stored in the [`OP_COLUMN`] as `Int8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(i8)]
pub enum Op {
    /// `+I`: a new row (also every snapshot row).
    Insert = 0,
    /// `-U`: the row before an update; always directly followed by its [`Op::UpdateAfter`].
    UpdateBefore = 1,
    /// `+U`: the row after an update.
    UpdateAfter = 2,
    /// `-D`: a deleted row (the before image).
    Delete = 3,
}

impl Op {
    /// Decodes the `Int8` stored in the op column.
    pub fn from_i8(v: i8) -> Option<Op> {
        match v {
            0 => Some(Op::Insert),
            1 => Some(Op::UpdateBefore),
            2 => Some(Op::UpdateAfter),
            3 => Some(Op::Delete),
            _ => None,
        }
    }

    /// Flink CDC's short name (`+I`, `-U`, `+U`, `-D`), as `__data_event_type__` shows it.
    pub fn short_name(self) -> &'static str {
        match self {
            Op::Insert => "+I",
            Op::UpdateBefore => "-U",
            Op::UpdateAfter => "+U",
            Op::Delete => "-D",
        }
    }
}

/// Rows of one table at one schema version, with the op and event-time system columns.
#[derive(Debug, Clone)]
pub struct ChangeBatch {
    /// The table and schema version the rows belong to.
    pub table: TableSchemaRef,
    /// The rows: `table.arrow` schema (user columns, then [`OP_COLUMN`], [`TS_COLUMN`]).
    pub data: RecordBatch,
    /// Source-assigned sequence number, strictly increasing across all batches of a run.
    pub seq: u64,
    /// Where the source can resume once this batch (and all before it) is in the sink; `None`
    /// when the batch ends mid-transaction and is not a safe resume point.
    pub offset: Option<SourceOffset>,
}

/// A source's resumable position, opaque to the engine (the source defines and parses its JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceOffset(pub std::sync::Arc<serde_json::Value>);

impl SourceOffset {
    /// Wraps a JSON position.
    pub fn new(v: serde_json::Value) -> Self {
        SourceOffset(std::sync::Arc::new(v))
    }
}

impl ChangeBatch {
    /// Number of rows.
    pub fn num_rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The op column.
    ///
    /// # Panics
    /// If the batch was built without the system columns (a bug in its producer).
    pub fn ops(&self) -> &Int8Array {
        self.data
            .column_by_name(OP_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<Int8Array>())
            .expect("change batch without op column")
    }

    /// The event-time column (epoch ms).
    ///
    /// # Panics
    /// If the batch was built without the system columns (a bug in its producer).
    pub fn event_ts(&self) -> &Int64Array {
        self.data
            .column_by_name(TS_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .expect("change batch without ts column")
    }

    /// Number of user columns (all but the two system columns).
    pub fn num_user_columns(&self) -> usize {
        self.data.num_columns() - 2
    }

    /// Bytes held by the batch's buffers, for memory accounting.
    pub fn memory_size(&self) -> usize {
        self.data.get_array_memory_size()
    }
}

/// A schema change parsed from source DDL, in Flink CDC's event vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaChange {
    /// Columns added at a position.
    AddColumn {
        /// The new columns with their positions.
        columns: Vec<(ColumnDef, ColumnPosition)>,
    },
    /// Columns dropped.
    DropColumn {
        /// Names of the dropped columns.
        columns: Vec<String>,
    },
    /// Columns renamed (old name → new name).
    RenameColumn {
        /// Renames in order.
        renames: Vec<(String, String)>,
    },
    /// A column's type changed.
    AlterColumnType {
        /// The column with its new definition.
        column: ColumnDef,
    },
    /// All rows removed.
    TruncateTable,
    /// The table was dropped.
    DropTable,
    /// The table comment changed.
    AlterTableComment {
        /// The new comment.
        comment: Option<String>,
    },
}

impl SchemaChange {
    /// Flink CDC's tag for `include.schema.changes` / `exclude.schema.changes`.
    pub fn tag(&self) -> &'static str {
        match self {
            SchemaChange::AddColumn { .. } => "add.column",
            SchemaChange::DropColumn { .. } => "drop.column",
            SchemaChange::RenameColumn { .. } => "rename.column",
            SchemaChange::AlterColumnType { .. } => "alter.column.type",
            SchemaChange::TruncateTable => "truncate.table",
            SchemaChange::DropTable => "drop.table",
            SchemaChange::AlterTableComment { .. } => "alter.table.comment",
        }
    }
}

/// Where an added column goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "at", content = "column", rename_all = "snake_case")]
pub enum ColumnPosition {
    /// First column.
    First,
    /// After the last column.
    Last,
    /// Before the named column.
    Before(String),
    /// After the named column.
    After(String),
}

/// One item of a pipeline's stream.
#[derive(Debug, Clone)]
pub enum ChangeEvent {
    /// A table appears: sinks create it if missing. Precedes the table's first data.
    CreateTable(TableSchemaRef),
    /// A table's schema changed; `schema` is the schema after the change.
    SchemaChange {
        /// Which table.
        table: TableId,
        /// What changed.
        change: SchemaChange,
        /// The table's schema after the change (its `version` is bumped).
        schema: TableSchemaRef,
        /// Sequence number in the same space as [`ChangeBatch::seq`].
        seq: u64,
    },
    /// Rows.
    Data(ChangeBatch),
    /// The source advanced without data (heartbeat, DDL of other tables, transaction end).
    Progress {
        /// Sequence number in the same space as [`ChangeBatch::seq`].
        seq: u64,
        /// Where the source can resume from now.
        offset: SourceOffset,
    },
    /// A bounded source (snapshot mode) has nothing more to send.
    End,
}
