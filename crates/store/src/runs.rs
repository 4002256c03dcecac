//! Run provenance: `ROOT/_runs/<run_id>.json`, one file per run.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::{Store, RUNS};

/// What a run was: written when it starts and again when it ends (with `finished_at`).
/// In a multi-process run, one process (the coordinator) writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    /// The sweep spec as given (TOML/JSON text), so the run can be reproduced.
    pub spec_text: String,
    /// Where the spec was read from, if from a file.
    pub spec_path: Option<String>,
    /// The command line of the run.
    pub command: Vec<String>,
    pub synthsweep_version: String,
    pub torch_version: Option<String>,
    /// Commit of the synthsweep checkout, when built from one.
    pub git_commit: Option<String>,
    /// Devices used: `cpu`, `cuda:0`, ...
    pub devices: Vec<String>,
    /// Host of the writing process; `hosts` lists all of a multi-node run when known.
    pub host: String,
    pub hosts: Vec<String>,
    /// Number of processes and worker threads per process.
    pub processes: usize,
    pub threads: usize,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC; `None` while running (or when the run was killed).
    pub finished_at: Option<String>,
    /// How the run ended, written with `finished_at`: `complete`, `tasks failed`,
    /// `interrupted` (Ctrl-C), `preempted` (SIGTERM/SIGUSR1: checkpoints to resume) or
    /// `stopped: ...` (a multi-process run stopped by an error). `None` while running,
    /// after a kill, and in records of versions before it existed.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Tasks committed by the run (done, failed), known at the end.
    pub committed_done: Option<usize>,
    pub committed_failed: Option<usize>,
    /// Anything else worth keeping (Slurm job id, environment, ...).
    #[serde(default)]
    pub extra: serde_json::Value,
}

impl RunInfo {
    /// A run starting now on this host, with this crate's version.
    pub fn new(run_id: impl Into<String>, spec_text: impl Into<String>) -> RunInfo {
        let host = hostname();
        RunInfo {
            run_id: run_id.into(),
            spec_text: spec_text.into(),
            spec_path: None,
            command: std::env::args().collect(),
            synthsweep_version: env!("CARGO_PKG_VERSION").to_string(),
            torch_version: None,
            git_commit: None,
            devices: Vec::new(),
            hosts: vec![host.clone()],
            host,
            processes: 1,
            threads: 1,
            started_at: now_rfc3339(),
            finished_at: None,
            outcome: None,
            committed_done: None,
            committed_failed: None,
            extra: serde_json::Value::Null,
        }
    }

    /// Marks the run finished now.
    pub fn finish(&mut self) {
        self.finished_at = Some(now_rfc3339());
    }

    /// `started_at` as a time (records written with whole seconds parse too); `None` when
    /// it is not RFC 3339.
    pub fn started(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        chrono::DateTime::parse_from_rfc3339(&self.started_at)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// How the run ended, for people: the outcome when recorded, else `finished` or
    /// `running or stopped` (killed, or a version that did not record outcomes).
    pub fn state(&self) -> String {
        match (&self.outcome, &self.finished_at) {
            (Some(o), _) => o.clone(),
            (None, Some(_)) => "finished".into(),
            (None, None) => "running or stopped".into(),
        }
    }

    /// Whether the run ended with every task it had to run done or failed (not
    /// interrupted, preempted, stopped or killed).
    pub fn completed(&self) -> bool {
        match &self.outcome {
            Some(o) => o == "complete" || o == "tasks failed",
            None => self.finished_at.is_some(),
        }
    }
}

impl Store {
    /// Writes (or replaces) `_runs/<run_id>.json`.
    pub fn write_run(&self, run: &RunInfo) -> Result<()> {
        let path = self.path(&[RUNS, &format!("{}.json", run.run_id)]);
        let data = serde_json::to_vec_pretty(run)?;
        self.block_on(self.put_atomic(&path, data))
    }

    /// Every run's provenance, oldest first.
    pub fn read_runs(&self) -> Result<Vec<RunInfo>> {
        self.block_on(async {
            let mut runs = Vec::new();
            for f in self.list(&[RUNS]).await? {
                if f.path.extension() != Some("json") {
                    continue;
                }
                if let Some(data) = self.get(&f.path).await? {
                    runs.push(serde_json::from_slice::<RunInfo>(&data)?);
                }
            }
            runs.sort_by(|a, b| (a.started(), &a.run_id).cmp(&(b.started(), &b.run_id)));
            Ok(runs)
        })
    }
}

impl Store {
    /// Every readable run's provenance, oldest first, and for each run record that could
    /// not be read or is not a run record, a line naming it (`_runs/<file>: why`): one bad
    /// file hides only itself (the report and `status` show the others).
    ///
    /// # Errors
    ///
    /// A storage failure listing `_runs/`.
    pub fn read_runs_lenient(&self) -> Result<(Vec<RunInfo>, Vec<String>)> {
        self.block_on(async {
            let (mut runs, mut bad) = (Vec::new(), Vec::new());
            for f in self.list(&[RUNS]).await? {
                if f.path.extension() != Some("json") {
                    continue;
                }
                let name = format!("{RUNS}/{}", f.path.filename().unwrap_or_default());
                match self.get(&f.path).await {
                    Ok(Some(data)) => match serde_json::from_slice::<RunInfo>(&data) {
                        Ok(r) => runs.push(r),
                        Err(e) => bad.push(format!("{name}: not a run record ({e})")),
                    },
                    Ok(None) => {}
                    Err(e) => bad.push(format!("{name}: {e}")),
                }
            }
            runs.sort_by(|a, b| (a.started(), &a.run_id).cmp(&(b.started(), &b.run_id)));
            Ok((runs, bad))
        })
    }
}

/// A new run id: UTC time and a random suffix, e.g. `20250301T101500Z-3fa2c1`; sorts by time.
pub fn new_run_id() -> String {
    format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

/// The current time as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    // Microseconds: two runs of one root often start within a second of each other (a
    // resume right after a preemption), and "the last run" must tell them apart.
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// This machine's host name (`HOSTNAME`, else the kernel's), or `unknown`.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
