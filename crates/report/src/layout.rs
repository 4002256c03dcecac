//! The figure data that does not need pixels: which four tasks make a MAD figure, where a
//! coarse-to-fine loss curve switches scale, the headline value of a task, the per-task
//! cache of what the pages draw (so pages of several tasks can be drawn without reading the
//! tables again).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use synthsweep_store::{EigenRow, LossRow, ScoreRow};

use crate::tasks::TaskInfo;

/// One recorded iteration, as kept for drawing (downsampled for long runs).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LossPoint {
    pub iteration: i64,
    pub loss: f64,
    pub optimized: Option<f64>,
    pub reference: Option<f64>,
    pub scale: Option<String>,
}

/// What a task's page drew and what group pages and the index need of it, kept in
/// the report's manifest of its batch (`_manifest/`), one per task.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskExtra {
    /// The batch the page was drawn from (a re-commit gives a new batch and a new page).
    pub batch_id: String,
    /// The value the index plots against the grid axes (see [`headline`]).
    pub headline: Option<f64>,
    /// MAD: the final image's optimized and reference metric values.
    pub final_optimized: Option<f64>,
    pub final_reference: Option<f64>,
    /// Score: the value and the two images' names.
    /// (Boxed: one manifest entry per task, most of which have none.)
    pub score: Option<Box<(String, String, String, f64)>>,
    /// Why rows of the task are missing (see `TaskRows::problem`), for its MAD page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The value that sums a task up for the whole-sweep plots, and its name: MAD the final
/// optimized metric value, eigendistortion the largest eigenvalue, score the metric value,
/// the others their final objective (`final_loss`, else the last recorded loss).
pub fn headline(
    t: &TaskInfo,
    losses: &[LossRow],
    eigen: &[EigenRow],
    scores: &[ScoreRow],
) -> Option<f64> {
    match t.synth.as_str() {
        "mad" => losses
            .iter()
            .max_by_key(|l| l.iteration)
            .and_then(|l| l.optimized_metric_loss),
        "eigendistortion" => eigen
            .iter()
            .min_by_key(|e| e.eigenindex)
            .map(|e| e.eigenvalue),
        "score" => scores.first().map(|s| s.value),
        _ => t
            .final_loss
            .or_else(|| losses.iter().max_by_key(|l| l.iteration).map(|l| l.loss)),
    }
}

/// The name of [`headline`]'s value for a kind, for axis labels.
pub fn headline_name(kind: &str) -> &'static str {
    match kind {
        "mad" => "final optimized metric value",
        "eigendistortion" => "largest eigenvalue",
        "score" => "metric value",
        "geodesic" => "final path energy (objective)",
        _ => "final loss (objective)",
    }
}

/// At most `max` points of a loss series, always keeping the first, the last and every
/// iteration where the coarse-to-fine scale changes.
pub fn downsample(losses: &[LossRow], max: usize) -> Vec<LossPoint> {
    let mut sorted: Vec<&LossRow> = losses.iter().collect();
    sorted.sort_by_key(|l| l.iteration);
    let step = sorted.len().div_ceil(max.max(1)).max(1);
    sorted
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            i % step == 0 || *i + 1 == sorted.len() || (*i > 0 && sorted[i - 1].scale != l.scale)
        })
        .map(|(_, l)| LossPoint {
            iteration: l.iteration,
            loss: l.loss,
            optimized: l.optimized_metric_loss,
            reference: l.reference_metric_loss,
            scale: l.scale.clone(),
        })
        .collect()
}

/// The iterations where a coarse-to-fine metamer's scale changes, with the new scale:
/// `(iteration, scale)` for each row whose `scale` differs from the row before (the first
/// scale at the first recorded iteration included), as `plot_synthesis_status` marks them.
pub fn scale_switches(points: &[LossPoint]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for p in points {
        if let Some(s) = p.scale.as_deref() {
            if last != Some(s) {
                out.push((p.iteration, s.to_string()));
            }
            last = Some(s);
        }
    }
    out
}

/// The four tasks of one MAD figure (`display_mad_image_all`): the same image, seed and
/// parameters, the two metrics each optimized (the other held) towards min and max.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MadGroup {
    /// Stable file name of the group's page (32 hex digits of its key's SHA-256).
    pub key: String,
    pub image: String,
    /// The two metrics in name order: metric 1 and metric 2 of plenoptic's figure.
    pub metric1: String,
    pub metric2: String,
    /// `cells[m][d]`: the task optimizing metric `m` (0: metric1, 1: metric2) towards
    /// `d` (0: min, 1: max), when committed and done.
    pub cells: [[Option<String>; 2]; 2],
    /// What else identifies the group (seed, parameters that vary), for its title.
    pub rest: String,
}

