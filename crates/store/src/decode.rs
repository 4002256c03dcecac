//! Arrow record batches back to rows: what the ledger, the summary and the tests read.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};

use crate::encode::from_micros;
use crate::error::{Result, StoreError};
use crate::rows::{EigenRow, ImageRow, LossRow, ScoreRow, TaskRow, TaskStatus};
use crate::schema::Table;

/// Typed access to a batch's columns by name, checking the type against the schema.
struct Cols<'a> {
    table: Table,
    batch: &'a RecordBatch,
}

impl<'a> Cols<'a> {
    fn new(table: Table, batch: &'a RecordBatch) -> Result<Self> {
        let want = table.schema();
        for f in want.fields() {
            let got = batch.schema();
            let g = got.field_with_name(f.name()).map_err(|_| {
                StoreError::invalid(table.name(), f.name(), "column missing from the file")
            })?;
            if g.data_type() != f.data_type() {
                return Err(StoreError::invalid(
                    table.name(),
                    f.name(),
                    format!(
                        "type {} in the file, {} in the schema",
                        g.data_type(),
                        f.data_type()
                    ),
                ));
            }
        }
        Ok(Cols { table, batch })
    }
    fn col(&self, name: &str) -> &'a dyn Array {
        // Present: checked in new().
        self.batch.column_by_name(name).unwrap().as_ref()
    }
    fn str(&self, name: &str) -> impl Fn(usize) -> Option<String> + 'a {
        let a = self.col(name).as_string::<i32>();
        move |i| a.is_valid(i).then(|| a.value(i).to_string())
    }
    fn req_str(&self, name: &'static str) -> impl Fn(usize) -> Result<String> + 'a {
        let get = self.str(name);
        let table = self.table;
        move |i| get(i).ok_or_else(|| null(table, name))
    }
    fn i64(&self, name: &str) -> impl Fn(usize) -> Option<i64> + 'a {
        let a = self.col(name).as_primitive::<Int64Type>();
        move |i| a.is_valid(i).then(|| a.value(i))
    }
    fn i32(&self, name: &str) -> impl Fn(usize) -> Option<i32> + 'a {
        let a = self.col(name).as_primitive::<Int32Type>();
        move |i| a.is_valid(i).then(|| a.value(i))
    }
    fn f64(&self, name: &str) -> impl Fn(usize) -> Option<f64> + 'a {
        let a = self.col(name).as_primitive::<Float64Type>();
        move |i| a.is_valid(i).then(|| a.value(i))
    }
    fn f64_list(&self, name: &str) -> impl Fn(usize) -> Option<Vec<f64>> + 'a {
        let a = self.col(name).as_list::<i32>();
        move |i| {
            a.is_valid(i)
                .then(|| a.value(i).as_primitive::<Float64Type>().values().to_vec())
        }
    }
    fn ts(&self, name: &str) -> impl Fn(usize) -> Option<i64> + 'a {
        let a = self.col(name).as_primitive::<TimestampMicrosecondType>();
        move |i| a.is_valid(i).then(|| a.value(i))
    }
}

fn null(table: Table, column: &str) -> StoreError {
    StoreError::invalid(table.name(), column, "null in a non-nullable column")
}

macro_rules! req {
    ($cols:expr, $getter:ident, $name:literal) => {{
        let g = $cols.$getter($name);
        let t = $cols.table;
        move |i: usize| g(i).ok_or_else(|| null(t, $name))
    }};
}

/// Reads `tasks` rows.
pub fn tasks(batch: &RecordBatch) -> Result<Vec<TaskRow>> {
    let c = Cols::new(Table::Tasks, batch)?;
    let (task_id, run_id, batch_id) = (
        c.req_str("task_id"),
        c.req_str("run_id"),
        c.req_str("batch_id"),
    );
    let (sweep, synth, params, status) = (
        c.req_str("sweep"),
        c.req_str("synth"),
        c.req_str("params"),
        c.req_str("status"),
    );
    let (device, host, version) = (
        c.req_str("device"),
        c.req_str("host"),
        c.req_str("synthsweep_version"),
    );
    let (image, model, opt, refm, minmax, error, worker, torch) = (
        c.str("image"),
        c.str("model"),
        c.str("optimized_metric"),
        c.str("reference_metric"),
        c.str("minmax"),
        c.str("error"),
        c.str("worker"),
        c.str("torch_version"),
    );
    let seed = req!(c, i64, "seed");
    let iterations = req!(c, i64, "iterations");
    let (final_loss, lambda, jerkiness) = (
        c.f64("final_loss"),
        c.f64("metric_tradeoff_lambda"),
        c.f64("jerkiness"),
    );
    let jerkiness_frames = c.f64_list("jerkiness_frames");
    let (power_top, power_bottom) = (
        c.i64("power_iterations_top"),
        c.i64("power_iterations_bottom"),
    );
    let duration = req!(c, f64, "duration_s");
    let started = req!(c, ts, "started_at");
    let finished = req!(c, ts, "finished_at");
    (0..batch.num_rows())
        .map(|i| {
            let s = status(i)?;
            Ok(TaskRow {
                task_id: task_id(i)?,
                run_id: run_id(i)?,
                batch_id: batch_id(i)?,
                sweep: sweep(i)?,
                synth: synth(i)?,
                image: image(i),
                model: model(i),
                optimized_metric: opt(i),
                reference_metric: refm(i),
                minmax: minmax(i),
                seed: seed(i)?,
                params: params(i)?,
                status: TaskStatus::parse(&s).ok_or_else(|| {
                    StoreError::invalid("tasks", "status", format!("unknown status {s:?}"))
                })?,
                error: error(i),
                iterations: iterations(i)?,
                final_loss: final_loss(i),
                metric_tradeoff_lambda: lambda(i),
                jerkiness: jerkiness(i),
                jerkiness_frames: jerkiness_frames(i),
                power_iterations_top: power_top(i),
                power_iterations_bottom: power_bottom(i),
                duration_s: duration(i)?,
                device: device(i)?,
                host: host(i)?,
                worker: worker(i),
                started_at: from_micros(started(i)?),
                finished_at: from_micros(finished(i)?),
                synthsweep_version: version(i)?,
                torch_version: torch(i),
            })
        })
        .collect()
}

