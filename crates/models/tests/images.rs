//! Image I/O: PGM, PNG and JPEG, grayscale and RGB, 8 and 16 bit, to NCHW floats in [0, 1];
//! PNG output clamped and rounded. (Colour, alpha and `as_gray` against plenoptic's values:
//! load_images.rs.)
use synthsweep_testkit_tch::models as common;

use image::{ImageBuffer, Luma, Rgb};
use synthsweep_models::image_io::{load_batch, load_image, load_image_with, png_bytes, save_png};
use tch::{Kind, Tensor};

#[test]
fn pgm_fixture_loads_bit_identical_to_plenoptic_floats() {
    let dir = common::models_fixtures().join("images");
    for name in ["einstein_64", "einstein_32", "einstein_256_noise"] {
        let t = load_image(&dir.join(format!("{name}.pgm"))).unwrap();
        let want = Tensor::read_npy(dir.join(format!("{name}.npy"))).unwrap();
        assert_eq!(t.size(), want.size());
        assert_eq!(t.kind(), Kind::Float);
        assert!(t.equal(&want), "{name}: not bit-identical");
    }
}

#[test]
fn every_8bit_value_maps_to_k_over_255() {
    let dir = tempfile::tempdir().unwrap();
    let img: ImageBuffer<Luma<u8>, Vec<u8>> =
        ImageBuffer::from_fn(16, 16, |x, y| Luma([(y * 16 + x) as u8]));
    let p = dir.path().join("ramp.png");
    img.save(&p).unwrap();
    let t = load_image(&p).unwrap();
    let v = Vec::<f32>::try_from(t.reshape([-1])).unwrap();
    for (k, x) in v.iter().enumerate() {
        assert_eq!(*x, k as f32 / 255.0);
    }
}

#[test]
fn rgb_and_16_bit_and_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let rgb: ImageBuffer<Rgb<u8>, Vec<u8>> =
        ImageBuffer::from_fn(5, 3, |x, y| Rgb([x as u8 * 50, y as u8 * 100, 255]));
    let p = dir.path().join("rgb.png");
    rgb.save(&p).unwrap();
    assert_eq!(
        load_image(&p).unwrap().size(),
        [1, 1, 3, 5],
        "as_gray by default"
    );
    let t = load_image_with(&p, false).unwrap();
    assert_eq!(t.size(), [1, 3, 3, 5]);
    assert_eq!(t.double_value(&[0, 0, 2, 4]), (200.0f32 / 255.0) as f64);
    assert_eq!(t.double_value(&[0, 1, 2, 4]), (200.0f32 / 255.0) as f64);
    assert_eq!(t.double_value(&[0, 2, 0, 0]), 1.0);

    let g16: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(4, 4, |x, _| Luma([x as u16 * 20000]));
    let p16 = dir.path().join("g16.png");
    g16.save(&p16).unwrap();
    let t = load_image(&p16).unwrap();
    assert_eq!(t.size(), [1, 1, 4, 4]);
    assert_eq!(t.double_value(&[0, 0, 0, 3]), (60000.0f32 / 65535.0) as f64);

    let j = dir.path().join("x.jpg");
    rgb.save(&j).unwrap();
    assert_eq!(load_image_with(&j, false).unwrap().size(), [1, 3, 3, 5]);
    assert_eq!(load_image(&j).unwrap().size(), [1, 1, 3, 5]);
    let pgm = dir.path().join("x.pgm");
    g16.save(&pgm).unwrap();
    assert_eq!(load_image(&pgm).unwrap().size(), [1, 1, 4, 4]);
}

#[test]
fn png_output_is_clamped_and_rounded_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let t = Tensor::from_slice(&[-0.5f32, 0.0, 0.51 / 255.0, 1.49 / 255.0, 0.5, 1.0, 7.0])
        .view([1, 1, 1, 7]);
    let p = dir.path().join("o.png");
    save_png(&t, &p).unwrap();
    let back = load_image(&p).unwrap();
    let k: Vec<f32> = Vec::try_from((back * 255.0).round().reshape([-1])).unwrap();
    assert_eq!(k, vec![0.0, 0.0, 1.0, 1.0, 128.0, 255.0, 255.0]);
    assert!(
        png_bytes(&Tensor::zeros([5, 4, 4], (Kind::Float, tch::Device::Cpu))).is_err(),
        "5 channels is not an image"
    );
}

#[test]
fn unreadable_and_mismatched_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"not an image").unwrap();
    let e = load_image(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.png"), "{e}");
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    ImageBuffer::<Luma<u8>, Vec<u8>>::new(4, 4)
        .save(&a)
        .unwrap();
    ImageBuffer::<Luma<u8>, Vec<u8>>::new(4, 5)
        .save(&b)
        .unwrap();
    let e = load_batch(&[a, b], true).unwrap_err().to_string();
    assert!(e.contains("b.png") && e.contains("one size"), "{e}");
}
