//! plenoptic's `SteerablePyramidFreq`: a steerable pyramid computed in the Fourier domain,
//! with circular boundaries, real or complex bands, with or without downsampling.
//! The masks are built once per image shape (in f64, then cast) and cached, with one copy
//! per device and float kind they are used with.
use super::coeffs::{PyrScale, PyramidCoeffs};
use super::masks::{self, Grid, MaskSpec, Masks64};
use crate::error::{ModelError, Result};
use crate::model::{check_4d, Model};
use crate::params::{ParamDoc, Params};
use crate::signal::{complex_kind, fft2_centered, ifft2_centered, real_kind};
use serde_json::Value;
use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use tch::{Device, Kind, Tensor};

/// The parameters of `steerable_pyramid` (plenoptic's `SteerablePyramidFreq` arguments and defaults).
pub const STEERABLE_PYRAMID_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "image_shape",
        ty: "[int, int] or null",
        default: "null",
        help: "input height and width; null = masks built for each input shape on first use",
    },
    ParamDoc {
        name: "height",
        ty: "\"auto\" or int",
        default: "\"auto\"",
        help: "number of scales; auto = floor(log2(min(H, W))) - 2",
    },
    ParamDoc {
        name: "order",
        ty: "int in [1, 15]",
        default: "3",
        help: "derivative order of the oriented filters; order + 1 orientations",
    },
    ParamDoc {
        name: "twidth",
        ty: "int >= 1",
        default: "1",
        help: "width of the radial transition, in octaves",
    },
    ParamDoc {
        name: "is_complex",
        ty: "bool",
        default: "false",
        help: "complex bands (quadrature pairs)",
    },
    ParamDoc {
        name: "downsample",
        ty: "bool",
        default: "true",
        help: "halve the size at each scale",
    },
    ParamDoc {
        name: "tight_frame",
        ty: "bool",
        default: "false",
        help: "orthonormal FFTs (energy preserving); false matches pyrtools",
    },
];

/// The number of scales: derived from the image size, or fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Height {
    /// `floor(log2(min(H, W))) - 2`.
    Auto,
    /// This many scales (the image must be large enough: `min(H, W) >= 2^(n + 2)`).
    Fixed(usize),
}

/// The options of a steerable pyramid, with plenoptic's names and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SteerableConfig {
    /// `None`: masks are built for each input shape on first use.
    pub image_shape: Option<(i64, i64)>,
    /// The number of scales.
    pub height: Height,
    /// The derivative order of the oriented filters, in [1, 15]: `order + 1` orientations.
    pub order: usize,
    /// The width of the radial transition region, in octaves (>= 1).
    pub twidth: usize,
    /// Complex (quadrature pair) bands instead of real ones.
    pub is_complex: bool,
    /// Halve the height and width at each scale.
    pub downsample: bool,
    /// Orthonormal FFTs (energy preserving); `false` matches pyrtools.
    pub tight_frame: bool,
}

impl Default for SteerableConfig {
    fn default() -> Self {
        SteerableConfig {
            image_shape: None,
            height: Height::Auto,
            order: 3,
            twidth: 1,
            is_complex: false,
            downsample: true,
            tight_frame: false,
        }
    }
}

/// The masks of one scale in the working kind and device.
pub(super) struct ScaleMasks {
    /// (n_ori, h, w) complex: `(-i)^order * anglemask * himask`.
    pub(super) band: Tensor,
    /// (n_ori, h, w) complex: `i^order * anglemask_recon * himask`.
    pub(super) band_recon: Tensor,
    /// Lowpass mask at the next scale's size.
    pub(super) lo: Tensor,
    pub(super) lo_start: (i64, i64),
    pub(super) size: (i64, i64),
}

pub(super) struct DeviceMasks {
    pub(super) lo0: Tensor,
    pub(super) hi0: Tensor,
    pub(super) scales: Vec<ScaleMasks>,
}

/// The f64 masks of one shape, and their tensors for each (device, real kind) used.
struct ShapeMasks {
    exact: Masks64,
    tensors: Vec<(Device, Kind, DeviceMasks)>,
}

