//! NLPD (Laparra et al. 2016): the normalized Laplacian pyramid (six levels, each divided
//! by a published local pooling of its own magnitude) and the distance over it, the mean
//! over levels of each level's root mean squared difference.
use crate::error::Result;
use crate::metrics::nlpd_constants::{DN_FILTS, DN_SIGMAS};
use crate::model::{Metric, Model};
use crate::params::ParamDoc;
use crate::pyramid::laplacian::{flatten_levels, level_parts, LaplacianPyramid};
use tch::{Device, Kind, Tensor};

const N_SCALES: usize = 6;

/// The parameters of `normalized_laplacian_pyramid`: none (plenoptic's are fixed).
pub const NORMALIZED_LAPLACIAN_PYRAMID_PARAMS: &[ParamDoc] = &[];
/// The parameters of `nlpd`: none.
pub const NLPD_PARAMS: &[ParamDoc] = &[];

/// plenoptic's `normalized_laplacian_pyramid`: a 6-level Laplacian pyramid with
/// `scale_filter = true`, each level `l` mapped to `l / (sigma + filt * |l|)` (a zero-padded
/// 5x5 correlation). Needs H, W >= 33.
#[derive(Debug)]
pub struct NormalizedLaplacianPyramid {
    laplacian: LaplacianPyramid,
    /// One (1, 1, 5, 5) pooling filter per level.
    filts: Vec<Tensor>,
}

impl Default for NormalizedLaplacianPyramid {
    fn default() -> Self {
        Self::new()
    }
}

impl NormalizedLaplacianPyramid {
    /// The pyramid with plenoptic's published constants, float32 on the CPU.
    pub fn new() -> Self {
        NormalizedLaplacianPyramid {
            laplacian: LaplacianPyramid::new(N_SCALES, true),
            filts: Self::filters(Device::Cpu, Kind::Float),
        }
    }

    /// The float64 constants cast to `kind`, as plenoptic casts them to the image dtype.
    fn filters(device: Device, kind: Kind) -> Vec<Tensor> {
        DN_FILTS
            .iter()
            .map(|f| {
                let flat: Vec<f64> = f.iter().flatten().copied().collect();
                Tensor::from_slice(&flat)
                    .view([1, 1, 5, 5])
                    .to_kind(kind)
                    .to_device(device)
            })
            .collect()
    }

    fn set_device(&mut self, device: Device, kind: Kind) {
        self.laplacian.set_device(device, kind);
        self.filts = Self::filters(device, kind);
    }

    /// The six normalized levels, finest first, each (B, C, h, w).
    pub fn levels(&self, x: &Tensor) -> Vec<Tensor> {
        self.laplacian
            .levels(x)
            .into_iter()
            .zip(self.filts.iter().zip(DN_SIGMAS))
            .map(|(level, (filt, sigma))| {
                let (b, c, h, w) = level.size4().expect("4-D levels");
                let pooled = level
                    .abs()
                    .reshape([b * c, 1, h, w])
                    .conv2d(filt, None::<Tensor>, [1, 1], [2, 2], [1, 1], 1)
                    .reshape([b, c, h, w]);
                // A float64 scalar added to the pooled tensor keeps its kind, as in plenoptic.
                &level / (pooled + sigma)
            })
            .collect()
    }
}

/// As a model, the levels flattened and concatenated per (batch, channel), finest first:
/// (B, C, N). `parts` gives `level_0` ... `level_5`.
impl Model for NormalizedLaplacianPyramid {
    fn name(&self) -> &str {
        "normalized_laplacian_pyramid"
    }
    fn forward(&self, x: &Tensor) -> Tensor {
        flatten_levels(&self.levels(x))
    }
    fn parts(&self, x: &Tensor) -> Vec<(String, Tensor)> {
        level_parts(self.levels(x))
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        self.laplacian.check_shape(self.name(), shape)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.set_device(device, kind)
    }
}

/// plenoptic's `nlpd` (`plenoptic.metric.perceptual_distance.nlpd`, Laparra et al. 2016):
/// `mean_levels(sqrt(mean_{h,w}((y1 - y2)²) + 1e-10))` over the normalized Laplacian
/// pyramid, (N, C), >= 1e-5. The epsilon keeps the gradient finite at zero, so
/// `nlpd(x, x) = 1e-5`.
///
/// Takes two (N, C, H, W) batches with H, W >= 33 (six pyramid levels), pixel values in
/// [0, 1] (the published normalization constants assume that range);
/// [`Metric::check_input`] returns [`crate::ModelError::InputShape`] for smaller images.
#[derive(Debug, Default)]
pub struct Nlpd {
    pyramid: NormalizedLaplacianPyramid,
}

impl Nlpd {
    /// The metric with plenoptic's published constants, float32 on the CPU.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Metric for Nlpd {
    fn name(&self) -> &str {
        "nlpd"
    }
    fn forward(&self, a: &Tensor, b: &Tensor) -> Tensor {
        // One pass through the pyramid for both batches when their shapes allow it.
        let (ya, yb): (Vec<Tensor>, Vec<Tensor>) = if a.size() == b.size() {
            let n = a.size()[0];
            self.pyramid
                .levels(&Tensor::cat(&[a, b], 0))
                .into_iter()
                .map(|l| (l.narrow(0, 0, n), l.narrow(0, n, n)))
                .unzip()
        } else {
            (self.pyramid.levels(a), self.pyramid.levels(b))
        };
        let dims = [2i64, 3].as_slice();
        let per_level: Vec<Tensor> = ya
            .iter()
            .zip(&yb)
            .map(|(l1, l2)| ((l1 - l2).square().mean_dim(dims, false, None::<Kind>) + 1e-10).sqrt())
            .collect();
        Tensor::stack(&per_level, 0).mean_dim([0i64].as_slice(), false, None::<Kind>)
    }
    fn check_input(&self, shape: &[i64]) -> Result<()> {
        self.pyramid.laplacian.check_shape(self.name(), shape)
    }
    fn to(&mut self, device: Device, kind: Kind) {
        self.pyramid.set_device(device, kind)
    }
}
