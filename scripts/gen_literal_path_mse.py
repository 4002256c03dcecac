"""Reference value for crates/cli/tests/sweep_e2e.rs (`literal_paths_and_as_gray_reach_the_computation`):
plenoptic's mse between the two 16x16 PGM files that test writes, `imgs/a[1].pgm` (bytes 0..255) and
`imgs/b.pgm` (255 minus those), loaded with plenoptic's `load_images` (as_gray, its default).

Run with a venv that has plenoptic 1.1.0 on torch 2.13 (see README, "Parity"):
    python scripts/gen_literal_path_mse.py
Prints the value the test checks (0.33594775, to float32 precision); writes nothing in the repository.
"""
import os
import tempfile

import numpy as np
import plenoptic as po


def pgm(path, values):
    with open(path, "wb") as f:
        f.write(b"P5 16 16 255\n" + bytes(values))


with tempfile.TemporaryDirectory() as d:
    # The literal name with glob characters, as the test uses it.
    a, b = os.path.join(d, "a[1].pgm"), os.path.join(d, "b.pgm")
    pgm(a, range(256))
    pgm(b, [255 - k for k in range(256)])
    x, y = po.load_images(a), po.load_images(b)
    value = po.metric.mse(x, y).item()
    exact = np.mean(((np.arange(256) - (255 - np.arange(256))) / 255.0) ** 2)
    print(f"mse {value:.8f} (float64 closed form {exact:.8f})")
