//! plenoptic's `PortillaSimoncelli` texture statistics (Portilla & Simoncelli 2000) on a
//! complex steerable pyramid: pixel moments, auto-correlations of the band magnitudes and
//! of the reconstructed lowpass images, and cross-orientation and cross-scale
//! correlations, with redundant values removed.
mod layout;
mod stats;

pub use layout::{StatEntry, StatLayout, StatScale};

use crate::error::{ModelError, Result};
use crate::model::{check_4d, Model};
use crate::params::{ParamDoc, Params};
use crate::pyramid::{Height, PyrScale, PyramidCoeffs, SteerableConfig, SteerablePyramid};
use crate::signal::shrink;
use std::cell::RefCell;
use tch::{Device, Kind, Tensor};

/// The parameters of `portilla_simoncelli` (plenoptic's `PortillaSimoncelli` arguments).
pub const PORTILLA_SIMONCELLI_PARAMS: &[ParamDoc] = &[
    ParamDoc { name: "image_shape", ty: "[int, int] or null", default: "null", help: "input height and width; null = any valid size (pyramid masks built per size on first use)" },
    ParamDoc { name: "n_scales", ty: "int", default: "4", help: "number of pyramid scales" },
    ParamDoc { name: "n_orientations", ty: "int in [2, 16]", default: "4", help: "number of orientations" },
    ParamDoc { name: "spatial_corr_width", ty: "int", default: "9", help: "width of the auto-correlation windows (plenoptic 1.1 default 9; 2.x uses 7)" },
];

const OWNER: &str = "portilla_simoncelli";

/// plenoptic's `PortillaSimoncelli` (`plenoptic.simulate.models.portilla_simoncelli`,
/// Portilla & Simoncelli 2000): texture statistics of an (N, C, H, W) batch, one flat vector
/// (N, C, K) per image and channel, redundant statistics removed (K depends on `n_scales`,
/// `n_orientations` and `spatial_corr_width`, see [`StatLayout`]). Pixel values are
/// typically in [0, 1]; the statistics are moments and correlations in those units.
///
/// Each side must be a multiple of 2^n_scales and at least 2^n_scales · max(spatial_corr_width, 4)
/// (and equal `image_shape` when one was given); [`Model::check_input`] returns
/// [`ModelError::InputShape`] otherwise, and `forward` panics on such an input.
#[derive(Debug)]
pub struct PortillaSimoncelli {
    image_shape: Option<(i64, i64)>,
    n_scales: usize,
    n_orientations: usize,
    spatial_corr_width: usize,
    pyr: SteerablePyramid,
    layout: StatLayout,
    /// Positions of the kept statistics in the full vector, on the last device used.
    kept: RefCell<Tensor>,
    /// The last scale subset asked for and its positions in the representation (a
    /// coarse-to-fine synthesis asks for the same one many times in a row).
    subset: RefCell<Option<(Vec<StatScale>, Tensor)>>,
}

impl PortillaSimoncelli {
    /// The model for images of `image_shape` (height, width in pixels), or of any valid size when
    /// `None`. Errors: [`ModelError::InvalidParam`] when `n_scales` or `spatial_corr_width` is 0,
    /// `n_orientations` is outside [2, 16], or `image_shape` is a size the model cannot take.
    pub fn new(
        image_shape: Option<(i64, i64)>,
        n_scales: usize,
        n_orientations: usize,
        spatial_corr_width: usize,
    ) -> Result<Self> {
        if n_scales == 0 {
            return Err(ModelError::invalid(
                OWNER,
                "n_scales",
                "must be positive, got 0",
            ));
        }
        if !(2..=16).contains(&n_orientations) {
            return Err(ModelError::invalid(OWNER, "n_orientations", format!("must be in [2, 16] (the pyramid order is n_orientations - 1), got {n_orientations}")));
        }
        if spatial_corr_width == 0 {
            return Err(ModelError::invalid(
                OWNER,
                "spatial_corr_width",
                "must be positive, got 0",
            ));
        }
        let layout = StatLayout::new(n_scales, n_orientations, spatial_corr_width);
        let kept = Tensor::from_slice(&layout.kept_positions);
        let mut ps = PortillaSimoncelli {
            image_shape: None,
            n_scales,
            n_orientations,
            spatial_corr_width,
            pyr: SteerablePyramid::new(SteerableConfig::default())?,
            layout,
            kept: RefCell::new(kept),
            subset: RefCell::new(None),
        };
        if let Some((h, w)) = image_shape {
            ps.check_size(h, w).map_err(|need| {
                ModelError::invalid(OWNER, "image_shape", format!("[{h}, {w}]: {need}"))
            })?;
        }
        ps.image_shape = image_shape;
        ps.pyr = SteerablePyramid::new(SteerableConfig {
            image_shape,
            height: Height::Fixed(n_scales),
            order: n_orientations - 1,
            twidth: 1,
            is_complex: true,
            downsample: true,
            tight_frame: false,
        })?;
        Ok(ps)
    }

