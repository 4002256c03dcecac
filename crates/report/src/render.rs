//! One task's page, `t/<task_id>/index.html`, with its figures beside it, per kind as
//! plenoptic draws them. Reads only the task's own rows (one batch is in memory at a time).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use synthsweep_store::{EigenRow, ImageRow, LossRow, ScoreRow};

use crate::error::{ReportError, Result};
use crate::figures::{histogram_chart, line_chart, LineChart, Series};
use crate::layout::{downsample, headline, scale_switches, LossPoint, TaskExtra};
use crate::pixels::{deviation_from_line, histogram, write_gif, Pixels, Range};
use crate::tasks::TaskInfo;

/// Display width of an image in CSS pixels: small images are enlarged (pixelated).
pub fn display_width(width: i32) -> i32 {
    if width <= 0 {
        return 128;
    }
    width * (256 / width).clamp(1, 8)
}

/// Loss points kept per task for drawing.
pub const MAX_POINTS: usize = 600;

/// plenoptic's `display_eigendistortion` default: image ± 5 · eigendistortion.
pub const EIGEN_ALPHA: f32 = 5.0;

/// The rows of one task (its share of a batch).
#[derive(Debug, Default)]
pub struct TaskRows {
    pub losses: Vec<LossRow>,
    pub eigen: Vec<EigenRow>,
    pub images: Vec<ImageRow>,
    pub scores: Vec<ScoreRow>,
    /// Why rows of the task are missing (its batch's data files unreadable or lost, or no
    /// images row of a done task that draws images): the page's first note.
    pub problem: Option<String>,
    /// Its batch's data files could not be read: the page draws no figures from no rows
    /// (the note is [`TaskRows::problem`]).
    pub unreadable: bool,
}

/// A figure of a task's page: an image file beside the page, or a chart inlined in it.
#[derive(Debug, Serialize)]
pub(crate) struct Fig {
    pub file: String,
    /// A chart's SVG text, inlined in the page (no file).
    pub svg: Option<String>,
    pub caption: String,
    pub width: Option<i32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Section {
    pub title: String,
    pub figures: Vec<Fig>,
}

/// A MAD task's loss curves (`t/<id>/losses.json`), which its competition's page draws
/// together with the three others' (`plot_loss_all`); other kinds write none.
pub const LOSSES_FILE: &str = "losses.json";

struct Page<'a> {
    dir: &'a Path,
    sections: Vec<Section>,
    notes: Vec<String>,
    extra: TaskExtra,
}

impl Page<'_> {
    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let p = self.dir.join(name);
        std::fs::write(&p, bytes).map_err(ReportError::io(p))
    }

    fn image(&mut self, name: &str, px: &Pixels, range: Range, caption: String) -> Result<Fig> {
        self.write(name, &px.png(range)?)?;
        Ok(Fig {
            file: name.to_string(),
            svg: None,
            caption,
            width: Some(display_width(px.width as i32)),
        })
    }

    /// A chart, inlined in the page: one file per task page instead of one per chart (most
    /// of a report's files are its task pages; small files cost a file system block each).
    fn svg(&mut self, name: &str, svg: String, caption: String) -> Result<Fig> {
        Ok(Fig {
            file: name.to_string(),
            svg: Some(svg),
            caption,
            width: None,
        })
    }

    fn section(&mut self, title: &str, figures: Vec<Fig>) {
        if !figures.is_empty() {
            self.sections.push(Section {
                title: title.to_string(),
                figures,
            });
        }
    }
}

fn first<'a>(images: &'a [ImageRow], role: &str) -> Option<&'a ImageRow> {
    images.iter().find(|i| i.role == role)
}

fn all<'a>(images: &'a [ImageRow], role: &str) -> Vec<&'a ImageRow> {
    let mut v: Vec<&ImageRow> = images.iter().filter(|i| i.role == role).collect();
    v.sort_by_key(|i| i.index);
    v
}

/// A value or "—", as [`fmt_value`] writes it.
pub(crate) fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_string(), fmt_value)
}

/// A value for a caption or a table cell: six decimals between 1e-3 and 1e6 (and for 0),
/// scientific notation with five significant digits otherwise, so that a small eigenvalue
/// (1.44e-7) or loss does not show as 0.000000.
pub(crate) fn fmt_value(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-3..1e6).contains(&v.abs()) {
        format!("{v:.6}")
    } else {
        format!("{v:.4e}")
    }
}

