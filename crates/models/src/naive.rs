//! plenoptic's naive models: `identity`, `linear`, `gaussian`, `center_surround`.
use crate::error::Result;
use crate::filtering::{gaussian_term, FilterBank, Filtering, FILTERING_DOC};
use crate::filters::{circular_gaussian2d, conv2d, same_padding, vec_tensor, PAD_MODES};
use crate::model::{check_4d, check_channels, Model};
use crate::params::{ParamDoc, Params};
use tch::{Device, Kind, Tensor};

/// plenoptic's `Identity` (`plenoptic.simulate.models.naive`): returns its input (as
/// `1 * x`), the dummy model behind pixel-space metrics. Any (N, C, H, W) batch, any values;
/// the output has the input's shape and units.
#[derive(Debug, Default)]
pub struct Identity;

/// The parameters of `identity`: none.
pub const IDENTITY_PARAMS: &[ParamDoc] = &[];

impl Model for Identity {
    fn name(&self) -> &str {
        "identity"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        x * 1.0
    }
    fn to(&mut self, _: Device, _: Kind) {}
}

/// Checks that a padded valid convolution can run: reflect padding needs the image to be
/// larger than the padding.
pub(crate) fn check_padded(
    owner: &str,
    shape: &[i64],
    kernel: (i64, i64),
    mode: &str,
) -> Result<()> {
    check_channels(owner, shape, 1)?;
    if mode == "reflect" || mode == "circular" {
        let need = (kernel.0 / 2 + 1, kernel.1 / 2 + 1);
        crate::model::check_min_size(
            owner,
            shape,
            need,
            &format!("{mode} padding for kernel {}x{}", kernel.0, kernel.1),
        )?;
    }
    Ok(())
}

/// plenoptic's `Linear` (`plenoptic.simulate.models.naive`): a 2-filter linear convolution,
/// a low-pass Gaussian (variance 3 px²) and a band-pass difference of Gaussians, with
/// `same` padding. (N, 1, H, W) -> (N, 2, H, W), linear in the pixel values; `reflect`
/// and `circular` padding need H, W > kernel / 2.
#[derive(Debug)]
pub struct Linear {
    kernel: (i64, i64),
    pad_mode: String,
    weight: Tensor,
}

/// The parameters of `linear` (plenoptic's `Linear` arguments and defaults).
pub const LINEAR_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "kernel_size",
        ty: "int or [int, int]",
        default: "[3, 3]",
        help: "convolution kernel size",
    },
    ParamDoc {
        name: "pad_mode",
        ty: "string",
        default: "\"circular\"",
        help: "reflect, circular, replicate or constant",
    },
    ParamDoc {
        name: "default_filters",
        ty: "bool",
        default: "true",
        help: "low-pass + band-pass filters; false = random init as torch's Conv2d (torch RNG)",
    },
];

impl Linear {
    /// From spec parameters ([`LINEAR_PARAMS`]); `default_filters = false` draws the weights from
    /// the global torch generator as torch's `Conv2d` initializes them. Errors:
    /// [`crate::ModelError::InvalidParam`] for a bad `kernel_size` or `pad_mode`.
    pub fn from_params(p: &Params) -> Result<Self> {
        let kernel = p.kernel_size("kernel_size")?;
        let pad_mode = p.choice("pad_mode", PAD_MODES)?;
        let weight = if p.bool("default_filters")? {
            let var = Tensor::from_slice(&[3.0f32]);
            let f1 = circular_gaussian2d(kernel, &var.sqrt());
            let f2 = circular_gaussian2d(kernel, &(var / 3.0).sqrt()) - &f1;
            let f2 = &f2 / f2.sum(Kind::Float);
            Tensor::cat(&[f1, f2], 0)
        } else {
            // torch's Conv2d default: kaiming_uniform(a=sqrt(5)) => U(-1/sqrt(fan_in), 1/sqrt(fan_in))
            let bound = 1.0 / ((kernel.0 * kernel.1) as f64).sqrt();
            Tensor::empty([2, 1, kernel.0, kernel.1], (Kind::Float, Device::Cpu))
                .uniform_(-bound, bound)
        };
        Ok(Linear {
            kernel,
            pad_mode,
            weight,
        })
    }
}

impl Model for Linear {
    fn name(&self) -> &str {
        "linear"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        conv2d(
            &same_padding(x, self.kernel, &self.pad_mode),
            &self.weight,
            1,
        )
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_padded(self.name(), shape, self.kernel, &self.pad_mode)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.weight = self.weight.to_device(device).to_kind(kind);
    }
}