    /// From spec parameters ([`PORTILLA_SIMONCELLI_PARAMS`]); errors as [`PortillaSimoncelli::new`],
    /// plus [`ModelError::InvalidParam`] for a value of the wrong type.
    pub fn from_params(p: &Params) -> Result<Self> {
        Self::new(
            p.opt_shape("image_shape")?,
            p.positive_usize("n_scales")?,
            p.usize("n_orientations")?,
            p.positive_usize("spatial_corr_width")?,
        )
    }

    /// Names, shapes, redundancy and scales of the statistics.
    pub fn layout(&self) -> &StatLayout {
        &self.layout
    }

    /// The pyramid the statistics are computed on.
    pub fn pyramid(&self) -> &SteerablePyramid {
        &self.pyr
    }

    /// Sizes the model takes: each side a multiple of 2^n_scales (the lowpass images are
    /// shrunk by powers of 2) and at least 2^n_scales * max(spatial_corr_width, 4) (the
    /// coarsest lowpass must hold a correlation window, and the pyramid needs
    /// min(H, W) >= 2^(n_scales + 2)).
    fn check_size(&self, h: i64, w: i64) -> std::result::Result<(), String> {
        let step = 1i64 << self.n_scales;
        let min = step * (self.spatial_corr_width as i64).max(4);
        if h % step != 0 || w % step != 0 || h < min || w < min {
            return Err(format!(
                "with n_scales {} and spatial_corr_width {}, height and width must be multiples of {step} and at least {min} \
                 (the coarsest reconstructed lowpass, H/{step} x W/{step}, must be at least spatial_corr_width wide)",
                self.n_scales, self.spatial_corr_width
            ));
        }
        Ok(())
    }

    /// Where the coarsest reconstructed lowpass (H / 2^n_scales by W / 2^n_scales) is odd in
    /// width, plenoptic's autocorrelation (`irfft2` without the output size) comes back one
    /// column short, while this one is the true circular autocorrelation: the coarsest
    /// scale's `auto_correlation_reconstructed`, `std_reconstructed`, `skew_reconstructed` and
    /// `kurtosis_reconstructed` differ from plenoptic's; and where that short autocorrelation
    /// is narrower than `spatial_corr_width` (the coarsest width equals it, e.g. 144 px at the
    /// defaults), plenoptic (1.1.0 and 2.1) fails on the size. Says so, once per image size,
    /// `n_scales` and `spatial_corr_width` (README, parity).
    fn warn_odd_coarsest_width(&self, x: &Tensor) {
        let s = x.size();
        let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
        let n = self.n_scales;
        let coarsest = (h >> n, w >> n);
        // Everything that decides whether this warns and what it says: the size, the number
        // of scales (the coarsest width) and spatial_corr_width (whether plenoptic fails).
        let width = self.spatial_corr_width as i64;
        let key = (OWNER, "odd coarsest width", [h, w, n as i64, width]);
        if coarsest.1 % 2 == 0 || !crate::warn::first_time(key) {
            return;
        }
        let head = format!(
            "{OWNER} on {h}x{w} images with n_scales {n}: the coarsest reconstructed lowpass is \
             {}x{}, odd in width, where plenoptic's autocorrelation (irfft2 without the output \
             size) drops a column; synthsweep computes the true autocorrelation",
            coarsest.0, coarsest.1
        );
        if coarsest.1 - 1 < self.spatial_corr_width as i64 {
            tracing::warn!(
                "{head}. At this size plenoptic's autocorrelation ({} wide) is narrower than \
                 spatial_corr_width {}, and plenoptic fails on this size, so there is no \
                 plenoptic value to compare with (README, parity; logged once per size and \
                 configuration)",
                coarsest.1 - 1,
                self.spatial_corr_width
            );
        } else {
            tracing::warn!(
                "{head}, so the coarsest scale's auto_correlation_reconstructed, \
                 std_reconstructed, skew_reconstructed and kurtosis_reconstructed differ from \
                 plenoptic's (README, parity; logged once per size and configuration)"
            );
        }
    }

