//! `synthsweep report`: an output root as a static HTML site — plenoptic's figures per task
//! and per MAD competition, and a whole-sweep view — readable from disk with no server, no
//! network and no Python. No libtorch: it reads the tables through `synthsweep-store`.
//!
//! # Layout of the site
//!
//! ```text
//! OUT/index.html            counts by status and axis, results against each grid axis,
//!                           MAD figures, score matrices, durations, failures, provenance
//! OUT/tasks.html            every task: a sortable, filterable table (inline JS)
//! OUT/t/<task_id>/          one task's page (index.html), figures (PNG, SVG, GIF), data.json
//! OUT/mad/<key>.html        one MAD competition: 2x2 images and plot_loss_all
//! OUT/fig/*.svg             the index's figures
//! OUT/_report.json          what was drawn from which batch (for incremental runs)
//! ```
//!
//! # Memory and incremental runs
//!
//! Only the `tasks` table is read whole (a small summary per task). The data tables are read
//! one committed batch at a time (at most 256 tasks or 64 MiB, the writer's batch limits),
//! and only for batches holding a task not drawn yet: a task's page is drawn once, from the
//! batch that committed it, and redrawn only when it is committed again (a retried task) or
//! its folder is gone. Pixels are decoded only for the tasks being drawn.
//!
//! # Damaged data
//!
//! A `tasks` file that cannot be read leaves its tasks out; a data file that cannot be read
//! leaves its tasks' pages without figures. Both are warnings on the index (and in the
//! returned [`ReportOutcome`]), not errors: the rest of the report is written.

mod error;
pub mod figures;
pub mod layout;
pub mod pixels;
pub mod render;
pub mod tasks;
mod templates;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use synthsweep_store::{RunInfo, Store};

pub use error::{ReportError, Result};
pub use tasks::{Filter, TaskInfo};

use layout::{headline_name, mad_groups, LossPoint, MadGroup, TaskExtra};
use render::{render_task, split_by_task, TaskData, TaskRows};

/// Bumped when pages change shape: a manifest of another version redraws everything.
const MANIFEST_VERSION: u32 = 1;
const MANIFEST: &str = "_report.json";

/// What to report and where.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// The site's folder (created).
    pub out: PathBuf,
    /// `--where AXIS=VALUE` filters, all of which a task must match.
    pub filters: Vec<Filter>,
}

/// What a report run did.
#[derive(Debug, Clone, Default)]
pub struct ReportOutcome {
    /// `OUT/index.html`.
    pub index: PathBuf,
    /// Tasks in the report (after filters).
    pub tasks: usize,
    /// Task pages drawn by this run.
    pub drawn: usize,
    /// Task pages kept from an earlier run.
    pub kept: usize,
    /// Data batches read by this run.
    pub batches_read: usize,
    /// Damaged or unreadable parts, left out.
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    version: u32,
    tasks: BTreeMap<String, TaskExtra>,
}

/// The first hex digits of SHA-256 of `s` (stable file names).
pub(crate) fn digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(ReportError::io(path))
}