/// Draws task `t`'s page into `dir` (created): `index.html` with its charts inlined, its
/// images as files beside it, and for MAD its loss curves ([`LOSSES_FILE`]).
/// Returns what the index and group pages need of it.
///
/// # Errors
///
/// Writing a file or drawing a figure failed.
pub fn render_task(
    env: &minijinja::Environment<'_>,
    t: &TaskInfo,
    rows: &TaskRows,
    dir: &Path,
    common: &minijinja::Value,
) -> Result<TaskExtra> {
    std::fs::create_dir_all(dir).map_err(ReportError::io(dir))?;
    let mut page = Page {
        dir,
        sections: Vec::new(),
        notes: Vec::new(),
        extra: TaskExtra {
            batch_id: t.batch_id.clone(),
            headline: headline(t, &rows.losses, &rows.eigen, &rows.scores),
            ..Default::default()
        },
    };
    page.notes.extend(rows.problem.clone());
    let losses = downsample(&rows.losses, MAX_POINTS);
    page.extra.problem = rows.problem.clone();
    if !rows.unreadable {
        match t.synth.as_str() {
            "mad" => mad(&mut page, t, rows, &losses)?,
            "metamer" | "metamer_ctf" | "simple_metamer" => metamer(&mut page, t, rows, &losses)?,
            "eigendistortion" => eigendistortion(&mut page, rows)?,
            "geodesic" => geodesic(&mut page, t, rows, &losses)?,
            "score" => score(&mut page, rows),
            other => page.notes.push(format!(
                "kind {other} has no figures in this version of the report"
            )),
        }
        animation(&mut page, rows)?;
    }
    if rows.problem.is_some() {
        // The rows were lost, not written by a synthsweep of before the report: the
        // problem (the first note) says why, the notes about older roots would mislead.
        page.notes
            .retain(|n| !n.starts_with("The tables of this root hold no"));
    }
    if t.synth == "mad" {
        let json = serde_json::to_vec(&losses)
            .map_err(|e| ReportError::figure(LOSSES_FILE)(e.to_string()))?;
        page.write(LOSSES_FILE, &json)?;
    }

    let mut fields: Vec<(String, String)> = vec![
        ("task".into(), t.task_id.clone()),
        ("kind".into(), t.synth.clone()),
        ("sweep".into(), t.sweep.clone()),
        ("status".into(), t.status.clone()),
    ];
    for (k, v) in &t.axes {
        fields.push((k.clone(), v.clone()));
    }
    for (k, v) in &t.specs {
        fields.push((format!("{k} (spec)"), v.clone()));
    }
    fields.push(("iterations".into(), t.iterations.to_string()));
    if t.final_loss.is_some() {
        fields.push(("final loss (objective)".into(), num(t.final_loss)));
    }
    if t.metric_tradeoff_lambda.is_some() {
        fields.push((
            "metric_tradeoff_lambda".into(),
            num(t.metric_tradeoff_lambda),
        ));
    }
    if t.jerkiness.is_some() {
        fields.push(("jerkiness".into(), num(t.jerkiness)));
    }
    fields.push(("duration".into(), format!("{:.3} s", t.duration_s)));
    fields.push((
        "device / host".into(),
        format!("{} on {}", t.device, t.host),
    ));
    fields.push(("finished".into(), t.finished_at.clone()));
    fields.push((
        "run / batch".into(),
        format!("{} / {}", t.run_id, t.batch_id),
    ));
    let html = env.get_template("task.html")?.render(minijinja::context! {
        title => format!("{} task {}", t.synth, t.short_id()),
        up => "../../",
        fields => fields,
        error => t.error,
        notes => page.notes,
        sections => page.sections,
        params => pretty(&t.params),
        ..common.clone()
    })?;
    page.write("index.html", html.as_bytes())?;
    Ok(page.extra)
}

fn pretty(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| json.to_string())
}

fn pixel_range(sets: &[&Pixels]) -> (f32, f32) {
    let mut lo = 0f32;
    let mut hi = 1f32;
    for p in sets {
        for &v in p.data.iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo, hi)
}