/// plenoptic's `SteerablePyramidFreq` (`plenoptic.simulate.canonical_computations.steerable_pyramid_freq`;
/// Simoncelli & Freeman 1995): an (N, C, H, W) batch decomposed, per channel, into a residual
/// highpass, `height` scales of `order + 1` oriented bands (halved in size at each scale when
/// `downsample`) and a residual lowpass; `forward` returns every coefficient flattened, (N, C, K)
/// (see [`PyramidCoeffs::flatten`]), `parts` each band by name. Coefficients are in the units
/// of the pixel values (linear transform); complex bands are returned as real and imaginary parts.
///
/// A fixed `height` needs `min(H, W) >= 2^(height + 2)`; with `image_shape` the input must
/// have that size. [`Model::check_input`] returns [`ModelError::InputShape`] otherwise.
pub struct SteerablePyramid {
    cfg: SteerableConfig,
    cache: RefCell<HashMap<(i64, i64), ShapeMasks>>,
    device: Device,
    kind: Kind,
}

impl std::fmt::Debug for SteerablePyramid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerablePyramid")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// `(-i)^order` (analysis) or `i^order` (synthesis) as (re, im).
fn quarter_turns(order: usize, forward: bool) -> (f64, f64) {
    let k = if forward {
        (4 - order % 4) % 4
    } else {
        order % 4
    };
    [(1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)][k]
}

fn grid_tensor(g: &Grid) -> Tensor {
    Tensor::from_slice(&g.data).view([g.h as i64, g.w as i64])
}

fn to_tensors(m: &Masks64, order: usize, device: Device, kind: Kind) -> DeviceMasks {
    let real = |g: &Grid| grid_tensor(g).to_kind(kind).to_device(device);
    let complex = |gs: &[Grid], c: (f64, f64)| {
        let m = Tensor::stack(&gs.iter().map(grid_tensor).collect::<Vec<_>>(), 0);
        Tensor::complex(&(&m * c.0), &(&m * c.1))
            .to_kind(complex_kind(kind))
            .to_device(device)
    };
    DeviceMasks {
        lo0: real(&m.lo0),
        hi0: real(&m.hi0),
        scales: m
            .scales
            .iter()
            .map(|s| ScaleMasks {
                band: complex(&s.band, quarter_turns(order, true)),
                band_recon: complex(&s.band_recon, quarter_turns(order, false)),
                lo: real(&s.lo),
                lo_start: (s.lo_start.0 as i64, s.lo_start.1 as i64),
                size: (s.size.0 as i64, s.size.1 as i64),
            })
            .collect(),
    }
}

/// `floor(log2(min(h, w))) - 2`, the most scales an image supports.
pub fn max_height(h: i64, w: i64) -> i64 {
    (h.min(w).max(1) as u64).ilog2() as i64 - 2
}

impl SteerablePyramid {
    /// The pyramid of `cfg` (float32, CPU); with an `image_shape`, its masks are built now.
    /// Errors: [`ModelError::InvalidParam`] when `order` is outside [1, 15], `twidth` is 0, or
    /// `image_shape` is not positive or too small for a fixed `height`.
    pub fn new(cfg: SteerableConfig) -> Result<Self> {
        const OWNER: &str = "steerable_pyramid";
        if !(1..=15).contains(&cfg.order) {
            return Err(ModelError::invalid(
                OWNER,
                "order",
                format!("must be in [1, 15], got {}", cfg.order),
            ));
        }
        if cfg.twidth == 0 {
            return Err(ModelError::invalid(
                OWNER,
                "twidth",
                "must be positive, got 0",
            ));
        }
        let pyr = SteerablePyramid {
            cfg,
            cache: RefCell::new(HashMap::new()),
            device: Device::Cpu,
            kind: Kind::Float,
        };
        if let Some((h, w)) = cfg.image_shape {
            if h < 1 || w < 1 {
                return Err(ModelError::invalid(
                    OWNER,
                    "image_shape",
                    format!("must be positive, got [{h}, {w}]"),
                ));
            }
            pyr.num_scales(h, w)
                .map_err(|e| ModelError::invalid(OWNER, "image_shape", e.to_string()))?;
            pyr.ensure_masks(h, w, pyr.device, pyr.kind)?;
        }
        Ok(pyr)
    }

