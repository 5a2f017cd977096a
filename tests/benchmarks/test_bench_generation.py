"""Generation time of every registered generator x batch size x device (see calobench.bench.suite).

``python -m pytest tests/benchmarks/test_bench_generation.py --benchmark-only``; ``calobench bench``
runs the same suite and prints the ms/shower table.
"""

from calobench.bench.suite import pytest_generate_tests, test_generation_time

__all__ = ["pytest_generate_tests", "test_generation_time"]
