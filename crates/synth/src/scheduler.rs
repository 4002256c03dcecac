//! The learning-rate scheduler: torch's ReduceLROnPlateau, stepped with the loss after
//! every iteration, and its state for save/resume (options, defaults and checks are
//! `synthsweep_core::params`'s).
use crate::error::Result;
use crate::optim::{missing, Optimizer};
use std::collections::BTreeMap;

pub use synthsweep_core::params::{
    PlateauMode, ReduceLrOnPlateauOptions, SchedulerConfig, ThresholdMode,
};

/// ReduceLROnPlateau's running state.
#[derive(Clone, Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    best: f64,
    num_bad_epochs: usize,
    cooldown_counter: usize,
    last_epoch: usize,
}

impl Scheduler {
    /// torch's `ReduceLROnPlateau` with `config`, before its first step. Errors:
    /// [`crate::SynthError::InvalidParam`] for an option out of its range.
    pub fn new(config: &SchedulerConfig) -> Result<Self> {
        config.validate()?;
        let SchedulerConfig::ReduceLrOnPlateau(o) = config;
        let best = if o.mode == PlateauMode::Min {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        Ok(Scheduler {
            config: config.clone(),
            best,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    fn is_better(&self, a: f64) -> bool {
        let SchedulerConfig::ReduceLrOnPlateau(o) = &self.config;
        match (o.mode, o.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => a < self.best * (1.0 - o.threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => a < self.best - o.threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => a > self.best * (o.threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => a > self.best + o.threshold,
        }
    }

    /// One scheduler step with this iteration's loss.
    pub fn step(&mut self, metric: f64, optimizer: &mut Optimizer) {
        let SchedulerConfig::ReduceLrOnPlateau(o) = self.config.clone();
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > o.patience {
            let old = optimizer.lr();
            let new = (old * o.factor).max(o.min_lr);
            if old - new > o.eps {
                optimizer.set_lr(new);
            }
            self.cooldown_counter = o.cooldown;
            self.num_bad_epochs = 0;
        }
    }

    /// The running state (`best`, `num_bad_epochs`, `cooldown_counter`, `last_epoch`), as torch's `state_dict` holds it.
    pub fn export_state(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("best".to_string(), self.best),
            ("num_bad_epochs".to_string(), self.num_bad_epochs as f64),
            ("cooldown_counter".to_string(), self.cooldown_counter as f64),
            ("last_epoch".to_string(), self.last_epoch as f64),
        ])
    }

    /// Restores a state of [`Scheduler::export_state`]. Errors: [`crate::SynthError::State`] when a key is missing.
    pub fn import_state(&mut self, st: &BTreeMap<String, f64>) -> Result<()> {
        let get = |k: &str| st.get(k).copied().ok_or_else(|| missing(k));
        self.best = get("best")?;
        self.num_bad_epochs = get("num_bad_epochs")? as usize;
        self.cooldown_counter = get("cooldown_counter")? as usize;
        self.last_epoch = get("last_epoch")? as usize;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::{OptimizerConfig, SgdOptions};
    use tch::{Device, Kind, Tensor};

    #[test]
    fn plateau_reduces_after_patience() {
        let x = Tensor::zeros([2], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let mut opt = Optimizer::new(
            &OptimizerConfig::Sgd(SgdOptions {
                lr: 1.0,
                ..Default::default()
            }),
            &x,
        )
        .unwrap();
        let cfg = SchedulerConfig::ReduceLrOnPlateau(ReduceLrOnPlateauOptions {
            patience: 2,
            ..Default::default()
        });
        let mut s = Scheduler::new(&cfg).unwrap();
        for _ in 0..3 {
            s.step(1.0, &mut opt);
        }
        assert_eq!(opt.lr(), 1.0);
        s.step(1.0, &mut opt);
        assert!((opt.lr() - 0.1).abs() < 1e-12);
        opt.reset_lr();
        assert_eq!(opt.lr(), 1.0);
    }
}
