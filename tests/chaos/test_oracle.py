"""The chaos oracle must catch what it is there to catch, and stay quiet on a clean run."""

from __future__ import annotations

import math

from chaos.oracle import (
    AckedEdit,
    Command,
    Commit,
    Decision,
    FaultWindow,
    HttpResult,
    Verdict,
    after_warmup,
    check_acked_in_db,
    check_backwards,
    check_memory,
    check_replies,
    check_staleness,
    check_user_errors,
    commit_times,
    judge,
    memory_trend,
    percentile,
    process_family,
    propagation,
    propagations,
    slowest,
)

G = 7
COMMITS = [Commit(G, 1, "a", 0.0), Commit(G, 2, "b", 10.0), Commit(G, 3, "c", 20.0)]


def decision(sent: float, nonce: str, *, incarnation: int = 1, shard: int = 0) -> Decision:
    return Decision(G, shard, incarnation, sent, sent + 0.01, nonce)


def test_a_clean_run_has_no_violations() -> None:
    acked = [AckedEdit(G, c.version, c.nonce, c.at, 0) for c in COMMITS]
    decisions = [decision(1, "a"), decision(10.2, "b"), decision(14.9, "a"), decision(21, "c")]
    verdict, (judged, excused) = judge(
        commits=COMMITS,
        acked=acked,
        in_db={(G, c.version): c.nonce for c in COMMITS},
        decisions=[decision(1, "a"), decision(10.2, "b"), decision(21, "c")],
        commands=[Command("ping", G, 0, 3.0, 3.1)],
        http=[HttpResult(0, 1.0, 1.1, 200), HttpResult(1, 2.0, 2.1, 412)],
        faults=[],
        reply_timeout=10,
    )
    assert verdict.violations == [] and (judged, excused) == (1, 0)
    # An older version inside the bound is allowed (v2 committed at 10, used v1 at 14.9).
    lenient = Verdict()
    check_staleness(COMMITS, decisions, [], verdict=lenient)
    assert lenient.stale == []


def test_a_decision_older_than_the_bound_is_caught() -> None:
    verdict = Verdict()
    check_staleness(COMMITS, [decision(15.5, "a")], [], verdict=verdict)
    assert len(verdict.stale) == 1 and "v2" in verdict.stale[0]


def test_stale_under_one_fault_counts_but_under_overlapping_faults_is_only_reported() -> None:
    one = Verdict()
    check_staleness(COMMITS, [decision(16, "a")], [FaultWindow("redis_kill", 9, 12)], verdict=one)
    assert len(one.stale) == 1 and one.violations
    two = Verdict()
    faults = [FaultWindow("redis_kill", 9, 12), FaultWindow("listen_blackhole", 11, 14)]
    check_staleness(COMMITS, [decision(16, "a")], faults, verdict=two)
    assert two.stale == [] and len(two.stale_multi_fault) == 1 and not two.violations
    # The same fault twice in a row is still one fault; a kind outside the contract is not.
    again = Verdict()
    faults = [FaultWindow("redis_kill", 9, 11), FaultWindow("redis_kill", 11.5, 13)]
    check_staleness(COMMITS, [decision(16, "a")], faults, verdict=again)
    assert len(again.stale) == 1
    beyond = Verdict()
    check_staleness(
        COMMITS,
        [decision(16, "a")],
        [FaultWindow("bot_pg_partition", 9, 12)],
        verdict=beyond,
        outside_contract=frozenset({"bot_pg_partition"}),
    )
    assert beyond.stale == [] and len(beyond.stale_multi_fault) == 1


def test_a_reply_matching_no_version_is_caught() -> None:
    verdict = Verdict()
    check_staleness(COMMITS, [decision(3, "zzz")], [], verdict=verdict)
    assert len(verdict.unexplained) == 1


def test_versions_going_backwards_in_one_process_are_caught() -> None:
    verdict = Verdict()
    check_backwards(COMMITS, [decision(21, "c"), decision(22, "b")], verdict=verdict)
    assert len(verdict.backwards) == 1
    # A restarted process is another process; a probe spanning a restart is not judged.
    other = Verdict()
    check_backwards(
        COMMITS,
        [decision(21, "c"), decision(22, "b", incarnation=2), decision(23, "a", incarnation=-1)],
        verdict=other,
    )
    assert other.backwards == []
    # Compared with the highest version served so far, not only with the previous reply.
    dip = Verdict()
    check_backwards(COMMITS, [decision(21, "c"), decision(22, "a"), decision(23, "b")], verdict=dip)
    assert len(dip.backwards) == 2 and all("v3 at 21.00" in b for b in dip.backwards)


