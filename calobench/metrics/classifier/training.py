"""Splits and the training loop of the neural classifiers (CaloChallenge protocol, arXiv 2410.21611).

Both samples are split per class into train / test / validation (60 / 20 / 20 %). The network is
trained with Adam and BCE-with-logits; after every epoch its accuracy on the test split is
measured, the weights of the epoch with the best test accuracy are kept, and training stops early
once the test accuracy reaches 1. The kept network's outputs (sigmoid probabilities) on the test
and validation splits go to the calibration and the scores.

Everything random takes a seed: the split, the weight initialization (see :func:`seeded`) and the
batch order. On the CPU the same seed gives the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

SPLIT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Arrays up to this size are copied to the accelerator once instead of batch by batch.
DEVICE_COPY_LIMIT_BYTES = 8 * 2**30


@dataclass(frozen=True)
class Splits:
    """Row indices (sorted) of the train, test and validation splits."""

    train: np.ndarray
    test: np.ndarray
    val: np.ndarray


def split_indices(labels: np.ndarray, seed: int, fractions: Sequence[float] = SPLIT_FRACTIONS) -> Splits:
    """Split each class separately into train / test / validation with the given fractions."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in (1.0, 0.0):
        rows = rng.permutation(np.flatnonzero(labels == label))
        bounds = np.round(np.cumsum([0.0, *fractions]) * len(rows)).astype(int)
        for part, (a, b) in zip(parts, zip(bounds[:-1], bounds[1:])):
            part.append(rows[a:b])
    train, test, val = (np.sort(np.concatenate(part)) for part in parts)
    for name, rows in (("train", train), ("test", test), ("validation", val)):
        if len(np.unique(labels[rows])) != 2:
            raise ValueError(f"the {name} split does not hold both classes; use more showers")
    return Splits(train, test, val)


def resolve_device(device: "str | torch.device | None" = None) -> torch.device:
    """The given device, else CUDA when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a network with torch's global generator seeded, without disturbing the caller's state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


class Batches:
    """The input rows as a torch tensor that hands out batches on the training device.

    Small arrays are copied to the device once; large ones stay in host memory (sharing the
    numpy array, no copy) and each batch is gathered and moved on demand.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, device: torch.device) -> None:
        self.device = device
        on_device = device.type != "cpu" and x.nbytes <= DEVICE_COPY_LIMIT_BYTES
        self.x = torch.from_numpy(x).to(device) if on_device else torch.from_numpy(x)
        self.y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(self.x.device)

    def get(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64)).to(self.x.device)
        x, y = self.x.index_select(0, index), self.y.index_select(0, index)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)


PREPROCESSING: tuple[str, ...] = ("none", "standardize", "whiten")
#: Whitening needs the d x d input covariance; above this many inputs ``whiten`` leaves the inputs raw.
WHITEN_MAX_INPUTS = 2048
#: Eigenvalues of the covariance below this fraction of the largest are raised to it.
WHITEN_EIGENVALUE_FLOOR = 1e-9


