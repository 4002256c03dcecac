//! Task identity: the same task has the same id on every run and machine, however the spec
//! is written and wherever the images live; changing anything the task computes from
//! changes it.
use common::{pgm, Dir};
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
    assert!(
        e.contains("two grid positions describe the same task"),
        "{e}"
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
