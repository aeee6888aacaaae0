"""Charts for the docx and PDF (matplotlib, drawn off-screen): each KPI's result per period against its
target line, and a coverage's breakdown per district as bars."""

from __future__ import annotations

from pathlib import Path

from exporters.report import words as w
from exporters.report.content import Chart
from exporters.report.model import Figure, Report


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.family": "DejaVu Sans", "font.size": 9})  # DejaVu has Vietnamese diacritics
    return plt


def _scale(figure: Figure) -> float:
    return 100.0 if figure.unit == "ratio" else 1.0


def draw(report: Report, lang: str, folder: Path) -> dict[str, list[Chart]]:
    """Charts per KPI (only those with a figure): a trend where two periods or more have one."""
    plt = _pyplot()
    t = w.words(lang)
    out: dict[str, list[Chart]] = {}
    for n, figure in enumerate(report.figures):
        if figure.value is None or figure.unit == "yes_no":
            continue
        charts: list[Chart] = []
        scale = _scale(figure)
        points = [(name, v) for name, v in figure.history if v is not None]
        if len(points) >= 2:
            fig, ax = plt.subplots(figsize=(6.0, 2.4), dpi=120)
            names = [name for name, _ in figure.history]
            values = [v * scale if v is not None else float("nan") for _, v in figure.history]
            ax.plot(names, values, marker="o", color="#1f5fa8")
            goal = figure.target.value if figure.target is not None else None
            if goal is not None:
                ax.axhline(goal * scale, color="#c0392b", linestyle="--", linewidth=1,
                           label=f"{t['target']} {w.value(goal, figure.unit, lang)}")
                ax.legend(loc="lower right", fontsize=8)
            ax.set_ylabel("%" if figure.unit == "ratio" else "")
            ax.grid(axis="y", alpha=0.3)
            fig.tight_layout()
            path = folder / f"trend-{n}.png"
            fig.savefig(path)
            plt.close(fig)
            charts.append(Chart(str(path), t["chart_trend"].format(title=w.title(figure, lang))))
        if figure.groups:
            fig, ax = plt.subplots(figsize=(6.0, 0.28 * len(figure.groups) + 0.8), dpi=120)
            names = [g.name for g in figure.groups]
            values = [(g.value or 0.0) * 100 for g in figure.groups]
            ax.barh(names, values, color=["#1f5fa8" if v >= 99.95 else "#e67e22" for v in values])
            ax.set_xlim(0, 100)
            ax.invert_yaxis()
            ax.set_xlabel("%")
            for y, v in enumerate(values):
                ax.text(min(v, 92), y, f" {w.number(v, lang, 1)}", va="center", fontsize=7)
            fig.tight_layout()
            path = folder / f"groups-{n}.png"
            fig.savefig(path)
            plt.close(fig)
            charts.append(Chart(str(path), t["chart_groups"].format(
                title=w.title(figure, lang), level=w.level_name(figure.group_level, lang))))
        if charts:
            out[figure.kpi] = charts
    return out
