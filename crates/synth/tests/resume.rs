//! Save, load and resume: 20 uninterrupted iterations equal 10 (or 9), save, load into a
//! freshly built synthesis, the rest, bit for bit on the CPU (losses, norms, image, snapshots
//! and other records, optimizer and scheduler state). An eigendistortion analysis saves and
//! loads its results unchanged. Loading refuses a file made for something else.
use synthsweep_testkit_tch::synth as common;

use common::toy::{test_image, ToyPyramid};
use serde_json::json;
use synthsweep_models::{build_metric, build_model};
use synthsweep_synth::eigendistortion::Method;
use synthsweep_synth::lbfgs::{LbfgsOptions, LineSearch};
use synthsweep_synth::scheduler::{ReduceLrOnPlateauOptions, SchedulerConfig};
use synthsweep_synth::{
    CoarseToFine, CtfSynthesizeOptions, Eigendistortion, Geodesic, GeodesicOptions,
    GeodesicSynthesizeOptions, InitialSequence, MadCompetition, MadOptions, Metamer, MetamerCtf,
    MetamerOptions, MinMax, OptimizerConfig, SimpleMetamer, StoreProgress, SynthError,
    SynthesizeOptions,
};
use tch::Tensor;

fn bits(t: &Tensor) -> Vec<u32> {
    Vec::<f32>::try_from(t.detach().reshape([-1]))
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn opts(max_iter: usize, optimizer: Option<OptimizerConfig>) -> SynthesizeOptions {
    SynthesizeOptions {
        max_iter,
        store_progress: StoreProgress::Every(3),
        optimizer,
        scheduler: Some(SchedulerConfig::ReduceLrOnPlateau(
            ReduceLrOnPlateauOptions {
                patience: 2,
                factor: 0.5,
                threshold: 0.05,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn gaussian() -> Box<dyn synthsweep_models::Model> {
    build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 1.5})).unwrap()
}

fn other_gaussian() -> Box<dyn synthsweep_models::Model> {
    build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 2.5})).unwrap()
}

/// Adam (the default), Adam with another learning rate, and L-BFGS with a line search (the
/// optimizer with the most state).
fn optimizers() -> Vec<Option<OptimizerConfig>> {
    let lbfgs = OptimizerConfig::Lbfgs(LbfgsOptions {
        max_iter: 4,
        line_search_fn: Some(LineSearch::StrongWolfe),
        ..Default::default()
    });
    vec![None, Some(OptimizerConfig::adam_with_lr(0.05)), Some(lbfgs)]
}

/// Equal kind, shape and values (NaN equal to NaN nowhere: none are expected).
fn same(a: &Tensor, b: &Tensor) -> bool {
    a.kind() == b.kind() && a.size() == b.size() && a.equal(b)
}

fn err(r: Result<(), SynthError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn metamer_resumes_bit_for_bit() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let img = test_image(32);
    let model = gaussian();
    let options = MetamerOptions {
        seed: Some(11),
        ..Default::default()
    };
    for optimizer in optimizers() {
        let mut whole = Metamer::new(&img, model.as_ref(), options.clone()).unwrap();
        whole.synthesize(&opts(20, optimizer.clone())).unwrap();

        let mut first = Metamer::new(&img, model.as_ref(), options.clone()).unwrap();
        first.synthesize(&opts(10, optimizer.clone())).unwrap();
        let path = dir.path().join("metamer.safetensors");
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = Metamer::new(
            &img,
            model.as_ref(),
            MetamerOptions {
                seed: Some(99),
                ..options.clone()
            },
        )
        .unwrap();
        resumed.load(&path).unwrap();
        assert_eq!(resumed.losses().len(), 10);
        resumed.synthesize(&opts(10, None)).unwrap();

        let what = format!("{optimizer:?}");
        assert_eq!(whole.losses(), resumed.losses(), "{what}: losses");
        assert_eq!(
            whole.gradient_norm(),
            resumed.gradient_norm(),
            "{what}: gradient_norm"
        );
        assert_eq!(
            whole.pixel_change_norm(),
            resumed.pixel_change_norm(),
            "{what}: pixel_change_norm"
        );
        assert_eq!(
            bits(whole.metamer()),
            bits(resumed.metamer()),
            "{what}: metamer"
        );
        assert_eq!(
            bits(&whole.saved_metamer()),
            bits(&resumed.saved_metamer()),
            "{what}: saved_metamer"
        );
        assert_eq!(
            whole.saved_metamer().size()[0],
            7,
            "{what}: snapshots at 0, 3, ..., 18"
        );
        assert_eq!(
            whole.optimizer().unwrap().lr(),
            resumed.optimizer().unwrap().lr(),
            "{what}: scheduled lr"
        );
    }
}

