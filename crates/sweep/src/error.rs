//! The one error type of the sweep crate: every message names the spec file, the key path
//! (`grid.optimized_metric[1]`) and, where known, the line and column.
use std::fmt;
use std::path::PathBuf;

/// Where in a spec file a problem is: the file, the key path, and the position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The spec file (as given to [`crate::SweepSpec::from_path`] or `from_str`).
    pub file: String,
    /// The key path, e.g. `grid.optimized_metric[1]`; empty for the whole file.
    pub key: String,
    /// 1-based line and column of the value, when the spec text is known.
    pub line: Option<(usize, usize)>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some((line, col)) = self.line {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong between a spec file and a task.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The file could not be read.
    #[error("cannot read sweep spec {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The text is not TOML (the message carries the position from the TOML parser).
    #[error("{file}: not valid TOML: {message}")]
    Toml { file: String, message: String },
    /// The TOML is valid but the spec is not: an unknown key, a wrong type, an empty axis,
    /// a glob that matches nothing, an exclusion naming no axis, a value the resolver rejects.
    #[error("{at}: {message}")]
    Spec { at: Location, message: String },
    /// An image file could not be read while planning (digests are of the file bytes).
    #[error("{at}: cannot read image {path}: {source}")]
    Image {
        at: Location,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A task that could only be checked when it was built (a combination of values that
    /// no single value shows, e.g. a resolver rule relating two parameters).
    #[error("{file}: task {index} ({coords}): {message}")]
    Task {
        file: String,
        index: u64,
        coords: String,
        message: String,
    },
    /// A task index past the end of the grid.
    #[error("task index {index} is out of range: the grid has {grid_size} positions")]
    IndexOutOfRange { index: u64, grid_size: u64 },
    /// The scratch file of the duplicate-id check (sorted task hashes, for a scope of more
    /// than a few million tasks) could not be written or read back.
    #[error(
        "cannot use a scratch file in {dir} (the check for tasks with one id sorts their hashes \
         there; set TMPDIR to a folder with room, 16 bytes per task): {source}"
    )]
    Scratch {
        dir: PathBuf,
        source: std::io::Error,
    },
    /// A shard request that does not make sense (`n == 0` or `i >= n`).
    #[error("shard {index} of {count} does not exist: shards are numbered 0..{count}")]
    BadShard { index: u64, count: u64 },
}

impl SweepError {
    /// The location of a spec error, if this is one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            SweepError::Spec { at, .. } | SweepError::Image { at, .. } => Some(at),
            _ => None,
        }
    }
}

pub type Result<T, E = SweepError> = std::result::Result<T, E>;