/// plenoptic's `Gaussian` (`plenoptic.simulate.models.naive`): a bank of normalized circular
/// Gaussian filters (one per output channel, std in pixels), with `same` padding.
/// (N, 1, H, W) -> (N, out_channels, H, W), a weighted local mean of the pixel values (same
/// units and range); `reflect` and `circular` padding need H, W > kernel / 2.
#[derive(Debug)]
pub struct Gaussian {
    bank: FilterBank,
}

/// The parameters of `gaussian` (plenoptic's `Gaussian` arguments and defaults).
pub const GAUSSIAN_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "kernel_size",
        ty: "int or [int, int]",
        default: "null",
        help: "required: convolution kernel size",
    },
    ParamDoc {
        name: "std",
        ty: "number or list",
        default: "3.0",
        help: "standard deviation, or one per output channel (a list sets out_channels)",
    },
    ParamDoc {
        name: "pad_mode",
        ty: "string",
        default: "\"reflect\"",
        help: "reflect, circular, replicate or constant",
    },
    ParamDoc {
        name: "out_channels",
        ty: "int or null",
        default: "null",
        help: "number of filters; null = inferred: len(std) for a list, else 1 (resolved specs record the number)",
    },
    FILTERING_DOC,
];

impl Gaussian {
    /// One normalized Gaussian per entry of `stds` (plenoptic's `circular_gaussian2d`).
    pub fn new(kernel: (i64, i64), stds: &[f64], pad_mode: &str, filtering: Filtering) -> Self {
        let filt = circular_gaussian2d(kernel, &vec_tensor(stds, Device::Cpu).abs());
        let term = gaussian_term(kernel, stds, vec![1.0; stds.len()]);
        Gaussian {
            bank: FilterBank::new(filt, vec![term], pad_mode, filtering),
        }
    }

    /// From spec parameters ([`GAUSSIAN_PARAMS`]). Errors: [`crate::ModelError::InvalidParam`] when
    /// `kernel_size` is missing or not positive, a `std` is not positive, `out_channels`
    /// disagrees with a `std` list, or `pad_mode`/`filtering` is unknown.
    pub fn from_params(p: &Params) -> Result<Self> {
        let kernel = required_kernel(p)?;
        let stds = crate::per_channel::gaussian_stds(p)?;
        Ok(Self::new(
            kernel,
            &stds,
            &p.choice("pad_mode", PAD_MODES)?,
            filtering_param(p)?,
        ))
    }

    /// The filter bank, (out_channels, 1, kh, kw).
    pub fn filt(&self) -> &Tensor {
        self.bank.filt()
    }

    /// The filters with the method that runs them.
    pub fn bank(&self) -> &FilterBank {
        &self.bank
    }

    /// Gaussian blur (N, C, H, W) -> (N, out_channels, H, W) with `groups` (plenoptic's
    /// `conv2d_kwargs`): `groups = 1` needs C = 1, `groups = out_channels` needs C = groups.
    pub fn apply(&self, x: &Tensor, groups: i64) -> Tensor {
        self.bank.apply(x, groups)
    }

    pub(crate) fn to_mut(&mut self, device: Device, kind: Kind) {
        self.bank.to_mut(device, kind);
    }
}

impl Model for Gaussian {
    fn name(&self) -> &str {
        "gaussian"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.apply(x, 1)
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_padded(self.name(), shape, self.bank.kernel(), self.bank.pad_mode())
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.to_mut(device, kind)
    }
}

/// plenoptic's `CenterSurround` (`plenoptic.simulate.models.naive`): a difference of
/// Gaussians, `amplitude_ratio * sign * (G_center - G_surround)` with stds in pixels and
/// `same` padding. (N, 1, H, W) -> (N, out_channels, H, W), linear in the pixel values;
/// `reflect` and `circular` padding need H, W > kernel / 2.
#[derive(Debug)]
pub struct CenterSurround {
    bank: FilterBank,
}

