//! Tolerance checks on tensors, wherever they live (values are read back to the CPU).
use tch::{Kind, Tensor};

/// Elementwise `|a - e| <= atol + rtol |e|` with NaN positions matching; `actual` may be on
/// any device and of any float kind, and its shape may differ from `expected`'s when the
/// element counts agree (a 0-d / (1,) mismatch, squeezable dims). Returns the largest
/// `|a - e|`, or a description of the worst element on failure.
pub fn allclose(actual: &Tensor, expected: &Tensor, atol: f64, rtol: f64) -> Result<f64, String> {
    let a = actual
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .contiguous();
    let e = expected
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .contiguous();
    if a.size() != e.size() && a.numel() != e.numel() {
        return Err(format!("shape {:?} != expected {:?}", a.size(), e.size()));
    }
    let a = a.reshape([-1]);
    let e = e.reshape([-1]);
    let a_nan = a.isnan();
    let e_nan = e.isnan();
    if a_nan.ne_tensor(&e_nan).any().int64_value(&[]) != 0 {
        return Err("NaN positions differ".into());
    }
    let a = a.nan_to_num(0.0, None, None);
    let e = e.nan_to_num(0.0, None, None);
    let diff = (&a - &e).abs();
    let excess = &diff - (e.abs() * rtol + atol);
    let worst = excess.argmax(None, false).int64_value(&[]);
    let max_diff = diff.max().double_value(&[]);
    if excess.get(worst).double_value(&[]) > 0.0 {
        return Err(format!(
            "element {worst}: actual {} expected {} (|diff| {:.3e} > atol {atol:e} + rtol {rtol:e}); max |diff| {max_diff:.3e}",
            a.get(worst).double_value(&[]),
            e.get(worst).double_value(&[]),
            diff.get(worst).double_value(&[])
        ));
    }
    Ok(max_diff)
}

/// A tensor's values as f64, flattened.
pub fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(
        t.to_device(tch::Device::Cpu)
            .to_kind(Kind::Double)
            .reshape([-1]),
    )
    .unwrap()
}
