//! Images of the `images` table as files: PNG (clipped to [0, 1], or rescaled for signed
//! images such as eigendistortions and differences) and GIF animations, with the `image`
//! crate's encoders.

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, GrayImage, ImageFormat, RgbImage};
use synthsweep_store::ImageRow;

use crate::error::{ReportError, Result};

/// An image's float pixels, channel-major (C, H, W) as the table stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pixels {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

/// How values map to the 0..255 display range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// [0, 1] clipped (images).
    Unit,
    /// [-m, m] with m the largest magnitude (signed: differences, eigendistortions), 0 gray.
    Symmetric,
}

impl Pixels {
    /// The pixels of a row; `None` when it has only a PNG or its length disagrees with its
    /// shape.
    pub fn of(row: &ImageRow) -> Option<Pixels> {
        let data = row.pixels.clone()?;
        let (c, h, w) = (
            row.channels.max(0) as usize,
            row.height.max(0) as usize,
            row.width.max(0) as usize,
        );
        (data.len() == c * h * w && c > 0).then_some(Pixels {
            channels: c,
            height: h,
            width: w,
            data,
        })
    }

    /// Element-wise `self + alpha * other` (same shape), or `None` for different shapes.
    pub fn plus(&self, alpha: f32, other: &Pixels) -> Option<Pixels> {
        (self.data.len() == other.data.len()).then(|| Pixels {
            data: self
                .data
                .iter()
                .zip(&other.data)
                .map(|(a, b)| a + alpha * b)
                .collect(),
            ..*self
        })
    }

    /// The display image: gray for one channel, RGB for three, the first channel otherwise.
    pub fn to_dynamic(&self, range: Range) -> DynamicImage {
        let m = match range {
            Range::Unit => 1.0,
            Range::Symmetric => self
                .data
                .iter()
                .fold(0f32, |a, v| if v.is_finite() { a.max(v.abs()) } else { a })
                .max(f32::MIN_POSITIVE),
        };
        let to8 = |v: f32| -> u8 {
            let x = match range {
                Range::Unit => v,
                Range::Symmetric => 0.5 + 0.5 * v / m,
            };
            (x.clamp(0.0, 1.0) * 255.0).round() as u8
        };
        let (h, w) = (self.height, self.width);
        let plane = h * w;
        if self.channels == 3 {
            let mut img = RgbImage::new(w as u32, h as u32);
            for (i, p) in img.pixels_mut().enumerate() {
                p.0 = [
                    to8(self.data[i]),
                    to8(self.data[plane + i]),
                    to8(self.data[2 * plane + i]),
                ];
            }
            DynamicImage::ImageRgb8(img)
        } else {
            let v: Vec<u8> = self.data[..plane].iter().map(|&v| to8(v)).collect();
            DynamicImage::ImageLuma8(GrayImage::from_raw(w as u32, h as u32, v).unwrap_or_default())
        }
    }

    /// PNG bytes of [`Pixels::to_dynamic`].
    ///
    /// # Errors
    ///
    /// The encoder's failure.
    pub fn png(&self, range: Range) -> Result<Vec<u8>> {
        let mut out = Cursor::new(Vec::new());
        self.to_dynamic(range)
            .write_to(&mut out, ImageFormat::Png)
            .map_err(|e| ReportError::figure("png")(e.to_string()))?;
        Ok(out.into_inner())
    }
}

/// Writes `frames` as a looping GIF at `path`, `delay_ms` per frame (as plenoptic's
/// `animate`, one frame per stored iteration), with the `gif` crate's encoder (the one the
/// `image` crate uses).
///
/// # Errors
///
/// The encoder's or the file's failure; frames of different sizes or over 65535 px.
pub fn write_gif(path: &Path, frames: &[Pixels], delay_ms: u32) -> Result<()> {
    let fail = |e: String| ReportError::figure("gif")(e);
    let Some(first) = frames.first() else {
        return Ok(());
    };
    let (w, h) = (
        u16::try_from(first.width).map_err(|e| fail(e.to_string()))?,
        u16::try_from(first.height).map_err(|e| fail(e.to_string()))?,
    );
    let file = std::fs::File::create(path).map_err(ReportError::io(path))?;
    let mut enc = gif::Encoder::new(std::io::BufWriter::new(file), w, h, &[])
        .map_err(|e| fail(e.to_string()))?;
    enc.set_repeat(gif::Repeat::Infinite)
        .map_err(|e| fail(e.to_string()))?;
    for p in frames {
        if (p.width, p.height) != (first.width, first.height) {
            return Err(fail("frames of different sizes".into()));
        }
        let rgb = p.to_dynamic(Range::Unit).to_rgb8();
        let mut frame = gif::Frame::from_rgb_speed(w, h, rgb.as_raw(), 10);
        frame.delay = u16::try_from(delay_ms / 10).unwrap_or(u16::MAX);
        enc.write_frame(&frame).map_err(|e| fail(e.to_string()))?;
    }
    Ok(())
}

