//! The synthesis fixtures (`../shared/fixtures/synth`: a manifest of cases, .npy arrays),
//! models as the fixtures built them, the tolerance checks their README defines, and small
//! models for behaviour tests ([`toy`]).
pub mod toy;
use serde_json::{json, Value};
use std::path::PathBuf;
use tch::{Kind, Tensor};

pub use crate::device::{on_device, test_device};
pub use crate::shared_dir;

/// `fixtures/synth` of the shared folder.
pub fn synth_fixtures() -> PathBuf {
    shared_dir().join("fixtures/synth")
}

/// The synthesis fixtures' `manifest.json`.
pub fn manifest() -> Value {
    crate::read_json(&synth_fixtures().join("manifest.json"))
}

/// One case by id.
pub fn case(id: &str) -> Value {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no synth fixture case {id}"))
}

/// Every case whose `method` starts with `prefix`.
pub fn cases(prefix: &str) -> Vec<Value> {
    manifest()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["method"].as_str().unwrap().starts_with(prefix))
        .cloned()
        .collect()
}

/// Array `name` of a case (float32 or float64 as stored).
pub fn array(case: &Value, name: &str) -> Tensor {
    let meta = &case["arrays"][name];
    let file = meta["file"]
        .as_str()
        .unwrap_or_else(|| panic!("{}: no array {name}", case["id"]));
    let path = synth_fixtures().join(file);
    let path = if path.exists() {
        path
    } else {
        synth_fixtures()
            .join("cases")
            .join(case["id"].as_str().unwrap())
            .join(file)
    };
    Tensor::read_npy(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The case's input image (1, C, H, W) from its .npy, or `image_b` with `key = "image_b"`.
pub fn image(case: &Value, key: &str) -> Tensor {
    let img = &case[key];
    let npy = img["npy"]
        .as_str()
        .or_else(|| img["file"].as_str())
        .map(String::from)
        .unwrap_or_else(|| {
            format!(
                "images/{}.npy",
                img["key"]
                    .as_str()
                    .or_else(|| img.as_str())
                    .expect("image key")
            )
        });
    let path = synth_fixtures().join(&npy);
    Tensor::read_npy(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Our model spec for the plenoptic model a fixture used (its `model` entry).
pub fn model_spec(case: &Value) -> Value {
    let m = case["model"].as_object().expect("case has a model");
    let class = m["name"].as_str().expect("model name");
    let name = match class {
        "Gaussian" => "gaussian",
        "CenterSurround" => "center_surround",
        "LuminanceGainControl" => "luminance_gain_control",
        "LuminanceContrastGainControl" => "luminance_contrast_gain_control",
        "LinearNonlinear" => "linear_nonlinear",
        "OnOff" => "on_off",
        "PortillaSimoncelli" => "portilla_simoncelli",
        other => panic!("no mapping for plenoptic model {other}"),
    };
    let mut p = serde_json::Map::new();
    p.insert("name".into(), json!(name));
    for (k, v) in m {
        match k.as_str() {
            // descriptions, not parameters
            "name" | "filter" | "forward" | "pretrained_values" | "definition" | "note" => {}
            "im_shape" => {
                p.insert("image_shape".into(), v.clone());
            }
            _ => {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(p)
}

/// The tolerance entry of array `name`.
pub fn tol<'a>(case: &'a Value, name: &str) -> &'a Value {
    &case["arrays"][name]["tolerance"]
}

/// A fixture run's result `name` is on `device` (the device the run was moved to): so a
/// run asked of a GPU cannot pass on the CPU unnoticed.
pub fn check_device(
    case: &Value,
    name: &str,
    actual: &Tensor,
    device: tch::Device,
) -> Result<(), String> {
    if actual.device() == device {
        Ok(())
    } else {
        Err(format!(
            "{}/{name}: on {:?}, but the run was moved to {device:?}",
            case["id"].as_str().unwrap_or("?"),
            actual.device()
        ))
    }
}

/// `allclose` with the array's tolerance, plus `mean|a-b| <= mean_abs_max` when given.
pub fn check(case: &Value, name: &str, actual: &Tensor) -> Result<(), String> {
    let expected = array(case, name);
    let t = tol(case, name);
    let atol = t["atol"].as_f64().unwrap_or(0.0);
    let rtol = t["rtol"].as_f64().unwrap_or(0.0);
    let a = actual
        .detach()
        .to_device(tch::Device::Cpu)
        .to_kind(Kind::Double)
        .contiguous()
        .reshape([-1]);
    let e = expected.to_kind(Kind::Double).contiguous().reshape([-1]);
    let id = case["id"].as_str().unwrap();
    if a.numel() != e.numel() {
        return Err(format!(
            "{id}/{name}: {} elements, expected {} ({:?} vs {:?})",
            a.numel(),
            e.numel(),
            actual.size(),
            expected.size()
        ));
    }
    let diff = (&a - &e).abs();
    let excess = &diff - (e.abs() * rtol + atol);
    let worst = excess.argmax(None, false).int64_value(&[]);
    if excess.get(worst).double_value(&[]) > 0.0 {
        return Err(format!(
            "{id}/{name}: element {worst}: {} vs expected {} (|diff| {:.3e} > atol {atol:e} + rtol {rtol:e})",
            a.get(worst).double_value(&[]),
            e.get(worst).double_value(&[]),
            diff.get(worst).double_value(&[])
        ));
    }
    if let Some(m) = t["mean_abs_max"].as_f64() {
        let mean = diff.mean(Kind::Double).double_value(&[]);
        if mean > m {
            return Err(format!("{id}/{name}: mean |diff| {mean:.3e} > {m:e}"));
        }
    }
    Ok(())
}

/// A float64 series (losses etc.) as a Vec.
pub fn series(case: &Value, name: &str) -> Vec<f64> {
    Vec::<f64>::try_from(array(case, name).to_kind(Kind::Double).reshape([-1])).unwrap()
}

/// `|cos(a_j, b_j)| >= min` for each column pair of two (n, k) matrices.
pub fn check_abs_cosine(id: &str, a: &Tensor, b: &Tensor, min: f64) -> Result<(), String> {
    let a = a.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    let b = b.to_device(tch::Device::Cpu).to_kind(Kind::Double);
    for j in 0..a.size()[1] {
        let (x, y) = (a.select(1, j), b.select(1, j));
        let c = (x.dot(&y) / (x.norm() * y.norm())).abs().double_value(&[]);
        if c < min {
            return Err(format!("{id}: column {j}: |cos| {c} < {min}"));
        }
    }
    Ok(())
}

/// Replays the manifest's random draws (`rng_draws`: `fn` `rand` or `randn`, `shape`) from the
/// case's seed on the CPU generator, and checks those it stores (`stored_as`). Leaves the
/// generator after the last draw.
pub fn replay_draws(case: &Value) -> Result<(), String> {
    tch::manual_seed(case["seed"].as_i64().unwrap());
    for spec in case["rng_draws"].as_array().unwrap() {
        let shape: Vec<i64> = spec["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        let draw = match spec["fn"].as_str().unwrap() {
            "rand" => Tensor::rand(shape.as_slice(), (Kind::Float, tch::Device::Cpu)),
            "randn" => Tensor::randn(shape.as_slice(), (Kind::Float, tch::Device::Cpu)),
            other => return Err(format!("{}: unexpected draw {other}", case["id"])),
        };
        if let Some(name) = spec["stored_as"].as_str() {
            check(case, name, &draw)?;
        }
    }
    Ok(())
}
