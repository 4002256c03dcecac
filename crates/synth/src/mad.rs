//! MADCompetition: push one metric (optimized) to its minimum or maximum while holding
//! another (reference) at its initial value (plenoptic's `MADCompetition`).
//! Objective: `t·L1(img, x) + λ·(L2(img, x0) − L2(img, x))² + λ_r·B(x)`, `t = ±1`.
use crate::error::{Result, SynthError};
use crate::optim::{item, Optimizer};
use crate::state::{
    image_record, load_core, parameters, save_core, Mismatches, StateFile, StateWriter,
};
use crate::synthesis::{
    penalize_range, run, with_rng, Callback, Core, Method, Outcome, StepRecord, SynthesizeOptions,
};
use crate::validate::{validate_image_and_range, validate_initial_metric, validate_metric};
use serde_json::{json, Value};
use std::path::Path;
use synthsweep_models::Metric;
use tch::{Device, Kind, Tensor};

pub use synthsweep_core::params::MadOptions;
pub use synthsweep_core::MinMax;

/// plenoptic 1.x's automatic λ: `10^round(log10(L1₀/L2₀))`, in float32, rounding half to even.
pub fn automatic_tradeoff_lambda(optimized_loss: f64, reference_loss: f64) -> f64 {
    let ratio = Tensor::from((optimized_loss / reference_loss) as f32);
    item(&Tensor::from(10i64).pow(&ratio.log10().round()))
}

/// A MAD competition synthesis in progress: plenoptic's `MADCompetition`
/// (`plenoptic.synthesize.mad_competition`; Wang & Simoncelli 2008).
///
/// The image is a 4-D float tensor with values inside `allowed_range` ((0, 1) by default)
/// for which both metrics return a single value (so (1, 1, H, W) for the per-channel
/// metrics); the MAD image has its shape, dtype and device. The losses are in the optimized
/// metric's units (the reference term in the reference metric's squared units, times
/// `metric_tradeoff_lambda`).
///
/// # Errors
/// [`MadCompetition::new`] returns [`SynthError::InvalidParam`] for invalid options, an image
/// that is not a 4-D float tensor inside `allowed_range`, a metric that does not give one
/// value, gives more than 5e-7 for identical images or a negative value, or an automatic
/// `metric_tradeoff_lambda` that is 0 or not finite; [`SynthError::NonFiniteTarget`] when a
/// metric is not finite at the initial image; [`SynthError::Model`] when a metric cannot
/// take the image's shape.
pub struct MadCompetition<'a> {
    pub(crate) optimized_metric: &'a dyn Metric,
    pub(crate) reference_metric: &'a dyn Metric,
    pub(crate) image: Tensor,
    pub(crate) initial_image: Tensor,
    pub(crate) minmax: MinMax,
    pub(crate) options: MadOptions,
    pub(crate) metric_tradeoff_lambda: f64,
    pub(crate) reference_metric_target: f64,
    pub(crate) optimized_metric_loss: Vec<f64>,
    pub(crate) reference_metric_loss: Vec<f64>,
    pub(crate) identity: Option<String>,
    pub(crate) core: Core,
}

impl std::fmt::Debug for MadCompetition<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MadCompetition")
            .field("optimized_metric", &self.optimized_metric.name())
            .field("reference_metric", &self.reference_metric.name())
            .field("minmax", &self.minmax)
            .field("metric_tradeoff_lambda", &self.metric_tradeoff_lambda)
            .field("iterations", &self.core.losses.len())
            .finish()
    }
}

