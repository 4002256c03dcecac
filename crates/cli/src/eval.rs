//! `synthsweep eval model|metric`: validated plans, then the evaluation.
use crate::args::{EvalMetricArgs, EvalModelArgs};
use crate::output::outln;
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use synthsweep_models::rng::{with_rng, MODEL_SEED};
use synthsweep_models::{
    build_metric, build_model, device, image_io, params::parse_spec_text, resolve_spec,
};
use tch::{Device, Kind, Tensor};

/// Reads a spec given inline or as `@FILE`.
fn spec_arg(kind: &str, text: &str) -> Result<Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {kind} spec file {path}"))?,
        None => text.to_string(),
    };
    Ok(parse_spec_text(kind, &text)?)
}

pub struct ModelPlan {
    spec: Value,
    images: Vec<PathBuf>,
    as_gray: bool,
    out: PathBuf,
    device: Device,
}

impl TryFrom<EvalModelArgs> for ModelPlan {
    type Error = anyhow::Error;
    fn try_from(a: EvalModelArgs) -> Result<Self> {
        let spec = resolve_spec("model", &spec_arg("model", &a.model)?)?;
        if a.out.extension().and_then(|e| e.to_str()) != Some("npz") {
            bail!(
                "--out {}: expected a file name ending in .npz",
                a.out.display()
            );
        }
        let parent = a
            .out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !parent.is_dir() {
            bail!(
                "--out {}: directory {} does not exist",
                a.out.display(),
                parent.display()
            );
        }
        Ok(ModelPlan {
            spec,
            images: a.images,
            as_gray: a.as_gray,
            out: a.out,
            device: device::parse_device(&a.device)?,
        })
    }
}

pub fn model(plan: ModelPlan) -> Result<()> {
    let x = image_io::load_batch(&plan.images, plan.as_gray)?;
    // Built as a sweep's workers build it, so a model that draws at construction is the one
    // a sweep used.
    let mut model = with_rng(Some(MODEL_SEED), || build_model(&plan.spec))?;
    model.check_input(&x.size())?;
    model.to(plan.device, Kind::Float);
    let parts = tch::no_grad(|| model.parts(&x.to_device(plan.device)));
    let arrays: Vec<(String, Tensor)> = parts
        .into_iter()
        .map(|(name, t)| {
            (
                name,
                t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous(),
            )
        })
        .collect();
    // Write next to the target, then rename: no half-written file on failure.
    let tmp = plan.out.with_extension("npz.partial");
    Tensor::write_npz(&arrays, &tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &plan.out)
        .with_context(|| format!("cannot write {}", plan.out.display()))?;
    let names: Vec<String> = arrays
        .iter()
        .map(|(n, t)| format!("{n} {:?}", t.size()))
        .collect();
    eprintln!(
        "wrote {} ({} arrays: {})",
        plan.out.display(),
        names.len(),
        names.join(", ")
    );
    Ok(())
}

pub struct MetricPlan {
    spec: Value,
    a: PathBuf,
    b: PathBuf,
    as_gray: bool,
    json: bool,
    device: Device,
}

impl TryFrom<EvalMetricArgs> for MetricPlan {
    type Error = anyhow::Error;
    fn try_from(a: EvalMetricArgs) -> Result<Self> {
        let spec = resolve_spec("metric", &spec_arg("metric", &a.metric)?)?;
        Ok(MetricPlan {
            spec,
            a: a.a,
            b: a.b,
            as_gray: a.as_gray,
            json: a.json,
            device: device::parse_device(&a.device)?,
        })
    }
}

pub fn metric(plan: MetricPlan) -> Result<()> {
    let a = image_io::load_image_with(&plan.a, plan.as_gray)?;
    let b = image_io::load_image_with(&plan.b, plan.as_gray)?;
    if a.size() != b.size() {
        bail!(
            "{} has shape {:?} but {} has {:?}; a metric compares images of one size and channel count",
            plan.a.display(),
            a.size(),
            plan.b.display(),
            b.size()
        );
    }
    let mut metric = with_rng(Some(MODEL_SEED), || build_metric(&plan.spec))?;
    metric.check_input(&a.size())?;
    metric.to(plan.device, Kind::Float);
    let v = tch::no_grad(|| metric.forward(&a.to_device(plan.device), &b.to_device(plan.device)));
    let v = v.to_device(Device::Cpu).to_kind(Kind::Double);
    let n = v.size().first().copied().unwrap_or(1).max(1);
    let rows: Vec<Vec<f64>> = Vec::<f64>::try_from(v.reshape([-1]))?
        .chunks((v.numel() as i64 / n).max(1) as usize)
        .map(|c| c.to_vec())
        .collect();
    if plan.json {
        outln!(
            "{}",
            json!({"metric": plan.spec, "a": plan.a, "b": plan.b, "as_gray": plan.as_gray, "values": rows})
        )?;
    } else {
        for row in rows {
            outln!(
                "{}",
                row.iter()
                    .map(|x| format!("{x:.9}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )?;
        }
    }
    Ok(())
}
