"""The probe runner (collectors/runner.py): one deadline, one reason vocabulary, redaction and the sample check.

Real peers where the failure is the network's (a TCP port whose accept queue is full never answers); small
collectors of the test's own where the failure is a collector's (a bug that raises, undeclared samples).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.province import write_config

from agent.config.loading import load_config
from agent.domain.models import StrictModel
from agent.domain.secrets import Secret
from agent.engine.scheduler import Scheduler
from agent.engine.store import Store
from collectors import REGISTRY
from collectors.api import Collector, Family, NoSettings, ProbeFailure, ProbeResult, Sample
from collectors.runner import ProbeRunner, run_probe
from collectors.tcp.probe import TcpCollector, TcpParams

HOST = "127.0.26.1"  # this test's own loopback address
SECRET = "s3cret-community-value"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listening port whose accept queue is full: Linux drops further SYNs, so a connect never completes."""
    server = socket.socket()
    server.bind((HOST, 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((HOST, port))
        fillers.append(filler)
    time.sleep(0.1)
    yield port
    for sock in (*fillers, server):
        sock.close()


def test_a_port_that_never_answers_is_a_timeout_within_the_deadline(silent_port: int) -> None:
    collector = TcpCollector(NoSettings())
    started = time.perf_counter()
    result = asyncio.run(run_probe(collector, "t", TcpParams(host=HOST, port=silent_port), 0.5))
    elapsed = time.perf_counter() - started
    assert (result.up, result.reason) == (False, "timeout"), result
    assert result.detail == "no answer within 0.5s"
    assert 0.45 <= elapsed < 0.9, elapsed


class SecretParams(StrictModel):
    community: Secret
    fail: str = "raise"


class Leaky(Collector[SecretParams, StrictModel]):
    """Fails the ways a careless collector does, quoting its credentials."""

    kind = "leaky"
    Params = SecretParams
    families = (Family("leaky_status", "gauge", "0 when failed."),)

    async def probe(self, target_id: str, params: SecretParams, timeout: float) -> ProbeResult:
        said = f"device refused community {params.community.reveal()}"
        if params.fail == "raise":
            raise RuntimeError(said)
        if params.fail == "failure":
            raise ProbeFailure("auth_error", said)
        if params.fail == "inner_timeout":
            await asyncio.wait_for(asyncio.sleep(10), 0.01)
        return ProbeResult(False, "refused", detail=said)

    def failure_samples(self, target_id: str, params: SecretParams) -> list[Sample]:
        return [Sample("leaky_status", 0.0)]


@pytest.fixture
def secret_params(monkeypatch: pytest.MonkeyPatch) -> dict[str, SecretParams]:
    monkeypatch.setenv("LEAKY_COMMUNITY", SECRET)
    return {fail: SecretParams.model_validate({"community": "env:LEAKY_COMMUNITY", "fail": fail})
            for fail in ("raise", "failure", "inner_timeout", "returned")}


def test_a_probe_that_raises_is_an_internal_error_logged_with_its_type_and_never_its_secret(
        secret_params: dict[str, SecretParams], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="collectors.runner")
    result = asyncio.run(run_probe(Leaky(StrictModel()), "t", secret_params["raise"], 1.0))
    assert (result.up, result.reason, result.detail) == (False, "internal_error", "RuntimeError")
    assert result.samples == [Sample("leaky_status", 0.0)], "failure_samples are reported on every failure"
    logged = "\n".join(f"{r.getMessage()}\n{r.exc_text}" for r in caplog.records)
    assert "t: probe raised\nTraceback" in logged and "RuntimeError: device refused community ***" in logged
    assert SECRET not in logged and SECRET not in repr(result)


@pytest.mark.parametrize(("fail", "reason"), [("failure", "auth_error"), ("returned", "refused")])
def test_a_secret_in_a_failure_detail_is_redacted(secret_params: dict[str, SecretParams], fail: str,
                                                  reason: str) -> None:
    result = asyncio.run(run_probe(Leaky(StrictModel()), "t", secret_params[fail], 1.0))
    assert (result.up, result.reason) == (False, reason)
    assert result.detail == "device refused community ***"


def test_an_inner_timer_the_probe_let_escape_is_a_timeout(secret_params: dict[str, SecretParams]) -> None:
    result = asyncio.run(run_probe(Leaky(StrictModel()), "t", secret_params["inner_timeout"], 1.0))
    assert (result.up, result.reason) == (False, "timeout"), result


class Sloppy(Collector[StrictModel, StrictModel]):
    """Returns samples its families do not declare: today's exposition drops them without a word."""

    kind = "sloppy"
    Params = StrictModel
    families = (Family("sloppy_value", "gauge", "A value."), Family("sloppy_by_port", "gauge", "Per port.", ("port",)))

    async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
        return ProbeResult(True, samples=[Sample("sloppy_value", 1.0), Sample("sloppy_undeclared", 2.0),
                                          Sample("sloppy_by_port", 3.0, ("80", "extra")),
                                          Sample("sloppy_by_port", 4.0, ("443",))])


def test_samples_that_do_not_match_the_declared_families_are_counted_and_logged_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="collectors.runner")
    config = write_config(tmp_path / "sloppy.yml", """\
province: {code: test, name_vi: Tỉnh Thử, name_en: Test Province}
levels: [province, site]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
      - {id: thdl, name_vi: Trung tâm THDL, level: site}
collectors:
  sloppy: {interval: 60s, timeout: 1s}
targets:
  - {id: a, unit: thdl, collector: sloppy}
  - {id: b, unit: thdl, collector: sloppy}
""")
    REGISTRY.add(Sloppy, network=False)
    try:
        loaded = load_config(config)
        store = Store()
        scheduler = Scheduler(loaded, store, {"sloppy": Sloppy(StrictModel())}, list(loaded.config.targets))
        asyncio.run(scheduler.run_once())
        asyncio.run(scheduler.run_once())
    finally:
        del REGISTRY["sloppy"]
    snapshot = store.snapshot()
    targets, collectors = snapshot.targets, snapshot.collectors
    kept = targets["a"].result
    assert kept is not None and kept.samples == [Sample("sloppy_value", 1.0), Sample("sloppy_by_port", 4.0, ("443",))]
    own = collectors["sloppy"]
    assert "collector_samples_rejected" in {f.name for f in own.self_families}
    assert sorted((s.labels, s.value) for s in own.self_samples) == [
        (("sloppy_by_port", "label_count"), 4.0), (("sloppy_undeclared", "undeclared"), 4.0)]
    warnings = [r.getMessage() for r in caplog.records if r.name == "collectors.runner"]
    assert len(warnings) == 2, warnings  # once per family and fault, not once per probe
    assert any("sloppy_undeclared: its collector declares no such family" in w for w in warnings)
    assert any("sloppy_by_port: 2 label values where the family declares 1" in w for w in warnings)


def test_a_reason_that_is_not_a_word_is_an_internal_error() -> None:
    class Chatty(Sloppy):
        async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
            raise ProbeFailure("Device says: no such user", "")

    runner = ProbeRunner()
    probed = asyncio.run(runner.run(Chatty(StrictModel()), "t", StrictModel(), 1.0))
    assert (probed.result.up, probed.result.reason) == (False, "internal_error")
    assert probed.seconds < 1.0
