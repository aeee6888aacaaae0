"""What the benchmarks share: waiting for a process they started to answer over HTTP."""

from __future__ import annotations

import subprocess
import time
import urllib.request


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until ``url`` answers 200; exits the benchmark if ``proc`` dies first or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready in {timeout:g}s")