#[test]
fn mad_resumes_bit_for_bit() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let img = test_image(32);
    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let ssim = build_metric(&json!({"name": "ssim_distance"})).unwrap();
    let options = MadOptions {
        seed: Some(5),
        ..Default::default()
    };
    for minmax in [MinMax::Min, MinMax::Max] {
        let mut whole =
            MadCompetition::new(&img, ssim.as_ref(), mse.as_ref(), minmax, options.clone())
                .unwrap();
        whole.synthesize(&opts(20, None)).unwrap();

        let mut first =
            MadCompetition::new(&img, ssim.as_ref(), mse.as_ref(), minmax, options.clone())
                .unwrap();
        first.synthesize(&opts(10, None)).unwrap();
        let path = dir.path().join("mad.safetensors");
        first.save(&path).unwrap();
        let mut resumed =
            MadCompetition::new(&img, ssim.as_ref(), mse.as_ref(), minmax, options.clone())
                .unwrap();
        resumed.load(&path).unwrap();
        resumed.synthesize(&opts(10, None)).unwrap();

        assert_eq!(whole.losses(), resumed.losses(), "{minmax:?}: losses");
        assert_eq!(whole.gradient_norm(), resumed.gradient_norm());
        assert_eq!(whole.pixel_change_norm(), resumed.pixel_change_norm());
        assert_eq!(
            whole.optimized_metric_loss(),
            resumed.optimized_metric_loss()
        );
        assert_eq!(
            whole.reference_metric_loss(),
            resumed.reference_metric_loss()
        );
        assert_eq!(whole.optimized_metric_loss().len(), 21);
        assert_eq!(bits(whole.mad_image()), bits(resumed.mad_image()));
        assert_eq!(bits(whole.initial_image()), bits(resumed.initial_image()));
        assert_eq!(
            bits(&whole.saved_mad_image()),
            bits(&resumed.saved_mad_image())
        );
    }
}

#[test]
fn ctf_resumes_bit_for_bit_across_scale_switches() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let img = test_image(16);
    let model = ToyPyramid;
    let options = MetamerOptions {
        seed: Some(3),
        ..Default::default()
    };
    let o = |max_iter| CtfSynthesizeOptions {
        max_iter,
        change_scale_criterion: None,
        ctf_iters_to_check: 4,
        ..Default::default()
    };
    let mut whole = MetamerCtf::new(&img, &model, options.clone(), CoarseToFine::Together).unwrap();
    whole.synthesize(&o(20)).unwrap();
    let mut first = MetamerCtf::new(&img, &model, options.clone(), CoarseToFine::Together).unwrap();
    first.synthesize(&o(6)).unwrap();
    let path = dir.path().join("ctf.safetensors");
    first.save(&path).unwrap();
    let mut resumed = MetamerCtf::new(&img, &model, options, CoarseToFine::Together).unwrap();
    resumed.load(&path).unwrap();
    resumed.synthesize(&o(14)).unwrap();
    assert_eq!(whole.losses(), resumed.losses());
    assert_eq!(whole.scales_loss(), resumed.scales_loss());
    assert_eq!(whole.scales_timing(), resumed.scales_timing());
    assert_eq!(whole.scales_finished(), resumed.scales_finished());
    assert_eq!(bits(whole.metamer()), bits(resumed.metamer()));
}

