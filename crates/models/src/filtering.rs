//! How the Gaussian-based models filter: plenoptic's padded 2-D convolution (`direct`), the
//! same filter as two matrix products (`separable`), or a product of Fourier transforms
//! (`fft`), chosen per device type and size by a fixed, measured rule (`auto`).
//!
//! Every method pads exactly as plenoptic's `same_padding` does (`(k-1)//2` before, the
//! rest after, in the model's `pad_mode`) and then takes the valid correlation, so they agree
//! to float rounding. `direct` is plenoptic's arithmetic op for op (bit-level parity);
//! `separable` and `fft` change the order of the float sums (about 1e-7 relative in float32).
//!
//! `separable` folds the padding into the filter: for a Gaussian `g_v ⊗ g_h`, the output is
//! `A_v · x · A_hᵀ` with `A = Tᵀ·P` (`P` the padding as a matrix, `T` the banded 1-D
//! correlation), an (H, H) and a (W, W) matrix built once per image size. A difference of
//! Gaussians is the signed sum of two such terms, run as the same two products with the
//! terms' matrices side by side. Its cost does not depend on the kernel size.
//!
//! The rule is deterministic: the same device type and shapes always take the same method, so
//! a task's result never depends on timing (see [`auto_method`] and `benches/filtering.rs`).
use crate::filters::{conv2d, same_padding};
use crate::params::ParamDoc;
use std::sync::Mutex;
use tch::{Device, Kind, Tensor};

/// The `filtering` parameter of the Gaussian-based models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filtering {
    /// [`auto_method`] picks one of the others from the device type and the sizes.
    Auto,
    /// plenoptic's `conv2d` on the padded image, bit for bit.
    Direct,
    /// Two matrix products per separable term (padding folded in).
    Separable,
    /// `irfft2(rfft2(padded) · conj(rfft2(filter)))`, cropped to the valid part.
    Fft,
}

impl Filtering {
    /// The parameter's accepted values, as specs spell them.
    pub const NAMES: &'static [&'static str] = &["auto", "direct", "separable", "fft"];

    /// Parses a name of [`Filtering::NAMES`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "direct" => Self::Direct,
            "separable" => Self::Separable,
            "fft" => Self::Fft,
            _ => return None,
        })
    }

    /// The name specs use for this method (one of [`Filtering::NAMES`]).
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Direct => "direct",
            Self::Separable => "separable",
            Self::Fft => "fft",
        }
    }

    /// The method that runs for an (h, w) image and a (kh, kw) kernel of `terms` separable
    /// terms on `device`.
    pub fn resolve(
        self,
        device: Device,
        image: (i64, i64),
        kernel: (i64, i64),
        terms: usize,
    ) -> Filtering {
        match self {
            Self::Auto => auto_method(device, image, kernel, terms),
            other => other,
        }
    }
}

/// The documentation row of the `filtering` parameter (shared by every model that has it).
pub const FILTERING_DOC: ParamDoc = ParamDoc {
    name: "filtering",
    ty: "string",
    default: "\"auto\"",
    help: "auto (fastest measured for the device and size), direct (plenoptic's conv2d, bit-level parity), separable or fft",
};

/// `auto` takes `separable` on the CPU while `terms × max(H, W)` is at most this, else
/// `fft` (separable work grows as terms·side³, FFT work as side²·log side, independent of
/// the terms). Measured with `cargo bench -p synthsweep-models --bench filtering` (one thread,
/// forward + backward): a 31x31 Gaussian (1 term) is faster separable up to 256 px and by FFT
/// at 512; a difference of Gaussians (2 terms) up to 128 px and by FFT at 256.
pub const CPU_SEPARABLE_MAX_WORK: i64 = 256;
/// As [`CPU_SEPARABLE_MAX_WORK`], for CUDA devices. Not measured yet (no GPU was available
/// to the bench): the CPU's figure until `benches/filtering.rs` runs on a GPU.
pub const CUDA_SEPARABLE_MAX_WORK: i64 = 256;
/// Kernels with at most this many taps run `direct` under `auto` on images of at most
/// [`DIRECT_MAX_SIDE`] pixels a side (a 3x3 Gaussian is faster direct up to 64 px, even at
/// 128, separable beyond).
pub const DIRECT_MAX_TAPS: i64 = 9;
/// See [`DIRECT_MAX_TAPS`].
pub const DIRECT_MAX_SIDE: i64 = 128;

