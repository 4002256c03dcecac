//! Everything a spec and its images decide is checked before anything runs: `plan` and `run`
//! refuse a parameter out of its range, a rule between parameters broken in one task, and
//! an image that a model, a metric or its pair cannot take — exit 2, naming the file, the
//! key and what was expected, and `run` writes nothing (issue 9, item 2).
//!
//! No task runs here: each case is one `plan` and one `run` of the binary (16 px images).
use synthsweep_testkit::cli as common;

use common::*;
use std::path::Path;

const METAMER: &str = r#"
name = "checks"
synth = "metamer"
[params]
model = { name = "gaussian", kernel_size = 5 }
max_iter = 3
[grid]
image = "images/*.pgm"
"#;

const MAD: &str = r#"
name = "checks-mad"
synth = "mad"
[params]
optimized_metric = "mse"
reference_metric = "ssim_distance"
minmax = "min"
max_iter = 3
[grid]
image = "images/*.pgm"
"#;

/// A gray 8-bit PGM of `height` rows and `width` columns (a smooth ramp).
fn pgm(height: usize, width: usize) -> Vec<u8> {
    let mut b = format!("P5\n{width} {height}\n255\n").into_bytes();
    for y in 0..height {
        for x in 0..width {
            b.push(((x * 3 + y * 5) % 256) as u8);
        }
    }
    b
}

/// `plan` and `run` both refuse `text` (written as `name`) with exit 2 naming `needles`,
/// and `run` creates no output root.
#[track_caller]
fn refused(sb: &Sandbox, name: &str, text: &str, needles: &[&str]) {
    let spec = sb.write(name, text);
    let mut all = vec![name];
    all.extend_from_slice(needles);
    assert_bad_input(&synthsweep(&["plan", spec.to_str().unwrap()]), &all);
    let root = sb.root(&format!("out-{name}"));
    assert_bad_input(&run(&spec, &root, &[]), &all);
    assert!(
        !Path::new(&root).exists(),
        "{name}: bad input must not create {root}"
    );
}

#[test]
fn parameters_out_of_range_are_refused_before_anything_runs() {
    let sb = Sandbox::new().with_images(16);
    refused(
        &sb,
        "lr.toml",
        &METAMER.replace(
            "max_iter = 3",
            "max_iter = 3\noptimizer = { name = \"adam\", lr = -0.01 }",
        ),
        &["params.optimizer", "optimizer.lr", "-0.01"],
    );
    refused(
        &sb,
        "noise.toml",
        &MAD.replace("max_iter = 3", "max_iter = 3\ninitial_noise = -0.1"),
        &["params.initial_noise", "-0.1"],
    );
    refused(
        &sb,
        "stop.toml",
        &METAMER.replace("max_iter = 3", "max_iter = 3\nstop_iters_to_check = 0"),
        &["params.stop_iters_to_check", "got 0"],
    );
    // An axis value out of range is blamed on the axis, with the task's coordinates.
    refused(
        &sb,
        "axis.toml",
        &format!("{METAMER}range_penalty_lambda = [0.1, -1.0]\n"),
        &["grid.range_penalty_lambda", "-1"],
    );
}

#[test]
fn a_rule_between_parameters_is_checked_in_every_task() {
    let sb = Sandbox::new().with_images(16);
    // MAD without initial noise has no λ to derive (plenoptic divides by the noise's effect):
    // only the tasks with initial_noise = 0 break the rule, and are named.
    refused(
        &sb,
        "lambda.toml",
        &format!("{MAD}initial_noise = [0.1, 0.0]\n"),
        &[
            "grid.initial_noise",
            "metric_tradeoff_lambda",
            "initial_noise = 0",
        ],
    );
    // With λ given for those tasks through a rule, the same grid plans.
    let ok = sb.write(
        "lambda-ok.toml",
        format!(
            "{MAD}initial_noise = [0.1, 0.0]\n[[when]]\nmatch = {{ initial_noise = 0.0 }}\nset = {{ metric_tradeoff_lambda = 1.0 }}\n"
        ),
    );
    let o = synthsweep(&["plan", ok.to_str().unwrap()]);
    assert_code(&o, 0);
}

