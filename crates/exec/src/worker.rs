//! A worker: one device, models and metrics built once and reused across tasks, and the
//! run of one task into a `TaskResult` (done or failed), or nothing if it was cancelled.
use crate::checkpoint::Checkpoints;
use crate::methods;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};
use synthsweep_models::rng::{with_rng, MODEL_SEED};
use synthsweep_models::{build_metric, build_model, device::device_name, Metric, Model};
use synthsweep_store::{TaskResult, TaskRow, TaskStatus};
use synthsweep_sweep::{Task, TaskImages};
use synthsweep_synth::SynthError;
use tch::{Device, Kind};

/// The libtorch version synthsweep was built against.
pub const TORCH_VERSION: &str = env!("SYNTHSWEEP_TORCH_VERSION");

/// What a task produced, before it becomes rows.
#[derive(Default)]
pub struct Records {
    pub iterations: i64,
    /// The per-task results of `tasks` beyond the iteration count (see schemas/tasks.json).
    pub final_loss: Option<f64>,
    pub metric_tradeoff_lambda: Option<f64>,
    pub jerkiness: Option<f64>,
    pub jerkiness_frames: Option<Vec<f64>>,
    pub power_iterations_top: Option<i64>,
    pub power_iterations_bottom: Option<i64>,
    pub losses: Vec<synthsweep_store::LossRow>,
    pub eigen: Vec<synthsweep_store::EigenRow>,
    pub images: Vec<synthsweep_store::ImageRow>,
    pub scores: Vec<synthsweep_store::ScoreRow>,
}

/// Why a task produced no records.
#[derive(Debug)]
pub enum TaskError {
    /// Stopped on request (Ctrl-C, preemption): not a failure, nothing is recorded.
    Cancelled,
    /// The task failed; the message is recorded with status `failed`.
    Failed(String),
}

impl From<SynthError> for TaskError {
    fn from(e: SynthError) -> Self {
        match e {
            SynthError::Cancelled { .. } => TaskError::Cancelled,
            other => TaskError::Failed(other.to_string()),
        }
    }
}

impl From<synthsweep_models::ModelError> for TaskError {
    fn from(e: synthsweep_models::ModelError) -> Self {
        TaskError::Failed(e.to_string())
    }
}

impl From<String> for TaskError {
    fn from(e: String) -> Self {
        TaskError::Failed(e)
    }
}

/// The outcome of one task.
pub enum Outcome {
    Finished(Box<TaskResult>),
    Cancelled,
}

/// Runs tasks on one device, caching models and metrics by their resolved spec.
pub struct Worker {
    pub device: Device,
    pub tag: String,
    host: String,
    models: HashMap<String, Box<dyn Model>>,
    metrics: HashMap<String, Box<dyn Metric>>,
    checkpoints: Option<Checkpoints>,
}

impl Worker {
    pub fn new(device: Device, tag: impl Into<String>) -> Self {
        Worker {
            device,
            tag: tag.into(),
            host: synthsweep_store::hostname(),
            models: HashMap::new(),
            metrics: HashMap::new(),
            checkpoints: None,
        }
    }

    /// Where this worker saves in-flight syntheses on preemption and finds them again
    /// (`None`: no checkpoints; preempted tasks start again from scratch).
    pub fn set_checkpoints(&mut self, checkpoints: Option<Checkpoints>) {
        self.checkpoints = checkpoints;
    }

    pub fn checkpoints(&self) -> Option<&Checkpoints> {
        self.checkpoints.as_ref()
    }

    /// How many distinct models and metrics this worker has built.
    pub fn cached(&self) -> (usize, usize) {
        (self.models.len(), self.metrics.len())
    }

    // Models and metrics are built from MODEL_SEED, not from the task's seed or whatever the
    // generator holds: a built model serves every later task that names it, so what it
    // drew at construction must not depend on which task had it built (see `rng`).
    pub(crate) fn ensure_model(&mut self, spec: &Value) -> Result<String, TaskError> {
        let key = spec.to_string();
        if !self.models.contains_key(&key) {
            let mut m = with_rng(Some(MODEL_SEED), || build_model(spec))?;
            m.to(self.device, Kind::Float);
            self.models.insert(key.clone(), m);
        }
        Ok(key)
    }