/// `auto`'s choice: a pure function of the device type and the shapes (image, kernel, number
/// of separable terms), never of timings taken at run time, so that a task gives the same
/// result on every run.
pub fn auto_method(
    device: Device,
    image: (i64, i64),
    kernel: (i64, i64),
    terms: usize,
) -> Filtering {
    let side = image.0.max(image.1);
    if kernel.0 * kernel.1 <= DIRECT_MAX_TAPS && side <= DIRECT_MAX_SIDE {
        return Filtering::Direct;
    }
    let max_work = match device {
        Device::Cpu => CPU_SEPARABLE_MAX_WORK,
        _ => CUDA_SEPARABLE_MAX_WORK,
    };
    if terms as i64 * side <= max_work {
        Filtering::Separable
    } else {
        Filtering::Fft
    }
}

/// One separable component of a filter bank: channel `c` is `coef[c] · (v[c] ⊗ h[c])`.
#[derive(Debug, Clone)]
pub struct SeparableTerm {
    /// Signed weight of this term, one per channel (float64, as the filter's formula gives it).
    pub coef: Vec<f64>,
    /// Vertical 1-D kernels, one of length `kh` per channel.
    pub v: Vec<Vec<f64>>,
    /// Horizontal 1-D kernels, one of length `kw` per channel.
    pub h: Vec<Vec<f64>>,
}

/// What a method needs for one image size, built on first use and kept.
#[derive(Debug)]
enum Prepared {
    /// Per channel the T terms side by side: `(n, H, T·H)` (coefficients folded in, in
    /// float64 before rounding) and `(n, W, T·W)` (transposed factors).
    Separable {
        a_v: Tensor,
        a_h_t: Tensor,
        terms: i64,
    },
    /// `conj(rfft2(filter))` at the transform size `(lh, lw)` of [`fft_size`],
    /// `(n, lh, lw/2 + 1)`.
    Fft { kernel_f: Tensor },
}

type CacheKey = (i64, i64, Filtering);

/// A bank of `n` filters of one kernel size and padding, applied by any [`Filtering`]
/// method. The 2-D filters (for `direct` and `fft`) are plenoptic's float32 values; the 1-D
/// factors (for `separable`) are kept in float64 and rounded once into the matrices.
#[derive(Debug)]
pub struct FilterBank {
    kernel: (i64, i64),
    pad_mode: String,
    filtering: Filtering,
    filt: Tensor,
    terms: Vec<SeparableTerm>,
    cache: Mutex<Vec<(CacheKey, Prepared)>>,
}

/// Image sizes kept per bank; a synthesis uses one, a pyramid-like caller a few.
const CACHE_SIZES: usize = 8;

impl FilterBank {
    /// `filt` is the (n, 1, kh, kw) bank as plenoptic builds it; `terms` its separable form
    /// (their signed sum must equal `filt`).
    pub fn new(
        filt: Tensor,
        terms: Vec<SeparableTerm>,
        pad_mode: &str,
        filtering: Filtering,
    ) -> Self {
        let size = filt.size();
        FilterBank {
            kernel: (size[2], size[3]),
            pad_mode: pad_mode.to_string(),
            filtering,
            filt,
            terms,
            cache: Mutex::new(Vec::new()),
        }
    }

    /// The (n, 1, kh, kw) filters.
    pub fn filt(&self) -> &Tensor {
        &self.filt
    }

    /// The kernel size (kh, kw) in pixels.
    pub fn kernel(&self) -> (i64, i64) {
        self.kernel
    }

    /// The padding mode of plenoptic's `same_padding` (`reflect`, `circular`, `constant`, ...).
    pub fn pad_mode(&self) -> &str {
        &self.pad_mode
    }

    /// The method asked for (possibly [`Filtering::Auto`]; see [`FilterBank::method_for`]).
    pub fn filtering(&self) -> Filtering {
        self.filtering
    }

