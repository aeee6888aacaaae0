"""The KPI engine's dispatch: one evaluator per measure kind, and no import cycle with the sources'."""

from __future__ import annotations

import subprocess
import sys
import typing

from support.paths import REPO

from agent.config.schema import AvailabilityMeasure, CountMeasure, CoverageMeasure, Measure, RatioMeasure, ValueMeasure
from agent.engine.kpi import EVALUATORS, FROM_IMPORTED_DATA, evaluator_of


def test_every_measure_kind_has_one_evaluator() -> None:
    union, _ = typing.get_args(Measure)  # Annotated[A | B | ..., Field(discriminator="kind")]
    kinds = {cls.model_fields["kind"].annotation.__args__[0] for cls in typing.get_args(union)}
    assert kinds == {"coverage", "availability", "count", "ratio", "value"}
    # coverage reads probes or a source's yes/no; ratio and value the manual file or a source's series
    assert set(EVALUATORS) == {"coverage", "availability", "count", "manual", "source", "source_coverage"}
    assert set(EVALUATORS) >= FROM_IMPORTED_DATA


def test_each_measure_finds_its_evaluator() -> None:
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
    """agent/engine/evaluate.py (once agent/sources/evaluate.py) imported the engine, which imported it back."""
    code = ("import sys, agent.engine.evaluate; "
            "assert 'agent.engine.kpi' not in sys.modules, 'agent.engine.evaluate imports agent.engine.kpi'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)
