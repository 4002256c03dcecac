//! Parity of the steerable pyramid and Portilla-Simoncelli with plenoptic: every
//! `pyramid_steerable_*` case and `model_portilla_simoncelli_*` case of
//! ../shared/fixtures/models (each array with its manifest tolerance), plus gradients and
//! coarse-to-fine subsets checked against values computed with plenoptic 1.1.0
//! (tests/data/make_ps_reference.py).
use synthsweep_testkit_tch::models as common;

use common::*;
use serde_json::{json, Value};
use synthsweep_models::build_model;
use tch::{Kind, Tensor};

fn spec(case: &Value, name: &str) -> Value {
    let mut p = case["params"].as_object().unwrap().clone();
    p.insert("name".into(), json!(name));
    Value::Object(p)
}

fn steerable_cases() -> Vec<Value> {
    cases(&["pyramid"])
        .into_iter()
        .filter(|c| c["name"] == "SteerablePyramidFreq")
        .collect()
}

#[test]
fn steerable_pyramid_matches_plenoptic() {
    let device = test_device();
    run_all(steerable_cases(), |case| {
        let npz = load_npz(case);
        let model = model_on(&spec(case, "steerable_pyramid"), device)?;
        let x = &on_device(&npz["x"], device);
        model.check_input(&x.size()).map_err(|e| e.to_string())?;
        let parts = tch::no_grad(|| model.parts(x));
        let mut checked = 0;
        let mut worst = 0.0f64;
        for meta in case["arrays"].as_array().unwrap() {
            let name = meta["name"].as_str().unwrap();
            if meta["role"] != "output" {
                continue;
            }
            let (_, actual) = parts
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("{}: no part {name}", case["id"]))?;
            let diff = check_array(case, &npz, name, actual)?;
            worst = worst.max(diff / array_meta(case, name)["atol"].as_f64().unwrap());
            checked += 1;
        }
        assert_eq!(
            checked + 1,
            parts.len(),
            "every part except `out` has a fixture array"
        );
        eprintln!(
            "{}: {checked} arrays, worst max|diff| / atol = {worst:.3}",
            case["id"]
        );
        Ok(())
    });
}

#[test]
fn steerable_pyramid_without_image_shape_matches_and_reuses_masks() {
    run_all(steerable_cases(), |case| {
        let npz = load_npz(case);
        let mut s = spec(case, "steerable_pyramid");
        s["image_shape"] = Value::Null;
        let model = build_model(&s).map_err(|e| e.to_string())?;
        let x = &npz["x"];
        for _ in 0..2 {
            let parts = tch::no_grad(|| model.parts(x));
            for (name, t) in parts.iter().filter(|(n, _)| n != "out") {
                check_array(case, &npz, name, t)?;
            }
        }
        Ok(())
    });
}

#[test]
fn steerable_pyramid_reconstructs_its_input() {
    for (complex, tight, downsample) in [
        (false, false, true),
        (true, false, true),
        (true, true, true),
        (false, true, false),
        (true, false, false),
    ] {
        let pyr = synthsweep_models::pyramid::SteerablePyramid::new(
            synthsweep_models::pyramid::SteerableConfig {
                is_complex: complex,
                tight_frame: tight,
                downsample,
                ..Default::default()
            },
        )
        .unwrap();
        let x = Tensor::rand([2, 1, 32, 32], (Kind::Float, tch::Device::Cpu));
        let c = pyr.coeffs(&x).unwrap();
        let r = pyr.recon_all(&c).unwrap();
        allclose(&r, &x, 1e-4, 1e-4).unwrap_or_else(|e| {
            panic!("complex {complex} tight {tight} downsample {downsample}: {e}")
        });
    }
}

