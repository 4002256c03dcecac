//! `as_gray` (plenoptic's `load_images(paths, as_gray)`, default true) in sweep specs: fixed
//! in `[params]`, an axis of its own, zipped with an image axis or set by `[[when]]`; part
//! of the task id except where it changes nothing (a gray file loaded as gray, so those
//! tasks keep their ids); anything but a boolean is an error naming the key.
use common::{assert_mentions, Dir};
use synthsweep_sweep::{Plan, Task};
use synthsweep_testkit::sweep as common;

fn tasks(plan: &Plan) -> Vec<Task> {
    plan.iter().map(|t| t.unwrap()).collect()
}

/// `images/a.pgm` .. `c.pgm` (gray) plus `images/rgb.png` (colour) and `images/rgba.png`.
fn dir() -> Dir {
    let d = Dir::new();
    let rgb = image::RgbImage::from_fn(2, 2, |x, y| image::Rgb([x as u8 * 90, y as u8 * 40, 7]));
    rgb.save(d.path().join("images/rgb.png")).unwrap();
    let rgba = image::RgbaImage::from_fn(2, 2, |x, _| image::Rgba([200, 100, 50, x as u8 * 128]));
    rgba.save(d.path().join("images/rgba.png")).unwrap();
    d
}

fn spec(extra_params: &str, grid: &str) -> String {
    format!(
        r#"
name = "gray"
synth = "metamer"
[params]
max_iter = 10
model = {{ name = "gaussian", kernel_size = 5 }}
{extra_params}
[grid]
{grid}
"#
    )
}

#[test]
fn default_is_plenoptics_and_gray_files_keep_their_ids() {
    let d = dir();
    let grid = r#"image = ["images/a.pgm", "images/rgb.png", "images/rgba.png"]"#;
    let default = tasks(&d.plan(&spec("", grid)).unwrap());
    let explicit = tasks(&d.plan(&spec("as_gray = true", grid)).unwrap());
    let color = tasks(&d.plan(&spec("as_gray = false", grid)).unwrap());
    for ((a, b), c) in default.iter().zip(&explicit).zip(&color) {
        assert!(a.as_gray && b.as_gray && !c.as_gray);
        assert_eq!(a.id(), b.id(), "true is the default");
        assert_ne!(
            a.id(),
            c.id(),
            "{}: as_gray = false is another task",
            a.image().name
        );
    }
    // A gray file loaded as gray is described as before as_gray existed ...
    assert!(!default[0].canonical_json().contains("as_gray"));
    assert_eq!(default[0].image().channels, 1);
    // ... a colour file says how it is loaded, either way.
    assert!(default[1].canonical_json().contains(r#""as_gray":true"#));
    assert!(color[0].canonical_json().contains(r#""as_gray":false"#));
    assert!(color[1].canonical_json().contains(r#""as_gray":false"#));
    assert_eq!(default[1].image().channels, 3);
    assert_eq!(default[2].image().channels, 4);
}

#[test]
fn a_ppm_file_is_an_image_as_eval_reads_it() {
    let d = dir();
    // A binary PPM (P6), as netpbm and Pillow write it.
    let mut ppm = b"P6\n2 2\n255\n".to_vec();
    ppm.extend((0..12u8).map(|i| i * 20));
    std::fs::write(d.path().join("images/rgb.ppm"), ppm).unwrap();
    // In a folder or a glob, and named by itself.
    for grid in [r#"image = "images/*.ppm""#, r#"image = "images/rgb.ppm""#] {
        let t = tasks(&d.plan(&spec("", grid)).unwrap());
        assert_eq!(t.len(), 1, "{grid}");
        assert_eq!(t[0].image().name, "rgb.ppm");
        assert_eq!(t[0].image().channels, 3);
        assert!(t[0].as_gray);
    }
    // Bytes that are no PPM are refused as for the other kinds.
    std::fs::write(d.path().join("images/fake.ppm"), b"P5 2 2 255\n\0\0\0\0").unwrap();
    let e = d
        .plan(&spec("", r#"image = "images/fake.ppm""#))
        .unwrap_err();
    assert!(e.to_string().contains("not a PPM image"), "{e}");
}

#[test]
fn as_gray_as_an_axis_a_zip_column_or_a_when_rule() {
    let d = dir();
    // An axis of its own: every image both ways.
    let plan = d
        .plan(&spec(
            "",
            "image = [\"images/a.pgm\", \"images/rgb.png\"]\nas_gray = [true, false]",
        ))
        .unwrap();
    let t = tasks(&plan);
    assert_eq!(t.len(), 4);
    let ids: std::collections::HashSet<&str> = t.iter().map(|t| t.id()).collect();
    assert_eq!(ids.len(), 4);
    assert_eq!(t.iter().filter(|t| t.as_gray).count(), 2);
    // Per image: zipped with the image axis.
    let text = r#"
name = "gray"
synth = "metamer"
[params]
model = { name = "gaussian", kernel_size = 5 }
[[zip]]
image = ["images/a.pgm", "images/rgb.png"]
as_gray = [true, false]
"#;
    let t = tasks(&d.plan(text).unwrap());
    assert_eq!(
        t.iter()
            .map(|t| (t.image().name.as_str(), t.as_gray))
            .collect::<Vec<_>>(),
        [("a.pgm", true), ("rgb.png", false)]
    );
    // Set by a rule for one image. (The pair must load to one shape: RGB with a gray file
    // repeated into three channels, not with RGBA's four, which planning refuses.)
    let text = r#"
name = "gray"
synth = "geodesic"
[params]
model = { name = "gaussian", kernel_size = 5 }
[grid]
pairs = [["images/a.pgm", "images/b.pgm"], ["images/rgb.png", "images/c.pgm"]]
[[when]]
match = { image_a = "rgb.png" }
set = { as_gray = false }
"#;
    let t = tasks(&d.plan(text).unwrap());
    assert!(t[0].as_gray && !t[1].as_gray);
}

#[test]
fn as_gray_must_be_a_boolean() {
    let d = dir();
    let msg = d.error(&spec("as_gray = 1", "image = [\"images/a.pgm\"]"));
    assert_mentions(&msg, &["params.as_gray", "expected true or false", "1"]);
    let msg = d.error(&spec(
        "",
        "image = [\"images/a.pgm\"]\nas_gray = [true, \"no\"]",
    ));
    assert_mentions(&msg, &["grid.as_gray[1]", "expected true or false"]);
    let msg = d.error(&spec("\"as_gray.x\" = 1", "image = [\"images/a.pgm\"]"));
    assert_mentions(&msg, &["as_gray.x", "no fields"]);
}
