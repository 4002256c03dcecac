//! Geodesic: the shortest path between two images in a model's representation space
//! (plenoptic 1.1's `Geodesic`, deprecated there and gone after 1.2). The interior frames of a
//! sequence from `image_a` to `image_b` are optimised to minimise the mean squared step length
//! of the sequence's representation, plus the range penalty.
mod options;
mod saving;
mod straightness;

pub use options::{
    defaults, pixel_change_converged, GeodesicOptions, GeodesicSynthesizeOptions, InitialSequence,
};
pub use straightness::{deviation_from_line, make_straight_line, sample_brownian_bridge};

use crate::error::{Result, SynthError};
use crate::optim::{item, Optimizer, OptimizerConfig};
use crate::synthesis::{
    penalize_range, run, with_rng, Callback, Core, Method, MethodState, Outcome, StoreProgress,
    SynthesizeOptions,
};
use crate::validate::{
    validate_in_range, validate_model, validate_representation, validate_single_image,
};
use synthsweep_models::Model;
use tch::{Kind, Tensor};

/// `‖z_{t+1} − z_t‖²` for each step of a representation sequence (T, C, H, W): T − 1 values.
fn step_energy(z: &Tensor) -> Tensor {
    z.diff(1, 0, None::<Tensor>, None::<Tensor>)
        .norm_scalaropt_dim(2, [1, 2, 3], false)
        .square()
}

/// A geodesic synthesis in progress: plenoptic 1.1's `Geodesic` (`plenoptic.synthesize.geodesic`;
/// Hénaff & Simoncelli 2016).
///
/// `image_a` and `image_b` are (1, C, H, W) float tensors of the same shape with values inside
/// `allowed_range`; the sequence is (n_steps + 1, C, H, W), its ends fixed. The loss is the
/// mean squared step length of the representation sequence (squared representation units),
/// plus the range penalty; step energies and deviations from the line are recorded on the CPU.
///
/// # Errors
/// [`Geodesic::new`] returns [`SynthError::InvalidParam`] for invalid options, an image that
/// is not a single 4-D float image inside `allowed_range`, images of different shapes, or a
/// model that loses the gradient, changes the dtype or returns neither 3-D nor 4-D output;
/// [`SynthError::NonFiniteTarget`] when the representation of either image is not finite;
/// [`SynthError::Model`] when the model cannot take the images' shape.
pub struct Geodesic<'a> {
    model: &'a dyn Model,
    image_a: Tensor,
    image_b: Tensor,
    options: GeodesicOptions,
    pixelfade: Tensor,
    /// `core.x` holds the interior frames (n_steps − 1, C, H, W).
    core: Core,
    store_progress: Option<usize>,
    step_energy: Vec<Tensor>,
    dev_from_line: Vec<Tensor>,
    /// Representation and step energies from the most recent objective evaluation.
    cache: Option<(Tensor, Tensor)>,
    identity: Option<String>,
}

impl std::fmt::Debug for Geodesic<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geodesic")
            .field("model", &self.model.name())
            .field("options", &self.options)
            .field("iterations", &self.core.losses.len())
            .finish()
    }
}

impl<'a> Geodesic<'a> {
    /// Sets up the path from `image_a` to `image_b` (both (1, C, H, W), inside
    /// `allowed_range`). Draws: `rand` for the model check, then the bridge's `randn`.
    pub fn new(
        image_a: &Tensor,
        image_b: &Tensor,
        model: &'a dyn Model,
        options: GeodesicOptions,
    ) -> Result<Self> {
        with_rng(options.seed, || {
            Self::build(image_a, image_b, model, options)
        })
    }

