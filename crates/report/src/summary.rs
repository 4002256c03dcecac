//! The whole-sweep view's numbers, gathered one task at a time while the report streams the
//! `tasks` table: counts by kind, status and axis value, the points of the strip plots
//! (results against each grid axis), durations, failures grouped by message and score
//! matrices. What it holds grows with the grid's axes and values, not with the number of
//! tasks, except the durations (8 bytes a finished task), the score cells (one per score
//! task, each drawn in a matrix) and the strip plots' points (at most [`MAX_STRIP_POINTS`]
//! a plot, a uniform sample beyond that).

use std::collections::{BTreeMap, BTreeSet};

use crate::layout::TaskExtra;
use crate::tasks::TaskInfo;

/// Points kept per strip plot; beyond this a uniform sample (reservoir sampling) is drawn.
pub const MAX_STRIP_POINTS: usize = 4000;
/// Values an axis may take and still get a strip plot.
pub const MAX_STRIP_CATEGORIES: usize = 40;
/// Distinct failure messages kept; the rest are counted together.
pub const MAX_FAILURE_KINDS: usize = 1000;

/// Counts of one kind: done, failed, summed seconds.
#[derive(Debug, Default, Clone)]
pub struct KindCount {
    pub done: usize,
    pub failed: usize,
    pub seconds: f64,
}

/// One strip plot's data: the value of each finished task against one axis.
#[derive(Debug, Default)]
pub struct Strip {
    /// Axis values in first-seen order (the plot sorts them); `None` once more than
    /// [`MAX_STRIP_CATEGORIES`] were seen (no plot).
    pub cats: Option<Vec<String>>,
    /// Group names (MAD: minmax), in first-seen order.
    pub groups: Vec<String>,
    /// `(category, value, group)`, indices into `cats` and `groups`.
    pub points: Vec<(usize, f64, usize)>,
    /// Points offered (the plot shows `points.len()` of them).
    pub seen: usize,
}

/// A failure message, how many tasks failed with it and the first of them.
#[derive(Debug, Clone)]
pub struct FailureGroup {
    pub count: usize,
    pub example: String,
    pub example_label: String,
}

/// The whole-sweep numbers (see the module's documentation).
#[derive(Debug)]
pub struct Summary {
    varying: BTreeMap<String, Vec<String>>,
    pub kinds: BTreeMap<String, KindCount>,
    /// (kind, axis) -> value -> (done, failed).
    pub axis_counts: BTreeMap<(String, String), BTreeMap<String, (usize, usize)>>,
    pub strips: BTreeMap<(String, String), Strip>,
    /// Seconds of each finished task.
    pub durations: Vec<f64>,
    pub failures: BTreeMap<String, FailureGroup>,
    /// Failures whose message was not kept (beyond [`MAX_FAILURE_KINDS`] messages).
    pub other_failures: usize,
    pub sweeps: BTreeSet<String>,
    /// metric -> (image a, image b) -> value.
    pub scores: BTreeMap<String, BTreeMap<(String, String), f64>>,
    pub done: usize,
    pub failed: usize,
    pub seconds: f64,
    rng: u64,
}

