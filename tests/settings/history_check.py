"""Check what reader processes saw against the commit log (the history check's oracle)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.support.version_checks import regressions


@dataclass
class Verdict:
    stale_reads: list[str] = field(default_factory=list)
    backwards: list[str] = field(default_factory=list)
    read_errors: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)
    propagation: list[float] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [*self.stale_reads, *self.backwards, *self.read_errors, *self.disagreements]


def check_history(
    acks: list[dict[str, Any]],
    readers: dict[str, list[dict[str, Any]]],
    final_versions: dict[str, int],
    *,
    bound: float,
    stopped_at: dict[str, float],
) -> Verdict:
    """`acks`: {"guild", "version", "t"} per acknowledged commit (t: after commit returned).
    `readers`: each reader's events ({"event": "read"|"error", "guild", "version", "t"}).
    `final_versions`: each guild's version in PostgreSQL once writes stopped.
    `stopped_at`: when each reader was stopped; it is judged on every commit whose deadline
    falls before that (readers print only on change, so their last event says nothing).

    A read is stale if a commit acknowledged more than `bound` seconds before it had a higher
    version. Since readers print each version change, the version a reader serves at time t is
    that of its last read event before t, so each commit is checked at its deadline.
    """
    verdict = Verdict()
    for name, events in readers.items():
        reads: dict[str, list[tuple[float, int]]] = defaultdict(list)
        for event in events:
            if event["event"] == "read":
                reads[event["guild"]].append((event["t"], event["version"]))
            elif event["event"] == "error":
                verdict.read_errors.append(f"{name}: {event}")
        ended = stopped_at[name]
        for guild, series in reads.items():
            for (t0, v0), (t1, v1) in regressions(series):
                verdict.backwards.append(f"{name} guild {guild}: v{v0}@{t0} then v{v1}@{t1}")
        for ack in acks:
            deadline = ack["t"] + bound
            if deadline > ended:
                continue  # this reader stopped before the deadline; nothing to judge
            series = reads.get(ack["guild"], [])
            reached = next((t for t, v in series if v >= ack["version"]), None)
            if reached is None or reached > deadline:
                verdict.stale_reads.append(
                    f"{name} guild {ack['guild']}: v{ack['version']} acknowledged at "
                    f"{ack['t']:.3f} not served by {deadline:.3f} (reached: {reached})"
                )
            else:
                verdict.propagation.append(max(0.0, reached - ack["t"]))
        for guild, version in final_versions.items():
            last = reads.get(guild, [(0.0, -1)])[-1][1]
            if last != version:
                verdict.disagreements.append(
                    f"{name} guild {guild}: ends at v{last}, DB v{version}"
                )
    return verdict
