"""The store's counters and availability history, kept across restarts in a local SQLite file.

A 30-day availability KPI is worth nothing if every reboot, crash or ``kill -9`` restarts it from zero,
and Prometheus cannot give it back: the agent computes the KPI from its own probes. So each target's
probe counters, failure reasons, outage start and thinned history are saved every few seconds and
restored at start. SQLite in WAL mode commits each save as one transaction, so a kill in the middle
leaves the previous save whole; only the probes since the last save are lost (one save interval).

The time the agent was not running is neither up nor down: the history has no probes there, exactly
as if the agent had been unable to observe. A file that cannot be read (truncated, overwritten, another
province's) is reported, moved aside and replaced: the agent starts with empty history, never not at all.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.engine.history import History
from agent.engine.store import HISTORY_POINTS, Store, TargetState

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"
CLOCK_SLACK = 60.0  # seconds: history points later than now + this come from a wrong clock and are dropped

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    id TEXT PRIMARY KEY, probes INTEGER NOT NULL, up INTEGER NOT NULL, failures TEXT NOT NULL,
    down_since REAL NOT NULL, judged_up INTEGER NOT NULL, failed_in_row INTEGER NOT NULL, up_since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS history (
    target TEXT NOT NULL, t REAL NOT NULL, probes INTEGER NOT NULL, up INTEGER NOT NULL,
    PRIMARY KEY (target, t)) WITHOUT ROWID;
"""


class StateFileError(Exception):
    """The state file cannot be used; the message names the file and why."""


@dataclass
class StateStatus:
    """What the state file did, for the self-metrics and the log."""

    path: str = ""
    restored_targets: int = 0
    last_save_time: float = 0.0
    last_save_ok: bool = True
    save_failures: int = 0


@dataclass(frozen=True)
class _Saved:
    """What the file holds for a target, so a save writes only what changed."""

    row: tuple[int, int, str, float, int, int, float]
    first: float  # time of the oldest history point in the file, 0 if none
    last: float   # time of the newest one


