"""The runner's settings and its clock."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from waha_tui.errors import UserError
from waha_tui.runner.policy import Budget


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _seconds_from_env(name: str, default: str) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise UserError(f"{name} must be positive")
    return value


def lease_seconds_from_env() -> float:
    return _seconds_from_env("WAHA_TUI_LEASE_SECONDS", "15")


class Clock:
    """Real time. Tests pass a fake one to check pacing without sleeping."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        """The wall-clock time (UTC): what a send window is read against, and what a
        number's caps count sends by."""
        return datetime.now(UTC)

    async def wait(self, seconds: float, wake: asyncio.Event) -> bool:
        """Wait up to `seconds`; True if `wake` was set meanwhile."""
        if wake.is_set():
            return True
        if seconds <= 0:
            return False
        try:
            await asyncio.wait_for(wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True


@dataclass
class RunnerConfig:
    lease_seconds: float = 15.0
    unreachable_backoff: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    ambiguous_retries: tuple[float, ...] = (1.0, 3.0)
    session_check_interval: float = 10.0
    # A session in STARTING or FAILED (a WEBJS auto-restart, a NOWEB reconnect) is waited
    # for this long before the campaign pauses; its status is looked at every session_poll.
    session_grace: float = 30.0
    session_poll: float = 2.0
    # How long the end of a run keeps trying to write its final status to a busy database.
    store_grace: float = 60.0
    # How often the process's heartbeat reads its runs' campaigns (one read for all), for
    # a pause, cancel or takeover set by another process: how late a waiting run sees it.
    poll_interval: float = 1.0
    # The opt-out list is read once per batch of recipients, and again for the rest of
    # the batch when that read is older than this (seconds): how late a number that opts
    # out during a run may still be messaged.
    optout_refresh: float = 60.0
    # A campaign waiting at its number's cap looks again this often (seconds), so a cap
    # raised meanwhile lets it go on before the hour or the day is over.
    cap_recheck: float = 60.0
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def from_env(cls) -> RunnerConfig:
        return cls(
            lease_seconds=lease_seconds_from_env(),
            session_grace=_seconds_from_env("WAHA_TUI_SESSION_GRACE", "30"),
        )

    @property
    def heartbeat_interval(self) -> float:
        """How often the leases are renewed: a third of the lease, so two renewals may fail
        before another runner takes the campaign over."""
        return max(self.lease_seconds / 3, 0.05)

    @property
    def budget(self) -> Budget:
        return Budget(
            unreachable=self.unreachable_backoff,
            ambiguous=self.ambiguous_retries,
            session_grace=self.session_grace,
            session_poll=self.session_poll,
        )