    /// The reconstructed lowpass image at each scale, fine to coarse (n_scales + 1 of
    /// them), each at the size of its scale's bands and scaled by 4 per octave.
    fn reconstructed_lowpasses(&self, coeffs: &PyramidCoeffs) -> Result<Vec<Tensor>> {
        let n = self.n_scales;
        let bands: Vec<usize> = (0..self.n_orientations).collect();
        let mut images = vec![self
            .pyr
            .recon_pyr(coeffs, &[PyrScale::ResidualLowpass], &bands)?];
        for level in (0..n).rev() {
            let coarser = images.last().expect("starts with the lowpass");
            let image = self
                .pyr
                .recon_pyr(coeffs, &[PyrScale::Band(level)], &bands)?
                + coarser;
            images.push(image);
        }
        for (i, image) in images.iter_mut().enumerate().take(n) {
            let factor = 1i64 << (n - i);
            *image = shrink(image, factor) * (factor * factor) as f64;
        }
        images.reverse();
        Ok(images)
    }

    /// Every statistic, redundant ones included: (B, C, full length).
    fn full_statistics(&self, x: &Tensor) -> Result<Tensor> {
        let n = self.n_scales;
        let mut coeffs = self.pyr.coeffs(x)?;
        let lowpass = coeffs.residual_lowpass.take().expect("all scales computed");
        let mean = lowpass.mean_dim(Some([-2i64, -1].as_slice()), true, None::<Kind>);
        coeffs.residual_lowpass = Some(lowpass - mean);
        let bands: Vec<&Tensor> = (0..n).map(|s| coeffs.band(s)).collect();
        let (mags, reals) = stats::magnitudes_and_reals(&bands);
        let recon = self.reconstructed_lowpasses(&coeffs)?;
        let width = self.spatial_corr_width as i64;

        let pixel = stats::pixel_statistics(x);
        let (autocorr_mags, mags_var) = stats::autocorrelations(&mags, width);
        let mags_std = mags_var.sqrt();
        let (autocorr_recon, var_recon) = stats::autocorrelations(&recon, width);
        let std_recon = var_recon.sqrt();
        let (skew_recon, kurtosis_recon) =
            stats::skew_kurtosis_reconstructed(&recon, &var_recon, &pixel.select(-1, 1));
        let cross_ori = stats::cross_correlations(&mags, &mags, Some(&mags_var), Some(&mags_var));
        let mut all = vec![
            pixel,
            autocorr_mags,
            skew_recon,
            kurtosis_recon,
            autocorr_recon,
            std_recon,
            cross_ori,
            mags_std,
        ];
        if n > 1 {
            let (doubled_mags, doubled_parts) = stats::phase_doubled(&bands);
            let finer_var = mags_var.narrow(-1, 0, n as i64 - 1);
            all.push(stats::cross_correlations(
                &mags[..n - 1],
                &doubled_mags,
                Some(&finer_var),
                None,
            ));
            all.push(stats::cross_correlations(
                &reals[..n - 1],
                &doubled_parts,
                None,
                None,
            ));
        }
        let highpass = coeffs
            .residual_highpass
            .as_ref()
            .expect("all scales computed");
        all.push(stats::highpass_variance(highpass));
        let s = x.size();
        let flat: Vec<Tensor> = all.iter().map(|t| t.reshape([s[0], s[1], -1])).collect();
        Ok(Tensor::cat(&flat, -1))
    }

    /// The representation (B, C, n_stats), redundant statistics removed.
    pub fn representation(&self, x: &Tensor) -> Result<Tensor> {
        self.check_input(&x.size())?;
        self.warn_odd_coarsest_width(x);
        Ok(self
            .full_statistics(x)?
            .index_select(-1, &self.kept_on(x.device())))
    }

