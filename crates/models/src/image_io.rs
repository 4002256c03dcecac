//! Image files in and out, as plenoptic's `load_images(paths, as_gray)` reads them: PGM, PNG
//! and JPEG (gray, gray+alpha, RGB or RGBA; 8 or 16 bit) become NCHW float32 tensors in
//! [0, 1]. With `as_gray` (plenoptic's default) colour becomes one gray channel by skimage's
//! `rgb2gray` weights, after compositing any alpha onto white (`rgba2rgb`); without it a
//! gray file becomes three equal channels and every other file keeps its channels (RGBA
//! keeps alpha as a fourth). Tensors become 8-bit PNGs (clamped, rounded).
use crate::error::{ModelError, Result};
use image::{DynamicImage, ImageFormat};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

fn img_err(path: &Path, msg: impl Into<String>) -> ModelError {
    ModelError::Image {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// skimage's `rgb2gray` weights (ITU-R BT.709 luma), red, green, blue.
pub const RGB2GRAY: [f64; 3] = [0.2125, 0.7154, 0.0721];

/// Loads one image as plenoptic's `load_images(path)` does (`as_gray=True`, its default):
/// a (1, 1, H, W) float32 tensor in [0, 1]. See [`load_image_with`].
pub fn load_image(path: &Path) -> Result<Tensor> {
    load_image_with(path, true)
}

/// Loads one image as plenoptic's `load_images(path, as_gray)`: a (1, C, H, W) float32
/// tensor in [0, 1], every value computed in float64 and rounded once (an 8-bit value k
/// becomes exactly `float32(k / 255)`, a 16-bit gray one `float32(k / 65535)`; 16-bit
/// colour is read as its high bytes, as plenoptic reads it through Pillow).
///
/// `as_gray`: C = 1; colour is `0.2125 R + 0.7154 G + 0.0721 B`, and an alpha channel is
/// first composited onto white (`(1 - α) + α·c`, clipped to [0, 1]). plenoptic cannot read a
/// gray+alpha file this way; it is composited the same way (as the same pixels stored as
/// RGBA would be). Not `as_gray`: a gray file gives C = 3 equal channels, gray+alpha 2, RGB
/// 3, RGBA 4 (alpha kept as a channel), as in plenoptic.
///
/// # Errors
/// [`ModelError::Image`] naming the file when it cannot be read or decoded, or is not a
/// PGM, PPM, PNG or JPEG.
pub fn load_image_with(path: &Path, as_gray: bool) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| img_err(path, format!("cannot read: {e}")))?;
    decode_image_with(&bytes, path, as_gray)
}

/// Decodes image bytes with plenoptic's default `as_gray = true`; `path` is only used in
/// messages and to guess the format. See [`load_image_with`].
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<Tensor> {
    decode_image_with(bytes, path, true)
}

/// Decodes image bytes as [`load_image_with`] loads a file.
///
/// # Errors
/// As [`load_image_with`].
pub fn decode_image_with(bytes: &[u8], path: &Path, as_gray: bool) -> Result<Tensor> {
    let format = image::guess_format(bytes)
        .or_else(|_| ImageFormat::from_path(path))
        .map_err(|_| img_err(path, "unknown image format; expected PGM, PPM, PNG or JPEG"))?;
    if !matches!(
        format,
        ImageFormat::Pnm | ImageFormat::Png | ImageFormat::Jpeg
    ) {
        return Err(img_err(
            path,
            format!("{format:?} is not supported; expected PGM, PPM, PNG or JPEG"),
        ));
    }
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| img_err(path, format!("cannot decode: {e}")))?;
    Ok(to_tensor(&img, as_gray))
}

/// The file's samples in [0, 1] (float64, interleaved) and their channel count, as
/// plenoptic gets them from imageio (Pillow): 8-bit files and 16-bit gray files as they are
/// (k / 255, k / 65535); 16-bit files with colour or alpha reduced to 8 bits by Pillow (the
/// high byte, k >> 8, over 255), a 16-bit gray+alpha file becoming RGBA. (Pillow opens a
/// 16-bit PGM as 32-bit integers, so plenoptic scales it by 1 / (2^31 - 1); synthsweep
/// reads k / 65535 instead, as for a 16-bit gray PNG: see the README's parity section.)
fn samples(img: &DynamicImage) -> (Vec<f64>, usize) {
    let color = img.color();
    let c = color.channel_count() as usize;
    let sixteen = color.bytes_per_pixel() as usize / c > 1;
    let high_byte = |k: u16| f64::from(k >> 8) / 255.0;
    match (c, sixteen) {
        (1, false) => (scale(img.to_luma8().into_raw(), 255.0), 1),
        (1, true) => (scale(img.to_luma16().into_raw(), 65535.0), 1),
        (2, false) => (scale(img.to_luma_alpha8().into_raw(), 255.0), 2),
        (2, true) => {
            let la = img.to_luma_alpha16().into_raw();
            let rgba = la
                .chunks_exact(2)
                .flat_map(|px| [px[0], px[0], px[0], px[1]])
                .map(high_byte);
            (rgba.collect(), 4)
        }
        (3, false) => (scale(img.to_rgb8().into_raw(), 255.0), 3),
        (3, true) => (
            img.to_rgb16()
                .into_raw()
                .into_iter()
                .map(high_byte)
                .collect(),
            3,
        ),
        (_, false) => (scale(img.to_rgba8().into_raw(), 255.0), 4),
        (_, true) => (
            img.to_rgba16()
                .into_raw()
                .into_iter()
                .map(high_byte)
                .collect(),
            4,
        ),
    }
}

