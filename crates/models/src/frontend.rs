//! plenoptic's frontend models (Berardino et al. 2017): `linear_nonlinear`,
//! `luminance_gain_control`, `luminance_contrast_gain_control` and `on_off`, with the
//! published pretrained parameters.
use crate::error::{ModelError, Result};
use crate::filtering::FILTERING_DOC;
use crate::filters::{vec_tensor, PAD_MODES};
use crate::model::Model;
use crate::naive::{check_padded, CenterSurround, Gaussian};
use crate::params::{ParamDoc, Params};
use serde_json::Value;
use std::cell::RefCell;
use tch::{Device, Kind, Tensor};

/// Which of the four frontend models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendKind {
    /// plenoptic's `LinearNonlinear`: a difference of Gaussians (center-surround) and an activation.
    LinearNonlinear,
    /// plenoptic's `LuminanceGainControl`: the center-surround output divided by a Gaussian-blurred local luminance.
    LuminanceGainControl,
    /// plenoptic's `LuminanceContrastGainControl`: luminance gain control, then division by the local contrast (Gaussian-blurred squared response).
    LuminanceContrastGainControl,
    /// plenoptic's `OnOff`: on- and off-center channels, each with luminance and contrast gain control (2 output channels).
    OnOff,
}

impl FrontendKind {
    /// The registry name, e.g. `on_off`.
    pub fn name(self) -> &'static str {
        match self {
            Self::LinearNonlinear => "linear_nonlinear",
            Self::LuminanceGainControl => "luminance_gain_control",
            Self::LuminanceContrastGainControl => "luminance_contrast_gain_control",
            Self::OnOff => "on_off",
        }
    }
    fn has_luminance(self) -> bool {
        self != Self::LinearNonlinear
    }
    fn has_contrast(self) -> bool {
        matches!(self, Self::LuminanceContrastGainControl | Self::OnOff)
    }
    fn channels(self) -> usize {
        if self == Self::OnOff {
            2
        } else {
            1
        }
    }
}

/// Pretrained values (Berardino 2018, table 2), per channel.
struct Pretrained {
    center_std: &'static [f64],
    surround_std: &'static [f64],
    luminance_std: &'static [f64],
    luminance_scalar: &'static [f64],
    contrast_std: &'static [f64],
    contrast_scalar: &'static [f64],
}

fn pretrained(kind: FrontendKind) -> Pretrained {
    match kind {
        FrontendKind::LinearNonlinear => Pretrained {
            center_std: &[0.5339],
            surround_std: &[6.148],
            luminance_std: &[],
            luminance_scalar: &[],
            contrast_std: &[],
            contrast_scalar: &[],
        },
        FrontendKind::LuminanceGainControl => Pretrained {
            center_std: &[1.962],
            surround_std: &[4.235],
            luminance_std: &[4.235],
            luminance_scalar: &[14.95],
            contrast_std: &[],
            contrast_scalar: &[],
        },
        FrontendKind::LuminanceContrastGainControl => Pretrained {
            center_std: &[0.7363],
            surround_std: &[48.37],
            luminance_std: &[170.99],
            luminance_scalar: &[2.94],
            contrast_std: &[2.658],
            contrast_scalar: &[34.03],
        },
        FrontendKind::OnOff => Pretrained {
            center_std: &[1.237, 0.3233],
            surround_std: &[30.12, 2.184],
            luminance_std: &[76.4, 2.184],
            luminance_scalar: &[3.2637, 14.3961],
            contrast_std: &[7.49, 2.43],
            contrast_scalar: &[7.3405, 16.7423],
        },
    }
}

