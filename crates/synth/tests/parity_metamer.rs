//! Parity of Metamer, MetamerCTF and SimpleMetamer with plenoptic 1.1.0: every `metamer_*`,
//! `ctf_*` and `simple_metamer_*` case of ../shared/fixtures/synth, within its tolerances.
//!
//! Each run is built on the CPU, so that its seeded draws are the CPU generator's in
//! plenoptic's order (what the fixtures hold), then moved to the test device
//! (`SYNTHSWEEP_TEST_DEVICE`: cpu, cuda or cuda:N; the CPU when unset) with a model built
//! there, run there, and checked within the fixtures' tolerances; its results must be on
//! that device.
use synthsweep_testkit_tch::synth as common;

use common::*;
use serde_json::Value;
use std::ops::ControlFlow;
use synthsweep_models::{build_model, Model};
use synthsweep_synth::{
    CoarseToFine, CtfSynthesizeOptions, Metamer, MetamerCtf, MetamerOptions, SimpleMetamer,
    StoreProgress, SynthesizeOptions,
};
use tch::{Device, Kind, Tensor};

/// Runs every case, then fails listing every mismatch.
fn run_all(cases: Vec<Value>, f: impl Fn(&Value) -> Result<(), Vec<String>>) {
    tch::set_num_threads(1);
    assert!(!cases.is_empty(), "no fixture cases selected");
    let mut failures = Vec::new();
    for case in &cases {
        if let Err(e) = f(case) {
            failures.extend(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Collects check results instead of stopping at the first.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn array(&mut self, case: &Value, name: &str, actual: &Tensor) {
        if case["arrays"].get(name).is_some() {
            if let Err(e) = check(case, name, actual) {
                self.0.push(e);
            }
        }
    }
    fn device(&mut self, case: &Value, name: &str, actual: &Tensor, device: Device) {
        if let Err(e) = check_device(case, name, actual, device) {
            self.0.push(e);
        }
    }
    fn series(&mut self, case: &Value, name: &str, actual: &[f64]) {
        self.array(case, name, &Tensor::from_slice(actual));
    }
    fn equal<T: PartialEq + std::fmt::Debug>(
        &mut self,
        case: &Value,
        what: &str,
        actual: T,
        expected: T,
    ) {
        if actual != expected {
            self.0.push(format!(
                "{}/{what}: {actual:?}, expected {expected:?}",
                case["id"]
            ));
        }
    }
    fn done(self) -> Result<(), Vec<String>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

fn options(case: &Value) -> MetamerOptions {
    let p = &case["params"];
    let r = p["allowed_range"].as_array().unwrap();
    assert_eq!(p["loss_function"], "mse");
    assert!(p["initial_image"].is_null());
    MetamerOptions {
        range_penalty_lambda: p["range_penalty_lambda"].as_f64().unwrap(),
        allowed_range: (r[0].as_f64().unwrap(), r[1].as_f64().unwrap()),
        seed: case["seed"].as_i64(),
        ..Default::default()
    }
}

fn store_progress(v: &Value) -> StoreProgress {
    match v {
        Value::Bool(b) => StoreProgress::Flag(*b),
        n => StoreProgress::Every(n.as_u64().unwrap() as usize),
    }
}

fn synthesize_options(case: &Value) -> SynthesizeOptions {
    let s = &case["synthesize"];
    SynthesizeOptions {
        max_iter: s["max_iter"].as_u64().unwrap() as usize,
        store_progress: store_progress(&s["store_progress"]),
        stop_criterion: s["stop_criterion"].as_f64().unwrap(),
        stop_iters_to_check: s["stop_iters_to_check"].as_u64().unwrap() as usize,
        ..Default::default()
    }
}

fn model_for(case: &Value) -> Result<Box<dyn Model>, String> {
    build_model(&model_spec(case))
        .map_err(|e| format!("{}: cannot build the model: {e}", case["id"]))
}

/// The case's model on `device` (float32), for the run after the move.
fn model_on(case: &Value, device: Device) -> Result<Box<dyn Model>, String> {
    let mut m = model_for(case)?;
    m.to(device, Kind::Float);
    Ok(m)
}

#[test]
fn metamer_matches_plenoptic() {
    run_all(
        cases("metamer")
            .into_iter()
            .filter(|c| c["method"] == "metamer")
            .collect(),
        |case| {
            let device = test_device();
            let dev_model = model_on(case, device).map_err(|e| vec![e])?;
            let model = model_for(case).map_err(|e| vec![e])?;
            let img = image(case, "image");
            let m = Metamer::new(&img, model.as_ref(), options(case))
                .map_err(|e| vec![e.to_string()])?;
            let mut c = Checks::default();
            c.array(case, "initial_image", m.metamer());
            c.array(case, "target_representation", m.target_representation());
            let model = dev_model;
            let mut m = m.to(device, Kind::Float, model.as_ref());
            let mut trajectory = Vec::new();
            let outcome = m
                .synthesize_with(&synthesize_options(case), &mut |p| {
                    trajectory.push(p.image.copy());
                    ControlFlow::Continue(())
                })
                .map_err(|e| vec![e.to_string()])?;
            c.equal(
                case,
                "iterations_run",
                outcome.iterations as u64,
                case["iterations_run"].as_u64().unwrap(),
            );
            c.equal(
                case,
                "stopped_early",
                outcome.converged,
                case["stopped_early"].as_bool().unwrap(),
            );
            c.series(case, "losses", m.losses());
            c.series(case, "gradient_norm", m.gradient_norm());
            c.series(case, "pixel_change_norm", m.pixel_change_norm());
            c.device(case, "metamer", m.metamer(), device);
            c.array(case, "metamer", m.metamer());
            c.array(
                case,
                "final_representation",
                &tch::no_grad(|| model.forward(m.metamer())),
            );
            c.array(
                case,
                "final_objective",
                &m.objective_function().to_kind(Kind::Double),
            );
            c.array(case, "trajectory", &Tensor::stack(&trajectory, 0));
            c.array(case, "saved_metamer", &m.saved_metamer());
            c.done()
        },
    );
}

#[test]
fn simple_metamer_matches_plenoptic() {
    run_all(cases("simple_metamer"), |case| {
        let device = test_device();
        let dev_model = model_on(case, device).map_err(|e| vec![e])?;
        let model = model_for(case).map_err(|e| vec![e])?;
        let img = image(case, "image");
        let m = SimpleMetamer::new(&img, model.as_ref(), case["seed"].as_i64())
            .map_err(|e| vec![e.to_string()])?;
        let mut c = Checks::default();
        c.array(case, "initial_image", m.metamer());
        c.array(case, "target_representation", m.target_representation());
        let model = dev_model;
        let mut m = m.to(device, Kind::Float, model.as_ref());
        let max_iter = case["synthesize"]["max_iter"].as_u64().unwrap() as usize;
        // Two calls continue where the first stopped, as plenoptic's do.
        m.synthesize(max_iter / 2, None)
            .map_err(|e| vec![e.to_string()])?;
        m.synthesize(max_iter - max_iter / 2, None)
            .map_err(|e| vec![e.to_string()])?;
        c.series(case, "losses", m.losses());
        c.device(case, "metamer", m.metamer(), device);
        c.array(case, "metamer", m.metamer());
        c.done()
    });
}

#[test]
fn metamer_ctf_matches_plenoptic() {
    let ctf = cases("metamer_ctf");
    // PortillaSimoncelli comes from another branch; say so instead of failing when absent.
    if let Err(e) = model_for(&ctf[0]) {
        eprintln!("SKIPPED metamer_ctf cases ({} cases): {e}", ctf.len());
        return;
    }
    run_all(ctf, |case| {
        let device = test_device();
        let dev_model = model_on(case, device).map_err(|e| vec![e])?;
        let model = model_for(case).map_err(|e| vec![e])?;
        let img = image(case, "image");
        let how = match case["params"]["coarse_to_fine"].as_str().unwrap() {
            "together" => CoarseToFine::Together,
            _ => CoarseToFine::Separate,
        };
        let m = MetamerCtf::new(&img, model.as_ref(), options(case), how)
            .map_err(|e| vec![e.to_string()])?;
        let mut c = Checks::default();
        c.array(case, "initial_image", m.metamer());
        c.array(
            case,
            "target_representation",
            m.as_metamer().target_representation(),
        );
        let model = dev_model;
        let mut m = m.to(device, Kind::Float, model.as_ref());
        let s = &case["synthesize"];
        let base = synthesize_options(case);
        let opts = CtfSynthesizeOptions {
            max_iter: base.max_iter,
            store_progress: base.store_progress,
            stop_criterion: base.stop_criterion,
            stop_iters_to_check: base.stop_iters_to_check,
            change_scale_criterion: s["change_scale_criterion"].as_f64(),
            ctf_iters_to_check: s["ctf_iters_to_check"].as_u64().unwrap() as usize,
            ..Default::default()
        };
        let outcome = m.synthesize(&opts).map_err(|e| vec![e.to_string()])?;
        c.equal(
            case,
            "iterations_run",
            outcome.iterations as u64,
            case["iterations_run"].as_u64().unwrap(),
        );
        let str_of = |v: &Value| {
            v.as_str()
                .map(String::from)
                .unwrap_or_else(|| v.to_string())
        };
        let finished: Vec<String> = case["scales_finished"]
            .as_array()
            .unwrap()
            .iter()
            .map(str_of)
            .collect();
        c.equal(
            case,
            "scales_finished",
            m.scales_finished().to_vec(),
            finished,
        );
        let timing: Vec<(String, Vec<usize>)> = case["scales_initial"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let key = str_of(s);
                let t = case["scales_timing"][&key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_u64().unwrap() as usize)
                    .collect();
                (key, t)
            })
            .collect();
        c.equal(case, "scales_timing", m.scales_timing().to_vec(), timing);
        c.series(case, "losses", m.losses());
        c.series(case, "scales_loss", m.scales_loss());
        c.series(case, "gradient_norm", m.gradient_norm());
        c.series(case, "pixel_change_norm", m.pixel_change_norm());
        c.device(case, "metamer", m.metamer(), device);
        c.array(case, "metamer", m.metamer());
        c.array(
            case,
            "final_representation",
            &tch::no_grad(|| model.forward(m.metamer())),
        );
        c.array(
            case,
            "final_objective",
            &m.objective_function().to_kind(Kind::Double),
        );
        c.done()
    });
}

/// The hand-written Adam step reproduces torch's arithmetic: with a Gaussian model filtering
/// as plenoptic does (`filtering = "direct"`, its conv2d) the whole run is bit-identical to
/// plenoptic's on a CPU whose oneDNN convolution kernel is the one the fixtures were made
/// with. On another ISA (e.g. AVX512-FP16 Xeons) the convolution rounds differently in the
/// last bit, so this checks agreement to 1e-6 relative (100x tighter than the manifest's
/// tolerances) rather than bits. The default (fast) filtering is checked against the
/// manifest's tolerances by the tests above.
#[test]
fn gaussian_metamer_matches_plenoptic_to_1e6() {
    tch::set_num_threads(1);
    for id in ["metamer_gauss_ein32", "simple_metamer_gauss_ein16"] {
        let case = case(id);
        let mut spec = model_spec(&case);
        spec["filtering"] = serde_json::json!("direct");
        let model = build_model(&spec).unwrap();
        let img = image(&case, "image");
        let (losses, metamer) = if id.starts_with("simple") {
            let mut m = SimpleMetamer::new(&img, model.as_ref(), case["seed"].as_i64()).unwrap();
            m.synthesize(
                case["synthesize"]["max_iter"].as_u64().unwrap() as usize,
                None,
            )
            .unwrap();
            (m.losses().to_vec(), m.metamer().copy())
        } else {
            let mut m = Metamer::new(&img, model.as_ref(), options(&case)).unwrap();
            m.synthesize(&synthesize_options(&case)).unwrap();
            (m.losses().to_vec(), m.metamer().copy())
        };
        let want = series(&case, "losses");
        assert_eq!(losses.len(), want.len(), "{id}: iterations");
        for (i, (a, b)) in losses.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs(),
                "{id}: loss {i}: {a} vs {b}"
            );
        }
        let expected = array(&case, "metamer");
        let d = (metamer.detach() - &expected).abs().max().double_value(&[]);
        assert!(d <= 1e-6, "{id}: metamer differs by up to {d:e}");
    }
}