    /// From spec parameters ([`STEERABLE_PYRAMID_PARAMS`]); errors as [`SteerablePyramid::new`],
    /// plus [`ModelError::InvalidParam`] for a `height` that is neither `"auto"` nor an integer >= 0.
    pub fn from_params(p: &Params) -> Result<Self> {
        let height = match p.raw("height") {
            Value::String(s) if s == "auto" => Height::Auto,
            v => match v.as_u64() {
                Some(n) => Height::Fixed(n as usize),
                None => {
                    return Err(ModelError::invalid(
                        p.owner(),
                        "height",
                        format!("expected \"auto\" or a non-negative integer, got {v}"),
                    ))
                }
            },
        };
        Self::new(SteerableConfig {
            image_shape: p.opt_shape("image_shape")?,
            height,
            order: p.usize("order")?,
            twidth: p.usize("twidth")?,
            is_complex: p.bool("is_complex")?,
            downsample: p.bool("downsample")?,
            tight_frame: p.bool("tight_frame")?,
        })
    }

    /// The options it was built with.
    pub fn config(&self) -> &SteerableConfig {
        &self.cfg
    }

    /// `order + 1`, the number of oriented bands per scale.
    pub fn num_orientations(&self) -> usize {
        self.cfg.order + 1
    }

    /// The number of scales for an (h, w) image; an error when a fixed height is too large.
    pub fn num_scales(&self, h: i64, w: i64) -> Result<usize> {
        let max = max_height(h, w);
        match self.cfg.height {
            Height::Auto => Ok(max.max(0) as usize),
            Height::Fixed(n) if n as i64 > max => Err(ModelError::shape(
                "steerable_pyramid",
                &[h, w],
                format!(
                    "height {n} needs min(H, W) >= {} (at most {} scales fit this size)",
                    1i64 << (n + 2),
                    max.max(0)
                ),
            )),
            Height::Fixed(n) => Ok(n),
        }
    }