    /// The representation restricted to the statistics of `scales` (plenoptic's
    /// `forward(x, scales=...)`), in representation order.
    pub fn representation_at(&self, x: &Tensor, scales: &[StatScale]) -> Result<Tensor> {
        let rep = self.representation(x)?;
        let mut subset = self.subset.borrow_mut();
        let reuse =
            matches!(&*subset, Some((s, idx)) if s == scales && idx.device() == rep.device());
        if !reuse {
            let idx = Tensor::from_slice(&self.layout.positions_of(scales)).to_device(rep.device());
            *subset = Some((scales.to_vec(), idx));
        }
        let (_, idx) = subset.as_ref().expect("just set");
        Ok(rep.index_select(-1, idx))
    }

    /// The kept positions on `device`, moved there once.
    fn kept_on(&self, device: Device) -> Tensor {
        let mut kept = self.kept.borrow_mut();
        if kept.device() != device {
            *kept = kept.to_device(device);
        }
        kept.shallow_clone()
    }

    /// plenoptic's `convert_to_dict`: each statistic at its full shape (B, C, ...), NaN
    /// where the value is redundant.
    pub fn convert_to_dict(&self, rep: &Tensor) -> Result<Vec<(String, Tensor)>> {
        let s = rep.size();
        let n_kept = self.layout.kept_positions.len() as i64;
        if s.len() != 3 || s[2] != n_kept {
            return Err(ModelError::shape(OWNER, &s, format!("convert_to_dict needs the full representation (B, C, {n_kept}), not a subset of scales")));
        }
        let full = Tensor::full(
            [s[0], s[1], self.layout.full_len()],
            f64::NAN,
            (rep.kind(), rep.device()),
        );
        let full = full.index_copy(2, &self.kept_on(rep.device()), rep);
        let mut out = Vec::with_capacity(self.layout.entries.len());
        let mut start = 0;
        for e in &self.layout.entries {
            let len = e.necessary.len() as i64;
            let shape: Vec<i64> = [s[0], s[1]].iter().chain(&e.shape).copied().collect();
            out.push((e.key.to_string(), full.narrow(2, start, len).reshape(shape)));
            start += len;
        }
        Ok(out)
    }
}

impl Model for PortillaSimoncelli {
    fn name(&self) -> &str {
        OWNER
    }

    /// The representation (B, C, n_stats), see [`PortillaSimoncelli::representation`].
    fn forward(&self, x: &Tensor) -> Tensor {
        self.representation(x).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `out` and each statistic as `stat_<name>` (NaN = redundant).
    fn parts(&self, x: &Tensor) -> Vec<(String, Tensor)> {
        let out = self.forward(x);
        let stats = self.convert_to_dict(&out).expect("full representation");
        let mut parts = vec![("out".to_string(), out)];
        parts.extend(stats.into_iter().map(|(k, v)| (format!("stat_{k}"), v)));
        parts
    }

    /// [`PortillaSimoncelli::convert_to_dict`] of a full representation.
    fn statistics(&self, rep: &Tensor) -> Option<Vec<(String, Tensor)>> {
        self.convert_to_dict(rep).ok()
    }

    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(OWNER, shape)?;
        let (h, w) = (shape[2], shape[3]);
        if let Some((ih, iw)) = self.image_shape {
            if (h, w) != (ih, iw) {
                return Err(ModelError::shape(OWNER, shape, format!("this model was built for image_shape [{ih}, {iw}]; set image_shape to null to accept any valid size")));
            }
        }
        self.check_size(h, w)
            .map_err(|need| ModelError::shape(OWNER, shape, need))
    }

    fn to(&mut self, device: Device, kind: Kind) {
        self.pyr.to(device, kind);
        let kept = self.kept.get_mut();
        *kept = kept.to_device(device);
        *self.subset.get_mut() = None;
    }

    fn scales(&self) -> Option<Vec<String>> {
        Some(
            StatScale::coarse_to_fine(self.n_scales)
                .iter()
                .map(StatScale::name)
                .collect(),
        )
    }

    fn forward_scales(&self, x: &Tensor, scales: &[String]) -> Result<Tensor> {
        let valid = StatScale::coarse_to_fine(self.n_scales);
        let parsed = scales
            .iter()
            .map(|name| {
                StatScale::parse(name)
                    .filter(|s| valid.contains(s))
                    .ok_or_else(|| {
                        let names: Vec<String> = valid.iter().map(StatScale::name).collect();
                        ModelError::Spec(format!(
                            "{OWNER}: unknown scale `{name}`; valid scales: {}",
                            names.join(", ")
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        self.representation_at(x, &parsed)
    }
}
