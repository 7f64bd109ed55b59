"""Credential rotation without a time provider: two overlapping slots (BKP-03, BKP-05).

Time is cut into periods of ``period_days`` counted from 1970-01-01 (UTC),
so every ``pulumi up`` on the same day computes the same generation: the
program stays deterministic within a day and previews show a rotation on
the day it falls due.

Two slots, ``a`` and ``b``, take turns: slot ``a`` gets a new credential when
the period number becomes odd, slot ``b`` when it becomes even. The slot
renewed last is *current* (new backups use it); the other is *previous*,
still valid for one more period, so

* a running backup never loses its credential in the middle of a rotation
  (the key it started with stays valid for a whole period);
* the host can move the restic repository from the previous password to the
  current one (``restic key add`` then ``key remove``) with both at hand;
* no credential lives longer than two periods; settings cap a period at 45
  days, so nothing is older than 90 days.

Rotation happens when ``pulumi up`` runs: the deployment pipeline runs it at
least weekly (README, "Rotation").
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

SLOTS = ("a", "b")
_EPOCH = datetime.date(1970, 1, 1)


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


@dataclass(frozen=True, kw_only=True)
class Rotation:
    """Where today falls in the rotation schedule."""

    period_days: int
    """A new credential becomes current every this many days."""
    today: datetime.date
    """The day the program runs (UTC)."""

    def __post_init__(self) -> None:
        if self.period_days < 1:
            raise ValueError("period_days must be at least 1")

    @property
    def period(self) -> int:
        """Number of whole periods since 1970-01-01."""
        return (self.today - _EPOCH).days // self.period_days

    def generation(self, slot: str) -> int:
        """The slot's generation: it changes every second period, the slots alternating."""
        if slot == "a":
            return (self.period + 1) // 2
        if slot == "b":
            return self.period // 2
        raise ValueError(f"unknown slot {slot!r}")

    @property
    def current_slot(self) -> str:
        """The slot renewed most recently."""
        return "a" if self.period % 2 else "b"

    @property
    def previous_slot(self) -> str:
        return "b" if self.current_slot == "a" else "a"

    @property
    def next_rotation(self) -> datetime.date:
        """The first day of the next period (a new credential becomes current)."""
        return _EPOCH + datetime.timedelta(days=(self.period + 1) * self.period_days)
