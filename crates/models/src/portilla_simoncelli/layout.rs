//! Where each Portilla-Simoncelli statistic sits in the flat representation: its name and
//! shape, which of its values are redundant (symmetric correlations, unit diagonals), and
//! which scale each value belongs to (for coarse-to-fine synthesis).

/// The scale a statistic belongs to, as plenoptic's `PortillaSimoncelli.scales` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatScale {
    /// Pixel moments (mean, variance, skew, kurtosis, min, max): `pixel_statistics`.
    PixelStatistics,
    /// Statistics of the pyramid's residual lowpass band: `residual_lowpass`.
    ResidualLowpass,
    /// A pyramid scale, 0 = finest.
    Scale(usize),
    /// Statistics of the pyramid's residual highpass band: `residual_highpass`.
    ResidualHighpass,
}

impl StatScale {
    /// The name plenoptic uses (`pixel_statistics`, `residual_lowpass`, `0`, `1`, ..., `residual_highpass`).
    pub fn name(&self) -> String {
        match self {
            StatScale::PixelStatistics => "pixel_statistics".into(),
            StatScale::ResidualLowpass => "residual_lowpass".into(),
            StatScale::Scale(s) => s.to_string(),
            StatScale::ResidualHighpass => "residual_highpass".into(),
        }
    }

    /// Parses a name of [`StatScale::name`]; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pixel_statistics" => Some(StatScale::PixelStatistics),
            "residual_lowpass" => Some(StatScale::ResidualLowpass),
            "residual_highpass" => Some(StatScale::ResidualHighpass),
            _ => s.parse().ok().map(StatScale::Scale),
        }
    }

    /// plenoptic's `scales` list: coarse to fine.
    pub fn coarse_to_fine(n_scales: usize) -> Vec<StatScale> {
        let mut v = vec![StatScale::PixelStatistics, StatScale::ResidualLowpass];
        v.extend((0..n_scales).rev().map(StatScale::Scale));
        v.push(StatScale::ResidualHighpass);
        v
    }
}

/// One named statistic: its shape (without batch and channel) and, per value in C order,
/// whether it is kept in the flat representation and its scale.
#[derive(Debug, Clone)]
pub struct StatEntry {
    /// The statistic's name as plenoptic's `convert_to_dict` keys it, e.g. `auto_correlation_magnitude`.
    pub key: &'static str,
    /// Its shape without the batch and channel dimensions.
    pub shape: Vec<i64>,
    /// Per value (C order): kept in the flat representation (false for redundant values).
    pub necessary: Vec<bool>,
    /// Per value (C order): the scale it belongs to.
    pub scales: Vec<StatScale>,
}

