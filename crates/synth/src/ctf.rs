//! MetamerCTF: coarse-to-fine metamer synthesis for models with scales (plenoptic's
//! `MetamerCTF`): the loss is restricted to one scale at a time, coarse first, then to all.
use crate::error::{Result, SynthError};
use crate::metamer::{Metamer, MetamerOptions};
use crate::state::{Mismatches, StateFile, StateWriter};
use crate::synthesis::{
    loss_converged, run, with_rng, Callback, Core, Method, Outcome, StepRecord, SynthesizeOptions,
};
use serde_json::json;
use std::path::Path;
use synthsweep_models::Model;
use tch::{Device, Kind, Tensor};

/// The name of the last stage, where the whole representation is matched.
pub const ALL: &str = "all";

pub use synthsweep_core::params::{CoarseToFine, CtfSynthesizeOptions};

/// plenoptic's `validate_coarse_to_fine`: the model must have scales, and restricting it to
/// a scale must change its output. Draws one `rand(image.shape)` (float32).
fn validate_coarse_to_fine(model: &dyn Model, image: &Tensor) -> Result<Vec<String>> {
    let scales = model.scales().filter(|s| !s.is_empty()).ok_or_else(|| {
        SynthError::invalid(
            "model",
            format!(
                "`{}` has no scales, so it cannot be used coarse-to-fine",
                model.name()
            ),
        )
    })?;
    let test = Tensor::rand(image.size(), (Kind::Float, image.device())).to_kind(image.kind());
    tch::no_grad(|| {
        let full = model.forward(&test).size();
        for s in &scales[..scales.len() - 1] {
            if model.forward_scales(&test, std::slice::from_ref(s))?.size() == full {
                return Err(SynthError::invalid(
                    "model",
                    format!("`{}` returns the same shape when restricted to scale {s}, so it cannot be used coarse-to-fine", model.name()),
                ));
            }
        }
        Ok(scales)
    })
}

/// A coarse-to-fine metamer synthesis in progress: plenoptic's `MetamerCTF`
/// (`plenoptic.synthesize.metamer`), for models with scales ([`Model::scales`], e.g.
/// `portilla_simoncelli` and `steerable_pyramid`).
///
/// Images, shapes, ranges and units as [`Metamer`]. Errors: those of [`Metamer`]'s
/// constructors, and [`SynthError::InvalidParam`] when the model has no scales or returns the
/// same shape when restricted to a scale (plenoptic's `validate_coarse_to_fine`).
#[derive(Debug)]
pub struct MetamerCtf<'a> {
    pub(crate) metamer: Metamer<'a>,
    pub(crate) coarse_to_fine: CoarseToFine,
    pub(crate) scales: Vec<String>,
    pub(crate) scales_timing: Vec<(String, Vec<usize>)>,
    pub(crate) scales_loss: Vec<f64>,
    pub(crate) scales_finished: Vec<String>,
    ctf_target: Option<Tensor>,
    pending_overall: Option<Tensor>,
    change_scale_criterion: Option<f64>,
    ctf_iters_to_check: usize,
}

impl<'a> MetamerCtf<'a> {
    /// Draws as Metamer, then one more `rand(image.shape)` for the coarse-to-fine check.
    pub fn new(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        coarse_to_fine: CoarseToFine,
    ) -> Result<Self> {
        Self::build(image, model, options, None, coarse_to_fine)
    }

    /// As [`MetamerCtf::new`], starting from `initial_image` (the image's shape) instead of noise.
    pub fn with_initial_image(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        initial_image: &Tensor,
        coarse_to_fine: CoarseToFine,
    ) -> Result<Self> {
        Self::build(image, model, options, Some(initial_image), coarse_to_fine)
    }

