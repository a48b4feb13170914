"""Benchmark scripts (run as `python benchmarks/<name>.py`); `benchmarks.stages` holds what they share."""
