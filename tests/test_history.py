"""agent.engine.history against the tuple of tuples it replaced: the same points, the same answers."""

from __future__ import annotations

import pickle
import random
import sys
import threading

from agent.engine.history import History
from agent.engine.store import HISTORY_POINTS, Store, TargetState, window_counts
from collectors.api import ProbeResult


def test_appended_keeps_the_last_points_and_leaves_the_old_history_alone() -> None:
    as_tuple: tuple[tuple[float, int, int], ...] = ()
    history = History()
    rng = random.Random(15)
    up = 0
    for i in range(3 * HISTORY_POINTS):
        up += rng.random() < 0.9
        before = history
        as_tuple = (*as_tuple[-(HISTORY_POINTS - 1):], (1_700_000_000.0 + 60 * i, i + 1, up))
        history = history.appended(as_tuple[-1], HISTORY_POINTS)
        assert len(before) == min(i, HISTORY_POINTS)  # not changed by the append
    assert history == as_tuple and tuple(history) == as_tuple and len(history) == HISTORY_POINTS
    assert history[0] == as_tuple[0] and history[-1] == as_tuple[-1] and history[5:9] == as_tuple[5:9]
    assert history.last_time == as_tuple[-1][0] and History().last_time is None
    assert pickle.loads(pickle.dumps(history)) == history


def test_the_latest_point_before_a_time_is_the_one_a_scan_finds() -> None:
    rng = random.Random(7)
    points = []
    t = 1_700_000_000.0
    for i in range(300):
        t += rng.choice([0.5, 1.0, 60.0, 3600.0])
        points.append((t, i + 1, i))
    history = History(points)
    for probe in [points[0][0] - 1, *(p[0] for p in points), *(p[0] + 0.25 for p in points), t + 10]:
        scanned = None
        for point in points:
            if point[0] <= probe:
                scanned = point
        assert history.last_at_or_before(probe) == scanned


def test_window_counts_read_the_packed_history() -> None:
    """Availability over the last hour: probes 3..10 fall in it, 8 in all, of which up 10 - 2 = ... by hand:
    the baseline is the point at t0 + 1800 (probes 2, up 2), the latest counters are probes 10, up 7: 5 of 8."""
    t0 = 1_700_000_000.0
    state = TargetState(probes_total=10, up_total=7, history=[(t0, 1, 1), (t0 + 1800, 2, 2), (t0 + 3600, 6, 4)])
    assert type(state.history) is History
    assert window_counts(state, 3600.0, t0 + 5400) == (5, 8)
    assert window_counts(state, 86400.0, t0 + 5400) == (7, 10)  # no point that old: since the start


def test_a_full_history_costs_a_sixth_of_the_tuples() -> None:
    """What the store holds per target once its history is full (a day after start at Bắc Giang's windows):
    the tuples' objects (each point a tuple, a float and two ints) against the two arrays' buffers."""
    points = [(1_700_000_000.0 + 169.4 * i, 100_000 + 3 * i, 99_000 + 3 * i) for i in range(HISTORY_POINTS)]
    as_tuples = tuple(points)
    tuples = sys.getsizeof(as_tuples) + sum(sys.getsizeof(p) + sum(map(sys.getsizeof, p)) for p in points)
    packed = History(points)
    arrays = sys.getsizeof(packed) + sum(sys.getsizeof(getattr(packed, a)) for a in History.__slots__)
    assert packed == as_tuples
    assert arrays * 5 < tuples, (arrays, tuples)
    assert arrays < 26 * HISTORY_POINTS, arrays  # 24 bytes a point, and the arrays' slack


def test_the_store_builds_a_packed_history_a_snapshot_shares() -> None:
    store = Store(history_span=HISTORY_POINTS - 2)  # one point a second
    now = 1_700_000_000.0
    for i in range(HISTORY_POINTS + 20):
        store.record("a", "icmp", ProbeResult(up=i % 4 != 0), 0.01, finished_at=now + i)
    state = store.snapshot().targets["a"]
    assert type(state.history) is History and len(state.history) == HISTORY_POINTS
    assert state.history[-1] == (now + HISTORY_POINTS + 19, HISTORY_POINTS + 20, state.up_total)
    walked: list[int] = []
    reader = threading.Thread(target=lambda: walked.extend(p[1] for p in state.history))
    reader.start()
    store.record("a", "icmp", ProbeResult(up=True), 0.01, finished_at=now + 10_000)
    reader.join()
    assert walked == list(range(21, HISTORY_POINTS + 21))  # the snapshot's points, whatever came after
