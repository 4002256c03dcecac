"""Reference for crates/models/tests/ps_odd.rs: Portilla-Simoncelli (n_scales = 2, plenoptic
1.1.0 defaults otherwise) on crops of sweeps/images/einstein_64.pgm whose coarsest
reconstructed lowpass (H/4 x W/4) is odd in width (44x44, 48x44), odd in height only
(44x48) or even (40x40), computed twice:

  plenoptic   plenoptic as it is: `signal.autocorrelation` calls `irfft2` without the output
              size, so for an odd width the autocorrelation comes back one column short;
  true        the same with `irfft2(..., s=x.shape[-2:])`, the true circular autocorrelation.

Run with a venv that has plenoptic 1.1.0 on torch 2.13:
    python scripts/gen_ps_odd.py
Writes crates/models/tests/data/ps_odd/expected.npz (<HxW>__plenoptic, <HxW>__true:
float32 (1, 1, 524)) and expected.json (sizes, and per size the statistics where the two
differ, as `convert_to_dict` names them, with counts).
"""
import json
import os

import numpy as np
import plenoptic as po
import torch
from plenoptic.tools import signal

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "crates/models/tests/data/ps_odd")
SIZES = [(44, 44), (48, 44), (44, 48), (40, 40), (36, 36), (40, 36)]


def true_autocorrelation(x):
    ac = torch.fft.rfft2(x)
    ac = ac.real.pow(2) + ac.imag.pow(2)
    ac = torch.fft.irfft2(ac, s=x.shape[-2:])
    return torch.fft.fftshift(ac, dim=(-2, -1)) / torch.mul(*x.shape[-2:])


def main():
    img = po.load_images(os.path.join(ROOT, "sweeps/images/einstein_64.pgm"))
    original = signal.autocorrelation
    arrays, meta = {}, {}
    for h, w in SIZES:
        x = img[..., :h, :w]
        model = po.simul.PortillaSimoncelli((h, w), n_scales=2)
        key = f"{h}x{w}"
        signal.autocorrelation = original
        try:
            plen = model(x)
        except Exception as e:  # the coarsest width equals spatial_corr_width
            signal.autocorrelation = true_autocorrelation
            arrays[f"{key}__true"] = model(x).numpy()
            signal.autocorrelation = original
            meta[key] = dict(coarsest=[h // 4, w // 4], plenoptic_error=f"{type(e).__name__}: {e}")
            print(key, meta[key])
            continue
        signal.autocorrelation = true_autocorrelation
        true = model(x)
        signal.autocorrelation = original
        arrays[f"{key}__plenoptic"] = plen.numpy()
        arrays[f"{key}__true"] = true.numpy()
        differ = ((plen - true).abs() > 1e-5).to(torch.float32)
        stats = {}
        for name, part in model.convert_to_dict(differ).items():
            if torch.is_tensor(part) and int((part == 1).sum()):
                stats[name] = int((part == 1).sum())
        meta[key] = dict(coarsest=[h // 4, w // 4], differing=stats,
                         max_difference=float((plen - true).abs().max()))
        print(key, meta[key])
    os.makedirs(OUT, exist_ok=True)
    np.savez(os.path.join(OUT, "expected.npz"), **arrays)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(dict(generator="scripts/gen_ps_odd.py", plenoptic=po.__version__,
                       image="sweeps/images/einstein_64.pgm, top-left crops", n_scales=2,
                       sizes=meta), f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
