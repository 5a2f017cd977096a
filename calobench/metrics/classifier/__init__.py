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

from calobench.metrics.classifier.calibration import calibrate
from calobench.metrics.classifier.inputs import high_level_inputs, low_level_inputs, n_inputs, pair_inputs
from calobench.metrics.classifier.networks import DNN, LayerCNN, ResNet3D, build_cnn
from calobench.metrics.classifier.presets import CLASSIFIER_PRESETS, classifier_config
from calobench.metrics.classifier.runner import (
    CLASSIFIER_MODES,
    ClassifierError,
    ClassifierResult,
    classifier_applicable,
    classifier_test,
)
from calobench.metrics.classifier.scores import auc_and_jsd, jsd_from_probabilities

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
