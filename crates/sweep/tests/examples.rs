//! Every example spec in `sweeps/` parses, plans and expands (with the no-op resolver, so
//! model names are not checked here; the CLI's tests check them with the real one).
use std::path::PathBuf;
use synthsweep_sweep::{NoopResolver, SweepSpec, SynthKind};

fn sweeps_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sweeps");
    assert!(
        dir.join("images/einstein_64.pgm").is_file(),
        "example specs and images missing: expected them in {}",
        dir.display()
    );
    dir
}

fn plan(name: &str) -> synthsweep_sweep::Plan {
    SweepSpec::from_path(sweeps_dir().join(name))
        .unwrap_or_else(|e| panic!("{e}"))
        .plan(NoopResolver)
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_example_spec_plans_and_expands() {
    let mut kinds = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(sweeps_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in &files {
        let plan = SweepSpec::from_path(path)
            .unwrap_or_else(|e| panic!("{e}"))
            .plan(NoopResolver)
            .unwrap_or_else(|e| panic!("{e}"));
        let tasks: Vec<_> = plan
            .iter()
            .map(|t| t.unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(tasks.len() as u64, plan.len(), "{}", path.display());
        assert!(!tasks.is_empty());
        assert!(tasks.len() <= 64, "{}: examples stay small", path.display());
        let mut ids: Vec<&str> = tasks.iter().map(|t| t.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            tasks.len(),
            "{}: ids are distinct",
            path.display()
        );
        kinds.push(plan.spec().synth());
        print!(
            "{}: {}",
            path.file_name().unwrap().to_string_lossy(),
            plan.summary()
        );
    }
    for kind in SynthKind::ALL {
        assert!(kinds.contains(&kind), "no example spec for {kind}");
    }
}

#[test]
fn quickstart_is_twelve_mad_tasks() {
    let plan = plan("quickstart.toml");
    let s = plan.summary();
    assert_eq!(s.synth, SynthKind::Mad);
    assert_eq!(s.grid_size, 24);
    assert_eq!(s.tasks, 12);
    assert_eq!(s.images, 3);
    assert_eq!(s.excluded.len(), 1);
    assert_eq!(s.excluded[0].count, 12);
    assert!(s
        .to_string()
        .contains("excluded 12 by same(optimized_metric, reference_metric)"));
    for t in plan.iter() {
        let t = t.unwrap();
        assert_ne!(t.optimized_metric, t.reference_metric);
        assert_eq!(t.params.max_iter(), Some(500));
        assert!(t.minmax.is_some());
    }
}

#[test]
fn score_example_crosses_distinct_pairs() {
    let plan = plan("score.toml");
    assert_eq!(plan.len(), 18);
    for t in plan.iter() {
        let t = t.unwrap();
        let imgs = t.images.all();
        assert_eq!(imgs.len(), 2);
        assert_ne!(imgs[0].name, imgs[1].name);
    }
}
