"""The ``egov_target_*`` and collector families of /metrics, formatted per target and kept between renders.

They are nearly every series (about ten per target), and a store snapshot hands out the same frozen
record for every target not probed since the last one. So each target's lines are formatted once per
record (its label set escaped once per configuration view) and a render re-formats only the targets
that changed, then joins the cached lines of each family: the cost of a render follows what changed,
not how many series there are. The lines are exactly prometheus_client's: the same
``floatToGoString``, the same label escaping and sorting, and the headers rendered by the library's
own encoder; ``tests/test_exposition_text.py`` compares both formats byte for byte.

Sample lines are the same in text 0.0.4 and OpenMetrics 1.0.0 for legacy metric and label names
(every name here is one; :meth:`TargetText.supports` says when not, and the caller falls back).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agent.engine.store import TargetState
from collectors.api import Family
from exporters.text_format import LABEL_NAME, METRIC_NAME, header, label_text, line

# The fixed families, in the order prometheus_client yields them (exporters/prometheus.py _target_metrics);
# INFO holds every configured target, the others only targets probed at least once.
INFO, UP, DOWN_SINCE, DURATION, WHEN, TOTAL, GOOD, FAILS = range(8)


@dataclass
class _Cached:
    state: TargetState | None
    own: tuple[str, ...]  # the collector families this target's lines add to, in its samples' order


class TargetText:
    """Per-target lines of the target families of one configuration view, kept across renders.

    ``fixed`` builds the eight fixed families (empty) for the view's label names; ``own`` builds a
    collector family's; both are exporters/prometheus.py's, so names, help and types are one thing.
    """

    def __init__(self, fixed: Callable[[list[str]], list[GaugeMetricFamily | CounterMetricFamily]],
                 own: Callable[[Family, list[str]], GaugeMetricFamily | CounterMetricFamily]) -> None:
        self._fixed_families = fixed
        self._own_family = own
        self._view: object = None
        self._headers: dict[tuple[str, object], bytes] = {}
        self.reformatted = 0  # targets formatted again by the last update (for the bench)
        self.first_time = 0  # of those, the ones formatted for the first time (a full render: after start or reload)

    # -- per view ----------------------------------------------------------------------------------
    def supports(self, view: object) -> bool:
        """Whether this renderer's text is prometheus_client's for ``view``: legacy names only, and each
        collector family name defined alike by every collector that has it (else the library decides)."""
        self._prepare(view)
        return self._supported

    def _prepare(self, view) -> None:  # view: exporters.prometheus.AgentView (not imported: it imports us)
        if view is self._view:
            return
        self._view = view
        names = list(view.target_label_names)
        self._names = names
        fixed = self._fixed_families(names)
        self._fixed = fixed
        self._sample_name = [m.name + ("_total" if m.type == "counter" else "") for m in fixed]
        self._fails_names = [*names, "reason"]
        self._headers.clear()
        self._ids = list(view.targets)
        labels = [view.targets[t] for t in self._ids]
        self._labels = [label_text(names, t.values) for t in labels]
        self._values = [t.values for t in labels]
        self._collector = [t.collector for t in labels]
        info_names = [*names, "name", "tags"]
        info = self._sample_name[INFO]
        self._info = b"".join(line(info, label_text(info_names, [*t.values, t.name, "," + ",".join(t.tags) + ","
                                                              if t.tags else ""]), 1.0).encode() for t in labels)
        # Per collector: its families by name (the last of a repeated name, as _target_metrics' dict has it).
        self._by_name = {kind: {f.name: f for f in fams} for kind, fams in view.families.items()}
        definitions: dict[str, Family] = {}
        supported = all(LABEL_NAME.match(n) for n in info_names)
        self._own_metric: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        self._own_sample: dict[str, str] = {}
        self._own_labels: dict[str, list[str]] = {}
        for by_name in self._by_name.values():
            for family in by_name.values():
                known = definitions.setdefault(family.name, family)
                if (known.type, known.help, tuple(known.labels)) != (family.type, family.help, tuple(family.labels)):
                    supported = False
                metric = self._own_family(family, names)
                supported = supported and all(LABEL_NAME.match(n) for n in family.labels)
                supported = supported and bool(METRIC_NAME.match(metric.name + "_total"))
                self._own_metric[family.name] = metric
                self._own_sample[family.name] = metric.name + ("_total" if metric.type == "counter" else "")
                self._own_labels[family.name] = [*names, *family.labels]
        self._supported = supported and all(METRIC_NAME.match(n) for n in self._sample_name)
        n = len(self._ids)
        self._cache: list[_Cached | None] = [None] * n
        self._parts: dict[int | str, list[bytes]] = {k: [b""] * n for k in range(UP, FAILS + 1)}
        self._order: list[str] = []

    # -- per render --------------------------------------------------------------------------------
    def update(self, view, states: Mapping[str, TargetState]) -> None:
        """Re-format the targets whose record is not the one formatted last time."""
        self._prepare(view)
        cache, parts = self._cache, self._parts
        reorder, count, first_time = False, 0, 0
        for i, target_id in enumerate(self._ids):
            state = states.get(target_id)
            old = cache[i]
            if old is not None and old.state is state:
                continue
            count += 1
            first_time += old is None
            lines = self._format(i, state)
            own = tuple(k for k in lines if isinstance(k, str))
            if old is not None:
                for key in old.own:
                    if key not in lines:
                        parts[key][i] = b""
                reorder = reorder or own != old.own
            else:
                reorder = reorder or bool(own)
            for fixed in range(UP, FAILS + 1):
                parts[fixed][i] = lines.get(fixed, b"")
            for key in own:
                column = parts.get(key)
                if column is None:
                    column = parts[key] = [b""] * len(self._ids)
                column[i] = lines[key]
            cache[i] = _Cached(state, own)
        self.reformatted = count
        self.first_time = first_time
        if reorder:  # families appear in the order their first sample does, walking the targets
            order: dict[str, None] = {}
            for entry in cache:
                if entry is not None:
                    order.update(dict.fromkeys(entry.own))
            self._order = list(order)

    def _format(self, i: int, state: TargetState | None) -> dict[int | str, bytes]:
        if state is None or state.result is None:
            return {}
        labels, names = self._labels[i], self._sample_name
        out: dict[int | str, bytes] = {
            UP: line(names[UP], labels, 1.0 if state.up else 0.0).encode(),
            DURATION: line(names[DURATION], labels, state.last_duration).encode(),
            WHEN: line(names[WHEN], labels, state.last_probe_time).encode(),
            TOTAL: line(names[TOTAL], labels, float(state.probes_total)).encode(),
            GOOD: line(names[GOOD], labels, float(state.up_total)).encode(),
        }
        if not state.up and state.down_since > 0.0:
            out[DOWN_SINCE] = line(names[DOWN_SINCE], labels, state.down_since).encode()
        values = self._values[i]
        if state.failures:
            out[FAILS] = "".join([line(names[FAILS], label_text(self._fails_names, [*values, reason]), float(n))
                                  for reason, n in sorted(state.failures.items())]).encode()
        if state.result.samples:
            by_name = self._by_name.get(self._collector[i], {})
            own: dict[str, list[str]] = {}
            for sample in state.result.samples:
                family = by_name.get(sample.family)
                if family is None:
                    continue
                own.setdefault(family.name, []).append(
                    line(self._own_sample[family.name],
                         label_text(self._own_labels[family.name], [*values, *sample.labels]), sample.value))
            for key, texts in own.items():
                out[key] = "".join(texts).encode()
        return out

    def render(self, content_type: str, encoder: Callable) -> list[bytes]:
        """The families' text after ``update``: each family's header in ``encoder``'s format, then its
        targets' lines, as the pieces the body is joined from. No family is joined on its own and kept:
        that was a second copy of nearly the whole exposition (~2.5 MiB for the demo) beside the body,
        and joining the pieces once costs the same copy."""
        chunks = [self._header(content_type, encoder, INFO, self._fixed[INFO]), self._info]
        for key in (UP, DOWN_SINCE, DURATION, WHEN, TOTAL, GOOD, FAILS):
            chunks.append(self._header(content_type, encoder, key, self._fixed[key]))
            chunks += self._parts[key]
        for name in self._order:
            chunks.append(self._header(content_type, encoder, name, self._own_metric[name]))
            chunks += self._parts[name]
        return chunks

    def _header(self, content_type: str, encoder: Callable, key: int | str, metric: Metric) -> bytes:
        text = self._headers.get((content_type, key))
        if text is None:
            text = self._headers[(content_type, key)] = header(metric, encoder)
        return text
