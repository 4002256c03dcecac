//! The arguments of `synthesize()` shared by MAD competition, Metamer and MetamerCTF
//! (plenoptic's `OptimizedSynthesis.synthesize`), with plenoptic's defaults and checks.
use super::optim::{OptimizerConfig, SchedulerConfig};
use crate::error::{at_least_one, non_negative, ParamError};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// `store_progress`: `false`/`0` stores nothing, `true`/`1` every iteration, `n` every n-th.
///
/// Two spellings of one interval are one value: `Flag(true)` equals `Every(1)`, it
/// deserializes as `Every` and serializes as the integer, so a task's identity does not
/// depend on how the spec wrote it.
#[derive(Clone, Copy, Debug)]
pub enum StoreProgress {
    /// `true` (every iteration) or `false` (never).
    Flag(bool),
    /// Every n-th iteration; 0 is never.
    Every(usize),
}

impl Default for StoreProgress {
    fn default() -> Self {
        StoreProgress::Every(0)
    }
}

impl StoreProgress {
    /// The snapshot interval in iterations; 0 means off.
    pub fn every(self) -> usize {
        match self {
            StoreProgress::Flag(b) => b as usize,
            StoreProgress::Every(n) => n,
        }
    }
}

impl PartialEq for StoreProgress {
    fn eq(&self, other: &Self) -> bool {
        self.every() == other.every()
    }
}

impl Eq for StoreProgress {}

impl std::hash::Hash for StoreProgress {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.every().hash(state)
    }
}

impl Serialize for StoreProgress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.every() as u64)
    }
}

impl<'de> Deserialize<'de> for StoreProgress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = StoreProgress;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false or a non-negative integer")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<StoreProgress, E> {
                Ok(StoreProgress::Every(b as usize))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<StoreProgress, E> {
                usize::try_from(n)
                    .map(StoreProgress::Every)
                    .map_err(|_| E::custom(format!("{n} is too large")))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<StoreProgress, E> {
                u64::try_from(n)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<StoreProgress, E> {
                // `store_progress = 2.0` is the integer 2; 2.5 is not an interval.
                if x >= 0.0 && x.fract() == 0.0 && x < 9.0e15 {
                    self.visit_u64(x as u64)
                } else {
                    Err(E::invalid_value(de::Unexpected::Float(x), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The arguments of `synthesize()`, with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthesizeOptions {
    /// Iterations to run at most (fewer when the stop rule fires).
    pub max_iter: usize,
    /// `None`: Adam(lr 0.01, amsgrad) on the first call, the existing optimizer afterwards.
    pub optimizer: Option<OptimizerConfig>,
    /// Stepped with the loss after every iteration; `None` runs without one.
    pub scheduler: Option<SchedulerConfig>,
    /// Keep the synthesized image every n-th iteration.
    pub store_progress: StoreProgress,
    /// Stop once the loss changed by less than this over `stop_iters_to_check` iterations;
    /// >= 0 (0 never stops early).
    pub stop_criterion: f64,
    /// The window of the stop rule, >= 1.
    pub stop_iters_to_check: usize,
}

impl Default for SynthesizeOptions {
    fn default() -> Self {
        SynthesizeOptions {
            max_iter: 100,
            optimizer: None,
            scheduler: None,
            store_progress: StoreProgress::default(),
            stop_criterion: 1e-4,
            stop_iters_to_check: 50,
        }
    }
}

impl SynthesizeOptions {
    /// Checks every field (see their docs) and the optimizer and scheduler.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), ParamError> {
        validate_common(
            self.optimizer.as_ref(),
            self.scheduler.as_ref(),
            self.stop_criterion,
            self.stop_iters_to_check,
        )
    }
}

pub(crate) fn validate_common(
    optimizer: Option<&OptimizerConfig>,
    scheduler: Option<&SchedulerConfig>,
    stop_criterion: f64,
    stop_iters_to_check: usize,
) -> Result<(), ParamError> {
    if let Some(o) = optimizer {
        o.validate()?;
    }
    if let Some(s) = scheduler {
        s.validate()?;
    }
    if !(stop_criterion >= 0.0 && stop_criterion.is_finite()) {
        return Err(ParamError::new(
            "stop_criterion",
            format!(
                "must be >= 0 (a change in loss is compared with it; 0 never stops early), got {stop_criterion}"
            ),
        ));
    }
    at_least_one("stop_iters_to_check", stop_iters_to_check)
}

/// MetamerCTF's `synthesize()` arguments with plenoptic's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CtfSynthesizeOptions {
    /// As [`SynthesizeOptions::max_iter`].
    pub max_iter: usize,
    /// As [`SynthesizeOptions::optimizer`].
    pub optimizer: Option<OptimizerConfig>,
    /// As [`SynthesizeOptions::scheduler`].
    pub scheduler: Option<SchedulerConfig>,
    /// As [`SynthesizeOptions::store_progress`].
    pub store_progress: StoreProgress,
    /// As [`SynthesizeOptions::stop_criterion`]; must be below `change_scale_criterion`.
    pub stop_criterion: f64,
    /// As [`SynthesizeOptions::stop_iters_to_check`].
    pub stop_iters_to_check: usize,
    /// Switch scales once the scale loss changed by less than this over
    /// `ctf_iters_to_check` iterations, >= 0; `None` switches every `ctf_iters_to_check`.
    pub change_scale_criterion: Option<f64>,
    /// The window of the scale-switch rule, >= 1.
    pub ctf_iters_to_check: usize,
}

impl Default for CtfSynthesizeOptions {
    fn default() -> Self {
        let s = SynthesizeOptions::default();
        CtfSynthesizeOptions {
            max_iter: s.max_iter,
            optimizer: s.optimizer,
            scheduler: s.scheduler,
            store_progress: s.store_progress,
            stop_criterion: s.stop_criterion,
            stop_iters_to_check: s.stop_iters_to_check,
            change_scale_criterion: Some(1e-2),
            ctf_iters_to_check: 50,
        }
    }
}

impl CtfSynthesizeOptions {
    /// The arguments every optimised synthesis takes.
    pub fn common(&self) -> SynthesizeOptions {
        SynthesizeOptions {
            max_iter: self.max_iter,
            optimizer: self.optimizer.clone(),
            scheduler: self.scheduler.clone(),
            store_progress: self.store_progress,
            stop_criterion: self.stop_criterion,
            stop_iters_to_check: self.stop_iters_to_check,
        }
    }

    /// The common checks, plenoptic's rule `stop_criterion < change_scale_criterion`, a
    /// non-negative `change_scale_criterion` and `ctf_iters_to_check >= 1`.
    ///
    /// # Errors
    /// The first field or rule broken.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.common().validate()?;
        if let Some(c) = self.change_scale_criterion {
            non_negative("change_scale_criterion", c)?;
            if self.stop_criterion >= c {
                return Err(ParamError::relating(
                    "stop_criterion",
                    &["change_scale_criterion"],
                    format!(
                        "must be strictly less than change_scale_criterion ({} >= {c})",
                        self.stop_criterion
                    ),
                ));
            }
        }
        at_least_one("ctf_iters_to_check", self.ctf_iters_to_check)
    }
}
