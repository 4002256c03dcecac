//! Row structs, one per table, and `TaskResult`, the unit of commit.
//!
//! Fields mirror the columns of `schemas/<table>.json` one to one (`Option` where the column
//! is nullable); the schema test checks that they agree.

use std::time::SystemTime;

/// Outcome of a task, the `tasks.status` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TaskStatus {
    /// The synthesis ran to the end; its rows are complete.
    #[default]
    Done,
    /// The synthesis failed; `error` says why. `--retry-failed` runs it again.
    Failed,
}

impl TaskStatus {
    /// The value written in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Done => "done",
            TaskStatus::Failed => "failed",
        }
    }

    /// Parses a `status` column value.
    pub fn parse(s: &str) -> Option<TaskStatus> {
        match s {
            "done" => Some(TaskStatus::Done),
            "failed" => Some(TaskStatus::Failed),
            _ => None,
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row of `tasks`. `run_id` and `batch_id` are filled in by the writer at commit.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub task_id: String,
    /// Set by the writer.
    pub run_id: String,
    /// Set by the writer.
    pub batch_id: String,
    pub sweep: String,
    pub synth: String,
    pub image: Option<String>,
    pub model: Option<String>,
    pub optimized_metric: Option<String>,
    pub reference_metric: Option<String>,
    pub minmax: Option<String>,
    pub seed: i64,
    /// JSON of the resolved task.
    pub params: String,
    pub status: TaskStatus,
    pub error: Option<String>,
    pub iterations: i64,
    /// The objective at the final image (metamer, metamer_ctf, mad, geodesic).
    pub final_loss: Option<f64>,
    /// MAD: the reference metric's weight, as used.
    pub metric_tradeoff_lambda: Option<f64>,
    /// Geodesic: the final path's jerkiness (the sum of `jerkiness_frames`).
    pub jerkiness: Option<f64>,
    /// Geodesic: the final path's jerkiness per interior frame (n_steps − 1 values).
    pub jerkiness_frames: Option<Vec<f64>>,
    /// Eigendistortion (power): iterations for the top eigenvalues.
    pub power_iterations_top: Option<i64>,
    /// Eigendistortion (power): iterations for the bottom eigenvalues.
    pub power_iterations_bottom: Option<i64>,
    pub duration_s: f64,
    pub device: String,
    pub host: String,
    pub worker: Option<String>,
    /// Stored with microsecond precision.
    pub started_at: SystemTime,
    /// Stored with microsecond precision.
    pub finished_at: SystemTime,
    pub synthsweep_version: String,
    pub torch_version: Option<String>,
}

impl Default for TaskRow {
    fn default() -> Self {
        TaskRow {
            task_id: String::new(),
            run_id: String::new(),
            batch_id: String::new(),
            sweep: String::new(),
            synth: String::new(),
            image: None,
            model: None,
            optimized_metric: None,
            reference_metric: None,
            minmax: None,
            seed: 0,
            params: "{}".to_string(),
            status: TaskStatus::Done,
            error: None,
            iterations: 0,
            final_loss: None,
            metric_tradeoff_lambda: None,
            jerkiness: None,
            jerkiness_frames: None,
            power_iterations_top: None,
            power_iterations_bottom: None,
            duration_s: 0.0,
            device: "cpu".to_string(),
            host: String::new(),
            worker: None,
            started_at: SystemTime::UNIX_EPOCH,
            finished_at: SystemTime::UNIX_EPOCH,
            synthsweep_version: env!("CARGO_PKG_VERSION").to_string(),
            torch_version: None,
        }
    }
}

/// A row of `losses`: one recorded iteration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LossRow {
    /// Left empty, the writer fills in the task's id.
    pub task_id: String,
    pub iteration: i64,
    pub loss: f64,
    pub gradient_norm: Option<f64>,
    pub pixel_change_norm: Option<f64>,
    pub optimized_metric_loss: Option<f64>,
    pub reference_metric_loss: Option<f64>,
    /// Coarse-to-fine: the scale this iteration added to the loss.
    pub scale: Option<String>,
    /// Coarse-to-fine: the objective on this iteration's scale set.
    pub scale_loss: Option<f64>,
    /// Geodesic with store_progress: the step energies recorded at this iteration (n_steps).
    pub step_energy: Option<Vec<f64>>,
    /// Geodesic with store_progress: each frame's distance along the line (n_steps + 1).
    pub dist_along_line: Option<Vec<f64>>,
    /// Geodesic with store_progress: each frame's distance from the line (n_steps + 1).
    pub dist_from_line: Option<Vec<f64>>,
}

