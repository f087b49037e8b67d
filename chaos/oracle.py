"""The chaos campaign's oracle: pure functions over what the run recorded.

Every time is the driver's monotonic clock, in seconds. Bounds are chosen so that no rule
can fire on a correct system (no false positives):

- a commit's time is an *upper* bound: the moment the dashboard's 200 reached the admin, or
  the moment the driver's own PostgreSQL observer first saw that version (or a later one);
- a bot decision's time is a *lower* bound: the moment the probe message was posted (the
  bot can only read its settings after the message reached it).

So a decision at `t` that used version `v` is stale if some version `v' > v` of that guild
had committed by `t - bound`. Design §2.6 promises the bound under any *single* fault of the
kinds it lists; a stale decision while two or more kinds of fault overlapped, or under a kind
it does not list (`outside_contract`), is reported, not counted as a violation.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

BOUND = 5.0


@dataclass(frozen=True)
class FaultWindow:
    kind: str
    start: float
    end: float

    def overlaps(self, lo: float, hi: float) -> bool:
        return self.start <= hi and self.end >= lo


@dataclass(frozen=True)
class Commit:
    """A version known to be in PostgreSQL; `at` is an upper bound on its commit time."""

    guild: int
    version: int
    nonce: str
    at: float


@dataclass(frozen=True)
class AckedEdit:
    """A PATCH the dashboard answered 200 to: what the admin was told."""

    guild: int
    version: int
    nonce: str
    at: float
    dashboard: int


@dataclass(frozen=True)
class Decision:
    """A probe and the bot's answer: `nonce` is the custom-command response it used."""

    guild: int
    shard: int
    incarnation: int  # which process (restart count) served the shard for the whole probe
    sent: float
    replied: float
    nonce: str


@dataclass(frozen=True)
class Command:
    """A member's command or link post and whether the bot answered it (None: never)."""

    kind: str  # "probe", "ping", "link"
    guild: int
    shard: int
    sent: float
    answered: float | None


@dataclass(frozen=True)
class HttpResult:
    dashboard: int
    start: float
    end: float
    status: int | None  # None: a transport error or timeout
    error: str = ""


@dataclass
class Verdict:
    stale: list[str] = field(default_factory=list)
    stale_multi_fault: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    backwards: list[str] = field(default_factory=list)
    missing_acked: list[str] = field(default_factory=list)
    user_errors: list[str] = field(default_factory=list)
    missing_replies: list[str] = field(default_factory=list)
    missing_replies_multi_fault: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [
            *self.stale,
            *self.unexplained,
            *self.backwards,
            *self.missing_acked,
            *self.user_errors,
            *self.missing_replies,
        ]


def faults_in(faults: Iterable[FaultWindow], lo: float, hi: float) -> list[FaultWindow]:
    return [f for f in faults if f.overlaps(lo, hi)]


def commit_times(
    acked: Iterable[AckedEdit], observed: Iterable[tuple[int, int, float]]
) -> dict[tuple[int, int], float]:
    """Upper bound on each (guild, version)'s commit time from acks and observer sightings.

    The observer polls the current version; seeing version n at t means every version <= n
    had committed by t. `observed` holds (guild, version, first time seen).
    """
    best: dict[tuple[int, int], float] = {}
    for edit in acked:
        key = (edit.guild, edit.version)
        best[key] = min(best.get(key, math.inf), edit.at)
    by_guild: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for guild, version, at in observed:
        by_guild[guild].append((version, at))
    return _merge_observed(best, by_guild)


def _merge_observed(
    best: dict[tuple[int, int], float], by_guild: Mapping[int, list[tuple[int, float]]]
) -> dict[tuple[int, int], float]:
    merged = dict(best)
    for guild, sightings in by_guild.items():
        # suffix-min over versions: seen(n) bounds every version <= n
        sightings.sort()
        running = math.inf
        for version, at in reversed(sightings):
            running = min(running, at)
            for v in range(version, 0, -1):
                key = (guild, v)
                if merged.get(key, math.inf) <= running:
                    break
                merged[key] = running
    return merged


def check_staleness(
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    bound: float = BOUND,
    verdict: Verdict,
    outside_contract: frozenset[str] = frozenset(),
) -> None:
    by_nonce = {(c.guild, c.nonce): c for c in commits}
    by_guild: dict[int, list[Commit]] = defaultdict(list)
    for c in commits:
        by_guild[c.guild].append(c)
    for d in decisions:
        used = by_nonce.get((d.guild, d.nonce))
        if used is None:
            verdict.unexplained.append(
                f"guild {d.guild}: reply {d.nonce!r} at {d.sent:.2f} matches no committed version"
            )
            continue
        newer = [c for c in by_guild[d.guild] if c.version > used.version and c.at + bound < d.sent]
        if not newer:
            continue
        oldest = min(newer, key=lambda c: c.at)
        age = d.sent - oldest.at
        during = faults_in(faults, oldest.at - bound, d.sent)
        kinds = sorted({f.kind for f in during})
        text = (
            f"guild {d.guild} shard {d.shard}: decision at {d.sent:.2f} used v{used.version} "
            f"but v{oldest.version} committed by {oldest.at:.2f} ({age:.2f}s earlier); "
            f"faults: {', '.join(kinds) or 'none'}"
        )
        beyond = len(set(kinds)) > 1 or bool(set(kinds) & outside_contract)
        (verdict.stale_multi_fault if beyond else verdict.stale).append(text)


