"""The MCU's JSON status API misbehaving, served by a real HTTP server the test scripts answer by answer.

JSON of the wrong shape (a list where an object was, a number that is text, an object, NaN, a
number too big for a float, nesting a million deep, more digits than Python converts) is down with
a reason that names it, never an ``internal_error`` traceback and never a number made up from it.
The meetings counter going backwards (a restart, a glitch, two MCUs answering one address in turn)
never makes the exported counter go backwards, every fall is counted as a reset, and the count
collected before a bad answer is still exported while the MCU answers badly.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.exposition import sample
from support.faults import InProcessAgent, ScriptedHttp, province

from collectors.mcu.probe import McuCollector, McuParams, McuSettings
from collectors.runner import run_probe

HOST = "127.45.2.1"
FIELDS = {"active_conferences": "/conferences", "ports_in_use": "ports.in_use",
          "meetings_held": "counters.held", "endpoint_ids": "registrations.*.id"}


def good(held: int = 40, conferences: int = 3) -> bytes:
    return json.dumps({"conferences": conferences, "ports": {"in_use": 12}, "counters": {"held": held},
                       "registrations": [{"id": "c1"}, {"id": "c2"}]}).encode()


@pytest.fixture
def mcu() -> Iterator[ScriptedHttp]:
    server = ScriptedHttp(HOST)
    try:
        yield server
    finally:
        server.close()


WRONG_SHAPES = {
    "top_level_list": (b"[1, 2, 3]", "wrong_type"),
    "top_level_text": (b'"ok"', "wrong_type"),
    "top_level_null": (b"null", "missing_field"),
    "field_missing": (b'{"ports": {"in_use": 1}, "counters": {"held": 1}, "registrations": []}', "missing_field"),
    "number_as_object": (b'{"conferences": {"n": 3}, "ports": {"in_use": 1}, "counters": {"held": 1}, '
                         b'"registrations": []}', "wrong_type"),
    "number_as_list": (b'{"conferences": [3], "ports": {"in_use": 1}, "counters": {"held": 1}, '
                       b'"registrations": []}', "wrong_type"),
    "number_as_bool": (b'{"conferences": true, "ports": {"in_use": 1}, "counters": {"held": 1}, '
                       b'"registrations": []}', "wrong_type"),
    "number_as_words": (b'{"conferences": "three", "ports": {"in_use": 1}, "counters": {"held": 1}, '
                        b'"registrations": []}', "wrong_type"),
    "nan": (b'{"conferences": NaN, "ports": {"in_use": 1}, "counters": {"held": 1}, "registrations": []}',
            "wrong_type"),
    "overflow_to_infinity": (b'{"conferences": 1e999, "ports": {"in_use": 1}, "counters": {"held": 1}, '
                             b'"registrations": []}', "wrong_type"),
    "negative": (b'{"conferences": -2, "ports": {"in_use": 1}, "counters": {"held": 1}, "registrations": []}',
                 "wrong_type"),
    "path_through_a_number": (b'{"conferences": 1, "ports": 7, "counters": {"held": 1}, "registrations": []}',
                              "wrong_type"),
    "ids_not_a_list": (b'{"conferences": 1, "ports": {"in_use": 1}, "counters": {"held": 1}, '
                       b'"registrations": {"id": "c1"}}', "wrong_type"),
    "id_an_object": (b'{"conferences": 1, "ports": {"in_use": 1}, "counters": {"held": 1}, '
                     b'"registrations": [{"id": {"x": 1}}]}', "wrong_type"),
    "truncated": (good()[:30], "bad_response"),
    "not_utf8": (b'{"conferences": "\xff\xfe"}', "bad_response"),
    "html_error_page": (b"<html><body>502 Bad Gateway</body></html>", "bad_response"),
    "nested_a_million_deep": (b"[" * 1_000_000, "bad_response"),
    "more_digits_than_python_converts": (b'{"conferences": ' + b"9" * 5000 + b"}", "bad_response"),
}


@pytest.mark.parametrize("name", list(WRONG_SHAPES))
def test_json_of_the_wrong_shape_is_down_with_its_reason(mcu: ScriptedHttp, name: str):
    body, reason = WRONG_SHAPES[name]
    params = McuParams.model_validate({"adapter": "http", "url": f"http://{HOST}:{mcu.port}/status",
                                       "fields": FIELDS, "max_body_bytes": 2 * 1024 * 1024})

    async def run():
        collector = McuCollector(McuSettings())
        try:
            mcu.serve(good(40))
            before = await run_probe(collector, "mcu", params, 2.0)
            mcu.serve(body)
            bad = await run_probe(collector, "mcu", params, 2.0)
            mcu.serve(good(41))
            after = await run_probe(collector, "mcu", params, 2.0)
            return before, bad, after
        finally:
            await collector.close()

    before, bad, after = asyncio.run(run())
    assert before.up and after.up, (before.detail, after.detail)
    assert (bad.up, bad.reason) == (False, reason), bad.detail
    assert len(bad.detail) < 300  # says what was wrong, never quotes the body back
    # No number read from the bad answer; the meetings counter collected before it stays exported.
    families = {s.family: s.value for s in bad.samples}
    assert families == {"mcu_meetings_held": 40.0, "mcu_meetings_held_resets": 0.0}, families
    assert {s.family: s.value for s in after.samples}["mcu_meetings_held"] == 41.0


COUNTER_SCRIPT = [  # (what the MCU's counter says, total the agent exports, resets)
    (100, 100, 0),
    (104, 104, 0),
    (104, 104, 0),   # nothing held since
    (3, 107, 1),     # the MCU restarted and held 3 meetings since
    (None, 107, 1),  # a wrong-shaped answer: nothing read, the total stays
    (5, 109, 1),
    (0, 109, 2),     # restarted again, no meeting yet
    (50, 159, 2),
    (49, 208, 3),    # went back by one: counted as a restart (as Prometheus counts any fall) and visible as one
]


def test_a_counter_going_backwards_never_makes_the_exported_counter_go_backwards(tmp_path: Path, mcu: ScriptedHttp):
    p = province().collector("mcu", interval="30s", timeout="2s", down_after=1)
    p.target("mcu", "p", "mcu", params={"adapter": "http", "url": f"http://{HOST}:{mcu.port}/status", "fields": FIELDS})
    path = p.write(tmp_path / "faults.yml")
    agent = InProcessAgent(path)
    try:
        exported = []
        for raw, total, resets in COUNTER_SCRIPT:
            mcu.serve(good(raw) if raw is not None else b'{"conferences": []}')
            s = agent.probe()
            assert sample(s, "egov_target_up", target="mcu") == (0 if raw is None else 1)
            held = sample(s, "egov_mcu_meetings_held_total", target="mcu")
            assert (held, sample(s, "egov_mcu_meetings_held_resets_total", target="mcu")) == (total, resets), raw
            exported.append(held)
        assert exported == sorted(exported)
        assert sample(s, "egov_target_probe_failures_total", target="mcu", reason="wrong_type") == 1
    finally:
        agent.close()
