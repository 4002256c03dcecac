"""Reference for crates/synth/tests/nan_target.rs: which of plenoptic's Portilla-Simoncelli
statistics are NaN for a target whose bands have zero variance (64x64 vertical bars 16 px
wide, values 0 and 1, n_scales = 2, plenoptic 1.1.0 defaults otherwise), and how many values
of each. The positions are found as plenoptic would show them: `convert_to_dict` of the
representation's NaN mask (redundant positions are NaN in the dict, the NaN ones exactly 1).

Run with a venv that has plenoptic 1.1.0 on torch 2.13:
    python scripts/gen_nan_target.py
Writes crates/synth/tests/data/nan_target.json.
"""
import json
import os

import plenoptic as po
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates/synth/tests/data/nan_target.json")


def bars():
    x = torch.zeros(1, 1, 64, 64)
    x[..., (torch.arange(64) // 16) % 2 == 0] = 1.0
    return x


def main():
    model = po.simul.PortillaSimoncelli((64, 64), n_scales=2)
    rep = model(bars())
    mask = torch.isnan(rep).to(torch.float32)
    stats = {}
    for key, part in model.convert_to_dict(mask).items():
        if torch.is_tensor(part):
            n = int((part == 1).sum())
            if n:
                stats[key] = n
    out = dict(
        generator="scripts/gen_nan_target.py",
        plenoptic=po.__version__,
        image="64x64 vertical bars 16 px wide (columns 0-15 = 1, 16-31 = 0, ...)",
        model=dict(name="portilla_simoncelli", n_scales=2),
        representation_len=rep.shape[-1],
        nan_values=int(torch.isnan(rep).sum()),
        nan_statistics=stats,
    )
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