/// The parameter table of a frontend model.
pub fn params(kind: FrontendKind) -> &'static [ParamDoc] {
    const KS: ParamDoc = ParamDoc {
        name: "kernel_size",
        ty: "int or [int, int]",
        default: "null",
        help: "convolution kernel size; required unless pretrained (then 31)",
    };
    const ON: ParamDoc = ParamDoc {
        name: "on_center",
        ty: "bool or list of bools",
        default: "true",
        help: "on-centre (true) or off-centre filter; a list (not pretrained) gives one output channel per entry, as plenoptic's CenterSurround",
    };
    const ON_ONE: ParamDoc = ParamDoc {
        name: "on_center",
        ty: "bool",
        default: "true",
        help: "on-centre (true) or off-centre filter",
    };
    const AR: ParamDoc = ParamDoc {
        name: "amplitude_ratio",
        ty: "number >= 1",
        default: "1.25",
        help: "centre/surround amplitude ratio",
    };
    const PAD: ParamDoc = ParamDoc {
        name: "pad_mode",
        ty: "string",
        default: "\"reflect\"",
        help: "reflect, circular, replicate or constant",
    };
    const PRE: ParamDoc = ParamDoc {
        name: "pretrained",
        ty: "bool",
        default: "false",
        help: "Berardino et al. published parameters (kernel 31)",
    };
    const ACT: ParamDoc = ParamDoc {
        name: "activation",
        ty: "string",
        default: "\"softplus\"",
        help: "softplus, relu or identity",
    };
    const LS: ParamDoc = ParamDoc {
        name: "luminance_scalar",
        ty: "number or list",
        default: "null",
        help: "null = pretrained value, or torch.rand*10 as plenoptic",
    };
    const CS: ParamDoc = ParamDoc {
        name: "contrast_scalar",
        ty: "number or list",
        default: "null",
        help: "null = pretrained value, or torch.rand*10 as plenoptic",
    };
    const MASK: ParamDoc = ParamDoc {
        name: "apply_mask",
        ty: "bool",
        default: "false",
        help: "multiply the output by plenoptic's make_disk mask",
    };
    const FIL: ParamDoc = FILTERING_DOC;
    match kind {
        FrontendKind::LinearNonlinear => &[KS, ON, AR, PAD, PRE, ACT, FIL],
        FrontendKind::LuminanceGainControl => &[KS, ON, AR, PAD, PRE, ACT, LS, FIL],
        FrontendKind::LuminanceContrastGainControl => &[KS, ON_ONE, AR, PAD, PRE, ACT, LS, CS, FIL],
        FrontendKind::OnOff => &[KS, AR, PAD, PRE, ACT, LS, CS, MASK, FIL],
    }
}

/// One of plenoptic's frontend models (`plenoptic.simulate.models.frontend`: `LinearNonlinear`,
/// `LuminanceGainControl`, `LuminanceContrastGainControl`, `OnOff`; Berardino et al. 2017),
/// with its filters built once.
///
/// Takes a grayscale batch (N, 1, H, W), pixel values in [0, 1] as the pretrained parameters
/// were fitted to; `reflect` and `circular` padding need H, W > kernel / 2
/// ([`Model::check_input`] returns [`ModelError::InputShape`] otherwise). Returns
/// (N, K, H, W): K = 2 for `on_off` (on, off), else the number of `on_center` entries (1 by
/// default); dimensionless responses, >= 0 with the default `softplus` activation.
#[derive(Debug)]
pub struct Frontend {
    kind: FrontendKind,
    kernel: (i64, i64),
    pad_mode: String,
    activation: String,
    center_surround: CenterSurround,
    luminance: Option<(Gaussian, Tensor)>,
    contrast: Option<(Gaussian, Tensor)>,
    apply_mask: bool,
    disk: RefCell<Option<Tensor>>,
    device: Device,
    dtype: Kind,
}

