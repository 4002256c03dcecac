//! SimpleMetamer: the minimal metamer of plenoptic 1.1 (deprecated there): uniform-noise
//! start, `mse + 0.1·B(x; 0, 1)`, no stop rule, the loss logged inside the closure.
use crate::error::{Result, SynthError};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::state::{
    image_record, load_optimizer, model_record, save_optimizer, Mismatches, StateFile, StateWriter,
};
use crate::synthesis::{penalize_range, with_rng};
use crate::validate::{validate_image, validate_model, validate_representation};
use std::path::Path;
use synthsweep_models::Model;
use tch::Tensor;

const METHOD: &str = "simple_metamer";

/// A SimpleMetamer synthesis in progress: plenoptic 1.1's `SimpleMetamer`
/// (`plenoptic.synthesize.simple_metamer`).
///
/// The image is an (N, C, H, W) float tensor, pixel values in [0, 1] (the range penalty
/// pulls the metamer into [0, 1]); the metamer starts as uniform noise of its shape. The loss
/// is the mse between representations (squared representation units) plus 0.1 times the
/// squared excursion outside [0, 1].
///
/// # Errors
/// [`SimpleMetamer::new`] returns [`SynthError::InvalidParam`] for an image that is not a 4-D
/// float tensor or a model that loses the gradient, changes the dtype or returns neither 3-D
/// nor 4-D output; [`SynthError::NonFiniteTarget`] when the representation of the image is not
/// finite; [`SynthError::Model`] when the model cannot take the image's shape.
pub struct SimpleMetamer<'a> {
    model: &'a dyn Model,
    image: Tensor,
    metamer: Tensor,
    target_representation: Tensor,
    optimizer: Option<Optimizer>,
    losses: Vec<f64>,
    identity: Option<String>,
}

impl std::fmt::Debug for SimpleMetamer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleMetamer")
            .field("model", &self.model.name())
            .field("iterations", &self.losses.len())
            .finish()
    }
}

impl<'a> SimpleMetamer<'a> {
    /// Draws `rand` (model check) then `rand_like(image)` (the start), after
    /// `tch::manual_seed(seed)` when a seed is given.
    pub fn new(image: &Tensor, model: &'a dyn Model, seed: Option<i64>) -> Result<Self> {
        validate_image(image, "image")?;
        let image = image.detach();
        with_rng(seed, || {
            validate_model(model, &image)?;
            let metamer = image.rand_like().set_requires_grad(true);
            let target_representation = tch::no_grad(|| model.forward(&image));
            validate_representation(model, &target_representation, "the target image")?;
            Ok(SimpleMetamer {
                model,
                image,
                metamer,
                target_representation,
                optimizer: None,
                losses: Vec::new(),
                identity: None,
            })
        })
    }

