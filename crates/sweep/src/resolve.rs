//! The caller's half of validation: the layer that links libtorch knows the models, the
//! metrics and each method's parameter table; this crate only asks it, through [`Resolver`],
//! to turn what the user wrote into complete descriptions. So the sweep crate needs no tch,
//! and tasks still carry every default filled in.
use crate::kind::SynthKind;
use serde_json::{Map, Value};

/// Turns user-written specs into resolved ones: every default filled in, unknown names,
/// keys and types rejected with a message (which this crate prefixes with the file and
/// key path). Implementations must be pure: the same input gives the same output, on every
/// run and machine, since task ids are computed from the output.
///
/// Each distinct model or metric spec is resolved once per plan (results are cached), and
/// `resolve_params` is called once per task and a few times while planning.
pub trait Resolver: Send + Sync {
    /// A model spec such as `{"name": "gaussian", "kernel_size": 31}` (always a JSON object
    /// with a string `name`; a bare `"gaussian"` in the spec arrives here as
    /// `{"name": "gaussian"}`).
    fn resolve_model(&self, spec: &Value) -> Result<Value, String>;

    /// A metric spec such as `{"name": "mse"}` (same shape as a model spec).
    fn resolve_metric(&self, spec: &Value) -> Result<Value, String>;

    /// The method's parameters (everything in the spec that is not an input: images,
    /// models, metrics, `minmax` and `seed` are taken out) with the method's defaults
    /// filled in; unknown keys and wrong types are errors.
    fn resolve_params(
        &self,
        synth: SynthKind,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String>;
}

/// A resolver that returns everything as written: for tests, and for checking a spec's
/// structure without the model layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopResolver;

impl Resolver for NoopResolver {
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        Ok(spec.clone())
    }

    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        Ok(spec.clone())
    }

    fn resolve_params(
        &self,
        _synth: SynthKind,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        Ok(params.clone())
    }
}
