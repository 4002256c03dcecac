//! Per-channel filter parameters as current plenoptic (1.3 and later) takes them: a list for
//! `std` (`gaussian`) or for `on_center`, `center_std`, `surround_std` (`center_surround` and
//! the front ends built on it) sets the number of output channels from its length when
//! `out_channels` is not given ("inferred"); a scalar is repeated for every channel; lengths
//! that disagree are an error naming both.
use crate::error::{ModelError, Result};
use crate::params::Params;
use serde_json::Value;

/// A parameter given once for every channel, or once per channel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PerChannel<T> {
    One(T),
    List(Vec<T>),
}

impl<T: Clone> PerChannel<T> {
    /// The list's length when it sets a number of channels (plenoptic: `numel() != 1`).
    fn count(&self) -> Option<usize> {
        match self {
            PerChannel::List(v) if v.len() != 1 => Some(v.len()),
            _ => None,
        }
    }

    /// One value per channel, `n` of them: a scalar (or one-element list) repeated.
    fn expand(&self, n: usize) -> Vec<T> {
        match self {
            PerChannel::One(x) => vec![x.clone(); n],
            PerChannel::List(v) if v.len() == 1 => vec![v[0].clone(); n],
            PerChannel::List(v) => v.clone(),
        }
    }

    fn values(&self) -> &[T] {
        match self {
            PerChannel::One(x) => std::slice::from_ref(x),
            PerChannel::List(v) => v,
        }
    }

    fn len(&self) -> Option<usize> {
        match self {
            PerChannel::One(_) => None,
            PerChannel::List(v) => Some(v.len()),
        }
    }
}

/// A number or a non-empty list of numbers, each positive and finite.
pub(crate) fn positive_f64s(p: &Params, name: &str) -> Result<PerChannel<f64>> {
    let v = p.raw(name);
    let bad = || {
        ModelError::invalid(
            p.owner(),
            name,
            format!("expected a positive number or a non-empty list of them (one per output channel), got {v}"),
        )
    };
    let out = match &v {
        Value::Number(x) => PerChannel::One(x.as_f64().ok_or_else(bad)?),
        Value::Array(a) if !a.is_empty() => PerChannel::List(
            a.iter()
                .map(|x| x.as_f64().ok_or_else(bad))
                .collect::<Result<_>>()?,
        ),
        _ => return Err(bad()),
    };
    if let Some(x) = out.values().iter().find(|x| !(**x > 0.0 && x.is_finite())) {
        return Err(ModelError::invalid(
            p.owner(),
            name,
            format!("must be positive, got {x}"),
        ));
    }
    Ok(out)
}

/// A bool or a non-empty list of bools.
pub(crate) fn bools(p: &Params, name: &str) -> Result<PerChannel<bool>> {
    let v = p.raw(name);
    let bad = || {
        ModelError::invalid(
            p.owner(),
            name,
            format!("expected true, false or a non-empty list of them (one per output channel), got {v}"),
        )
    };
    match &v {
        Value::Bool(b) => Ok(PerChannel::One(*b)),
        Value::Array(a) if !a.is_empty() => a
            .iter()
            .map(|x| x.as_bool().ok_or_else(bad))
            .collect::<Result<_>>()
            .map(PerChannel::List),
        _ => Err(bad()),
    }
}

/// `out_channels`: a positive integer, or null for "inferred".
fn explicit_out_channels(p: &Params) -> Result<Option<usize>> {
    match p.raw("out_channels") {
        Value::Null => Ok(None),
        _ => p.positive_usize("out_channels").map(Some),
    }
}

/// Where the number of channels came from, for messages.
struct Count {
    n: usize,
    from: &'static str,
}

impl Count {
    fn mismatch(&self, p: &Params, name: &str, k: usize) -> ModelError {
        ModelError::invalid(
            p.owner(),
            name,
            format!(
                "has {k} values but {} gives {} output channel(s); per-channel lists must have one value per output channel, or give a single value (as in plenoptic)",
                self.from, self.n
            ),
        )
    }

    /// A list of standard deviations must have one value per channel (plenoptic does not
    /// repeat a one-element list of them).
    fn check_list<T: Clone>(&self, p: &Params, name: &str, values: &PerChannel<T>) -> Result<()> {
        match values.len() {
            Some(k) if k != self.n => Err(self.mismatch(p, name, k)),
            _ => Ok(()),
        }
    }

    /// A list of signs must have one value per channel, or one for all.
    fn check_signs(&self, p: &Params, values: &PerChannel<bool>) -> Result<()> {
        match values.count() {
            Some(k) if k != self.n => Err(self.mismatch(p, "on_center", k)),
            _ => Ok(()),
        }
    }
}

/// The per-channel standard deviations of `gaussian` (plenoptic's `Gaussian`):
/// `out_channels` if given, else the length of a `std` list, else 1.
pub(crate) fn gaussian_stds(p: &Params) -> Result<Vec<f64>> {
    let std = positive_f64s(p, "std")?;
    let count = match explicit_out_channels(p)? {
        Some(n) => Count {
            n,
            from: "out_channels",
        },
        None => Count {
            n: std.len().unwrap_or(1),
            from: "std",
        },
    };
    count.check_list(p, "std", &std)?;
    Ok(std.expand(count.n))
}

/// `center_surround`'s channels (plenoptic's `CenterSurround`): the signs (`on_center`) and
/// the centre and surround standard deviations, one per output channel. The number of
/// channels is `out_channels` if given, else the length of an `on_center` list, else the
/// length of a `center_std` list, else 1; `surround_std` must then agree.
pub(crate) struct CenterSurroundChannels {
    pub on_center: Vec<bool>,
    pub center_std: Vec<f64>,
    pub surround_std: Vec<f64>,
}

pub(crate) fn center_surround_channels(p: &Params) -> Result<CenterSurroundChannels> {
    let on = bools(p, "on_center")?;
    let center = positive_f64s(p, "center_std")?;
    let surround = positive_f64s(p, "surround_std")?;
    let count = match (explicit_out_channels(p)?, on.count(), center.len()) {
        (Some(n), _, _) => Count {
            n,
            from: "out_channels",
        },
        (None, Some(n), _) => Count {
            n,
            from: "on_center",
        },
        (None, None, Some(n)) => Count {
            n,
            from: "center_std",
        },
        (None, None, None) => Count {
            n: 1,
            from: "center_std (a single number)",
        },
    };
    // plenoptic checks center_std first, then surround_std, then on_center.
    count.check_list(p, "center_std", &center)?;
    count.check_list(p, "surround_std", &surround)?;
    count.check_signs(p, &on)?;
    Ok(CenterSurroundChannels {
        on_center: on.expand(count.n),
        center_std: center.expand(count.n),
        surround_std: surround.expand(count.n),
    })
}

/// The number of output channels a spec resolves to, for the models whose `out_channels`
/// may be inferred; `None` for other models. What a resolved spec records, so that
/// `{std = [1, 2]}` and `{std = [1, 2], out_channels = 2}` are the same task.
pub(crate) fn inferred_out_channels(name: &str, p: &Params) -> Result<Option<usize>> {
    Ok(match name {
        "gaussian" => Some(gaussian_stds(p)?.len()),
        "center_surround" => Some(center_surround_channels(p)?.on_center.len()),
        _ => None,
    })
}
