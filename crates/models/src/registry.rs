//! The one registry of model and metric names: builds them from JSON specs, and lists
//! names, parameters and defaults (the same tables drive validation and `synthsweep models`).
use crate::error::{ModelError, Result};
use crate::frontend::{self, Frontend, FrontendKind};
use crate::metrics;
use crate::model::{Metric, Model};
use crate::naive;
use crate::params::{split_spec, ParamDoc, Params};
use crate::portilla_simoncelli;
use crate::pyramid;
use crate::pyramid::laplacian::{self, LaplacianPyramid};
use crate::torchscript;
use serde_json::Value;

/// A model name with its parameters and constructor.
pub struct ModelEntry {
    /// The registry name specs use, e.g. `on_off`.
    pub name: &'static str,
    /// One line for `synthsweep models`: what the model computes and the plenoptic class it follows.
    pub help: &'static str,
    /// Its parameter table (names, types, defaults, help).
    pub params: fn() -> &'static [ParamDoc],
    build: fn(&Params) -> Result<Box<dyn Model>>,
}

/// A metric name with its parameters and constructor.
pub struct MetricEntry {
    /// The registry name specs use, e.g. `ssim_distance`.
    pub name: &'static str,
    /// One line for `synthsweep metrics`: what the metric computes and the plenoptic function it follows.
    pub help: &'static str,
    /// Its parameter table (names, types, defaults, help).
    pub params: fn() -> &'static [ParamDoc],
    build: fn(&Params) -> Result<Box<dyn Metric>>,
}

fn boxed<M: Model + 'static>(r: Result<M>) -> Result<Box<dyn Model>> {
    r.map(|m| Box::new(m) as Box<dyn Model>)
}

fn boxed_metric<M: Metric + 'static>(r: Result<M>) -> Result<Box<dyn Metric>> {
    r.map(|m| Box::new(m) as Box<dyn Metric>)
}

/// Every model synthsweep knows, in the order `synthsweep models` lists them.
pub static MODELS: &[ModelEntry] = &[
    ModelEntry { name: "identity", help: "returns the image (pixel space)", params: || naive::IDENTITY_PARAMS, build: |_| Ok(Box::new(naive::Identity)) },
    ModelEntry { name: "linear", help: "two linear filters: low-pass and band-pass", params: || naive::LINEAR_PARAMS, build: |p| boxed(naive::Linear::from_params(p)) },
    ModelEntry { name: "gaussian", help: "circular Gaussian blur", params: || naive::GAUSSIAN_PARAMS, build: |p| boxed(naive::Gaussian::from_params(p)) },
    ModelEntry { name: "center_surround", help: "difference of Gaussians", params: || naive::CENTER_SURROUND_PARAMS, build: |p| boxed(naive::CenterSurround::from_params(p)) },
    ModelEntry { name: "linear_nonlinear", help: "LN: center-surround + softplus", params: || frontend::params(FrontendKind::LinearNonlinear), build: |p| boxed(Frontend::from_params(FrontendKind::LinearNonlinear, p)) },
    ModelEntry { name: "luminance_gain_control", help: "LG: LN with luminance gain control", params: || frontend::params(FrontendKind::LuminanceGainControl), build: |p| boxed(Frontend::from_params(FrontendKind::LuminanceGainControl, p)) },
    ModelEntry { name: "luminance_contrast_gain_control", help: "LGG: LG with contrast gain control", params: || frontend::params(FrontendKind::LuminanceContrastGainControl), build: |p| boxed(Frontend::from_params(FrontendKind::LuminanceContrastGainControl, p)) },
    ModelEntry { name: "on_off", help: "two-channel on/off LGG", params: || frontend::params(FrontendKind::OnOff), build: |p| boxed(Frontend::from_params(FrontendKind::OnOff, p)) },
    ModelEntry { name: "laplacian_pyramid", help: "Laplacian pyramid (Burt & Adelson); out = levels flattened and concatenated, fine to coarse", params: || laplacian::LAPLACIAN_PYRAMID_PARAMS, build: |p| boxed(LaplacianPyramid::from_params(p)) },
    ModelEntry { name: "normalized_laplacian_pyramid", help: "NLPD's 6-level divisively normalized Laplacian pyramid (Laparra et al. 2016)", params: || metrics::nlpd::NORMALIZED_LAPLACIAN_PYRAMID_PARAMS, build: |_| Ok(Box::new(metrics::NormalizedLaplacianPyramid::new())) },
    ModelEntry { name: "steerable_pyramid", help: "steerable pyramid in the Fourier domain (plenoptic's SteerablePyramidFreq); out = all coefficients flattened", params: || pyramid::STEERABLE_PYRAMID_PARAMS, build: |p| boxed(pyramid::SteerablePyramid::from_params(p)) },
    ModelEntry { name: "portilla_simoncelli", help: "Portilla-Simoncelli texture statistics; out = the non-redundant statistics (B, C, n_stats)", params: || portilla_simoncelli::PORTILLA_SIMONCELLI_PARAMS, build: |p| boxed(portilla_simoncelli::PortillaSimoncelli::from_params(p)) },
    ModelEntry { name: "torchscript", help: "a user model saved with torch.jit.save", params: || torchscript::TORCHSCRIPT_PARAMS, build: |p| boxed(torchscript::TorchScriptModel::from_params(p)) },
];

