//! SSIM (Wang et al. 2004) as plenoptic computes it: an 11x11 Gaussian window (std 1.5),
//! shrunk to `min(11, H, W)` for smaller images (with plenoptic's warning), C1 = 0.01²,
//! C2 = 0.03², optionally the weighted mean of Wang & Simoncelli (2008). `ssim` is the
//! similarity (1 for identical images), `ssim_distance` is `1 - ssim`.
use crate::error::{ModelError, Result};
use crate::filters::{same_padding, PAD_MODES};
use crate::model::{check_4d, Metric};
use crate::params::{ParamDoc, Params};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

/// The parameters of `ssim` and `ssim_distance` (plenoptic's `ssim` arguments).
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

/// plenoptic's warning when `ssim` or `ssim_map` shrinks the window (images under 11 px).
pub(crate) const SMALL_IMAGE_WARNING: &str = "SSIM uses 11x11 convolutional kernel, but the height and/or the width of the input image is smaller than 11, so the kernel size is set to be the minimum of these two numbers.";

/// plenoptic's warning for images of more than one channel.
const CHANNELS_WARNING: &str = "SSIM was designed for grayscale images and here it will be computed separately for each channel (so channels are treated in the same way as batches).";

/// One normalized Gaussian window (std 1.5) as two 1-D passes. The 2-D window plenoptic
/// uses is exactly their outer product, so this is the same average at 2k instead of k²
/// products per pixel.
#[derive(Debug)]
pub(crate) struct SsimWindow {
    row: Tensor,
    col: Tensor,
}

impl SsimWindow {
    const STD: f64 = 1.5;

    fn new(size: i64, device: Device, kind: Kind) -> Self {
        // plenoptic's circular_gaussian2d: centred at (size + 1) / 2 on 1..=size, so an even
        // window is centred between two pixels.
        let centre = (size as f64 + 1.0) / 2.0;
        let g: Vec<f64> = (1..=size)
            .map(|i| (-(i as f64 - centre).powi(2) / (2.0 * Self::STD * Self::STD)).exp())
            .collect();
        let sum: f64 = g.iter().sum();
        let g: Vec<f64> = g.iter().map(|v| v / sum).collect();
        let g = Tensor::from_slice(&g).to_kind(kind).to_device(device);
        SsimWindow {
            row: g.view([1, 1, 1, size]),
            col: g.view([1, 1, size, 1]),
        }
    }

    /// Valid windowed average of (N, 1, H, W).
    fn average(&self, x: &Tensor) -> Tensor {
        let conv = |x: &Tensor, w: &Tensor| x.conv2d(w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1);
        conv(&conv(x, &self.row), &self.col)
    }
}

/// SSIM's windows for every size plenoptic may use: 11x11, and `min(11, H, W)` for smaller
/// images (or coarse MS-SSIM scales), all with std 1.5. Built once, so a small image costs
/// no host-to-device copy per call.
#[derive(Debug)]
pub(crate) struct SsimWindows {
    by_size: Vec<SsimWindow>,
}

impl SsimWindows {
    /// The full window size.
    pub(crate) const SIZE: i64 = 11;

    pub(crate) fn new(device: Device, kind: Kind) -> Self {
        SsimWindows {
            by_size: (1..=Self::SIZE)
                .map(|k| SsimWindow::new(k, device, kind))
                .collect(),
        }
    }

    /// On the CPU in float32.
    pub(crate) fn cpu() -> Self {
        Self::new(Device::Cpu, Kind::Float)
    }

    /// The window plenoptic uses for an `h` x `w` image: `min(11, h, w)` wide.
    fn for_image(&self, h: i64, w: i64) -> (i64, &SsimWindow) {
        let size = Self::SIZE.min(h).min(w).max(1);
        (size, &self.by_size[(size - 1) as usize])
    }

    pub(crate) fn set_device(&mut self, device: Device, kind: Kind) {
        *self = Self::new(device, kind);
    }
}

