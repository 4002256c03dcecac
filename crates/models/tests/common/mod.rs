//! Test harness: the shared fixtures (loud error when missing) and tolerance checks.
#![allow(dead_code)]
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// `../shared` next to the checkout, or `$SYNTHSWEEP_SHARED`.
pub fn shared_dir() -> PathBuf {
    if let Ok(p) = std::env::var("SYNTHSWEEP_SHARED") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("../shared");
    assert!(
        dir.join("fixtures").is_dir(),
        "fixtures not found at {} (set SYNTHSWEEP_SHARED to the shared/ folder)",
        dir.display()
    );
    dir
}

pub fn models_fixtures() -> PathBuf {
    shared_dir().join("fixtures/models")
}

pub fn manifest() -> Value {
    let path = models_fixtures().join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("manifest.json is JSON")
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

/// All arrays of a case's npz file.
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

/// Elementwise `|a - e| <= atol + rtol |e|` with NaN positions matching. Returns a
/// description of the worst element on failure.
pub fn allclose(actual: &Tensor, expected: &Tensor, atol: f64, rtol: f64) -> Result<f64, String> {
    let a = actual
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .contiguous();
    let e = expected.to_kind(Kind::Double).contiguous();
    if a.size() != e.size() {
        // Allow a 0-d / (1,) mismatch and squeezable dims.
        if a.numel() != e.numel() {
            return Err(format!("shape {:?} != expected {:?}", a.size(), e.size()));
        }
    }
    let a = a.reshape([-1]);
    let e = e.reshape([-1]);
    let a_nan = a.isnan();
    let e_nan = e.isnan();
    if a_nan.ne_tensor(&e_nan).any().int64_value(&[]) != 0 {
        return Err("NaN positions differ".into());
    }
    let a = a.nan_to_num(0.0, None, None);
    let e = e.nan_to_num(0.0, None, None);
    let diff = (&a - &e).abs();
    let excess = &diff - (e.abs() * rtol + atol);
    let worst = excess.argmax(None, false).int64_value(&[]);
    let max_diff = diff.max().double_value(&[]);
    if excess.get(worst).double_value(&[]) > 0.0 {
        return Err(format!(
            "element {worst}: actual {} expected {} (|diff| {:.3e} > atol {atol:e} + rtol {rtol:e}); max |diff| {max_diff:.3e}",
            a.get(worst).double_value(&[]),
            e.get(worst).double_value(&[]),
            diff.get(worst).double_value(&[])
        ));
    }
    Ok(max_diff)
}

/// Checks `actual` against the fixture array `name` with its own tolerance.
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

/// A 1-element param array as f64 values.
pub fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// Runs `f` with a `tracing` subscriber on this thread that records every event (warnings
/// included), and returns `f`'s result with the recorded lines.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}