/// `plot_pixel_values`: histograms of the target's and the synthesized image's pixels.
fn pixel_values(
    page: &mut Page<'_>,
    target: Option<&Pixels>,
    other: &Pixels,
    name: &str,
) -> Result<Fig> {
    let sets: Vec<&Pixels> = target.into_iter().chain(std::iter::once(other)).collect();
    let (lo, hi) = pixel_range(&sets);
    let mut series = Vec::new();
    if let Some(t) = target {
        series.push(("target image".to_string(), histogram(&t.data, lo, hi, 40)));
    }
    series.push((name.to_string(), histogram(&other.data, lo, hi, 40)));
    let svg = histogram_chart(
        "Pixel values",
        "pixel value",
        f64::from(lo),
        f64::from(hi),
        &series,
    )?;
    page.svg(
        "pixel_values.svg",
        svg,
        format!(
            "Histogram of pixel values (40 bins over [{lo:.3}, {hi:.3}]); values outside [0, 1] lie beyond the allowed range."
        ),
    )
}

fn mad(page: &mut Page<'_>, t: &TaskInfo, rows: &TaskRows, losses: &[LossPoint]) -> Result<()> {
    let opt = t.axes.get("optimized_metric").cloned().unwrap_or_default();
    let rf = t.axes.get("reference_metric").cloned().unwrap_or_default();
    let last = rows.losses.iter().max_by_key(|l| l.iteration);
    page.extra.final_optimized = last.and_then(|l| l.optimized_metric_loss);
    page.extra.final_reference = last.and_then(|l| l.reference_metric_loss);
    let target = first(&rows.images, "target_image").and_then(Pixels::of);
    let mut figs = Vec::new();
    if let Some(p) = &target {
        figs.push(page.image("target.png", p, Range::Unit, "Reference image".into())?);
    } else {
        page.notes.push("The tables of this root hold no target_image row (written by synthsweep since the report was added): the reference image is not shown.".into());
    }
    if let Some(p) = first(&rows.images, "initial_image").and_then(Pixels::of) {
        figs.push(page.image(
            "initial.png",
            &p,
            Range::Unit,
            "Initial image (reference + noise)".into(),
        )?);
    }
    let final_px = first(&rows.images, "mad_image").and_then(Pixels::of);
    if let Some(p) = &final_px {
        let caption = format!(
            "MAD image: {} {opt} (held {rf}); {opt} = {}, {rf} = {}, λ = {}",
            t.axes.get("minmax").map_or("", String::as_str),
            num(page.extra.final_optimized),
            num(page.extra.final_reference),
            num(t.metric_tradeoff_lambda)
        );
        figs.push(page.image("final.png", p, Range::Unit, caption)?);
    }
    page.section("Images (as display_mad_image)", figs);
    let iter = |f: fn(&LossPoint) -> Option<f64>| -> Vec<(f64, f64)> {
        losses
            .iter()
            .filter_map(|l| f(l).map(|v| (l.iteration as f64, v)))
            .collect()
    };
    let mut figs = Vec::new();
    for (file, name, pts, color) in [
        ("optimized_loss.svg", &opt, iter(|l| l.optimized), 0),
        ("reference_loss.svg", &rf, iter(|l| l.reference), 1),
    ] {
        let title = format!("{name} ({})", if color == 0 { "optimized" } else { "held" });
        let svg = line_chart(
            &LineChart {
                title: &title,
                x_label: "iteration",
                y_label: name,
                ..Default::default()
            },
            &[Series {
                name: String::new(),
                points: pts,
                color,
                dashed: false,
            }],
        )?;
        figs.push(page.svg(
            file,
            svg,
            format!(
                "{name} at the image before each iteration, and at the final image (as plot_loss)."
            ),
        )?);
    }
    let svg = line_chart(
        &LineChart {
            title: "Objective",
            x_label: "iteration",
            y_label: "loss",
            ..Default::default()
        },
        &[loss_series(losses, 2)],
    )?;
    figs.push(page.svg(
        "loss.svg",
        svg,
        format!(
            "The objective MAD minimises (the optimized metric, negated for max, plus λ times the reference metric's squared deviation); final {}.",
            num(t.final_loss)
        ),
    )?);
    if let Some(p) = &final_px {
        figs.push(pixel_values(page, target.as_ref(), p, "MAD image")?);
    }
    page.section("Losses and pixel values (as plot_synthesis_status)", figs);
    Ok(())
}

