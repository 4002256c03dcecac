//! The whole-sweep view's numbers, gathered one task at a time while the report streams the
//! `tasks` table: counts by kind, status and axis value, the points of the strip plots
//! (results against each grid axis), durations, failures grouped by message and score
//! matrices. What it holds is bounded whatever the number of tasks: at most
//! [`MAX_AXIS_VALUES`] values counted per axis, [`MAX_STRIP_POINTS`] points per strip plot
//! (a uniform sample beyond that), [`MAX_SCORE_IMAGES`] images per score matrix side,
//! [`MAX_FAILURE_KINDS`] failure messages; the durations go to a file
//! ([`Durations`], 8 bytes a finished task on disk).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result};
use crate::figures::Bins;
use crate::layout::TaskExtra;
use crate::tasks::TaskInfo;

/// Values counted per (kind, axis); tasks with other values are counted together under
/// [`OTHER_VALUES`].
pub const MAX_AXIS_VALUES: usize = 1000;
/// The value under which tasks beyond [`MAX_AXIS_VALUES`] values of an axis are counted.
pub const OTHER_VALUES: &str = "(other values)";

/// The order of an axis's values wherever the report (and `synthsweep status`) lists them:
/// values that read as numbers first, numerically (seed 2 before seed 10), then the others
/// as text, then [`OTHER_VALUES`].
pub fn axis_value_order(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |v: &str| {
        let n = v.trim().parse::<f64>().ok().filter(|n| !n.is_nan());
        let rank = match (v == OTHER_VALUES, n) {
            (true, _) => 2,
            (false, Some(_)) => 0,
            (false, None) => 1,
        };
        (rank, n.unwrap_or(0.0))
    };
    let ((ra, na), (rb, nb)) = (key(a), key(b));
    ra.cmp(&rb).then(na.total_cmp(&nb)).then_with(|| a.cmp(b))
}
/// Images per side of a score matrix; pairs with other images are counted, not shown.
pub const MAX_SCORE_IMAGES: usize = 50;

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
    /// Seconds of each finished task (on disk).
    pub durations: Durations,
    pub failures: BTreeMap<String, FailureGroup>,
    /// Failures whose message was not kept (beyond [`MAX_FAILURE_KINDS`] messages).
    pub other_failures: usize,
    pub sweeps: BTreeSet<String>,
    /// metric -> (image a, image b) -> value.
    pub scores: BTreeMap<String, BTreeMap<(String, String), f64>>,
    /// Score tasks left out of the matrices (beyond [`MAX_SCORE_IMAGES`] images a side).
    pub scores_left_out: usize,
    /// metric -> images of the matrix's rows and columns.
    score_sides: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
    pub done: usize,
    pub failed: usize,
    pub seconds: f64,
    rng: u64,
}

