"""Generation-time benchmarks: a pytest-benchmark suite over every registered generator x batch size x
device, and the ``calobench bench`` command that runs it and prints milliseconds per shower."""
