//! Each synthesis kind's task parameters: which keys exist (from the synth crate's option
//! structs and their defaults, the one source of truth), validation, and defaults filled in.
//! This is the `Resolver` the sweep crate calls while it plans.
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{Map, Value};
use synthsweep_models::resolve_spec;
use synthsweep_sweep::{Resolver, SynthKind};
use synthsweep_synth::eigendistortion::Method;
use synthsweep_synth::{CoarseToFine, OptimizerConfig};
use synthsweep_synth::{
    CtfSynthesizeOptions, GeodesicOptions, GeodesicSynthesizeOptions, MadOptions, MetamerOptions,
    SynthesizeOptions,
};

/// Eigendistortion's `synthesize` arguments with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EigenParams {
    /// `exact`, `power` or `randomized_svd`.
    pub method: String,
    pub k: usize,
    pub p: usize,
    pub q: usize,
    pub max_iter: usize,
    pub stop_criterion: f64,
}

impl Default for EigenParams {
    fn default() -> Self {
        EigenParams {
            method: "power".into(),
            k: 1,
            p: 5,
            q: 2,
            max_iter: 1000,
            stop_criterion: 1e-7,
        }
    }
}

impl EigenParams {
    pub fn method(&self) -> Result<Method, String> {
        match self.method.as_str() {
            "exact" => Ok(Method::Exact),
            "power" => Ok(Method::Power {
                k: self.k,
                max_iter: self.max_iter,
                stop_criterion: self.stop_criterion,
            }),
            "randomized_svd" => Ok(Method::RandomizedSvd {
                k: self.k,
                p: self.p,
                q: self.q,
            }),
            other => Err(format!(
                "method: expected exact, power or randomized_svd, got {other:?}"
            )),
        }
    }
}

/// MetamerCTF's constructor-only argument.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtfParams {
    pub coarse_to_fine: CoarseToFine,
}

/// SimpleMetamer's `synthesize` arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimpleParams {
    pub max_iter: usize,
    pub optimizer: Option<OptimizerConfig>,
}

impl Default for SimpleParams {
    fn default() -> Self {
        SimpleParams {
            max_iter: 100,
            optimizer: None,
        }
    }
}

/// A kind's parameters: named parts, each a serde struct with defaults.
type Part = (&'static str, fn() -> Value);

fn defaults_of<T: Default + Serialize>() -> Value {
    let mut v = serde_json::to_value(T::default()).expect("options serialize");
    // The seed is an input of every task, not a method parameter.
    if let Value::Object(m) = &mut v {
        m.remove("seed");
    }
    v
}

fn parts(kind: SynthKind) -> &'static [Part] {
    match kind {
        SynthKind::Mad => &[
            ("mad", defaults_of::<MadOptions>),
            ("synthesize", defaults_of::<SynthesizeOptions>),
        ],
        SynthKind::Metamer => &[
            ("metamer", defaults_of::<MetamerOptions>),
            ("synthesize", defaults_of::<SynthesizeOptions>),
        ],
        SynthKind::MetamerCtf => &[
            ("metamer", defaults_of::<MetamerOptions>),
            ("ctf", defaults_of::<CtfParams>),
            ("synthesize", defaults_of::<CtfSynthesizeOptions>),
        ],
        SynthKind::SimpleMetamer => &[("synthesize", defaults_of::<SimpleParams>)],
        SynthKind::Eigendistortion => &[("synthesize", defaults_of::<EigenParams>)],
        SynthKind::Geodesic => &[
            ("geodesic", defaults_of::<GeodesicOptions>),
            ("synthesize", defaults_of::<GeodesicSynthesizeOptions>),
        ],
        SynthKind::Score => &[],
    }
}

