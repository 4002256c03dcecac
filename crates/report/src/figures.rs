//! Plots as SVG text with `plotters`: line charts (losses, with vertical markers for
//! coarse-to-fine scale switches), categorical strip plots (a value against one grid axis),
//! histograms and point charts. Text is measured with plotters' built-in estimate, so no
//! font file is needed and the SVG names a generic `sans-serif` family.

use plotters::prelude::*;

use crate::error::{ReportError, Result};

/// Size of a chart in SVG pixels.
pub const SIZE: (u32, u32) = (560, 340);

/// The palette (matplotlib's C0..C9, as plenoptic's figures use).
pub const COLORS: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// One line of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Index into [`COLORS`].
    pub color: usize,
    /// Dashed (plenoptic draws MAD's "min" syntheses dashed).
    pub dashed: bool,
}

/// A line chart's axes and extras.
#[derive(Debug, Clone, Default)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Plot log10 of y (all values must be positive; others are dropped), with ticks
    /// labelled in the original units.
    pub log_y: bool,
    /// Vertical markers: `(x, label)`.
    pub markers: Vec<(f64, String)>,
    /// Also draw a dot at each point (short series).
    pub dots: bool,
}

/// The legend of a chart's named series, the same in every chart: translucent white, a
/// thin grey border, 12 px labels, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    title: &str,
) -> Result<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 12))
        .position(position)
        .draw()
        .map_err(|x| err(title)(x.to_string()))
}

fn err(what: &str) -> impl Fn(String) -> ReportError + '_ {
    move |why| ReportError::figure(what)(why)
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in vals.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return None;
    }
    if hi - lo < 1e-12 * hi.abs().max(1e-12) {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.05 };
        return Some((lo - pad, hi + pad));
    }
    let pad = (hi - lo) * 0.05;
    Some((lo - pad, hi + pad))
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e4).contains(&a) {
        format!("{v:.1e}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Draws `series` as an SVG line chart. A chart with no finite point says so in its title.
///
/// # Errors
///
/// A drawing failure (plotters' message).
pub fn line_chart(c: &LineChart<'_>, series: &[Series]) -> Result<String> {
    let e = err(c.title);
    let tr = |y: f64| if c.log_y { y.log10() } else { y };
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            points: s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite() && (!c.log_y || *y > 0.0))
                .map(|&(x, y)| (x, tr(y)))
                .collect(),
            ..s.clone()
        })
        .collect();
    let xs = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let (Some((x0, x1)), Some((y0, y1))) = (xs, ys) else {
            root.draw(&Text::new(
                format!("{}: no values recorded", c.title),
                (20, SIZE.1 as i32 / 2),
                ("sans-serif", 15),
            ))
            .map_err(|x| e(x.to_string()))?;
            root.present().map_err(|x| e(x.to_string()))?;
            drop(root);
            return Ok(svg);
        };
        let mut chart = ChartBuilder::on(&root)
            .caption(c.title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(38)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|x| e(x.to_string()))?;
        let log = c.log_y;
        let yfmt = move |v: &f64| {
            if log {
                fmt_num(10f64.powf(*v))
            } else {
                fmt_num(*v)
            }
        };
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_desc(c.x_label)
            .y_desc(if c.log_y {
                format!("{} (log scale)", c.y_label)
            } else {
                c.y_label.to_string()
            })
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&yfmt)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        for (x, label) in &c.markers {
            let style = ShapeStyle::from(&BLACK.mix(0.5)).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(vec![(*x, y0), (*x, y1)], 4, 3, style))
                .map_err(|x| e(x.to_string()))?;
            chart
                .draw_series(std::iter::once(Text::new(
                    label.clone(),
                    (*x, y1),
                    ("sans-serif", 11),
                )))
                .map_err(|x| e(x.to_string()))?;
        }
        let named = series.iter().any(|s| !s.name.is_empty());
        for s in &series {
            let color = COLORS[s.color % COLORS.len()];
            let style = ShapeStyle::from(&color).stroke_width(2);
            let drawn = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(s.points.clone(), 6, 4, style))
                    .map_err(|x| e(x.to_string()))?
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), style))
                    .map_err(|x| e(x.to_string()))?
            };
            if !s.name.is_empty() {
                let dashed = s.dashed;
                drawn.label(s.name.clone()).legend(move |(x, y)| {
                    let st = ShapeStyle::from(&color).stroke_width(2);
                    if dashed {
                        PathElement::new(vec![(x, y), (x + 8, y)], st)
                    } else {
                        PathElement::new(vec![(x, y), (x + 20, y)], st)
                    }
                });
            }
            if c.dots {
                chart
                    .draw_series(
                        s.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, ShapeStyle::from(&color).filled())),
                    )
                    .map_err(|x| e(x.to_string()))?;
            }
        }
        if named {
            draw_legend(&mut chart, SeriesLabelPosition::UpperRight, c.title)?;
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}

