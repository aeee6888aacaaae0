"""A target's thinned probe history, packed: 24 bytes a point instead of a tuple of three objects.

The store keeps up to 512 points per target (``(unix time, probes_total, up_total)``), one every
1/510 of the longest availability window. As tuples of a float and two ints that is ~150 bytes a
point: at Bắc Giang's 1,170 targets ~89 MiB once the history is full, a day after start. Two arrays
hold the same points in 24 bytes each (~15 MiB full).

A History never changes once built (``appended`` gives a new one), so a snapshot shares it with the
live record and a render thread can walk it while probes go on: the property the tuple it replaces had.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

Point = tuple[float, int, int]  # (unix time, probes_total, up_total)


class History(Sequence[Point]):
    """Points in time order; reads like a tuple of ``Point``."""

    __slots__ = ("_counts", "_times")

    def __init__(self, points: Iterable[Point] = ()) -> None:
        self._times = array("d")
        self._counts = array("q")  # probes_total, up_total of each point, interleaved
        for t, probes, up in points:
            self._times.append(t)
            self._counts.extend((probes, up))

    @classmethod
    def _of(cls, times: array, counts: array) -> History:
        history = cls.__new__(cls)
        history._times, history._counts = times, counts
        return history

    def appended(self, point: Point, keep: int) -> History:
        """A new History: this one's last ``keep - 1`` points, then ``point``."""
        drop = max(0, len(self._times) + 1 - keep)
        times, counts = self._times[drop:], self._counts[2 * drop:]
        times.append(point[0])
        counts.extend((point[1], point[2]))
        return History._of(times, counts)

    @property
    def last_time(self) -> float | None:
        """When the latest point was taken (None if there is none): read at every probe, without a tuple."""
        return self._times[-1] if self._times else None

    def last_at_or_before(self, t: float) -> Point | None:
        """The latest point at or before ``t`` (bisected: the times are in order), None if there is none."""
        i = bisect.bisect_right(self._times, t)
        return self[i - 1] if i else None

    def __len__(self) -> int:
        return len(self._times)

    @overload
    def __getitem__(self, index: int) -> Point: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Point, ...]: ...

    def __getitem__(self, index: int | slice) -> Point | tuple[Point, ...]:
        if isinstance(index, slice):
            return tuple(self)[index]
        if index < 0:
            index += len(self._times)
        if not 0 <= index < len(self._times):
            raise IndexError("history index out of range")
        return (self._times[index], self._counts[2 * index], self._counts[2 * index + 1])

    def __iter__(self) -> Iterator[Point]:
        counts = self._counts
        for i, t in enumerate(self._times):
            yield (t, counts[2 * i], counts[2 * i + 1])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, History):
            return self._times == other._times and self._counts == other._counts
        if isinstance(other, tuple | list):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"History({list(self)!r})"

    def __reduce__(self) -> tuple[type[History], tuple[list[Point]]]:
        return (History, (list(self),))
