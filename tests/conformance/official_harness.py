"""Run the official CaloChallenge ``evaluate.py`` (CaloChallenge/homepage, ``code/``) unchanged on the
conformance files and collect its separation powers into ``expected.json``.

    NPY_ENABLE_CPU_FEATURES=X86_V2 python official_harness.py OFFICIAL_CODE_DIR FILES_DIR OUT_DIR

``FILES_DIR`` holds the files of ``conformance.py write``; the official code and its dependencies
(numpy, h5py, matplotlib, torch, scikit-learn) must be importable by this interpreter. Nothing of
the official code is copied here. Two harness-only changes, neither touching a number:

* matplotlib's usetex is kept off (the script sets it; rendering needs a LaTeX installation);
* after ``evaluate.py --mode hist-chi`` has run, the official helper functions ``plot_sparsity``,
  ``plot_ECR`` and ``plot_ECWidthR`` (defined in ``evaluate_plotting_helper.py`` but not called by
  ``evaluate.py``) are called on the official feature objects, which appends their separation
  powers to the same ``histogram_chi2_*.txt``.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from conformance import EDGES, SIMULATED, fingerprint  # noqa: E402

NAMES = {
    "E layer": "e_layer",
    "EC Eta layer": "ec_eta",
    "EC Phi layer": "ec_phi",
    "Width Eta layer": "width_eta",
    "Width Phi layer": "width_phi",
    "Sparsity layer": "sparsity",
    "EC r layer": "ec_r",
    "Width r layer": "width_r",
}


def parse(path: Path) -> dict[str, float]:
    """``histogram_chi2_*.txt`` as calobench's flat keys (``e_layer/12``, ``etot_einc_per_energy/256``)."""
    out: dict[str, float] = {}
    for name, value in re.findall(r"^(.+?): \n(\S+)\n", path.read_text(), flags=re.M):
        if name == "Etot / Einc":
            key = "etot_einc"
        elif name == "Voxel distribution":
            key = "voxel"
        elif name.startswith("Etot / Einc at E = "):
            key = f"etot_einc_per_energy/{int(float(name.split('= ')[1]))}"
        else:
            label, layer = name.rsplit(" ", 1)
            key = f"{NAMES[label]}/{layer}"
        out[key] = float(value)
    return out


def run_official(code: Path, generated: Path, reference: Path, dataset: str, out: Path, helpers: bool = True) -> None:
    """``evaluate.py --mode hist-chi`` on one pair (its reference cache removed before and after);
    with ``helpers``, also the official sparsity and centre/width-in-r helpers."""
    for cache in reference.parent.glob(f"{reference.stem}.pkl"):
        cache.unlink()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rc = plt.rc

    def no_usetex(group, **kwargs):
        if group == "text":
            kwargs.pop("usetex", None)
            kwargs.pop("preamble", None)
            if not kwargs:
                return None
        return rc(group, **kwargs)

    plt.rc = no_usetex
    cwd = os.getcwd()
    os.chdir(code)  # the script reads binning_dataset_*.xml from its working directory
    sys.path.insert(0, str(code))
    argv = sys.argv
    sys.argv = ["evaluate.py", "-i", str(generated), "-r", str(reference), "-m", "hist-chi", "-d", dataset]
    sys.argv += ["--output_dir", str(out)]
    try:
        scope = runpy.run_path(str(code / "evaluate.py"), run_name="__main__")
        for helper in ("plot_sparsity", "plot_ECR", "plot_ECWidthR") if helpers else ():
            scope[helper](scope["hlf"], scope["reference_hlf"], scope["args"])
    finally:
        sys.argv, plt.rc = argv, rc
        os.chdir(cwd)
        sys.path.remove(str(code))
        for cache in reference.parent.glob(f"{reference.stem}.pkl"):  # the script's reference cache
            cache.unlink()


def main(code: Path, files: Path, out: Path) -> None:
    import numpy as np

    cases = {**{k: v[1] for k, v in SIMULATED.items()}, **{k: v[1] for k, v in EDGES.items()}}
    expected = {"numpy": np.__version__, "cases": {}}
    for case, dataset in cases.items():
        generated, reference = files / f"{case}-generated.hdf5", files / f"{case}-reference.hdf5"
        target = out / case
        if not (target / f"histogram_chi2_{dataset}.txt").exists():
            run_official(code, generated, reference, dataset, target)
        expected["cases"][case] = {
            "dataset": dataset,
            "fingerprint": fingerprint(reference, generated),
            "official": parse(target / f"histogram_chi2_{dataset}.txt"),
        }
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*(Path(a).resolve() for a in sys.argv[1:4]))
