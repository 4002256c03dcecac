//! `synthsweep plan`, `run` and `status` end to end, as a user runs them: every synthesis
//! kind into Parquet that Rust, polars and pandas read back value for value; plan counts,
//! ids and errors; resume, failures and `--retry-failed`; `kill -9` at random moments and
//! Ctrl-C, each followed by a resume that ends equal to an uninterrupted run; S3 on moto.
//!
//! Everything runs on tiny crops (16 px) of the sample images, a few iterations per task.
use synthsweep_testkit::cli as common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use synthsweep_store::{Dataset, ImageRow, TaskRow, TaskStatus};

fn losses_of(d: &Dataset, id: &str) -> Vec<i64> {
    let mut its: Vec<i64> = d
        .losses
        .iter()
        .filter(|l| l.task_id == id)
        .map(|l| l.iteration)
        .collect();
    its.sort();
    its
}

fn images_of<'a>(d: &'a Dataset, id: &str, role: &str) -> Vec<&'a ImageRow> {
    let mut v: Vec<&ImageRow> = d
        .images
        .iter()
        .filter(|i| i.task_id == id && i.role == role)
        .collect();
    v.sort_by_key(|i| i.index);
    v
}

/// Every image row of a task is a gray `size`-px image with its pixels and a PNG; a
/// metamer's representation error has the model's output shape (its own pixels and PNG).
fn assert_shapes(d: &Dataset, id: &str, size: i32) {
    for i in d.images.iter().filter(|i| i.task_id == id) {
        if i.role == "representation_error" {
            assert_eq!(
                i.pixels.as_ref().map(Vec::len),
                Some((i.channels * i.height * i.width) as usize)
            );
            assert!(i.png.as_ref().is_some_and(|p| p.starts_with(b"\x89PNG")));
            continue;
        }
        assert_eq!(
            (i.channels, i.height, i.width),
            (1, size, size),
            "{} {}",
            i.role,
            i.index
        );
        assert_eq!(
            i.pixels.as_ref().map(Vec::len),
            Some((size * size) as usize)
        );
        assert!(i.png.as_ref().is_some_and(|p| p.starts_with(b"\x89PNG")));
    }
}

/// Losses are recorded at iterations 0..n, one row each.
fn assert_loss_iterations(d: &Dataset, id: &str, n: i64) {
    assert_eq!(
        losses_of(d, id),
        (0..n).collect::<Vec<_>>(),
        "loss iterations of {id}"
    );
}

fn all_done(d: &Dataset, n: usize) {
    assert_eq!(
        d.tasks.len(),
        n,
        "{:?}",
        d.tasks.iter().map(|t| &t.error).collect::<Vec<_>>()
    );
    for t in &d.tasks {
        assert_eq!(t.status, TaskStatus::Done, "{}: {:?}", t.task_id, t.error);
        assert!(t.error.is_none());
        assert_eq!(t.device, "cpu");
    }
    assert_consistent(d);
}

const MAD: &str = r#"
name = "e2e-mad"
synth = "mad"
[params]
image = "images/a.pgm"
max_iter = 4
initial_noise = 0.1
store_progress = 2
optimizer = { name = "adam", lr = 0.01 }
[grid]
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#;

const EIGEN: &str = r#"
name = "e2e-eigen"
synth = "eigendistortion"
[params]
image = "images/a.pgm"
model = { name = "gaussian", kernel_size = 5 }
k = 2
max_iter = 5
p = 2
q = 1
[grid]
method = ["exact", "power", "randomized_svd"]
"#;

const METAMER: &str = r#"
name = "e2e-metamer"
synth = "metamer"
[params]
max_iter = 5
store_progress = 2
optimizer = { name = "adam", lr = 0.01 }
[grid]
image = "images"
model = [{ name = "gaussian", kernel_size = 5 }, { name = "center_surround", kernel_size = 5 }]
"#;

const CTF: &str = r#"
name = "e2e-ctf"
synth = "metamer_ctf"
[params]
image = "images32/c.pgm"
model = { name = "portilla_simoncelli", n_scales = 2, n_orientations = 2, spatial_corr_width = 3 }
max_iter = 4
change_scale_criterion = 1e-2
ctf_iters_to_check = 2
stop_iters_to_check = 2
optimizer = { name = "adam", lr = 0.02 }
[grid]
coarse_to_fine = ["together", "separate"]
"#;

const SIMPLE: &str = r#"
name = "e2e-simple"
synth = "simple_metamer"
repeats = 2
[params]
image = "images/b.pgm"
model = { name = "gaussian", kernel_size = 5 }
max_iter = 4
optimizer = { name = "adam", lr = 0.01 }
"#;

const GEODESIC: &str = r#"
name = "e2e-geodesic"
synth = "geodesic"
[params]
model = { name = "gaussian", kernel_size = 5 }
n_steps = 3
max_iter = 4
stop_iters_to_check = 2
store_progress = 2
optimizer = { name = "adam", lr = 0.001 }
[grid]
pairs = [["images/a.pgm", "images/b.pgm"]]
initial_sequence = ["straight", "bridge"]
"#;

const SCORE: &str = r#"
name = "e2e-score"
synth = "score"
[grid]
image_a = "images/*.pgm"
image_b = "images/*.pgm"
metric = ["mse", "ssim_distance"]
[[exclude]]
same = ["image_a", "image_b"]
"#;

