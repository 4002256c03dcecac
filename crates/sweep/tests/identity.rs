//! Task identity: the same task has the same id on every run and machine, however the spec
//! is written and wherever the images live; changing anything the task computes from
//! changes it.
use common::{assert_mentions, pgm, Dir};
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use synthsweep_sweep::{NoopResolver, Plan, Resolver, SweepSpec, Task};
use synthsweep_testkit::sweep as common;

const SPEC: &str = r#"
name = "ids"
synth = "metamer"
[params]
max_iter = 10
model = { name = "gaussian", kernel_size = 5 }
[grid]
image = ["images/a.pgm", "images/b.pgm"]
seed = [0, 1]
"#;

fn tasks(plan: &Plan) -> Vec<Task> {
    plan.iter().map(|t| t.unwrap()).collect()
}

fn ids_of(dir: &Dir, text: &str) -> Vec<String> {
    tasks(&dir.plan(text).unwrap())
        .iter()
        .map(|t| t.id().to_string())
        .collect()
}

#[test]
fn canonical_description_and_id_are_pinned() {
    // If this fails, task ids changed for every user: bump TASK_SCHEMA on purpose or fix it.
    let d = Dir::new();
    let t = &tasks(&d.plan(SPEC).unwrap())[0];
    assert_eq!(
        t.canonical_json(),
        format!(
            r#"{{"image":{{"name":"a.pgm","sha256":"{}"}},"model":{{"kernel_size":5,"name":"gaussian"}},"params":{{"allowed_range":[0,1],"loss_function":"mse","max_iter":10,"optimizer":{{"amsgrad":true,"betas":[0.9,0.999],"eps":1e-8,"lr":0.01,"name":"adam","weight_decay":0}},"range_penalty_lambda":0.1,"scheduler":null,"stop_criterion":0.0001,"stop_iters_to_check":50,"store_progress":0}},"schema":"synthsweep.task/2","seed":0,"synth":"metamer"}}"#,
            synthsweep_sweep::canonical::sha256_hex(&pgm(0))
        )
    );
    assert_eq!(
        t.id(),
        "83786ccc372936f61f4058e26ab61ba799367e1449079f91735cb2b8d47e73eb"
    );
    assert_eq!(
        t.id(),
        synthsweep_sweep::canonical::sha256_hex(t.canonical_json().as_bytes())
    );
    assert_eq!(t.short_id(), &t.id()[..12]);
}

#[test]
fn same_spec_same_ids_every_time() {
    let d = Dir::new();
    assert_eq!(ids_of(&d, SPEC), ids_of(&d, SPEC));
}

#[test]
fn moving_the_image_folder_or_renaming_the_sweep_keeps_ids() {
    let d = Dir::new();
    let before = ids_of(&d, SPEC);
    let d2 = Dir::new(); // same bytes and names, another folder
    std::fs::create_dir(d2.path().join("deep")).unwrap();
    std::fs::rename(d2.path().join("images"), d2.path().join("deep/imgs")).unwrap();
    let moved = SPEC
        .replace("images/", "deep/imgs/")
        .replace("\"ids\"", "\"renamed\"");
    assert_eq!(ids_of(&d2, &moved), before);
}

#[test]
fn how_the_spec_is_written_does_not_matter() {
    let d = Dir::new();
    let before = ids_of(&d, SPEC);
    // Key order, float vs integer, a zip instead of a grid, a fixed value as a 1-value axis
    // is different (it is an axis) but describes the same tasks.
    let rewritten = r#"
synth = "metamer"
name = "other"
[params]
model = { kernel_size = 5.0, name = "gaussian" }
max_iter = 10.0
[grid]
image = ["./images/a.pgm", "images/b.pgm"]
[[zip]]
seed = [0, 1]
"#;
    assert_eq!(ids_of(&d, rewritten), before);
}

