//! The planner's questions answered by the libtorch layer: model and metric specs resolved
//! against the registry (each built once, which checks values as well as names), whether a
//! built model or metric takes a task's image shape in the task's use, and an image's pixel
//! range as loaded. Method parameters need no answer here: they are typed and checked in
//! `synthsweep_core::params`, and tasks carry them typed.
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use synthsweep_models::image_io::load_image_with;
use synthsweep_models::rng::{with_rng, MODEL_SEED};
use synthsweep_models::{build_metric, build_model, resolve_spec, Metric, Model};
use synthsweep_sweep::canonical::canonical_json;
use synthsweep_sweep::{ImageRef, ImageShape, Resolver, Role, SynthKind};
use tch::{Device, Kind, Tensor};

/// A model or metric built on the CPU while planning, kept to answer shape questions.
enum Built {
    Model(Box<dyn Model>),
    Metric(Box<dyn Metric>),
}

/// Resolves models, metrics and image questions against the registries of the libtorch
/// layer. Builds each distinct spec once (on the CPU) and keeps it for the plan's lifetime.
#[derive(Default)]
pub struct TaskResolver {
    built: Mutex<HashMap<String, Built>>,
}

impl std::fmt::Debug for TaskResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.built.lock().map(|b| b.len()).unwrap_or(0);
        f.debug_struct("TaskResolver").field("built", &n).finish()
    }
}

impl TaskResolver {
    /// A resolver with nothing built yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn key(kind: &str, resolved: &Value) -> String {
        format!("{kind}\u{1}{}", canonical_json(resolved))
    }

    /// Runs `f` on the built model or metric of a resolved spec, building it if needed.
    fn with_built<T>(
        &self,
        kind: &str,
        spec: &Value,
        f: impl FnOnce(&Built) -> Result<T, String>,
    ) -> Result<T, String> {
        let key = Self::key(kind, spec);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if !built.contains_key(&key) {
            // Built as the workers build it (under the RNG lock, from MODEL_SEED), so that
            // planning draws nothing from another thread's seeded stream.
            let b = with_rng(Some(MODEL_SEED), || {
                if kind == "model" {
                    build_model(spec).map(Built::Model)
                } else {
                    build_metric(spec).map(Built::Metric)
                }
            })
            .map_err(|e| e.to_string())?;
            built.insert(key.clone(), b);
        }
        f(&built[&key])
    }

    fn resolve(&self, kind: &str, spec: &Value) -> Result<Value, String> {
        let resolved = resolve_spec(kind, spec).map_err(|e| e.to_string())?;
        // Building checks values too (ranges, files), not only names.
        self.with_built(kind, &resolved, |_| Ok(()))?;
        Ok(resolved)
    }
}

/// `model.check_input`, and for coarse-to-fine a model with scales.
fn check_model(synth: SynthKind, m: &dyn Model, shape: ImageShape) -> Result<(), String> {
    m.check_input(&shape.nchw()).map_err(|e| e.to_string())?;
    if synth == SynthKind::MetamerCtf && m.scales().is_none_or(|s| s.is_empty()) {
        return Err(format!(
            "`{}` has no scales, so it cannot be used coarse-to-fine (metamer_ctf needs a model with scales, e.g. portilla_simoncelli)",
            m.name()
        ));
    }
    Ok(())
}

/// `metric.check_input`, and for MAD what plenoptic's `validate_metric` asks: one value
/// per image (a per-channel metric on a colour image gives three) and at most 5e-7 for two
/// identical images (checked here on a fixed pattern of the task's shape, not a random
/// draw, so planning leaves the generator alone; the run checks again on plenoptic's draw).
fn check_metric(synth: SynthKind, m: &dyn Metric, shape: ImageShape) -> Result<(), String> {
    m.check_input(&shape.nchw()).map_err(|e| e.to_string())?;
    if synth == SynthKind::Mad {
        let n: i64 = shape.nchw().iter().product();
        let x = (Tensor::arange(n, (Kind::Float, Device::Cpu)) * 0.618_034)
            .frac()
            .reshape(shape.nchw());
        let same = tch::no_grad(|| m.forward(&x, &x));
        if same.numel() == 1 {
            let v = same.double_value(&[]);
            if v.is_nan() || v > 5e-7 {
                return Err(format!(
                    "`{}` gives {v:e} for two identical images; MAD needs at most 5e-7 \
                     (plenoptic's validate_metric){}",
                    m.name(),
                    if m.name() == "model_distance" {
                        ": set its epsilon = 0 (plenoptic's 1e-10 under the root gives 1e-5)"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    if synth == SynthKind::Mad && shape.channels > 1 {
        let x = Tensor::zeros(shape.nchw(), (Kind::Float, Device::Cpu));
        let n = tch::no_grad(|| m.forward(&x, &x)).numel();
        if n != 1 {
            return Err(format!(
                "`{}` gives {n} values for a {}-channel image; MAD needs one value per image \
                 (use gray images or a metric that gives one value, e.g. model_distance with epsilon = 0)",
                m.name(),
                shape.channels
            ));
        }
    }
    Ok(())
}

impl Resolver for TaskResolver {
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        self.resolve("model", spec)
    }

    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        self.resolve("metric", spec)
    }

    fn check_input(
        &self,
        synth: SynthKind,
        role: Role,
        spec: &Value,
        shape: ImageShape,
    ) -> Result<(), String> {
        let kind = role.spec_kind();
        self.with_built(kind, spec, |b| match b {
            Built::Model(m) => check_model(synth, m.as_ref(), shape),
            Built::Metric(m) => check_metric(synth, m.as_ref(), shape),
        })
    }

    fn image_value_range(
        &self,
        image: &ImageRef,
        as_gray: bool,
    ) -> Result<Option<(f64, f64)>, String> {
        let t = load_image_with(&image.path, as_gray).map_err(|e| e.to_string())?;
        let lo = t.min().double_value(&[]);
        let hi = t.max().double_value(&[]);
        Ok(Some((lo, hi)))
    }
}
