"""Starts Scheduled campaigns when they are due, one per WAHA session at a time.

Campaigns that came due while nothing was running start at the first tick (the reference
app's "missed" campaigns). Each tick also recovers campaigns whose runner died. Several
schedulers (one per `waha-tui run`, on any host) can share one database: the store's claim
decides who runs what, and a scheduler that loses a race moves on without a word.

A failing tick (the database locked, gone, full) never ends the loop: the scheduler backs
off, says it is impaired (`on_health`, the log), and goes on once the database answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.service import CampaignService
from waha_tui.spread import names_of, overlap
from waha_tui.store import ClaimLost

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        service: CampaignService,
        *,
        interval: float = 1.0,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
        on_error: Callable[[int, str], None] | None = None,
        on_health: Callable[[str | None], None] | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self.service = service
        self.interval = interval
        self.spawn = spawn
        self.on_error = on_error
        # Called with why scheduling is impaired, and with None once it works again.
        self.on_health = on_health
        self.max_backoff = max_backoff
        self.impaired: str | None = None
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
            sessions = names_of(camp.session, camp.sessions)
            if pool.is_running(camp.id) or overlap(sessions, busy):
                continue
            try:
                await pool.start(camp.id, self.spawn)
            except ClaimLost:
                # Another runner took it, or its session, a moment ago: nothing to report.
                busy.update(sessions)
                continue
            except UserError as exc:
                # Anything else (the database went away...): report once, retry later.
                if self._reported.get(camp.id) != str(exc):
                    log.warning("campaign %s: not started: %s", camp.id, exc)
                    if self.on_error:
                        self.on_error(camp.id, str(exc))
                self._reported[camp.id] = str(exc)
                continue
            busy.update(sessions)
            started.append(camp.id)
        return started

    async def run(self, *, until_idle: bool = False, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        failures = 0
        log.info(
            "scheduling the campaigns of %s (WAHA at %s) as runner %s",
            self.service.store.location,
            self.service.waha_url,
            self.service.pool.owner,
        )
        while not stop.is_set():
            # A run that ends while a tick looks may free its session for a campaign the
            # tick saw as busy: idle only after a tick that began with nothing running.
            busy_before = bool(self.service.pool.runs)
            try:
                started = await self.tick()
            except Exception as exc:  # one bad tick must not end scheduling for good
                failures += 1
                delay = min(self.interval * 2 ** min(failures, 16), self.max_backoff)
                if isinstance(exc, UserError):
                    log.warning("scheduling impaired: %s; next try in %g s", exc, delay)
                else:
                    log.exception("scheduling impaired by an unexpected error")
                self._health(f"scheduling impaired: {_one_line(exc)}; next try in {delay:g} s")
                await _wait(stop, delay)
                continue
            if failures:
                failures = 0
                log.info("scheduling works again")
                self._health(None)
            if until_idle and not started and not busy_before and not self.service.pool.runs:
                return
            await _wait(stop, self.interval)

    def _health(self, impaired: str | None) -> None:
        self.impaired = impaired
        if self.on_health:
            self.on_health(impaired)


def _one_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
