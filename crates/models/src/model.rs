//! The `Model` and `Metric` traits: what every synthesis method needs from a model or metric.
use crate::error::{ModelError, Result};
use tch::{Device, Kind, Tensor};

/// An image model, as plenoptic's synthesis methods use a `torch.nn.Module`: a
/// differentiable map from a batch of images (N, C, H, W) to a representation whose first
/// dimension is N (e.g. (N, C', H', W') for the filter models, (N, C, K) for pyramids and
/// Portilla-Simoncelli). Pixel values are usually in [0, 1]; each model says what it expects
/// and what its output's units are. Constant tensors (filters, masks) are built once, at
/// construction, as float32 on the CPU (see [`Model::to`]).
///
/// `forward` panics on an input the model cannot take: call [`Model::check_input`] first,
/// which returns [`ModelError::InputShape`] saying what it needs.
pub trait Model: Send {
    /// The registry name, e.g. `gaussian`.
    fn name(&self) -> &str;

    /// The representation of `x`; differentiable with respect to `x`.
    fn forward(&self, x: &Tensor) -> Tensor;

    /// The representation split into named parts, as `eval model --out` writes them.
    /// Always contains `out`; pyramids and Portilla-Simoncelli add their bands / statistics.
    fn parts(&self, x: &Tensor) -> Vec<(String, Tensor)> {
        vec![("out".to_string(), self.forward(x))]
    }

    /// Splits a tensor shaped like the model's output into its named statistics, for models
    /// whose output is a list of statistics (plenoptic's `convert_to_dict`); `None` for the
    /// others. Positions the output leaves out (redundant statistics) are NaN in the parts.
    /// Used to say which statistics hold NaN.
    fn statistics(&self, _rep: &Tensor) -> Option<Vec<(String, Tensor)>> {
        None
    }

    /// Rejects an input shape the model cannot take, saying what it needs.
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)
    }

    /// Moves every constant tensor to `device` and converts floats to `kind`.
    fn to(&mut self, device: Device, kind: Kind);

    /// Coarse-to-fine scales (coarse first), for models that have them.
    fn scales(&self) -> Option<Vec<String>> {
        None
    }

    /// The representation restricted to the named scales (see [`Model::scales`]).
    fn forward_scales(&self, x: &Tensor, scales: &[String]) -> Result<Tensor> {
        let _ = (x, scales);
        Err(ModelError::Spec(format!(
            "model `{}` has no scales and cannot be used coarse-to-fine",
            self.name()
        )))
    }
}

/// A distance between two batches of images, as plenoptic's MAD competition uses its
/// metrics: 0 for identical images, larger for more different ones (the `ssim` and `ms_ssim`
/// similarities are the exception: 1 for identical images). Takes two (N, C, H, W) batches
/// of the same shape and returns one value per batch element and channel, shape (N, C)
/// (model distances return (N, 1)). `forward` panics on an input the metric cannot take:
/// call [`Metric::check_input`] first.
pub trait Metric: Send {
    /// The registry name, e.g. `ssim_distance`.
    fn name(&self) -> &str;

    /// The value for each batch element (and channel); differentiable in both arguments.
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor;

    /// Rejects an input shape the metric cannot take, saying what it needs.
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)
    }

    /// Moves every constant tensor to `device` and converts floats to `kind`.
    fn to(&mut self, device: Device, kind: Kind);
}

/// Every model and metric takes NCHW batches.
pub fn check_4d(owner: &str, shape: &[i64]) -> Result<()> {
    if shape.len() != 4 {
        return Err(ModelError::shape(
            owner,
            shape,
            "expected a 4-D batch (N, C, H, W)",
        ));
    }
    Ok(())
}

/// Checks a 4-D batch with exactly `channels` channels. For a one-channel model the error
/// says how a colour file becomes one gray channel: loaded with `as_gray` (plenoptic's
/// default; `as_gray = false` in a sweep or `--as-gray false` in `eval` keeps colour).
pub fn check_channels(owner: &str, shape: &[i64], channels: i64) -> Result<()> {
    check_4d(owner, shape)?;
    if shape[1] != channels {
        let hint = if channels == 1 {
            "; load colour images as gray (as_gray = true, the default, in a sweep; \
             --as-gray true in eval)"
        } else {
            ""
        };
        return Err(ModelError::shape(
            owner,
            shape,
            format!("expected {channels} channel(s), got {}{hint}", shape[1]),
        ));
    }
    Ok(())
}

/// Checks a 4-D batch whose height and width are at least `min`.
pub fn check_min_size(owner: &str, shape: &[i64], min: (i64, i64), why: &str) -> Result<()> {
    check_4d(owner, shape)?;
    if shape[2] < min.0 || shape[3] < min.1 {
        return Err(ModelError::shape(
            owner,
            shape,
            format!("needs height >= {} and width >= {} ({why})", min.0, min.1),
        ));
    }
    Ok(())
}
