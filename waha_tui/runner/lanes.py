"""A campaign that sends through several sessions: one run per session (a lane), each over
its own share of the recipients (spread.py), with its own pacing, caps, message ids and
session checks, all under the campaign's one claim and lease, in one process.

The lanes share a board: where each has got to (the campaign's next_index is the lowest,
so a resume never passes a recipient a lane has not settled), what each waits for (the
campaign's one waiting line names them all) and when each sends next (the campaign counts
down to the earliest). A lane that would pause the campaign (its session gone, its number
logged out) stops alone and its share waits; the others go on, and the campaign pauses
with its reason once they are done.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from waha_tui.spread import Spread
from waha_tui.store import Outcome


@dataclass
class Board:
    spread: Spread
    start: int  # the campaign's next_index when it was claimed
    total: int
    cursors: dict[str, int] = field(default_factory=dict)
    waits: dict[str, str] = field(default_factory=dict)
    next_sends: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Below its first unsettled recipient: everything before `start` is settled.
        self.cursors = {name: self.start for name in self.spread.names}

    def next_index(self, session: str, outcomes: Sequence[Outcome]) -> int | None:
        """The campaign's next_index once these outcomes of `session` are written: below
        every lane's first recipient not yet written. A lane's own share is in position
        order, so after its last outcome nothing of its own is left unsettled; the
        positions between belong to the other lanes, whose cursors cover them."""
        if not outcomes:
            return None
        mine = max(self.cursors[session], outcomes[-1].position + 1)
        return min([mine, *(c for name, c in self.cursors.items() if name != session)])

    def written(self, session: str, outcomes: Sequence[Outcome]) -> None:
        if outcomes:
            self.cursors[session] = max(self.cursors[session], outcomes[-1].position + 1)

    def done(self, session: str) -> None:
        """Every recipient of this lane's share is settled (and written)."""
        self.cursors[session] = self.total

    def wait(self, session: str, reason: str | None) -> str | None:
        """What the campaign waits for, once `session` waits for `reason` (None: no more)."""
        if reason is None:
            self.waits.pop(session, None)
        else:
            self.waits[session] = reason
        return self.waiting_line()

    def waiting_line(self) -> str | None:
        if not self.waits:
            return None
        waits = self.waits
        return "; ".join(about(name, waits[name]) for name in self.spread.names if name in waits)

    def next_send(self, session: str, at: datetime, now: datetime) -> datetime | None:
        """When the campaign sends next, once `session`'s next send is `at`: the earliest
        still ahead of `now` (a lane's passed one is no countdown)."""
        self.next_sends[session] = at
        return min((t for t in self.next_sends.values() if t > now), default=None)


def about(session: str, why: str) -> str:
    """`why` said of one session: named once (most reasons already name it)."""
    return why if f"'{session}'" in why else f"session '{session}': {why}"
