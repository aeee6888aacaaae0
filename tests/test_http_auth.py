"""Credentials from secrets reach the configured origin only and never the exposition or the logs;
redirects are followed within the limit and refused outside the probe allowlist."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.app.runtime import Agent
from agent.config.loading import load_config

PASSWORD = "s3cr3t-Mật-khẩu"
TOKEN = "tok-9f8e7d6c5b4a"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: ClassVar[dict[str, str | None]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: bytes = b"", location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        if location:
            self.send_header("Location", location)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        auth = self.headers.get("Authorization")
        type(self).seen[self.path] = auth
        basic = "Basic " + base64.b64encode(f"cán-bộ:{PASSWORD}".encode()).decode()
        if self.path == "/basic":
            ok = auth == basic
        elif self.path == "/bearer":
            ok = auth == f"Bearer {TOKEN}"
        elif self.path == "/hop":  # same origin: credentials follow
            return self._reply(302, location="/basic")
        elif self.path == "/other-origin":  # another origin (localhost, not 127.0.0.1): they must not
            return self._reply(302, location=f"http://localhost:{port}/echo")
        elif self.path == "/far":  # loopback, but outside the allowlist this test sets
            return self._reply(302, location=f"http://127.0.0.2:{port}/echo")
        elif self.path == "/echo":
            ok = True
        else:
            return self._reply(404)
        if ok:
            self._reply(200, "<title>Cổng thông tin</title> Tin tức".encode())
        else:
            self._reply(401, b"unauthorised")


@pytest.fixture()
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Handler.seen = {}
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def _config(tmp_path, port: int):
    base = f"http://127.0.0.1:{port}"
    basic = {"kind": "basic", "username": "cán-bộ", "password": "env:PORTAL_PASSWORD"}
    targets = {
        "basic": {"url": f"{base}/basic", "auth": basic, "contains": ["Tin tức"]},
        "bearer": {"url": f"{base}/bearer", "auth": {"kind": "bearer", "token": "file:" + str(tmp_path / "token")}},
        "no-auth": {"url": f"{base}/basic"},
        "wrong-password": {"url": f"{base}/basic", "auth": {**basic, "password": "env:WRONG_PASSWORD"}},
        "same-origin-hop": {"url": f"{base}/hop", "auth": basic},
        "other-origin-hop": {"url": f"{base}/other-origin", "auth": basic},
        "no-follow": {"url": f"{base}/hop", "follow_redirects": False, "expect_status": [302]},
        "far-hop": {"url": f"{base}/far"},
    }
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = {
        "province": {"code": "lab", "name_vi": "Tỉnh thử nghiệm", "name_en": "Test province"},
        "levels": ["province"],
        "units": [{"id": "tinh", "name_vi": "Tỉnh", "level": "province"}],
        "collectors": {"http": {"timeout": "3s", "interval": "30s"}},
        "targets": [{"id": k, "unit": "tinh", "collector": "http", "params": v} for k, v in targets.items()],
    }
    path = tmp_path / "agent.yml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def test_credentials_go_to_their_origin_only_and_never_leak(tmp_path, server, monkeypatch, caplog):
    monkeypatch.setenv("PORTAL_PASSWORD", PASSWORD)
    monkeypatch.setenv("WRONG_PASSWORD", "not-it")
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.1/32")
    caplog.set_level(logging.DEBUG)
    agent = Agent(load_config(_config(tmp_path, server)))
    asyncio.run(agent.collect_once())
    states = {t: s.result for t, s in agent.states().items()}
    body, _ = agent.exposition.render(None)
    text = body.decode()

    outcome = {t: (r.up, r.reason) for t, r in states.items()}
    assert outcome == {
        "basic": (True, ""), "bearer": (True, ""), "no-auth": (False, "status_mismatch"),
        "wrong-password": (False, "status_mismatch"), "same-origin-hop": (True, ""),
        "other-origin-hop": (True, ""), "no-follow": (True, ""), "far-hop": (False, "redirect_not_allowed"),
    }
    assert _Handler.seen["/echo"] is None  # the redirect to another origin carried no credentials
    assert "/far" in _Handler.seen  # asked, but its target outside the allowlist was never contacted
    families = {f.name: f for f in text_string_to_metric_families(text)}
    redirects = {s.labels["target"]: s.value for s in families["egov_http_redirects"].samples}
    assert redirects["same-origin-hop"] == 1 and redirects["no-follow"] == 0
    codes = {s.labels["target"]: s.value for s in families["egov_http_status_code"].samples}
    assert codes["wrong-password"] == 401 and codes["no-follow"] == 302
    for secret in (PASSWORD, TOKEN, base64.b64encode(f"cán-bộ:{PASSWORD}".encode()).decode()):
        assert secret not in text
        assert secret not in caplog.text
        assert all(secret not in r.detail for r in states.values())
