//! One typed value per synthesis kind: the constructor and `synthesize()` arguments a task
//! of that kind runs with, every default filled in and the default optimizer made explicit.
use super::optim::OptimizerConfig;
use super::options::{
    geodesic_defaults, CoarseToFine, GeodesicOptions, GeodesicSynthesizeOptions, MadOptions,
    MetamerOptions, Method,
};
use super::synthesize::{CtfSynthesizeOptions, SynthesizeOptions};
use crate::error::ParamError;

/// plenoptic's learning rate for Adam when no optimizer is given (metamers, MAD).
pub const DEFAULT_LR: f64 = 0.01;

/// `MADCompetition(image, optimized_metric, reference_metric, minmax, **options)` then
/// `synthesize(**synthesize)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MadParams {
    pub options: MadOptions,
    /// `optimizer` is always given: plenoptic's Adam(lr 0.01, amsgrad) when the spec has none.
    pub synthesize: SynthesizeOptions,
}

/// `Metamer(image, model, **options)` then `synthesize(**synthesize)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetamerParams {
    pub options: MetamerOptions,
    /// `optimizer` is always given (Adam, lr 0.01, when the spec has none).
    pub synthesize: SynthesizeOptions,
}

/// `MetamerCTF(image, model, coarse_to_fine=..., **options)` then `synthesize(**synthesize)`.
#[derive(Clone, Debug, PartialEq)]
pub struct MetamerCtfParams {
    pub options: MetamerOptions,
    pub coarse_to_fine: CoarseToFine,
    /// `optimizer` is always given (Adam, lr 0.01, when the spec has none).
    pub synthesize: CtfSynthesizeOptions,
}

/// `SimpleMetamer(image, model)` then `synthesize(max_iter, optimizer)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SimpleMetamerParams {
    /// Iterations to run.
    pub max_iter: usize,
    /// Adam(lr 0.01, amsgrad) when the spec has none.
    pub optimizer: OptimizerConfig,
}

impl Default for SimpleMetamerParams {
    fn default() -> Self {
        SimpleMetamerParams {
            max_iter: 100,
            optimizer: OptimizerConfig::adam_with_lr(DEFAULT_LR),
        }
    }
}

/// `Eigendistortion(image, model).synthesize(method, k, max_iter, p, q, stop_criterion)`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EigendistortionParams {
    pub method: Method,
}

/// `Geodesic(image_a, image_b, model, **options)` then `synthesize(**synthesize)`.
#[derive(Clone, Debug, PartialEq)]
pub struct GeodesicParams {
    pub options: GeodesicOptions,
    /// `optimizer` is always given: Adam(lr 0.001, amsgrad) when the spec has none.
    pub synthesize: GeodesicSynthesizeOptions,
}

/// A metric between two images: nothing to set.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ScoreParams;

fn explicit(o: &Option<OptimizerConfig>, lr: f64) -> Option<OptimizerConfig> {
    Some(
        o.as_ref()
            .map(OptimizerConfig::canonical)
            .unwrap_or_else(|| OptimizerConfig::adam_with_lr(lr)),
    )
}

impl Default for MadParams {
    fn default() -> Self {
        MadParams {
            options: MadOptions::default(),
            synthesize: SynthesizeOptions::default(),
        }
        .canonical()
    }
}

impl MadParams {
    pub(crate) fn canonical(mut self) -> Self {
        self.synthesize.optimizer = explicit(&self.synthesize.optimizer, DEFAULT_LR);
        self
    }

    /// # Errors
    /// See [`MadOptions::validate`] and [`SynthesizeOptions::validate`].
    pub fn validate(&self) -> Result<(), ParamError> {
        self.options.validate()?;
        self.synthesize.validate()
    }
}

impl Default for MetamerParams {
    fn default() -> Self {
        MetamerParams {
            options: MetamerOptions::default(),
            synthesize: SynthesizeOptions::default(),
        }
        .canonical()
    }
}

impl MetamerParams {
    pub(crate) fn canonical(mut self) -> Self {
        self.synthesize.optimizer = explicit(&self.synthesize.optimizer, DEFAULT_LR);
        self
    }

    /// # Errors
    /// See [`MetamerOptions::validate`] and [`SynthesizeOptions::validate`].
    pub fn validate(&self) -> Result<(), ParamError> {
        self.options.validate()?;
        self.synthesize.validate()
    }
}

impl Default for MetamerCtfParams {
    fn default() -> Self {
        MetamerCtfParams {
            options: MetamerOptions::default(),
            coarse_to_fine: CoarseToFine::default(),
            synthesize: CtfSynthesizeOptions::default(),
        }
        .canonical()
    }
}

impl MetamerCtfParams {
    pub(crate) fn canonical(mut self) -> Self {
        self.synthesize.optimizer = explicit(&self.synthesize.optimizer, DEFAULT_LR);
        self
    }

    /// # Errors
    /// See [`MetamerOptions::validate`] and [`CtfSynthesizeOptions::validate`].
    pub fn validate(&self) -> Result<(), ParamError> {
        self.options.validate()?;
        self.synthesize.validate()
    }
}

impl SimpleMetamerParams {
    /// # Errors
    /// The optimizer's checks.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.optimizer.validate()
    }
}

impl EigendistortionParams {
    /// # Errors
    /// See [`Method::validate`].
    pub fn validate(&self) -> Result<(), ParamError> {
        self.method.validate()
    }
}

impl Default for GeodesicParams {
    fn default() -> Self {
        GeodesicParams {
            options: GeodesicOptions::default(),
            synthesize: GeodesicSynthesizeOptions::default(),
        }
        .canonical()
    }
}

impl GeodesicParams {
    pub(crate) fn canonical(mut self) -> Self {
        self.synthesize.optimizer =
            explicit(&self.synthesize.optimizer, geodesic_defaults::LEARNING_RATE);
        self
    }

    /// # Errors
    /// See [`GeodesicOptions::validate`] and [`GeodesicSynthesizeOptions::validate`].
    pub fn validate(&self) -> Result<(), ParamError> {
        self.options.validate()?;
        self.synthesize.validate()
    }
}