impl Summary {
    /// An empty summary; `varying` is the axes that vary per kind (their counts and strip
    /// plots are gathered).
    pub fn new(varying: BTreeMap<String, Vec<String>>) -> Summary {
        Summary {
            varying,
            kinds: BTreeMap::new(),
            axis_counts: BTreeMap::new(),
            strips: BTreeMap::new(),
            durations: Vec::new(),
            failures: BTreeMap::new(),
            other_failures: 0,
            sweeps: BTreeSet::new(),
            scores: BTreeMap::new(),
            done: 0,
            failed: 0,
            seconds: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Total tasks added.
    pub fn total(&self) -> usize {
        self.done + self.failed
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: a deterministic sample, the same report for the same root.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Adds task `t` (its axes already reduced to the varying ones) with what its page
    /// recorded (`extra`, when drawn).
    pub fn add(&mut self, t: &TaskInfo, extra: Option<&TaskExtra>) {
        let done = t.done();
        if !self.sweeps.contains(&t.sweep) {
            self.sweeps.insert(t.sweep.clone());
        }
        let k = self.kinds.entry(t.synth.clone()).or_default();
        if done {
            k.done += 1;
            self.done += 1;
            self.durations.push(t.duration_s);
        } else {
            k.failed += 1;
            self.failed += 1;
        }
        k.seconds += t.duration_s;
        self.seconds += t.duration_s;
        if !done {
            let msg = t.error.as_deref().unwrap_or("(no message)");
            if let Some(f) = self.failures.get_mut(msg) {
                f.count += 1;
            } else if self.failures.len() < MAX_FAILURE_KINDS {
                self.failures.insert(
                    msg.to_string(),
                    FailureGroup {
                        count: 1,
                        example: t.task_id.clone(),
                        example_label: t.label(),
                    },
                );
            } else {
                self.other_failures += 1;
            }
        }
        if let Some((metric, a, b, v)) = extra.and_then(|x| x.score.clone()).map(|s| *s) {
            if t.synth == "score" && done {
                self.scores.entry(metric).or_default().insert((a, b), v);
            }
        }
        let headline = extra.and_then(|x| x.headline);
        let axes = self.varying.get(&t.synth).cloned().unwrap_or_default();
        for axis in &axes {
            let Some(v) = t.axes.get(axis) else { continue };
            let counts = self
                .axis_counts
                .entry((t.synth.clone(), axis.clone()))
                .or_default();
            let e = match counts.get_mut(v) {
                Some(e) => e,
                None => counts.entry(v.clone()).or_default(),
            };
            if done {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
            let group_axis = (t.synth == "mad" && axis != "minmax").then_some("minmax");
            let gname = group_axis
                .and_then(|g| t.axes.get(g))
                .cloned()
                .unwrap_or_default();
            let r = self.next_random();
            let strip = self
                .strips
                .entry((t.synth.clone(), axis.clone()))
                .or_insert_with(|| Strip {
                    cats: Some(Vec::new()),
                    ..Default::default()
                });
            let Some(cats) = strip.cats.as_mut() else {
                continue;
            };
            let c = match cats.iter().position(|c| c == v) {
                Some(c) => c,
                None if cats.len() < MAX_STRIP_CATEGORIES => {
                    cats.push(v.clone());
                    cats.len() - 1
                }
                None => {
                    // Too many values for a plot: stop gathering its points.
                    strip.cats = None;
                    strip.points = Vec::new();
                    continue;
                }
            };
            let (Some(y), true) = (headline, done) else {
                continue;
            };
            let g = match strip.groups.iter().position(|n| *n == gname) {
                Some(g) => g,
                None => {
                    strip.groups.push(gname);
                    strip.groups.len() - 1
                }
            };
            strip.seen += 1;
            if strip.points.len() < MAX_STRIP_POINTS {
                strip.points.push((c, y, g));
            } else {
                let j = (r % strip.seen as u64) as usize;
                if j < MAX_STRIP_POINTS {
                    strip.points[j] = (c, y, g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use synthsweep_store::{TaskRow, TaskStatus};

    fn task(i: usize, model: &str, failed: bool) -> TaskInfo {
        TaskInfo::from_row(&TaskRow {
            task_id: format!("{i:064x}"),
            sweep: "s".into(),
            synth: "metamer".into(),
            model: Some(format!(r#"{{"name":"{model}"}}"#)),
            status: if failed {
                TaskStatus::Failed
            } else {
                TaskStatus::Done
            },
            error: failed.then(|| format!("error {}", i % 3)),
            duration_s: 1.0,
            ..Default::default()
        })
    }

    #[test]
    fn counts_strips_and_failures_stay_bounded() {
        let varying: BTreeMap<String, Vec<String>> =
            [("metamer".to_string(), vec!["model".to_string()])].into();
        let mut s = Summary::new(varying);
        let n = MAX_STRIP_POINTS + 1000;
        for i in 0..n {
            let t = task(i, ["a", "b"][i % 2], i % 10 == 9);
            let x = TaskExtra {
                headline: Some(i as f64),
                ..Default::default()
            };
            s.add(&t, Some(&x));
        }
        assert_eq!(s.total(), n);
        assert_eq!(s.failed, n / 10);
        assert_eq!(s.durations.len(), s.done);
        let counts = &s.axis_counts[&("metamer".to_string(), "model".to_string())];
        assert_eq!(counts["a"].0 + counts["b"].0, s.done);
        let strip = &s.strips[&("metamer".to_string(), "model".to_string())];
        assert_eq!(strip.seen, s.done);
        assert_eq!(strip.points.len(), MAX_STRIP_POINTS);
        // The sample reaches the last tasks too.
        assert!(strip.points.iter().any(|p| p.1 > MAX_STRIP_POINTS as f64));
        assert_eq!(s.failures.len(), 3);
        assert_eq!(s.failures.values().map(|f| f.count).sum::<usize>(), n / 10);
        // More values than a plot can show: counted, not plotted.
        let varying: BTreeMap<String, Vec<String>> =
            [("metamer".to_string(), vec!["model".to_string()])].into();
        let mut s = Summary::new(varying);
        for i in 0..=MAX_STRIP_CATEGORIES {
            s.add(&task(i, &format!("m{i}"), false), None);
        }
        let key = ("metamer".to_string(), "model".to_string());
        assert!(s.strips[&key].cats.is_none());
        assert_eq!(s.axis_counts[&key].len(), MAX_STRIP_CATEGORIES + 1);
    }
}
