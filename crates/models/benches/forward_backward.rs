//! Forward + backward (gradient w.r.t. the image) of every model and metric at 64 and 256 px,
//! one group per operation, single-threaded torch (as the sweep engine runs CPU workers).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::{json, Value};
use synthsweep_models::{build_metric, build_model};
use tch::{Device, Kind, Tensor};

fn model_specs() -> Vec<Value> {
    vec![
        json!({"name": "gaussian", "kernel_size": 31, "std": 3.0}),
        json!({"name": "center_surround", "kernel_size": 31}),
        json!({"name": "linear_nonlinear", "pretrained": true}),
        json!({"name": "luminance_gain_control", "pretrained": true}),
        json!({"name": "luminance_contrast_gain_control", "pretrained": true}),
        json!({"name": "on_off", "pretrained": true}),
        json!({"name": "linear"}),
        json!({"name": "steerable_pyramid", "order": 3}),
        json!({"name": "laplacian_pyramid"}),
        json!({"name": "portilla_simoncelli", "n_scales": 3, "spatial_corr_width": 7}),
    ]
}

fn metric_specs() -> Vec<Value> {
    vec![
        json!({"name": "mse"}),
        json!({"name": "ssim_distance"}),
        json!({"name": "ms_ssim_distance"}),
        json!({"name": "nlpd"}),
        json!({"name": "model_distance", "model": {"name": "on_off", "pretrained": true}}),
    ]
}

fn image(size: i64) -> Tensor {
    tch::manual_seed(0);
    Tensor::rand([1, 1, size, size], (Kind::Float, Device::Cpu))
}

fn models(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("model_forward_backward");
    for spec in model_specs() {
        let Ok(model) = build_model(&spec) else {
            continue;
        };
        for size in [64, 256] {
            if model.check_input(&[1, 1, size, size]).is_err() {
                continue;
            }
            let x = image(size).set_requires_grad(true);
            group.bench_with_input(
                BenchmarkId::new(spec["name"].as_str().unwrap(), size),
                &size,
                |b, _| {
                    b.iter(|| {
                        let y = model.forward(&x).sum(Kind::Float);
                        Tensor::run_backward(&[y], &[&x], false, false)
                    })
                },
            );
        }
    }
    group.finish();
}

fn metrics(c: &mut Criterion) {
    tch::set_num_threads(1);
    let mut group = c.benchmark_group("metric_forward_backward");
    for spec in metric_specs() {
        let Ok(metric) = build_metric(&spec) else {
            continue;
        };
        for size in [64, 256] {
            if metric.check_input(&[1, 1, size, size]).is_err() {
                continue;
            }
            let a = image(size);
            let b0 = (image(size) * 0.1 + &a * 0.9).set_requires_grad(true);
            group.bench_with_input(
                BenchmarkId::new(spec["name"].as_str().unwrap(), size),
                &size,
                |b, _| {
                    b.iter(|| {
                        let y = metric.forward(&a, &b0).sum(Kind::Float);
                        Tensor::run_backward(&[y], &[&b0], false, false)
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(std::time::Duration::from_secs(2)).warm_up_time(std::time::Duration::from_millis(300));
    targets = models, metrics
}
criterion_main!(benches);
