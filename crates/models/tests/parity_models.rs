//! Parity of the image models with plenoptic: every `model_*` and `grad_model_*` case of
//! ../shared/fixtures/models, forward values and gradients, within the manifest's tolerances,
//! for every filtering method of the Gaussian-based models (auto, direct, separable, fft).
use synthsweep_testkit_tch::models as common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use synthsweep_models::build_model;
use tch::{Kind, Tensor};

/// The synthsweep spec for a fixture's plenoptic model (pyramids are in parity_pyramids.rs).
fn model_spec(case: &Value, npz: &HashMap<String, Tensor>) -> Value {
    let name = case["name"].as_str().unwrap();
    let mut p = case["params"].as_object().unwrap().clone();
    let snake = match name {
        "Gaussian" => "gaussian",
        "CenterSurround" => "center_surround",
        "LinearNonlinear" => "linear_nonlinear",
        "LuminanceGainControl" => "luminance_gain_control",
        "LuminanceContrastGainControl" => "luminance_contrast_gain_control",
        "OnOff" => "on_off",
        "Identity" => "identity",
        "Linear" => "linear",
        other => panic!("no mapping for plenoptic model {other}"),
    };
    // pretrained=False draws its scalars at random; the fixture stores what was drawn.
    if p.get("pretrained") == Some(&json!(false)) {
        for key in ["luminance_scalar", "contrast_scalar"] {
            if let Some(t) = npz.get(&format!("param_{key}")) {
                p.insert(key.into(), json!(values(t)));
            }
        }
    }
    p.insert("name".into(), json!(snake));
    Value::Object(p)
}

/// The spec with `filtering` set, for the models that take it.
fn with_filtering(mut spec: Value, filtering: &str) -> Value {
    let takes_it = !matches!(spec["name"].as_str(), Some("identity" | "linear"));
    if takes_it {
        spec["filtering"] = json!(filtering);
    }
    spec
}

const FILTERINGS: [&str; 4] = ["auto", "direct", "separable", "fft"];

#[test]
fn frontend_and_naive_models_match_plenoptic() {
    let cases: Vec<Value> = cases(&["model"])
        .into_iter()
        .filter(|c| c["op"] == "forward" && c["name"] != "PortillaSimoncelli")
        .collect();
    let device = test_device();
    run_all(cases, |case| {
        let npz = load_npz(case);
        for filtering in FILTERINGS {
            let spec = with_filtering(model_spec(case, &npz), filtering);
            let model = model_on(&spec, device)?;
            let x = &on_device(&npz["x"], device);
            model.check_input(&x.size()).map_err(|e| e.to_string())?;
            let out = tch::no_grad(|| model.forward(x));
            check_array(case, &npz, "out", &out).map_err(|e| format!("{filtering}: {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn model_gradients_match_plenoptic() {
    let cases: Vec<Value> = cases(&["model"])
        .into_iter()
        .filter(|c| c["op"] == "grad_sum_wrt_x")
        .collect();
    let device = test_device();
    run_all(cases, |case| {
        let npz = load_npz(case);
        for filtering in FILTERINGS {
            let spec = with_filtering(model_spec(case, &npz), filtering);
            let model = model_on(&spec, device)?;
            let x = on_device(&npz["x"], device)
                .detach()
                .set_requires_grad(true);
            let out = model.forward(&x).sum(Kind::Float);
            check_array(case, &npz, "out", &out).map_err(|e| format!("{filtering}: {e}"))?;
            let g = Tensor::run_backward(&[&out], &[&x], false, false).remove(0);
            check_array(case, &npz, "grad", &g).map_err(|e| format!("{filtering}: {e}"))?;
        }
        Ok(())
    });
}

#[test]
fn models_run_in_float64() {
    let npz = load_npz(
        &cases(&["model"])
            .into_iter()
            .find(|c| c["id"] == "model_on_off_k31_pretrained")
            .unwrap(),
    );
    for filtering in FILTERINGS {
        let mut model =
            build_model(&json!({"name": "on_off", "pretrained": true, "filtering": filtering}))
                .unwrap();
        model.to(tch::Device::Cpu, Kind::Double);
        let out = tch::no_grad(|| model.forward(&npz["x"].to_kind(Kind::Double)));
        assert_eq!(out.kind(), Kind::Double, "{filtering}");
        allclose(&out, &npz["out"], 1e-5, 1e-4).unwrap();
    }
}
