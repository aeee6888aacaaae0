"""The http collector's configuration: bad parameters are located errors; the Bắc Giang portal
inventory is what its generator writes and validates with the units it names."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support.province import bac_giang

from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError

ROOT = Path(__file__).resolve().parent.parent
PROVINCE = ROOT / "config" / "provinces" / "bac-giang"

# Kept as text: the errors quote their line in it (c.yml:10 below).
HEAD = """\
province: {code: lab, name_vi: Tỉnh thử nghiệm, name_en: Test province}
levels: [province]
units: [{id: tinh, name_vi: Tỉnh, level: province}]
collectors:
  http: {timeout: 5s, settings: {threads: 4}}
targets:
"""


def _errors(tmp_path: Path, params: str) -> list[str]:
    path = tmp_path / "c.yml"
    path.write_text(HEAD + f"  - id: p\n    unit: tinh\n    collector: http\n    params: {params}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(("params", "where", "message"), [
    ("{url: 'ftp://bacgiang.gov.vn/'}", "targets[0].params.url", "http:// or https://"),
    ("{url: 'https://user:pw@bacgiang.gov.vn/'}", "targets[0].params.url", "not in the URL"),
    ("{url: 'https://bacgiang.gov.vn/', expect_status: [200, '2xy']}", "targets[0].params.expect_status[1]",
     "class such as '2xx'"),
    ("{url: 'https://bacgiang.gov.vn/', regex: ['(unclosed']}", "targets[0].params.regex[0]",
     "invalid regular expression"),
    ("{url: 'https://bacgiang.gov.vn/', method: HEAD, contains: [Tin tức]}", "targets[0].params",
     "HEAD request has no body"),
    ("{url: 'https://bacgiang.gov.vn/', port: 8443}", "targets[0].params", "port needs address"),
    ("{url: 'https://bacgiang.gov.vn/', auth: {kind: basic, username: a, password: hunter2}}",
     "targets[0].params.auth.password", "secret reference"),
    ("{url: 'https://bacgiang.gov.vn/', ca_bundle: /nonexistent/ca.pem}", "targets[0].params.ca_bundle",
     "file"),
    ("{url: 'https://bacgiang.gov.vn/', max_body_bytes: 10}", "targets[0].params.max_body_bytes", "1024"),
    ("{url: 'https://bacgiang.gov.vn/', timeout: 3}", "targets[0].params.timeout", "unknown key"),
])
def test_bad_parameters_are_located_errors(tmp_path, params, where, message):
    errors = _errors(tmp_path, params)
    assert len(errors) == 1, errors
    assert f"c.yml:10: {where}: " in errors[0] and message in errors[0]
    assert "hunter2" not in errors[0]


def test_portals_file_is_what_the_generator_writes(tmp_path):
    before = (PROVINCE / "portals.yml").read_text(encoding="utf-8")
    namespace = runpy.run_path(str(ROOT / "scripts" / "gen_bac_giang_portals.py"), run_name="gen")
    units = yaml.safe_load((PROVINCE / "units.yml").read_text(encoding="utf-8"))["units"]
    assert namespace["render"](units) == before, "portals.yml is stale: run scripts/gen_bac_giang_portals.py"


def test_bac_giang_portals_validate_with_the_province_units(tmp_path):
    province = bac_giang("portals.yml").collector("http", interval="60s", timeout="15s", concurrency=16)
    path = province.write(tmp_path / "bg.yml")
    proc = subprocess.run([sys.executable, "-m", "agent.app.cli", "check-config", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    config = load_config(path).config
    tags = [set(t.tags) for t in config.targets]
    assert sum("provincial_portal" in t for t in tags) == 1
    assert sum("component_portal" in t for t in tags) == 40  # KH59 I.2: «40 Công thông tin điện tử thành phần»
    assert sum("nd43" in t for t in tags) == 40
    assert {"dvc_portal", "one_stop", "document_management"} <= set().union(*tags)
    assert all(t.params["url"].startswith("https://") and ".gov.vn/" in t.params["url"] for t in config.targets)
