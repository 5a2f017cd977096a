"""GPU check of bib-ae (issue 13): train the quick preset on a CUDA device, then time sampling at
batch 10,000 (the published GPU figure on the ILD photons: 1.42 ms per shower, arXiv 2005.05334)::

    CALOBENCH_DATA=/path/to/data python plugins/bibae/scripts/gpu_timing.py [--device cuda] [--out runs/bibae-gpu]

Prints the training wall time and ms per shower (best of 3 after a warm-up) for the quick default
(flow sampler, copula calibration) and for the published sampling (N(0, 1), post-processor on, no
calibration). Not yet run on a GPU (none was available to this task).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from calobench_bibae.generator import BIBAE

from calobench.datasets import open_role

DATASET = "synthetic-ds1-photons"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="runs/bibae-gpu")
    parser.add_argument("--batch", type=int, default=10000)
    args = parser.parse_args()
    with open_role(DATASET, "train") as handle:
        train = handle.read()
    model = BIBAE(train.geometry, preset="quick", dataset=DATASET, device=args.device)
    start = time.perf_counter()
    model.fit(train, None, seed=0, workdir=None)
    print(f"training on {args.device}: {time.perf_counter() - start:.1f} s", flush=True)
    model.save(args.out)
    energies = np.random.default_rng(0).choice(2.0 ** np.arange(8, 23), args.batch)
    for sampler, post, calibration in (("flow", False, "copula"), ("normal", True, "none")):
        model.config.update(latent_sampler=sampler, post_processor=post, calibration=calibration)
        model.sample(energies, seed=0, batch_size=args.batch)  # warm-up (and marginals tabulation)
        best = float("inf")
        for seed in range(3):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            start = time.perf_counter()
            model.sample(energies, seed=seed + 1, batch_size=args.batch)
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        print(
            f"sampling {sampler}, post-processor {post}, calibration {calibration}: "
            f"{1e3 * best / args.batch:.4f} ms per shower at batch {args.batch}",
            flush=True,
        )


if __name__ == "__main__":
    main()