/// Where a done MAD task sits in its competition's figure: the group (with no cell
/// filled) and its cell `(m, d)` (see [`MadGroup::cells`]); `None` for a task of another
/// kind, a failed one, or one without both metrics and minmax. The group's key is the hex
/// digest of sweep, image, the unordered metric pair, seed and every varying parameter axis.
pub fn mad_place(t: &TaskInfo) -> Option<(MadGroup, usize, usize)> {
    if t.synth != "mad" || !t.done() {
        return None;
    }
    let (opt, rf, mm) = (
        t.axes.get("optimized_metric")?,
        t.axes.get("reference_metric")?,
        t.axes.get("minmax")?,
    );
    let (m1, m2) = if opt <= rf { (opt, rf) } else { (rf, opt) };
    let image = t.axes.get("image").cloned().unwrap_or_default();
    let rest: Vec<String> = t
        .axes
        .iter()
        .filter(|(k, _)| k.starts_with("params.") || k.as_str() == "seed")
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("params.")))
        .collect();
    let rest = rest.join(" ");
    let key_text = format!("{}\u{1}{image}\u{1}{m1}\u{1}{m2}\u{1}{rest}", t.sweep);
    let key = crate::digest(&key_text)[..32].to_string();
    let m = usize::from(opt != m1);
    let d = usize::from(mm == "max");
    Some((
        MadGroup {
            key,
            image,
            metric1: m1.clone(),
            metric2: m2.clone(),
            cells: Default::default(),
            rest,
        },
        m,
        d,
    ))
}

/// Groups the done MAD tasks into [`MadGroup`]s ([`mad_place`]). A task whose cell is
/// already taken (two tasks that differ only in something not on an axis) starts no new
/// group: it is skipped. (The report does this one bucket of groups at a time, from disk.)
pub fn mad_groups(tasks: &[&TaskInfo]) -> Vec<MadGroup> {
    let mut groups: BTreeMap<String, MadGroup> = BTreeMap::new();
    for t in tasks {
        let Some((g, m, d)) = mad_place(t) else {
            continue;
        };
        let id = t.task_id.clone();
        let g = groups.entry(g.key.clone()).or_insert(g);
        if g.cells[m][d].is_none() {
            g.cells[m][d] = Some(id);
        }
    }
    groups.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use synthsweep_store::TaskRow;

    fn mad(id: &str, opt: &str, rf: &str, mm: &str, image: &str) -> TaskInfo {
        TaskInfo::from_row(&TaskRow {
            task_id: id.into(),
            synth: "mad".into(),
            image: Some(image.into()),
            optimized_metric: Some(format!(r#"{{"name":"{opt}"}}"#)),
            reference_metric: Some(format!(r#"{{"name":"{rf}"}}"#)),
            minmax: Some(mm.into()),
            ..Default::default()
        })
    }

    #[test]
    fn the_mad_figure_picks_its_four_tasks() {
        let tasks = [
            mad("a", "mse", "ssim", "min", "x.pgm"),
            mad("b", "ssim", "mse", "min", "x.pgm"),
            mad("c", "mse", "ssim", "max", "x.pgm"),
            mad("d", "ssim", "mse", "max", "x.pgm"),
            mad("e", "mse", "ssim", "max", "y.pgm"),
        ];
        let refs: Vec<&TaskInfo> = tasks.iter().collect();
        let g = mad_groups(&refs);
        assert_eq!(g.len(), 2);
        let x = g.iter().find(|g| g.image == "x.pgm").unwrap();
        assert_eq!((x.metric1.as_str(), x.metric2.as_str()), ("mse", "ssim"));
        let id = |c: &Option<String>| c.clone().unwrap();
        assert_eq!(id(&x.cells[0][0]), "a"); // mse min
        assert_eq!(id(&x.cells[0][1]), "c"); // mse max
        assert_eq!(id(&x.cells[1][0]), "b"); // ssim min
        assert_eq!(id(&x.cells[1][1]), "d"); // ssim max
        let y = g.iter().find(|g| g.image == "y.pgm").unwrap();
        assert_eq!(y.cells[0][1].as_deref(), Some("e"));
        assert!(y.cells[0][0].is_none() && y.cells[1][0].is_none());
    }

    #[test]
    fn scale_switch_markers_sit_at_the_recorded_iterations() {
        let rows: Vec<LossRow> = (0..10)
            .map(|i| LossRow {
                iteration: i,
                loss: 1.0 / (i + 1) as f64,
                scale: Some(
                    match i {
                        0..=2 => "residual_highpass",
                        3..=6 => "0",
                        _ => "all",
                    }
                    .into(),
                ),
                ..Default::default()
            })
            .collect();
        // Downsampling to 3 points still keeps the switch iterations.
        let pts = downsample(&rows, 3);
        let sw = scale_switches(&pts);
        assert_eq!(
            sw,
            vec![
                (0, "residual_highpass".to_string()),
                (3, "0".to_string()),
                (7, "all".to_string())
            ]
        );
        assert_eq!(pts.last().unwrap().iteration, 9);
        assert!(scale_switches(&downsample(&rows[..0], 3)).is_empty());
    }
}
