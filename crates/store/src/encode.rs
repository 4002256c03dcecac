//! Rows to Arrow record batches, one column per schema field.
//!
//! Each table's columns are built by name and then put in the order of its schema file, so
//! a column missing on either side is an error here (and in the schema test), not a
//! silently shifted column.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow_array::builder::{Float32Builder, Float64Builder, ListBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};

use crate::error::{Result, StoreError};
use crate::rows::{EigenRow, ImageRow, LossRow, ScoreRow, TaskRow};
use crate::schema::Table;

/// Microseconds since the Unix epoch (negative before it).
pub fn to_micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// The inverse of [`to_micros`].
pub fn from_micros(us: i64) -> SystemTime {
    let d = std::time::Duration::from_micros(us.unsigned_abs());
    if us >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

struct Columns(HashMap<&'static str, ArrayRef>);

impl Columns {
    fn new() -> Self {
        Columns(HashMap::new())
    }
    fn add(&mut self, name: &'static str, a: impl arrow_array::Array + 'static) {
        self.0.insert(name, Arc::new(a));
    }
    fn utf8<'a>(&mut self, name: &'static str, v: impl Iterator<Item = &'a str>) {
        self.add(name, v.map(Some).collect::<StringArray>());
    }
    fn opt_utf8<'a>(&mut self, name: &'static str, v: impl Iterator<Item = Option<&'a str>>) {
        self.add(name, v.collect::<StringArray>());
    }
    fn i64(&mut self, name: &'static str, v: impl Iterator<Item = i64>) {
        self.add(name, v.map(Some).collect::<Int64Array>());
    }
    fn opt_i64(&mut self, name: &'static str, v: impl Iterator<Item = Option<i64>>) {
        self.add(name, v.collect::<Int64Array>());
    }
    fn f64(&mut self, name: &'static str, v: impl Iterator<Item = f64>) {
        self.add(name, v.map(Some).collect::<Float64Array>());
    }
    fn opt_f64(&mut self, name: &'static str, v: impl Iterator<Item = Option<f64>>) {
        self.add(name, v.collect::<Float64Array>());
    }
    /// A `list<float64>` column; `None` is a null cell.
    fn opt_f64_list<'a>(
        &mut self,
        name: &'static str,
        v: impl ExactSizeIterator<Item = Option<&'a [f64]>>,
    ) {
        let mut b = ListBuilder::with_capacity(Float64Builder::new(), v.len());
        for cell in v {
            match cell {
                Some(x) => {
                    b.values().append_slice(x);
                    b.append(true);
                }
                None => b.append(false),
            }
        }
        self.add(name, b.finish());
    }

    /// Puts the columns in the schema's order and checks types and nullability.
    fn finish(mut self, table: Table) -> Result<RecordBatch> {
        let schema = table.schema();
        let mut arrays = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let a = self.0.remove(f.name().as_str()).ok_or_else(|| {
                StoreError::invalid(table.name(), f.name(), "column not built by the writer")
            })?;
            arrays.push(a);
        }
        if let Some(name) = self.0.keys().next() {
            return Err(StoreError::invalid(
                table.name(),
                *name,
                "column built by the writer is not in the schema file",
            ));
        }
        Ok(RecordBatch::try_new(schema, arrays)?)
    }
}

/// The `tasks` batch of these rows.
pub fn tasks(rows: &[TaskRow]) -> Result<RecordBatch> {
    let mut c = Columns::new();
    c.utf8("task_id", rows.iter().map(|r| r.task_id.as_str()));
    c.utf8("run_id", rows.iter().map(|r| r.run_id.as_str()));
    c.utf8("batch_id", rows.iter().map(|r| r.batch_id.as_str()));
    c.utf8("sweep", rows.iter().map(|r| r.sweep.as_str()));
    c.utf8("synth", rows.iter().map(|r| r.synth.as_str()));
    c.opt_utf8("image", rows.iter().map(|r| r.image.as_deref()));
    c.opt_utf8("model", rows.iter().map(|r| r.model.as_deref()));
    c.opt_utf8(
        "optimized_metric",
        rows.iter().map(|r| r.optimized_metric.as_deref()),
    );
    c.opt_utf8(
        "reference_metric",
        rows.iter().map(|r| r.reference_metric.as_deref()),
    );
    c.opt_utf8("minmax", rows.iter().map(|r| r.minmax.as_deref()));
    c.i64("seed", rows.iter().map(|r| r.seed));
    c.utf8("params", rows.iter().map(|r| r.params.as_str()));
    c.utf8("status", rows.iter().map(|r| r.status.as_str()));
    c.opt_utf8("error", rows.iter().map(|r| r.error.as_deref()));
    c.i64("iterations", rows.iter().map(|r| r.iterations));
    c.opt_f64("final_loss", rows.iter().map(|r| r.final_loss));
    c.opt_f64(
        "metric_tradeoff_lambda",
        rows.iter().map(|r| r.metric_tradeoff_lambda),
    );
    c.opt_f64("jerkiness", rows.iter().map(|r| r.jerkiness));
    c.opt_f64_list(
        "jerkiness_frames",
        rows.iter().map(|r| r.jerkiness_frames.as_deref()),
    );
    c.opt_i64(
        "power_iterations_top",
        rows.iter().map(|r| r.power_iterations_top),
    );
    c.opt_i64(
        "power_iterations_bottom",
        rows.iter().map(|r| r.power_iterations_bottom),
    );
    c.f64("duration_s", rows.iter().map(|r| r.duration_s));
    c.utf8("device", rows.iter().map(|r| r.device.as_str()));
    c.utf8("host", rows.iter().map(|r| r.host.as_str()));
    c.opt_utf8("worker", rows.iter().map(|r| r.worker.as_deref()));
    for (name, get) in [
        (
            "started_at",
            (|r: &TaskRow| r.started_at) as fn(&TaskRow) -> SystemTime,
        ),
        ("finished_at", |r: &TaskRow| r.finished_at),
    ] {
        let a = TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| to_micros(get(r))))
            .with_timezone("UTC");
        c.add(name, a);
    }
    c.utf8(
        "synthsweep_version",
        rows.iter().map(|r| r.synthsweep_version.as_str()),
    );
    c.opt_utf8(
        "torch_version",
        rows.iter().map(|r| r.torch_version.as_deref()),
    );
    c.finish(Table::Tasks)
}

