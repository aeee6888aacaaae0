"""The manual data file: nothing known is lost to a bad file, bad rows are reported, dates read as typed.

Through the real Agent (its /metrics text) where the exposition matters; ManualData directly where
only the file's reading does. Files are written as people and Excel write them.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.exposition import parse_samples, sample
from support.province import write_config
from support.sources import MidRead, units

from agent.app.runtime import Agent
from agent.config.loading import load_config
from agent.config.yamlsource import ConfigError
from agent.sources.manual import ManualData

TZ = "Asia/Ho_Chi_Minh"
HEADER = "kpi,date,source,value\n"


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TZ)).date()


def manual_kpi(kpi_id: str) -> str:
    return f"""\
  - id: {kpi_id}
    class: manual
    title_vi: {kpi_id}
    title_en: {kpi_id}
    measure: {{kind: ratio}}
    targets: [{{phase: ops, deadline: 2030-12-31, comparator: ">=", value: 90%, origin: ops}}]
"""


def config(tmp_path: Path, manual: str = "{file: manual.csv}") -> Path:
    body = units(timezone="Asia/Ho_Chi_Minh").yaml()
    return write_config(tmp_path / "province.yml",
                        body + f"manual: {manual}\nkpis:\n" + manual_kpi("survey") + manual_kpi("training"))


def rewrite(path: Path, text: str) -> None:
    """A new version of the file, with a modification time of its own (the agent re-reads on change)."""
    path.write_text(text, encoding="utf-8")
    stamp = path.stat().st_mtime + 1
    os.utime(path, (stamp, stamp))


class Scraped:
    def __init__(self, tmp_path: Path, manual: str = "{file: manual.csv}") -> None:
        self.agent = Agent(load_config(config(tmp_path, manual)))

    def metrics(self) -> dict:
        self.agent.exposition.invalidate()  # a fresh rendering, not the one cached for a few seconds
        body, _ = self.agent.exposition.render(None)
        return parse_samples(body.decode())

    def value(self, kpi: str) -> float | None:
        samples = self.metrics()
        hits = [v for (n, ls), v in samples.items() if n == "egov_kpi_value" and ("kpi", kpi) in ls]
        return hits[0] if hits else None


GOOD = (HEADER + f"survey,{today() - dt.timedelta(days=30)},SIPAS 2026,70%\n"
        f"training,{today() - dt.timedelta(days=10)},Sở Nội vụ,85%\n")


@pytest.mark.parametrize(("name", "bad"), [
    ("header only", HEADER),
    ("header only, Excel's CRLF and byte-order mark", "\ufeffkpi,date,source,value\r\n"),
    ("half-written: cut inside the first row", HEADER + "survey,2026-0"),
    ("every row malformed: en-US dates", HEADER + "survey,12/31/2025,SIPAS,90%\ntraining,11/30/2025,Sở Nội vụ,95%\n"),
    ("empty file", ""),
])
def test_a_bad_file_keeps_every_last_good_value(tmp_path: Path, caplog, name: str, bad: str) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(GOOD, encoding="utf-8")
    scraped = Scraped(tmp_path)
    assert scraped.value("survey") == pytest.approx(0.70)
    assert scraped.value("training") == pytest.approx(0.85)
    rewrite(path, bad)
    samples = scraped.metrics()
    assert sample(samples, "egov_kpi_value", kpi="survey") == pytest.approx(0.70)
    assert sample(samples, "egov_kpi_value", kpi="training") == pytest.approx(0.85)
    if "malformed" in name or "half" in name:
        rejected = 2 if "malformed" in name else 1
        assert sample(samples, "egov_source_skipped_rows", source="manual") == rejected
        assert f"{path}:row 2: date:" in caplog.text
        assert "KPI survey: no good row for it in the file now; keeping its last good value" in caplog.text
    else:
        assert sample(samples, "egov_source_up", source="manual", kind="manual") == 0
        assert any(reason in ("empty", "unreadable") and n == 1 for (m, ls), n in samples.items()
                   if m == "egov_source_errors_total" and ("source", "manual") in ls
                   for reason in [dict(ls)["reason"]])


def test_a_reload_while_the_file_is_bad_keeps_the_last_good_values(tmp_path: Path) -> None:
    """A reload (SIGHUP) builds the configuration anew; the values read before it must survive it."""
    import asyncio

    path = tmp_path / "manual.csv"
    path.write_text(GOOD, encoding="utf-8")
    scraped = Scraped(tmp_path)
    assert scraped.value("survey") == pytest.approx(0.70)
    rewrite(path, HEADER)
    asyncio.run(scraped.agent.reload())
    assert scraped.value("survey") == pytest.approx(0.70)
    assert scraped.value("training") == pytest.approx(0.85)


def test_a_half_written_file_keeps_the_kpis_it_lost_and_takes_the_rows_it_has(tmp_path: Path, caplog) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(GOOD, encoding="utf-8")
    data = ManualData(path, TZ)
    data.refresh()
    newer = today() - dt.timedelta(days=1)
    # The copy stopped inside the training row: survey's new row is complete, training's is cut.
    rewrite(path, HEADER + f"survey,{newer},SIPAS 2026 đợt 2,75%\ntraining,{newer},Sở Nội")
    data.refresh()
    assert data.values["survey"].value == pytest.approx(0.75) and data.values["survey"].date == newer
    assert data.values["training"].value == pytest.approx(0.85)  # kept from the last good read
    assert data.kept.keys() == {"training"}
    assert data.rejected_rows == 1 and f"{path}:row 3: value: missing" in data.problems[0]
    assert data.loaded_ok


@pytest.mark.parametrize(("typed", "meant"), [
    ("31/12/2025", dt.date(2025, 12, 31)),     # Excel on vi-VN: dd/MM/yyyy
    ("1/2/2026", dt.date(2026, 2, 1)),         # day first, always: the 1st of February
    ("01/02/2026", dt.date(2026, 2, 1)),
    ("31/12/2025 0:00", dt.date(2025, 12, 31)),  # a date-and-time cell
    ("31/12/2025 00:00:00", dt.date(2025, 12, 31)),
    ("31-12-2025", dt.date(2025, 12, 31)),
    ("31.12.2025", dt.date(2025, 12, 31)),
    ("2025-12-31", dt.date(2025, 12, 31)),
])
def test_vietnamese_dates_as_excel_writes_them_are_accepted(tmp_path: Path, typed: str, meant: dt.date) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(f"\ufeff{HEADER}survey,{typed},SIPAS,70%\r\n", encoding="utf-8")
    data = ManualData(path, TZ)
    data.refresh()
    assert data.problems == [] and data.values["survey"].date == meant


@pytest.mark.parametrize(("typed", "message"), [
    ("12/31/2025", "'12/31/2025' is not a date of the calendar"),  # US order: month 31
    ("31/12/25", "'31/12/25' has a two-digit year"),
    ("46022", "'46022' is a number, not a date"),
    ("2025-12", "'2025-12' is a month; give the day"),
])
def test_dates_that_cannot_be_read_one_way_are_refused(tmp_path: Path, typed: str, message: str) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(f"{HEADER}survey,{typed},SIPAS,70%\n", encoding="utf-8")
    data = ManualData(path, TZ)
    data.refresh()
    assert "survey" not in data.values
    assert data.problems == [f"{path}:row 2: date: {message}" + data.problems[0].split(message, 1)[1]]


def test_a_date_after_today_is_refused_and_does_not_hide_later_corrections(tmp_path: Path, caplog) -> None:
    path = tmp_path / "manual.csv"
    tomorrow = today() + dt.timedelta(days=1)
    mistyped = f"{tomorrow.day:02d}/{tomorrow.month:02d}/{tomorrow.year + 1}"  # 2027 for 2026
    path.write_text(HEADER + f"survey,{mistyped},SIPAS,99%\nsurvey,{today() - dt.timedelta(days=2)},SIPAS,71%\n",
                    encoding="utf-8")
    scraped = Scraped(tmp_path)
    samples = scraped.metrics()
    assert sample(samples, "egov_kpi_value", kpi="survey") == pytest.approx(0.71)
    assert sample(samples, "egov_source_skipped_rows", source="manual") == 1
    assert (f"{path}:row 2: date: '{mistyped}' is after today ({today().isoformat()}); a figure cannot refer to "
            f"a day that has not come") in caplog.text
    # The correction that follows (dated today) is the figure.
    rewrite(path, path.read_text(encoding="utf-8") + f"survey,{today()},SIPAS (sửa),73%\n")
    assert scraped.value("survey") == pytest.approx(0.73)


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path, caplog) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(GOOD, encoding="utf-8")
    scraped = Scraped(tmp_path, "{file: manual.csv, max_file_size: 1kB}")
    assert scraped.value("survey") == pytest.approx(0.70)
    filler = "".join(f"training,{today() - dt.timedelta(days=5)},Sở Nội vụ,90%\n" for _ in range(40))
    rewrite(path, HEADER + f"survey,{today()},SIPAS,10%\n" + filler)
    assert path.stat().st_size > 1000
    samples = scraped.metrics()
    assert sample(samples, "egov_kpi_value", kpi="survey") == pytest.approx(0.70)
    assert sample(samples, "egov_source_errors_total", source="manual", reason="too_large") == 1
    assert "manual.csv is 1" in caplog.text and "over the size cap (1000 bytes); not read" in caplog.text


def test_the_size_cap_is_validated(tmp_path: Path) -> None:
    (tmp_path / "manual.csv").write_text(GOOD, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"manual.max_file_size.*could not parse value and unit"):
        load_config(config(tmp_path, "{file: manual.csv, max_file_size: lots}"))


def big_file(rows: int, first: str, last: str) -> str:
    """A long history: ``a`` first, filler rows, ``b`` last; a read of half one version, half another mixes them."""
    day = today() - dt.timedelta(days=3)
    filler = "".join(f"filler,{day},Sở Nội vụ,{i % 100}%\n" for i in range(rows))
    return HEADER + f"survey,{day},SIPAS,{first}\n" + filler + f"training,{day},Sở Nội vụ,{last}\n"


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_a_file_replaced_while_it_is_read_is_not_half_taken(tmp_path: Path, how: str) -> None:
    path = tmp_path / "manual.csv"
    path.write_text(big_file(20_000, "10%", "10%"), encoding="utf-8")
    data = ManualData(path, TZ)
    data.refresh()
    assert (data.values["survey"].value, data.values["training"].value) == (pytest.approx(0.1), pytest.approx(0.1))
    rewrite(path, big_file(20_000, "20%", "20%"))
    with MidRead(path, big_file(20_000, "30%", "30%"), how) as mid:
        data.refresh()
    assert mid.done, f"the file was never caught in the middle of a read ({mid.report})"
    # Neither half of the 20% version nor a mix of it with the 30% one: the last good values stay.
    assert (data.values["survey"].value, data.values["training"].value) == (pytest.approx(0.1), pytest.approx(0.1))
    assert data.last_error == "changed" and data.errors["changed"] == 1
    data.refresh()  # read again, whole
    assert (data.values["survey"].value, data.values["training"].value) == (pytest.approx(0.3), pytest.approx(0.3))
    assert data.loaded_ok
