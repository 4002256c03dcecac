//! The optimisation loop shared by Metamer, MetamerCTF and MADCompetition (plenoptic's
//! `OptimizedSynthesis`): range penalty, loss stop rule, progress snapshots, optimizer and
//! scheduler set-up, the per-iteration callback, and moving the state between devices.
use crate::error::{Result, SynthError};
use crate::optim::{Optimizer, OptimizerConfig};
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

/// What one iteration hands to the records, as device tensors (one element each).
pub(crate) struct StepRecord {
    /// The value that goes into `losses`.
    pub loss: Tensor,
    /// The value the scheduler steps on.
    pub scheduler_loss: Tensor,
    /// The method's own series, handed back as values by [`Method::push_extras`].
    pub extras: Vec<Tensor>,
}

/// The method's own state that an iteration changes, beyond the image, the optimizer and
/// the snapshots (tensors are not modified in place afterwards, so shallow copies do).
#[derive(Default)]
pub(crate) struct MethodState {
    pub tensors: Vec<Tensor>,
    pub lens: Vec<usize>,
}

/// The method-specific parts of one iteration.
pub(crate) trait Method {
    fn core(&self) -> &Core;
    fn core_mut(&mut self) -> &mut Core;

    /// Runs before the optimizer step of iteration `n` (counted over all calls; MetamerCTF's
    /// scale switch, Geodesic's records). Records of earlier iterations of the current chunk
    /// may still be on the device: a decision that needs them must be excluded from the
    /// chunk by [`Method::chunk_limit`].
    fn before_step(&mut self, _n: usize) -> Result<()> {
        Ok(())
    }

    /// The objective to back-propagate at `x` (the closure's body).
    fn objective(&mut self, x: &Tensor) -> Result<Tensor>;

    /// The method's records of this step (on the device), from the objective before it.
    fn after_step(&mut self, step_loss: &Tensor) -> Result<StepRecord> {
        Ok(StepRecord {
            loss: step_loss.shallow_clone(),
            scheduler_loss: step_loss.shallow_clone(),
            extras: Vec::new(),
        })
    }

    /// Appends the values of one iteration's `StepRecord::extras`, in order.
    fn push_extras(&mut self, _values: &[f64]) {}

    /// Extra values for the callback.
    fn extra(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }

    /// How many iterations from now can run before one whose `before_step` needs the records
    /// of the iterations before it on the host (at least 1).
    fn chunk_limit(&self) -> usize {
        usize::MAX
    }

    /// The method's state after an iteration, for putting it back (see [`MethodState`]).
    fn save_state(&self) -> MethodState {
        MethodState::default()
    }

    fn restore_state(&mut self, _state: MethodState) {}

    /// The stop test after iteration `i` (0-based within this call).
    fn converged(&self, _i: usize, opts: &SynthesizeOptions) -> bool {
        loss_converged(
            &self.core().losses,
            opts.stop_criterion,
            opts.stop_iters_to_check,
        )
    }
}

/// The state after one iteration of a chunk, kept until the chunk's records are read.
struct IterState {
    x: Tensor,
    optimizer: Option<crate::optim::OptimizerState>,
    saved: usize,
    method: MethodState,
}

fn save_iteration<M: Method>(m: &M) -> IterState {
    let core = m.core();
    IterState {
        x: core.x.detach().copy(),
        optimizer: core.optimizer.as_ref().map(|o| o.export_state()),
        saved: core.saved.len(),
        method: m.save_state(),
    }
}

/// Puts the synthesis back to `state` (image in place: the optimizer holds it).
fn restore_iteration<M: Method>(m: &mut M, state: IterState) -> Result<()> {
    let core = m.core_mut();
    tch::no_grad(|| core.x.copy_(&state.x));
    if let (Some(o), Some(st)) = (&mut core.optimizer, &state.optimizer) {
        o.import_state(st)?;
    }
    core.saved.truncate(state.saved);
    m.restore_state(state.method);
    Ok(())
}

/// One iteration (iteration `n` over all calls, starting from the image `prev`): snapshot,
/// `before_step`, the optimizer step; returns its records and (‖∇‖, ‖Δx‖), on the device.
fn iterate<M: Method>(
    m: &mut M,
    n: usize,
    prev: &Tensor,
) -> Result<(StepRecord, (Tensor, Tensor))> {
    let core = m.core_mut();
    let every = core.store_progress.unwrap_or(0);
    if every > 0 && n.is_multiple_of(every) {
        // On the device until the chunk's read.
        core.saved.push(prev.shallow_clone());
    }
    m.before_step(n)?;
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
    let step_loss = stepped?.detach();
    let grad = x.grad();
    let gradient_norm = if grad.defined() {
        grad.norm()
    } else {
        Tensor::zeros([], (x.kind(), x.device()))
    };
    let record = m.after_step(&step_loss)?;
    let pixel_change_norm = (&m.core().x.detach() - prev).norm();
    Ok((record, (gradient_norm, pixel_change_norm)))
}

