//! The optimisation loop shared by Metamer, MetamerCTF and MADCompetition (plenoptic's
//! `OptimizedSynthesis`): range penalty, loss stop rule, progress snapshots, optimizer and
//! scheduler set-up, the per-iteration callback, and moving the state between devices.
use crate::error::{Result, SynthError};
use crate::optim::{item, Optimizer, OptimizerConfig};
use crate::scheduler::Scheduler;
use std::ops::ControlFlow;
use tch::{Device, Kind, Tensor};

/// Every constructor seeds and draws through the process-wide RNG lock (see
/// `synthsweep_models::rng`), so two threads cannot interleave their draws from libtorch's
/// generator: a seeded constructor's draws are its own stream.
pub(crate) use synthsweep_models::rng::with_rng;

/// `Σ min(x − a, 0)² + Σ max(x − b, 0)²`: zero inside `allowed_range = (a, b)`.
pub fn penalize_range(x: &Tensor, allowed_range: (f64, f64)) -> Tensor {
    let below = (x - allowed_range.0)
        .clamp_max(0.0)
        .square()
        .sum(None::<Kind>);
    let above = (x - allowed_range.1)
        .clamp_min(0.0)
        .square()
        .sum(None::<Kind>);
    below + above
}

/// plenoptic's loss stop rule: more than `k` losses, and the last one within `criterion`
/// of the one `k − 1` steps earlier.
pub fn loss_converged(losses: &[f64], criterion: f64, k: usize) -> bool {
    let n = losses.len();
    n > k && k > 0 && (losses[n - k] - losses[n - 1]).abs() < criterion
}

pub use synthsweep_core::params::{StoreProgress, SynthesizeOptions};

/// What the callback sees after each iteration.
#[derive(Debug)]
pub struct Progress<'a> {
    /// 0-based, counted over all `synthesize` calls (the index into `losses`).
    pub iteration: usize,
    /// The objective before this iteration's step (the entry of `losses`).
    pub loss: f64,
    /// ‖∇‖ of that objective with respect to the synthesized image.
    pub gradient_norm: f64,
    /// ‖x after − x before‖ of this step (pixel units).
    pub pixel_change_norm: f64,
    /// The learning rate after this iteration (a scheduler may have lowered it).
    pub lr: f64,
    /// The synthesized image after this iteration's step.
    pub image: &'a Tensor,
    /// Method-specific values (MAD's metric values, CTF's scale loss).
    pub extra: &'a [(&'static str, f64)],
}

/// The per-iteration callback: `ControlFlow::Break(())` cancels the synthesis, which then
/// returns [`SynthError::Cancelled`]; the iterations done so far are kept, and a later
/// `synthesize` call continues from there.
pub type Callback<'c> = dyn FnMut(&Progress) -> ControlFlow<()> + 'c;

/// How a `synthesize` call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Iterations run by this call.
    pub iterations: usize,
    /// Whether the stop rule ended it before `max_iter`.
    pub converged: bool,
}

/// The state every optimised synthesis shares: the image being synthesized, the series it
/// records, its snapshots, its optimizer and its scheduler.
#[derive(Debug)]
pub(crate) struct Core {
    pub x: Tensor,
    pub losses: Vec<f64>,
    pub gradient_norm: Vec<f64>,
    pub pixel_change_norm: Vec<f64>,
    pub store_progress: Option<usize>,
    pub saved: Vec<Tensor>,
    pub optimizer: Option<Optimizer>,
    pub scheduler: Option<Scheduler>,
    pub default_optimizer: OptimizerConfig,
}

impl Core {
    /// A synthesis starting from `x0` (copied, detached, made a leaf that requires grad).
    pub fn new(x0: &Tensor) -> Self {
        Core {
            x: x0.detach().copy().set_requires_grad(true),
            losses: Vec::new(),
            gradient_norm: Vec::new(),
            pixel_change_norm: Vec::new(),
            store_progress: None,
            saved: Vec::new(),
            optimizer: None,
            scheduler: None,
            default_optimizer: OptimizerConfig::default(),
        }
    }

    /// Checks the options against what earlier calls used, then sets up the optimizer,
    /// the scheduler and the snapshot interval, as plenoptic's `synthesize` does.
    pub fn prepare(&mut self, opts: &SynthesizeOptions) -> Result<()> {
        opts.validate()?;
        let every = opts.store_progress.every();
        if let Some(prev) = self.store_progress {
            if prev != every {
                return Err(SynthError::invalid(
                    "store_progress",
                    format!("a resumed synthesis must keep the same store_progress: it was {prev}, got {every} (true means 1)"),
                ));
            }
        }
        match (&opts.optimizer, &self.optimizer) {
            (None, None) => {
                self.optimizer = Some(Optimizer::new(&self.default_optimizer, &self.x)?)
            }
            (Some(cfg), None) => self.optimizer = Some(Optimizer::new(cfg, &self.x)?),
            (Some(cfg), Some(o)) if o.config() != cfg => {
                return Err(SynthError::invalid(
                    "optimizer",
                    "when resuming synthesis the optimizer must be None (or the same as before): the first call's optimizer keeps running with its state",
                ));
            }
            _ => {}
        }
        self.scheduler = match (&opts.scheduler, self.scheduler.take()) {
            (Some(cfg), Some(s)) if s.config() == cfg => Some(s),
            (Some(cfg), _) => Some(Scheduler::new(cfg)?),
            (None, _) => None,
        };
        self.store_progress = Some(every);
        Ok(())
    }

