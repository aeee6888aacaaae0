"""TLS, basic authentication and client certificates on the agent's endpoint, with real clients
(requests, curl) and certificates from trustme; the same web config file checked against Debian's
node_exporter; and secrets looked for everywhere the agent writes."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import bcrypt
import pytest
import requests
import trustme
from support.exposition import parse_samples
from support.net import free_port
from support.paths import AGENT, REPO
from support.province import one_system, web_config, write_config
from support.service import Agent, wait_until

PASSWORD = "scrape-Passw0rd-7f3a"  # ASCII: requests sends Latin-1, curl UTF-8


class Pki:
    """A CA the agent trusts for clients, its server and client certificates, and certificates it must refuse."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        ca = trustme.CA(organization_name="egov test CA")
        ca.cert_pem.write_to_path(str(directory / "ca.pem"))
        self._leaf(ca.issue_cert("127.0.0.1", "localhost"), "server")
        self._leaf(ca.issue_cert("prometheus.scraper.test", common_name="prometheus"), "client")
        now = dt.datetime.now(dt.UTC)
        self._leaf(ca.issue_cert("prometheus.scraper.test", not_before=now - dt.timedelta(days=30),
                                 not_after=now - dt.timedelta(days=1)), "expired")
        self._leaf(trustme.CA(organization_name="Rogue CA").issue_cert("prometheus.scraper.test"), "rogue")
        self.ca = str(directory / "ca.pem")

    def _leaf(self, leaf: trustme.LeafCert, name: str) -> None:
        (self.dir / f"{name}.pem").write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(self.dir / f"{name}.key"))

    def pair(self, name: str) -> tuple[str, str]:
        return str(self.dir / f"{name}.pem"), str(self.dir / f"{name}.key")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


