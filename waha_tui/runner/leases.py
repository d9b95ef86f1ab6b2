"""The leases of one process's runs, kept alive together.

Every run holds a lease on its campaign (renewed, or another runner recovers the campaign
after lease_seconds) and must notice a pause, cancel or takeover set by another process.
One task per process does both for all its runs: every `poll` seconds one read of every
member's status and lease owner, and every third of the lease one write transaction that
renews every lease this process holds and reads them back in the same round trip. A run
waiting in a delay touches the database only when its wait ends; 200 waiting runs cost
one read a second and one write every few seconds, not 200 writes a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from waha_tui.runner.config import RunnerConfig
from waha_tui.status import CampaignStatus
from waha_tui.store import Store, StoreError

log = logging.getLogger(__name__)
S = CampaignStatus

# Called with the campaign's status when it is no longer Running under this process's lease.
OnLost = Callable[[str], None]


class LeaseKeeper:
    """Renews the leases `owner` holds and tells each run when its campaign was taken from
    it. Runs `join` once their claim committed and `leave` when they end; the task runs
    while there is a member."""

    def __init__(self, store: Store, owner: str, config: RunnerConfig) -> None:
        self.store, self.owner, self.config = store, owner, config
        self._members: dict[int, OnLost] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False  # a failure is logged once, and its end once

    @property
    def members(self) -> list[int]:
        return sorted(self._members)

    def join(self, campaign_id: int, on_lost: OnLost) -> None:
        """From the run's claim on: its lease is renewed with the others', and `on_lost`
        is called (once at most) when another process paused, cancelled or took it."""
        self._members[campaign_id] = on_lost
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._beat())

    def leave(self, campaign_id: int) -> None:
        self._members.pop(campaign_id, None)
        if not self._members and self._task is not None:
            # As the per-run heartbeat was: nothing left to keep, nothing left to wait for.
            self._task.cancel()
            self._task = None

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        renew_every = self.config.heartbeat_interval
        poll = min(self.config.poll_interval, renew_every)
        renewed = loop.time()  # every member's claim set its lease moments ago
        while self._members:
            await asyncio.sleep(poll)
            members = dict(self._members)
            if not members:
                return
            ids = sorted(members)
            renew = loop.time() - renewed >= renew_every - poll / 2
            try:
                if renew:
                    seen = await asyncio.to_thread(
                        self.store.renew_leases, self.owner, ids, self.config.lease_seconds
                    )
                    renewed = loop.time()
                elif self.store.reads_block:
                    seen = await asyncio.to_thread(self.store.leases_of, ids)
                else:
                    # SQLite in WAL: a read by primary key waits for no writer and costs
                    # less on the loop than a thread hop.
                    seen = self.store.leases_of(ids)
            except Exception as exc:  # the heartbeat must outlive any one failed beat
                if not isinstance(exc, StoreError):
                    log.exception("leases of campaigns %s: unexpected error", ids)
                elif not self._failing:
                    log.warning(
                        "leases of campaigns %s not %s: %s",
                        ids,
                        "renewed" if renew else "read",
                        exc,
                    )
                self._failing = True
                continue
            if self._failing:
                self._failing = False
                log.info("leases of campaigns %s: the database answers again", ids)
            for cid, on_lost in members.items():
                status, owner = seen.get(cid, (None, None))
                if status is None or (status == S.RUNNING and owner == self.owner):
                    continue  # gone from the table: the run's next write says so
                # Only to the run that was a member when the read began: a campaign resumed
                # here meanwhile is a new run, which this read knows nothing of.
                if self._members.get(cid) is on_lost:
                    del self._members[cid]
                    on_lost(status)
