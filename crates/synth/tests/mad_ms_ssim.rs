//! A MAD competition with `ms_ssim_distance` on a 32 px image, where MS-SSIM's coarse scales
//! (8, 4, 2 px) are smaller than SSIM's 11x11 window: plenoptic 1.1.0 shrinks the window
//! there, and the per-iteration losses, norms, metric losses, λ and final image must match
//! its run (tests/data/mad_ms_ssim_ein32, from scripts/gen_mad_ms_ssim.py) within the
//! shared MAD fixtures' tolerances (manifest case `mad_ssim_dist_min_ein32`).
use synthsweep_testkit_tch::synth as common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use synthsweep_models::build_metric;
use synthsweep_synth::{MadCompetition, MadOptions, MinMax, StoreProgress, SynthesizeOptions};
use tch::{Kind, Tensor};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/mad_ms_ssim_ein32")
}

fn npy(name: &str) -> Tensor {
    let path = data_dir().join(format!("{name}.npy"));
    Tensor::read_npy(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `|a - e| <= atol + rtol |e|` elementwise, plus `mean|a - e| <= mean_abs_max` if given.
fn within(name: &str, actual: &Tensor, expected: &Tensor, tol: &Value) -> Result<(), String> {
    let a = actual.detach().to_kind(Kind::Double).reshape([-1]);
    let e = expected.to_kind(Kind::Double).reshape([-1]);
    if a.numel() != e.numel() {
        return Err(format!(
            "{name}: {} values, plenoptic {}",
            a.numel(),
            e.numel()
        ));
    }
    let atol = tol["atol"].as_f64().unwrap_or(0.0);
    let rtol = tol["rtol"].as_f64().unwrap_or(0.0);
    let diff = (&a - &e).abs();
    let excess = (&diff - (e.abs() * rtol + atol)).max().double_value(&[]);
    if excess > 0.0 {
        let worst = (&diff - e.abs() * rtol)
            .argmax(None, false)
            .int64_value(&[]);
        return Err(format!(
            "{name}[{worst}]: {} vs plenoptic {} (atol {atol:e}, rtol {rtol:e})",
            a.double_value(&[worst]),
            e.double_value(&[worst])
        ));
    }
    if let Some(m) = tol["mean_abs_max"].as_f64() {
        let mean = diff.mean(Kind::Double).double_value(&[]);
        if mean > m {
            return Err(format!("{name}: mean |diff| {mean:.3e} > {m:e}"));
        }
    }
    Ok(())
}

#[test]
fn mad_with_ms_ssim_distance_on_32px_matches_plenoptic() {
    tch::set_num_threads(1);
    let path = data_dir().join("case.json");
    let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // The tolerances of the shared MAD fixture with the same roles (SSIM-type optimized).
    let reference = common::case("mad_ssim_dist_max_ein32");
    let tol = |name: &str| reference["arrays"][name]["tolerance"].clone();

    let img = Tensor::read_npy(synth_fixtures().join(case["image"].as_str().unwrap())).unwrap();
    assert_eq!(img.size(), [1, 1, 32, 32]);
    let optimized = build_metric(&json!({"name": "ms_ssim_distance"})).unwrap();
    let reference_metric = build_metric(&json!({"name": "mse"})).unwrap();
    optimized.check_input(&img.size()).unwrap();
    let p = &case["params"];
    let options = MadOptions {
        initial_noise: p["initial_noise"].as_f64().unwrap(),
        metric_tradeoff_lambda: p["metric_tradeoff_lambda"].as_f64(),
        range_penalty_lambda: p["range_penalty_lambda"].as_f64().unwrap(),
        allowed_range: (0.0, 1.0),
        seed: case["seed"].as_i64(),
    };
    assert_eq!(case["minmax"], "max");
    let mut mad = MadCompetition::new(
        &img,
        optimized.as_ref(),
        reference_metric.as_ref(),
        MinMax::Max,
        options,
    )
    .unwrap();
    let mut failures = Vec::new();
    if let Err(e) = within(
        "initial_image",
        mad.initial_image(),
        &npy("initial_image"),
        &json!({"atol": 1e-7}),
    ) {
        failures.push(e);
    }
    assert_eq!(
        mad.metric_tradeoff_lambda(),
        case["metric_tradeoff_lambda"].as_f64().unwrap(),
        "λ is a discrete outcome: exact"
    );
    let s = &case["synthesize"];
    let outcome = mad
        .synthesize(&SynthesizeOptions {
            max_iter: s["max_iter"].as_u64().unwrap() as usize,
            store_progress: StoreProgress::Flag(false),
            stop_criterion: s["stop_criterion"].as_f64().unwrap(),
            stop_iters_to_check: s["stop_iters_to_check"].as_u64().unwrap() as usize,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        outcome.iterations as u64,
        case["iterations_run"].as_u64().unwrap()
    );
    let series = |v: &[f64]| Tensor::from_slice(v);
    let checks = [
        ("losses", series(mad.losses())),
        ("gradient_norm", series(mad.gradient_norm())),
        ("pixel_change_norm", series(mad.pixel_change_norm())),
        ("optimized_metric_loss", series(mad.optimized_metric_loss())),
        ("reference_metric_loss", series(mad.reference_metric_loss())),
        ("mad_image", mad.mad_image().copy()),
    ];
    for (name, actual) in &checks {
        if let Err(e) = within(name, actual, &npy(name), &tol(name)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