/// Writes the report of `store`'s committed tasks into `opts.out`.
///
/// # Errors
///
/// [`ReportError::NotARoot`] for a root with no `tasks/` and no `_runs/`,
/// [`ReportError::Empty`] for one with runs but no committed task, [`ReportError::BadFilter`]
/// for a filter naming no axis or matching nothing (all three before anything is written);
/// a storage failure listing the root; a failure writing the site.
pub fn write_report(store: &Store, opts: &ReportOptions) -> Result<ReportOutcome> {
    let root = store.root().display();
    let mut warnings = Vec::new();
    let batches = store.committed_batches()?;
    let runs = match store.read_runs() {
        Ok(r) => r,
        Err(e) => {
            warnings.push(format!("run records (_runs/) unreadable: {e}"));
            Vec::new()
        }
    };
    if batches.is_empty() {
        return Err(if runs.is_empty() && warnings.is_empty() {
            ReportError::NotARoot(root)
        } else {
            ReportError::Empty {
                root,
                runs: runs.len(),
            }
        });
    }
    // The tasks table, one batch file at a time: a damaged file leaves only its tasks out.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut all: Vec<TaskInfo> = Vec::new();
    for b in &batches {
        match store.read_batch_tasks(b) {
            Ok(rows) => {
                for r in &rows {
                    let info = TaskInfo::from_row(r);
                    if let Some(&i) = seen.get(&info.task_id) {
                        all[i] = info;
                    } else {
                        seen.insert(info.task_id.clone(), all.len());
                        all.push(info);
                    }
                }
            }
            Err(e) => warnings.push(format!(
                "tasks/part-{b}.parquet unreadable, its tasks are left out: {e}"
            )),
        }
    }
    let axes_per_kind = tasks::keep_varying_axes(&mut all);
    let tasks = tasks::apply_filters(all, &opts.filters)?;

    let out = &opts.out;
    std::fs::create_dir_all(out.join("t")).map_err(ReportError::io(out))?;
    std::fs::create_dir_all(out.join("fig")).map_err(ReportError::io(out))?;
    std::fs::create_dir_all(out.join("mad")).map_err(ReportError::io(out))?;
    let old: Manifest = std::fs::read(out.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .filter(|m: &Manifest| m.version == MANIFEST_VERSION)
        .unwrap_or_default();

    let env = templates::env();
    let common = minijinja::context! {
        version => env!("CARGO_PKG_VERSION"),
        written => tasks::rfc3339(std::time::SystemTime::now()),
        root => root.clone(),
    };
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        tasks: BTreeMap::new(),
    };
    let mut todo: BTreeMap<&str, Vec<&TaskInfo>> = BTreeMap::new();
    let mut kept = 0;
    for t in &tasks {
        match old.tasks.get(&t.task_id) {
            Some(x)
                if x.batch_id == t.batch_id && task_dir(out, t).join("index.html").is_file() =>
            {
                manifest.tasks.insert(t.task_id.clone(), x.clone());
                kept += 1;
            }
            _ => todo.entry(t.batch_id.as_str()).or_default().push(t),
        }
    }
    let mut drawn = 0;
    let mut fresh: BTreeSet<String> = BTreeSet::new();
    let batches_read = todo.len();
    for (batch, members) in todo {
        let (mut rows, damaged) = match store.read_batch_data(batch) {
            Ok(d) => (split_by_task(d), false),
            Err(e) => {
                warnings.push(format!(
                    "data files of batch {batch} unreadable, {} task page(s) without figures: {e}",
                    members.len()
                ));
                (BTreeMap::new(), true)
            }
        };
        for t in members {
            let r = rows.remove(&t.task_id).unwrap_or_else(TaskRows::default);
            let dir = task_dir(out, t);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(ReportError::io(&dir))?;
            }
            let mut extra = render_task(&env, t, &r, &dir, &common)?;
            if damaged {
                // Not recorded as drawn from its batch: the next report tries again.
                extra.batch_id = String::new();
            }
            manifest.tasks.insert(t.task_id.clone(), extra);
            fresh.insert(t.task_id.clone());
            drawn += 1;
        }
        tracing::debug!("report: batch {batch} drawn");
    }
    // Pages of tasks no longer in the report (uncommitted, or filtered out now).
    for id in old.tasks.keys() {
        if !manifest.tasks.contains_key(id) {
            let dir = out.join("t").join(id);
            if dir.is_dir() {
                std::fs::remove_dir_all(&dir).map_err(ReportError::io(&dir))?;
            }
        }
    }

    let refs: Vec<&TaskInfo> = tasks.iter().collect();
    let groups = mad_groups(&refs);
    for g in &groups {
        let members: Vec<&String> = g.cells.iter().flatten().flatten().collect();
        let page = out.join("mad").join(format!("{}.html", g.key));
        if page.is_file() && !members.iter().any(|m| fresh.contains(*m)) {
            continue;
        }
        mad_page(&env, out, g, &manifest, &common)?;
    }
    index_page(
        &env,
        out,
        &root,
        &tasks,
        &axes_per_kind,
        &groups,
        &manifest,
        &runs,
        &warnings,
        &opts.filters,
        &common,
    )?;
    tasks_page(&env, out, &tasks, &manifest, &common)?;
    let json =
        serde_json::to_vec(&manifest).map_err(|e| ReportError::figure(MANIFEST)(e.to_string()))?;
    write(&out.join(MANIFEST), &json)?;
    for w in &warnings {
        tracing::warn!("report: {w}");
    }
    Ok(ReportOutcome {
        index: out.join("index.html"),
        tasks: tasks.len(),
        drawn,
        kept,
        batches_read,
        warnings,
    })
}

fn task_dir(out: &Path, t: &TaskInfo) -> PathBuf {
    out.join("t").join(&t.task_id)
}

#[derive(Serialize)]
struct Cell {
    file: Option<String>,
    link: String,
    caption: String,
}