/// plenoptic's synthesis loop (spec §1). Call after [`Core::prepare`].
///
/// Iterations run in chunks (see [`crate::host`]): the records of a chunk stay on the
/// device until its end, then are read at once and handed to the records, the scheduler,
/// the finiteness check, the callback and the stop rule iteration by iteration, as an
/// iteration-by-iteration loop does; when one of them ends the run inside the chunk, the
/// state after that iteration is put back. A chunk is one iteration when a step depends on
/// the last records on the host: with a scheduler (the learning rate follows the loss),
/// with L-BFGS (it reads values in its step), and where [`Method::chunk_limit`] says so.
pub(crate) fn run<M: Method>(
    m: &mut M,
    opts: &SynthesizeOptions,
    mut callback: Option<&mut Callback>,
) -> Result<Outcome> {
    let chunk = crate::host::record_chunk();
    let mut i = 0;
    while i < opts.max_iter {
        let per_iteration = m.core().scheduler.is_some()
            || m.core()
                .optimizer
                .as_ref()
                .is_some_and(|o| o.reads_on_host());
        let len = if per_iteration {
            1
        } else {
            chunk.min(opts.max_iter - i).min(m.chunk_limit()).max(1)
        };
        let start_n = m.core().losses.len();
        let saved_before = m.core().saved.len();
        let mut records: Vec<StepRecord> = Vec::with_capacity(len);
        let mut norms: Vec<(Tensor, Tensor)> = Vec::with_capacity(len);
        let mut states: Vec<IterState> = Vec::with_capacity(len);
        let mut prev = m.core().x.detach().copy();
        let mut failure = None;
        for c in 0..len {
            match iterate(m, start_n + c, &prev) {
                Ok((record, norms_c)) => {
                    records.push(record);
                    norms.push(norms_c);
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
            if c + 1 < len {
                let st = save_iteration(m);
                prev = st.x.shallow_clone();
                states.push(st);
            }
        }
        let len = records.len();
        // One read: every value of the chunk, and the snapshots it took.
        let width = records.first().map_or(0, |r| r.extras.len());
        let mut parts = Vec::with_capacity(len * (4 + width));
        for (r, (g, p)) in records.iter().zip(&norms) {
            parts.push(r.loss.shallow_clone());
            parts.push(r.scheduler_loss.shallow_clone());
            parts.push(g.shallow_clone());
            parts.push(p.shallow_clone());
            parts.extend(r.extras.iter().map(|e| e.shallow_clone()));
        }
        let core = m.core_mut();
        let (values, snapshots) = crate::host::read_mixed(&parts, &core.saved[saved_before..]);
        for (k, s) in snapshots.into_iter().enumerate() {
            core.saved[saved_before + k] = s;
        }
        let row = 4 + width;
        let mut states = states.into_iter();
        for c in 0..len {
            let v = &values[c * row..(c + 1) * row];
            let (loss, scheduler_loss, gradient_norm, pixel_change_norm) = (v[0], v[1], v[2], v[3]);
            // The state after this iteration, kept for all but a complete chunk's last.
            let state = states.next();
            let image = state
                .as_ref()
                .map_or_else(|| m.core().x.detach(), |s| s.x.shallow_clone());
            m.push_extras(&v[4..]);
            let core = m.core_mut();
            core.losses.push(loss);
            core.gradient_norm.push(gradient_norm);
            if let (Some(s), Some(o)) = (&mut core.scheduler, &mut core.optimizer) {
                s.step(scheduler_loss, o);
            }
            core.pixel_change_norm.push(pixel_change_norm);
            let iteration = core.losses.len() - 1;
            let ended = iteration_end(
                loss,
                iteration,
                i + c,
                || {
                    callback.as_deref_mut().is_some_and(|cb| {
                        let extra = m.extra();
                        let p = Progress {
                            iteration,
                            loss,
                            gradient_norm,
                            pixel_change_norm,
                            lr: m.core().lr(),
                            image: &image,
                            extra: &extra,
                        };
                        cb(&p).is_break()
                    })
                },
                || m.converged(i + c, opts),
            );
            if let Some(end) = ended {
                if let Some(st) = state {
                    restore_iteration(m, st)?;
                }
                return end;
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        i += len;
    }
    Ok(Outcome {
        iterations: opts.max_iter,
        converged: false,
    })
}

/// How iteration `iteration` (index `k` of this call) ended, the same rule for one
/// synthesis and for each element of a batch (`crate::batch`): a non-finite loss fails it;
/// else the callback (`cancelled`, asked only then) may stop it; else the stop rule
/// (`converged`) ends the call after `k + 1` iterations; `None`: go on.
pub(crate) fn iteration_end(
    loss: f64,
    iteration: usize,
    k: usize,
    cancelled: impl FnOnce() -> bool,
    converged: impl FnOnce() -> bool,
) -> Option<Result<Outcome>> {
    if !loss.is_finite() {
        Some(Err(SynthError::NonFinite {
            iteration,
            value: loss,
        }))
    } else if cancelled() {
        Some(Err(SynthError::Cancelled { iteration }))
    } else if converged() {
        Some(Ok(Outcome {
            iterations: k + 1,
            converged: true,
        }))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::item;

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
