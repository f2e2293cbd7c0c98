"""Fuzzing the guard: `harness` (strategies, oracle, in-process driver) and the long run
(`python -m tests.fuzz`, see `__main__`). Kept import-free so that the long run can instrument
the guard for coverage before anything imports it."""