    /// The method that runs for an input of this shape (N, C, H, W) on `device`.
    pub fn method_for(&self, device: Device, shape: &[i64]) -> Filtering {
        let n = shape.len();
        self.filtering.resolve(
            device,
            (shape[n - 2], shape[n - 1]),
            self.kernel,
            self.terms.len(),
        )
    }

    /// Filters `x` (N, C, H, W) into (N, n, H, W): with `groups = 1` the input has one
    /// channel and every filter sees it; with `groups = n` channel `c` gets filter `c`
    /// (plenoptic's `conv2d(..., groups=n)`).
    pub fn apply(&self, x: &Tensor, groups: i64) -> Tensor {
        match self.method_for(x.device(), &x.size()) {
            Filtering::Direct | Filtering::Auto => conv2d(
                &same_padding(x, self.kernel, &self.pad_mode),
                &self.filt,
                groups,
            ),
            Filtering::Separable => self.apply_separable(x),
            Filtering::Fft => self.apply_fft(x),
        }
    }

    fn apply_separable(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (h, w) = (size[2], size[3]);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let Prepared::Separable { a_v, a_h_t, terms } =
            self.prepared(&mut cache, (h, w, Filtering::Separable), x)
        else {
            unreachable!("separable key holds separable matrices")
        };
        // Not held while computing: a bank shared by threads filters in parallel.
        let (a_v, a_h_t, terms) = (a_v.shallow_clone(), a_h_t.shallow_clone(), *terms);
        drop(cache);
        // (N, C, H, W) @ (n, W, T·W) -> (N, n, H, T·W); C is 1 or n (broadcast or matched).
        let z = x.matmul(&a_h_t);
        let z = if terms > 1 {
            let n = z.size()[1];
            z.view([size[0], n, h, terms, w])
                .permute([0, 1, 3, 2, 4])
                .reshape([size[0], n, terms * h, w])
        } else {
            z
        };
        // (n, H, T·H) @ (N, n, T·H, W): the coefficients are in the left factor.
        a_v.matmul(&z)
    }

    fn apply_fft(&self, x: &Tensor) -> Tensor {
        let size = x.size();
        let (h, w) = (size[2], size[3]);
        let xp = same_padding(x, self.kernel, &self.pad_mode);
        let (lh, lw) = fft_size(h, w, self.kernel);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let Prepared::Fft { kernel_f } = self.prepared(&mut cache, (h, w, Filtering::Fft), x)
        else {
            unreachable!("fft key holds a transform")
        };
        let kernel_f = kernel_f.shallow_clone();
        drop(cache);
        // Zero-filled to (lh, lw) >= the padded size: the first (h, w) outputs never wrap.
        let xf = xp.fft_rfft2(Some([lh, lw].as_slice()), [-2, -1], "backward");
        (xf * &kernel_f)
            .fft_irfft2(Some([lh, lw].as_slice()), [-2, -1], "backward")
            .narrow(2, 0, h)
            .narrow(3, 0, w)
    }

