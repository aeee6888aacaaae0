"""``egov-agent`` with two deliberately broken collectors registered, for the service tests.

``blocker`` blocks the asyncio loop in its probe (what a collector that forgets to push blocking work
to a thread does): the watchdog pings must stop while it blocks. ``crasher`` raises from its probe:
the scheduler must report internal_error and log the traceback rate-limited.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.domain.models import StrictModel
from collectors import REGISTRY
from collectors.api import Collector, ProbeResult


class BlockParams(StrictModel):
    seconds: float = 1.0


class Blocker(Collector):
    kind = "blocker"
    Params = BlockParams

    async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
        time.sleep(params.seconds)  # type: ignore[attr-defined]  # the bug under test: blocks the loop
        return ProbeResult(True)


class Crasher(Collector):
    kind = "crasher"
    Params = StrictModel

    async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
        raise ZeroDivisionError("collector bug")


REGISTRY.add(Blocker, network=False)
REGISTRY.add(Crasher, network=False)

if __name__ == "__main__":
    from agent.app.cli import main

    sys.exit(main())
