//! The model fixtures (`../shared/fixtures/models`: a manifest of cases, one .npz per case)
//! and their tolerance checks, for the models crate's parity tests.
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use synthsweep_models::{build_metric, build_model, Metric, Model};
use tch::{Device, Kind, Tensor};

pub use crate::device::{on_device, test_device};
pub use crate::logs::capture_logs;
pub use crate::tensors::{allclose, values};
pub use crate::{expected_data, shared_dir, workspace_root};

/// `fixtures/models` of the shared folder.
pub fn models_fixtures() -> PathBuf {
    shared_dir().join("fixtures/models")
}

/// The model fixtures' `manifest.json`.
pub fn manifest() -> Value {
    crate::read_json(&models_fixtures().join("manifest.json"))
}

/// Cases of the model fixture manifest whose `kind` is one of `kinds`.
pub fn cases(kinds: &[&str]) -> Vec<Value> {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| kinds.contains(&c["kind"].as_str().unwrap()))
        .cloned()
        .collect()
}

/// All arrays of a case's npz file (on the CPU).
pub fn load_npz(case: &Value) -> HashMap<String, Tensor> {
    let path = models_fixtures().join(case["npz"].as_str().unwrap());
    Tensor::read_npz(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// The manifest entry for array `name` of a case.
pub fn array_meta<'a>(case: &'a Value, name: &str) -> &'a Value {
    case["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{}: no array {name}", case["id"]))
}

/// Checks `actual` (any device) against the fixture array `name` with its own tolerance.
pub fn check_array(
    case: &Value,
    npz: &HashMap<String, Tensor>,
    name: &str,
    actual: &Tensor,
) -> Result<f64, String> {
    let meta = array_meta(case, name);
    let atol = meta["atol"].as_f64().unwrap_or(1e-6);
    let rtol = meta["rtol"].as_f64().unwrap_or(1e-5);
    let expected = npz
        .get(name)
        .unwrap_or_else(|| panic!("{}: npz has no {name}", case["id"]));
    allclose(actual, expected, atol, rtol)
        .map_err(|e| format!("{} / {name}: {e}", case["id"].as_str().unwrap()))
}

/// Runs every case, collects failures, and fails once with all of them listed.
pub fn run_all(cases: Vec<Value>, mut f: impl FnMut(&Value) -> Result<(), String>) {
    assert!(!cases.is_empty(), "no cases selected");
    let mut failures = Vec::new();
    for c in &cases {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c))) {
            Ok(Ok(())) => eprintln!("ok   {}", c["id"].as_str().unwrap()),
            Ok(Err(e)) => failures.push(e),
            Err(p) => failures.push(format!(
                "{}: panicked: {}",
                c["id"],
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The model of `spec` (float32) on `device`; models are built on the CPU and moved.
pub fn model_on(spec: &Value, device: Device) -> Result<Box<dyn Model>, String> {
    let mut model = build_model(spec).map_err(|e| e.to_string())?;
    if device != Device::Cpu {
        model.to(device, Kind::Float);
    }
    Ok(model)
}

/// The metric of `spec` (float32) on `device`; metrics are built on the CPU and moved.
pub fn metric_on(spec: &Value, device: Device) -> Result<Box<dyn Metric>, String> {
    let mut metric = build_metric(spec).map_err(|e| e.to_string())?;
    if device != Device::Cpu {
        metric.to(device, Kind::Float);
    }
    Ok(metric)
}
