//! Save, load and resume: 20 uninterrupted iterations equal 10, save, load into a freshly
//! built synthesis, 10 more, bit for bit on the CPU (losses, norms, image, snapshots,
//! optimizer and scheduler state). Loading refuses a file made for something else.
mod common;

use common::toy::{test_image, ToyPyramid};
use serde_json::json;
use synthsweep_models::{build_metric, build_model};
use synthsweep_synth::lbfgs::{LbfgsOptions, LineSearch};
use synthsweep_synth::scheduler::{ReduceLrOnPlateauOptions, SchedulerConfig};
use synthsweep_synth::{
    CoarseToFine, CtfSynthesizeOptions, MadCompetition, MadOptions, Metamer, MetamerCtf,
    MetamerOptions, MinMax, OptimizerConfig, StoreProgress, SynthError, SynthesizeOptions,
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
    let lbfgs = OptimizerConfig::Lbfgs(LbfgsOptions {
        max_iter: 4,
        line_search_fn: Some(LineSearch::StrongWolfe),
        ..Default::default()
    });
    for optimizer in [None, Some(OptimizerConfig::adam_with_lr(0.05)), Some(lbfgs)] {
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

    let err = |r: Result<(), SynthError>| r.unwrap_err().to_string();
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