fn metamer(page: &mut Page<'_>, t: &TaskInfo, rows: &TaskRows, losses: &[LossPoint]) -> Result<()> {
    let target = first(&rows.images, "target_image").and_then(Pixels::of);
    let meta = first(&rows.images, "metamer").and_then(Pixels::of);
    let mut figs = Vec::new();
    if let Some(p) = &target {
        figs.push(page.image("target.png", p, Range::Unit, "Target image".into())?);
    } else {
        page.notes.push("The tables of this root hold no target_image row (written by synthsweep since the report was added): the target and the difference are not shown.".into());
    }
    if let Some(p) = first(&rows.images, "initial_image").and_then(Pixels::of) {
        figs.push(page.image("initial.png", &p, Range::Unit, "Initial image".into())?);
    }
    if let Some(p) = &meta {
        let caption = format!(
            "Metamer after {} iterations; final loss {}",
            t.iterations,
            num(page.extra.headline)
        );
        figs.push(page.image("final.png", p, Range::Unit, caption)?);
    }
    if let (Some(a), Some(m)) = (&target, &meta) {
        if let Some(d) = m.plus(-1.0, a) {
            let max = d.data.iter().fold(0f32, |x, v| x.max(v.abs()));
            figs.push(page.image(
                "difference.png",
                &d,
                Range::Symmetric,
                format!("Metamer − target (gray 0, white +{max:.3}, black −{max:.3})"),
            )?);
        }
    }
    page.section("Images (as display_metamer)", figs);
    let switches = scale_switches(losses);
    let mut figs = Vec::new();
    let svg = line_chart(
        &LineChart {
            title: "Loss",
            x_label: "iteration",
            y_label: "loss",
            log_y: losses.iter().all(|l| l.loss > 0.0),
            markers: switches
                .iter()
                .skip(1)
                .map(|(i, s)| (*i as f64, s.clone()))
                .collect(),
            dots: false,
        },
        &[loss_series(losses, 0)],
    )?;
    let ctf = if switches.len() > 1 {
        format!(
            "; dashed lines: coarse-to-fine scale switches ({})",
            switches
                .iter()
                .map(|(i, s)| format!("{s} from iteration {i}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    figs.push(page.svg(
        "loss.svg",
        svg,
        format!("Loss (the objective over every scale) per iteration{ctf} (as plot_loss)."),
    )?);
    if let Some(m) = &meta {
        figs.push(pixel_values(page, target.as_ref(), m, "metamer")?);
    }
    page.section("Loss and pixel values (as plot_synthesis_status)", figs);
    representation_error(page, rows)?;
    Ok(())
}

/// Channels of a representation error drawn as images at most.
const MAX_ERROR_CHANNELS: usize = 16;

/// `plot_representation_error`: model(metamer) − model(target) as the tables hold it (role
/// `representation_error`): each channel of a (C, H, W) representation as an image (gray 0,
/// symmetric range per channel), a flattened one (1 × 1 × N, e.g. Portilla-Simoncelli
/// statistics) as a line of values by index.
fn representation_error(page: &mut Page<'_>, rows: &TaskRows) -> Result<()> {
    let Some(e) = first(&rows.images, "representation_error").and_then(Pixels::of) else {
        page.notes.push("The tables of this root hold no representation_error row (written by synthsweep since it was added to the report): plot_representation_error is not shown.".into());
        return Ok(());
    };
    let max = e
        .data
        .iter()
        .filter(|v| v.is_finite())
        .fold(0f32, |x, v| x.max(v.abs()));
    let norm = e
        .data
        .iter()
        .map(|v| f64::from(*v).powi(2))
        .sum::<f64>()
        .sqrt();
    let mut figs = Vec::new();
    if e.height == 1 && e.channels == 1 {
        let svg = line_chart(
            &LineChart {
                title: "Representation error",
                x_label: "representation element (model output order)",
                y_label: "model(metamer) − model(target)",
                dots: e.width <= 200,
                ..Default::default()
            },
            &[Series {
                name: String::new(),
                points: e
                    .data
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as f64, f64::from(*v)))
                    .collect(),
                color: 0,
                dashed: false,
            }],
        )?;
        figs.push(page.svg(
            "representation_error.svg",
            svg,
            format!(
                "model(metamer) − model(target), {} elements in the model's output order; L2 norm {norm:.4e}, largest magnitude {max:.4e}.",
                e.width
            ),
        )?);
    } else {
        let plane = e.height * e.width;
        for c in 0..e.channels.min(MAX_ERROR_CHANNELS) {
            let ch = Pixels {
                channels: 1,
                height: e.height,
                width: e.width,
                data: e.data[c * plane..(c + 1) * plane].to_vec(),
            };
            figs.push(page.image(
                &format!("representation_error{c}.png"),
                &ch,
                Range::Symmetric,
                format!("channel {c} of model(metamer) − model(target), {}×{} (gray 0, white and black ± the channel's largest magnitude)", e.height, e.width),
            )?);
        }
        if e.channels > MAX_ERROR_CHANNELS {
            page.notes.push(format!(
                "Representation error: the first {MAX_ERROR_CHANNELS} of {} channels are drawn.",
                e.channels
            ));
        }
        page.notes.push(format!(
            "Representation error model(metamer) − model(target): L2 norm {norm:.4e}, largest magnitude {max:.4e} over {} channel(s) of {}×{}.",
            e.channels, e.height, e.width
        ));
    }
    page.section("Representation error (as plot_representation_error)", figs);
    Ok(())
}

