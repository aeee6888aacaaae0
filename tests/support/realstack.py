"""Debian's Prometheus and Alertmanager on loopback, and a webhook receiver, for the end-to-end tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from support.net import free_port
from support.processes import stop_process


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise AssertionError(f"{name} not found: install Debian's prometheus packages (scripts/test does)")
    return path


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url}: process exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready in {timeout}s:\n{log.read_text()[-3000:]}")


class Process:
    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        stop_process(self.proc, grace=15)
        self._out.close()


class Prometheus(Process):
    def __init__(self, tmp: Path, name: str, jobs: dict[str, list[str]], rules: Path | None,
                 alertmanager: str | None = None, interval: str = "2s", data: Path | None = None,
                 extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory = tmp / name
        directory.mkdir()
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": "1500ms"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}
                               for job, targets in jobs.items()],
        }
        if rules is not None:
            config["rule_files"] = [str(rules)]
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        super().__init__([_binary("prometheus"), f"--config.file={directory / 'prometheus.yml'}",
                          f"--storage.tsdb.path={data or directory / 'data'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle", *(extra or [])],
                         directory / "prometheus.log")
        _wait_http(self.url + "/-/ready", self.proc, self.log)

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query, evaluated now or at the Unix time ``at``."""
        params = {"query": expr} | ({"time": repr(at)} if at is not None else {})
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def firing(self) -> list[dict[str, Any]]:
        """The alerts firing in Prometheus now (before Alertmanager's inhibitions)."""
        with urllib.request.urlopen(self.url + "/api/v1/alerts", timeout=10) as response:
            alerts = json.load(response)["data"]["alerts"]
        return [a for a in alerts if a["state"] == "firing"]

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, predicate, timeout: float, what: str) -> float | None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.value(expr)
            if last is not None and predicate(last):
                return last
            time.sleep(1)
        raise AssertionError(f"{what}: {expr} stayed at {last} for {timeout}s")


class Alertmanager(Process):
    """``inhibit_rules`` as in an Alertmanager configuration (the example's, to test its inhibitions)."""

    def __init__(self, tmp: Path, webhook: str, inhibit_rules: list[dict[str, Any]] | None = None) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        directory = tmp / "alertmanager"
        directory.mkdir()
        config = {
            "route": {"receiver": "test", "group_by": ["alertname", "kpi"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "test", "webhook_configs": [{"url": webhook, "send_resolved": True}]}],
            "inhibit_rules": inhibit_rules or [],
        }
        (directory / "alertmanager.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        super().__init__([_binary("prometheus-alertmanager"), f"--config.file={directory / 'alertmanager.yml'}",
                          f"--storage.path={directory / 'data'}", f"--web.listen-address={self.address}",
                          "--cluster.listen-address="], directory / "alertmanager.log")
        _wait_http(f"http://{self.address}/-/ready", self.proc, self.log)

    def active(self) -> list[dict[str, Any]]:
        """The alerts Alertmanager would notify now: active, neither silenced nor inhibited."""
        url = f"http://{self.address}/api/v2/alerts?active=true&silenced=false&inhibited=false&unprocessed=false"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)


class Webhook:
    """Records every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        received = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, status: str, **labels: str) -> list[dict[str, Any]]:
        return [a for n in list(self.notifications) for a in n["alerts"]
                if a["status"] == status and labels.items() <= a["labels"].items()]

    def wait(self, status: str, timeout: float, **labels: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.alerts(status, **labels)
            if found:
                return found[-1]
            time.sleep(0.5)
        raise AssertionError(f"no {status} alert {labels} within {timeout}s; got {self.notifications[-3:]}")

    def close(self) -> None:
        self.server.shutdown()


class VictoriaMetrics(Process):
    """Debian's single-node VictoriaMetrics (package victoria-metrics), its storage in the test's folder."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        directory = tmp / "victoria-metrics"
        directory.mkdir()
        super().__init__([_binary("victoria-metrics"), f"-storageDataPath={directory / 'data'}",
                          f"-httpListenAddr=127.0.0.1:{self.port}", "-retentionPeriod=100y",
                          "-search.disableCache"], directory / "victoria-metrics.log")
        _wait_http(self.url + "/health", self.proc, self.log)

    def import_file(self, path: Path) -> None:
        """Stream a JSON-lines file to /api/v1/import (it may be larger than memory), then flush."""
        with path.open("rb") as body:
            request = urllib.request.Request(self.url + "/api/v1/import", data=body, method="POST",
                                             headers={"Content-Length": str(path.stat().st_size)})
            with urllib.request.urlopen(request, timeout=1800) as response:
                assert response.status in (200, 204), response.read()
        with urllib.request.urlopen(self.url + "/internal/force_flush", timeout=60) as response:
            assert response.status == 200

    def import_jsonl(self, body: bytes) -> None:
        """POST /api/v1/import (one JSON object per series), then flush so that queries see it."""
        request = urllib.request.Request(self.url + "/api/v1/import", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            assert response.status in (200, 204), response.read()
        with urllib.request.urlopen(self.url + "/internal/force_flush", timeout=60) as response:
            assert response.status == 200
