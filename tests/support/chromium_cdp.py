"""Headless Chromium driven over the DevTools protocol: where a page's blocks are, measured by the browser.

``--dump-dom`` says what a page contains, not where it lands on the screen; ``getBoundingClientRect``
run in the page (``Runtime.evaluate``) does, at the exact viewport the wall screen has.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

from support.processes import stop_process

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--font-render-hinting=none"]
DEVTOOLS = re.compile(r"DevTools listening on (ws://127\.0\.0\.1:(\d+)/\S+)")


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium not found: install Debian's chromium (scripts/test does)")


class Browser:
    """One headless Chromium with one page, at ``width``×``height`` CSS pixels (device scale 1)."""

    def __init__(self, profile: Path, width: int = 1920, height: int = 1080, timeout: float = 60.0) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.log = (profile.parent / "chromium.log").open("w+")
        self.proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}",
                                      f"--window-size={width},{height}", "--remote-debugging-address=127.0.0.1",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        port = self._devtools_port()
        pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        page = next(p for p in pages if p.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout)
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.log.seek(0)
            match = DEVTOOLS.search(self.log.read())
            if match:
                return int(match.group(2))
            assert self.proc.poll() is None, f"chromium exited with {self.proc.returncode}"
            time.sleep(0.1)
        raise AssertionError("chromium did not open its DevTools port within the timeout")

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its result, skipping the events sent in between (bounded by time)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                assert "error" not in message, f"{method}: {message['error']}"
                return message["result"]
        raise AssertionError(f"{method}: no answer within {self.timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the page and its fonts are done (fonts change every line's height)."""
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.evaluate(f"document.readyState === 'complete' && location.href === {json.dumps(url)}"):
                self.evaluate("document.fonts.ready.then(() => true)")
                return
            time.sleep(0.1)
        raise AssertionError(f"{url} did not load within {self.timeout}s")

    def rects(self, ids: list[str]) -> dict[str, dict[str, float] | None]:
        """Each element's box in viewport pixels (None: no such id), as the browser laid it out."""
        return self.evaluate(
            "Object.fromEntries(" + json.dumps(ids) + ".map(id => { const e = document.getElementById(id);"
            " if (!e) return [id, null]; const r = e.getBoundingClientRect();"
            " return [id, {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height}]; }))")

    def screenshot(self, path: Path) -> None:
        """What the wall shows: the first screen only, not the whole page."""
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            stop_process(self.proc)
            self.log.close()
