"""Tracks the highest `change_seq` this process has fully applied (DESIGN §2.9).

Signals arrive out of order and through several paths; the fast paths may only advance the mark
over an unbroken run of sequence numbers, while a catch-up, which reads the committed state,
may jump it to whatever that snapshot held.
"""

from __future__ import annotations


class AppliedTracker:
    def __init__(self, start: int = 0) -> None:
        self._applied = start
        self._pending: set[int] = set()

    @property
    def applied(self) -> int:
        return self._applied

    def signal_applied(self, change_seq: int) -> bool:
        """A fast-path signal was applied; True if the mark moved."""
        if change_seq <= self._applied:
            return False
        self._pending.add(change_seq)
        moved = False
        while self._applied + 1 in self._pending:
            self._pending.remove(self._applied + 1)
            self._applied += 1
            moved = True
        return moved

    def caught_up_to(self, change_seq: int) -> bool:
        """Everything committed up to `change_seq` has been applied (a catch-up snapshot)."""
        if change_seq <= self._applied:
            return False
        self._applied = change_seq
        self._pending = {s for s in self._pending if s > change_seq}
        while self._applied + 1 in self._pending:
            self._pending.remove(self._applied + 1)
            self._applied += 1
        return True
