//! SSIM (Wang et al. 2004) as plenoptic computes it: an 11x11 Gaussian window (std 1.5),
//! C1 = 0.01², C2 = 0.03², optionally the weighted mean of Wang & Simoncelli (2008).
//! `ssim` is the similarity (1 for identical images), `ssim_distance` is `1 - ssim`.
use crate::error::{ModelError, Result};
use crate::filters::{same_padding, PAD_MODES};
use crate::model::{check_min_size, Metric};
use crate::params::{ParamDoc, Params};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

pub const SSIM_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "weighted",
        ty: "bool",
        default: "false",
        help: "weight the map by log((1 + σ1²/C2)(1 + σ2²/C2)) (Wang & Simoncelli 2008) instead of a plain mean",
    },
    ParamDoc {
        name: "pad",
        ty: "false or string",
        default: "false",
        help: "false: valid convolutions, the map is (H-10, W-10); or reflect, circular, replicate, constant",
    },
];

const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// The normalized Gaussian window as two 1-D passes. The 2-D window plenoptic uses is
/// exactly their outer product, so this is the same average at 22 instead of 121 products
/// per pixel.
#[derive(Debug)]
pub(crate) struct SsimWindow {
    size: i64,
    row: Tensor,
    col: Tensor,
}

impl SsimWindow {
    /// The full window size; smaller images get a window of min(11, H, W), as in plenoptic.
    pub(crate) const SIZE: i64 = 11;
    const STD: f64 = 1.5;

    pub(crate) fn new(size: i64, device: Device, kind: Kind) -> Self {
        let centre = (size as f64 + 1.0) / 2.0;
        let g: Vec<f64> = (1..=size)
            .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * Self::STD * Self::STD)).exp())
            .collect();
        let sum: f64 = g.iter().sum();
        let g: Vec<f64> = g.iter().map(|v| v / sum).collect();
        let g = Tensor::from_slice(&g).to_kind(kind).to_device(device);
        SsimWindow {
            size,
            row: g.view([1, 1, 1, size]),
            col: g.view([1, 1, size, 1]),
        }
    }

    /// The full-size window on the CPU in float32.
    pub(crate) fn full() -> Self {
        Self::new(Self::SIZE, Device::Cpu, Kind::Float)
    }

    pub(crate) fn set_device(&mut self, device: Device, kind: Kind) {
        *self = Self::new(self.size, device, kind);
    }

    /// Valid windowed average of (N, 1, H, W).
    fn average(&self, x: &Tensor) -> Tensor {
        let conv = |x: &Tensor, w: &Tensor| x.conv2d(w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
        conv(&conv(x, &self.row), &self.col)
    }
}

/// The maps SSIM and MS-SSIM are made of, each (N, C, h, w).
pub(crate) struct SsimParts {
    pub(crate) map: Tensor,
    pub(crate) contrast_structure: Tensor,
    sigma1_sq: Tensor,
    sigma2_sq: Tensor,
}

impl SsimParts {
    /// The weight of the weighted SSIM mean.
    fn weight(&self) -> Tensor {
        ((&self.sigma1_sq / C2 + 1.0) * (&self.sigma2_sq / C2 + 1.0)).log()
    }
}