    pub(super) fn norm(&self) -> &'static str {
        if self.cfg.tight_frame {
            "ortho"
        } else {
            "backward"
        }
    }

    fn ensure_masks(&self, h: i64, w: i64, device: Device, kind: Kind) -> Result<()> {
        let built = self
            .cache
            .borrow()
            .get(&(h, w))
            .map(|s| s.tensors.iter().any(|t| (t.0, t.1) == (device, kind)));
        let order = self.cfg.order;
        match built {
            Some(true) => {}
            Some(false) => {
                let mut cache = self.cache.borrow_mut();
                let shape = cache.get_mut(&(h, w)).expect("checked above");
                let tensors = to_tensors(&shape.exact, order, device, kind);
                shape.tensors.push((device, kind, tensors));
            }
            None => {
                let spec = MaskSpec {
                    shape: (h as usize, w as usize),
                    num_scales: self.num_scales(h, w)?,
                    order,
                    twidth: self.cfg.twidth,
                    is_complex: self.cfg.is_complex,
                    downsample: self.cfg.downsample,
                };
                let exact = masks::build(spec);
                let tensors = vec![(device, kind, to_tensors(&exact, order, device, kind))];
                self.cache
                    .borrow_mut()
                    .insert((h, w), ShapeMasks { exact, tensors });
            }
        }
        Ok(())
    }

    /// The masks for (h, w) images on `device`, in the real kind matching `kind`; built
    /// on first use only.
    pub(super) fn masks(
        &self,
        h: i64,
        w: i64,
        device: Device,
        kind: Kind,
    ) -> Result<Ref<'_, DeviceMasks>> {
        let kind = real_kind(kind);
        self.ensure_masks(h, w, device, kind)?;
        Ok(Ref::map(self.cache.borrow(), |c| {
            let shape = &c[&(h, w)];
            &shape
                .tensors
                .iter()
                .find(|t| (t.0, t.1) == (device, kind))
                .expect("just built")
                .2
        }))
    }

    /// All coefficients of `x` (B, C, H, W).
    pub fn coeffs(&self, x: &Tensor) -> Result<PyramidCoeffs> {
        let s = x.size();
        check_4d("steerable_pyramid", &s)?;
        let n = self.num_scales(s[2], s[3])?;
        self.coeffs_scales(x, &PyrScale::coarse_to_fine(n))
    }

    /// The coefficients of the listed entries only (the others are `None`).
    pub fn coeffs_scales(&self, x: &Tensor, scales: &[PyrScale]) -> Result<PyramidCoeffs> {
        let s = x.size();
        self.check_input(&s)?;
        let (h, w) = (s[2], s[3]);
        let num_scales = self.num_scales(h, w)?;
        if let Some(PyrScale::Band(b)) = scales
            .iter()
            .find(|sc| matches!(sc, PyrScale::Band(b) if *b >= num_scales))
        {
            return Err(ModelError::Spec(format!(
                "steerable_pyramid: scale {b} out of range; this pyramid has scales 0..{}",
                num_scales.saturating_sub(1)
            )));
        }
        let m = self.masks(h, w, x.device(), x.kind())?;
        let norm = self.norm();
        let imdft = fft2_centered(x, norm);
        let residual_highpass = scales
            .contains(&PyrScale::ResidualHighpass)
            .then(|| ifft2_centered(&(&imdft * &m.hi0), norm).real());
        let mut lodft = &imdft * &m.lo0;
        let mut bands = Vec::with_capacity(num_scales);
        for (i, sm) in m.scales.iter().enumerate() {
            bands.push(scales.contains(&PyrScale::Band(i)).then(|| {
                let band = ifft2_centered(&(lodft.unsqueeze(2) * &sm.band), norm);
                match (self.cfg.is_complex, self.cfg.tight_frame) {
                    (false, _) => band.real(),
                    (true, false) => band,
                    (true, true) => band / std::f64::consts::SQRT_2,
                }
            }));
            lodft = if self.cfg.downsample {
                let (lh, lw) = (sm.lo.size()[0], sm.lo.size()[1]);
                lodft
                    .narrow(-2, sm.lo_start.0, lh)
                    .narrow(-1, sm.lo_start.1, lw)
                    * &sm.lo
            } else if self.cfg.tight_frame {
                lodft * &sm.lo
            } else {
                // Downsampling with unnormalized FFTs raises the amplitudes of each coarser
                // scale (its inverse FFT divides by a 4x smaller size); without cropping,
                // plenoptic doubles the lowpass instead.
                lodft * &sm.lo * 2.0
            };
        }
        let residual_lowpass = scales
            .contains(&PyrScale::ResidualLowpass)
            .then(|| ifft2_centered(&lodft, norm).real());
        Ok(PyramidCoeffs {
            residual_highpass,
            bands,
            residual_lowpass,
            image_shape: (h, w),
        })
    }

    fn known_num_scales(&self) -> Option<usize> {
        match (self.cfg.image_shape, self.cfg.height) {
            (Some((h, w)), _) => self.num_scales(h, w).ok(),
            (None, Height::Fixed(n)) => Some(n),
            (None, Height::Auto) => None,
        }
    }
}

fn expect<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

impl Model for SteerablePyramid {
    fn name(&self) -> &str {
        "steerable_pyramid"
    }

    /// All coefficients as one (B, C, N) tensor, see [`PyramidCoeffs::flatten`].
    fn forward(&self, x: &Tensor) -> Tensor {
        expect(self.coeffs(x)).flatten()
    }