def input_moments(
    x: np.ndarray, rows: np.ndarray, chunk: int = 4096, covariance: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance (or covariance matrix) of the inputs over ``rows``, float64, chunked."""
    mean = np.zeros(x.shape[1])
    for i in range(0, len(rows), chunk):
        mean += x[rows[i : i + chunk]].sum(axis=0, dtype=np.float64)
    mean /= len(rows)
    second = np.zeros((x.shape[1], x.shape[1]) if covariance else x.shape[1])
    for i in range(0, len(rows), chunk):
        block = x[rows[i : i + chunk]].astype(np.float64) - mean
        second += block.T @ block if covariance else (block * block).sum(axis=0)
    return mean, second / len(rows)


def input_transform(x: np.ndarray, rows: np.ndarray, method: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A fixed input map fitted on the training rows, as ``(shift, transform)`` for
    :class:`~calobench.metrics.classifier.networks.Affine`, or None (raw inputs).

    * ``none``: raw inputs (the published CaloChallenge classifier).
    * ``standardize``: per-input mean and 1 / standard deviation (constant inputs keep scale 1).
    * ``whiten``: ZCA whitening ``C^(-1/2)`` of the input covariance C, eigenvalues floored at 1e-9
      of the largest. It gives narrow combinations such as ``log10 E_tot - log10 E_inc`` unit
      variance, so that a small network finds them in a few epochs. Above 2048 inputs (the voxels
      of datasets 2 and 3) the inputs stay raw: the covariance is too large, and per-voxel
      standardization, which blows rare hits in sparse voxels up to many sigma, made the quick
      classifier weaker there than raw inputs.
    """
    if method not in PREPROCESSING:
        raise ValueError(f"unknown input preprocessing {method!r}; expected one of {PREPROCESSING}")
    if method == "none" or (method == "whiten" and x.shape[1] > WHITEN_MAX_INPUTS):
        return None
    if method == "whiten":
        mean, cov = input_moments(x, rows, covariance=True)
        values, vectors = np.linalg.eigh(cov)
        floor = max(values.max(), 1e-300) * WHITEN_EIGENVALUE_FLOOR
        matrix = (vectors / np.sqrt(np.maximum(values, floor))) @ vectors.T
        return torch.from_numpy(mean), torch.from_numpy(matrix)
    mean, var = input_moments(x, rows)
    std = np.sqrt(var)
    std[std < 1e-12] = 1.0
    return torch.from_numpy(mean), torch.from_numpy(1.0 / std)


@dataclass
class TrainedRun:
    """Outputs of one trained classifier: probabilities on the test and validation splits."""

    test_scores: np.ndarray
    val_scores: np.ndarray
    best_epoch: int
    best_test_accuracy: float
    epochs_run: int
    seconds: float


@torch.no_grad()
def predict(network: nn.Module, data: Batches, rows: np.ndarray, batch_size: int) -> np.ndarray:
    """Logits (float64) of the network on the given rows, in row order."""
    network.eval()
    out = [network(data.get(rows[i : i + batch_size])[0]).double().cpu() for i in range(0, len(rows), batch_size)]
    return torch.cat(out).numpy() if out else np.empty(0)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((logits > 0) == (labels > 0.5)))


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Numerically safe float64 sigmoid (keeps large logits apart instead of rounding to 1)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(logits, dtype=np.float64)))


def train_classifier(
    network: nn.Module,
    data: Batches,
    labels: np.ndarray,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    eval_batch_size: int = 10_000,
    stop_accuracy: float = 1.0,
    progress: bool = True,
    description: str = "classifier",
) -> TrainedRun:
    """Train ``network`` (on ``data.device``) and return its best-test-accuracy outputs.

    Adam with learning rate ``lr``, ``BCEWithLogitsLoss``, batches of ``batch_size`` training rows
    in an order drawn from ``seed``; up to ``epochs`` epochs, stopping once the test accuracy
    reaches ``stop_accuracy``.
    """
    start = time.perf_counter()
    network.to(data.device)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    test_labels = labels[splits.test]
    best_accuracy, best_epoch, best_state = -1.0, 0, None
    epochs_run = 0
    bar = tqdm(range(1, epochs + 1), desc=description, unit="epoch", leave=False, disable=None if progress else True)
    for epoch in bar:
        network.train()
        order = rng.permutation(splits.train)
        for i in range(0, len(order), batch_size):
            x, y = data.get(order[i : i + batch_size])
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(network(x), y)
            loss.backward()
            optimizer.step()
        epochs_run = epoch
        test_accuracy = accuracy(predict(network, data, splits.test, eval_batch_size), test_labels)
        if test_accuracy > best_accuracy:
            best_accuracy, best_epoch = test_accuracy, epoch
            best_state = {k: v.detach().clone() for k, v in network.state_dict().items()}
        bar.set_postfix(test_acc=f"{test_accuracy:.4f}", best=f"{best_accuracy:.4f}")
        if test_accuracy >= stop_accuracy:
            break
    bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    test_scores = sigmoid(predict(network, data, splits.test, eval_batch_size))
    val_scores = sigmoid(predict(network, data, splits.val, eval_batch_size))
    return TrainedRun(test_scores, val_scores, best_epoch, best_accuracy, epochs_run, time.perf_counter() - start)
