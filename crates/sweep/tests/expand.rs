//! Expansion: task order, zips, exclusions, conditional values, pairs, repeats, shards, and
//! a million-task grid planned and walked without holding it.
use common::{assert_mentions, Dir};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Instant;
use synthsweep_sweep::{Plan, ShardScheme, SweepError, Task, TaskImages};
use synthsweep_testkit::sweep as common;

fn tasks(plan: &Plan) -> Vec<Task> {
    plan.iter().map(|t| t.unwrap()).collect()
}

fn coord<'a>(t: &'a Task, name: &str) -> &'a serde_json::Value {
    &t.coords.iter().find(|(k, _)| &**k == name).unwrap().1
}

#[test]
fn last_axis_varies_fastest() {
    let d = Dir::new();
    let plan = d
        .plan("name = \"o\"\nsynth = \"metamer\"\n[params]\nmodel = \"gaussian\"\n[grid]\nimage = \"images\"\nseed = [7, 8]\n")
        .unwrap();
    let got: Vec<(String, u64)> = tasks(&plan)
        .iter()
        .map(|t| (t.image().name.clone(), t.seed))
        .collect();
    let want: Vec<(String, u64)> = [("a", 7), ("a", 8), ("b", 7), ("b", 8), ("c", 7), ("c", 8)]
        .iter()
        .map(|(n, s)| (format!("{n}.pgm"), *s))
        .collect();
    assert_eq!(got, want);
    assert_eq!(tasks(&plan)[3].index, 3);
    assert_eq!(coord(&tasks(&plan)[3], "image"), "images/b.pgm");
}

#[test]
fn zipped_lists_advance_together_and_dotted_names_set_fields() {
    let d = Dir::new();
    let plan = d
        .plan(
            r#"
name = "z"
synth = "eigendistortion"
[params]
image = "images/a.pgm"
[grid]
method = ["power", "exact"]
[[zip]]
model = ["gaussian", { name = "center_surround", on_center = false }]
"model.kernel_size" = [5, 7]
"#,
        )
        .unwrap();
    assert_eq!(plan.grid_size(), 4);
    let models: Vec<_> = tasks(&plan)
        .iter()
        .map(|t| (*t.model.clone().unwrap()).clone())
        .collect();
    assert_eq!(models[0], json!({"name": "gaussian", "kernel_size": 5}));
    assert_eq!(
        models[1],
        json!({"name": "center_surround", "on_center": false, "kernel_size": 7})
    );
    assert_eq!(models[2], models[0]);
    assert_eq!(tasks(&plan)[1].params.to_json()["method"], "power");
    assert!(!tasks(&plan)[1]
        .params
        .to_json()
        .contains_key("model.kernel_size"));
}

#[test]
fn exclusions_by_value_and_by_sameness_are_counted_per_rule() {
    let d = Dir::new();
    let plan = d
        .plan(
            r#"
name = "x"
synth = "mad"
[grid]
image = "images/*.pgm"
optimized_metric = ["mse", "ssim_distance", { name = "model_distance", model = { name = "gaussian" } }]
reference_metric = ["mse", "ssim_distance", { name = "model_distance", model = { name = "gaussian" } }]
minmax = ["min", "max"]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
[[exclude]]
optimized_metric = "model_distance"
minmax = "max"
[[exclude]]
image = "c.pgm"
"#,
        )
        .unwrap();
    // 3 images x 3 x 3 x 2 = 54; same: 3 x 3 x 2 = 18; model_distance max among the rest:
    // 3 images x 2 reference metrics = 6; c.pgm among the rest: 18 - 6 - 2 = 10.
    let s = plan.summary();
    assert_eq!(s.grid_size, 54);
    let counts: Vec<u64> = s.excluded.iter().map(|e| e.count).collect();
    assert_eq!(counts, vec![18, 6, 10]);
    assert_eq!(plan.len(), 54 - 34);
    let all = tasks(&plan);
    assert_eq!(all.len() as u64, plan.len());
    for t in &all {
        assert_ne!(t.optimized_metric, t.reference_metric);
        assert_ne!(t.image().name, "c.pgm");
        let md = t.optimized_metric.as_ref().unwrap()["name"] == "model_distance";
        assert!(!(md && t.minmax == Some(synthsweep_sweep::MinMax::Max)));
    }
    let text = s.to_string();
    assert!(
        text.contains("excluded 18 by same(optimized_metric, reference_metric) (exclude[0])"),
        "{text}"
    );
    assert!(
        text.contains(
            "excluded 6 by optimized_metric = \"model_distance\", minmax = \"max\" (exclude[1])"
        ),
        "{text}"
    );
    assert!(
        text.contains("excluded 10 by image = \"c.pgm\" (exclude[2])"),
        "{text}"
    );
    // Excluded positions are gaps: task_by_index says so, and says which rule.
    assert!(plan.task_by_index(0).unwrap().is_none());
    assert_eq!(plan.excluded_by_index(0), Some("exclude[0]"));
    assert_eq!(plan.task_by_index(2).unwrap().unwrap().id(), all[0].id());
    assert!(matches!(
        plan.task_by_index(54),
        Err(SweepError::IndexOutOfRange {
            index: 54,
            grid_size: 54
        })
    ));
}

