"""Fixtures of the BIB-AE plugin's tests: an isolated data directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALOBENCH_DATA", str(tmp_path_factory.getbasetemp() / "calobench-data"))
