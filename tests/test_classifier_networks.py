"""Classifier networks, splits and the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calobench.geometry import builtin_geometry
from calobench.metrics.classifier import CLASSIFIER_MODES, DNN, LayerCNN, ResNet3D, build_cnn, classifier_applicable
from calobench.metrics.classifier.networks import Affine, cnn_kind, n_parameters
from calobench.metrics.classifier.runner import ClassifierError
from calobench.metrics.classifier.training import (
    WHITEN_MAX_INPUTS,
    Batches,
    input_moments,
    input_transform,
    seeded,
    sigmoid,
    split_indices,
    train_classifier,
)


def test_paper_dnn_has_the_published_architecture() -> None:
    d, w = 369, 2048
    network = DNN(d, width=w, n_hidden=3)
    linears = [m for m in network.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(d, w), (w, w), (w, w), (w, 1)]
    slopes = [m.negative_slope for m in network.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert slopes == [0.01] * 3
    assert not any(isinstance(m, torch.nn.Dropout) for m in network.modules())
    assert n_parameters(network) == (d + 1) * w + 2 * (w + 1) * w + w + 1
    assert network(torch.zeros(5, d)).shape == (5,)


def test_cnn_applicability_by_geometry() -> None:
    assert cnn_kind(builtin_geometry("ds2")) == "resnet3d" and cnn_kind(builtin_geometry("ds3")) == "resnet3d"
    assert cnn_kind(builtin_geometry("calogan")) == "layer_cnn"
    for name in ("ds1-photons", "ds1-pions"):
        assert cnn_kind(builtin_geometry(name)) is None
        assert not classifier_applicable("cnn", builtin_geometry(name))
        assert all(classifier_applicable(mode, builtin_geometry(name)) for mode in CLASSIFIER_MODES if mode != "cnn")
    with pytest.raises(ClassifierError, match="unknown classifier mode"):
        classifier_applicable("svm", builtin_geometry("ds2"))
    with pytest.raises(ValueError, match="no CNN classifier"):
        build_cnn(builtin_geometry("ds1-photons"), channels=4)


def test_resnet3d_reads_the_volume_in_geometry_order() -> None:
    geometry = builtin_geometry("ds2")
    network = build_cnn(geometry, channels=4)
    assert isinstance(network, ResNet3D) and network.volume == (45, 16, 9)
    blocks = [m for m in network.modules() if m.__class__.__name__ == "BasicBlock3d"]
    assert len(blocks) == 8  # ResNet-18: (2, 2, 2, 2) basic blocks
    assert network.head.in_features == 8 * 4 + 1  # pooled 8c channels + log10 E_inc
    x = torch.randn(3, 1 + geometry.n_voxels)
    network.eval()
    assert network(x).shape == (3,)
    # Energy in layer 7, alpha bin 3, radial bin 5 must land at volume[7, 3, 5].
    seen: dict[str, torch.Tensor] = {}

    def keep_input(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        seen["input"] = args[0]

    network.stem.register_forward_hook(keep_input)
    one = torch.zeros(1, 1 + geometry.n_voxels)
    one[0, 1 + geometry.layer_slices[7].start + 3 * 9 + 5] = 1.0
    network(one)
    assert torch.nonzero(seen["input"][0, 0]).tolist() == [[7, 3, 5]]


def test_layer_cnn_on_calogan() -> None:
    geometry = builtin_geometry("calogan")
    network = build_cnn(geometry, channels=4, width=16)
    assert isinstance(network, LayerCNN) and network.layer_shapes == [(3, 96), (12, 12), (12, 6)]
    assert network(torch.randn(6, 1 + geometry.n_voxels)).shape == (6,)


def test_splits_are_per_class_disjoint_and_complete() -> None:
    labels = np.concatenate([np.ones(1000), np.zeros(1000)]).astype(np.float32)
    splits = split_indices(labels, seed=3)
    everything = np.concatenate([splits.train, splits.test, splits.val])
    assert np.array_equal(np.sort(everything), np.arange(2000))
    for rows, fraction in ((splits.train, 0.6), (splits.test, 0.2), (splits.val, 0.2)):
        assert np.count_nonzero(labels[rows] == 1) == np.count_nonzero(labels[rows] == 0) == 1000 * fraction
    again = split_indices(labels, seed=3)
    assert np.array_equal(again.val, splits.val)
    assert not np.array_equal(split_indices(labels, seed=4).val, splits.val)


def test_seeded_initialization_is_reproducible_and_leaves_global_state() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = seeded(lambda: DNN(10, width=8, n_hidden=2), 7)
    b = seeded(lambda: DNN(10, width=8, n_hidden=2), 7)
    assert torch.rand(1) == before  # the global generator was not advanced
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_input_transforms() -> None:
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.99, 0.0], [0.0, 0.01, 0.0], [0.0, 0.0, 1e-2]])  # a narrow direction, like E_tot/E_inc
    x = (rng.normal(size=(4000, 3)) @ mixing + [5.0, -5.0, 2.0]).astype(np.float32)
    x = np.concatenate([x, np.full((4000, 1), 7.0, np.float32)], axis=1)  # a constant input
    rows = np.arange(0, 4000, 2)
    mean, var = input_moments(x, rows, chunk=300)
    np.testing.assert_allclose(mean, x[rows].mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(var, x[rows].var(axis=0, dtype=np.float64), rtol=1e-4, atol=1e-12)
    assert input_transform(x, rows, "none") is None

    def mapped(method: str) -> np.ndarray:
        return Affine(*input_transform(x, rows, method))(torch.from_numpy(x[rows])).double().numpy()

    standardized = mapped("standardize")
    np.testing.assert_allclose(standardized.std(axis=0)[:3], 1.0, rtol=1e-3)
    assert np.all(standardized[:, 3] == 0.0)
    whitened = mapped("whiten")
    np.testing.assert_allclose(np.cov(whitened[:, :3].T, bias=True), np.eye(3), atol=2e-3)
    assert np.all(np.abs(whitened[:, 3]) < 1e-3)  # constant input: no blow-up from the eigenvalue floor
    wide = np.zeros((10, WHITEN_MAX_INPUTS + 1), np.float32)
    assert input_transform(wide, np.arange(10), "whiten") is None  # too many inputs: left raw
    with pytest.raises(ValueError, match="unknown input preprocessing"):
        input_transform(x, rows, "pca")


def test_training_separates_gaussians_and_keeps_best_epoch() -> None:
    rng = np.random.default_rng(1)
    n = 600
    x = np.concatenate([rng.normal(1.0, 1.0, (n, 4)), rng.normal(-1.0, 1.0, (n, 4))]).astype(np.float32)
    labels = np.repeat([1.0, 0.0], n).astype(np.float32)
    splits = split_indices(labels, seed=0)
    network = seeded(lambda: DNN(4, width=16, n_hidden=2), 0)
    run = train_classifier(
        network,
        Batches(x, labels, torch.device("cpu")),
        labels,
        splits,
        epochs=8,
        batch_size=50,
        lr=1e-2,
        seed=0,
        progress=False,
    )
    assert 1 <= run.best_epoch <= run.epochs_run <= 8
    assert run.best_test_accuracy > 0.9  # Bayes accuracy here is Phi(2) = 0.977
    assert run.test_scores.shape == (len(splits.test),) and run.val_scores.shape == (len(splits.val),)
    assert np.all((run.val_scores > 0) & (run.val_scores < 1))


def test_training_stops_at_perfect_test_accuracy() -> None:
    x = np.concatenate([np.full((100, 2), 5.0), np.full((100, 2), -5.0)]).astype(np.float32)
    labels = np.repeat([1.0, 0.0], 100).astype(np.float32)
    network = seeded(lambda: DNN(2, width=8, n_hidden=1), 0)
    run = train_classifier(
        network,
        Batches(x, labels, torch.device("cpu")),
        labels,
        split_indices(labels, 0),
        epochs=50,
        batch_size=20,
        lr=1e-2,
        seed=0,
        progress=False,
    )
    assert run.best_test_accuracy == 1.0 and run.epochs_run == run.best_epoch < 50


def test_sigmoid_is_stable() -> None:
    logits = np.array([-800.0, -20.0, 0.0, 20.0, 800.0])
    p = sigmoid(logits)
    assert p[2] == 0.5 and p[0] == 0.0 and p[-1] == 1.0 and 0 < p[1] < p[3] < 1
