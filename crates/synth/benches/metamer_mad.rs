//! Synthesis loop cost at small size: 20 iterations of a Gaussian-model metamer and of a
//! MAD competition (mse vs 1 − SSIM) on a 32×32 image, one thread, CPU.
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use synthsweep_models::{build_metric, build_model};
use synthsweep_synth::{
    MadCompetition, MadOptions, Metamer, MetamerOptions, MinMax, SynthesizeOptions,
};
use tch::{Device, Kind, Tensor};

fn image() -> Tensor {
    let r = Tensor::arange(32, (Kind::Float, Device::Cpu)) / 32.0;
    ((r.unsqueeze(1) * 6.0).sin() * (r.unsqueeze(0) * 4.0).cos() * 0.4 + 0.5).view([1, 1, 32, 32])
}

fn twenty() -> SynthesizeOptions {
    SynthesizeOptions {
        max_iter: 20,
        ..Default::default()
    }
}

fn metamer(c: &mut Criterion) {
    tch::set_num_threads(1);
    let img = image();
    let model = build_model(&json!({"name": "gaussian", "kernel_size": 5, "std": 1.5})).unwrap();
    let mut g = c.benchmark_group("metamer");
    g.bench_function("gaussian_32px_20_iterations", |b| {
        b.iter(|| {
            let mut m = Metamer::new(
                &img,
                model.as_ref(),
                MetamerOptions {
                    seed: Some(0),
                    ..Default::default()
                },
            )
            .unwrap();
            m.synthesize(&twenty()).unwrap();
            m.losses().len()
        })
    });
    g.finish();
}

fn mad(c: &mut Criterion) {
    tch::set_num_threads(1);
    let img = image();
    let mse = build_metric(&json!({"name": "mse"})).unwrap();
    let ssim = build_metric(&json!({"name": "ssim_distance"})).unwrap();
    let mut g = c.benchmark_group("mad");
    g.bench_function("mse_vs_ssim_32px_20_iterations", |b| {
        b.iter(|| {
            let o = MadOptions {
                seed: Some(0),
                ..Default::default()
            };
            let mut m =
                MadCompetition::new(&img, mse.as_ref(), ssim.as_ref(), MinMax::Min, o).unwrap();
            m.synthesize(&twenty()).unwrap();
            m.losses().len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = metamer, mad
}
criterion_main!(benches);
