//! The Fourier-domain masks of the steerable pyramid, computed in f64 with numpy's
//! semantics (`np.interp`, `np.linspace`, the raised-cosine lookup table) so that they
//! match plenoptic's before it casts them to the working precision.
use std::f64::consts::PI;

/// A row-major f64 image.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    pub h: usize,
    pub w: usize,
    pub data: Vec<f64>,
}

impl Grid {
    fn map(&self, f: impl Fn(f64) -> f64) -> Grid {
        Grid {
            h: self.h,
            w: self.w,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    fn crop(&self, start: (usize, usize), size: (usize, usize)) -> Grid {
        let mut data = Vec::with_capacity(size.0 * size.1);
        for i in start.0..start.0 + size.0 {
            data.extend_from_slice(&self.data[i * self.w + start.1..i * self.w + start.1 + size.1]);
        }
        Grid {
            h: size.0,
            w: size.1,
            data,
        }
    }

    fn mul(&self, other: &Grid) -> Grid {
        let data = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| a * b)
            .collect();
        Grid {
            h: self.h,
            w: self.w,
            data,
        }
    }
}

/// `np.interp(x, xp, fp)` for increasing `xp`: constant beyond the ends, and the exact
/// table value at a knot.
pub(crate) fn interp(x: &[f64], xp: &[f64], fp: &[f64]) -> Vec<f64> {
    let n = xp.len();
    x.iter()
        .map(|&v| {
            if v.is_nan() {
                return v;
            }
            if v < xp[0] {
                return fp[0];
            }
            if v > xp[n - 1] {
                return fp[n - 1];
            }
            // The last j with xp[j] <= v.
            let j = xp.partition_point(|&k| k <= v) - 1;
            if j == n - 1 || xp[j] == v {
                return fp[j];
            }
            let slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
            let y = slope * (v - xp[j]) + fp[j];
            if y.is_nan() {
                let y = slope * (v - xp[j + 1]) + fp[j + 1];
                if y.is_nan() && fp[j] == fp[j + 1] {
                    return fp[j];
                }
                return y;
            }
            y
        })
        .collect()
}

/// plenoptic's `raised_cosine` lookup table: (X, Y) with a cos² transition of `width`
/// centred at `position` from `values.0` to `values.1`.
pub(crate) fn raised_cosine(width: f64, position: f64, values: (f64, f64)) -> (Vec<f64>, Vec<f64>) {
    const SZ: i64 = 256;
    let x: Vec<f64> = (-SZ - 1..2)
        .map(|k| PI * k as f64 / (2 * SZ) as f64)
        .collect();
    let mut y: Vec<f64> = x
        .iter()
        .map(|&v| values.0 + (values.1 - values.0) * v.cos().powi(2))
        .collect();
    y[0] = y[1];
    y[SZ as usize + 2] = y[SZ as usize + 1];
    let x = x
        .iter()
        .map(|&v| position + (2.0 * width / PI) * (v + PI / 4.0))
        .collect();
    (x, y)
}

/// `np.linspace(-1, 1, n + 1)[:-1]`.
fn ramp(n: usize) -> Vec<f64> {
    let step = 2.0 / n as f64;
    (0..n).map(|i| i as f64 * step + -1.0).collect()
}

/// `2^(2 order) (order!)^2 / (n_ori (2 order)!)`, the squared gain of the angular functions.
fn angular_const(order: usize, n_ori: usize) -> f64 {
    let fact = |n: usize| (1..=n as u128).product::<u128>();
    let num = (1u128 << (2 * order)) * fact(order) * fact(order);
    let den = n_ori as u128 * fact(2 * order);
    num as f64 / den as f64
}

/// The masks of one scale, at that scale's resolution.
#[derive(Debug, Clone)]
pub(crate) struct ScaleMasks64 {
    /// `anglemask * himask` per orientation (n_ori planes of `size`), analysis.
    pub band: Vec<Grid>,
    /// The same with the synthesis angular functions.
    pub band_recon: Vec<Grid>,
    /// The lowpass mask applied after cropping to `lo_start`/`lo.h x lo.w`.
    pub lo: Grid,
    /// Top-left corner of the lowpass crop ((0, 0) without downsampling).
    pub lo_start: (usize, usize),
    /// Size of this scale's bands.
    pub size: (usize, usize),
}

/// All masks of a pyramid for one image shape.
#[derive(Debug, Clone)]
pub(crate) struct Masks64 {
    pub lo0: Grid,
    pub hi0: Grid,
    pub scales: Vec<ScaleMasks64>,
}

/// The options that shape the masks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MaskSpec {
    pub shape: (usize, usize),
    pub num_scales: usize,
    pub order: usize,
    pub twidth: usize,
    pub is_complex: bool,
    pub downsample: bool,
}

