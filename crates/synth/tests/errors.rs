//! Invalid parameters are rejected up front with messages that name them; a diverging or
//! NaN objective stops with the iteration named; the callback can cancel, and the run can
//! continue afterwards.
use synthsweep_testkit_tch::synth as common;

use common::toy::{test_image, NanModel, NotADistance, SignedDifference, ToyPyramid};
use serde_json::json;
use std::ops::ControlFlow;
use synthsweep_models::{build_metric, build_model, Model};
use synthsweep_synth::optim::SgdOptions;
use synthsweep_synth::{
    CoarseToFine, CtfSynthesizeOptions, MadCompetition, MadOptions, Metamer, MetamerCtf,
    MetamerOptions, MinMax, OptimizerConfig, SimpleMetamer, StoreProgress, SynthError,
    SynthesizeOptions,
};
use tch::{Kind, Tensor};

fn model() -> Box<dyn Model> {
    build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 1.5})).unwrap()
}

fn message<T: std::fmt::Debug>(r: Result<T, SynthError>) -> String {
    r.unwrap_err().to_string()
}

fn assert_invalid<T: std::fmt::Debug>(r: Result<T, SynthError>, param: &str, text: &str) {
    match r {
        Err(SynthError::InvalidParam { param: p, msg }) => {
            assert_eq!(p, param, "{msg}");
            assert!(msg.contains(text), "{param}: `{msg}` lacks `{text}`");
        }
        other => panic!("expected InvalidParam {param}, got {other:?}"),
    }
}

#[test]
fn metamer_rejects_invalid_parameters_up_front() {
    let img = test_image(32);
    let m = model();
    let with = |o: MetamerOptions| Metamer::new(&img, m.as_ref(), o);
    assert_invalid(
        with(MetamerOptions {
            range_penalty_lambda: -0.1,
            ..Default::default()
        }),
        "range_penalty_lambda",
        "non-negative",
    );
    assert_invalid(
        with(MetamerOptions {
            allowed_range: (1.0, 0.0),
            ..Default::default()
        }),
        "allowed_range",
        "strictly less",
    );
    assert_invalid(
        with(MetamerOptions {
            allowed_range: (0.2, 0.8),
            ..Default::default()
        }),
        "image",
        "within allowed_range",
    );
    assert_invalid(
        Metamer::new(&img.squeeze_dim(0), m.as_ref(), MetamerOptions::default()),
        "image",
        "4-D",
    );
    assert_invalid(
        Metamer::new(
            &img.to_kind(Kind::Int64),
            m.as_ref(),
            MetamerOptions::default(),
        ),
        "image",
        "floating-point",
    );
    let small = Tensor::zeros([1, 1, 16, 16], (Kind::Float, tch::Device::Cpu));
    assert_invalid(
        Metamer::with_initial_image(&img, m.as_ref(), MetamerOptions::default(), &small),
        "initial_image",
        "shape",
    );
    let e = message(Metamer::new(
        &Tensor::zeros([1, 1, 2, 2], (Kind::Float, tch::Device::Cpu)),
        m.as_ref(),
        MetamerOptions::default(),
    ));
    assert!(e.contains("gaussian"), "{e}");

    let mut ok = with(MetamerOptions::default()).unwrap();
    let bad_lr = SynthesizeOptions {
        optimizer: Some(OptimizerConfig::adam_with_lr(-1.0)),
        ..Default::default()
    };
    assert_invalid(ok.synthesize(&bad_lr), "optimizer.lr", "positive");
    assert_invalid(
        ok.synthesize(&SynthesizeOptions {
            stop_iters_to_check: 0,
            ..Default::default()
        }),
        "stop_iters_to_check",
        "at least 1",
    );
    assert!(ok.losses().is_empty(), "nothing ran");

    ok.synthesize(&SynthesizeOptions {
        max_iter: 2,
        store_progress: StoreProgress::Flag(true),
        ..Default::default()
    })
    .unwrap();
    let changed = SynthesizeOptions {
        max_iter: 2,
        store_progress: StoreProgress::Every(2),
        ..Default::default()
    };
    assert_invalid(
        ok.synthesize(&changed),
        "store_progress",
        "same store_progress",
    );
    let other_optimizer = SynthesizeOptions {
        max_iter: 2,
        store_progress: StoreProgress::Flag(true),
        optimizer: Some(OptimizerConfig::Sgd(SgdOptions::default())),
        ..Default::default()
    };
    assert_invalid(ok.synthesize(&other_optimizer), "optimizer", "resuming");
    assert_eq!(ok.losses().len(), 2);
}

#[test]
fn ctf_rejects_models_without_scales_and_bad_criteria() {
    let img = test_image(16);
    let m = model();
    assert_invalid(
        MetamerCtf::new(
            &img,
            m.as_ref(),
            MetamerOptions::default(),
            CoarseToFine::Together,
        ),
        "model",
        "no scales",
    );
    let toy = ToyPyramid;
    let mut ctf = MetamerCtf::new(
        &img,
        &toy,
        MetamerOptions::default(),
        CoarseToFine::Separate,
    )
    .unwrap();
    let bad = CtfSynthesizeOptions {
        stop_criterion: 0.01,
        change_scale_criterion: Some(0.01),
        ..Default::default()
    };
    assert_invalid(
        ctf.synthesize(&bad),
        "stop_criterion",
        "strictly less than change_scale_criterion",
    );
    let bad = CtfSynthesizeOptions {
        ctf_iters_to_check: 0,
        ..Default::default()
    };
    assert_invalid(ctf.synthesize(&bad), "ctf_iters_to_check", "at least 1");
    // None disables the check, as in plenoptic
    let fine = CtfSynthesizeOptions {
        max_iter: 1,
        stop_criterion: 1.0,
        change_scale_criterion: None,
        ..Default::default()
    };
    ctf.synthesize(&fine).unwrap();
}

