//! Several syntheses in one tensor: B metamers (or B MAD competitions) that share a model
//! (metrics), options, image shape and optimizer run as one synthesis over a (B, C, H, W)
//! tensor.
//!
//! Each element is built as its one-task synthesis is ([`Metamer::new`],
//! [`MadCompetition::new`]): its own target image, seed and initial draw, in plenoptic's
//! RNG order. The batch's objective is the sum of the per-element objectives, so the
//! gradient of each element is its own objective's (the models and metrics have no
//! coupling across the batch dimension: see the `batch` tests). Adam's moments and step
//! counter and SGD's momentum are per element (the optimizers are element-wise). Every
//! element keeps its own records (loss, ‖∇‖ and ‖Δx‖ of its own slice), snapshots, stop
//! rule and outcome: a finished element is frozen at the iteration its rule met (its pixels
//! and optimizer state are written back to its synthesis and stop changing) and leaves the
//! batch, which narrows to the elements still running. Records are read once per chunk of
//! iterations for the whole batch (see [`crate::host`]).
//!
//! After the call, each element is exactly a one-task synthesis that ran those iterations:
//! its records, `save`, `objective_function` and a later one-task `synthesize` work as
//! usual. Results equal the one-task run within the fixtures' tolerances, not bit for bit:
//! the models' batched convolutions and the per-element reductions sum in another order.
//! A batch of one runs the one-task path itself.
//!
//! Only Adam and SGD without a scheduler are batched; L-BFGS (a shared line search),
//! schedulers (a learning rate that follows each element's loss), coarse-to-fine metamers,
//! eigendistortions and geodesics run one task at a time.
use crate::error::{Result, SynthError};
use crate::mad::MadCompetition;
use crate::metamer::Metamer;
use crate::optim::{OptimizerConfig, OptimizerState};
use crate::state::parameters;
use crate::synthesis::{
    iteration_end, Callback, Core, Method, Outcome, Progress, SynthesizeOptions,
};
use crate::LossFunction;
use std::ops::ControlFlow;
use tch::{Kind, Tensor};

/// The batched callback: element index (into the slice given) and its progress, after each
/// of its iterations; `ControlFlow::Break(())` cancels that element (it ends with
/// [`SynthError::Cancelled`], its iterations kept; the others go on).
pub type BatchCallback<'c> = dyn FnMut(usize, &Progress) -> ControlFlow<()> + 'c;

/// The batched objective of the elements still running.
trait Objective {
    /// Per-element objectives, shape (B,), at `x` (B, C, H, W).
    fn objective(&self, x: &Tensor) -> Tensor;
    /// Per-element values recorded after each step (each (B,)), as `Method::after_step`'s
    /// extras.
    fn extras(&self, _x: &Tensor) -> Vec<Tensor> {
        Vec::new()
    }
    /// Keeps the rows `keep` (int64 indices into the current batch).
    fn select(&mut self, keep: &Tensor);
}

/// `Σ` over every dimension but the first.
fn per_element_sum(t: &Tensor) -> Tensor {
    let b = t.size()[0];
    t.reshape([b, -1]).sum_dim_intlist(1, false, None::<Kind>)
}

/// ‖row‖₂ of each element, shape (B,).
fn per_element_norm(t: &Tensor) -> Tensor {
    let b = t.size()[0];
    t.reshape([b, -1]).norm_scalaropt_dim(2.0, 1, false)
}

/// `penalize_range` per element, shape (B,).
fn penalize_range_rows(x: &Tensor, (a, b): (f64, f64)) -> Tensor {
    per_element_sum(&(x - a).clamp_max(0.0).square())
        + per_element_sum(&(x - b).clamp_min(0.0).square())
}

/// `apply_loss` per element, shape (B,).
fn apply_loss_rows(f: LossFunction, a: &Tensor, b: &Tensor) -> Tensor {
    let n = a.size()[0];
    match f {
        LossFunction::Mse => (a - b)
            .square()
            .reshape([n, -1])
            .mean_dim(1, false, None::<Kind>),
        LossFunction::L2Norm => per_element_norm(&(b - a)),
        LossFunction::RelativeSse => {
            per_element_norm(&(b - a)).square() / per_element_norm(b).square()
        }
    }
}

