//! Saving a finished eigendistortion analysis and loading it back (see [`crate::state`]), as
//! plenoptic saves the whole object: eigenvalues, eigendistortions, eigenindex, the method
//! with its parameters, the power iterations or randomized SVD error estimate, and the
//! Jacobian when one was computed.
use super::Eigendistortion;
use crate::error::Result;
use crate::state::{image_record, model_record, Mismatches, StateFile, StateWriter};
use std::path::Path;
use tch::Tensor;

const METHOD: &str = "eigendistortion";

impl Eigendistortion<'_> {
    /// A caller-chosen identity of the model (e.g. its resolved spec), checked on load.
    pub fn set_identity(&mut self, identity: impl Into<String>) {
        self.identity = Some(identity.into());
    }

    /// Saves the image's record, the model's output on it and whatever results there are.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut w = StateWriter::new(METHOD);
        w.meta("image", &image_record(&self.image())?);
        w.meta("model", &model_record(self.model, &self.identity));
        // `method` names the synthesis kind in every state file; the solver goes here.
        w.meta("solver", &self.method);
        w.meta("iterations", &self.iterations);
        w.tensor("representation_flat", &self.representation_flat);
        if let Some(e) = self.error_approx {
            // A tensor, not JSON: exact, and NaN or infinity survive.
            w.tensor("error_approx", &Tensor::from(e));
        }
        for (name, t) in [
            ("eigendistortions", &self.eigendistortions),
            ("eigenvalues", &self.eigenvalues),
            ("eigenindex", &self.eigenindex),
            ("jacobian", &self.jacobian),
        ] {
            if let Some(t) = t {
                w.tensor(name, t);
            }
        }
        w.write(path.as_ref())
    }

    /// Loads results saved from an Eigendistortion built with the same image and model,
    /// replacing this one's. A file without a Jacobian keeps this one's (it depends only on
    /// the image and the model).
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let f = StateFile::read(path.as_ref(), METHOD)?;
        let mut m = Mismatches::default();
        m.check("image", f.get("image"), &image_record(&self.image())?);
        m.check(
            "model",
            f.get("model"),
            &model_record(self.model, &self.identity),
        );
        m.check_close(
            "representation",
            f.tensor("representation_flat")?,
            &self.representation_flat,
        );
        m.into_result(&f)?;
        let device = self.image_flat.device();
        // Results keep their saved kind; the index stays on the CPU, as `synthesize` leaves it.
        let on_device = |name: &str| f.maybe_tensor(name).map(|t| t.to_device(device));
        self.method = f.parse("solver")?;
        self.iterations = f.parse("iterations")?;
        self.error_approx = f.maybe_tensor("error_approx").map(|t| t.double_value(&[]));
        self.eigendistortions = on_device("eigendistortions");
        self.eigenvalues = on_device("eigenvalues");
        self.eigenindex = f.maybe_tensor("eigenindex").map(|t| t.shallow_clone());
        if let Some(j) = on_device("jacobian") {
            self.jacobian = Some(j);
        }
        Ok(())
    }
}