fn eigendistortion(page: &mut Page<'_>, rows: &TaskRows) -> Result<()> {
    let target = first(&rows.images, "target_image").and_then(Pixels::of);
    let dists = all(&rows.images, "eigendistortion");
    let mut eig: Vec<&EigenRow> = rows.eigen.iter().collect();
    eig.sort_by_key(|e| e.eigenindex);
    let value_of = |i: i64| eig.iter().find(|e| e.eigenindex == i).map(|e| e.eigenvalue);
    if let Some(p) = &target {
        let f = page.image("target.png", p, Range::Unit, "Image".into())?;
        page.section("Image", vec![f]);
    } else {
        page.notes.push("The tables of this root hold no target_image row (written by synthsweep since the report was added): image ± α·eigendistortion is not shown.".into());
    }
    let ends: Vec<&&ImageRow> = match (dists.first(), dists.last()) {
        (Some(a), Some(b)) if a.index != b.index => vec![a, b],
        (Some(a), _) => vec![a],
        _ => vec![],
    };
    let mut figs = Vec::new();
    for d in ends {
        let Some(dp) = Pixels::of(d) else { continue };
        let which = if d.index == dists[0].index {
            "top"
        } else {
            "bottom"
        };
        let ev = num(value_of(d.index));
        if let Some(img) = &target {
            for (sign, tag) in [(1f32, "plus"), (-1f32, "minus")] {
                if let Some(px) = img.plus(sign * EIGEN_ALPHA, &dp) {
                    figs.push(page.image(
                        &format!("eig{}_{tag}.png", d.index),
                        &px,
                        Range::Unit,
                        format!(
                            "{which}: image {} {EIGEN_ALPHA}·eigendistortion {} (eigenvalue {ev}), clipped to [0, 1]",
                            if sign > 0.0 { "+" } else { "−" },
                            d.index
                        ),
                    )?);
                }
            }
        }
    }
    page.section(
        "Image ± α·eigendistortion (as display_eigendistortion, α = 5)",
        figs,
    );
    let mut figs = Vec::new();
    for d in &dists {
        if let Some(dp) = Pixels::of(d) {
            figs.push(page.image(
                &format!("eig{}.png", d.index),
                &dp,
                Range::Symmetric,
                format!(
                    "eigendistortion {} (eigenvalue {}); gray 0, symmetric range",
                    d.index,
                    num(value_of(d.index))
                ),
            )?);
        }
    }
    page.section("Eigendistortions", figs);
    let svg = line_chart(
        &LineChart {
            title: "Eigenvalues",
            x_label: "eigenindex",
            y_label: "eigenvalue",
            dots: true,
            ..Default::default()
        },
        &[Series {
            name: String::new(),
            points: eig
                .iter()
                .map(|e| (e.eigenindex as f64, e.eigenvalue))
                .collect(),
            color: 0,
            dashed: false,
        }],
    )?;
    let f = page.svg(
        "eigenvalues.svg",
        svg,
        format!(
            "Eigenvalues of the Fisher information matrix by eigenindex (0 = largest); {} recorded.",
            eig.len()
        ),
    )?;
    page.section("Eigenvalues", vec![f]);
    Ok(())
}