class StateFile:
    """One agent's state file. ``restore`` once at start, then ``save`` from one thread at a time."""

    def __init__(self, path: Path, province: str) -> None:
        self.path = path
        self.province = province
        self.status = StateStatus(path=str(path))
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._saved: dict[str, _Saved] = {}

    # -- opening -----------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """Open (or create) the file and check it is ours; raise StateFileError if it is not usable."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateFileError(f"state file {self.path}: cannot open: {exc}") from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash keeps every committed save
            check = db.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise StateFileError(f"state file {self.path}: damaged ({check[0] if check else 'no answer'})")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta and meta.get("schema") != SCHEMA_VERSION:
                raise StateFileError(f"state file {self.path}: schema {meta.get('schema')!r}, "
                                     f"this agent writes {SCHEMA_VERSION!r}")
            if meta and meta.get("province") != self.province:
                raise StateFileError(f"state file {self.path}: it belongs to province {meta.get('province')!r}, "
                                     f"not {self.province!r}")
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("schema", SCHEMA_VERSION), ("province", self.province)])
        except sqlite3.DatabaseError as exc:
            db.close()
            raise StateFileError(f"state file {self.path}: not a readable state file ({exc})") from exc
        except StateFileError:
            db.close()
            raise
        return db

    def _set_aside(self, reason: StateFileError) -> None:
        """Move an unusable file (and its WAL) out of the way, keeping it for whoever wants to look."""
        aside = self.path.with_name(f"{self.path.name}.unusable-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(str(self.path) + suffix)
            if part.exists():
                os.replace(part, Path(str(aside) + suffix))
        log.error("%s; moved to %s, starting with empty history", reason, aside,
                  extra={"reason": "state_file_unusable"})

    # -- restore -------------------------------------------------------------------------------
    def restore(self, store: Store, target_ids: set[str], now: float | None = None) -> int:
        """Load the saved state of the configured targets into ``store``; return how many were restored."""
        now = time.time() if now is None else now
        try:
            self._db = self._open()
            states = self._read(self._db, target_ids, now)
        except StateFileError as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            self._set_aside(exc)
            self._saved = {}
            self._db = self._open()
            states = {}
        store.restore(states)
        self.status.restored_targets = len(states)
        if states:
            log.info("restored the probe history of %d targets from %s", len(states), self.path)
        return len(states)

    def _read(self, db: sqlite3.Connection, target_ids: set[str], now: float) -> dict[str, TargetState]:
        states: dict[str, TargetState] = {}
        skipped: list[str] = []
        try:
            rows = db.execute("SELECT id, probes, up, failures, down_since, judged_up, failed_in_row, up_since "
                              "FROM targets").fetchall()
            for target, probes, up, failures, down_since, judged_up, failed_in_row, up_since in rows:
                if target not in target_ids:
                    continue  # no longer configured: dropped at the next save
                # One target's points at a time (the primary key's order): all 600k of 1,170 full histories as
                # tuples at once left ~22 MiB with the allocator after they were freed (bench/start.py --aged).
                points = db.execute("SELECT t, probes, up FROM history WHERE target = ? ORDER BY t",
                                    (target,)).fetchall()
                state = _state(probes, up, failures, (down_since, up_since), judged_up, failed_in_row, points, now)
                if state is None:
                    skipped.append(target)
                    continue
                states[target] = state
                history = state.history
                self._saved[target] = _Saved(_row(state), history[0][0] if history else 0.0,
                                             history[-1][0] if history else 0.0)
        except sqlite3.DatabaseError as exc:
            raise StateFileError(f"state file {self.path}: not a readable state file ({exc})") from exc
        if skipped:
            log.warning("state file %s: ignored the inconsistent saved state of %d targets: %s%s", self.path,
                        len(skipped), ", ".join(skipped[:5]), " …" if len(skipped) > 5 else "",
                        extra={"reason": "state_inconsistent"})
        return states

    # -- save ----------------------------------------------------------------------------------
    def save(self, states: Mapping[str, TargetState]) -> None:
        """Write what changed since the last save, in one transaction (blocking: run it off the loop)."""
        with self._lock:
            try:
                if self._db is None:
                    self._db = self._open()
                    self._saved = {}  # a file opened afresh may have lost what earlier saves wrote
                self._write(self._db, states)
            except (sqlite3.Error, StateFileError, OSError) as exc:
                self.status.last_save_ok = False
                self.status.save_failures += 1
                log.error("state file %s: save failed: %s", self.path, exc,
                          extra={"reason": "state_save_failed", "limit_key": "state_save_failed"})
                return
            self.status.last_save_ok = True
            self.status.last_save_time = time.time()

    def _write(self, db: sqlite3.Connection, states: Mapping[str, TargetState]) -> None:
        saved = dict(self._saved)
        upserts: list[tuple[str, int, int, str, float, int, int, float]] = []
        inserts: list[tuple[str, float, int, int]] = []
        trims: list[tuple[str, float]] = []
        for target, state in states.items():
            row = _row(state)
            before = saved.get(target)
            if before is None or before.row != row:
                upserts.append((target, *row))
            history = state.history
            first = history[0][0] if history else 0.0
            last = before.last if before else 0.0
            inserts.extend((target, *p) for p in history if p[0] > last)
            if before is not None and first > before.first:
                trims.append((target, first))
            saved[target] = _Saved(row, first, history[-1][0] if history else 0.0)
        gone = [(t,) for t in saved if t not in states]
        for (target,) in gone:
            del saved[target]
        try:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?, ?, ?, ?, ?)", upserts)
            db.executemany("INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?)", inserts)
            db.executemany("DELETE FROM history WHERE target = ? AND t < ?", trims)
            db.executemany("DELETE FROM targets WHERE id = ?", gone)
            db.executemany("DELETE FROM history WHERE target = ?", gone)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('saved_at', ?)", (repr(time.time()),))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._saved = saved

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _row(state: TargetState) -> tuple[int, int, str, float, int, int, float]:
    return (state.probes_total, state.up_total, json.dumps(dict(state.failures), sort_keys=True), state.down_since,
            int(state.up), state.failed_in_row, state.up_since)


def _state(probes: object, up: object, failures: object, since: tuple[object, object], judged_up: object,
           failed_in_row: object, points: list[tuple[float, int, int]], now: float) -> TargetState | None:
    """A TargetState from saved values, or None when they contradict each other (a file edited or damaged)."""
    if not (isinstance(probes, int) and isinstance(up, int) and 0 <= up <= probes):
        return None
    down_since, up_since = since
    if not (isinstance(down_since, int | float) and isinstance(up_since, int | float)):
        return None
    if not (0 <= down_since <= now + CLOCK_SLACK and 0 <= up_since <= now + CLOCK_SLACK):
        return None
    if judged_up not in (0, 1) or not (isinstance(failed_in_row, int) and 0 <= failed_in_row <= probes):
        return None
    try:
        reasons = json.loads(failures) if isinstance(failures, str) else None
    except ValueError:
        return None
    if not isinstance(reasons, dict) or not all(isinstance(k, str) and isinstance(v, int) and v >= 0
                                                for k, v in reasons.items()):
        return None
    kept: list[tuple[float, int, int]] = []
    for t, p, u in points:
        if t > now + CLOCK_SLACK:
            continue  # written under a clock that ran ahead: it would swallow every later window
        if not (0 <= u <= p <= probes and u <= up) or (kept and (p < kept[-1][1] or u < kept[-1][2])):
            return None
        kept.append((float(t), p, u))
    # The debounced state carries over, so down_after holds across a restart: a target that was up and
    # fails its first probe after it stays up until the failures in a row reach down_after.
    return TargetState(probes_total=probes, up_total=up, failures=Counter(reasons), down_since=float(down_since),
                       history=History(kept[-HISTORY_POINTS:]), up=bool(judged_up), failed_in_row=failed_in_row,
                       up_since=float(up_since))
