//! The error of a parameter check: which parameter (as the user writes it), which others the
//! broken rule involves, and what was expected.
use std::fmt;

/// A parameter value that plenoptic (or the mathematics of the method) does not accept:
/// `optimizer.lr: must be > 0, got -0.01`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError {
    /// The parameter's path as a spec writes it: `initial_noise`, `optimizer.lr`,
    /// `allowed_range[1]`. The first segment is the spec's key.
    pub param: String,
    /// Other parameters of the broken rule, for rules that relate several
    /// (`stop_criterion` with `change_scale_criterion`); empty for a range check.
    pub related: Vec<String>,
    /// What was expected and what was given.
    pub message: String,
}

impl ParamError {
    /// A value outside its range.
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError {
            param: param.into(),
            related: Vec::new(),
            message: message.into(),
        }
    }

    /// A broken rule between `param` and `related`.
    pub fn relating(
        param: impl Into<String>,
        related: &[&str],
        message: impl Into<String>,
    ) -> Self {
        ParamError {
            param: param.into(),
            related: related.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
        }
    }

    /// The same error one level down: `lr` inside `optimizer` becomes `optimizer.lr`.
    pub fn within(mut self, parent: &str) -> Self {
        self.param = join(parent, &self.param);
        self.related = self.related.iter().map(|r| join(parent, r)).collect();
        self
    }

    /// Every parameter the rule involves, `param` first.
    pub fn params(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.param.as_str()).chain(self.related.iter().map(String::as_str))
    }

    /// The spec key (first path segment) of every parameter the rule involves.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.params()
            .map(|p| p.split(['.', '[']).next().unwrap_or(p))
    }
}

fn join(parent: &str, child: &str) -> String {
    if child.is_empty() {
        parent.to_string()
    } else if child.starts_with('[') {
        format!("{parent}{child}")
    } else {
        format!("{parent}.{child}")
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.param, self.message)
    }
}

impl std::error::Error for ParamError {}

/// `Ok` when `v` is finite and `> 0`.
pub(crate) fn positive(param: &str, v: f64) -> Result<(), ParamError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("must be positive (> 0), got {v}"),
        ))
    }
}

/// `Ok` when `v` is finite and `>= 0`.
pub(crate) fn non_negative(param: &str, v: f64) -> Result<(), ParamError> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("must be non-negative (>= 0), got {v}"),
        ))
    }
}

/// `Ok` when `n >= 1`.
pub(crate) fn at_least_one(param: &str, n: usize) -> Result<(), ParamError> {
    if n >= 1 {
        Ok(())
    } else {
        Err(ParamError::new(param, "must be at least 1, got 0"))
    }
}

/// `Ok` when `(a, b)` are finite with `a < b` (plenoptic's `allowed_range` check).
pub(crate) fn increasing_range(param: &str, (a, b): (f64, f64)) -> Result<(), ParamError> {
    if a.is_finite() && b.is_finite() && a < b {
        Ok(())
    } else {
        Err(ParamError::new(
            param,
            format!("[{a}, {b}]: the first value must be strictly less than the second"),
        ))
    }
}