fn check_mad(d: &Dataset) {
    all_done(d, 4);
    let minmax: BTreeSet<_> = d.tasks.iter().map(|t| t.minmax.clone().unwrap()).collect();
    assert_eq!(
        minmax,
        BTreeSet::from(["max".to_string(), "min".to_string()])
    );
    for t in &d.tasks {
        assert_eq!(t.synth, "mad");
        assert!(t.optimized_metric.is_some() && t.reference_metric.is_some());
        assert_ne!(t.optimized_metric, t.reference_metric);
        let n = t.iterations;
        assert!((1..=4).contains(&n), "{n}");
        // One row per step plus the final image's row.
        assert_loss_iterations(d, &t.task_id, n + 1);
        for l in d.losses.iter().filter(|l| l.task_id == t.task_id) {
            assert!(l.loss.is_finite());
            assert!(l.optimized_metric_loss.is_some() && l.reference_metric_loss.is_some());
        }
        // Input and final images have no iteration; snapshots do.
        let init = images_of(d, &t.task_id, "initial_image");
        assert_eq!((init.len(), init[0].iteration), (1, None));
        let mad = images_of(d, &t.task_id, "mad_image");
        assert_eq!((mad.len(), mad[0].iteration), (1, None));
        // The λ used (chosen from the initial image: initial_noise > 0) and the final
        // objective, which is the loss row of the final image.
        let lambda = t.metric_tradeoff_lambda.expect("MAD records its lambda");
        assert!(lambda.is_finite() && lambda > 0.0, "{lambda}");
        let last = d
            .losses
            .iter()
            .find(|l| l.task_id == t.task_id && l.iteration == n)
            .unwrap();
        assert_eq!(t.final_loss, Some(last.loss));
        assert!(t.jerkiness.is_none() && t.power_iterations_top.is_none());
        let saved = images_of(d, &t.task_id, "saved");
        assert!(!saved.is_empty());
        for s in saved {
            assert_eq!(s.iteration, Some(s.index * 2), "saved every 2 iterations");
        }
        assert_shapes(d, &t.task_id, 16);
        assert!(t.model.is_none());
    }
    assert!(d.eigen.is_empty() && d.scores.is_empty());
}