#[test]
fn load_refuses_a_different_synthesis_and_says_what_differs() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let img = test_image(32);
    let model = gaussian();
    let mut m = Metamer::new(&img, model.as_ref(), MetamerOptions::default()).unwrap();
    m.set_identity("gaussian k5 s1.5");
    m.synthesize(&SynthesizeOptions {
        max_iter: 2,
        ..Default::default()
    })
    .unwrap();
    m.save(&path).unwrap();

    let other_image = &img * 0.9;
    let mut a = Metamer::new(&other_image, model.as_ref(), MetamerOptions::default()).unwrap();
    a.set_identity("gaussian k5 s1.5");
    let e = err(a.load(&path));
    assert!(
        e.contains("image.sha256") && e.contains("target_representation"),
        "{e}"
    );

    let mut b = Metamer::new(
        &img,
        model.as_ref(),
        MetamerOptions {
            range_penalty_lambda: 0.2,
            ..Default::default()
        },
    )
    .unwrap();
    b.set_identity("gaussian k5 s1.5");
    let e = err(b.load(&path));
    assert!(
        e.contains("parameters.range_penalty_lambda: saved 0.1, now 0.2"),
        "{e}"
    );

    let other_model =
        build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 2.5})).unwrap();
    let mut c = Metamer::new(&img, other_model.as_ref(), MetamerOptions::default()).unwrap();
    c.set_identity("gaussian k5 s2.5");
    let e = err(c.load(&path));
    assert!(
        e.contains("model.identity") && e.contains("target_representation"),
        "{e}"
    );

    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let mut mad = MadCompetition::new(
        &img,
        mse.as_ref(),
        mse.as_ref(),
        MinMax::Min,
        MadOptions {
            seed: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let e = err(mad.load(&path));
    assert!(e.contains("saved by metamer"), "{e}");
    let e = err(m.load(dir.path().join("missing.safetensors")));
    assert!(e.contains("cannot read"), "{e}");
}

fn geodesic_opts(max_iter: usize, optimizer: Option<OptimizerConfig>) -> GeodesicSynthesizeOptions {
    GeodesicSynthesizeOptions {
        max_iter,
        optimizer,
        store_progress: StoreProgress::Every(3),
        stop_criterion: Some(0.0),
        ..Default::default()
    }
}

/// The two anchors of the test geodesics: a 16 px image and its negative.
fn anchors() -> (Tensor, Tensor) {
    let a = test_image(16);
    let b = -&a + 1.0;
    (a, b)
}

#[test]
fn geodesic_resumes_bit_for_bit() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = anchors();
    let model = gaussian();
    let options = GeodesicOptions {
        n_steps: 4,
        initial_sequence: InitialSequence::Bridge,
        seed: Some(8),
        ..Default::default()
    };
    for optimizer in optimizers() {
        let what = format!("{optimizer:?}");
        let mut whole = Geodesic::new(&a, &b, model.as_ref(), options.clone()).unwrap();
        whole
            .synthesize(&geodesic_opts(20, optimizer.clone()))
            .unwrap();

        // 9 iterations: the 10th records step energies from the cached representation of
        // the 9th objective evaluation, which the file must carry.
        let mut first = Geodesic::new(&a, &b, model.as_ref(), options.clone()).unwrap();
        first
            .synthesize(&geodesic_opts(9, optimizer.clone()))
            .unwrap();
        let path = dir.path().join("geodesic.safetensors");
        first.save(&path).unwrap();
        drop(first);
        let reseeded = GeodesicOptions {
            seed: Some(99),
            ..options.clone()
        };
        let mut resumed = Geodesic::new(&a, &b, model.as_ref(), reseeded).unwrap();
        assert!(!same(&resumed.geodesic(), &whole.geodesic()));
        resumed.load(&path).unwrap();
        assert_eq!(resumed.losses().len(), 9, "{what}");
        assert_eq!(resumed.store_progress(), Some(3), "{what}");
        resumed.synthesize(&geodesic_opts(11, None)).unwrap();

        assert_eq!(whole.losses(), resumed.losses(), "{what}: losses");
        assert_eq!(whole.losses().len(), 20, "{what}");
        assert_eq!(
            whole.gradient_norm(),
            resumed.gradient_norm(),
            "{what}: gradient_norm"
        );
        assert_eq!(
            whole.pixel_change_norm(),
            resumed.pixel_change_norm(),
            "{what}: pixel_change_norm"
        );
        assert_eq!(
            bits(&whole.geodesic()),
            bits(&resumed.geodesic()),
            "{what}: geodesic"
        );
        assert_eq!(
            whole.step_energy().size(),
            [7, 4],
            "{what}: records at 0, 3, ..., 18"
        );
        assert_eq!(
            bits(&whole.step_energy()),
            bits(&resumed.step_energy()),
            "{what}: step_energy"
        );
        assert_eq!(
            bits(&whole.dev_from_line()),
            bits(&resumed.dev_from_line()),
            "{what}: dev_from_line"
        );
        assert_eq!(
            whole.optimizer().unwrap().lr(),
            resumed.optimizer().unwrap().lr(),
            "{what}: lr"
        );
    }
}

