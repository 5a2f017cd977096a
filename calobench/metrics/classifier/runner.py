"""The classifier test: train N classifiers to tell reference from generated showers, report AUC and JSD.

Protocol (CaloChallenge, arXiv 2410.21611): equal-size samples (the larger one is subsampled),
per-class 60 / 20 / 20 % train / test / validation splits, best-test-accuracy network, isotonic
calibration fitted on the test split, AUC and JSD on the validation split; mean and standard
deviation (numpy ``std``, ddof = 0, as the published tables) over independent runs. Each run draws
its own split, initialization and batch order from ``(seed, run)``; the equal-size subsample is
drawn once from ``seed``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from calobench.errors import CalobenchError
from calobench.geometry import Geometry
from calobench.metrics.classifier.bdt import train_bdt
from calobench.metrics.classifier.inputs import ClassifierInputError, pair_inputs
from calobench.metrics.classifier.networks import DNN, Affine, build_cnn, cnn_kind
from calobench.metrics.classifier.presets import CLASSIFIER_MODES, classifier_config
from calobench.metrics.classifier.scores import auc_and_jsd
from calobench.metrics.classifier.training import (
    Batches,
    TrainedRun,
    input_transform,
    resolve_device,
    seeded,
    split_indices,
    train_classifier,
)
from calobench.metrics.features import HighLevelFeatures, compute_features
from calobench.showers import Showers

#: The input builder each mode uses.
INPUT_KIND = {"low": "low", "low_normed": "low_normed", "high": "high", "bdt_high": "high", "cnn": "low"}
#: Fewest showers per class that give every split both classes with a few examples.
MIN_SHOWERS = 10
#: Showers per chunk when the runner computes features itself.
FEATURE_CHUNK = 4096


class ClassifierError(CalobenchError):
    """A classifier test was asked for something it cannot do (mode, geometry, sample sizes)."""


def classifier_applicable(mode: str, geometry: Geometry) -> bool:
    """Whether classifier ``mode`` can run on ``geometry`` (``cnn`` needs image-like layers:
    datasets 2/3 or CaloGAN, not dataset 1)."""
    if mode not in CLASSIFIER_MODES:
        raise ClassifierError(f"unknown classifier mode {mode!r}; modes: {', '.join(CLASSIFIER_MODES)}")
    return mode != "cnn" or cnn_kind(geometry) is not None


def _summary(values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std()), "runs": [float(v) for v in array]}


@dataclass
class ClassifierResult:
    """AUC and JSD of each run, with what is needed to reproduce them."""

    mode: str
    preset: str
    auc_runs: list[float]
    jsd_runs: list[float]
    n_per_class: int
    n_inputs: int
    seed: int
    device: str
    config: dict[str, Any]
    best_epochs: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def auc(self) -> float:
        return float(np.mean(self.auc_runs))

    @property
    def jsd(self) -> float:
        return float(np.mean(self.jsd_runs))

    def to_dict(self) -> dict[str, Any]:
        """``{"auc": {"mean", "std", "runs"}, "jsd": {...}}`` plus provenance keys."""
        return {
            "auc": _summary(self.auc_runs),
            "jsd": _summary(self.jsd_runs),
            "mode": self.mode,
            "preset": self.preset,
            "n_runs": len(self.auc_runs),
            "n_per_class": self.n_per_class,
            "n_inputs": self.n_inputs,
            "seed": self.seed,
            "device": self.device,
            "config": dict(self.config),
            "best_epochs": list(self.best_epochs),
            "seconds": self.seconds,
        }


def equal_size_rows(
    n_reference: int, n_generated: int, seed: int, max_showers: int | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Rows (sorted) to keep from each sample so that both have ``min(n_ref, n_gen, max_showers)``;
    None where a sample is kept whole."""
    n = min(n_reference, n_generated, max_showers if max_showers is not None else n_reference)
    rng = np.random.default_rng([seed, 0xC1A55])
    pick = [None if size == n else np.sort(rng.choice(size, n, replace=False)) for size in (n_reference, n_generated)]
    return pick[0], pick[1]


def _run_seeds(seed: int, run: int) -> tuple[int, int, int]:
    """Independent seeds for the split, the initialization and the batch order of one run."""
    state = np.random.SeedSequence([seed, run]).generate_state(3)
    return int(state[0]), int(state[1]), int(state[2])