impl Frontend {
    /// Builds the model of `kind` from its spec parameters (see [`params`]) with
    /// plenoptic's defaults, drawing `torch.rand(n)` for each gain-control scalar as plenoptic's
    /// constructor does (pretrained or not), so the global generator advances as it does there.
    /// Errors: [`ModelError::InvalidParam`] for a wrong type or range (`kernel_size` other than
    /// 31 with `pretrained`, `amplitude_ratio` < 1, an unknown `pad_mode` or `activation`, a list
    /// `on_center` for `luminance_contrast_gain_control`).
    pub fn from_params(kind: FrontendKind, p: &Params) -> Result<Self> {
        let is_pretrained = p.bool("pretrained")?;
        let kernel = if is_pretrained && p.raw("kernel_size").is_null() {
            (31, 31)
        } else {
            crate::naive::required_kernel(p)?
        };
        if is_pretrained && kernel != (31, 31) {
            return Err(ModelError::invalid(
                p.owner(),
                "kernel_size",
                format!("the pretrained model has kernel_size 31, got {kernel:?}"),
            ));
        }
        let pad_mode = p.choice("pad_mode", PAD_MODES)?;
        let filtering = crate::naive::filtering_param(p)?;
        let activation = p.choice("activation", &["softplus", "relu", "identity"])?;
        let ratio = p.f64("amplitude_ratio")?;
        if ratio < 1.0 {
            return Err(ModelError::invalid(
                p.owner(),
                "amplitude_ratio",
                format!("must be at least 1, got {ratio}"),
            ));
        }
        let n = kind.channels();
        let on_center: Vec<bool> = match kind {
            FrontendKind::OnOff => vec![true, false],
            FrontendKind::LuminanceContrastGainControl if p.raw("on_center").is_array() => {
                return Err(ModelError::invalid(
                    p.owner(),
                    "on_center",
                    "takes one bool here: a list gives one output channel per entry, which the 1-channel contrast filter cannot take (plenoptic fails the same way)",
                ));
            }
            FrontendKind::LuminanceContrastGainControl => vec![p.bool("on_center")?],
            _ => on_center_list(p, is_pretrained)?,
        };
        // plenoptic draws the scalars with torch.rand(n)*10 at construction, pretrained or
        // not; we do the same so that the global RNG advances as it does there.
        let lum_draw = kind
            .has_luminance()
            .then(|| Tensor::rand([n as i64], (Kind::Float, Device::Cpu)) * 10.0);
        let con_draw = kind
            .has_contrast()
            .then(|| Tensor::rand([n as i64], (Kind::Float, Device::Cpu)) * 10.0);
        let pre = pretrained(kind);
        let (center_std, surround_std) = if is_pretrained {
            (pre.center_std.to_vec(), pre.surround_std.to_vec())
        } else {
            (vec![1.0; on_center.len()], vec![4.0; on_center.len()])
        };
        let center_surround = CenterSurround::new(
            kernel,
            &on_center,
            ratio,
            &center_std,
            &surround_std,
            &pad_mode,
            filtering,
        );
        let scalar = |name: &str, draw: Tensor, pre_vals: &[f64]| -> Result<Tensor> {
            Ok(match p.opt_f64_list(name, n)? {
                Some(v) => vec_tensor(&v, Device::Cpu),
                None if is_pretrained => vec_tensor(pre_vals, Device::Cpu),
                None => draw,
            })
        };
        let luminance = match lum_draw {
            Some(draw) => {
                let stds = if is_pretrained {
                    pre.luminance_std.to_vec()
                } else {
                    vec![3.0; n]
                };
                Some((
                    Gaussian::new(kernel, &stds, &pad_mode, filtering),
                    scalar("luminance_scalar", draw, pre.luminance_scalar)?,
                ))
            }
            None => None,
        };
        let contrast = match con_draw {
            Some(draw) => {
                let stds = if is_pretrained {
                    pre.contrast_std.to_vec()
                } else {
                    vec![3.0; n]
                };
                Some((
                    Gaussian::new(kernel, &stds, &pad_mode, filtering),
                    scalar("contrast_scalar", draw, pre.contrast_scalar)?,
                ))
            }
            None => None,
        };
        let apply_mask = kind == FrontendKind::OnOff && p.bool("apply_mask")?;
        Ok(Frontend {
            kind,
            kernel,
            pad_mode,
            activation,
            center_surround,
            luminance,
            contrast,
            apply_mask,
            disk: RefCell::new(None),
            device: Device::Cpu,
            dtype: Kind::Float,
        })
    }

    /// The filters, as plenoptic's `display_filters` stacks them.
    pub fn filters(&self) -> Vec<(&'static str, &Tensor)> {
        let mut out = vec![("center_surround", self.center_surround.filt())];
        if let Some((g, _)) = &self.luminance {
            out.push(("luminance", g.filt()));
        }
        if let Some((g, _)) = &self.contrast {
            out.push(("contrast", g.filt()));
        }
        out
    }

