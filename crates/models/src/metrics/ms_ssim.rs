//! MS-SSIM (Wang, Simoncelli & Bovik 2003) as plenoptic computes it: the contrast-structure
//! mean at every scale but the coarsest and the SSIM mean at the coarsest, each through a
//! ReLU and raised to its power factor, multiplied. Scales come from 2x2 average pooling
//! (replicate-padded when odd). A scale smaller than 11 px gets a `min(11, h, w)` window,
//! as in plenoptic, which then warns (logged once per metric and size).
//! `ms_ssim_distance` is `1 - ms_ssim`.
use crate::error::{ModelError, Result};
use crate::metrics::ssim::{ssim_parts, warn_small_image, SsimWindows};
use crate::model::{check_4d, Metric};
use crate::params::{ParamDoc, Params};
use tch::{Device, Kind, Tensor};

/// The psychophysically fitted exponents of Wang et al. (2003), fine to coarse.
pub const DEFAULT_POWER_FACTORS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

/// The parameters of `ms_ssim` and `ms_ssim_distance` (plenoptic's `ms_ssim` arguments).
pub const MS_SSIM_PARAMS: &[ParamDoc] = &[ParamDoc {
    name: "power_factors",
    ty: "list of numbers >= 0",
    default: "[0.0448, 0.2856, 0.3001, 0.2363, 0.1333]",
    help: "exponent of each scale, fine to coarse; its length is the number of scales",
}];

/// plenoptic's `ms_ssim` (`plenoptic.metric.perceptual_distance.ms_ssim`): MS-SSIM per batch
/// element and channel, (N, C), in [0, 1] (1 for identical images; each scale's term goes
/// through a ReLU); or `1 - MS-SSIM`, in [0, 1], as `ms_ssim_distance`.
///
/// Takes two (N, C, H, W) batches of the same shape, pixel values in [0, 1]. The number of
/// scales is the length of `power_factors` (5 by default); every size is taken, scales under
/// 11 px with a smaller window and plenoptic's warning. Follows Wang, Simoncelli & Bovik (2003).
#[derive(Debug)]
pub struct MsSsim {
    power_factors: Vec<f64>,
    windows: SsimWindows,
    distance: bool,
}

impl MsSsim {
    /// The similarity (`distance = false`) or `1 -` it. `power_factors` must not be empty.
    pub fn new(power_factors: &[f64], distance: bool) -> Self {
        assert!(
            !power_factors.is_empty(),
            "MS-SSIM needs at least one scale"
        );
        MsSsim {
            power_factors: power_factors.to_vec(),
            windows: SsimWindows::cpu(),
            distance,
        }
    }

    /// From spec parameters ([`MS_SSIM_PARAMS`]). Errors: [`ModelError::InvalidParam`] when
    /// `power_factors` is not a non-empty list of finite numbers >= 0.
    pub fn from_params(p: &Params, distance: bool) -> Result<Self> {
        let factors = p.f64_list("power_factors")?;
        if let Some(bad) = factors.iter().find(|f| !(f.is_finite() && **f >= 0.0)) {
            return Err(ModelError::invalid(
                p.owner(),
                "power_factors",
                format!("each factor must be a finite number >= 0, got {bad}"),
            ));
        }
        Ok(Self::new(&factors, distance))
    }

    /// The height and width of the coarsest of `n_scales` scales of an `h` x `w` image
    /// (each scale halves, rounding up).
    pub fn coarsest_size(h: i64, w: i64, n_scales: usize) -> (i64, i64) {
        (1..n_scales).fold((h, w), |(h, w), _| ((h + 1) / 2, (w + 1) / 2))
    }

    fn tag(&self) -> &'static str {
        if self.distance {
            "ms_ssim_distance"
        } else {
            "ms_ssim"
        }
    }

    /// MS-SSIM, (N, C), in [0, 1]. Any size of image is taken: a scale under 11 px uses a
    /// `min(11, h, w)` window, as in plenoptic, which warns (logged once per metric and size).
    pub fn similarity(&self, x: &Tensor, y: &Tensor) -> Tensor {
        let size = x.size();
        let (ch, cw) = Self::coarsest_size(size[2], size[3], self.power_factors.len());
        if ch.min(cw) < SsimWindows::SIZE {
            warn_small_image(self.tag(), size[2], size[3], SMALL_SCALE_WARNING);
        }
        let dims = [-1i64, -2].as_slice();
        let (last, finer) = self.power_factors.split_last().expect("non-empty");
        let mut x = x.shallow_clone();
        let mut y = y.shallow_clone();
        let mut terms = Vec::with_capacity(self.power_factors.len());
        for &factor in finer {
            let cs = ssim_parts(&x, &y, &self.windows, None, self.tag()).contrast_structure;
            terms.push(
                cs.mean_dim(dims, false, None::<Kind>)
                    .relu()
                    .pow_tensor_scalar(factor),
            );
            x = downsample(&x);
            y = downsample(&y);
        }
        let map = ssim_parts(&x, &y, &self.windows, None, self.tag()).map;
        terms.push(
            map.mean_dim(dims, false, None::<Kind>)
                .relu()
                .pow_tensor_scalar(*last),
        );
        terms
            .into_iter()
            .reduce(|a, b| a * b)
            .expect("at least one scale")
    }
}

/// plenoptic's warning when a coarse scale is smaller than the 11x11 window.
const SMALL_SCALE_WARNING: &str = "SSIM uses 11x11 convolutional kernel, but for some scales of the input image, the height and/or the width is smaller than 11, so the kernel size in SSIM is set to be the minimum of these two numbers for these scales.";

/// 2x2 average pooling; an odd height or width first repeats its last row or column.
fn downsample(x: &Tensor) -> Tensor {
    let size = x.size();
    let (odd_h, odd_w) = (size[2] % 2, size[3] % 2);
    let x = if odd_h + odd_w > 0 {
        x.pad([0, odd_w, 0, odd_h], "replicate", None)
    } else {
        x.shallow_clone()
    };
    x.avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
}

impl Metric for MsSsim {
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
    /// Any 4-D batch: plenoptic takes every size (smaller windows at small scales).
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.windows.set_device(device, kind)
    }
}
