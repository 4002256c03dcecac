//! User models: a TorchScript module exported by the venv's torch (`torch.jit.save`),
//! loaded with tch's CModule, matching PyTorch's output and differentiable w.r.t. the image.
use serde_json::json;
use std::process::Command;
use synthsweep_models::build_model;
use synthsweep_testkit_tch::venv_python;
use tch::{Kind, Tensor};

const EXPORT: &str = r#"
import sys, torch
torch.manual_seed(0)
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 3, 5, padding=2, padding_mode="reflect")
    def forward(self, x):
        return torch.nn.functional.softplus(self.conv(x)) ** 0.5
net = Net().eval()
for p in net.parameters():
    p.requires_grad_(False)
torch.jit.save(torch.jit.script(net), sys.argv[1])
x = torch.rand(2, 1, 20, 24)
x.requires_grad_(True)
y = net(x)
y.sum().backward()
import numpy as np
np.savez(sys.argv[2], x=x.detach().numpy(), y=y.detach().numpy(), grad=x.grad.numpy())
"#;

#[test]
fn torchscript_model_matches_pytorch_forward_and_gradient() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("net.pt");
    let reference = dir.path().join("ref.npz");
    // torch.jit.script reads the class's source, so the exporter must be a file.
    let script = dir.path().join("export.py");
    std::fs::write(&script, EXPORT).unwrap();
    let status = Command::new(venv_python())
        .arg(&script)
        .arg(&module)
        .arg(&reference)
        .status()
        .unwrap();
    assert!(status.success(), "exporting the TorchScript module failed");
    let r: Vec<(String, Tensor)> = Tensor::read_npz(&reference).unwrap();
    let get = |n: &str| r.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();

    let model = build_model(&json!({"name": "torchscript", "path": module})).unwrap();
    model.check_input(&[2, 1, 20, 24]).unwrap();
    let x = get("x").set_requires_grad(true);
    let y = model.forward(&x);
    assert!((&y - get("y")).abs().max().double_value(&[]) < 1e-6);
    let g = Tensor::run_backward(&[y.sum(Kind::Float)], &[&x], false, false).remove(0);
    assert!((&g - get("grad")).abs().max().double_value(&[]) < 1e-5);

    // A shape the module cannot take is reported up front.
    let e = model.check_input(&[1, 2, 20, 24]).unwrap_err().to_string();
    assert!(e.contains("[1, 2, 20, 24]"), "{e}");

    // Resolving the spec records the file's content; building checks it.
    let resolved =
        synthsweep_models::resolve_spec("model", &json!({"name": "torchscript", "path": module}))
            .unwrap();
    let sha = resolved["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64, "{resolved}");
    build_model(&resolved).unwrap();
    let mut wrong = resolved.clone();
    wrong["sha256"] = "0".repeat(64).into();
    let e = build_model(&wrong).err().unwrap().to_string();
    assert!(e.contains("sha256") && e.contains("has changed"), "{e}");
    std::fs::write(&module, b"not the same file").unwrap();
    let e = build_model(&resolved).err().unwrap().to_string();
    assert!(e.contains("has changed") && e.contains(&sha), "{e}");
}

#[test]
fn torchscript_path_errors_name_the_file() {
    let e = build_model(&json!({"name": "torchscript", "path": "/no/model.pt"}))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/no/model.pt"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pt");
    std::fs::write(&junk, b"junk").unwrap();
    let e = build_model(&json!({"name": "torchscript", "path": junk}))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("not a TorchScript module"), "{e}");
    let e = build_model(&json!({"name": "torchscript"}))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("path"), "{e}");
}