/// `store_progress = true` and `= 1` compute the same thing, and so do every other pair of
/// spellings of one value: they are one task, with one id.
#[test]
fn store_progress_true_and_1_are_one_task() {
    let d = Dir::new();
    let spelled = |extra: &str| {
        ids_of(
            &d,
            &SPEC.replace("max_iter = 10", &format!("max_iter = 10\n{extra}")),
        )
    };
    let plain = ids_of(&d, SPEC);
    let one = spelled("store_progress = 1");
    assert_eq!(spelled("store_progress = true"), one);
    assert_ne!(one, plain);
    for (a, b) in [
        ("store_progress = false", ""),
        ("store_progress = 0", ""),
        ("optimizer = { name = \"adam\" }", ""),
        (
            "optimizer = { name = \"adam\", lr = 0.01, amsgrad = true }",
            "",
        ),
        ("range_penalty_lambda = 0.1", ""),
        ("allowed_range = [0, 1]", "allowed_range = [0.0, 1.0]"),
        ("loss_function = \"l2\"", "loss_function = \"l2_norm\""),
        ("stop_iters_to_check = 50.0", "stop_iters_to_check = 50"),
        (
            "optimizer = { name = \"sgd\", lr = 1 }",
            "optimizer = { name = \"sgd\", lr = 1.0 }",
        ),
    ] {
        assert_eq!(spelled(a), spelled(b), "{a} vs {b:?}");
    }
    // The same in a grid: two values that are one value make the tasks repeat.
    let e = d.error(&SPEC.replace("seed = [0, 1]", "seed = [0, 1]\nstore_progress = [true, 1]"));
    assert!(
        e.contains("two grid positions describe the same task"),
        "{e}"
    );
}

#[test]
fn changing_an_input_changes_the_id() {
    let d = Dir::new();
    let base = ids_of(&d, SPEC);
    let variants = [
        SPEC.replace("max_iter = 10", "max_iter = 11"),
        SPEC.replace("kernel_size = 5", "kernel_size = 7"),
        SPEC.replace("seed = [0, 1]", "seed = [2, 3]"),
        SPEC.replace("max_iter = 10", "max_iter = 10\nrange_penalty_lambda = 0.2"),
        SPEC.replace("max_iter = 10", "max_iter = 10\nstore_progress = 2"),
        SPEC.replace(
            "max_iter = 10",
            "max_iter = 10\noptimizer = { name = \"adam\", lr = 0.02 }",
        ),
        SPEC.replace("synth = \"metamer\"", "synth = \"simple_metamer\""),
    ];
    for v in &variants {
        let ids = ids_of(&d, v);
        for id in &ids {
            assert!(!base.contains(id), "{v}");
        }
    }
}

#[test]
fn changing_image_bytes_or_name_changes_the_id() {
    let d = Dir::new();
    let base = ids_of(&d, SPEC);
    // a.pgm's bytes change: its tasks change, b.pgm's do not.
    d.write("images/a.pgm", &pgm(99));
    let after = ids_of(&d, SPEC);
    assert_ne!(after[0], base[0]);
    assert_ne!(after[1], base[1]);
    assert_eq!(after[2..], base[2..]);
    // Same bytes under another name: a different task (the name is part of identity).
    d.write("images/a.pgm", &pgm(0));
    std::fs::rename(d.path().join("images/a.pgm"), d.path().join("images/z.pgm")).unwrap();
    let renamed = ids_of(&d, &SPEC.replace("a.pgm", "z.pgm"));
    assert_ne!(renamed[0], base[0]);
    assert_eq!(renamed[2..], base[2..]);
}

/// A resolver that fills defaults like the real one, and counts its calls.
#[derive(Default)]
struct Defaults {
    models: AtomicUsize,
    metrics: AtomicUsize,
}

impl Resolver for Defaults {
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        self.models.fetch_add(1, Ordering::SeqCst);
        let mut m = spec.as_object().unwrap().clone();
        if m["name"] == "nope" {
            return Err("unknown model `nope`; valid: gaussian, on_off".into());
        }
        m.entry("std").or_insert(Value::from(3.0));
        Ok(Value::Object(m))
    }
    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        self.metrics.fetch_add(1, Ordering::SeqCst);
        Ok(spec.clone())
    }
}

fn plan_with(d: &Dir, text: &str, r: Arc<Defaults>) -> Result<Plan, synthsweep_sweep::SweepError> {
    SweepSpec::from_str(text, d.spec_path())?.plan_shared(r)
}

