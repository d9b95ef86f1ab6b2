"""A campaign's history: one `campaign_event` row per change of its state (created,
claimed, paused and why, waiting and for what, resumed, retried, edited, cancelled,
completed ...), with who made it: the operating-system user, the host and the process.

Deleting a campaign deletes its history; the deletion itself is a log line (`Kind.DELETED`).

`record` writes the row in the transaction of the change it describes, so the history never
disagrees with the status, and the log line goes with it once that transaction commits
(`Store.write` says it), so the two never drift. Every host sharing a PostgreSQL database
writes to the same table.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from waha_tui.models import CampaignEventRow, utcnow

log = logging.getLogger(__name__)
E = CampaignEventRow.__table__  # type: ignore[attr-defined]


class Kind(StrEnum):
    CREATED = "created"
    SCHEDULED = "scheduled"  # due again, for whichever runner gets there first
    CLAIMED = "claimed"  # a runner took a Scheduled campaign and runs it
    RESUMED = "resumed"  # an operator's resume: run here, or left to `waha-tui run`
    WAITING = "waiting"  # the run waits for something to come back, and for what
    PAUSED = "paused"
    RETRIED = "retried"  # recipients queued again
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    EDITED = "edited"  # its name, start or delay changed, and from what
    CLONED = "cloned"  # copied into a new campaign (which says so in its `created`)
    DELETING = "deleting"  # its deletion began; seen only if it was cut short
    # Logged, never stored: the campaign's history goes with it (store.drop_campaign).
    DELETED = "deleted"


LEVEL = {Kind.WAITING: logging.WARNING, Kind.PAUSED: logging.WARNING, Kind.FAILED: logging.ERROR}


@dataclass(frozen=True)
class Entry:
    """What a change of state is recorded as: its kind, and why or what it waits for."""

    kind: Kind
    detail: str | None = None
    level: int | None = None  # the log line's, when not the kind's own (a takeover: warning)


@dataclass(frozen=True)
class Actor:
    """Who makes a change: the operating-system user, the host, the process."""

    user: str
    host: str
    pid: int

    @classmethod
    def here(cls) -> Actor:
        user, host = _user_and_host()
        return cls(user, host, os.getpid())

    @property
    def who(self) -> str:
        return f"{self.user}@{self.host}"


@functools.cache
def _user_and_host() -> tuple[str, str]:
    try:
        import pwd  # the effective user, whatever USER says (su, sudo -E)

        user = pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        try:
            user = getpass.getuser()
        except OSError:
            user = str(os.getuid())
    return user[:64], socket.gethostname()[:255]


_PENDING = "waha_tui.history.pending"


def collect(conn: Connection) -> list[tuple[int, Entry]]:
    """Start collecting the log lines of the entries written in this transaction."""
    pending: list[tuple[int, Entry]] = []
    conn.info[_PENDING] = pending
    return pending


def record(conn: Connection, campaign_id: int, entry: Entry, *, at: datetime | None = None) -> None:
    """Write `entry` for a campaign in the transaction `conn` is in. Its log line is said
    once that transaction commits (`tell`); at once when nobody collects them."""
    actor = Actor.here()
    conn.execute(
        sa.insert(E).values(
            campaign_id=campaign_id,
            at=at or utcnow(),
            kind=entry.kind,
            detail=entry.detail,
            os_user=actor.user,
            host=actor.host,
            pid=actor.pid,
        )
    )
    pending = conn.info.get(_PENDING)
    if pending is None:
        tell([(campaign_id, entry)])
    else:
        pending.append((campaign_id, entry))


def tell(pending: Sequence[tuple[int, Entry]]) -> None:
    """The log lines of entries now committed."""
    for campaign_id, entry in pending:
        level = entry.level if entry.level is not None else LEVEL.get(entry.kind, logging.INFO)
        if entry.detail:
            log.log(level, "campaign %s: %s: %s", campaign_id, entry.kind, entry.detail)
        else:
            log.log(level, "campaign %s: %s", campaign_id, entry.kind)


def by(row: CampaignEventRow) -> str:
    """Who made an entry, as shown: "user@host pid 1234"."""
    return f"{row.os_user}@{row.host} pid {row.pid}"
