"""History that survives a restart: the state file (agent/state.py) under kill -9, damage and reloads.

The 30-day availability KPI is (up probes) / (all probes) of the selected targets over 30 days, as the
agent counts them itself; Prometheus cannot hand those counts back after a restart. These tests run a
real agent process against real TCP peers, kill it with SIGKILL and check that the KPI continues.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from support.agent_process import AgentProcess
from support.exposition import parse_samples, sample
from support.paths import AGENT
from support.province import Province, availability, ops_target

from agent.engine.state import StateFile
from agent.engine.store import HISTORY_POINTS, Store, window_counts
from collectors.api import ProbeResult

DAY = 86400.0
T0 = 1_790_000_000.0


def _probe(store: Store, target: str, up: bool, at: float) -> None:
    store.record(target, "tcp", ProbeResult(up, "" if up else "refused"), 0.01, finished_at=at)


def test_a_snapshot_can_be_read_while_probes_go_on() -> None:
    """The render thread walks a snapshot's history while the loop records probes: that must not raise."""
    store = Store(history_span=3600.0)
    for i in range(5):
        _probe(store, "a", True, T0 + 10 * i)
    snapshot = store.snapshot()[0]["a"]
    walking = iter(snapshot.history)
    next(walking)
    _probe(store, "a", False, T0 + 100)  # adds a history point (step 3600/510 s)
    assert len(list(walking)) == len(snapshot.history) - 1  # a shared deque raised "mutated during iteration"


def test_counters_and_history_round_trip_and_later_saves_write_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(history_span=30 * DAY)
    # Three days of one probe a minute: "a" down on the second day, "b" always up.
    for minute in range(3 * 1440):
        at = T0 + 60 * minute
        _probe(store, "a", not (1440 <= minute < 2880), at)
        _probe(store, "b", True, at)
    state = StateFile(path, "test")
    assert state.restore(store, {"a", "b"}, now=T0) == 0  # a new file
    state.save(store.snapshot()[0])
    now = T0 + 3 * DAY
    before = {t: window_counts(s, 30 * DAY, now) for t, s in store.snapshot()[0].items()}
    # By hand: a was up 2 of 3 days (2880 of 4320 probes), b all 4320.
    assert before == {"a": (2880, 4320), "b": (4320, 4320)}

    restored = Store(history_span=30 * DAY)
    assert StateFile(path, "test").restore(restored, {"a", "b"}, now=now) == 2
    states = restored.snapshot()[0]
    assert {t: window_counts(s, 30 * DAY, now) for t, s in states.items()} == before
    assert states["a"].failures == {"refused": 1440} and states["a"].down_since == 0.0
    assert states["a"].result is None  # not judged up or down until probed again

    # Shorter windows too: the last day of "a" (all up) reads the same, to the history's thinning (about
    # 85 minutes a point for a 30-day span, so the window reaches back to the point before its start).
    assert window_counts(states["a"], DAY, now) == window_counts(store.snapshot()[0]["a"], DAY, now)

    # Later saves add the new points, drop those the store let go, and forget removed targets.
    for minute in range(3 * 1440, 40 * 1440, 10):
        _probe(store, "a", True, T0 + 60 * minute)
    store.forget({"a"})
    state.save(store.snapshot()[0])
    db = sqlite3.connect(path)
    points = db.execute("SELECT count(*), min(t) FROM history WHERE target = 'a'").fetchone()
    assert db.execute("SELECT count(*) FROM targets WHERE id = 'b'").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM history WHERE target = 'b'").fetchone() == (0,)
    db.close()
    memory = store.snapshot()[0]["a"].history
    assert len(memory) == HISTORY_POINTS and points == (len(memory), memory[0][0])