def check_backwards(
    commits: Sequence[Commit], decisions: Sequence[Decision], *, verdict: Verdict
) -> None:
    """Within one bot process, a guild's successive decisions never use an older version."""
    version_of = {(c.guild, c.nonce): c.version for c in commits}
    last: dict[tuple[int, int, int], tuple[int, float]] = {}
    for d in sorted(decisions, key=lambda d: d.sent):
        version = version_of.get((d.guild, d.nonce))
        if version is None:
            continue
        key = (d.guild, d.shard, d.incarnation)
        previous = last.get(key)
        if d.incarnation < 0:
            continue  # the shard's process was restarted while this probe was out
        if previous is not None and version < previous[0]:
            verdict.backwards.append(
                f"guild {d.guild} shard {d.shard} process #{d.incarnation}: v{previous[0]} at "
                f"{previous[1]:.2f} then v{version} at {d.sent:.2f}"
            )
        if previous is None or version >= previous[0]:
            last[key] = (version, d.sent)


def check_acked_in_db(
    acked: Sequence[AckedEdit], in_db: Mapping[tuple[int, int], str], *, verdict: Verdict
) -> None:
    """Every acknowledged (guild, version) is in PostgreSQL's history with the same content."""
    for edit in acked:
        found = in_db.get((edit.guild, edit.version))
        if found is None:
            verdict.missing_acked.append(
                f"guild {edit.guild} v{edit.version} acknowledged at {edit.at:.2f} "
                f"by dashboard {edit.dashboard} is not in PostgreSQL"
            )
        elif found != edit.nonce:
            verdict.missing_acked.append(
                f"guild {edit.guild} v{edit.version}: acknowledged {edit.nonce!r}, "
                f"PostgreSQL holds {found!r}"
            )


def check_user_errors(
    results: Sequence[HttpResult],
    faults: Sequence[FaultWindow],
    *,
    verdict: Verdict,
    grace: float = 3.0,
) -> None:
    """5xx other than 503 while PostgreSQL is down; transport errors from a dashboard that
    was up; unexpected 4xx (401/403/422 would be sessions, CSRF or our patches breaking)."""
    for r in results:
        window = faults_in(faults, r.start - grace, r.end + grace)
        kinds = {f.kind for f in window}
        own = {k for k in kinds if k.startswith(f"dashboard{r.dashboard}_")}
        if r.status is None:
            if own:
                continue
            verdict.user_errors.append(
                f"dashboard {r.dashboard} request at {r.start:.2f} failed ({r.error}) while it "
                f"was up; faults: {', '.join(sorted(kinds)) or 'none'}"
            )
        elif r.status == 503:
            if "pg_restart" in kinds:
                continue
            verdict.user_errors.append(
                f"dashboard {r.dashboard} 503 at {r.start:.2f} while PostgreSQL was up; "
                f"faults: {', '.join(sorted(kinds)) or 'none'}"
            )
        elif r.status >= 500 or (r.status >= 400 and r.status != 412):
            verdict.user_errors.append(
                f"dashboard {r.dashboard} {r.status} at {r.start:.2f}; "
                f"faults: {', '.join(sorted(kinds)) or 'none'} {r.error}".rstrip()
            )


