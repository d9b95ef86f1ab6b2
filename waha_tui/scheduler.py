"""Starts Scheduled campaigns when they are due, one per WAHA session at a time.

Campaigns that came due while nothing was running start at the first tick (the reference
app's "missed" campaigns). Each tick also recovers campaigns whose runner died. Several
schedulers (one per `waha-tui run`, on any host) can share one database: the store's claim
decides who runs what, and a scheduler that loses a race moves on without a word.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.service import CampaignService
from waha_tui.store import ClaimLost


class Scheduler:
    def __init__(
        self,
        service: CampaignService,
        *,
        interval: float = 1.0,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
        on_error: Callable[[int, str], None] | None = None,
    ) -> None:
        self.service = service
        self.interval = interval
        self.spawn = spawn
        self.on_error = on_error
        self._reported: dict[int, str] = {}

    async def tick(self) -> list[int]:
        """One pass: recover lapsed runs, start what is due. Returns the ids started."""
        store, pool = self.service.store, self.service.pool
        await asyncio.to_thread(store.recover_interrupted)
        # Due, on a session no live lease holds, and not being claimed elsewhere right now.
        due = await asyncio.to_thread(store.claimable_campaigns)
        busy: set[str] = set()
        started: list[int] = []
        for camp in due:
            assert camp.id is not None
            if pool.is_running(camp.id) or camp.session in busy:
                continue
            try:
                await pool.start(camp.id, self.spawn)
            except ClaimLost:
                # Another runner took it, or its session, a moment ago: nothing to report.
                busy.add(camp.session)
                continue
            except UserError as exc:
                # Anything else (the database went away...): report once, retry later.
                if self.on_error and self._reported.get(camp.id) != str(exc):
                    self.on_error(camp.id, str(exc))
                self._reported[camp.id] = str(exc)
                continue
            busy.add(camp.session)
            started.append(camp.id)
        return started

    async def run(self, *, until_idle: bool = False, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        while not stop.is_set():
            started = await self.tick()
            if until_idle and not started and not self.service.pool.runs:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
