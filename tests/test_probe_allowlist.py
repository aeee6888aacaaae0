"""EGOV_AGENT_PROBE_ALLOW fails closed: addresses are found by their type (ProbeHost), not by a field's name.

Before, the allowlist read a field called ``host`` (and two per-model overrides): a new kind naming its
field ``server`` was probed wherever it pointed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field
from support.province import write_config

from agent.app.runtime import Agent, ProbeNotAllowed
from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError
from agent.domain.models import StrictModel
from agent.domain.netaddr import PROBED_URL, ProbeHost, declares_probe_hosts, probe_hosts
from collectors import REGISTRY
from collectors.api import Collector, ProbeResult
from collectors.http.models import HttpParams
from collectors.mcu.models import McuParams

HEAD = """\
province: {code: test, name_vi: Tỉnh Thử, name_en: Test Province}
levels: [province, site]
units:
  - id: p
    name_vi: Tỉnh Thử
    level: province
    children:
      - {id: thdl, name_vi: Trung tâm THDL, level: site}
"""


class Upstream(StrictModel):
    name: str
    server: ProbeHost


class TypedParams(StrictModel):
    server: ProbeHost
    backups: list[Upstream] = Field(default_factory=list)
    status_url: Annotated[str, PROBED_URL] | None = None


class PlainParams(StrictModel):
    server: str


def register(params: type[StrictModel], network: bool = True) -> None:
    """A kind of the test's own, ``typed``, with these params."""

    class Typed(Collector[StrictModel, StrictModel]):
        kind = "typed"
        Params = params

        async def probe(self, target_id: str, params: StrictModel, timeout: float) -> ProbeResult:
            raise AssertionError("the allowlist must refuse before any probe")

    REGISTRY.add(Typed, network=network)


@pytest.fixture(autouse=True)
def _forget_typed() -> Iterator[None]:
    yield
    if "typed" in REGISTRY:
        del REGISTRY["typed"]


def config(tmp_path: Path, params: str) -> Path:
    return write_config(tmp_path / "typed.yml", HEAD + f"""\
collectors:
  typed: {{interval: 60s, timeout: 1s}}
targets:
  - {{id: far, unit: thdl, collector: typed, params: {params}}}
""")


def test_a_probe_host_named_server_outside_the_allowlist_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")
    register(TypedParams)
    loaded = load_config(config(tmp_path, "{server: 10.0.0.1}"))
    with pytest.raises(ProbeNotAllowed) as caught:
        Agent(loaded)
    assert "target far: address 10.0.0.1 is outside EGOV_AGENT_PROBE_ALLOW" in str(caught.value)


def test_addresses_nested_in_lists_and_urls_are_found_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGOV_AGENT_PROBE_ALLOW", "127.0.0.0/8,::1/128")
    register(TypedParams)
    params = "{server: 127.0.26.1, backups: [{name: b, server: 10.0.0.2}], status_url: 'http://10.0.0.3:8080/s'}"
    loaded = load_config(config(tmp_path, params))
    assert probe_hosts(loaded.target_params["far"]) == ["127.0.26.1", "10.0.0.2", "10.0.0.3"]
    with pytest.raises(ProbeNotAllowed) as caught:
        Agent(loaded)
    assert "10.0.0.2" in str(caught.value) and "10.0.0.3" in str(caught.value)


def test_a_network_kind_whose_params_declare_no_probe_host_is_refused_at_load(
        tmp_path: Path) -> None:
    register(PlainParams)  # network=True: the default
    with pytest.raises(ConfigError) as caught:
        load_config(config(tmp_path, "{server: 10.0.0.1}"))
    assert "collector kind 'typed' probes the network but its params (PlainParams) declare no ProbeHost field" \
        in str(caught.value)


def test_a_kind_that_says_it_probes_no_network_needs_no_probe_host(tmp_path: Path) -> None:
    register(PlainParams, network=False)
    assert load_config(config(tmp_path, "{server: 10.0.0.1}")).target_params["far"] == PlainParams(server="10.0.0.1")


def test_every_shipped_network_kind_declares_its_hosts() -> None:
    for name, descriptor in REGISTRY.descriptors.items():
        assert REGISTRY.undeclared_hosts(name) is None, name
        assert declares_probe_hosts(REGISTRY.models(name)[1]) == descriptor.network, name


def test_the_http_address_replaces_the_url_host_and_mcu_reads_its_adapter() -> None:
    url = "https://cong.bacgiang.gov.vn/"
    assert probe_hosts(HttpParams.model_validate({"url": url})) == ["cong.bacgiang.gov.vn"]
    assert probe_hosts(HttpParams.model_validate({"url": url, "address": "127.0.26.2"})) == ["127.0.26.2"]
    mcu = McuParams.model_validate({"adapter": "http", "url": "http://127.0.26.3:8080/colibri/stats",
                                    "profile": "jitsi_videobridge"})
    assert probe_hosts(mcu) == ["127.0.26.3"]
