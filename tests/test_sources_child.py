"""Blocking source work in a short-lived child process: crashes, hangs and garbage are reported, never hidden."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from openpyxl import Workbook
from support.sources import fetch, kpi, province

from agent.config.loading import load_config
from agent.sources import child
from agent.sources.child import ChildFailed

SOURCE = """\
  - id: reports
    kind: file_drop
    granularity: monthly
    approximate_periods: true
    folder: reports
    columns: {unit: ma_don_vi, date: ky_bao_cao}
    interval: 1h
    timeout: 3s
    series:
      work_files: {numerator: xu_ly_tren_mang, denominator: tong_so}
"""
KPIS = kpi("work_files_all", "{kind: ratio, source: reports, series: work_files}")


def workbook(path: Path, rows: list[list]) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["ma_don_vi", "ky_bao_cao", "xu_ly_tren_mang", "tong_so"])
    for row in rows:
        sheet.append(row)
    book.save(path)


def children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "agent.sources.child" in " ".join(p.cmdline())]


def test_a_call_answers_plain_data_and_names_a_failure() -> None:
    assert child.call("os.path", "join", ("a", "b"), 30) == "a/b"
    with pytest.raises(ChildFailed) as failed:
        child.call("json", "loads", ("{",), 30)
    assert (failed.value.what, failed.value.type_name) == ("raised", "JSONDecodeError")
    assert "Expecting property name" in failed.value.message


def test_a_child_that_crashes_is_reported_with_its_status() -> None:
    with pytest.raises(ChildFailed, match="the fetch process exited with status 3 after") as failed:
        child.call("os", "_exit", (3,), 30)
    assert failed.value.what == "crashed"


def test_a_child_that_hangs_is_killed_at_its_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(ChildFailed, match=r"no answer within 1.0s and was killed") as failed:
        child.call("time", "sleep", (60,), 1)
    assert failed.value.what == "timeout"
    assert time.monotonic() - started < 10
    assert children() == []


def test_a_started_call_runs_beside_the_caller_and_a_cancelled_one_is_killed() -> None:
    """``start`` returns at once with the child at work (the caller validates meanwhile); ``cancel`` kills a
    child whose answer is no longer wanted, and waits for it, so none is left behind."""
    started = time.monotonic()
    running = child.start("time", "sleep", (60,), 30)
    answering = child.start("os.path", "join", ("a", "b"), 30)
    assert time.monotonic() - started < 5  # neither call waited for its child
    assert answering.result() == "a/b"
    assert len(children()) == 1  # the sleeper, still at work
    running.cancel()
    assert children() == []
    assert time.monotonic() - started < 20
    with pytest.raises(ChildFailed) as failed:
        running.result()
    assert failed.value.what == "crashed" and "killed by signal 9" in failed.value.message


def test_a_child_that_exits_without_an_answer_is_refused() -> None:
    with pytest.raises(ChildFailed, match="answered 0 bytes that are not an answer") as failed:
        child.call("os", "_exit", (0,), 30)
    assert failed.value.what == "bad_answer"


def test_the_agent_never_imports_openpyxl_to_read_a_workbook(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    workbook(folder / "xa.xlsx", [["c1", dt.date.today().replace(day=1), 30, 60]])
    path = province(tmp_path, SOURCE, KPIS)
    code = ("import sys; sys.path.insert(0, 'tests'); from support.sources import fetch; "
            "from agent.config.loading import load_config; "
            f"runner = fetch(load_config({str(path)!r})); _, snap = runner.snapshot('reports'); "
            "print(sorted((r.unit, r.numerator) for r in snap.data['work_files']['month'][1]), "
            "'openpyxl' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.split("\n")[0] == "[('c1', 30.0)] False"


@pytest.mark.parametrize("how", ["killed", "hung"])
def test_a_workbook_whose_reader_dies_keeps_its_last_rows(tmp_path: Path, how: str) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    month = dt.date.today().replace(day=1)
    workbook(folder / "xa.xlsx", [["c1", month, 30, 60]])
    timeout = 30 if how == "killed" else 6  # a child under load takes a second or two to start
    runner = fetch(load_config(province(tmp_path, SOURCE.replace("timeout: 3s", f"timeout: {timeout}s"), KPIS)))
    time.sleep(0.01)
    workbook(folder / "xa.xlsx", [["c1", month, 40, 60]])
    stop = threading.Event()

    def sabotage() -> None:  # the real child, really killed (or stopped) while it reads
        while not stop.is_set():
            for process in children():
                process.send_signal(signal.SIGKILL if how == "killed" else signal.SIGSTOP)
                return
            time.sleep(0.005)

    thread = threading.Thread(target=sabotage)
    thread.start()
    try:
        started = time.monotonic()
        import asyncio
        asyncio.run(runner.fetch("reports"))
        asyncio.run(runner.close())
    finally:
        stop.set()
        thread.join()
    _, snapshot = runner.snapshot("reports")
    assert [(r.unit, r.numerator) for r in snapshot.data["work_files"]["month"][1]] == [("c1", 30)]
    expected = ("the fetch process was killed by signal 9" if how == "killed"
                else "the fetch process gave no answer within 5.4s and was killed")
    assert any(p.startswith(f"xa.xlsx: unreadable, skipped: {expected}") for p in snapshot.problems), snapshot.problems
    assert snapshot.fetched_at > time.time() - 30  # the fetch itself succeeded: the file was skipped
    assert children() == []
    if how == "hung":
        assert 5.4 <= time.monotonic() - started < 30
