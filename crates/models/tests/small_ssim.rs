//! SSIM-family metrics on images smaller than the 11x11 window, as plenoptic 1.1.0 computes
//! them: every case of tests/data/small_ssim/expected.json (scripts/gen_small_ssim.py) —
//! SSIM at 8x8, 10x10, 10x40, 11x11, 11x40 and a few tinier sizes (plain and weighted, each
//! padding mode), MS-SSIM at 32, 40, 41 and 64 px (5 scales) and smaller — matches
//! plenoptic's value within the case's tolerance, logs plenoptic's warning where plenoptic
//! warns (once per metric and size, never per call) and nowhere else. The warnings are
//! process-wide (once per process), so each size is used by one test only.
use synthsweep_testkit_tch::models as common;

use common::capture_logs;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use synthsweep_models::image_io::load_image;
use synthsweep_models::{build_metric, Metric};
use tch::Tensor;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/small_ssim")
}

fn expected() -> Value {
    let path = data_dir().join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The top-left `h` x `w` crops of the two fixture images.
fn crops(h: i64, w: i64) -> (Tensor, Tensor) {
    let load = |name: &str| load_image(&data_dir().join(name)).unwrap();
    let crop = |t: Tensor| t.narrow(2, 0, h).narrow(3, 0, w);
    (crop(load("a.pgm")), crop(load("b.pgm")))
}

fn spec(case: &Value, distance: bool) -> Value {
    let mut spec = case["params"].as_object().unwrap().clone();
    let name = case["metric"].as_str().unwrap();
    let name = if distance {
        format!("{name}_distance")
    } else {
        name.to_string()
    };
    spec.insert("name".into(), json!(name));
    Value::Object(spec)
}

fn value(m: &dyn Metric, a: &Tensor, b: &Tensor) -> f64 {
    tch::no_grad(|| m.forward(a, b)).double_value(&[0, 0])
}

#[test]
fn ssim_family_matches_plenoptic_on_small_images() {
    tch::set_num_threads(1);
    let doc = expected();
    let cases = doc["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    let (_, logs) = capture_logs(|| {
        sample_images_take_the_default_ms_ssim(&doc);
        for case in cases {
            assert!(
                case.get("error").is_none(),
                "plenoptic refused {case}: synthsweep must then refuse too"
            );
            let size = &case["size"];
            let (h, w) = (size[0].as_i64().unwrap(), size[1].as_i64().unwrap());
            let (a, b) = crops(h, w);
            for distance in [false, true] {
                let spec = spec(case, distance);
                let m = build_metric(&spec).unwrap();
                m.check_input(&a.size())
                    .unwrap_or_else(|e| panic!("{spec} refuses {h}x{w}: {e}"));
                let got = value(m.as_ref(), &a, &b);
                let want = match &case["value"] {
                    Value::String(s) if s == "nan" => f64::NAN,
                    v => v.as_f64().unwrap(),
                };
                let want = if distance { 1.0 - want } else { want };
                let atol = case["atol"].as_f64().unwrap_or(0.0);
                let ok = if want.is_nan() {
                    got.is_nan()
                } else {
                    (got - want).abs() <= atol
                };
                if !ok {
                    failures.push(format!(
                        "{spec} at {h}x{w}: {got} but plenoptic {want} (atol {atol:e})"
                    ));
                }
            }
        }
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Each (metric, size) plenoptic warned about is logged once, with plenoptic's text.
    for case in cases {
        let size = &case["size"];
        let (h, w) = (size[0].as_i64().unwrap(), size[1].as_i64().unwrap());
        for distance in [false, true] {
            let name = spec(case, distance)["name"].as_str().unwrap().to_string();
            let head = format!(": {name} on {h}x{w} images: ");
            let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&head)).collect();
            let warned = case["warnings"].as_array().unwrap();
            if warned.is_empty() {
                // Another case of the same metric and size may have warned (e.g. 3 scales vs 5).
                let any_case_warns = cases.iter().any(|c| {
                    c["metric"] == case["metric"]
                        && c["size"] == case["size"]
                        && !c["warnings"].as_array().unwrap().is_empty()
                });
                if !any_case_warns {
                    assert!(
                        lines.is_empty(),
                        "{name} {h}x{w}: plenoptic does not warn: {lines:?}"
                    );
                }
                continue;
            }
            assert_eq!(
                lines.len(),
                1,
                "{name} {h}x{w}: once per metric and size:\n{logs}"
            );
            for message in warned {
                let message = message.as_str().unwrap();
                assert!(
                    lines[0].contains(message),
                    "{name} {h}x{w}: {lines:?} lacks {message}"
                );
                assert!(lines[0].contains("WARN"), "{lines:?}");
            }
        }
    }
}

#[test]
fn the_warning_is_logged_once_however_often_the_metric_runs() {
    let (a, b) = crops(9, 13);
    let m = build_metric(&json!({"name": "ssim_distance", "pad": "reflect"})).unwrap();
    let other = build_metric(&json!({"name": "ssim_distance"})).unwrap();
    let ((), logs) = capture_logs(|| {
        for _ in 0..5 {
            value(m.as_ref(), &a, &b);
            value(other.as_ref(), &a, &b);
        }
        // A gradient pass (as a synthesis iteration makes) does not warn again either.
        let x = a.set_requires_grad(true);
        m.forward(&x, &b).sum(tch::Kind::Float).backward();
        assert!(x.grad().isfinite().all().int64_value(&[]) == 1);
    });
    assert_eq!(
        logs.matches("ssim_distance on 9x13 images").count(),
        1,
        "{logs}"
    );
}

/// The repository's sample images are 64 px: the default 5-scale MS-SSIM runs there (its
/// coarsest scale is 4x4), as in plenoptic. (Called inside the main test, whose log capture
/// must see the first 64x64 MS-SSIM warning.)
fn sample_images_take_the_default_ms_ssim(doc: &Value) {
    let case = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["metric"] == "ms_ssim" && c["size"] == json!([64, 64]) && c["params"] == json!({})
        })
        .unwrap();
    let img = load_image(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../sweeps/images/einstein_64.pgm"
    )))
    .unwrap();
    let m = build_metric(&json!({"name": "ms_ssim"})).unwrap();
    m.check_input(&img.size()).unwrap();
    assert!((value(m.as_ref(), &img, &img) - 1.0).abs() < 1e-6);
    let (a, b) = crops(64, 64);
    let got = value(m.as_ref(), &a, &b);
    let want = case["value"].as_f64().unwrap();
    assert!(
        (got - want).abs() <= case["atol"].as_f64().unwrap(),
        "{got} vs {want}"
    );
}
