//! A task: one synthesis to run, fully resolved, with a stable id.
//!
//! Identity: `id` is the hex SHA-256 of [`Task::canonical_json`], a description of what is
//! computed and nothing else: the schema tag, the method, each image's file name and content
//! digest (and `as_gray`, unless a gray file is loaded as gray), the resolved model/metric
//! specs (a TorchScript model by its file's name and content digest, like an image, not by
//! its path as typed), `minmax`, the seed and the method parameters in the canonical form of their typed
//! value ([`MethodParams::canonical_json`]). Left out on purpose: the sweep's name, the
//! task's index, the image's folder, and how the spec was written (axis vs fixed, key order,
//! `1` vs `1.0`, `true` vs `1` for `store_progress`, defaults given or left out, plenoptic's
//! default optimizer named or not, arguments the method ignores). So the same task has the
//! same id on every run and machine, in any sweep, after the image folder moves; changing an
//! image's bytes or name, a parameter, a model or metric parameter, or the seed changes it.
use crate::canonical::{self, write_string};
use crate::images::ImageRef;
use crate::values::short_value;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use synthsweep_core::params::MethodParams;
use synthsweep_core::{MinMax, SynthKind};

/// Version tag inside every canonical description; bump it to change every id on purpose
/// (when the meaning of a description changes). `/2`: method parameters in the canonical
/// form of their typed value (every default, the default optimizer explicit).
pub const TASK_SCHEMA: &str = "synthsweep.task/2";

/// The image(s) of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskImages {
    /// `image` (MAD, eigendistortion, metamers).
    One(Arc<ImageRef>),
    /// `image_a`, `image_b` (geodesic, score).
    Pair(Arc<ImageRef>, Arc<ImageRef>),
}

impl TaskImages {
    /// All images, in order (`image`, or `image_a` then `image_b`).
    pub fn all(&self) -> Vec<&ImageRef> {
        match self {
            TaskImages::One(a) => vec![a],
            TaskImages::Pair(a, b) => vec![a, b],
        }
    }
}

/// One synthesis, fully resolved. Which optional fields are set depends on `synth`:
/// MAD has `optimized_metric`, `reference_metric` and `minmax`; eigendistortion, the three
/// metamers and geodesic have `model`; score has `metric`. Geodesic and score have
/// [`TaskImages::Pair`], the others [`TaskImages::One`].
#[derive(Debug, Clone)]
pub struct Task {
    /// Position in the full grid (before exclusions), slowest axis first. Excluded
    /// positions are gaps, so adding an exclusion does not renumber other tasks.
    pub index: u64,
    pub sweep: Arc<str>,
    pub synth: SynthKind,
    pub images: TaskImages,
    pub model: Option<Arc<Value>>,
    pub metric: Option<Arc<Value>>,
    pub optimized_metric: Option<Arc<Value>>,
    pub reference_metric: Option<Arc<Value>>,
    pub minmax: Option<MinMax>,
    /// 0 unless the spec gives `seed` or `repeats`.
    pub seed: u64,
    /// How to load the images: plenoptic's `load_images(paths, as_gray)` (default true).
    pub as_gray: bool,
    /// The method's parameters, typed, every default filled in and checked.
    pub params: Arc<MethodParams>,
    /// The value of every axis column for this task, as written in the spec (images as
    /// paths relative to the spec folder), slowest axis first: labels for outputs.
    pub coords: Vec<(Arc<str>, Value)>,
    pub(crate) canonical: String,
    pub(crate) id: String,
}

impl Task {
    /// Hex SHA-256 of [`Task::canonical_json`] (64 characters).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The first 12 characters of the id, for file names and logs.
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }

    /// The description the id is the hash of: sorted keys, no whitespace, numbers in one
    /// form (see the module docs of `canonical`).
    pub fn canonical_json(&self) -> &str {
        &self.canonical
    }

    /// The (first) image.
    pub fn image(&self) -> &ImageRef {
        match &self.images {
            TaskImages::One(a) | TaskImages::Pair(a, _) => a,
        }
    }

    /// A short human label: `einstein_64.pgm mse/ssim_distance min seed=0`.
    pub fn label(&self) -> String {
        let mut parts: Vec<String> = self.images.all().iter().map(|i| i.name.clone()).collect();
        if let Some(m) = &self.model {
            parts.push(short_value(m));
        }
        if let Some(m) = &self.metric {
            parts.push(short_value(m));
        }
        if let (Some(a), Some(b)) = (&self.optimized_metric, &self.reference_metric) {
            parts.push(format!("{}/{}", short_value(a), short_value(b)));
        }
        if let Some(mm) = self.minmax {
            parts.push(mm.to_string());
        }
        parts.push(format!("seed={}", self.seed));
        parts.join(" ")
    }

    /// Everything about the task as JSON (identity, inputs with their paths, coords): for
    /// manifests and logs. Its `description` field is the canonical description, parsed.
    pub fn to_json(&self) -> Value {
        let coords: Map<String, Value> = self
            .coords
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        json!({
            "id": self.id,
            "index": self.index,
            "sweep": &*self.sweep,
            "synth": self.synth,
            "images": self.images.all(),
            "coords": coords,
            "description": serde_json::from_str::<Value>(&self.canonical).unwrap_or(Value::Null),
        })
    }
}

/// What a canonical description is made of (fragments already in canonical form).
pub(crate) struct Description<'a> {
    pub synth: SynthKind,
    /// `(role name, canonical text)` of the images and the resolved model/metric specs.
    pub parts: Vec<(&'static str, &'a str)>,
    pub minmax: Option<MinMax>,
    pub seed: u64,
    /// [`MethodParams::canonical_json`].
    pub params: &'a str,
}

/// `{"name":...,"sha256":...}`: how an image enters a description, with `"as_gray"` added
/// unless the file is plain gray and loaded as gray (what synthsweep always did: such tasks
/// keep their ids, while a colour file or `as_gray = false` gets an id of its own).
pub(crate) fn image_canonical(img: &ImageRef, as_gray: bool) -> String {
    let mut out = String::from("{");
    if !(as_gray && img.channels == 1) {
        out.push_str(if as_gray {
            "\"as_gray\":true,"
        } else {
            "\"as_gray\":false,"
        });
    }
    out.push_str("\"name\":");
    write_string(&mut out, &img.name);
    out.push_str(",\"sha256\":");
    write_string(&mut out, &img.sha256);
    out.push('}');
    out
}

impl Description<'_> {
    /// `(canonical text, id)`.
    pub fn render(self) -> (String, String) {
        let params = self.params;
        let seed = self.seed.to_string();
        let minmax = self.minmax.map(|m| format!("\"{m}\""));
        let synth = format!("\"{}\"", self.synth);
        let schema = format!("\"{TASK_SCHEMA}\"");
        let mut fields = self.parts;
        if let Some(m) = &minmax {
            fields.push(("minmax", m));
        }
        fields.push(("params", params));
        fields.push(("schema", &schema));
        fields.push(("seed", &seed));
        fields.push(("synth", &synth));
        // Keys are ASCII, so byte order is the order `canonical_json` sorts objects in.
        fields.sort_unstable_by(|a, b| a.0.cmp(b.0));

        let mut out = String::with_capacity(
            fields
                .iter()
                .map(|f| f.0.len() + f.1.len() + 4)
                .sum::<usize>()
                + 2,
        );
        out.push('{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
            out.push_str(v);
        }
        out.push('}');
        let id = canonical::sha256_hex(out.as_bytes());
        (out, id)
    }
}
