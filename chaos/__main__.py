"""`python -m chaos [--minutes N | --short]`: run the campaign, write the report, exit 1 on
any violation."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from chaos.campaign import Options, resummarise, run_campaign, total_violations
from chaos.report import render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--short", action="store_true", help="a ~60-90 s version for make test")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="work/log directory")
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write the Markdown report here (full runs: chaos/report.md)",
    )
    parser.add_argument(
        "--faults",
        default="",
        help="comma-separated fault kinds (prefixes) to inject; default all; 'none': load only",
    )
    parser.add_argument(
        "--memprobe",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="run bots and dashboards under chaos/memprobe.py, recording RSS, glibc heap, "
        "pymalloc and object counts every SECONDS into OUT/memprobe "
        "(python -m chaos.memdiff OUT/memprobe prints them)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="with --memprobe: bot0 and dashboard0 also run tracemalloc and dump a snapshot "
        "each time (memdiff ranks the allocation sites that grew); not judged for memory",
    )
    parser.add_argument("--from-records", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    seed = args.seed if args.seed is not None else int(time.time())
    out = args.out or Path(tempfile.mkdtemp(prefix="guildkit-chaos-"))
    report = args.report
    if report is None and not args.short:
        report = Path(__file__).parent / "report.md"
    options = Options(
        minutes=args.minutes,
        short=args.short,
        seed=seed,
        out=out,
        report=report,
        faults=tuple(k for k in args.faults.split(",") if k),
        memprobe=args.memprobe,
        tracemalloc=args.tracemalloc,
    )
    started = time.monotonic()
    if args.from_records is not None:
        summary = resummarise(options, args.from_records)
    else:
        summary = asyncio.run(run_campaign(options))
    summary["wall_clock_s"] = round(time.monotonic() - started, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    text = render(summary)
    if report is not None:
        report.write_text(text)
    print(text)
    print(f"logs and summary.json in {out}")
    violations = total_violations(summary)
    print(f"violations: {violations}")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
