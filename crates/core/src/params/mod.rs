//! Each synthesis kind's parameters as one typed value ([`MethodParams`]): parsed from the
//! `name = value` pairs of a spec, with plenoptic's names and defaults, checked (every
//! range, every rule relating two parameters, and what the image's size decides), and
//! written in one canonical form, so that two spellings of one computation
//! (`store_progress = true` / `1`, `lr = 1` / `1.0`, a default given or left out, no
//! optimizer / plenoptic's default optimizer, `k` given to `exact`, which ignores it) are
//! equal values with equal text.
mod kinds;
mod optim;
mod options;
mod synthesize;

pub use kinds::{
    EigendistortionParams, GeodesicParams, MadParams, MetamerCtfParams, MetamerParams, ScoreParams,
    SimpleMetamerParams, DEFAULT_LR,
};
pub use optim::{
    AdamOptions, LbfgsOptions, LineSearch, OptimizerConfig, PlateauMode, ReduceLrOnPlateauOptions,
    SchedulerConfig, SgdOptions, ThresholdMode,
};
pub use options::{
    eigendistortion_defaults, geodesic_defaults, CoarseToFine, GeodesicOptions,
    GeodesicSynthesizeOptions, InitialSequence, LossFunction, MadOptions, MetamerOptions, Method,
};
pub use synthesize::{CtfSynthesizeOptions, StoreProgress, SynthesizeOptions};

use crate::canonical;
use crate::error::ParamError;
use crate::image::ImageShape;
use crate::kind::SynthKind;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The arguments of `synthesize()` shared by MAD, Metamer and MetamerCTF.
const SYNTHESIZE: &[&str] = &[
    "max_iter",
    "optimizer",
    "scheduler",
    "store_progress",
    "stop_criterion",
    "stop_iters_to_check",
];
const CTF_SYNTHESIZE: &[&str] = &[
    "max_iter",
    "optimizer",
    "scheduler",
    "store_progress",
    "stop_criterion",
    "stop_iters_to_check",
    "change_scale_criterion",
    "ctf_iters_to_check",
];
const MAD: &[&str] = &[
    "initial_noise",
    "metric_tradeoff_lambda",
    "range_penalty_lambda",
    "allowed_range",
];
const METAMER: &[&str] = &["loss_function", "range_penalty_lambda", "allowed_range"];
const CTF: &[&str] = &["coarse_to_fine"];
const SIMPLE: &[&str] = &["max_iter", "optimizer"];
const EIGEN: &[&str] = &["method", "k", "p", "q", "max_iter", "stop_criterion"];
const GEODESIC: &[&str] = &[
    "n_steps",
    "initial_sequence",
    "range_penalty_lambda",
    "allowed_range",
];
const GEODESIC_SYNTHESIZE: &[&str] = &[
    "max_iter",
    "optimizer",
    "store_progress",
    "stop_criterion",
    "stop_iters_to_check",
];

/// The parts a kind's parameters are split into (constructor, then `synthesize`).
fn parts(kind: SynthKind) -> &'static [&'static [&'static str]] {
    match kind {
        SynthKind::Mad => &[MAD, SYNTHESIZE],
        SynthKind::Metamer => &[METAMER, SYNTHESIZE],
        SynthKind::MetamerCtf => &[METAMER, CTF, CTF_SYNTHESIZE],
        SynthKind::SimpleMetamer => &[SIMPLE],
        SynthKind::Eigendistortion => &[EIGEN],
        SynthKind::Geodesic => &[GEODESIC, GEODESIC_SYNTHESIZE],
        SynthKind::Score => &[],
    }
}