/// A value against one categorical axis: one column of dots per category (jittered a
/// little so equal values stay visible), colored by `group` (e.g. MAD's min/max).
///
/// # Errors
///
/// A drawing failure.
pub fn strip_chart(
    title: &str,
    axis: &str,
    y_label: &str,
    categories: &[String],
    points: &[(usize, f64, usize)],
    groups: &[String],
) -> Result<String> {
    let e = err(title);
    let ys = range(points.iter().map(|p| p.1)).unwrap_or((0.0, 1.0));
    let n = categories.len().max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), ys.0..ys.1)
            .map_err(|x| e(x.to_string()))?;
        let cats = categories.to_vec();
        let xfmt = move |v: &f64| {
            let i = v.round();
            if (v - i).abs() > 0.01 || i < 0.0 {
                return String::new();
            }
            cats.get(i as usize)
                .map(|s| {
                    if s.chars().count() > 18 {
                        format!("{}…", s.chars().take(17).collect::<String>())
                    } else {
                        s.clone()
                    }
                })
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_desc(axis)
            .y_desc(y_label)
            .x_labels(n.min(12) * 2 + 1)
            .x_label_formatter(&xfmt)
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(("sans-serif", 12))
            .disable_x_mesh()
            .draw()
            .map_err(|x| e(x.to_string()))?;
        for (g, name) in groups.iter().enumerate() {
            let color = COLORS[g % COLORS.len()];
            let mine: Vec<(f64, f64)> = points
                .iter()
                .enumerate()
                .filter(|(_, p)| p.2 == g && p.1.is_finite())
                .map(|(i, p)| {
                    let jitter = ((i * 7919) % 21) as f64 / 20.0 - 0.5;
                    (p.0 as f64 + 0.3 * jitter, p.1)
                })
                .collect();
            let drawn = chart
                .draw_series(
                    mine.iter()
                        .map(|&p| Circle::new(p, 4, ShapeStyle::from(&color.mix(0.75)).filled())),
                )
                .map_err(|x| e(x.to_string()))?;
            if !name.is_empty() {
                drawn
                    .label(name.clone())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
            }
        }
        if groups.iter().any(|g| !g.is_empty()) {
            draw_legend(&mut chart, SeriesLabelPosition::MiddleRight, title)?;
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}

/// Histograms of several series over the same bins `[lo, hi]` as step outlines (plenoptic's
/// `plot_pixel_values`: the reference and the synthesized image's pixels).
///
/// # Errors
///
/// A drawing failure.
pub fn histogram_chart(
    title: &str,
    x_label: &str,
    lo: f64,
    hi: f64,
    series: &[(String, Vec<usize>)],
) -> Result<String> {
    let mut lines = Vec::new();
    for (i, (name, counts)) in series.iter().enumerate() {
        let w = (hi - lo) / counts.len().max(1) as f64;
        let mut pts = Vec::new();
        for (b, &c) in counts.iter().enumerate() {
            let x = lo + w * b as f64;
            pts.push((x, c as f64));
            pts.push((x + w, c as f64));
        }
        lines.push(Series {
            name: name.clone(),
            points: pts,
            color: i,
            dashed: false,
        });
    }
    line_chart(
        &LineChart {
            title,
            x_label,
            y_label: "pixel count",
            ..Default::default()
        },
        &lines,
    )
}

/// A histogram of durations (or any positive values) with `bins` bars.
///
/// # Errors
///
/// A drawing failure.
pub fn bar_histogram(title: &str, x_label: &str, values: &[f64], bins: usize) -> Result<String> {
    let bins = Bins::new(range(values.iter().copied()), bins);
    let mut counts = vec![0usize; bins.n];
    for &v in values.iter().filter(|v| v.is_finite()) {
        counts[bins.of(v)] += 1;
    }
    bar_chart(title, x_label, &bins, &counts)
}

/// The `n` equal bars of a histogram of non-negative values: the values' range (`None`
/// when there is none) padded by 5 % and starting at 0 or above.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

impl Bins {
    /// Bars over `[min, max]` of the values (as [`range`] pads it).
    pub fn new(min_max: Option<(f64, f64)>, n: usize) -> Bins {
        let (lo, hi) = min_max
            .and_then(|(a, b)| range([a, b].into_iter()))
            .unwrap_or((0.0, 1.0));
        Bins {
            lo: lo.max(0.0),
            hi,
            n: n.max(1),
        }
    }

    /// The bar of a finite value `v`.
    pub fn of(&self, v: f64) -> usize {
        let w = (self.hi - self.lo) / self.n as f64;
        (((v - self.lo) / w).floor().max(0.0) as usize).min(self.n - 1)
    }
}

/// [`bar_histogram`] of counts already binned (`counts.len() == bins.n`), for values
/// streamed from disk.
///
/// # Errors
///
/// A drawing failure.
pub fn bar_chart(title: &str, x_label: &str, bins: &Bins, counts: &[usize]) -> Result<String> {
    let e = err(title);
    let (lo, hi) = (bins.lo, bins.hi);
    let w = (hi - lo) / bins.n as f64;
    let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.1 + 1.0;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(38)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0f64..top)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_desc(x_label)
            .y_desc("tasks")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(|x| e(x.to_string()))?;
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x = lo + w * b as f64;
                Rectangle::new([(x, 0.0), (x + w, c as f64)], COLORS[0].mix(0.8).filled())
            }))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_their_titles_and_markers() {
        let s = Series {
            name: "loss".into(),
            points: vec![(0.0, 1.0), (1.0, 0.1), (2.0, 0.01)],
            color: 0,
            dashed: false,
        };
        let svg = line_chart(
            &LineChart {
                title: "Loss",
                x_label: "iteration",
                y_label: "loss",
                log_y: true,
                markers: vec![(1.0, "scale 1".into())],
                dots: false,
            },
            &[s],
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("Loss") && svg.contains("scale 1"));
        assert!(svg.contains("(log scale)"));
        let empty = line_chart(
            &LineChart {
                title: "Nothing",
                ..Default::default()
            },
            &[],
        )
        .unwrap();
        assert!(empty.contains("no values recorded"));
        let strip = strip_chart(
            "final",
            "model",
            "loss",
            &["a".into(), "b".into()],
            &[(0, 1.0, 0), (1, 2.0, 1)],
            &["min".into(), "max".into()],
        )
        .unwrap();
        assert!(strip.contains("min") && strip.contains("max"));
        assert!(bar_histogram("d", "s", &[1.0, 2.0, 3.0], 4)
            .unwrap()
            .contains("<rect"));
    }
}
