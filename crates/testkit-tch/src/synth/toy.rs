//! Small models and metrics for behaviour tests: a three-scale pooling "pyramid" that
//! coarse-to-fine synthesis can use, and models/metrics that misbehave on purpose.
use synthsweep_models::{Metric, Model, ModelError};
use tch::{Device, Kind, Tensor};

/// Average pools at 4x4, 2x2 and 1x1 (`coarse`, `mid`, `fine`), flattened and
/// concatenated into a (N, 1, K) representation in the order asked.
#[derive(Debug, Default)]
pub struct ToyPyramid;

impl ToyPyramid {
    fn scale(x: &Tensor, s: &str) -> Tensor {
        let n = x.size()[0];
        let k = match s {
            "coarse" => 4,
            "mid" => 2,
            _ => 1,
        };
        x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None::<i64>)
            .reshape([n, 1, -1])
    }
}

impl Model for ToyPyramid {
    fn name(&self) -> &str {
        "toy_pyramid"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        let all = ["coarse", "mid", "fine"].map(String::from);
        self.forward_scales(x, &all).unwrap()
    }
    fn to(&mut self, _: Device, _: Kind) {}
    fn scales(&self) -> Option<Vec<String>> {
        Some(["coarse", "mid", "fine"].map(String::from).to_vec())
    }
    fn forward_scales(&self, x: &Tensor, scales: &[String]) -> Result<Tensor, ModelError> {
        if let Some(bad) = scales
            .iter()
            .find(|s| !["coarse", "mid", "fine"].contains(&s.as_str()))
        {
            return Err(ModelError::Spec(format!("toy_pyramid has no scale {bad}")));
        }
        let parts: Vec<Tensor> = scales.iter().map(|s| Self::scale(x, s)).collect();
        Ok(Tensor::cat(&parts, 2))
    }
}

/// Returns NaN everywhere (with the gradient kept).
#[derive(Debug, Default)]
pub struct NanModel;

impl Model for NanModel {
    fn name(&self) -> &str {
        "nan_model"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        x * f64::NAN
    }
    fn to(&mut self, _: Device, _: Kind) {}
}

/// A "metric" that is 1 even for identical images.
#[derive(Debug, Default)]
pub struct NotADistance;

impl Metric for NotADistance {
    fn name(&self) -> &str {
        "not_a_distance"
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        (a - b)
            .square()
            .mean_dim([-1i64, -2].as_slice(), false, None::<Kind>)
            + 1.0
    }
    fn to(&mut self, _: Device, _: Kind) {}
}

/// A "metric" that can be negative.
#[derive(Debug, Default)]
pub struct SignedDifference;

impl Metric for SignedDifference {
    fn name(&self) -> &str {
        "signed_difference"
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        (a - b).mean_dim([-1i64, -2].as_slice(), false, None::<Kind>)
    }
    fn to(&mut self, _: Device, _: Kind) {}
}

/// A smooth 32x32 test image in (0.1, 0.9).
pub fn test_image(size: i64) -> Tensor {
    let r = Tensor::arange(size, (Kind::Float, Device::Cpu)) / size as f64;
    let img = (r.unsqueeze(1) * 6.0).sin() * (r.unsqueeze(0) * 4.0).cos() * 0.4 + 0.5;
    img.view([1, 1, size, size])
}
