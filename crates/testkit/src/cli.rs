//! The sweep end-to-end harness: a temp folder with tiny images and spec files, the
//! `synthsweep` binary run as a user runs it, the output read back (store and Python), and the
//! moto S3 server of the store tests.
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use synthsweep_store::{Dataset, OutputRoot, Store, StoreOptions, TaskRow, TaskStatus};

pub use crate::store as store_common;
pub use crate::store::{shared_moto, venv_python, workspace_root};

/// The `synthsweep` binary Cargo built for the cli crate's integration tests: beside the
/// test executable's `deps` folder (where Cargo puts `CARGO_BIN_EXE_synthsweep`).
pub fn bin_path() -> PathBuf {
    let mut dir = std::env::current_exe().expect("the test executable's path");
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(format!("synthsweep{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} missing: the cli harness runs from synthsweep-cli's integration tests, for which \
         Cargo builds the binary",
        path.display()
    );
    path
}

/// The binary under test, with no S3 settings inherited from the environment.
pub fn bin() -> Command {
    let mut c = Command::new(bin_path());
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null());
    c
}

/// Runs `synthsweep ARGS` to the end.
pub fn synthsweep(args: &[&str]) -> Output {
    bin().args(args).output().expect("run synthsweep")
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the whole output when it differs.
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(o.status.code(), Some(code), "{}", text(o));
}

