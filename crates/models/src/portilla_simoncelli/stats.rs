//! The Portilla-Simoncelli statistics themselves, each computed independently per batch
//! element and channel, as plenoptic computes them.
use crate::signal::{autocorrelation, center_crop, double_phase, expand};
use tch::{Kind, Tensor};

const HW: [i64; 2] = [-2, -1];

fn mean_hw(x: &Tensor, keepdim: bool) -> Tensor {
    x.mean_dim(Some(HW.as_slice()), keepdim, None::<Kind>)
}

/// Mean, (unbiased) variance, skew, kurtosis, min and max of each image: (B, C, 6).
pub fn pixel_statistics(x: &Tensor) -> Tensor {
    let mean = mean_hw(x, true);
    let var = x.var_dim(Some(HW.as_slice()), true, false);
    let centred = x - &mean;
    let skew = mean_hw(&centred.pow_tensor_scalar(3i64), false) / var.pow_tensor_scalar(1.5);
    let kurtosis =
        mean_hw(&centred.abs().pow_tensor_scalar(4i64), false) / var.pow_tensor_scalar(2i64);
    let min = x.amin(HW.as_slice(), false);
    let max = x.amax(HW.as_slice(), false);
    Tensor::stack(
        &[
            mean.squeeze_dim(-1).squeeze_dim(-1),
            var,
            skew,
            kurtosis,
            min,
            max,
        ],
        -1,
    )
}

/// `|c| - mean |c|` and `Re c` of each scale's complex bands.
pub fn magnitudes_and_reals(bands: &[&Tensor]) -> (Vec<Tensor>, Vec<Tensor>) {
    let mags = bands
        .iter()
        .map(|c| {
            let a = c.abs();
            let m = mean_hw(&a, true);
            a - m
        })
        .collect();
    let reals = bands.iter().map(|c| c.real()).collect();
    (mags, reals)
}

/// Central `width x width` auto-correlations (normalized by the variance) of each tensor
/// (B, C, [O,] h, w), stacked along a last scale dimension: (B, C, width, width, [O,] S);
/// and the variances, (B, C, [O,] S).
pub fn autocorrelations(coeffs: &[Tensor], width: i64) -> (Tensor, Tensor) {
    let mut acs = Vec::with_capacity(coeffs.len());
    let mut vars = Vec::with_capacity(coeffs.len());
    for c in coeffs {
        let ac = autocorrelation(c);
        let var = center_crop(&ac, 1);
        let ac = center_crop(&(ac / &var), width);
        // Move the two spatial lags in front of the orientation dimension, if any.
        let ac = if c.dim() == 5 {
            ac.permute([0, 1, 3, 4, 2])
        } else {
            ac
        };
        acs.push(ac);
        vars.push(var.squeeze_dim(-1).squeeze_dim(-1));
    }
    (Tensor::stack(&acs, -1), Tensor::stack(&vars, -1))
}

/// Skew and kurtosis of each reconstructed (zero-mean) lowpass image, (B, C, S+1) each;
/// 0 and 3 where its variance is negligible next to the image's `pixel_var`.
pub fn skew_kurtosis_reconstructed(
    images: &[Tensor],
    var: &Tensor,
    pixel_var: &Tensor,
) -> (Tensor, Tensor) {
    let mut skews = Vec::with_capacity(images.len());
    let mut kurts = Vec::with_capacity(images.len());
    for (i, im) in images.iter().enumerate() {
        let v = var.select(-1, i as i64);
        skews.push(mean_hw(&im.pow_tensor_scalar(3i64), false) / v.pow_tensor_scalar(1.5));
        kurts.push(mean_hw(&im.abs().pow_tensor_scalar(4i64), false) / v.pow_tensor_scalar(2i64));
    }
    let skew = Tensor::stack(&skews, -1);
    let kurtosis = Tensor::stack(&kurts, -1);
    let resolution = match var.kind() {
        Kind::Double => 1e-15,
        Kind::Half => 1e-3,
        Kind::BFloat16 => 1e-2,
        _ => 1e-6,
    };
    let unstable = (var / pixel_var.unsqueeze(-1)).lt(resolution);
    (
        skew.zeros_like().where_self(&unstable, &skew),
        kurtosis.full_like(3.0).where_self(&unstable, &kurtosis),
    )
}

/// `sum_hw a[o1] b[o2] / (h w)`: (B, C, O1, O2).
fn covariance(a: &Tensor, b: &Tensor) -> Tensor {
    let s = a.size();
    let numel = (s[s.len() - 2] * s[s.len() - 1]) as f64;
    Tensor::einsum("bcohw,bcphw->bcop", &[a, b], None::<i64>) / numel
}

/// `sum_hw a[o]^2 / (h w)`: (B, C, O).
fn second_moment(a: &Tensor) -> Tensor {
    let s = a.size();
    let numel = (s[s.len() - 2] * s[s.len() - 1]) as f64;
    Tensor::einsum("bcohw,bcohw->bco", &[a, a], None::<i64>) / numel
}

/// Correlations between the orientations of `a[s]` and `b[s]` (B, C, O, h, w) for each
/// scale s, normalized by their second moments (given, or computed): (B, C, O1, O2, S).
pub fn cross_correlations(
    a: &[Tensor],
    b: &[Tensor],
    var_a: Option<&Tensor>,
    var_b: Option<&Tensor>,
) -> Tensor {
    let corrs: Vec<Tensor> = a
        .iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| {
            let covar = covariance(x, y);
            let vx = var_a.map_or_else(|| second_moment(x), |v| v.select(-1, i as i64));
            let vy = var_b.map_or_else(|| second_moment(y), |v| v.select(-1, i as i64));
            let outer = Tensor::einsum("bco,bcp->bcop", &[vx, vy], None::<i64>);
            covar / outer.sqrt()
        })
        .collect();
    Tensor::stack(&corrs, -1)
}

/// Each coarser scale upsampled to the next finer one with its phase doubled: the
/// demeaned magnitudes (B, C, O, h, w) and the real and imaginary parts stacked along
/// orientation (B, C, 2 O, h, w). The finest scale has no finer neighbour and is skipped.
pub fn phase_doubled(bands: &[&Tensor]) -> (Vec<Tensor>, Vec<Tensor>) {
    let mut mags = Vec::new();
    let mut parts = Vec::new();
    for c in bands.iter().skip(1) {
        // The factor 4 brings the unnormalized pyramid's coarser amplitudes to the finer scale's.
        let d = double_phase(&(expand(c, 2) / 4.0));
        let mag = d.abs();
        let m = mean_hw(&mag, true);
        mags.push(mag - m);
        parts.push(Tensor::cat(&[d.real(), d.imag()], 2));
    }
    (mags, parts)
}

/// Mean square of the highpass residual: (B, C).
pub fn highpass_variance(hp: &Tensor) -> Tensor {
    mean_hw(&hp.pow_tensor_scalar(2i64), false)
}