    /// Moves the synthesis to `device` as `kind` (image, target representation, metamer and
    /// optimizer state; the losses stay), bound to `model`, which must already be there
    /// (`Model::to` on the same or another instance). Seeded draws made on the CPU by
    /// [`SimpleMetamer::new`] then run on the device, as `Metamer::to` does.
    pub fn to<'b>(
        self,
        device: tch::Device,
        kind: tch::Kind,
        model: &'b dyn Model,
    ) -> SimpleMetamer<'b> {
        let mv = |t: &Tensor| t.detach().to_device(device).to_kind(kind);
        let metamer = mv(&self.metamer).set_requires_grad(true);
        let mut optimizer = self.optimizer;
        if let Some(o) = optimizer.as_mut() {
            o.to(&metamer);
        }
        SimpleMetamer {
            model,
            image: mv(&self.image),
            metamer,
            target_representation: mv(&self.target_representation),
            optimizer,
            losses: self.losses,
            identity: self.identity,
        }
    }

    /// Runs `max_iter` steps. `optimizer`: `None` keeps the current one (Adam(0.01, amsgrad)
    /// the first time); a config replaces it, as plenoptic does.
    pub fn synthesize(
        &mut self,
        max_iter: usize,
        optimizer: Option<&OptimizerConfig>,
    ) -> Result<&Tensor> {
        match (optimizer, &self.optimizer) {
            (Some(cfg), _) => self.optimizer = Some(Optimizer::new(cfg, &self.metamer)?),
            (None, None) => {
                self.optimizer = Some(Optimizer::new(&OptimizerConfig::default(), &self.metamer)?)
            }
            (None, Some(_)) => {}
        }
        let opt = self.optimizer.as_mut().expect("set above");
        // Losses are read once per chunk (see `crate::host`); a chunk holding a non-finite
        // loss is run again from its start one step at a time, to stop where an
        // iteration-by-iteration run stops. L-BFGS reads on the host anyway: one step a chunk.
        let chunk = if opt.reads_on_host() {
            1
        } else {
            crate::host::record_chunk()
        };
        let (model, target) = (self.model, &self.target_representation);
        let mut done = 0;
        let mut single_until = 0;
        while done < max_iter {
            let len = if done < single_until { 1 } else { chunk }.min(max_iter - done);
            let start = (len > 1).then(|| (self.metamer.detach().copy(), opt.export_state()));
            let mut pending: Vec<Tensor> = Vec::new();
            let mut failure = None;
            for _ in 0..len {
                let x = self.metamer.shallow_clone();
                let r = opt.step(|| {
                    let mut g = x.shallow_clone();
                    g.zero_grad();
                    let rep = model.forward(&x);
                    let loss = (rep - target).square().mean(None::<tch::Kind>)
                        + penalize_range(&x, (0.0, 1.0)) * 0.1;
                    pending.push(loss.detach());
                    loss.f_backward()?;
                    Ok(loss)
                });
                if let Err(e) = r {
                    failure = Some(e);
                    break;
                }
            }
            let values = crate::host::read_values(&pending);
            // One step a chunk: its last loss is checked (L-BFGS logs several per step);
            // otherwise each loss is one step's.
            let bad = if len == 1 {
                values
                    .last()
                    .filter(|l| !l.is_finite())
                    .map(|_| values.len() - 1)
            } else {
                values.iter().position(|l| !l.is_finite())
            };
            if let Some(bad) = bad {
                if let Some((x, st)) = start.filter(|_| failure.is_none()) {
                    tch::no_grad(|| self.metamer.copy_(&x));
                    opt.import_state(&st)?;
                    single_until = done + len;
                    continue;
                }
                self.losses.extend_from_slice(&values[..=bad]);
                return Err(SynthError::NonFinite {
                    iteration: self.losses.len() - 1,
                    value: values[bad],
                });
            }
            self.losses.extend_from_slice(&values);
            if let Some(e) = failure {
                return Err(e);
            }
            done += len;
        }
        Ok(&self.metamer)
    }

    /// A caller-chosen identity of the model (e.g. its resolved spec), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.identity = Some(identity.into());
    }

    /// Saves the synthesis in progress (see [`crate::state`]): the metamer, the optimizer
    /// with its state, and the losses.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new(METHOD);
        w.meta("image", &image_record(&self.image)?);
        w.meta("model", &model_record(self.model, &self.identity));
        w.tensor("target_representation", &self.target_representation);
        w.tensor("x", &self.metamer);
        w.series("losses", &self.losses);
        save_optimizer(self.optimizer.as_ref(), &mut w);
        w.write(path.as_ref())
    }

    /// Loads a state saved from a SimpleMetamer built with the same image and model (the
    /// seed aside: the loaded metamer replaces the starting point), then continues from it
    /// with `synthesize(n, None)`.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let f = StateFile::read(path.as_ref(), METHOD)?;
        let mut m = Mismatches::default();
        m.check("image", f.get("image"), &image_record(&self.image)?);
        m.check(
            "model",
            f.get("model"),
            &model_record(self.model, &self.identity),
        );
        m.check_close(
            "target_representation",
            f.tensor("target_representation")?,
            &self.target_representation,
        );
        m.into_result(&f)?;
        let x = f.tensor("x")?;
        if x.size() != self.image.size() {
            return Err(f.err(format!(
                "saved metamer has shape {:?}, this synthesis {:?}",
                x.size(),
                self.image.size()
            )));
        }
        let metamer = x
            .to_device(self.image.device())
            .to_kind(self.image.kind())
            .copy()
            .set_requires_grad(true);
        self.optimizer = load_optimizer(&f, &metamer)?;
        self.losses = f.series("losses")?;
        self.metamer = metamer;
        Ok(())
    }

    /// The model whose representation is matched.
    pub fn model(&self) -> &dyn Model {
        self.model
    }
    /// The target image, detached.
    pub fn image(&self) -> &Tensor {
        &self.image
    }
    /// The current metamer, the image's shape; a leaf that requires grad.
    pub fn metamer(&self) -> &Tensor {
        &self.metamer
    }
    /// The model's representation of the target image (no gradient).
    pub fn target_representation(&self) -> &Tensor {
        &self.target_representation
    }
    /// One entry per closure call (per step for Adam and SGD).
    pub fn losses(&self) -> &[f64] {
        &self.losses
    }
    /// The optimizer, once the first `synthesize` call has built it.
    pub fn optimizer(&self) -> Option<&Optimizer> {
        self.optimizer.as_ref()
    }
}
