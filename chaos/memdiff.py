"""Rank the allocation sites that grew between tracemalloc snapshots (chaos/memprobe.py).

    python -m chaos.memdiff DIR [--base N] [--top K] [--group traceback|lineno|filename]

First the statistics every probed process recorded (`PID.stats`: RSS, glibc heap, pymalloc,
objects tracked by the collector); then, for each traced process (snapshots `PID-NNN.snap`),
the K sites whose live size grew most from snapshot N (default: the second, past start-up) to
the last one, each with its size at every snapshot in between, so a plateau (bounded warm-up)
reads apart from a steady climb (a leak).
"""

from __future__ import annotations

import argparse
import json
import re
import tracemalloc
from collections import defaultdict
from pathlib import Path


def _label(tb: tracemalloc.Traceback, depth: int = 4) -> str:
    frames = list(reversed(tb))[:depth]  # most recent first (a Traceback is oldest first)
    return " <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in frames)


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def _sizes(snapshot: tracemalloc.Snapshot, group: str) -> dict[str, tuple[int, int]]:
    """(size, count) per site label; tracebacks deeper than the label are summed."""
    out: dict[str, tuple[int, int]] = {}
    for stat in snapshot.statistics(group):
        key = _label(stat.traceback)
        size, count = out.get(key, (0, 0))
        out[key] = (size + stat.size, count + stat.count)
    return out


def stats_table(directory: Path) -> list[str]:
    """The statistics every probed process recorded (OUTDIR/PID.stats), one row per sample."""
    lines: list[str] = []
    mb = 2**20
    for path in sorted(directory.glob("*.stats")):
        pid = path.stem
        cmd_file = directory / f"{pid}.cmd"
        cmd = cmd_file.read_text().strip() if cmd_file.exists() else ""
        rows = [json.loads(line) for line in path.read_text().splitlines() if line]
        lines.append(f"## pid {pid}: {cmd}")
        lines.append(
            "min    RSS  heap in_use free_in_heap mmapped pymalloc(arenas blocks free) "
            "gc_objects full_gcs traced trimmed"
        )
        for r in rows:
            traced = f"{r['traced'] / mb:.1f}" if "traced" in r else "-"
            lines.append(
                f"{r['age_s'] / 60:4.1f} {r['rss_kb'] / 1024:6.1f} {r.get('heap', 0) / mb:5.1f} "
                f"{r.get('in_use', 0) / mb:6.1f} {r.get('free_in_heap', 0) / mb:12.1f} "
                f"{r.get('mmapped', 0) / mb:7.1f} {r.get('arena_bytes', 0) / mb:14.1f} "
                f"{r.get('block_bytes', 0) / mb:6.1f} {r.get('free_block_bytes', 0) / mb:4.1f} "
                f"{r['gc_objects']:10d} {r['full_collections']:8d} {traced} "
                f"{r['trimmed_rss_kb'] / 1024 if 'trimmed_rss_kb' in r else '-'}"
            )
        lines.append("")
    return lines


def report(directory: Path, *, base: int, top: int, group: str) -> str:
    lines = stats_table(directory)
    by_pid: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(directory.glob("*.snap")):
        match = re.match(r"(\d+)-(\d+)\.snap$", path.name)
        if match:
            by_pid[match.group(1)].append(path)
    for pid, paths in sorted(by_pid.items()):
        if len(paths) <= base:
            continue
        snaps = [tracemalloc.Snapshot.load(str(p)) for p in paths]
        lines.append(f"## pid {pid}: {len(snaps)} snapshots")
        stats = [_sizes(snap, group) for snap in snaps]
        first, last = stats[base], stats[-1]
        growth = sorted(
            ((last[k][0] - first.get(k, (0, 0))[0], k) for k in last),
            reverse=True,
        )
        lines.append(f"top {top} growth from snapshot {base + 1} to {len(snaps)} (KB):")
        for diff, key in growth[:top]:
            series = " ".join(f"{s.get(key, (0, 0))[0] / 1024:.0f}" for s in stats[base:])
            lines.append(f"  {diff / 1024:+8.1f}  count {last[key][1]:6d}  {key}")
            lines.append(f"           sizes: {series}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.memdiff")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--base", type=int, default=1, help="0-based snapshot to compare from")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--group", default="traceback", choices=["traceback", "lineno", "filename"])
    args = parser.parse_args()
    print(report(args.directory, base=args.base, top=args.top, group=args.group))


if __name__ == "__main__":
    main()