def test_the_debounced_state_carries_over_so_down_after_holds_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store()
    store.record("a", "tcp", ProbeResult(True), 0.01, finished_at=T0, down_after=2)
    assert store.record("a", "tcp", ProbeResult(False, "timeout"), 0.01, finished_at=T0 + 60, down_after=2)
    state = StateFile(path, "test")
    state.restore(Store(), {"a"}, now=T0)
    state.save(store.snapshot()[0])
    restored = Store()
    StateFile(path, "test").restore(restored, {"a"}, now=T0 + 120)
    saved = restored.snapshot()[0]["a"]
    assert (saved.up, saved.failed_in_row, saved.up_since) == (True, 1, T0)
    # The second failure in a row (down_after 2), the first after the restart, takes it down.
    assert not restored.record("a", "tcp", ProbeResult(False, "timeout"), 0.01, finished_at=T0 + 180, down_after=2)


def _saved_store(path: Path, province: str = "test") -> None:
    store = Store(history_span=DAY)
    for i in range(100):
        _probe(store, "a", i % 2 == 0, T0 + 60 * i)
        _probe(store, "b", True, T0 + 60 * i)
    state = StateFile(path, province)
    state.restore(Store(), {"a", "b"}, now=T0)
    state.save(store.snapshot()[0])
    state.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other_province", "empty"])
