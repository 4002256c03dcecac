//! The report's errors: the user's input (exit 2 in the CLI), storage, and writing the site.

use std::path::PathBuf;

/// What can stop a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder or prefix holds no `tasks/` and no `_runs/` written by `synthsweep run`.
    #[error("{0}: not an output root (no tasks/ and no _runs/ written by `synthsweep run`); expected the folder given to `run --out` (default results/<name>)")]
    NotARoot(String),
    /// The root has runs recorded but no committed task yet.
    #[error("{root}: no task committed yet ({runs} run(s) recorded; a running sweep commits its first batch after 256 tasks or 30 s): nothing to report")]
    Empty { root: String, runs: usize },
    /// A `--where AXIS=VALUE` filter that is malformed, names no axis or matches no task.
    #[error("--where {given}: {why}")]
    BadFilter { given: String, why: String },
    /// An `--out` folder the report must not write into: one holding files that are not a
    /// report's, or a folder of the root's tables (or the root itself).
    #[error("--out {out}: {why}")]
    BadOut { out: String, why: String },
    /// Reading the root failed.
    #[error(transparent)]
    Store(#[from] synthsweep_store::StoreError),
    /// Writing a file of the report failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The scratch folder (in TMPDIR) for the tasks' references could not be made or
    /// written (the CLI exits 74, as for a storage failure).
    #[error("scratch space in {} (TMPDIR): {source}; set TMPDIR to a writable folder with room for about 30 bytes a task", dir.display())]
    Scratch {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A figure could not be drawn or encoded.
    #[error("figure {what}: {why}")]
    Figure { what: String, why: String },
    /// A page template failed (a bug: the templates are built in).
    #[error("page {0}")]
    Template(#[from] minijinja::Error),
}

impl ReportError {
    /// True when the user's input is wrong (the CLI exits 2), not the storage or the disk.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ReportError::NotARoot(_)
                | ReportError::Empty { .. }
                | ReportError::BadFilter { .. }
                | ReportError::BadOut { .. }
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ReportError {
        let path = path.into();
        move |source| ReportError::Io { path, source }
    }

    /// As [`ReportError::io`], for a file of the scratch space in TMPDIR.
    pub(crate) fn scratch(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ReportError {
        let dir = path.into();
        move |source| ReportError::Scratch { dir, source }
    }

    pub(crate) fn figure(what: &str) -> impl FnOnce(String) -> ReportError + '_ {
        move |why| ReportError::Figure {
            what: what.to_string(),
            why,
        }
    }
}

/// The report's result type.
pub type Result<T> = std::result::Result<T, ReportError>;
