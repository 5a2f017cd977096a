"""Data-parallel training (``--nproc``, gloo on the CPU): two processes on halves of every batch follow
the loss curve of one process on the whole batch, and their checkpoint loads in a single process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from calobench.cli.main import main
from calobench.formats import read_showers
from calobench.generator.checkpoint import load_checkpoint
from calobench.generator.distributed import World, average_gradients, shard, spawn
from calobench.generator.examples import TinyGaussian
from calobench.testing import write_random_file

#: A deterministic TinyGaussian (no dropout) whose batches of 32 split evenly between 2 ranks.
CONFIG = {"hidden": 16, "dropout": 0.0, "epochs": 4, "batch_size": 32, "lr": 1e-2}
#: Stated tolerance on the per-epoch mean training loss (float32 sums in another order).
LOSS_TOLERANCE = 1e-5


def _fit(data: str, workdir: str, save_to: str | None, device: str = "cpu") -> None:
    showers = read_showers(data)
    model = TinyGaussian(showers.geometry, {**TinyGaussian.presets["smoke"], **CONFIG}, "smoke", device=device)
    model.fit(showers, None, seed=7, workdir=Path(workdir))
    if save_to is not None:
        model.save(Path(save_to))


def _fit_rank(data: str, workdir: str, save_to: str, device: str = "cpu") -> None:
    from calobench.generator.distributed import current_world, init_process_group, local_device

    world = init_process_group(torch.device(device))
    _fit(data, workdir, save_to if current_world().is_main else None, str(local_device(torch.device(device), world)))


def _history(workdir: Path) -> list[float]:
    return [record["train_loss"] for record in load_checkpoint(workdir / "main.pt")["history"]]


def test_two_gloo_processes_follow_the_single_process_loss_curve(tmp_path: Path) -> None:
    data = str(write_random_file(tmp_path / "train.h5", "ds1-photons", n=128, seed=3))
    _fit(data, str(tmp_path / "single"), None)
    spawn(2, _fit_rank, data, str(tmp_path / "ddp"), str(tmp_path / "model"))
    single, parallel = _history(tmp_path / "single"), _history(tmp_path / "ddp")
    assert len(single) == len(parallel) == CONFIG["epochs"]
    np.testing.assert_allclose(parallel, single, rtol=LOSS_TOLERANCE)
    assert single[-1] < single[0]  # it learned something
    model = TinyGaussian.load(tmp_path / "model", device="cpu")  # the rank-0 model in one process
    sample = model.sample(np.full(5, 5000.0), seed=1)
    assert sample.shape == (5, 368) and np.isfinite(sample).all()
    assert not (tmp_path / "ddp" / "main.pt.tmp").exists()


def test_train_cli_with_nproc_writes_one_run(tmp_path: Path, capsys) -> None:
    data = write_random_file(tmp_path / "train.h5", "ds1-photons", n=60, seed=1)
    out = tmp_path / "run"
    args = ["train", "baseline-uncorrelated", "--dataset", str(data), "--preset", "smoke", "--out", str(out)]
    assert main([*args, "--nproc", "2"]) == 0
    assert "x 2 processes" in capsys.readouterr().out
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "finished" and run["data_parallel"] == {"world_size": 2}
    assert main([*args, "--nproc", "0"]) == 1
    assert "--nproc must be >= 1" in capsys.readouterr().err


def test_shard_and_single_process_are_no_ops() -> None:
    indices = torch.arange(10)
    assert torch.equal(shard(indices, World()), indices)
    assert shard(indices, World(rank=1, size=3)).tolist() == [1, 4, 7]
    assert average_gradients([torch.nn.Linear(2, 2)], World()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (nccl)")
def test_nccl_world_of_one_trains_on_the_gpu(tmp_path: Path) -> None:
    data = str(write_random_file(tmp_path / "train.h5", "ds1-photons", n=64, seed=3))
    spawn(1, _fit_rank, data, str(tmp_path / "gpu"), str(tmp_path / "model"), "cuda")
    assert len(_history(tmp_path / "gpu")) == CONFIG["epochs"]
