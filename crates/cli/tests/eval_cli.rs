//! `synthsweep eval`, `models` and `metrics` as a user runs them: values that match the
//! plenoptic fixtures, named arrays in the .npz, and one clear line + exit 2 on bad input.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{Kind, Tensor};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_synthsweep"))
}

fn fixtures() -> PathBuf {
    synthsweep_testkit::shared_dir().join("fixtures/models")
}

fn img(name: &str) -> String {
    fixtures().join("images").join(name).display().to_string()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run synthsweep")
}

fn npz(path: &Path) -> Vec<(String, Tensor)> {
    Tensor::read_npz(path).expect("read npz")
}

fn fixture_npz(case: &str) -> Vec<(String, Tensor)> {
    npz(&fixtures().join("cases").join(format!("{case}.npz")))
}

fn get<'a>(arrays: &'a [(String, Tensor)], name: &str) -> &'a Tensor {
    &arrays
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no array {name}"))
        .1
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Double) - b.to_kind(Kind::Double))
        .abs()
        .max()
        .double_value(&[])
}

/// Asserts exit code 2, nothing on stdout, and exactly one line on stderr containing `needle`.
fn assert_bad_input(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "one line expected, got: {err}"
    );
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "`{needle}` not in: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn eval_model_writes_the_representation_as_plenoptic() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rep.npz");
    let o = run(&[
        "eval",
        "model",
        "--model",
        r#"{"name":"luminance_contrast_gain_control","kernel_size":31,"pretrained":true}"#,
        "--image",
        &img("einstein_64.pgm"),
        "--out",
        out.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = npz(&out);
    let want = fixture_npz("model_luminance_contrast_gain_control_k31_pretrained");
    assert_eq!(get(&got, "out").kind(), Kind::Float);
    assert!(max_abs_diff(get(&got, "out"), get(&want, "out")) < 2e-5);
}

#[test]
fn eval_model_with_repeated_images_is_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rep.npz");
    let o = run(&[
        "eval",
        "model",
        "--model",
        r#"{"name":"gaussian","kernel_size":[31,31],"std":3.0}"#,
        "--image",
        &img("einstein_64.pgm"),
        "--image",
        &img("einstein_64_noise.pgm"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = npz(&out);
    let rep = get(&got, "out");
    assert_eq!(rep.size(), [2, 1, 64, 64]);
    let want = fixture_npz("model_gaussian_k31_std3");
    assert!(max_abs_diff(&rep.get(0), &get(&want, "out").get(0)) < 2e-5);
}

#[test]
fn eval_metric_prints_values_and_json() {
    let o = run(&[
        "eval",
        "metric",
        "--metric",
        r#"{"name":"mse"}"#,
        &img("einstein_64.pgm"),
        &img("einstein_64_noise.pgm"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["metric"]["name"], "mse");
    let values = v["values"].as_array().unwrap();
    assert_eq!(values.len(), 1);
    let want = get(&fixture_npz("metric_mse_noise"), "out").double_value(&[0, 0]);
    assert!((values[0][0].as_f64().unwrap() - want).abs() < 5e-9);

    // A bare name, as in sweep specs.
    let o = run(&[
        "eval",
        "metric",
        "--metric",
        "mse",
        &img("einstein_64.pgm"),
        &img("einstein_64.pgm"),
    ]);
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<f64>()
            .unwrap(),
        0.0
    );
}

#[test]
fn model_distance_metric_matches_model_metric_factory() {
    let o = run(&[
        "eval",
        "metric",
        "--json",
        "--metric",
        r#"{"name":"model_distance","model":{"name":"luminance_gain_control","kernel_size":31,"pretrained":true}}"#,
        &img("einstein_64.pgm"),
        &img("einstein_64_blur.pgm"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["metric"]["model"]["pretrained"], true,
        "resolved spec is printed"
    );
    let want = get(
        &fixture_npz("metric_model_metric_lg_pretrained_blur"),
        "out",
    )
    .double_value(&[0]);
    assert!((v["values"][0][0].as_f64().unwrap() - want).abs() < 1e-6);
}

#[test]
fn listings_name_every_model_and_metric_with_defaults() {
    let o = run(&["models", "--json"]);
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for n in [
        "gaussian",
        "center_surround",
        "linear_nonlinear",
        "luminance_gain_control",
        "luminance_contrast_gain_control",
        "on_off",
        "identity",
        "linear",
        "torchscript",
    ] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let gauss = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "gaussian")
        .unwrap();
    assert!(gauss["params"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "std" && p["default"] == 3.0));
    let o = run(&["metrics"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("model_distance"));
}

#[test]
fn bad_input_gives_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npz");
    let out = out.to_str().unwrap();
    let e64 = img("einstein_64.pgm");
    let e32 = img("einstein_32.pgm");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gausian"}"#,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "valid models: identity",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31,"sdt":1}"#,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "unknown parameter `sdt`",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31,"std":"wide"}"#,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "gaussian.std",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31,"std":-1}"#,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "must be positive",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31"#,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "nor valid JSON",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31}"#,
                "--image",
                "/no/such.png",
                "--out",
                out,
            ],
            "/no/such.png",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"on_off","pretrained":true}"#,
                "--image",
                &e32,
                "--image",
                &e64,
                "--out",
                out,
            ],
            "one size",
        ),
        (
            vec![
                "eval",
                "model",
                "--model",
                r#"{"name":"gaussian","kernel_size":31}"#,
                "--image",
                &e64,
                "--out",
                "/no/dir/x.npz",
            ],
            "does not exist",
        ),
        (
            vec![
                "eval",
                "metric",
                "--metric",
                r#"{"name":"mse"}"#,
                &e64,
                &e32,
            ],
            "one size",
        ),
        (
            vec!["eval", "metric", "--metric", r#"["mse"]"#, &e64, &e64],
            "JSON object",
        ),
        // A bare name is looked up as a JSON one is.
        (
            vec!["eval", "metric", "--metric", "ms_sim", &e64, &e64],
            "valid metrics",
        ),
    ];
    for (args, needle) in cases {
        assert_bad_input(&run(&args), needle);
    }
    // A model that cannot take the image's size says which size it needs.
    let tiny = dir.path().join("tiny.png");
    image::GrayImage::new(8, 8).save(&tiny).unwrap();
    let o = run(&[
        "eval",
        "model",
        "--model",
        r#"{"name":"on_off","pretrained":true}"#,
        "--image",
        tiny.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_bad_input(&o, "height >= 16");
    assert!(!Path::new(out).exists(), "nothing half-written");
}

#[test]
fn as_gray_loads_images_as_plenoptic_does() {
    // An RGBA file with a half-transparent pixel (tests/data of the models crate, values
    // from plenoptic's load_images).
    let rgba = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../models/tests/data/load_images/rgba8.png")
        .display()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.npz");
    let identity = r#"{"name":"identity"}"#;
    for (flag, channels) in [(None, 1), (Some("true"), 1), (Some("false"), 4)] {
        let mut args = vec!["eval", "model", "--model", identity, "--image", &rgba];
        args.extend(["--out", out.to_str().unwrap()]);
        if let Some(f) = flag {
            args.extend(["--as-gray", f]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let x = get(&npz(&out), "out").shallow_clone();
        assert_eq!(x.size(), [1, channels, 4, 5], "--as-gray {flag:?}");
        if channels == 1 {
            // (200, 100, 50) at alpha 128: plenoptic's 0.7296.
            assert!((x.double_value(&[0, 0, 0, 2]) - 0.7296203).abs() < 1e-6);
        }
        let mut args = vec![
            "eval",
            "metric",
            "--metric",
            r#"{"name":"mse"}"#,
            &rgba,
            &rgba,
            "--json",
        ];
        if let Some(f) = flag {
            args.extend(["--as-gray", f]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["values"][0].as_array().unwrap().len(), channels as usize);
        assert_eq!(v["as_gray"], flag != Some("false"));
    }
    let o = run(&[
        "eval",
        "metric",
        "--metric",
        r#"{"name":"mse"}"#,
        &rgba,
        &rgba,
        "--as-gray",
        "maybe",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--as-gray"));
    // A one-channel model on colour kept as colour: bad input, pointing to as_gray.
    let o = run(&[
        "eval",
        "model",
        "--model",
        r#"{"name":"gaussian","kernel_size":3}"#,
        "--image",
        &rgba,
        "--as-gray",
        "false",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_bad_input(
        &o,
        "expected 1 channel(s), got 4; load colour images as gray",
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("--as-gray true"));
}

/// `synthsweep doctor --device cpu` (in the test command, so the GPU check's first step
/// cannot rot): every model, metric and synthesis kind runs and compares, exit 0 and PASS;
/// `--json` gives one object with every check; a device that is not there is bad input.
#[test]
fn doctor_on_the_cpu_passes() {
    let out = run(&["doctor", "--device", "cpu", "--json"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    assert_eq!(v["verdict"], "PASS");
    assert_eq!(v["info"]["device"], "cpu");
    let checks = v["checks"].as_array().unwrap();
    let passed: Vec<&str> = checks
        .iter()
        .filter(|c| c["ok"] == true)
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    for name in [
        "model luminance_gain_control forward+backward",
        "model portilla_simoncelli forward+backward",
        "metric nlpd forward+backward",
        "metric model_distance forward+backward",
        "metamer (gaussian)",
        "metamer_ctf (steerable_pyramid)",
        "mad (mse vs ssim_distance)",
        "geodesic (gaussian)",
        "simple_metamer (gaussian)",
        "eigendistortion (exact values; power runs)",
    ] {
        assert!(passed.contains(&name), "{name} not among {passed:?}");
    }
    let out = run(&["doctor", "--device", "cuda:7"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("device"));
}
