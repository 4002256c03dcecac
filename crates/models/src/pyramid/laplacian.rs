//! plenoptic's `LaplacianPyramid` (Burt & Adelson 1983): each level is the image minus its
//! blurred, downsampled and re-upsampled copy; the last level is the remaining lowpass.
use crate::error::Result;
use crate::model::{check_4d, check_min_size, Model};
use crate::params::{ParamDoc, Params};
use tch::{Device, Kind, Tensor};

/// The parameters of `laplacian_pyramid` (plenoptic's `LaplacianPyramid` arguments and defaults).
pub const LAPLACIAN_PYRAMID_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_scales",
        ty: "int >= 1",
        default: "5",
        help: "number of levels, the lowpass included",
    },
    ParamDoc {
        name: "scale_filter",
        ty: "bool",
        default: "false",
        help:
            "true: the blur sums to 1 downsampling and 4 upsampling (level n is divided by 2^n); \
               false: it sums to 2 both ways",
    },
];

/// `sqrt(2) * [1, 4, 6, 4, 1] / 16` (pyrtools' `binom5`), whose 5x5 outer product sums to 2.
/// Computed in float64 as plenoptic does, so the float32 cast rounds the same way.
fn binom5_outer() -> [f64; 25] {
    let f = [1.0, 4.0, 6.0, 4.0, 1.0].map(|c: f64| std::f64::consts::SQRT_2 * (c / 16.0));
    std::array::from_fn(|i| f[i / 5] * f[i % 5])
}

/// plenoptic's `LaplacianPyramid` (`plenoptic.simulate.canonical_computations.laplacian_pyramid`;
/// Burt & Adelson 1983): `n_scales` levels, fine to coarse, of an (N, C, H, W) batch, level
/// `i` of size about (H / 2^i, W / 2^i); `forward` returns the levels flattened and
/// concatenated, (N, C, K), `parts` each level. Channels are treated as batch elements. Blurs
/// use reflect padding, so each side must be at least [`LaplacianPyramid::min_size`]
/// ([`Model::check_input`] returns [`crate::ModelError::InputShape`] otherwise). Linear:
/// the levels are in the units of the pixel values.
#[derive(Debug)]
pub struct LaplacianPyramid {
    n_scales: usize,
    scale_filter: bool,
    /// The blur before downsampling, (1, 1, 5, 5).
    down: Tensor,
    /// The blur after upsampling, (1, 1, 5, 5).
    up: Tensor,
    /// A (1, 1, 1, 1) one: the weight of the stride-2 transposed convolution that
    /// interleaves zeros.
    unit: Tensor,
}

impl LaplacianPyramid {
    /// A pyramid with float32 filters on the CPU (see [`LaplacianPyramid::set_device`]).
    pub fn new(n_scales: usize, scale_filter: bool) -> Self {
        assert!(
            n_scales >= 1,
            "a Laplacian pyramid needs at least one level"
        );
        let (down, up, unit) = Self::filters(scale_filter, Device::Cpu, Kind::Float);
        LaplacianPyramid {
            n_scales,
            scale_filter,
            down,
            up,
            unit,
        }
    }

    /// From spec parameters ([`LAPLACIAN_PYRAMID_PARAMS`]). Errors: [`crate::ModelError::InvalidParam`]
    /// when `n_scales` is not an integer >= 1 or `scale_filter` is not a bool.
    pub fn from_params(p: &Params) -> Result<Self> {
        Ok(Self::new(
            p.positive_usize("n_scales")?,
            p.bool("scale_filter")?,
        ))
    }

    fn filters(scale_filter: bool, device: Device, kind: Kind) -> (Tensor, Tensor, Tensor) {
        let filt = Tensor::from_slice(&binom5_outer())
            .view([1, 1, 5, 5])
            .to_kind(kind)
            .to_device(device);
        // The filter is symmetric, so plenoptic's flip before the upsampling conv is a no-op.
        let (down, up) = if scale_filter {
            (&filt / 2.0, &filt * 2.0)
        } else {
            (filt.shallow_clone(), filt)
        };
        let unit = Tensor::ones([1, 1, 1, 1], (kind, device));
        (down, up, unit)
    }

    /// Moves the filters to `device` as `kind` (rebuilt from their float64 values).
    pub fn set_device(&mut self, device: Device, kind: Kind) {
        (self.down, self.up, self.unit) = Self::filters(self.scale_filter, device, kind);
    }

    /// The number of levels, the lowpass included.
    pub fn n_scales(&self) -> usize {
        self.n_scales
    }

    /// The smallest height and width the pyramid takes: every downsampling pads by 2 with
    /// reflection, which needs at least 3 pixels, so `ceil(h / 2^(n_scales - 2)) >= 3`.
    pub fn min_size(n_scales: usize) -> i64 {
        if n_scales < 2 {
            1
        } else {
            2i64.saturating_pow((n_scales - 1) as u32).saturating_add(1)
        }
    }

