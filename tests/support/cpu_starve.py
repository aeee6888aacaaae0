"""Starve one process of CPU for a bounded time: a cgroup CPU quota, or else busy loops on its one CPU.

A quota (cgroup v2 ``cpu.max``, or v1 ``cpu.cfs_quota_us``) gives the process a slice of a CPU per
period and nothing more, as a server at load 12 on 2 cores does to a process that wants more; it
costs the rest of the machine nothing. Without a writable cgroup, the process is pinned to one CPU
with ``taskset`` beside busy-loop processes that share it, each ending by itself at the deadline.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


def _v2() -> Path | None:
    controllers = CGROUP / "cgroup.controllers"
    if not controllers.exists() or "cpu" not in controllers.read_text().split():
        return None
    with contextlib.suppress(OSError):  # already on, or not ours to turn on: the mkdir below will tell
        (CGROUP / "cgroup.subtree_control").write_text("+cpu")
    return CGROUP


def _v1() -> Path | None:
    root = CGROUP / "cpu"
    return root if (root / "cpu.cfs_quota_us").exists() else None


class Starved:
    """``with Starved(pid, share=0.05, seconds=60):`` the process gets ``share`` of one CPU meanwhile."""

    def __init__(self, pid: int, share: float, seconds: float) -> None:
        self.pid, self.share, self.seconds = pid, share, seconds
        self.group: Path | None = None
        self.parent: Path | None = None
        self.busy: list[subprocess.Popen] = []
        self.how = ""

    def __enter__(self) -> Starved:
        name = f"egov-test-starve-{os.getpid()}-{self.pid}"
        quota = max(1000, int(self.share * PERIOD_US))
        for root, limit in ((_v2(), "cpu.max"), (_v1(), "cpu.cfs_quota_us")):
            if root is None:
                continue
            group = root / name
            try:
                group.mkdir()
                if limit == "cpu.max":
                    (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
                else:
                    (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (group / "cpu.cfs_quota_us").write_text(str(quota))
                (group / "cgroup.procs").write_text(str(self.pid))
            except OSError:
                if group.exists():
                    group.rmdir()
                continue
            self.group, self.parent = group, root
            self.how = f"cgroup {'v2 cpu.max' if limit == 'cpu.max' else 'v1 cpu.cfs_quota_us'} {quota}/{PERIOD_US}"
            return self
        self._busy_loops()
        return self

    def _busy_loops(self) -> None:
        """One CPU for the process and ``1/share - 1`` spinners: its fair share is about ``share``."""
        taskset = shutil.which("taskset")
        if taskset is None:
            raise AssertionError("no writable cgroup and no taskset: cannot starve the agent")
        subprocess.run([taskset, "-a", "-p", "-c", "0", str(self.pid)], check=True, capture_output=True)
        end = time.time() + self.seconds
        spin = f"import time\nwhile time.time() < {end}: pass\n"
        for _ in range(max(1, round(1 / self.share) - 1)):
            self.busy.append(subprocess.Popen([taskset, "-c", "0", sys.executable, "-c", spin]))
        self.how = f"taskset -c 0 with {len(self.busy)} busy loops"

    def __exit__(self, *exc: object) -> None:
        if self.group is not None and self.parent is not None:
            with contextlib.suppress(OSError):  # the process has ended
                (self.parent / "cgroup.procs").write_text(str(self.pid))
            for _ in range(50):  # the move is asynchronous in v1: wait until the group is empty
                try:
                    self.group.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)
        for process in self.busy:
            process.kill()
            process.wait(5)
        if self.busy and shutil.which("taskset"):
            subprocess.run(["taskset", "-a", "-p", "-c", f"0-{(os.cpu_count() or 1) - 1}", str(self.pid)],
                           capture_output=True)
