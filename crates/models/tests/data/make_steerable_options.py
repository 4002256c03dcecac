"""Reference values for tests/parity_pyramids.rs: plenoptic 1.1.0's SteerablePyramidFreq
with options the shared fixtures do not cover, and recon_pyr on level subsets.

Run from the repository root with the project's venv:
    /work/main/.venv/bin/python crates/models/tests/data/make_steerable_options.py
Writes crates/models/tests/data/steerable_options.npz (float32 arrays):
    cfg{k}_x, cfg{k}_{part}  for each configuration k in CONFIGS (repeated in the Rust test; parts named as the
    fixtures name them), and cfg{k}_recon_{levels}  for recon_pyr(levels=[...]).
"""
import os

import numpy as np
import plenoptic as po
import torch

CONFIGS = [
    dict(image_shape=[16, 24], height="auto", order=1, twidth=2, is_complex=False, downsample=False, tight_frame=True),
    dict(image_shape=[33, 26], height=2, order=2, twidth=1, is_complex=True, downsample=True, tight_frame=True),
    dict(image_shape=[16, 16], height=1, order=3, twidth=1, is_complex=True, downsample=False, tight_frame=False),
    dict(image_shape=[20, 36], height=1, order=4, twidth=3, is_complex=False, downsample=True, tight_frame=False),
]


def main():
    out = {}
    rng = np.random.default_rng(7)
    for k, cfg in enumerate(CONFIGS):
        h, w = cfg["image_shape"]
        x = rng.random((2, 1, h, w)).astype(np.float32)
        pyr = po.simul.SteerablePyramidFreq(**{**cfg, "image_shape": (h, w)})
        coeffs = pyr(torch.tensor(x))
        out[f"cfg{k}_x"] = x
        for key, v in coeffs.items():
            if isinstance(key, str):
                name = key
            else:
                name = f"band_s{key[0]}_o{key[1]}"
            if v.is_complex():
                out[f"cfg{k}_{name}_real"] = v.real.numpy()
                out[f"cfg{k}_{name}_imag"] = v.imag.numpy()
            else:
                out[f"cfg{k}_{name}"] = v.numpy()
        for levels in (["residual_lowpass"], [0], [pyr.num_scales - 1, "residual_highpass"]):
            r = pyr.recon_pyr(coeffs, levels=levels)
            out[f"cfg{k}_recon_" + "_".join(str(l) for l in levels)] = r.numpy()
        r = pyr.recon_pyr(coeffs, levels=[0], bands=[1])
        out[f"cfg{k}_recon_0_band1"] = r.numpy()
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steerable_options.npz")
    np.savez(path, **out)
    print(f"wrote {path}: {len(out)} arrays")


if __name__ == "__main__":
    main()
