//! Up-front checks of input images and models, as plenoptic's `validate_input` / `validate_model`
//! make them (including `validate_model`'s random test image, which consumes RNG).
use crate::error::{Result, SynthError};
use synthsweep_models::Model;
use tch::{Kind, Tensor};

/// A float image of shape (N, C, H, W), with N = 1 when `no_batch`, and every pixel inside
/// `allowed_range` when one is given.
pub fn validate_input(
    param: &str,
    image: &Tensor,
    no_batch: bool,
    allowed_range: Option<(f64, f64)>,
) -> Result<()> {
    let shape = image.size();
    if !matches!(
        image.kind(),
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    ) {
        return Err(SynthError::invalid(
            param,
            format!("expected a float image, got {:?}", image.kind()),
        ));
    }
    if shape.len() != 4 {
        let batch = if no_batch { "1" } else { "N" };
        return Err(SynthError::invalid(
            param,
            format!("expected shape ({batch}, C, H, W), got {shape:?}"),
        ));
    }
    if no_batch && shape[0] != 1 {
        return Err(SynthError::invalid(
            param,
            format!(
                "batch dimension must be 1, got shape {shape:?} (synthesize one image at a time)"
            ),
        ));
    }
    if let Some((lo, hi)) = allowed_range {
        if lo >= hi {
            return Err(SynthError::invalid(
                "allowed_range",
                format!("({lo}, {hi}): the lower bound must be below the upper"),
            ));
        }
        let (min, max) = (image.min().double_value(&[]), image.max().double_value(&[]));
        if min < lo || max > hi {
            return Err(SynthError::invalid(
                param,
                format!(
                    "pixel values must lie within allowed_range ({lo}, {hi}), got ({min}, {max})"
                ),
            ));
        }
    }
    Ok(())
}

/// Runs `model` on a uniform random image of `shape` (drawn like plenoptic's, so it consumes the
/// same RNG) and checks that it keeps the gradient, the precision, and returns 3-D or 4-D output.
pub fn validate_model(model: &dyn Model, like: &Tensor) -> Result<()> {
    let shape = like.size();
    model.check_input(&shape)?;
    let test = Tensor::f_rand(&shape, (like.kind(), like.device()))?;
    let name = model.name();
    let out = model.forward(&test);
    if out.requires_grad() {
        return Err(SynthError::invalid(
            "model",
            format!("`{name}` adds a gradient to its input: one of its tensors is learnable"),
        ));
    }
    let out = model.forward(&test.set_requires_grad(true));
    if !out.requires_grad() {
        return Err(SynthError::invalid(
            "model",
            format!("`{name}` strips the gradient from its input"),
        ));
    }
    if out.kind() != like.kind() {
        return Err(SynthError::invalid(
            "model",
            format!(
                "`{name}` changes the precision of its input ({:?} to {:?})",
                like.kind(),
                out.kind()
            ),
        ));
    }
    if !matches!(out.dim(), 3 | 4) {
        return Err(SynthError::invalid(
            "model",
            format!(
                "`{name}` must return a 3-D or 4-D output for a 4-D input, got shape {:?}",
                out.size()
            ),
        ));
    }
    if out.device() != like.device() {
        return Err(SynthError::invalid(
            "model",
            format!("`{name}` moves its input to another device"),
        ));
    }
    Ok(())
}
