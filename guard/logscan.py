"""Identifiers in existing log files: what `privacy-guard scan-logs` finds.

Logs written before the guard was deployed may already hold subscribers' numbers. A scan streams
each file (plain, JSON lines, or gzip, bzip2 and xz recognised by their magic bytes) in ~1 MiB
blocks, with the same rules the logging filter redacts by, and keeps counts by kind and the first
locations: never a value, so its own output is safe to paste into a ticket.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import sys
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from .logs import Redactor

__all__ = ["FileScan", "scan_file"]

_BLOCK = 1 << 20  # bytes read at a time: memory stays constant whatever the file size
_SNIFF = 8192  # bytes looked at for NUL, as grep does to call a file binary
# bzip2: `BZh`, the block size 1-9, then a block's magic (π) or, for empty input, the end's (√π):
# a plain log may well start with `BZh`.
_BZIP2_LEVELS = frozenset(b"%d" % level for level in range(1, 10))
_BZIP2_BLOCKS = frozenset({b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90"})
_LABELS_MAX = 32  # labels kept for one line; the counts stay exact
_CONTEXT = 4096  # bytes either side of a cut in a long line: more than an identifier and its name


class FileScan:
    """What scan-logs found in one file: counts and the first locations, never a value."""

    def __init__(self, path: str, max_locations: int) -> None:
        self.path = path
        self.max_locations = max_locations
        self.lines = 0
        self.lines_with_findings = 0
        self.by_kind: Counter[str] = Counter()
        self.locations: list[tuple[int, list[str]]] = []
        self.error: str | None = None
        self.compression: str | None = None

    @property
    def count(self) -> int:
        return sum(self.by_kind.values())

    @property
    def status(self) -> str:
        return "error" if self.error else ("found" if self.count else "clean")


def _open_log(path: str) -> tuple[Any, str | None]:
    """A binary stream of the log's text: gzip, bzip2 and xz by magic bytes, not by name."""
    if path == "-":
        return sys.stdin.buffer, None
    raw = open(path, "rb")  # noqa: SIM115 (returned)
    magic = raw.read(10)
    raw.seek(0)
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"
    if magic[:3] == b"BZh" and magic[3:4] in _BZIP2_LEVELS and magic[4:] in _BZIP2_BLOCKS:
        return bz2.BZ2File(raw, "rb"), "bzip2"
    if magic[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMAFile(raw, "rb"), "xz"
    return raw, None


def _blocks(stream: IO[bytes]) -> Iterator[tuple[bytes, int, int]]:
    """The stream in ~1 MiB pieces that end at a line end, each with the byte range that is its
    own, `(block, start, end)`. A line longer than a block is cut into pieces that overlap by
    _CONTEXT bytes either side of the cut: an identifier across the cut (`+61 491 570 006`,
    `"x-msisdn": "…"`) is seen whole, and counted by the piece its start is in."""
    carry = b""
    start = 0  # where the carry's own part begins, after the context it repeats
    while True:
        chunk = stream.read(_BLOCK)
        if not chunk:
            if carry:
                yield carry, start, len(carry)
            return
        data = carry + chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut], start, cut
            carry, start = data[cut:], 0
        elif len(data) - start > 3 * _CONTEXT:  # else read more before cutting
            end = _char_start(data, len(data) - _CONTEXT)
            begin = _char_start(data, end - _CONTEXT)
            yield data, start, end
            carry, start = data[begin:], end - begin
        else:
            carry = data


def _char_start(data: bytes, at: int) -> int:
    """`at`, or the start of the UTF-8 character `at` is inside."""
    for _ in range(3):
        if not 0x80 <= data[at] < 0xC0:
            break
        at -= 1
    return at


def scan_file(path: str, redactor: Redactor, max_locations: int) -> FileScan:
    """Scan one log file, streaming; errors are recorded on the result, never raised."""
    result = FileScan(path, max_locations)
    try:
        stream, result.compression = _open_log(path)
    except FileNotFoundError:
        result.error = "no such file; check the path"
        return result
    except IsADirectoryError:
        result.error = "is a directory; give the log files in it (e.g. dir/*.log)"
        return result
    except OSError as exc:
        result.error = f"cannot open: {exc.strerror or exc}"
        return result
    try:
        with stream:
            _scan_stream(stream, redactor, result)
    except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        where = f"after line {result.lines}" if result.lines else "at the start"
        what = result.compression or "file"
        result.error = f"{what} data is corrupt or truncated {where} ({type(exc).__name__})"
    return result


def _scan_stream(stream: IO[bytes], redactor: Redactor, result: FileScan) -> None:
    first = True
    ended = True  # the last block ended a line
    last_line = 0
    for block, own_start, own_end in _blocks(stream):
        if first:
            first = False
            if b"\x00" in block[:_SNIFF]:
                result.error = (
                    "binary file (NUL bytes in its first 8 KiB), not scanned; convert it to "
                    "text first (journald: journalctl -o json > file)"
                )
                return
        text = block.decode("utf-8", "replace")
        start = len(block[:own_start].decode("utf-8", "replace"))
        end = len(text) - len(block[own_end:].decode("utf-8", "replace"))
        line = result.lines + 1
        position = 0
        for match in redactor.find(text):
            if not start <= match.start < end:
                continue  # in the context the pieces of a long line share: counted in its own
            line += text.count("\n", position, match.start)
            position = match.start
            result.by_kind[match.kind] += 1
            label = match.kind if match.rule == "value" else f"{match.kind} (name {match.name})"
            if line != last_line:
                result.lines_with_findings += 1
                last_line = line
                if len(result.locations) < result.max_locations:
                    result.locations.append((line, [label]))
            elif result.locations and result.locations[-1][0] == line:
                labels = result.locations[-1][1]
                if len(labels) < _LABELS_MAX:
                    labels.append(label)
                elif len(labels) == _LABELS_MAX:
                    labels.append("…")  # a line of a million identifiers keeps 33 labels
        result.lines += text.count("\n")
        ended = text.endswith("\n")
    if not ended:
        result.lines += 1  # a last line without its newline
