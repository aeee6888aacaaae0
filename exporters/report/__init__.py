"""The quarterly and annual KPI report for the People's Committee, computed from Prometheus history.

Data walk one way: the configuration and a period (``windows``) give the queries, a server speaking
the Prometheus HTTP query API answers them (``promql``), the figures are computed per KPI the way
its plan sentence means (``figures``), and renderers turn the one model into Markdown, JSON, docx,
xlsx and PDF (``render_*``). Every figure keeps the PromQL behind it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from agent.config.loading import LoadedConfig
from agent.config.schema import QueryServer
from exporters.report.model import Report
from exporters.report.promql import QueryClient, QueryError
from exporters.report.windows import Window, WindowError

FORMATS = ("docx", "xlsx", "pdf", "md", "json")

__all__ = ["FORMATS", "QueryError", "WindowError", "build", "default_name", "write"]


def build(loaded: LoadedConfig, server: QueryServer, window: Window, now: float | None = None,
          simulated: bool = False) -> Report:
    from exporters.report.figures import ReportBuilder

    client = QueryClient(server)
    try:
        report = ReportBuilder(loaded, client, now).build(window)
        report.simulated = report.simulated or simulated
        return report
    finally:
        client.close()


def default_name(report: Report, fmt: str, lang: str) -> str:
    """``bc-2026-Q3-bao-cao-kpi.vi.docx``: the province, the period and the format in the name."""
    return f"{report.province_code}-{report.window.replace('..', '_')}-bao-cao-kpi.{lang}.{fmt}"


def write(report: Report, fmt: str, lang: str, output: Path) -> None:
    """Render the report into ``output`` (written whole, then moved into place)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.partial")
    try:
        if fmt == "json":
            partial.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        elif fmt == "md":
            from exporters.report.markdown import render as render_md

            partial.write_text(render_md(report, lang), encoding="utf-8")
        elif fmt == "xlsx":
            from exporters.report.xlsx import render as render_xlsx

            render_xlsx(report, lang, partial)
        else:
            from exporters.report.charts import draw
            from exporters.report.docx import render as render_docx

            with tempfile.TemporaryDirectory(prefix="egov-report-") as tmp:
                charts = draw(report, lang, Path(tmp))
                if fmt == "docx":
                    render_docx(report, lang, partial, charts)
                else:
                    from exporters.report.pdf import from_docx

                    source = Path(tmp) / (output.stem + ".docx")
                    render_docx(report, lang, source, charts)
                    from_docx(source, partial)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
