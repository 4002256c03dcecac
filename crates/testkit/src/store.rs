//! Sample results for the store, writers, temp roots, the moto S3 server and the Python
//! table checks.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use synthsweep_store::*;

pub use crate::{files_under, venv_python, workspace_root};

/// A time with whole microseconds, so it survives the round trip exactly.
pub fn at(us: i64) -> std::time::SystemTime {
    from_micros(1_740_000_000_000_000 + us)
}

/// A varied result: MAD competitions, eigendistortions and metamers, some failed.
pub fn sample_result(i: usize) -> TaskResult {
    let id = format!("task-{i:05}");
    let kind = i % 4;
    let failed = i % 10 == 7;
    let mut task = TaskRow {
        task_id: id.clone(),
        sweep: "demo".into(),
        synth: ["mad_competition", "eigendistortion", "metamer", "geodesic"][kind].into(),
        image: Some(format!("einstein_{}", i % 3)),
        seed: i as i64,
        params: format!(r#"{{"i":{i},"lr":0.01}}"#),
        iterations: 5,
        duration_s: 0.5 + i as f64,
        device: "cpu".into(),
        host: "testhost".into(),
        worker: Some(format!("p0-w{}", i % 2)),
        started_at: at(i as i64 * 1_000_001),
        finished_at: at(i as i64 * 1_000_001 + 500_000),
        torch_version: i.is_multiple_of(2).then(|| "2.13.0".to_string()),
        final_loss: (kind != 1 && !failed).then_some(0.125 * i as f64),
        metric_tradeoff_lambda: (kind == 0 && !failed).then_some(1.5),
        jerkiness: (kind == 3 && !failed).then_some(0.0625),
        jerkiness_frames: (kind == 3 && !failed).then(|| vec![0.03125, 0.03125]),
        power_iterations_top: (kind == 1 && !failed).then_some(7),
        power_iterations_bottom: (kind == 1 && !failed).then_some(i as i64),
        ..Default::default()
    };
    if kind == 0 {
        task.model = None;
        task.optimized_metric = Some(r#"{"metric":"mse"}"#.into());
        task.reference_metric = Some(r#"{"metric":"ssim"}"#.into());
        task.minmax = Some(if i.is_multiple_of(8) { "min" } else { "max" }.into());
    } else {
        task.model = Some(r#"{"model":"gaussian","std":1.5}"#.into());
    }
    if failed {
        task.status = TaskStatus::Failed;
        task.error = Some(format!("loss is NaN at iteration {}", i % 3));
    }
    let losses = (0..5)
        .map(|it| LossRow {
            iteration: it,
            loss: 1.0 / (1.0 + it as f64 + i as f64),
            gradient_norm: (kind != 1).then_some(0.1 * it as f64),
            pixel_change_norm: (it > 0).then_some(0.01),
            optimized_metric_loss: (kind == 0).then_some(0.5),
            reference_metric_loss: (kind == 0).then_some(0.25),
            scale: (kind == 2).then(|| if it < 3 { "1" } else { "all" }.to_string()),
            scale_loss: (kind == 2).then_some(0.75 / (1.0 + it as f64)),
            // Geodesic, store_progress = 2: lists at even iterations only.
            step_energy: (kind == 3 && it % 2 == 0).then(|| vec![0.5, 0.25 * it as f64, 0.125]),
            dist_along_line: (kind == 3 && it % 2 == 0).then(|| vec![0.0, 0.4, 0.7, 1.0]),
            dist_from_line: (kind == 3 && it % 2 == 0).then(|| vec![0.0, 0.1, it as f64, 0.0]),
            ..Default::default()
        })
        .collect();
    let eigen = if kind == 1 {
        (0..2)
            .map(|k| EigenRow {
                eigenindex: k,
                eigenvalue: 10.0 / (k + 1) as f64,
                ..Default::default()
            })
            .collect()
    } else {
        vec![]
    };
    let images = vec![
        ImageRow {
            role: "initial_image".into(),
            index: 0,
            iteration: None,
            channels: 1,
            height: 2,
            width: 3,
            pixels: Some(vec![0.0, 0.1, 0.2, 0.3, 0.4, i as f32]),
            png: Some(vec![0x89, b'P', b'N', b'G', i as u8]),
            ..Default::default()
        },
        ImageRow {
            role: "saved".into(),
            index: 1,
            iteration: Some(4),
            channels: 3,
            height: 1,
            width: 1,
            pixels: None,
            png: None,
            ..Default::default()
        },
    ];
    let scores = vec![ScoreRow {
        image_a: "initial_image/0".into(),
        image_b: "saved/1".into(),
        metric: r#"{"metric":"mse"}"#.into(),
        value: i as f64 * 0.5,
        ..Default::default()
    }];
    TaskResult {
        task,
        losses,
        eigen,
        images,
        scores,
    }
}

/// A writer with limits that never trigger by themselves.
pub fn big_writer(store: &Store, ledger: &Ledger, run: &str) -> Writer {
    let mut o = WriterOptions::new(run);
    o.max_tasks = 1_000_000;
    o.max_bytes = usize::MAX;
    o.max_age = Duration::from_secs(3600);
    store.writer(o, ledger).unwrap()
}

/// Files of one table folder.
pub fn table_files(root: &Path, table: &str) -> Vec<String> {
    files_under(&root.join(table))
}

/// A moto S3 server on a free loopback port, stopped on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
}

impl Moto {
    pub fn start() -> Moto {
        let py = venv_python();
        let ok = Command::new(&py)
            .args(["-c", "import moto.server"])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "moto is not installed in {}: `.venv/bin/pip install \"moto[server]\"` \
             (scripts/requirements.txt lists it)",
            py.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // moto runs under a shell that kills it when our stdin pipe closes, so the server
        // goes away with the test process even when that one panics or is killed.
        let script = format!(
            "\"$0\" -m moto.server -H 127.0.0.1 -p {port} >/dev/null 2>&1 & m=$!; \
             trap 'kill $m 2>/dev/null' EXIT; read -r _; kill $m 2>/dev/null; wait $m"
        );
        let child = Command::new("bash")
            .args(["-c", &script])
            .arg(&py)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut moto = Moto {
            child,
            port,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = moto.child.try_wait().unwrap() {
                panic!("moto server exited at start: {status}");
            }
            if moto.http("GET", "/moto-api/").starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "moto did not start in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    /// A raw HTTP request (moto accepts unsigned requests); returns the response text, or
    /// an empty string when the server does not answer.
    pub fn http(&self, method: &str, path: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        if s.write_all(req.as_bytes()).is_err() {
            return String::new();
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    pub fn create_bucket(&self, bucket: &str) {
        let r = self.http("PUT", &format!("/{bucket}"));
        assert!(r.starts_with("HTTP/1.1 200"), "create bucket: {r}");
    }

    /// Store options reaching this server, with quick retries.
    pub fn options(&self) -> StoreOptions {
        StoreOptions::quick_retries()
            .with_s3("aws_endpoint", &self.endpoint)
            .with_s3("aws_access_key_id", "test")
            .with_s3("aws_secret_access_key", "test")
            .with_s3("aws_region", "us-east-1")
    }

    /// Environment variables for Python readers.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Keys of every object in a bucket under a prefix (moto ignores signatures).
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let r = self.http("GET", &format!("/{bucket}?list-type=2&prefix={prefix}"));
        let mut keys: Vec<String> = r
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing stdin makes the shell stop moto.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// One moto server for a whole test binary (tests use their own buckets); it stops when
/// the test process exits.
pub fn shared_moto() -> &'static Moto {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    MOTO.get_or_init(Moto::start)
}

/// Runs `tests/python/check_tables.py` on a root; panics with its output on failure.
pub fn check_tables(root: &str, args: &[&str], env: &[(&str, String)]) -> String {
    crate::run_python(
        "check_tables.py",
        std::iter::once(root).chain(args.iter().copied()),
        env,
    )
}

/// The task ids of `tasks`, sorted; asserts that none is there twice.
pub fn unique_task_ids(d: &Dataset) -> Vec<String> {
    let mut ids: Vec<String> = d.tasks.iter().map(|t| t.task_id.clone()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "a task is in `tasks` twice");
    ids
}

/// One writer of the many-writer tests, as the engine runs one, in small: a session, a
/// recovery, then claim tasks in groups, "run" the claimed ones (a sleep), commit, and
/// wait for tasks other live writers hold until each is committed (taking over those of
/// writers that die). Tasks are `sample_result(0..tasks)`.
#[derive(Debug, Clone)]
pub struct ClaimingWriter {
    pub tasks: usize,
    /// Tasks claimed per request round.
    pub group: usize,
    /// Tasks per committed batch.
    pub batch: usize,
    pub tag: String,
    pub lease: Duration,
    pub task_ms: u64,
    /// End together: before ending its session, the writer creates `<folder>/<tag>` and
    /// waits (up to a minute) until the folder holds this many files, so that the writers
    /// sharing the folder end their sessions at one moment.
    pub end_together: Option<(std::path::PathBuf, usize)>,
}

impl ClaimingWriter {
    /// As one environment value: `tasks,group,batch,tag,lease_ms,task_ms[,folder,n]`.
    pub fn encode(&self) -> String {
        let mut s = format!(
            "{},{},{},{},{},{}",
            self.tasks,
            self.group,
            self.batch,
            self.tag,
            self.lease.as_millis(),
            self.task_ms
        );
        if let Some((dir, n)) = &self.end_together {
            s += &format!(",{},{n}", dir.display());
        }
        s
    }

    pub fn decode(s: &str) -> ClaimingWriter {
        let p: Vec<&str> = s.split(',').collect();
        ClaimingWriter {
            tasks: p[0].parse().unwrap(),
            group: p[1].parse().unwrap(),
            batch: p[2].parse().unwrap(),
            tag: p[3].to_string(),
            lease: Duration::from_millis(p[4].parse().unwrap()),
            task_ms: p[5].parse().unwrap(),
            end_together: (p.len() == 8).then(|| (p[6].into(), p[7].parse().unwrap())),
        }
    }

    /// Runs the writer to the end; returns how many tasks it committed.
    pub fn run(&self, store: &Store) -> usize {
        store
            .start_session(
                WriterIdentity {
                    run_id: new_run_id(),
                    tag: self.tag.clone(),
                    role: "test".into(),
                },
                LeaseOptions::with_length(self.lease),
            )
            .unwrap();
        let prepared = store.prepare(PrepareOptions::default()).unwrap();
        let mut o = WriterOptions::new("claiming");
        o.max_tasks = self.batch;
        let mut w = store.writer(o, &prepared.ledger).unwrap();
        let id = |i: usize| format!("task-{i:05}");
        let todo: Vec<usize> = (0..self.tasks)
            .filter(|i| !prepared.ledger.is_committed(&id(*i)))
            .collect();
        let mut held = Vec::new();
        let run = |i: usize, w: &mut Writer| {
            std::thread::sleep(Duration::from_millis(self.task_ms));
            w.push(sample_result(i)).unwrap();
        };
        for group in todo.chunks(self.group.max(1)) {
            let ids: Vec<String> = group.iter().map(|i| id(*i)).collect();
            for (i, c) in group.iter().zip(store.claim(&ids).unwrap()) {
                match c {
                    Claim::Ours => run(*i, &mut w),
                    Claim::Held { .. } => held.push(*i),
                    Claim::Committed => {}
                }
            }
        }
        // Commit what is done before waiting for others (they may wait for it too).
        w.flush().unwrap();
        while !held.is_empty() {
            // As the engine does: look again a few times per lease, not in a busy loop.
            std::thread::sleep((self.lease / 20).max(Duration::from_millis(50)));
            store.refresh_ledger().unwrap();
            held.retain(|i| !store.known_committed(&id(*i)));
            let ids: Vec<String> = held.iter().map(|i| id(*i)).collect();
            let mut still = Vec::new();
            for (i, c) in held.iter().zip(store.claim(&ids).unwrap()) {
                match c {
                    Claim::Ours => run(*i, &mut w),
                    Claim::Held { .. } => still.push(*i),
                    Claim::Committed => {}
                }
            }
            held = still;
            w.flush().unwrap();
        }
        let stats = w.finish().unwrap();
        if let Some((dir, n)) = &self.end_together {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(&self.tag), b"").unwrap();
            let until = Instant::now() + Duration::from_secs(60);
            while std::fs::read_dir(dir).unwrap().count() < *n {
                assert!(Instant::now() < until, "the other writers never ended");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        store.finish_session().unwrap();
        stats.tasks
    }
}

/// Checks the dataset: every task once in `tasks`, every data row's task committed, every
/// committed task with all its rows (`sample_result` rows). Returns the committed ids.
pub fn assert_each_task_once(store: &Store) -> Vec<String> {
    let d = store.read_dataset().unwrap();
    let ids = unique_task_ids(&d);
    let n = ids.len();
    assert_eq!(d.losses.len(), 5 * n, "losses rows");
    assert_eq!(d.scores.len(), n, "scores rows");
    assert_eq!(d.images.len(), 2 * n, "images rows");
    ids
}