#[test]
fn giving_a_default_explicitly_keeps_the_id() {
    let d = Dir::new();
    let implicit = SPEC.replace("max_iter = 10\n", "");
    let explicit = implicit.replace("kernel_size = 5", "kernel_size = 5, std = 3.0");
    let explicit = explicit.replace("[params]\n", "[params]\nmax_iter = 100\n");
    let a: Vec<String> = tasks(&plan_with(&d, &implicit, Default::default()).unwrap())
        .iter()
        .map(|t| t.id().into())
        .collect();
    let b: Vec<String> = tasks(&plan_with(&d, &explicit, Default::default()).unwrap())
        .iter()
        .map(|t| t.id().into())
        .collect();
    assert_eq!(a, b);
    let t = &tasks(&plan_with(&d, &implicit, Default::default()).unwrap())[0];
    assert_eq!(t.model.as_deref().unwrap()["std"], 3.0);
    assert_eq!(t.params.max_iter(), Some(100));
}

#[test]
fn each_distinct_model_is_resolved_once() {
    let d = Dir::new();
    let text = r#"
name = "cache"
synth = "metamer"
[grid]
image = "images"
model = ["gaussian", { name = "gaussian", kernel_size = 5 }, "on_off"]
seed = [0, 1, 2, 3]
max_iter = [1, 2, 3]
"#;
    let r = Arc::new(Defaults::default());
    let plan = plan_with(&d, text, r.clone()).unwrap();
    assert_eq!(plan.len(), 3 * 3 * 4 * 3);
    assert_eq!(tasks(&plan).len(), 108);
    assert_eq!(r.models.load(Ordering::SeqCst), 3);
    assert_eq!(plan.images().len(), 3);
}

#[test]
fn resolver_errors_name_the_value() {
    let d = Dir::new();
    let r = || Arc::new(Defaults::default());
    let bad_model = SPEC
        .replace("[grid]", "[grid]\nmodel = [\"gaussian\", \"nope\"]")
        .replace("model = { name = \"gaussian\", kernel_size = 5 }\n", "");
    let e = plan_with(&d, &bad_model, r()).unwrap_err().to_string();
    assert!(
        e.contains("spec.toml:7:22: grid.model[1]: model nope: unknown model `nope`"),
        "{e}"
    );

    let bad_param = SPEC.replace("max_iter = 10", "max_iter = 10\nmax_iters = 10");
    let e = plan_with(&d, &bad_param, r()).unwrap_err().to_string();
    assert!(
        e.contains("params.max_iters: metamer parameters: max_iters: unknown parameter for synth `metamer`"),
        "{e}"
    );

    let bad_axis_value = SPEC.replace(
        "seed = [0, 1]",
        "seed = [0, 1]\nstop_iters_to_check = [5, 0]",
    );
    let e = plan_with(&d, &bad_axis_value, r()).unwrap_err().to_string();
    assert!(e.contains("grid.stop_iters_to_check[1]: metamer parameters: stop_iters_to_check: must be at least 1, got 0"), "{e}");
}

#[test]
fn two_values_that_resolve_alike_are_refused() {
    // `std = 3.0` is the default: both values describe the same model, so tasks would repeat.
    let d = Dir::new();
    let text = SPEC
        .replace("model = { name = \"gaussian\", kernel_size = 5 }\n", "")
        .replace(
            "[grid]",
            "[grid]\nmodel = [\"gaussian\", { name = \"gaussian\", std = 3.0 }]",
        );
    let e = plan_with(&d, &text, Arc::new(Defaults::default()))
        .unwrap_err()
        .to_string();
    assert_mentions(
        &e,
        &[
            "grid.model[1]",
            "one model once resolved: {\"name\":\"gaussian\",\"std\":3}",
            "listed twice in grid.model",
        ],
    );
    // With the no-op resolver they are different tasks.
    assert!(d.spec(&text).unwrap().plan(NoopResolver).is_ok());
}

#[test]
fn metrics_shared_by_two_axes_and_overridden_models_are_resolved_once_each() {
    let d = Dir::new();
    let r = Arc::new(Defaults::default());
    let mad = r#"
name = "m"
synth = "mad"
[grid]
image = "images"
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
"#;
    let plan = plan_with(&d, mad, r.clone()).unwrap();
    assert_eq!(tasks(&plan).len(), 24);
    assert_eq!(r.metrics.load(Ordering::SeqCst), 2);

    let r = Arc::new(Defaults::default());
    let eig = r#"
name = "e"
synth = "eigendistortion"
[params]
image = "images/a.pgm"
[grid]
max_iter = [1, 2, 3]
[[zip]]
model = ["gaussian", "center_surround"]
"model.kernel_size" = [5, 7]
"#;
    let plan = plan_with(&d, eig, r.clone()).unwrap();
    assert_eq!(tasks(&plan).len(), 6);
    assert_eq!(r.models.load(Ordering::SeqCst), 2);
}

