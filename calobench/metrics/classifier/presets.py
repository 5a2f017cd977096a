"""Named configurations of the classifiers: ``smoke`` (tests), ``quick`` (CPU), ``paper`` (published).

``paper`` is the CaloChallenge configuration (arXiv 2410.21611): DNN 3 x 2048 LeakyReLU on the raw
inputs, Adam 2e-4, batch 1000, 50 epochs, 10 runs. ``quick`` is a lighter network for the CPU:
3 x 256, Adam 1e-3, batch 250, 15 epochs, 2 runs (their mean and spread; the runs are what a
DNN evaluation costs, and the quick suite trains three DNNs for each of its models), with the
inputs whitened (ZCA, fitted on the training split; raw above 2048 inputs, see
:func:`.training.input_transform`). Whitening is an
invertible affine map, so it changes no information, only how fast a small network finds narrow
directions such as ``log10 E_tot - log10 E_inc``: without it the quick high-level DNN does not
see a 5 % energy-scale shift at all in 15 epochs. The CNNs get per-voxel standardized inputs
(without it the CaloGAN CNN missed a 20 % wider shower core that the DNN saw). ``smoke`` is for
tests only. The CNN and BDT presets have no published counterpart for every knob; their choices
are calobench's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeAlias

from calobench.errors import ConfigError

#: The classifier modes (see the package docstring).
CLASSIFIER_MODES: tuple[str, ...] = ("low", "low_normed", "high", "bdt_high", "cnn")

CLASSIFIER_PRESETS: tuple[str, ...] = ("smoke", "quick", "paper")

# preset name -> config key -> value
_Presets: TypeAlias = dict[str, dict[str, Any]]

_DNN: _Presets = {
    "smoke": {
        "width": 64,
        "n_hidden": 2,
        "dropout": 0.0,
        "preprocess": "whiten",
        "epochs": 5,
        "batch_size": 200,
        "lr": 1e-3,
        "n_runs": 1,
        "eval_batch_size": 10_000,
    },
    "quick": {
        "width": 256,
        "n_hidden": 3,
        "dropout": 0.0,
        "preprocess": "whiten",
        "epochs": 15,
        "batch_size": 250,
        "lr": 1e-3,
        "n_runs": 2,
        "eval_batch_size": 10_000,
    },
    "paper": {
        "width": 2048,
        "n_hidden": 3,
        "dropout": 0.0,
        "preprocess": "none",
        "epochs": 50,
        "batch_size": 1000,
        "lr": 2e-4,
        "n_runs": 10,
        "eval_batch_size": 10_000,
    },
}
_CNN: _Presets = {
    "smoke": {
        "channels": 4,
        "width": 32,
        "preprocess": "standardize",
        "epochs": 2,
        "batch_size": 100,
        "lr": 1e-3,
        "n_runs": 1,
        "eval_batch_size": 500,
    },
    "quick": {
        "channels": 8,
        "width": 128,
        "preprocess": "standardize",
        "epochs": 10,
        "batch_size": 100,
        "lr": 1e-3,
        "n_runs": 3,
        "eval_batch_size": 500,
    },
    "paper": {
        "channels": 64,
        "width": 256,
        "preprocess": "standardize",
        "epochs": 50,
        "batch_size": 128,
        "lr": 2e-4,
        "n_runs": 10,
        "eval_batch_size": 500,
    },
}
_BDT: _Presets = {
    "smoke": {
        "n_estimators": 20,
        "max_depth": 3,
        "learning_rate": 0.3,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "early_stopping_rounds": 5,
        "n_jobs": None,
        "n_runs": 1,
    },
    "quick": {
        "n_estimators": 300,
        "max_depth": 6,
        "learning_rate": 0.1,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "early_stopping_rounds": 20,
        "n_jobs": None,
        "n_runs": 3,
    },
    "paper": {
        "n_estimators": 2000,
        "max_depth": 6,
        "learning_rate": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "early_stopping_rounds": 50,
        "n_jobs": None,
        "n_runs": 10,
    },
}
_FAMILY: dict[str, _Presets] = {"low": _DNN, "low_normed": _DNN, "high": _DNN, "cnn": _CNN, "bdt_high": _BDT}


def classifier_config(mode: str, preset: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The configuration of ``mode`` under ``preset`` with ``overrides`` applied (keys must exist)."""
    if mode not in _FAMILY:
        raise ConfigError(f"unknown classifier mode {mode!r}; modes: {sorted(_FAMILY)}")
    presets = _FAMILY[mode]
    if preset not in presets:
        raise ConfigError(f"unknown classifier preset {preset!r}; presets: {list(CLASSIFIER_PRESETS)}")
    config = copy.deepcopy(presets[preset])
    for key, value in (overrides or {}).items():
        if key not in config:
            raise ConfigError(f"classifier mode {mode!r} has no config key {key!r}; keys: {sorted(config)}")
        config[key] = value
    return config
