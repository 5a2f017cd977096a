"""DS2 quick check of the convolutional path: ``bib-ae`` (quick preset; ``BIBAE_SET`` = JSON config
overrides, measured with ``{"max_train_showers": 10000}``) and ``baseline-uncorrelated`` on the first
20,000 training showers, each sampling 10,000 showers at the incident energies of the first 10,000
reference showers, evaluated against them (separation powers, both classifiers; quick preset)::

    CALOBENCH_DATA=/path/to/data BIBAE_SET='{"max_train_showers": 10000}' OMP_NUM_THREADS=1 \\
        python plugins/bibae/scripts/ds2_quick.py bib-ae baseline-uncorrelated
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from calobench_bibae.generator import BIBAE

from calobench.datasets import open_role
from calobench.evaluation import evaluate
from calobench.formats import write_showers
from calobench.generator.baselines.uncorrelated import UncorrelatedVoxels
from calobench.leaderboard.table import headline_values

DATASET = "synthetic-ds2"
OUT = Path("runs/ds2-quick")


def _format(value) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:.4f} ± {value[1]:.4f}"
    return "-" if value is None else f"{value:.4g}"


def main(names: list[str]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    OUT.mkdir(parents=True, exist_ok=True)
    with open_role(DATASET, "train") as handle:
        train = handle.read(0, 20000)
    with open_role(DATASET, "reference") as handle:
        reference = handle.read(0, 10000)
    reference_file = OUT / "reference-first-10000.hdf5"
    if not reference_file.exists():
        write_showers(reference_file, reference)
    overrides = json.loads(os.environ.get("BIBAE_SET", "{}"))
    for name in names:
        if name == "bib-ae":
            model = BIBAE(train.geometry, overrides, preset="quick", dataset=DATASET)
        else:
            model = UncorrelatedVoxels(train.geometry, preset="quick", dataset=DATASET)
        cpu, wall = time.process_time(), time.time()
        model.fit(train, None, seed=0)
        print(f"{name}: training {time.process_time() - cpu:.0f} s CPU, {time.time() - wall:.0f} s wall", flush=True)
        wall = time.time()
        generated = model.sample_showers(reference.incident_energies, seed=1)
        print(f"{name}: sampling {time.time() - wall:.1f} s for {len(reference)} showers", flush=True)
        generated_file = OUT / f"{name}.hdf5"
        write_showers(generated_file, generated)
        report = evaluate(
            generated_file,
            reference_file,
            dataset=DATASET,
            metrics=["separation_power", "classifier_low", "classifier_high"],
            preset="quick",
            out=OUT / f"eval-{name}",
            plots=False,
            progress=False,
        )
        values = headline_values(report)
        print(
            name,
            " ".join(
                f"{label} {_format(values.get(key))}"
                for key, label in (
                    ("auc_low", "AUC low"),
                    ("auc_high", "AUC high"),
                    ("sep_etot", "sep E_tot/E_inc"),
                    ("sep_elayer", "sep E_layer"),
                    ("sep_voxel", "sep voxel"),
                )
            ),
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or ["bib-ae", "baseline-uncorrelated"])