    /// The prepared tensors for `key`, built at `like`'s device and kind on first use.
    fn prepared<'c>(
        &self,
        cache: &'c mut Vec<(CacheKey, Prepared)>,
        key: CacheKey,
        like: &Tensor,
    ) -> &'c Prepared {
        let (device, kind) = (like.device(), like.kind());
        let fresh = |p: &Prepared| match p {
            Prepared::Separable { a_v, .. } => a_v.device() == device && a_v.kind() == kind,
            Prepared::Fft { kernel_f } => {
                kernel_f.device() == device && kernel_f.kind() == complex_of(kind)
            }
        };
        if let Some(i) = cache.iter().position(|(k, p)| *k == key && fresh(p)) {
            return &cache[i].1;
        }
        cache.retain(|(k, _)| *k != key);
        if cache.len() >= CACHE_SIZES {
            cache.remove(0);
        }
        let p = match key.2 {
            Filtering::Fft => self.build_fft(key.0, key.1, device, kind),
            _ => self.build_separable(key.0, key.1, device, kind),
        };
        cache.push((key, p));
        &cache.last().expect("just pushed").1
    }

    fn build_separable(&self, h: i64, w: i64, device: Device, kind: Kind) -> Prepared {
        let (ph, pw) = split_padding(self.kernel);
        let n = self.filt.size()[0];
        let t = self.terms.len() as i64;
        let (hu, wu, tu) = (h as usize, w as usize, t as usize);
        // Channel c: [coef_1·A_v1 | coef_2·A_v2 | …] (H, T·H) and [A_h1ᵀ | A_h2ᵀ | …] (W, T·W).
        let mut a_v = vec![0.0; n as usize * hu * tu * hu];
        let mut a_h_t = vec![0.0; n as usize * wu * tu * wu];
        for (ti, term) in self.terms.iter().enumerate() {
            for c in 0..n as usize {
                let v = folded_matrix(&term.v[c], h, ph, &self.pad_mode, false);
                let ht = folded_matrix(&term.h[c], w, pw, &self.pad_mode, true);
                for r in 0..hu {
                    for col in 0..hu {
                        a_v[(c * hu + r) * tu * hu + ti * hu + col] =
                            term.coef[c] * v[r * hu + col];
                    }
                }
                for r in 0..wu {
                    for col in 0..wu {
                        a_h_t[(c * wu + r) * tu * wu + ti * wu + col] = ht[r * wu + col];
                    }
                }
            }
        }
        let on = |mut v: Vec<f64>, shape: [i64; 3]| {
            // Taps far out in a narrow Gaussian's tail (exp(-98) at 14 sigma) are subnormal in
            // float32 and slow every matrix product down several times; they weigh less than
            // 1e-38 of the centre tap, so they are dropped.
            for e in v.iter_mut().filter(|e| e.abs() < f32::MIN_POSITIVE as f64) {
                *e = 0.0;
            }
            Tensor::from_slice(&v)
                .view(shape)
                .to_kind(kind)
                .to_device(device)
        };
        Prepared::Separable {
            a_v: on(a_v, [n, h, t * h]),
            a_h_t: on(a_h_t, [n, w, t * w]),
            terms: t,
        }
    }

    fn build_fft(&self, h: i64, w: i64, device: Device, kind: Kind) -> Prepared {
        let (lh, lw) = fft_size(h, w, self.kernel);
        let n = self.filt.size()[0];
        let kernel_f = self
            .filt
            .to_device(device)
            .to_kind(kind)
            .view([n, self.kernel.0, self.kernel.1])
            .fft_rfft2(Some([lh, lw].as_slice()), [-2, -1], "backward")
            .conj_physical();
        Prepared::Fft { kernel_f }
    }

    /// Moves the 2-D filters; prepared matrices are rebuilt at the new device and kind.
    pub fn to_mut(&mut self, device: Device, kind: Kind) {
        self.filt = self.filt.to_device(device).to_kind(kind);
        self.cache
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

fn complex_of(kind: Kind) -> Kind {
    match kind {
        Kind::Double => Kind::ComplexDouble,
        Kind::Half => Kind::ComplexHalf,
        _ => Kind::ComplexFloat,
    }
}

/// The transform size of `fft` for an (h, w) image: per axis the smallest 5-smooth number
/// (2^a·3^b·5^c, fast for every FFT library) at least the padded length `n + k - 1`.
fn fft_size(h: i64, w: i64, kernel: (i64, i64)) -> (i64, i64) {
    (
        smooth_at_least(h + kernel.0 - 1),
        smooth_at_least(w + kernel.1 - 1),
    )
}

fn smooth_at_least(n: i64) -> i64 {
    let is_smooth = |mut m: i64| {
        for p in [2, 3, 5] {
            while m % p == 0 {
                m /= p;
            }
        }
        m == 1
    };
    (n.max(1)..)
        .find(|&m| is_smooth(m))
        .expect("5-smooth numbers are unbounded")
}

/// `same_padding`'s split of `k - 1` padded pixels: `(k-1)//2` before, the rest after.
fn split_padding(kernel: (i64, i64)) -> ((i64, i64), (i64, i64)) {
    let (a, b) = (kernel.0 - 1, kernel.1 - 1);
    ((a / 2, a - a / 2), (b / 2, b - b / 2))
}

/// The source index that padded position `i` (0-based, padding included) reads in a signal
/// of length `n` padded by `before`, as `torch.nn.functional.pad` defines each mode; `None`
/// for constant (zero) padding outside the signal.
pub fn padded_source(i: i64, n: i64, before: i64, mode: &str) -> Option<i64> {
    let j = i - before;
    if (0..n).contains(&j) {
        return Some(j);
    }
    match mode {
        "constant" => None,
        "replicate" => Some(j.clamp(0, n - 1)),
        "circular" => Some(j.rem_euclid(n)),
        // reflect (no edge repeat); the models check that the padding is shorter than n.
        _ => Some(if j < 0 { -j } else { 2 * (n - 1) - j }),
    }
}

/// The (n, n) matrix of "pad then valid-correlate with `taps`" along one axis, row-major;
/// transposed when `transpose` (for the right-hand factor).
fn folded_matrix(
    taps: &[f64],
    n: i64,
    (before, _after): (i64, i64),
    mode: &str,
    transpose: bool,
) -> Vec<f64> {
    let mut a = vec![0.0; (n * n) as usize];
    for out in 0..n {
        for (t, &w) in taps.iter().enumerate() {
            if let Some(src) = padded_source(out + t as i64, n, before, mode) {
                let idx = if transpose {
                    src * n + out
                } else {
                    out * n + src
                };
                a[idx as usize] += w;
            }
        }
    }
    a
}

/// The normalized 1-D Gaussian of plenoptic's `circular_gaussian2d` along one axis: centre at
/// `(k+1)/2` (1-based), `exp(-d²/(2σ²))`, divided by its sum. The 2-D filter is the outer
/// product of the two axes' factors.
pub fn gaussian_taps(k: i64, std: f64) -> Vec<f64> {
    let origin = (k as f64 + 1.0) / 2.0;
    let g: Vec<f64> = (1..=k)
        .map(|i| {
            let d = i as f64 - origin;
            (-(d * d) / (2.0 * std * std)).exp()
        })
        .collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| v / s).collect()
}