#[test]
fn when_rules_set_values_for_matching_tasks_in_order() {
    let d = Dir::new();
    let plan = d
        .plan(
            r#"
name = "w"
synth = "metamer"
[params]
image = "images/a.pgm"
max_iter = 100
optimizer = { name = "adam", lr = 0.01 }
[grid]
model = [{ name = "gaussian", kernel_size = 5 }, { name = "on_off", pretrained = true }]
seed = [0, 1]
[[when]]
match = { model = "on_off" }
set = { max_iter = 300, "optimizer.lr" = 0.001, "model.kernel_size" = 31 }
[[when]]
match = { model = { name = "on_off", pretrained = true }, seed = 1 }
set = { max_iter = 400 }
"#,
        )
        .unwrap();
    let all = tasks(&plan);
    let got: Vec<(u64, u64, f64)> = all
        .iter()
        .map(|t| {
            (
                t.seed,
                t.params.to_json()["max_iter"].as_u64().unwrap(),
                t.params.to_json()["optimizer"]["lr"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 100, 0.01),
            (1, 100, 0.01),
            (0, 300, 0.001),
            (1, 400, 0.001)
        ]
    );
    assert_eq!(all[2].model.as_deref().unwrap()["kernel_size"], 31);
    assert!(all[0].model.as_deref().unwrap().get("pretrained").is_none());
    assert!(plan
        .summary()
        .to_string()
        .contains("when[0]: model = \"on_off\" sets max_iter, optimizer.lr, model.kernel_size"));
}

#[test]
fn image_pairs_zipped_listed_or_crossed() {
    let d = Dir::new();
    let head = "name = \"p\"\nsynth = \"geodesic\"\n[params]\nmodel = \"gaussian\"\n";
    let listed = d
        .plan(&format!("{head}[grid]\npairs = [[\"images/a.pgm\", \"images/b.pgm\"], [\"images/b.pgm\", \"images/c.pgm\"]]\n"))
        .unwrap();
    let zipped = d
        .plan(&format!("{head}[[zip]]\nimage_a = [\"images/a.pgm\", \"images/b.pgm\"]\nimage_b = [\"images/b.pgm\", \"images/c.pgm\"]\n"))
        .unwrap();
    let names = |p: &Plan| -> Vec<(String, String)> {
        tasks(p)
            .iter()
            .map(|t| match &t.images {
                TaskImages::Pair(a, b) => (a.name.clone(), b.name.clone()),
                TaskImages::One(_) => panic!("geodesic has pairs"),
            })
            .collect()
    };
    assert_eq!(names(&listed), names(&zipped));
    assert_eq!(
        tasks(&listed)
            .iter()
            .map(|t| t.id().to_string())
            .collect::<Vec<_>>(),
        tasks(&zipped)
            .iter()
            .map(|t| t.id().to_string())
            .collect::<Vec<_>>()
    );
    let crossed = d
        .plan(&format!("{head}[grid]\nimage_a = \"images\"\nimage_b = \"images\"\n[[exclude]]\nsame = [\"image_a\", \"image_b\"]\n"))
        .unwrap();
    assert_eq!(crossed.len(), 6);
    // A zip of two globs pairs the sorted files.
    let globbed = d
        .plan(&format!("{head}[[zip]]\nimage_a = \"images/*.pgm\"\nimage_b = [\"images/b.pgm\", \"images/c.pgm\", \"images/a.pgm\"]\n"))
        .unwrap();
    assert_eq!(names(&globbed)[2], ("c.pgm".into(), "a.pgm".into()));
}

#[test]
fn repeats_make_seeds_zero_to_n() {
    let d = Dir::new();
    let plan = d
        .plan("name = \"r\"\nsynth = \"metamer\"\nrepeats = 4\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n")
        .unwrap();
    let seeds: Vec<u64> = tasks(&plan).iter().map(|t| t.seed).collect();
    assert_eq!(seeds, vec![0, 1, 2, 3]);
    // No seed and no repeats: seed 0.
    let plan = d.plan("name = \"r\"\nsynth = \"metamer\"\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n").unwrap();
    assert_eq!(plan.len(), 1);
    assert_eq!(tasks(&plan)[0].seed, 0);
}

/// `repeats` makes its seeds when asked (it holds no row per seed), yet acts exactly as the
/// same seeds listed in `[grid]`: crossed with another axis, matched by `[[exclude]]` and
/// `[[when]]`, in the coordinates, the ids and a shard.
#[test]
fn a_repeats_axis_acts_as_the_listed_seeds() {
    let d = Dir::new();
    let head = "name = \"r\"\nsynth = \"metamer\"\n";
    let body = "[params]\nimage = \"images/a.pgm\"\n[grid]\nmodel = [\"gaussian\", { name = \"gaussian\", kernel_size = 5 }]\n";
    let rules = "[[exclude]]\nseed = 2\n[[when]]\nmatch = { seed = 3 }\nset = { max_iter = 7 }\n";
    let lazy = d
        .plan(&format!("{head}repeats = 5\n{body}{rules}"))
        .unwrap();
    let listed = d
        .plan(&format!("{head}{body}seed = [0, 1, 2, 3, 4]\n{rules}"))
        .unwrap();
    let view = |p: &Plan| -> Vec<(String, u64, Option<u64>, String)> {
        tasks(p)
            .iter()
            .map(|t| {
                (
                    t.id().to_string(),
                    t.seed,
                    t.params.to_json()["max_iter"].as_u64(),
                    format!("{:?}", t.coords),
                )
            })
            .collect()
    };
    let got = view(&lazy);
    assert_eq!(got, view(&listed));
    assert_eq!(got.len(), 8);
    let seeds: Vec<u64> = got.iter().map(|t| t.1).collect();
    assert_eq!(seeds, vec![0, 1, 3, 4, 0, 1, 3, 4]);
    assert!(got.iter().all(|t| (t.2 == Some(7)) == (t.1 == 3)));
    let shard = |p: &Plan| -> Vec<String> {
        p.shard(1, 3)
            .unwrap()
            .map(|t| t.unwrap().id().to_string())
            .collect()
    };
    assert_eq!(shard(&lazy), shard(&listed));
    let e = d.error(&format!("{head}repeats = 5\n{body}[[exclude]]\nseed = 9\n"));
    assert_mentions(
        &e,
        &["9 matches no value of the axis `seed`", "0, 1, 2, 3, 4"],
    );
}

fn shard_plan(d: &Dir) -> Plan {
    d.plan(
        r#"
name = "s"
synth = "mad"
[grid]
image = "images"
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
seed = [0, 1, 2]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#,
    )
    .unwrap()
}

#[test]
fn shards_partition_the_tasks() {
    let d = Dir::new();
    let plan = shard_plan(&d);
    assert_eq!(plan.len(), 36);
    let all: Vec<u64> = plan.indices().collect();
    for scheme in [ShardScheme::Strided, ShardScheme::Contiguous] {
        for n in [1u64, 2, 5, 7, 36, 50] {
            let mut union = Vec::new();
            for i in 0..n {
                let idx: Vec<u64> = plan.shard_indices(i, n, scheme).unwrap().collect();
                assert_eq!(idx.len() as u64, plan.shard_len(i, n, scheme).unwrap());
                assert!(idx.len() as u64 <= plan.len().div_ceil(n));
                assert!(idx.len() as u64 >= plan.len() / n);
                let tasks: Vec<Task> = plan
                    .shard_with(i, n, scheme)
                    .unwrap()
                    .map(|t| t.unwrap())
                    .collect();
                assert_eq!(tasks.iter().map(|t| t.index).collect::<Vec<_>>(), idx);
                union.extend(idx);
            }
            union.sort_unstable();
            assert_eq!(union, all, "{scheme:?} n={n}");
        }
    }
    // Strided: shard 1 of 5 holds task ranks 1, 6, 11, ...
    let s: Vec<u64> = plan
        .shard_indices(1, 5, ShardScheme::Strided)
        .unwrap()
        .collect();
    assert_eq!(s[..3], [all[1], all[6], all[11]]);
    let c: Vec<u64> = plan
        .shard_indices(1, 5, ShardScheme::Contiguous)
        .unwrap()
        .collect();
    assert_eq!(c, all[7..14]);
    assert_eq!(plan.shard(0, 4).unwrap().count(), 9);
    assert!(matches!(
        plan.shard(4, 4).err(),
        Some(SweepError::BadShard { index: 4, count: 4 })
    ));
    assert!(plan.shard(0, 0).is_err());
}

#[test]
fn a_million_tasks_are_counted_and_walked_without_being_held() {
    let d = Dir::new();
    let values = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    // initial_noise > 0: with 0, MAD's automatic metric_tradeoff_lambda has no value.
    let noises = (1..=500)
        .map(|i| format!("{}", i as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(", ");
    let text = format!(
        r#"
name = "big"
synth = "mad"
[params]
max_iter = 10
image = "images/a.pgm"
[grid]
optimized_metric = ["mse", "ssim_distance"]
reference_metric = ["mse", "ssim_distance"]
minmax = ["min", "max"]
seed = [{}]
initial_noise = [{}]
[[exclude]]
same = ["optimized_metric", "reference_metric"]
"#,
        values(500),
        noises
    );
    let t0 = Instant::now();
    let plan = d.plan(&text).unwrap();
    let planned = t0.elapsed();
    assert_eq!(plan.grid_size(), 2 * 2 * 2 * 500 * 500);
    assert_eq!(plan.len(), 1_000_000);
    let t1 = Instant::now();
    let mut n = 0u64;
    let mut last = 0u64;
    let mut ids = BTreeSet::new();
    for t in plan.iter() {
        let t = t.unwrap();
        assert!(n == 0 || t.index > last);
        last = t.index;
        if n.is_multiple_of(1000) {
            ids.insert(t.id().to_string());
        }
        n += 1;
    }
    let walked = t1.elapsed();
    assert_eq!(n, 1_000_000);
    assert_eq!(ids.len(), 1000);
    let t2 = Instant::now();
    let last_shard = plan
        .shard_indices(99, 100, ShardScheme::Contiguous)
        .unwrap()
        .count();
    assert_eq!(last_shard, 10_000);
    println!(
        "1,000,000 tasks of a 2,000,000-position grid: planned in {planned:.2?}, built and hashed \
         all in {walked:.2?} ({:.2} us/task), found shard 99/100 in {:.2?}",
        walked.as_secs_f64() * 1e6 / n as f64,
        t2.elapsed()
    );
}

#[test]
fn plans_and_tasks_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Plan>();
    send_sync::<Task>();
    let d = Dir::new();
    let plan = shard_plan(&d);
    let ids: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let plan = &plan;
                s.spawn(move || {
                    plan.shard(i, 3)
                        .unwrap()
                        .map(|t| t.unwrap().id().to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<String> = ids.concat();
    all.sort();
    let mut want: Vec<String> = tasks(&plan).iter().map(|t| t.id().to_string()).collect();
    want.sort();
    assert_eq!(all, want);
}

/// A rule between two values that no single value shows (each value is fine in the first
/// task that has it) is found by checking every task while planning; a plan that skips that
/// check still refuses the task when it is built.
#[test]
fn a_combination_that_breaks_a_rule_is_found_before_anything_runs() {
    use std::sync::Arc;
    use synthsweep_sweep::{CheckScope, NoopResolver, PlanOptions, SweepSpec};
    let d = Dir::new();
    let text = "name = \"c\"\nsynth = \"metamer_ctf\"\n[params]\nimage = \"images/a.pgm\"\nmodel = \"gaussian\"\n\
                [grid]\nstop_criterion = [0.001, 0.1]\nchange_scale_criterion = [0.5, 0.05]\n";
    let e = d.error(text);
    assert_mentions(
        &e,
        &[
            "spec.toml:7:26: grid.stop_criterion[1]: metamer_ctf parameters: stop_criterion: must be strictly less than change_scale_criterion (0.1 >= 0.05)",
            "(task 3: stop_criterion=0.1, change_scale_criterion=0.05)",
        ],
    );
    let plan = SweepSpec::from_str(text, d.spec_path())
        .unwrap()
        .plan_with(
            Arc::new(NoopResolver),
            PlanOptions {
                check: CheckScope::Values,
            },
        )
        .unwrap();
    let results: Vec<_> = plan.iter().collect();
    assert_eq!(results.len(), 4);
    assert!(results[..3].iter().all(|r| r.is_ok()));
    let e = results[3].as_ref().unwrap_err().to_string();
    assert!(
        e.contains("spec.toml: task 3 (stop_criterion=0.1, change_scale_criterion=0.05): metamer_ctf parameters: stop_criterion"),
        "{e}"
    );
    assert!(plan.check(CheckScope::Shard { index: 0, count: 2 }).is_ok());
    assert!(plan
        .check(CheckScope::Shard { index: 1, count: 2 })
        .is_err());
}

#[test]
fn a_path_naming_an_existing_file_is_that_file_glob_characters_or_not() {
    let d = Dir::new();
    d.write("imgs/a[1].pgm", &common::pgm(1));
    d.write("imgs/a1.pgm", &common::pgm(2));
    d.write("imgs/a2.pgm", &common::pgm(3));
    d.write("imgs/b*.pgm", &common::pgm(4));
    d.write("imgs/bz.pgm", &common::pgm(5));
    d.write("lit[x]/c?.pgm", &common::pgm(6));
    let names = |entry: &str| -> Vec<String> {
        let text = format!(
            "name = \"l\"\nsynth = \"metamer\"\n[params]\nmodel = \"gaussian\"\n[grid]\nimage = {entry:?}\n"
        );
        tasks(&d.plan(&text).unwrap())
            .iter()
            .map(|t| t.image().display.clone())
            .collect()
    };
    // Existing files: only that file, although `[1]` and `*` would match others as globs.
    assert_eq!(names("imgs/a[1].pgm"), ["imgs/a[1].pgm"]);
    assert_eq!(names("imgs/b*.pgm"), ["imgs/b*.pgm"]);
    // An existing directory with glob characters in its name is that directory.
    assert_eq!(names("lit[x]"), ["lit[x]/c?.pgm"]);
    assert_eq!(names("lit[x]/c?.pgm"), ["lit[x]/c?.pgm"]);
    // No file of that name: glob syntax applies.
    assert_eq!(names("imgs/a[12].pgm"), ["imgs/a1.pgm", "imgs/a2.pgm"]);
    assert_eq!(names("imgs/a[[]1].pgm"), ["imgs/a[1].pgm"]);
    assert_eq!(names("imgs/b?.pgm"), ["imgs/b*.pgm", "imgs/bz.pgm"]);
    let msg = d.error(
        "name = \"l\"\nsynth = \"metamer\"\n[params]\nmodel = \"gaussian\"\n[grid]\nimage = \"imgs/a[3].pgm\"\n",
    );
    common::assert_mentions(
        &msg,
        &[
            "grid.image",
            "the glob `imgs/a[3].pgm` matches no image",
            "no file or directory has that name",
        ],
    );
    // A glob through a folder whose name holds glob characters: `[x]` reads as a pattern
    // (matching `litx` only); the error points to the glob with the folder escaped.
    let msg = d.error(
        "name = \"l\"\nsynth = \"metamer\"\n[params]\nmodel = \"gaussian\"\n[grid]\nimage = \"lit[x]/*.pgm\"\n",
    );
    common::assert_mentions(
        &msg,
        &[
            "the glob `lit[x]/*.pgm` matches no image",
            "the folder `lit[x]` exists",
            "`lit[[]x[]]/*.pgm` matches 1 image(s) in it",
        ],
    );
    assert_eq!(names("lit[[]x[]]/*.pgm"), ["lit[x]/c?.pgm"]);
}
