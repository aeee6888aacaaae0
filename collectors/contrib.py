"""What a kind's alert rules and dashboard panels are built from (``collectors/<kind>/rules.py``, ``panels.py``).

exporters/rules.py and exporters/grafana.py collect each kind's contribution through its descriptor and add
the KPI-level rules and panels; they import these builders too, so that a kind's alert reads like the
KPI-level ones. Everything here is plain data: the kinds must not import the exporters (they sit below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from collectors import REGISTRY, resolve


def contributions(what: Literal["rules", "panels"],
                  kinds: Iterable[str] | None = None) -> list[tuple[str, Callable[..., Any]]]:
    """(kind, function) of each kind (among ``kinds``, or every kind) whose descriptor names its ``what``,
    in the kinds' ``order``: the exporters call them in this order, so the generated files keep theirs."""
    descriptors = REGISTRY.descriptors
    chosen = [descriptors[k] for k in dict.fromkeys(descriptors if kinds is None else kinds) if k in descriptors]
    chosen.sort(key=lambda d: (d.order, d.kind))
    return [(d.kind, resolve(reference)) for d in chosen if (reference := getattr(d, what)) is not None]


# -- rules ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleContext:
    """The parts of the configuration a kind's rules follow (the kind's rules are asked only when the
    configuration has a collector of the kind)."""

    settings: Mapping[str, Any]  # the kind's collector settings as configured (validate them with its model)
    utc_offset: int  # seconds east of UTC of the province's clock, for «since 09:12» in alert texts


TARGETS_GROUP = "egov_targets"  # the rule group of the alerts about targets, which the kinds' alerts join

# When a target's failure began.
TARGET_SINCE = "min(egov_target_down_since_timestamp_seconds{target=%q})"

# A target's configured name, or its id when it has none.
TARGET_NAME = ('{{ with printf "max by (name) (egov_target_info{target=%q,name!=\\"\\"})" $labels.target | query }}'
               '{{ . | first | label "name" }}{{ else }}{{ $labels.target }}{{ end }}')


def alert(name: str, expr: str, severity: str, summary_vi: str, summary_en: str, description: str,
          for_: str = "5m", labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An alert with both languages' summaries and what to check first; build_rules adds ``runbook_url``."""
    return {
        "alert": name,
        "expr": expr,
        "for": for_,
        "labels": {"severity": severity, **(labels or {})},
        "annotations": {"summary_vi": summary_vi, "summary_en": summary_en, "summary": summary_en,
                        "description": description},
    }


def since(query: str, arg: str, offset: int) -> tuple[str, str]:
    """« từ 09:12 ngày 03/12» / « since 09:12 on 03/12 (UTC+07:00)»: when ``query`` (a printf format taking
    ``arg``, giving a Unix time) says the incident began, in the province's clock. Prometheus formats times
    in UTC only, so the province's offset (at generation time; the rules are regenerated every quarter) is
    added in the query. Nothing is said when the query has no answer."""
    sign, minutes = ("+" if offset >= 0 else "-"), abs(offset) // 60
    shown = f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    lookup = f'{{{{ with printf "({query}) + {offset}" {arg} | query }}}}'
    clock = '{{ (. | first | value | toTime).Format "15:04" }}'
    day = '{{ (. | first | value | toTime).Format "02/01" }}'
    return (f"{lookup} từ {clock} ngày {day}{{{{ end }}}}",
            f"{lookup} since {clock} on {day} (UTC{shown}){{{{ end }}}}")


def target_down(kind: str) -> str:
    """The expression of a kind's target down: a kind whose rules alert on it tells each target's failure
    itself, so the KPI-level rules do not page again for a KPI counted over its targets."""
    return f'egov_target_up{{collector="{kind}"}} == 0'


def alerts_each_target(groups: list[dict[str, Any]], kind: str) -> bool:
    """Whether a kind's rule groups alert on each of its targets down (:func:`target_down`)."""
    down = target_down(kind)
    return any("alert" in rule and rule["expr"] == down for group in groups for rule in group["rules"])


# -- panels -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardContext:
    """The dashboard a kind's panels are asked for, and how it drills down: ``board`` is one of ``wan``,
    ``portals``, ``datacentre``, ``videoconference``; ``group`` the hierarchy level the board breaks its
    opening KPI down by (district), ``level`` the level of the units that KPI counts (commune), either None."""

    board: str
    group: str | None = None
    level: str | None = None


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


@dataclass
class Panel:
    """A Grafana panel before layout: the dashboard gives it its id and place from its width and height."""

    title: str
    kind: str  # timeseries | stat | table | bargauge | row
    queries: list[Query] = field(default_factory=list)
    width: int = 12
    height: int = 8
    unit: str = ""
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    field_config: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    repeat: str = ""
    links: list[dict[str, Any]] = field(default_factory=list)


PROVINCE = 'province="$province"'
STAT = {"reduceOptions": {"calcs": ["lastNotNull"]}}
# Vietnamese names of the usual hierarchy levels; any other level is shown by its configured name.
LEVEL_NAMES_VI = {"province": "Tỉnh", "district": "Huyện", "commune": "Xã", "department": "Sở, ngành",
                  "site": "Điểm", "ward": "Phường", "village": "Thôn"}


def mappings_up() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {
        "1": {"text": "Hoạt động / up", "color": "green", "index": 0},
        "0": {"text": "Mất kết nối / down", "color": "red", "index": 1},
    }}]


def drill_selector(board: BoardContext, *matchers: str) -> tuple[str, str]:
    """The board's selector (province, the extra ``matchers``, and the drilled-down group's variable) and the
    title suffix naming that group: ``(…, " ($district)")``."""
    base = ", ".join([PROVINCE, *matchers])
    if board.group:
        return f'{base}, {board.group}=~"${board.group}"', f" (${board.group})"
    return base, ""
