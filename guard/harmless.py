"""The clean path's one question: how many leading header lines of a request are plainly harmless?

Most lines of most requests carry names a browser sends (`accept`, `sec-fetch-mode`), which the
guard classifies once and then keeps here (`guard.detect.Names` owns the set). A line is plainly
harmless when its name is in the set, or it is a Cookie line without a marker word. A request
whose every line is plainly harmless goes to the app after one pass; at the first line that is
not, the middleware's full inspection takes over from there.

`PyHarmlessNames` below is the definition. `guard/_speedups.c` is the same set and question in
C, used when the package was built with a compiler (see `guard.speedups`): a clean request's names
are new bytes objects, and hashing them for a Python set, in an interpreted loop, was half the
guard's cost on clean traffic. The C version never skips a line the definition would not (the
tests compare the two on generated requests), and stops early at anything unusual.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import length_hint
from typing import TYPE_CHECKING, Any, TypeAlias

from . import pairs
from .speedups import compiled

if TYPE_CHECKING:
    from ._speedups import HarmlessNames

__all__ = ["NameSet", "PyHarmlessNames", "harmless_names"]


class PyHarmlessNames(set[bytes]):
    """The harmless names, and `prefix`: the number of leading lines that are plainly harmless.

    `verdicts` maps raw names to their verdicts (`Names.table`); a name whose verdict is `cookie`
    holds cookies, and its line is harmless when its value holds no marker word.
    """

    __slots__ = ("_cookie", "_verdicts")

    def __init__(self, verdicts: dict[bytes, Any], cookie: object) -> None:
        super().__init__()
        self._verdicts = verdicts
        self._cookie = cookie

    def prefix(self, headers: Sequence[Sequence[bytes]]) -> int:
        verdicts, cookie, marked = self._verdicts, self._cookie, pairs.suspicious
        lines = iter(headers)
        for line in lines:
            if line[0] in self or (verdicts.get(line[0]) is cookie and not marked(line[1])):
                continue
            # This line's index, from how many lines the iterator has left: O(1), and cheaper
            # than counting every line with enumerate().
            return len(headers) - length_hint(lines) - 1
        return len(headers)


# What `Names.harmless` is: either version (the stub `_speedups.pyi` types the C one).
NameSet: TypeAlias = "PyHarmlessNames | HarmlessNames"


def harmless_names(verdicts: dict[bytes, Any], cookie: object) -> NameSet:
    """An empty set of harmless names: the C version when it was built."""
    if compiled is not None:
        return compiled.HarmlessNames(verdicts, cookie)
    return PyHarmlessNames(verdicts, cookie)
