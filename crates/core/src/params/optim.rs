//! Optimizer and learning-rate scheduler settings as a spec names them
//! (`optimizer = {name = "adam", lr = 0.01}`), with torch's (or plenoptic's) defaults and the
//! checks torch makes plus those the mathematics needs (a learning rate must be positive).
use crate::error::{at_least_one, non_negative, positive, ParamError};
use serde::{Deserialize, Serialize};

/// Adam's options (torch.optim.Adam). The defaults are plenoptic's (`lr = 0.01`,
/// `amsgrad = true`), not torch's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamOptions {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Decay rates of the first and second moment estimates, each in [0, 1).
    pub betas: (f64, f64),
    /// Added to the denominator, >= 0.
    pub eps: f64,
    /// L2 penalty, >= 0.
    pub weight_decay: f64,
    /// Use the maximum of past second moments (plenoptic: true).
    pub amsgrad: bool,
}

impl Default for AdamOptions {
    fn default() -> Self {
        AdamOptions {
            lr: 0.01,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: true,
        }
    }
}

/// SGD's options (torch.optim.SGD), with torch's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SgdOptions {
    /// Learning rate, > 0.
    pub lr: f64,
    /// Momentum factor, >= 0.
    pub momentum: f64,
    /// Dampening of the momentum.
    pub dampening: f64,
    /// L2 penalty, >= 0.
    pub weight_decay: f64,
    /// Nesterov momentum: needs momentum > 0 and dampening = 0.
    pub nesterov: bool,
}

impl Default for SgdOptions {
    fn default() -> Self {
        SgdOptions {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        }
    }
}

/// The line search L-BFGS may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineSearch {
    /// torch's `strong_wolfe`.
    StrongWolfe,
}

/// torch.optim.LBFGS options and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LbfgsOptions {
    /// Learning rate (step length), > 0.
    pub lr: f64,
    /// Inner iterations per optimizer step, >= 1.
    pub max_iter: usize,
    /// Function evaluations per step, >= 1; `None` means `max_iter * 5 / 4` (torch's default).
    pub max_eval: Option<usize>,
    /// Stop when the gradient's largest absolute entry is at most this, >= 0.
    pub tolerance_grad: f64,
    /// Stop when the step or loss changes by at most this, >= 0.
    pub tolerance_change: f64,
    /// Past updates kept, >= 1.
    pub history_size: usize,
    /// `None`: fixed step length `lr`.
    pub line_search_fn: Option<LineSearch>,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search_fn: None,
        }
    }
}

impl LbfgsOptions {
    /// The function-evaluation budget per step (`max_iter * 5 / 4` when not given).
    pub fn max_eval(&self) -> usize {
        self.max_eval.unwrap_or(self.max_iter * 5 / 4)
    }

    /// # Errors
    /// A field outside the range its doc gives (named relative to the optimizer).
    pub fn validate(&self) -> Result<(), ParamError> {
        positive("lr", self.lr)?;
        at_least_one("max_iter", self.max_iter)?;
        if self.max_eval == Some(0) {
            return Err(ParamError::new("max_eval", "must be at least 1, got 0"));
        }
        at_least_one("history_size", self.history_size)?;
        non_negative("tolerance_grad", self.tolerance_grad)?;
        non_negative("tolerance_change", self.tolerance_change)
    }
}

/// Which optimizer to use, as a sweep spec names it: `{"name": "adam", "lr": 0.01}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// torch.optim.Adam.
    Adam(AdamOptions),
    /// torch.optim.SGD.
    Sgd(SgdOptions),
    /// torch.optim.LBFGS.
    Lbfgs(LbfgsOptions),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamOptions::default())
    }
}

impl OptimizerConfig {
    /// plenoptic's default optimizer, Adam with `amsgrad`, at learning rate `lr`
    /// (0.01 for metamers and MAD, 0.001 for geodesics).
    pub fn adam_with_lr(lr: f64) -> Self {
        OptimizerConfig::Adam(AdamOptions {
            lr,
            ..AdamOptions::default()
        })
    }

