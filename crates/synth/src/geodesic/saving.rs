//! Saving a geodesic synthesis in progress and resuming it (see [`crate::state`]): the
//! interior frames, the optimizer, every per-iteration record, the `store_progress` records
//! and the cached representation the next record is taken from.
use super::Geodesic;
use crate::error::Result;
use crate::state::{
    image_record, load_core, model_record, parameters, save_core, Mismatches, StateFile,
    StateWriter,
};
use std::path::Path;
use tch::Tensor;

const METHOD: &str = "geodesic";

impl Geodesic<'_> {
    /// A caller-chosen identity of the model (e.g. its resolved spec), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.identity = Some(identity.into());
    }

    /// The model's representation of the two anchors: what loading compares to recognise
    /// the model.
    fn anchor_representation(&self) -> Tensor {
        tch::no_grad(|| {
            self.model
                .forward(&Tensor::cat(&[&self.image_a, &self.image_b], 0))
        })
    }

    /// Saves the synthesis in progress.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new(METHOD);
        w.meta("parameters", &self.options);
        w.meta("image_a", &image_record(&self.image_a)?);
        w.meta("image_b", &image_record(&self.image_b)?);
        w.meta("model", &model_record(self.model, &self.identity));
        w.tensor("anchor_representation", &self.anchor_representation());
        // The shared loop keeps no snapshots for Geodesic; its own interval lives here.
        w.meta("geodesic_store_progress", &self.store_progress);
        w.stacked("step_energy", &self.step_energy);
        w.stacked("dev_from_line", &self.dev_from_line);
        if let Some((z, energy)) = &self.cache {
            w.tensor("cache/representation", z);
            w.tensor("cache/step_energy", energy);
        }
        save_core(&self.core, &mut w);
        w.write(path.as_ref())
    }

    /// Loads a state saved from a Geodesic built with the same images, model and options
    /// (the seed aside: the loaded frames replace the starting sequence), then continues
    /// from it with `synthesize`.
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let f = StateFile::read(path.as_ref(), METHOD)?;
        let mut m = Mismatches::default();
        m.check(
            "parameters",
            &parameters(f.get("parameters")),
            &parameters(&self.options),
        );
        m.check("image_a", f.get("image_a"), &image_record(&self.image_a)?);
        m.check("image_b", f.get("image_b"), &image_record(&self.image_b)?);
        m.check(
            "model",
            f.get("model"),
            &model_record(self.model, &self.identity),
        );
        m.check_close(
            "anchor_representation",
            f.tensor("anchor_representation")?,
            &self.anchor_representation(),
        );
        m.into_result(&f)?;
        let (device, kind) = (self.image_a.device(), self.image_a.kind());
        let store_progress = f.parse("geodesic_store_progress")?;
        let cache = match (
            f.maybe_tensor("cache/representation"),
            f.maybe_tensor("cache/step_energy"),
        ) {
            (Some(z), Some(e)) => Some((
                z.to_device(device).to_kind(kind),
                e.to_device(device).to_kind(kind),
            )),
            _ => None,
        };
        load_core(&mut self.core, &f, device, kind)?;
        self.store_progress = store_progress;
        self.step_energy = f.unstacked("step_energy");
        self.dev_from_line = f.unstacked("dev_from_line");
        self.cache = cache;
        Ok(())
    }
}
