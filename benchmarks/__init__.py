"""Benchmark scripts of infoplane: run them as ``python -m benchmarks.<name>`` from the root."""
