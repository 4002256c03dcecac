//! Metamer: an image whose model representation matches a target image's
//! (plenoptic's `Metamer`). Objective: `loss_function(model(x), model(image)) + λ_r·B(x)`.
use crate::error::{Result, SynthError};
use crate::optim::{item, Optimizer};
use crate::state::{
    image_record, load_core, parameters, save_core, Mismatches, StateFile, StateWriter,
};
use crate::synthesis::{
    penalize_range, run, with_rng, Callback, Core, Method, Outcome, SynthesizeOptions,
};
use crate::validate::{
    validate_image, validate_image_and_range, validate_model, validate_representation,
};
use serde_json::{json, Value};
use std::path::Path;
use synthsweep_models::Model;
use tch::{Device, Kind, Tensor};

pub use synthsweep_core::params::{LossFunction, MetamerOptions};

/// `loss_function` applied: the loss between the synthesized representation `a` and the
/// target `b` (scalar tensors; see [`LossFunction`] for the formulas).
pub fn apply_loss(f: LossFunction, a: &Tensor, b: &Tensor) -> Tensor {
    match f {
        LossFunction::Mse => (a - b).square().mean(None::<Kind>),
        LossFunction::L2Norm => (b - a).norm(),
        LossFunction::RelativeSse => (b - a).norm().square() / b.norm().square(),
    }
}

/// plenoptic's `signal.rescale`: `a + (x − min x)/(max x − min x)·(b − a)`.
pub(crate) fn rescale(x: &Tensor, (a, b): (f64, f64)) -> Tensor {
    let min = x.min();
    let v = x.max() - &min;
    let mut g = x - &min;
    if item(&v) > 0.0 {
        g /= v;
    }
    g * (b - a) + a
}

/// A metamer synthesis in progress: plenoptic's `Metamer` (`plenoptic.synthesize.metamer`;
/// Portilla & Simoncelli 2000, Freeman & Simoncelli 2011).
///
/// The image is an (N, C, H, W) float tensor with values inside `allowed_range` ((0, 1) by
/// default); the metamer has its shape, dtype and device. The loss is in the units of
/// `loss_function` applied to the model's representation (squared representation units for
/// the default `mse`), plus `range_penalty_lambda` times the squared excursion of the pixels
/// outside `allowed_range`.
///
/// # Errors
/// The constructors return [`SynthError::InvalidParam`] for invalid options, an image that is
/// not a 4-D float tensor inside `allowed_range`, an `initial_image` of another shape, or a
/// model that loses the gradient, changes the dtype or returns neither 3-D nor 4-D output;
/// [`SynthError::NonFiniteTarget`] when the model's representation of the image is not
/// finite; [`SynthError::Model`] when the model cannot take the image's shape.
pub struct Metamer<'a> {
    pub(crate) model: &'a dyn Model,
    pub(crate) image: Tensor,
    pub(crate) target_representation: Tensor,
    pub(crate) options: MetamerOptions,
    pub(crate) identity: Option<String>,
    pub(crate) core: Core,
}

impl std::fmt::Debug for Metamer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metamer")
            .field("model", &self.model.name())
            .field("options", &self.options)
            .field("iterations", &self.core.losses.len())
            .finish()
    }
}

impl<'a> Metamer<'a> {
    /// Starts from uniform noise rescaled to `allowed_range` (draws: `rand` for the model
    /// check, then `rand_like(image)`).
    pub fn new(image: &Tensor, model: &'a dyn Model, options: MetamerOptions) -> Result<Self> {
        Self::build(image, model, options, None)
    }

    /// Starts from `initial_image` (same shape as `image`).
    pub fn with_initial_image(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        initial_image: &Tensor,
    ) -> Result<Self> {
        Self::build(image, model, options, Some(initial_image))
    }

    fn build(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        initial: Option<&Tensor>,
    ) -> Result<Self> {
        with_rng(options.seed, || {
            Self::build_unlocked(image, model, options, initial)
        })
    }

