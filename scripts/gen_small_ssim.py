"""Reference values for crates/models/tests/small_ssim.rs: plenoptic 1.1.0's SSIM and
MS-SSIM on images smaller than the 11x11 window (and MS-SSIM whose coarse scales are).

Run with a venv that has plenoptic 1.1.0 on torch 2.13 (see README, "Parity"):
    python scripts/gen_small_ssim.py
Writes crates/models/tests/data/small_ssim/:
    a.pgm, b.pgm     two 64x64 8-bit images: a smooth pattern, and it plus faint noise;
                     every case uses their top-left HxW crops (value k is k/255)
    expected.json    per case: the metric, its parameters, the crop size, plenoptic's value
                     in float32 (what synthsweep computes in; "nan" for NaN), a tolerance
                     calibrated as max(1e-5, 10 |f32 - f64|) (synthsweep sums its separable window in another order: about 1e-6 apart), and the warnings plenoptic
                     emitted (message text), or the exception if plenoptic refused the size
                     (it refuses none: every size from 1x1 up is computed).
"""
import json
import os
import warnings

import numpy as np
import plenoptic as po
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/models/tests/data/small_ssim")

SSIM_SIZES = [(8, 8), (10, 10), (10, 40), (11, 11), (11, 40), (1, 1), (2, 5), (3, 3)]
MS_SSIM_SIZES = [(32, 32), (40, 40), (41, 41), (64, 64), (8, 8), (11, 40), (3, 3)]
PADS = [False, "constant", "reflect", "replicate", "circular"]


def images():
    rng = np.random.default_rng(10)
    y, x = np.mgrid[0:64, 0:64] / 64.0
    smooth = 0.5 + 0.25 * np.sin(2 * np.pi * (1.3 * x + 0.4 * y)) + 0.15 * np.cos(2 * np.pi * 2.1 * y * x)
    smooth += 0.05 * rng.standard_normal((64, 64))
    a = np.clip(np.round(smooth * 255), 0, 255).astype(np.uint8)
    noisy = a.astype(np.float64) + rng.normal(0, 4.0, size=a.shape)
    b = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return a, b


def write_pgm(path, arr):
    h, w = arr.shape
    with open(path, "wb") as f:
        f.write(f"P5\n{w} {h}\n255\n".encode())
        f.write(arr.tobytes())


def run(fn, a, b, dtype):
    ta = torch.as_tensor(a[None, None] / 255.0, dtype=dtype)
    tb = torch.as_tensor(b[None, None] / 255.0, dtype=dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            v = fn(ta, tb)
        except Exception as e:  # plenoptic refuses (or crashes on) this size
            return None, [], f"{type(e).__name__}: {e}"
    # Only plenoptic's own warnings (not torch's deprecation notes).
    ours = [str(w.message) for w in caught if "plenoptic" in w.filename]
    return float(v.flatten()[0]), ours, None


def case(metric, params, size, fn, a, b):
    h, w = size
    a, b = a[:h, :w], b[:h, :w]
    v32, warns, err = run(fn, a, b, torch.float32)
    out = dict(metric=metric, params=params, size=[h, w])
    if err is not None:
        out["error"] = err
        return out
    v64, _, _ = run(fn, a, b, torch.float64)
    if np.isnan(v32):  # JSON has no NaN: the weighted mean of a 1x1 map is 0/0
        out.update(value="nan", warnings=warns)
        return out
    out.update(value=v32, value_f64=v64, atol=max(1e-5, 10 * abs(v32 - v64)), warnings=warns)
    return out


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    a, b = images()
    write_pgm(os.path.join(OUT, "a.pgm"), a)
    write_pgm(os.path.join(OUT, "b.pgm"), b)
    cases = []
    for size in SSIM_SIZES:
        for weighted in (False, True):
            for pad in PADS:
                fn = lambda x, y, w=weighted, p=pad: po.metric.ssim(x, y, weighted=w, pad=p)
                cases.append(case("ssim", dict(weighted=weighted, pad=pad), size, fn, a, b))
    for size in MS_SSIM_SIZES:
        cases.append(case("ms_ssim", {}, size, po.metric.ms_ssim, a, b))
    # Three scales: the coarsest is 8x8 at 32 px.
    factors = [0.3, 0.4, 0.3]
    for size in [(32, 32), (41, 41)]:
        fn = lambda x, y: po.metric.ms_ssim(x, y, power_factors=factors)
        cases.append(case("ms_ssim", dict(power_factors=factors), size, fn, a, b))
    doc = dict(
        generator="scripts/gen_small_ssim.py",
        plenoptic=po.__version__,
        torch=torch.__version__,
        images=["a.pgm", "b.pgm"],
        cases=cases,
    )
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    for c in cases:
        print(c["metric"], c["params"], c["size"], c.get("value"), c.get("atol"), c.get("error"), len(c.get("warnings", [])))


if __name__ == "__main__":
    main()
