//! Times one synthesis case on one thread, as a sweep worker runs a task: the model or
//! metrics are built once (not timed), then each repeat constructs the synthesis object and
//! runs `synthesize` (timed). Prints one JSON line with the times and their median.
//!
//! Usage: `bench_synth CASE IMAGE ITERATIONS REPEATS [--image-b PATH] [--warmup-iters N]
//! [--device cpu|cuda:N]` (default cpu; on a GPU each task's time ends after a device sync).
//!
//! Cases (the plenoptic side is `scripts/bench_vs_plenoptic.py`):
//! - `mad_mse_ssim`: MADCompetition, optimized `mse`, reference `ssim_distance`, `min`.
//! - `metamer_lgc`: Metamer on `luminance_gain_control` (pretrained).
//! - `metamer_ps`: Metamer on `portilla_simoncelli` (n_scales 4, the image's shape).
//! - `eigen_power_lgc`: Eigendistortion, power, k = 1, `max_iter = ITERATIONS` per phase.
//! - `geodesic_lgc`: Geodesic, n_steps 10, from IMAGE to `--image-b`.
//! - `simple_metamer_gaussian`: SimpleMetamer on `gaussian` (kernel 11, std 3).
//!
//! Every stop rule is switched off (criterion 0) so both sides run exactly ITERATIONS steps.
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;
use synthsweep_models::image_io::load_image;
use synthsweep_models::{build_metric, build_model, Metric, Model};
use synthsweep_synth::{
    eigendistortion, Eigendistortion, Geodesic, GeodesicOptions, GeodesicSynthesizeOptions,
    MadCompetition, MadOptions, Metamer, MetamerOptions, MinMax, SimpleMetamer, SynthesizeOptions,
};
use tch::Tensor;

type BoxError = Box<dyn std::error::Error>;

const CASES: &[&str] = &[
    "mad_mse_ssim",
    "metamer_lgc",
    "metamer_ps",
    "eigen_power_lgc",
    "geodesic_lgc",
    "simple_metamer_gaussian",
];

struct Args {
    case: String,
    image: PathBuf,
    iterations: usize,
    repeats: usize,
    image_b: Option<PathBuf>,
    warmup_iters: usize,
    device: tch::Device,
}

fn usage() -> String {
    format!(
        "usage: bench_synth CASE IMAGE ITERATIONS REPEATS [--image-b PATH] [--warmup-iters N] [--device D]\n\
         cases: {}",
        CASES.join(", ")
    )
}

fn parse_args() -> Result<Args, BoxError> {
    let mut positional = Vec::new();
    let (mut image_b, mut warmup_iters, mut device) = (None, 2, tch::Device::Cpu);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--image-b" => image_b = Some(PathBuf::from(it.next().ok_or_else(usage)?)),
            "--warmup-iters" => warmup_iters = it.next().ok_or_else(usage)?.parse()?,
            "--device" => {
                device = synthsweep_models::device::parse_device(&it.next().ok_or_else(usage)?)?
            }
            "-h" | "--help" => return Err(usage().into()),
            _ => positional.push(a),
        }
    }
    let [case, image, iterations, repeats] =
        <[String; 4]>::try_from(positional).map_err(|_| usage())?;
    if !CASES.contains(&case.as_str()) {
        return Err(format!("unknown case {case:?}\n{}", usage()).into());
    }
    let repeats: usize = repeats.parse()?;
    let iterations: usize = iterations.parse()?;
    if repeats == 0 || iterations == 0 {
        return Err("ITERATIONS and REPEATS must be at least 1".into());
    }
    Ok(Args {
        case,
        image: PathBuf::from(image),
        iterations,
        repeats,
        image_b,
        warmup_iters,
        device,
    })
}

/// What one task reports besides its time: the iterations it ran and its last loss or
/// eigenvalue, to check that both sides did the same work.
struct TaskResult {
    iterations_run: usize,
    last_value: f64,
}

/// The models or metrics a case needs, built once.
enum Built {
    Model(Box<dyn Model>),
    Metrics(Box<dyn Metric>, Box<dyn Metric>),
}

fn build(case: &str, image: &Tensor) -> Result<Built, BoxError> {
    let mut built = build_cpu(case, image)?;
    match &mut built {
        Built::Model(m) => m.to(image.device(), image.kind()),
        Built::Metrics(a, b) => {
            a.to(image.device(), image.kind());
            b.to(image.device(), image.kind());
        }
    }
    Ok(built)
}

fn build_cpu(case: &str, image: &Tensor) -> Result<Built, BoxError> {
    let size = image.size();
    Ok(match case {
        "mad_mse_ssim" => Built::Metrics(
            build_metric(&json!({"name": "mse"}))?,
            build_metric(&json!({"name": "ssim_distance"}))?,
        ),
        "metamer_lgc" | "eigen_power_lgc" | "geodesic_lgc" => Built::Model(build_model(
            &json!({"name": "luminance_gain_control", "pretrained": true}),
        )?),
        "metamer_ps" => Built::Model(build_model(
            &json!({"name": "portilla_simoncelli", "n_scales": 4, "image_shape": [size[2], size[3]]}),
        )?),
        "simple_metamer_gaussian" => Built::Model(build_model(
            &json!({"name": "gaussian", "kernel_size": 11, "std": 3.0}),
        )?),
        _ => unreachable!("checked in parse_args"),
    })
}