/// Bad input: exit code 2, one `error:` line on stderr naming every `needles`, no panic.
pub fn assert_bad_input(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{}", text(o));
    assert!(err.starts_with("error: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// A square crop of one of the 64 px sample images, as 8-bit PGM bytes.
pub fn crop_pgm(sample: &str, x0: usize, y0: usize, size: usize) -> Vec<u8> {
    let path = workspace_root().join("sweeps/images").join(sample);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = b"P5\n64 64\n255\n";
    assert!(
        bytes.starts_with(header),
        "{}: unexpected header",
        path.display()
    );
    let px = &bytes[header.len()..];
    let mut out = format!("P5\n{size} {size}\n255\n").into_bytes();
    for y in y0..y0 + size {
        out.extend_from_slice(&px[y * 64 + x0..y * 64 + x0 + size]);
    }
    out
}

/// The pixels of an 8-bit PGM as the loader gives them (k / 255, float32).
pub fn pgm_pixels(bytes: &[u8]) -> Vec<f32> {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).into_owned();
    let mut fields = text.split_ascii_whitespace();
    assert_eq!(fields.next(), Some("P5"));
    let (w, h): (usize, usize) = (
        fields.next().unwrap().parse().unwrap(),
        fields.next().unwrap().parse().unwrap(),
    );
    let body = &bytes[bytes.len() - w * h..];
    body.iter().map(|&k| k as f32 / 255.0).collect()
}

/// A temp folder holding specs, images and output roots; deleted at the end of the test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// An empty temp folder.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// `images/a.pgm`, `images/b.pgm` (16 px crops of two sample images) and whatever else
    /// the test adds.
    pub fn with_images(self, size: usize) -> Sandbox {
        self.write("images/a.pgm", crop_pgm("einstein_64.pgm", 20, 16, size));
        self.write("images/b.pgm", crop_pgm("curie_64.pgm", 24, 20, size));
        self
    }

    /// An output root in the sandbox (as a string for `--out`).
    pub fn root(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// `synthsweep run SPEC --out ROOT EXTRA...`
pub fn run(spec: &Path, root: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", spec.to_str().unwrap(), "--out", root];
    args.extend_from_slice(extra);
    synthsweep(&args)
}

/// The committed dataset of a local root.
pub fn read_local(root: &str) -> Dataset {
    Store::open(&OutputRoot::Local(root.into()))
        .unwrap()
        .read_dataset()
        .unwrap()
}

pub fn read_s3(root: &str) -> Dataset {
    let moto = shared_moto();
    Store::open_with(&OutputRoot::parse(root).unwrap(), moto.options())
        .unwrap()
        .read_dataset()
        .unwrap()
}

/// S3 environment variables for the binary and for Python, reaching the shared moto.
pub fn s3_env() -> Vec<(&'static str, String)> {
    shared_moto().env()
}

/// Runs `synthsweep ARGS` to the end with [`s3_env`] (an `s3://` root on the shared moto).
pub fn synthsweep_s3(args: &[&str]) -> Output {
    bin()
        .args(args)
        .envs(s3_env())
        .output()
        .expect("run synthsweep")
}

/// A tasks row without what differs between two runs of the same task (ids of the run and
/// batch, times, host, worker).
pub fn stable_task(t: &TaskRow) -> TaskRow {
    TaskRow {
        run_id: String::new(),
        batch_id: String::new(),
        duration_s: 0.0,
        started_at: std::time::UNIX_EPOCH,
        finished_at: std::time::UNIX_EPOCH,
        worker: None,
        ..t.clone()
    }
}

/// A dataset sorted and stripped of run-specific fields: two runs of the same tasks on the
/// CPU give equal values.
pub fn canonical(d: &Dataset) -> Dataset {
    let mut c = d.clone();
    c.tasks = c.tasks.iter().map(stable_task).collect();
    c.tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    c.losses
        .sort_by(|a, b| (&a.task_id, a.iteration).cmp(&(&b.task_id, b.iteration)));
    c.eigen
        .sort_by(|a, b| (&a.task_id, a.eigenindex).cmp(&(&b.task_id, b.eigenindex)));
    c.images.sort_by(|a, b| {
        (&a.task_id, &a.role, a.index, a.iteration).cmp(&(
            &b.task_id,
            &b.role,
            b.index,
            b.iteration,
        ))
    });
    c.scores.sort_by(|a, b| {
        (&a.task_id, &a.image_a, &a.image_b).cmp(&(&b.task_id, &b.image_a, &b.image_b))
    });
    c
}

/// Every task once in `tasks`, no data row without its task, no row twice.
pub fn assert_consistent(d: &Dataset) {
    let ids = crate::store::unique_task_ids(d);
    let known: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut keys = std::collections::HashSet::new();
    for l in &d.losses {
        assert!(
            known.contains(l.task_id.as_str()),
            "loss row of an uncommitted task"
        );
        assert!(
            keys.insert(("l", l.task_id.clone(), l.iteration, String::new())),
            "loss row twice: {l:?}"
        );
    }
    for e in &d.eigen {
        assert!(
            known.contains(e.task_id.as_str()),
            "eigen row of an uncommitted task"
        );
        assert!(
            keys.insert(("e", e.task_id.clone(), e.eigenindex, String::new())),
            "eigen row twice"
        );
    }
    for i in &d.images {
        assert!(
            known.contains(i.task_id.as_str()),
            "image row of an uncommitted task"
        );
        let k = (
            "i",
            i.task_id.clone(),
            i.index,
            format!("{}/{:?}", i.role, i.iteration),
        );
        assert!(
            keys.insert(k),
            "image row twice: {} {} {}",
            i.task_id,
            i.role,
            i.index
        );
    }
    for s in &d.scores {
        assert!(
            known.contains(s.task_id.as_str()),
            "score row of an uncommitted task"
        );
        assert!(
            keys.insert(("s", s.task_id.clone(), 0, s.image_a.clone() + &s.image_b)),
            "score row twice"
        );
    }
}

pub fn done(d: &Dataset) -> usize {
    d.tasks
        .iter()
        .filter(|t| t.status == TaskStatus::Done)
        .count()
}

fn opt(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// What Python must read in a root, value for value: `tests/python/check_run.py`'s input.
pub fn expectations(d: &Dataset) -> Value {
    let mut tasks = Map::new();
    for t in &d.tasks {
        tasks.insert(
            t.task_id.clone(),
            json!({
                "sweep": t.sweep, "synth": t.synth, "image": t.image, "model": t.model,
                "optimized_metric": t.optimized_metric, "reference_metric": t.reference_metric,
                "minmax": t.minmax, "seed": t.seed, "params": t.params, "status": t.status.as_str(),
                "error": t.error, "iterations": t.iterations, "duration_s": t.duration_s,
                "device": t.device, "run_id": t.run_id, "batch_id": t.batch_id,
                "final_loss": t.final_loss, "metric_tradeoff_lambda": t.metric_tradeoff_lambda,
                "jerkiness": t.jerkiness, "jerkiness_frames": t.jerkiness_frames,
                "power_iterations_top": t.power_iterations_top,
                "power_iterations_bottom": t.power_iterations_bottom,
            }),
        );
    }
    let group = |rows: Vec<(String, Value)>| {
        let mut m: Map<String, Value> = Map::new();
        for (id, v) in rows {
            m.entry(id)
                .or_insert_with(|| Value::Array(vec![]))
                .as_array_mut()
                .unwrap()
                .push(v);
        }
        Value::Object(m)
    };
    let c = canonical(d);
    let losses = group(
        c.losses
            .iter()
            .map(|l| {
                (
                    l.task_id.clone(),
                    json!([
                        l.iteration,
                        l.loss,
                        opt(l.gradient_norm),
                        opt(l.pixel_change_norm),
                        opt(l.optimized_metric_loss),
                        opt(l.reference_metric_loss),
                        l.scale,
                        opt(l.scale_loss),
                        l.step_energy,
                        l.dist_along_line,
                        l.dist_from_line
                    ]),
                )
            })
            .collect(),
    );
    let eigen = group(
        c.eigen
            .iter()
            .map(|e| (e.task_id.clone(), json!([e.eigenindex, e.eigenvalue])))
            .collect(),
    );
    let images = group(
        c.images
            .iter()
            .map(|i| {
                // f32 -> f64 is exact, so Python compares the float32 values exactly.
                let px: Option<Vec<f64>> = i
                    .pixels
                    .as_ref()
                    .map(|p| p.iter().map(|&x| x as f64).collect());
                (
                    i.task_id.clone(),
                    json!([
                        i.role,
                        i.index,
                        i.iteration,
                        i.channels,
                        i.height,
                        i.width,
                        px,
                        i.png.as_ref().map(Vec::len)
                    ]),
                )
            })
            .collect(),
    );
    let scores = group(
        c.scores
            .iter()
            .map(|s| {
                (
                    s.task_id.clone(),
                    json!([s.image_a, s.image_b, s.metric, s.value]),
                )
            })
            .collect(),
    );
    json!({"tasks": tasks, "losses": losses, "eigen": eigen, "images": images, "scores": scores})
}

/// Runs `tests/python/check_run.py` (polars and pandas; schema types from check_tables.py)
/// on roots with the values they must hold; panics with its output on any failure.
pub fn python_check(roots: &[(String, Value)], env: &[(&str, String)], scratch: &Path) -> String {
    let mut args: Vec<std::ffi::OsString> = Vec::new();
    for (i, (root, expect)) in roots.iter().enumerate() {
        let f = scratch.join(format!("expect-{i}.json"));
        std::fs::write(&f, serde_json::to_vec(expect).unwrap()).unwrap();
        args.push(root.into());
        args.push(f.into());
    }
    crate::run_python("check_run.py", args, env)
}

/// Store options for the shared moto (for the test's own reads).
pub fn moto_options() -> StoreOptions {
    shared_moto().options()
}

/// A base port with `n` consecutive free ports after it (for `--port`). Ports come from
/// 20000-31999, below Linux's ephemeral range (32768+), so that the outgoing connections of
/// concurrently running tests cannot take them between this check and the bind; a
/// process-wide counter keeps the tests of this binary from picking the same ones.
pub fn free_base(n: usize) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 400) * 30;
    loop {
        let k = NEXT.fetch_add(n as u32, Ordering::SeqCst);
        let base = 20000 + (offset + k) % 12000;
        if base as usize + n > 32000 {
            continue;
        }
        let base = base as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i as u16)).is_ok()) {
            return base;
        }
    }
}