#[test]
fn steerable_pyramid_rejects_heights_too_large() {
    let model = build_model(&json!({"name": "steerable_pyramid", "height": 4})).unwrap();
    let err = model.check_input(&[1, 1, 32, 32]).unwrap_err().to_string();
    assert!(err.contains("64"), "{err}");
    assert!(model.check_input(&[1, 1, 64, 64]).is_ok());
    let model =
        build_model(&json!({"name": "steerable_pyramid", "image_shape": [64, 64]})).unwrap();
    assert!(model.check_input(&[1, 1, 32, 32]).is_err());
    assert!(build_model(
        &json!({"name": "steerable_pyramid", "image_shape": [32, 32], "height": 5})
    )
    .is_err());
}

/// tests/data/steerable_options.npz, made by tests/data/make_steerable_options.py.
fn data_npz(name: &str) -> std::collections::HashMap<String, Tensor> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    Tensor::read_npz(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .into_iter()
        .collect()
}

/// Float32 noise between our f64-built masks and plenoptic's: a few ulps of the largest value.
fn close_to_reference(what: &str, actual: &Tensor, expected: &Tensor) {
    let scale = expected.abs().max().double_value(&[]);
    allclose(actual, expected, 2e-6 * scale + 1e-8, 1e-5).unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[test]
fn steerable_pyramid_options_match_plenoptic() {
    use synthsweep_models::pyramid::{PyrScale, SteerablePyramid};
    // The CONFIGS of make_steerable_options.py.
    let configs = [
        json!({"image_shape": [16, 24], "height": "auto", "order": 1, "twidth": 2, "is_complex": false, "downsample": false, "tight_frame": true}),
        json!({"image_shape": [33, 26], "height": 2, "order": 2, "twidth": 1, "is_complex": true, "downsample": true, "tight_frame": true}),
        json!({"image_shape": [16, 16], "height": 1, "order": 3, "twidth": 1, "is_complex": true, "downsample": false, "tight_frame": false}),
        json!({"image_shape": [20, 36], "height": 1, "order": 4, "twidth": 3, "is_complex": false, "downsample": true, "tight_frame": false}),
    ];
    let npz = data_npz("steerable_options.npz");
    for (k, cfg) in configs.iter().enumerate() {
        let mut spec = cfg.clone();
        spec["name"] = json!("steerable_pyramid");
        let model = build_model(&spec).unwrap();
        let x = &npz[&format!("cfg{k}_x")];
        let parts = tch::no_grad(|| model.parts(x));
        let prefix = format!("cfg{k}_");
        let mut n = 0;
        for (name, t) in parts.iter().filter(|(n, _)| n != "out") {
            let key = format!("{prefix}{name}");
            let expected = npz
                .get(&key)
                .unwrap_or_else(|| panic!("reference has no {key}"));
            close_to_reference(&key, t, expected);
            n += 1;
        }
        let expected_parts = npz
            .keys()
            .filter(|key| {
                key.starts_with(&prefix) && !key.contains("recon") && !key.ends_with("_x")
            })
            .count();
        assert_eq!(n, expected_parts, "cfg{k}: number of parts");

        let params = synthsweep_models::params::Params::new(
            "steerable_pyramid",
            synthsweep_models::pyramid::STEERABLE_PYRAMID_PARAMS,
            cfg.as_object().unwrap().clone(),
        )
        .unwrap();
        let pyr = SteerablePyramid::from_params(&params).unwrap();
        let coeffs = tch::no_grad(|| pyr.coeffs(x)).unwrap();
        let top = coeffs.bands.len() - 1;
        let all: Vec<usize> = (0..pyr.num_orientations()).collect();
        let cases: [(String, Vec<PyrScale>, Vec<usize>); 4] = [
            (
                "recon_residual_lowpass".into(),
                vec![PyrScale::ResidualLowpass],
                all.clone(),
            ),
            ("recon_0".into(), vec![PyrScale::Band(0)], all.clone()),
            (
                format!("recon_{top}_residual_highpass"),
                vec![PyrScale::Band(top), PyrScale::ResidualHighpass],
                all.clone(),
            ),
            ("recon_0_band1".into(), vec![PyrScale::Band(0)], vec![1]),
        ];
        for (name, levels, bands) in cases {
            let r = tch::no_grad(|| pyr.recon_pyr(&coeffs, &levels, &bands)).unwrap();
            close_to_reference(
                &format!("{prefix}{name}"),
                &r,
                &npz[&format!("{prefix}{name}")],
            );
        }
    }
}

fn ps_cases() -> Vec<Value> {
    cases(&["model"])
        .into_iter()
        .filter(|c| c["name"] == "PortillaSimoncelli")
        .collect()
}

#[test]
fn portilla_simoncelli_matches_plenoptic() {
    let device = test_device();
    run_all(ps_cases(), |case| {
        let npz = load_npz(case);
        let model = model_on(&spec(case, "portilla_simoncelli"), device)?;
        let x = &on_device(&npz["x"], device);
        model.check_input(&x.size()).map_err(|e| e.to_string())?;
        let parts = tch::no_grad(|| model.parts(x));
        let mut worst = 0.0f64;
        let mut checked = 0;
        for meta in case["arrays"].as_array().unwrap() {
            let name = meta["name"].as_str().unwrap();
            if name == "x" {
                continue;
            }
            let (_, actual) = parts
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("{}: no part {name}", case["id"]))?;
            let diff = check_array(case, &npz, name, actual)?;
            worst = worst.max(diff / meta["atol"].as_f64().unwrap());
            checked += 1;
        }
        assert_eq!(checked, parts.len(), "every part has a fixture array");
        eprintln!(
            "{}: {checked} arrays, worst max|diff| / atol = {worst:.3}",
            case["id"]
        );
        Ok(())
    });
}