/// Reads `losses` rows.
pub fn losses(batch: &RecordBatch) -> Result<Vec<LossRow>> {
    let c = Cols::new(Table::Losses, batch)?;
    let task_id = c.req_str("task_id");
    let iteration = req!(c, i64, "iteration");
    let loss = req!(c, f64, "loss");
    let (g, p, o, r) = (
        c.f64("gradient_norm"),
        c.f64("pixel_change_norm"),
        c.f64("optimized_metric_loss"),
        c.f64("reference_metric_loss"),
    );
    let (scale, scale_loss) = (c.str("scale"), c.f64("scale_loss"));
    let (energy, along, from) = (
        c.f64_list("step_energy"),
        c.f64_list("dist_along_line"),
        c.f64_list("dist_from_line"),
    );
    (0..batch.num_rows())
        .map(|i| {
            Ok(LossRow {
                task_id: task_id(i)?,
                iteration: iteration(i)?,
                loss: loss(i)?,
                gradient_norm: g(i),
                pixel_change_norm: p(i),
                optimized_metric_loss: o(i),
                reference_metric_loss: r(i),
                scale: scale(i),
                scale_loss: scale_loss(i),
                step_energy: energy(i),
                dist_along_line: along(i),
                dist_from_line: from(i),
            })
        })
        .collect()
}

/// Reads `eigen` rows.
pub fn eigen(batch: &RecordBatch) -> Result<Vec<EigenRow>> {
    let c = Cols::new(Table::Eigen, batch)?;
    let task_id = c.req_str("task_id");
    let index = req!(c, i64, "eigenindex");
    let value = req!(c, f64, "eigenvalue");
    (0..batch.num_rows())
        .map(|i| {
            Ok(EigenRow {
                task_id: task_id(i)?,
                eigenindex: index(i)?,
                eigenvalue: value(i)?,
            })
        })
        .collect()
}

/// Reads `images` rows.
pub fn images(batch: &RecordBatch) -> Result<Vec<ImageRow>> {
    let c = Cols::new(Table::Images, batch)?;
    let task_id = c.req_str("task_id");
    let role = c.req_str("role");
    let index = req!(c, i64, "index");
    let iteration = c.i64("iteration");
    let channels = req!(c, i32, "channels");
    let height = req!(c, i32, "height");
    let width = req!(c, i32, "width");
    let pixels = c.col("pixels").as_list::<i32>();
    let png = c.col("png").as_binary::<i32>();
    (0..batch.num_rows())
        .map(|i| {
            let px = pixels.is_valid(i).then(|| {
                let v = pixels.value(i);
                v.as_primitive::<Float32Type>().values().to_vec()
            });
            Ok(ImageRow {
                task_id: task_id(i)?,
                role: role(i)?,
                index: index(i)?,
                iteration: iteration(i),
                channels: channels(i)?,
                height: height(i)?,
                width: width(i)?,
                pixels: px,
                png: png.is_valid(i).then(|| png.value(i).to_vec()),
            })
        })
        .collect()
}

/// Reads `scores` rows.
pub fn scores(batch: &RecordBatch) -> Result<Vec<ScoreRow>> {
    let c = Cols::new(Table::Scores, batch)?;
    let (task_id, a, b, metric) = (
        c.req_str("task_id"),
        c.req_str("image_a"),
        c.req_str("image_b"),
        c.req_str("metric"),
    );
    let value = req!(c, f64, "value");
    (0..batch.num_rows())
        .map(|i| {
            Ok(ScoreRow {
                task_id: task_id(i)?,
                image_a: a(i)?,
                image_b: b(i)?,
                metric: metric(i)?,
                value: value(i)?,
            })
        })
        .collect()
}
