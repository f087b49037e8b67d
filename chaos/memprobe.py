"""Harness only: run a module while recording where its memory goes.

    python chaos/memprobe.py OUTDIR INTERVAL FRAMES module [args...]

Every INTERVAL seconds it appends one JSON line to OUTDIR/PID.stats: RSS, glibc's heap
(mallinfo2: bytes in use, free inside the heap, mmapped), pymalloc's arenas, the number of
objects the collector tracks, and full collections so far. With FRAMES > 0 it also runs
tracemalloc with that many frames and, after a `gc.collect()`, dumps a snapshot
OUTDIR/PID-NNN.snap each time (heavy: RSS triples and every dump pauses the process).

`python -m chaos --memprobe SECONDS` launches every bot and dashboard this way (statistics
only; with `--tracemalloc`, bot0 and dashboard0 with snapshots too); `python -m chaos.memdiff
OUTDIR` prints the statistics and ranks the allocation sites that grew. Nothing here is
imported by guildkit: production processes pay nothing for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import re
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL(None)
        libc.mallinfo2.restype = _MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {
        "heap": info.arena,  # bytes the main and thread arenas hold from the system
        "in_use": info.uordblks,
        "free_in_heap": info.fordblks,
        "mmapped": info.hblkhd,
        "free_chunks": info.ordblks,
        "fastbin_free": info.fsmblks,
        "top_releasable": info.keepcost,
    }


def _pymalloc() -> dict[str, int]:
    """Arenas pymalloc holds (sys._debugmallocstats writes to C stderr: catch it in a file)."""
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(tmp.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("ascii", "replace")
    out = {}
    for key, pattern in (
        ("arenas", r"# arenas allocated current\s*=\s*([\d,]+)"),
        ("arena_bytes", r"(\d[\d,]*) arenas \* \d+ bytes/arena\s*=\s*([\d,]+)"),
        ("block_bytes", r"# bytes in allocated blocks\s*=\s*([\d,]+)"),
        ("free_block_bytes", r"# bytes in available blocks\s*=\s*([\d,]+)"),
    ):
        match = re.search(pattern, text)
        if match:
            out[key] = int(match.groups()[-1].replace(",", ""))
    return out


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _dumper(out: str, interval: float, frames: int) -> None:
    n = 0
    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, __file__),
    ]
    started = time.monotonic()
    # CHAOS_MEMPROBE_TRIM_AT=S: from S seconds on, after each sample, call glibc's
    # malloc_trim(0), which hands free pages inside the heap back to the system: how much of
    # RSS was free heap rather than data, and whether trimming keeps it flat.
    trim_at = float(os.environ.get("CHAOS_MEMPROBE_TRIM_AT", "inf"))
    while True:
        time.sleep(interval)
        n += 1
        row: dict[str, object] = {
            "n": n,
            "t": round(time.monotonic(), 3),
            "age_s": round(time.monotonic() - started, 1),
            "rss_kb": _rss_kb(),
            "gc_objects": len(gc.get_objects()),
            "full_collections": gc.get_stats()[2]["collections"],
            "threads": threading.active_count(),
            **_mallinfo(),
            **_pymalloc(),
        }
        if row["age_s"] >= trim_at:  # type: ignore[operator]
            ctypes.CDLL(None).malloc_trim(0)
            row["trimmed_rss_kb"] = _rss_kb()
        if frames > 0:
            # Full collections are rare in a big heap, so cyclic garbage can look like growth
            # for minutes: collect it, so the snapshot holds only what is really kept alive.
            row["traced_before_gc"] = tracemalloc.get_traced_memory()[0]
            row["unreachable"] = gc.collect()
            snapshot = tracemalloc.take_snapshot().filter_traces(ignore)
            row["traced"] = tracemalloc.get_traced_memory()[0]
            path = os.path.join(out, f"{os.getpid()}-{n:03d}.snap")
            snapshot.dump(path + ".tmp")
            os.replace(path + ".tmp", path)
        with open(os.path.join(out, f"{os.getpid()}.stats"), "a") as fh:
            fh.write(json.dumps(row) + "\n")


def main() -> None:
    out, interval, frames, module, *args = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"{os.getpid()}.cmd"), "w") as fh:
        fh.write(" ".join([module, *args]) + f" frames={frames}\n")
    if int(frames) > 0:
        tracemalloc.start(int(frames))
    thread = threading.Thread(target=_dumper, args=(out, float(interval), int(frames)), daemon=True)
    thread.start()
    # This script's folder (chaos/) must not shadow anything the module imports.
    sys.path[0] = os.getcwd()
    sys.argv = [module, *args]
    with contextlib.suppress(KeyboardInterrupt):
        runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