/// The fixture configuration, as tests/data/make_ps_reference.py uses it.
fn fixture_ps() -> Box<dyn synthsweep_models::Model> {
    build_model(&json!({"name": "portilla_simoncelli", "image_shape": [64, 64], "n_scales": 3, "n_orientations": 4, "spatial_corr_width": 7})).unwrap()
}

#[test]
fn portilla_simoncelli_gradient_matches_plenoptic() {
    let npz = data_npz("ps_reference.npz");
    let device = test_device();
    let mut model = fixture_ps();
    if device != tch::Device::Cpu {
        model.to(device, Kind::Float);
    }
    let x = on_device(&npz["x"], device)
        .detach()
        .set_requires_grad(true);
    let out = model.forward(&x).sum(Kind::Float);
    let g = Tensor::run_backward(&[&out], &[&x], false, false).remove(0);
    assert_eq!(
        g.isfinite().all().int64_value(&[]),
        1,
        "gradient has non-finite values"
    );
    let atol = npz["grad_atol"].double_value(&[0]);
    let diff = allclose(&g, &npz["grad"], atol, 1e-5).unwrap_or_else(|e| panic!("grad: {e}"));
    eprintln!("grad: max|diff| {diff:.3e}, atol {atol:e}");
}

#[test]
fn portilla_simoncelli_scale_subsets_match_plenoptic() {
    let npz = data_npz("ps_reference.npz");
    let model = fixture_ps();
    assert_eq!(
        model.scales().unwrap(),
        [
            "pixel_statistics",
            "residual_lowpass",
            "2",
            "1",
            "0",
            "residual_highpass"
        ]
    );
    // SCALE_LISTS of make_ps_reference.py.
    let lists: [&[&str]; 4] = [
        &["pixel_statistics", "residual_lowpass"],
        &["2", "residual_lowpass"],
        &["0", "residual_highpass"],
        &["1"],
    ];
    let x = &npz["x"];
    let full = tch::no_grad(|| model.forward(x));
    let mut total = 0;
    for (i, scales) in lists.iter().enumerate() {
        let scales: Vec<String> = scales.iter().map(|s| s.to_string()).collect();
        let out = tch::no_grad(|| model.forward_scales(x, &scales)).unwrap();
        let expected = &npz[&format!("scales_{i}")];
        assert_eq!(out.size(), expected.size(), "{scales:?}");
        allclose(&out, expected, 1e-5, 1e-5).unwrap_or_else(|e| panic!("{scales:?}: {e}"));
        total += out.size()[2];
    }
    // Every statistic belongs to exactly one scale.
    let every: Vec<String> = model.scales().unwrap();
    assert_eq!(
        tch::no_grad(|| model.forward_scales(x, &every))
            .unwrap()
            .size(),
        full.size()
    );
    assert!(total > 0);
    let err = model
        .forward_scales(x, &["3".to_string()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid scales"), "{err}");
}

#[test]
fn portilla_simoncelli_other_configurations_match_plenoptic() {
    let npz = data_npz("ps_reference.npz");
    // CONFIGS of make_ps_reference.py; image_shape left to be inferred from the input.
    let configs = [
        json!({"n_scales": 2, "n_orientations": 3, "spatial_corr_width": 6}),
        json!({"n_scales": 1, "n_orientations": 4, "spatial_corr_width": 5}),
    ];
    for (k, cfg) in configs.iter().enumerate() {
        let mut spec = cfg.clone();
        spec["name"] = json!("portilla_simoncelli");
        let model = build_model(&spec).unwrap();
        let x = &npz[&format!("cfg{k}_x")];
        model.check_input(&x.size()).unwrap();
        let out = tch::no_grad(|| model.forward(x));
        close_to_reference(&format!("cfg{k}"), &out, &npz[&format!("cfg{k}_out")]);
    }
}

#[test]
fn portilla_simoncelli_says_which_sizes_it_needs() {
    let model = build_model(
        &json!({"name": "portilla_simoncelli", "n_scales": 4, "spatial_corr_width": 7}),
    )
    .unwrap();
    let err = model.check_input(&[1, 1, 64, 64]).unwrap_err().to_string();
    assert!(
        err.contains("at least 112") && err.contains("multiples of 16"),
        "{err}"
    );
    assert!(model.check_input(&[1, 1, 112, 128]).is_ok());
    assert!(model.check_input(&[1, 1, 120, 128]).is_err());
    // plenoptic 1.1's default spatial_corr_width is 9.
    let default = build_model(&json!({"name": "portilla_simoncelli"})).unwrap();
    assert!(default.check_input(&[1, 1, 128, 128]).is_err());
    assert!(default.check_input(&[1, 1, 256, 256]).is_ok());
    assert!(build_model(&json!({"name": "portilla_simoncelli", "image_shape": [64, 64], "n_scales": 4, "spatial_corr_width": 7})).is_err());
}

#[test]
fn pyramid_and_portilla_simoncelli_run_in_float64() {
    let case = ps_cases().remove(0);
    let npz = load_npz(&case);
    let mut model = build_model(&spec(&case, "portilla_simoncelli")).unwrap();
    model.to(tch::Device::Cpu, Kind::Double);
    let out = tch::no_grad(|| model.forward(&npz["x"].to_kind(Kind::Double)));
    assert_eq!(out.kind(), Kind::Double);
    allclose(&out, &npz["out"], 2e-5, 1e-4).unwrap();

    let case = steerable_cases()
        .into_iter()
        .find(|c| c["params"]["is_complex"] == true)
        .unwrap();
    let npz = load_npz(&case);
    let mut model = build_model(&spec(&case, "steerable_pyramid")).unwrap();
    model.to(tch::Device::Cpu, Kind::Double);
    for (name, t) in tch::no_grad(|| model.parts(&npz["x"].to_kind(Kind::Double))) {
        assert_eq!(t.kind(), Kind::Double, "{name}");
        if name != "out" {
            let atol = 10.0 * array_meta(&case, &name)["atol"].as_f64().unwrap();
            allclose(&t, &npz[&name], atol, 1e-4).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