/// Like the models registry: a TorchScript model (also a metric's nested `model`) gets its
/// file's `sha256`, so its identity is the file, not the path as typed.
struct Hashing;

fn with_digest(spec: &Value) -> Result<Value, String> {
    let mut m = spec.as_object().unwrap().clone();
    if m["name"] == "torchscript" {
        let path = m["path"].as_str().unwrap().to_string();
        let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
        m.insert(
            "sha256".into(),
            synthsweep_sweep::canonical::sha256_hex(&bytes).into(),
        );
    }
    if let Some(inner) = m.get("model").cloned() {
        m.insert("model".into(), with_digest(&inner)?);
    }
    Ok(Value::Object(m))
}

impl Resolver for Hashing {
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        with_digest(spec)
    }
    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        with_digest(spec)
    }
}

fn hashing_error(d: &Dir, text: &str) -> String {
    match SweepSpec::from_str(text, d.spec_path()).and_then(|s| s.plan(Hashing)) {
        Ok(p) => panic!("expected an error, got a plan of {} tasks", p.len()),
        Err(e) => e.to_string(),
    }
}

/// Every axis whose values are files compares them as the task id does (an image by its
/// name and bytes, a TorchScript model by its file's name and digest, a `model.path` by
/// the file it names), not by spelling: one file listed twice under two spellings is
/// refused when planning, naming the axis and both spellings, even where an exclusion keeps
/// the first tasks of the two values apart (before, those tasks planned with one id).
#[test]
fn one_file_under_two_spellings_is_refused_in_every_file_valued_axis() {
    let d = Dir::new();
    d.write("copy/a.pgm", &pgm(0));
    d.write("m.pt", b"torchscript bytes");
    let abs_model = d.path().join("m.pt");
    let abs_model = abs_model.to_str().unwrap();
    let metamer =
        |grid: &str| format!("name = \"t\"\nsynth = \"metamer\"\n[params]\nmax_iter = 1\n{grid}");
    let pair = |grid: &str| {
        format!("name = \"t\"\nsynth = \"geodesic\"\n[params]\nmodel = \"gaussian\"\n{grid}")
    };
    // Drops (b.pgm, m.pt): the first task of `m.pt` has c.pgm, that of `./m.pt` has b.pgm.
    let exclude_first = "[[exclude]]\nimage = \"images/b.pgm\"\nmodel = { name = \"torchscript\", path = \"m.pt\" }\n";
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            metamer("model = \"gaussian\"\n[grid]\nimage = [\"images/a.pgm\", \"images/b.pgm\", \"copy/a.pgm\"]\n"),
            vec!["grid.image[2]", "copy/a.pgm and images/a.pgm", "the file a.pgm, sha256", "listed twice in grid.image"],
        ),
        (
            metamer("model = \"gaussian\"\n[[zip]]\nimage = [\"images/a.pgm\", \"copy/a.pgm\"]\nseed = [0, 0]\n"),
            vec!["zip[0] row 1", "copy/a.pgm, 0 and images/a.pgm, 0", "listed twice in zip[0]"],
        ),
        (
            metamer(&format!("[grid]\nimage = [\"images/b.pgm\", \"images/c.pgm\"]\nmodel = [{{ name = \"torchscript\", path = \"m.pt\" }}, {{ name = \"torchscript\", path = \"./m.pt\" }}]\n{exclude_first}")),
            vec!["grid.model[1]", "./m.pt", "\"path\":\"m.pt\"", "one model once resolved", "listed twice in grid.model"],
        ),
        (
            metamer(&format!("[grid]\nimage = [\"images/a.pgm\"]\nmodel = [{{ name = \"torchscript\", path = \"m.pt\" }}, {{ name = \"torchscript\", path = \"{abs_model}\" }}]\n")),
            vec!["grid.model[1]", abs_model, "listed twice in grid.model"],
        ),
        (
            metamer("[params]\n[grid]\nimage = [\"images/a.pgm\"]\n[[zip]]\nmodel = [{ name = \"torchscript\", path = \"x.pt\" }, { name = \"torchscript\", path = \"x.pt\" }]\n\"model.path\" = [\"m.pt\", \"copy/../m.pt\"]\n").replace("[params]\n[grid]", "[grid]"),
            vec!["zip[0] row 1", "copy/../m.pt", "the file m.pt, sha256", "listed twice in zip[0]"],
        ),
        (
            "name = \"t\"\nsynth = \"score\"\n[params]\nimage_a = \"images/a.pgm\"\nimage_b = \"images/b.pgm\"\n[grid]\nmetric = [{ name = \"model_distance\", model = { name = \"torchscript\", path = \"m.pt\" } }, { name = \"model_distance\", model = { name = \"torchscript\", path = \"./m.pt\" } }]\n".to_string(),
            vec!["grid.metric[1]", "./m.pt", "one metric once resolved", "listed twice in grid.metric"],
        ),
        (
            pair("[grid]\npairs = [[\"images/a.pgm\", \"images/b.pgm\"], [\"copy/a.pgm\", \"images/b.pgm\"]]\n"),
            vec!["grid.pairs row 1", "copy/a.pgm, images/b.pgm and images/a.pgm, images/b.pgm", "listed twice in grid.pairs"],
        ),
        (
            pair("[params]\nimage_b = \"images/b.pgm\"\n[grid]\nimage_a = [\"images/a.pgm\", \"copy/a.pgm\"]\n").replace("model = \"gaussian\"\n[params]\n", "model = \"gaussian\"\n"),
            vec!["grid.image_a[1]", "copy/a.pgm and images/a.pgm", "listed twice in grid.image_a"],
        ),
        (
            pair("image_a = \"images/a.pgm\"\n[grid]\nimage_b = [\"copy/a.pgm\", \"images/a.pgm\"]\n"),
            vec!["grid.image_b[1]", "images/a.pgm and copy/a.pgm", "listed twice in grid.image_b"],
        ),
    ];
    for (text, expect) in &cases {
        let msg = hashing_error(&d, text);
        assert_mentions(&msg, expect);
    }
    // The same spellings of different files are different tasks.
    d.write("other/m.pt", b"other bytes");
    let ok = metamer("[grid]\nimage = [\"images/a.pgm\"]\nmodel = [{ name = \"torchscript\", path = \"m.pt\" }, { name = \"torchscript\", path = \"other/m.pt\" }]\n");
    let plan = SweepSpec::from_str(&ok, d.spec_path())
        .unwrap()
        .plan(Hashing)
        .unwrap();
    assert_eq!(tasks(&plan).len(), 2);
}

