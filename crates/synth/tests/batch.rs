//! Several syntheses in one tensor (`synthsweep_synth::batch`): each element of a batched
//! run equals its one-task run within the fixtures' tolerances (records, stop iteration,
//! final image, snapshots, optimizer state for a continuation), also when elements stop at
//! different iterations; a batch of one is the one-task path bit for bit; the models and
//! metrics have no coupling across the batch dimension. The syntheses run on the test
//! device (`SYNTHSWEEP_TEST_DEVICE`: `scripts/gpu_check.sh` runs them on CUDA).
use synthsweep_testkit_tch::synth as common;

use common::toy::test_image;
use serde_json::{json, Value};
use std::ops::ControlFlow;
use synthsweep_models::registry::{METRICS, MODELS};
use synthsweep_models::{build_metric, build_model, Metric, Model};
use synthsweep_synth::optim::SgdOptions;
use synthsweep_synth::{
    synthesize_mads, synthesize_metamers, MadCompetition, MadOptions, Metamer, MetamerOptions,
    MinMax, OptimizerConfig, StoreProgress, SynthesizeOptions,
};
use tch::{Kind, Tensor};

/// `allclose` with the tolerance of a fixture case's array (`rtol`, `atol`, and the mean
/// bound when it gives one).
fn close(case: &Value, name: &str, a: &Tensor, b: &Tensor, what: &str) {
    let t = common::tol(case, name);
    let (atol, rtol) = (
        t["atol"].as_f64().unwrap_or(0.0),
        t["rtol"].as_f64().unwrap_or(0.0),
    );
    assert_eq!(a.size(), b.size(), "{what}: shapes");
    if a.numel() == 0 {
        return;
    }
    let cpu = tch::Device::Cpu;
    let (a, b) = (
        a.to_device(cpu).to_kind(Kind::Double),
        b.to_device(cpu).to_kind(Kind::Double),
    );
    let diff = (&a - &b).abs();
    let excess = (&diff - (b.abs() * rtol + atol)).max().double_value(&[]);
    assert!(
        excess <= 0.0,
        "{what}: |diff| max {:.3e} exceeds atol {atol:e} + rtol {rtol:e}",
        diff.max().double_value(&[])
    );
    if let Some(m) = t["mean_abs_max"].as_f64() {
        let mean = diff.mean(Kind::Double).double_value(&[]);
        assert!(mean <= m, "{what}: mean |diff| {mean:.3e} > {m:e}");
    }
}

fn series(v: &[f64]) -> Tensor {
    Tensor::from_slice(v)
}

/// Three target images that converge at different speeds, on the test device.
fn images(size: i64) -> Vec<Tensor> {
    let base = common::on_device(&test_image(size), common::test_device());
    vec![
        base.shallow_clone(),
        base.flip([3]) * 0.5 + 0.25,
        (base.transpose(2, 3) * 0.8 + 0.1).contiguous(),
    ]
}

fn metamer_options(seed: i64) -> MetamerOptions {
    MetamerOptions {
        seed: Some(seed),
        ..Default::default()
    }
}

/// Each element of a batched metamer run against its one-task run.
fn check_metamers(model: &dyn Model, opts: &SynthesizeOptions, chunk: usize) -> Vec<usize> {
    let case = common::case("metamer_stop_gauss_ein32");
    let imgs = images(16);
    let build = || -> Vec<Metamer> {
        imgs.iter()
            .enumerate()
            .map(|(k, img)| Metamer::new(img, model, metamer_options(10 + k as i64)).unwrap())
            .collect()
    };
    synthsweep_synth::set_record_chunk(chunk);
    let mut batch = build();
    let outcomes = synthesize_metamers(&mut batch, opts, None).unwrap();
    let mut singles = build();
    let mut stops = Vec::new();
    for (k, (b, s)) in batch.iter_mut().zip(&mut singles).enumerate() {
        let expected = s.synthesize(opts).unwrap();
        let got = outcomes[k].as_ref().unwrap();
        assert_eq!(*got, expected, "element {k}: outcome");
        stops.push(got.iterations);
        let what = |x: &str| format!("chunk {chunk}, element {k}: {x}");
        close(
            &case,
            "losses",
            &series(b.losses()),
            &series(s.losses()),
            &what("losses"),
        );
        close(
            &case,
            "gradient_norm",
            &series(b.gradient_norm()),
            &series(s.gradient_norm()),
            &what("gradient_norm"),
        );
        close(&case, "metamer", b.metamer(), s.metamer(), &what("metamer"));
        close(
            &case,
            "metamer",
            &b.saved_metamer(),
            &s.saved_metamer(),
            &what("saved_metamer"),
        );
        // The optimizer state came back: a one-task continuation goes on alike.
        let more = SynthesizeOptions {
            max_iter: 3,
            stop_criterion: 0.0,
            ..opts.clone()
        };
        b.synthesize(&more).unwrap();
        s.synthesize(&more).unwrap();
        close(
            &case,
            "metamer",
            b.metamer(),
            s.metamer(),
            &what("continued metamer"),
        );
    }
    synthsweep_synth::set_record_chunk(synthsweep_synth::host::DEFAULT_RECORD_CHUNK);
    stops
}

