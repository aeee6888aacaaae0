"""The store hands out read-only snapshots, and /metrics and the pages share one per rendering.

The render thread (/metrics, the status and unit pages) walks what the store hands it while the asyncio
loop goes on recording probes. A snapshot that shared a live container with the store (the history
deque once did) raised "mutated during iteration" or showed numbers that changed under the page.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import FrozenInstanceError
from itertools import pairwise
from pathlib import Path

import pytest
from support.exposition import parse_samples, sample
from support.province import write_config

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.engine.kpi import KpiEngine
from agent.engine.store import Store, TargetState
from collectors.api import ProbeResult
from exporters.status_page import render_for
from exporters.unit_page import render_unit_for

T0 = 1_790_000_000.0


def test_a_snapshot_cannot_change_and_does_not_change_while_probes_go_on() -> None:
    store = Store(history_span=3600.0)
    store.record("a", "tcp", ProbeResult(False, "refused"), 0.01, finished_at=T0)
    snap = store.snapshot()
    state, stats = snap.targets["a"], snap.collectors["tcp"]
    reasons = iter(state.failures.items())  # the render thread, half way through a page
    for i in range(1, 50):  # the loop records more, with reasons the snapshot never saw
        store.record("a", "tcp", ProbeResult(False, f"reason{i}"), 0.01, finished_at=T0 + i * 100)
    assert list(reasons) == [("refused", 1)]
    assert state.probes_total == 1 and state.failures == {"refused": 1} and len(state.history) == 1
    assert stats.errors == {"refused": 1} and sum(stats.bucket_counts) == 1
    with pytest.raises(FrozenInstanceError):
        state.up = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        state.failures["refused"] = 0  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.targets["b"] = state  # type: ignore[index]
    assert store.snapshot().targets["a"].probes_total == 50


def test_a_snapshot_copies_only_what_changed_since_the_last() -> None:
    """Frozen copies are shared between snapshots until a probe changes the target (20,000 targets: ms)."""
    store = Store(history_span=3600.0)
    for target in ("a", "b"):
        store.record(target, "tcp", ProbeResult(True), 0.01, finished_at=T0)
    first = store.snapshot().targets
    store.record("a", "tcp", ProbeResult(False, "timeout"), 0.01, finished_at=T0 + 60)
    second = store.snapshot().targets
    assert second["b"] is first["b"] and second["a"] is not first["a"]
    assert (first["a"].probes_total, second["a"].probes_total, second["a"].failures) == (1, 2, {"timeout": 1})


def test_restore_keeps_no_reference_to_the_saved_state() -> None:
    """The state file's objects are copied in: probes after the restore change the store, not them."""
    saved = TargetState(probes_total=3, up_total=3, failures=Counter(), history=((T0, 3, 3),), up=True)
    store = Store(history_span=3600.0)
    store.restore({"a": saved})
    store.record("a", "tcp", ProbeResult(False, "timeout"), 0.01, finished_at=T0 + 3600)
    assert (saved.probes_total, dict(saved.failures), saved.history) == (3, {}, ((T0, 3, 3),))
    assert store.snapshot().targets["a"].failures == {"timeout": 1}


def test_snapshots_walked_by_one_thread_while_another_records() -> None:
    """Bounded: 20,000 probes recorded from one thread while the other walks every snapshot it gets."""
    store = Store(history_span=60.0)  # a history point every second: the tuple is replaced often
    done = threading.Event()
    errors: list[BaseException] = []

    def record() -> None:
        try:
            for i in range(20_000):
                store.record(f"t{i % 50}", "tcp", ProbeResult(i % 3 == 0, "" if i % 3 == 0 else f"r{i % 7}"),
                             0.01, finished_at=T0 + i)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            done.set()

    writer = threading.Thread(target=record)
    writer.start()
    walks = 0
    while not done.is_set() and walks < 100_000:
        snap = store.snapshot()
        for state in snap.targets.values():
            assert sum(state.failures.values()) + state.up_total == state.probes_total
            assert all(a[0] < b[0] for a, b in pairwise(state.history))
        walks += 1
    writer.join(30)
    assert not errors and not writer.is_alive() and walks > 0


CONFIG = """\
province: {{code: test, name_vi: Tỉnh Thử, name_en: Test Province}}
levels: [province, site]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
      - {{id: thdl, name_vi: Trung tâm THDL, level: site}}
collectors:
  tcp: {{interval: 60s, timeout: 2s}}
targets:
  - {{id: sys-up, unit: thdl, collector: tcp, params: {{host: 127.0.24.1, port: {up}}}}}
  - {{id: sys-down, unit: thdl, collector: tcp, params: {{host: 127.0.24.2, port: {down}}}}}
kpis:
  - id: systems_up
    class: direct
    title_vi: Hệ thống hoạt động
    title_en: Systems up
    measure: {{kind: coverage, select: {{collector: tcp}}}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}}]
"""


def test_kpis_are_evaluated_once_per_rendering_shared_by_metrics_and_the_pages(
        tmp_path: Path, tcp_peers, monkeypatch: pytest.MonkeyPatch) -> None:
    evaluations: list[float | None] = []
    evaluate = KpiEngine.evaluate

    def counted(self: KpiEngine, states, now: float | None = None):  # the real engine, counted
        evaluations.append(now)
        return evaluate(self, states, now)

    monkeypatch.setattr(KpiEngine, "evaluate", counted)
    path = write_config(tmp_path / "agent.yml", CONFIG.format(up=tcp_peers.listening("127.0.24.1"),
                                                              down=tcp_peers.closed("127.0.24.2")))
    agent = Agent(load_config(path))
    asyncio.run(agent.collect_once())  # real probes: one answers, one is refused
    assert evaluations == []

    page = render_for(agent).decode()  # no scrape yet: the page takes a snapshot and keeps it
    assert len(evaluations) == 1
    assert render_unit_for(agent, "thdl") is not None and len(evaluations) == 1  # the unit page reuses it
    assert "50.0%" in page and "100.0%" not in page

    # A probe changes the store; /metrics renders from a new snapshot, and the pages take that one.
    agent.store.record("sys-down", "tcp", ProbeResult(True), 0.01)
    metrics = parse_samples(agent.exposition.render(None)[0].decode())
    assert len(evaluations) == 2 and sample(metrics, "egov_kpi_value", kpi="systems_up") == 1.0
    page = render_for(agent).decode()
    assert render_unit_for(agent, "thdl") is not None
    assert len(evaluations) == 2 and "100.0%" in page