/// A task's method parameters: one variant per synthesis kind, every default filled in.
#[derive(Clone, Debug, PartialEq)]
pub enum MethodParams {
    Mad(MadParams),
    Eigendistortion(EigendistortionParams),
    Metamer(MetamerParams),
    MetamerCtf(MetamerCtfParams),
    SimpleMetamer(SimpleMetamerParams),
    Geodesic(GeodesicParams),
    Score(ScoreParams),
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct CtfPart {
    coarse_to_fine: CoarseToFine,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct SimplePart {
    max_iter: usize,
    optimizer: Option<OptimizerConfig>,
}

impl Default for SimplePart {
    fn default() -> Self {
        SimplePart {
            max_iter: SimpleMetamerParams::default().max_iter,
            optimizer: None,
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum MethodName {
    Exact,
    #[default]
    Power,
    RandomizedSvd,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EigenPart {
    method: MethodName,
    k: usize,
    p: usize,
    q: usize,
    max_iter: usize,
    stop_criterion: f64,
}

impl Default for EigenPart {
    fn default() -> Self {
        EigenPart {
            method: MethodName::Power,
            k: eigendistortion_defaults::K,
            p: eigendistortion_defaults::P,
            q: eigendistortion_defaults::Q,
            max_iter: eigendistortion_defaults::MAX_ITER,
            stop_criterion: eigendistortion_defaults::STOP_CRITERION,
        }
    }
}

/// `v` with every integral float written as an integer (`10.0` → `10`, below 2^53 where
/// floats are exact), so that an integer parameter accepts `10.0` as `10` and the value
/// has one spelling; float parameters read integers as floats anyway.
fn integral_floats_as_integers(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
                Value::from(x as i64)
            } else {
                v.clone()
            }
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(integral_floats_as_integers).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), integral_floats_as_integers(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Deserializes the pairs named in `fields` as a `T`. A failure is blamed on the first
/// pair that fails alone (serde's messages do not name the field).
fn part<T: DeserializeOwned>(given: &[(&str, &Value)], fields: &[&str]) -> Result<T, ParamError> {
    let map: Map<String, Value> = given
        .iter()
        .filter(|(k, _)| fields.contains(k))
        .map(|(k, v)| (k.to_string(), integral_floats_as_integers(v)))
        .collect();
    let fails = |k: &String, v: &Value| {
        let one: Map<String, Value> = [(k.clone(), v.clone())].into_iter().collect();
        serde_json::from_value::<T>(Value::Object(one)).err()
    };
    serde_json::from_value::<T>(Value::Object(map.clone())).map_err(|whole| {
        for (k, v) in &map {
            let Some(e) = fails(k, v) else { continue };
            // A table (`optimizer = {name = "adam", lr = "fast"}`): name the field to blame,
            // tried one at a time beside the table's `name`.
            if let Value::Object(inner) = v {
                for (f, fv) in inner.iter().filter(|(f, _)| f.as_str() != "name") {
                    let mut one: Map<String, Value> = inner
                        .iter()
                        .filter(|(n, _)| n.as_str() == "name")
                        .map(|(n, x)| (n.clone(), x.clone()))
                        .collect();
                    one.insert(f.clone(), fv.clone());
                    if let Some(e) = fails(k, &Value::Object(one)) {
                        return ParamError::new(format!("{k}.{f}"), plain_serde(&e.to_string()));
                    }
                }
            }
            return ParamError::new(k.clone(), plain_serde(&e.to_string()));
        }
        ParamError::new(
            fields.first().copied().unwrap_or(""),
            plain_serde(&whole.to_string()),
        )
    })
}

/// serde's message with its Rust type names said in a spec's terms ("expected usize" ->
/// "expected a whole number >= 0", "expected f64" -> "expected a number").
fn plain_serde(msg: &str) -> String {
    for (rust, plain) in [
        ("usize", "a whole number >= 0"),
        ("u64", "a whole number >= 0"),
        ("u32", "a whole number >= 0"),
        ("u16", "a whole number >= 0"),
        ("u8", "a whole number >= 0"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
    ] {
        if let Some(head) = msg.strip_suffix(&format!("expected {rust}")) {
            return format!("{head}expected {plain}");
        }
    }
    msg.to_string()
}

impl MethodParams {
    /// plenoptic's defaults for `kind`.
    pub fn defaults(kind: SynthKind) -> MethodParams {
        match kind {
            SynthKind::Mad => MethodParams::Mad(MadParams::default()),
            SynthKind::Eigendistortion => {
                MethodParams::Eigendistortion(EigendistortionParams::default())
            }
            SynthKind::Metamer => MethodParams::Metamer(MetamerParams::default()),
            SynthKind::MetamerCtf => MethodParams::MetamerCtf(MetamerCtfParams::default()),
            SynthKind::SimpleMetamer => MethodParams::SimpleMetamer(SimpleMetamerParams::default()),
            SynthKind::Geodesic => MethodParams::Geodesic(GeodesicParams::default()),
            SynthKind::Score => MethodParams::Score(ScoreParams),
        }
    }

    /// The kind these parameters are for.
    pub fn kind(&self) -> SynthKind {
        match self {
            MethodParams::Mad(_) => SynthKind::Mad,
            MethodParams::Eigendistortion(_) => SynthKind::Eigendistortion,
            MethodParams::Metamer(_) => SynthKind::Metamer,
            MethodParams::MetamerCtf(_) => SynthKind::MetamerCtf,
            MethodParams::SimpleMetamer(_) => SynthKind::SimpleMetamer,
            MethodParams::Geodesic(_) => SynthKind::Geodesic,
            MethodParams::Score(_) => SynthKind::Score,
        }
    }

    /// Every parameter name `kind` accepts, sorted.
    pub fn names(kind: SynthKind) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = parts(kind).iter().flat_map(|p| p.iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Parses `kind`'s parameters from `name = value` pairs (as written in a spec; omitted
    /// ones take plenoptic's defaults), then checks them ([`MethodParams::validate`]).
    ///
    /// # Errors
    /// An unknown name (the message lists the valid ones), a value of the wrong type, a
    /// value out of range, or a rule between two values broken; the error names the
    /// parameter (`optimizer.lr`).
    pub fn from_values<'a>(
        kind: SynthKind,
        values: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<MethodParams, ParamError> {
        let given: Vec<(&str, &Value)> = values.into_iter().collect();
        let valid = MethodParams::names(kind);
        for (k, _) in &given {
            if !valid.contains(k) {
                let list = if valid.is_empty() {
                    "(none)".to_string()
                } else {
                    valid.join(", ")
                };
                return Err(ParamError::new(
                    *k,
                    format!("unknown parameter for synth `{kind}`; valid parameters: {list}"),
                ));
            }
        }
        let p = match kind {
            SynthKind::Mad => MethodParams::Mad(
                MadParams {
                    options: part(&given, MAD)?,
                    synthesize: part(&given, SYNTHESIZE)?,
                }
                .canonical(),
            ),
            SynthKind::Metamer => MethodParams::Metamer(
                MetamerParams {
                    options: part(&given, METAMER)?,
                    synthesize: part(&given, SYNTHESIZE)?,
                }
                .canonical(),
            ),
            SynthKind::MetamerCtf => MethodParams::MetamerCtf(
                MetamerCtfParams {
                    options: part(&given, METAMER)?,
                    coarse_to_fine: part::<CtfPart>(&given, CTF)?.coarse_to_fine,
                    synthesize: part(&given, CTF_SYNTHESIZE)?,
                }
                .canonical(),
            ),
            SynthKind::SimpleMetamer => {
                let s: SimplePart = part(&given, SIMPLE)?;
                MethodParams::SimpleMetamer(SimpleMetamerParams {
                    max_iter: s.max_iter,
                    optimizer: s
                        .optimizer
                        .map(|o| o.canonical())
                        .unwrap_or_else(|| OptimizerConfig::adam_with_lr(DEFAULT_LR)),
                })
            }
            SynthKind::Eigendistortion => {
                let e: EigenPart = part(&given, EIGEN)?;
                let method = match e.method {
                    MethodName::Exact => Method::Exact,
                    MethodName::Power => Method::Power {
                        k: e.k,
                        max_iter: e.max_iter,
                        stop_criterion: e.stop_criterion,
                    },
                    MethodName::RandomizedSvd => Method::RandomizedSvd {
                        k: e.k,
                        p: e.p,
                        q: e.q,
                    },
                };
                MethodParams::Eigendistortion(EigendistortionParams { method })
            }
            SynthKind::Geodesic => MethodParams::Geodesic(
                GeodesicParams {
                    options: part(&given, GEODESIC)?,
                    synthesize: part(&given, GEODESIC_SYNTHESIZE)?,
                }
                .canonical(),
            ),
            SynthKind::Score => MethodParams::Score(ScoreParams),
        };
        p.validate()?;
        Ok(p)
    }

    /// Every range and every rule relating two parameters (see each kind's `validate`).
    ///
    /// # Errors
    /// The first value or rule broken, naming the parameter(s).
    pub fn validate(&self) -> Result<(), ParamError> {
        match self {
            MethodParams::Mad(p) => p.validate(),
            MethodParams::Eigendistortion(p) => p.validate(),
            MethodParams::Metamer(p) => p.validate(),
            MethodParams::MetamerCtf(p) => p.validate(),
            MethodParams::SimpleMetamer(p) => p.validate(),
            MethodParams::Geodesic(p) => p.validate(),
            MethodParams::Score(_) => Ok(()),
        }
    }

    /// The rules the task's images decide, given their shapes as loaded (`image`, or
    /// `image_a` then `image_b`): a pair must have one shape (geodesic, score);
    /// eigendistortion's `k` cannot exceed the image's C·H·W values, and `exact` refuses an
    /// image whose Fisher matrix would be too large.
    ///
    /// # Errors
    /// The parameter (or `image_b`) that does not fit the images.
    pub fn check_images(&self, images: &[ImageShape]) -> Result<(), ParamError> {
        if let [a, b] = images {
            if a != b {
                return Err(ParamError::relating(
                    "image_b",
                    &["image_a"],
                    format!("has shape {b} (C×H×W), but image_a has {a}: the two images of a pair must have one shape"),
                ));
            }
        }
        if let (MethodParams::Eigendistortion(p), Some(img)) = (self, images.first()) {
            p.method.check_size(img.numel())?;
        }
        Ok(())
    }

    /// The inclusive pixel range the input images must lie in, for kinds that have one.
    pub fn allowed_range(&self) -> Option<(f64, f64)> {
        match self {
            MethodParams::Mad(p) => Some(p.options.allowed_range),
            MethodParams::Metamer(p) => Some(p.options.allowed_range),
            MethodParams::MetamerCtf(p) => Some(p.options.allowed_range),
            MethodParams::Geodesic(p) => Some(p.options.allowed_range),
            _ => None,
        }
    }

    /// The iteration budget (eigendistortion: the power method's, per phase); `None` for
    /// kinds and methods without one.
    pub fn max_iter(&self) -> Option<usize> {
        match self {
            MethodParams::Mad(p) => Some(p.synthesize.max_iter),
            MethodParams::Metamer(p) => Some(p.synthesize.max_iter),
            MethodParams::MetamerCtf(p) => Some(p.synthesize.max_iter),
            MethodParams::SimpleMetamer(p) => Some(p.max_iter),
            MethodParams::Geodesic(p) => Some(p.synthesize.max_iter),
            MethodParams::Eigendistortion(EigendistortionParams {
                method: Method::Power { max_iter, .. },
            }) => Some(*max_iter),
            _ => None,
        }
    }

    /// The same parameters with another iteration budget (for a short calibration run);
    /// no change where [`MethodParams::max_iter`] is `None`.
    pub fn with_max_iter(&self, n: usize) -> MethodParams {
        let mut p = self.clone();
        match &mut p {
            MethodParams::Mad(p) => p.synthesize.max_iter = n,
            MethodParams::Metamer(p) => p.synthesize.max_iter = n,
            MethodParams::MetamerCtf(p) => p.synthesize.max_iter = n,
            MethodParams::SimpleMetamer(p) => p.max_iter = n,
            MethodParams::Geodesic(p) => p.synthesize.max_iter = n,
            MethodParams::Eigendistortion(EigendistortionParams {
                method: Method::Power { max_iter, .. },
            }) => *max_iter = n,
            _ => {}
        }
        p
    }

    /// The parameters as a JSON object with the spec's flat names: every parameter the
    /// method reads, defaults filled in (`null` for an unset optional), nothing it ignores.
    pub fn to_json(&self) -> Map<String, Value> {
        fn merge(out: &mut Map<String, Value>, v: &impl Serialize) {
            if let Value::Object(m) = serde_json::to_value(v).expect("parameters serialize") {
                out.extend(m);
            }
        }
        let mut out = Map::new();
        match self {
            MethodParams::Mad(p) => {
                merge(&mut out, &p.options);
                merge(&mut out, &p.synthesize);
            }
            MethodParams::Metamer(p) => {
                merge(&mut out, &p.options);
                merge(&mut out, &p.synthesize);
            }
            MethodParams::MetamerCtf(p) => {
                merge(&mut out, &p.options);
                out.insert(
                    "coarse_to_fine".into(),
                    serde_json::to_value(p.coarse_to_fine).expect("serialize"),
                );
                merge(&mut out, &p.synthesize);
            }
            MethodParams::SimpleMetamer(p) => {
                out.insert("max_iter".into(), p.max_iter.into());
                out.insert(
                    "optimizer".into(),
                    serde_json::to_value(&p.optimizer).expect("serialize"),
                );
            }
            MethodParams::Eigendistortion(p) => {
                out.insert("method".into(), p.method.name().into());
                match p.method {
                    Method::Exact => {}
                    Method::Power {
                        k,
                        max_iter,
                        stop_criterion,
                    } => {
                        out.insert("k".into(), k.into());
                        out.insert("max_iter".into(), max_iter.into());
                        out.insert("stop_criterion".into(), stop_criterion.into());
                    }
                    Method::RandomizedSvd { k, p, q } => {
                        out.insert("k".into(), k.into());
                        out.insert("p".into(), p.into());
                        out.insert("q".into(), q.into());
                    }
                }
            }
            MethodParams::Geodesic(p) => {
                merge(&mut out, &p.options);
                merge(&mut out, &p.synthesize);
            }
            MethodParams::Score(_) => {}
        }
        out
    }

    /// [`MethodParams::to_json`] as canonical JSON: the text task identity hashes.
    pub fn canonical_json(&self) -> String {
        let mut s = String::with_capacity(256);
        canonical::write_object(&mut s, &self.to_json());
        s
    }
}

#[cfg(test)]
mod tests;
