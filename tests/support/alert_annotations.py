"""The annotations promtool expects of the generated alerts, rendered from their templates the way
Prometheus renders them, so that rule tests (test_rules, test_faults_alerts) need not copy the text."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import yaml

from collectors.contrib import TARGET_NAME
from exporters.rules import FAILED_TARGETS

VALUES = {"EgovGroupAllDown": "2", "EgovUnitDown": "2"}
CHOICE = re.compile(r"\{\{ if eq \$value 0\.0 \}\}(.*?)\{\{ else \}\}(.*?)\{\{ end \}\}", re.S)


def _label(labels: dict, match: re.Match) -> str:
    return str(labels.get(match.group(1), ""))


# «since 09:12 on 03/12»: the query, then the clock and the day it formats, then the rest of the sentence.
SINCE = re.compile(r'\{\{ with printf "\(.*?\) \+ -?\d+" \$labels\.\w+ \| query \}\}'
                   r'( từ | since )\{\{ [^}]* \}\}( ngày | on )\{\{ [^}]* \}\}(.*?)\{\{ end \}\}')


def render(template: str, labels: dict, value: str, failed: str, since: str = "", name: str = "") -> str:
    """What promtool renders from one of our templates: ``$labels.x``, ``$value`` (as the case expects it),
    the «equal to a > target» choice, the failed targets' query, the target's name and the «since 09:12 on
    03/12» of the incident (``since`` as «09:12 03/12»; nothing when the case gives none)."""
    text = template.replace(FAILED_TARGETS, failed)
    text = text.replace(TARGET_NAME, name or str(labels.get("target", "")))
    clock, _, day = since.partition(" ")
    text = SINCE.sub(lambda m: f"{m.group(1)}{clock}{m.group(2)}{day}{m.group(3)}" if since else "", text)
    text = CHOICE.sub(lambda m: m.group(1) if value == "0" else m.group(2), text)
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", partial(_label, labels), text)
    return re.sub(r"\{\{ \$value[^}]*\}\}", value, text)


def with_annotations(tests: dict, rules_path: Path) -> dict:
    """promtool compares annotations too: render each expected alert's from the generated rule.

    The value each case expects is in VALUES, or in a ``value:`` key of the expected alert, and the
    targets the description names as failed in a ``failed:`` key (both removed before promtool)."""
    rules = yaml.safe_load(rules_path.read_text())
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            for alert in check.get("exp_alerts", []):
                labels = alert["exp_labels"]
                value = str(alert.pop("value", VALUES.get(check["alertname"], "")))
                failed = alert.pop("failed", "")
                since, name = alert.pop("since", ""), alert.pop("name", "")
                rule = next(r for r in alerts if r["alert"] == check["alertname"]
                            and all(labels.get(k) == v for k, v in r["labels"].items()))
                alert["exp_annotations"] = {key: render(template, labels, value, failed, since, name)
                                            for key, template in rule["annotations"].items()}
    return tests
