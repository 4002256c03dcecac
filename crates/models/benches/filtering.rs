//! The crossover between the filtering methods of the Gaussian-based models (`direct`,
//! `separable`, `fft`): forward + backward of a 31x31, an 11x11 and a 3x3 Gaussian and a 31x31
//! difference of Gaussians, and the pretrained luminance_gain_control front end, at 32 to 1024 px, single-threaded torch on the CPU and on CUDA
//! when present. The constants of `synthsweep_models::filtering` (`auto`'s rule) come from
//! these figures: `cargo bench -p synthsweep-models --bench filtering`.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use serde_json::json;
use std::time::Duration;
use synthsweep_models::build_model;
use tch::{Device, Kind, Tensor};

const SIZES: [i64; 6] = [32, 64, 128, 256, 512, 1024];
/// `direct` grows with size x taps; beyond this side one 31x31 pass takes seconds.
const DIRECT_MAX: i64 = 512;

fn devices() -> Vec<Device> {
    let mut d = vec![Device::Cpu];
    if tch::Cuda::is_available() {
        d.push(Device::Cuda(0));
    }
    d
}

fn filtering(c: &mut Criterion) {
    tch::set_num_threads(1);
    let specs = [
        (
            "gaussian_k31",
            json!({"name": "gaussian", "kernel_size": 31, "std": 3.0}),
        ),
        (
            "gaussian_k11",
            json!({"name": "gaussian", "kernel_size": 11, "std": 1.5}),
        ),
        (
            "gaussian_k3",
            json!({"name": "gaussian", "kernel_size": 3, "std": 1.0}),
        ),
        (
            "center_surround_k31",
            json!({"name": "center_surround", "kernel_size": 31}),
        ),
        (
            "luminance_gain_control",
            json!({"name": "luminance_gain_control", "pretrained": true}),
        ),
    ];
    for device in devices() {
        let dev = if device == Device::Cpu { "cpu" } else { "cuda" };
        for (label, spec) in &specs {
            let mut group = c.benchmark_group(format!("filtering_{dev}_{label}"));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(1));
            for method in ["direct", "separable", "fft"] {
                let mut spec = spec.clone();
                spec["filtering"] = json!(method);
                let mut model = build_model(&spec).expect("bench spec builds");
                model.to(device, Kind::Float);
                for size in SIZES {
                    if method == "direct" && size > DIRECT_MAX {
                        continue;
                    }
                    tch::manual_seed(0);
                    let x = Tensor::rand([1, 1, size, size], (Kind::Float, device))
                        .set_requires_grad(true);
                    group.bench_with_input(BenchmarkId::new(method, size), &size, |b, _| {
                        b.iter(|| {
                            let y = model.forward(&x).sum(Kind::Float);
                            let g = Tensor::run_backward(&[y], &[&x], false, false);
                            if let Device::Cuda(i) = device {
                                tch::Cuda::synchronize(i as i64);
                            }
                            g
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, filtering);
criterion_main!(benches);