    fn activate(&self, x: Tensor) -> Tensor {
        match self.activation.as_str() {
            "relu" => x.relu(),
            "identity" => x,
            _ => x.softplus(),
        }
    }

    fn mask_for(&self, h: i64, w: i64) -> Tensor {
        let mut disk = self.disk.borrow_mut();
        if let Some(d) = disk.as_ref() {
            if d.size() == [h, w] {
                return d.shallow_clone();
            }
        }
        let d = make_disk(h, w).to_device(self.device).to_kind(self.dtype);
        *disk = Some(d.shallow_clone());
        d
    }
}

/// `on_center` of `linear_nonlinear` and `luminance_gain_control`: one bool, or (as current
/// plenoptic's CenterSurround takes it) a list giving one output channel per entry. The
/// pretrained models have one channel; plenoptic cannot load them into more.
fn on_center_list(p: &Params, is_pretrained: bool) -> Result<Vec<bool>> {
    let on = match p.raw("on_center") {
        Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_boolean) => {
            a.iter().map(|v| v.as_bool() == Some(true)).collect()
        }
        Value::Array(_) => {
            return Err(ModelError::invalid(
                p.owner(),
                "on_center",
                format!(
                    "expected true, false or a non-empty list of them, got {}",
                    p.raw("on_center")
                ),
            ))
        }
        _ => vec![p.bool("on_center")?],
    };
    if is_pretrained && on.len() > 1 {
        return Err(ModelError::invalid(
            p.owner(),
            "on_center",
            format!(
                "has {} values, but the pretrained model has one channel (plenoptic cannot load it into {})",
                on.len(),
                on.len()
            ),
        ));
    }
    Ok(on)
}

/// plenoptic's `make_disk`: 1 inside half the radius, a raised-cosine fall-off, 0 outside.
pub fn make_disk(h: i64, w: i64) -> Tensor {
    let outer = ((h.min(w) - 1) as f64) / 2.0;
    let inner = outer / 2.0;
    let (i0, j0) = ((h - 1) as f64 / 2.0, (w - 1) as f64 / 2.0);
    let mut v = Vec::with_capacity((h * w) as usize);
    for i in 0..h {
        for j in 0..w {
            let r = ((i as f64 - i0).powi(2) + (j as f64 - j0).powi(2)).sqrt();
            v.push(if r > outer {
                0.0
            } else if r < inner {
                1.0
            } else {
                (1.0 + (std::f64::consts::PI * (r - inner) / (outer - inner)).cos()) / 2.0
            } as f32);
        }
    }
    Tensor::from_slice(&v).view([h, w])
}

impl Model for Frontend {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn forward(&self, x: &Tensor) -> Tensor {
        let n = self.kind.channels() as i64;
        let linear = self.center_surround_forward(x);
        let mut y = linear;
        if let Some((g, s)) = &self.luminance {
            let lum = g.apply(x, 1);
            y = &y / (s.view([1, n, 1, 1]) * lum + 1.0);
        }
        if let Some((g, s)) = &self.contrast {
            let con = g.apply(&y.square(), n).sqrt() + 1e-6;
            y = &y / (s.view([1, n, 1, 1]) * con + 1.0);
        }
        let y = self.activate(y);
        if self.apply_mask {
            let size = x.size();
            y * self.mask_for(size[2], size[3])
        } else {
            y
        }
    }

    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_padded(self.name(), shape, self.kernel, &self.pad_mode)
    }

    fn to(&mut self, device: Device, kind: Kind) {
        self.center_surround.to_mut(device, kind);
        for (g, s) in self.luminance.iter_mut().chain(self.contrast.iter_mut()) {
            g.to_mut(device, kind);
            *s = s.to_device(device).to_kind(kind);
        }
        self.device = device;
        self.dtype = kind;
        *self.disk.borrow_mut() = None;
    }
}

impl Frontend {
    fn center_surround_forward(&self, x: &Tensor) -> Tensor {
        self.center_surround.forward(x)
    }
}
