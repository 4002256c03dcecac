//! Parity of the autodiff helpers and `Eigendistortion` with plenoptic 1.1: every `autodiff_*`
//! and `eig_*` case of ../shared/fixtures/synth, with the RNG replayed from the case's seed.
//!
//! `exact` and `randomized_svd` runs are built on the CPU (the model check's seeded draw is
//! the CPU generator's, as in the fixtures), moved to the test device
//! (`SYNTHSWEEP_TEST_DEVICE`: cpu, cuda or cuda:N; the CPU when unset) with a model built
//! there, and run there (`exact` draws nothing more, `randomized_svd` draws on the CPU
//! generator as plenoptic does); their results must be on that device. The power method
//! draws its start on the image's device, as plenoptic does, so on a GPU its draws are the
//! GPU generator's, not the fixtures': it is checked on the CPU only.
use synthsweep_testkit_tch::synth as common;

use common::*;
use serde_json::Value;
use std::sync::Mutex;
use synthsweep_models::{build_model, Model};
use synthsweep_synth::autodiff;
use synthsweep_synth::eigendistortion::{Eigendistortion, Method, PowerIterations};
use tch::{Kind, Tensor};

/// The CPU generator is global: tests that seed it take turns.
static RNG: Mutex<()> = Mutex::new(());

fn lock_rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn model_for(case: &Value) -> Box<dyn Model> {
    build_model(&model_spec(case)).unwrap_or_else(|e| panic!("{}: {e}", case["id"]))
}

/// The case's model on `device` (float32), for the run after the move.
fn model_on(case: &Value, device: tch::Device) -> Box<dyn Model> {
    let mut m = model_for(case);
    m.to(device, Kind::Float);
    m
}