#[test]
fn simple_metamer_resumes_bit_for_bit() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let img = test_image(16);
    let model = gaussian();
    for optimizer in optimizers() {
        let what = format!("{optimizer:?}");
        let mut whole = SimpleMetamer::new(&img, model.as_ref(), Some(4)).unwrap();
        whole.synthesize(20, optimizer.as_ref()).unwrap();

        let mut first = SimpleMetamer::new(&img, model.as_ref(), Some(4)).unwrap();
        first.synthesize(9, optimizer.as_ref()).unwrap();
        let path = dir.path().join("simple.safetensors");
        first.save(&path).unwrap();
        let losses_at_save = first.losses().len();
        drop(first);
        let mut resumed = SimpleMetamer::new(&img, model.as_ref(), Some(99)).unwrap();
        resumed.load(&path).unwrap();
        assert_eq!(resumed.losses().len(), losses_at_save, "{what}");
        resumed.synthesize(11, None).unwrap();

        assert_eq!(whole.losses(), resumed.losses(), "{what}: losses");
        assert_eq!(
            bits(whole.metamer()),
            bits(resumed.metamer()),
            "{what}: metamer"
        );
        assert_eq!(
            whole.optimizer().unwrap().config(),
            resumed.optimizer().unwrap().config(),
            "{what}: optimizer"
        );
    }
}

#[test]
fn eigendistortion_save_load_round_trip() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let img = test_image(16);
    let model = gaussian();
    let methods = [
        Method::Exact,
        Method::Power {
            k: 2,
            max_iter: 30,
            stop_criterion: 1e-7,
        },
        Method::RandomizedSvd { k: 2, p: 3, q: 1 },
    ];
    for method in methods {
        let what = method.name();
        let mut e = Eigendistortion::with_seed(&img, model.as_ref(), 6).unwrap();
        e.synthesize(method).unwrap();
        let path = dir.path().join(format!("{what}.safetensors"));
        e.save(&path).unwrap();

        let mut loaded = Eigendistortion::new(&img, model.as_ref()).unwrap();
        assert!(loaded.eigenvalues().is_none());
        loaded.load(&path).unwrap();
        assert_eq!(loaded.method(), Some(method), "{what}");
        assert_eq!(loaded.iterations(), e.iterations(), "{what}");
        assert_eq!(
            loaded.error_approx().map(f64::to_bits),
            e.error_approx().map(f64::to_bits),
            "{what}"
        );
        for (name, x, y) in [
            ("eigenvalues", e.eigenvalues(), loaded.eigenvalues()),
            (
                "eigendistortions",
                e.eigendistortions(),
                loaded.eigendistortions(),
            ),
            ("eigenindex", e.eigenindex(), loaded.eigenindex()),
            ("jacobian", e.jacobian(), loaded.jacobian()),
        ] {
            match (x, y) {
                (Some(x), Some(y)) => assert!(same(x, y), "{what}: {name}"),
                (None, None) => {}
                _ => panic!("{what}: {name} present in one only"),
            }
        }
        assert_eq!(loaded.jacobian().is_some(), method == Method::Exact);
        match method {
            Method::Power { .. } => assert!(loaded.iterations().is_some()),
            Method::RandomizedSvd { .. } => assert!(loaded.error_approx().is_some()),
            Method::Exact => {}
        }
    }
}

