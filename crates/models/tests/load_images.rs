//! Images load as plenoptic's `load_images(paths, as_gray)` loads them: every file of
//! tests/data/load_images (scripts/gen_load_images.py, plenoptic 1.1.0) — gray, RGB and RGBA
//! PNG (8 and 16 bit, opaque and half-transparent) and PGM — with `as_gray` true (colour to
//! one channel by skimage's rgb2gray, alpha composited onto white first) and false (gray
//! repeated into three channels, colour and alpha kept), bit for bit up to float32 rounding;
//! 16-bit colour as plenoptic reads it through Pillow (8 bits), a 16-bit PGM scaled by 1/65535
//! where plenoptic divides by 2^31 - 1; JPEG (colour 4:2:0 and gray) within 3/255 of
//! plenoptic's libjpeg decoding, 0.5/255 on average.
use synthsweep_testkit_tch::models as common;

use common::allclose;
use std::path::{Path, PathBuf};
use synthsweep_models::image_io::{load_image, load_image_with, png_bytes};
use tch::Tensor;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/load_images")
}

#[test]
fn files_load_as_plenoptic_loads_them() {
    let (meta, arrays) = common::expected_data(&data_dir());
    let mut checked = 0;
    let mut failures = Vec::new();
    for (name, entry) in meta["files"].as_object().unwrap() {
        let path = data_dir().join(name);
        for (as_gray, suffix) in [(true, "gray"), (false, "color")] {
            let got = load_image_with(&path, as_gray).unwrap();
            let Some(want) = arrays.get(&format!("{}__{suffix}", name.replace('.', "_"))) else {
                // plenoptic cannot read a gray+alpha file as gray; synthsweep composites it
                // onto white as it does RGBA (checked below).
                assert!(entry[format!("{suffix}_error")].is_string(), "{name}");
                continue;
            };
            let want = if name == "gray16.pgm" {
                // plenoptic (through Pillow) divides a 16-bit PGM by 2^31 - 1; synthsweep by
                // 65535, as for a 16-bit gray PNG (README, parity): that scale is the only
                // difference.
                &(want * (2147483647.0 / 65535.0))
            } else {
                want
            };
            if got.size() != want.size() {
                failures.push(format!(
                    "{name} as_gray={as_gray}: shape {:?}, plenoptic {:?}",
                    got.size(),
                    want.size()
                ));
                continue;
            }
            if entry["format"] == "jpeg" {
                // plenoptic decodes JPEG with libjpeg (through Pillow), synthsweep with the
                // image crate's decoder: the IDCT and chroma upsampling round differently, a
                // few 1/255 steps at most (README, parity).
                let step = 1.0 / 255.0;
                if let Err(e) = allclose(&got, want, 3.0 * step + 1e-6, 0.0) {
                    failures.push(format!("{name} as_gray={as_gray}: {e}"));
                }
                let mean = (&got - want)
                    .abs()
                    .mean(tch::Kind::Double)
                    .double_value(&[]);
                if mean > 0.5 * step {
                    failures.push(format!(
                        "{name} as_gray={as_gray}: mean |diff| {} steps of 1/255",
                        mean / step
                    ));
                }
            } else if let Err(e) = allclose(&got, want, 0.0, 1.2e-7) {
                // Float32 rounding of the same float64 value: equal, allowing one ulp.
                failures.push(format!("{name} as_gray={as_gray}: {e}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 25, "{checked}");
}

#[test]
fn half_transparent_pixel_is_composited_onto_white() {
    // (200, 100, 50) at alpha 128/255: the value the issue quotes from plenoptic.
    let t = load_image(&data_dir().join("rgba8.png")).unwrap();
    assert!((t.double_value(&[0, 0, 0, 2]) - 0.7296203).abs() < 1e-6);
    let color = load_image_with(&data_dir().join("rgba8.png"), false).unwrap();
    assert_eq!(
        color.size()[1],
        4,
        "as_gray=false keeps alpha as plenoptic does"
    );
}

#[test]
fn gray_alpha_as_gray_equals_the_same_pixels_as_rgba() {
    let la = load_image_with(&data_dir().join("gray_alpha8.png"), false).unwrap();
    assert_eq!(la.size()[1], 2);
    let (g, a) = (la.get(0).get(0), la.get(0).get(1));
    let rgba = Tensor::stack(&[&g, &g, &g, &a], 0).unsqueeze(0);
    // Write those pixels as an RGBA PNG and load it the way plenoptic can.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("same.png");
    std::fs::write(&p, png_bytes(&rgba).unwrap()).unwrap();
    let want = load_image(&p).unwrap();
    let got = load_image(&data_dir().join("gray_alpha8.png")).unwrap();
    assert!(got.equal(&want));
}
