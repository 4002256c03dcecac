//! Turning synthesis results into table rows: per-iteration losses and images (float
//! pixels for analysis plus a PNG for looking).
use synthsweep_models::image_io::png_bytes;
use synthsweep_store::{ImageRow, LossRow};
use tch::{Device, Kind, Tensor};

/// One image row; `t` is (C, H, W) or (1, C, H, W). PNGs of images outside [0, 1]
/// (eigendistortions) are min-max rescaled for display; `pixels` keeps the values.
pub fn image_row(
    role: &str,
    index: i64,
    iteration: Option<i64>,
    t: &Tensor,
    rescale_png: bool,
) -> ImageRow {
    let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float);
    let t = if t.dim() == 4 { t.get(0) } else { t };
    let s = t.size();
    let pixels: Vec<f32> = Vec::try_from(t.reshape([-1])).unwrap_or_default();
    let shown = if rescale_png {
        let (lo, hi) = (t.min().double_value(&[]), t.max().double_value(&[]));
        if hi > lo {
            (&t - lo) / (hi - lo)
        } else {
            t.zeros_like()
        }
    } else {
        t.shallow_clone()
    };
    // 2-channel images (e.g. none today) have no PNG form; keep the pixels.
    let png = if s[0] == 1 || s[0] == 3 {
        png_bytes(&shown).ok()
    } else {
        None
    };
    ImageRow {
        task_id: String::new(),
        role: role.to_string(),
        index,
        iteration,
        channels: s[0] as i32,
        height: s[1] as i32,
        width: s[2] as i32,
        pixels: Some(pixels),
        png,
    }
}

/// Rows for a stack of images (N, C, H, W), indexed 0..N.
pub fn stack_rows(
    role: &str,
    stack: &Tensor,
    iterations: impl Fn(i64) -> Option<i64>,
    rescale_png: bool,
) -> Vec<ImageRow> {
    (0..stack.size()[0])
        .map(|i| image_row(role, i, iterations(i), &stack.get(i), rescale_png))
        .collect()
}

/// Loss rows from the standard series (each value is at the image before step i).
pub fn loss_rows(losses: &[f64], gradient_norm: &[f64], pixel_change_norm: &[f64]) -> Vec<LossRow> {
    losses
        .iter()
        .enumerate()
        .map(|(i, &loss)| LossRow {
            task_id: String::new(),
            iteration: i as i64,
            loss,
            gradient_norm: gradient_norm.get(i).copied(),
            pixel_change_norm: pixel_change_norm.get(i).copied(),
            ..Default::default()
        })
        .collect()
}

/// A scalar tensor as f64.
pub fn scalar(t: &Tensor) -> f64 {
    t.detach()
        .to_device(Device::Cpu)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[])
}