/// Logs plenoptic's small-image warning, once per metric and image size.
pub(crate) fn warn_small_image(metric: &'static str, h: i64, w: i64, message: &str) {
    if crate::warn::first_time((metric, "small image", [h, w, 0, 0])) {
        tracing::warn!(
            "{metric} on {h}x{w} images: {message} (plenoptic warns the same; logged once per metric and size)"
        );
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

/// SSIM's local statistics of two batches whose batch and channel sizes are equal or 1,
/// as plenoptic's `_ssim_parts`: with the 11x11 window, or `min(11, H, W)` for a smaller
/// image. `metric` names the caller in the (once-only) multi-channel warning.
pub(crate) fn ssim_parts(
    x: &Tensor,
    y: &Tensor,
    windows: &SsimWindows,
    pad: Option<&str>,
    metric: &'static str,
) -> SsimParts {
    let size = x.size();
    let (real, window) = windows.for_image(size[2], size[3]);
    let channels = size[1].max(y.size()[1]);
    if channels > 1 && crate::warn::first_time((metric, "channels", [channels, 0, 0, 0])) {
        tracing::warn!("{metric} on {channels}-channel images: {CHANNELS_WARNING} (plenoptic warns the same; logged once)");
    }
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

/// plenoptic's `ssim_map(x, y)`: the SSIM map without padding, (N, C, H-k+1, W-k+1) with
/// `k = min(11, H, W)` (a smaller image gets a smaller window, with plenoptic's warning,
/// logged once per size). Builds its windows on each call; [`Ssim::map`] reuses stored ones.
pub fn ssim_map(x: &Tensor, y: &Tensor) -> Tensor {
    let size = x.size();
    if size[2].min(size[3]) < SsimWindows::SIZE {
        warn_small_image("ssim_map", size[2], size[3], SMALL_IMAGE_WARNING);
    }
    let windows = SsimWindows::new(x.device(), x.kind());
    ssim_parts(x, y, &windows, None, "ssim_map").map
}

/// Reads `pad`: `false` or one of the padding modes.
pub(crate) fn pad_param(p: &Params) -> Result<Option<String>> {
    match p.raw("pad") {
        Value::Bool(false) => Ok(None),
        Value::String(s) if PAD_MODES.contains(&s.as_str()) => Ok(Some(s.clone())),
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

/// plenoptic's `ssim` (`plenoptic.metric.perceptual_distance.ssim`): mean SSIM per batch
/// element and channel, (N, C), in [-1, 1] (1 for identical images); or `1 - SSIM`, in
/// [0, 2], as `ssim_distance`.
///
/// Takes two (N, C, H, W) batches of the same shape, pixel values in [0, 1] (the constants
/// C1 = 0.01², C2 = 0.03² assume a dynamic range of 1). Channels are treated as batch
/// elements (plenoptic warns for C > 1). Follows Wang et al. (2004); `weighted` follows
/// Wang & Simoncelli (2008).
#[derive(Debug)]
pub struct Ssim {
    weighted: bool,
    pad: Option<String>,
    windows: SsimWindows,
    distance: bool,
}

impl Ssim {
    /// The similarity (`distance = false`) or `1 -` it.
    pub fn new(weighted: bool, pad: Option<&str>, distance: bool) -> Self {
        Ssim {
            weighted,
            pad: pad.map(str::to_string),
            windows: SsimWindows::cpu(),
            distance,
        }
    }

    /// From spec parameters ([`SSIM_PARAMS`]). Errors: [`ModelError::InvalidParam`] for a
    /// non-bool `weighted` or a `pad` that is neither `false` nor a padding mode.
    pub fn from_params(p: &Params, distance: bool) -> Result<Self> {
        Ok(Self::new(
            p.bool("weighted")?,
            pad_param(p)?.as_deref(),
            distance,
        ))
    }

    fn tag(&self) -> &'static str {
        if self.distance {
            "ssim_distance"
        } else {
            "ssim"
        }
    }

    fn parts(&self, x: &Tensor, y: &Tensor) -> SsimParts {
        let size = x.size();
        if size.len() == 4 && size[2].min(size[3]) < SsimWindows::SIZE {
            warn_small_image(self.tag(), size[2], size[3], SMALL_IMAGE_WARNING);
        }
        ssim_parts(x, y, &self.windows, self.pad.as_deref(), self.tag())
    }

    /// The SSIM map with this metric's padding: (N, C, H, W) when padded, else
    /// (N, C, H-k+1, W-k+1) with `k = min(11, H, W)`.
    pub fn map(&self, x: &Tensor, y: &Tensor) -> Tensor {
        self.parts(x, y).map
    }

    /// Mean (or weighted mean) SSIM, (N, C), in [-1, 1]. Any size of image is taken: below
    /// 11 px the window shrinks to `min(11, H, W)` as in plenoptic, which warns (logged once
    /// per metric and size). The weighted mean of a 1x1 image is NaN (0/0), as in plenoptic.
    pub fn similarity(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let parts = self.parts(x, y);
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
        self.tag()
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        let s = self.similarity(a, b);
        if self.distance {
            1.0 - s
        } else {
            s
        }
    }
    /// Any 4-D batch: plenoptic takes every size (smaller windows below 11 px).
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.windows.set_device(device, kind)
    }
}
