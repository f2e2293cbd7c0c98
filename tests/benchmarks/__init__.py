"""privacy-guard benchmarks: `python -m tests.benchmarks --help` (not part of the pytest run)."""
