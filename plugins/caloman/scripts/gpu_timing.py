"""Train CaloMan on a GPU and time its sampling at large batches (the talk: 0.025 ms per shower at
batch 10,000 on a Titan V, arXiv 2211.15380 / ML4Jets 2022).

    CALOBENCH_DATA=... python plugins/caloman/scripts/gpu_timing.py --out runs/caloman-gpu \\
        --preset quick --batches 10000 50000 --json gpu_timing.json

Trains with ``calobench train`` semantics (a resumable run directory; an existing finished run is
reused), then for every batch size samples ``--repeats`` times ``max(batch, --showers)`` showers
(incident energies drawn from the training file) after one warm-up, synchronizing the device around
each timing, and reports milliseconds per shower (best and mean). Runs on the CPU too (``--device
cpu``), e.g. to check the script with ``--preset smoke``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _synchronize(device) -> None:
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    from calobench.generator.runs import ENERGIES_FILE, load_run_model, train_run

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="synthetic-ds1-photons")
    parser.add_argument("--out", type=Path, default=Path("runs/caloman-gpu"))
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batches", nargs="+", type=int, default=[10000, 50000])
    parser.add_argument("--showers", type=int, default=100000, help="showers per timing (at least one batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    trained = train_run("caloman", args.dataset, args.out, preset=args.preset, device=args.device)
    wall = time.perf_counter() - started
    _, model = load_run_model(args.out, device=args.device)
    pool = np.load(args.out / ENERGIES_FILE, allow_pickle=False)
    rng = np.random.default_rng(0)
    result = {
        "preset": args.preset,
        "device": trained.run.get("device"),
        "training_seconds": trained.run.get("training_seconds"),
        "this_call_seconds": wall,
        "already_trained": trained.already_finished,
        "model_info": trained.run.get("model_info"),
        "batches": {},
    }
    for batch in args.batches:
        energies = rng.choice(pool, size=max(batch, args.showers))
        model.sample(energies[:batch], seed=0, batch_size=batch)  # warm-up (allocations, kernels)
        times = []
        for repeat in range(args.repeats):
            _synchronize(model.device)
            start = time.perf_counter()
            model.sample(energies, seed=repeat, batch_size=batch)
            _synchronize(model.device)
            times.append(time.perf_counter() - start)
        per_shower = [1e3 * t / len(energies) for t in times]
        result["batches"][str(batch)] = {
            "n_showers": len(energies),
            "ms_per_shower_best": min(per_shower),
            "ms_per_shower_mean": float(np.mean(per_shower)),
        }
        print(f"batch {batch}: {min(per_shower):.4f} ms per shower (best of {args.repeats}, {len(energies)} showers)")
    print(json.dumps(result, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