fn check_eigen(d: &Dataset) {
    all_done(d, 3);
    let method = |t: &TaskRow| {
        serde_json::from_str::<Value>(&t.params).unwrap()["params"]["method"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for t in &d.tasks {
        let mut eig: Vec<(i64, f64)> = d
            .eigen
            .iter()
            .filter(|e| e.task_id == t.task_id)
            .map(|e| (e.eigenindex, e.eigenvalue))
            .collect();
        eig.sort_by_key(|e| e.0);
        let imgs = images_of(d, &t.task_id, "eigendistortion");
        match method(t).as_str() {
            "exact" => {
                // A 16x16 image: the whole spectrum, largest first; the first and last 4
                // eigendistortions as images.
                assert_eq!(eig.len(), 256);
                assert_eq!(
                    eig.iter().map(|e| e.0).collect::<Vec<_>>(),
                    (0..256).collect::<Vec<_>>()
                );
                assert!(eig.windows(2).all(|w| w[0].1 >= w[1].1), "not sorted");
                assert!(eig[0].1 > 0.0 && eig[255].1 > -1e-5);
                let idx: Vec<i64> = imgs.iter().map(|i| i.index).collect();
                assert_eq!(idx, vec![0, 1, 2, 3, 252, 253, 254, 255]);
            }
            "power" => {
                // k = 2 largest and k = 2 smallest.
                assert_eq!(
                    eig.iter().map(|e| e.0).collect::<Vec<_>>(),
                    vec![0, 1, 254, 255]
                );
                assert_eq!(imgs.len(), 4);
                let (top, bottom) = (
                    t.power_iterations_top.unwrap(),
                    t.power_iterations_bottom.unwrap(),
                );
                assert!(top >= 1 && bottom >= 1, "{top} {bottom}");
                assert_eq!(top + bottom, t.iterations);
            }
            "randomized_svd" => {
                assert_eq!(eig.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 1]);
                assert_eq!(imgs.len(), 2);
            }
            m => panic!("method {m}"),
        }
        if method(t) != "power" {
            assert!(t.power_iterations_top.is_none() && t.power_iterations_bottom.is_none());
        }
        assert!(t.final_loss.is_none() && t.metric_tradeoff_lambda.is_none());
        for i in &imgs {
            assert!(eig.iter().any(|e| e.0 == i.index));
            assert_eq!(i.iteration, None);
            let norm: f64 = i
                .pixels
                .as_ref()
                .unwrap()
                .iter()
                .map(|&x| (x as f64).powi(2))
                .sum();
            assert!((norm - 1.0).abs() < 1e-3, "eigendistortion norm^2 {norm}");
        }
        assert_shapes(d, &t.task_id, 16);
        assert!(t.model.as_deref().unwrap().contains("gaussian"));
    }
    assert!(d.losses.is_empty() && d.scores.is_empty());
}

fn check_metamer(d: &Dataset, n_tasks: usize, size: i32, saved_every: Option<i64>) {
    all_done(d, n_tasks);
    for t in &d.tasks {
        let n = t.iterations;
        assert!(n >= 1);
        assert_loss_iterations(d, &t.task_id, n);
        let init = images_of(d, &t.task_id, "initial_image");
        assert_eq!((init.len(), init[0].iteration), (1, None));
        let m = images_of(d, &t.task_id, "metamer");
        assert_eq!((m.len(), m[0].iteration), (1, None));
        let last = d
            .losses
            .iter()
            .filter(|l| l.task_id == t.task_id)
            .max_by_key(|l| l.iteration)
            .unwrap();
        // The objective after the last step: finite, and no more than the last recorded
        // loss by much (the last step lowered it or kept it about equal).
        let fin = t.final_loss.expect("metamers record their final objective");
        assert!(fin.is_finite() && fin >= 0.0, "{fin}");
        assert!(fin <= last.loss * 1.5 + 1e-12, "{fin} vs {}", last.loss);
        assert!(t.metric_tradeoff_lambda.is_none() && t.jerkiness.is_none());
        let mut rows: Vec<_> = d.losses.iter().filter(|l| l.task_id == t.task_id).collect();
        rows.sort_by_key(|l| l.iteration);
        if t.synth == "metamer_ctf" {
            // Every iteration names its scale and its scale-restricted loss; a scale, once
            // left, does not come back (coarse to fine).
            assert!(rows
                .iter()
                .all(|l| l.scale.is_some() && l.scale_loss.is_some()));
            let mut order: Vec<&str> = rows.iter().map(|l| l.scale.as_deref().unwrap()).collect();
            order.dedup();
            let distinct: BTreeSet<&str> = order.iter().copied().collect();
            assert_eq!(order.len(), distinct.len(), "scales in blocks: {order:?}");
        } else {
            assert!(rows
                .iter()
                .all(|l| l.scale.is_none() && l.scale_loss.is_none()));
        }
        let saved = images_of(d, &t.task_id, "saved");
        match saved_every {
            Some(e) => {
                assert!(!saved.is_empty());
                for s in saved {
                    assert_eq!(s.iteration, Some(s.index * e));
                }
            }
            None => assert!(saved.is_empty()),
        }
        assert_shapes(d, &t.task_id, size);
    }
    assert!(d.eigen.is_empty() && d.scores.is_empty());
}

fn check_simple(d: &Dataset) {
    all_done(d, 2);
    let seeds: BTreeSet<i64> = d.tasks.iter().map(|t| t.seed).collect();
    assert_eq!(seeds, BTreeSet::from([0, 1]));
    for t in &d.tasks {
        assert_eq!(t.iterations, 4);
        assert_loss_iterations(d, &t.task_id, 4);
        let m = images_of(d, &t.task_id, "metamer");
        assert_eq!(m.len(), 1);
        let init = images_of(d, &t.task_id, "initial_image");
        assert_eq!((init.len(), init[0].iteration), (1, None));
        assert_ne!(
            init[0].pixels, m[0].pixels,
            "the metamer moved from its start"
        );
        assert_shapes(d, &t.task_id, 16);
    }
    let m: Vec<_> = d
        .tasks
        .iter()
        .map(|t| &images_of(d, &t.task_id, "metamer")[0].pixels)
        .collect();
    assert_ne!(m[0], m[1], "two seeds, two metamers");
}

fn check_geodesic(d: &Dataset, a: &[f32], b: &[f32]) {
    all_done(d, 2);
    for t in &d.tasks {
        assert_eq!(t.image.as_deref(), Some("images/a.pgm -> images/b.pgm"));
        assert_loss_iterations(d, &t.task_id, t.iterations);
        let frames = images_of(d, &t.task_id, "geodesic_frame");
        assert_eq!(
            frames.iter().map(|f| f.index).collect::<Vec<_>>(),
            vec![0, 1, 2, 3]
        );
        // The end points are the two images, exactly.
        assert_eq!(frames[0].pixels.as_deref(), Some(a));
        assert_eq!(frames[3].pixels.as_deref(), Some(b));
        assert_ne!(frames[1].pixels.as_deref(), Some(a));
        assert!(frames.iter().all(|f| f.iteration.is_none()), "final frames");
        // The initial sequence, frame by frame: same end points, other interior frames.
        let initial = images_of(d, &t.task_id, "initial_image");
        assert_eq!(initial.len(), 4);
        assert_eq!(initial[0].pixels, frames[0].pixels);
        assert_eq!(initial[3].pixels, frames[3].pixels);
        assert_ne!(initial[1].pixels, frames[1].pixels, "the geodesic moved");
        let energy = t.final_loss.expect("geodesic records its final energy");
        let jerk = t.jerkiness.expect("geodesic records its jerkiness");
        assert!(energy.is_finite() && energy >= 0.0, "{energy}");
        assert!(jerk.is_finite() && jerk >= 0.0, "{jerk}");
        assert_shapes(d, &t.task_id, 16);
        check_geodesic_records(d, t, a, b);
    }
}

/// What the tables hold of a geodesic task equals what the synthesis itself gives, run here
/// with the spec's parameters: losses, the `store_progress` records (step_energy and
/// dev_from_line, on the rows of iterations 0 and 2) and the per-frame jerkiness.
fn check_geodesic_records(d: &Dataset, t: &TaskRow, a: &[f32], b: &[f32]) {
    use synthsweep_synth::{
        Geodesic, GeodesicOptions, GeodesicSynthesizeOptions, InitialSequence, OptimizerConfig,
        StoreProgress,
    };
    let bridge = t.params.contains("\"bridge\"");
    assert!(bridge || t.params.contains("\"straight\""), "{}", t.params);
    let img = |p: &[f32]| tch::Tensor::from_slice(p).reshape([1, 1, 16, 16]);
    let model =
        synthsweep_models::build_model(&serde_json::json!({"name": "gaussian", "kernel_size": 5}))
            .unwrap();
    let opts = GeodesicOptions {
        n_steps: 3,
        initial_sequence: if bridge {
            InitialSequence::Bridge
        } else {
            InitialSequence::Straight
        },
        seed: Some(t.seed),
        ..Default::default()
    };
    let mut g = Geodesic::new(&img(a), &img(b), model.as_ref(), opts).unwrap();
    g.synthesize(&GeodesicSynthesizeOptions {
        max_iter: 4,
        optimizer: Some(OptimizerConfig::adam_with_lr(0.001)),
        store_progress: StoreProgress::Every(2),
        stop_iters_to_check: 2,
        ..Default::default()
    })
    .unwrap();
    let close = |what: &str, got: &[f64], want: &tch::Tensor| {
        let want: Vec<f64> = Vec::try_from(want.to_kind(tch::Kind::Double).reshape([-1])).unwrap();
        assert_eq!(got.len(), want.len(), "{what}: {got:?} vs {want:?}");
        for (x, y) in got.iter().zip(&want) {
            assert!(
                (x - y).abs() <= 1e-6 * y.abs().max(1e-6),
                "{what}: {got:?} vs {want:?}"
            );
        }
    };
    let mut rows: Vec<_> = d.losses.iter().filter(|l| l.task_id == t.task_id).collect();
    rows.sort_by_key(|l| l.iteration);
    let losses: Vec<f64> = rows.iter().map(|l| l.loss).collect();
    close("loss", &losses, &tch::Tensor::from_slice(g.losses()));
    let (energy, dev) = (g.step_energy(), g.dev_from_line());
    assert_eq!(energy.size(), [2, 3], "records at iterations 0 and 2");
    for l in &rows {
        if l.iteration % 2 != 0 {
            assert!(
                l.step_energy.is_none()
                    && l.dist_along_line.is_none()
                    && l.dist_from_line.is_none(),
                "iteration {} was not recorded",
                l.iteration
            );
            continue;
        }
        let k = l.iteration / 2;
        let at = format!("iteration {}", l.iteration);
        close(&at, l.step_energy.as_deref().unwrap(), &energy.get(k));
        let (along, from) = (dev.get(k).select(1, 0), dev.get(k).select(1, 1));
        close(&at, l.dist_along_line.as_deref().unwrap(), &along);
        close(&at, l.dist_from_line.as_deref().unwrap(), &from);
    }
    let frames = g.calculate_jerkiness(None).unwrap();
    close("jerkiness", t.jerkiness_frames.as_deref().unwrap(), &frames);
    let sum: f64 = t.jerkiness_frames.as_ref().unwrap().iter().sum();
    assert_eq!(t.jerkiness, Some(sum));
}

fn check_score(d: &Dataset, a: &[f32], b: &[f32]) {
    all_done(d, 4);
    assert!(d.losses.is_empty() && d.images.is_empty() && d.eigen.is_empty());
    assert_eq!(d.scores.len(), 4);
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    let mut by_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in &d.scores {
        let t = d.tasks.iter().find(|t| t.task_id == s.task_id).unwrap();
        assert_eq!(
            t.image.as_deref(),
            Some(format!("{} -> {}", s.image_a, s.image_b).as_str())
        );
        assert_eq!(t.optimized_metric.as_deref(), Some(s.metric.as_str()));
        let name = serde_json::from_str::<Value>(&s.metric).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string();
        by_metric.entry(name).or_default().push(s.value);
    }
    let m = &by_metric["mse"];
    assert!(
        (m[0] - mse).abs() < 1e-6 * mse.max(1e-3),
        "mse {} vs {mse}",
        m[0]
    );
    assert_eq!(m[0], m[1], "mse is symmetric");
    let s = &by_metric["ssim_distance"];
    assert!(s.iter().all(|v| *v > 0.0 && *v <= 2.0), "{s:?}");
}

#[test]
fn every_synthesis_kind_runs_into_tables_that_rust_polars_and_pandas_read_alike() {
    let sb = Sandbox::new().with_images(16);
    sb.write("images32/c.pgm", crop_pgm("reptile_skin_64.pgm", 8, 8, 32));
    let kinds = [
        ("mad", MAD),
        ("eigendistortion", EIGEN),
        ("metamer", METAMER),
        ("metamer_ctf", CTF),
        ("simple_metamer", SIMPLE),
        ("geodesic", GEODESIC),
        ("score", SCORE),
    ];
    // The runs are separate processes; run them side by side.
    let outputs: Vec<(String, std::process::Output)> = std::thread::scope(|s| {
        let handles: Vec<_> = kinds
            .iter()
            .map(|(kind, spec)| {
                let spec = sb.write(&format!("{kind}.toml"), spec);
                let root = sb.root(&format!("out-{kind}"));
                s.spawn(move || (root.clone(), run(&spec, &root, &["--workers", "1"])))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let a = pgm_pixels(&std::fs::read(sb.path("images/a.pgm")).unwrap());
    let b = pgm_pixels(&std::fs::read(sb.path("images/b.pgm")).unwrap());
    let mut for_python = Vec::new();
    for ((kind, _), (root, out)) in kinds.iter().zip(&outputs) {
        assert_code(out, 0);
        assert!(
            stdout(out).contains("done, 0 failed in this run"),
            "{kind}: {}",
            text(out)
        );
        let d = read_local(root);
        assert!(d.tasks.iter().all(|t| t.synth == *kind), "{kind}");
        match *kind {
            "mad" => check_mad(&d),
            "eigendistortion" => check_eigen(&d),
            "metamer" => check_metamer(&d, 4, 16, Some(2)),
            "metamer_ctf" => check_metamer(&d, 2, 32, None),
            "simple_metamer" => check_simple(&d),
            "geodesic" => check_geodesic(&d, &a, &b),
            "score" => check_score(&d, &a, &b),
            _ => unreachable!(),
        }
        let status = synthsweep(&["status", root]);
        assert_code(&status, 0);
        let n = d.tasks.len();
        assert!(
            stdout(&status).contains(&format!("{n} tasks committed: {n} done, 0 failed")),
            "{}",
            text(&status)
        );
        for_python.push((root.clone(), expectations(&d)));
    }
    let py = python_check(&for_python, &[], sb.dir.path());
    assert!(py.contains(" 0 failed"), "{py}");
    println!("{py}");
}

// ---- plan -------------------------------------------------------------------------------

fn plan_json(spec: &Path) -> Vec<Value> {
    let o = synthsweep(&["plan", spec.to_str().unwrap(), "--json"]);
    assert_code(&o, 0);
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn ids(tasks: &[Value]) -> Vec<String> {
    tasks
        .iter()
        .map(|t| t["task_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn plan_counts_axes_and_exclusions_and_lists_tasks_with_stable_ids() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("mad.toml", MAD);
    let o = synthsweep(&["plan", spec.to_str().unwrap(), "--no-calibrate"]);
    assert_code(&o, 0);
    let s = stdout(&o);
    assert!(s.contains("e2e-mad (mad): 4 tasks, 1 image"), "{s}");
    assert!(
        s.contains("grid: optimized_metric 2 x reference_metric 2 x minmax 2 = 8"),
        "{s}"
    );
    assert!(
        s.contains("excluded 4 by same(optimized_metric, reference_metric) (exclude[0])"),
        "{s}"
    );
    assert!(s.contains("estimate: none"), "{s}");

    let tasks = plan_json(&spec);
    assert_eq!(tasks.len(), 4);
    let first = ids(&tasks);
    assert!(first
        .iter()
        .all(|id| id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit())));
    assert_eq!(first.iter().collect::<BTreeSet<_>>().len(), 4);
    assert!(
        tasks.iter().all(|t| t["coords"]["minmax"].is_string()),
        "{:?}",
        tasks[0]
    );
    assert_eq!(
        ids(&plan_json(&spec)),
        first,
        "a second invocation, the same ids"
    );
    // The sweep's name is not part of a task's identity.
    let renamed = sb.write("renamed.toml", MAD.replace("e2e-mad", "other-name"));
    assert_eq!(ids(&plan_json(&renamed)), first);
    // A parameter changes every id.
    let changed = sb.write("iters.toml", MAD.replace("max_iter = 4", "max_iter = 5"));
    let other = ids(&plan_json(&changed));
    assert!(other.iter().all(|id| !first.contains(id)));

    // Two images: changing one image's bytes changes the ids of its tasks only.
    let spec = sb.write("metamer.toml", METAMER);
    let before = plan_json(&spec);
    assert_eq!(before.len(), 4);
    sb.write("images/b.pgm", crop_pgm("curie_64.pgm", 25, 20, 16));
    let after = plan_json(&spec);
    let uses_b = |t: &Value| t.to_string().contains("b.pgm");
    for (x, y) in before.iter().zip(&after) {
        assert_eq!(uses_b(x), uses_b(y));
        if uses_b(x) {
            assert_ne!(x["task_id"], y["task_id"]);
        } else {
            assert_eq!(x["task_id"], y["task_id"]);
        }
    }
    assert_eq!(before.iter().filter(|t| uses_b(t)).count(), 2);
}

/// 16x16 8-bit PGM whose pixels are `f(0), f(1), ..., f(255)` row by row.
fn pgm_16(f: impl Fn(u8) -> u8) -> Vec<u8> {
    let mut b = b"P5\n16 16\n255\n".to_vec();
    b.extend((0..=255u8).map(f));
    b
}

#[test]
fn literal_paths_and_as_gray_reach_the_computation() {
    let sb = Sandbox::new();
    // A file whose name is also a glob (`[1]` would match `a1.pgm`): it is that file.
    sb.write("imgs/a[1].pgm", pgm_16(|k| k));
    sb.write("imgs/a1.pgm", pgm_16(|k| k / 2));
    sb.write("imgs/b.pgm", pgm_16(|k| 255 - k));
    let literal = sb.write(
        "literal.toml",
        "name = \"lit\"\nsynth = \"score\"\n[params]\nimage_a = \"imgs/a[1].pgm\"\nimage_b = \"imgs/b.pgm\"\nmetric = \"mse\"\n",
    );
    assert_eq!(plan_json(&literal).len(), 1);
    // Colour files loaded both ways (tests/data of the models crate, plenoptic's values).
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tests/data/load_images");
    for f in ["rgb8.png", "rgb16.png"] {
        sb.write(&format!("color/{f}"), std::fs::read(data.join(f)).unwrap());
    }
    let gray = sb.write(
        "gray.toml",
        "name = \"gray\"\nsynth = \"score\"\n[params]\nimage_a = \"color/rgb8.png\"\nimage_b = \"color/rgb16.png\"\nmetric = \"mse\"\n[grid]\nas_gray = [true, false]\n",
    );
    let (lit_root, gray_root) = (sb.root("out-literal"), sb.root("out-gray"));
    let (o1, o2) = std::thread::scope(|s| {
        let a = s.spawn(|| run(&literal, &lit_root, &["--workers", "1"]));
        let b = s.spawn(|| run(&gray, &gray_root, &["--workers", "1"]));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_code(&o1, 0);
    assert_code(&o2, 0);
    let d = read_local(&lit_root);
    assert_eq!(d.scores.len(), 1);
    assert_eq!(d.scores[0].image_a, "imgs/a[1].pgm");
    // mean(((k - (255 - k)) / 255)^2) over k = 0..255: plenoptic 1.1.0's mse of the two files
    // loaded by its load_images (scripts/gen_literal_path_mse.py prints 0.33594775).
    assert!(
        (d.scores[0].value - 0.33594775).abs() < 1e-7,
        "{}",
        d.scores[0].value
    );

    let expected: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_npz(data.join("expected.npz"))
            .unwrap()
            .into_iter()
            .collect();
    let d = read_local(&gray_root);
    assert_eq!(d.tasks.len(), 2);
    for t in &d.tasks {
        let as_gray = t.params.contains(r#""as_gray":true"#);
        assert!(
            as_gray || t.params.contains(r#""as_gray":false"#),
            "{}",
            t.params
        );
        let suffix = if as_gray { "gray" } else { "color" };
        let (a, b) = (
            &expected[&format!("rgb8_png__{suffix}")],
            &expected[&format!("rgb16_png__{suffix}")],
        );
        // plenoptic's mse per channel, averaged over channels (equal sizes: over all values).
        let want = (a - b).square().mean(tch::Kind::Double).double_value(&[]);
        let got = d
            .scores
            .iter()
            .find(|s| s.task_id == t.task_id)
            .unwrap()
            .value;
        assert!(
            (got - want).abs() < 1e-6 * want,
            "as_gray {as_gray}: {got} vs plenoptic's {want}"
        );
    }
}

#[test]
fn bad_specs_exit_2_naming_the_file_and_key() {
    let sb = Sandbox::new().with_images(16);
    let cases = [
        (
            "typo.toml",
            MAD.replace("[grid]", "[gird]"),
            vec!["typo.toml", "gird", "grid"],
        ),
        (
            "param.toml",
            MAD.replace("max_iter = 4", "max_iters = 4"),
            vec!["param.toml", "params.max_iters"],
        ),
        (
            "metric.toml",
            MAD.replace(
                r#"optimized_metric = ["mse""#,
                r#"optimized_metric = ["msee""#,
            ),
            vec!["metric.toml", "grid.optimized_metric", "msee"],
        ),
        (
            "glob.toml",
            SCORE.replace(r#"image_a = "images/*.pgm""#, r#"image_a = "images/*.png""#),
            vec!["glob.toml", "image_a", "images/*.png"],
        ),
    ];
    for (name, text, needles) in &cases {
        let spec = sb.write(name, text);
        assert_bad_input(&synthsweep(&["plan", spec.to_str().unwrap()]), needles);
        let root = sb.root(&format!("out-{name}"));
        assert_bad_input(&run(&spec, &root, &[]), needles);
        assert!(
            !Path::new(&root).exists(),
            "{name}: bad input must not create {root}"
        );
    }
    let missing = sb.path("nowhere/missing.toml");
    let o = synthsweep(&["plan", missing.to_str().unwrap()]);
    assert_bad_input(&o, &["missing.toml"]);
    let o = synthsweep(&["status", sb.root("no-such-root").as_str()]);
    assert_bad_input(&o, &["no-such-root"]);
}

// ---- resume, failures, retry ------------------------------------------------------------

fn tasks_files(root: &str) -> Vec<String> {
    store_common::table_files(Path::new(root), "tasks")
}

const SEEDS: &str = r#"
name = "e2e-resume"
synth = "metamer"
[params]
model = { name = "gaussian", kernel_size = 5 }
max_iter = 3
[grid]
image = "images"
seed = [0, 1]
"#;

#[test]
fn a_rerun_runs_nothing_and_a_new_grid_value_runs_only_its_tasks() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("seeds.toml", SEEDS);
    let root = sb.root("out");
    let o = run(&spec, &root, &[]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("4 tasks, 0 already committed"),
        "{}",
        text(&o)
    );
    let first = read_local(&root);
    all_done(&first, 4);
    let files = tasks_files(&root);

    let o = run(&spec, &root, &[]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("4 already committed"), "{}", text(&o));
    assert!(stderr(&o).contains(" 0 to run"), "{}", text(&o));
    assert_eq!(tasks_files(&root), files, "nothing committed by a re-run");
    assert_eq!(canonical(&read_local(&root)), canonical(&first));

    let spec = sb.write(
        "seeds.toml",
        SEEDS.replace("seed = [0, 1]", "seed = [0, 1, 2]"),
    );
    let o = run(&spec, &root, &[]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("6 tasks, 4 already committed"),
        "{}",
        text(&o)
    );
    assert!(stderr(&o).contains(" 2 to run"), "{}", text(&o));
    let d = read_local(&root);
    all_done(&d, 6);
    let old_run = &first.tasks[0].run_id;
    for t in &d.tasks {
        // The first four are the same rows as before; only seed 2 ran again.
        assert_eq!(&t.run_id == old_run, t.seed < 2, "seed {}", t.seed);
        if t.seed < 2 {
            assert!(first.tasks.contains(t));
        }
    }
}

/// Saves a TorchScript module at `path`: a working one (x -> 2x), or a broken one whose
/// output is NaN (x -> x·NaN): it takes every shape, so planning accepts it, and only
/// running shows the failure (the loss is NaN), as a user's model file may do.
fn save_torchscript(path: &Path, working: bool) {
    let x = tch::Tensor::zeros([1, 1, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
    let m = tch::CModule::create_by_tracing("Net", "forward", &[x], &mut |xs| {
        if working {
            vec![&xs[0] * 2.0]
        } else {
            vec![&xs[0] * f64::NAN]
        }
    })
    .unwrap();
    m.save(path).unwrap();
}

#[test]
fn a_failing_task_is_recorded_failed_and_retry_failed_runs_it_again() {
    let sb = Sandbox::new().with_images(16);
    let net = sb.path("net.pt");
    save_torchscript(&net, false);
    let spec = sb.write(
        "fail.toml",
        format!(
            r#"
name = "e2e-fail"
synth = "metamer"
[params]
max_iter = 3
[grid]
image = ["images/a.pgm", "images/b.pgm"]
model = [{{ name = "gaussian", kernel_size = 11 }}, {{ name = "torchscript", path = "{}" }}]
"#,
            net.display()
        ),
    );
    let root = sb.root("out");
    let is_ts = |t: &TaskRow| t.model.as_deref().unwrap().contains("torchscript");

    // The TorchScript module's output is NaN: its 2 tasks fail at their first iteration.
    // (What planning can see, such as an image too small for a kernel, never runs: see
    // tests/plan_checks.rs.)
    let o = run(&spec, &root, &[]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("2 task(s) failed"), "{}", text(&o));
    let d = read_local(&root);
    assert_consistent(&d);
    assert_eq!(d.tasks.len(), 4);
    for t in &d.tasks {
        let fails = is_ts(t);
        assert_eq!(t.status == TaskStatus::Failed, fails, "{t:?}");
        if !fails {
            assert!(t.error.is_none());
            assert_loss_iterations(&d, &t.task_id, t.iterations);
            continue;
        }
        let err = t.error.as_deref().unwrap();
        assert!(err.contains("NaN"), "{err}");
        // A failed task has no data rows.
        assert!(losses_of(&d, &t.task_id).is_empty());
        assert!(d.images.iter().all(|i| i.task_id != t.task_id));
    }
    let status = synthsweep(&["status", &root]);
    assert_code(&status, 0);
    let st = stdout(&status);
    assert!(st.contains("4 tasks committed: 2 done, 2 failed"), "{st}");
    assert!(st.contains("NaN"), "{st}");

    // A plain re-run leaves failed tasks alone, and says so.
    let o = run(&spec, &root, &[]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains(" 0 to run"), "{}", text(&o));
    assert!(
        stderr(&o).contains("2 task(s) of this sweep failed"),
        "{}",
        text(&o)
    );
    assert!(stderr(&o).contains("--retry-failed"), "{}", text(&o));
    assert_eq!(read_local(&root).tasks, d.tasks);

    // --retry-failed runs the 2 failed tasks again (same inputs: they fail again, each still
    // listed once); the done tasks are untouched.
    let o = run(&spec, &root, &["--retry-failed"]);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("retrying 2 failed task(s)"),
        "{}",
        text(&o)
    );
    assert!(
        stdout(&o).contains("(0 done, 2 failed in this run)"),
        "{}",
        text(&o)
    );
    let retried = read_local(&root);
    assert_consistent(&retried);
    assert_eq!(retried.tasks.len(), 4, "each task once");
    for t in &retried.tasks {
        let old = d.tasks.iter().find(|o| o.task_id == t.task_id).unwrap();
        if t.status == TaskStatus::Done {
            assert_eq!(t, old, "the done tasks are untouched");
        } else {
            assert_ne!(t.run_id, old.run_id, "ran again");
            assert_eq!(t.error, old.error);
        }
    }

    // Fixing the model file changes its content, hence the ids of the TorchScript tasks
    // (a task is its inputs' content, not their paths): a plain run runs those 2 new tasks,
    // which now succeed; the rows of the old file's tasks stay as they were.
    save_torchscript(&net, true);
    let o = run(&spec, &root, &[]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains(" 2 to run"), "{}", text(&o));
    assert!(
        stdout(&o).contains("(2 done, 0 failed in this run)"),
        "{}",
        text(&o)
    );
    let after = read_local(&root);
    assert_consistent(&after);
    assert_eq!(after.tasks.len(), 6);
    let ids_before: BTreeSet<_> = retried.tasks.iter().map(|t| &t.task_id).collect();
    let new: Vec<_> = after
        .tasks
        .iter()
        .filter(|t| !ids_before.contains(&t.task_id))
        .collect();
    assert_eq!(new.len(), 2);
    for t in new {
        assert!(is_ts(t), "{t:?}");
        assert_eq!(t.status, TaskStatus::Done, "{t:?}");
        assert_loss_iterations(&after, &t.task_id, t.iterations);
        assert_eq!(images_of(&after, &t.task_id, "metamer").len(), 1);
    }
    for t in &retried.tasks {
        assert!(after.tasks.contains(t), "old rows unchanged: {t:?}");
    }
    let py = python_check(&[(root.clone(), expectations(&after))], &[], sb.dir.path());
    assert!(py.contains(" 0 failed"), "{py}");
}

// ---- crash safety -----------------------------------------------------------------------

/// A small deterministic generator (xorshift64*) for the kill moments.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

const MANY: &str = r#"
name = "e2e-many"
synth = "metamer"
repeats = 10
[params]
model = { name = "gaussian", kernel_size = 5 }
max_iter = 8
store_progress = 3
[grid]
image = "images"
"#;

/// Committed tasks are complete: every done task has all its rows.
fn assert_complete(d: &Dataset) {
    assert_consistent(d);
    for t in &d.tasks {
        assert_eq!(t.status, TaskStatus::Done, "{:?}", t.error);
        assert_loss_iterations(d, &t.task_id, t.iterations);
        assert_eq!(images_of(d, &t.task_id, "metamer").len(), 1);
        assert_eq!(images_of(d, &t.task_id, "initial_image").len(), 1);
    }
}

/// Data files of batches that have a tasks file, and nothing else under the table folders.
fn assert_nothing_half_visible(root: &str) {
    let root = Path::new(root);
    let batch = |f: &str| {
        f.strip_prefix("part-")
            .unwrap()
            .strip_suffix(".parquet")
            .unwrap()
            .to_string()
    };
    let committed: BTreeSet<String> = store_common::table_files(root, "tasks")
        .iter()
        .map(|f| batch(f))
        .collect();
    for t in ["losses", "eigen", "images", "scores"] {
        for f in store_common::table_files(root, t) {
            assert!(committed.contains(&batch(&f)), "{t}/{f} has no tasks file");
        }
    }
    let staging = store_common::files_under(&root.join("_staging"));
    assert!(staging.is_empty(), "left in _staging: {staging:?}");
}

#[test]
fn kill_9_at_random_moments_then_resume_ends_equal_to_an_uninterrupted_run() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("many.toml", MANY);
    let seed = std::env::var("E2E_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("kill moments from seed {seed} (rerun with E2E_KILL_SEED={seed})");
    let mut rng = Rng(seed);

    let reference = sb.root("reference");
    let started = Instant::now();
    let o = run(&spec, &reference, &["--workers", "1", "--threads", "1"]);
    // The first kill falls within the first third of an uninterrupted one-worker run's
    // time and no later than the killed run's first commit (below), so it lands before the
    // end however fast or busy this machine is.
    let first_kill_ms = (started.elapsed().as_millis() as u64 / 3).max(20);
    assert_code(&o, 0);
    let want = read_local(&reference);
    assert_complete(&want);
    assert_eq!(want.tasks.len(), 20);

    // A killed writer's claims are taken over once its lease expires (crates/store/
    // PROTOCOL.md): a short lease, so each restart picks them up within seconds.
    const LEASE_SECS: &str = "4";
    let root = sb.root("killed");
    let args = [
        "run",
        spec.to_str().unwrap(),
        "--out",
        &root,
        "--workers",
        "2",
        "--threads",
        "1",
        "--batch-tasks",
        "1",
    ];
    let mut kills = 0;
    let mut committed_after = Vec::new();
    for round in 0..6 {
        let mut child = bin()
            .args(args)
            .env("SYNTHSWEEP_LEASE_SECS", LEASE_SECS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The first kill lands anywhere in the start (recovery, planning, first tasks);
        // the others after 1-3 more commits plus a random delay, so that they fall in the
        // middle of the work however fast this machine is.
        let files = tasks_files(&root).len() as u64;
        let target = files + 1 + rng.below(3);
        let extra = Duration::from_millis(rng.below(if round == 0 { first_kill_ms } else { 120 }));
        let deadline = Instant::now() + Duration::from_secs(120);
        while round > 0
            && (tasks_files(&root).len() as u64) < target
            && child.try_wait().unwrap().is_none()
        {
            assert!(Instant::now() < deadline, "no progress in 120 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        // The first kill also lands no later than the first commit: a random delay alone
        // (bounded by the reference run's time) can outlast the whole run when the machine
        // is quieter than it was during the reference run.
        let until = Instant::now() + extra;
        while Instant::now() < until
            && child.try_wait().unwrap().is_none()
            && (round > 0 || tasks_files(&root).len() as u64 <= files)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let finished = child.try_wait().unwrap();
        if finished.is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        let d = read_local(&root);
        assert_complete(&d);
        committed_after.push((extra.as_millis(), d.tasks.len(), status.code()));
        if finished.is_some() {
            assert_eq!(status.code(), Some(0));
            break;
        }
    }
    println!("{kills} kills: (extra delay ms, tasks committed, exit) {committed_after:?}");
    assert!(
        kills > 0,
        "the run ended before the first kill: {committed_after:?}"
    );
    let o = bin()
        .args(args)
        .env("SYNTHSWEEP_LEASE_SECS", LEASE_SECS)
        .output()
        .unwrap();
    assert_code(&o, 0);
    let got = read_local(&root);
    assert_complete(&got);
    assert_nothing_half_visible(&root);
    assert_eq!(
        canonical(&got),
        canonical(&want),
        "killed and resumed != uninterrupted"
    );
}

#[test]
fn ctrl_c_stops_with_130_and_a_rerun_completes_the_rest() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write(
        "many.toml",
        MANY.replace("repeats = 10", "repeats = 20")
            .replace("max_iter = 8", "max_iter = 20"),
    );
    let root = sb.root("out");
    let args = [
        "run",
        spec.to_str().unwrap(),
        "--out",
        &root,
        "--workers",
        "1",
        "--threads",
        "1",
        "--batch-tasks",
        "1",
    ];
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while tasks_files(&root).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its first commit"
        );
        assert!(Instant::now() < deadline, "no commit in 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 130);
    assert!(stderr(&out).contains("interrupted"), "{}", text(&out));
    let d = read_local(&root);
    assert_complete(&d);
    assert_nothing_half_visible(&root);
    let n = d.tasks.len();
    assert!((1..40).contains(&n), "{n} tasks committed");
    println!("interrupted after {n} of 40 tasks");

    // A second Ctrl-C quits at once: still 130, still nothing half-visible to a reader
    // that goes through `tasks` (recovery removes the rest on the next run).
    let mut child = bin()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while tasks_files(&root).len() == n && child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "no commit in 120 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    for _ in 0..2 {
        let _ = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status();
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 130);
    let d2 = read_local(&root);
    assert_complete(&d2);
    let n2 = d2.tasks.len();
    assert!(n2 > n, "{n2} tasks committed after the second run");

    let o = synthsweep(&args);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains(&format!("40 tasks, {n2} already committed")),
        "{}",
        text(&o)
    );
    assert_nothing_half_visible(&root);
    let all = read_local(&root);
    assert_complete(&all);
    assert_eq!(all.tasks.len(), 40);
    for t in &d.tasks {
        assert!(
            all.tasks.contains(t),
            "a committed task was changed by the re-run"
        );
    }
}

// ---- S3 ---------------------------------------------------------------------------------

#[test]
fn s3_run_status_and_rerun_match_the_same_sweep_on_local_disk() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write("seeds.toml", SEEDS);
    let moto = shared_moto();
    moto.create_bucket("e2e");
    let s3_root = "s3://e2e/studies/seeds";
    let o = synthsweep_s3(&[
        "run",
        spec.to_str().unwrap(),
        "--out",
        s3_root,
        "--batch-tasks",
        "3",
    ]);
    assert_code(&o, 0);
    let status = synthsweep_s3(&["status", s3_root]);
    assert_code(&status, 0);
    assert!(
        stdout(&status).contains("4 tasks committed: 4 done, 0 failed"),
        "{}",
        text(&status)
    );

    let local = sb.root("local");
    assert_code(&run(&spec, &local, &[]), 0);
    let on_s3 = read_s3(s3_root);
    all_done(&on_s3, 4);
    assert_eq!(canonical(&on_s3), canonical(&read_local(&local)));
    let keys = moto.keys("e2e", "studies/seeds/");
    assert!(keys.iter().all(|k| !k.contains("_staging")), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.contains("/tasks/")).count(),
        2,
        "{keys:?}"
    );

    let o = synthsweep_s3(&["run", spec.to_str().unwrap(), "--out", s3_root]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("4 already committed") && stderr(&o).contains(" 0 to run"),
        "{}",
        text(&o)
    );
    let again = moto.keys("e2e", "studies/seeds/");
    let data = |ks: &[String]| {
        ks.iter()
            .filter(|k| !k.contains("/_runs/"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(data(&again), data(&keys), "a re-run commits nothing");

    let py = python_check(
        &[(s3_root.to_string(), expectations(&on_s3))],
        &s3_env(),
        sb.dir.path(),
    );
    assert!(py.contains(" 0 failed") && py.contains("pyarrow"), "{py}");
}
