"""The lab's simulated video-conference endpoints (agent/lab/sip.py) as the SIP collector sees them, over
UDP and TCP, in each state the lab's control API can set; and what the lab's MCU lists as registered."""

from __future__ import annotations

import asyncio

import pytest

from collectors.lab_addresses import AddressPool
from collectors.runner import run_probe
from collectors.sip.lab import SipSimulator
from collectors.sip.probe import SipCollector, SipParams, SipSettings


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_lab_endpoint_states(transport: str) -> None:
    async def run() -> tuple[dict[str, tuple[bool, str, float]], list[list[str]]]:
        simulator = SipSimulator(AddressPool(), slow_delay=0.6)
        collector = SipCollector(SipSettings())
        seen: dict[str, tuple[bool, str, float]] = {}
        registered = []
        try:
            raw = await simulator.add("bg-tp-01-vc-sip", {"host": "10.25.1.21", "transport": transport,
                                                          "user": "bg-tp-01"}, True)
            await simulator.add("bg-tp-02-vc-sip", {"host": "10.25.1.22"}, False)  # starts down
            params = SipParams.model_validate(raw)
            assert params.host.startswith("127.77.") and params.port > 0
            registered.append(simulator.registered())
            for state in ("up", "busy", "slow", "down", "refused", "up"):
                await simulator.set_state("bg-tp-01-vc-sip", state)
                result = await run_probe(collector, "e", params, 0.4 if state == "slow" else 1.0)
                status = next(s.value for s in result.samples if s.family == "sip_status_code")
                seen[state if state not in seen else f"{state}-again"] = (result.up, result.reason, status)
                registered.append(simulator.registered())
            with pytest.raises(ValueError, match="sip targets can be"):
                await simulator.set_state("bg-tp-01-vc-sip", "flapping")
        finally:
            await collector.close()
            await simulator.close()
        return seen, registered

    seen, registered = asyncio.run(run())
    assert seen == {
        "up": (True, "", 200), "busy": (True, "", 486), "slow": (False, "timeout", 0),
        "down": (False, "timeout", 0), "refused": (False, "refused", 0), "up-again": (True, "", 200),
    }
    # The MCU lists an endpoint (by its SIP user, else its target id) while its SIP stack answers.
    assert registered[0] == ["bg-tp-01"]
    assert registered[-2] == [] and registered[-1] == ["bg-tp-01"]
