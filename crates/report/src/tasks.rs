//! What the report knows of each task from the `tasks` table alone: a small summary per task
//! (no losses, no pixels), its grid coordinates ("axes") and the `--where` filters.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synthsweep_store::{TaskRow, TaskStatus};

use crate::error::{ReportError, Result};

/// One task as the index shows it. Strings are for display; `axes` holds the task's value on
/// every axis of the grid (fixed columns and the parameters that vary within its kind).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskInfo {
    pub task_id: String,
    pub batch_id: String,
    pub run_id: String,
    pub sweep: String,
    /// The kind as the tasks table writes it: mad, metamer, metamer_ctf, ...
    pub synth: String,
    /// `done` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub iterations: i64,
    pub final_loss: Option<f64>,
    pub metric_tradeoff_lambda: Option<f64>,
    pub jerkiness: Option<f64>,
    /// Seconds.
    pub duration_s: f64,
    pub device: String,
    pub host: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Axis name -> display value (`image`, `model`, `optimized_metric`, `reference_metric`,
    /// `minmax`, `seed`, and `params.<path>` for parameters).
    pub axes: BTreeMap<String, String>,
    /// The full model/metric specs (JSON text), as the tasks table has them.
    pub specs: BTreeMap<String, String>,
    /// The resolved task (JSON text).
    pub params: String,
}

impl TaskInfo {
    /// The summary of a `tasks` row (axes from its columns and every leaf of its parameters;
    /// [`keep_varying_axes`] later drops the ones that do not vary).
    pub fn from_row(r: &TaskRow) -> TaskInfo {
        let mut axes = BTreeMap::new();
        let mut specs = BTreeMap::new();
        if let Some(v) = &r.image {
            axes.insert("image".to_string(), image_label(v));
        }
        for (name, v) in [
            ("model", &r.model),
            ("optimized_metric", &r.optimized_metric),
            ("reference_metric", &r.reference_metric),
        ] {
            if let Some(v) = v {
                axes.insert(name.to_string(), short_spec(v));
                specs.insert(name.to_string(), v.clone());
            }
        }
        if let Some(v) = &r.minmax {
            axes.insert("minmax".to_string(), v.clone());
        }
        axes.insert("seed".to_string(), r.seed.to_string());
        if r.synth == "score" {
            // A score sweep's axes by the spec's names: its metric (stored in the
            // optimized_metric column) and the two images of each pair.
            if let Some(v) = axes.remove("optimized_metric") {
                axes.insert("metric".to_string(), v);
            }
            if let Some(v) = specs.remove("optimized_metric") {
                specs.insert("metric".to_string(), v);
            }
            if let Some((a, b)) = r.image.as_deref().and_then(|v| v.split_once(" -> ")) {
                axes.remove("image");
                axes.insert("image_a".to_string(), image_label(a));
                axes.insert("image_b".to_string(), image_label(b));
            }
        }
        if let Ok(Value::Object(p)) = serde_json::from_str::<Value>(&r.params) {
            if let Some(inner) = p.get("params") {
                flatten("params", inner, &mut axes);
            }
        }
        TaskInfo {
            task_id: r.task_id.clone(),
            batch_id: r.batch_id.clone(),
            run_id: r.run_id.clone(),
            sweep: r.sweep.clone(),
            synth: r.synth.clone(),
            status: r.status.as_str().to_string(),
            error: r.error.clone(),
            iterations: r.iterations,
            final_loss: r.final_loss,
            metric_tradeoff_lambda: r.metric_tradeoff_lambda,
            jerkiness: r.jerkiness,
            duration_s: r.duration_s,
            device: r.device.clone(),
            host: r.host.clone(),
            finished_at: rfc3339(r.finished_at),
            axes,
            specs,
            params: r.params.clone(),
        }
    }

    /// True for a task that ran to the end.
    pub fn done(&self) -> bool {
        self.status == TaskStatus::Done.as_str()
    }

    /// The first 12 hex digits of the id (as `synthsweep status` prints it).
    pub fn short_id(&self) -> &str {
        &self.task_id[..12.min(self.task_id.len())]
    }

    /// A one-line label: kind, then every axis value but the seed's when it is 0.
    pub fn label(&self) -> String {
        let mut parts = vec![self.synth.clone()];
        for (k, v) in &self.axes {
            if k == "seed" && v == "0" {
                continue;
            }
            parts.push(match k.strip_prefix("params.") {
                Some(p) => format!("{p}={v}"),
                None => v.clone(),
            });
        }
        parts.join(" ")
    }
}

