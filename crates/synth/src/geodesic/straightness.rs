//! Sequences between two images and how straight they are (plenoptic's `tools.straightness`):
//! the pixel fade, the Brownian bridge, and the deviation from the straight line.
use crate::error::{Result, SynthError};
use tch::{Kind, Tensor};

fn check_anchors(start: &Tensor, stop: &Tensor, n_steps: usize) -> Result<()> {
    if start.size() != stop.size() {
        return Err(SynthError::invalid(
            "image_b",
            format!(
                "must have image_a's shape {:?}, got {:?}",
                start.size(),
                stop.size()
            ),
        ));
    }
    if n_steps == 0 {
        return Err(SynthError::invalid("n_steps", "must be positive, got 0"));
    }
    Ok(())
}

/// `t = 0, 1/n, …, 1` as an (n + 1, 1) column.
fn times(n_steps: usize, like: &Tensor) -> Tensor {
    Tensor::linspace(0.0, 1.0, n_steps as i64 + 1, (like.kind(), like.device())).view([-1, 1])
}

/// Frame `t` of the result is `(1 − t)·start + t·stop`, `t = 0, 1/n, …, 1`; shape
/// (n_steps + 1, C, H, W) from two (1, C, H, W) images.
pub fn make_straight_line(start: &Tensor, stop: &Tensor, n_steps: usize) -> Result<Tensor> {
    check_anchors(start, stop, n_steps)?;
    let tt = times(n_steps, start);
    let line = (-&tt + 1.0) * start.reshape([1, -1]) + &tt * stop.reshape([1, -1]);
    Ok(line.reshape(frames_shape(start, n_steps)))
}

/// A Brownian bridge from `start` to `stop` in `n_steps` steps (plenoptic's
/// `sample_brownian_bridge`, `max_norm` = 1): draws one `randn(n_steps + 1, C·H·W)`.
pub fn sample_brownian_bridge(start: &Tensor, stop: &Tensor, n_steps: usize) -> Result<Tensor> {
    check_anchors(start, stop, n_steps)?;
    let (kind, device) = (start.kind(), start.device());
    let start_flat = start.reshape([1, -1]);
    let dims = start_flat.size()[1];
    let dt = Tensor::from(1.0 / n_steps as f64)
        .to_kind(Kind::Float)
        .to_device(device);
    let sigma = (dt / dims).sqrt() * 2.0 * 1.0;
    let tt = times(n_steps, start);
    let dw = sigma * Tensor::f_randn([n_steps as i64 + 1, dims], (kind, device))?;
    dw.get(0).copy_(&start_flat.get(0));
    let w = dw.cumsum(0, None::<Kind>);
    let bridge = &w - tt * (w.narrow(0, n_steps as i64, 1) - stop.reshape([1, -1]));
    Ok(bridge.reshape(frames_shape(start, n_steps)))
}

fn frames_shape(image: &Tensor, n_steps: usize) -> Vec<i64> {
    let mut shape = image.size();
    shape[0] = n_steps as i64 + 1;
    shape
}

/// How far each frame of `sequence` (T, …) lies along, and from, the straight line between its
/// first and last frames, both divided by the line's length: a (T, 2) tensor whose columns are
/// (distance along, distance from).
pub fn deviation_from_line(sequence: &Tensor) -> Tensor {
    let t = sequence.size()[0];
    let y = sequence.reshape([t, -1]);
    let y0 = y.narrow(0, 0, 1);
    let line = y.narrow(0, t - 1, 1) - &y0;
    let length = line.norm();
    let line = line / &length;
    let centered = &y - &y0;
    let along = centered.mv(&line.get(0));
    let projection = along.view([t, 1]) * &line;
    let from = (&centered - projection).norm_scalaropt_dim(2, [1], false);
    Tensor::stack(&[along / &length, from / &length], 1)
}