#[test]
fn mad_rejects_invalid_parameters_and_metrics() {
    let img = test_image(32);
    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let new = |o: MadOptions| MadCompetition::new(&img, mse.as_ref(), mse.as_ref(), MinMax::Max, o);
    assert_invalid(
        new(MadOptions {
            initial_noise: -0.1,
            ..Default::default()
        }),
        "initial_noise",
        "non-negative",
    );
    assert_invalid(
        new(MadOptions {
            range_penalty_lambda: -1.0,
            ..Default::default()
        }),
        "range_penalty_lambda",
        "non-negative",
    );
    assert_invalid(
        new(MadOptions {
            allowed_range: (0.5, 0.5),
            ..Default::default()
        }),
        "allowed_range",
        "strictly less",
    );
    assert_invalid(
        new(MadOptions {
            metric_tradeoff_lambda: Some(f64::NAN),
            ..Default::default()
        }),
        "metric_tradeoff_lambda",
        "finite",
    );
    assert_invalid(
        new(MadOptions {
            initial_noise: 0.0,
            ..Default::default()
        }),
        "metric_tradeoff_lambda",
        "automatically",
    );
    let not = NotADistance;
    let neg = SignedDifference;
    assert_invalid(
        MadCompetition::new(&img, &not, mse.as_ref(), MinMax::Min, MadOptions::default()),
        "optimized_metric",
        "5e-7",
    );
    assert_invalid(
        MadCompetition::new(&img, mse.as_ref(), &neg, MinMax::Min, MadOptions::default()),
        "reference_metric",
        "negative",
    );
    let rgb = img.repeat([1, 3, 1, 1]);
    assert_invalid(
        MadCompetition::new(
            &rgb,
            mse.as_ref(),
            mse.as_ref(),
            MinMax::Min,
            MadOptions::default(),
        ),
        "optimized_metric",
        "one value",
    );
    assert!(
        serde_json::from_str::<MadOptions>(r#"{"initial_noise": 0.2, "lambda": 1}"#).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn nan_loss_stops_with_the_iteration_named() {
    let img = test_image(32);
    // A model whose output is NaN everywhere: already its representation of the target is,
    // which is said before any iteration (tests/nan_target.rs has the whole family).
    let nan = NanModel;
    let e = Metamer::new(&img, &nan, MetamerOptions::default()).unwrap_err();
    assert!(matches!(e, SynthError::NonFiniteTarget { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("`nan_model`'s representation of the target image contains NaN"),
        "{e}"
    );
    assert!(matches!(
        SimpleMetamer::new(&img, &nan, None).unwrap_err(),
        SynthError::NonFiniteTarget { .. }
    ));

    // A learning rate far too large: the loss overflows after the first step.
    let identity = build_model(&json!({"name": "identity"})).unwrap();
    let mut m = Metamer::new(
        &img,
        identity.as_ref(),
        MetamerOptions {
            seed: Some(0),
            ..Default::default()
        },
    )
    .unwrap();
    let diverging = SynthesizeOptions {
        optimizer: Some(OptimizerConfig::Sgd(SgdOptions {
            lr: 1e22,
            ..Default::default()
        })),
        ..Default::default()
    };
    match m.synthesize(&diverging).unwrap_err() {
        SynthError::NonFinite { iteration, value } => {
            assert!((1..5).contains(&iteration), "iteration {iteration}");
            assert!(!value.is_finite());
            assert_eq!(m.losses().len(), iteration + 1);
        }
        other => panic!("expected NonFinite, got {other}"),
    }
}

#[test]
fn callback_cancels_and_the_run_continues_afterwards() {
    let img = test_image(32);
    let m = model();
    let mut met = Metamer::new(
        &img,
        m.as_ref(),
        MetamerOptions {
            seed: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    let mut seen = Vec::new();
    let opts = SynthesizeOptions {
        max_iter: 10,
        ..Default::default()
    };
    let e = met
        .synthesize_with(&opts, &mut |p| {
            seen.push((p.iteration, p.loss, p.lr));
            if p.iteration == 4 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap_err();
    assert!(matches!(e, SynthError::Cancelled { iteration: 4 }), "{e}");
    assert_eq!(seen.len(), 5);
    assert_eq!(met.losses().len(), 5);
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), met.losses());
    assert!(seen.iter().all(|s| s.2 == 0.01));
    let out = met.synthesize(&opts).unwrap();
    assert_eq!((out.iterations, met.losses().len()), (10, 15));

    // The same 15 iterations uninterrupted give the same result.
    let mut whole = Metamer::new(
        &img,
        m.as_ref(),
        MetamerOptions {
            seed: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    whole
        .synthesize(&SynthesizeOptions {
            max_iter: 15,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(whole.losses(), met.losses());
}
