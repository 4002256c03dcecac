//! Parity of `Geodesic` with plenoptic 1.1: both `geodesic_*` cases of ../shared/fixtures/synth
//! (straight and bridge starts), with the RNG replayed from the case's seed.
//!
//! Each path is built on the CPU (its seeded draws are the CPU generator's, in plenoptic's
//! order: what the fixtures hold), then moved to the test device (`SYNTHSWEEP_TEST_DEVICE`:
//! cpu, cuda or cuda:N; the CPU when unset) with a model built there, run there, and checked
//! within the fixtures' tolerances; the path must be on that device.
use synthsweep_testkit_tch::synth as common;

use common::*;
use serde_json::Value;
use std::sync::Mutex;
use synthsweep_models::{build_model, Model};
use synthsweep_synth::geodesic::{deviation_from_line, make_straight_line, pixel_change_converged};
use synthsweep_synth::{Geodesic, GeodesicOptions, GeodesicSynthesizeOptions, StoreProgress};
use tch::{Kind, Tensor};

/// The CPU generator is global: tests that seed it take turns.
static RNG: Mutex<()> = Mutex::new(());

fn lock_rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn options(case: &Value) -> GeodesicOptions {
    let p = &case["params"];
    GeodesicOptions {
        n_steps: p["n_steps"].as_u64().unwrap() as usize,
        initial_sequence: serde_json::from_value(p["initial_sequence"].clone()).unwrap(),
        range_penalty_lambda: p["range_penalty_lambda"].as_f64().unwrap(),
        allowed_range: (
            p["allowed_range"][0].as_f64().unwrap(),
            p["allowed_range"][1].as_f64().unwrap(),
        ),
        seed: Some(case["seed"].as_i64().unwrap()),
    }
}

fn synth_options(case: &Value) -> GeodesicSynthesizeOptions {
    let s = &case["synthesize"];
    GeodesicSynthesizeOptions {
        max_iter: s["max_iter"].as_u64().unwrap() as usize,
        store_progress: StoreProgress::Every(s["store_progress"].as_u64().unwrap() as usize),
        stop_criterion: s["stop_criterion"].as_f64(),
        stop_iters_to_check: s["stop_iters_to_check"].as_u64().unwrap() as usize,
        ..Default::default()
    }
}

