"""Reading a file that people (or their copy tools) may be rewriting at the same moment.

A report is read from one open descriptor, streamed, never more than ``max_bytes``: its size is
checked before the first byte is read and the bytes are counted while reading (a file that grows
past the cap is refused, not followed). After the read the descriptor's and the path's status are
compared with the ones at the start: a file rewritten in place (its size or modification time
moved) or replaced by a rename (the path names another inode) while it was read raises
:class:`FileChanged`, so a half-old, half-new read is never taken for the file's figures. The caller
keeps what it had and reads again next time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from pydantic import ByteSize, Field

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
# A size in the configuration: 20MiB, 500kB, or a number of bytes.
MaxFileSize = Annotated[ByteSize, Field(gt=0, description="Largest file read (20MiB, 500kB, or bytes); "
                                                          "a larger one is refused before it is read")]


class FileChanged(Exception):
    """The file was rewritten or replaced while it was read: what was read is neither version."""


class FileTooLarge(ValueError):
    pass


def stamp(status: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is rewritten in place or replaced (inode, size, mtime, ctime)."""
    return status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


class _CappedReader(io.RawIOBase):
    """Counts the bytes handed out and stops the read once they pass the cap."""

    def __init__(self, raw: io.BufferedReader, max_bytes: int, name: str) -> None:
        self.raw, self.max_bytes, self.name, self.count = raw, max_bytes, name, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        n = self.raw.readinto(buffer)
        self.count += n or 0
        if self.count > self.max_bytes:
            raise FileTooLarge(f"{self.name} grew past the size cap ({_megabytes(self.max_bytes)}) while it was read")
        return n or 0


@contextmanager
def steady_binary(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[io.BufferedReader]:
    """The file open for a streamed read; raises FileTooLarge before reading, FileChanged after.

    (A workbook is a zip that is read by seeking about, so its bytes are not counted: its size is.)"""
    with open(path, "rb") as raw:
        before = os.fstat(raw.fileno())
        if before.st_size > max_bytes:
            raise FileTooLarge(f"{path.name} is {_megabytes(before.st_size)}, over the size cap "
                               f"({_megabytes(max_bytes)}); not read (raise max_file_size if it is right)")
        yield raw
        after = os.fstat(raw.fileno())
    try:
        now = os.stat(path)
    except FileNotFoundError:
        raise FileChanged(f"{path.name} was removed while it was read") from None
    if stamp(after) != stamp(before):
        raise FileChanged(f"{path.name} was rewritten while it was read")
    if stamp(now) != stamp(before):
        raise FileChanged(f"{path.name} was replaced while it was read")


@contextmanager
def steady_text(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[io.TextIOWrapper]:
    """The same, as UTF-8 text (a byte-order mark, as Excel writes one, is dropped) for csv.reader; the
    bytes are counted as they are read, so a file that grows while it is read stops at the cap."""
    with steady_binary(path, max_bytes) as raw:
        capped = io.BufferedReader(_CappedReader(raw, max_bytes, path.name))
        yield io.TextIOWrapper(capped, encoding="utf-8-sig", newline="")