def test_acknowledged_edits_missing_or_different_in_the_database_are_caught() -> None:
    acked = [AckedEdit(G, 1, "a", 0, 0), AckedEdit(G, 2, "b", 10, 1), AckedEdit(G, 3, "c", 20, 0)]
    verdict = Verdict()
    check_acked_in_db(acked, {(G, 1): "a", (G, 2): "other"}, verdict=verdict)
    assert len(verdict.missing_acked) == 2


def test_user_errors() -> None:
    pg_down = FaultWindow("pg_restart", 10, 12)
    killed = FaultWindow("dashboard1_kill", 30, 33)
    results = [
        HttpResult(0, 11, 11.1, 503),  # documented: PostgreSQL down
        HttpResult(0, 20, 20.1, 503),  # PostgreSQL was up
        HttpResult(0, 21, 21.1, 500),
        HttpResult(1, 31, 31.1, None, "ConnectError"),  # its own process was killed
        HttpResult(0, 31, 31.1, None, "ReadTimeout"),  # the other one was up
        HttpResult(0, 40, 40.1, 403),  # a session or CSRF broke
        HttpResult(0, 41, 41.1, 412),  # a lost If-Match race is fine
    ]
    verdict = Verdict()
    check_user_errors(results, [pg_down, killed], verdict=verdict)
    assert len(verdict.user_errors) == 4
    assert not any("at 11.00" in e or "dashboard 1" in e for e in verdict.user_errors)


def test_missing_replies_are_excused_only_by_the_bots_own_outage() -> None:
    commands = [
        Command("ping", G, 0, 5, None),  # bot 0 killed: excused
        Command("ping", G, 1, 5, None),  # bot 1 was up: caught
        Command("probe", G, 0, 50, 61.0),  # answered too late, Redis down is no excuse
        Command("link", G, 0, 70, 70.2),
    ]
    faults = [FaultWindow("bot0_kill", 4, 8), FaultWindow("redis_kill", 49, 55)]
    verdict = Verdict()
    judged, excused = check_replies(commands, faults, verdict=verdict, timeout=10)
    assert (judged, excused) == (3, 1)
    assert len(verdict.missing_replies) == 2
    # Redis and PostgreSQL both unreachable: reported apart, not counted.
    both = [*faults, FaultWindow("pg_restart", 52, 53)]
    apart = Verdict()
    check_replies(commands, both, verdict=apart, timeout=10)
    assert len(apart.missing_replies) == 1 and len(apart.missing_replies_multi_fault) == 1
    # A dashboard fault on top of one bot-side fault changes nothing.
    dash = [*faults, FaultWindow("dashboard0_stop", 52, 53)]
    counted = Verdict()
    check_replies(commands, dash, verdict=counted, timeout=10)
    assert len(counted.missing_replies) == 2


def test_commit_times_take_the_earliest_upper_bound() -> None:
    acked = [AckedEdit(G, 2, "b", 10.0, 0), AckedEdit(G, 3, "c", 30.0, 0)]
    # The observer saw v3 at 21: so v1..v3 had all committed by 21.
    times = commit_times(acked, [(G, 3, 21.0), (G, 1, 2.0)])
    assert times[(G, 1)] == 2.0 and times[(G, 2)] == 10.0 and times[(G, 3)] == 21.0


def test_propagation_and_percentiles() -> None:
    acked = [AckedEdit(G, 2, "b", 10.0, 0), AckedEdit(G, 3, "c", 20.0, 0)]
    decisions = [decision(10.0, "a"), decision(10.3, "b"), decision(23.0, "c")]
    out = propagation(acked, COMMITS, decisions, [FaultWindow("redis_kill", 19, 25)], horizon=100)
    assert [round(x, 2) for x in out["all"]] == [0.31, 3.01]
    assert out["healthy"] == [out["all"][0]] and len(out["redis_kill"]) == 1
    both = [FaultWindow("redis_kill", 19, 25), FaultWindow("pg_restart", 21, 22)]
    assert len(propagation(acked, COMMITS, decisions, both, horizon=100)["(overlapping)"]) == 1
    assert percentile([1, 2, 3, 4], 0.5) == 2 and percentile(list(range(100)), 0.99) == 98
    assert math.isnan(percentile([], 0.5))