/// Runs every case, collecting failures so one run reports them all.
fn run_all(cases: &[Value], f: impl Fn(&Value) -> Result<(), String>) {
    assert!(!cases.is_empty(), "no cases");
    let errors: Vec<String> = cases.iter().filter_map(|c| f(c).err()).collect();
    assert!(
        errors.is_empty(),
        "{} failure(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}

/// `allclose` with explicit tolerances (for `atol_rel_to_max`, which `check` does not know).
fn allclose(
    id: &str,
    name: &str,
    actual: &Tensor,
    expected: &Tensor,
    atol: f64,
    rtol: f64,
) -> Result<(), String> {
    let a = actual
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .reshape([-1]);
    let e = expected.to_kind(Kind::Double).reshape([-1]);
    if a.size() != e.size() {
        return Err(format!(
            "{id}/{name}: {:?} elements, expected {:?}",
            a.size(),
            e.size()
        ));
    }
    let excess = (&a - &e).abs() - (e.abs() * rtol + atol);
    let worst = excess.argmax(None, false).int64_value(&[]);
    if excess.double_value(&[worst]) > 0.0 {
        return Err(format!(
            "{id}/{name}: element {worst}: {} vs expected {} (atol {atol:e}, rtol {rtol:e})",
            a.double_value(&[worst]),
            e.double_value(&[worst])
        ));
    }
    Ok(())
}

/// Eigendistortions (count, C, H, W) as the columns of an (n, count) matrix.
fn columns(images: &Tensor) -> Tensor {
    images.reshape([images.size()[0], -1]).tr()
}

fn check_cosine(case: &Value, name: &str, actual: &Tensor) -> Result<(), String> {
    let min = tol(case, name)["min_abs_cosine"]
        .as_f64()
        .expect("abs_cosine tolerance");
    let id = format!("{}/{name}", case["id"].as_str().unwrap());
    check_abs_cosine(&id, &columns(actual), &columns(&array(case, name)), min)
}

/// Replays the manifest's draws from the seed and checks those it stores; then checks that the
/// generator is where the run left it, so the run made exactly those draws. Call right after the run.
fn check_draws(case: &Value) -> Result<(), String> {
    let after_run = Tensor::randn([8], (Kind::Float, tch::Device::Cpu));
    replay_draws(case)?;
    let replayed = Tensor::randn([8], (Kind::Float, tch::Device::Cpu));
    if after_run != replayed {
        return Err(format!(
            "{}: the run did not make exactly the manifest's RNG draws",
            case["id"]
        ));
    }
    Ok(())
}

#[test]
fn autodiff_products_match_plenoptic() {
    let _rng = lock_rng();
    tch::set_num_threads(1);
    run_all(&cases("autodiff"), |case| {
        let model = model_for(case);
        let img = image(case, "image");
        let k = case["params"]["k"].as_i64().unwrap();
        let (n, m) = (case["n"].as_i64().unwrap(), case["m"].as_i64().unwrap());
        tch::manual_seed(case["seed"].as_i64().unwrap());
        let v = Tensor::randn([n, k], (Kind::Float, tch::Device::Cpu));
        let u = Tensor::randn([m, k], (Kind::Float, tch::Device::Cpu));
        check(case, "V", &v)?;
        check(case, "U", &u)?;

        let x = img.reshape([-1, 1]).copy().set_requires_grad(true);
        let y = model
            .forward(&x.view(img.size().as_slice()))
            .squeeze()
            .reshape([-1, 1]);
        check(case, "x", &x)?;
        check(case, "y", &y)?;
        let e = |r: synthsweep_synth::Result<Tensor>| r.map_err(|e| format!("{}: {e}", case["id"]));
        check(case, "jacobian", &e(autodiff::jacobian(&y, &x))?)?;
        check(
            case,
            "jvp",
            &e(autodiff::jacobian_vector_product(&y, &x, &v))?,
        )?;
        check(
            case,
            "vjp",
            &e(autodiff::vector_jacobian_product(&y, &x, &u))?,
        )?;
        check(case, "fisher_vp", &e(autodiff::fisher_vp(&y, &x, &v))?)?;
        check(
            case,
            "fisher_quadform",
            &e(autodiff::fisher_quadform(&y, &x, &v))?,
        )?;
        Ok(())
    });
}

#[test]
fn autodiff_rejects_mismatched_shapes() {
    let x = Tensor::ones([4, 1], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let y = (&x * 2.0).narrow(0, 0, 3);
    let bad = Tensor::ones([5, 2], (Kind::Float, tch::Device::Cpu));
    assert!(autodiff::vector_jacobian_product(&y, &x, &bad).is_err());
    assert!(autodiff::jacobian_vector_product(&y, &x, &bad).is_err());
    assert!(autodiff::jacobian(&y.reshape([-1]), &x).is_err());
    let j = autodiff::jacobian(&y, &x).unwrap();
    assert_eq!(j.size(), [3, 4]);
}

#[test]
fn exact_matches_plenoptic() {
    let _rng = lock_rng();
    tch::set_num_threads(1);
    run_all(&cases("eigendistortion_exact"), |case| {
        let model = model_for(case);
        let img = image(case, "image");
        // Built before the seed: building a model may draw.
        let device = test_device();
        let dev_model = model_on(case, device);
        tch::manual_seed(case["seed"].as_i64().unwrap());
        let eig = Eigendistortion::new(&img, model.as_ref()).map_err(|e| e.to_string())?;
        let model = dev_model;
        let mut eig = eig
            .to(device, Kind::Float, model.as_ref())
            .map_err(|e| e.to_string())?;
        eig.synthesize(Method::Exact)
            .map_err(|e| format!("{}: {e}", case["id"]))?;
        let id = case["id"].as_str().unwrap();
        check_device(case, "eigenvalues", eig.eigenvalues().unwrap(), device)?;
        check(case, "representation_flat", &eig.representation_flat())?;
        if !case["arrays"]["jacobian"].is_null() {
            check(
                case,
                "jacobian",
                eig.jacobian().expect("exact keeps the jacobian"),
            )?;
        }
        let expected = array(case, "eigenvalues");
        let t = tol(case, "eigenvalues");
        let atol = t["atol_rel_to_max"].as_f64().unwrap() * expected.double_value(&[0]);
        let values = eig.eigenvalues().unwrap();
        allclose(
            id,
            "eigenvalues",
            values,
            &expected,
            atol,
            t["rtol"].as_f64().unwrap(),
        )?;
        check(case, "eigenindex", eig.eigenindex().unwrap())?;

        let n = case["n"].as_i64().unwrap();
        let vectors = eig.eigendistortions().unwrap();
        assert_eq!(vectors.size()[0], n);
        let picks = &case["stored_eigendistortion_indices"];
        let expected_top = columns(&array(case, "eigendistortions_top"));
        let expected_bottom = columns(&array(case, "eigendistortions_bottom"));
        let min = tol(case, "eigendistortions_top")["min_abs_cosine"]
            .as_f64()
            .unwrap();
        let mut compared = 0;
        for gap in case["eigen_gaps"].as_array().unwrap() {
            if !gap["comparable"].as_bool().unwrap() {
                continue;
            }
            let i = gap["index"].as_i64().unwrap();
            let (stored, pos) = match picks["top"]
                .as_array()
                .unwrap()
                .iter()
                .position(|v| v.as_i64() == Some(i))
            {
                Some(p) => (&expected_top, p as i64),
                None => {
                    let p = picks["bottom"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .position(|v| v.as_i64() == Some(i))
                        .unwrap();
                    (&expected_bottom, p as i64)
                }
            };
            let ours = vectors.get(i).reshape([-1, 1]);
            check_abs_cosine(
                &format!("{id}/eigendistortion {i}"),
                &ours,
                &stored.narrow(1, pos, 1),
                min,
            )?;
            compared += 1;
        }
        assert!(compared >= 4, "{id}: only {compared} comparable vectors");
        check_draws(case)
    });
}

#[test]
fn power_matches_plenoptic() {
    let _rng = lock_rng();
    tch::set_num_threads(1);
    run_all(&cases("eigendistortion_power"), |case| {
        let model = model_for(case);
        let img = image(case, "image");
        let s = &case["synthesize"];
        let method = Method::Power {
            k: s["k"].as_u64().unwrap() as usize,
            max_iter: s["max_iter"].as_u64().unwrap() as usize,
            stop_criterion: s["stop_criterion"].as_f64().unwrap(),
        };
        tch::manual_seed(case["seed"].as_i64().unwrap());
        let mut eig = Eigendistortion::new(&img, model.as_ref()).map_err(|e| e.to_string())?;
        eig.synthesize(method)
            .map_err(|e| format!("{}: {e}", case["id"]))?;
        let expected_iters = PowerIterations {
            top: case["iterations_run"]["top"].as_u64().unwrap() as usize,
            bottom: case["iterations_run"]["bottom"].as_u64().unwrap() as usize,
        };
        if eig.iterations() != Some(expected_iters) {
            return Err(format!(
                "{}: iterations {:?}, expected {expected_iters:?}",
                case["id"],
                eig.iterations()
            ));
        }
        check(case, "eigenvalues", eig.eigenvalues().unwrap())?;
        check(case, "eigenindex", eig.eigenindex().unwrap())?;
        check_cosine(case, "eigendistortions", eig.eigendistortions().unwrap())?;
        check_draws(case)?;

        // Seeded by the library instead of the caller: the same draws, whatever ran before.
        let _ = Tensor::rand([3], (Kind::Float, tch::Device::Cpu));
        let seed = case["seed"].as_i64().unwrap();
        let mut seeded =
            Eigendistortion::with_seed(&img, model.as_ref(), seed).map_err(|e| e.to_string())?;
        let _ = Tensor::rand([5], (Kind::Float, tch::Device::Cpu));
        for _ in 0..2 {
            seeded.synthesize(method).map_err(|e| e.to_string())?;
            if seeded.eigenvalues() != eig.eigenvalues() || seeded.iterations() != eig.iterations()
            {
                return Err(format!(
                    "{}: with_seed does not reproduce the seeded run",
                    case["id"]
                ));
            }
        }
        Ok(())
    });
}

#[test]
fn randomized_svd_matches_plenoptic() {
    let _rng = lock_rng();
    tch::set_num_threads(1);
    run_all(&cases("eigendistortion_randomized_svd"), |case| {
        let model = model_for(case);
        let img = image(case, "image");
        let s = &case["synthesize"];
        let method = Method::RandomizedSvd {
            k: s["k"].as_u64().unwrap() as usize,
            p: s["p"].as_u64().unwrap() as usize,
            q: s["q"].as_u64().unwrap() as usize,
        };
        // Built before the seed: building a model may draw.
        let device = test_device();
        let dev_model = model_on(case, device);
        tch::manual_seed(case["seed"].as_i64().unwrap());
        let eig = Eigendistortion::new(&img, model.as_ref()).map_err(|e| e.to_string())?;
        let model = dev_model;
        let mut eig = eig
            .to(device, Kind::Float, model.as_ref())
            .map_err(|e| e.to_string())?;
        eig.synthesize(method)
            .map_err(|e| format!("{}: {e}", case["id"]))?;
        check_device(
            case,
            "eigendistortions",
            eig.eigendistortions().unwrap(),
            device,
        )?;
        check(case, "eigenvalues", eig.eigenvalues().unwrap())?;
        check(case, "eigenindex", eig.eigenindex().unwrap())?;
        check_cosine(case, "eigendistortions", eig.eigendistortions().unwrap())?;
        check(
            case,
            "error_approx",
            &Tensor::from(eig.error_approx().unwrap() as f32),
        )?;
        check_draws(case)
    });
}

fn small_gaussian() -> Box<dyn Model> {
    build_model(&serde_json::json!({"name": "gaussian", "kernel_size": 3, "std": 0.6})).unwrap()
}

fn invalid_param(r: synthsweep_synth::Result<()>) -> String {
    match r {
        Err(e @ synthsweep_synth::SynthError::InvalidParam { .. }) => e.to_string(),
        other => panic!("expected an invalid-parameter error, got {other:?}"),
    }
}

#[test]
fn eigendistortion_rejects_bad_arguments() {
    let _rng = lock_rng();
    let model = small_gaussian();
    let cpu = (Kind::Float, tch::Device::Cpu);
    let batch = Tensor::rand([2, 1, 8, 8], cpu);
    let err = Eigendistortion::new(&batch, model.as_ref())
        .err()
        .expect("batch of 2 rejected")
        .to_string();
    assert!(err.contains("batch dimension must be 1"), "{err}");
    assert!(Eigendistortion::new(&Tensor::rand([8, 8], cpu), model.as_ref()).is_err());

    let mut eig = Eigendistortion::new(&Tensor::rand([1, 1, 8, 8], cpu), model.as_ref()).unwrap();
    let power = |k, max_iter| Method::Power {
        k,
        max_iter,
        stop_criterion: 1e-7,
    };
    assert!(invalid_param(eig.synthesize(power(0, 10))).contains("k: must be at least 1, got 0"));
    assert!(invalid_param(eig.synthesize(power(65, 10))).contains("n = 64, got 65"));
    assert!(invalid_param(eig.synthesize(power(1, 0))).contains("max_iter"));
    let nan = Method::Power {
        k: 1,
        max_iter: 10,
        stop_criterion: f64::NAN,
    };
    assert!(invalid_param(eig.synthesize(nan)).contains("stop_criterion"));
    let rsvd = Method::RandomizedSvd { k: 0, p: 5, q: 2 };
    assert!(invalid_param(eig.synthesize(rsvd)).contains("k: must be at least 1, got 0"));
    assert!(
        eig.eigenvalues().is_none(),
        "a rejected call leaves no results"
    );

    // 65 × 65 = 4225 pixels: the 4225² Fisher matrix is above the exact limit.
    let mut big = Eigendistortion::new(&Tensor::rand([1, 1, 65, 65], cpu), model.as_ref()).unwrap();
    let err = invalid_param(big.synthesize(Method::Exact));
    assert!(
        err.contains("4225 × 4225") && err.contains("power or randomized_svd"),
        "{err}"
    );
}

#[test]
fn power_reports_progress_and_can_be_cancelled() {
    let _rng = lock_rng();
    let model = small_gaussian();
    let img = Tensor::rand([1, 1, 8, 8], (Kind::Float, tch::Device::Cpu));
    let mut eig = Eigendistortion::new(&img, model.as_ref()).unwrap();
    let mut seen = vec![];
    let method = Method::Power {
        k: 2,
        max_iter: 5,
        stop_criterion: 0.0,
    };
    eig.synthesize_with(method, &mut |p| {
        seen.push((p.phase, p.iteration));
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(seen.len(), 10);
    assert_eq!(
        eig.iterations(),
        Some(PowerIterations { top: 5, bottom: 5 })
    );
    assert_eq!(eig.eigendistortions().unwrap().size(), [4, 1, 8, 8]);
    assert_eq!(
        Vec::<i64>::try_from(eig.eigenindex().unwrap()).unwrap(),
        [0, 1, 62, 63]
    );

    let err = eig
        .synthesize_with(method, &mut |p| {
            if p.iteration == 3 {
                std::ops::ControlFlow::Break(())
            } else {
                std::ops::ControlFlow::Continue(())
            }
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            synthsweep_synth::SynthError::Cancelled { iteration: 3 }
        ),
        "{err}"
    );
}