/// The `losses` batch of these rows.
pub fn losses(rows: &[LossRow]) -> Result<RecordBatch> {
    let mut c = Columns::new();
    c.utf8("task_id", rows.iter().map(|r| r.task_id.as_str()));
    c.i64("iteration", rows.iter().map(|r| r.iteration));
    c.f64("loss", rows.iter().map(|r| r.loss));
    c.opt_f64("gradient_norm", rows.iter().map(|r| r.gradient_norm));
    c.opt_f64(
        "pixel_change_norm",
        rows.iter().map(|r| r.pixel_change_norm),
    );
    c.opt_f64(
        "optimized_metric_loss",
        rows.iter().map(|r| r.optimized_metric_loss),
    );
    c.opt_f64(
        "reference_metric_loss",
        rows.iter().map(|r| r.reference_metric_loss),
    );
    c.opt_utf8("scale", rows.iter().map(|r| r.scale.as_deref()));
    c.opt_f64("scale_loss", rows.iter().map(|r| r.scale_loss));
    c.opt_f64_list("step_energy", rows.iter().map(|r| r.step_energy.as_deref()));
    c.opt_f64_list(
        "dist_along_line",
        rows.iter().map(|r| r.dist_along_line.as_deref()),
    );
    c.opt_f64_list(
        "dist_from_line",
        rows.iter().map(|r| r.dist_from_line.as_deref()),
    );
    c.finish(Table::Losses)
}

/// The `eigen` batch of these rows.
pub fn eigen(rows: &[EigenRow]) -> Result<RecordBatch> {
    let mut c = Columns::new();
    c.utf8("task_id", rows.iter().map(|r| r.task_id.as_str()));
    c.i64("eigenindex", rows.iter().map(|r| r.eigenindex));
    c.f64("eigenvalue", rows.iter().map(|r| r.eigenvalue));
    c.finish(Table::Eigen)
}

/// The `images` batch of these rows.
pub fn images(rows: &[ImageRow]) -> Result<RecordBatch> {
    let mut c = Columns::new();
    c.utf8("task_id", rows.iter().map(|r| r.task_id.as_str()));
    c.utf8("role", rows.iter().map(|r| r.role.as_str()));
    c.i64("index", rows.iter().map(|r| r.index));
    c.add(
        "iteration",
        rows.iter().map(|r| r.iteration).collect::<Int64Array>(),
    );
    for (name, get) in [
        (
            "channels",
            (|r: &ImageRow| r.channels) as fn(&ImageRow) -> i32,
        ),
        ("height", |r: &ImageRow| r.height),
        ("width", |r: &ImageRow| r.width),
    ] {
        c.add(name, Int32Array::from_iter_values(rows.iter().map(get)));
    }
    let total: usize = rows
        .iter()
        .filter_map(|r| r.pixels.as_ref())
        .map(Vec::len)
        .sum();
    let mut pixels = ListBuilder::with_capacity(Float32Builder::with_capacity(total), rows.len());
    for r in rows {
        match &r.pixels {
            Some(p) => {
                pixels.values().append_slice(p);
                pixels.append(true);
            }
            None => pixels.append(false),
        }
    }
    c.add("pixels", pixels.finish());
    c.add(
        "png",
        rows.iter()
            .map(|r| r.png.as_deref())
            .collect::<BinaryArray>(),
    );
    c.finish(Table::Images)
}

/// The `scores` batch of these rows.
pub fn scores(rows: &[ScoreRow]) -> Result<RecordBatch> {
    let mut c = Columns::new();
    c.utf8("task_id", rows.iter().map(|r| r.task_id.as_str()));
    c.utf8("image_a", rows.iter().map(|r| r.image_a.as_str()));
    c.utf8("image_b", rows.iter().map(|r| r.image_b.as_str()));
    c.utf8("metric", rows.iter().map(|r| r.metric.as_str()));
    c.f64("value", rows.iter().map(|r| r.value));
    c.finish(Table::Scores)
}