    /// The constructor's work; the caller holds the RNG lock (see [`with_rng`]).
    pub(crate) fn build_unlocked(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        initial: Option<&Tensor>,
    ) -> Result<Self> {
        options.validate()?;
        validate_image_and_range(image, options.range_penalty_lambda, options.allowed_range)?;
        if let Some(init) = initial {
            validate_image(init, "initial_image")?;
            if init.size() != image.size() {
                return Err(SynthError::invalid(
                    "initial_image",
                    format!(
                        "must have the image's shape {:?}, got {:?}",
                        image.size(),
                        init.size()
                    ),
                ));
            }
        }
        let image = image.detach();
        validate_model(model, &image)?;
        let target_representation = tch::no_grad(|| model.forward(&image));
        validate_representation(model, &target_representation, "the target image")?;
        let x0 = match initial {
            Some(init) => init
                .detach()
                .to_device(image.device())
                .to_kind(image.kind()),
            None => rescale(&image.rand_like(), options.allowed_range),
        };
        Ok(Metamer {
            model,
            image,
            target_representation,
            options,
            identity: None,
            core: Core::new(&x0),
        })
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

    /// As [`Metamer::synthesize`], calling `callback` after every iteration.
    pub fn synthesize_with(
        &mut self,
        opts: &SynthesizeOptions,
        callback: &mut Callback,
    ) -> Result<Outcome> {
        self.core.prepare(opts)?;
        run(self, opts, Some(callback))
    }

    /// The objective at `x` given its representation `rep` and a target.
    pub(crate) fn objective_at(&self, x: &Tensor, rep: &Tensor, target: &Tensor) -> Tensor {
        apply_loss(self.options.loss_function, rep, target)
            + penalize_range(x, self.options.allowed_range) * self.options.range_penalty_lambda
    }

    /// The objective at the current metamer (no gradient).
    pub fn objective_function(&self) -> Tensor {
        tch::no_grad(|| {
            let x = self.core.x.detach();
            self.objective_at(&x, &self.model.forward(&x), &self.target_representation)
        })
    }

    /// A caller-chosen identity of the model (e.g. its resolved spec), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.identity = Some(identity.into());
    }

