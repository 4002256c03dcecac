//! Parity of MADCompetition with plenoptic 1.1.0: the full set of four `mad_*` cases of
//! ../shared/fixtures/synth (mse vs 1 − SSIM), built with `MadCompetition::full_set`.
//!
//! The set is built on the CPU (its seeded draws are the CPU generator's, in plenoptic's
//! order: what the fixtures hold), then each synthesis is moved to the test device
//! (`SYNTHSWEEP_TEST_DEVICE`: cpu, cuda or cuda:N; the CPU when unset) with metrics built
//! there, run there, and checked within the fixtures' tolerances; its MAD image must be on
//! that device.
use synthsweep_testkit_tch::synth as common;

use common::*;
use serde_json::{json, Value};
use std::ops::ControlFlow;
use synthsweep_models::{build_metric, Metric};
use synthsweep_synth::{MadCompetition, MadOptions, MinMax, StoreProgress, SynthesizeOptions};
use tch::{Device, Kind, Tensor};

/// The metric on `device` (float32).
fn metric_on(fixture_name: &str, device: Device) -> Box<dyn Metric> {
    let mut m = metric(fixture_name);
    m.to(device, Kind::Float);
    m
}

fn metric(fixture_name: &str) -> Box<dyn Metric> {
    let name = match fixture_name {
        "mse" => "mse",
        "ssim_dist" => "ssim_distance",
        other => panic!("no mapping for fixture metric {other}"),
    };
    build_metric(&json!({ "name": name }))
        .unwrap_or_else(|e| panic!("cannot build metric {name}: {e}"))
}

fn synthesize_options(case: &Value) -> SynthesizeOptions {
    let s = &case["synthesize"];
    SynthesizeOptions {
        max_iter: s["max_iter"].as_u64().unwrap() as usize,
        store_progress: match &s["store_progress"] {
            Value::Bool(b) => StoreProgress::Flag(*b),
            n => StoreProgress::Every(n.as_u64().unwrap() as usize),
        },
        stop_criterion: s["stop_criterion"].as_f64().unwrap(),
        stop_iters_to_check: s["stop_iters_to_check"].as_u64().unwrap() as usize,
        ..Default::default()
    }
}

#[test]
fn mad_full_set_matches_plenoptic() {
    tch::set_num_threads(1);
    let ids = [
        "mad_mse_min_ein32",
        "mad_mse_max_ein32",
        "mad_ssim_dist_min_ein32",
        "mad_ssim_dist_max_ein32",
    ];
    let cases: Vec<Value> = ids.iter().map(|id| case(id)).collect();
    let first = &cases[0];
    let (a, b) = (
        metric(first["optimized_metric"]["name"].as_str().unwrap()),
        metric(first["reference_metric"]["name"].as_str().unwrap()),
    );
    let p = &first["params"];
    let options = MadOptions {
        initial_noise: p["initial_noise"].as_f64().unwrap(),
        metric_tradeoff_lambda: p["metric_tradeoff_lambda"].as_f64(),
        range_penalty_lambda: p["range_penalty_lambda"].as_f64().unwrap(),
        allowed_range: (
            p["allowed_range"][0].as_f64().unwrap(),
            p["allowed_range"][1].as_f64().unwrap(),
        ),
        seed: None,
    };
    let seeds = [0, 1, 2, 3].map(|i| cases[i]["seed"].as_i64().unwrap());
    let img = image(first, "image");
    let set = MadCompetition::full_set(&img, a.as_ref(), b.as_ref(), &options, seeds).unwrap();
    let device = test_device();
    let a_name = first["optimized_metric"]["name"].as_str().unwrap();
    let b_name = first["reference_metric"]["name"].as_str().unwrap();
    let (a_dev, b_dev) = (metric_on(a_name, device), metric_on(b_name, device));
    let mut failures = Vec::new();
    for (mad, case) in set.into_iter().zip(&cases) {
        // The set holds (a, b) and (b, a): bind each to the same pair on the device.
        let mut mad = if mad.optimized_metric().name() == a.name() {
            mad.to(device, Kind::Float, a_dev.as_ref(), b_dev.as_ref())
        } else {
            mad.to(device, Kind::Float, b_dev.as_ref(), a_dev.as_ref())
        };
        let id = case["id"].as_str().unwrap();
        assert_eq!(
            mad.optimized_metric().name(),
            metric(case["optimized_metric"]["name"].as_str().unwrap()).name(),
            "{id}"
        );
        assert_eq!(
            mad.minmax(),
            if case["params"]["minmax"] == "min" {
                MinMax::Min
            } else {
                MinMax::Max
            },
            "{id}"
        );
        // The initial image is the noise draw made exact use of (atol 1e-7), so it also
        // checks the RNG replay of `initial_noise_draw`.
        let mut arrays: Vec<(&str, Tensor)> = vec![("initial_image", mad.initial_image().copy())];
        // λ is a discrete outcome: exact.
        let lambda = mad.metric_tradeoff_lambda();
        if lambda != case["metric_tradeoff_lambda"].as_f64().unwrap() {
            failures.push(format!(
                "{id}/metric_tradeoff_lambda: {lambda} vs {}",
                case["metric_tradeoff_lambda"]
            ));
        }
        // reference_metric_loss[0] is this value; use that array's tolerance.
        let target = case["reference_metric_target"].as_f64().unwrap();
        let rtol = tol(case, "reference_metric_loss")["rtol"].as_f64().unwrap();
        if (mad.reference_metric_target() - target).abs() > rtol * target.abs() {
            failures.push(format!(
                "{id}/reference_metric_target: {} vs {target}",
                mad.reference_metric_target()
            ));
        }
        let mut trajectory = Vec::new();
        let outcome = mad
            .synthesize_with(&synthesize_options(case), &mut |p| {
                trajectory.push(p.image.copy());
                ControlFlow::Continue(())
            })
            .unwrap();
        if outcome.iterations as u64 != case["iterations_run"].as_u64().unwrap() {
            failures.push(format!(
                "{id}/iterations_run: {} vs {}",
                outcome.iterations, case["iterations_run"]
            ));
        }
        let series = |v: &[f64]| Tensor::from_slice(v);
        arrays.extend([
            ("losses", series(mad.losses())),
            ("gradient_norm", series(mad.gradient_norm())),
            ("pixel_change_norm", series(mad.pixel_change_norm())),
            ("optimized_metric_loss", series(mad.optimized_metric_loss())),
            ("reference_metric_loss", series(mad.reference_metric_loss())),
            ("mad_image", mad.mad_image().copy()),
            ("trajectory", Tensor::stack(&trajectory, 0)),
            ("saved_mad_image", mad.saved_mad_image()),
        ]);
        if let Err(e) = check_device(case, "mad_image", mad.mad_image(), device) {
            failures.push(e);
        }
        for (name, t) in &arrays {
            if case["arrays"].get(*name).is_some() {
                if let Err(e) = check(case, name, &t.to_kind(Kind::Double)) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