    fn build(
        image: &Tensor,
        model: &'a dyn Model,
        options: MetamerOptions,
        initial: Option<&Tensor>,
        coarse_to_fine: CoarseToFine,
    ) -> Result<Self> {
        if model.scales().is_none() {
            return Err(SynthError::invalid(
                "model",
                format!(
                    "`{}` has no scales, so it cannot be used coarse-to-fine",
                    model.name()
                ),
            ));
        }
        let seed = options.seed;
        let (metamer, model_scales) = with_rng(seed, || {
            let m = Metamer::build_unlocked(image, model, options, initial)?;
            let scales = validate_coarse_to_fine(model, &m.image)?;
            Ok::<_, SynthError>((m, scales))
        })?;
        let n = model_scales.len();
        let mut scales: Vec<String> = model_scales[..n - 1].to_vec();
        if coarse_to_fine == CoarseToFine::Separate {
            scales.push(model_scales[n - 1].clone());
        }
        scales.push(ALL.to_string());
        let mut scales_timing: Vec<(String, Vec<usize>)> =
            scales.iter().map(|s| (s.clone(), Vec::new())).collect();
        scales_timing[0].1.push(0);
        Ok(MetamerCtf {
            metamer,
            coarse_to_fine,
            scales,
            scales_timing,
            scales_loss: Vec::new(),
            scales_finished: Vec::new(),
            ctf_target: None,
            pending_overall: None,
            change_scale_criterion: None,
            ctf_iters_to_check: 50,
        })
    }

    /// Runs up to `max_iter` iterations; a second call continues where the last one stopped.
    ///
    /// # Errors
    /// [`SynthError::InvalidParam`] for invalid options (or a `store_progress` or optimizer
    /// that differs from the first call's); [`SynthError::NonFinite`] when the objective
    /// becomes NaN or infinite (the iterations done are kept).
    pub fn synthesize(&mut self, opts: &CtfSynthesizeOptions) -> Result<Outcome> {
        self.prepare(opts)?;
        run(self, &opts.common(), None)
    }

    /// As [`MetamerCtf::synthesize`], calling `callback` after every iteration.
    pub fn synthesize_with(
        &mut self,
        opts: &CtfSynthesizeOptions,
        callback: &mut Callback,
    ) -> Result<Outcome> {
        self.prepare(opts)?;
        run(self, &opts.common(), Some(callback))
    }

    fn prepare(&mut self, opts: &CtfSynthesizeOptions) -> Result<()> {
        opts.validate()?;
        self.metamer.core.prepare(&opts.common())?;
        self.change_scale_criterion = opts.change_scale_criterion;
        self.ctf_iters_to_check = opts.ctf_iters_to_check;
        Ok(())
    }

    fn timing_mut(&mut self, scale: &str) -> &mut Vec<usize> {
        let i = self
            .scales_timing
            .iter()
            .position(|(s, _)| s == scale)
            .expect("every scale has a timing entry");
        &mut self.scales_timing[i].1
    }

    fn timing(&self, scale: &str) -> &[usize] {
        self.scales_timing
            .iter()
            .find(|(s, _)| s == scale)
            .map(|(_, t)| t.as_slice())
            .unwrap_or(&[])
    }

    /// The scale set the loss is restricted to now (`None` once at `all`).
    fn scale_set(&self) -> Option<Vec<String>> {
        let current = &self.scales[0];
        if current == ALL {
            return None;
        }
        let mut set = vec![current.clone()];
        if self.coarse_to_fine == CoarseToFine::Together {
            set.extend(self.scales_finished.iter().cloned());
        }
        Some(set)
    }

