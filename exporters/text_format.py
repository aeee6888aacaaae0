"""Sample lines written as prometheus_client writes them, without going through its encoders per sample.

The library's encoders check and escape every label name of every sample on every rendering; the
agent's names are fixed per configuration, so a line here escapes only the values (with the
library's own ``_escape``) and formats the value with the library's ``floatToGoString``. Headers
(HELP, TYPE, UNIT) are still the library's, rendered from an empty copy of the family and kept.

Sample lines are the same in text 0.0.4 and OpenMetrics 1.0.0 for legacy metric and label names,
for the underscores and allow-utf-8 escapings (``fast_format``); anything else a family holds that
the two encoders treat apart (timestamps, exemplars, native histograms, ``_created``/``_gsum``/``_gcount``
samples that the text format moves to a gauge of their own) sends that family to the library whole.
``tests/test_exposition_text.py`` compares the result byte for byte.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable

from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import ALLOWUTF8
from prometheus_client.openmetrics.exposition import _escape as _library_escape
from prometheus_client.utils import floatToGoString

EOF = b"# EOF\n"
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_MOVED_BY_TEXT = ("_created", "_gsum", "_gcount")


def fast_format(content_type: str) -> bool:
    """Whether the negotiated format is one whose lines are written here: text, or OpenMetrics 1.0.0, with
    legacy names written as they are (not ``escaping=dots``, which doubles each ``_``)."""
    if content_type.startswith("application/openmetrics-text") and "version=1.0.0" not in content_type:
        return False
    return content_type.partition("escaping=")[2] in ("", "underscores", "allow-utf-8", "values")


def escape_value(value: str) -> str:
    """A label value as both of prometheus_client's encoders write it (backslash, newline, quote)."""
    return _library_escape(value, ALLOWUTF8, lambda _c, _i: False)


def label_text(names: Iterable[str], values: Iterable[str]) -> str:
    """``a="x",b="y"`` as prometheus_client writes a sample's labels: zipped into a dict, sorted by name."""
    return ",".join([f'{k}="{escape_value(v)}"' for k, v in sorted(dict(zip(names, values, strict=False)).items())])


def line(name: str, labels: str, value: float) -> str:
    return f"{name}{{{labels}}} {floatToGoString(value)}\n" if labels else f"{name} {floatToGoString(value)}\n"


class Only:
    """A registry of given families (what prometheus_client's encoders need: ``collect``)."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


def render_metrics(metrics: list[Metric], encoder: Callable) -> bytes:
    """``metrics`` in the encoder's format, without OpenMetrics' closing ``# EOF`` (the caller ends the body)."""
    text: bytes = encoder(Only(metrics))
    return text[:-len(EOF)] if text.endswith(EOF) else text


def header(metric: Metric, encoder: Callable) -> bytes:
    """The family's HELP/TYPE (/UNIT) lines, rendered by the library's own encoder from the empty family."""
    return render_metrics([metric], encoder)


class Families:
    """Whole families in one format, each header rendered by the library once and kept."""

    def __init__(self) -> None:
        self._headers: dict[tuple[str, str, str, str, str], bytes] = {}
        self._names: set[str] = set()  # sample names seen to be legacy ones
        self._labels: set[str] = set()  # label names, likewise

    def render(self, metrics: Iterable[Metric], content_type: str, encoder: Callable) -> bytes:
        """``render_metrics(metrics, encoder)``, formatting the samples here where they are plain ones."""
        out: list[bytes] = []
        for metric in metrics:
            text = self._samples(metric)
            if text is None:
                out.append(render_metrics([metric], encoder))
                continue
            key = (content_type, metric.name, metric.type, metric.documentation, metric.unit)
            head = self._headers.get(key)
            if head is None:
                empty = copy.copy(metric)
                empty.samples = []
                head = self._headers[key] = header(empty, encoder)
            out += (head, text.encode())
        return b"".join(out)

    def _samples(self, metric: Metric) -> str | None:
        lines, names, labels = [], self._names, self._labels
        moved = [metric.name + suffix for suffix in _MOVED_BY_TEXT]
        for s in metric.samples:
            if s.timestamp is not None or s.exemplar is not None or s.native_histogram is not None or s.name in moved:
                return None
            if s.name not in names:
                if not METRIC_NAME.match(s.name):
                    return None
                names.add(s.name)
            for k in s.labels:
                if k not in labels:
                    if not LABEL_NAME.match(k):
                        return None
                    labels.add(k)
            lines.append(line(s.name, ",".join([f'{k}="{escape_value(v)}"' for k, v in sorted(s.labels.items())]),
                              s.value))
        return "".join(lines)