impl<'a> MadCompetition<'a> {
    /// Draws 21 uniform images per metric check, then `randn_like(image)` for the start
    /// `clamp(image + initial_noise·noise, allowed_range)`.
    pub fn new(
        image: &Tensor,
        optimized_metric: &'a dyn Metric,
        reference_metric: &'a dyn Metric,
        minmax: MinMax,
        options: MadOptions,
    ) -> Result<Self> {
        options.validate()?;
        validate_image_and_range(image, options.range_penalty_lambda, options.allowed_range)?;
        let image = image.detach();
        let (a, b) = options.allowed_range;
        let initial_image = with_rng(options.seed, || {
            validate_metric(optimized_metric, &image, "optimized_metric")?;
            validate_metric(reference_metric, &image, "reference_metric")?;
            Ok::<_, SynthError>((&image + image.randn_like() * options.initial_noise).clamp(a, b))
        })?;
        let (reference_metric_target, optimized0) = tch::no_grad(|| {
            (
                item(&reference_metric.forward(&image, &initial_image)),
                item(&optimized_metric.forward(&image, &initial_image)),
            )
        });
        validate_initial_metric(optimized_metric, optimized0, "optimized_metric")?;
        validate_initial_metric(
            reference_metric,
            reference_metric_target,
            "reference_metric",
        )?;
        let metric_tradeoff_lambda = match options.metric_tradeoff_lambda {
            Some(l) => l,
            None => {
                let l = automatic_tradeoff_lambda(optimized0, reference_metric_target);
                if !l.is_finite() || l == 0.0 {
                    return Err(SynthError::invalid(
                        "metric_tradeoff_lambda",
                        format!(
                            "cannot be chosen automatically: the metrics at the initial image are {optimized0} (optimized) and {reference_metric_target} (reference); give it explicitly or use initial_noise > 0"
                        ),
                    ));
                }
                l
            }
        };
        Ok(MadCompetition {
            optimized_metric,
            reference_metric,
            core: Core::new(&initial_image),
            image,
            initial_image,
            minmax,
            options,
            metric_tradeoff_lambda,
            reference_metric_target,
            optimized_metric_loss: vec![optimized0],
            reference_metric_loss: vec![reference_metric_target],
            identity: None,
        })
    }

    /// The four competitions of a full MAD set, each seeded with its own seed: `a` min and
    /// max against `b`, then `b` min and max against `a`.
    pub fn full_set(
        image: &Tensor,
        metric_a: &'a dyn Metric,
        metric_b: &'a dyn Metric,
        options: &MadOptions,
        seeds: [i64; 4],
    ) -> Result<Vec<Self>> {
        let plan = [
            (metric_a, metric_b, MinMax::Min),
            (metric_a, metric_b, MinMax::Max),
            (metric_b, metric_a, MinMax::Min),
            (metric_b, metric_a, MinMax::Max),
        ];
        plan.into_iter()
            .zip(seeds)
            .map(|((opt, reference, minmax), seed)| {
                Self::new(
                    image,
                    opt,
                    reference,
                    minmax,
                    MadOptions {
                        seed: Some(seed),
                        ..options.clone()
                    },
                )
            })
            .collect()
    }

    /// Builds the full set (see [`MadCompetition::full_set`]) and runs each with `opts`.
    pub fn run_full_set(
        image: &Tensor,
        metric_a: &'a dyn Metric,
        metric_b: &'a dyn Metric,
        options: &MadOptions,
        seeds: [i64; 4],
        opts: &SynthesizeOptions,
    ) -> Result<Vec<Self>> {
        let mut set = Self::full_set(image, metric_a, metric_b, options, seeds)?;
        for mad in &mut set {
            mad.synthesize(opts)?;
        }
        Ok(set)
    }

    /// Runs up to `max_iter` iterations; a second call continues where the last one stopped.
    ///
    /// # Errors
    /// [`SynthError::InvalidParam`] for invalid options (or a `store_progress` or optimizer
    /// that differs from the first call's); [`SynthError::NonFinite`] when the objective
    /// becomes NaN or infinite (the iterations done are kept).
    pub fn synthesize(&mut self, opts: &SynthesizeOptions) -> Result<Outcome> {
        self.core.prepare(opts)?;
        run(self, opts, None)
    }

    /// As [`MadCompetition::synthesize`], calling `callback` after every iteration.
    pub fn synthesize_with(
        &mut self,
        opts: &SynthesizeOptions,
        callback: &mut Callback,
    ) -> Result<Outcome> {
        self.core.prepare(opts)?;
        run(self, opts, Some(callback))
    }

    /// The objective at `x` (with gradient when `x` requires it).
    pub fn objective_at(&self, x: &Tensor) -> Tensor {
        let synthesis_loss = self.optimized_metric.forward(&self.image, x);
        let fixed_loss = (self.reference_metric.forward(&self.image, x).neg()
            + self.reference_metric_target)
            .square();
        synthesis_loss * self.minmax.sign()
            + fixed_loss * self.metric_tradeoff_lambda
            + penalize_range(x, self.options.allowed_range) * self.options.range_penalty_lambda
    }

