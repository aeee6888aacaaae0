"""systemd's service notification protocol (sd_notify(3)): READY, RELOADING, STOPPING, STATUS, WATCHDOG.

The protocol is one AF_UNIX datagram of newline-separated ``KEY=VALUE`` lines sent to the socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). That is a dozen lines,
documented and stable, so it is written here rather than taken from a dependency: the PyPI
``sdnotify`` package does the same in the same way but has had no release since 2017, and
libsystemd bindings (``cysystemd``, ``systemd-python``) would need a C build and libsystemd headers
for a single ``sendto``.

A failed notification is logged and ignored: losing READY or a watchdog ping is systemd's business
to act on, never a reason for the agent to stop collecting.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)
ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends notifications to systemd when started by it (``Type=notify``); does nothing otherwise."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        if environ is None:  # like sd_notify's unset_environment: child processes must not notify for us
            for name in ENV:
                os.environ.pop(name, None)
        address = self.socket_name = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if address.startswith("@"):
            self.address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self.address = address
        self.watchdog_interval = _watchdog_interval(env)
        self._socket: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True if systemd got it."""
        if self.address is None:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto("\n".join(fields).encode(), self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a vanished socket would otherwise log at every ping
                log.warning("sd_notify to %s failed: %s", self.socket_name, exc)
                self._warned = True
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog_interval(env: dict[str, str]) -> float | None:
    """Seconds between pings (a third of WatchdogSec), or None when systemd asked for none."""
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):  # meant for another process (e.g. a wrapper that exec'd us)
        return None
    return int(usec) / 1e6 / 3