def check_replies(
    commands: Sequence[Command],
    faults: Sequence[FaultWindow],
    *,
    verdict: Verdict,
    timeout: float,
    quiet_before: float = 5.0,
    outside_contract: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """Commands must be answered within `timeout` unless the bot serving them was down or cut
    off from the gateway (its kill or a gateway cut from `quiet_before` before sending to
    `timeout` after): no single Redis, PostgreSQL, signal or dashboard fault excuses a silent
    bot. With two or more faults that touch the bot (dashboard faults don't) overlapping, a
    missing answer is reported apart, not counted. Returns (judged, unanswered while excused)."""
    judged = under_faults = 0
    for c in commands:
        ok = c.answered is not None and c.answered - c.sent <= timeout
        excuses = {"gateway_cut", f"bot{c.shard}_kill"}
        window = faults_in(faults, c.sent - quiet_before, c.sent + timeout)
        if any(f.kind in excuses for f in window):
            under_faults += 0 if ok else 1
            continue
        judged += 1
        if not ok:
            late = "never" if c.answered is None else f"after {c.answered - c.sent:.2f}s"
            kinds = ", ".join(sorted({f.kind for f in window})) or "none"
            text = f"{c.kind} in guild {c.guild} at {c.sent:.2f} answered {late}; faults: {kinds}"
            touching = {f.kind for f in window if not f.kind.startswith("dashboard")}
            if len(touching) > 1 or touching & outside_contract:
                verdict.missing_replies_multi_fault.append(text)
            else:
                verdict.missing_replies.append(text)
    return judged, under_faults


def propagation(
    acked: Sequence[AckedEdit],
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    horizon: float,
) -> dict[str, list[float]]:
    """For each acknowledged edit: seconds from the ack to the first probe reply that used it
    or a later version, grouped by the fault kinds active meanwhile ("healthy" if none).
    Edits superseded before any probe saw them are measured by the later version's reply
    (it proves this one was applied too). Edits whose ack is later than `horizon` are skipped."""
    version_of = {(c.guild, c.nonce): c.version for c in commits}
    seen: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for d in decisions:
        v = version_of.get((d.guild, d.nonce))
        if v is not None:
            seen[d.guild].append((d.replied, v))
    for rows in seen.values():
        rows.sort()
    out: dict[str, list[float]] = defaultdict(list)
    for edit in acked:
        if edit.at > horizon:
            continue
        first = next((t for t, v in seen[edit.guild] if t >= edit.at and v >= edit.version), None)
        if first is None:
            continue
        delay = first - edit.at
        kinds = sorted({f.kind for f in faults_in(faults, edit.at - BOUND, first)})
        label = "healthy" if not kinds else kinds[0] if len(kinds) == 1 else "(overlapping)"
        out[label].append(delay)
        out["all"].append(delay)
    return dict(out)


def slowest(
    acked: Sequence[AckedEdit],
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    t0: float,
    n: int,
) -> list[str]:
    """The n slowest propagations, with the faults around them, for the report."""
    version_of = {(c.guild, c.nonce): c.version for c in commits}
    by_guild: dict[int, list[Decision]] = defaultdict(list)
    for d in sorted(decisions, key=lambda d: d.replied):
        by_guild[d.guild].append(d)
    rows: list[tuple[float, str]] = []
    for edit in acked:
        first = next(
            (
                d
                for d in by_guild[edit.guild]
                if d.replied >= edit.at and version_of.get((d.guild, d.nonce), -1) >= edit.version
            ),
            None,
        )
        if first is None:
            continue
        kinds = sorted(
            {
                f"{f.kind}[{f.start - t0:.1f}-{f.end - t0:.1f}]"
                for f in faults_in(faults, edit.at - BOUND, first.replied)
            }
        )
        rows.append(
            (
                first.replied - edit.at,
                f"guild {edit.guild} v{edit.version} acked at {edit.at - t0:.2f}s, first seen "
                f"in a reply at {first.replied - t0:.2f}s (probe sent {first.sent - t0:.2f}s): "
                f"{first.replied - edit.at:.2f}s; faults: {', '.join(kinds) or 'none'}",
            )
        )
    rows.sort(reverse=True)
    return [text for _, text in rows[:n]]


def after_warmup(
    samples: Sequence[tuple[float, float]], warmup: float
) -> list[tuple[float, float]]:
    if not samples:
        return []
    start = samples[0][0]
    return [(t, m) for t, m in samples if t - start >= warmup]


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@dataclass(frozen=True)
class MemoryTrend:
    first_mb: float
    last_mb: float
    max_mb: float
    slope_mb_per_min: float
    minutes: float


def memory_trend(samples: Sequence[tuple[float, float]]) -> MemoryTrend | None:
    """Least-squares slope of RSS (MB) over time (s), in MB per minute."""
    if len(samples) < 2:
        return None
    ts = [t for t, _ in samples]
    ms = [m for _, m in samples]
    mean_t = sum(ts) / len(ts)
    mean_m = sum(ms) / len(ms)
    var = sum((t - mean_t) ** 2 for t in ts)
    slope = 0.0 if var == 0 else sum((t - mean_t) * (m - mean_m) for t, m in samples) / var
    return MemoryTrend(
        first_mb=ms[0],
        last_mb=ms[-1],
        max_mb=max(ms),
        slope_mb_per_min=slope * 60,
        minutes=(ts[-1] - ts[0]) / 60,
    )


def judge(
    *,
    commits: Sequence[Commit],
    acked: Sequence[AckedEdit],
    in_db: Mapping[tuple[int, int], str],
    decisions: Sequence[Decision],
    commands: Sequence[Command],
    http: Sequence[HttpResult],
    faults: Sequence[FaultWindow],
    reply_timeout: float,
    bound: float = BOUND,
    outside_contract: frozenset[str] = frozenset(),
) -> tuple[Verdict, tuple[int, int]]:
    verdict = Verdict()
    check_staleness(
        commits, decisions, faults, bound=bound, verdict=verdict, outside_contract=outside_contract
    )
    check_backwards(commits, decisions, verdict=verdict)
    check_acked_in_db(acked, in_db, verdict=verdict)
    check_user_errors(http, faults, verdict=verdict)
    counts = check_replies(
        commands,
        faults,
        verdict=verdict,
        timeout=reply_timeout,
        outside_contract=outside_contract,
    )
    return verdict, counts