/// A small Gaussian model on the test device.
fn gaussian() -> Box<dyn Model> {
    let mut m = build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 1.5})).unwrap();
    m.to(common::test_device(), Kind::Float);
    m
}

fn metric(name: &str) -> Box<dyn Metric> {
    let mut m = build_metric(&json!({"name": name})).unwrap();
    m.to(common::test_device(), Kind::Float);
    m
}

#[test]
fn batched_metamers_equal_their_one_task_runs_and_stop_on_their_own() {
    tch::set_num_threads(1);
    let model = gaussian();
    let adam = SynthesizeOptions {
        max_iter: 40,
        stop_criterion: 3e-4,
        stop_iters_to_check: 3,
        store_progress: StoreProgress::Every(4),
        ..Default::default()
    };
    for chunk in [1, 16] {
        let stops = check_metamers(model.as_ref(), &adam, chunk);
        assert!(
            stops.iter().any(|&s| s != stops[0]) && stops.iter().any(|&s| s < 40),
            "the elements should stop at different iterations: {stops:?}"
        );
    }
    let sgd = SynthesizeOptions {
        max_iter: 12,
        optimizer: Some(OptimizerConfig::Sgd(SgdOptions {
            lr: 0.5,
            momentum: 0.9,
            ..Default::default()
        })),
        ..Default::default()
    };
    check_metamers(model.as_ref(), &sgd, 5);
}

#[test]
fn a_batch_of_one_is_the_one_task_path() {
    tch::set_num_threads(1);
    let model = gaussian();
    let img = images(16).remove(0);
    let opts = SynthesizeOptions {
        max_iter: 10,
        ..Default::default()
    };
    let mut batch = vec![Metamer::new(&img, model.as_ref(), metamer_options(4)).unwrap()];
    synthesize_metamers(&mut batch, &opts, None).unwrap()[0]
        .as_ref()
        .unwrap();
    let mut single = Metamer::new(&img, model.as_ref(), metamer_options(4)).unwrap();
    single.synthesize(&opts).unwrap();
    assert_eq!(batch[0].losses(), single.losses());
    assert!(batch[0]
        .metamer()
        .to_device(tch::Device::Cpu)
        .equal(&single.metamer().to_device(tch::Device::Cpu)));
}