/// Counts of `values` in `bins` equal bins over [lo, hi] (values outside go to the end
/// bins, as plenoptic's histograms show values outside the allowed range at the edges).
pub fn histogram(values: &[f32], lo: f32, hi: f32, bins: usize) -> Vec<usize> {
    let mut out = vec![0usize; bins.max(1)];
    let width = (hi - lo) / bins.max(1) as f32;
    for &v in values {
        if !v.is_finite() {
            continue;
        }
        let i = if width > 0.0 {
            ((v - lo) / width).floor()
        } else {
            0.0
        };
        out[(i.max(0.0) as usize).min(bins.max(1) - 1)] += 1;
    }
    out
}

/// The deviation of each frame from the straight pixel-space line between the first and
/// last frame: `(position along the line, distance from it)`, both in units of the line's
/// length (0 and 0 for the first frame, 1 and 0 for the last). A pixel fade lies on the
/// line: its points are `(t/(n-1), 0)`.
pub fn deviation_from_line(frames: &[Pixels]) -> Vec<(f64, f64)> {
    let (Some(a), Some(b)) = (frames.first(), frames.last()) else {
        return Vec::new();
    };
    let d: Vec<f64> = b
        .data
        .iter()
        .zip(&a.data)
        .map(|(y, x)| f64::from(*y) - f64::from(*x))
        .collect();
    let dd: f64 = d.iter().map(|v| v * v).sum();
    if dd == 0.0 {
        return Vec::new();
    }
    frames
        .iter()
        .map(|f| {
            let x: Vec<f64> = f
                .data
                .iter()
                .zip(&a.data)
                .map(|(y, x)| f64::from(*y) - f64::from(*x))
                .collect();
            let proj = x.iter().zip(&d).map(|(u, v)| u * v).sum::<f64>() / dd;
            let off: f64 = x
                .iter()
                .zip(&d)
                .map(|(u, v)| (u - proj * v).powi(2))
                .sum::<f64>()
                .sqrt();
            (proj, off / dd.sqrt())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(data: Vec<f32>) -> Pixels {
        Pixels {
            channels: 1,
            height: 1,
            width: data.len(),
            data,
        }
    }

    #[test]
    fn display_ranges_and_histogram() {
        let p = px(vec![-0.5, 0.0, 0.5, 2.0]);
        let g = p.to_dynamic(Range::Unit).to_luma8();
        assert_eq!(g.as_raw(), &[0, 0, 128, 255]);
        let s = p.to_dynamic(Range::Symmetric).to_luma8();
        assert_eq!(s.as_raw(), &[96, 128, 159, 255]);
        assert_eq!(histogram(&p.data, 0.0, 1.0, 2), vec![2, 2]);
        assert_eq!(p.plus(2.0, &p).unwrap().data, vec![-1.5, 0.0, 1.5, 6.0]);
    }

    #[test]
    fn a_fade_lies_on_the_line_and_a_detour_does_not() {
        let fade: Vec<Pixels> = (0..5)
            .map(|t| px(vec![t as f32 / 4.0, 1.0 - t as f32 / 4.0]))
            .collect();
        for (i, (p, d)) in deviation_from_line(&fade).into_iter().enumerate() {
            assert!((p - i as f64 / 4.0).abs() < 1e-6 && d.abs() < 1e-6);
        }
        let bent = vec![px(vec![0.0, 0.0]), px(vec![0.5, 0.5]), px(vec![1.0, 0.0])];
        let dev = deviation_from_line(&bent);
        assert!((dev[1].0 - 0.5).abs() < 1e-6 && (dev[1].1 - 0.5).abs() < 1e-6);
    }
}
