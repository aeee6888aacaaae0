"""Splitting one configuration between several agents (``--shard 2/3``) so their sums add up.

A shard owns whole units: every target of a unit is probed by the same agent, and the unit counts
in that agent's coverage denominators, so summing numerators and denominators across the agents
(the generated recording rules do) gives the province-wide KPI exactly. The split is a stable
hash of the unit id, so it does not change between restarts or between agents, and adding a
commune moves no other. KPIs read from files or applications (manual, sources) are evaluated by
shard 1 only, so they are not counted n times.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_SHARD = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.match(text.strip())
        if not match:
            raise ValueError(f"expected INDEX/COUNT such as 1/2, got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise ValueError(f"shard index must be between 1 and {count}, got {index}")
        return cls(index, count)

    def owns_unit(self, unit_id: str) -> bool:
        return zlib.crc32(unit_id.encode()) % self.count == self.index - 1

    @property
    def first(self) -> bool:
        """The shard that evaluates KPIs read from files and applications."""
        return self.index == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
