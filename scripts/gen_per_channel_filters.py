"""Reference outputs for crates/models/tests/per_channel.rs: current plenoptic's per-channel
filter parameters, where `out_channels` is inferred from the length of a list given for
`on_center`, `center_std` or `surround_std` (CenterSurround and the front ends built on it)
or `std` (Gaussian), including even kernel sizes, and the combinations it refuses.

Run with current plenoptic (2.1.1; `out_channels=None`, "inferred", appeared in 1.3.0) on
torch 2.13, e.g. with plenoptic installed without dependencies into a folder:
    PYTHONPATH=/path/to/plenoptic-2.1.1 python scripts/gen_per_channel_filters.py
Writes crates/models/tests/data/per_channel/:
    cases.json     per case: the synthsweep spec, plenoptic's constructor call, the seed set
                   right before construction (front ends draw their scalars), and either
                   the output's array name and shape, or plenoptic's error message
    expected.npz   x (1, 1, 17, 20) float32 in [0, 1], and one output array per case
"""
import json
import os

import numpy as np
import plenoptic as po
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/models/tests/data/per_channel")

# (synthsweep spec, plenoptic class, plenoptic keyword arguments)
CASES = [
    ({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.5]}, "Gaussian", dict(kernel_size=5, std=[1.0, 2.5])),
    ({"name": "gaussian", "kernel_size": 6, "std": [0.8, 1.5, 3.0]}, "Gaussian", dict(kernel_size=6, std=[0.8, 1.5, 3.0])),
    ({"name": "gaussian", "kernel_size": [4, 7], "std": [2.0]}, "Gaussian", dict(kernel_size=(4, 7), std=[2.0])),
    ({"name": "gaussian", "kernel_size": 5, "std": 2.0, "out_channels": 3}, "Gaussian", dict(kernel_size=5, std=2.0, out_channels=3)),
    ({"name": "gaussian", "kernel_size": 4, "std": [1.0, 2.0], "out_channels": 2, "pad_mode": "circular"}, "Gaussian", dict(kernel_size=4, std=[1.0, 2.0], out_channels=2, pad_mode="circular")),
    ({"name": "center_surround", "kernel_size": 6, "center_std": [1.0, 2.0]}, "CenterSurround", dict(kernel_size=6, center_std=[1.0, 2.0])),
    ({"name": "center_surround", "kernel_size": 7, "on_center": [True, False, True]}, "CenterSurround", dict(kernel_size=7, on_center=[True, False, True])),
    ({"name": "center_surround", "kernel_size": [6, 5], "on_center": [False, True], "center_std": [0.5, 1.5], "surround_std": [3.0, 6.0], "amplitude_ratio": 2.0, "pad_mode": "circular"},
     "CenterSurround", dict(kernel_size=(6, 5), on_center=[False, True], center_std=[0.5, 1.5], surround_std=[3.0, 6.0], amplitude_ratio=2.0, pad_mode="circular")),
    ({"name": "center_surround", "kernel_size": 5, "on_center": [True, False], "center_std": 1.5}, "CenterSurround", dict(kernel_size=5, on_center=[True, False], center_std=1.5)),
    ({"name": "center_surround", "kernel_size": 8, "center_std": [1.0, 2.0], "surround_std": [4.0, 5.0], "out_channels": 2}, "CenterSurround", dict(kernel_size=8, center_std=[1.0, 2.0], surround_std=[4.0, 5.0], out_channels=2)),
    ({"name": "center_surround", "kernel_size": 5, "on_center": [True]}, "CenterSurround", dict(kernel_size=5, on_center=[True])),
    ({"name": "linear_nonlinear", "kernel_size": 7, "on_center": [True, False]}, "LinearNonlinear", dict(kernel_size=7, on_center=[True, False])),
    ({"name": "luminance_gain_control", "kernel_size": 8, "on_center": [False, True]}, "LuminanceGainControl", dict(kernel_size=8, on_center=[False, True])),
    # refused by plenoptic
    ({"name": "center_surround", "kernel_size": 5, "surround_std": [4.0, 5.0]}, "CenterSurround", dict(kernel_size=5, surround_std=[4.0, 5.0])),
    ({"name": "center_surround", "kernel_size": 5, "center_std": [1.0, 2.0], "surround_std": [4.0, 5.0, 6.0]}, "CenterSurround", dict(kernel_size=5, center_std=[1.0, 2.0], surround_std=[4.0, 5.0, 6.0])),
    ({"name": "center_surround", "kernel_size": 5, "on_center": [True, False, True], "center_std": [1.0, 2.0]}, "CenterSurround", dict(kernel_size=5, on_center=[True, False, True], center_std=[1.0, 2.0])),
    ({"name": "center_surround", "kernel_size": 5, "center_std": [1.0, 2.0], "out_channels": 3}, "CenterSurround", dict(kernel_size=5, center_std=[1.0, 2.0], out_channels=3)),
    ({"name": "center_surround", "kernel_size": 5, "on_center": [True, False], "out_channels": 3}, "CenterSurround", dict(kernel_size=5, on_center=[True, False], out_channels=3)),
    ({"name": "gaussian", "kernel_size": 5, "std": [1.0, 2.0], "out_channels": 3}, "Gaussian", dict(kernel_size=5, std=[1.0, 2.0], out_channels=3)),
    ({"name": "luminance_contrast_gain_control", "kernel_size": 7, "on_center": [True, False]}, "LuminanceContrastGainControl", dict(kernel_size=7, on_center=[True, False])),
    ({"name": "linear_nonlinear", "on_center": [True, False], "pretrained": True}, "LinearNonlinear", dict(kernel_size=31, on_center=[True, False], pretrained=True, cache_filt=True)),
]
SEED = 3


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.random((1, 1, 17, 20)), dtype=torch.float32)
    arrays = {"x": x.numpy()}
    out = []
    for i, (spec, cls, kwargs) in enumerate(CASES):
        entry = dict(spec=spec, plenoptic=f"{cls}(**{kwargs})", seed=SEED)
        try:
            torch.manual_seed(SEED)
            model = getattr(po.models, cls)(**kwargs)
            with torch.no_grad():
                y = model(x)
        except Exception as e:
            entry["error"] = f"{type(e).__name__}: {e}"
        else:
            name = f"case{i}"
            arrays[name] = y.numpy()
            entry.update(array=name, shape=list(y.shape))
        out.append(entry)
        print(i, spec, entry.get("shape"), entry.get("error"))
    np.savez(os.path.join(OUT, "expected.npz"), **arrays)
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(dict(generator="scripts/gen_per_channel_filters.py", plenoptic=po.__version__, torch=torch.__version__, cases=out), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