    pub(crate) fn ensure_metric(&mut self, spec: &Value) -> Result<String, TaskError> {
        let key = spec.to_string();
        if !self.metrics.contains_key(&key) {
            let mut m = with_rng(Some(MODEL_SEED), || build_metric(spec))?;
            m.to(self.device, Kind::Float);
            self.metrics.insert(key.clone(), m);
        }
        Ok(key)
    }

    pub(crate) fn model(&self, key: &str) -> &dyn Model {
        self.models[key].as_ref()
    }

    pub(crate) fn metric(&self, key: &str) -> &dyn Metric {
        self.metrics[key].as_ref()
    }

    /// Runs `task`; `cancel` is polled every iteration.
    pub fn run(&mut self, task: &Task, cancel: &AtomicBool) -> Outcome {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let result = methods::run(self, task, cancel);
        self.outcome(
            task,
            result,
            cancel,
            clock.elapsed().as_secs_f64(),
            started_at,
        )
    }

    /// Runs `tasks` (pairwise [`methods::batch_compatible`]) together where they share an
    /// image shape (see [`methods::run_batch`]); one outcome per task, in order. Each task's
    /// `duration_s` is its share of the batch's time (the batch's wall time over the number
    /// of tasks), so durations still add up to the slot's time.
    pub fn run_batch(&mut self, tasks: &[&Task], cancel: &AtomicBool) -> Vec<Outcome> {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let results = methods::run_batch(self, tasks, cancel);
        let share = clock.elapsed().as_secs_f64() / tasks.len().max(1) as f64;
        results
            .into_iter()
            .zip(tasks)
            .map(|(r, t)| self.outcome(t, r, cancel, share, started_at))
            .collect()
    }

    fn outcome(
        &self,
        task: &Task,
        result: Result<Records, TaskError>,
        cancel: &AtomicBool,
        duration_s: f64,
        started_at: SystemTime,
    ) -> Outcome {
        let (status, error, records) = match result {
            Ok(r) => (TaskStatus::Done, None, r),
            Err(TaskError::Cancelled) => return Outcome::Cancelled,
            Err(TaskError::Failed(msg))
                if cancel.load(Ordering::Relaxed) && msg.contains("cancelled") =>
            {
                return Outcome::Cancelled
            }
            Err(TaskError::Failed(msg)) => (TaskStatus::Failed, Some(msg), Records::default()),
        };
        let row = TaskRow {
            final_loss: records.final_loss,
            metric_tradeoff_lambda: records.metric_tradeoff_lambda,
            jerkiness: records.jerkiness,
            jerkiness_frames: records.jerkiness_frames,
            power_iterations_top: records.power_iterations_top,
            power_iterations_bottom: records.power_iterations_bottom,
            ..self.task_row(
                task,
                status,
                error,
                records.iterations,
                duration_s,
                started_at,
            )
        };
        Outcome::Finished(Box::new(TaskResult {
            task: row,
            losses: records.losses,
            eigen: records.eigen,
            images: records.images,
            scores: records.scores,
        }))
    }

    fn task_row(
        &self,
        task: &Task,
        status: TaskStatus,
        error: Option<String>,
        iterations: i64,
        duration_s: f64,
        started_at: SystemTime,
    ) -> TaskRow {
        let spec = |v: &Option<std::sync::Arc<Value>>| v.as_ref().map(|v| v.to_string());
        let image = match &task.images {
            TaskImages::One(a) => a.display.clone(),
            TaskImages::Pair(a, b) => format!("{} -> {}", a.display, b.display),
        };
        TaskRow {
            task_id: task.id().to_string(),
            sweep: task.sweep.to_string(),
            synth: task.synth.as_str().to_string(),
            image: Some(image),
            model: spec(&task.model),
            optimized_metric: spec(&task.optimized_metric).or_else(|| spec(&task.metric)),
            reference_metric: spec(&task.reference_metric),
            minmax: task.minmax.map(|m| m.as_str().to_string()),
            seed: task.seed as i64,
            params: task.canonical_json().to_string(),
            status,
            error,
            iterations,
            duration_s,
            device: device_name(self.device),
            host: self.host.clone(),
            worker: Some(self.tag.clone()),
            started_at,
            finished_at: SystemTime::now(),
            synthsweep_version: env!("CARGO_PKG_VERSION").to_string(),
            torch_version: Some(TORCH_VERSION.to_string()),
            ..Default::default()
        }
    }
}
