"""Fixtures of the CaloFlow plugin's tests: an isolated data directory and tiny shower samples."""

from __future__ import annotations

import pytest
from caloflow_data import tiny_showers

from calobench.showers import Showers


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path_factory.getbasetemp() / "calobench-data"))


@pytest.fixture(scope="session")
def photon_data() -> tuple[Showers, Showers]:
    return tiny_showers(n=160, seed=0), tiny_showers(n=64, seed=1)