    /// The learning rate the optimizer starts with.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(o) => o.lr,
            OptimizerConfig::Sgd(o) => o.lr,
            OptimizerConfig::Lbfgs(o) => o.lr,
        }
    }

    /// The same optimizer with every implicit default made explicit (L-BFGS's `max_eval`),
    /// so that two spellings of one optimizer compare and serialize equal.
    pub fn canonical(&self) -> OptimizerConfig {
        match self {
            OptimizerConfig::Lbfgs(o) => OptimizerConfig::Lbfgs(LbfgsOptions {
                max_eval: Some(o.max_eval()),
                ..o.clone()
            }),
            other => other.clone(),
        }
    }

    /// Checks what torch checks (non-negative rates and penalties, betas in [0, 1),
    /// Nesterov's conditions) and a positive learning rate (0 never moves the image).
    ///
    /// # Errors
    /// The offending field, as `optimizer.<field>`.
    pub fn validate(&self) -> Result<(), ParamError> {
        let r = match self {
            OptimizerConfig::Adam(o) => (|| {
                positive("lr", o.lr)?;
                for (name, b) in [("betas[0]", o.betas.0), ("betas[1]", o.betas.1)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(ParamError::new(name, format!("must be in [0, 1), got {b}")));
                    }
                }
                non_negative("eps", o.eps)?;
                non_negative("weight_decay", o.weight_decay)
            })(),
            OptimizerConfig::Sgd(o) => (|| {
                positive("lr", o.lr)?;
                non_negative("momentum", o.momentum)?;
                non_negative("weight_decay", o.weight_decay)?;
                if !o.dampening.is_finite() {
                    return Err(ParamError::new(
                        "dampening",
                        format!("must be a finite number, got {}", o.dampening),
                    ));
                }
                if o.nesterov && (o.momentum <= 0.0 || o.dampening != 0.0) {
                    return Err(ParamError::relating(
                        "nesterov",
                        &["momentum", "dampening"],
                        format!(
                            "needs momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                            o.momentum, o.dampening
                        ),
                    ));
                }
                Ok(())
            })(),
            OptimizerConfig::Lbfgs(o) => o.validate(),
        };
        r.map_err(|e| e.within("optimizer"))
    }
}

/// How ReduceLROnPlateau compares losses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMode {
    /// Lower is better.
    #[default]
    Min,
    /// Higher is better.
    Max,
}

/// Whether ReduceLROnPlateau's threshold is relative or absolute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdMode {
    /// `best * (1 ∓ threshold)`.
    #[default]
    Rel,
    /// `best ∓ threshold`.
    Abs,
}

/// torch's `ReduceLROnPlateau` options and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReduceLrOnPlateauOptions {
    pub mode: PlateauMode,
    /// Multiplies the learning rate on a plateau, in (0, 1).
    pub factor: f64,
    /// Iterations without improvement before reducing.
    pub patience: usize,
    /// What counts as an improvement, >= 0.
    pub threshold: f64,
    pub threshold_mode: ThresholdMode,
    /// Iterations to wait after a reduction.
    pub cooldown: usize,
    /// Lower bound of the learning rate, >= 0.
    pub min_lr: f64,
    /// Reductions smaller than this are skipped, >= 0.
    pub eps: f64,
}

impl Default for ReduceLrOnPlateauOptions {
    fn default() -> Self {
        ReduceLrOnPlateauOptions {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

/// A learning-rate scheduler, stepped with the loss after every iteration:
/// `{"name": "reduce_lr_on_plateau", "patience": 5}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum SchedulerConfig {
    /// torch.optim.lr_scheduler.ReduceLROnPlateau.
    ReduceLrOnPlateau(ReduceLrOnPlateauOptions),
}

impl SchedulerConfig {
    /// torch's check (`factor < 1`) and the mathematics' (a factor of 0 ends the
    /// optimisation at the first plateau), non-negative thresholds and bounds.
    ///
    /// # Errors
    /// The offending field, as `scheduler.<field>`.
    pub fn validate(&self) -> Result<(), ParamError> {
        let SchedulerConfig::ReduceLrOnPlateau(o) = self;
        let r = (|| {
            if !(o.factor > 0.0 && o.factor < 1.0) {
                return Err(ParamError::new(
                    "factor",
                    format!("must be in (0, 1), got {}", o.factor),
                ));
            }
            non_negative("threshold", o.threshold)?;
            non_negative("min_lr", o.min_lr)?;
            non_negative("eps", o.eps)
        })();
        r.map_err(|e| e.within("scheduler"))
    }
}
