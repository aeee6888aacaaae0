"""Helpers for the service tests: an agent child process with its own environment, arguments and client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from support.agent_process import first_round_done
from support.net import free_port
from support.paths import AGENT, REPO
from support.processes import stop_process

TEST_COLLECTORS = [sys.executable, str(REPO / "tests" / "support" / "agent_with_test_collectors.py")]


class Agent:
    """``egov-agent run`` (or another command line) as a child process on a free loopback port."""

    def __init__(self, tmp: Path, config: Path, extra: list[str] | None = None, env: dict[str, str] | None = None,
                 command: list[str] | None = None, scheme: str = "http", port: int | None = None,
                 preexec: Callable[[], None] | None = None) -> None:
        self.port = port or free_port()
        self.base = f"{scheme}://127.0.0.1:{self.port}"
        self.log = tmp / f"agent-{self.port}.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [*(command or AGENT), "run", "--config", str(config), "--listen", f"127.0.0.1:{self.port}",
             *(extra or [])],
            stdout=self._out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})},
            preexec_fn=preexec,
        )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 5)
        return requests.get(self.base + path, **kwargs)

    def wait_ready(self, timeout: float = 30.0, **kwargs: Any) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.text()}")
            try:
                reply = self.get("/-/ready", timeout=1, **kwargs)
                return first_round_done(reply.status_code, reply.text)
            except requests.RequestException:
                return False

        wait_until(ready, timeout, lambda: f"agent not ready:\n{self.text()}")

    def stop(self) -> int:
        code = stop_process(self.proc)
        self._out.close()
        return code


def wait_until(condition: Callable[[], Any], timeout: float, message: Callable[[], str] | str = "timed out") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(message() if callable(message) else message)