#[test]
fn geodesic_load_refuses_other_images_model_or_parameters() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.safetensors");
    let (a, b) = anchors();
    let model = gaussian();
    let options = GeodesicOptions {
        n_steps: 4,
        ..Default::default()
    };
    let mut g = Geodesic::new(&a, &b, model.as_ref(), options.clone()).unwrap();
    g.set_identity("gaussian k5 s1.5");
    g.synthesize(&geodesic_opts(2, None)).unwrap();
    g.save(&path).unwrap();

    let other_b = &b * 0.9;
    let mut x = Geodesic::new(&a, &other_b, model.as_ref(), options.clone()).unwrap();
    x.set_identity("gaussian k5 s1.5");
    let e = err(x.load(&path));
    assert!(
        e.contains("image_b.sha256")
            && e.contains("anchor_representation")
            && !e.contains("image_a"),
        "{e}"
    );

    let longer = GeodesicOptions {
        n_steps: 5,
        range_penalty_lambda: 0.2,
        ..options.clone()
    };
    let mut x = Geodesic::new(&a, &b, model.as_ref(), longer).unwrap();
    x.set_identity("gaussian k5 s1.5");
    let e = err(x.load(&path));
    assert!(
        e.contains("parameters.n_steps: saved 4, now 5")
            && e.contains("parameters.range_penalty_lambda: saved 0.1, now 0.2"),
        "{e}"
    );

    let other_model = other_gaussian();
    let mut x = Geodesic::new(&a, &b, other_model.as_ref(), options.clone()).unwrap();
    x.set_identity("gaussian k5 s2.5");
    let e = err(x.load(&path));
    assert!(
        e.contains("model.identity") && e.contains("anchor_representation"),
        "{e}"
    );
    // Without identities, the representation of the anchors still tells the models apart.
    let mut x = Geodesic::new(&a, &b, other_model.as_ref(), options.clone()).unwrap();
    let e = err(x.load(&path));
    assert!(e.contains("anchor_representation: differs"), "{e}");

    let mut s = SimpleMetamer::new(&a, model.as_ref(), None).unwrap();
    let e = err(s.load(&path));
    assert!(e.contains("saved by geodesic"), "{e}");
}

#[test]
fn simple_metamer_load_refuses_another_image_or_model() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.safetensors");
    let img = test_image(16);
    let model = gaussian();
    let mut s = SimpleMetamer::new(&img, model.as_ref(), Some(1)).unwrap();
    s.set_identity("gaussian k5 s1.5");
    s.synthesize(2, None).unwrap();
    s.save(&path).unwrap();

    let other_image = &img * 0.9;
    let mut x = SimpleMetamer::new(&other_image, model.as_ref(), Some(1)).unwrap();
    x.set_identity("gaussian k5 s1.5");
    let e = err(x.load(&path));
    assert!(
        e.contains("image.sha256") && e.contains("target_representation"),
        "{e}"
    );

    let other_model = other_gaussian();
    let mut x = SimpleMetamer::new(&img, other_model.as_ref(), Some(1)).unwrap();
    x.set_identity("gaussian k5 s2.5");
    let e = err(x.load(&path));
    assert!(
        e.contains("model.identity") && e.contains("target_representation"),
        "{e}"
    );
    assert_eq!(x.losses().len(), 0, "a refused load changes nothing");

    let mut m = Metamer::new(&img, model.as_ref(), MetamerOptions::default()).unwrap();
    let e = err(m.load(&path));
    assert!(e.contains("saved by simple_metamer"), "{e}");
}

#[test]
fn eigendistortion_load_refuses_another_image_or_model() {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.safetensors");
    let img = test_image(16);
    let model = gaussian();
    let mut e = Eigendistortion::with_seed(&img, model.as_ref(), 2).unwrap();
    e.set_identity("gaussian k5 s1.5");
    e.synthesize(Method::RandomizedSvd { k: 1, p: 2, q: 1 })
        .unwrap();
    e.save(&path).unwrap();

    let other_image = &img * 0.9;
    let mut x = Eigendistortion::new(&other_image, model.as_ref()).unwrap();
    x.set_identity("gaussian k5 s1.5");
    let msg = err(x.load(&path));
    assert!(
        msg.contains("image.sha256") && msg.contains("representation"),
        "{msg}"
    );
    assert!(x.eigenvalues().is_none(), "a refused load changes nothing");

    let other_model = other_gaussian();
    let mut x = Eigendistortion::new(&img, other_model.as_ref()).unwrap();
    x.set_identity("gaussian k5 s2.5");
    let msg = err(x.load(&path));
    assert!(
        msg.contains("model.identity") && msg.contains("representation: differs"),
        "{msg}"
    );

    let mut g = Geodesic::new(&img, &img, model.as_ref(), GeodesicOptions::default()).unwrap();
    let msg = err(g.load(&path));
    assert!(msg.contains("saved by eigendistortion"), "{msg}");
}