fn geodesic(
    page: &mut Page<'_>,
    t: &TaskInfo,
    rows: &TaskRows,
    losses: &[LossPoint],
) -> Result<()> {
    let frames: Vec<Pixels> = all(&rows.images, "geodesic_frame")
        .into_iter()
        .filter_map(Pixels::of)
        .collect();
    let n = frames.len();
    let mut figs = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        figs.push(page.image(
            &format!("frame{i:03}.png"),
            f,
            Range::Unit,
            format!("frame {i} of {}", n.saturating_sub(1)),
        )?);
    }
    page.section("Frames of the final path", figs);
    let mut figs = Vec::new();
    let svg = line_chart(
        &LineChart {
            title: "Loss (path energy)",
            x_label: "iteration",
            y_label: "loss",
            log_y: losses.iter().all(|l| l.loss > 0.0),
            ..Default::default()
        },
        &[loss_series(losses, 0)],
    )?;
    figs.push(page.svg(
        "loss.svg",
        svg,
        "The geodesic's objective per iteration (as plot_loss).".into(),
    )?);
    if let Some(f) = representation_deviation(page, t, &rows.losses)? {
        figs.push(f);
    } else {
        let dev = deviation_from_line(&frames);
        if !dev.is_empty() {
            let fade: Vec<(f64, f64)> = (0..n)
                .map(|i| (i as f64 / (n - 1).max(1) as f64, 0.0))
                .collect();
            let svg = line_chart(
                &LineChart {
                    title: "Deviation from the straight line (pixel space)",
                    x_label: "position along the line (fraction of its length)",
                    y_label: "distance from the line (fraction)",
                    dots: true,
                    ..Default::default()
                },
                &[
                    Series {
                        name: "geodesic".into(),
                        points: dev,
                        color: 3,
                        dashed: false,
                    },
                    Series {
                        name: "pixel fade".into(),
                        points: fade,
                        color: 2,
                        dashed: true,
                    },
                ],
            )?;
            figs.push(page.svg(
                "deviation.svg",
                svg,
                "Each frame's projection on, and distance from, the straight pixel-space line between the end images, next to the pixel fade's (which lies on it). plenoptic's plot_deviation_from_line measures this in the model's representation space: the tables hold it (losses.dist_along_line, dist_from_line) only for a geodesic run with store_progress, which this one was not.".into(),
            )?);
        }
    }
    page.section("Loss and deviation", figs);
    Ok(())
}

/// Intermediate records drawn at most (evenly spaced) between the first and the last.
const MAX_DEVIATION_CURVES: usize = 8;

/// plenoptic's `plot_deviation_from_line` from the recorded `dist_along_line` and
/// `dist_from_line` (the path's frames in the model's representation space, each frame's
/// distance along and from the straight line between the end points, as fractions of that
/// line's length): the first record (the initial sequence, the pixel fade when
/// `initial_sequence = "straight"`, green as plenoptic draws the pixel fade), the last (the
/// geodesic as last recorded, red) and a few in between (gray). `None` when the task
/// recorded none (it ran without `store_progress`).
fn representation_deviation(
    page: &mut Page<'_>,
    t: &TaskInfo,
    losses: &[LossRow],
) -> Result<Option<Fig>> {
    let mut recs: Vec<(i64, Vec<(f64, f64)>)> = losses
        .iter()
        .filter_map(|l| match (&l.dist_along_line, &l.dist_from_line) {
            (Some(a), Some(f)) if a.len() == f.len() && !a.is_empty() => Some((
                l.iteration,
                a.iter().copied().zip(f.iter().copied()).collect(),
            )),
            _ => None,
        })
        .collect();
    if recs.is_empty() {
        return Ok(None);
    }
    recs.sort_by_key(|r| r.0);
    let initial = serde_json::from_str::<serde_json::Value>(&t.params)
        .ok()
        .and_then(|v| {
            v.pointer("/params/initial_sequence")
                .and_then(|s| s.as_str().map(str::to_string))
        });
    let first_name = match initial.as_deref() {
        Some("straight") => format!("pixel fade (initial, iteration {})", recs[0].0),
        Some(other) => format!("initial ({other}, iteration {})", recs[0].0),
        None => format!("initial (iteration {})", recs[0].0),
    };
    let last = recs.len() - 1;
    let mut series = Vec::new();
    // Between the first and the last, at most MAX_DEVIATION_CURVES, evenly spaced.
    let step = (last.saturating_sub(1))
        .div_ceil(MAX_DEVIATION_CURVES)
        .max(1);
    for (_, pts) in recs.iter().take(last).skip(1).step_by(step) {
        series.push(Series {
            name: String::new(),
            points: pts.clone(),
            color: 7,
            dashed: true,
        });
    }
    let shown_between = series.len();
    series.push(Series {
        name: first_name,
        points: recs[0].1.clone(),
        color: 2,
        dashed: false,
    });
    if last > 0 {
        series.push(Series {
            name: format!("geodesic (iteration {})", recs[last].0),
            points: recs[last].1.clone(),
            color: 3,
            dashed: false,
        });
    }
    let svg = line_chart(
        &LineChart {
            title: "Deviation from the straight line",
            x_label: "Distance along representation line",
            y_label: "Distance from representation line",
            dots: true,
            ..Default::default()
        },
        &series,
    )?;
    let its: Vec<String> = recs.iter().map(|r| r.0.to_string()).collect();
    let fig = page.svg(
        "deviation.svg",
        svg,
        format!(
            "As plot_deviation_from_line: each frame's distance along and from the straight line between the two end images' representations (in the model's representation space, as fractions of that line's length), as recorded (losses.dist_along_line, dist_from_line) at iterations {}; green: the first record{}, red: the last, gray dashed: {shown_between} in between. Records are one step behind the iteration, as plenoptic stores them.",
            its.join(", "),
            if initial.as_deref() == Some("straight") {
                " (the initial sequence, the pixel fade)"
            } else {
                " (the initial sequence)"
            }
        ),
    )?;
    Ok(Some(fig))
}