/// A row of `eigen`: one eigenvalue of an eigendistortion task.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EigenRow {
    /// Left empty, the writer fills in the task's id.
    pub task_id: String,
    pub eigenindex: i64,
    pub eigenvalue: f64,
}

/// A row of `images`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImageRow {
    /// Left empty, the writer fills in the task's id.
    pub task_id: String,
    /// mad_image, initial_image, metamer, eigendistortion, geodesic_frame, saved, ...
    pub role: String,
    pub index: i64,
    pub iteration: Option<i64>,
    pub channels: i32,
    pub height: i32,
    pub width: i32,
    /// Channel-major (C, H, W) values; its length must be channels * height * width.
    pub pixels: Option<Vec<f32>>,
    pub png: Option<Vec<u8>>,
}

/// A row of `scores`: a metric's value between two images.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScoreRow {
    /// Left empty, the writer fills in the task's id.
    pub task_id: String,
    pub image_a: String,
    pub image_b: String,
    /// JSON spec of the metric.
    pub metric: String,
    pub value: f64,
}

/// Everything one task produced: the unit of commit. It becomes visible in all five tables at
/// once, or in none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskResult {
    pub task: TaskRow,
    pub losses: Vec<LossRow>,
    pub eigen: Vec<EigenRow>,
    pub images: Vec<ImageRow>,
    pub scores: Vec<ScoreRow>,
}

impl TaskResult {
    /// A rough size in memory, close to the uncompressed size in Parquet; the writer's
    /// byte limit counts this.
    pub fn approx_bytes(&self) -> usize {
        let t = &self.task;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let task = 160
            + t.task_id.len()
            + t.sweep.len()
            + t.synth.len()
            + t.params.len()
            + t.device.len()
            + t.host.len()
            + opt(&t.image)
            + opt(&t.model)
            + opt(&t.optimized_metric)
            + opt(&t.reference_metric)
            + opt(&t.error)
            + opt(&t.worker)
            + t.jerkiness_frames.as_ref().map_or(0, |v| v.len() * 8);
        let id = t.task_id.len();
        let list = |v: &Option<Vec<f64>>| v.as_ref().map_or(0, |v| v.len() * 8);
        let losses: usize = self
            .losses
            .iter()
            .map(|l| {
                id + 56 + list(&l.step_energy) + list(&l.dist_along_line) + list(&l.dist_from_line)
            })
            .sum();
        let eigen = self.eigen.len() * (id + 16);
        let images: usize = self
            .images
            .iter()
            .map(|i| {
                id + i.role.len()
                    + 40
                    + i.pixels.as_ref().map_or(0, |p| p.len() * 4)
                    + i.png.as_ref().map_or(0, Vec::len)
            })
            .sum();
        let scores: usize = self
            .scores
            .iter()
            .map(|s| id + s.image_a.len() + s.image_b.len() + s.metric.len() + 8)
            .sum();
        task + losses + eigen + images + scores
    }

    /// Fills empty `task_id`s of the child rows with the task's id, and checks that the
    /// others match it and that images have as many pixels as their shape says.
    pub(crate) fn normalize(&mut self) -> crate::Result<()> {
        let id = self.task.task_id.clone();
        if id.is_empty() {
            return Err(crate::StoreError::invalid(
                "tasks",
                "task_id",
                "empty task id",
            ));
        }
        fn fix(table: &str, row_id: &mut String, id: &str) -> crate::Result<()> {
            if row_id.is_empty() {
                *row_id = id.to_string();
            } else if row_id != id {
                return Err(crate::StoreError::invalid(
                    table,
                    format!("task {id}"),
                    format!("a row has task_id {row_id}"),
                ));
            }
            Ok(())
        }
        for r in &mut self.losses {
            fix("losses", &mut r.task_id, &id)?;
        }
        for r in &mut self.eigen {
            fix("eigen", &mut r.task_id, &id)?;
        }
        for r in &mut self.scores {
            fix("scores", &mut r.task_id, &id)?;
        }
        for r in &mut self.images {
            fix("images", &mut r.task_id, &id)?;
            if let Some(p) = &r.pixels {
                let want = i64::from(r.channels) * i64::from(r.height) * i64::from(r.width);
                if p.len() as i64 != want {
                    return Err(crate::StoreError::invalid(
                        "images",
                        format!("task {id}, {} {}", r.role, r.index),
                        format!(
                            "{} pixel values for shape {}x{}x{}",
                            p.len(),
                            r.channels,
                            r.height,
                            r.width
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