    fn build(
        image_a: &Tensor,
        image_b: &Tensor,
        model: &'a dyn Model,
        options: GeodesicOptions,
    ) -> Result<Self> {
        options.validate()?;
        validate_single_image(image_a, "image_a")?;
        validate_single_image(image_b, "image_b")?;
        validate_in_range(image_a, "image_a", options.allowed_range)?;
        validate_in_range(image_b, "image_b", options.allowed_range)?;
        if image_a.size() != image_b.size() {
            return Err(SynthError::invalid(
                "image_b",
                format!(
                    "must have image_a's shape {:?}, got {:?}",
                    image_a.size(),
                    image_b.size()
                ),
            ));
        }
        let image_a = image_a.detach();
        let image_b = image_b
            .detach()
            .to_device(image_a.device())
            .to_kind(image_a.kind());
        validate_model(model, &image_a)?;
        for (end, name) in [(&image_a, "image_a"), (&image_b, "image_b")] {
            validate_representation(model, &tch::no_grad(|| model.forward(end)), name)?;
        }
        let n = options.n_steps;
        let pixelfade = make_straight_line(&image_a, &image_b, n)?;
        let initial = match options.initial_sequence {
            InitialSequence::Straight => pixelfade.shallow_clone(),
            InitialSequence::Bridge => sample_brownian_bridge(&image_a, &image_b, n)?,
        };
        let mut core = Core::new(&initial.narrow(0, 1, n as i64 - 1));
        core.default_optimizer = OptimizerConfig::adam_with_lr(defaults::LEARNING_RATE);
        Ok(Geodesic {
            model,
            image_a,
            image_b,
            options,
            pixelfade,
            core,
            store_progress: None,
            step_energy: Vec::new(),
            dev_from_line: Vec::new(),
            cache: None,
            identity: None,
        })
    }

    /// Runs up to `max_iter` iterations; a second call continues where the last one stopped.
    ///
    /// # Errors
    /// [`SynthError::InvalidParam`] for invalid options (or a `store_progress` or optimizer
    /// that differs from the first call's); [`SynthError::NonFinite`] when the objective
    /// becomes NaN or infinite (the iterations done are kept).
    pub fn synthesize(&mut self, opts: &GeodesicSynthesizeOptions) -> Result<Outcome> {
        let loop_opts = self.prepare(opts)?;
        run(self, &loop_opts, None)
    }

    /// As [`Geodesic::synthesize`], calling `callback` after every iteration.
    pub fn synthesize_with(
        &mut self,
        opts: &GeodesicSynthesizeOptions,
        callback: &mut Callback,
    ) -> Result<Outcome> {
        let loop_opts = self.prepare(opts)?;
        run(self, &loop_opts, Some(callback))
    }

    /// Resolves the stop criterion and sets up the optimizer; the shared loop takes no
    /// snapshots of its own (Geodesic records step energies instead).
    fn prepare(&mut self, opts: &GeodesicSynthesizeOptions) -> Result<SynthesizeOptions> {
        opts.validate()?;
        let every = opts.store_progress.every();
        if let Some(prev) = self.store_progress.filter(|&p| p != every) {
            return Err(SynthError::invalid(
                "store_progress",
                format!("a resumed synthesis must keep the same store_progress: it was {prev}, got {every} (true means 1)"),
            ));
        }
        let stop_criterion = match opts.stop_criterion {
            Some(c) => c,
            None => self.default_stop_criterion(),
        };
        let loop_opts = SynthesizeOptions {
            max_iter: opts.max_iter,
            optimizer: opts.optimizer.clone(),
            scheduler: None,
            store_progress: StoreProgress::Flag(false),
            stop_criterion,
            stop_iters_to_check: opts.stop_iters_to_check,
        };
        self.core.prepare(&loop_opts)?;
        self.store_progress = Some(every);
        Ok(loop_opts)
    }

    /// `‖pixelfade‖ / 10⁴ · (1 + √5)/2`, in float32 as plenoptic computes it.
    pub fn default_stop_criterion(&self) -> f64 {
        item(&(self.pixelfade.norm() / 1e4 * ((1.0 + 5f64.sqrt()) / 2.0)))
    }

    /// The whole sequence, anchors included (n_steps + 1, C, H, W).
    pub fn geodesic(&self) -> Tensor {
        Tensor::cat(&[&self.image_a, &self.core.x.detach(), &self.image_b], 0)
    }