    /// Moves the synthesis to `device` as `kind`, bound to `model`, which must already be
    /// there (see [`Metamer::to`]).
    pub fn to<'b>(self, device: Device, kind: Kind, model: &'b dyn Model) -> MetamerCtf<'b> {
        MetamerCtf {
            metamer: self.metamer.to(device, kind, model),
            coarse_to_fine: self.coarse_to_fine,
            scales: self.scales,
            scales_timing: self.scales_timing,
            scales_loss: self.scales_loss,
            scales_finished: self.scales_finished,
            ctf_target: None,
            pending_overall: None,
            change_scale_criterion: self.change_scale_criterion,
            ctf_iters_to_check: self.ctf_iters_to_check,
        }
    }

    /// Saves the synthesis in progress, including the scale schedule.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new("metamer_ctf");
        self.metamer.save_into(&mut w)?;
        w.meta("coarse_to_fine", &self.coarse_to_fine);
        w.meta("scales", &self.scales);
        w.meta("scales_timing", &self.scales_timing);
        w.meta("scales_finished", &self.scales_finished);
        w.series("scales_loss", &self.scales_loss);
        w.write(path.as_ref())
    }

    /// Loads a state saved from a MetamerCTF built with the same image, model and options.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let f = StateFile::read(path.as_ref(), "metamer_ctf")?;
        let mut m = Mismatches::default();
        m.check(
            "coarse_to_fine",
            f.get("coarse_to_fine"),
            &json!(self.coarse_to_fine),
        );
        m.into_result(&f)?;
        let scales = f.parse("scales")?;
        let scales_timing = f.parse("scales_timing")?;
        let scales_finished = f.parse("scales_finished")?;
        let scales_loss = f.series("scales_loss")?;
        self.metamer.load_from(&f)?;
        (
            self.scales,
            self.scales_timing,
            self.scales_finished,
            self.scales_loss,
        ) = (scales, scales_timing, scales_finished, scales_loss);
        self.ctf_target = None;
        Ok(())
    }

    /// The plain-metamer view: image, model, options, `losses` (full-model loss), norms.
    pub fn as_metamer(&self) -> &Metamer<'a> {
        &self.metamer
    }
    /// A caller-chosen identity of the model (e.g. its resolved spec), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.metamer.set_identity(identity);
    }
    /// The current metamer, the image's shape; a leaf that requires grad.
    pub fn metamer(&self) -> &Tensor {
        self.metamer.metamer()
    }
    /// Full-model objective before each step, one entry per iteration (see [`MetamerCtf::scales_loss`]).
    pub fn losses(&self) -> &[f64] {
        self.metamer.losses()
    }
    /// ‖∇‖ of the back-propagated (scale-restricted) objective, one entry per iteration.
    pub fn gradient_norm(&self) -> &[f64] {
        self.metamer.gradient_norm()
    }
    /// ‖x after − x before‖ of each step (pixel units).
    pub fn pixel_change_norm(&self) -> &[f64] {
        self.metamer.pixel_change_norm()
    }
    /// The snapshots of `store_progress`, stacked on the CPU (empty when none were taken).
    pub fn saved_metamer(&self) -> Tensor {
        self.metamer.saved_metamer()
    }
    /// The full-model objective at the current metamer (no gradient).
    pub fn objective_function(&self) -> Tensor {
        self.metamer.objective_function()
    }
    /// How scales are matched: `together` (the coarsest, then adding each finer one) or
    /// `separate` (one scale at a time); both end with all scales.
    pub fn coarse_to_fine(&self) -> CoarseToFine {
        self.coarse_to_fine
    }
    /// Scales still to do, the current one first; ends with `all`.
    pub fn scales(&self) -> &[String] {
        &self.scales
    }
    /// The loss actually back-propagated at each iteration (restricted to the scale set).
    pub fn scales_loss(&self) -> &[f64] {
        &self.scales_loss
    }
    /// For each scale: the iteration it started and, once finished, its last iteration.
    pub fn scales_timing(&self) -> &[(String, Vec<usize>)] {
        &self.scales_timing
    }
    /// The scales done, in the order they finished.
    pub fn scales_finished(&self) -> &[String] {
        &self.scales_finished
    }
}