    /// Moves the synthesis to `device` as `kind` (image, target, metamer, optimizer state;
    /// snapshots stay on the CPU), bound to `model`, which must already be there
    /// (`Model::to` on the same or another instance).
    pub fn to<'b>(self, device: Device, kind: Kind, model: &'b dyn Model) -> Metamer<'b> {
        let mut core = self.core;
        core.to(device, kind);
        Metamer {
            model,
            image: self.image.to_device(device).to_kind(kind),
            target_representation: self.target_representation.to_device(device).to_kind(kind),
            options: self.options,
            identity: self.identity,
            core,
        }
    }

    /// Saves the synthesis in progress (see [`crate::state`]).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new("metamer");
        self.save_into(&mut w)?;
        w.write(path.as_ref())
    }

    /// Loads a state saved from a Metamer built with the same image, model and options,
    /// then continues from it with `synthesize`.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        self.load_from(&StateFile::read(path.as_ref(), "metamer")?)
    }

    pub(crate) fn save_into(&self, w: &mut StateWriter) -> Result<()> {
        w.meta("parameters", &self.options);
        w.meta("image", &image_record(&self.image)?);
        w.meta("model", &self.model_record());
        w.tensor("target_representation", &self.target_representation);
        save_core(&self.core, w);
        Ok(())
    }

    pub(crate) fn load_from(&mut self, f: &StateFile) -> Result<()> {
        let mut m = Mismatches::default();
        m.check(
            "parameters",
            &parameters(f.get("parameters")),
            &parameters(&self.options),
        );
        m.check("image", f.get("image"), &image_record(&self.image)?);
        m.check("model", f.get("model"), &self.model_record());
        m.check_close(
            "target_representation",
            f.tensor("target_representation")?,
            &self.target_representation,
        );
        m.into_result(f)?;
        load_core(&mut self.core, f, self.image.device(), self.image.kind())
    }

    fn model_record(&self) -> Value {
        json!({"name": self.model.name(), "identity": self.identity})
    }

    /// The model whose representation is matched.
    pub fn model(&self) -> &dyn Model {
        self.model
    }
    /// The target image (N, C, H, W), detached.
    pub fn image(&self) -> &Tensor {
        &self.image
    }
    /// The model's representation of the target image (no gradient).
    pub fn target_representation(&self) -> &Tensor {
        &self.target_representation
    }
    /// The current metamer, the image's shape; a leaf that requires grad.
    pub fn metamer(&self) -> &Tensor {
        &self.core.x
    }
    /// The options it was built with.
    pub fn options(&self) -> &MetamerOptions {
        &self.options
    }
    /// The loss between representations (plenoptic's `loss_function`).
    pub fn loss_function(&self) -> LossFunction {
        self.options.loss_function
    }
    /// The weight of the range penalty (>= 0).
    pub fn range_penalty_lambda(&self) -> f64 {
        self.options.range_penalty_lambda
    }
    /// The pixel range outside which the penalty applies, (min, max).
    pub fn allowed_range(&self) -> (f64, f64) {
        self.options.allowed_range
    }
    /// Objective before each step, one entry per iteration.
    pub fn losses(&self) -> &[f64] {
        &self.core.losses
    }
    /// ‖∇‖ of that objective, one entry per iteration.
    pub fn gradient_norm(&self) -> &[f64] {
        &self.core.gradient_norm
    }
    /// ‖x after − x before‖ of each step.
    pub fn pixel_change_norm(&self) -> &[f64] {
        &self.core.pixel_change_norm
    }
    /// The snapshots of `store_progress`, stacked (empty when none were taken).
    pub fn saved_metamer(&self) -> Tensor {
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

impl Method for Metamer<'_> {
    fn core(&self) -> &Core {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
    fn objective(&mut self, x: &Tensor) -> Result<Tensor> {
        Ok(self.objective_at(x, &self.model.forward(x), &self.target_representation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_functions_as_plenoptic_defines_them() {
        let a = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        let b = Tensor::from_slice(&[1.0f32, 0.0, 3.0, 2.0]);
        let v = |f: LossFunction| item(&apply_loss(f, &a, &b));
        assert_eq!(v(LossFunction::Mse), 2.0);
        assert_eq!(v(LossFunction::L2Norm), 8f64.sqrt() as f32 as f64);
        // ‖a − b‖² / ‖b‖², with b the target
        assert!((v(LossFunction::RelativeSse) - 8.0 / 14.0).abs() < 1e-6);
        for (name, f) in [
            ("\"mse\"", LossFunction::Mse),
            ("\"l2\"", LossFunction::L2Norm),
            ("\"relative_mse\"", LossFunction::RelativeSse),
        ] {
            assert_eq!(serde_json::from_str::<LossFunction>(name).unwrap(), f);
        }
        let o: MetamerOptions =
            serde_json::from_str(r#"{"loss_function": "relative_sse", "allowed_range": [-1, 2]}"#)
                .unwrap();
        assert_eq!(
            (o.loss_function, o.allowed_range, o.range_penalty_lambda),
            (LossFunction::RelativeSse, (-1.0, 2.0), 0.1)
        );
        assert!(serde_json::from_str::<MetamerOptions>(r#"{"loss": "mse"}"#).is_err());
    }

    #[test]
    fn rescale_spans_the_allowed_range() {
        let u = Tensor::from_slice(&[0.2f32, 0.5, 0.9]);
        let r = rescale(&u, (-1.0, 3.0));
        assert_eq!((item(&r.min()), item(&r.max())), (-1.0, 3.0));
    }
}