impl Summary {
    /// An empty summary; `varying` is the axes that vary per kind (their counts and strip
    /// plots are gathered); the durations are written to the file `durations` (created).
    ///
    /// # Errors
    ///
    /// The durations file cannot be created.
    pub fn new(varying: BTreeMap<String, Vec<String>>, durations: &Path) -> Result<Summary> {
        Ok(Summary {
            varying,
            kinds: BTreeMap::new(),
            axis_counts: BTreeMap::new(),
            strips: BTreeMap::new(),
            durations: Durations::create(durations)?,
            failures: BTreeMap::new(),
            other_failures: 0,
            sweeps: BTreeSet::new(),
            scores: BTreeMap::new(),
            scores_left_out: 0,
            score_sides: BTreeMap::new(),
            done: 0,
            failed: 0,
            seconds: 0.0,
            rng: 0x9e37_79b9_7f4a_7c15,
        })
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
    ///
    /// # Errors
    ///
    /// Writing its duration to the durations file failed.
    pub fn add(&mut self, t: &TaskInfo, extra: Option<&TaskExtra>) -> Result<()> {
        let done = t.done();
        if !self.sweeps.contains(&t.sweep) {
            self.sweeps.insert(t.sweep.clone());
        }
        let k = self.kinds.entry(t.synth.clone()).or_default();
        if done {
            k.done += 1;
            self.done += 1;
            self.durations.push(t.duration_s)?;
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
                let (rows, cols) = self.score_sides.entry(metric.clone()).or_default();
                let fits = |side: &BTreeSet<String>, x: &String| {
                    side.contains(x) || side.len() < MAX_SCORE_IMAGES
                };
                if fits(rows, &a) && fits(cols, &b) {
                    rows.insert(a.clone());
                    cols.insert(b.clone());
                    self.scores.entry(metric).or_default().insert((a, b), v);
                } else {
                    self.scores_left_out += 1;
                }
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
            let shown = if counts.contains_key(v) || counts.len() < MAX_AXIS_VALUES {
                v.as_str()
            } else {
                OTHER_VALUES
            };
            let e = match counts.get_mut(shown) {
                Some(e) => e,
                None => counts.entry(shown.to_string()).or_default(),
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
        Ok(())
    }
}

/// The seconds of each finished task, written to a file as the tasks stream by (8 bytes a
/// task on disk, nothing in memory), with their count, minimum and maximum; the histogram
/// and the median are read back from the file.
#[derive(Debug)]
pub struct Durations {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    /// Values pushed.
    pub count: usize,
    /// Smallest and largest value pushed (`None` before the first).
    pub min_max: Option<(f64, f64)>,
    /// Values sorted in memory at most ([`IN_MEMORY`]; smaller in tests).
    in_memory: usize,
}

/// Values the median is found among in memory (8 MiB); more take passes over the file.
const IN_MEMORY: usize = 1 << 20;

impl Durations {
    fn create(path: &Path) -> Result<Durations> {
        let f = File::create(path).map_err(ReportError::io(path))?;
        Ok(Durations {
            path: path.to_path_buf(),
            file: Some(BufWriter::new(f)),
            count: 0,
            min_max: None,
            in_memory: IN_MEMORY,
        })
    }

    /// Appends `v` (seconds; a value that is not finite is left out).
    ///
    /// # Errors
    ///
    /// The write failed.
    pub fn push(&mut self, v: f64) -> Result<()> {
        if !v.is_finite() {
            return Ok(());
        }
        let f = self
            .file
            .as_mut()
            .expect("durations pushed after being read");
        f.write_all(&v.to_le_bytes())
            .map_err(ReportError::io(&self.path))?;
        self.count += 1;
        self.min_max = Some(match self.min_max {
            Some((lo, hi)) => (lo.min(v), hi.max(v)),
            None => (v, v),
        });
        Ok(())
    }

    /// Calls `f` with each value, in the order pushed.
    fn each(&mut self, mut f: impl FnMut(f64)) -> Result<()> {
        if let Some(mut w) = self.file.take() {
            w.flush().map_err(ReportError::io(&self.path))?;
        }
        let file = File::open(&self.path).map_err(ReportError::io(&self.path))?;
        let mut r = BufReader::with_capacity(64 << 10, file);
        let mut b = [0u8; 8];
        for _ in 0..self.count {
            r.read_exact(&mut b).map_err(ReportError::io(&self.path))?;
            f(f64::from_le_bytes(b));
        }
        Ok(())
    }

    /// The histogram of the values: its bars (as [`Bins::new`] gives them) and the count in
    /// each.
    ///
    /// # Errors
    ///
    /// Reading the file failed.
    pub fn histogram(&mut self, bars: usize) -> Result<(Bins, Vec<usize>)> {
        let bins = Bins::new(self.min_max, bars);
        let mut counts = vec![0usize; bins.n];
        self.each(|v| counts[bins.of(v)] += 1)?;
        Ok((bins, counts))
    }

    /// The value of rank `count / 2` (from 0) in increasing order, as the element at
    /// `len / 2` of the sorted values (`None` without values). Exact, in bounded memory: up
    /// to [`IN_MEMORY`] values are sorted in memory; beyond, each pass over the file counts
    /// the values in 1024 equal bins of the range still holding that rank and keeps the bin
    /// that holds it (narrowed to its smallest and largest value), until it has at most
    /// [`IN_MEMORY`] values or one value.
    ///
    /// # Errors
    ///
    /// Reading the file failed.
    pub fn median(&mut self) -> Result<Option<f64>> {
        let Some((mut lo, mut hi)) = self.min_max else {
            return Ok(None);
        };
        let k = self.count / 2;
        // Values below `lo` (not in the range kept).
        const BINS: usize = 1024;
        loop {
            let mut below = 0usize;
            let mut inside = 0usize;
            self.each(|v| {
                if v < lo {
                    below += 1;
                } else if v <= hi {
                    inside += 1;
                }
            })?;
            if inside <= self.in_memory || lo == hi {
                if lo == hi {
                    return Ok(Some(lo));
                }
                let mut vals = Vec::with_capacity(inside);
                self.each(|v| {
                    if v >= lo && v <= hi {
                        vals.push(v);
                    }
                })?;
                vals.sort_by(f64::total_cmp);
                return Ok(vals.get(k - below).copied());
            }
            // Bins by comparison with their lower edges; each bin's smallest and largest value.
            let w = (hi - lo) / BINS as f64;
            let edges: Vec<f64> = (1..BINS).map(|j| lo + w * j as f64).collect();
            let mut counts = vec![0usize; BINS];
            let mut mins = vec![f64::INFINITY; BINS];
            let mut maxs = vec![f64::NEG_INFINITY; BINS];
            self.each(|v| {
                if v >= lo && v <= hi {
                    let j = edges.partition_point(|&e| e <= v);
                    counts[j] += 1;
                    mins[j] = mins[j].min(v);
                    maxs[j] = maxs[j].max(v);
                }
            })?;
            let mut seen = below;
            let j = counts
                .iter()
                .position(|&c| {
                    seen += c;
                    seen > k
                })
                .expect("rank within the values");
            let (nlo, nhi) = (mins[j], maxs[j]);
            if (nlo, nhi) == (lo, hi) {
                // The edges collapsed (a range a few floats wide): step past the smallest.
                let mut eq = 0usize;
                let mut next = f64::INFINITY;
                self.each(|v| {
                    if v == lo {
                        eq += 1;
                    } else if v > lo && v <= hi {
                        next = next.min(v);
                    }
                })?;
                if below + eq > k {
                    return Ok(Some(lo));
                }
                lo = next;
            } else {
                (lo, hi) = (nlo, nhi);
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
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Summary::new(varying, &tmp.path().join("d")).unwrap();
        let n = MAX_STRIP_POINTS + 1000;
        for i in 0..n {
            let t = task(i, ["a", "b"][i % 2], i % 10 == 9);
            let x = TaskExtra {
                headline: Some(i as f64),
                ..Default::default()
            };
            s.add(&t, Some(&x)).unwrap();
        }
        assert_eq!(s.total(), n);
        assert_eq!(s.failed, n / 10);
        assert_eq!(s.durations.count, s.done);
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
        let mut s = Summary::new(varying, &tmp.path().join("d2")).unwrap();
        for i in 0..=MAX_STRIP_CATEGORIES {
            s.add(&task(i, &format!("m{i}"), false), None).unwrap();
        }
        let key = ("metamer".to_string(), "model".to_string());
        assert!(s.strips[&key].cats.is_none());
        assert_eq!(s.axis_counts[&key].len(), MAX_STRIP_CATEGORIES + 1);
    }

    #[test]
    fn axis_values_beyond_the_limit_are_counted_together() {
        let tmp = tempfile::tempdir().unwrap();
        let varying: BTreeMap<String, Vec<String>> =
            [("metamer".to_string(), vec!["model".to_string()])].into();
        let mut s = Summary::new(varying, &tmp.path().join("d")).unwrap();
        let n = MAX_AXIS_VALUES + 10;
        for i in 0..n {
            s.add(&task(i, &format!("m{i}"), false), None).unwrap();
        }
        let counts = &s.axis_counts[&("metamer".to_string(), "model".to_string())];
        assert_eq!(counts.len(), MAX_AXIS_VALUES + 1);
        assert_eq!(counts[OTHER_VALUES], (10, 0));
        assert_eq!(counts.values().map(|c| c.0).sum::<usize>(), n);
    }

    #[test]
    fn durations_histogram_and_median_are_exact_from_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        // Ties, a wide range and a cluster of nearby values: the multi-pass median (in
        // memory at most 7 values) equals the sorted values' middle one, every count.
        let mut all: Vec<f64> = Vec::new();
        for i in 0..301u32 {
            all.push(match i % 5 {
                0 => 1.0,
                1 => 1.0 + f64::from(i) * 1e-13,
                2 => 1e6 - f64::from(i),
                3 => f64::from(i) * 0.37,
                _ => 2.5,
            });
        }
        for n in [1usize, 2, 3, 8, 100, 301] {
            let mut d = Durations::create(&tmp.path().join(format!("d{n}"))).unwrap();
            d.in_memory = 7;
            for &v in &all[..n] {
                d.push(v).unwrap();
            }
            d.push(f64::NAN).unwrap();
            let mut sorted = all[..n].to_vec();
            sorted.sort_by(f64::total_cmp);
            assert_eq!(d.median().unwrap(), Some(sorted[n / 2]), "n = {n}");
            let (bins, counts) = d.histogram(30).unwrap();
            let mut want = vec![0usize; 30];
            for &v in &sorted {
                want[bins.of(v)] += 1;
            }
            assert_eq!(counts, want);
            assert_eq!(counts.iter().sum::<usize>(), n);
        }
        // Every value equal, more than fit in memory.
        let mut d = Durations::create(&tmp.path().join("same")).unwrap();
        d.in_memory = 3;
        for _ in 0..10 {
            d.push(4.0).unwrap();
        }
        assert_eq!(d.median().unwrap(), Some(4.0));
        let mut d = Durations::create(&tmp.path().join("none")).unwrap();
        assert_eq!(d.median().unwrap(), None);
    }
}