/// Every metric synthsweep knows.
pub static METRICS: &[MetricEntry] = &[
    MetricEntry { name: "mse", help: "mean squared error", params: || metrics::MSE_PARAMS, build: |_| Ok(Box::new(metrics::Mse)) },
    MetricEntry { name: "ssim", help: "structural similarity, mean over the map (a similarity: 1 = identical)", params: || metrics::ssim::SSIM_PARAMS, build: |p| boxed_metric(metrics::Ssim::from_params(p, false)) },
    MetricEntry { name: "ssim_distance", help: "1 - ssim", params: || metrics::ssim::SSIM_PARAMS, build: |p| boxed_metric(metrics::Ssim::from_params(p, true)) },
    MetricEntry { name: "ms_ssim", help: "multiscale structural similarity (a similarity: 1 = identical)", params: || metrics::ms_ssim::MS_SSIM_PARAMS, build: |p| boxed_metric(metrics::MsSsim::from_params(p, false)) },
    MetricEntry { name: "ms_ssim_distance", help: "1 - ms_ssim", params: || metrics::ms_ssim::MS_SSIM_PARAMS, build: |p| boxed_metric(metrics::MsSsim::from_params(p, true)) },
    MetricEntry { name: "nlpd", help: "normalized Laplacian pyramid distance (Laparra et al. 2016)", params: || metrics::nlpd::NLPD_PARAMS, build: |_| Ok(Box::new(metrics::Nlpd::new())) },
    MetricEntry { name: "model_distance", help: "RMSE between two images' representations under a model (plenoptic's model_metric_factory)", params: || metrics::MODEL_DISTANCE_PARAMS, build: |p| boxed_metric(metrics::ModelDistance::from_params(p)) },
];

fn names<T>(items: &[T], name: fn(&T) -> &'static str) -> String {
    items.iter().map(name).collect::<Vec<_>>().join(", ")
}

/// Builds a model from a spec such as `{"name": "gaussian", "kernel_size": 31}`.
///
/// Construction draws from libtorch's generator where plenoptic's does (gain-control
/// scalars, random `Linear` weights), holding the RNG lock ([`crate::rng::with_rng`]) and
/// continuing the generator's stream; wrap the call in `with_rng(Some(seed), ..)` to build
/// it from a known state, as a sweep's workers do with [`crate::rng::MODEL_SEED`].
///
/// # Errors
/// [`ModelError`] naming the spec's name or parameter when it is unknown, of the wrong type
/// or out of range, or when a file it names (a TorchScript model) cannot be loaded.
pub fn build_model(spec: &Value) -> Result<Box<dyn Model>> {
    crate::rng::with_rng(None, || build_model_unlocked(spec))
}

fn build_model_unlocked(spec: &Value) -> Result<Box<dyn Model>> {
    let (name, params) = split_spec("model", spec)?;
    let entry = MODELS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::UnknownName {
            kind: "model",
            name: name.clone(),
            valid: names(MODELS, |e| e.name),
        })?;
    let p = Params::new(&name, (entry.params)(), params)?;
    (entry.build)(&p)
}

/// Builds a metric from a spec such as `{"name": "ssim_distance"}`; draws as
/// [`build_model`] does (`model_distance` builds its model).
///
/// # Errors
/// As [`build_model`].
pub fn build_metric(spec: &Value) -> Result<Box<dyn Metric>> {
    crate::rng::with_rng(None, || build_metric_unlocked(spec))
}

fn build_metric_unlocked(spec: &Value) -> Result<Box<dyn Metric>> {
    let (name, params) = split_spec("metric", spec)?;
    let entry = METRICS
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| ModelError::UnknownName {
            kind: "metric",
            name: name.clone(),
            valid: names(METRICS, |e| e.name),
        })?;
    let p = Params::new(&name, (entry.params)(), params)?;
    (entry.build)(&p)
}

/// The spec with every default filled in: what a task records as "the resolved model".
/// `kind` is `model` (anything else: `metric`).
///
/// # Errors
/// [`ModelError`] for a spec that is not an object with a known `name`, an unknown
/// parameter, or per-channel lists that disagree with each other or with `out_channels`.
pub fn resolve_spec(kind: &str, spec: &Value) -> Result<Value> {
    let (name, mut params) = split_spec(kind, spec)?;
    let docs = match kind {
        "model" => MODELS.iter().find(|e| e.name == name).map(|e| (e.params)()),
        _ => METRICS
            .iter()
            .find(|e| e.name == name)
            .map(|e| (e.params)()),
    };
    let Some(docs) = docs else {
        // Let the builder produce the standard message.
        return Err(match kind {
            "model" => build_model(spec).err(),
            _ => build_metric(spec).err(),
        }
        .unwrap_or_else(|| ModelError::Spec(format!("unknown {kind} {name}"))));
    };
    let given = Params::new(&name, docs, params.clone())?;
    if kind == "model" {
        // "inferred" resolves to the number it infers (equal filters, equal specs); lists
        // that disagree with each other or with out_channels are refused here already.
        if let Some(n) = crate::per_channel::inferred_out_channels(&name, &given)? {
            params.insert("out_channels".into(), n.into());
        }
    }
    for d in docs {
        if !params.contains_key(d.name) {
            let v: Value = serde_json::from_str(d.default).expect("valid default");
            params.insert(d.name.to_string(), v);
        }
    }
    if kind == "model" && name == "torchscript" && params.get("sha256").is_none_or(|v| v.is_null())
    {
        // A user model's identity is its content, not its path.
        if let Some(path) = params.get("path").and_then(|v| v.as_str()) {
            let digest = torchscript::file_sha256(path.as_ref())
                .map_err(|e| ModelError::invalid("torchscript", "path", format!("{path}: {e}")))?;
            params.insert("sha256".into(), digest.into());
        }
    }
    if kind == "metric" {
        if let Some(m) = params.get("model").cloned() {
            if !m.is_null() {
                params.insert("model".into(), resolve_spec("model", &m)?);
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert("name".into(), Value::String(name));
    out.extend(params);
    Ok(Value::Object(out))
}