def hashed(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()  # cost 4: fast tests


@pytest.fixture
def agents(tmp_path: Path):
    started: list[Agent] = []

    def start(*args, **kwargs) -> Agent:
        agent = Agent(tmp_path, *args, **kwargs)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


def curl(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("curl")
    if exe is None:
        pytest.fail("curl not found: install Debian's curl package (scripts/test does)")
    return subprocess.run([exe, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", *args],
                          capture_output=True, text=True, timeout=20)


def test_basic_auth_over_tls(tmp_path: Path, pki: Pki, agents) -> None:
    def web_with(**users: str) -> Path:
        headers = {"X-Frame-Options": "deny", "X-Content-Type-Options": "nosniff"}
        return web_config(tmp_path / "web.yml", f"{pki.dir}/server.pem", f"{pki.dir}/server.key",
                          {"prometheus": prometheus, **users}, http_server_config={"headers": headers})

    prometheus = hashed(PASSWORD)
    web = web_with()
    config = one_system().write(tmp_path / "province.yml")
    agent = agents(config, ["--web.config.file", str(web), "--log-rate-limit", "3/60s", "--web.enable-lifecycle"],
                   scheme="https")
    auth = ("prometheus", PASSWORD)
    agent.wait_ready(auth=auth, verify=pki.ca)
    refused = []  # every 401 the agent gave, to check its log's rate limit

    def get(path: str = "/metrics", method: str = "GET", **kwargs) -> requests.Response:
        response = requests.request(method, agent.base + path, verify=pki.ca, timeout=10, **kwargs)
        if response.status_code == 401:
            refused.append(response)
        return response

    anonymous = get()
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic ")
    for user, password in (("prometheus", "wrong"), ("nobody", PASSWORD), ("prometheus", PASSWORD + "x")):
        assert get(auth=(user, password)).status_code == 401
    ok = get(auth=auth)
    assert ok.status_code == 200
    assert parse_samples(ok.text)[("egov_config_last_reload_successful", (("province", "test"),))] == 1
    assert ok.headers["X-Frame-Options"] == "deny" and ok.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/", "/-/healthy", "/-/ready"):  # every path, as exporter-toolkit does
        assert get(path).status_code == 401
    assert get("/-/reload", "POST").status_code == 401
    assert get("/-/reload", "POST", auth=auth).status_code == 200

    # Plain HTTP to the TLS port gets no metrics, just Go's answer.
    plain = requests.get(f"http://127.0.0.1:{agent.port}/metrics", auth=auth, timeout=5)
    assert plain.status_code == 400 and "HTTP request to an HTTPS server" in plain.text
    assert "egov_" not in plain.text

    # curl, another client, with its own TLS stack.
    base = f"https://127.0.0.1:{agent.port}/metrics"
    assert curl("--cacert", pki.ca, "-u", f"prometheus:{PASSWORD}", base).stdout == "200"
    assert curl("--cacert", pki.ca, "-u", "prometheus:nope", base).stdout == "401"
    refused.append("curl")
    assert curl("--cacert", pki.ca, base.replace("https", "http")).stdout == "400"
    assert curl("--cacert", pki.ca, "--tls-max", "1.1", "-u", f"prometheus:{PASSWORD}", base).returncode != 0

    # Clients that stall their handshake hold up nobody: handshakes run in the connection's thread.
    stalled = [socket.create_connection(("127.0.0.1", agent.port)) for _ in range(3)]
    stalled[1].sendall(b"\x16\x03\x01")  # the start of a ClientHello, then silence
    try:
        started = time.monotonic()
        assert get(auth=auth).status_code == 200
        assert time.monotonic() - started < 1.0
    finally:
        for s in stalled:
            s.close()

    # The web config is re-read when it changes: a new user works without a restart ...
    web_with(grafana=hashed("grafana-pw"))
    wait_until(lambda: get(auth=("grafana", "grafana-pw")).status_code == 200, 5, agent.text)
    # ... and an invalid edit is refused while the settings in force stay.
    web_with(grafana="plain-grafana-pw")
    wait_until(lambda: get(auth=auth) and "web config refused" in agent.text(), 5, agent.text)  # at a connection
    assert get(auth=("grafana", "grafana-pw")).status_code == 200
    assert get().status_code == 401

    assert agent.stop() == 0
    log = agent.text()
    assert "Traceback" not in log
    # 401s are logged at most 3 times a minute per client, the rest summed up (here, at shutdown).
    unauthorized = [line for line in log.splitlines() if "http: unauthorized request" in line]
    assert len([line for line in unauthorized if "suppressed" not in line]) == 3
    assert f"suppressed {len(refused) - 3} similar messages" in log


def node_exporter(tmp_path: Path, web: Path) -> tuple[subprocess.Popen, int]:
    exe = shutil.which("prometheus-node-exporter")
    if exe is None:
        pytest.fail("prometheus-node-exporter not found: install Debian's package of that name (scripts/test does)")
    port = free_port()
    log = (tmp_path / "node_exporter.log").open("wb")
    proc = subprocess.Popen([exe, f"--web.listen-address=127.0.0.1:{port}", f"--web.config.file={web}",
                             "--collector.disable-defaults", "--collector.time"], stdout=log, stderr=subprocess.STDOUT)
    return proc, port


def test_client_certificates_required_same_file_as_node_exporter(tmp_path: Path, pki: Pki, agents) -> None:
    web = write_config(tmp_path / "web.yml", f"""\
        # The same file for node_exporter and egov-agent (kept as the text an operator writes).
        tls_server_config:
          cert_file: {pki.dir}/server.pem
          key_file: {pki.dir}/server.key
          client_auth_type: RequireAndVerifyClientCert
          client_ca_file: {pki.ca}
          min_version: TLS12
        basic_auth_users:
          prometheus: '{hashed(PASSWORD)}'
        """)
    agent = agents(one_system().write(tmp_path / "province.yml"), ["--web.config.file", str(web)],
                   scheme="https")
    node, node_port = node_exporter(tmp_path, web)
    auth = ("prometheus", PASSWORD)
    try:
        agent.wait_ready(auth=auth, verify=pki.ca, cert=pki.pair("client"))
        for name, base in (("egov-agent", agent.base), ("node_exporter", f"https://127.0.0.1:{node_port}")):
            url = base + "/metrics"

            def get(url: str = url, **kwargs):
                return requests.get(url, verify=pki.ca, timeout=5, **kwargs)

            wait_until(lambda: _answers(get, auth=auth, cert=pki.pair("client")), 10, f"{name} did not answer")
            assert get(auth=auth, cert=pki.pair("client")).status_code == 200, name
            assert get(cert=pki.pair("client")).status_code == 401, name
            for refused in (None, "rogue", "expired"):  # no certificate, an untrusted CA's, an expired one
                with pytest.raises(requests.exceptions.RequestException):
                    get(auth=auth, **({"cert": pki.pair(refused)} if refused else {}))
            cert, key = pki.pair("expired")
            assert curl("--cacert", pki.ca, "--cert", cert, "--key", key, "-u", f"prometheus:{PASSWORD}",
                        url).returncode != 0, name
            cert, key = pki.pair("client")
            assert curl("--cacert", pki.ca, "--cert", cert, "--key", key, "-u", f"prometheus:{PASSWORD}",
                        url).stdout == "200", name
    finally:
        node.terminate()
        node.wait(10)
    log = agent.text()
    assert "TLS handshake failed: client=127.0.0.1" in log and "Traceback" not in log


def _answers(get, **kwargs) -> bool:
    try:
        return get(**kwargs).status_code == 200
    except requests.RequestException:
        return False


def test_rate_limit_of_the_web_config_answers_429(tmp_path: Path, agents) -> None:
    web = web_config(tmp_path / "web.yml", rate_limit={"burst": 3, "interval": "1m"})
    agent = agents(one_system().write(tmp_path / "province.yml"), ["--web.config.file", str(web)])
    wait_until(lambda: agent.proc.poll() is not None or _answers(lambda: agent.get("/-/healthy")), 15, agent.text)
    statuses = [agent.get("/-/healthy").status_code for _ in range(4)]
    # The probe above took one token: two more pass, then the bucket is empty (one token a minute).
    assert statuses == [200, 200, 429, 429]


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AGENT, *args], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_web_config_errors_are_located_and_never_show_secrets(tmp_path: Path, pki: Pki) -> None:
    province = one_system().write(tmp_path / "province.yml")
    bad = write_config(tmp_path / "web.yml", """\
        tls_server_config:  # kept as text: the errors are located in it, typo (min_versoin) included
          cert_file: server.pem
          key_file: server.key
          min_versoin: TLS12
        http_server_config:
          headers: {X-Powered-By: egov}
        basic_auth_users:
          alice: hunter2-in-the-clear
        """)
    out = check("check-config", str(province), "--web.config.file", str(bad))
    assert out.returncode == 2
    assert f"{bad}:4: tls_server_config.min_versoin: unknown key" in out.stderr
    assert f"{bad}:6: http_server_config.headers: " in out.stderr and "X-Powered-By" in out.stderr
    assert f"{bad}:8: basic_auth_users.alice: expected a bcrypt hash" in out.stderr
    assert "hunter2" not in out.stdout + out.stderr

    bad.write_text(f"""\
tls_server_config:
  cert_file: missing.pem
  key_file: {pki.dir}/server.key
  client_auth_type: RequireAnyClientCert
""")
    out = check("check-config", str(province), "--web.config.file", str(bad))
    assert out.returncode == 2 and f"{bad}:2: tls_server_config: " in out.stderr
    assert "RequireAnyClientCert" in out.stderr and "RequireAndVerifyClientCert" in out.stderr

    bad.write_text(f"tls_server_config:\n  cert_file: missing.pem\n  key_file: {pki.dir}/client.key\n")
    out = check("check-config", str(province), "--web.config.file", str(bad))
    assert out.returncode == 2
    assert f"{bad}:2: tls_server_config.cert_file: cannot read {tmp_path}/missing.pem: No such file" in out.stderr

    bad.write_text(f"tls_server_config:\n  cert_file: {pki.dir}/server.pem\n  key_file: {pki.dir}/client.key\n")
    out = check("check-config", str(province), "--web.config.file", str(bad))
    assert out.returncode == 2 and "KEY_VALUES_MISMATCH" in out.stderr
    assert "PRIVATE KEY" not in out.stdout + out.stderr
    run = subprocess.run([*AGENT, "run", "--config", str(province), "--listen", f"127.0.0.1:{free_port()}",
                          "--web.config.file", str(bad)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert run.returncode == 2 and "KEY_VALUES_MISMATCH" in run.stderr

    good = web_config(tmp_path / "good.yml", f"{pki.dir}/server.pem", f"{pki.dir}/server.key",
                      {"prometheus": hashed(PASSWORD)})
    out = check("check-config", str(province), "--web.config.file", str(good))
    assert out.returncode == 0 and "HTTPS, basic auth on" in out.stdout


def test_hash_password_makes_a_hash_the_agent_accepts() -> None:
    out = subprocess.run([*AGENT, "hash-password", "--cost", "4"], input="s3cret\n", capture_output=True,
                         text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0
    assert bcrypt.checkpw(b"s3cret", out.stdout.strip().encode())
    assert "s3cret" not in out.stdout


def test_secrets_never_reach_logs_metrics_or_error_messages(tmp_path: Path, pki: Pki, agents) -> None:
    from support.snmp_peers import snmpd

    community = "Cmty-5ecret-91d2"
    auth_key, priv_key, literal = "AuthKey-5ecret-0a7b", "PrivKey-5ecret-c3e4", "Literal-5ecret-77f1"
    (tmp_path / "auth.key").write_text(auth_key + "\n")
    (tmp_path / "priv.key").write_text(priv_key + "\n")
    (tmp_path / "web.pw").write_text(PASSWORD + "\n")
    port = free_port()
    web = web_config(tmp_path / "web.yml", f"{pki.dir}/server.pem", f"{pki.dir}/server.key",
                     {"prometheus": hashed(PASSWORD)})
    with snmpd(f"rocommunity {community} 127.0.0.1\n", tmp_path, ["-v2c", "-c", community]) as (host, snmp_port):
        province = one_system().collector("snmp", interval="1s", timeout="0.9s")
        province.collector("http", interval="1s", timeout="0.9s")
        province.target("router-v2c", "thdl", "snmp", params={
            "host": host, "port": snmp_port, "community": "env:EGOV_TEST_COMMUNITY", "interface": {"index": 1}})
        province.target("router-v3", "thdl", "snmp", params={
            "host": "127.0.0.1", "port": snmp_port, "version": 3, "interface": {"index": 1},
            "v3": {"user": "monitor", "auth_key": f"file:{tmp_path}/auth.key",
                   "priv_key": f"file:{tmp_path}/priv.key"}})
        province.target("self", "thdl", "http", params={
            "url": f"https://127.0.0.1:{port}/-/healthy", "ca_bundle": pki.ca,
            "auth": {"kind": "basic", "username": "prometheus", "password": f"file:{tmp_path}/web.pw"}})
        config = province.write(tmp_path / "province.yml")
        env = {"EGOV_TEST_COMMUNITY": community}
        agent = agents(config, ["--web.config.file", str(web), "--log-level", "debug", "--log-format", "json",
                                "--web.enable-lifecycle"],
                       env=env, scheme="https", port=port)
        auth = ("prometheus", PASSWORD)
        agent.wait_ready(auth=auth, verify=pki.ca)
        bodies = []

        def up(target: str) -> bool:
            bodies.append(agent.get("/metrics", auth=auth, verify=pki.ca).text)
            return target_up(bodies[-1], target) == 1

        wait_until(lambda: up("router-v2c") and up("self"), 15, agent.text)  # real, authenticated exchanges
        assert agent.get("/metrics", auth=("prometheus", "Wrong-5ecret-guess"), verify=pki.ca).status_code == 401
        bodies.append(agent.get("/metrics", auth=auth, verify=pki.ca,
                                headers={"Accept": "application/openmetrics-text; version=1.0.0"}).text)

        # A bad edit putting a community in the clear: refused, and the value is not echoed anywhere.
        good = config.read_text()
        config.write_text(good.replace("community: env:EGOV_TEST_COMMUNITY", f"community: {literal}"))
        refused = requests.post(agent.base + "/-/reload", auth=auth, verify=pki.ca, timeout=10)
        assert refused.status_code == 400 and "not a literal value" in refused.text
        checked_bad = check("check-config", str(config))
        config.write_text(good)
        checked = subprocess.run([*AGENT, "check-config", str(config), "--web.config.file", str(web)],
                                 capture_output=True, text=True, cwd=REPO, timeout=60,
                                 env={**os.environ, **env})
        assert checked.returncode == 0, checked.stderr
        agent.stop()

    outputs = {"log": agent.text(), "metrics": "\n".join(bodies), "reload reply": refused.text,
               "check-config (bad)": checked_bad.stdout + checked_bad.stderr,
               "check-config": checked.stdout + checked.stderr}
    basic = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
    for secret in (community, auth_key, priv_key, literal, PASSWORD, basic, "Wrong-5ecret-guess"):
        for where, text in outputs.items():
            assert secret not in text, f"{secret!r} appears in the {where}"
    assert "debug" in outputs["log"]  # the log really was at debug level


def target_up(body: str, target: str) -> float | None:
    return next((value for (name, labels), value in parse_samples(body).items()
                 if name == "egov_target_up" and dict(labels).get("target") == target), None)