    /// `saved_*`: snapshot `i` taken at the start of iteration `i · store_progress`, on the CPU.
    pub fn saved_stack(&self) -> Tensor {
        if self.saved.is_empty() {
            let mut shape = vec![0];
            shape.extend(self.x.size());
            return Tensor::zeros(shape, (self.x.kind(), Device::Cpu));
        }
        Tensor::stack(&self.saved, 0)
    }

    pub fn lr(&self) -> f64 {
        self.optimizer
            .as_ref()
            .map_or(self.default_optimizer.lr(), |o| o.lr())
    }

    /// Moves the image and the optimizer state to `device` as `kind`; snapshots stay on the
    /// CPU and only change kind.
    pub fn to(&mut self, device: Device, kind: Kind) {
        self.x = self
            .x
            .detach()
            .to_device(device)
            .to_kind(kind)
            .set_requires_grad(true);
        if let Some(o) = &mut self.optimizer {
            o.to(&self.x);
        }
        for s in &mut self.saved {
            *s = s.to_kind(kind);
        }
    }
}

/// The method-specific parts of one iteration.
pub(crate) trait Method {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;

    /// Runs before the optimizer step (MetamerCTF's scale switch).
    fn before_step(&mut self) -> Result<()> {
        Ok(())
    }

    /// The objective to back-propagate at `x` (the closure's body).
    fn objective(&mut self, x: &Tensor) -> Result<Tensor>;

    /// Records the method's own series after the step; returns the loss that goes into
    /// `losses` (checked for finiteness and by the stop rule) and the one for the scheduler.
    fn after_step(&mut self, step_loss: f64) -> Result<(f64, f64)> {
        Ok((step_loss, step_loss))
    }

    /// Extra values for the callback.
    fn extra(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// The stop test after iteration `i` (0-based within this call).
    fn converged(&self, _i: usize, opts: &SynthesizeOptions) -> bool {
        loss_converged(
            &self.core().losses,
            opts.stop_criterion,
            opts.stop_iters_to_check,
        )
    }
}

fn snapshot(x: &Tensor) -> Tensor {
    x.detach().to_device(Device::Cpu).copy()
}

/// plenoptic's synthesis loop (spec §1). Call after [`Core::prepare`].
pub(crate) fn run<M: Method>(
    m: &mut M,
    opts: &SynthesizeOptions,
    mut callback: Option<&mut Callback>,
) -> Result<Outcome> {
    for i in 0..opts.max_iter {
        let core = m.core_mut();
        let every = core.store_progress.unwrap_or(0);
        if every > 0 && core.losses.len().is_multiple_of(every) {
            let s = snapshot(&core.x);
            core.saved.push(s);
        }
        let prev = core.x.detach().copy();
        m.before_step()?;
        let x = m.core().x.shallow_clone();
        let mut opt = m
            .core_mut()
            .optimizer
            .take()
            .expect("prepare() sets the optimizer");
        let stepped = opt.step(|| {
            let mut g = x.shallow_clone();
            g.zero_grad();
            let loss = m.objective(&x)?;
            loss.f_backward()?;
            Ok(loss)
        });
        m.core_mut().optimizer = Some(opt);
        let step_loss = item(&stepped?);
        let grad = x.grad();
        let gradient_norm = if grad.defined() {
            item(&grad.norm())
        } else {
            0.0
        };
        let (loss, scheduler_loss) = m.after_step(step_loss)?;
        let core = m.core_mut();
        core.losses.push(loss);
        core.gradient_norm.push(gradient_norm);
        if let (Some(s), Some(o)) = (&mut core.scheduler, &mut core.optimizer) {
            s.step(scheduler_loss, o);
        }
        let pixel_change_norm = item(&(&core.x.detach() - &prev).norm());
        core.pixel_change_norm.push(pixel_change_norm);
        let iteration = core.losses.len() - 1;
        if !loss.is_finite() {
            return Err(SynthError::NonFinite {
                iteration,
                value: loss,
            });
        }
        if let Some(cb) = callback.as_deref_mut() {
            let extra = m.extra();
            let image = m.core().x.detach();
            let p = Progress {
                iteration,
                loss,
                gradient_norm,
                pixel_change_norm,
                lr: m.core().lr(),
                image: &image,
                extra: &extra,
            };
            if cb(&p).is_break() {
                return Err(SynthError::Cancelled { iteration });
            }
        }
        if m.converged(i, opts) {
            return Ok(Outcome {
                iterations: i + 1,
                converged: true,
            });
        }
    }
    Ok(Outcome {
        iterations: opts.max_iter,
        converged: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_rule_compares_entries_k_minus_1_apart() {
        let l = [5.0, 4.0, 3.0, 2.99995];
        assert!(!loss_converged(&l[..3], 1e-4, 3));
        assert!(!loss_converged(&l, 1e-4, 3));
        assert!(
            loss_converged(&l, 1e-4, 1),
            "k = 1 compares the last loss with itself"
        );
        assert!(loss_converged(&l, 1e-4, 2));
    }

    #[test]
    fn store_progress_parses_bool_and_int() {
        let o: SynthesizeOptions = serde_json::from_str(r#"{"store_progress": true}"#).unwrap();
        assert_eq!(o.store_progress.every(), 1);
        let o: SynthesizeOptions =
            serde_json::from_str(r#"{"store_progress": 5, "max_iter": 3}"#).unwrap();
        assert_eq!((o.store_progress.every(), o.max_iter), (5, 3));
        assert!(serde_json::from_str::<SynthesizeOptions>(r#"{"max_iters": 3}"#).is_err());
    }

    #[test]
    fn range_penalty_is_zero_inside() {
        let x = Tensor::from_slice(&[-0.5f32, 0.5, 1.25]);
        let p = item(&penalize_range(&x, (0.0, 1.0)));
        assert!((p - (0.25 + 0.0625)).abs() < 1e-7);
    }
}
