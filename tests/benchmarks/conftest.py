"""Benchmarks record the GPU (if any) in pytest-benchmark's machine info."""

from calobench.bench.pytest_plugin import pytest_benchmark_update_machine_info

__all__ = ["pytest_benchmark_update_machine_info"]