fn last(v: &[f64]) -> f64 {
    v.last().copied().unwrap_or(f64::NAN)
}

/// One task: construct the synthesis object and run `iterations` steps.
fn task(
    case: &str,
    built: &Built,
    image: &Tensor,
    image_b: Option<&Tensor>,
    iterations: usize,
) -> Result<TaskResult, BoxError> {
    let no_stop = SynthesizeOptions {
        max_iter: iterations,
        stop_criterion: 0.0,
        ..SynthesizeOptions::default()
    };
    Ok(match (case, built) {
        ("mad_mse_ssim", Built::Metrics(optimized, reference)) => {
            let options = MadOptions {
                seed: Some(0),
                ..MadOptions::default()
            };
            let mut mad = MadCompetition::new(
                image,
                optimized.as_ref(),
                reference.as_ref(),
                MinMax::Min,
                options,
            )?;
            let outcome = mad.synthesize(&no_stop)?;
            TaskResult {
                iterations_run: outcome.iterations,
                last_value: last(mad.losses()),
            }
        }
        ("metamer_lgc" | "metamer_ps", Built::Model(model)) => {
            let options = MetamerOptions {
                seed: Some(0),
                ..MetamerOptions::default()
            };
            let mut metamer = Metamer::new(image, model.as_ref(), options)?;
            let outcome = metamer.synthesize(&no_stop)?;
            TaskResult {
                iterations_run: outcome.iterations,
                last_value: last(metamer.losses()),
            }
        }
        ("eigen_power_lgc", Built::Model(model)) => {
            let mut eig = Eigendistortion::with_seed(image, model.as_ref(), 0)?;
            eig.synthesize(eigendistortion::Method::Power {
                k: 1,
                max_iter: iterations,
                stop_criterion: 0.0,
            })?;
            let run = eig.iterations().map_or(0, |i| i.top + i.bottom);
            let top = eig.eigenvalues().map_or(f64::NAN, |v| v.double_value(&[0]));
            TaskResult {
                iterations_run: run,
                last_value: top,
            }
        }
        ("geodesic_lgc", Built::Model(model)) => {
            let image_b = image_b.ok_or("geodesic_lgc needs --image-b")?;
            let options = GeodesicOptions {
                n_steps: 10,
                seed: Some(0),
                ..GeodesicOptions::default()
            };
            let mut geodesic = Geodesic::new(image, image_b, model.as_ref(), options)?;
            let opts = GeodesicSynthesizeOptions {
                max_iter: iterations,
                stop_criterion: Some(0.0),
                ..GeodesicSynthesizeOptions::default()
            };
            let outcome = geodesic.synthesize(&opts)?;
            TaskResult {
                iterations_run: outcome.iterations,
                last_value: last(geodesic.losses()),
            }
        }
        ("simple_metamer_gaussian", Built::Model(model)) => {
            let mut metamer = SimpleMetamer::new(image, model.as_ref(), Some(0))?;
            metamer.synthesize(iterations, None)?;
            TaskResult {
                iterations_run: metamer.losses().len(),
                last_value: last(metamer.losses()),
            }
        }
        _ => unreachable!("build() matches the case"),
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn main() -> Result<(), BoxError> {
    let args = parse_args()?;
    tch::set_num_threads(1);
    tch::set_num_interop_threads(1);
    let image = load_image(&args.image)?.to_device(args.device);
    let image_b = args
        .image_b
        .as_deref()
        .map(load_image)
        .transpose()?
        .map(|b| b.to_device(args.device));
    let sync = || {
        if let tch::Device::Cuda(i) = args.device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let built = build(&args.case, &image)?;
    if args.warmup_iters > 0 {
        task(
            &args.case,
            &built,
            &image,
            image_b.as_ref(),
            args.warmup_iters,
        )?;
    }
    let mut times = Vec::with_capacity(args.repeats);
    let mut result = None;
    for _ in 0..args.repeats {
        let start = Instant::now();
        let r = task(
            &args.case,
            &built,
            &image,
            image_b.as_ref(),
            args.iterations,
        )?;
        sync();
        times.push(start.elapsed().as_secs_f64());
        result = Some(r);
    }
    let result = result.expect("repeats >= 1");
    let out: Value = json!({
        "side": "synthsweep",
        "case": args.case,
        "image": args.image,
        "image_b": args.image_b,
        "size": image.size(),
        "iterations": args.iterations,
        "repeats": args.repeats,
        "warmup_iters": args.warmup_iters,
        "threads": tch::get_num_threads(),
        "device": synthsweep_models::device::device_name(args.device),
        "times_s": times,
        "median_s": median(&times),
        "iterations_run": result.iterations_run,
        "last_value": result.last_value,
    });
    println!("{out}");
    Ok(())
}
