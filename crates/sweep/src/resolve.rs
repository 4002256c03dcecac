//! The caller's half of validation: the layer that links libtorch knows the models and
//! metrics; this crate only asks it, through [`Resolver`], to turn what the user wrote into
//! complete descriptions, and whether a model or metric can take a task's images. So the
//! sweep crate needs no tch, and tasks still carry every default filled in and are checked
//! before anything runs. (Method parameters need no resolver: they are typed in
//! `synthsweep_core::params`.)
use crate::images::ImageRef;
use serde_json::Value;
use synthsweep_core::{ImageShape, Role, SynthKind};

/// Turns user-written model and metric specs into resolved ones (every default filled in;
/// unknown names, keys and types rejected with a message, which this crate prefixes with
/// the file and key path), and answers what only the model layer knows about images.
/// Implementations must be pure: the same input gives the same output, on every run and
/// machine, since task ids are computed from the output.
///
/// Each distinct model or metric spec is resolved once per plan, and each distinct
/// (spec, use, image shape) is checked once per plan (results are cached).
pub trait Resolver: Send + Sync {
    /// A model spec such as `{"name": "gaussian", "kernel_size": 31}` (always a JSON object
    /// with a string `name`; a bare `"gaussian"` in the spec arrives here as
    /// `{"name": "gaussian"}`).
    fn resolve_model(&self, spec: &Value) -> Result<Value, String>;

    /// A metric spec such as `{"name": "mse"}` (same shape as a model spec).
    fn resolve_metric(&self, spec: &Value) -> Result<Value, String>;

    /// Whether the resolved model or metric `spec`, used as `role` in a task of `synth`,
    /// can take an input of `shape` (a batch of one: `(1, C, H, W)`); the error says what
    /// it needs ("height >= 16 for reflect padding of a 31x31 kernel"). What depends on the
    /// use is the implementation's to know: a coarse-to-fine metamer needs a model with
    /// scales, MAD a metric that gives one value for the image. The default accepts
    /// everything.
    fn check_input(
        &self,
        synth: SynthKind,
        role: Role,
        spec: &Value,
        shape: ImageShape,
    ) -> Result<(), String> {
        let _ = (synth, role, spec, shape);
        Ok(())
    }

    /// The smallest and largest pixel value of `image` as a task loads it (plenoptic's
    /// `load_images(path, as_gray)`), for checking a method's `allowed_range` (asked only
    /// when that range does not contain [0, 1]). The default says nothing (`Ok(None)`): no
    /// check.
    fn image_value_range(
        &self,
        image: &ImageRef,
        as_gray: bool,
    ) -> Result<Option<(f64, f64)>, String> {
        let _ = (image, as_gray);
        Ok(None)
    }
}

/// A resolver that returns every spec as written and accepts every image: for tests, and
/// for checking a spec's structure without the model layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopResolver;

impl Resolver for NoopResolver {
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        Ok(spec.clone())
    }

    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        Ok(spec.clone())
    }
}