fn load_losses(out: &Path, id: &str) -> Vec<LossPoint> {
    std::fs::read(out.join("t").join(id).join("data.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<TaskData>(&b).ok())
        .map(|d| d.losses)
        .unwrap_or_default()
}

/// A MAD competition's page: `display_mad_image_all` and `plot_loss_all`.
fn mad_page(
    env: &minijinja::Environment<'_>,
    out: &Path,
    g: &MadGroup,
    manifest: &Manifest,
    common: &minijinja::Value,
) -> Result<()> {
    let metric = [&g.metric1, &g.metric2];
    let fmt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.5}"));
    let file_of = |id: &str, name: &str| {
        manifest
            .tasks
            .get(id)
            .filter(|x| x.files.contains_key(name))
            .map(|_| format!("../t/{id}/{name}"))
    };
    let any = g.cells.iter().flatten().flatten().next().cloned();
    let mut grid: Vec<Vec<Cell>> = Vec::new();
    let first_row = vec![
        Cell {
            file: any.as_deref().and_then(|id| file_of(id, "target.png")),
            link: String::new(),
            caption: "Reference image".into(),
        },
        Cell {
            file: any.as_deref().and_then(|id| file_of(id, "initial.png")),
            link: String::new(),
            caption: "Initial image (reference + noise)".into(),
        },
        Cell {
            file: None,
            link: String::new(),
            caption: String::new(),
        },
    ];
    grid.push(first_row);
    for (d, dir) in ["min", "max"].iter().enumerate() {
        let mut row = vec![Cell {
            file: None,
            link: String::new(),
            caption: format!("{dir}imize"),
        }];
        for m in 0..2 {
            let cell = match &g.cells[m][d] {
                Some(id) => {
                    let x = manifest.tasks.get(id);
                    // Values of metric1 and metric2 at the final image: the optimized one is
                    // `final_optimized` of the task that optimized it.
                    let (v_opt, v_ref) = (
                        x.and_then(|x| x.final_optimized),
                        x.and_then(|x| x.final_reference),
                    );
                    let (v1, v2) = if m == 0 {
                        (v_opt, v_ref)
                    } else {
                        (v_ref, v_opt)
                    };
                    Cell {
                        file: file_of(id, "final.png"),
                        link: format!("../t/{id}/index.html"),
                        caption: format!(
                            "{dir} {} ({} held): {} = {}, {} = {}",
                            metric[m],
                            metric[1 - m],
                            g.metric1,
                            fmt(v1),
                            g.metric2,
                            fmt(v2)
                        ),
                    }
                }
                None => Cell {
                    file: None,
                    link: String::new(),
                    caption: format!("{dir} {}: not committed (or failed)", metric[m]),
                },
            };
            row.push(cell);
        }
        grid.push(row);
    }
    // plot_loss_all: metric 1's values for all four syntheses on one axis, metric 2's on
    // the other; color = which metric was optimized, dashed = min.
    let mut plots = Vec::new();
    let mut loaded: Vec<(usize, usize, Vec<LossPoint>)> = Vec::new();
    for m in 0..2 {
        for d in 0..2 {
            if let Some(id) = &g.cells[m][d] {
                loaded.push((m, d, load_losses(out, id)));
            }
        }
    }
    for (k, name) in metric.iter().enumerate() {
        let series: Vec<figures::Series> = loaded
            .iter()
            .map(|(m, d, pts)| figures::Series {
                name: format!("{} {}", ["min", "max"][*d], metric[*m]),
                points: pts
                    .iter()
                    .filter_map(|p| {
                        let v = if *m == k { p.optimized } else { p.reference };
                        v.map(|v| (p.iteration as f64, v))
                    })
                    .collect(),
                color: *m,
                dashed: *d == 0,
            })
            .collect();
        let title = name.to_string();
        let svg = figures::line_chart(
            &figures::LineChart {
                title: &title,
                x_label: "iteration",
                y_label: name,
                ..Default::default()
            },
            &series,
        )?;
        let file = format!("{}_m{}.svg", g.key, k + 1);
        write(&out.join("mad").join(&file), svg.as_bytes())?;
        plots.push(Cell {
            file: Some(file),
            link: String::new(),
            caption: format!(
                "{name} over iterations in the four syntheses (color: the metric optimized, blue {}, orange {}; dashed: min, solid: max).",
                g.metric1, g.metric2
            ),
        });
    }
    let width = any
        .as_deref()
        .and_then(|id| manifest.tasks.get(id))
        .map(|_| 192)
        .unwrap_or(192);
    let html = env.get_template("mad.html")?.render(minijinja::context! {
        title => format!("MAD: {} — {} vs {} {}", g.image, g.metric1, g.metric2, g.rest),
        up => "../",
        grid => grid,
        plots => plots,
        width => width,
        ..common.clone()
    })?;
    write(
        &out.join("mad").join(format!("{}.html", g.key)),
        html.as_bytes(),
    )
}

#[derive(Serialize)]
struct KindRow {
    kind: String,
    done: usize,
    failed: usize,
    total: usize,
    seconds: String,
}

#[derive(Serialize)]
struct AxisValue {
    value: String,
    done: usize,
    failed: usize,
}

#[derive(Serialize)]
struct AxisTable {
    kind: String,
    axis: String,
    values: Vec<AxisValue>,
}

#[derive(Serialize)]
struct Fig {
    file: String,
    caption: String,
}

#[derive(Serialize)]
struct Failure {
    count: usize,
    error: String,
    example: String,
    example_label: String,
}

#[derive(Serialize)]
struct GroupRow<'a> {
    key: &'a str,
    image: &'a str,
    metric1: &'a str,
    metric2: &'a str,
    rest: &'a str,
    count: usize,
}

