//! Optimizers for the synthesized image: Adam (torch's CPU arithmetic, op for op), SGD and
//! L-BFGS (torch.optim.LBFGS, see [`crate::lbfgs`]). Their options, defaults and checks are
//! `synthsweep_core::params`'s; each exports its state for save/resume.
use crate::error::{Result, SynthError};
use crate::lbfgs::{LbfgsOptions, LbfgsState};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

pub use synthsweep_core::params::{AdamOptions, OptimizerConfig, SgdOptions};

/// An optimizer's state as named scalars and tensors, for saving and resuming.
#[derive(Debug, Default)]
pub struct OptimizerState {
    /// Named scalars (step counts, learning rates, ...).
    pub scalars: BTreeMap<String, f64>,
    /// Named tensors (moment estimates, L-BFGS history, ...), on the CPU when saved.
    pub tensors: BTreeMap<String, Tensor>,
}

impl OptimizerState {
    pub(crate) fn scalar(&self, name: &str) -> Result<f64> {
        self.scalars.get(name).copied().ok_or_else(|| missing(name))
    }

    pub(crate) fn tensor(&self, name: &str, device: Device, kind: Kind) -> Option<Tensor> {
        self.tensors
            .get(name)
            .map(|t| t.to_device(device).to_kind(kind))
    }
}

pub(crate) fn missing(name: &str) -> SynthError {
    SynthError::State {
        path: String::new(),
        msg: format!("optimizer state lacks `{name}`"),
    }
}

#[derive(Debug, Default)]
struct AdamState {
    step: u64,
    exp_avg: Option<Tensor>,
    exp_avg_sq: Option<Tensor>,
    max_exp_avg_sq: Option<Tensor>,
}

#[derive(Debug, Default)]
struct SgdState {
    momentum_buffer: Option<Tensor>,
}

#[derive(Debug)]
enum Inner {
    Adam(AdamOptions, AdamState),
    Sgd(SgdOptions, SgdState),
    Lbfgs(LbfgsOptions, Box<LbfgsState>),
}

/// An optimizer bound to one parameter, the image being synthesized (a leaf that requires
/// grad). `step` takes a closure that zeroes the gradient, evaluates the objective,
/// back-propagates and returns the loss, as torch's `Optimizer.step(closure)`.
#[derive(Debug)]
pub struct Optimizer {
    config: OptimizerConfig,
    param: Tensor,
    lr: f64,
    initial_lr: f64,
    inner: Inner,
}