/// A file name without its folders; a geodesic's or score's pair `a -> b` keeps both names.
pub fn image_label(v: &str) -> String {
    v.split(" -> ")
        .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// A model or metric spec (JSON) as a short label: `{"name":"mse"}` is `mse`,
/// `{"name":"ps","n_scales":2}` is `ps(n_scales=2)`; text that is not a JSON object stays.
pub fn short_spec(v: &str) -> String {
    match serde_json::from_str::<Value>(v) {
        Ok(Value::Object(m)) => {
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let rest: Vec<String> = m
                .iter()
                .filter(|(k, _)| k.as_str() != "name")
                .map(|(k, v)| format!("{k}={}", compact(v)))
                .collect();
            if rest.is_empty() {
                name
            } else {
                format!("{name}({})", rest.join(","))
            }
        }
        Ok(Value::String(s)) => s,
        _ => v.to_string(),
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => short_spec(&v.to_string()),
        other => other.to_string(),
    }
}

/// Every scalar leaf of `v` under `prefix` (`params.optimizer.lr`); arrays count as one leaf.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Which axes vary within each kind, learnt one task at a time (the report streams the
/// `tasks` table): at most two values are kept per (kind, axis), so memory grows with the
/// number of axes, not of tasks.
#[derive(Debug, Default)]
pub struct AxisValues {
    values: BTreeMap<(String, String), Vec<String>>,
}

impl AxisValues {
    /// Notes `t`'s value on each of its axes.
    pub fn observe(&mut self, t: &TaskInfo) {
        for (k, v) in &t.axes {
            let seen = self.values.entry((t.synth.clone(), k.clone())).or_default();
            if seen.len() < 2 && !seen.contains(v) {
                seen.push(v.clone());
            }
        }
    }

    /// The axes that take more than one value, per kind, in name order.
    pub fn varying(&self) -> BTreeMap<String, Vec<String>> {
        let mut per_kind: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for ((kind, axis), vs) in &self.values {
            if vs.len() > 1 {
                per_kind.entry(kind.clone()).or_default().push(axis.clone());
            }
        }
        per_kind
    }
}

/// Drops from `t.axes` the parameter axes (`params.*`) that do not vary within its kind
/// (`varying` as [`AxisValues::varying`] gives it); fixed axes (image, model, metrics,
/// minmax, seed) stay.
pub fn keep_axes(t: &mut TaskInfo, varying: &BTreeMap<String, Vec<String>>) {
    let mine = varying.get(&t.synth);
    t.axes
        .retain(|k, _| !k.starts_with("params.") || mine.is_some_and(|v| v.contains(k)));
}

/// Keeps, within each kind, the parameter axes (`params.*`) that take more than one value
/// there, and every fixed axis (image, model, metrics, minmax, seed). Returns the axes that
/// vary per kind (fixed ones included only when they vary), in a stable order.
pub fn keep_varying_axes(tasks: &mut [TaskInfo]) -> BTreeMap<String, Vec<String>> {
    let mut values = AxisValues::default();
    for t in tasks.iter() {
        values.observe(t);
    }
    let varying = values.varying();
    for t in tasks.iter_mut() {
        keep_axes(t, &varying);
    }
    varying
}

/// A `--where AXIS=VALUE` filter: keeps tasks whose AXIS (an axis name, or `synth`,
/// `status`, `sweep`, `run_id`) shows VALUE or whose full spec/value equals it.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub axis: String,
    pub value: String,
}

impl Filter {
    /// Parses `AXIS=VALUE`.
    ///
    /// # Errors
    ///
    /// [`ReportError::BadFilter`] without `=` or with an empty axis.
    pub fn parse(s: &str) -> Result<Filter> {
        match s.split_once('=') {
            Some((a, v)) if !a.trim().is_empty() => Ok(Filter {
                axis: a.trim().to_string(),
                value: v.trim().to_string(),
            }),
            _ => Err(ReportError::BadFilter {
                given: s.to_string(),
                why: "expected AXIS=VALUE, e.g. --where minmax=max or --where optimized_metric=mse"
                    .into(),
            }),
        }
    }

