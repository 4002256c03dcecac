//! Filters and padding shared by the models: plenoptic's `circular_gaussian2d` and
//! `same_padding`, computed once per model in float32 exactly as plenoptic does.
use tch::{Device, Kind, Tensor};

/// Normalized circular 2-D Gaussians, shape (n, 1, kh, kw), one per entry of `stds`.
/// The centre is at `(k+1)/2` (1-based) and each kernel is divided by its own sum.
pub fn circular_gaussian2d(kernel: (i64, i64), stds: &Tensor) -> Tensor {
    let n = stds.size()[0];
    let dev = stds.device();
    let origin_y = (kernel.0 as f64 + 1.0) / 2.0;
    let origin_x = (kernel.1 as f64 + 1.0) / 2.0;
    let origin = Tensor::from_slice(&[origin_y as f32, origin_x as f32]).to_device(dev);
    let shift_y = Tensor::arange_start(1, kernel.0 + 1, (Kind::Int64, dev)) - origin.get(0);
    let shift_x = Tensor::arange_start(1, kernel.1 + 1, (Kind::Int64, dev)) - origin.get(1);
    let yy = shift_y.unsqueeze(1).expand([kernel.0, kernel.1], false);
    let xx = shift_x.unsqueeze(0).expand([kernel.0, kernel.1], false);
    let log_filt = (yy.square() + xx.square()).repeat([n, 1, 1, 1]);
    let denom = (stds.square() * -2.0).view([n, 1, 1, 1]);
    let filt = (log_filt / denom).exp();
    let sum = filt.sum_dim_intlist([1, 2, 3].as_slice(), true, Kind::Float);
    filt / sum
}

/// f32 tensor from values, on a device.
pub fn vec_tensor(values: &[f64], device: Device) -> Tensor {
    let v: Vec<f32> = values.iter().map(|&x| x as f32).collect();
    Tensor::from_slice(&v).to_device(device)
}

/// Padding mode names as `torch.nn.functional.pad` spells them.
pub const PAD_MODES: &[&str] = &["reflect", "circular", "replicate", "constant"];

/// Pads so that a valid convolution with `kernel` keeps the size: `(k-1)//2` before and
/// the rest after, in both dimensions.
pub fn same_padding(x: &Tensor, kernel: (i64, i64), mode: &str) -> Tensor {
    let ph = kernel.0 - 1;
    let pw = kernel.1 - 1;
    if ph == 0 && pw == 0 {
        return x.shallow_clone();
    }
    let value = if mode == "constant" { Some(0.0) } else { None };
    x.pad([pw / 2, pw - pw / 2, ph / 2, ph - ph / 2], mode, value)
}

/// Valid 2-D correlation with a (out, in/groups, kh, kw) weight.
pub fn conv2d(x: &Tensor, weight: &Tensor, groups: i64) -> Tensor {
    x.conv2d(weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], groups)
}
