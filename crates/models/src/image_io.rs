//! Image files in and out: PGM, PNG and JPEG (grayscale or RGB, 8 or 16 bit) become NCHW
//! float tensors in [0, 1]; tensors become 8-bit PNGs (clamped, rounded).
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

/// Loads one image as a (1, C, H, W) float32 tensor in [0, 1]; C is 1 for grayscale and 3
/// for colour (an alpha channel is dropped). 8-bit value k becomes exactly `k as f32 / 255`.
pub fn load_image(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| img_err(path, format!("cannot read: {e}")))?;
    decode_image(&bytes, path)
}

/// Decodes image bytes; `path` is only used in messages and to guess the format.
pub fn decode_image(bytes: &[u8], path: &Path) -> Result<Tensor> {
    let format = image::guess_format(bytes)
        .or_else(|_| ImageFormat::from_path(path))
        .map_err(|_| img_err(path, "unknown image format; expected PGM, PNG or JPEG"))?;
    if !matches!(
        format,
        ImageFormat::Pnm | ImageFormat::Png | ImageFormat::Jpeg
    ) {
        return Err(img_err(
            path,
            format!("{format:?} is not supported; expected PGM, PNG or JPEG"),
        ));
    }
    let img = image::load_from_memory_with_format(bytes, format)
        .map_err(|e| img_err(path, format!("cannot decode: {e}")))?;
    Ok(to_tensor(img))
}

fn to_tensor(img: DynamicImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let gray = !img.color().has_color();
    let sixteen = img.color().bytes_per_pixel() / img.color().channel_count() > 1;
    let (data, c): (Vec<f32>, i64) = match (gray, sixteen) {
        (true, false) => (
            img.to_luma8()
                .into_raw()
                .into_iter()
                .map(|k| k as f32 / 255.0)
                .collect(),
            1,
        ),
        (true, true) => (
            img.to_luma16()
                .into_raw()
                .into_iter()
                .map(|k| k as f32 / 65535.0)
                .collect(),
            1,
        ),
        (false, false) => (
            img.to_rgb8()
                .into_raw()
                .into_iter()
                .map(|k| k as f32 / 255.0)
                .collect(),
            3,
        ),
        (false, true) => (
            img.to_rgb16()
                .into_raw()
                .into_iter()
                .map(|k| k as f32 / 65535.0)
                .collect(),
            3,
        ),
    };
    Tensor::from_slice(&data)
        .view([h, w, c])
        .permute([2, 0, 1])
        .contiguous()
        .unsqueeze(0)
}

/// Loads several images of one size and channel count as a batch (N, C, H, W).
pub fn load_batch(paths: &[PathBuf]) -> Result<Tensor> {
    let mut imgs = Vec::with_capacity(paths.len());
    for p in paths {
        let t = load_image(p)?;
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

/// Encodes a (C, H, W) or (1, C, H, W) tensor with C = 1 or 3 as PNG bytes.
pub fn png_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let (v, c, h, w) = to_u8(t);
    let img = match c {
        1 => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w as u32, h as u32, v).expect("size"),
        ),
        3 => {
            DynamicImage::ImageRgb8(image::RgbImage::from_raw(w as u32, h as u32, v).expect("size"))
        }
        _ => {
            return Err(ModelError::shape(
                "png",
                &t.size(),
                "PNG needs 1 or 3 channels",
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
