#!/usr/bin/env python3
"""The agent side of bench/wan.py: the real agent, in a process of its own, one collection cycle per command.

``python bench/wan_agent.py CONFIG`` loads the configuration and builds ``agent.service.Agent`` as
``egov-agent run`` does (collectors, store, allowlist check), prints ``{"ready": ...}``, then for
each JSON line ``{"cycle": ["icmp", "snmp"], "tag": "wan_link"}`` on stdin runs one cycle: a
``Scheduler`` over the targets of those collectors with that tag, ``run_once()`` (what
``Agent.collect_once()`` does, but keeping the collectors open between cycles as ``run`` does: the
ICMP socket, the SNMP dispatcher and its ifName cache). It answers one JSON line: wall time, each
target's up, reason and duration. The parent reads this process's CPU time with psutil before and
after, so CPU is the agent's alone (the lab, the exporters and the benchmark's own HTTP client are
other processes). ``{"quit": true}`` or the
end of stdin closes the collectors and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.scheduler import Scheduler


async def main(config: Path) -> None:
    agent = Agent(load_config(config))
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True, "targets": len(agent.targets)}), flush=True)
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command = json.loads(line)
            if command.get("quit"):
                return
            kinds, tag = set(command["cycle"]), command["tag"]
            targets = [t for t in agent.targets if t.collector in kinds and tag in t.tags]
            scheduler = Scheduler(agent.loaded, agent.store, agent.collectors, targets)
            started = time.perf_counter()
            await scheduler.run_once()
            wall = time.perf_counter() - started
            states = agent.states()
            results = {}
            for t in targets:
                state = states.get(t.id)
                if state is None or state.result is None:  # an overrun the scheduler did not count: never judged
                    results[t.id] = [False, "overrun", 0.0, 0.0, "no result recorded (the agent's overrun)"]
                    continue
                results[t.id] = [state.result.up, state.result.reason, round(state.last_duration, 4),
                                 round(state.last_probe_time, 4), state.result.detail[:120]]
            print(json.dumps({"wall": wall, "results": results}), flush=True)
    finally:
        await agent.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(Path(sys.argv[1])))
