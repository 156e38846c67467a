//! The bounded, spilling queue between the transform stage and the sink.
//!
//! ```text
//!  front task ──push(ev)/mark(offset)──▶ [ acked… | consumed, unacked │ pending … ] ──next()──▶ sink loop
//!                                          drained by complete()  ▲ cursor
//!  push(Data) while memory ≥ limit ─▶ batch goes to a Parquet spill file instead (SpillDir)
//! ```
//!
//! Why it looks like this:
//! - Items stay in the queue after the sink consumed them until a checkpoint acknowledges them:
//!   when a sink fails and is rebuilt, everything since the last checkpoint is replayed from here
//!   ([`ChangeQueue::rewind`]), not re-read from the source.
//! - Memory is the byte size of in-memory batches on both sides of the cursor; once it reaches the
//!   limit, new batches are written to disk, so a stalled sink costs disk, not memory.
//! - Marks are the source's safe resume points. A checkpoint is taken only right after a mark
//!   ([`ChangeQueue::at_boundary`]), and it may record a source offset *beyond* what the sink
//!   acknowledged when everything in between is durable on disk: those items go into the
//!   checkpoint's ledger and are replayed first after a restart.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use crate::change::{ChangeBatch, ChangeEvent, SourceOffset};
use crate::error::{EngineError, Result};
use crate::metrics::Metrics;
use crate::schema::TableSchemaRef;
use crate::spill::{LedgerEntry, SchemaRecord, SpillDir};

/// What the sink loop receives.
#[derive(Debug)]
pub enum Next {
    /// A transformed event for the sink (CreateTable, SchemaChange or Data).
    Event(ChangeEvent),
    /// The source can resume from here once everything before it is in the sink.
    Mark(SourceOffset),
}

#[derive(Debug, Clone)]
enum Item {
    /// An event held in memory (`mem` bytes counted for Data).
    Event { ev: ChangeEvent, mem: usize },
    /// A batch parked on disk.
    Spilled {
        file: String,
        rows: usize,
        seq: u64,
        disk: u64,
        schema: TableSchemaRef,
    },
    /// A resume point.
    Mark(SourceOffset),
    /// A consumed batch whose memory was released before its checkpoint (it can no longer be
    /// replayed to a rebuilt sink).
    Dropped,
}

#[derive(Debug, Default)]
struct Inner {
    items: VecDeque<Item>,
    cursor: usize,
    mem_bytes: usize,
    unacked_bytes: usize,
    spill_bytes: u64,
    spill_files: u64,
    next_file: u64,
    closed: bool,
    failed: Option<String>,
    /// Some consumed, unacknowledged batch was released: [`ChangeQueue::rewind`] is refused
    /// until the next checkpoint.
    released: bool,
}

/// What a checkpoint may record, computed by [`ChangeQueue::plan_checkpoint`].
#[derive(Debug, Clone, Default)]
pub struct CheckpointPlan {
    /// Items the sink has consumed (acknowledged once the checkpoint is saved).
    acked: usize,
    /// The last mark among the acknowledged items.
    pub acked_offset: Option<SourceOffset>,
    /// The offset to record: beyond `acked_offset` when durable pending items cover the gap.
    pub offset: Option<SourceOffset>,
    /// Durable pending items between `acked_offset` and `offset`, replayed first after a restart.
    pub ledger: Vec<LedgerEntry>,
}

/// The queue; shared by the front task (producer) and the sink loop (consumer).
#[derive(Debug)]
pub struct ChangeQueue {
    inner: Mutex<Inner>,
    wake: Notify,
    spill: Option<SpillDir>,
    mem_limit: usize,
}

