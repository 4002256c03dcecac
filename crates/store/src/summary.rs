//! A summary of the `tasks` table, for `synthsweep status`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::SystemTime;

use crate::error::Result;
use crate::rows::{TaskRow, TaskStatus};
use crate::store::Store;

/// Duration statistics over tasks, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Durations {
    pub total_s: f64,
    pub mean_s: f64,
    pub median_s: f64,
    pub max_s: f64,
}

/// One distinct error message and how often it occurred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    pub message: String,
    pub count: usize,
    /// One task that failed with it.
    pub example_task: String,
}

/// Counts and timings of the committed tasks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Summary {
    pub done: usize,
    pub failed: usize,
    /// synth method -> (done, failed).
    pub by_synth: BTreeMap<String, (usize, usize)>,
    /// Of done tasks.
    pub durations: Option<Durations>,
    /// Most frequent first.
    pub errors: Vec<ErrorCount>,
    pub runs: BTreeSet<String>,
    pub batches: usize,
    pub first_started: Option<SystemTime>,
    pub last_finished: Option<SystemTime>,
}

impl Summary {
    /// Summarises tasks rows.
    pub fn from_rows(rows: &[TaskRow]) -> Summary {
        let mut s = Summary::default();
        let mut durations = Vec::new();
        let mut errors: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
        let mut batches = BTreeSet::new();
        for r in rows {
            let e = s.by_synth.entry(r.synth.clone()).or_default();
            match r.status {
                TaskStatus::Done => {
                    s.done += 1;
                    e.0 += 1;
                    durations.push(r.duration_s);
                }
                TaskStatus::Failed => {
                    s.failed += 1;
                    e.1 += 1;
                    let msg = r.error.as_deref().unwrap_or("(no message)");
                    errors.entry(msg).or_insert((0, &r.task_id)).0 += 1;
                }
            }
            s.runs.insert(r.run_id.clone());
            batches.insert(&r.batch_id);
            s.first_started = Some(
                s.first_started
                    .map_or(r.started_at, |t| t.min(r.started_at)),
            );
            s.last_finished = Some(
                s.last_finished
                    .map_or(r.finished_at, |t| t.max(r.finished_at)),
            );
        }
        s.batches = batches.len();
        if !durations.is_empty() {
            durations.sort_by(f64::total_cmp);
            let n = durations.len();
            let total: f64 = durations.iter().sum();
            let median = if n % 2 == 1 {
                durations[n / 2]
            } else {
                (durations[n / 2 - 1] + durations[n / 2]) / 2.0
            };
            s.durations = Some(Durations {
                total_s: total,
                mean_s: total / n as f64,
                median_s: median,
                max_s: durations[n - 1],
            });
        }
        s.errors = errors
            .into_iter()
            .map(|(m, (count, ex))| ErrorCount {
                message: m.to_string(),
                count,
                example_task: ex.to_string(),
            })
            .collect();
        s.errors
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.message.cmp(&b.message)));
        s
    }

    /// Committed tasks, done or failed.
    pub fn total(&self) -> usize {
        self.done + self.failed
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} tasks committed: {} done, {} failed ({} runs, {} batches)",
            self.total(),
            self.done,
            self.failed,
            self.runs.len(),
            self.batches
        )?;
        for (synth, (d, fl)) in &self.by_synth {
            writeln!(f, "  {synth}: {d} done, {fl} failed")?;
        }
        if let Some(d) = &self.durations {
            writeln!(
                f,
                "duration of done tasks: total {:.1} s, mean {:.2} s, median {:.2} s, max {:.2} s",
                d.total_s, d.mean_s, d.median_s, d.max_s
            )?;
        }
        for e in self.errors.iter().take(10) {
            writeln!(
                f,
                "  {}x {} (e.g. task {})",
                e.count, e.message, e.example_task
            )?;
        }
        if self.errors.len() > 10 {
            writeln!(
                f,
                "  ... and {} more distinct errors",
                self.errors.len() - 10
            )?;
        }
        Ok(())
    }
}

impl Store {
    /// Summarises the committed tasks (reads the `tasks` table).
    pub fn summary(&self) -> Result<Summary> {
        Ok(Summary::from_rows(&self.read_tasks()?))
    }
}
