//! User models: a TorchScript file saved with `torch.jit.save`, run through libtorch.
use crate::error::{ModelError, Result};
use crate::model::Model;
use crate::params::{ParamDoc, Params};
use std::path::PathBuf;
use tch::{CModule, Device, Kind, Tensor};

/// The parameters of `torchscript`: the file and its checksum.
pub const TORCHSCRIPT_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "path",
        ty: "string",
        default: "null",
        help: "required: a TorchScript file (torch.jit.save) whose forward maps (N, C, H, W) to a tensor",
    },
    ParamDoc {
        name: "sha256",
        ty: "string (64 hex digits)",
        default: "null",
        help: "the file's SHA-256; filled in when a spec is resolved (so a sweep task's id changes with the file's content) and checked when the model is built",
    },
];

/// The SHA-256 of a file's bytes, as lowercase hex.
pub fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(std::fs::read(path)?);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// A TorchScript module used as a model (no plenoptic counterpart: plenoptic takes any
/// `torch.nn.Module`). Its `forward` maps an (N, C, H, W) batch to a tensor whose first
/// dimension is N; shapes, value ranges and units are the module's. Its parameters are frozen
/// (no gradient); gradients flow to the input only. `forward` panics when the module fails
/// on an input.
#[derive(Debug)]
pub struct TorchScriptModel {
    path: PathBuf,
    module: CModule,
}

impl TorchScriptModel {
    /// Loads the module at `path` in evaluation mode. Errors: [`ModelError::InvalidParam`] (on
    /// `path`) when the file does not exist or is not a TorchScript module; [`ModelError::Torch`]
    /// when libtorch cannot switch it to evaluation mode.
    pub fn load(path: PathBuf) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::invalid(
                "torchscript",
                "path",
                format!("{} does not exist or is not a file", path.display()),
            ));
        }
        let mut module = CModule::load(&path).map_err(|e| {
            ModelError::invalid(
                "torchscript",
                "path",
                format!("{} is not a TorchScript module: {e}", path.display()),
            )
        })?;
        module.f_set_eval()?;
        Ok(TorchScriptModel { path, module })
    }

    /// From spec parameters ([`TORCHSCRIPT_PARAMS`]); the path is opened as given (a relative one
    /// from the current directory). Errors: as [`TorchScriptModel::load`], and
    /// [`ModelError::InvalidParam`] when `path` is missing or the file's SHA-256 differs from `sha256`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let v = p.raw("path");
        let Some(s) = v.as_str() else {
            return Err(ModelError::invalid(
                p.owner(),
                "path",
                format!("is required: a file path string, got {v}"),
            ));
        };
        let path = PathBuf::from(s);
        if let Some(expected) = p.raw("sha256").as_str() {
            let actual = file_sha256(&path).map_err(|e| {
                ModelError::invalid(p.owner(), "path", format!("{}: {e}", path.display()))
            })?;
            if actual != expected.to_ascii_lowercase() {
                return Err(ModelError::invalid(
                    p.owner(),
                    "sha256",
                    format!(
                        "{} has changed: its SHA-256 is {actual}, the spec expects {expected} (plan the sweep again to use the new file)",
                        path.display()
                    ),
                ));
            }
        }
        Self::load(path)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &PathBuf {
        &self.path
    }
}

impl Model for TorchScriptModel {
    fn name(&self) -> &str {
        "torchscript"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.module
            .forward_ts(&[x])
            .expect("TorchScript forward failed")
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        crate::model::check_4d("torchscript", shape)?;
        // Run once on zeros so that a shape the module cannot take is reported up front.
        let x = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
        let _guard = tch::no_grad_guard();
        self.module.forward_ts(&[x]).map(|_| ()).map_err(|e| {
            ModelError::shape(
                &format!("torchscript {}", self.path.display()),
                shape,
                format!(
                    "the module failed on this shape: {}",
                    first_line(&e.to_string())
                ),
            )
        })
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.module.to(device, kind, false);
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}