#[derive(Serialize)]
struct MatrixCell {
    text: String,
    color: String,
}

#[derive(Serialize)]
struct MatrixRow {
    name: String,
    cells: Vec<MatrixCell>,
}

#[derive(Serialize)]
struct Matrix {
    metric: String,
    cols: Vec<String>,
    rows: Vec<MatrixRow>,
}

#[derive(Serialize)]
struct RunRow {
    run_id: String,
    started_at: String,
    state: String,
    processes: usize,
    threads: usize,
    devices: String,
    hosts: String,
    version: String,
    torch: String,
    git: String,
    committed: String,
    command: String,
    spec_path: Option<String>,
    spec_text: String,
}

fn score_matrices(tasks: &[TaskInfo], manifest: &Manifest) -> Vec<Matrix> {
    let mut by_metric: BTreeMap<String, BTreeMap<(String, String), f64>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| t.synth == "score" && t.done()) {
        if let Some((metric, a, b, v)) =
            manifest.tasks.get(&t.task_id).and_then(|x| x.score.clone())
        {
            by_metric.entry(metric).or_default().insert((a, b), v);
        }
    }
    by_metric
        .into_iter()
        .map(|(metric, cells)| {
            let rows: BTreeSet<&String> = cells.keys().map(|k| &k.0).collect();
            let cols: BTreeSet<&String> = cells.keys().map(|k| &k.1).collect();
            let (lo, hi) = cells
                .values()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                    (l.min(*v), h.max(*v))
                });
            let color = |v: f64| {
                let x = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                // white (low) to blue (high)
                let c = |a: f64, b: f64| (a + (b - a) * x).round() as u8;
                format!(
                    "rgb({},{},{})",
                    c(255.0, 100.0),
                    c(255.0, 150.0),
                    c(255.0, 230.0)
                )
            };
            Matrix {
                metric,
                cols: cols.iter().map(|c| (*c).clone()).collect(),
                rows: rows
                    .iter()
                    .map(|r| MatrixRow {
                        name: (*r).clone(),
                        cells: cols
                            .iter()
                            .map(|c| match cells.get(&((*r).clone(), (*c).clone())) {
                                Some(v) => MatrixCell {
                                    text: format!("{v:.4}"),
                                    color: color(*v),
                                },
                                None => MatrixCell {
                                    text: String::new(),
                                    color: "#fff".into(),
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn index_page(
    env: &minijinja::Environment<'_>,
    out: &Path,
    root: &str,
    tasks: &[TaskInfo],
    axes_per_kind: &BTreeMap<String, Vec<String>>,
    groups: &[MadGroup],
    manifest: &Manifest,
    runs: &[RunInfo],
    warnings: &[String],
    filters: &[Filter],
    common: &minijinja::Value,
) -> Result<()> {
    let mut kinds: BTreeMap<&str, (usize, usize, f64)> = BTreeMap::new();
    for t in tasks {
        let e = kinds.entry(&t.synth).or_default();
        if t.done() {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
        e.2 += t.duration_s;
    }
    let kind_rows: Vec<KindRow> = kinds
        .iter()
        .map(|(k, (d, f, s))| KindRow {
            kind: k.to_string(),
            done: *d,
            failed: *f,
            total: d + f,
            seconds: format!("{s:.1}"),
        })
        .collect();
    let done = tasks.iter().filter(|t| t.done()).count();
    let failed = tasks.len() - done;
    // Counts by axis and the strip plots, per kind and varying axis.
    let mut axis_tables = Vec::new();
    let mut strips = Vec::new();
    for (kind, axes) in axes_per_kind {
        let mine: Vec<&TaskInfo> = tasks.iter().filter(|t| &t.synth == kind).collect();
        if mine.is_empty() {
            continue;
        }
        for axis in axes {
            let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
            for t in &mine {
                if let Some(v) = t.axes.get(axis) {
                    let e = counts.entry(v).or_default();
                    if t.done() {
                        e.0 += 1;
                    } else {
                        e.1 += 1;
                    }
                }
            }
            if counts.len() < 2 {
                continue;
            }
            let cats: Vec<String> = counts.keys().map(|s| s.to_string()).collect();
            axis_tables.push(AxisTable {
                kind: kind.clone(),
                axis: axis.clone(),
                values: counts
                    .iter()
                    .map(|(v, (d, f))| AxisValue {
                        value: v.to_string(),
                        done: *d,
                        failed: *f,
                    })
                    .collect(),
            });
            if counts.len() > 40 {
                continue;
            }
            let group_axis = if kind == "mad" && axis != "minmax" {
                Some("minmax")
            } else {
                None
            };
            let mut group_names: Vec<String> = Vec::new();
            let mut pts = Vec::new();
            for t in mine.iter().filter(|t| t.done()) {
                let (Some(v), Some(y)) = (
                    t.axes.get(axis),
                    manifest.tasks.get(&t.task_id).and_then(|x| x.headline),
                ) else {
                    continue;
                };
                let gname = group_axis
                    .and_then(|g| t.axes.get(g))
                    .cloned()
                    .unwrap_or_default();
                let g = match group_names.iter().position(|n| *n == gname) {
                    Some(i) => i,
                    None => {
                        group_names.push(gname);
                        group_names.len() - 1
                    }
                };
                let c = cats.iter().position(|c| c == v).unwrap_or(0);
                pts.push((c, y, g));
            }
            if pts.is_empty() {
                continue;
            }
            let y = headline_name(kind);
            let svg = figures::strip_chart(
                &format!("{kind}: {y} by {axis}"),
                axis,
                y,
                &cats,
                &pts,
                &group_names,
            )?;
            let file = format!(
                "fig/{}.svg",
                digest(&format!("{kind}\u{1}{axis}"))[..16].to_owned()
            );
            write(&out.join(&file), svg.as_bytes())?;
            strips.push(Fig {
                file,
                caption: format!(
                    "{kind}: {y} of each finished task ({} points) against {axis}{}.",
                    pts.len(),
                    if group_axis.is_some() {
                        ", colored by minmax"
                    } else {
                        ""
                    }
                ),
            });
        }
    }
    // Durations.
    let mut durations: Vec<f64> = tasks
        .iter()
        .filter(|t| t.done())
        .map(|t| t.duration_s)
        .collect();
    durations.sort_by(f64::total_cmp);
    let svg = figures::bar_histogram("Task durations", "seconds", &durations, 30)?;
    write(&out.join("fig/durations.svg"), svg.as_bytes())?;
    let median = durations.get(durations.len() / 2).copied().unwrap_or(0.0);
    let max = durations.last().copied().unwrap_or(0.0);
    // Failures, grouped by message.
    let mut fails: BTreeMap<&str, Vec<&TaskInfo>> = BTreeMap::new();
    for t in tasks.iter().filter(|t| !t.done()) {
        fails
            .entry(t.error.as_deref().unwrap_or("(no message)"))
            .or_default()
            .push(t);
    }
    let mut failures: Vec<Failure> = fails
        .into_iter()
        .map(|(e, ts)| Failure {
            count: ts.len(),
            error: e.to_string(),
            example: ts[0].task_id.clone(),
            example_label: ts[0].label(),
        })
        .collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.count));
    failures.truncate(100);
    let group_rows: Vec<GroupRow<'_>> = groups
        .iter()
        .map(|g| GroupRow {
            key: &g.key,
            image: &g.image,
            metric1: &g.metric1,
            metric2: &g.metric2,
            rest: &g.rest,
            count: g.cells.iter().flatten().flatten().count(),
        })
        .collect();
    let run_rows: Vec<RunRow> = runs
        .iter()
        .rev()
        .map(|r| RunRow {
            run_id: r.run_id.clone(),
            started_at: r.started_at.clone(),
            state: r
                .finished_at
                .as_ref()
                .map_or("not finished (running, or stopped)".into(), |f| {
                    format!("finished {f}")
                }),
            processes: r.processes,
            threads: r.threads,
            devices: r.devices.join(", "),
            hosts: r.hosts.join(", "),
            version: r.synthsweep_version.clone(),
            torch: r.torch_version.clone().unwrap_or_else(|| "?".into()),
            git: r.git_commit.clone().unwrap_or_else(|| "?".into()),
            committed: match (r.committed_done, r.committed_failed) {
                (Some(d), Some(f)) => format!("{d} done, {f} failed"),
                _ => String::new(),
            },
            command: r.command.join(" "),
            spec_path: r.spec_path.clone(),
            spec_text: r.spec_text.clone(),
        })
        .collect();
    let unfinished = runs.iter().filter(|r| r.finished_at.is_none()).count();
    let running_note = if unfinished > 0 {
        format!("{unfinished} run(s) not finished: a sweep may still be running; this report shows what was committed when it was written (run the report again for more; only new tasks are drawn).")
    } else {
        "Every recorded run finished.".to_string()
    };
    let sweeps: BTreeSet<&str> = tasks.iter().map(|t| t.sweep.as_str()).collect();
    let html = env.get_template("index.html")?.render(minijinja::context! {
        title => format!("synthsweep report: {}", sweeps.into_iter().collect::<Vec<_>>().join(", ")),
        up => "",
        warnings => warnings,
        filters => filters.iter().map(|f| format!("{}={}", f.axis, f.value)).collect::<Vec<_>>().join(", "),
        kinds => kind_rows,
        done => done,
        failed => failed,
        total => tasks.len(),
        seconds => format!("{:.1}", tasks.iter().map(|t| t.duration_s).sum::<f64>()),
        running_note => running_note,
        axes => axis_tables,
        strips => strips,
        mad_groups => group_rows,
        score_matrices => score_matrices(tasks, manifest),
        durations => "fig/durations.svg",
        median_s => format!("{median:.2}"),
        max_s => format!("{max:.2}"),
        failures => failures,
        runs => run_rows,
        root => root,
        ..common.clone()
    })?;
    write(&out.join("index.html"), html.as_bytes())
}

#[derive(Serialize)]
struct Column {
    name: String,
    num: bool,
}

#[derive(Serialize)]
struct Row {
    id: String,
    status: String,
    cells: Vec<String>,
}

fn tasks_page(
    env: &minijinja::Environment<'_>,
    out: &Path,
    tasks: &[TaskInfo],
    manifest: &Manifest,
    common: &minijinja::Value,
) -> Result<()> {
    let axes: BTreeSet<&str> = tasks
        .iter()
        .flat_map(|t| t.axes.keys().map(String::as_str))
        .collect();
    let mut columns = vec![
        Column {
            name: "task".into(),
            num: false,
        },
        Column {
            name: "kind".into(),
            num: false,
        },
        Column {
            name: "status".into(),
            num: false,
        },
    ];
    columns.extend(axes.iter().map(|a| Column {
        name: a.trim_start_matches("params.").to_string(),
        num: *a == "seed",
    }));
    for (n, num) in [
        ("value", true),
        ("final loss", true),
        ("iterations", true),
        ("seconds", true),
        ("error", false),
    ] {
        columns.push(Column {
            name: n.into(),
            num,
        });
    }
    let f = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let rows: Vec<Row> = tasks
        .iter()
        .map(|t| {
            let mut cells = vec![t.short_id().to_string(), t.synth.clone(), t.status.clone()];
            cells.extend(
                axes.iter()
                    .map(|a| t.axes.get(*a).cloned().unwrap_or_default()),
            );
            cells.push(f(manifest.tasks.get(&t.task_id).and_then(|x| x.headline)));
            cells.push(f(t.final_loss));
            cells.push(t.iterations.to_string());
            cells.push(format!("{:.3}", t.duration_s));
            cells.push(t.error.clone().unwrap_or_default());
            Row {
                id: t.task_id.clone(),
                status: t.status.clone(),
                cells,
            }
        })
        .collect();
    let html = env
        .get_template("tasks.html")?
        .render(minijinja::context! {
            title => format!("All tasks ({})", tasks.len()),
            up => "",
            columns => columns,
            rows => rows,
            ..common.clone()
        })?;
    write(&out.join("tasks.html"), html.as_bytes())
}