/// Every parameter name a kind accepts, sorted.
pub fn valid_keys(kind: SynthKind) -> Vec<String> {
    let mut keys: Vec<String> = parts(kind)
        .iter()
        .flat_map(|(_, d)| {
            d().as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Splits `params` over the kind's parts, checks each with its struct, and returns the
/// parameters with every default filled in.
pub fn resolve_params(
    kind: SynthKind,
    params: &Map<String, Value>,
) -> Result<Map<String, Value>, String> {
    let parts = parts(kind);
    let defaults: Vec<(&str, Map<String, Value>)> = parts
        .iter()
        .map(|(n, d)| (*n, d().as_object().cloned().unwrap_or_default()))
        .collect();
    for key in params.keys() {
        if !defaults.iter().any(|(_, d)| d.contains_key(key)) {
            let valid = valid_keys(kind);
            let valid = if valid.is_empty() {
                "(none)".to_string()
            } else {
                valid.join(", ")
            };
            return Err(format!(
                "unknown parameter `{key}` for synth `{}`; valid parameters: {valid}",
                kind_name(kind)
            ));
        }
    }
    let mut out = Map::new();
    for (part, d) in &defaults {
        let mut given = Map::new();
        for key in d.keys() {
            if let Some(v) = params.get(key) {
                given.insert(key.clone(), v.clone());
            }
        }
        let checked = check_part(kind, part, Value::Object(given))?;
        out.extend(checked);
    }
    Ok(out)
}

fn check_part(kind: SynthKind, part: &str, given: Value) -> Result<Map<String, Value>, String> {
    fn round<T: DeserializeOwned + Serialize>(v: Value) -> Result<Value, String> {
        let t: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
        Ok(serde_json::to_value(t).expect("options serialize"))
    }
    let v = match (kind, part) {
        (SynthKind::Mad, "mad") => round::<MadOptions>(given),
        (SynthKind::Metamer | SynthKind::MetamerCtf, "metamer") => round::<MetamerOptions>(given),
        (SynthKind::MetamerCtf, "ctf") => round::<CtfParams>(given),
        (SynthKind::MetamerCtf, "synthesize") => round::<CtfSynthesizeOptions>(given),
        (SynthKind::Mad | SynthKind::Metamer, "synthesize") => round::<SynthesizeOptions>(given),
        (SynthKind::SimpleMetamer, _) => round::<SimpleParams>(given),
        (SynthKind::Eigendistortion, _) => {
            let p: EigenParams = serde_json::from_value(given).map_err(|e| e.to_string())?;
            p.method()?;
            Ok(serde_json::to_value(p).expect("serialize"))
        }
        (SynthKind::Geodesic, "geodesic") => round::<GeodesicOptions>(given),
        (SynthKind::Geodesic, _) => round::<GeodesicSynthesizeOptions>(given),
        _ => unreachable!("no part {part} for {kind:?}"),
    }
    .map_err(|e| format!("synth `{}` parameters: {e}", kind_name(kind)))?;
    let mut m = v.as_object().cloned().unwrap_or_default();
    m.remove("seed");
    Ok(m)
}

/// Deserializes one part of a task's resolved parameters.
pub fn part<T: DeserializeOwned>(params: &Map<String, Value>, keys_of: Value) -> Result<T, String> {
    let mut sub = Map::new();
    if let Value::Object(d) = keys_of {
        for k in d.keys() {
            if let Some(v) = params.get(k) {
                sub.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(Value::Object(sub)).map_err(|e| e.to_string())
}

/// The options struct `T` from a task's parameters (keys `T` does not have are ignored).
pub fn options<T: DeserializeOwned + Default + Serialize>(
    params: &Map<String, Value>,
) -> Result<T, String> {
    part(params, defaults_of::<T>())
}

pub fn kind_name(kind: SynthKind) -> &'static str {
    match kind {
        SynthKind::Mad => "mad",
        SynthKind::Eigendistortion => "eigendistortion",
        SynthKind::Metamer => "metamer",
        SynthKind::MetamerCtf => "metamer_ctf",
        SynthKind::SimpleMetamer => "simple_metamer",
        SynthKind::Geodesic => "geodesic",
        SynthKind::Score => "score",
    }
}

/// Resolves models, metrics and parameters against the registries of the libtorch layer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskResolver;

impl Resolver for TaskResolver {
    // Building once checks values too (ranges, files), not only names; the sweep crate
    // resolves each distinct spec once.
    fn resolve_model(&self, spec: &Value) -> Result<Value, String> {
        synthsweep_models::build_model(spec).map_err(|e| e.to_string())?;
        resolve_spec("model", spec).map_err(|e| e.to_string())
    }
    fn resolve_metric(&self, spec: &Value) -> Result<Value, String> {
        synthsweep_models::build_metric(spec).map_err(|e| e.to_string())?;
        resolve_spec("metric", spec).map_err(|e| e.to_string())
    }
    fn resolve_params(
        &self,
        synth: SynthKind,
        params: &Map<String, Value>,
    ) -> Result<Map<String, Value>, String> {
        resolve_params(synth, params)
    }
}