impl ChangeQueue {
    /// A queue holding at most `mem_limit` bytes of batches in memory; beyond that batches go to
    /// `spill` (or, without a spill directory, stay in memory: tests and `values` runs).
    pub fn new(mem_limit: usize, spill: Option<SpillDir>) -> Arc<Self> {
        Arc::new(ChangeQueue {
            inner: Mutex::new(Inner::default()),
            wake: Notify::new(),
            spill,
            mem_limit: mem_limit.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts the ledger of the checkpoint being resumed in front of everything the source will
    /// send, followed by the checkpoint's own offset as a mark.
    pub fn preload(&self, ledger: &[LedgerEntry], offset: Option<SourceOffset>) {
        let mut g = self.lock();
        for e in ledger {
            let item = match e {
                LedgerEntry::Batch { file, rows, schema } => {
                    let disk = self
                        .spill
                        .as_ref()
                        .and_then(|s| std::fs::metadata(s.file(file)).ok())
                        .map(|m| m.len())
                        .unwrap_or(0);
                    g.spill_bytes += disk;
                    g.spill_files += 1;
                    Item::Spilled {
                        file: file.clone(),
                        rows: *rows,
                        seq: 0,
                        disk,
                        schema: schema.to_schema(),
                    }
                }
                LedgerEntry::CreateTable { schema } => Item::Event {
                    ev: ChangeEvent::CreateTable(schema.to_schema()),
                    mem: 0,
                },
                LedgerEntry::SchemaChange {
                    table,
                    change,
                    schema,
                } => Item::Event {
                    ev: ChangeEvent::SchemaChange {
                        table: table.clone(),
                        change: change.clone(),
                        schema: schema.to_schema(),
                        seq: 0,
                    },
                    mem: 0,
                },
            };
            g.items.push_back(item);
        }
        if let Some(o) = offset
            && !ledger.is_empty()
        {
            g.items.push_back(Item::Mark(o));
        }
        Self::publish(&g);
    }

    /// Appends a transformed event; a data batch goes to disk when memory is at the limit.
    ///
    /// # Errors
    /// Writing a spill file failed (disk full, permissions).
    pub async fn push(&self, ev: ChangeEvent) -> Result<()> {
        let ChangeEvent::Data(batch) = ev else {
            self.push_item(Item::Event { ev, mem: 0 });
            return Ok(());
        };
        let mem = batch.memory_size();
        let spill_to = {
            let mut g = self.lock();
            match &self.spill {
                // Only batches the sink has not consumed count here: consumed ones are released
                // on their own (see `next`), so a long transaction never forces a spill.
                Some(s) if g.mem_bytes - g.unacked_bytes + mem > self.mem_limit => {
                    g.next_file += 1;
                    Some((s.clone(), s.name(g.next_file)))
                }
                _ => None,
            }
        };
        let Some((dir, file)) = spill_to else {
            self.push_item(Item::Event {
                ev: ChangeEvent::Data(batch),
                mem,
            });
            return Ok(());
        };
        let rows = batch.num_rows();
        let seq = batch.seq;
        let schema = batch.table.clone();
        let data = batch.data;
        let name = file.clone();
        let disk = tokio::task::spawn_blocking(move || dir.write(&name, &data))
            .await
            .map_err(|e| EngineError::Internal(format!("spill writer task: {e}")))??;
        Metrics::global().spilled(disk);
        self.push_item(Item::Spilled {
            file,
            rows,
            seq,
            disk,
            schema,
        });
        Ok(())
    }

    /// Appends a resume point.
    pub fn mark(&self, offset: SourceOffset) {
        self.push_item(Item::Mark(offset));
    }

    fn push_item(&self, item: Item) {
        let mut g = self.lock();
        match &item {
            Item::Event { mem, .. } => g.mem_bytes += mem,
            Item::Spilled { disk, .. } => {
                g.spill_bytes += disk;
                g.spill_files += 1;
            }
            Item::Mark(_) | Item::Dropped => {}
        }
        g.items.push_back(item);
        Self::publish(&g);
        drop(g);
        self.wake.notify_one();
    }

    /// No more items will come (source finished or stopped).
    pub fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// The producer failed: the consumer stops at once instead of waiting forever.
    pub fn fail(&self, message: String) {
        let mut g = self.lock();
        g.failed = Some(message);
        g.closed = true;
        drop(g);
        self.wake.notify_one();
    }

    /// The next item for the sink, waiting for one; `None` once closed and fully consumed.
    ///
    /// # Cancel safety
    /// Cancel safe: the cursor moves only when an item is returned.
    ///
    /// # Errors
    /// A spill file could not be read back.
    pub async fn next(&self) -> Result<Option<Next>> {
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let item = {
                let g = self.lock();
                if g.failed.is_some() {
                    return Ok(None);
                }
                if g.cursor < g.items.len() {
                    Some(g.items[g.cursor].clone())
                } else if g.closed {
                    return Ok(None);
                } else {
                    None
                }
            };
            let Some(item) = item else {
                notified.await;
                continue;
            };
            let out = match item {
                Item::Event { ev, .. } => Next::Event(ev),
                Item::Mark(o) => Next::Mark(o),
                Item::Dropped => {
                    return Err(EngineError::Internal(
                        "a released batch was to be consumed again".into(),
                    ));
                }
                Item::Spilled {
                    file,
                    rows,
                    seq,
                    schema,
                    ..
                } => {
                    let Some(dir) = &self.spill else {
                        return Err(EngineError::Internal(
                            "spilled item without spill dir".into(),
                        ));
                    };
                    let data = dir.read(&file, rows)?;
                    Next::Event(ChangeEvent::Data(ChangeBatch {
                        table: schema,
                        data,
                        seq,
                        offset: None,
                    }))
                }
            };
            let mut g = self.lock();
            if let Some(Item::Event { mem, .. }) = g.items.get(g.cursor) {
                g.unacked_bytes += *mem;
            }
            g.cursor += 1;
            if g.unacked_bytes > self.mem_limit {
                Self::release_consumed(&mut g, self.mem_limit / 2);
            }
            return Ok(Some(out));
        }
    }

    /// The producer's failure, if it failed.
    pub fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }

    /// Releases the oldest consumed batches until at most `keep` bytes of them stay in memory:
    /// a transaction bigger than the budget must not hold all of itself for a replay.
    fn release_consumed(g: &mut Inner, keep: usize) {
        let mut freed = 0;
        for i in 0..g.cursor {
            if g.unacked_bytes - freed <= keep {
                break;
            }
            if let Item::Event {
                ev: ChangeEvent::Data(_),
                mem,
            } = &g.items[i]
            {
                freed += *mem;
                g.items[i] = Item::Dropped;
            }
        }
        g.unacked_bytes -= freed;
        g.mem_bytes -= freed;
        g.released = true;
    }

    /// Replays everything consumed since the last checkpoint (after a sink was rebuilt).
    /// Returns `false`, changing nothing, when part of it was released from memory (more than
    /// the queue's share of the budget was consumed without a checkpoint): the caller must then
    /// restart from the checkpoint instead.
    pub fn rewind(&self) -> bool {
        let mut g = self.lock();
        if g.released {
            return false;
        }
        g.cursor = 0;
        g.unacked_bytes = 0;
        true
    }

    /// Whether the sink has consumed exactly up to a resume point (or nothing since the last
    /// checkpoint), so a checkpoint now cannot split a transaction.
    pub fn at_boundary(&self) -> bool {
        let g = self.lock();
        g.cursor == 0 || matches!(g.items.get(g.cursor - 1), Some(Item::Mark(_)))
    }

    /// Whether some consumed batch was released, so a rewind is impossible until a checkpoint.
    pub fn is_released(&self) -> bool {
        self.lock().released
    }

    /// Whether the sink consumed anything since the last checkpoint.
    pub fn has_unacked(&self) -> bool {
        self.lock().cursor > 0
    }

    /// Whether everything pushed so far was consumed.
    pub fn is_drained(&self) -> bool {
        let g = self.lock();
        g.cursor == g.items.len()
    }

    /// In-memory bytes the sink consumed but no checkpoint acknowledged yet.
    pub fn unacked_bytes(&self) -> usize {
        self.lock().unacked_bytes
    }

    /// In-memory bytes held (consumed or not).
    pub fn mem_bytes(&self) -> usize {
        self.lock().mem_bytes
    }

    /// Bytes currently on disk.
    pub fn spill_bytes(&self) -> u64 {
        self.lock().spill_bytes
    }

    /// What a checkpoint taken now may record. Call only at a boundary, after the sink's
    /// precommit acknowledged everything consumed.
    pub fn plan_checkpoint(&self) -> CheckpointPlan {
        let g = self.lock();
        let acked_offset = g.items.range(..g.cursor).rev().find_map(|i| match i {
            Item::Mark(o) => Some(o.clone()),
            _ => None,
        });
        let mut ledger = Vec::new();
        let mut plan = CheckpointPlan {
            acked: g.cursor,
            offset: acked_offset.clone(),
            acked_offset,
            ledger: Vec::new(),
        };
        if self.spill.is_none() {
            return plan;
        }
        for item in g.items.range(g.cursor..) {
            match item {
                Item::Mark(o) => {
                    plan.offset = Some(o.clone());
                    plan.ledger.append(&mut ledger);
                }
                Item::Spilled {
                    file, rows, schema, ..
                } => ledger.push(LedgerEntry::Batch {
                    file: file.clone(),
                    rows: *rows,
                    schema: SchemaRecord::of(schema),
                }),
                Item::Event {
                    ev: ChangeEvent::CreateTable(s),
                    ..
                } => ledger.push(LedgerEntry::CreateTable {
                    schema: SchemaRecord::of(s),
                }),
                Item::Event {
                    ev:
                        ChangeEvent::SchemaChange {
                            table,
                            change,
                            schema,
                            ..
                        },
                    ..
                } => ledger.push(LedgerEntry::SchemaChange {
                    table: table.clone(),
                    change: change.clone(),
                    schema: SchemaRecord::of(schema),
                }),
                Item::Event {
                    ev: ChangeEvent::Progress { .. } | ChangeEvent::End,
                    ..
                } => {}
                Item::Event {
                    ev: ChangeEvent::Data(_),
                    ..
                }
                | Item::Dropped => break,
            }
        }
        plan
    }

    /// After the checkpoint of `plan` is durable: drops the acknowledged items and deletes
    /// their spill files.
    ///
    /// # Errors
    /// Deleting a spill file failed.
    pub fn complete(&self, plan: &CheckpointPlan) -> Result<()> {
        let mut files = Vec::new();
        {
            let mut g = self.lock();
            let n = plan.acked.min(g.cursor);
            for item in g.items.drain(..n).collect::<Vec<_>>() {
                match item {
                    Item::Event { mem, .. } => g.mem_bytes -= mem,
                    Item::Spilled { file, disk, .. } => {
                        g.spill_bytes -= disk;
                        g.spill_files -= 1;
                        files.push(file);
                    }
                    Item::Mark(_) | Item::Dropped => {}
                }
            }
            g.cursor -= n;
            if g.cursor == 0 {
                g.released = false;
            }
            g.unacked_bytes = g
                .items
                .range(..g.cursor)
                .map(|i| match i {
                    Item::Event { mem, .. } => *mem,
                    _ => 0,
                })
                .sum();
            Self::publish(&g);
        }
        if let Some(dir) = &self.spill {
            for f in files {
                dir.remove(&f)?;
            }
        }
        Ok(())
    }

    fn publish(g: &Inner) {
        let m = Metrics::global();
        m.set_spill(g.spill_bytes, g.spill_files);
        m.set_queue_bytes(g.mem_bytes as u64);
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::Int32Array;

    use super::*;
    use crate::test_fixtures::{id_batch, id_table};

    fn schema() -> TableSchemaRef {
        id_table()
    }

    fn data(s: &TableSchemaRef, ids: std::ops::Range<i32>) -> ChangeEvent {
        id_batch(s, ids, 1, None)
    }

    fn off(n: u64) -> SourceOffset {
        SourceOffset::new(serde_json::json!({ "n": n }))
    }

    fn ids(n: Next) -> Vec<i32> {
        let Next::Event(ChangeEvent::Data(b)) = n else {
            panic!("expected data, got {n:?}")
        };
        b.data
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    #[tokio::test]
    async fn ledger_covers_durable_spilled_items_and_replays_them_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let spill = SpillDir::new(dir.path().join("spill"));
        let s = schema();
        // A 1-byte memory limit: every batch goes to disk.
        let q = ChangeQueue::new(1, Some(spill.clone()));
        q.push(ChangeEvent::CreateTable(s.clone())).await.unwrap();
        q.push(data(&s, 0..10)).await.unwrap();
        q.mark(off(1));
        q.push(data(&s, 10..20)).await.unwrap();
        q.mark(off(2));
        q.push(data(&s, 20..30)).await.unwrap();
        assert!(q.spill_bytes() > 0 && q.mem_bytes() == 0);

        assert!(matches!(
            q.next().await.unwrap(),
            Some(Next::Event(ChangeEvent::CreateTable(_)))
        ));
        assert!(!q.at_boundary() || q.has_unacked());
        assert_eq!(
            ids(q.next().await.unwrap().unwrap()),
            (0..10).collect::<Vec<_>>()
        );
        assert!(
            !q.at_boundary(),
            "mid-transaction after a batch without its mark"
        );
        assert!(matches!(q.next().await.unwrap(), Some(Next::Mark(o)) if o == off(1)));
        assert!(q.at_boundary());

        let plan = q.plan_checkpoint();
        assert_eq!(plan.acked_offset, Some(off(1)));
        assert_eq!(
            plan.offset,
            Some(off(2)),
            "the durable spilled batch moves the offset on"
        );
        assert_eq!(
            plan.ledger.len(),
            1,
            "only the batch before the last mark: {:?}",
            plan.ledger
        );
        q.complete(&plan).unwrap();
        assert_eq!(
            std::fs::read_dir(spill.path()).unwrap().count(),
            2,
            "the acknowledged batch's file is gone, the two pending ones stay"
        );

        // "Crash": a new queue resumes from the ledger; the unreferenced file is a leftover.
        let q2 = ChangeQueue::new(1, Some(spill.clone()));
        let LedgerEntry::Batch { file, .. } = &plan.ledger[0] else {
            panic!("expected a batch entry")
        };
        assert_eq!(spill.remove_unreferenced(&[file.as_str()]).unwrap(), 1);
        q2.preload(&plan.ledger, plan.offset.clone());
        q2.close();
        assert_eq!(
            ids(q2.next().await.unwrap().unwrap()),
            (10..20).collect::<Vec<_>>()
        );
        assert!(matches!(q2.next().await.unwrap(), Some(Next::Mark(o)) if o == off(2)));
        assert!(q2.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_batch_held_in_memory_stops_the_offset_at_what_the_sink_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let s = schema();
        let q = ChangeQueue::new(1 << 30, Some(SpillDir::new(dir.path())));
        q.push(data(&s, 0..5)).await.unwrap();
        q.mark(off(1));
        q.push(data(&s, 5..9)).await.unwrap();
        q.mark(off(2));
        assert_eq!(q.spill_bytes(), 0);
        q.next().await.unwrap();
        q.next().await.unwrap();
        let plan = q.plan_checkpoint();
        assert_eq!(plan.offset, Some(off(1)));
        assert!(plan.ledger.is_empty());
        assert!(q.mem_bytes() > 0);
        q.complete(&plan).unwrap();
        assert_eq!(q.unacked_bytes(), 0);
    }

    #[tokio::test]
    async fn rewind_replays_everything_since_the_last_checkpoint_in_order() {
        let s = schema();
        let q = ChangeQueue::new(1 << 30, None);
        q.push(data(&s, 0..3)).await.unwrap();
        q.mark(off(1));
        q.push(data(&s, 3..6)).await.unwrap();
        q.close();
        assert_eq!(ids(q.next().await.unwrap().unwrap()), vec![0, 1, 2]);
        q.next().await.unwrap();
        assert!(q.unacked_bytes() > 0);
        q.rewind();
        assert_eq!(q.unacked_bytes(), 0);
        assert_eq!(ids(q.next().await.unwrap().unwrap()), vec![0, 1, 2]);
        assert!(matches!(q.next().await.unwrap(), Some(Next::Mark(_))));
        assert_eq!(ids(q.next().await.unwrap().unwrap()), vec![3, 4, 5]);
        assert!(q.next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_consumer_wakes_up_when_an_item_arrives() {
        let s = schema();
        let q = ChangeQueue::new(1 << 30, None);
        let q2 = q.clone();
        let h = tokio::spawn(async move { q2.next().await });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        q.push(data(&s, 0..2)).await.unwrap();
        let got = h.await.unwrap().unwrap().unwrap();
        assert_eq!(ids(got), vec![0, 1]);
        q.fail("boom".into());
        assert!(q.next().await.unwrap().is_none());
        assert_eq!(q.failure().as_deref(), Some("boom"));
    }

    #[tokio::test]
    async fn a_transaction_bigger_than_the_limit_is_released_not_spilled_and_blocks_a_rewind() {
        let dir = tempfile::tempdir().unwrap();
        let s = schema();
        let one = data(&s, 0..1000);
        let ChangeEvent::Data(b) = &one else {
            unreachable!()
        };
        let size = b.memory_size();
        // Room for about three batches in memory.
        let q = ChangeQueue::new(size * 3 + size / 2, Some(SpillDir::new(dir.path())));
        for i in 0..10 {
            q.push(data(&s, i * 1000..(i + 1) * 1000)).await.unwrap();
            assert_eq!(ids(q.next().await.unwrap().unwrap())[0], i * 1000);
        }
        assert_eq!(q.spill_bytes(), 0, "consumed batches never force a spill");
        assert!(
            q.mem_bytes() <= size * 3 + size / 2,
            "released: {}",
            q.mem_bytes()
        );
        assert!(q.is_released());
        assert!(!q.rewind(), "released batches cannot be replayed");
        q.mark(off(1));
        q.next().await.unwrap();
        let plan = q.plan_checkpoint();
        assert_eq!(plan.offset, Some(off(1)));
        q.complete(&plan).unwrap();
        assert!(
            !q.is_released() && q.rewind(),
            "a checkpoint clears the state"
        );
        assert_eq!(q.mem_bytes(), 0);
    }
}
