"""``egov-agent run`` as a real child process, scraped over HTTP."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from support.net import free_port, http_get
from support.paths import AGENT, REPO
from support.processes import stop_process


def first_round_done(status: int, body: bytes | str) -> bool:
    """/-/ready says every target was probed once: it answers 200 earlier, before the dead ones' first timeouts,
    and the tests judge every target. (Not /metrics: a scrape would start the rendering cache.)"""
    return status == 200 and (body if isinstance(body, str) else body.decode()) == "ready\n"


class AgentProcess:
    """The agent on a free loopback port, its output in a log file the failures quote."""

    def __init__(self, config: Path, tmp: Path, extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / f"agent-{self.port}.log"
        self._log = self.log.open("wb")
        self.proc = subprocess.Popen(
            [*AGENT, "run", "--config", str(config), "--listen", f"127.0.0.1:{self.port}", *(extra or [])],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if first_round_done(*http_get(self.base + "/-/ready", timeout=1)[::2]):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"agent not ready within {timeout}s:\n{self.log.read_text()}")

    def metrics(self, accept: str | None = None) -> str:
        status, _, body = http_get(self.base + "/metrics", {"Accept": accept} if accept else None)
        assert status == 200
        return body.decode()

    def stop(self) -> int:
        code = stop_process(self.proc)
        self._log.close()
        return code