/// SSIM's local statistics of two batches whose batch and channel sizes are equal or 1.
/// Uses `window` when the image is at least its size, else (as plenoptic) a smaller one.
pub(crate) fn ssim_parts(
    x: &Tensor,
    y: &Tensor,
    window: &SsimWindow,
    pad: Option<&str>,
) -> SsimParts {
    let size = x.size();
    let real = SsimWindow::SIZE.min(size[2]).min(size[3]);
    let shrunk;
    let window = if real == window.size {
        window
    } else {
        shrunk = SsimWindow::new(real, x.device(), x.kind());
        &shrunk
    };
    let (x, y) = match pad {
        Some(mode) => (
            same_padding(x, (real, real), mode),
            same_padding(y, (real, real), mode),
        ),
        None => (x.shallow_clone(), y.shallow_clone()),
    };
    let xy = Tensor::broadcast_tensors(&[&x, &y]);
    let (x, y) = (&xy[0], &xy[1]);
    let (n, c, h, w) = x.size4().expect("a 4-D batch (N, C, H, W)");
    // One convolution call for the five averages.
    let stack =
        Tensor::stack(&[x, y, &(x * x), &(y * y), &(x * y)], 0).reshape([5 * n * c, 1, h, w]);
    let avg = window.average(&stack);
    let (oh, ow) = (avg.size()[2], avg.size()[3]);
    let avg = avg.reshape([5, n, c, oh, ow]);
    let (mu1, mu2) = (avg.get(0), avg.get(1));
    let mu1_sq = mu1.square();
    let mu2_sq = mu2.square();
    let mu1_mu2 = &mu1 * &mu2;
    let sigma1_sq = avg.get(2) - &mu1_sq;
    let sigma2_sq = avg.get(3) - &mu2_sq;
    let sigma12 = avg.get(4) - &mu1_mu2;
    let luminance = (mu1_mu2 * 2.0 + C1) / (mu1_sq + mu2_sq + C1);
    let contrast_structure = (sigma12 * 2.0 + C2) / (&sigma1_sq + &sigma2_sq + C2);
    SsimParts {
        map: luminance * &contrast_structure,
        contrast_structure,
        sigma1_sq,
        sigma2_sq,
    }
}

/// plenoptic's `ssim_map(x, y)`: the SSIM map without padding, (N, C, H-10, W-10).
/// Builds its window on each call; [`Ssim::map`] reuses a stored one.
pub fn ssim_map(x: &Tensor, y: &Tensor) -> Tensor {
    let size = x.size();
    let real = SsimWindow::SIZE.min(size[2]).min(size[3]);
    ssim_parts(x, y, &SsimWindow::new(real, x.device(), x.kind()), None).map
}

/// Reads `pad`: `false` or one of the padding modes.
pub(crate) fn pad_param(p: &Params) -> Result<Option<String>> {
    match p.raw("pad") {
        Value::Bool(false) => Ok(None),
        Value::String(_) => p.choice("pad", PAD_MODES).map(Some),
        other => Err(ModelError::invalid(
            p.owner(),
            "pad",
            format!(
                "expected false or one of {}, got {other}",
                PAD_MODES.join(", ")
            ),
        )),
    }
}

/// Mean SSIM per batch element and channel, (N, C); or `1 - SSIM` as `ssim_distance`.
#[derive(Debug)]
pub struct Ssim {
    weighted: bool,
    pad: Option<String>,
    window: SsimWindow,
    distance: bool,
}

impl Ssim {
    /// The similarity (`distance = false`) or `1 -` it.
    pub fn new(weighted: bool, pad: Option<&str>, distance: bool) -> Self {
        Ssim {
            weighted,
            pad: pad.map(str::to_string),
            window: SsimWindow::full(),
            distance,
        }
    }

    pub fn from_params(p: &Params, distance: bool) -> Result<Self> {
        Ok(Self::new(
            p.bool("weighted")?,
            pad_param(p)?.as_deref(),
            distance,
        ))
    }

    /// The SSIM map with this metric's padding.
    pub fn map(&self, x: &Tensor, y: &Tensor) -> Tensor {
        ssim_parts(x, y, &self.window, self.pad.as_deref()).map
    }

    /// Mean (or weighted mean) SSIM, (N, C).
    pub fn similarity(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let parts = ssim_parts(x, y, &self.window, self.pad.as_deref());
        let dims = [-1i64, -2].as_slice();
        if self.weighted {
            let weight = parts.weight();
            (&parts.map * &weight).sum_dim_intlist(dims, false, None::<Kind>)
                / weight.sum_dim_intlist(dims, false, None::<Kind>)
        } else {
            parts.map.mean_dim(dims, false, None::<Kind>)
        }
    }
}

impl Metric for Ssim {
    fn name(&self) -> &str {
        if self.distance {
            "ssim_distance"
        } else {
            "ssim"
        }
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let s = self.similarity(a, b);
        if self.distance {
            1.0 - s
        } else {
            s
        }
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        let min = SsimWindow::SIZE;
        check_min_size(
            self.name(),
            shape,
            (min, min),
            "the 11x11 SSIM window; plenoptic would shrink it with a warning",
        )
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.window.set_device(device, kind)
    }
}
