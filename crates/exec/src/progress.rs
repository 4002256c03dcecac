//! Progress of a sweep: a live bar on a terminal (done / failed / running, tasks per
//! minute, ETA), plain periodic log lines otherwise. Log output goes through [`suspend`],
//! so a log line never lands in the middle of the bar.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The bar on screen, if any: the one that [`suspend`] hides while a log line is written.
static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` (typically: write one log line to stderr) with the live progress bar, if any,
/// cleared from the screen, and redraws the bar afterwards. The binary's log writer calls
/// this for every line.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE_BAR.lock().map(|b| b.clone()).unwrap_or(None);
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// Counters shared by the workers and the writer; rendering is throttled.
pub struct Progress {
    total: u64,
    done: AtomicU64,
    failed: AtomicU64,
    running: AtomicU64,
    /// Tasks of this run that other writers on the root committed (they count towards the
    /// total, not towards the rate).
    elsewhere: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
    last_log: Mutex<Instant>,
    log_every: Duration,
}

impl Progress {
    /// `total` tasks to run in this invocation; a bar when stderr is a terminal.
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} {msg} [{elapsed_precise}, ETA {eta}]",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar
        });
        if let (Some(bar), Ok(mut active)) = (&bar, ACTIVE_BAR.lock()) {
            *active = Some(bar.clone());
        }
        Progress {
            total,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            running: AtomicU64::new(0),
            elsewhere: AtomicU64::new(0),
            started: Instant::now(),
            bar,
            last_log: Mutex::new(Instant::now()),
            log_every: Duration::from_secs(10),
        }
    }

    pub fn task_started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
        self.render(false);
    }

    /// A task finished (committed or not yet); `ok` = status done.
    pub fn task_finished(&self, ok: bool) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        if ok { &self.done } else { &self.failed }.fetch_add(1, Ordering::Relaxed);
        self.render(false);
    }

    /// A task given up without a result (cancelled, preempted).
    pub fn task_abandoned(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.render(false);
    }

    /// A task handed out and started here, then found committed by another writer.
    pub fn task_committed_elsewhere(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.elsewhere.fetch_add(1, Ordering::Relaxed);
        self.render(false);
    }

    /// How many tasks of this run other writers committed so far (never decreases), as the
    /// task source counts them when it skips them before they start.
    pub fn set_committed_elsewhere(&self, n: u64) {
        if self.elsewhere.fetch_max(n, Ordering::Relaxed) < n {
            self.render(false);
        }
    }

    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.running.load(Ordering::Relaxed),
        )
    }

    fn summary(&self) -> String {
        let (done, failed, running) = self.counts();
        let mins = self.started.elapsed().as_secs_f64() / 60.0;
        let rate = if mins > 0.0 {
            (done + failed) as f64 / mins
        } else {
            0.0
        };
        let elsewhere = self.elsewhere.load(Ordering::Relaxed);
        let others = if elsewhere > 0 {
            format!(", {elsewhere} by other writers")
        } else {
            String::new()
        };
        format!("done {done}, failed {failed}, running {running}{others}, {rate:.1} tasks/min")
    }

    fn render(&self, force: bool) {
        let _ = force;
        let (done, failed, _) = self.counts();
        let elsewhere = self.elsewhere.load(Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_position(done + failed + elsewhere);
            bar.set_message(self.summary());
            return;
        }
        let mut last = self.last_log.lock().expect("progress lock");
        if force || last.elapsed() >= self.log_every {
            *last = Instant::now();
            let finished = done + failed;
            let eta = if finished > 0 {
                let per = self.started.elapsed().as_secs_f64() / finished as f64;
                format!(
                    ", ETA {:.0} s",
                    per * (self.total.saturating_sub(finished + elsewhere)) as f64
                )
            } else {
                String::new()
            };
            tracing::info!(
                "progress: {}/{} tasks; {}{eta}",
                finished + elsewhere,
                self.total,
                self.summary()
            );
        }
    }

    /// Final line (and clears the bar).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Ok(mut active) = ACTIVE_BAR.lock() {
                *active = None;
            }
        }
        let (done, failed, _) = self.counts();
        tracing::info!(
            "finished {} of {} tasks in {:.1} s: {}",
            done + failed + self.elsewhere.load(Ordering::Relaxed),
            self.total,
            self.started.elapsed().as_secs_f64(),
            self.summary()
        );
    }

    /// Redraws (or logs, when due) without a change: keeps the rate and ETA current.
    pub fn tick(&self) {
        self.render(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_committed_by_other_writers_count_towards_the_total_not_the_rate() {
        let p = Progress::new(10);
        p.task_started();
        p.task_started();
        p.task_finished(true);
        // Started here, then found committed by another writer (multi-process runs).
        p.task_committed_elsewhere();
        assert_eq!(p.counts(), (1, 0, 0));
        assert!(
            p.summary().contains("1 by other writers"),
            "{}",
            p.summary()
        );
        // Skipped before starting, as the claiming source counts them (local runs).
        p.set_committed_elsewhere(3);
        p.set_committed_elsewhere(2);
        assert_eq!(p.elsewhere.load(Ordering::Relaxed), 3);
        assert!(
            p.summary()
                .starts_with("done 1, failed 0, running 0, 3 by other writers"),
            "{}",
            p.summary()
        );
    }
}