#[test]
fn batched_mads_equal_their_one_task_runs_and_a_cancel_ends_one_element() {
    tch::set_num_threads(1);
    let case = common::case("mad_ssim_dist_min_ein32");
    let (mse, ssim) = (metric("mse"), metric("ssim_distance"));
    let imgs = images(16);
    let plan: Vec<(usize, MinMax, i64)> = vec![
        (0, MinMax::Min, 1),
        (1, MinMax::Max, 2),
        (2, MinMax::Min, 3),
        (0, MinMax::Max, 4),
    ];
    let build = || -> Vec<MadCompetition> {
        plan.iter()
            .map(|&(i, minmax, seed)| {
                MadCompetition::new(
                    &imgs[i],
                    ssim.as_ref(),
                    mse.as_ref(),
                    minmax,
                    MadOptions {
                        seed: Some(seed),
                        ..Default::default()
                    },
                )
                .unwrap()
            })
            .collect()
    };
    let opts = SynthesizeOptions {
        max_iter: 20,
        store_progress: StoreProgress::Every(5),
        ..Default::default()
    };
    let mut batch = build();
    // Element 2 is cancelled after iteration 6 (as a preemption would): it ends there,
    // its iterations kept, the others go on.
    let outcomes = synthesize_mads(
        &mut batch,
        &opts,
        Some(&mut |e, p| {
            if e == 2 && p.iteration == 6 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }),
    )
    .unwrap();
    let mut singles = build();
    for (k, (b, s)) in batch.iter().zip(&mut singles).enumerate() {
        let expected = s.synthesize_with(&opts, &mut |p| {
            if k == 2 && p.iteration == 6 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(
            format!("{:?}", outcomes[k]),
            format!("{expected:?}"),
            "element {k}"
        );
        let what = |x: &str| format!("element {k}: {x}");
        for (name, a, e) in [
            ("losses", b.losses(), s.losses()),
            ("gradient_norm", b.gradient_norm(), s.gradient_norm()),
            (
                "losses",
                b.optimized_metric_loss(),
                s.optimized_metric_loss(),
            ),
            (
                "losses",
                b.reference_metric_loss(),
                s.reference_metric_loss(),
            ),
        ] {
            close(&case, name, &series(a), &series(e), &what(name));
        }
        close(
            &case,
            "mad_image",
            b.mad_image(),
            s.mad_image(),
            &what("mad_image"),
        );
        close(
            &case,
            "mad_image",
            &b.saved_mad_image(),
            &s.saved_mad_image(),
            &what("saved"),
        );
    }
    assert_eq!(batch[2].losses().len(), 7);
}

#[test]
fn incompatible_elements_are_refused_before_anything_runs() {
    let model = gaussian();
    let other = gaussian();
    let img = images(16).remove(0);
    let mut two = vec![
        Metamer::new(&img, model.as_ref(), metamer_options(1)).unwrap(),
        Metamer::new(&img, other.as_ref(), metamer_options(2)).unwrap(),
    ];
    let opts = SynthesizeOptions {
        max_iter: 3,
        ..Default::default()
    };
    let e = synthesize_metamers(&mut two, &opts, None).unwrap_err();
    assert!(e.to_string().contains("another model"), "{e}");
    let mut two = vec![
        Metamer::new(&img, model.as_ref(), metamer_options(1)).unwrap(),
        Metamer::new(&images(32).remove(0), model.as_ref(), metamer_options(2)).unwrap(),
    ];
    let e = synthesize_metamers(&mut two, &opts, None).unwrap_err();
    assert!(e.to_string().contains("image"), "{e}");
    let lbfgs = SynthesizeOptions {
        optimizer: Some(serde_json::from_value(json!({"name": "lbfgs"})).unwrap()),
        ..opts
    };
    let mut two = vec![
        Metamer::new(&img, model.as_ref(), metamer_options(1)).unwrap(),
        Metamer::new(&img, model.as_ref(), metamer_options(2)).unwrap(),
    ];
    let e = synthesize_metamers(&mut two, &lbfgs, None).unwrap_err();
    assert!(e.to_string().contains("Adam and SGD"), "{e}");
    assert!(two.iter().all(|m| m.losses().is_empty()));
}

/// `max |x − y| <= rtol · max |y|`: relative to the output's scale (`linear`'s band-pass
/// filter sums to almost zero and is normalized by that sum, so its outputs are large).
fn close_scaled(case: &Value, x: &Tensor, y: &Tensor, what: &str) {
    let rtol = common::tol(case, "losses")["rtol"].as_f64().unwrap();
    assert_eq!(x.size(), y.size(), "{what}: shapes");
    let diff = (x - y).abs().max().double_value(&[]);
    let scale = y.abs().max().double_value(&[]);
    assert!(
        diff <= rtol * scale,
        "{what}: max |diff| {diff:.3e} > rtol {rtol:e} x max |value| {scale:.3e}"
    );
}

/// Forward of a batch of two equals the forward of each element: no coupling across the
/// batch dimension, for every registered model and metric (but a user's TorchScript model,
/// which the engine does not batch).
#[test]
fn models_and_metrics_have_no_coupling_across_the_batch() {
    tch::set_num_threads(1);
    let a = test_image(64);
    let b = (a.flip([2]) * 0.7 + 0.1).contiguous();
    let both = Tensor::cat(&[&a, &b], 0);
    let case = common::case("metamer_gauss_ein32");
    for entry in MODELS.iter().filter(|e| e.name != "torchscript") {
        // Models without a default kernel size get a small one; Portilla-Simoncelli takes
        // 64 px with 2 scales.
        let spec = match entry.name {
            "portilla_simoncelli" => json!({"name": entry.name, "n_scales": 2}),
            n => json!({"name": n}),
        };
        let m = build_model(&spec)
            .or_else(|_| build_model(&json!({"name": entry.name, "kernel_size": 7})))
            .unwrap();
        let (x, y) = (
            m.forward(&both),
            Tensor::cat(&[m.forward(&a), m.forward(&b)], 0),
        );
        close_scaled(&case, &x, &y, entry.name);
    }
    let target = Tensor::cat(&[&b, &a], 0);
    for entry in METRICS.iter() {
        let spec = match entry.name {
            "model_distance" => {
                json!({"name": "model_distance", "model": {"name": "gaussian", "kernel_size": 7}})
            }
            n => json!({"name": n}),
        };
        let m: Box<dyn Metric> = build_metric(&spec).unwrap();
        let x = m.forward(&both, &target);
        let y = Tensor::cat(&[m.forward(&a, &b), m.forward(&b, &a)], 0);
        close_scaled(&case, &x, &y, entry.name);
    }
}
