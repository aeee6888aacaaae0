"""One blocking call run in a short-lived child process, so the long-running agent never imports its libraries.

openpyxl (a dropped workbook) costs the agent ~11 MiB it would keep for good after the first fetch;
a child that imports it, does the one call and exits gives it all back. The call and its answer
travel as pickles over the child's stdin and stdout (never argv, so a secret in the arguments is
not shown by ``ps``); the child's stderr is dropped, as its own log could quote a library's text.

The answer is plain data, or the exception's type name and first line as text, so the agent never
unpickles a library's exception class (and never imports the library to do it). A child that
crashes, hangs past its deadline (it is killed) or answers garbage is a :class:`ChildFailed`
naming what happened.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.sources.base import FetchResult

# Seconds a fetch's child may run past the fetch's deadline to answer what its peer stopped there.
GRACE = 2.0

# What a source's fetch answers across the process boundary: plain data and the agent's own Record,
# never a library's object. ("ok", data, no_value, failed) with failed as series -> (reason, message),
# or ("failed", reason, message) when the whole fetch failed.
FetchAnswer = tuple[Any, ...]


class ChildFailed(Exception):
    """The call did not give an answer: ``what`` is a fixed word (raised, crashed, timeout, bad_answer)."""

    def __init__(self, what: str, message: str, type_name: str = "") -> None:
        super().__init__(message)
        self.what = what
        self.message = message
        self.type_name = type_name


class Started:
    """A call under way in its child: :meth:`result` waits for the answer, :meth:`cancel` kills the child.

    The request is written and the answer read by a thread that only waits on pipes, so the caller goes on
    with its own work meanwhile (a start validates the configuration while a child parses its SQL queries)."""

    def __init__(self, module: str, function: str, args: tuple[Any, ...], timeout: float) -> None:
        request = pickle.dumps((module, function, args), protocol=pickle.HIGHEST_PROTOCOL)
        self._started = time.monotonic()
        self._timeout = max(0.1, timeout)
        self._proc = subprocess.Popen([sys.executable, "-m", "agent.sources.child"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._output: bytes | None = None
        self._timed_out = False
        self._thread = threading.Thread(target=self._talk, args=(request,), name="child-call", daemon=True)
        self._thread.start()

    def _talk(self, request: bytes) -> None:
        try:
            self._output, _ = self._proc.communicate(request, timeout=self._timeout)
        except subprocess.TimeoutExpired:
            self._timed_out = True
            self._proc.kill()
            self._proc.communicate()
        except (OSError, ValueError):  # cancelled: the child was killed and its pipes closed under us
            self._proc.kill()
            self._proc.wait()

    def result(self) -> Any:
        """The call's answer (blocking), or :class:`ChildFailed`."""
        self._thread.join()
        if self._timed_out:
            raise ChildFailed("timeout", f"the fetch process gave no answer within {self._timeout:.1f}s and was "
                                         "killed")
        done = self._proc.returncode
        if done != 0:
            how = f"was killed by signal {-done}" if done < 0 else f"exited with status {done}"
            raise ChildFailed("crashed", f"the fetch process {how} after {time.monotonic() - self._started:.1f}s")
        output = self._output or b""
        try:
            status, value = pickle.loads(output)
        except Exception:  # truncated, empty or not ours
            raise ChildFailed("bad_answer", f"the fetch process answered {len(output)} bytes that are not "
                                            "an answer") from None
        if status == "ok":
            return value
        if status == "error" and isinstance(value, tuple) and len(value) == 2:
            raise ChildFailed("raised", str(value[1]), str(value[0]))
        raise ChildFailed("bad_answer", "the fetch process answered something that is not an answer")

    def cancel(self) -> None:
        """Kill the child if it still runs (its answer is not wanted) and wait for it."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._thread.join()


def start(module: str, function: str, args: tuple[Any, ...], timeout: float) -> Started:
    """``module.function(*args)`` started in a fresh interpreter, killed after ``timeout`` seconds."""
    return Started(module, function, args, timeout)


def call(module: str, function: str, args: tuple[Any, ...], timeout: float) -> Any:
    """``module.function(*args)`` in a fresh interpreter, killed after ``timeout`` seconds (blocking)."""
    return start(module, function, args, timeout).result()


def fetch(module: str, function: str, args: tuple[Any, ...], deadline: float) -> FetchResult:
    """A source's fetch, ``module.function(*args)`` answering a :data:`FetchAnswer`, in a child (blocking).

    The child gets until ``deadline`` (``time.monotonic()``) plus :data:`GRACE`; its failures become the
    sources' reasons: ``timeout`` (killed), ``internal_error`` (it raised: a bug, its type only) or
    ``fetch_process`` (it crashed or answered garbage)."""
    from agent.sources.base import FetchResult, SourceError

    try:
        answer = call(module, function, args, deadline + GRACE - time.monotonic())
    except ChildFailed as exc:
        if exc.what == "timeout":
            raise SourceError("timeout", exc.message) from None
        if exc.what == "raised":
            raise SourceError("internal_error", exc.type_name or "the fetch process raised") from None
        raise SourceError("fetch_process", exc.message) from None
    if answer[0] == "failed":
        raise SourceError(answer[1], answer[2])
    _, data, no_value, failed = answer
    return FetchResult(data, failed={name: SourceError(*why) for name, why in failed.items()}, no_value=no_value)


def answer_of(result: FetchResult) -> FetchAnswer:
    """In the child: a fetch's result as the plain :data:`FetchAnswer` :func:`fetch` reads."""
    failed = {name: (error.reason, error.message) for name, error in result.failed.items()}
    return "ok", result.data, result.no_value, failed


def describe(exc: BaseException) -> str:
    """First line of an exception's text, or its type name: what the agent logs about a failed call."""
    text = str(exc).strip()
    return (getattr(exc, "strerror", None) or text.splitlines()[0][:200]) if text else type(exc).__name__


def main() -> int:
    """The child: one request from stdin, one answer to stdout."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing a library prints (Python or C) can corrupt the answer
    sys.stdout = sys.stderr
    module, function, args = pickle.loads(sys.stdin.buffer.read())
    import importlib
    try:
        answer: tuple[str, Any] = ("ok", getattr(importlib.import_module(module), function)(*args))
    except Exception as exc:
        answer = ("error", (type(exc).__name__, describe(exc)))  # plain text: the agent imports no class of it
    out.write(pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL))
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
