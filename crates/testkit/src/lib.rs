//! The test harness of synthsweep's crates, in one place (a dev-dependency only, never
//! published): where the workspace, the shared fixtures and the Python venv are; tiny images
//! and specs; sample store results and the moto S3 server; the `synthsweep` binary as a user
//! runs it. The tensor half (model and synthesis fixtures, tolerance checks, the test device)
//! is `synthsweep-testkit-tch`, apart because it links libtorch.
//!
//! Each crate's tests enable the features they use (see Cargo.toml) and import a module, e.g.
//! `use synthsweep_testkit::store as common;`.
use std::path::{Path, PathBuf};

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "sweep")]
pub mod sweep;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `../shared` next to the checkout, or `$SYNTHSWEEP_SHARED`; panics loudly when the fixtures
/// are not there.
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("SYNTHSWEEP_SHARED") {
        return PathBuf::from(p);
    }
    let dir = workspace_root().join("../shared");
    assert!(
        dir.join("fixtures").is_dir(),
        "fixtures not found at {} (set SYNTHSWEEP_SHARED to the shared/ folder)",
        dir.display()
    );
    dir
}

/// The project's Python (`.venv` at the workspace root); panics loudly when missing.
pub fn venv_python() -> PathBuf {
    let py = workspace_root().join(".venv/bin/python");
    assert!(
        py.exists(),
        "no Python venv at {}: run scripts/setup.sh (the S3, Python-reader and TorchScript \
         tests need .venv with torch, moto[server], polars, pandas, pyarrow, duckdb)",
        py.display()
    );
    py
}

/// Files (relative paths, sorted) under a local folder; empty when it does not exist.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A JSON file's value; panics naming the file when it cannot be read or parsed.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Runs `tests/python/SCRIPT ARGS` with the project's Python and `env` added; returns its
/// stdout and stderr, and panics with them when it fails.
pub fn run_python<I, A>(script: &str, args: I, env: &[(&str, String)]) -> String
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let mut cmd = std::process::Command::new(venv_python());
    cmd.arg(workspace_root().join("tests/python").join(script))
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the venv's Python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}

/// Asserts that `msg` contains every part.
#[track_caller]
pub fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "expected {p:?} in the message:\n{msg}");
    }
}