struct MetamerObjective<'a> {
    model: &'a dyn synthsweep_models::Model,
    targets: Tensor,
    loss: LossFunction,
    range: (f64, f64),
    lambda: f64,
}

impl Objective for MetamerObjective<'_> {
    fn objective(&self, x: &Tensor) -> Tensor {
        apply_loss_rows(self.loss, &self.model.forward(x), &self.targets)
            + penalize_range_rows(x, self.range) * self.lambda
    }
    fn select(&mut self, keep: &Tensor) {
        self.targets = self.targets.index_select(0, keep);
    }
}

struct MadObjective<'a> {
    optimized: &'a dyn synthsweep_models::Metric,
    reference: &'a dyn synthsweep_models::Metric,
    images: Tensor,
    /// ±1 (minimize / maximize), λ and the reference target, each (B,) in the image's kind.
    sign: Tensor,
    tradeoff: Tensor,
    target: Tensor,
    range: (f64, f64),
    range_lambda: f64,
}

impl MadObjective<'_> {
    fn one_per_element(&self, v: Tensor) -> Tensor {
        v.reshape([self.images.size()[0]])
    }
}

impl Objective for MadObjective<'_> {
    fn objective(&self, x: &Tensor) -> Tensor {
        let synthesis = self.one_per_element(self.optimized.forward(&self.images, x));
        let fixed = (self
            .one_per_element(self.reference.forward(&self.images, x))
            .neg()
            + &self.target)
            .square();
        synthesis * &self.sign
            + fixed * &self.tradeoff
            + penalize_range_rows(x, self.range) * self.range_lambda
    }
    fn extras(&self, x: &Tensor) -> Vec<Tensor> {
        tch::no_grad(|| {
            vec![
                self.one_per_element(self.reference.forward(&self.images, x)),
                self.one_per_element(self.optimized.forward(&self.images, x)),
            ]
        })
    }
    fn select(&mut self, keep: &Tensor) {
        for t in [
            &mut self.images,
            &mut self.sign,
            &mut self.tradeoff,
            &mut self.target,
        ] {
            *t = t.index_select(0, keep);
        }
    }
}

/// Whether two trait objects are the same instance (their data pointers).
fn same_instance<T: ?Sized>(a: &T, b: &T) -> bool {
    std::ptr::eq(a as *const T as *const u8, b as *const T as *const u8)
}

/// Why `elements` cannot run as one batch, if they cannot: images of another shape, kind or
/// device, other options (the seed aside), another model instance, an optimizer other than
/// Adam or SGD, a scheduler, or an element whose optimizer state differs in kind from the
/// others' (SGD's momentum buffer present in some only).
fn check_common<M: Method>(
    elements: &[M],
    image: impl Fn(&M) -> &Tensor,
    options: impl Fn(&M) -> serde_json::Value,
    same_model: impl Fn(&M, &M) -> bool,
    opts: &SynthesizeOptions,
) -> Result<()> {
    let bad = |msg: String| Err(SynthError::invalid("batch", msg));
    let first = &elements[0];
    let img = image(first);
    if img.size()[0] != 1 {
        return bad(format!(
            "every element must hold one image (batch dimension 1), got shape {:?}",
            img.size()
        ));
    }
    if opts.scheduler.is_some() {
        return bad("a scheduler follows each element's loss: run these one at a time".into());
    }
    for (k, e) in elements.iter().enumerate().skip(1) {
        let i = image(e);
        if i.size() != img.size() || i.kind() != img.kind() || i.device() != img.device() {
            return bad(format!(
                "element {k}'s image is {:?} {:?} on {:?}, element 0's {:?} {:?} on {:?}",
                i.size(),
                i.kind(),
                i.device(),
                img.size(),
                img.kind(),
                img.device()
            ));
        }
        if options(e) != options(first) {
            return bad(format!(
                "element {k}'s options differ from element 0's (only the seed may)"
            ));
        }
        if !same_model(e, first) {
            return bad(format!(
                "element {k} uses another model or metric instance than element 0"
            ));
        }
        let (a, b) = (e.core(), first.core());
        if a.optimizer.as_ref().map(|o| o.config()) != b.optimizer.as_ref().map(|o| o.config()) {
            return bad(format!("element {k}'s optimizer differs from element 0's"));
        }
    }
    match first.core().optimizer.as_ref().map(|o| o.config()) {
        Some(OptimizerConfig::Adam(_)) | Some(OptimizerConfig::Sgd(_)) => Ok(()),
        _ => bad("only Adam and SGD are batched (L-BFGS's line search is shared): run these one at a time".into()),
    }
}

