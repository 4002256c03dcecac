"""Reference values for tests/parity_pyramids.rs: plenoptic 1.1.0's PortillaSimoncelli.

Run from the repository root with the project's venv:
    /work/main/.venv/bin/python crates/models/tests/data/make_ps_reference.py
Writes crates/models/tests/data/ps_reference.npz (float32 unless noted):
    x                 einstein_64 from the shared fixtures, (1, 1, 64, 64)
    grad              d sum(PS(x)) / dx with the fixture configuration
                      (image_shape (64, 64), n_scales 3, n_orientations 4, spatial_corr_width 7)
    grad_atol         (1,) float64: the fixtures' tolerance rule applied to grad,
                      nice_ceil(max(10 max|f32 - f64|, 1e-6 max|f64|)), with the pyramid
                      masks kept in float64 for the float64 run
    scales_{i}        PS(x, scales=SCALE_LISTS[i]) with the fixture configuration
    cfg{k}_x, cfg{k}_out   PS(**CONFIGS[k])(x) on random images (other sizes, batch, channels)
"""
import math
import os

import numpy as np
import plenoptic as po
import torch
from plenoptic.simulate.canonical_computations.steerable_pyramid_freq import SteerablePyramidFreq

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("SYNTHSWEEP_SHARED", os.path.join(HERE, "../../../../../shared"))
FIXTURE = dict(image_shape=(64, 64), n_scales=3, n_orientations=4, spatial_corr_width=7)
SCALE_LISTS = [
    ["pixel_statistics", "residual_lowpass"],
    [2, "residual_lowpass"],
    [0, "residual_highpass"],
    [1],
]
CONFIGS = [
    dict(shape=(2, 2, 32, 48), n_scales=2, n_orientations=3, spatial_corr_width=6),
    dict(shape=(1, 1, 32, 32), n_scales=1, n_orientations=4, spatial_corr_width=5),
]


def nice_ceil(v):
    e = math.floor(math.log10(v))
    for m in (1, 2, 5, 10):
        if m * 10.0**e >= v:
            return m * 10.0**e


def ps_float64(**kwargs):
    """PortillaSimoncelli in float64 with the pyramid masks never rounded to float32."""
    to = SteerablePyramidFreq.to
    SteerablePyramidFreq.to = lambda self, *a, **k: self
    try:
        ps = po.simul.PortillaSimoncelli(**kwargs)
    finally:
        SteerablePyramidFreq.to = to
    return ps.to(torch.float64)


def grad_of_sum(ps, x):
    x = x.clone().requires_grad_(True)
    ps(x).sum().backward()
    return x.grad


def main():
    out = {}
    x = torch.tensor(np.load(os.path.join(SHARED, "fixtures/models/images/einstein_64.npy")))
    out["x"] = x.numpy()
    ps = po.simul.PortillaSimoncelli(**FIXTURE)
    g32 = grad_of_sum(ps, x)
    g64 = grad_of_sum(ps_float64(**FIXTURE), x.double())
    out["grad"] = g32.numpy()
    err = (g32.double() - g64).abs().max().item()
    out["grad_atol"] = np.array([nice_ceil(max(10 * err, 1e-6 * g64.abs().max().item()))])
    with torch.no_grad():
        for i, scales in enumerate(SCALE_LISTS):
            out[f"scales_{i}"] = ps(x, scales=scales).numpy()
        rng = np.random.default_rng(11)
        for k, cfg in enumerate(CONFIGS):
            cfg = dict(cfg)
            shape = cfg.pop("shape")
            xk = torch.tensor(rng.random(shape).astype(np.float32))
            out[f"cfg{k}_x"] = xk.numpy()
            out[f"cfg{k}_out"] = po.simul.PortillaSimoncelli(shape[-2:], **cfg)(xk).numpy()
    path = os.path.join(HERE, "ps_reference.npz")
    np.savez(path, **out)
    print(f"wrote {path}; grad atol {out['grad_atol'][0]:g} (max |f32 - f64| {err:.3g})")


if __name__ == "__main__":
    main()
