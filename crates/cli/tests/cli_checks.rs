//! The CLI says what it means (issue 9 item 5): every numeric flag checked (exit 2 naming
//! the flag), a closed stdout pipe ends a command quietly (exit 141), a TOML error keeps
//! its reason, a TorchScript model's path resolves against the spec's folder, and `status`
//! on a folder that is not an output root says so.
use synthsweep_testkit::cli as common;

use common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Every numeric flag of every subcommand, with a bad value: exit 2, the flag named, what
/// was expected, nothing written (clap rejects them before the spec is even read).
#[test]
fn every_numeric_flag_is_checked() {
    let sb = Sandbox::new();
    let spec = sb.path("missing.toml");
    let spec = spec.to_str().unwrap();
    let at_least_one = "expected a whole number of at least 1";
    let seconds = "expected a number of seconds greater than 0";
    let cpus = std::thread::available_parallelism().unwrap().get();
    let many_cpus = vec!["cpu"; 4 * cpus + 1].join(",");
    let cases: &[(&[&str], &str, &str)] = &[
        (&["run", spec, "--workers", "0"], "--workers", at_least_one),
        (
            &["run", spec, "--workers", "two"],
            "--workers",
            at_least_one,
        ),
        (&["run", spec, "--threads", "0"], "--threads", at_least_one),
        (
            &["run", spec, "--batch", "4294967296"],
            "--batch",
            "at most 1024",
        ),
        // More threads or CPU workers than CPUs: a slip like 100000 started that many
        // threads and exhausted the machine's processes before anything failed.
        (
            &["run", spec, "--threads", "100000"],
            "--threads",
            "at most",
        ),
        (
            &["run", spec, "--workers", "100000"],
            "--workers",
            "at most",
        ),
        (
            &["run", spec, "--devices", &many_cpus],
            "--devices",
            "at most",
        ),
        (
            &["run", spec, "--batch-tasks", "0"],
            "--batch-tasks",
            at_least_one,
        ),
        (&["run", spec, "--batch-tasks", "-3"], "--batch-tasks", ""),
        (
            &["run", spec, "--batch-seconds", "-5"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--batch-seconds=-5"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--batch-seconds", "0"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--batch-seconds", "nan"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--batch-seconds", "inf"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--batch-seconds", "1e300"],
            "--batch-seconds",
            seconds,
        ),
        (
            &["run", spec, "--processes", "0", "--process", "0"],
            "--processes",
            at_least_one,
        ),
        (&["run", spec, "--port", "0"], "--port", at_least_one),
        (
            &["run", spec, "--port", "70000"],
            "--port",
            "at most 16 bits",
        ),
        (&["run", spec, "--shard", "3/3"], "--shard", "0 <= I < N"),
        (
            &["slurm", spec, "--time", "10", "--nodes", "0"],
            "--nodes",
            at_least_one,
        ),
        (
            &["slurm", spec, "--time", "10", "--tasks-per-node", "0"],
            "--tasks-per-node",
            at_least_one,
        ),
        (
            &["slurm", spec, "--time", "10", "--gpus-per-node", "-1"],
            "--gpus-per-node",
            "",
        ),
        (
            &["slurm", spec, "--time", "10", "--cpus-per-task", "0"],
            "--cpus-per-task",
            at_least_one,
        ),
        (
            &["slurm", spec, "--time", "10", "--array=0"],
            "--array",
            at_least_one,
        ),
        // What follows `--` is checked as `synthsweep run` reads it on the nodes.
        (
            &["slurm", spec, "--time", "10", "--", "--bogus"],
            "--bogus",
            "synthsweep run",
        ),
        (
            &["slurm", spec, "--time", "10", "--", "--workers", "0"],
            "--workers",
            at_least_one,
        ),
        (
            &["slurm", spec, "--time", "10", "--signal-before", "0"],
            "--signal-before",
            at_least_one,
        ),
        (
            &["status", sb.dir.path().to_str().unwrap(), "--slowest", "-1"],
            "--slowest",
            "",
        ),
    ];
    // Started together: each start loads libtorch, the checks themselves are instant.
    let children: Vec<_> = cases
        .iter()
        .map(|(args, _, _)| {
            bin()
                .args(*args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, (_, flag, expected)) in children.into_iter().zip(cases) {
        let o = child.wait_with_output().unwrap();
        assert_bad_input(&o, &[flag, expected]);
    }
    assert_eq!(
        std::fs::read_dir(sb.dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// Runs `synthsweep ARGS` with stdout a pipe whose reading end is already closed, as after
/// `| head` has exited: every write fails with EPIPE.
fn into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = bin()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn assert_quiet_closed_pipe(o: &Output) {
    assert_eq!(o.status.code(), Some(141), "{}", text(o));
    assert_eq!(stderr(o), "", "{}", text(o));
}

fn metamer_spec(sb: &Sandbox, rel: &str, seeds: usize, model: &str) -> std::path::PathBuf {
    let seeds: Vec<String> = (0..seeds).map(|s| s.to_string()).collect();
    sb.write(
        rel,
        format!(
            "name = \"cli\"\nsynth = \"metamer\"\n[params]\nmax_iter = 2\n[grid]\nimage = [\"images/a.pgm\"]\nmodel = [{model}]\nseed = [{}]\n",
            seeds.join(", ")
        ),
    )
}

const GAUSSIAN: &str = "{ name = \"gaussian\", kernel_size = 5 }";

/// `plan SPEC --json | head -2` in a real shell pipeline: two lines, then the command
/// ends quietly with 141 (the output is far larger than a pipe's buffer, so the closed
/// pipe is always met).
#[test]
fn a_closed_pipe_ends_plan_quietly() {
    let sb = Sandbox::new().with_images(16);
    let spec = metamer_spec(&sb, "spec.toml", 2000, GAUSSIAN);
    let script = format!(
        "'{}' plan '{}' --json --no-calibrate 2>'{}' | head -2; echo \"exit ${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_synthsweep"),
        spec.display(),
        sb.path("stderr.txt").display()
    );
    let o = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with('{'), "{out}");
    assert_eq!(lines[2], "exit 141", "{out}");
    assert_eq!(std::fs::read_to_string(sb.path("stderr.txt")).unwrap(), "");

    // Every other printing command, summary and lists alike.
    assert_quiet_closed_pipe(&into_closed_pipe(&[
        "plan",
        spec.to_str().unwrap(),
        "--no-calibrate",
    ]));
    assert_quiet_closed_pipe(&into_closed_pipe(&["models"]));
    assert_quiet_closed_pipe(&into_closed_pipe(&["metrics", "--json"]));
    let a = sb.path("images/a.pgm");
    let a = a.to_str().unwrap();
    assert_quiet_closed_pipe(&into_closed_pipe(&[
        "eval",
        "metric",
        "--metric",
        "{\"name\":\"mse\"}",
        a,
        a,
        "--device",
        "cpu",
    ]));
}

/// `status` on a real root prints its summary, into a closed pipe ends quietly, and on a
/// folder that is not an output root (the spec's folder, an empty folder) fails with exit 2
/// saying so. A run's own outcome is not hidden by a closed stdout.
#[test]
fn status_knows_an_output_root_and_a_closed_pipe() {
    let sb = Sandbox::new().with_images(16);
    let spec = metamer_spec(&sb, "spec.toml", 1, GAUSSIAN);
    let root = sb.root("out");
    let o = bin()
        .args([
            "run",
            spec.to_str().unwrap(),
            "--out",
            &root,
            "--workers",
            "1",
        ])
        .stdout({
            let (reader, writer) = std::io::pipe().unwrap();
            drop(reader);
            writer
        })
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert_eq!(done(&read_local(&root)), 1);

    let o = synthsweep(&["status", &root]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("1 done"), "{}", text(&o));
    // An unreadable run record is named and hides only itself.
    let broken = Path::new(&root).join("_runs").join("broken.json");
    std::fs::write(&broken, "{").unwrap();
    let o = synthsweep(&["status", &root]);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("run record _runs/broken.json") && stdout(&o).contains("last run "),
        "{}",
        text(&o)
    );
    std::fs::remove_file(&broken).unwrap();
    assert_quiet_closed_pipe(&into_closed_pipe(&["status", &root]));

    for not_root in [sb.dir.path().to_path_buf(), sb.path("empty")] {
        std::fs::create_dir_all(&not_root).unwrap();
        let o = synthsweep(&["status", not_root.to_str().unwrap()]);
        assert_bad_input(&o, &[not_root.to_str().unwrap(), "not an output root"]);
        assert_eq!(stdout(&o), "");
    }
    let file = sb.write("a-file", "x");
    let o = synthsweep(&["status", file.to_str().unwrap()]);
    assert_bad_input(&o, &["a-file", "a file, not an output root"]);

    // A damaged tasks file is named (the message was a bare "Corrupt footer").
    let damaged = std::fs::read_dir(Path::new(&root).join("tasks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&damaged, "garbage").unwrap();
    let o = synthsweep(&["status", &root]);
    let name = damaged.file_name().unwrap().to_str().unwrap();
    assert_bad_input(&o, &["tasks table", name]);
}

/// A key written twice: the reason ("duplicate key") and the file and line, on the one
/// error line; nothing written.
#[test]
fn a_toml_error_keeps_its_reason() {
    let sb = Sandbox::new().with_images(16);
    let spec = sb.write(
        "dup.toml",
        "name = \"cli\"\nsynth = \"metamer\"\n[params]\nmax_iter = 2\nmax_iter = 3\n[grid]\nimage = [\"images/a.pgm\"]\nmodel = [\"gaussian\"]\n",
    );
    let root = sb.root("out");
    for o in [
        synthsweep(&["plan", spec.to_str().unwrap(), "--no-calibrate"]),
        run(&spec, &root, &[]),
    ] {
        assert_bad_input(
            &o,
            &[
                "dup.toml",
                "not valid TOML",
                "line 5",
                "duplicate key",
                "max_iter",
            ],
        );
    }
    assert!(!Path::new(&root).exists());
}

/// Saves a TorchScript module (x -> 2x) at `path`.
fn save_torchscript(path: &Path) {
    let x = tch::Tensor::zeros([1, 1, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
    let m = tch::CModule::create_by_tracing("Net", "forward", &[x], &mut |xs| vec![&xs[0] * 2.0])
        .unwrap();
    m.save(path).unwrap();
}

/// The task id of a TorchScript model comes from its file (name and content), not from how
/// the path is spelled: `net.pt`, `./net.pt`, `../study/net.pt` and the absolute path are
/// one task; new bytes in the file make another.
#[test]
fn a_torchscript_model_enters_the_task_id_by_its_file_not_its_spelling() {
    let sb = Sandbox::new();
    sb.write(
        "study/images/a.pgm",
        crop_pgm("einstein_64.pgm", 20, 16, 16),
    );
    let net = sb.path("study/net.pt");
    save_torchscript(&net);
    let id = |path: &str| {
        let spec = metamer_spec(
            &sb,
            "study/spec.toml",
            1,
            &format!("{{ name = \"torchscript\", path = \"{path}\" }}"),
        );
        let o = synthsweep(&["plan", spec.to_str().unwrap(), "--json"]);
        assert_code(&o, 0);
        let line = stdout(&o).lines().next().unwrap().to_string();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        v["task_id"].as_str().unwrap().to_string()
    };
    let first = id("net.pt");
    for other in ["./net.pt", "../study/net.pt", net.to_str().unwrap()] {
        assert_eq!(id(other), first, "{other}");
    }
    // Two spellings in one axis are one model listed twice: refused (they would be two
    // tasks with one id), naming the axis and both spellings.
    let spec = metamer_spec(
        &sb,
        "study/spec.toml",
        1,
        "{ name = \"torchscript\", path = \"net.pt\" }, { name = \"torchscript\", path = \"./net.pt\" }",
    );
    let o = synthsweep(&["plan", spec.to_str().unwrap()]);
    assert_code(&o, 2);
    for part in ["grid.model[1]", "./net.pt", "listed twice in grid.model"] {
        assert!(stderr(&o).contains(part), "{part}: {}", text(&o));
    }
    let x = tch::Tensor::zeros([1, 1, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
    tch::CModule::create_by_tracing("Net", "forward", &[x], &mut |xs| vec![&xs[0] * 3.0])
        .unwrap()
        .save(&net)
        .unwrap();
    assert_ne!(id("net.pt"), first, "the file's content changed");
}

/// A spec in `study/` naming `net.pt` and `images/a.pgm` means `study/net.pt` and
/// `study/images/a.pgm`, whatever the current directory: as a model spec, a dotted
/// override and a metric's nested model.
#[test]
fn a_torchscript_path_resolves_against_the_spec_folder() {
    let sb = Sandbox::new();
    sb.write(
        "study/images/a.pgm",
        crop_pgm("einstein_64.pgm", 20, 16, 16),
    );
    save_torchscript(&sb.path("study/net.pt"));
    metamer_spec(
        &sb,
        "study/spec.toml",
        1,
        "{ name = \"torchscript\", path = \"net.pt\" }",
    );
    let root = sb.root("out");
    // The current directory is the sandbox, not study/.
    let o = bin()
        .current_dir(sb.dir.path())
        .args(["run", "study/spec.toml", "--out", &root, "--workers", "1"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    let d = read_local(&root);
    assert_eq!(done(&d), 1, "{:?}", d.tasks);

    sb.write(
        "study/dotted.toml",
        "name = \"cli\"\nsynth = \"metamer\"\n[params]\nmax_iter = 2\n[grid]\nimage = [\"images/a.pgm\"]\nmodel = [{ name = \"torchscript\", path = \"missing.pt\" }]\n\"model.path\" = [\"net.pt\"]\n",
    );
    let o = bin()
        .current_dir(sb.dir.path())
        .args(["plan", "study/dotted.toml", "--json", "--no-calibrate"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(stdout(&o).contains("study/net.pt"), "{}", text(&o));

    let nested = sb.write(
        "study/nested.toml",
        "name = \"cli\"\nsynth = \"mad\"\n[params]\nmax_iter = 2\n[grid]\nimage = [\"images/a.pgm\"]\noptimized_metric = [\"mse\"]\nreference_metric = [{ name = \"model_distance\", model = { name = \"torchscript\", path = \"net.pt\" }, epsilon = 0.0 }]\nminmax = [\"min\"]\n",
    );
    let o = bin()
        .current_dir(sb.dir.path())
        .args(["plan", nested.to_str().unwrap(), "--json", "--no-calibrate"])
        .output()
        .unwrap();
    assert_code(&o, 0);
    assert!(stdout(&o).contains("study/net.pt"), "{}", text(&o));
}

// ---- output roots that cannot be written: refused once, before any work --------------

/// The lines on stderr: these failures are one `error:` line and nothing else (no planning
/// line, no repeated error).
fn only_error_line(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{}", text(o));
    assert!(stdout(o).is_empty(), "{}", text(o));
    lines[0].to_string()
}

/// An S3 root without credentials (the moto server reachable, its keys not given) fails
/// before any request with exit 2, naming the bucket and the variables expected; half a
/// key pair names the missing half; nothing is written to the bucket.
#[test]
fn an_s3_root_without_credentials_is_refused_naming_the_bucket_and_what_is_missing() {
    let sb = Sandbox::new().with_images(16);
    let spec = metamer_spec(&sb, "spec.toml", 1, GAUSSIAN);
    let moto = shared_moto();
    moto.create_bucket("nocreds");
    let child = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = bin();
        c.env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_REGION", "us-east-1");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    };
    let run = |extra: &[(&str, &str)]| {
        child(
            extra,
            &[
                "run",
                spec.to_str().unwrap(),
                "--out",
                "s3://nocreds/study",
                "--workers",
                "1",
            ],
        )
    };
    let o = run(&[]);
    assert_bad_input(
        &o,
        &[
            "s3://nocreds/study",
            "bucket nocreds",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ],
    );
    let line = only_error_line(&o);
    // Not the old failure: a request for a token to the instance metadata service.
    assert!(
        !line.contains("PUT") && !line.contains("/latest/api/token"),
        "{line}"
    );
    let o = run(&[("AWS_ACCESS_KEY_ID", "test")]);
    assert_bad_input(&o, &["bucket nocreds", "AWS_SECRET_ACCESS_KEY is not"]);
    only_error_line(&o);
    let o = child(&[], &["status", "s3://nocreds/study"]);
    assert_bad_input(&o, &["bucket nocreds", "AWS_ACCESS_KEY_ID"]);
    assert!(moto.keys("nocreds", "").is_empty(), "nothing written");
    // With the keys the same command runs.
    let o = run(&[
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]);
    assert_code(&o, 0);
}

/// A local root that cannot be created (its parent is a file) or written to (a read-only
/// folder: /sys, which even root cannot write) fails once, before the planning line, with
/// exit 2 naming the root; nothing is written.
#[test]
fn an_unwritable_local_root_is_refused_once_before_planning() {
    let sb = Sandbox::new().with_images(16);
    let spec = metamer_spec(&sb, "spec.toml", 1, GAUSSIAN);
    let file = sb.write("a-file", "not a folder");
    let under_file = file.join("out");
    for (root, why) in [
        (under_file.to_str().unwrap(), "cannot create the folder"),
        ("/sys", "cannot write to this folder"),
    ] {
        let o = synthsweep(&[
            "run",
            spec.to_str().unwrap(),
            "--out",
            root,
            "--workers",
            "1",
        ]);
        assert_bad_input(&o, &[root, why]);
        let line = only_error_line(&o);
        assert!(!line.contains("to run"), "{line}");
    }
    assert!(!under_file.exists());
}

/// An error that shows its cause in its own text does not repeat it: a missing spec says
/// "No such file or directory" once, and exits 2 having written nothing.
#[test]
fn a_missing_spec_says_why_once() {
    let sb = Sandbox::new();
    let spec = sb.path("missing.toml");
    let o = synthsweep(&["plan", spec.to_str().unwrap()]);
    assert_code(&o, 2);
    let err = stderr(&o);
    assert!(err.contains("cannot read sweep spec"), "{}", text(&o));
    assert_eq!(
        err.matches("No such file or directory").count(),
        1,
        "{}",
        text(&o)
    );
}