pub(crate) fn build(spec: MaskSpec) -> Masks64 {
    let (h, w) = spec.shape;
    let n_ori = spec.order + 1;
    let (xr, yr) = (ramp(w), ramp(h));
    let mut angle = Grid {
        h,
        w,
        data: Vec::with_capacity(h * w),
    };
    let mut log_rad = Grid {
        h,
        w,
        data: Vec::with_capacity(h * w),
    };
    for y in &yr {
        for x in &xr {
            angle.data.push(y.atan2(*x));
            log_rad.data.push((x * x + y * y).sqrt());
        }
    }
    // The DC sample takes its left neighbour's radius so that its log is finite
    // (numpy's negative index wraps around for a width of 1).
    let ctr = (h / 2 + 1, w / 2 + 1);
    let left = (ctr.1 as i64 - 2).rem_euclid(w as i64) as usize;
    log_rad.data[(ctr.0 - 1) * w + ctr.1 - 1] = log_rad.data[(ctr.0 - 1) * w + left];
    let mut log_rad = log_rad.map(f64::log2);

    let twidth = spec.twidth as f64;
    let (mut xrcos, yrcos) = raised_cosine(twidth, -twidth / 2.0, (0.0, 1.0));
    let yrcos: Vec<f64> = yrcos.iter().map(|v| v.sqrt()).collect();
    let yircos: Vec<f64> = yrcos.iter().map(|v| (1.0 - v.powi(2)).sqrt()).collect();
    let radial = |g: &Grid, table: &[f64], knots: &[f64]| Grid {
        h: g.h,
        w: g.w,
        data: interp(&g.data, knots, table),
    };
    let lo0 = radial(&log_rad, &yircos, &xrcos);
    let hi0 = radial(&log_rad, &yrcos, &xrcos);

    const LUTSIZE: i64 = 1024;
    let xcosn: Vec<f64> = (-(2 * LUTSIZE + 1)..LUTSIZE + 2)
        .map(|k| PI * k as f64 / LUTSIZE as f64)
        .collect();
    let sqrt_const = angular_const(spec.order, n_ori).sqrt();
    let order = spec.order as f64;
    let cosn: Vec<f64> = xcosn.iter().map(|x| x.cos().powf(order)).collect();
    let ycosn_recon: Vec<f64> = cosn.iter().map(|c| sqrt_const * c).collect();
    let ycosn_forward: Vec<f64> = if spec.is_complex {
        xcosn
            .iter()
            .zip(&cosn)
            .map(|(x, c)| {
                let alpha = (x + PI).rem_euclid(2.0 * PI) - PI;
                let one_sided = if alpha.abs() < PI / 2.0 { 1.0 } else { 0.0 };
                2.0 * sqrt_const * c * one_sided
            })
            .collect()
    } else {
        ycosn_recon.clone()
    };

    let mut scales = Vec::with_capacity(spec.num_scales);
    for _ in 0..spec.num_scales {
        xrcos.iter_mut().for_each(|x| *x -= 1.0);
        let himask = radial(&log_rad, &yrcos, &xrcos);
        let angular = |table: &[f64]| -> Vec<Grid> {
            (0..n_ori)
                .map(|b| {
                    let shift = PI * b as f64 / n_ori as f64;
                    let knots: Vec<f64> = xcosn.iter().map(|x| x + shift).collect();
                    radial(&angle, table, &knots).mul(&himask)
                })
                .collect()
        };
        let band = angular(&ycosn_forward);
        let band_recon = angular(&ycosn_recon);
        let size = (log_rad.h, log_rad.w);
        let lo_start = if spec.downsample {
            let (dh, dw) = size;
            let lodims = (dh.div_ceil(2), dw.div_ceil(2));
            let start = (
                dh / 2 + 1 - (lodims.0 / 2 + 1),
                dw / 2 + 1 - (lodims.1 / 2 + 1),
            );
            log_rad = log_rad.crop(start, lodims);
            angle = angle.crop(start, lodims);
            start
        } else {
            (0, 0)
        };
        let lo = radial(&log_rad, &yircos, &xrcos);
        scales.push(ScaleMasks64 {
            band,
            band_recon,
            lo,
            lo_start,
            size,
        });
    }
    Masks64 { lo0, hi0, scales }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interp_matches_numpy_rules() {
        let xp = [0.0, 1.0, 2.0];
        let fp = [10.0, 20.0, 40.0];
        assert_eq!(
            interp(&[-1.0, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0], &xp, &fp),
            vec![10.0, 10.0, 15.0, 20.0, 30.0, 40.0, 40.0]
        );
    }

    #[test]
    fn angular_const_order_3() {
        // 2^6 * 36 / (4 * 720)
        assert!((angular_const(3, 4) - 0.8).abs() < 1e-15);
    }
}
