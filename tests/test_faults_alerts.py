"""The alerts that make two faults visible before they fool anyone, shown firing under promtool: the
agent's own client certificate nearing its end, and an MCU's meetings counter that keeps going back
(the agent counts every fall as a restart, so a counter falling again and again overcounts)."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import yaml
from support.alert_annotations import with_annotations  # promtool compares annotations too
from support.faults import province
from support.tools import promtool

from agent.config.loading import load_config
from exporters.rules import build_rules


def test_client_certificate_and_mcu_counter_alerts_fire(tmp_path: Path):
    p = province().collector("http", interval="30s", timeout="5s").collector("mcu", interval="30s", timeout="5s")
    p.target("portal", "c1", "http", params={"url": "https://portal.test/"})
    p.target("mcu", "c1", "mcu",
             params={"adapter": "http", "url": "http://127.45.4.1/", "profile": "jitsi_videobridge"})
    loaded = load_config(p.write(tmp_path / "faults.yml"), resolve_secrets=False)
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(build_rules(loaded), allow_unicode=True, sort_keys=False), encoding="utf-8")
    tests = tmp_path / "tests.yml"
    tests.write_text(yaml.safe_dump(with_annotations(yaml.safe_load(textwrap.dedent("""\
    rule_files: [rules.yml]
    evaluation_interval: 1m
    tests:
      # t=0 is 1970: a certificate ending 10 days after it is within 14 days; one ending in 30 days is not.
      - interval: 1m
        input_series:
          - series: 'egov_http_tls_client_cert_expiry_timestamp_seconds{target="portal"}'
            values: '864000x90'
          - series: 'egov_http_tls_client_cert_expiry_timestamp_seconds{target="later"}'
            values: '2592000x90'
          # One restart in the hour: quiet. A fall every 10 minutes: fires.
          - series: 'egov_mcu_meetings_held_resets_total{target="mcu"}'
            values: '0x30 1x59'
          - series: 'egov_mcu_meetings_held_resets_total{target="flapping"}'
            values: '0+0.1x90'
        alert_rule_test:
          - eval_time: 85m
            alertname: EgovClientCertificateExpiring
            exp_alerts:
              - exp_labels: {severity: warning, target: portal}
                value: 9d 22h 35m 0s
          - eval_time: 85m
            alertname: EgovMcuCounterGoingBack
            exp_alerts:
              - exp_labels: {severity: warning, target: flapping}
    """)), rules), allow_unicode=True), encoding="utf-8")
    result = subprocess.run([promtool(), "test", "rules", str(tests)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