    fn parts(&self, x: &Tensor) -> Vec<(String, Tensor)> {
        let c = expect(self.coeffs(x));
        let mut out = vec![("out".to_string(), c.flatten())];
        out.extend(c.named());
        out
    }

    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)?;
        let (h, w) = (shape[2], shape[3]);
        if let Some((ih, iw)) = self.cfg.image_shape {
            if (h, w) != (ih, iw) {
                return Err(ModelError::shape(self.name(), shape, format!("this pyramid was built for image_shape [{ih}, {iw}]; set image_shape to null to accept any size")));
            }
        }
        if h < 1 || w < 1 {
            return Err(ModelError::shape(
                self.name(),
                shape,
                "needs a non-empty image",
            ));
        }
        self.num_scales(h, w).map_err(|_| {
            let Height::Fixed(n) = self.cfg.height else {
                unreachable!("auto height always fits")
            };
            ModelError::shape(
                self.name(),
                shape,
                format!(
                    "height {n} needs height and width >= {} (floor(log2(min(H, W))) - 2 >= {n})",
                    1i64 << (n + 2)
                ),
            )
        })?;
        Ok(())
    }

    fn to(&mut self, device: Device, kind: Kind) {
        self.device = device;
        self.kind = kind;
        let kind = real_kind(kind);
        for shape in self.cache.get_mut().values_mut() {
            shape.tensors = vec![(
                device,
                kind,
                to_tensors(&shape.exact, self.cfg.order, device, kind),
            )];
        }
    }

    fn scales(&self) -> Option<Vec<String>> {
        self.known_num_scales().map(|n| {
            PyrScale::coarse_to_fine(n)
                .iter()
                .map(PyrScale::name)
                .collect()
        })
    }

    fn forward_scales(&self, x: &Tensor, scales: &[String]) -> Result<Tensor> {
        let s = x.size();
        check_4d(self.name(), &s)?;
        let n = self.num_scales(s[2], s[3])?;
        let valid = PyrScale::coarse_to_fine(n);
        let parsed = scales
            .iter()
            .map(|name| {
                PyrScale::parse(name)
                    .filter(|p| valid.contains(p))
                    .ok_or_else(|| {
                        ModelError::Spec(format!(
                            "steerable_pyramid: unknown scale `{name}`; valid: {}",
                            valid
                                .iter()
                                .map(PyrScale::name)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.coeffs_scales(x, &parsed)?.flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_built_once_per_shape() {
        let pyr = SteerablePyramid::new(SteerableConfig::default()).unwrap();
        let x = Tensor::rand([1, 1, 32, 32], (Kind::Float, Device::Cpu));
        for _ in 0..3 {
            let _ = pyr.forward(&x);
        }
        assert_eq!(pyr.cache.borrow().len(), 1);
        let lo0 = pyr.cache.borrow()[&(32, 32)].tensors[0].2.lo0.data_ptr();
        let _ = pyr.forward(&x);
        assert_eq!(
            pyr.cache.borrow()[&(32, 32)].tensors[0].2.lo0.data_ptr(),
            lo0,
            "masks rebuilt"
        );
        let _ = pyr.forward(&Tensor::rand([1, 1, 16, 24], (Kind::Float, Device::Cpu)));
        assert_eq!(pyr.cache.borrow().len(), 2);
        // A float64 input gets its own float64 masks, once.
        let x64 = x.to_kind(Kind::Double);
        let _ = pyr.forward(&x64);
        let _ = pyr.forward(&x64);
        assert_eq!(pyr.cache.borrow()[&(32, 32)].tensors.len(), 2);
        assert_eq!(
            pyr.cache.borrow()[&(32, 32)].tensors[1].2.lo0.kind(),
            Kind::Double
        );
    }

    #[test]
    fn forward_is_differentiable_and_flat() {
        let pyr = SteerablePyramid::new(SteerableConfig {
            is_complex: true,
            ..Default::default()
        })
        .unwrap();
        let x = Tensor::rand([2, 3, 16, 16], (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let y = pyr.forward(&x);
        // highpass 256 + scale 0: 4 * 256 * 2 + scale 1: 4 * 64 * 2 + lowpass 16
        assert_eq!(y.size(), [2, 3, 256 + 2048 + 512 + 16]);
        let g = Tensor::run_backward(&[y.square().sum(Kind::Float)], &[&x], false, false).remove(0);
        assert!(g.isfinite().all().int64_value(&[]) == 1);
    }
}