fn series_tensor(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

fn run_case(case: &Value) -> Result<(), String> {
    let device = test_device();
    let mut dev_model = build_model(&model_spec(case)).map_err(|e| e.to_string())?;
    dev_model.to(device, Kind::Float);
    let model: Box<dyn Model> = build_model(&model_spec(case)).map_err(|e| e.to_string())?;
    let (a, b) = (image(case, "image"), image(case, "image_b"));
    let id = case["id"].as_str().unwrap();
    let geo =
        Geodesic::new(&a, &b, model.as_ref(), options(case)).map_err(|e| format!("{id}: {e}"))?;
    check(case, "initial_geodesic", &geo.geodesic())?;
    check(case, "pixelfade", geo.pixelfade())?;
    check(
        case,
        "pixelfade_dev_from_line",
        &deviation_from_line(&tch::no_grad(|| model.forward(geo.pixelfade()))),
    )?;
    let criterion = geo.default_stop_criterion();
    if criterion != case["stop_criterion_used"].as_f64().unwrap() {
        return Err(format!(
            "{id}: default stop criterion {criterion}, expected {}",
            case["stop_criterion_used"]
        ));
    }

    let model = dev_model;
    let mut geo = geo.to(device, Kind::Float, model.as_ref());
    let outcome = geo
        .synthesize(&synth_options(case))
        .map_err(|e| format!("{id}: {e}"))?;
    let expected_iters = case["iterations_run"].as_u64().unwrap() as usize;
    if outcome.iterations != expected_iters
        || outcome.converged != case["stopped_early"].as_bool().unwrap()
    {
        return Err(format!(
            "{id}: {outcome:?}, expected {expected_iters} iterations"
        ));
    }
    check_device(case, "geodesic", &geo.geodesic(), device)?;
    check(case, "geodesic", &geo.geodesic())?;
    check(case, "losses", &series_tensor(geo.losses()))?;
    check(case, "gradient_norm", &series_tensor(geo.gradient_norm()))?;
    check(
        case,
        "pixel_change_norm",
        &series_tensor(geo.pixel_change_norm()),
    )?;
    check(case, "step_energy", &geo.step_energy())?;
    check(case, "dev_from_line", &geo.dev_from_line())?;
    let z = tch::no_grad(|| model.forward(&geo.geodesic()));
    let final_energy = z
        .diff(1, 0, None::<Tensor>, None::<Tensor>)
        .norm_scalaropt_dim(2, [1, 2, 3], false)
        .square();
    check(case, "final_step_energy", &final_energy)?;
    check(case, "final_dev_from_line", &deviation_from_line(&z))?;
    check(
        case,
        "jerkiness",
        &geo.calculate_jerkiness(None)
            .map_err(|e| format!("{id}: {e}"))?,
    )?;
    replay_draws(case)
}

#[test]
fn geodesic_matches_plenoptic() {
    let _rng = lock_rng();
    tch::set_num_threads(1);
    let cases = cases("geodesic");
    assert_eq!(cases.len(), 2);
    let errors: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        errors.is_empty(),
        "{} failure(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn pixel_change_rule_needs_all_of_the_last_k_below() {
    let p = [1.0, 0.5, 0.1, 0.1];
    assert!(
        !pixel_change_converged(&p[..3], 0.2, 3),
        "needs more than k values"
    );
    assert!(!pixel_change_converged(&p, 0.2, 3), "0.5 is in the last 3");
    assert!(pixel_change_converged(&p, 0.2, 2));
    assert!(!pixel_change_converged(&p, 0.1, 2), "strictly below");
}

#[test]
fn geodesic_rejects_bad_arguments() {
    let _rng = lock_rng();
    let model = build_model(&serde_json::json!({"name": "gaussian", "kernel_size": 3, "std": 0.6}))
        .unwrap();
    let cpu = (Kind::Float, tch::Device::Cpu);
    let a = Tensor::rand([1, 1, 8, 8], cpu);
    let b = Tensor::rand([1, 1, 8, 8], cpu);
    let err = |a: &Tensor, b: &Tensor, o: GeodesicOptions| {
        Geodesic::new(a, b, model.as_ref(), o)
            .unwrap_err()
            .to_string()
    };
    let msg = err(
        &a,
        &Tensor::rand([1, 1, 8, 9], cpu),
        GeodesicOptions::default(),
    );
    assert!(msg.contains("image_b") && msg.contains("shape"), "{msg}");
    let msg = err(&(&a + 1.5), &b, GeodesicOptions::default());
    assert!(
        msg.contains("image_a") && msg.contains("allowed_range"),
        "{msg}"
    );
    let msg = err(
        &Tensor::rand([2, 1, 8, 8], cpu),
        &b,
        GeodesicOptions::default(),
    );
    assert!(msg.contains("batch dimension must be 1"), "{msg}");
    let msg = err(
        &a,
        &b,
        GeodesicOptions {
            n_steps: 1,
            ..Default::default()
        },
    );
    assert!(msg.contains("n_steps"), "{msg}");
    let msg = err(
        &a,
        &b,
        GeodesicOptions {
            range_penalty_lambda: -1.0,
            ..Default::default()
        },
    );
    assert!(msg.contains("range_penalty_lambda"), "{msg}");
    let msg = err(
        &a,
        &b,
        GeodesicOptions {
            allowed_range: (1.0, 0.0),
            ..Default::default()
        },
    );
    assert!(msg.contains("allowed_range"), "{msg}");

    let mut geo = Geodesic::new(
        &a,
        &b,
        model.as_ref(),
        GeodesicOptions {
            n_steps: 3,
            ..Default::default()
        },
    )
    .unwrap();
    let opts = GeodesicSynthesizeOptions {
        max_iter: 2,
        store_progress: StoreProgress::Every(1),
        ..Default::default()
    };
    geo.synthesize(&opts).unwrap();
    assert_eq!(geo.step_energy().size(), [2, 3]);
    assert_eq!(geo.dev_from_line().size(), [2, 4, 2]);
    let changed = GeodesicSynthesizeOptions {
        store_progress: StoreProgress::Every(2),
        ..opts.clone()
    };
    assert!(geo
        .synthesize(&changed)
        .unwrap_err()
        .to_string()
        .contains("store_progress"));
    geo.synthesize(&opts).unwrap();
    assert_eq!(geo.losses().len(), 4, "a second call continues");
}

#[test]
fn straight_line_runs_from_a_to_b() {
    let cpu = (Kind::Float, tch::Device::Cpu);
    let a = Tensor::zeros([1, 1, 2, 2], cpu);
    let b = Tensor::ones([1, 1, 2, 2], cpu);
    let line = make_straight_line(&a, &b, 4).unwrap();
    assert_eq!(line.size(), [5, 1, 2, 2]);
    let firsts = Vec::<f32>::try_from(line.select(3, 0).select(2, 0).select(1, 0)).unwrap();
    assert_eq!(firsts, [0.0, 0.25, 0.5, 0.75, 1.0]);
    let dev = deviation_from_line(&line);
    assert!(
        f64::try_from(dev.select(1, 1).abs().max()).unwrap() < 1e-6,
        "a straight line does not deviate"
    );
}

#[test]
fn pixel_change_rule_stops_the_synthesis() {
    let _rng = lock_rng();
    let model = build_model(&serde_json::json!({"name": "gaussian", "kernel_size": 3, "std": 0.6}))
        .unwrap();
    let cpu = (Kind::Float, tch::Device::Cpu);
    let (a, b) = (
        Tensor::rand([1, 1, 8, 8], cpu),
        Tensor::rand([1, 1, 8, 8], cpu),
    );
    let mut geo = Geodesic::new(
        &a,
        &b,
        model.as_ref(),
        GeodesicOptions {
            n_steps: 4,
            ..Default::default()
        },
    )
    .unwrap();
    // Every step moves less than 1e9: the rule holds as soon as there are more than k = 3 steps.
    let opts = GeodesicSynthesizeOptions {
        max_iter: 10,
        stop_criterion: Some(1e9),
        stop_iters_to_check: 3,
        ..Default::default()
    };
    let outcome = geo.synthesize(&opts).unwrap();
    assert_eq!((outcome.iterations, outcome.converged), (4, true));
    assert_eq!(geo.pixel_change_norm().len(), 4);
    let never = GeodesicSynthesizeOptions {
        stop_criterion: Some(0.0),
        ..opts
    };
    let outcome = geo.synthesize(&never).unwrap();
    assert_eq!((outcome.iterations, outcome.converged), (10, false));
}
