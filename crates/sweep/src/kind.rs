//! The synthesis methods a sweep can run, and the inputs ("roles") each one takes: the
//! parameters that become typed fields of a task instead of method parameters.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which synthesis a sweep runs (the spec's `synth = "..."`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthKind {
    /// plenoptic's `MADCompetition`.
    Mad,
    /// plenoptic's `Eigendistortion`.
    Eigendistortion,
    /// plenoptic's `Metamer`.
    Metamer,
    /// plenoptic's `MetamerCTF` (coarse-to-fine).
    MetamerCtf,
    /// plenoptic's `SimpleMetamer`.
    SimpleMetamer,
    /// plenoptic's `Geodesic` between two images.
    Geodesic,
    /// A metric evaluated on a pair of images (no optimisation).
    Score,
}

impl SynthKind {
    pub const ALL: [SynthKind; 7] = [
        SynthKind::Mad,
        SynthKind::Eigendistortion,
        SynthKind::Metamer,
        SynthKind::MetamerCtf,
        SynthKind::SimpleMetamer,
        SynthKind::Geodesic,
        SynthKind::Score,
    ];

    /// The spelling used in specs and outputs, e.g. `metamer_ctf`.
    pub fn as_str(self) -> &'static str {
        match self {
            SynthKind::Mad => "mad",
            SynthKind::Eigendistortion => "eigendistortion",
            SynthKind::Metamer => "metamer",
            SynthKind::MetamerCtf => "metamer_ctf",
            SynthKind::SimpleMetamer => "simple_metamer",
            SynthKind::Geodesic => "geodesic",
            SynthKind::Score => "score",
        }
    }

    /// Whether the method works on a pair of images (`image_a`, `image_b`) instead of one.
    pub fn takes_pair(self) -> bool {
        matches!(self, SynthKind::Geodesic | SynthKind::Score)
    }

    /// The inputs this method takes; all are required except `seed` (default 0) and
    /// `as_gray` (default true, plenoptic's).
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            SynthKind::Mad => &[
                Image,
                OptimizedMetric,
                ReferenceMetric,
                Minmax,
                Seed,
                AsGray,
            ],
            SynthKind::Eigendistortion
            | SynthKind::Metamer
            | SynthKind::MetamerCtf
            | SynthKind::SimpleMetamer => &[Image, Model, Seed, AsGray],
            SynthKind::Geodesic => &[ImageA, ImageB, Model, Seed, AsGray],
            SynthKind::Score => &[ImageA, ImageB, Metric, Seed, AsGray],
        }
    }

    pub(crate) fn names() -> String {
        SynthKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for SynthKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SynthKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        SynthKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown synth `{s}`; expected one of {}",
                    SynthKind::names()
                )
            })
    }
}

/// MAD's direction: minimise or maximise the optimized metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinMax {
    Min,
    Max,
}

impl MinMax {
    pub fn as_str(self) -> &'static str {
        match self {
            MinMax::Min => "min",
            MinMax::Max => "max",
        }
    }
}

impl fmt::Display for MinMax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parameter that is an input of the method rather than a setting: it becomes a typed
/// field of [`crate::Task`], and is checked here rather than by the resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Image,
    ImageA,
    ImageB,
    Model,
    Metric,
    OptimizedMetric,
    ReferenceMetric,
    Minmax,
    Seed,
    /// How the task's images are loaded: plenoptic's `load_images(paths, as_gray)`.
    AsGray,
}

impl Role {
    pub const ALL: [Role; 10] = [
        Role::Image,
        Role::ImageA,
        Role::ImageB,
        Role::Model,
        Role::Metric,
        Role::OptimizedMetric,
        Role::ReferenceMetric,
        Role::Minmax,
        Role::Seed,
        Role::AsGray,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Image => "image",
            Role::ImageA => "image_a",
            Role::ImageB => "image_b",
            Role::Model => "model",
            Role::Metric => "metric",
            Role::OptimizedMetric => "optimized_metric",
            Role::ReferenceMetric => "reference_metric",
            Role::Minmax => "minmax",
            Role::Seed => "seed",
            Role::AsGray => "as_gray",
        }
    }

    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// Inputs with a default: a task need not be given them (`seed`: 0, `as_gray`: true).
    pub fn is_optional(self) -> bool {
        matches!(self, Role::Seed | Role::AsGray)
    }

    /// Inputs that are plain values (no fields to set with `base.field`).
    pub fn is_scalar(self) -> bool {
        matches!(self, Role::Seed | Role::Minmax | Role::AsGray)
    }

    pub fn is_image(self) -> bool {
        matches!(self, Role::Image | Role::ImageA | Role::ImageB)
    }

    /// Model and metric specs: tables like `{name = "gaussian", kernel_size = 31}`.
    pub fn is_spec(self) -> bool {
        matches!(
            self,
            Role::Model | Role::Metric | Role::OptimizedMetric | Role::ReferenceMetric
        )
    }

    /// "model" or "metric", as the resolver and messages call the spec kind.
    pub(crate) fn spec_kind(self) -> &'static str {
        if self == Role::Model {
            "model"
        } else {
            "metric"
        }
    }
}