/// Two tasks with one id that no single axis shows (a `[[when]]` makes eigendistortion
/// `exact`, which ignores `k`, for one image only; the probe's first tasks miss the pair):
/// the check of every task finds them and names both, whatever the grid order.
#[test]
fn two_tasks_with_one_id_are_refused_wherever_they_are() {
    let d = Dir::new();
    let text = r#"
name = "t"
synth = "eigendistortion"
[params]
model = "gaussian"
[grid]
k = [1, 2]
image = ["images/a.pgm", "images/b.pgm"]
[[when]]
match = { image = "images/b.pgm" }
set = { method = "exact" }
"#;
    let msg = d.error(text);
    assert_mentions(
        &msg,
        &[
            "grid.k[1]",
            "tasks 1 (k=1, image=images/b.pgm) and 3 (k=2, image=images/b.pgm) are one task",
            "the tasks would repeat",
        ],
    );
    // Planning only one shard checks that shard's tasks the same way.
    let spec = d.spec(text).unwrap();
    let opts = synthsweep_sweep::PlanOptions {
        check: synthsweep_sweep::CheckScope::Shard { index: 1, count: 2 },
    };
    let e = spec
        .plan_with(Arc::new(NoopResolver), opts)
        .unwrap_err()
        .to_string();
    assert_mentions(&e, &["tasks 1 (", "and 3 (", "are one task"]);
    // `power` reads `k`: four tasks.
    let power = text.replace("\"exact\"", "\"power\"");
    assert_eq!(tasks(&d.plan(&power).unwrap()).len(), 4);
}