    /// The objective: mean step energy of the representation plus the range penalty on the
    /// whole sequence; also returns the representation and step energies (detached).
    fn objective_parts(&self, interior: &Tensor) -> (Tensor, Tensor, Tensor) {
        let sequence = Tensor::cat(&[&self.image_a, interior, &self.image_b], 0);
        let z = self.model.forward(&sequence);
        let energy = step_energy(&z);
        let penalty = penalize_range(&sequence, self.options.allowed_range);
        let loss = energy.mean(None::<Kind>) + penalty * self.options.range_penalty_lambda;
        (loss, z.detach(), energy.detach())
    }

    /// The objective at `geodesic` (the current one when `None`), without gradient.
    pub fn objective_function(&self, geodesic: Option<&Tensor>) -> Tensor {
        let n = self.options.n_steps as i64;
        let interior =
            geodesic.map_or_else(|| self.core.x.detach(), |g| g.narrow(0, 1, n - 1).detach());
        tch::no_grad(|| self.objective_parts(&interior).0)
    }

    /// `‖J_t·â_t‖²` per interior frame: how much the model's representation of each frame
    /// changes direction, with `â_t` the unit acceleration of the representation sequence
    /// and `J_t` the model's Jacobian at frame t. (n_steps − 1) values.
    pub fn calculate_jerkiness(&self, geodesic: Option<&Tensor>) -> Result<Tensor> {
        let g = geodesic
            .map_or_else(|| self.geodesic(), |g| g.detach())
            .set_requires_grad(true);
        let t = g.size()[0];
        let z = self.model.forward(&g);
        let velocity = z.diff(1, 0, None::<Tensor>, None::<Tensor>);
        let acceleration = velocity.diff(1, 0, None::<Tensor>, None::<Tensor>);
        let magnitude = acceleration.norm_scalaropt_dim(2, [1, 2, 3], true);
        // Weights of the vector-Jacobian product: constants, as autograd's grad_outputs are.
        let direction = (acceleration / magnitude).detach();
        let root = z.narrow(0, 1, t - 2) * direction;
        let grad = Tensor::f_run_backward(&[root], &[&g], false, false)?.remove(0);
        Ok(grad
            .narrow(0, 1, t - 2)
            .norm_scalaropt_dim(2, [1, 2, 3], false)
            .square())
    }

    /// `store_progress`: at the start of an iteration, the step energies and deviation from
    /// the line of the most recent objective evaluation (one step behind the current
    /// sequence), or of the current sequence before any.
    /// `n`: the iteration about to start. One host read per record (see [`crate::host`]).
    fn store(&mut self, n: usize) {
        let every = self.store_progress.unwrap_or(0);
        if every == 0 || !n.is_multiple_of(every) {
            return;
        }
        let (z, energy) = match &self.cache {
            Some((z, e)) => (z.shallow_clone(), e.shallow_clone()),
            None => tch::no_grad(|| {
                let z = self.model.forward(&self.geodesic());
                let e = step_energy(&z);
                (z, e)
            }),
        };
        let (_, mut host) = crate::host::read_mixed(&[], &[energy, z]);
        let z = host.pop().expect("two tensors read");
        self.step_energy.push(host.pop().expect("two tensors read"));
        self.dev_from_line.push(deviation_from_line(&z));
    }