/// Builds an entry whose scale is given by its last index (through `scale_of`).
fn entry(
    key: &'static str,
    shape: Vec<i64>,
    scale_of: impl Fn(usize) -> StatScale,
    keep: impl Fn(&[usize]) -> bool,
) -> StatEntry {
    let n: i64 = shape.iter().product();
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let mut necessary = Vec::with_capacity(n as usize);
    let mut scales = Vec::with_capacity(n as usize);
    let mut idx = vec![0usize; dims.len()];
    for _ in 0..n {
        necessary.push(keep(&idx));
        scales.push(scale_of(*idx.last().unwrap_or(&0)));
        for d in (0..dims.len()).rev() {
            idx[d] += 1;
            if idx[d] < dims[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    StatEntry {
        key,
        shape,
        necessary,
        scales,
    }
}

/// The statistics in the order of plenoptic's representation.
pub fn stat_entries(n_scales: usize, n_ori: usize, width: usize) -> Vec<StatEntry> {
    let (s, o, w) = (n_scales as i64, n_ori as i64, width as i64);
    let scale = StatScale::Scale;
    let with_lowpass = move |i: usize| {
        if i < n_scales {
            StatScale::Scale(i)
        } else {
            StatScale::ResidualLowpass
        }
    };
    let all = |_: &[usize]| true;
    // Auto-correlations are point-symmetric around the centre, whose value is 1: keep the
    // lower triangle (plus the first row when the width is even, as it has no mirror)
    // without the diagonal from the centre on.
    let autocorr = move |i: &[usize]| {
        (i[1] <= i[0] || (width.is_multiple_of(2) && i[0] == 0))
            && !(i[0] == i[1] && i[0] >= width / 2)
    };
    // Cross-orientation correlations are symmetric with a unit diagonal.
    let strictly_lower = |i: &[usize]| i[0] > i[1];
    vec![
        entry(
            "pixel_statistics",
            vec![6],
            |_| StatScale::PixelStatistics,
            all,
        ),
        entry(
            "auto_correlation_magnitude",
            vec![w, w, o, s],
            scale,
            autocorr,
        ),
        entry("skew_reconstructed", vec![s + 1], with_lowpass, all),
        entry("kurtosis_reconstructed", vec![s + 1], with_lowpass, all),
        entry(
            "auto_correlation_reconstructed",
            vec![w, w, s + 1],
            with_lowpass,
            autocorr,
        ),
        entry("std_reconstructed", vec![s + 1], with_lowpass, all),
        entry(
            "cross_orientation_correlation_magnitude",
            vec![o, o, s],
            scale,
            strictly_lower,
        ),
        entry("magnitude_std", vec![o, s], scale, all),
        entry(
            "cross_scale_correlation_magnitude",
            vec![o, o, s - 1],
            scale,
            all,
        ),
        entry(
            "cross_scale_correlation_real",
            vec![o, 2 * o, s - 1],
            scale,
            all,
        ),
        entry(
            "var_highpass_residual",
            vec![1],
            |_| StatScale::ResidualHighpass,
            all,
        ),
    ]
}

/// The whole layout: entries, and for the kept values their positions in the full
/// (redundant) vector and their scales.
#[derive(Debug, Clone)]
pub struct StatLayout {
    /// The statistics in representation order.
    pub entries: Vec<StatEntry>,
    /// For each value of the flat representation, its position in the full (redundant) vector.
    pub kept_positions: Vec<i64>,
    /// For each value of the flat representation, its scale.
    pub kept_scales: Vec<StatScale>,
}

impl StatLayout {
    /// The layout for `n_scales` scales, `n_ori` orientations and `width` (the spatial correlation width).
    pub fn new(n_scales: usize, n_ori: usize, width: usize) -> Self {
        let entries = stat_entries(n_scales, n_ori, width);
        let mut kept_positions = Vec::new();
        let mut kept_scales = Vec::new();
        let mut pos = 0i64;
        for e in &entries {
            for (keep, sc) in e.necessary.iter().zip(&e.scales) {
                if *keep {
                    kept_positions.push(pos);
                    kept_scales.push(*sc);
                }
                pos += 1;
            }
        }
        StatLayout {
            entries,
            kept_positions,
            kept_scales,
        }
    }

    /// Length of the full vector, redundant values included.
    pub fn full_len(&self) -> i64 {
        self.entries.iter().map(|e| e.necessary.len() as i64).sum()
    }

    /// Positions (in the flat representation) of the values that belong to `scales`.
    pub fn positions_of(&self, scales: &[StatScale]) -> Vec<i64> {
        (0..self.kept_scales.len() as i64)
            .filter(|&i| scales.contains(&self.kept_scales[i as usize]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_configuration_keeps_529_statistics() {
        assert_eq!(StatLayout::new(3, 4, 7).kept_positions.len(), 529);
    }

    #[test]
    fn even_width_keeps_first_row() {
        let e = &stat_entries(1, 2, 4)[4];
        assert_eq!(e.key, "auto_correlation_reconstructed");
        // (4, 4, 2): rows of 4 x 2 values; row 0 is kept entirely, the centre (2, 2) and
        // (3, 3) are dropped.
        let kept = |i: usize, j: usize| e.necessary[(i * 4 + j) * 2];
        assert!((0..4).all(|j| kept(0, j)));
        assert!(kept(1, 1) && !kept(1, 2) && !kept(2, 2) && !kept(3, 3) && kept(3, 2));
    }
}