def test_memory_trend_reports_a_leak() -> None:
    flat = memory_trend([(t, 100.0) for t in range(0, 600, 5)])
    leak = memory_trend([(t, 100.0 + t / 60) for t in range(0, 600, 5)])
    assert flat is not None and leak is not None
    assert flat.slope_mb_per_min == 0 and math.isclose(leak.slope_mb_per_min, 1.0)
    assert leak.first_mb == 100 and leak.max_mb == leak.last_mb
    assert after_warmup([(0, 1), (10, 2), (20, 3)], 15) == [(20, 3)]


def test_recovery_after_a_fault_is_not_counted_as_healthy() -> None:
    acked = [AckedEdit(G, 2, "b", 10.0, 0), AckedEdit(G, 3, "c", 40.0, 0)]
    decisions = [decision(12.0, "b"), decision(40.05, "c")]
    # The fault ended 7 s before the first ack: outside BOUND (5 s), inside RECOVERY (10 s).
    faults = [FaultWindow("gateway_cut", 0.0, 3.0)]
    out = propagation(acked, COMMITS, decisions, faults, horizon=100)
    assert [round(x, 2) for x in out["recovering"]] == [2.01]
    assert [round(x, 2) for x in out["healthy"]] == [0.06]
    # Without a recovery window it would have been "healthy", as before.
    old = propagation(acked, COMMITS, decisions, faults, horizon=100, recovery=0)
    assert len(old["healthy"]) == 2 and "recovering" not in old
    rows = propagations(acked, COMMITS, decisions, faults)
    assert rows[0].last_fault == faults[0] and rows[0].label == "recovering"
    text = slowest(acked, COMMITS, decisions, faults, t0=0.0, n=5, labels=["recovering"])
    assert len(text) == 1 and "last fault before the ack: gateway_cut, ended 7.0s" in text[0]


def rss(minutes: float, mb_per_min: float, *, warm_mb: float = 0.0) -> list[tuple[float, float]]:
    """5 s samples; `warm_mb` grows in during the first third (bounded warm-up), then the
    slope; a little sawtooth noise on top."""
    samples = []
    end = minutes * 60
    for i, t in enumerate(range(0, int(end) + 1, 5)):
        warm = warm_mb * min(1.0, t / (end / 3))
        samples.append((1000.0 + t, 100.0 + warm + mb_per_min * t / 60 + (i % 3) * 0.1))
    return samples


def test_memory_growth_in_the_second_half_is_a_violation() -> None:
    verdict = Verdict()
    judged = check_memory(
        {
            "bot0#1": rss(6, 0.0, warm_mb=8.0),  # warm-up that plateaus: fine
            "bot1#2": rss(6, 1.2),  # keeps growing: caught
            "bot1#1": rss(2, 5.0),  # too short to judge
            "dashboard0#1": rss(6, 0.3),  # under the bound
            "driver": rss(6, 5.0),  # not a guildkit process
        },
        verdict=verdict,
        require=("bot", "dashboard"),
    )
    assert len(verdict.memory) == 1 and verdict.memory[0].startswith("bot1#2")
    assert verdict.violations == verdict.memory
    assert judged["bot0#1"].judged and not judged["bot0#1"].violation
    assert judged["bot0#1"].whole.slope_mb_per_min > 0.5  # the whole-life slope would lie
    assert not judged["bot1#1"].judged and not judged["driver"].judged
    assert judged["bot1#2"].violation and not judged["dashboard0#1"].violation
    assert process_family("dashboard1#10") == "dashboard" and process_family("redis") == "redis"


def test_memory_that_could_not_be_judged_is_a_violation_when_required() -> None:
    verdict = Verdict()
    check_memory(
        {"bot0#1": rss(6, 0.0), "dashboard0#1": rss(2, 0.0), "dashboard1#1": rss(6, 3.0)},
        verdict=verdict,
        require=("bot", "dashboard"),
        exclude={"dashboard1#1"},  # e.g. run under tracemalloc
    )
    assert verdict.memory == ["no dashboard process lived 4 min: its memory was not judged"]
    quiet = Verdict()
    check_memory({"bot0#1": rss(2, 0.0)}, verdict=quiet)
    assert quiet.memory == []