/// The optimizer state of the whole batch: per-element rows of every moment, and Adam's
/// step counts (on the device, as float64, for the bias corrections; and on the host).
struct BatchOptimizer {
    config: OptimizerConfig,
    lr: f64,
    /// Moments by name (`exp_avg`, `exp_avg_sq`, `max_exp_avg_sq`, `momentum_buffer`),
    /// (B, C, H, W) each; absent until the first step creates them.
    tensors: Vec<(&'static str, Option<Tensor>)>,
    steps: Tensor,
    steps_host: Vec<u64>,
}

impl BatchOptimizer {
    fn names(config: &OptimizerConfig) -> &'static [&'static str] {
        match config {
            OptimizerConfig::Adam(_) => &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            _ => &["momentum_buffer"],
        }
    }

    fn new(cores: &[&Core], x: &Tensor) -> Result<Self> {
        let opt0 = cores[0].optimizer.as_ref().expect("prepared");
        let config = opt0.config().clone();
        let states: Vec<OptimizerState> = cores
            .iter()
            .map(|c| c.optimizer.as_ref().expect("prepared").export_state())
            .collect();
        let (device, kind) = (x.device(), x.kind());
        let mut tensors = Vec::new();
        for &name in Self::names(&config) {
            let have: Vec<Option<Tensor>> = states
                .iter()
                .map(|s| s.tensor(name, device, kind))
                .collect();
            let t = if have.iter().all(Option::is_none) {
                None
            } else if matches!(config, OptimizerConfig::Adam(_)) {
                // Adam's moments start at zeros: an element without them is one before its
                // first step.
                let rows: Vec<Tensor> = have
                    .into_iter()
                    .enumerate()
                    .map(|(k, t)| t.unwrap_or_else(|| x.get(k as i64).unsqueeze(0).zeros_like()))
                    .collect();
                Some(Tensor::cat(&rows, 0))
            } else if have.iter().all(Option::is_some) {
                Some(Tensor::cat(
                    &have.into_iter().flatten().collect::<Vec<_>>(),
                    0,
                ))
            } else {
                return Err(SynthError::invalid(
                    "batch",
                    "SGD's momentum buffer exists for some elements only: run these one at a time",
                ));
            };
            tensors.push((name, t));
        }
        let steps_host: Vec<u64> = states
            .iter()
            .map(|s| s.scalars.get("step").copied().unwrap_or(0.0) as u64)
            .collect();
        let steps = Tensor::from_slice(&steps_host.iter().map(|&s| s as f64).collect::<Vec<_>>())
            .to_device(device);
        Ok(BatchOptimizer {
            config,
            lr: opt0.lr(),
            tensors,
            steps,
            steps_host,
        })
    }

    fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, t)| t.as_ref())
    }

    fn set(&mut self, name: &str, t: Tensor) {
        if let Some(e) = self.tensors.iter_mut().find(|(n, _)| *n == name) {
            e.1 = Some(t);
        }
    }

    /// A per-element column (B,) as (B, 1, 1, 1) in `kind`.
    fn column(t: &Tensor, dims: usize, kind: Kind) -> Tensor {
        let mut shape = vec![-1i64];
        shape.extend(std::iter::repeat_n(1, dims - 1));
        t.reshape(shape).to_kind(kind)
    }

    /// One step of every element (torch's `_single_tensor_adam` / `_single_tensor_sgd`, as
    /// `crate::optim` does for one element, with per-element bias corrections).
    fn step(&mut self, x: &mut Tensor) {
        let grad = x.grad();
        if !grad.defined() {
            return;
        }
        let dims = x.dim();
        let kind = x.kind();
        let lr = self.lr;
        match self.config.clone() {
            OptimizerConfig::Adam(o) => {
                let grad = if o.weight_decay != 0.0 {
                    &grad + &*x * o.weight_decay
                } else {
                    grad
                };
                let mut m = self
                    .get("exp_avg")
                    .map_or_else(|| x.zeros_like(), |t| t.shallow_clone());
                let mut v = self
                    .get("exp_avg_sq")
                    .map_or_else(|| x.zeros_like(), |t| t.shallow_clone());
                let _ = self.steps.g_add_scalar_(1.0);
                for s in &mut self.steps_host {
                    *s += 1;
                }
                let (beta1, beta2) = o.betas;
                let _ = m.lerp_(&grad, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2);
                let _ = v.addcmul_(&(&grad * (1.0 - beta2)), &grad);
                let bias_correction1 = Tensor::pow_scalar(beta1, &self.steps).neg() + 1.0;
                let bias_correction2 = Tensor::pow_scalar(beta2, &self.steps).neg() + 1.0;
                // −(lr / bc1), divided in float64 as the one-element path does on the host.
                let neg_step_size = Self::column(
                    &(bias_correction1.full_like(lr) / &bias_correction1).neg(),
                    dims,
                    kind,
                );
                let bias_correction2_sqrt =
                    Self::column(&bias_correction2.pow_tensor_scalar(0.5), dims, kind);
                let denom = if o.amsgrad {
                    let vmax = self
                        .get("max_exp_avg_sq")
                        .map_or_else(|| x.zeros_like(), |t| t.shallow_clone())
                        .maximum(&v);
                    let d = vmax.sqrt() / &bias_correction2_sqrt + o.eps;
                    self.set("max_exp_avg_sq", vmax);
                    d
                } else {
                    v.sqrt() / &bias_correction2_sqrt + o.eps
                };
                let _ = x.addcdiv_(&(&m * &neg_step_size), &denom);
                self.set("exp_avg", m);
                self.set("exp_avg_sq", v);
            }
            OptimizerConfig::Sgd(o) => {
                let mut grad = if o.weight_decay != 0.0 {
                    &grad + &*x * o.weight_decay
                } else {
                    grad
                };
                if o.momentum != 0.0 {
                    let buf = match self.get("momentum_buffer") {
                        None => grad.detach().copy(),
                        Some(b) => {
                            let mut b = b.shallow_clone();
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
                    self.set("momentum_buffer", buf);
                }
                let _ = x.g_add_(&(grad * -lr));
            }
            OptimizerConfig::Lbfgs(_) => unreachable!("checked: only Adam and SGD are batched"),
        }
    }

    /// A copy of the state (moments), for putting an element back to this iteration.
    fn snapshot(&self) -> Vec<(&'static str, Option<Tensor>)> {
        self.tensors
            .iter()
            .map(|(n, t)| (*n, t.as_ref().map(|t| t.detach().copy())))
            .collect()
    }

    fn select(&mut self, keep: &Tensor, rows: &[usize]) {
        for (_, t) in &mut self.tensors {
            if let Some(x) = t.take() {
                *t = Some(x.index_select(0, keep));
            }
        }
        self.steps = self.steps.index_select(0, keep);
        self.steps_host = rows.iter().map(|&r| self.steps_host[r]).collect();
    }
}

/// What one element's optimizer gets back: its rows of `moments`, its step count.
fn element_state(
    old: &OptimizerState,
    moments: &[(&'static str, Option<Tensor>)],
    row: i64,
    step: u64,
    adam: bool,
) -> OptimizerState {
    let mut st = OptimizerState::default();
    for key in ["lr", "initial_lr"] {
        if let Some(&v) = old.scalars.get(key) {
            st.scalars.insert(key.into(), v);
        }
    }
    if adam {
        st.scalars.insert("step".into(), step as f64);
    }
    for (name, t) in moments {
        if let Some(t) = t {
            st.tensors
                .insert((*name).to_string(), t.get(row).unsqueeze(0).detach().copy());
        }
    }
    st
}

/// The state after one iteration of a chunk, for putting an element back to it.
struct Saved {
    x: Tensor,
    moments: Vec<(&'static str, Option<Tensor>)>,
}

/// The batched loop: plenoptic's synthesis loop (spec §1) for every element at once. The
/// elements are prepared (`Core::prepare`) and checked compatible.
fn run_batch<M: Method>(
    elements: &mut [M],
    objective: &mut dyn Objective,
    opts: &SynthesizeOptions,
    mut callback: Option<&mut BatchCallback>,
) -> Result<Vec<Result<Outcome>>> {
    let b = elements.len();
    let xs: Vec<Tensor> = elements.iter().map(|e| e.core().x.detach()).collect();
    let mut x = Tensor::cat(&xs, 0).set_requires_grad(true);
    let cores: Vec<&Core> = elements.iter().map(|e| e.core()).collect();
    let mut optimizer = BatchOptimizer::new(&cores, &x)?;
    let adam = matches!(optimizer.config, OptimizerConfig::Adam(_));
    let old_states: Vec<OptimizerState> = elements
        .iter()
        .map(|e| {
            e.core()
                .optimizer
                .as_ref()
                .expect("prepared")
                .export_state()
        })
        .collect();
    // `rows[r]`: the element at row r of the batch.
    let mut rows: Vec<usize> = (0..b).collect();
    let mut outcomes: Vec<Option<Result<Outcome>>> = (0..b).map(|_| None).collect();
    let every = elements[0].core().store_progress.unwrap_or(0);
    let chunk = crate::host::record_chunk();
    let mut i = 0;
    while i < opts.max_iter && !rows.is_empty() {
        let len = chunk.min(opts.max_iter - i).max(1);
        let n_rows = rows.len();
        let start_n: Vec<usize> = rows
            .iter()
            .map(|&e| elements[e].core().losses.len())
            .collect();
        let mut records: Vec<Tensor> = Vec::with_capacity(len * 4);
        // (row, chunk iteration, snapshot on the device)
        let mut snaps: Vec<(usize, usize, Tensor)> = Vec::new();
        let mut states: Vec<Saved> = Vec::with_capacity(len);
        let mut prev = x.detach().copy();
        let mut width = 0;
        for c in 0..len {
            if every > 0 {
                for (r, &n0) in start_n.iter().enumerate() {
                    if (n0 + c).is_multiple_of(every) {
                        snaps.push((r, c, prev.get(r as i64).unsqueeze(0)));
                    }
                }
            }
            x.zero_grad();
            let per = objective.objective(&x);
            per.sum(None::<Kind>).f_backward()?;
            let grad = x.grad();
            let gradient_norm = if grad.defined() {
                per_element_norm(&grad)
            } else {
                per.zeros_like()
            };
            tch::no_grad(|| optimizer.step(&mut x));
            let now = x.detach();
            let extras = objective.extras(&now);
            width = extras.len();
            let pixel_change_norm = per_element_norm(&(&now - &prev));
            records.push(per.detach());
            records.push(gradient_norm);
            records.push(pixel_change_norm);
            records.extend(extras);
            if c + 1 < len {
                let st = Saved {
                    x: now.copy(),
                    moments: optimizer.snapshot(),
                };
                prev = st.x.shallow_clone();
                states.push(st);
            }
        }
        // One read: the chunk's records of every row, and its snapshots.
        let mut parts = vec![Tensor::stack(&records, 0)];
        parts.extend(snaps.iter().map(|(_, _, t)| t.shallow_clone()));
        let (_, mut read) = crate::host::read_mixed(&[], &parts);
        let table = read.remove(0).to_kind(Kind::Double);
        let table: Vec<f64> = Vec::try_from(table.reshape([-1])).expect("a float64 vector");
        let row_len = 3 + width;
        let value = |c: usize, k: usize, r: usize| table[(c * row_len + k) * n_rows + r];
        let mut snaps: Vec<(usize, usize, Tensor)> = snaps
            .into_iter()
            .zip(read)
            .map(|((r, c, _), t)| (r, c, t))
            .collect();
        let mut ended_rows = Vec::new();
        for (r, &e) in rows.iter().enumerate() {
            for c in 0..len {
                let (loss, gradient_norm, pixel_change_norm) =
                    (value(c, 0, r), value(c, 1, r), value(c, 2, r));
                let extras: Vec<f64> = (0..width).map(|k| value(c, 3 + k, r)).collect();
                let element = &mut elements[e];
                element.push_extras(&extras);
                let core = element.core_mut();
                if let Some(k) = snaps.iter().position(|(sr, sc, _)| *sr == r && *sc == c) {
                    core.saved.push(snaps.remove(k).2);
                }
                core.losses.push(loss);
                core.gradient_norm.push(gradient_norm);
                core.pixel_change_norm.push(pixel_change_norm);
                let iteration = core.losses.len() - 1;
                let image = match states.get(c) {
                    Some(s) => s.x.get(r as i64).unsqueeze(0),
                    None => x.detach().get(r as i64).unsqueeze(0),
                };
                let ended = iteration_end(
                    loss,
                    iteration,
                    i + c,
                    || {
                        callback.as_deref_mut().is_some_and(|cb| {
                            let extra = element.extra();
                            let p = Progress {
                                iteration,
                                loss,
                                gradient_norm,
                                pixel_change_norm,
                                lr: optimizer.lr,
                                image: &image,
                                extra: &extra,
                            };
                            cb(e, &p).is_break()
                        })
                    },
                    || element.converged(i + c, opts),
                )
                .or_else(|| {
                    // The last iteration of the call ends this element too.
                    (i + c + 1 == opts.max_iter).then_some(Ok(Outcome {
                        iterations: opts.max_iter,
                        converged: false,
                    }))
                });
                if let Some(end) = ended {
                    let moments = match states.get(c) {
                        Some(s) => &s.moments,
                        None => &optimizer.tensors,
                    };
                    // Adam's count after iteration c of this chunk.
                    let step = optimizer.steps_host[r] - (len - 1 - c) as u64;
                    let st = element_state(&old_states[e], moments, r as i64, step, adam);
                    let core = element.core_mut();
                    tch::no_grad(|| core.x.copy_(&image));
                    core.optimizer
                        .as_mut()
                        .expect("prepared")
                        .import_state(&st)?;
                    outcomes[e] = Some(end);
                    ended_rows.push(r);
                    break;
                }
            }
        }
        i += len;
        if !ended_rows.is_empty() {
            let keep: Vec<usize> = (0..rows.len())
                .filter(|r| !ended_rows.contains(r))
                .collect();
            let index = Tensor::from_slice(&keep.iter().map(|&r| r as i64).collect::<Vec<_>>())
                .to_device(x.device());
            x = x.detach().index_select(0, &index).set_requires_grad(true);
            optimizer.select(&index, &keep);
            objective.select(&index);
            rows = keep.iter().map(|&r| rows[r]).collect();
        }
    }
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(Ok(Outcome {
                iterations: 0,
                converged: false,
            }))
        })
        .collect())
}

/// Prepares every element for `opts` (as its `synthesize` would).
fn prepare_all<M: Method>(elements: &mut [M], opts: &SynthesizeOptions) -> Result<()> {
    for e in elements.iter_mut() {
        e.core_mut().prepare(opts)?;
    }
    Ok(())
}

/// Runs `metamers` as one synthesis over a (B, C, H, W) tensor (see the module docs): up to
/// `opts.max_iter` iterations each, each element stopping on its own rule. Returns each
/// element's outcome, as its own `synthesize` would have.
///
/// # Errors
/// The outer error is [`SynthError::InvalidParam`] (`batch`) when the metamers cannot run
/// together: images of another shape (each must be (1, C, H, W)), kind or device, other
/// options than the seed, another model instance, an optimizer other than Adam or SGD, a
/// scheduler, or invalid `opts`; nothing has run then. An element's own error (a loss that
/// is not finite, a cancel) is its entry's.
pub fn synthesize_metamers(
    metamers: &mut [Metamer<'_>],
    opts: &SynthesizeOptions,
    callback: Option<&mut BatchCallback>,
) -> Result<Vec<Result<Outcome>>> {
    match metamers.len() {
        0 => return Ok(Vec::new()),
        1 => {
            return Ok(vec![one(
                &mut metamers[0],
                opts,
                callback,
                Metamer::synthesize_with,
            )])
        }
        _ => {}
    }
    prepare_all(metamers, opts)?;
    check_common(
        metamers,
        |m| &m.image,
        |m| parameters(&m.options),
        |a, b| same_instance(a.model, b.model),
        opts,
    )?;
    let o = &metamers[0].options;
    let targets: Vec<Tensor> = metamers
        .iter()
        .map(|m| m.target_representation.shallow_clone())
        .collect();
    let mut objective = MetamerObjective {
        model: metamers[0].model,
        targets: Tensor::cat(&targets, 0),
        loss: o.loss_function,
        range: o.allowed_range,
        lambda: o.range_penalty_lambda,
    };
    run_batch(metamers, &mut objective, opts, callback)
}

/// As [`synthesize_metamers`], for MAD competitions: they share both metrics (instances) and
/// options (the seed aside); each keeps its own image, `minmax`, λ and reference target.
///
/// # Errors
/// As [`synthesize_metamers`].
pub fn synthesize_mads(
    mads: &mut [MadCompetition<'_>],
    opts: &SynthesizeOptions,
    callback: Option<&mut BatchCallback>,
) -> Result<Vec<Result<Outcome>>> {
    match mads.len() {
        0 => return Ok(Vec::new()),
        1 => {
            return Ok(vec![one(
                &mut mads[0],
                opts,
                callback,
                MadCompetition::synthesize_with,
            )])
        }
        _ => {}
    }
    prepare_all(mads, opts)?;
    check_common(
        mads,
        |m| &m.image,
        |m| parameters(&m.options),
        |a, b| {
            same_instance(a.optimized_metric, b.optimized_metric)
                && same_instance(a.reference_metric, b.reference_metric)
        },
        opts,
    )?;
    let (device, kind) = (mads[0].image.device(), mads[0].image.kind());
    let column = |f: &dyn Fn(&MadCompetition) -> f64| {
        Tensor::from_slice(&mads.iter().map(f).collect::<Vec<f64>>())
            .to_device(device)
            .to_kind(kind)
    };
    let images: Vec<Tensor> = mads.iter().map(|m| m.image.shallow_clone()).collect();
    let o = &mads[0].options;
    let mut objective = MadObjective {
        optimized: mads[0].optimized_metric,
        reference: mads[0].reference_metric,
        images: Tensor::cat(&images, 0),
        sign: column(&|m| m.minmax.sign()),
        tradeoff: column(&|m| m.metric_tradeoff_lambda),
        target: column(&|m| m.reference_metric_target),
        range: o.allowed_range,
        range_lambda: o.range_penalty_lambda,
    };
    run_batch(mads, &mut objective, opts, callback)
}

/// A batch of one: the one-task path itself.
fn one<M>(
    m: &mut M,
    opts: &SynthesizeOptions,
    callback: Option<&mut BatchCallback>,
    synthesize_with: impl FnOnce(&mut M, &SynthesizeOptions, &mut Callback) -> Result<Outcome>,
) -> Result<Outcome> {
    match callback {
        Some(cb) => synthesize_with(m, opts, &mut |p: &Progress| cb(0, p)),
        None => synthesize_with(m, opts, &mut |_: &Progress| ControlFlow::Continue(())),
    }
}