fn score(page: &mut Page<'_>, rows: &TaskRows) {
    if let Some(s) = rows.scores.first() {
        page.extra.score = Some(Box::new((
            crate::tasks::short_spec(&s.metric),
            crate::tasks::image_label(&s.image_a),
            crate::tasks::image_label(&s.image_b),
            s.value,
        )));
        page.notes.push(format!(
            "{} between {} and {}: {}",
            crate::tasks::short_spec(&s.metric),
            s.image_a,
            s.image_b,
            s.value
        ));
    }
}

/// `animate`: the stored progress (`saved` snapshots) as a looping GIF, 10 frames a second.
fn animation(page: &mut Page<'_>, rows: &TaskRows) -> Result<()> {
    let saved = all(&rows.images, "saved");
    let frames: Vec<Pixels> = saved.iter().filter_map(|r| Pixels::of(r)).collect();
    if frames.len() < 2 {
        return Ok(());
    }
    write_gif(&page.dir.join("progress.gif"), &frames, 100)?;
    let its: Vec<String> = saved
        .iter()
        .map(|r| r.iteration.map_or("?".into(), |i| i.to_string()))
        .collect();
    let caption = format!(
        "Stored progress: {} snapshots at iterations {} (as animate, 10 frames/s)",
        frames.len(),
        its.join(", ")
    );
    let w = display_width(frames[0].width as i32);
    page.section(
        "Progress",
        vec![Fig {
            file: "progress.gif".into(),
            svg: None,
            caption,
            width: Some(w),
        }],
    );
    Ok(())
}

/// Groups a batch's data rows by task id.
pub fn split_by_task(d: synthsweep_store::Dataset) -> BTreeMap<String, TaskRows> {
    let mut out: BTreeMap<String, TaskRows> = BTreeMap::new();
    for r in d.losses {
        out.entry(r.task_id.clone()).or_default().losses.push(r);
    }
    for r in d.eigen {
        out.entry(r.task_id.clone()).or_default().eigen.push(r);
    }
    for r in d.images {
        out.entry(r.task_id.clone()).or_default().images.push(r);
    }
    for r in d.scores {
        out.entry(r.task_id.clone()).or_default().scores.push(r);
    }
    out
}

/// The objective (`loss`) per iteration as one unnamed solid curve.
fn loss_series(losses: &[LossPoint], color: usize) -> Series {
    Series {
        name: String::new(),
        points: losses
            .iter()
            .map(|l| (l.iteration as f64, l.loss))
            .collect(),
        color,
        dashed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_values_keep_their_digits() {
        assert_eq!(fmt_value(0.0), "0.000000");
        assert_eq!(fmt_value(0.5), "0.500000");
        assert_eq!(fmt_value(-0.021998), "-0.021998");
        assert_eq!(fmt_value(1.44e-7), "1.4400e-7");
        assert_eq!(fmt_value(-3.7e11), "-3.7000e11");
    }
}