def test_an_unusable_state_file_is_reported_set_aside_and_replaced(tmp_path: Path, damage: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    if damage == "garbage":
        path.write_bytes(b"\x00\xffnot sqlite at all" * 100)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        _saved_store(path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        _saved_store(path, province="another")
    store = Store()
    state = StateFile(path, "test")
    restored = state.restore(store, {"a", "b"}, now=T0 + DAY)
    if damage == "empty":  # SQLite reads a zero-length file as an empty database: nothing to restore, no error
        assert restored == 0 and not list(tmp_path.glob("state.db.unusable-*"))
        return
    assert restored == 0 and store.snapshot()[0] == {}
    [aside] = tmp_path.glob("state.db.unusable-*")
    assert aside.stat().st_size > 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and str(path) in errors[0] and "starting with empty history" in errors[0]
    if damage == "other_province":
        assert "province 'another'" in errors[0]
    # The agent goes on with a fresh file.
    _probe(store, "a", True, T0 + DAY)
    state.save(store.snapshot()[0])
    assert state.status.last_save_ok
    assert StateFile(path, "test").restore(Store(), {"a"}, now=T0 + DAY) == 1


def test_inconsistent_rows_are_skipped_by_name_and_the_others_restored(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    _saved_store(path)
    db = sqlite3.connect(path)
    db.execute("UPDATE targets SET up = probes + 5 WHERE id = 'a'")  # more successes than probes
    db.execute("INSERT INTO history VALUES ('b', ?, 1, 1)", (T0 + 400 * DAY,))  # a point from a wrong clock
    db.commit()
    db.close()
    store = Store(history_span=DAY)
    assert StateFile(path, "test").restore(store, {"a", "b"}, now=T0 + 7000) == 1
    states = store.snapshot()[0]
    assert set(states) == {"b"} and states["b"].probes_total == 100
    assert all(t <= T0 + 7000 for t, _, _ in states["b"].history)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("1 targets: a" in w for w in warnings), warnings


def test_a_save_that_fails_is_counted_and_the_next_one_recovers(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    store = Store()
    _probe(store, "a", True, T0)
    state = StateFile(path, "test")
    state.restore(store, {"a"}, now=T0)
    state.save(store.snapshot()[0])
    state.close()
    path.unlink()
    path.mkdir()  # the file cannot be opened (as a disk that went away would; modes do not stop root)
    state.save(store.snapshot()[0])
    assert not state.status.last_save_ok and state.status.save_failures == 1
    assert any("save failed" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    path.rmdir()
    _probe(store, "a", False, T0 + 60)
    state.save(store.snapshot()[0])
    assert state.status.last_save_ok
    # The new file holds everything, not only what changed since the lost one.
    again = Store()
    assert StateFile(path, "test").restore(again, {"a"}, now=T0 + 60) == 1
    assert again.snapshot()[0]["a"].probes_total == 2


# -- the real agent, killed ---------------------------------------------------------------------

def _config(tmp_path: Path, port: int) -> Path:
    p = Province(levels=["province"]).collector("tcp", interval="1s", timeout="0.5s")
    p.target("portal", "p", "tcp", params={"host": "127.0.0.1", "port": port})
    p.kpi("portal_availability_30d", availability(collector="tcp", window="30d"),
          title_vi="Tính sẵn sàng của cổng", title_en="Portal availability",
          targets=[ops_target("99%", deadline="2030-01-01")])
    return p.write(tmp_path / "province.yml")


def _counts(agent: AgentProcess) -> tuple[float, float, float | None]:
    """(successful probes, probes, availability KPI or None while pending) as the agent exports them."""
    samples = parse_samples(agent.metrics())
    kpi = [v for (n, ls), v in samples.items() if n == "egov_kpi_value" and ("kpi", "portal_availability_30d") in ls]
    if not any(n == "egov_target_probes_total" for n, _ in samples):  # not probed yet
        return (0.0, 0.0, kpi[0] if kpi else None)
    return (sample(samples, "egov_target_probe_successes_total", target="portal"),
            sample(samples, "egov_target_probes_total", target="portal"), kpi[0] if kpi else None)


def _wait(agent: AgentProcess, done, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = _counts(agent)
        if done(got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"not reached within {timeout}s: {_counts(agent)}\n{agent.log.read_text()}")


def test_availability_continues_after_kill_9(tmp_path: Path, tcp_peers) -> None:
    """Up for a while, then down; SIGKILL; the restarted agent's 30-day availability carries on."""
    port = tcp_peers.listening("127.0.0.1")
    config = _config(tmp_path, port)
    state = tmp_path / "var" / "state.db"
    flags = ["--storage.state-file", str(state), "--storage.state-save-interval", "1s"]
    first = AgentProcess(config, tmp_path, flags)
    try:
        first.wait_ready()
        _wait(first, lambda c: c[1] >= 8)
        tcp_peers.close()  # the portal goes down: refused from now on
        up_before, probes_before, _ = _wait(first, lambda c: c[1] - c[0] >= 4)
        time.sleep(0.3)  # into the next round
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
    finally:
        first.stop()
    # By hand: the KPI was up_before / probes_before (about 8/12) when the agent died.
    assert 8 <= up_before < probes_before

    second = AgentProcess(config, tmp_path, flags)
    try:
        second.wait_ready()
        up_after, probes_after, kpi = _wait(second, lambda c: c[2] is not None)
        # Nothing up since the kill, and at most one save interval (one probe at 1 s) lost.
        assert up_after == up_before
        assert probes_before - 2 <= probes_after - 1 <= probes_before + 2
        assert kpi == pytest.approx(up_after / probes_after)
        assert kpi == pytest.approx(up_before / (probes_before + 1), abs=0.1)
        samples = parse_samples(second.metrics())
        assert sample(samples, "egov_state_restored_targets") == 1
        assert sample(samples, "egov_state_last_save_successful") == 1
    finally:
        assert second.stop() == 0
    assert "Traceback" not in second.log.read_text()

    # Without the state file the same restart starts from zero: the KPI would read 0 %, not about 65 %.
    third = AgentProcess(config, tmp_path)
    try:
        third.wait_ready()
        up, _, kpi = _wait(third, lambda c: c[2] is not None)
        assert up == 0 and kpi == 0.0
    finally:
        third.stop()


def test_the_state_file_of_a_clean_stop_holds_the_last_probes(tmp_path: Path, tcp_peers) -> None:
    port = tcp_peers.listening("127.0.0.1")
    config = _config(tmp_path, port)
    state = tmp_path / "state.db"
    agent = AgentProcess(config, tmp_path, ["--storage.state-file", str(state), "--storage.state-save-interval", "1h"])
    try:
        agent.wait_ready()
        _, probes, _ = _wait(agent, lambda c: c[1] >= 3)
    finally:
        assert agent.stop() == 0  # SIGTERM: the final save runs although the interval is an hour
    saved = sqlite3.connect(state).execute("SELECT probes FROM targets WHERE id = 'portal'").fetchone()
    assert saved is not None and saved[0] >= probes


def test_a_bad_save_interval_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, 1)
    run = subprocess.run([*AGENT, "run", "--config", str(config), "--listen", "127.0.0.1:0",
                          "--storage.state-save-interval", "0.1s"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--storage.state-save-interval: between 1s and 1h" in run.stderr
