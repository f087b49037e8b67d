"""Run the dashboard benchmark: the bare FastAPI ceiling always, guildkit's dashboard when the
package has one (`guildkit.dashboard`, driven through `bench.dash_target`)."""

from __future__ import annotations

from typing import Any

from bench.dashboard import DashboardConfig, Target, dashboard_available, measure, start_uvicorn
from bench.env import BenchDatabase
from bench.stats import ratio


async def run_dashboard(db: BenchDatabase, ids: list[int], cfg: DashboardConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    child, url = start_uvicorn("bench.bare_app:app")
    try:
        out["bare"] = await measure(Target(url, ids[:50], {}, {}), cfg)
    finally:
        child.kill()
    if not dashboard_available():
        out["guildkit"] = None
        out["note"] = "guildkit.dashboard is not on this commit; only the bare ceiling was run"
        return out
    from bench.dash_target import guildkit_dashboard

    async with guildkit_dashboard(db, 10) as target:
        out["guildkit"] = await measure(target, cfg)
    # What if the settings reads took proposal B (see results.md)? GET only.
    async with guildkit_dashboard(db, 10, "bench.dash_app:create_with_proposal_b") as target:
        out["guildkit_proposal_b"] = await measure(target, cfg, ("GET",))
    out["ratios"] = {
        method: {
            conc: ratio(
                out["guildkit"][method][conc]["requests_per_s"],
                out["bare"][method][conc]["requests_per_s"],
            )
            for conc in out["bare"][method]
        }
        for method in ("GET", "PATCH")
    }
    out["ratios"]["GET with proposal B"] = {
        conc: ratio(
            out["guildkit_proposal_b"]["GET"][conc]["requests_per_s"],
            out["bare"]["GET"][conc]["requests_per_s"],
        )
        for conc in out["bare"]["GET"]
    }
    return out