impl Method for MetamerCtf<'_> {
    fn core(&self) -> &Core {
        &self.metamer.core
    }
    fn core_mut(&mut self) -> &mut Core {
        &mut self.metamer.core
    }

    /// The scale switch (spec §3.2), checked before the step of iteration `n`. Its counts
    /// are known ahead; its flatness test reads `scales_loss`, which [`Method::chunk_limit`]
    /// keeps on the host whenever the counts allow a switch.
    fn before_step(&mut self, n: usize) -> Result<()> {
        self.pending_overall = None;
        let c = self.ctf_iters_to_check;
        // scales_loss has one entry per iteration, some still on the device.
        let sl_len = self.scales_loss.len() + (n - self.metamer.core.losses.len());
        if self.scales.len() <= 1 || sl_len < c {
            return Ok(());
        }
        let current = self.scales[0].clone();
        if n - self.timing(&current)[0] < c {
            return Ok(());
        }
        let sl = &self.scales_loss;
        debug_assert_eq!(
            sl.len(),
            sl_len,
            "chunk_limit keeps these records on the host"
        );
        let flat = self
            .change_scale_criterion
            .is_none_or(|crit| (sl[sl.len() - 1] - sl[sl.len() - c]).abs() < crit);
        if flat {
            self.timing_mut(&current).push(n - 1);
            self.scales_finished.push(self.scales.remove(0));
            let next = self.scales[0].clone();
            self.timing_mut(&next).push(n);
            if let Some(o) = &mut self.metamer.core.optimizer {
                o.reset_lr();
            }
            self.ctf_target = None;
        }
        Ok(())
    }

    /// Iterations before the next one whose `before_step` may switch scales: that one runs
    /// alone, with the records before it read.
    fn chunk_limit(&self) -> usize {
        if self.scales.len() <= 1 {
            return usize::MAX;
        }
        let c = self.ctf_iters_to_check;
        let n = self.metamer.core.losses.len();
        let start = self.timing(&self.scales[0])[0];
        let first = (c.saturating_sub(self.scales_loss.len())).max((start + c).saturating_sub(n));
        first.max(1)
    }

    fn objective(&mut self, x: &Tensor) -> Result<Tensor> {
        let m = &self.metamer;
        let Some(set) = self.scale_set() else {
            return Ok(m.objective_at(x, &m.model.forward(x), &m.target_representation));
        };
        let rep = m.model.forward_scales(x, &set)?;
        let target = match &self.ctf_target {
            Some(t) => t.shallow_clone(),
            None => {
                let t = tch::no_grad(|| m.model.forward_scales(&m.image, &set))?;
                self.ctf_target = Some(t.shallow_clone());
                t
            }
        };
        if self.pending_overall.is_none() {
            let overall =
                tch::no_grad(|| m.objective_at(x, &m.model.forward(x), &m.target_representation));
            self.pending_overall = Some(overall);
        }
        Ok(m.objective_at(x, &rep, &target))
    }

    /// `losses` gets the full-model objective, `scales_loss` (the extra) the restricted one.
    fn after_step(&mut self, step_loss: &Tensor) -> Result<StepRecord> {
        let loss = self
            .pending_overall
            .take()
            .unwrap_or_else(|| step_loss.shallow_clone());
        Ok(StepRecord {
            loss,
            scheduler_loss: step_loss.shallow_clone(),
            extras: vec![step_loss.shallow_clone()],
        })
    }

    fn push_extras(&mut self, values: &[f64]) {
        self.scales_loss.push(values[0]);
    }

    fn extra(&self) -> Vec<(&'static str, f64)> {
        self.scales_loss
            .last()
            .map(|&l| vec![("scale_loss", l)])
            .unwrap_or_default()
    }

    /// The loss rule, and only at `all`, more than `ctf_iters_to_check` iterations after it began.
    fn converged(&self, i: usize, opts: &SynthesizeOptions) -> bool {
        let start = self.timing(ALL).first().copied();
        loss_converged(
            &self.metamer.core.losses,
            opts.stop_criterion,
            opts.stop_iters_to_check,
        ) && self.scales[0] == ALL
            && start.is_some_and(|s| i as i64 - s as i64 > self.ctf_iters_to_check as i64)
    }
}
