//! Reconstruction of an image from (a subset of) its steerable pyramid coefficients.
use super::coeffs::{PyrScale, PyramidCoeffs};
use super::steerable::SteerablePyramid;
use crate::error::{ModelError, Result};
use crate::signal::{fft2_centered, ifft2_centered};
use tch::Tensor;

impl SteerablePyramid {
    /// Reconstructs the image from the `levels` entries of `coeffs`, using only the
    /// orientations in `bands` (plenoptic's `recon_pyr(coeffs, levels, bands)`).
    /// Every selected entry must be present in `coeffs`.
    pub fn recon_pyr(
        &self,
        coeffs: &PyramidCoeffs,
        levels: &[PyrScale],
        bands: &[usize],
    ) -> Result<Tensor> {
        let (h, w) = coeffs.image_shape;
        let num_scales = self.num_scales(h, w)?;
        if coeffs.bands.len() != num_scales {
            return Err(ModelError::Spec(format!(
                "steerable_pyramid: coefficients have {} scales, this pyramid has {num_scales} for {h}x{w}",
                coeffs.bands.len()
            )));
        }
        let n_ori = self.num_orientations();
        if let Some(b) = bands.iter().find(|&&b| b >= n_ori) {
            return Err(ModelError::Spec(format!(
                "steerable_pyramid: band {b} out of range 0..{}",
                n_ori - 1
            )));
        }
        let missing = |name: &str| {
            ModelError::Spec(format!(
                "steerable_pyramid: cannot reconstruct from {name}: it was not computed"
            ))
        };
        let like = coeffs
            .residual_lowpass
            .as_ref()
            .or(coeffs.residual_highpass.as_ref())
            .or(coeffs.bands.iter().flatten().next())
            .ok_or_else(|| {
                ModelError::Spec("steerable_pyramid: no coefficients to reconstruct from".into())
            })?;
        let m = self.masks(h, w, like.device(), like.kind())?;
        let norm = self.norm();
        // Reconstruction from coarse to fine; `None` stands for an all-zero spectrum.
        let mut dft: Option<Tensor> = if levels.contains(&PyrScale::ResidualLowpass) {
            let lp = coeffs
                .residual_lowpass
                .as_ref()
                .ok_or_else(|| missing("residual_lowpass"))?;
            Some(fft2_centered(lp, norm))
        } else {
            None
        };
        for (s, sm) in m.scales.iter().enumerate().rev() {
            let lower = dft.take().map(|d| {
                let d = if !self.config().tight_frame && !self.config().downsample {
                    d / 2.0
                } else {
                    d
                };
                let d = d * &sm.lo;
                let (lh, lw) = (sm.lo.size()[0], sm.lo.size()[1]);
                let (y0, x0) = sm.lo_start;
                d.constant_pad_nd([x0, sm.size.1 - x0 - lw, y0, sm.size.0 - y0 - lh].as_slice())
            });
            let orient = if levels.contains(&PyrScale::Band(s)) && !bands.is_empty() {
                let c = coeffs.bands[s]
                    .as_ref()
                    .ok_or_else(|| missing(&format!("scale {s}")))?;
                let c = if self.config().tight_frame && self.config().is_complex {
                    c * std::f64::consts::SQRT_2
                } else {
                    c.shallow_clone()
                };
                let banddft = fft2_centered(&c, norm) * &sm.band_recon;
                let mut sum: Option<Tensor> = None;
                for b in 0..n_ori as i64 {
                    if bands.contains(&(b as usize)) {
                        let one = banddft.select(2, b);
                        sum = Some(match sum {
                            Some(acc) => acc + one,
                            None => one,
                        });
                    }
                }
                sum
            } else {
                None
            };
            dft = match (lower, orient) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        let hp = if levels.contains(&PyrScale::ResidualHighpass) {
            let hp = coeffs
                .residual_highpass
                .as_ref()
                .ok_or_else(|| missing("residual_highpass"))?;
            Some(fft2_centered(hp, norm) * &m.hi0)
        } else {
            None
        };
        let out = match (dft.map(|d| d * &m.lo0), hp) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => {
                let (b, c) = (like.size()[0], like.size()[1]);
                return Ok(Tensor::zeros([b, c, h, w], (m.lo0.kind(), m.lo0.device())));
            }
        };
        Ok(ifft2_centered(&out, norm).real())
    }

    /// `recon_pyr` with every level and orientation.
    pub fn recon_all(&self, coeffs: &PyramidCoeffs) -> Result<Tensor> {
        let levels = PyrScale::coarse_to_fine(coeffs.bands.len());
        let bands: Vec<usize> = (0..self.num_orientations()).collect();
        self.recon_pyr(coeffs, &levels, &bands)
    }
}
