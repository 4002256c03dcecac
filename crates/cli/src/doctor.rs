//! `synthsweep doctor`: is this machine (a new cluster node, a GPU) fit to run studies?
//!
//! Prints the libtorch in use, CUDA devices and threads; then runs every model and metric
//! that builds with its defaults forward and backward, and a few iterations of every
//! synthesis kind, on the CPU and on the chosen device, and compares the device's results
//! with the CPU's: forward values and gradients within `rtol 1e-4` (relative to the largest
//! CPU value, float32 against float32), synthesis losses within `rtol 1e-3` after
//! [`ITERS`] iterations (the float32 differences of two devices' kernels grow with each
//! step). Syntheses are built on the CPU (so the seeded draws are the CPU generator's, as
//! plenoptic's fixtures were) and moved to the device. With `--device cpu` the CPU is
//! compared with itself: everything runs, and the timings are the CPU's.
//!
//! Exit 0 when every check passes, 1 when one fails (each failure says what differed).
use crate::output::outln;
use anyhow::{anyhow, Context, Result};
use serde_json::json;
use std::time::Instant;
use synthsweep_models::device::{device_name, parse_device};
use synthsweep_models::registry::{METRICS, MODELS};
use synthsweep_models::{build_metric, build_model, Metric, Model};
use synthsweep_synth::eigendistortion::Method;
use synthsweep_synth::{
    CoarseToFine, CtfSynthesizeOptions, Eigendistortion, Geodesic, GeodesicOptions,
    GeodesicSynthesizeOptions, MadCompetition, MadOptions, Metamer, MetamerCtf, MetamerOptions,
    MinMax, SimpleMetamer, SynthesizeOptions,
};
use tch::{Device, Kind, Tensor};

/// Iterations of each synthesis kind.
pub const ITERS: usize = 5;
/// Side of the test image (the smallest that NLPD's six levels take).
const SIZE: i64 = 64;
const FORWARD_RTOL: f64 = 1e-4;
const SYNTH_RTOL: f64 = 1e-3;

/// A smooth test image in (0.1, 0.9), (1, 1, size, size).
fn test_image(size: i64) -> Tensor {
    let r = Tensor::arange(size, (Kind::Float, Device::Cpu)) / size as f64;
    let img = (r.unsqueeze(1) * 6.0).sin() * (r.unsqueeze(0) * 4.0).cos() * 0.4 + 0.5;
    img.view([1, 1, size, size])
}

/// The libtorch this process loaded: its version file next to `libtorch_cpu.so` (a libtorch
/// archive's `build-version`, a wheel's `torch/version.py`), and the library's path.
fn libtorch_version() -> (String, String) {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let Some(lib) = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("libtorch_cpu"))
        .map(std::path::PathBuf::from)
    else {
        return (
            "unknown".into(),
            "libtorch_cpu not found in this process".into(),
        );
    };
    let root = lib.parent().and_then(|p| p.parent());
    let version = root
        .and_then(|r| std::fs::read_to_string(r.join("build-version")).ok())
        .map(|v| v.trim().to_string())
        .or_else(|| {
            let py = std::fs::read_to_string(root?.join("version.py")).ok()?;
            py.lines()
                .find(|l| l.starts_with("__version__"))
                .and_then(|l| l.split('\'').nth(1).or_else(|| l.split('"').nth(1)))
                .map(String::from)
        })
        .unwrap_or_else(|| "unknown".into());
    (version, lib.display().to_string())
}

/// `|a − b| <= rtol·max|b| + 1e-7` everywhere (same shapes), or what differed.
fn close(a: &Tensor, b: &Tensor, rtol: f64) -> std::result::Result<f64, String> {
    if a.size() != b.size() {
        return Err(format!("shapes {:?} and {:?}", a.size(), b.size()));
    }
    let (a, b) = (
        a.detach().to_device(Device::Cpu).to_kind(Kind::Double),
        b.detach().to_device(Device::Cpu).to_kind(Kind::Double),
    );
    let scale = b.abs().max().double_value(&[]);
    let diff = (&a - &b).abs().max().double_value(&[]);
    if diff.is_nan() || diff > rtol * scale + 1e-7 {
        Err(format!(
            "max difference {diff:.3e} with values up to {scale:.3e} (rtol {rtol:e})"
        ))
    } else {
        Ok(if scale > 0.0 { diff / scale } else { diff })
    }
}

