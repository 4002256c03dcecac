//! Parity of the metrics and the Laplacian pyramids with plenoptic: every `metric_*` and
//! `grad_metric_*` case, `pyramid_laplacian_n5_e64` and `pyramid_normalized_laplacian_e64`
//! of ../shared/fixtures/models, within the manifest's per-array tolerances; plus batching,
//! identical-image values, float64 and input-shape checks.
use synthsweep_testkit_tch::models as common;

use common::*;
use serde_json::{json, Value};
use synthsweep_models::metrics::nlpd_constants::{DN_FILTS, DN_SIGMAS};
use synthsweep_models::metrics::ssim_map;
use synthsweep_models::pyramid::laplacian::LaplacianPyramid;
use synthsweep_models::{build_metric, build_model, Metric};
use tch::{Device, Kind, Tensor};

/// The synthsweep spec for a fixture's plenoptic metric.
fn metric_spec(case: &Value) -> Value {
    let mut p = case["params"].as_object().unwrap().clone();
    let name = match case["name"].as_str().unwrap() {
        "model_metric_factory" => {
            assert_eq!(p["model"], "LuminanceGainControl");
            return json!({
                "name": "model_distance",
                "model": {"name": "luminance_gain_control", "kernel_size": 31, "pretrained": true},
            });
        }
        n @ ("mse" | "ssim" | "ms_ssim" | "nlpd") => n,
        other => panic!("no mapping for plenoptic metric {other}"),
    };
    p.insert("name".into(), json!(name));
    Value::Object(p)
}

/// [`check_array`], printing the margin (visible with `--nocapture`).
fn check(
    case: &Value,
    npz: &std::collections::HashMap<String, Tensor>,
    name: &str,
    actual: &Tensor,
) -> Result<(), String> {
    let max = check_array(case, npz, name, actual)?;
    let atol = array_meta(case, name)["atol"].as_f64().unwrap_or(1e-6);
    eprintln!(
        "     {} / {name}: max |diff| {max:.2e} (atol {atol:e})",
        case["id"].as_str().unwrap()
    );
    Ok(())
}

