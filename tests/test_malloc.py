"""The agent runs on few glibc arenas: threads that allocate at once share them instead of one each."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Eight threads allocating at the same time, then glibc's own account of its heaps (malloc_info).
THREADS = """
import ctypes, os, re, sys, tempfile, threading
if sys.argv[1] == "tuned":
    from agent.app.malloc import tune
    tune()
start = threading.Barrier(8)
def work():
    start.wait()
    keep = [bytearray(200) for _ in range(20000)]
    start.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
libc = ctypes.CDLL("libc.so.6")
libc.fdopen.restype = ctypes.c_void_p
with tempfile.TemporaryFile("w+") as f:
    stream = libc.fdopen(os.dup(f.fileno()), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))  # it writes its XML to the stream
    libc.fclose(ctypes.c_void_p(stream))
    f.seek(0)
    print(len(re.findall(r"<heap nr=", f.read())))
"""


def heaps(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", THREADS, mode], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_threads_share_two_arenas() -> None:
    assert heaps("default") > 2  # glibc's default: an arena per concurrently allocating thread
    assert heaps("tuned") <= 2
