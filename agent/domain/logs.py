"""Logging to stderr (journald under systemd), plain or one JSON object per line, rate-limited.

Records about a target, a collector or an HTTP client carry those as structured fields (``extra=``:
collector, target, unit, reason, client), which the JSON format emits as keys so journald and log
shippers can filter on them. A record repeated more than ``burst`` times within ``window`` seconds
for the same subject (the same message template for the same target, collector or client) is
dropped, and a summary "suppressed N similar messages" follows when the window ends, so a dead
commune or a misconfigured scraper cannot flood the journal while every distinct problem is still
reported.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FIELDS = ("collector", "target", "unit", "reason", "client", "path", "status")
DEFAULT_RATE = "5/60s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*FIELDS, "suppressed"):
            value = getattr(record, name, None)
            if value is not None:
                payload[name] = value
        if record.exc_text:  # set alone by collectors/runner.py: a traceback with its secrets redacted
            payload["exception"] = record.exc_text
        elif record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


def parse_rate(text: str) -> tuple[int, float]:
    """``BURST/WINDOW`` such as ``5/60s`` or ``10/5m``; ``0`` turns rate limiting off."""
    if text.strip() == "0":
        return (0, 0.0)
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m or int(m.group(1)) < 1 or float(m.group(2)) <= 0:
        raise ValueError(f"expected BURST/WINDOW such as 5/60s, got {text!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}[m.group(3)]
    return int(m.group(1)), float(m.group(2)) * scale


@dataclass
class _Slot:
    start: float
    count: int
    suppressed: int
    sample: logging.LogRecord


class RateLimitFilter(logging.Filter):
    """Lets through at most ``burst`` records per subject per ``window`` seconds (debug records always).

    The subject is the logger, level and message template plus the record's ``limit_key``, or else its
    target, collector and client fields. Summaries of what was dropped are emitted through ``handler``
    when a window ends (noticed on the next record, at most once a second) and by ``flush``.
    """

    def __init__(self, handler: logging.Handler, burst: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.handler = handler
        self.burst = burst
        self.window = window
        self.clock = clock
        self._lock = threading.Lock()
        self._slots: dict[tuple, _Slot] = {}
        self._next_sweep = 0.0

    def _key(self, record: logging.LogRecord) -> tuple:
        subject = getattr(record, "limit_key", None)
        if subject is None:
            subject = tuple(getattr(record, name, None) for name in ("target", "collector", "client"))
        return (record.name, record.levelno, str(record.msg), subject)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO or getattr(record, "suppressed", None) is not None:
            return True
        now = self.clock()
        key = self._key(record)
        with self._lock:
            summaries = self._sweep(now) if now >= self._next_sweep else []
            slot = self._slots.get(key)
            if slot is not None and now >= slot.start + self.window:
                if slot.suppressed:
                    summaries.append(self._summary(slot))
                slot = None
            if slot is None:
                slot = self._slots[key] = _Slot(now, 0, 0, record)
            slot.count += 1
            allowed = slot.count <= self.burst
            if not allowed:
                slot.suppressed += 1
        for summary in summaries:
            self.handler.handle(summary)
        return allowed

    def _sweep(self, now: float) -> list[logging.LogRecord]:
        """Summaries of windows that ended; forget quiet subjects so the table stays small."""
        self._next_sweep = now + 1.0
        out = []
        for key, slot in list(self._slots.items()):
            if now >= slot.start + self.window:
                if slot.suppressed:
                    out.append(self._summary(slot))
                del self._slots[key]
        return out

    def _summary(self, slot: _Slot) -> logging.LogRecord:
        sample = slot.sample
        fields = {name: getattr(sample, name) for name in FIELDS if getattr(sample, name, None) is not None}
        if getattr(sample, "limit_key", None) is not None:
            fields.pop("target", None)  # the subject spans targets (e.g. one collector bug): name none of them
        about = " ".join(f"{k}={v}" for k, v in fields.items())
        record = logging.LogRecord(
            sample.name, max(sample.levelno, logging.WARNING), sample.pathname, sample.lineno,
            "suppressed %d similar messages in %gs%s: %s",
            (slot.suppressed, self.window, f" ({about})" if about else "", sample.msg), None)
        record.suppressed = slot.suppressed
        for name, value in fields.items():
            setattr(record, name, value)
        return record

    def flush(self) -> None:
        """Emit the summaries still pending (at shutdown)."""
        with self._lock:
            summaries = [self._summary(s) for s in self._slots.values() if s.suppressed]
            self._slots.clear()
        for summary in summaries:
            self.handler.handle(summary)


_filter: RateLimitFilter | None = None
# The arguments of the last setup_logging, so collector workers (agent/pool.py) log as the main process does.
current: tuple[str, str, str] = ("info", "plain", DEFAULT_RATE)


def setup_logging(level: str = "info", fmt: str = "plain", rate: str = DEFAULT_RATE) -> None:
    global _filter, current
    current = (level, fmt, rate)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    burst, window = parse_rate(rate)
    _filter = RateLimitFilter(handler, burst, window) if burst else None
    if _filter is not None:
        handler.addFilter(_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def flush_suppressed() -> None:
    if _filter is not None:
        _filter.flush()
