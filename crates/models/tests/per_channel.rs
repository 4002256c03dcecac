//! Per-channel filter parameters as current plenoptic takes them: every case of
//! tests/data/per_channel (scripts/gen_per_channel_filters.py, plenoptic 2.1.1) — `gaussian`
//! with a `std` list, `center_surround` with `on_center`, `center_std`, `surround_std` lists
//! (odd and even kernels, square and not), the front ends with an `on_center` list — gives
//! plenoptic's output with `out_channels` inferred; what plenoptic refuses is refused with a
//! message naming both parameters; and a spec with `out_channels` inferred resolves to the
//! same spec (the same task) as one that states it.
use synthsweep_testkit_tch::models as common;

use common::allclose;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use synthsweep_models::{build_model, resolve_spec};
use tch::Tensor;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/per_channel")
}

fn cases() -> Vec<Value> {
    let text = std::fs::read_to_string(data_dir().join("cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn per_channel_lists_match_plenoptic() {
    tch::set_num_threads(1);
    let arrays: HashMap<String, Tensor> = Tensor::read_npz(data_dir().join("expected.npz"))
        .unwrap()
        .into_iter()
        .collect();
    let x = &arrays["x"];
    let mut failures = Vec::new();
    let mut computed = 0;
    for case in cases() {
        let spec = &case["spec"];
        // Front ends draw their scalars at construction, as plenoptic does after the seed.
        tch::manual_seed(case["seed"].as_i64().unwrap());
        let built = build_model(spec);
        let Some(name) = case["array"].as_str() else {
            let plenoptic = case["error"].as_str().unwrap();
            match built {
                Ok(_) => failures.push(format!("{spec}: accepted, plenoptic fails: {plenoptic}")),
                Err(e) => eprintln!("refused {spec}: {e}\n   plenoptic: {plenoptic}"),
            }
            continue;
        };
        let model = match built {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{spec}: {e}"));
                continue;
            }
        };
        let out = tch::no_grad(|| model.forward(x));
        let want = &arrays[name];
        if out.size() != want.size() {
            failures.push(format!(
                "{spec}: shape {:?}, plenoptic {:?}",
                out.size(),
                want.size()
            ));
            continue;
        }
        if let Err(e) = allclose(&out, want, 1e-6, 1e-5) {
            failures.push(format!("{spec}: {e}"));
        }
        computed += 1;
    }
    assert!(computed >= 10, "only {computed} cases computed");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn disagreeing_lengths_name_both_parameters() {
    let cases = [
        (
            json!({"name": "center_surround", "kernel_size": 5, "surround_std": [4.0, 5.0]}),
            ["surround_std", "center_std"],
        ),
        (
            json!({"name": "center_surround", "kernel_size": 5, "center_std": [1.0, 2.0], "surround_std": [4.0, 5.0, 6.0]}),
            ["surround_std", "center_std"],
        ),
        (
            json!({"name": "center_surround", "kernel_size": 5, "on_center": [true, false, true], "center_std": [1.0, 2.0]}),
            ["center_std", "on_center"],
        ),
        (
            json!({"name": "center_surround", "kernel_size": 5, "center_std": [1.0, 2.0], "out_channels": 3}),
            ["center_std", "out_channels"],
        ),
        (
            json!({"name": "center_surround", "kernel_size": 5, "on_center": [true, false], "out_channels": 3}),
            ["on_center", "out_channels"],
        ),
        (
            json!({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.0], "out_channels": 3}),
            ["std", "out_channels"],
        ),
        (
            json!({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.0], "out_channels": 0}),
            ["out_channels", "positive"],
        ),
        (
            json!({"name": "gaussian", "kernel_size": 5, "std": [1.0, -2.0]}),
            ["std", "positive"],
        ),
        (
            json!({"name": "gaussian", "kernel_size": 5, "std": []}),
            ["std", "list"],
        ),
        (
            json!({"name": "center_surround", "kernel_size": 5, "on_center": []}),
            ["on_center", "list"],
        ),
        (
            json!({"name": "luminance_contrast_gain_control", "kernel_size": 7, "on_center": [true, false]}),
            ["on_center", "plenoptic"],
        ),
        (
            json!({"name": "linear_nonlinear", "pretrained": true, "on_center": [true, false]}),
            ["on_center", "pretrained"],
        ),
    ];
    for (spec, words) in cases {
        let err = build_model(&spec)
            .err()
            .unwrap_or_else(|| panic!("{spec} accepted"))
            .to_string();
        for w in words {
            assert!(err.contains(w), "{spec}: `{err}` does not name {w}");
        }
        // Resolution, which fills in the inferred out_channels, refuses disagreeing lists.
        if ["gaussian", "center_surround"].contains(&spec["name"].as_str().unwrap()) {
            assert!(resolve_spec("model", &spec).is_err(), "{spec}");
        }
    }
}

#[test]
fn inferred_and_explicit_out_channels_resolve_alike() {
    let pairs = [
        (
            json!({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.0]}),
            json!({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.0], "out_channels": 2}),
        ),
        (
            json!({"name": "gaussian", "kernel_size": 5}),
            json!({"name": "gaussian", "kernel_size": 5, "std": 3.0, "out_channels": 1}),
        ),
        (
            json!({"name": "center_surround", "kernel_size": 6, "on_center": [true, false]}),
            json!({"name": "center_surround", "kernel_size": 6, "on_center": [true, false], "out_channels": 2}),
        ),
        (
            json!({"name": "center_surround", "kernel_size": 6, "center_std": [1.0, 2.0, 3.0]}),
            json!({"name": "center_surround", "kernel_size": 6, "center_std": [1.0, 2.0, 3.0], "out_channels": 3}),
        ),
    ];
    for (inferred, explicit) in pairs {
        let a = resolve_spec("model", &inferred).unwrap();
        let b = resolve_spec("model", &explicit).unwrap();
        assert_eq!(a, b, "{inferred} vs {explicit}");
        assert!(a["out_channels"].is_u64(), "{a}");
    }
    // The default single channel keeps the value it always had (task ids unchanged).
    let one = resolve_spec(
        "model",
        &json!({"name": "center_surround", "kernel_size": 5}),
    )
    .unwrap();
    assert_eq!(one["out_channels"], 1);
}