    /// The objective at the current MAD image (no gradient).
    pub fn objective_function(&self) -> Tensor {
        tch::no_grad(|| self.objective_at(&self.core.x.detach()))
    }

    /// A caller-chosen identity of the two metrics (e.g. their specs), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.identity = Some(identity.into());
    }

    /// Moves the synthesis to `device` as `kind` (images, MAD image, optimizer state;
    /// snapshots stay on the CPU), bound to metrics that must already be there.
    pub fn to<'b>(
        self,
        device: Device,
        kind: Kind,
        optimized_metric: &'b dyn Metric,
        reference_metric: &'b dyn Metric,
    ) -> MadCompetition<'b> {
        let mut core = self.core;
        core.to(device, kind);
        MadCompetition {
            optimized_metric,
            reference_metric,
            image: self.image.to_device(device).to_kind(kind),
            initial_image: self.initial_image.to_device(device).to_kind(kind),
            minmax: self.minmax,
            options: self.options,
            metric_tradeoff_lambda: self.metric_tradeoff_lambda,
            reference_metric_target: self.reference_metric_target,
            optimized_metric_loss: self.optimized_metric_loss,
            reference_metric_loss: self.reference_metric_loss,
            identity: self.identity,
            core,
        }
    }

    /// Saves the synthesis in progress (see [`crate::state`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new("mad");
        w.meta("parameters", &self.parameters_record());
        w.meta("image", &image_record(&self.image)?);
        w.meta("metrics", &self.metrics_record());
        w.meta("metric_tradeoff_lambda", &self.metric_tradeoff_lambda);
        w.meta("reference_metric_target", &self.reference_metric_target);
        w.tensor("initial_image", &self.initial_image);
        w.series("optimized_metric_loss", &self.optimized_metric_loss);
        w.series("reference_metric_loss", &self.reference_metric_loss);
        save_core(&self.core, &mut w);
        w.write(path.as_ref())
    }

    /// Loads a state saved from a MADCompetition built with the same image, metrics and
    /// options. The metrics are checked by evaluating them at the saved initial image.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let f = StateFile::read(path.as_ref(), "mad")?;
        let mut m = Mismatches::default();
        m.check(
            "parameters",
            &parameters(f.get("parameters")),
            &self.parameters_record(),
        );
        m.check("image", f.get("image"), &image_record(&self.image)?);
        m.check("metrics", f.get("metrics"), &self.metrics_record());
        let lambda: f64 = f.parse("metric_tradeoff_lambda")?;
        if lambda != self.metric_tradeoff_lambda {
            m.push(format!(
                "metric_tradeoff_lambda: saved {lambda}, now {}",
                self.metric_tradeoff_lambda
            ));
        }
        let initial = f
            .tensor("initial_image")?
            .to_device(self.image.device())
            .to_kind(self.image.kind());
        let (l1, l2) = (
            f.series("optimized_metric_loss")?,
            f.series("reference_metric_loss")?,
        );
        if initial.size() == self.image.size() && !l1.is_empty() && !l2.is_empty() {
            let (o, r) = tch::no_grad(|| {
                (
                    self.optimized_metric.forward(&self.image, &initial),
                    self.reference_metric.forward(&self.image, &initial),
                )
            });
            m.check_close(
                "optimized_metric at the initial image",
                &Tensor::from(l1[0]),
                &o.reshape(Vec::<i64>::new()),
            );
            m.check_close(
                "reference_metric at the initial image",
                &Tensor::from(l2[0]),
                &r.reshape(Vec::<i64>::new()),
            );
        }
        m.into_result(&f)?;
        load_core(&mut self.core, &f, self.image.device(), self.image.kind())?;
        self.initial_image = initial;
        self.reference_metric_target = f.parse("reference_metric_target")?;
        (self.optimized_metric_loss, self.reference_metric_loss) = (l1, l2);
        Ok(())
    }

    fn parameters_record(&self) -> Value {
        let mut p = parameters(&self.options);
        p["minmax"] = json!(self.minmax);
        p
    }

    fn metrics_record(&self) -> Value {
        json!({"optimized": self.optimized_metric.name(), "reference": self.reference_metric.name(), "identity": self.identity})
    }

    /// The metric pushed to its minimum or maximum (L1).
    pub fn optimized_metric(&self) -> &dyn Metric {
        self.optimized_metric
    }
    /// The metric held at its initial value (L2).
    pub fn reference_metric(&self) -> &dyn Metric {
        self.reference_metric
    }
    /// The reference image, detached.
    pub fn image(&self) -> &Tensor {
        &self.image
    }
    /// The start: `clamp(image + initial_noise · randn_like(image), allowed_range)`.
    pub fn initial_image(&self) -> &Tensor {
        &self.initial_image
    }
    /// The current MAD image, the image's shape; a leaf that requires grad.
    pub fn mad_image(&self) -> &Tensor {
        &self.core.x
    }
    /// Whether the optimized metric is minimized or maximized.
    pub fn minmax(&self) -> MinMax {
        self.minmax
    }
    /// The options it was built with.
    pub fn options(&self) -> &MadOptions {
        &self.options
    }
    /// λ, the weight of the reference term: the option's value, or the automatic choice
    /// [`automatic_tradeoff_lambda`] at the initial image.
    pub fn metric_tradeoff_lambda(&self) -> f64 {
        self.metric_tradeoff_lambda
    }
    /// The weight of the range penalty (>= 0).
    pub fn range_penalty_lambda(&self) -> f64 {
        self.options.range_penalty_lambda
    }
    /// The pixel range outside which the penalty applies, (min, max).
    pub fn allowed_range(&self) -> (f64, f64) {
        self.options.allowed_range
    }
    /// L2(image, initial image): the value the reference metric is held at.
    pub fn reference_metric_target(&self) -> f64 {
        self.reference_metric_target
    }
    /// Objective before each step, one entry per iteration.
    pub fn losses(&self) -> &[f64] {
        &self.core.losses
    }
    /// ‖∇‖ of that objective, one entry per iteration.
    pub fn gradient_norm(&self) -> &[f64] {
        &self.core.gradient_norm
    }
    /// ‖x after − x before‖ of each step (pixel units).
    pub fn pixel_change_norm(&self) -> &[f64] {
        &self.core.pixel_change_norm
    }
    /// `[0]` at the initial image, then after each step (iterations + 1 entries).
    pub fn optimized_metric_loss(&self) -> &[f64] {
        &self.optimized_metric_loss
    }
    /// `[0]` at the initial image, then after each step (iterations + 1 entries).
    pub fn reference_metric_loss(&self) -> &[f64] {
        &self.reference_metric_loss
    }
    /// The snapshots of `store_progress`, stacked on the CPU (empty when none were taken).
    pub fn saved_mad_image(&self) -> Tensor {
        self.core.saved_stack()
    }
    /// `None` before the first `synthesize` call, then the snapshot interval (0 = off).
    pub fn store_progress(&self) -> Option<usize> {
        self.core.store_progress
    }
    /// The optimizer, once the first `synthesize` call has built it.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.core.optimizer.as_ref()
    }
}

impl Method for MadCompetition<'_> {
    fn core(&self) -> &Core {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
    fn objective(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(self.objective_at(x))
    }
    /// Both metrics at the updated image (the extras: reference, optimized).
    fn after_step(&mut self, step_loss: &Tensor) -> Result<StepRecord> {
        let x = self.core.x.detach();
        let (fm, sm) = tch::no_grad(|| {
            (
                self.reference_metric.forward(&self.image, &x),
                self.optimized_metric.forward(&self.image, &x),
            )
        });
        Ok(StepRecord {
            loss: step_loss.shallow_clone(),
            scheduler_loss: step_loss.shallow_clone(),
            extras: vec![fm, sm],
        })
    }
    fn push_extras(&mut self, values: &[f64]) {
        self.reference_metric_loss.push(values[0]);
        self.optimized_metric_loss.push(values[1]);
    }
    fn extra(&self) -> Vec<(&'static str, f64)> {
        vec![
            (
                "reference_metric",
                *self.reference_metric_loss.last().unwrap_or(&f64::NAN),
            ),
            (
                "optimized_metric",
                *self.optimized_metric_loss.last().unwrap_or(&f64::NAN),
            ),
        ]
    }
}
