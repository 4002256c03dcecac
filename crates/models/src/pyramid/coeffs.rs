//! The output of the steerable pyramid: coefficients by scale, and the names plenoptic
//! gives to the pyramid's entries.
use tch::Tensor;

/// One entry of the pyramid, named as plenoptic's `scales` list names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PyrScale {
    /// What lies above the finest band: `residual_highpass`.
    ResidualHighpass,
    /// The oriented bands of a scale, 0 = finest.
    Band(usize),
    /// What lies below the coarsest band: `residual_lowpass`.
    ResidualLowpass,
}

impl PyrScale {
    /// `residual_highpass`, `residual_lowpass`, or the scale number.
    pub fn name(&self) -> String {
        match self {
            PyrScale::ResidualHighpass => "residual_highpass".into(),
            PyrScale::ResidualLowpass => "residual_lowpass".into(),
            PyrScale::Band(s) => s.to_string(),
        }
    }

    /// Parses a name of [`PyrScale::name`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "residual_highpass" => Some(PyrScale::ResidualHighpass),
            "residual_lowpass" => Some(PyrScale::ResidualLowpass),
            _ => s.parse().ok().map(PyrScale::Band),
        }
    }

    /// Every entry of a pyramid with `num_scales` scales, coarse to fine.
    pub fn coarse_to_fine(num_scales: usize) -> Vec<PyrScale> {
        let mut v = vec![PyrScale::ResidualLowpass];
        v.extend((0..num_scales).rev().map(PyrScale::Band));
        v.push(PyrScale::ResidualHighpass);
        v
    }
}

/// Pyramid coefficients. Entries not computed (see
/// [`SteerablePyramid::coeffs_scales`](super::SteerablePyramid::coeffs_scales)) are `None`.
#[derive(Debug)]
pub struct PyramidCoeffs {
    /// (B, C, H, W), real.
    pub residual_highpass: Option<Tensor>,
    /// Per scale (0 = finest): (B, C, n_orientations, h, w); complex for a complex pyramid.
    pub bands: Vec<Option<Tensor>>,
    /// (B, C, h, w), real.
    pub residual_lowpass: Option<Tensor>,
    /// The (H, W) of the analysed image.
    pub image_shape: (i64, i64),
}

impl PyramidCoeffs {
    /// The bands of `scale`; panics when that scale was not computed.
    pub fn band(&self, scale: usize) -> &Tensor {
        self.bands[scale]
            .as_ref()
            .unwrap_or_else(|| panic!("scale {scale} was not computed"))
    }

    /// Every computed coefficient flattened per (batch, channel) and concatenated:
    /// residual highpass, then each scale from finest to coarsest (orientation-major; a
    /// complex scale contributes all its real parts, then all its imaginary parts), then
    /// the residual lowpass. Shape (B, C, N).
    pub fn flatten(&self) -> Tensor {
        let mut parts = Vec::new();
        parts.extend(self.residual_highpass.iter().map(|t| t.flatten(2, -1)));
        for band in self.bands.iter().flatten() {
            if band.is_complex() {
                parts.push(band.real().flatten(2, -1));
                parts.push(band.imag().flatten(2, -1));
            } else {
                parts.push(band.flatten(2, -1));
            }
        }
        parts.extend(self.residual_lowpass.iter().map(|t| t.flatten(2, -1)));
        Tensor::cat(&parts, 2)
    }

    /// The computed coefficients by name: `residual_highpass`, `band_s{scale}_o{ori}`
    /// (split into `_real` / `_imag` when complex), `residual_lowpass`; each (B, C, h, w).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        if let Some(t) = &self.residual_highpass {
            out.push(("residual_highpass".to_string(), t.shallow_clone()));
        }
        for (s, band) in self.bands.iter().enumerate() {
            let Some(band) = band else { continue };
            for o in 0..band.size()[2] {
                let b = band.select(2, o);
                let name = format!("band_s{s}_o{o}");
                if b.is_complex() {
                    out.push((format!("{name}_real"), b.real()));
                    out.push((format!("{name}_imag"), b.imag()));
                } else {
                    out.push((name, b));
                }
            }
        }
        if let Some(t) = &self.residual_lowpass {
            out.push(("residual_lowpass".to_string(), t.shallow_clone()));
        }
        out
    }
}
