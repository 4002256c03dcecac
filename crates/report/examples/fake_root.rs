//! Writes a synthetic output root of N metamer-like tasks (the report benchmark's input,
//! `scripts/bench_report.sh`): 4 models x images x seeds, 200 loss rows and four 32x32
//! images (target, initial, metamer, representation error) per task, 1 % failed, committed by the store's writer
//! in its usual batches. With `score`, N score tasks instead (one metric value each, no
//! images: cheap to write for a large count). Usage: `fake_root ROOT N [metamer|score]`.
use synthsweep_store::*;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (root, n, kind): (&str, usize, &str) = match args.as_slice() {
        [_, r, n] => (r, n.parse().expect("N: a number of tasks"), "metamer"),
        [_, r, n, k] if k == "metamer" || k == "score" => {
            (r, n.parse().expect("N: a number of tasks"), k)
        }
        _ => {
            eprintln!("usage: fake_root ROOT N [metamer|score]");
            std::process::exit(2);
        }
    };
    let store = Store::open(&OutputRoot::parse(root)?)?;
    let prepared = store.prepare(PrepareOptions::default())?;
    let run_id = new_run_id();
    let mut run = RunInfo::new(&run_id, "name = \"fake\"\nsynth = \"metamer\"\n");
    store.write_run(&run)?;
    let mut w = store.writer(WriterOptions::new(&run_id), &prepared.ledger)?;
    let models = [
        "gaussian",
        "center_surround",
        "luminance_gain_control",
        "ps",
    ];
    let (side, iters) = (32usize, 200usize);
    for i in 0..n {
        if kind == "score" {
            let (a, b) = (
                format!("images/img{:03}.pgm", i % 400),
                format!("images/img{:03}.pgm", (i / 400) % 400),
            );
            w.push(TaskResult {
                task: TaskRow {
                    task_id: format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
                    sweep: "fake".into(),
                    synth: "score".into(),
                    image: Some(format!("{a} -> {b}")),
                    seed: (i / 160_000) as i64,
                    params: r#"{"params":{}}"#.into(),
                    status: TaskStatus::Done,
                    duration_s: 0.01 + (i % 13) as f64 * 0.001,
                    host: hostname(),
                    ..Default::default()
                },
                scores: vec![ScoreRow {
                    image_a: a,
                    image_b: b,
                    metric: r#"{"name":"mse"}"#.into(),
                    value: (i % 997) as f64 / 997.0,
                    ..Default::default()
                }],
                ..Default::default()
            })?;
            continue;
        }
        let model = models[i % 4];
        let image = format!("img{:03}.pgm", (i / 4) % 50);
        let seed = (i / 200) as i64;
        let failed = i % 100 == 99;
        let losses: Vec<LossRow> = (0..iters)
            .map(|k| LossRow {
                iteration: k as i64,
                loss: (1.0 + i as f64 % 7.0) * (-(k as f64) / 40.0).exp(),
                gradient_norm: Some(1.0 / (k + 1) as f64),
                ..Default::default()
            })
            .collect();
        let px = |phase: f32| -> Vec<f32> {
            (0..side * side)
                .map(|p| 0.5 + 0.4 * ((p as f32 * 0.37 + phase + i as f32).sin()))
                .collect()
        };
        let img = |role: &str, phase: f32| ImageRow {
            role: role.into(),
            channels: 1,
            height: side as i32,
            width: side as i32,
            pixels: Some(px(phase)),
            ..Default::default()
        };
        let task = TaskRow {
            task_id: format!("{:064x}", i as u128 * 0x9e37_79b9_7f4a_7c15),
            sweep: "fake".into(),
            synth: "metamer".into(),
            image: Some(format!("images/{image}")),
            model: Some(format!(r#"{{"name":"{model}"}}"#)),
            seed,
            params: format!(
                r#"{{"params":{{"max_iter":{iters},"optimizer":{{"lr":{}}}}},"seed":{seed}}}"#,
                [0.01, 0.02][i % 2]
            ),
            status: if failed {
                TaskStatus::Failed
            } else {
                TaskStatus::Done
            },
            error: failed.then(|| "loss is NaN at iteration 17".to_string()),
            iterations: iters as i64,
            final_loss: (!failed).then_some(losses[iters - 1].loss),
            duration_s: 1.0 + (i % 13) as f64 * 0.1,
            host: hostname(),
            ..Default::default()
        };
        w.push(TaskResult {
            task,
            losses,
            images: vec![
                img("target_image", 0.0),
                img("initial_image", 1.0),
                img("metamer", 0.1),
                img("representation_error", 0.3),
            ],
            ..Default::default()
        })?;
    }
    w.finish()?;
    run.finish();
    store.write_run(&run)?;
    println!("{n} tasks in {root}");
    Ok(())
}