    /// Rejects batches smaller than [`LaplacianPyramid::min_size`].
    pub fn check_shape(&self, owner: &str, shape: &[i64]) -> Result<()> {
        check_4d(owner, shape)?;
        let min = Self::min_size(self.n_scales);
        check_min_size(
            owner,
            shape,
            (min, min),
            &format!(
                "the reflect padding of the 5x5 blur at each of its {} downsamplings",
                self.n_scales.saturating_sub(1)
            ),
        )
    }

    /// The levels, finest first: `n_scales - 1` band-pass images (the same size as the
    /// input, then halved, rounding up) and the lowpass. Each is (B, C, h, w).
    pub fn levels(&self, x: &Tensor) -> Vec<Tensor> {
        let (b, c, h, w) = x.size4().expect("a 4-D batch (B, C, H, W)");
        let mut cur = x.reshape([b * c, 1, h, w]);
        let mut levels = Vec::with_capacity(self.n_scales);
        for _ in 1..self.n_scales {
            let size = cur.size();
            let odd = (size[2] % 2, size[3] % 2);
            let down = self.blur_downsample(&cur);
            let up = self.upsample_blur(&down, odd);
            levels.push(&cur - up);
            cur = down;
        }
        levels.push(cur);
        levels
            .into_iter()
            .map(|l| {
                let s = l.size();
                l.reshape([b, c, s[2], s[3]])
            })
            .collect()
    }

    /// The image whose pyramid is `levels` (the exact inverse of [`LaplacianPyramid::levels`]).
    pub fn reconstruct(&self, levels: &[Tensor]) -> Tensor {
        assert_eq!(levels.len(), self.n_scales, "one tensor per level");
        let (b, c, h, w) = levels[self.n_scales - 1].size4().expect("4-D levels");
        let mut x = levels[self.n_scales - 1].reshape([b * c, 1, h, w]);
        for finer in levels[..self.n_scales - 1].iter().rev() {
            let (_, _, fh, fw) = finer.size4().expect("4-D levels");
            let up = self.upsample_blur(&x, (fh % 2, fw % 2));
            x = finer.reshape([b * c, 1, fh, fw]) + up;
        }
        let s = x.size();
        x.reshape([b, c, s[2], s[3]])
    }

    /// Reflect-padded 5x5 correlation, keeping every other row and column.
    fn blur_downsample(&self, x: &Tensor) -> Tensor {
        x.pad([2, 2, 2, 2], "reflect", None).conv2d(
            &self.down,
            None::<Tensor>,
            [2, 2],
            [0, 0],
            [1, 1],
            1,
        )
    }

    /// Upsamples (B, 1, h, w) to (2h - odd.0, 2w - odd.1): interleaves zeros into a
    /// reflect-padded copy, then blurs with a valid 5x5 convolution.
    fn upsample_blur(&self, x: &Tensor, odd: (i64, i64)) -> Tensor {
        let padded = x.pad([1, 1, 1, 1], "reflect", None);
        let zeros_between = padded.conv_transpose2d(
            &self.unit,
            None::<Tensor>,
            [2, 2],
            [0, 0],
            [0, 0],
            1,
            [1, 1],
        );
        zeros_between
            .pad([0, 1 - odd.1, 0, 1 - odd.0], "constant", Some(0.0))
            .conv2d(&self.up, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)
    }
}

/// Flattens each (B, C, h, w) level to (B, C, h*w) and concatenates them, finest first.
pub(crate) fn flatten_levels(levels: &[Tensor]) -> Tensor {
    let flat: Vec<Tensor> = levels.iter().map(|l| l.flatten(2, 3)).collect();
    Tensor::cat(&flat, 2)
}

/// `level_0` (finest) ... `level_{n-1}` (lowpass), preceded by `out`.
pub(crate) fn level_parts(levels: Vec<Tensor>) -> Vec<(String, Tensor)> {
    let mut parts = vec![("out".to_string(), flatten_levels(&levels))];
    parts.extend(
        levels
            .into_iter()
            .enumerate()
            .map(|(i, l)| (format!("level_{i}"), l)),
    );
    parts
}

/// As a model, the pyramid's representation is every level flattened and concatenated per
/// (batch, channel), finest first: (B, C, N) with N the total number of coefficients
/// (for 64x64 and 5 scales, 64² + 32² + 16² + 8² + 4² = 5456). `parts` gives the levels.
impl Model for LaplacianPyramid {
    fn name(&self) -> &str {
        "laplacian_pyramid"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        flatten_levels(&self.levels(x))
    }
    fn parts(&self, x: &Tensor) -> Vec<(String, Tensor)> {
        level_parts(self.levels(x))
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        self.check_shape(self.name(), shape)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.set_device(device, kind)
    }
}