#[test]
fn images_a_model_metric_or_pair_cannot_take_are_refused_before_anything_runs() {
    let sb = Sandbox::new().with_images(16);
    sb.write("small/tiny.pgm", pgm(8, 8));
    sb.write("odd/wide.pgm", pgm(45, 61));

    // A 31 px kernel on an 8 px image: blamed on the value that varies (the image axis),
    // naming the model.
    refused(
        &sb,
        "kernel.toml",
        &METAMER
            .replace("kernel_size = 5", "kernel_size = 31")
            .replace("images/*.pgm", "small/tiny.pgm"),
        &["grid.image", "tiny.pgm", "gaussian", "kernel 31x31"],
    );
    // A steerable pyramid too high for a 16 px image.
    refused(
        &sb,
        "pyramid.toml",
        &METAMER.replace(
            "{ name = \"gaussian\", kernel_size = 5 }",
            "{ name = \"steerable_pyramid\", height = 5 }",
        ),
        &["grid.image", "images/a.pgm", "steerable_pyramid", "height"],
    );
    // portilla_simoncelli without image_shape on 45x61 pixels.
    refused(
        &sb,
        "ps.toml",
        &METAMER
            .replace(
                "{ name = \"gaussian\", kernel_size = 5 }",
                "{ name = \"portilla_simoncelli\" }",
            )
            .replace("images/*.pgm", "odd/wide.pgm"),
        &["grid.image", "wide.pgm", "1x45x61", "portilla_simoncelli"],
    );
    // Pairs of different sizes: geodesic and score.
    refused(
        &sb,
        "geodesic.toml",
        r#"
name = "checks-geodesic"
synth = "geodesic"
[params]
model = { name = "gaussian", kernel_size = 5 }
n_steps = 3
max_iter = 2
[grid]
pairs = [["images/a.pgm", "small/tiny.pgm"]]
"#,
        &["image_b", "16", "8"],
    );
    refused(
        &sb,
        "score.toml",
        r#"
name = "checks-score"
synth = "score"
[params]
metric = "mse"
image_a = "images/a.pgm"
[grid]
image_b = ["images/b.pgm", "small/tiny.pgm"]
"#,
        &["grid.image_b", "16", "8"],
    );
    // A MAD metric that is not ~0 for identical images (plenoptic's validate_metric), as
    // plenoptic's model_metric with its 1e-10 under the root: every task failed at run time.
    refused(
        &sb,
        "mad.toml",
        r#"
name = "checks-mad"
synth = "mad"
[params]
image = "images/a.pgm"
max_iter = 2
optimized_metric = "mse"
minmax = "min"
[grid]
reference_metric = [{ name = "model_distance", model = { name = "gaussian", kernel_size = 3 } }]
"#,
        &["reference_metric", "model_distance", "5e-7", "epsilon = 0"],
    );
}

/// `run --shard I/N` checks the tasks it runs (and every value once), not the others: a
/// combination that only task 3 has (a 17 px kernel on an 8 px image) stops `plan` and
/// shard 1/2 (tasks 1 and 3) before anything is written, while shard 0/2 (tasks 0 and 2)
/// runs.
#[test]
fn a_shard_checks_the_tasks_it_runs() {
    let sb = Sandbox::new().with_images(16);
    sb.write("small/tiny.pgm", pgm(8, 8));
    let spec = sb.write(
        "shard.toml",
        "name = \"shard\"\nsynth = \"metamer\"\n[params]\nmax_iter = 2\n[grid]\nimage = [\"images/a.pgm\", \"small/tiny.pgm\"]\nmodel = [{ name = \"gaussian\", kernel_size = 3 }, { name = \"gaussian\", kernel_size = 17 }]\n",
    );
    let needles = ["shard.toml", "task 3", "tiny.pgm", "gaussian"];
    assert_bad_input(&synthsweep(&["plan", spec.to_str().unwrap()]), &needles);
    let bad = sb.root("out-1");
    assert_bad_input(
        &run(&spec, &bad, &["--shard", "1/2", "--workers", "1"]),
        &needles,
    );
    assert!(!Path::new(&bad).exists(), "bad input must not create {bad}");
    let good = sb.root("out-0");
    let o = run(&spec, &good, &["--shard", "0/2", "--workers", "1"]);
    assert_code(&o, 0);
    let d = read_local(&good);
    assert_eq!(done(&d), 2, "{}", text(&o));
}