/// The separable term of a bank of Gaussians with these standard deviations, rounded to
/// float32 first as plenoptic holds them.
pub fn gaussian_term(kernel: (i64, i64), stds: &[f64], coef: Vec<f64>) -> SeparableTerm {
    let stds: Vec<f64> = stds.iter().map(|&s| (s as f32).abs() as f64).collect();
    SeparableTerm {
        coef,
        v: stds.iter().map(|&s| gaussian_taps(kernel.0, s)).collect(),
        h: stds.iter().map(|&s| gaussian_taps(kernel.1, s)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fft_sizes_are_5_smooth_and_cover_the_padding() {
        assert_eq!(fft_size(64, 64, (31, 31)), (96, 96));
        assert_eq!(fft_size(512, 20, (31, 3)), (576, 24));
        assert_eq!(smooth_at_least(1), 1);
        assert_eq!(smooth_at_least(7), 8);
    }

    #[test]
    fn padded_source_follows_torch_pad() {
        // torch: pad([0,1,2,3], (2, 2), mode) along one axis
        let src =
            |mode| -> Vec<Option<i64>> { (0..8).map(|i| padded_source(i, 4, 2, mode)).collect() };
        let s = |v: &[i64]| v.iter().map(|&x| Some(x)).collect::<Vec<_>>();
        assert_eq!(src("reflect"), s(&[2, 1, 0, 1, 2, 3, 2, 1]));
        assert_eq!(src("replicate"), s(&[0, 0, 0, 1, 2, 3, 3, 3]));
        assert_eq!(src("circular"), s(&[2, 3, 0, 1, 2, 3, 0, 1]));
        let c = src("constant");
        assert_eq!(c[..2], [None, None]);
        assert_eq!(c[2..6], s(&[0, 1, 2, 3])[..]);
    }

    #[test]
    fn auto_is_a_function_of_device_type_and_shapes() {
        let d = Device::Cpu;
        assert_eq!(auto_method(d, (64, 64), (31, 31), 1), Filtering::Separable);
        assert_eq!(
            auto_method(d, (256, 200), (31, 31), 1),
            Filtering::Separable
        );
        assert_eq!(auto_method(d, (256, 256), (31, 31), 2), Filtering::Fft);
        assert_eq!(
            auto_method(d, (128, 128), (31, 31), 2),
            Filtering::Separable
        );
        assert_eq!(auto_method(d, (257, 8), (11, 11), 1), Filtering::Fft);
        assert_eq!(auto_method(d, (64, 64), (3, 3), 1), Filtering::Direct);
        assert_eq!(auto_method(d, (256, 256), (3, 3), 1), Filtering::Separable);
    }

    #[test]
    fn gaussian_taps_match_the_2d_filter() {
        let k = (7, 5);
        let stds = Tensor::from_slice(&[1.7f32]);
        let two_d = crate::filters::circular_gaussian2d(k, &stds).to_kind(Kind::Double);
        let v = Tensor::from_slice(&gaussian_taps(k.0, 1.7f32 as f64));
        let h = Tensor::from_slice(&gaussian_taps(k.1, 1.7f32 as f64));
        let outer = v.unsqueeze(1) * h.unsqueeze(0);
        let d = (two_d.view([7, 5]) - outer).abs().max().double_value(&[]);
        assert!(d < 1e-7, "{d}");
    }

    /// Every method against `direct` (in float64) for every padding mode, one and several channels,
    /// groups, odd and even non-square kernels on non-square images: values and gradients.
    #[test]
    fn every_method_matches_direct_for_every_padding() {
        tch::manual_seed(3);
        for mode in crate::filters::PAD_MODES {
            for kernel in [(7, 9), (6, 5)] {
                let stds = [1.3, 2.9];
                let x = Tensor::rand([2, 1, 20, 27], (Kind::Double, Device::Cpu));
                let x2 = Tensor::rand([2, 2, 20, 27], (Kind::Double, Device::Cpu));
                let r = Tensor::rand([2, 2, 20, 27], (Kind::Double, Device::Cpu));
                let bank = |f| {
                    let filt = crate::filters::circular_gaussian2d(
                        kernel,
                        &crate::filters::vec_tensor(&stds, Device::Cpu),
                    );
                    let mut b = FilterBank::new(
                        filt,
                        vec![gaussian_term(kernel, &stds, vec![1.0, 1.0])],
                        mode,
                        f,
                    );
                    b.to_mut(Device::Cpu, Kind::Double);
                    b
                };
                let dog = |f| {
                    let c = crate::naive::CenterSurround::new(
                        kernel,
                        &[true, false],
                        1.25,
                        &[0.8, 1.1],
                        &[2.5, 3.0],
                        mode,
                        f,
                    );
                    let mut b =
                        FilterBank::new(c.filt().shallow_clone(), c.bank().terms.clone(), mode, f);
                    b.to_mut(Device::Cpu, Kind::Double);
                    b
                };
                for (what, input, groups) in
                    [("gauss", &x, 1), ("gauss groups", &x2, 2), ("dog", &x, 1)]
                {
                    let run = |f| {
                        let b = if what == "dog" { dog(f) } else { bank(f) };
                        let xi = input.detach().set_requires_grad(true);
                        let y = b.apply(&xi, groups);
                        let g = Tensor::run_backward(
                            &[(&y * &r).sum(Kind::Double)],
                            &[&xi],
                            false,
                            false,
                        )
                        .remove(0);
                        (y.detach(), g)
                    };
                    let (y0, g0) = run(Filtering::Direct);
                    for f in [Filtering::Separable, Filtering::Fft] {
                        let (y, g) = run(f);
                        assert_eq!(y.size(), y0.size(), "{mode} {kernel:?} {what} {f:?}");
                        let dy = (&y - &y0).abs().max().double_value(&[]);
                        let dg = (&g - &g0).abs().max().double_value(&[]);
                        // The 2-D filters hold plenoptic's float32 values, the separable
                        // factors float64 ones: they differ by float32 rounding (~1e-8); a
                        // padding mistake would move values by whole filter taps (>1e-3).
                        assert!(
                            dy < 1e-6 && dg < 1e-6,
                            "{mode} {kernel:?} {what} {f:?}: {dy:e} {dg:e}"
                        );
                    }
                }
            }
        }
    }
}
