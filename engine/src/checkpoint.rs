//! Durable checkpoints: the source offset and sink state that together say "everything before
//! this point is in the sink".
//!
//! A checkpoint is written only after the sink acknowledged (flushed or pre-committed) every
//! batch up to the recorded offset, so resuming from it can neither lose nor skip rows. The file
//! is replaced atomically: write to a temporary file, fsync it, rename over the old one, fsync the
//! directory. A crash at any point leaves either the old or the new checkpoint, never a torn one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::change::SourceOffset;
use crate::error::{EngineError, Result};

/// What one checkpoint records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Monotonic checkpoint id (also used in sink transaction labels).
    pub id: u64,
    /// Where the source resumes.
    pub offset: Option<SourceOffset>,
    /// Sink state returned by `precommit` (e.g. prepared transactions), committed after this
    /// checkpoint is durable.
    pub sink_state: Option<serde_json::Value>,
    /// The pipeline name, to catch a checkpoint directory reused by another pipeline.
    pub pipeline: String,
    /// Wall-clock time of the checkpoint (epoch ms), for humans.
    pub created_ms: i64,
    /// Durable spilled items between what the sink acknowledged and `offset`, in order; replayed
    /// to the sink before the source resumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ledger: Vec<crate::spill::LedgerEntry>,
}

/// A checkpoint file in a directory of its own.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Uses `dir` (created if missing) for checkpoint files.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CheckpointStore { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint file path.
    pub fn path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    /// Reads the last checkpoint, if any.
    pub fn load(&self) -> Result<Option<Checkpoint>> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io_err(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Writes `cp` atomically (write, fsync, rename, fsync dir).
    pub fn save(&self, cp: &Checkpoint) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let path = self.path();
        let tmp = self.dir.join("checkpoint.json.tmp");
        let bytes = serde_json::to_vec_pretty(cp).map_err(|e| {
            io_err(
                &tmp,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        {
            let mut f = fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
            f.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
            f.sync_all().map_err(|e| io_err(&tmp, e))?;
        }
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        if let Ok(d) = fs::File::open(&self.dir) {
            // Directory fsync makes the rename durable; not all filesystems support it.
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// Removes the checkpoint (for `--from-scratch`).
    pub fn clear(&self) -> Result<()> {
        let path = self.path();
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }
}

fn io_err(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Checkpoint {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_load_round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("cp"));
        assert!(
            store.load().unwrap().is_none(),
            "no checkpoint before the first save"
        );
        let mut cp = Checkpoint {
            id: 1,
            offset: Some(SourceOffset::new(
                serde_json::json!({"file": "mysql-bin.000001", "pos": 4}),
            )),
            sink_state: None,
            pipeline: "p".into(),
            created_ms: 0,
            ledger: Vec::new(),
        };
        store.save(&cp).unwrap();
        cp.id = 2;
        store.save(&cp).unwrap();
        assert_eq!(
            store.load().unwrap(),
            Some(cp),
            "the second save replaces the first"
        );
        store.clear().unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn corrupt_checkpoint_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path());
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(store.load().is_err());
    }
}
