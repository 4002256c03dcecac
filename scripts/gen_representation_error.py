"""Reference values for the representation-error check of crates/cli/tests/report.rs:
plenoptic 1.1.0's representation error after a short metamer synthesis,
`plenoptic.synthesize.metamer._representation_error(metamer)` = model(metamer) -
target_representation, which `plot_representation_error` draws (its batch 0), for the `representation_error` images rows that
`synthsweep run` writes and the report draws.

Run with a venv that has plenoptic 1.1.0 on torch 2.13 (see README, "Parity"):
    python scripts/gen_representation_error.py
Writes crates/cli/tests/data/representation_error/:
    <image>.pgm      8-bit crops of plenoptic's einstein image (value k is k/255)
    expected.json    per case: the image file, the model as a sweep spec gives it, seed,
                     max_iter (plenoptic's default optimizer: Adam, lr 0.01, amsgrad), the
                     representation error of batch 0 ((C, H, W), float32, flattened in C, H,
                     W order) and its tolerance. The tolerance follows the synthesis
                     fixtures' rule (shared/fixtures/synth/README.md): the case re-run with
                     its initial image perturbed by a relative 1e-6, 5x the observed
                     deviation rounded up, with a floor of atol 1e-4 (images); mean_abs_max
                     likewise, with a floor of 1e-5; rtol 1e-4.
Each case: models built first, then `torch.manual_seed(seed)` right before `Metamer(...)`
(as synthsweep seeds each task), `synthesize(max_iter)` with plenoptic's defaults.
"""
import json
import math
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars

import numpy as np  # noqa: E402
import plenoptic as po  # noqa: E402
import torch  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/cli/tests/data/representation_error")

# (case id, image file, crop top, crop left, size, sweep model spec, seed, max_iter)
CASES = [
    ("gauss_1ch", "ein24.pgm", 80, 104, 24, {"name": "gaussian", "kernel_size": 5, "std": 1.5}, 401, 8),
    ("gauss_2ch", "ein16.pgm", 88, 112, 16, {"name": "gaussian", "kernel_size": 5, "std": [1.0, 3.0]}, 7, 6),
]


def build(spec):
    assert spec["name"] == "gaussian"
    std = spec["std"]
    if isinstance(std, list):
        # plenoptic 1.1.0's constructor asserts `std > 0` on the tensor, which fails for more
        # than one value: build with one std per channel, then set them.
        model = po.simul.Gaussian(spec["kernel_size"], std=1.0, out_channels=len(std))
        with torch.no_grad():
            model.std.copy_(torch.tensor(std, dtype=torch.float32))
    else:
        model = po.simul.Gaussian(spec["kernel_size"], std=float(std))
    po.tools.remove_grad(model)
    model.eval()
    return model


def write_pgm(path, arr):
    h, w = arr.shape
    with open(path, "wb") as f:
        f.write(f"P5\n{w} {h}\n255\n".encode())
        f.write(arr.tobytes())


def run(model, img, seed, max_iter, perturb=0.0):
    torch.manual_seed(seed)
    met = po.synth.Metamer(img, model)
    if perturb:
        with torch.no_grad():
            met._metamer.mul_(1.0 + perturb)
    met.synthesize(max_iter=max_iter)
    with torch.no_grad():
        err = po.synthesize.metamer._representation_error(met)
    return err[0].detach().to(torch.float32)


def round_up(x, floor):
    """5x the deviation, rounded up to one significant digit, at least `floor`."""
    v = 5.0 * x
    if v <= floor:
        return floor
    e = math.floor(math.log10(v))
    return math.ceil(v / 10**e) * 10**e


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    ein = np.round(po.data.einstein().squeeze().numpy() * 255).astype(np.uint8)
    cases = []
    for cid, fname, top, left, size, spec, seed, max_iter in CASES:
        crop = ein[top:top + size, left:left + size]
        write_pgm(os.path.join(OUT, fname), crop)
        img = torch.as_tensor(crop[None, None] / 255.0, dtype=torch.float32)
        model = build(spec)
        err = run(model, img, seed, max_iter)
        again = run(model, img, seed, max_iter)
        assert torch.equal(err, again), "plenoptic's run is not deterministic"
        perturbed = run(model, img, seed, max_iter, perturb=1e-6)
        d = (err - perturbed).abs()
        cases.append({
            "id": cid,
            "image": fname,
            "crop": {"top": top, "left": left, "size": size},
            "model": spec,
            "seed": seed,
            "max_iter": max_iter,
            "optimizer": {"name": "adam", "lr": 0.01, "amsgrad": True, "note": "plenoptic's default"},
            "shape": list(err.shape),
            "representation_error": [float(v) for v in err.flatten()],
            "tolerance": {
                "rtol": 1e-4,
                "atol": round_up(float(d.max()), 1e-4),
                "mean_abs_max": round_up(float(d.mean()), 1e-5),
                "observed_perturbation_1e-6": {"max_abs": float(d.max()), "mean_abs": float(d.mean())},
            },
            "max_abs_value": float(err.abs().max()),
        })
        print(cid, tuple(err.shape), "max |err|", float(err.abs().max()), "perturbation max", float(d.max()))
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump({
            "plenoptic": po.__version__,
            "torch": torch.__version__,
            "what": "plenoptic.synthesize.metamer._representation_error(metamer)[0] (plot_representation_error's data) after synthesize(max_iter), plenoptic's defaults",
            "cases": cases,
        }, f, indent=1)


if __name__ == "__main__":
    main()