    /// Moves the synthesis to `device` as `kind` (anchors, pixelfade, interior frames,
    /// optimizer state; the records stay on the CPU), bound to `model`, which must already
    /// be there (`Model::to` on the same or another instance), as `Metamer::to` does: the
    /// seeded draws of [`Geodesic::new`] made on the CPU then run on the device.
    pub fn to<'b>(self, device: tch::Device, kind: Kind, model: &'b dyn Model) -> Geodesic<'b> {
        let mv = |t: &Tensor| t.to_device(device).to_kind(kind);
        let mut core = self.core;
        core.to(device, kind);
        Geodesic {
            model,
            image_a: mv(&self.image_a),
            image_b: mv(&self.image_b),
            options: self.options,
            pixelfade: mv(&self.pixelfade),
            core,
            store_progress: self.store_progress,
            step_energy: self.step_energy,
            dev_from_line: self.dev_from_line,
            // The last objective's values, which the next record reads (one step behind).
            cache: self.cache.map(|(z, e)| (mv(&z.detach()), mv(&e.detach()))),
            identity: self.identity,
        }
    }

    /// The model whose representation space the path lies in.
    pub fn model(&self) -> &dyn Model {
        self.model
    }
    /// The first end of the path (1, C, H, W), detached.
    pub fn image_a(&self) -> &Tensor {
        &self.image_a
    }
    /// The last end of the path (1, C, H, W), on `image_a`'s device and dtype, detached.
    pub fn image_b(&self) -> &Tensor {
        &self.image_b
    }
    /// The options it was built with.
    pub fn options(&self) -> &GeodesicOptions {
        &self.options
    }
    /// The number of steps of the path (n_steps + 1 frames, the ends included).
    pub fn n_steps(&self) -> usize {
        self.options.n_steps
    }
    /// The straight line in pixel space from `image_a` to `image_b`.
    pub fn pixelfade(&self) -> &Tensor {
        &self.pixelfade
    }
    /// Objective before each step, one entry per iteration.
    pub fn losses(&self) -> &[f64] {
        &self.core.losses
    }
    /// ‖∇‖ of that objective with respect to the interior frames, one entry per iteration.
    pub fn gradient_norm(&self) -> &[f64] {
        &self.core.gradient_norm
    }
    /// ‖interior after − interior before‖ of each step.
    pub fn pixel_change_norm(&self) -> &[f64] {
        &self.core.pixel_change_norm
    }
    /// The recorded step energies, (records, n_steps), on the CPU.
    pub fn step_energy(&self) -> Tensor {
        stack_or_empty(&self.step_energy, &[self.options.n_steps as i64])
    }
    /// The recorded deviations from the line, (records, n_steps + 1, 2), on the CPU.
    pub fn dev_from_line(&self) -> Tensor {
        stack_or_empty(&self.dev_from_line, &[self.options.n_steps as i64 + 1, 2])
    }
    /// `None` before the first `synthesize` call, then the recording interval (0 = off).
    pub fn store_progress(&self) -> Option<usize> {
        self.store_progress
    }
    /// The optimizer, once the first `synthesize` call has built it.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.core.optimizer.as_ref()
    }
}

fn stack_or_empty(items: &[Tensor], shape: &[i64]) -> Tensor {
    if items.is_empty() {
        let mut s = vec![0];
        s.extend_from_slice(shape);
        return Tensor::zeros(s, (Kind::Float, tch::Device::Cpu));
    }
    Tensor::stack(items, 0)
}

impl Method for Geodesic<'_> {
    fn core(&self) -> &Core {
        &self.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }
    fn before_step(&mut self, n: usize) -> Result<()> {
        self.store(n);
        Ok(())
    }
    /// The last objective's representation and energies, and the records' lengths.
    fn save_state(&self) -> MethodState {
        MethodState {
            tensors: self
                .cache
                .as_ref()
                .map(|(z, e)| vec![z.shallow_clone(), e.shallow_clone()])
                .unwrap_or_default(),
            lens: vec![self.step_energy.len(), self.dev_from_line.len()],
        }
    }
    fn restore_state(&mut self, state: MethodState) {
        let mut t = state.tensors.into_iter();
        self.cache = t.next().zip(t.next());
        self.step_energy.truncate(state.lens[0]);
        self.dev_from_line.truncate(state.lens[1]);
    }
    fn objective(&mut self, x: &Tensor) -> Result<Tensor> {
        let (loss, z, energy) = self.objective_parts(x);
        self.cache = Some((z, energy));
        Ok(loss)
    }
    fn converged(&self, _i: usize, opts: &SynthesizeOptions) -> bool {
        pixel_change_converged(
            &self.core.pixel_change_norm,
            opts.stop_criterion,
            opts.stop_iters_to_check,
        )
    }
}
