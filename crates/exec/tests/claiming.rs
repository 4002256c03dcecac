//! The claiming source keeps its claims near what its slots run: a slot that asks for a
//! batch of tasks that run alone (here simple_metamer, never batched) gets one task per
//! request, and the source does not claim another group on every request (it did: with
//! `--batch 4`, 20 requests claimed the whole 200-task plan, which a second writer then
//! waited for, and a killed writer stranded until its lease expired).
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use synthsweep_exec::{prepare_root, ClaimingSource, PlanSource, TaskResolver, TaskSource};
use synthsweep_store::{LeaseOptions, OutputRoot, PrepareOptions, Store, WriterIdentity};
use synthsweep_sweep::SweepSpec;

#[test]
fn a_slot_asking_for_a_batch_of_tasks_that_run_alone_does_not_claim_the_whole_plan() {
    let dir = tempfile::tempdir().unwrap();
    let mut pgm = b"P5\n16 16\n255\n".to_vec();
    pgm.extend((0..256u32).map(|i| (i * 37 % 251) as u8));
    std::fs::write(dir.path().join("img.pgm"), pgm).unwrap();
    let spec = SweepSpec::from_str(
        "name = \"claims\"\nsynth = \"simple_metamer\"\nrepeats = 200\n[params]\nimage = \"img.pgm\"\nmodel = { name = \"gaussian\", kernel_size = 3 }\nmax_iter = 1\n",
        dir.path().join("claims.toml"),
    )
    .unwrap();
    let plan = spec.plan(TaskResolver::new()).unwrap();
    let root = dir.path().join("out");
    let store = Store::open(&OutputRoot::Local(root.clone())).unwrap();
    store
        .start_session(
            WriterIdentity {
                run_id: "claims-test".into(),
                tag: "p0".into(),
                role: "local".into(),
            },
            LeaseOptions::default(),
        )
        .unwrap();
    let prepared = prepare_root(&store, PrepareOptions::default()).unwrap();
    let source = PlanSource::new(plan.iter(), &prepared.ledger);
    let cancel = AtomicBool::new(false);
    let claiming = ClaimingSource::new(&source, &store, &cancel, 2, Duration::from_secs(1));
    let requests = 20;
    for _ in 0..requests {
        let got = claiming.next(0, 4);
        assert_eq!(got.len(), 1, "simple_metamer tasks run one at a time");
    }
    let claimed = std::fs::read_dir(root.join("_claims")).unwrap().count();
    // Handed out, plus at most a batch and the groups claimed while the 20 requests came
    // quickly (the group doubles from 4 while it is used up within 2 s).
    assert!(
        claimed <= requests + 4 + 32,
        "{claimed} tasks claimed for {requests} handed out"
    );
    store.finish_session().unwrap();
}
