//! Results written to a local folder read back identical, column by column.

use synthsweep_testkit::store as common;

use std::fs::File;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use synthsweep_store::*;

fn write(root: &std::path::Path, n: usize, max_tasks: usize) -> Vec<TaskResult> {
    let store = Store::open(&OutputRoot::Local(root.into())).unwrap();
    let prepared = store.prepare(PrepareOptions::default()).unwrap();
    assert!(prepared.ledger.is_empty());
    let mut opts = WriterOptions::new("run1");
    opts.max_tasks = max_tasks;
    let mut w = store.writer(opts, &prepared.ledger).unwrap();
    let results: Vec<TaskResult> = (0..n).map(common::sample_result).collect();
    for r in &results {
        w.push(r.clone()).unwrap();
    }
    let stats = w.finish().unwrap();
    assert_eq!(stats.tasks, n);
    assert_eq!(stats.batches, n.div_ceil(max_tasks));
    results
}

#[test]
fn every_file_has_the_schema_of_its_table() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 40, 16);
    for table in Table::ALL {
        let files = common::table_files(dir.path(), table.name());
        assert_eq!(files.len(), 3, "{table}: {files:?}");
        let mut rows = 0;
        for f in files {
            assert!(
                f.starts_with("part-run1-w-") && f.ends_with(".parquet"),
                "{f}"
            );
            let file = File::open(dir.path().join(table.name()).join(&f)).unwrap();
            let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
            // Types and nullability, as any Arrow reader of the file sees them.
            assert_eq!(
                reader.schema().fields(),
                table.schema().fields(),
                "{table}/{f}"
            );
            for b in reader.build().unwrap() {
                let b = b.unwrap();
                assert_eq!(b.schema().fields(), table.schema().fields());
                rows += b.num_rows();
            }
        }
        let want = match table {
            Table::Tasks | Table::Scores => 40,
            Table::Losses => 200,
            Table::Eigen => 20,
            Table::Images => 80,
        };
        assert_eq!(rows, want, "{table}");
    }
}

#[test]
fn every_value_reads_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let results = write(dir.path(), 40, 16);
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let d = store.read_dataset().unwrap();

    let mut tasks = d.tasks.clone();
    tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    assert_eq!(tasks.len(), results.len());
    for (got, r) in tasks.iter().zip(&results) {
        assert_eq!(got.run_id, "run1");
        assert!(got.batch_id.starts_with("run1-w-"), "{}", got.batch_id);
        let mut want = r.task.clone();
        want.run_id = got.run_id.clone();
        want.batch_id = got.batch_id.clone();
        assert_eq!(*got, want);
    }
    // Child rows: same multiset (files group them by batch, in push order within one).
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let want_losses: Vec<LossRow> = results
        .iter()
        .flat_map(|r| {
            r.losses.iter().map(|l| LossRow {
                task_id: r.task.task_id.clone(),
                ..l.clone()
            })
        })
        .collect();
    assert_eq!(
        sorted(d.losses.iter().map(|r| format!("{r:?}")).collect()),
        sorted(want_losses.iter().map(|r| format!("{r:?}")).collect())
    );
    for (name, got, want) in [
        (
            "eigen",
            d.eigen.iter().map(|r| format!("{r:?}")).collect::<Vec<_>>(),
            results
                .iter()
                .flat_map(|r| {
                    r.eigen.iter().map(|x| {
                        format!(
                            "{:?}",
                            EigenRow {
                                task_id: r.task.task_id.clone(),
                                ..x.clone()
                            }
                        )
                    })
                })
                .collect(),
        ),
        (
            "images",
            d.images.iter().map(|r| format!("{r:?}")).collect(),
            results
                .iter()
                .flat_map(|r| {
                    r.images.iter().map(|x| {
                        format!(
                            "{:?}",
                            ImageRow {
                                task_id: r.task.task_id.clone(),
                                ..x.clone()
                            }
                        )
                    })
                })
                .collect(),
        ),
        (
            "scores",
            d.scores.iter().map(|r| format!("{r:?}")).collect(),
            results
                .iter()
                .flat_map(|r| {
                    r.scores.iter().map(|x| {
                        format!(
                            "{:?}",
                            ScoreRow {
                                task_id: r.task.task_id.clone(),
                                ..x.clone()
                            }
                        )
                    })
                })
                .collect(),
        ),
    ] {
        assert_eq!(sorted(got), sorted(want), "{name}");
    }
}

#[test]
fn layout_has_only_parquet_in_table_folders_and_nothing_left_in_staging() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 10, 4);
    for f in common::files_under(dir.path()) {
        let top = f.split('/').next().unwrap();
        match top {
            "tasks" | "losses" | "eigen" | "images" | "scores" => {
                assert!(f.ends_with(".parquet"), "stray file {f}")
            }
            "_staging" => panic!("staging file left: {f}"),
            _ => panic!("unexpected file {f}"),
        }
    }
}

#[test]
fn summary_counts_statuses_durations_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 40, 16);
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let s = store.summary().unwrap();
    // Failed: i % 10 == 7 -> 7, 17, 27, 37.
    assert_eq!((s.done, s.failed, s.total()), (36, 4, 40));
    assert_eq!(s.batches, 3);
    assert_eq!(s.runs.len(), 1);
    assert_eq!(s.by_synth["geodesic"], (8, 2)); // 7, 27 are geodesics (i % 4 == 3)
    assert_eq!(s.by_synth["eigendistortion"], (8, 2)); // 17, 37
    let d = s.durations.unwrap();
    assert_eq!(d.max_s, 39.5);
    assert_eq!(s.errors.iter().map(|e| e.count).sum::<usize>(), 4);
    assert_eq!(s.errors[0].count, 2); // "...iteration 1": 7 and 37 (i % 3 == 1)
    let text = s.to_string();
    assert!(
        text.starts_with("40 tasks committed: 36 done, 4 failed"),
        "{text}"
    );
    assert!(text.contains("loss is NaN"), "{text}");
}

#[test]
fn run_provenance_is_written_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let id = new_run_id();
    let mut run = RunInfo::new(&id, "[sweep]\nname = \"demo\"\n");
    run.devices = vec!["cpu".into()];
    run.git_commit = Some("abc123".into());
    store.write_run(&run).unwrap();
    run.finish();
    run.committed_done = Some(3);
    store.write_run(&run).unwrap();
    assert_eq!(store.read_runs().unwrap(), vec![run]);
    assert!(dir.path().join(format!("_runs/{id}.json")).exists());
}

#[test]
fn bad_rows_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&OutputRoot::Local(dir.path().into())).unwrap();
    let mut w = store
        .writer(WriterOptions::new("r"), &Ledger::default())
        .unwrap();
    let mut r = common::sample_result(1);
    r.images[0].pixels = Some(vec![0.0; 5]);
    assert!(w
        .push(r)
        .unwrap_err()
        .to_string()
        .contains("5 pixel values"));
    let mut r = common::sample_result(2);
    r.losses[0].task_id = "other".into();
    assert!(w.push(r).is_err());
    let mut r = common::sample_result(3);
    r.task.task_id.clear();
    assert!(w.push(r).is_err());
    assert!(store
        .writer(WriterOptions::new("has space"), &Ledger::default())
        .is_err());
    assert_eq!(w.finish().unwrap(), WriterStats::default());
    assert!(common::files_under(dir.path()).is_empty());
}
