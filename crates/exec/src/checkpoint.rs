//! Preemption: SIGTERM/SIGUSR1 stop the workers, each saves its in-flight synthesis as a
//! checkpoint, finished tasks are committed, and the process exits with
//! [`EXIT_PREEMPTED`]. The next run resumes a checkpointed task from the saved state (bit
//! for bit on the CPU) and deletes the checkpoint once the task is committed.
//!
//! Checkpoints are one file per task, `ROOT/_checkpoints/<task_id>.safetensors` (the
//! synthesis crate's save format: tensors, optimizer state and JSON metadata in one file),
//! written to a temporary name and renamed. Local roots only: for an S3 root, set
//! `SYNTHSWEEP_CHECKPOINT_DIR` to a folder every process can reach, or in-flight tasks of a
//! preempted run start again from scratch. The optimised syntheses (metamer, metamer_ctf,
//! mad, geodesic) checkpoint; the others start again from scratch after a preemption:
//! eigendistortion (a cancelled analysis keeps no partial results; `Eigendistortion::save`
//! saves a finished one), simple_metamer (its `synthesize` takes no per-iteration callback,
//! so a preemption cannot stop it mid-run) and score (one step).
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use synthsweep_store::{Ledger, OutputRoot};

/// Exit code of a run stopped by SIGTERM or SIGUSR1 (sysexits' EX_TEMPFAIL: "try again
/// later"): finished tasks are committed, in-flight ones checkpointed; run again to resume.
pub const EXIT_PREEMPTED: u8 = 75;

/// The folder under an output root that holds checkpoints.
pub const CHECKPOINT_FOLDER: &str = "_checkpoints";

/// Overrides the checkpoint folder (needed for S3 roots).
pub const CHECKPOINT_DIR_ENV: &str = "SYNTHSWEEP_CHECKPOINT_DIR";

static PREEMPTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();

fn preempt_flag() -> &'static Arc<AtomicBool> {
    PREEMPTED.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// Installs handlers for SIGTERM and SIGUSR1 that set `cancel` and mark the process as
/// preempted (see [`preempted`]). Safe to call more than once.
pub fn install_preemption_handlers(cancel: &Arc<AtomicBool>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGTERM, SIGUSR1};
    for sig in [SIGTERM, SIGUSR1] {
        signal_hook::flag::register(sig, preempt_flag().clone())?;
        signal_hook::flag::register(sig, cancel.clone())?;
    }
    Ok(())
}

/// Whether a preemption signal arrived (or [`request_preemption`] was called).
pub fn preempted() -> bool {
    preempt_flag().load(Ordering::SeqCst)
}

/// Marks the process as preempted, as the signal handlers do (for embedding and tests).
pub fn request_preemption(cancel: &AtomicBool) {
    preempt_flag().store(true, Ordering::SeqCst);
    cancel.store(true, Ordering::SeqCst);
}

/// The checkpoint folder of a run, and the tasks resumed from it.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: PathBuf,
    resumed: Arc<Mutex<HashSet<String>>>,
    saved: Arc<AtomicU64>,
}

impl Checkpoints {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Checkpoints {
            dir: dir.into(),
            resumed: Arc::default(),
            saved: Arc::default(),
        }
    }

    /// `$SYNTHSWEEP_CHECKPOINT_DIR` if set, else `ROOT/_checkpoints` for a local root;
    /// `None` for an S3 root without the variable (no checkpoints).
    pub fn for_root(root: &OutputRoot) -> Option<Self> {
        match (std::env::var_os(CHECKPOINT_DIR_ENV), root) {
            (Some(d), _) if !d.is_empty() => Some(Checkpoints::new(d)),
            (_, OutputRoot::Local(p)) => Some(Checkpoints::new(p.join(CHECKPOINT_FOLDER))),
            _ => None,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `task_id`'s checkpoint is (whether or not it exists).
    pub fn path(&self, task_id: &str) -> PathBuf {
        self.dir.join(format!("{task_id}.safetensors"))
    }

    /// The checkpoint of `task_id`, if there is one.
    pub fn find(&self, task_id: &str) -> Option<PathBuf> {
        let p = self.path(task_id);
        p.is_file().then_some(p)
    }

    /// Saves through `save` into a temporary file, then renames it into place, so a
    /// checkpoint is never half-written.
    pub fn save<E: std::fmt::Display>(
        &self,
        task_id: &str,
        save: impl FnOnce(&Path) -> Result<(), E>,
    ) -> Result<PathBuf, String> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("cannot create {}: {e}", self.dir.display()))?;
        let path = self.path(task_id);
        let tmp = self
            .dir
            .join(format!(".{task_id}.{}.tmp", std::process::id()));
        save(&tmp).map_err(|e| format!("cannot save checkpoint: {e}"))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| format!("cannot rename {}: {e}", tmp.display()))?;
        self.saved.fetch_add(1, Ordering::Relaxed);
        Ok(path)
    }

    /// How many checkpoints this run saved.
    pub fn saved(&self) -> u64 {
        self.saved.load(Ordering::Relaxed)
    }

    /// Notes that `task_id` resumed from its checkpoint (deleted once it commits).
    pub fn mark_resumed(&self, task_id: &str) {
        self.resumed
            .lock()
            .expect("checkpoint lock")
            .insert(task_id.to_string());
    }

    /// Deletes the checkpoints of these committed tasks (those that resumed from one).
    pub fn committed<'a>(&self, task_ids: impl IntoIterator<Item = &'a str>) {
        let mut resumed = self.resumed.lock().expect("checkpoint lock");
        for id in task_ids {
            if resumed.remove(id) {
                let _ = std::fs::remove_file(self.path(id));
            }
        }
    }

    /// Deletes a checkpoint that cannot be used.
    pub fn discard(&self, task_id: &str) {
        let _ = std::fs::remove_file(self.path(task_id));
    }

    /// Deletes checkpoints of tasks the ledger lists as committed (left behind when a
    /// process died between a commit and the deletion) and stale temporary files; returns
    /// how many checkpoints remain.
    pub fn prune(&self, ledger: &Ledger) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut left = 0;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(e.path());
            } else if let Some(id) = name.strip_suffix(".safetensors") {
                if ledger.is_committed(id) {
                    let _ = std::fs::remove_file(e.path());
                } else {
                    left += 1;
                }
            }
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_dir_follows_the_root() {
        let local = OutputRoot::parse("/tmp/out").unwrap();
        if std::env::var_os(CHECKPOINT_DIR_ENV).is_none() {
            let c = Checkpoints::for_root(&local).unwrap();
            assert_eq!(
                c.path("abc"),
                Path::new("/tmp/out/_checkpoints/abc.safetensors")
            );
            assert!(Checkpoints::for_root(&OutputRoot::parse("s3://b/p").unwrap()).is_none());
        }
    }

    #[test]
    fn save_is_atomic_and_committed_deletes_only_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoints::new(dir.path().join("ck"));
        let p = c.save("t1", |tmp| std::fs::write(tmp, b"state")).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"state");
        assert!(c.save("t2", |_| Err("boom")).is_err());
        assert!(c.find("t2").is_none());
        c.committed(["t1"]);
        assert!(c.find("t1").is_some(), "not resumed: kept");
        c.mark_resumed("t1");
        c.committed(["t1"]);
        assert!(c.find("t1").is_none());
    }
}
