"""The latent size ``latent_dim = "auto"`` picks on a data set's training file, without training.

    CALOBENCH_DATA=... python plugins/caloman/scripts/auto_dimension.py synthetic-ds1-photons synthetic-ds2 \\
        --showers 2000 5000 20000

For every data set and subsample size it prints the intrinsic-dimension estimate (calobench's
``intrinsic_dimension`` metric on a seeded random subsample of the training showers, as CaloMan's
``fit`` does it), its bootstrap error and the latent size the rule gives. The quick preset measures
5,000 showers and the paper preset 20,000.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from calobench_caloman.dimension import choose_latent_dim

    from calobench.datasets import open_role

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("datasets", nargs="+")
    parser.add_argument("--showers", nargs="+", type=int, default=[5000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print("| data set | voxels | showers measured | estimate | error | latent_dim | seconds |")
    print("|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        with open_role(dataset, "train") as source:
            geometry = source.geometry
            n_total = source.n_showers
            rng = np.random.default_rng(args.seed)
            wanted = max(args.showers)
            keep = np.sort(rng.choice(n_total, min(wanted, n_total), replace=False))
            parts, start = [], 0
            for chunk in source.iter_chunks():
                rows = keep[(keep >= start) & (keep < start + len(chunk))] - start
                if len(rows):
                    parts.append(np.asarray(chunk.energies[rows], dtype=np.float32))
                start += len(chunk)
        energies = np.concatenate(parts)
        for n in args.showers:
            started = time.perf_counter()
            choice = choose_latent_dim(
                "auto", energies, geometry.threshold, max_showers=min(n, len(energies)), seed=args.seed
            )
            print(
                f"| {dataset} | {geometry.n_voxels} | {choice.n_showers} | {choice.estimate:.1f} | "
                f"{choice.error:.1f} | {choice.latent_dim} | {time.perf_counter() - started:.0f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
