"""Classifier metrics of the CaloChallenge (arXiv 2410.21611): can a classifier tell generated
showers from the reference?

Modes: ``low`` (voxels / E_inc), ``low_normed`` (voxels / layer energy + layer energies), ``high``
(high-level features), all with the challenge's fully connected network; ``bdt_high`` (xgboost on
the high-level features) and ``cnn`` (3-D ResNet-18 for datasets 2/3, per-layer CNN for CaloGAN).
Scores: AUC and JSD of the isotonically calibrated validation outputs, over independent runs.

    >>> from calobench.metrics.classifier import classifier_test
    >>> result = classifier_test("low", reference, generated, preset="quick", seed=0)
    >>> result.to_dict()["auc"]["mean"]
"""

from importlib import import_module
from typing import Any

#: name -> submodule; imported on first use, so that importing the package (and registering the
#: classifier metrics) does not import torch and xgboost
_WHERE = {
    "calibrate": "calibration",
    "high_level_inputs": "inputs",
    "low_level_inputs": "inputs",
    "n_inputs": "inputs",
    "pair_inputs": "inputs",
    "DNN": "networks",
    "LayerCNN": "networks",
    "ResNet3D": "networks",
    "build_cnn": "networks",
    "CLASSIFIER_MODES": "presets",
    "CLASSIFIER_PRESETS": "presets",
    "classifier_config": "presets",
    "ClassifierError": "runner",
    "ClassifierResult": "runner",
    "classifier_applicable": "runner",
    "classifier_test": "runner",
    "auc_and_jsd": "scores",
    "jsd_from_probabilities": "scores",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CLASSIFIER_MODES",
    "CLASSIFIER_PRESETS",
    "DNN",
    "ClassifierError",
    "ClassifierResult",
    "LayerCNN",
    "ResNet3D",
    "auc_and_jsd",
    "build_cnn",
    "calibrate",
    "classifier_applicable",
    "classifier_config",
    "classifier_test",
    "high_level_inputs",
    "jsd_from_probabilities",
    "low_level_inputs",
    "n_inputs",
    "pair_inputs",
]
