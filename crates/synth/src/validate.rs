//! Up-front checks of images, models and metrics (plenoptic's `validate_*`), including the
//! random draws plenoptic's validators make, so that seeded runs draw the same numbers.
use crate::error::{Result, SynthError};
use crate::optim::item;
use synthsweep_models::{Metric, Model};
use tch::{Kind, Tensor};

/// A 4-D floating-point tensor.
pub(crate) fn validate_image(image: &Tensor, name: &str) -> Result<()> {
    if image.dim() != 4 {
        return Err(SynthError::invalid(
            name,
            format!(
                "must be 4-D (batch, channel, height, width), got shape {:?}",
                image.size()
            ),
        ));
    }
    if !matches!(
        image.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return Err(SynthError::invalid(
            name,
            format!("must be a floating-point tensor, got {:?}", image.kind()),
        ));
    }
    Ok(())
}

/// Shared by Metamer and MAD: a non-negative penalty weight, an increasing range, and a
/// float NCHW image inside it.
pub(crate) fn validate_image_and_range(
    image: &Tensor,
    range_penalty_lambda: f64,
    allowed_range: (f64, f64),
) -> Result<()> {
    if !(range_penalty_lambda >= 0.0 && range_penalty_lambda.is_finite()) {
        return Err(SynthError::invalid(
            "range_penalty_lambda",
            format!("must be non-negative, got {range_penalty_lambda}"),
        ));
    }
    validate_image(image, "image")?;
    let (a, b) = allowed_range;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(SynthError::invalid(
            "allowed_range",
            format!("allowed_range[0] must be strictly less than allowed_range[1], got ({a}, {b})"),
        ));
    }
    let (lo, hi) = (item(&image.min()), item(&image.max()));
    if lo < a || hi > b {
        return Err(SynthError::invalid(
            "image",
            format!("values must lie within allowed_range ({a}, {b}), but span ({lo}, {hi})"),
        ));
    }
    Ok(())
}

/// plenoptic's `validate_model`: draws one `rand(image.shape)` and checks that the model
/// keeps the gradient, the dtype, and returns a 3-D or 4-D output.
pub(crate) fn validate_model(model: &dyn Model, image: &Tensor) -> Result<()> {
    model.check_input(&image.size())?;
    let test = Tensor::rand(image.size(), (image.kind(), image.device())).set_requires_grad(true);
    let out = model.forward(&test);
    let name = model.name();
    if !out.requires_grad() {
        return Err(SynthError::invalid(
            "model",
            format!("`{name}` strips the gradient from its input"),
        ));
    }
    if !(3..=4).contains(&out.dim()) {
        return Err(SynthError::invalid(
            "model",
            format!(
                "`{name}` must return a 3-D or 4-D output, got shape {:?}",
                out.size()
            ),
        ));
    }
    if out.kind() != image.kind() {
        return Err(SynthError::invalid(
            "model",
            format!(
                "`{name}` changes the precision of its input ({:?} -> {:?})",
                image.kind(),
                out.kind()
            ),
        ));
    }
    Ok(())
}

/// plenoptic's `validate_metric`: draws `rand(image.shape)` then 20 `rand_like`, and checks
/// that the metric gives one value, at most 5e-7 for identical images, never negative.
pub(crate) fn validate_metric(metric: &dyn Metric, image: &Tensor, param: &str) -> Result<()> {
    metric.check_input(&image.size())?;
    let name = metric.name();
    let bad = |msg: String| SynthError::invalid(param, format!("`{name}` {msg}"));
    let test = Tensor::rand(image.size(), (image.kind(), image.device()));
    let others: Vec<Tensor> = (0..20).map(|_| test.rand_like()).collect();
    tch::no_grad(|| {
        let same = metric.forward(&test, &test);
        if same.numel() != 1 {
            return Err(bad(format!(
                "must return one value for this image, got shape {:?}",
                same.size()
            )));
        }
        let same = item(&same);
        if same.is_nan() || same > 5e-7 {
            return Err(bad(format!(
                "must return <= 5e-7 for two identical images, got {same}"
            )));
        }
        let n = others.len() as i64;
        let values = metric.forward(&test.repeat([n, 1, 1, 1]), &Tensor::cat(&others, 0));
        if item(&values.min()) < 0.0 {
            return Err(bad("must never be negative".to_string()));
        }
        Ok(())
    })
}