def classifier_test(
    mode: str,
    reference: Showers,
    generated: Showers,
    *,
    reference_features: HighLevelFeatures | None = None,
    generated_features: HighLevelFeatures | None = None,
    preset: str = "quick",
    seed: int = 0,
    n_runs: int | None = None,
    device: "str | torch.device | None" = None,
    progress: bool = True,
    max_showers: int | None = None,
    threshold: float | None = None,
    config: Mapping[str, Any] | None = None,
) -> ClassifierResult:
    """Train classifiers separating ``reference`` (label 1) from ``generated`` (label 0).

    Args:
        mode: one of :data:`CLASSIFIER_MODES`.
        reference_features, generated_features: high-level features of the *whole* samples (row i
            of the features belongs to shower i); needed by ``high`` and ``bdt_high``, computed
            here if not given.
        preset: ``smoke``, ``quick`` or ``paper`` (see :mod:`.presets`); ``config`` overrides keys.
        n_runs: independent classifier runs (default: the preset's).
        device: torch device (default: CUDA when available, else CPU).
        max_showers: cap on showers per class (the equal-size subsample is drawn with ``seed``).
        threshold: voxel threshold in MeV for the low-level inputs (default: the geometry's).
    """
    started = time.perf_counter()
    geometry = reference.geometry
    if not classifier_applicable(mode, geometry):
        raise ClassifierError(
            f"classifier mode {mode!r} does not apply to geometry {geometry.name} "
            "(the CNN needs layers that are images of one shape: datasets 2/3 or CaloGAN)"
        )
    if generated.geometry != geometry:
        raise ClassifierInputError(
            f"reference ({geometry.name}) and generated ({generated.geometry.name}) showers have different geometries"
        )
    settings = classifier_config(mode, preset, config)
    runs = int(n_runs if n_runs is not None else settings["n_runs"])
    if runs < 1:
        raise ClassifierError(f"n_runs must be >= 1, got {runs}")
    settings["n_runs"] = runs
    ref_rows, gen_rows = equal_size_rows(len(reference), len(generated), seed, max_showers)
    n_per_class = len(ref_rows) if ref_rows is not None else len(reference)
    if n_per_class < MIN_SHOWERS:
        raise ClassifierError(
            f"a classifier test needs at least {MIN_SHOWERS} showers per sample, "
            f"got {len(reference)} reference and {len(generated)} generated"
        )
    kind = INPUT_KIND[mode]
    ref_features = gen_features = None
    if kind == "high":
        ref_features = _features(reference, reference_features, ref_rows, threshold, "reference")
        gen_features = _features(generated, generated_features, gen_rows, threshold, "generated")
    x, labels = pair_inputs(
        kind,
        reference,
        generated,
        ref_features,
        gen_features,
        threshold=threshold,
        reference_rows=ref_rows,
        generated_rows=gen_rows,
    )
    torch_device = resolve_device(device)
    data = Batches(x, labels, torch_device) if mode != "bdt_high" else None
    aucs, jsds, best_epochs = [], [], []
    for run in range(runs):
        split_seed, init_seed, batch_seed = _run_seeds(seed, run)
        splits = split_indices(labels, split_seed)
        description = f"classifier {mode} run {run + 1}/{runs}"
        trained: TrainedRun
        if mode == "bdt_high":
            trained = train_bdt(x, labels, splits, settings, init_seed, device=torch_device.type)
        else:
            assert data is not None  # built for every mode but bdt_high
            preprocess = input_transform(x, splits.train, settings.get("preprocess", "none"))
            network = seeded(lambda: _network(mode, geometry, x.shape[1], settings, preprocess), init_seed)  # noqa: B023 - called at once
            trained = train_classifier(
                network,
                data,
                labels,
                splits,
                epochs=int(settings["epochs"]),
                batch_size=int(settings["batch_size"]),
                lr=float(settings["lr"]),
                seed=batch_seed,
                eval_batch_size=int(settings["eval_batch_size"]),
                progress=progress,
                description=description,
            )
            del network
        auc, jsd = auc_and_jsd(trained.test_scores, labels[splits.test], trained.val_scores, labels[splits.val])
        aucs.append(auc)
        jsds.append(jsd)
        best_epochs.append(trained.best_epoch)
    return ClassifierResult(
        mode=mode,
        preset=preset,
        auc_runs=aucs,
        jsd_runs=jsds,
        n_per_class=n_per_class,
        n_inputs=x.shape[1],
        seed=seed,
        device=str(torch_device),
        config=settings,
        best_epochs=best_epochs,
        seconds=time.perf_counter() - started,
    )


def _network(
    mode: str,
    geometry: Geometry,
    n_in: int,
    settings: Mapping[str, Any],
    preprocess: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.nn.Module:
    if mode == "cnn":
        network = build_cnn(geometry, channels=int(settings["channels"]), width=int(settings["width"]))
        return network if preprocess is None else torch.nn.Sequential(Affine(*preprocess), network)
    return DNN(
        n_in,
        width=int(settings["width"]),
        n_hidden=int(settings["n_hidden"]),
        dropout=float(settings["dropout"]),
        preprocess=preprocess,
    )


def _features(
    showers: Showers, features: HighLevelFeatures | None, rows: np.ndarray | None, threshold: float | None, name: str
) -> HighLevelFeatures:
    """The features of the kept rows: subset of the given ones, or computed from those rows."""
    if features is None:  # chunk by chunk: compute_features makes a float64 copy of what it gets
        rows = np.arange(len(showers)) if rows is None else rows
        chunks = [
            compute_features(showers[rows[i : i + FEATURE_CHUNK]], threshold)
            for i in range(0, len(rows), FEATURE_CHUNK)
        ]
        return HighLevelFeatures.concatenate(chunks)
    if len(features) != len(showers):
        raise ClassifierInputError(f"{len(features)} {name} feature rows for {len(showers)} {name} showers")
    return features if rows is None else features.subset(rows)
