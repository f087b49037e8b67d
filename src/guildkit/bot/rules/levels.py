"""Level math: the XP a message earns, and which level a total corresponds to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

XP_PER_MESSAGE: Final = 15
COOLDOWN_SECONDS: Final = 60.0


def xp_for_next_level(level: int) -> int:
    """XP needed to go from `level` to `level + 1`: 100, 155, 220, … (grows quadratically)."""
    return 5 * level * level + 50 * level + 100


def total_xp_for_level(level: int) -> int:
    return sum(xp_for_next_level(n) for n in range(level))


def level_for_xp(xp: int) -> int:
    level = 0
    remaining = max(xp, 0)
    while remaining >= xp_for_next_level(level):
        remaining -= xp_for_next_level(level)
        level += 1
    return level


@dataclass(frozen=True)
class Progress:
    level: int
    xp: int
    into_level: int
    needed: int


def progress(xp: int) -> Progress:
    level = level_for_xp(xp)
    return Progress(
        level=level,
        xp=xp,
        into_level=xp - total_xp_for_level(level),
        needed=xp_for_next_level(level),
    )
