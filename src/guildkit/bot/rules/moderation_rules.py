"""What the moderation extension looks for: links, blocked words and spam bursts."""

from __future__ import annotations

import functools
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

_LINK = re.compile(
    r"""(?ix)
    (?:\b[a-z][a-z0-9+.-]*://[^\s<>]+)         # scheme URLs: http://, https://, steam://…
    | (?:\bwww\.[^\s<>]+\.[^\s<>]+)             # www.example.com without a scheme
    | (?:\b(?:discord\.gg|discord(?:app)?\.com/invite)/[a-z0-9-]+)  # server invites
    """
)


def contains_link(text: str) -> bool:
    return _LINK.search(text) is not None


@functools.lru_cache(maxsize=1024)
def _blocked_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    # Compiled once per distinct word list: the settings tuple is the cache key, so an edit
    # simply produces a new pattern and the old one ages out.
    cleaned = sorted({w.strip() for w in words if w.strip()}, key=len, reverse=True)
    if not cleaned:
        return None
    alternatives = "|".join(re.escape(w) for w in cleaned)
    # Look-arounds rather than \b: a blocked word may begin or end with punctuation ("f*ck").
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def find_blocked_word(text: str, words: tuple[str, ...]) -> str | None:
    """The first blocked word appearing as a whole word (case-insensitive), or None."""
    pattern = _blocked_pattern(words)
    if pattern is None:
        return None
    match = pattern.search(text)
    return match.group(0) if match else None


def is_exempt(member_role_ids: Iterable[int], exempt_role_ids: Iterable[str]) -> bool:
    exempt = {int(r) for r in exempt_role_ids}
    return any(r in exempt for r in member_role_ids)


@dataclass(frozen=True)
class Verdict:
    """Why a message is removed: `rule` is link, blocked_word or spam."""

    rule: str
    detail: str


class SpamTracker:
    """Per-member sliding windows of message times, bounded in memory.

    The window and the limit come from the guild's settings on every call, so an edit applies to
    the next message without resetting anyone's history.
    """

    def __init__(
        self, *, clock: Callable[[], float], max_window: float = 60.0, max_keys: int = 50_000
    ) -> None:
        self._clock = clock
        self._max_window = max_window
        self._max_keys = max_keys
        self._seen: dict[tuple[int, int], deque[float]] = {}

    def record(
        self, guild_id: int, user_id: int, *, max_messages: int, window: float
    ) -> int | None:
        """Record one message; returns the count in the window if it exceeds `max_messages`."""
        now = self._clock()
        key = (guild_id, user_id)
        times = self._seen.get(key)
        if times is None:
            if len(self._seen) >= self._max_keys:
                self._prune(now)
            # The limit is at most 20 messages, so 64 timestamps always cover the window.
            times = self._seen[key] = deque(maxlen=64)
        times.append(now)
        while times and times[0] <= now - self._max_window:
            times.popleft()
        in_window = sum(1 for t in times if t > now - window)
        return in_window if in_window > max_messages else None

    def _prune(self, now: float) -> None:
        stale = [k for k, t in self._seen.items() if not t or t[-1] <= now - self._max_window]
        for key in stale:
            del self._seen[key]
        if len(self._seen) >= self._max_keys:
            # Still full of active members: forget the oldest half rather than grow without bound.
            for key in list(self._seen)[: self._max_keys // 2]:
                del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