/// A 4-D float image with a batch of exactly one (plenoptic's `validate_input(no_batch=True)`).
pub(crate) fn validate_single_image(image: &Tensor, name: &str) -> Result<()> {
    validate_image(image, name)?;
    if image.size()[0] != 1 {
        return Err(SynthError::invalid(
            name,
            format!(
                "batch dimension must be 1, got shape {:?} (synthesize one image at a time)",
                image.size()
            ),
        ));
    }
    Ok(())
}

/// Every value of `image` inside `allowed_range`, itself an increasing pair.
pub(crate) fn validate_in_range(
    image: &Tensor,
    name: &str,
    allowed_range: (f64, f64),
) -> Result<()> {
    let (a, b) = allowed_range;
    if !(a.is_finite() && b.is_finite() && a < b) {
        return Err(SynthError::invalid(
            "allowed_range",
            format!("allowed_range[0] must be strictly less than allowed_range[1], got ({a}, {b})"),
        ));
    }
    let (lo, hi) = (item(&image.min()), item(&image.max()));
    if lo < a || hi > b {
        return Err(SynthError::invalid(
            name,
            format!("values must lie within allowed_range ({a}, {b}), but span ({lo}, {hi})"),
        ));
    }
    Ok(())
}

/// "NaN", "infinite values" or both, for `n_bad` non-finite values of which `n_nan` are NaN.
fn non_finite_kind(n_bad: i64, n_nan: i64) -> &'static str {
    match (n_nan, n_bad - n_nan) {
        (_, 0) => "NaN",
        (0, _) => "infinite values",
        _ => "NaN and infinite values",
    }
}

/// The model's representation `rep` of a target image (`what`: "the target image",
/// "image_a", ...) must be finite: checked before any iteration, since NaN there (e.g.
/// Portilla-Simoncelli on a pattern whose bands have zero variance) comes from the image and
/// the model, and the synthesis could only fail later as if it had diverged.
///
/// # Errors
/// [`SynthError::NonFiniteTarget`] naming the statistics that hold NaN (models with
/// [`Model::statistics`]) or how many of the output's values do.
pub(crate) fn validate_representation(model: &dyn Model, rep: &Tensor, what: &str) -> Result<()> {
    let bad = tch::no_grad(|| rep.isfinite().logical_not());
    let n_bad = bad.sum(Kind::Int64).int64_value(&[]);
    if n_bad == 0 {
        return Ok(());
    }
    let n_nan = rep.isnan().sum(Kind::Int64).int64_value(&[]);
    let name = model.name();
    let stats = tch::no_grad(|| model.statistics(&bad.to_kind(Kind::Float)));
    let detail = match stats {
        Some(parts) => {
            // Redundant positions are NaN in the parts; the bad ones are exactly 1.
            let named: Vec<String> = parts
                .iter()
                .filter_map(|(stat, part)| {
                    let k = part.eq(1.0).sum(Kind::Int64).int64_value(&[]);
                    (k > 0).then(|| format!("{stat} ({k} of {})", part.numel()))
                })
                .collect();
            format!("in the statistics {}", named.join(", "))
        }
        None => format!(
            "{n_bad} of its {} values, output shape {:?}",
            rep.numel(),
            rep.size()
        ),
    };
    Err(SynthError::NonFiniteTarget {
        what: format!("`{name}`'s representation of {what}"),
        kind: non_finite_kind(n_bad, n_nan),
        detail,
        by: "model",
    })
}

/// A metric's value at the start (MAD's `metric(image, initial_image)`) must be finite; the
/// error names the metric's role and value.
///
/// # Errors
/// [`SynthError::NonFiniteTarget`].
pub(crate) fn validate_initial_metric(metric: &dyn Metric, value: f64, param: &str) -> Result<()> {
    if value.is_finite() {
        return Ok(());
    }
    Err(SynthError::NonFiniteTarget {
        what: format!(
            "{param} `{}` between the image and the initial image",
            metric.name()
        ),
        kind: non_finite_kind(1, i64::from(value.is_nan())),
        detail: format!("it is {value}"),
        by: "metric",
    })
}
