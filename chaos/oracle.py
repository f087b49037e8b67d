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
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from tests.support.version_checks import regressions

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
    memory: list[str] = field(default_factory=list)

    @property
    def violations(self) -> list[str]:
        return [
            *self.stale,
            *self.unexplained,
            *self.backwards,
            *self.missing_acked,
            *self.user_errors,
            *self.missing_replies,
            *self.memory,
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
    series: dict[tuple[int, int, int], list[tuple[float, int]]] = defaultdict(list)
    for d in sorted(decisions, key=lambda d: d.sent):
        version = version_of.get((d.guild, d.nonce))
        if version is None or d.incarnation < 0:
            continue  # unexplained (judged apart), or the process restarted mid-probe
        series[(d.guild, d.shard, d.incarnation)].append((d.sent, version))
    for (guild, shard, incarnation), samples in series.items():
        for (t0, v0), (t1, v1) in regressions(samples):
            verdict.backwards.append(
                f"guild {guild} shard {shard} process #{incarnation}: v{v0} at {t0:.2f} "
                f"then v{v1} at {t1:.2f}"
            )


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


# After a fault ends the system is still recovering for a while: reconnect back-offs (the
# signal paths' up to 2 s, discord.py's gateway reconnect up to 8 s and more after a refused
# connection), a breaker waiting to probe Redis again, a restarted bot warming up. DESIGN §2.6
# promises p99 < 100 ms "when healthy": an edit counts as healthy only if no fault was active
# from BOUND + RECOVERY seconds before its ack until its reply; one whose window touches the
# RECOVERY seconds after a fault ended is "recovering" (still under the 5 s bound's promise).
RECOVERY = 10.0


@dataclass(frozen=True)
class Propagation:
    edit: AckedEdit
    reply: Decision  # the first reply that used this version or a later one
    label: str  # a fault kind, "(overlapping)", "recovering" or "healthy"
    last_fault: FaultWindow | None  # the latest fault that ended before the ack

    @property
    def delay(self) -> float:
        return self.reply.replied - self.edit.at


def propagations(
    acked: Sequence[AckedEdit],
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    horizon: float = math.inf,
    since: float = -math.inf,
    recovery: float = RECOVERY,
) -> list[Propagation]:
    """For each acknowledged edit: the first probe reply that used it or a later version (a
    later version's reply proves this one was applied too), labelled by the faults active from
    BOUND seconds before the ack to that reply ("healthy" if none, and none ended within
    `recovery` seconds before that either). Edits acked after `horizon` or before `since` (the
    set-up's, before the probes start) are skipped."""
    version_of = {(c.guild, c.nonce): c.version for c in commits}
    seen: dict[int, list[tuple[float, int, Decision]]] = defaultdict(list)
    for d in decisions:
        v = version_of.get((d.guild, d.nonce))
        if v is not None:
            seen[d.guild].append((d.replied, v, d))
    for rows in seen.values():
        rows.sort(key=lambda row: row[0])
    out: list[Propagation] = []
    for edit in acked:
        if edit.at > horizon or edit.at < since:
            continue
        first = next(
            (d for t, v, d in seen[edit.guild] if t >= edit.at and v >= edit.version), None
        )
        if first is None:
            continue
        kinds = sorted({f.kind for f in faults_in(faults, edit.at - BOUND, first.replied)})
        if kinds:
            label = kinds[0] if len(kinds) == 1 else "(overlapping)"
        elif recovery > 0 and faults_in(faults, edit.at - BOUND - recovery, first.replied):
            label = "recovering"
        else:
            label = "healthy"
        ended = [f for f in faults if f.end <= edit.at]
        last = max(ended, key=lambda f: f.end) if ended else None
        out.append(Propagation(edit, first, label, last))
    return out


def propagation(
    acked: Sequence[AckedEdit],
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    horizon: float,
    since: float = -math.inf,
    recovery: float = RECOVERY,
) -> dict[str, list[float]]:
    """Propagation delays (s) by label (see `propagations`), and all of them under "all"."""
    out: dict[str, list[float]] = defaultdict(list)
    for p in propagations(
        acked, commits, decisions, faults, horizon=horizon, since=since, recovery=recovery
    ):
        out[p.label].append(p.delay)
        out["all"].append(p.delay)
    return dict(out)


def describe(p: Propagation, faults: Sequence[FaultWindow], *, t0: float) -> str:
    e, d = p.edit, p.reply
    around = sorted(
        {
            f"{f.kind}[{f.start - t0:.1f}-{f.end - t0:.1f}]"
            for f in faults_in(faults, e.at - BOUND, d.replied)
        }
    )
    last = (
        f"; last fault before the ack: {p.last_fault.kind}, ended "
        f"{e.at - p.last_fault.end:.1f}s before it"
        if p.last_fault is not None
        else ""
    )
    return (
        f"guild {e.guild} v{e.version} acked at {e.at - t0:.2f}s, first seen in a reply at "
        f"{d.replied - t0:.2f}s (probe sent {d.sent - t0:.2f}s): {p.delay:.2f}s; "
        f"faults: {', '.join(around) or 'none'}{last}"
    )


def slowest(
    acked: Sequence[AckedEdit],
    commits: Sequence[Commit],
    decisions: Sequence[Decision],
    faults: Sequence[FaultWindow],
    *,
    t0: float,
    n: int,
    labels: Iterable[str] | None = None,
    recovery: float = RECOVERY,
) -> list[str]:
    """The n slowest propagations (of the given labels, default all), described for the
    report with the faults around them and the last one before the ack."""
    wanted = set(labels) if labels is not None else None
    rows = [
        p
        for p in propagations(acked, commits, decisions, faults, since=t0, recovery=recovery)
        if wanted is None or p.label in wanted
    ]
    rows.sort(key=lambda p: p.delay, reverse=True)
    return [describe(p, faults, t0=t0) for p in rows[:n]]


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


# Memory: an incarnation of a guildkit process that lived at least MEMORY_MIN_MINUTES (after
# its first MEMORY_WARMUP seconds) is judged on the second half of its life, when bounded
# warm-up (pools, statement caches, the parsed-document cache, the allocator's heap) is over:
# RSS rising there faster than MEMORY_MAX_SLOPE MB/min is a violation. 0.5 MB/min is 720 MB a
# day; before docs/memory.md's fixes the second half rose 0.7 (dashboard) to 1.2 (bot) MB/min
# in a soak, after them 0.05-0.09.
MEMORY_WARMUP = 15.0
MEMORY_MIN_MINUTES = 4.0
MEMORY_MAX_SLOPE = 0.5
JUDGED_PROCESSES = ("bot", "dashboard")


@dataclass(frozen=True)
class MemoryJudgement:
    name: str
    whole: MemoryTrend  # after the warm-up seconds
    second_half: MemoryTrend | None  # None: too short to judge
    violation: bool

    @property
    def judged(self) -> bool:
        return self.second_half is not None


def process_family(name: str) -> str:
    """ "bot1#3" -> "bot", "dashboard0#2" -> "dashboard", "redis" -> "redis"."""
    return name.split("#", 1)[0].rstrip("0123456789")


def check_memory(
    rss: Mapping[str, Sequence[tuple[float, float]]],
    *,
    verdict: Verdict,
    require: Sequence[str] = (),
    warmup: float = MEMORY_WARMUP,
    min_minutes: float = MEMORY_MIN_MINUTES,
    max_slope: float = MEMORY_MAX_SLOPE,
    judged_families: Sequence[str] = JUDGED_PROCESSES,
    exclude: Collection[str] = (),
) -> dict[str, MemoryJudgement]:
    """Judge every long-enough incarnation of the judged process families (but those in
    `exclude`, e.g. run under tracemalloc); `require`: families of which at least one
    incarnation must have been judged (else the run could not tell, which is a violation too:
    a check that never runs can never fail)."""
    out: dict[str, MemoryJudgement] = {}
    for name, samples in sorted(rss.items()):
        settled = after_warmup(samples, warmup)
        whole = memory_trend(settled)
        if whole is None:
            continue
        second_half: MemoryTrend | None = None
        violation = False
        judged = process_family(name) in judged_families and name not in exclude
        if judged and whole.minutes >= min_minutes:
            middle = settled[0][0] + (settled[-1][0] - settled[0][0]) / 2
            second_half = memory_trend([(t, m) for t, m in settled if t >= middle])
            if second_half is not None and second_half.slope_mb_per_min > max_slope:
                violation = True
                verdict.memory.append(
                    f"{name}: RSS still rising {second_half.slope_mb_per_min:+.2f} MB/min over "
                    f"the second half of its {whole.minutes:.1f} min (bound {max_slope} MB/min; "
                    f"{second_half.first_mb:.1f} -> {second_half.last_mb:.1f} MB)"
                )
        out[name] = MemoryJudgement(name, whole, second_half, violation)
    for family in require:
        if not any(j.judged and process_family(j.name) == family for j in out.values()):
            verdict.memory.append(
                f"no {family} process lived {min_minutes:.0f} min: its memory was not judged"
            )
    return out


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