fn losses_close(a: &[f64], b: &[f64]) -> std::result::Result<f64, String> {
    close(&Tensor::from_slice(a), &Tensor::from_slice(b), SYNTH_RTOL)
}

struct Report {
    failed: usize,
    json: bool,
    rows: Vec<serde_json::Value>,
}

impl Report {
    fn line(
        &mut self,
        what: &str,
        r: Result<(std::result::Result<f64, String>, f64, f64)>,
    ) -> Result<()> {
        let (ok, text, row) = match r {
            Ok((Ok(rel), cpu_s, dev_s)) => (
                true,
                format!(
                    "ok    {what:<46} rel.diff {rel:.1e}  cpu {cpu_s:>7.3}s  device {dev_s:>7.3}s"
                ),
                json!({"check": what, "ok": true, "rel_diff": rel, "cpu_s": cpu_s, "device_s": dev_s}),
            ),
            Ok((Err(e), cpu_s, dev_s)) => (
                false,
                format!("FAIL  {what:<46} {e}"),
                json!({"check": what, "ok": false, "error": e, "cpu_s": cpu_s, "device_s": dev_s}),
            ),
            Err(e) => (
                false,
                format!("FAIL  {what:<46} {e:#}"),
                json!({"check": what, "ok": false, "error": format!("{e:#}")}),
            ),
        };
        if !ok {
            self.failed += 1;
        }
        if self.json {
            self.rows.push(row);
            Ok(())
        } else {
            Ok(outln!("{text}")?)
        }
    }

    fn note(&mut self, text: String) -> Result<()> {
        if self.json {
            self.rows.push(json!({"note": text}));
            Ok(())
        } else {
            Ok(outln!("      {text}")?)
        }
    }
}

/// A spec that builds for a model or metric: its defaults, else with the parameters a
/// check needs (pretrained weights, a kernel size, the image shape).
fn check_spec<T, E>(
    name: &str,
    size: i64,
    build: impl Fn(&serde_json::Value) -> std::result::Result<T, E>,
) -> Option<(serde_json::Value, T)> {
    [
        json!({"name": name}),
        json!({"name": name, "pretrained": true}),
        json!({"name": name, "kernel_size": 7}),
        json!({"name": name, "image_shape": [size, size]}),
        json!({"name": name, "model": {"name": "gaussian", "kernel_size": 5}}),
    ]
    .into_iter()
    .find_map(|spec| build(&spec).ok().map(|b| (spec, b)))
}

/// Runs one check, a panic inside it (libtorch's errors in a forward) taken as its failure.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    match r {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into());
            Err(anyhow!("{}", msg.lines().next().unwrap_or("panicked")))
        }
    }
}

fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let t = Instant::now();
    let out = f()?;
    Ok((out, t.elapsed().as_secs_f64()))
}

/// A model's output and input gradient (of the output's sum of squares) at `x`.
fn model_fb(model: &dyn Model, x: &Tensor) -> Result<(Tensor, Tensor)> {
    let x = x.detach().set_requires_grad(true);
    let y = model.forward(&x);
    let g = Tensor::f_run_backward(&[y.square().sum(Kind::Double)], &[&x], false, false)?;
    Ok((y.detach(), g[0].detach()))
}

fn metric_fb(metric: &dyn Metric, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let b = b.detach().set_requires_grad(true);
    let y = metric.forward(a, &b);
    let g = Tensor::f_run_backward(&[y.sum(Kind::Double)], &[&b], false, false)?;
    Ok((y.detach(), g[0].detach()))
}

fn both_close(
    (y1, g1): &(Tensor, Tensor),
    (y2, g2): &(Tensor, Tensor),
) -> std::result::Result<f64, String> {
    let a = close(y2, y1, FORWARD_RTOL).map_err(|e| format!("forward: {e}"))?;
    let b = close(g2, g1, FORWARD_RTOL).map_err(|e| format!("gradient: {e}"))?;
    Ok(a.max(b))
}

fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// Runs `synthsweep doctor`.
pub fn doctor(device: &str, as_json: bool) -> Result<i32> {
    let device = parse_device(device).map_err(|e| anyhow!("{e}"))?;
    let (version, lib) = libtorch_version();
    let mut report = Report {
        failed: 0,
        json: as_json,
        rows: Vec::new(),
    };
    let info = json!({
        "synthsweep": env!("CARGO_PKG_VERSION"),
        "libtorch": version,
        "libtorch_path": lib,
        "cuda_available": tch::Cuda::is_available(),
        "cuda_devices": tch::Cuda::device_count(),
        "cudnn_available": tch::Cuda::cudnn_is_available(),
        "threads": tch::get_num_threads(),
        "device": device_name(device),
    });
    if !as_json {
        outln!(
            "synthsweep {}  libtorch {} ({})",
            info["synthsweep"].as_str().unwrap_or(""),
            version,
            lib
        )?;
        outln!(
            "CUDA available: {}  devices: {}  cuDNN: {}  intra-op threads: {}  checking: {}",
            info["cuda_available"],
            info["cuda_devices"],
            info["cudnn_available"],
            info["threads"],
            info["device"].as_str().unwrap_or("")
        )?;
    }
    if let Device::Cuda(_) = device {
        // A tiny op first, so that a broken driver says so before anything else.
        let r = timed(|| {
            let a = Tensor::arange(6, (Kind::Float, device)).view([2, 3]);
            let s = a.matmul(&a.tr()).sum(Kind::Double).double_value(&[]);
            Ok(s)
        });
        report.line(
            "tiny CUDA op (arange, matmul, sum)",
            r.map(|(s, t)| {
                // [[0,1,2],[3,4,5]]·ᵀ = [[5,14],[14,50]]
                let ok = if s == 83.0 {
                    Ok(0.0)
                } else {
                    Err(format!("expected 83, got {s}"))
                };
                (ok, 0.0, t)
            }),
        )?;
    }
    let img = test_image(SIZE);
    let dev_img = img.to_device(device);
    let noisy = (&img + img.rand_like() * 0.1 - 0.05).clamp(0.0, 1.0);
    let dev_noisy = noisy.to_device(device);

    for entry in MODELS {
        // The first test-image size the model takes (Portilla-Simoncelli needs >= 144).
        let found = [SIZE, 160].into_iter().find_map(|size| {
            check_spec(entry.name, size, build_model)
                .filter(|(_, m)| m.check_input(&[1, 1, size, size]).is_ok())
                .map(|(spec, m)| (spec, m, size))
        });
        let Some((spec, cpu, size)) = found else {
            report.note(format!(
                "model {}: needs parameters, not checked",
                entry.name
            ))?;
            continue;
        };
        let what = format!("model {} forward+backward", entry.name);
        let r = guarded(|| {
            let img = test_image(size);
            let dev_img = img.to_device(device);
            let mut dev = build_model(&spec).map_err(|e| anyhow!("{e}"))?;
            dev.to(device, Kind::Float);
            let (a, cpu_s) = timed(|| model_fb(cpu.as_ref(), &img))?;
            let (b, dev_s) = timed(|| {
                let r = model_fb(dev.as_ref(), &dev_img);
                sync(device);
                r
            })?;
            Ok((both_close(&a, &b), cpu_s, dev_s))
        });
        report.line(&what, r)?;
    }
    for entry in METRICS {
        let Some((spec, cpu)) = check_spec(entry.name, SIZE, build_metric) else {
            report.note(format!(
                "metric {}: needs parameters, not checked",
                entry.name
            ))?;
            continue;
        };
        let what = format!("metric {} forward+backward", entry.name);
        let r = guarded(|| {
            let mut dev = build_metric(&spec).map_err(|e| anyhow!("{e}"))?;
            dev.to(device, Kind::Float);
            let (a, cpu_s) = timed(|| metric_fb(cpu.as_ref(), &img, &noisy))?;
            let (b, dev_s) = timed(|| {
                let r = metric_fb(dev.as_ref(), &dev_img, &dev_noisy);
                sync(device);
                r
            })?;
            Ok((both_close(&a, &b), cpu_s, dev_s))
        });
        report.line(&what, r)?;
    }
    synthesis_checks(&mut report, device, &test_image(32))?;

    let verdict = if report.failed == 0 { "PASS" } else { "FAIL" };
    if as_json {
        outln!(
            "{}",
            json!({"info": info, "checks": report.rows, "failed": report.failed, "verdict": verdict})
        )?;
    } else {
        outln!("{verdict}: {} check(s) failed", report.failed)?;
    }
    Ok(if report.failed == 0 { 0 } else { 1 })
}