    fn value_of<'a>(&self, t: &'a TaskInfo) -> Option<&'a str> {
        match self.axis.as_str() {
            "synth" => Some(&t.synth),
            "status" => Some(&t.status),
            "sweep" => Some(&t.sweep),
            "run_id" => Some(&t.run_id),
            a => t
                .axes
                .get(a)
                .or_else(|| t.axes.get(&format!("params.{a}")))
                // A score task's `metric` is also its optimized_metric column.
                .or_else(|| {
                    (a == "optimized_metric")
                        .then(|| t.axes.get("metric"))
                        .flatten()
                })
                // A score task's pair: `image` is either of its images.
                .or_else(|| (a == "image").then(|| t.axes.get("image_a")).flatten())
                .map(String::as_str),
        }
    }

    fn matches(&self, t: &TaskInfo) -> bool {
        let spec = |a: &str| t.specs.get(a).map(String::as_str) == Some(self.value.as_str());
        let value = self.value_of(t);
        value == Some(self.value.as_str())
            // Numbers by value: `params.max_iter=8.0` is 8, `seed=01` is 1.
            || value.is_some_and(|v| same_number(v, &self.value))
            || (self.axis == "image"
                && ["image_a", "image_b"]
                    .iter()
                    .any(|a| t.axes.get(*a) == Some(&self.value)))
            || spec(&self.axis)
            || (self.axis == "optimized_metric" && spec("metric"))
            // A model or metric by its bare name: `ms_ssim` for `ms_ssim(n_scales=3)`.
            || [self.axis.as_str(), if self.axis == "optimized_metric" { "metric" } else { "" }]
                .iter()
                .any(|a| t.specs.get(*a).is_some_and(|v| spec_name(v).as_deref() == Some(self.value.as_str())))
            || (self.axis == "image"
                && t
                    .axes
                    .get("image")
                    .is_some_and(|v| v.split(" → ").any(|p| p == self.value)))
    }
}

