"""The KPI engine's dispatch: one evaluator per measure kind, and no import cycle with the sources'."""

from __future__ import annotations

import subprocess
import sys
import typing

from conftest import REPO

from agent.config import Measure
from agent.kpi import EVALUATORS, FROM_IMPORTED_DATA, evaluator_of


def test_every_measure_kind_has_one_evaluator() -> None:
    union, _ = typing.get_args(Measure)  # Annotated[A | B | ..., Field(discriminator="kind")]
    kinds = {cls.model_fields["kind"].annotation.__args__[0] for cls in typing.get_args(union)}
    assert kinds == {"coverage", "availability", "count", "ratio", "value"}
    # coverage reads probes or a source's yes/no; ratio and value the manual file or a source's series
    assert set(EVALUATORS) == {"coverage", "availability", "count", "manual", "source", "source_coverage"}
    assert set(EVALUATORS) >= FROM_IMPORTED_DATA


def test_each_measure_finds_its_evaluator() -> None:
    from agent.config import AvailabilityMeasure, CountMeasure, CoverageMeasure, RatioMeasure, ValueMeasure

    select = {"collector": "tcp"}
    cases = [
        (CoverageMeasure(kind="coverage", select=select), "coverage"),
        (CoverageMeasure(kind="coverage", inventory="communes", source="mc", series="flag"), "source_coverage"),
        (AvailabilityMeasure(kind="availability", select=select), "availability"),
        (CountMeasure(kind="count", select=select), "count"),
        (RatioMeasure(kind="ratio"), "manual"),
        (ValueMeasure(kind="value", source="tax", series="revenue"), "source"),
    ]
    assert [evaluator_of(measure) for measure, _ in cases] == [key for _, key in cases]


def test_the_source_evaluators_do_not_import_the_engine() -> None:
    """agent/sources/evaluate.py once imported agent.kpi, which imported it back (lazily)."""
    code = ("import sys, agent.sources.evaluate; "
            "assert 'agent.kpi' not in sys.modules, 'agent.sources.evaluate imports agent.kpi'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