fn scale<T: Into<f64>>(raw: Vec<T>, max: f64) -> Vec<f64> {
    raw.into_iter().map(|k| k.into() / max).collect()
}

/// skimage's `rgb2gray` of one pixel: `rgb @ [0.2125, 0.7154, 0.0721]` in float64.
fn rgb2gray(r: f64, g: f64, b: f64) -> f64 {
    r * RGB2GRAY[0] + g * RGB2GRAY[1] + b * RGB2GRAY[2]
}

/// skimage's `rgba2rgb` of one sample onto a white background.
fn onto_white(c: f64, alpha: f64) -> f64 {
    ((1.0 - alpha) + alpha * c).clamp(0.0, 1.0)
}

fn to_tensor(img: &DynamicImage, as_gray: bool) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let (v, c) = samples(img);
    let (planes, out_c): (Vec<f64>, i64) = if as_gray {
        let gray = v.chunks_exact(c).map(|px| match *px {
            [g] => g,
            [g, a] => {
                let g = onto_white(g, a);
                rgb2gray(g, g, g)
            }
            [r, g, b] => rgb2gray(r, g, b),
            [r, g, b, a, ..] => rgb2gray(onto_white(r, a), onto_white(g, a), onto_white(b, a)),
            [] => unreachable!("chunks of c >= 1 samples"),
        });
        (gray.collect(), 1)
    } else if c == 1 {
        // plenoptic repeats a gray image into three channels.
        (v.iter().flat_map(|&g| [g, g, g]).collect(), 3)
    } else {
        (v, c as i64)
    };
    let data: Vec<f32> = planes.into_iter().map(|x| x as f32).collect();
    Tensor::from_slice(&data)
        .view([h, w, out_c])
        .permute([2, 0, 1])
        .contiguous()
        .unsqueeze(0)
}

/// Loads several images of one size and channel count as a batch (N, C, H, W), each as
/// [`load_image_with`] loads it.
///
/// # Errors
/// As [`load_image_with`], and when two images differ in size or channel count.
pub fn load_batch(paths: &[PathBuf], as_gray: bool) -> Result<Tensor> {
    let mut imgs = Vec::with_capacity(paths.len());
    for p in paths {
        let t = load_image_with(p, as_gray)?;
        if let Some(first) = imgs.first() {
            let (a, b): (&Tensor, &Tensor) = (first, &t);
            if a.size() != b.size() {
                return Err(img_err(p, format!(
                    "has shape {:?} (1, C, H, W) but {} has {:?}; a batch needs images of one size and channel count",
                    b.size(), paths[0].display(), a.size()
                )));
            }
        }
        imgs.push(t);
    }
    if imgs.is_empty() {
        return Err(ModelError::Spec("no image given".into()));
    }
    Ok(Tensor::cat(&imgs, 0))
}

/// 8-bit pixels of a (C, H, W) or (1, C, H, W) tensor, clamped to [0, 1] and rounded.
fn to_u8(t: &Tensor) -> (Vec<u8>, i64, i64, i64) {
    let t = if t.dim() == 4 {
        t.get(0)
    } else {
        t.shallow_clone()
    };
    let s = t.size();
    let (c, h, w) = (s[0], s[1], s[2]);
    let px = (t
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(0.0, 1.0)
        * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([1, 2, 0])
        .contiguous();
    let v: Vec<u8> = Vec::try_from(px.view([-1])).expect("u8 tensor to vec");
    (v, c, h, w)
}

/// Encodes a (C, H, W) or (1, C, H, W) tensor as 8-bit PNG bytes: C = 1 gray, 2 gray+alpha,
/// 3 RGB, 4 RGBA (the channel counts [`load_image_with`] produces).
///
/// # Errors
/// [`ModelError::InputShape`] for any other channel count.
pub fn png_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let (v, c, h, w) = to_u8(t);
    let (w, h) = (w as u32, h as u32);
    let img = match c {
        1 => DynamicImage::ImageLuma8(image::GrayImage::from_raw(w, h, v).expect("size")),
        2 => DynamicImage::ImageLumaA8(image::GrayAlphaImage::from_raw(w, h, v).expect("size")),
        3 => DynamicImage::ImageRgb8(image::RgbImage::from_raw(w, h, v).expect("size")),
        4 => DynamicImage::ImageRgba8(image::RgbaImage::from_raw(w, h, v).expect("size")),
        _ => {
            return Err(ModelError::shape(
                "png",
                &t.size(),
                "PNG needs 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels",
            ));
        }
    };
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ModelError::External(Box::new(e)))?;
    Ok(out.into_inner())
}

/// Writes a tensor as an 8-bit PNG file.
pub fn save_png(t: &Tensor, path: &Path) -> Result<()> {
    let bytes = png_bytes(t)?;
    std::fs::write(path, bytes).map_err(|e| img_err(path, format!("cannot write: {e}")))
}