fn image(id: &str) -> Tensor {
    let path = models_fixtures().join(format!("images/{id}.npy"));
    Tensor::read_npy(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn metric(spec: Value) -> Box<dyn Metric> {
    build_metric(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"))
}

#[test]
fn metrics_match_plenoptic() {
    let cases: Vec<Value> = cases(&["metric"])
        .into_iter()
        .filter(|c| c["op"] == "forward")
        .collect();
    assert_eq!(cases.len(), 17, "every forward metric case");
    let device = test_device();
    run_all(cases, |case| {
        let npz = load_npz(case);
        let metric = metric_on(&metric_spec(case), device)?;
        let (x, y) = (&on_device(&npz["x"], device), &on_device(&npz["y"], device));
        metric.check_input(&x.size()).map_err(|e| e.to_string())?;
        let out = tch::no_grad(|| metric.forward(x, y));
        check(case, &npz, "out", &out)?;
        if npz.contains_key("map") {
            check(case, &npz, "map", &tch::no_grad(|| ssim_map(x, y)))?;
        }
        Ok(())
    });
}

#[test]
fn metric_gradients_match_plenoptic() {
    let cases: Vec<Value> = cases(&["metric"])
        .into_iter()
        .filter(|c| c["op"] == "grad_wrt_y")
        .collect();
    assert_eq!(cases.len(), 2);
    let device = test_device();
    run_all(cases, |case| {
        let npz = load_npz(case);
        let metric = metric_on(&metric_spec(case), device)?;
        let y = on_device(&npz["y"], device)
            .detach()
            .set_requires_grad(true);
        let out = metric.forward(&on_device(&npz["x"], device), &y);
        check(case, &npz, "out", &out)?;
        let total = out.sum(Kind::Float);
        let g = Tensor::run_backward(&[&total], &[&y], false, false).remove(0);
        check(case, &npz, "grad", &g)?;
        Ok(())
    });
}

#[test]
fn laplacian_pyramids_match_plenoptic() {
    let cases: Vec<Value> = cases(&["pyramid"])
        .into_iter()
        .filter(|c| {
            let id = c["id"].as_str().unwrap();
            id == "pyramid_laplacian_n5_e64" || id == "pyramid_normalized_laplacian_e64"
        })
        .collect();
    assert_eq!(cases.len(), 2);
    let device = test_device();
    run_all(cases, |case| {
        let npz = load_npz(case);
        let spec = match case["name"].as_str().unwrap() {
            "LaplacianPyramid" => {
                let mut p = case["params"].as_object().unwrap().clone();
                p.insert("name".into(), json!("laplacian_pyramid"));
                Value::Object(p)
            }
            _ => json!({"name": "normalized_laplacian_pyramid"}),
        };
        let model = model_on(&spec, device)?;
        let x = &on_device(&npz["x"], device);
        model.check_input(&x.size()).map_err(|e| e.to_string())?;
        let parts = tch::no_grad(|| model.parts(x));
        let levels: Vec<&(String, Tensor)> = parts.iter().filter(|(n, _)| n != "out").collect();
        let expected = npz.keys().filter(|k| k.starts_with("level_")).count();
        if levels.len() != expected {
            return Err(format!("{} levels, expected {expected}", levels.len()));
        }
        for (name, t) in &levels {
            check(case, &npz, name, t)?;
        }
        // `out` is the levels flattened and concatenated, finest first.
        let (_, out) = parts.iter().find(|(n, _)| n == "out").unwrap();
        let flat: Vec<Tensor> = (0..expected)
            .map(|i| npz[&format!("level_{i}")].flatten(2, 3))
            .collect();
        allclose(out, &Tensor::cat(&flat, 2), 2e-4, 1e-5)?;
        assert_eq!(out.size(), tch::no_grad(|| model.forward(x)).size());
        Ok(())
    });
}

#[test]
fn nlpd_constants_are_plenoptics() {
    let case = cases(&["pyramid"])
        .into_iter()
        .find(|c| c["id"] == "pyramid_normalized_laplacian_e64")
        .unwrap();
    let npz = load_npz(&case);
    let filts: Vec<f64> = DN_FILTS.iter().flatten().flatten().copied().collect();
    assert_eq!(npz["const_dn_filts"].kind(), Kind::Double);
    assert_eq!(values(&npz["const_dn_filts"]), filts);
    assert_eq!(values(&npz["const_dn_sigmas"]), DN_SIGMAS.to_vec());
}

#[test]
fn laplacian_pyramid_reconstructs_its_input() {
    // 45x37: odd sizes at several scales.
    let x = image("einstein_64").narrow(2, 3, 45).narrow(3, 10, 37);
    for scale_filter in [false, true] {
        let pyr = LaplacianPyramid::new(5, scale_filter);
        let levels = pyr.levels(&x);
        let sizes: Vec<Vec<i64>> = levels.iter().map(|l| l.size()[2..].to_vec()).collect();
        assert_eq!(sizes, [[45, 37], [23, 19], [12, 10], [6, 5], [3, 3]]);
        allclose(&pyr.reconstruct(&levels), &x, 1e-5, 0.0).unwrap();
    }
}

/// Each (batch, channel) entry of a batched call equals the call on that pair alone.
#[test]
fn batched_pairs_match_single_pairs() {
    let specs = [
        (json!({"name": "ssim"}), 64),
        (
            json!({"name": "ssim", "weighted": true, "pad": "reflect"}),
            64,
        ),
        (json!({"name": "ssim_distance"}), 64),
        (json!({"name": "nlpd"}), 64),
        (json!({"name": "ms_ssim_distance"}), 256),
        (json!({"name": "mse"}), 64),
    ];
    for (spec, size) in specs {
        let m = metric(spec.clone());
        let e = image(&format!("einstein_{size}"));
        let noise = image(&format!("einstein_{size}_noise"));
        let blur = image(&format!("einstein_{size}_blur"));
        // (2, 2, H, W) batches of different pairs.
        let xs = [[&e, &noise], [&blur, &e]];
        let ys = [[&noise, &blur], [&e, &e]];
        let batch = |imgs: [[&Tensor; 2]; 2]| {
            let rows: Vec<Tensor> = imgs.iter().map(|r| Tensor::cat(r, 1)).collect();
            Tensor::cat(&rows, 0)
        };
        let out = tch::no_grad(|| m.forward(&batch(xs), &batch(ys)));
        assert_eq!(out.size(), [2, 2], "{spec}");
        for b in 0..2 {
            for c in 0..2 {
                let single = tch::no_grad(|| m.forward(xs[b][c], ys[b][c]));
                assert_eq!(single.size(), [1, 1], "{spec}");
                let got = out.get(b as i64).get(c as i64);
                allclose(&got, &single, 1e-6, 1e-6)
                    .unwrap_or_else(|e| panic!("{spec} [{b}, {c}]: {e}"));
            }
        }
        // A single image against a batch broadcasts, as in plenoptic.
        let ys = Tensor::cat(&[&noise, &blur], 0);
        let out = tch::no_grad(|| m.forward(&e, &ys));
        assert_eq!(out.size(), [2, 1], "{spec}");
        let single = tch::no_grad(|| m.forward(&e, &blur));
        allclose(&out.get(1), &single, 1e-6, 1e-6).unwrap();
    }
}

#[test]
fn identical_images_are_at_distance_zero() {
    let e64 = image("einstein_64");
    let e256 = image("einstein_256");
    let d = tch::no_grad(|| metric(json!({"name": "ssim_distance"})).forward(&e64, &e64));
    allclose(
        &d,
        &Tensor::zeros([1, 1], (Kind::Float, Device::Cpu)),
        1e-6,
        0.0,
    )
    .unwrap();
    let d = tch::no_grad(|| metric(json!({"name": "ms_ssim_distance"})).forward(&e256, &e256));
    allclose(
        &d,
        &Tensor::zeros([1, 1], (Kind::Float, Device::Cpu)),
        1e-6,
        0.0,
    )
    .unwrap();
    // The 1e-10 inside each level's square root.
    let d = tch::no_grad(|| metric(json!({"name": "nlpd"})).forward(&e64, &e64));
    allclose(&d, &Tensor::from_slice(&[1e-5f32]), 1e-11, 1e-6).unwrap();
}

#[test]
fn metrics_run_in_float64() {
    let find = |id: &str| {
        let case = cases(&["metric"])
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap();
        let npz = load_npz(&case);
        (case, npz)
    };
    for id in [
        "metric_ssim_noise",
        "metric_ssim_weighted_blur",
        "metric_ms_ssim_noise",
        "metric_nlpd_noise",
    ] {
        let (case, npz) = find(id);
        let mut m = build_metric(&metric_spec(&case)).unwrap();
        m.to(Device::Cpu, Kind::Double);
        let x = npz["x"].to_kind(Kind::Double);
        let y = npz["y"].to_kind(Kind::Double);
        let out = tch::no_grad(|| m.forward(&x, &y));
        assert_eq!(out.kind(), Kind::Double, "{id}");
        allclose(&out, &npz["out"], 1e-4, 1e-4).unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    let mut pyr = build_model(&json!({"name": "normalized_laplacian_pyramid"})).unwrap();
    pyr.to(Device::Cpu, Kind::Double);
    let out = tch::no_grad(|| pyr.forward(&image("einstein_64").to_kind(Kind::Double)));
    assert_eq!(out.kind(), Kind::Double);
}

#[test]
fn shapes_too_small_for_nlpd_and_pyramids_are_rejected_ssim_takes_all() {
    let cases = [(
        json!({"name": "nlpd"}),
        [1, 1, 32, 64],
        [1, 1, 33, 33],
        "33",
    )];
    for (spec, bad, good, needed) in cases {
        let m = metric(spec.clone());
        let err = m
            .check_input(&bad)
            .expect_err(&spec.to_string())
            .to_string();
        assert!(err.contains(needed), "{spec}: {err}");
        m.check_input(&good)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
        assert!(m.check_input(&[1, 64, 64]).is_err(), "{spec}: 3-D input");
    }
    let model = build_model(&json!({"name": "laplacian_pyramid"})).unwrap();
    let err = model.check_input(&[1, 1, 16, 64]).unwrap_err().to_string();
    assert!(err.contains("17"), "{err}");
    model.check_input(&[1, 1, 17, 17]).unwrap();
    let model = build_model(&json!({"name": "normalized_laplacian_pyramid"})).unwrap();
    assert!(model.check_input(&[1, 1, 32, 32]).is_err());
    // plenoptic shrinks SSIM's window instead of refusing (see small_ssim.rs for values).
    for spec in [
        json!({"name": "ssim"}),
        json!({"name": "ssim_distance", "pad": "reflect"}),
        json!({"name": "ms_ssim"}),
        json!({"name": "ms_ssim_distance", "power_factors": [0.5, 0.5]}),
    ] {
        let m = metric(spec.clone());
        for shape in [[1, 1, 1, 1], [1, 1, 10, 64], [1, 1, 64, 64]] {
            m.check_input(&shape)
                .unwrap_or_else(|e| panic!("{spec} {shape:?}: {e}"));
        }
        assert!(m.check_input(&[1, 64, 64]).is_err(), "{spec}: 3-D input");
    }
}

#[test]
fn bad_metric_params_are_rejected() {
    for spec in [
        json!({"name": "ssim", "pad": true}),
        json!({"name": "ssim", "pad": "mirror"}),
        json!({"name": "ms_ssim", "power_factors": []}),
        json!({"name": "ms_ssim", "power_factors": [0.5, -1.0]}),
        json!({"name": "nlpd", "n_scales": 4}),
        json!({"name": "laplacian_pyramid", "n_scales": 0}),
    ] {
        let name = spec["name"].as_str().unwrap();
        let err = if name == "laplacian_pyramid" {
            build_model(&spec).err().map(|e| e.to_string())
        } else {
            build_metric(&spec).err().map(|e| e.to_string())
        };
        assert!(err.is_some(), "{spec} was accepted");
        // A bad `pad` names every value it takes, `false` included.
        if spec.get("pad").is_some() {
            let err = err.unwrap();
            assert!(
                err.contains("expected false or one of reflect, circular, replicate, constant"),
                "{err}"
            );
        }
    }
}
