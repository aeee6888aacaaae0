"""What the benchmarks share: waiting for a process they started to answer over HTTP, and running a
benchmark again in a network namespace of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


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


def rerun_in_own_netns(script: str, flag: str, timeout: float) -> int:
    """Run ``script`` (with this process's arguments) again inside a new network namespace (``unshare
    --net``) with its own loopback, ``flag`` set in its environment so that it knows.

    Every lab uses fixed loopback ranges: on the host's loopback, another lab's nftables table (a test run
    at the same time) would drop this one's echo requests to the same addresses. The namespace, its
    loopback and nftables rules vanish with the processes; it is a process group of its own, killed
    whole if the run overruns ``timeout`` or is interrupted."""
    command = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
               sys.executable, str(Path(script).resolve()), *sys.argv[1:]]
    proc = subprocess.Popen(command, env={**os.environ, flag: "1"}, start_new_session=True)
    try:
        return proc.wait(timeout)
    except BaseException:  # timeout or Ctrl-C: stop the whole group (lab, agent, exporters)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        raise
