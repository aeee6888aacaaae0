"""The report as Markdown, for a terminal or a wiki: the same blocks as the docx."""

from __future__ import annotations

from exporters.report import words as w
from exporters.report.content import Chart, Heading, Para, Table, blocks
from exporters.report.model import Report


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def render(report: Report, lang: str) -> str:
    t = w.words(lang)
    issuer = report.issuer
    parent = issuer["parent_vi" if lang == "vi" else "parent_en"] or issuer["parent_vi"]
    name = issuer["name_vi" if lang == "vi" else "name_en"] or issuer["name_vi"]
    plan = (report.plan_vi if lang == "vi" else report.plan_en) or t["plan_default"]
    lines = [f"{parent.upper()} — **{name.upper()}**  ", f"**{t['motto1']}** — *{t['motto2']}*", "",
             f"# {t['title']}: {t['subtitle'].format(plan=plan, period=w.period_name(report, lang))}", ""]
    for block in blocks(report, lang):
        if isinstance(block, Heading):
            lines += ["#" * (block.level + 1) + " " + block.text, ""]
        elif isinstance(block, Para):
            text = f"**{block.text}**" if block.bold else (f"*{block.text}*" if block.italic else block.text)
            lines += [text, ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_cell(h) for h in block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Chart):
            lines += [f"![{block.caption}]({block.path})", ""]
    return "\n".join(lines)
