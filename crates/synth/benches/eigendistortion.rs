//! Eigendistortion on a 32 × 32 image under luminance_gain_control, single-threaded torch:
//! one Fisher-vector product, and the power method (k = 1, both phases, 10 iterations each).
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use std::time::Duration;
use synthsweep_models::build_model;
use synthsweep_synth::autodiff;
use synthsweep_synth::eigendistortion::{Eigendistortion, Method};
use tch::{Device, Kind, Tensor};

fn image() -> Tensor {
    tch::manual_seed(0);
    Tensor::rand([1, 1, 32, 32], (Kind::Float, Device::Cpu)) * 0.8 + 0.1
}

fn fisher_vp(c: &mut Criterion) {
    tch::set_num_threads(1);
    let model =
        build_model(&json!({"name": "luminance_gain_control", "pretrained": true})).unwrap();
    let img = image();
    let x = img.reshape([-1, 1]).copy().set_requires_grad(true);
    let y = model.forward(&x.view([1, 1, 32, 32])).reshape([-1, 1]);
    let v = Tensor::randn([1024, 1], (Kind::Float, Device::Cpu));
    c.benchmark_group("fisher_vp")
        .bench_function("luminance_gain_control_32_k1", |b| {
            b.iter(|| autodiff::fisher_vp(&y, &x, &v).unwrap())
        });
}

fn power(c: &mut Criterion) {
    tch::set_num_threads(1);
    let model =
        build_model(&json!({"name": "luminance_gain_control", "pretrained": true})).unwrap();
    let img = image();
    // stop_criterion 0: always the full 10 iterations per phase, so every sample does the same work.
    let method = Method::Power {
        k: 1,
        max_iter: 10,
        stop_criterion: 0.0,
    };
    c.benchmark_group("eigendistortion_power").bench_function(
        "luminance_gain_control_32_k1",
        |b| {
            b.iter(|| {
                let mut eig = Eigendistortion::new(&img, model.as_ref()).unwrap();
                eig.synthesize(method).unwrap();
                eig
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_millis(300));
    targets = fisher_vp, power
}
criterion_main!(benches);