/// The top-level `name` of a model or metric spec (JSON text), when it has one.
fn spec_name(v: &str) -> Option<String> {
    match serde_json::from_str::<Value>(v) {
        Ok(Value::Object(m)) => m.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Whether `a` and `b` both read as the same finite number.
fn same_number(a: &str, b: &str) -> bool {
    match (a.trim().parse::<f64>(), b.trim().parse::<f64>()) {
        (Ok(x), Ok(y)) => x.is_finite() && x == y,
        _ => false,
    }
}

/// The filters grouped by axis, in the order each axis first appears: a task passes when,
/// for every axis, one of that axis's filters matches it (values of one axis are
/// alternatives, axes are all required).
fn by_axis(filters: &[Filter]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        match groups.iter_mut().find(|g| filters[g[0]].axis == f.axis) {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups
}

/// How many values of an axis a filter's error lists.
const LISTED_VALUES: usize = 20;

/// The `--where` filters checked one task at a time (the report streams the `tasks` table):
/// [`FilterCheck::observe`] says whether a task passes them all and notes what an error
/// would name; [`FilterCheck::finish`] gives that error. Filters on one axis are
/// alternatives (`--where seed=0 --where seed=1`: either seed); filters on different axes
/// are all required, each axis applying to the tasks the axes before it kept, on every axis
/// of a task (parameters that do not vary included). Memory: the axis names and at most 20
/// values per filter.
#[derive(Debug)]
pub struct FilterCheck<'a> {
    filters: &'a [Filter],
    groups: Vec<Vec<usize>>,
    /// Per filter: axis names of the tasks it saw, whether one had its axis, the first
    /// values (sorted) its axis took, how many tasks it kept.
    known: Vec<BTreeSet<String>>,
    has: Vec<bool>,
    values: Vec<BTreeSet<String>>,
    kept: Vec<usize>,
}

impl<'a> FilterCheck<'a> {
    pub fn new(filters: &'a [Filter]) -> FilterCheck<'a> {
        let n = filters.len();
        FilterCheck {
            filters,
            groups: by_axis(filters),
            known: vec![BTreeSet::new(); n],
            has: vec![false; n],
            values: vec![BTreeSet::new(); n],
            kept: vec![0; n],
        }
    }

    /// True when `t` passes every filter.
    pub fn observe(&mut self, t: &TaskInfo) -> bool {
        for g in &self.groups {
            let mut any = false;
            for &i in g {
                let f = &self.filters[i];
                for k in t.axes.keys() {
                    if !self.known[i].contains(k) {
                        self.known[i].insert(k.clone());
                    }
                }
                if let Some(v) = f.value_of(t) {
                    self.has[i] = true;
                    if !self.values[i].contains(v) {
                        self.values[i].insert(v.to_string());
                        if self.values[i].len() > LISTED_VALUES {
                            self.values[i].pop_last();
                        }
                    }
                }
                if f.matches(t) {
                    self.kept[i] += 1;
                    any = true;
                }
            }
            if !any {
                return false;
            }
        }
        true
    }

    /// True when `t` passes the filters (nothing noted): for every axis, one of its filters.
    pub fn passes(filters: &[Filter], t: &TaskInfo) -> bool {
        by_axis(filters)
            .iter()
            .all(|g| g.iter().any(|&i| filters[i].matches(t)))
    }

    /// # Errors
    ///
    /// [`ReportError::BadFilter`] for the first filter whose axis no task (of those the
    /// filters before it kept) has, naming the axes there are, or whose value matches none
    /// of them, naming the values the axis takes.
    pub fn finish(&self) -> Result<()> {
        for (i, f) in self.filters.iter().enumerate() {
            if !self.has[i] {
                let known: BTreeSet<&str> = ["synth", "status", "sweep", "run_id"]
                    .into_iter()
                    .chain(self.known[i].iter().map(String::as_str))
                    .collect();
                return Err(ReportError::BadFilter {
                    given: format!("{}={}", f.axis, f.value),
                    why: format!(
                        "no task has an axis {:?}; axes: {}",
                        f.axis,
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
            if self.kept[i] == 0 {
                return Err(ReportError::BadFilter {
                    given: format!("{}={}", f.axis, f.value),
                    why: format!("matches no task; {} takes: {}", f.axis, {
                        // Numbers numerically (seeds 0, 1, 2, 10), then text.
                        let mut v: Vec<&str> = self.values[i].iter().map(String::as_str).collect();
                        v.sort_by(|a, b| crate::summary::axis_value_order(a, b));
                        v.join(", ")
                    }),
                });
            }
        }
        Ok(())
    }
}

/// Keeps the tasks every filter matches.
///
/// # Errors
///
/// As [`FilterCheck::finish`].
pub fn apply_filters(tasks: Vec<TaskInfo>, filters: &[Filter]) -> Result<Vec<TaskInfo>> {
    let mut check = FilterCheck::new(filters);
    let kept: Vec<TaskInfo> = tasks.into_iter().filter(|t| check.observe(t)).collect();
    check.finish()?;
    Ok(kept)
}

/// A time as RFC 3339 UTC with seconds (`2026-12-01T10:15:00Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, opt: &str, refm: &str, mm: &str, lr: f64) -> TaskRow {
        TaskRow {
            task_id: id.into(),
            synth: "mad".into(),
            image: Some("/x/images/einstein.pgm".into()),
            optimized_metric: Some(opt.into()),
            reference_metric: Some(refm.into()),
            minmax: Some(mm.into()),
            params: format!(r#"{{"params":{{"optimizer":{{"lr":{lr}}},"max_iter":10}}}}"#),
            ..Default::default()
        }
    }

    #[test]
    fn axes_keep_what_varies_and_filters_name_what_exists() {
        let mut tasks: Vec<TaskInfo> = [
            row("a", r#"{"name":"mse"}"#, r#"{"name":"ssim"}"#, "min", 0.01),
            row("b", r#"{"name":"ssim"}"#, r#"{"name":"mse"}"#, "max", 0.02),
        ]
        .iter()
        .map(TaskInfo::from_row)
        .collect();
        // Filters see every axis, a parameter that does not vary included (the report
        // filters before it drops those from the pages).
        let raw = tasks.clone();
        let kept = apply_filters(raw.clone(), &[Filter::parse("max_iter=10").unwrap()]).unwrap();
        assert_eq!(kept.len(), 2);
        let e = apply_filters(raw, &[Filter::parse("max_iter=11").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_iter takes: 10"), "{e}");
        let per_kind = keep_varying_axes(&mut tasks);
        assert_eq!(
            per_kind["mad"],
            vec![
                "minmax",
                "optimized_metric",
                "params.optimizer.lr",
                "reference_metric"
            ]
        );
        assert_eq!(tasks[0].axes["image"], "einstein.pgm");
        assert_eq!(tasks[0].axes["optimized_metric"], "mse");
        assert!(!tasks[0].axes.contains_key("params.max_iter"));
        let f = |s: &str| apply_filters(tasks.clone(), &[Filter::parse(s).unwrap()]);
        assert_eq!(f("minmax=max").unwrap().len(), 1);
        assert_eq!(f("optimizer.lr=0.01").unwrap()[0].task_id, "a");
        assert_eq!(
            f(r#"optimized_metric={"name":"ssim"}"#).unwrap()[0].task_id,
            "b"
        );
        let e = f("minmax=middle").unwrap_err().to_string();
        assert!(e.contains("max, min"), "{e}");
        let e = f("colour=red").unwrap_err().to_string();
        assert!(
            e.contains("no task has an axis") && e.contains("minmax"),
            "{e}"
        );
        assert!(Filter::parse("minmax").is_err());
        // One axis repeated: either value; two axes: both. A number matches by value.
        let g = |fs: &[&str]| {
            let fs: Vec<Filter> = fs.iter().map(|s| Filter::parse(s).unwrap()).collect();
            apply_filters(tasks.clone(), &fs).map(|k| k.len())
        };
        assert_eq!(g(&["minmax=min", "minmax=max"]).unwrap(), 2);
        assert_eq!(
            g(&["minmax=min", "minmax=max", "optimizer.lr=0.02"]).unwrap(),
            1
        );
        assert!(
            g(&["minmax=min", "minmax=middle"]).is_err(),
            "a value matching nothing"
        );
        assert_eq!(f("params.optimizer.lr=0.020").unwrap()[0].task_id, "b");
        // A metric with parameters by its bare name.
        let mut ps = row("p", r#"{"name":"ms_ssim","n_scales":3}"#, "mse", "min", 0.5);
        ps.synth = "mad".into();
        let ps = TaskInfo::from_row(&ps);
        assert_eq!(ps.axes["optimized_metric"], "ms_ssim(n_scales=3)");
        let kept = apply_filters(
            vec![ps],
            &[Filter::parse("optimized_metric=ms_ssim").unwrap()],
        );
        assert_eq!(kept.map(|k| k.len()).ok(), Some(1));
        let e = f("optimizer.lr=0.5").unwrap_err().to_string();
        assert!(e.contains("takes: 0.01, 0.02"), "{e}");
        let mut seeds: Vec<TaskInfo> = [2, 10, 1]
            .iter()
            .map(|&s| {
                let mut r = row("x", "mse", "ssim", "min", 0.01);
                r.seed = s;
                TaskInfo::from_row(&r)
            })
            .collect();
        keep_varying_axes(&mut seeds);
        let e = apply_filters(seeds, &[Filter::parse("seed=3").unwrap()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("seed takes: 1, 2, 10"), "{e}");
        assert_eq!(f("optimizer.lr=1e-2").unwrap()[0].task_id, "a");
    }

    /// A score task's axes are the spec's: `metric`, `image_a`, `image_b`; the column names
    /// (`optimized_metric`, `image`) filter too.
    #[test]
    fn score_axes_use_the_specs_names() {
        let mut r = row("s", r#"{"name":"mse"}"#, "", "", 0.01);
        r.synth = "score".into();
        r.reference_metric = None;
        r.minmax = None;
        r.image = Some("/i/a.pgm -> /i/b.pgm".into());
        let t = TaskInfo::from_row(&r);
        assert_eq!(t.axes["metric"], "mse");
        assert_eq!(
            (t.axes["image_a"].as_str(), t.axes["image_b"].as_str()),
            ("a.pgm", "b.pgm")
        );
        assert!(!t.axes.contains_key("optimized_metric") && !t.axes.contains_key("image"));
        for w in [
            "metric=mse",
            "optimized_metric=mse",
            "image_b=b.pgm",
            "image=b.pgm",
        ] {
            let kept = apply_filters(vec![t.clone()], &[Filter::parse(w).unwrap()]);
            assert_eq!(kept.map(|k| k.len()).ok(), Some(1), "{w}");
        }
    }

    #[test]
    fn short_specs_and_times() {
        assert_eq!(short_spec(r#"{"name":"mse"}"#), "mse");
        assert_eq!(
            short_spec(r#"{"name":"ps","n_scales":2}"#),
            "ps(n_scales=2)"
        );
        assert_eq!(image_label("/a/b.pgm -> c/d.png"), "b.pgm → d.png");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_764_584_100);
        assert_eq!(rfc3339(t), "2025-12-01T10:15:00Z");
    }
}
