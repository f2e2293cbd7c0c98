"""The one thing pyproject.toml cannot yet say without an experimental table: the optional C
extension. `guard/harmless.py` says why it exists; `optional=True` lets an install without a C
compiler go on, with the Python definitions in its place."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("guard._speedups", ["guard/_speedups.c"], optional=True)])
