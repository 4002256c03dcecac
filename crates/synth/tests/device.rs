//! Moving a synthesis between devices and precisions with `to()`: a run continues in
//! float64, and, when a CUDA device is present, fixture runs started on the CPU (so the
//! seeded draws are the CPU generator's) and moved to the GPU still match plenoptic.
use synthsweep_testkit_tch::synth as common;

use common::toy::test_image;
use common::*;
use serde_json::json;
use synthsweep_models::{build_metric, build_model, Metric, Model};
use synthsweep_synth::{
    MadCompetition, MadOptions, Metamer, MetamerOptions, MinMax, StoreProgress, SynthesizeOptions,
};
use tch::{Device, Kind};

fn model_f64(spec: &serde_json::Value) -> Box<dyn Model> {
    let mut m = build_model(spec).unwrap();
    m.to(Device::Cpu, Kind::Double);
    m
}

#[test]
fn metamer_moves_to_float64_and_continues() {
    tch::set_num_threads(1);
    let spec = json!({"name": "gaussian", "kernel_size": 5, "std": 1.5});
    let model = build_model(&spec).unwrap();
    let model64 = model_f64(&spec);
    let img = test_image(32);
    let mut m = Metamer::new(
        &img,
        model.as_ref(),
        MetamerOptions {
            seed: Some(8),
            ..Default::default()
        },
    )
    .unwrap();
    let opts = SynthesizeOptions {
        max_iter: 5,
        store_progress: StoreProgress::Every(2),
        ..Default::default()
    };
    m.synthesize(&opts).unwrap();
    let mut m = m.to(Device::Cpu, Kind::Double, model64.as_ref());
    assert_eq!(m.metamer().kind(), Kind::Double);
    assert!(m.metamer().requires_grad());
    m.synthesize(&opts).unwrap();
    assert_eq!(m.losses().len(), 10);
    assert!(m.losses()[9] < m.losses()[0], "{:?}", m.losses());
    assert_eq!(m.saved_metamer().kind(), Kind::Double);
    assert_eq!(m.saved_metamer().device(), Device::Cpu);
    assert_eq!(m.objective_function().kind(), Kind::Double);
}

/// The fixture's tolerances, for the arrays the GPU run produces.
fn check_all(case: &serde_json::Value, arrays: &[(&str, tch::Tensor)]) -> Vec<String> {
    arrays
        .iter()
        .filter_map(|(name, t)| {
            check(case, name, &t.to_device(Device::Cpu).to_kind(Kind::Double)).err()
        })
        .collect()
}

#[test]
fn fixture_runs_moved_to_cuda_match_plenoptic() {
    // SYNTHSWEEP_TEST_DEVICE=cuda:N picks the GPU (and fails when it is absent); unset, the
    // first GPU when there is one.
    let gpu = match test_device() {
        Device::Cuda(i) => Device::Cuda(i),
        _ if tch::Cuda::is_available() => Device::Cuda(0),
        _ => {
            eprintln!("no CUDA device: skipped");
            return;
        }
    };
    tch::set_num_threads(1);
    let mut failures = Vec::new();

    let case = case("metamer_gauss_ein32");
    let spec = model_spec(&case);
    let cpu_model = build_model(&spec).unwrap();
    let mut gpu_model = build_model(&spec).unwrap();
    gpu_model.to(gpu, Kind::Float);
    let img = image(&case, "image");
    let m = Metamer::new(
        &img,
        cpu_model.as_ref(),
        MetamerOptions {
            seed: case["seed"].as_i64(),
            ..Default::default()
        },
    )
    .unwrap();
    let mut m = m.to(gpu, Kind::Float, gpu_model.as_ref());
    m.synthesize(&SynthesizeOptions {
        max_iter: 30,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(m.metamer().device(), gpu);
    let t = |v: &[f64]| tch::Tensor::from_slice(v);
    failures.extend(check_all(
        &case,
        &[
            ("losses", t(m.losses())),
            ("gradient_norm", t(m.gradient_norm())),
            ("pixel_change_norm", t(m.pixel_change_norm())),
            ("metamer", m.metamer().detach()),
        ],
    ));

    let case = case_mad();
    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let ssim = build_metric(&json!({"name": "ssim_distance"})).unwrap();
    let mut ssim_gpu: Box<dyn Metric> = build_metric(&json!({"name": "ssim_distance"})).unwrap();
    ssim_gpu.to(gpu, Kind::Float);
    let img = image(&case, "image");
    let mad = MadCompetition::new(
        &img,
        mse.as_ref(),
        ssim.as_ref(),
        MinMax::Min,
        MadOptions {
            seed: case["seed"].as_i64(),
            ..Default::default()
        },
    )
    .unwrap();
    let mut mad = mad.to(gpu, Kind::Float, mse.as_ref(), ssim_gpu.as_ref());
    mad.synthesize(&SynthesizeOptions {
        max_iter: 30,
        store_progress: StoreProgress::Every(10),
        ..Default::default()
    })
    .unwrap();
    failures.extend(check_all(
        &case,
        &[
            ("losses", t(mad.losses())),
            ("optimized_metric_loss", t(mad.optimized_metric_loss())),
            ("reference_metric_loss", t(mad.reference_metric_loss())),
            ("mad_image", mad.mad_image().detach()),
            ("saved_mad_image", mad.saved_mad_image()),
        ],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn case_mad() -> serde_json::Value {
    case("mad_mse_min_ein32")
}