impl Optimizer {
    /// Binds a new optimizer to `param`.
    pub fn new(config: &OptimizerConfig, param: &Tensor) -> Result<Self> {
        config.validate()?;
        if !param.requires_grad() {
            return Err(SynthError::invalid(
                "optimizer",
                "the parameter must require grad",
            ));
        }
        let inner = match config {
            OptimizerConfig::Adam(o) => Inner::Adam(o.clone(), AdamState::default()),
            OptimizerConfig::Sgd(o) => Inner::Sgd(o.clone(), SgdState::default()),
            OptimizerConfig::Lbfgs(o) => Inner::Lbfgs(o.clone(), Box::default()),
        };
        Ok(Optimizer {
            config: config.clone(),
            param: param.shallow_clone(),
            lr: config.lr(),
            initial_lr: config.lr(),
            inner,
        })
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &OptimizerConfig {
        &self.config
    }

    /// The current learning rate (`param_groups[0]['lr']`).
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate of the next steps (as a scheduler writes `param_groups[0]['lr']`).
    pub fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// The learning rate the optimizer was created with (`initial_lr`).
    pub fn initial_lr(&self) -> f64 {
        self.initial_lr
    }

    /// Back to the initial learning rate; moments are kept (MetamerCTF does this on a scale switch).
    pub fn reset_lr(&mut self) {
        self.lr = self.initial_lr;
    }

    /// The parameter this optimizer updates.
    pub fn param(&self) -> &Tensor {
        &self.param
    }

    /// Zeroes the parameter's gradient.
    pub fn zero_grad(&mut self) {
        self.param.zero_grad();
    }

    /// One optimizer step; returns the loss of the first closure call (the pre-step loss).
    pub fn step<F: FnMut() -> Result<Tensor>>(&mut self, mut closure: F) -> Result<Tensor> {
        let lr = self.lr;
        match &mut self.inner {
            Inner::Adam(o, s) => {
                let loss = closure()?;
                tch::no_grad(|| adam_step(&mut self.param, lr, o, s));
                Ok(loss)
            }
            Inner::Sgd(o, s) => {
                let loss = closure()?;
                tch::no_grad(|| sgd_step(&mut self.param, lr, o, s));
                Ok(loss)
            }
            Inner::Lbfgs(o, s) => s.step(&mut self.param, lr, o, &mut closure),
        }
    }

    /// Whether a step reads values on the host (L-BFGS: its line search and tolerances).
    pub(crate) fn reads_on_host(&self) -> bool {
        matches!(self.inner, Inner::Lbfgs(..))
    }

    /// Rebinds the optimizer to a moved or cast parameter, moving its state along.
    pub fn to(&mut self, param: &Tensor) {
        let (device, kind) = (param.device(), param.kind());
        let mv = |t: &mut Option<Tensor>| {
            if let Some(x) = t.take() {
                *t = Some(x.to_device(device).to_kind(kind));
            }
        };
        match &mut self.inner {
            Inner::Adam(_, s) => {
                mv(&mut s.exp_avg);
                mv(&mut s.exp_avg_sq);
                mv(&mut s.max_exp_avg_sq);
            }
            Inner::Sgd(_, s) => mv(&mut s.momentum_buffer),
            Inner::Lbfgs(_, s) => s.to(device, kind),
        }
        self.param = param.shallow_clone();
    }

    /// The state as named scalars and tensors (`lr`, `initial_lr`, moments, history).
    pub fn export_state(&self) -> OptimizerState {
        let mut st = OptimizerState::default();
        st.scalars.insert("lr".into(), self.lr);
        st.scalars.insert("initial_lr".into(), self.initial_lr);
        let mut put = |name: &str, t: &Option<Tensor>| {
            if let Some(t) = t {
                st.tensors.insert(name.to_string(), t.detach().copy());
            }
        };
        match &self.inner {
            Inner::Adam(_, s) => {
                put("exp_avg", &s.exp_avg);
                put("exp_avg_sq", &s.exp_avg_sq);
                put("max_exp_avg_sq", &s.max_exp_avg_sq);
                st.scalars.insert("step".into(), s.step as f64);
            }
            Inner::Sgd(_, s) => put("momentum_buffer", &s.momentum_buffer),
            Inner::Lbfgs(_, s) => s.export(&mut st),
        }
        st
    }

    /// Restores a state made by [`Optimizer::export_state`] for the same optimizer kind.
    pub fn import_state(&mut self, st: &OptimizerState) -> Result<()> {
        let (device, kind) = (self.param.device(), self.param.kind());
        self.lr = st.scalar("lr")?;
        self.initial_lr = st.scalar("initial_lr")?;
        match &mut self.inner {
            Inner::Adam(_, s) => {
                s.step = st.scalar("step")? as u64;
                s.exp_avg = st.tensor("exp_avg", device, kind);
                s.exp_avg_sq = st.tensor("exp_avg_sq", device, kind);
                s.max_exp_avg_sq = st.tensor("max_exp_avg_sq", device, kind);
            }
            Inner::Sgd(_, s) => s.momentum_buffer = st.tensor("momentum_buffer", device, kind),
            Inner::Lbfgs(_, s) => s.import(st, device, kind)?,
        }
        Ok(())
    }
}

/// torch's `_single_tensor_adam` (the CPU default), op for op. tch does not expose the
/// `value=` argument of `addcmul_`/`addcdiv_`, so the scalar multiplies one operand first;
/// torch's kernels compute `(value * t1) op t2`, so the result is the same bit for bit.
fn adam_step(param: &mut Tensor, lr: f64, o: &AdamOptions, s: &mut AdamState) {
    let grad = param.grad();
    if !grad.defined() {
        return;
    }
    let grad = if o.weight_decay != 0.0 {
        &grad + &*param * o.weight_decay
    } else {
        grad
    };
    let zeros = || param.zeros_like();
    let m = s.exp_avg.get_or_insert_with(zeros);
    let v = s.exp_avg_sq.get_or_insert_with(zeros);
    s.step += 1;
    let (beta1, beta2) = o.betas;
    let _ = m.lerp_(&grad, 1.0 - beta1);
    let _ = v.g_mul_scalar_(beta2);
    let _ = v.addcmul_(&(&grad * (1.0 - beta2)), &grad);
    let step = s.step as f64;
    let bias_correction1 = 1.0 - beta1.powf(step);
    let bias_correction2 = 1.0 - beta2.powf(step);
    let step_size = lr / bias_correction1;
    let bias_correction2_sqrt = bias_correction2.powf(0.5);
    let denom = if o.amsgrad {
        let vmax = s.max_exp_avg_sq.get_or_insert_with(zeros);
        *vmax = vmax.maximum(v);
        vmax.sqrt() / bias_correction2_sqrt + o.eps
    } else {
        v.sqrt() / bias_correction2_sqrt + o.eps
    };
    let _ = param.addcdiv_(&(&*m * -step_size), &denom);
}

/// torch's `_single_tensor_sgd`.
fn sgd_step(param: &mut Tensor, lr: f64, o: &SgdOptions, s: &mut SgdState) {
    let grad = param.grad();
    if !grad.defined() {
        return;
    }
    let mut grad = if o.weight_decay != 0.0 {
        &grad + &*param * o.weight_decay
    } else {
        grad
    };
    if o.momentum != 0.0 {
        let buf = match s.momentum_buffer.take() {
            None => grad.detach().copy(),
            Some(mut b) => {
                let _ = b.g_mul_scalar_(o.momentum);
                let _ = b.g_add_(&(&grad * (1.0 - o.dampening)));
                b
            }
        };
        grad = if o.nesterov {
            &grad + &buf * o.momentum
        } else {
            buf.shallow_clone()
        };
        s.momentum_buffer = Some(buf);
    }
    let _ = param.g_add_(&(grad * -lr));
}

/// The value of a one-element tensor (`.item()`), as f64: one counted host read (see
/// [`crate::host`]).
pub fn item(t: &Tensor) -> f64 {
    crate::host::read_values(std::slice::from_ref(t))[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_deserialize_with_defaults_and_reject_unknown_fields() {
        let c: OptimizerConfig = serde_json::from_str(r#"{"name": "adam", "lr": 0.1}"#).unwrap();
        assert_eq!(
            c,
            OptimizerConfig::Adam(AdamOptions {
                lr: 0.1,
                ..Default::default()
            })
        );
        let c: OptimizerConfig =
            serde_json::from_str(r#"{"name": "lbfgs", "line_search_fn": "strong_wolfe"}"#).unwrap();
        assert!(matches!(c, OptimizerConfig::Lbfgs(_)));
        let e =
            serde_json::from_str::<OptimizerConfig>(r#"{"name": "adam", "lrr": 0.1}"#).unwrap_err();
        assert!(e.to_string().contains("lrr"), "{e}");
        let s: crate::scheduler::SchedulerConfig =
            serde_json::from_str(r#"{"name": "reduce_lr_on_plateau", "patience": 3}"#).unwrap();
        let crate::scheduler::SchedulerConfig::ReduceLrOnPlateau(o) = s;
        assert_eq!(o.patience, 3);
    }
}