/// The parameters of `center_surround` (plenoptic's `CenterSurround` arguments and defaults).
pub const CENTER_SURROUND_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "kernel_size",
        ty: "int or [int, int]",
        default: "null",
        help: "required: convolution kernel size",
    },
    ParamDoc {
        name: "on_center",
        ty: "bool or list of bools",
        default: "true",
        help: "on-centre/off-surround (true) or the reverse; a list (one per output channel) sets out_channels",
    },
    ParamDoc {
        name: "amplitude_ratio",
        ty: "number >= 1",
        default: "1.25",
        help: "centre/surround amplitude ratio",
    },
    ParamDoc {
        name: "center_std",
        ty: "number or list",
        default: "1.0",
        help: "centre Gaussian std, or one per output channel (a list sets out_channels unless on_center does)",
    },
    ParamDoc {
        name: "surround_std",
        ty: "number or list",
        default: "4.0",
        help: "surround Gaussian std, or one per output channel (a list must match the others)",
    },
    ParamDoc {
        name: "out_channels",
        ty: "int or null",
        default: "null",
        help: "number of filters; null = inferred: len(on_center), else len(center_std), else 1 (resolved specs record the number)",
    },
    ParamDoc {
        name: "pad_mode",
        ty: "string",
        default: "\"reflect\"",
        help: "reflect, circular, replicate or constant",
    },
    FILTERING_DOC,
];

impl CenterSurround {
    /// `on_center[i]` gives the sign of channel i.
    pub fn new(
        kernel: (i64, i64),
        on_center: &[bool],
        amplitude_ratio: f64,
        center_std: &[f64],
        surround_std: &[f64],
        pad_mode: &str,
        filtering: Filtering,
    ) -> Self {
        let n = on_center.len() as i64;
        let center = circular_gaussian2d(kernel, &vec_tensor(center_std, Device::Cpu));
        let surround = circular_gaussian2d(kernel, &vec_tensor(surround_std, Device::Cpu));
        let sign: Vec<f64> = on_center
            .iter()
            .map(|&on| if on { 1.0 } else { -1.0 })
            .collect();
        let amp = amplitude_ratio as f32;
        let filt = Tensor::from_slice(&[amp]).squeeze()
            * (vec_tensor(&sign, Device::Cpu).view([n, 1, 1, 1]) * (center - surround));
        // The same filter as `amp·sign·G_c − amp·sign·G_s`, each term separable.
        let coef: Vec<f64> = sign.iter().map(|s| s * amp as f64).collect();
        let terms = vec![
            gaussian_term(kernel, center_std, coef.clone()),
            gaussian_term(kernel, surround_std, coef.iter().map(|c| -c).collect()),
        ];
        CenterSurround {
            bank: FilterBank::new(filt, terms, pad_mode, filtering),
        }
    }

    /// From spec parameters ([`CENTER_SURROUND_PARAMS`]). Errors: [`crate::ModelError::InvalidParam`]
    /// when `kernel_size` is missing, `amplitude_ratio` < 1, the per-channel lists disagree in
    /// length, or `pad_mode`/`filtering` is unknown.
    pub fn from_params(p: &Params) -> Result<Self> {
        let kernel = required_kernel(p)?;
        let ratio = p.f64("amplitude_ratio")?;
        if ratio < 1.0 {
            return Err(crate::ModelError::invalid(
                p.owner(),
                "amplitude_ratio",
                format!("must be at least 1, got {ratio}"),
            ));
        }
        let channels = crate::per_channel::center_surround_channels(p)?;
        Ok(Self::new(
            kernel,
            &channels.on_center,
            ratio,
            &channels.center_std,
            &channels.surround_std,
            &p.choice("pad_mode", PAD_MODES)?,
            filtering_param(p)?,
        ))
    }

    /// The (out_channels, 1, kh, kw) difference-of-Gaussians filters.
    pub fn filt(&self) -> &Tensor {
        self.bank.filt()
    }

    /// The filters with the method that runs them.
    pub fn bank(&self) -> &FilterBank {
        &self.bank
    }

    pub(crate) fn to_mut(&mut self, device: Device, kind: Kind) {
        self.bank.to_mut(device, kind);
    }
}

impl Model for CenterSurround {
    fn name(&self) -> &str {
        "center_surround"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        self.bank.apply(x, 1)
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        check_4d(self.name(), shape)?;
        check_padded(self.name(), shape, self.bank.kernel(), self.bank.pad_mode())
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.to_mut(device, kind)
    }
}

/// The `filtering` parameter (see [`crate::filtering`]).
pub(crate) fn filtering_param(p: &Params) -> Result<Filtering> {
    let name = p.choice("filtering", Filtering::NAMES)?;
    Ok(Filtering::parse(&name).expect("choice() checked the name"))
}

/// `kernel_size` has no default for these models: plenoptic requires it.
pub(crate) fn required_kernel(p: &Params) -> Result<(i64, i64)> {
    if p.raw("kernel_size").is_null() {
        return Err(crate::ModelError::invalid(
            p.owner(),
            "kernel_size",
            "is required (e.g. 31 or [31, 31])",
        ));
    }
    p.kernel_size("kernel_size")
}
