"""Reference trajectory for crates/synth/tests/mad_ms_ssim.rs: one plenoptic 1.1.0 MAD
competition whose optimized metric is 1 - MS-SSIM (5 scales) on a 32 px image, where the
coarse scales (8, 4 and 2 px) are smaller than SSIM's 11x11 window.

Run with a venv that has plenoptic 1.1.0 on torch 2.13, from the repository root:
    SYNTHSWEEP_SHARED=/path/to/shared python scripts/gen_mad_ms_ssim.py
Reads the shared fixtures' ein32 image; writes crates/synth/tests/data/mad_ms_ssim_ein32/:
    case.json                 parameters, seed, iterations run, metric_tradeoff_lambda,
                              reference target, and how often plenoptic warned
    losses.npy, gradient_norm.npy, pixel_change_norm.npy   float64, one per iteration
    optimized_metric_loss.npy, reference_metric_loss.npy   float64, [0] = initial image
    initial_image.npy, mad_image.npy                        float32 (1, 1, 32, 32)
The tolerances are those of the shared MAD fixtures (manifest case mad_ssim_dist_max_ein32),
read by the test. The case maximizes 1 - MS-SSIM for 20 iterations: long enough to cross the
small-window scales many times, short of the point (about iteration 24) where MS-SSIM's
ReLU reaches 0. Minimizing instead drives the loss to ~0.005, where float32 noise in
1 - MS-SSIM (about 2e-6 absolute, plenoptic's own float32 error) exceeds the fixtures' rtol.
"""
import json
import os
import warnings

import numpy as np
import plenoptic as po
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.environ.get("SYNTHSWEEP_SHARED", os.path.join(ROOT, "..", "shared"))
OUT = os.path.join(ROOT, "crates/synth/tests/data/mad_ms_ssim_ein32")

CASE = dict(
    id="mad_ms_ssim_dist_max_ein32",
    image="images/ein32.npy",
    optimized_metric="ms_ssim_distance",
    reference_metric="mse",
    minmax="max",
    seed=7,
    params=dict(initial_noise=0.1, metric_tradeoff_lambda=None, range_penalty_lambda=0.1, allowed_range=[0, 1]),
    synthesize=dict(max_iter=20, store_progress=False, stop_criterion=1e-4, stop_iters_to_check=50),
)


def ms_ssim_distance(x, y):
    return 1 - po.metric.ms_ssim(x, y)


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    img = torch.as_tensor(np.load(os.path.join(SHARED, "fixtures/synth", CASE["image"])))
    assert img.shape == (1, 1, 32, 32) and img.dtype == torch.float32
    p = CASE["params"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(CASE["seed"])
        mad = po.synth.MADCompetition(
            img, ms_ssim_distance, po.metric.mse, CASE["minmax"],
            initial_noise=p["initial_noise"], metric_tradeoff_lambda=p["metric_tradeoff_lambda"],
            range_penalty_lambda=p["range_penalty_lambda"], allowed_range=tuple(p["allowed_range"]),
        )
        initial = mad.initial_image.detach().clone()
        mad.synthesize(**CASE["synthesize"])
    small = [w for w in caught if "for some scales" in str(w.message)]
    out = dict(CASE)
    out.update(
        generator="scripts/gen_mad_ms_ssim.py",
        plenoptic=po.__version__,
        torch=torch.__version__,
        iterations_run=len(mad.losses),
        metric_tradeoff_lambda=float(mad.metric_tradeoff_lambda),
        reference_metric_target=float(mad.reference_metric_loss[0]),
        plenoptic_small_scale_warnings=len(small),
        warning=str(small[0].message) if small else None,
    )
    with open(os.path.join(OUT, "case.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    series = dict(
        losses=mad.losses, gradient_norm=mad.gradient_norm, pixel_change_norm=mad.pixel_change_norm,
        optimized_metric_loss=mad.optimized_metric_loss, reference_metric_loss=mad.reference_metric_loss,
    )
    for name, v in series.items():
        np.save(os.path.join(OUT, f"{name}.npy"), torch.as_tensor(v).detach().double().numpy())
    np.save(os.path.join(OUT, "initial_image.npy"), initial.numpy())
    np.save(os.path.join(OUT, "mad_image.npy"), mad.mad_image.detach().numpy())
    print(json.dumps({k: out[k] for k in ("iterations_run", "metric_tradeoff_lambda", "plenoptic_small_scale_warnings")}))
    print("losses", np.asarray(torch.as_tensor(mad.losses))[[0, -1]])


if __name__ == "__main__":
    main()