fn on(spec: &serde_json::Value, device: Device) -> Result<Box<dyn Model>> {
    let mut m = build_model(spec).map_err(|e| anyhow!("{e}"))?;
    m.to(device, Kind::Float);
    Ok(m)
}

fn metric_on(spec: &serde_json::Value, device: Device) -> Result<Box<dyn Metric>> {
    let mut m = build_metric(spec).map_err(|e| anyhow!("{e}"))?;
    m.to(device, Kind::Float);
    Ok(m)
}

/// A few iterations of every synthesis kind, built on the CPU and run there and (moved) on
/// the device; their losses compared.
fn synthesis_checks(report: &mut Report, device: Device, img: &Tensor) -> Result<()> {
    let gaussian = json!({"name": "gaussian", "kernel_size": 5, "std": 1.5});
    let run = SynthesizeOptions {
        max_iter: ITERS,
        stop_criterion: 0.0,
        ..Default::default()
    };
    let opts = || MetamerOptions {
        seed: Some(0),
        ..Default::default()
    };

    let r = guarded(|| {
        let (cpu_m, dev_m) = (on(&gaussian, Device::Cpu)?, on(&gaussian, device)?);
        let (a, cpu_s) = timed(|| {
            let mut m = Metamer::new(img, cpu_m.as_ref(), opts())?;
            m.synthesize(&run)?;
            Ok(m.losses().to_vec())
        })?;
        let (b, dev_s) = timed(|| {
            let m = Metamer::new(img, cpu_m.as_ref(), opts())?;
            let mut m = m.to(device, Kind::Float, dev_m.as_ref());
            m.synthesize(&run)?;
            Ok(m.losses().to_vec())
        })?;
        Ok((losses_close(&b, &a), cpu_s, dev_s))
    });
    report.line("metamer (gaussian)", r)?;

    let r = guarded(|| {
        let spec = json!({"name": "steerable_pyramid", "image_shape": img.size()[2..]});
        let (cpu_m, dev_m) = (on(&spec, Device::Cpu)?, on(&spec, device)?);
        let ctf = CtfSynthesizeOptions {
            max_iter: ITERS,
            ctf_iters_to_check: 2,
            change_scale_criterion: None,
            stop_criterion: 0.0,
            ..Default::default()
        };
        let build = || MetamerCtf::new(img, cpu_m.as_ref(), opts(), CoarseToFine::Together);
        let (a, cpu_s) = timed(|| {
            let mut m = build()?;
            m.synthesize(&ctf)?;
            Ok(m.losses().to_vec())
        })?;
        let (b, dev_s) = timed(|| {
            let mut m = build()?.to(device, Kind::Float, dev_m.as_ref());
            m.synthesize(&ctf)?;
            Ok(m.losses().to_vec())
        })?;
        Ok((losses_close(&b, &a), cpu_s, dev_s))
    });
    report.line("metamer_ctf (steerable_pyramid)", r)?;

    let r = guarded(|| {
        let (mse, ssim) = (json!({"name": "mse"}), json!({"name": "ssim_distance"}));
        let (c1, c2) = (
            metric_on(&mse, Device::Cpu)?,
            metric_on(&ssim, Device::Cpu)?,
        );
        let (d1, d2) = (metric_on(&mse, device)?, metric_on(&ssim, device)?);
        let mad_opts = || MadOptions {
            seed: Some(0),
            ..Default::default()
        };
        let build = || MadCompetition::new(img, c1.as_ref(), c2.as_ref(), MinMax::Min, mad_opts());
        let (a, cpu_s) = timed(|| {
            let mut m = build()?;
            m.synthesize(&run)?;
            Ok(m.losses().to_vec())
        })?;
        let (b, dev_s) = timed(|| {
            let mut m = build()?.to(device, Kind::Float, d1.as_ref(), d2.as_ref());
            m.synthesize(&run)?;
            Ok(m.losses().to_vec())
        })?;
        Ok((losses_close(&b, &a), cpu_s, dev_s))
    });
    report.line("mad (mse vs ssim_distance)", r)?;

    let r = guarded(|| {
        let (cpu_m, dev_m) = (on(&gaussian, Device::Cpu)?, on(&gaussian, device)?);
        let b_img = img.flip([3]);
        let g_opts = || GeodesicOptions {
            n_steps: 4,
            seed: Some(0),
            ..Default::default()
        };
        let g_run = GeodesicSynthesizeOptions {
            max_iter: ITERS,
            stop_criterion: Some(0.0),
            ..Default::default()
        };
        let (a, cpu_s) = timed(|| {
            let mut g = Geodesic::new(img, &b_img, cpu_m.as_ref(), g_opts())?;
            g.synthesize(&g_run)?;
            Ok(g.losses().to_vec())
        })?;
        // The straight initial sequence draws nothing: built on the device directly.
        let (b, dev_s) = timed(|| {
            let (a_dev, b_dev) = (img.to_device(device), b_img.to_device(device));
            let mut g = Geodesic::new(&a_dev, &b_dev, dev_m.as_ref(), g_opts())?;
            g.synthesize(&g_run)?;
            Ok(g.losses().to_vec())
        })?;
        Ok((losses_close(&b, &a), cpu_s, dev_s))
    });
    report.line("geodesic (gaussian)", r)?;

    let r = guarded(|| {
        let (cpu_m, dev_m) = (on(&gaussian, Device::Cpu)?, on(&gaussian, device)?);
        let dir = tempfile_dir()?;
        let state = dir.join("simple.safetensors");
        let (a, cpu_s) = timed(|| {
            let mut m = SimpleMetamer::new(img, cpu_m.as_ref(), Some(0))?;
            m.save(&state)?;
            m.synthesize(ITERS, None)?;
            Ok(m.losses().to_vec())
        })?;
        let (b, dev_s) = timed(|| {
            let mut m = SimpleMetamer::new(&img.to_device(device), dev_m.as_ref(), Some(0))?;
            m.load(&state)?;
            m.synthesize(ITERS, None)?;
            Ok(m.losses().to_vec())
        })?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok((losses_close(&b, &a), cpu_s, dev_s))
    });
    report.line("simple_metamer (gaussian)", r)?;

    // Eigendistortions: the exact method is deterministic (no draws), so its eigenvalues
    // compare; the power method runs on the device for its timing (its draws are the
    // device generator's).
    let r = guarded(|| {
        let small = json!({"name": "gaussian", "kernel_size": 3, "std": 0.6});
        let (cpu_m, dev_m) = (on(&small, Device::Cpu)?, on(&small, device)?);
        let img8 = test_image(8);
        let (a, cpu_s) = timed(|| {
            let mut e = Eigendistortion::with_seed(&img8, cpu_m.as_ref(), 0)?;
            e.synthesize(Method::Exact)?;
            Ok(e.eigenvalues().context("no eigenvalues")?.copy())
        })?;
        let (b, dev_s) = timed(|| {
            let mut e = Eigendistortion::with_seed(&img8.to_device(device), dev_m.as_ref(), 0)?;
            e.synthesize(Method::Exact)?;
            let mut p = Eigendistortion::with_seed(&img8.to_device(device), dev_m.as_ref(), 0)?;
            p.synthesize(Method::Power {
                k: 2,
                max_iter: ITERS,
                stop_criterion: 0.0,
            })?;
            Ok(e.eigenvalues().context("no eigenvalues")?.copy())
        })?;
        Ok((close(&b, &a, SYNTH_RTOL), cpu_s, dev_s))
    });
    report.line("eigendistortion (exact values; power runs)", r)?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("synthsweep-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}
