//! The tensor half of synthsweep's test harness (a dev-dependency only, never published): the
//! model and synthesis fixtures with their tolerance checks, the device tests run on, log
//! capture, small models for behaviour tests. Paths and the rest are `synthsweep-testkit`'s
//! (re-exported here); this crate is apart because it links libtorch.
use std::path::Path;

pub mod device;
pub mod logs;
pub mod models;
pub mod synth;
pub mod tensors;

pub use synthsweep_testkit::{read_json, shared_dir, venv_python, workspace_root};

/// Reads a test data folder's `expected.json` and `expected.npz` (written by the script that
/// made the folder's expected values with plenoptic).
pub fn expected_data(
    dir: &Path,
) -> (
    serde_json::Value,
    std::collections::HashMap<String, tch::Tensor>,
) {
    let meta = read_json(&dir.join("expected.json"));
    let npz = dir.join("expected.npz");
    let arrays = tch::Tensor::read_npz(&npz)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", npz.display()))
        .into_iter()
        .collect();
    (meta, arrays)
}
