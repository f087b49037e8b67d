"""`python -m bench --smoke` runs end to end, so the benchmark cannot rot unnoticed.

It needs PostgreSQL (the test server, in a database of its own that it drops) and starts its
own private redis-server; it writes into a temporary directory, never over the committed results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import BASE_PG_URL

REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke_writes_results(tmp_path: Path) -> None:
    env = dict(os.environ, GUILDKIT_BENCH_PG_URL=BASE_PG_URL, PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((tmp_path / "results.json").read_text())
    assert results["mode"] == "smoke"
    for section in ("reads", "redis_down", "startup", "memory", "propagation", "dashboard"):
        assert section in results, section
    lat = results["reads"]["latency_us"]
    for name in ("dict", "l1", "l2", "raw_get", "db", "raw_select", "naive_read"):
        assert lat[name]["n"] > 0, name
    assert results["reads"]["ratios"]["l2_vs_raw_get"]["p50"] > 0
    healthy = results["propagation"]["healthy"]
    assert healthy["ours"]["ms"]["n"] > 0
    assert healthy["naive"]["ms"]["n"] > 0
    assert results["startup"]["ours"]["1000"]["seconds"] > 0
    assert results["dashboard"]["bare"]["GET"]["10"]["requests_per_s"] > 0

    markdown = (tmp_path / "results.md").read_text()
    assert "## Targets" in markdown
    assert "L1 hit p99" in markdown
    for png in ("reads_latency.png", "propagation.png"):
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG"), png
