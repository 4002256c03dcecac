//! A task's results do not depend on how many workers or processes ran the sweep: every
//! random draw of a task (its initial state, eigendistortion's random starts, geodesic's
//! bridge, and what a model draws while being built) comes from that task's own seeded
//! stream. The same specs run with 1, 2 and 3 workers and on 2 processes, several times,
//! write bit-identical datasets on the CPU. The specs mix models that draw at construction
//! (gain control without given scalars, and pretrained, which still draws) with ones that
//! do not, so that workers build models while other workers seed and draw, and tasks run
//! first on a worker with a freshly built model.
use synthsweep_testkit::cli as common;

use common::{canonical, free_base, read_local, run, text, Sandbox};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Metamers under three models (one drawing its scalars at construction, one pretrained
/// that draws anyway, one that draws nothing), three seeds, two images: 18 tasks.
const METAMER: &str = r#"name = "det-metamer"
synth = "metamer"
repeats = 3
[params]
max_iter = 4
store_progress = 2
[grid]
image = "images"
model = [
  { name = "luminance_gain_control", kernel_size = 7 },
  { name = "luminance_contrast_gain_control", pretrained = true },
  { name = "gaussian", kernel_size = 5 },
]
"#;

/// MAD (noise drawn after the metric checks' draws): 8 tasks.
const MAD: &str = r#"name = "det-mad"
synth = "mad"
repeats = 2
[params]
max_iter = 4
initial_noise = 0.1
optimized_metric = { name = "ssim_distance" }
reference_metric = { name = "mse" }
[grid]
image = "images"
minmax = ["min", "max"]
"#;

/// Eigendistortion's power method (random starting blocks) under a drawing model: 4 tasks.
const EIGEN: &str = r#"name = "det-eigen"
synth = "eigendistortion"
repeats = 2
[params]
method = "power"
k = 1
max_iter = 5
model = { name = "luminance_gain_control", kernel_size = 5 }
[grid]
image = "images"
"#;

/// Geodesics from a Brownian bridge (one randn) under a drawing model: 4 tasks.
const GEODESIC: &str = r#"name = "det-geodesic"
synth = "geodesic"
repeats = 2
[params]
model = { name = "luminance_gain_control", kernel_size = 5 }
n_steps = 3
max_iter = 3
initial_sequence = "bridge"
[grid]
pairs = [["images/a.pgm", "images/b.pgm"], ["images/b.pgm", "images/a.pgm"]]
"#;

/// How one run is made.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// One process with this many workers.
    Workers(usize),
    /// Two processes with this many workers each.
    TwoProcesses(usize),
}

/// Runs `spec` into a fresh root shaped as `shape`; every process must exit 0.
fn run_as(spec: &Path, root: &str, shape: Shape) {
    match shape {
        Shape::Workers(w) => {
            let o = run(spec, root, &["--workers", &w.to_string(), "--threads", "1"]);
            assert!(o.status.success(), "{shape:?}: {}", text(&o));
        }
        Shape::TwoProcesses(w) => {
            let port = free_base(2).to_string();
            let procs: Vec<(std::process::Child, PathBuf)> = (0..2)
                .map(|i| {
                    let log = PathBuf::from(format!("{root}.p{i}.log"));
                    let child = common::bin()
                        .args(["run", spec.to_str().unwrap(), "--out", root])
                        .args(["--workers", &w.to_string(), "--threads", "1"])
                        .args(["--processes", "2", "--process", &i.to_string()])
                        .args(["--port", &port])
                        .stdout(Stdio::null())
                        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
                        .spawn()
                        .expect("start synthsweep");
                    (child, log)
                })
                .collect();
            for (i, (mut child, log)) in procs.into_iter().enumerate() {
                let st = child.wait().unwrap();
                let log = std::fs::read_to_string(log).unwrap_or_default();
                assert!(st.success(), "{shape:?}, process {i}: {st}\n{log}");
            }
        }
    }
}

/// Runs `spec_text` once per shape and requires every dataset to equal the first, bit for
/// bit, with every task done.
fn same_whatever_the_shape(name: &str, spec_text: &str, tasks: usize, shapes: &[Shape]) {
    let sb = Sandbox::new().with_images(32);
    let spec = sb.write(&format!("{name}.toml"), spec_text);
    let mut reference = None;
    for (k, &shape) in shapes.iter().enumerate() {
        let root = sb.root(&format!("out{k}"));
        run_as(&spec, &root, shape);
        let d = canonical(&read_local(&root));
        assert_eq!(d.tasks.len(), tasks, "{shape:?}");
        let failed: Vec<_> = d.tasks.iter().filter_map(|t| t.error.as_ref()).collect();
        assert!(failed.is_empty(), "{shape:?}: failed tasks: {failed:?}");
        match &reference {
            None => reference = Some((shape, d)),
            Some((first, r)) => {
                for (a, b) in d.tasks.iter().zip(&r.tasks) {
                    assert_eq!(a, b, "tasks row: {shape:?} vs {first:?}");
                }
                assert!(
                    d.losses == r.losses,
                    "losses differ: {shape:?} vs {first:?}"
                );
                assert!(
                    d.images == r.images,
                    "images differ: {shape:?} vs {first:?}"
                );
                assert!(
                    d.eigen == r.eigen,
                    "eigenvalues differ: {shape:?} vs {first:?}"
                );
            }
        }
    }
}

use Shape::{TwoProcesses, Workers};

#[test]
fn metamers_are_the_same_with_any_number_of_workers_and_processes() {
    same_whatever_the_shape(
        "metamer",
        METAMER,
        18,
        &[
            Workers(1),
            Workers(2),
            Workers(3),
            Workers(2),
            Workers(3),
            TwoProcesses(1),
            TwoProcesses(2),
        ],
    );
}

#[test]
fn mad_eigendistortion_and_geodesic_are_the_same_with_any_number_of_workers_and_processes() {
    let shapes = [Workers(1), Workers(3), TwoProcesses(2)];
    same_whatever_the_shape("mad", MAD, 8, &shapes);
    same_whatever_the_shape("eigen", EIGEN, 4, &shapes);
    same_whatever_the_shape("geodesic", GEODESIC, 4, &shapes);
}
