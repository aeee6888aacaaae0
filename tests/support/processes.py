"""Stopping the processes the tests start (agents, labs, Prometheus, Chromium): politely, then surely."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> int:
    """SIGTERM, ``grace`` seconds to exit, then SIGKILL; the exit code. A process already gone is left as is."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
