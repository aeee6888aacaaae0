"""glibc tuned for the agent: two arenas shared by its threads, big blocks mmapped (given back when freed)."""

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


# A 4 MiB block freed, then a 1 MiB one: is it mmapped (given back when freed) or carved from the heap?
THRESHOLD = """
import ctypes, sys
if sys.argv[1] == "tuned":
    from agent.app.malloc import tune
    tune()
class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.mallinfo2.restype = Info
libc.free(ctypes.c_void_p(libc.malloc(4 << 20)))
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - before)
"""


def run(code: str, mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True, check=True, env=env)
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_threads_share_two_arenas() -> None:
    assert run(THREADS, "default") > 2  # glibc's default: an arena per concurrently allocating thread
    assert run(THREADS, "tuned") <= 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_big_blocks_stay_mmapped_after_a_bigger_one_was_freed() -> None:
    assert run(THRESHOLD, "default") == 0  # glibc raised its threshold to 4 MiB: the heap takes it
    assert run(THRESHOLD, "tuned") == 1
