"""The campaigns this process runs: one run per campaign, one per WAHA session."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.runner.config import RunnerConfig, new_owner_id
from waha_tui.runner.run import CampaignRun
from waha_tui.status import CampaignStatus
from waha_tui.store import Store
from waha_tui.waha import WahaClient

S = CampaignStatus


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class RunnerPool:
    def __init__(
        self,
        store: Store,
        client: WahaClient,
        *,
        owner: str | None = None,
        config: RunnerConfig | None = None,
        bus: ev.EventBus | None = None,
    ) -> None:
        self.store, self.client = store, client
        self.owner = owner or new_owner_id()
        self.config = config or RunnerConfig.from_env()
        self.bus = bus or ev.EventBus()
        self.runs: dict[int, CampaignRun] = {}
        self.tasks: dict[int, asyncio.Future[ev.Ended]] = {}
        self.ended: dict[int, ev.Ended] = {}  # how each campaign's last run here ended
        # Set when a run's body is over, however it was spawned (a task, a Textual worker).
        self._done: dict[int, asyncio.Event] = {}

    def is_running(self, campaign_id: int) -> bool:
        return campaign_id in self.runs

    async def start(
        self,
        campaign_id: int,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
    ) -> CampaignRun:
        """Claim and start; returns once the campaign is Running (or raises why not).

        `spawn` lets the dashboard run it as one of its workers; default: an asyncio task.
        """
        if campaign_id in self.runs:
            raise UserError(f"campaign {campaign_id} is already running in this process")
        run = CampaignRun(
            self.store,
            self.client,
            campaign_id,
            owner=self.owner,
            config=self.config,
            publish=self.bus.publish,
        )
        self.runs[campaign_id] = run
        self.ended.pop(campaign_id, None)
        done = self._done[campaign_id] = asyncio.Event()

        async def body() -> ev.Ended:
            try:
                end = await run.run()
                self.ended[campaign_id] = end
                return end
            finally:
                self.runs.pop(campaign_id, None)
                self.tasks.pop(campaign_id, None)
                done.set()

        handle = (spawn or asyncio.ensure_future)(body())
        if isinstance(handle, asyncio.Future):
            self.tasks[campaign_id] = handle
        try:
            await asyncio.shield(run.started)
        except BaseException:
            self.runs.pop(campaign_id, None)
            if isinstance(handle, asyncio.Future):
                # The caller gets the error here; asyncio must not also log it with a traceback.
                handle.add_done_callback(_retrieve)
            raise
        return run

    def request_stop(self, campaign_id: int, status: CampaignStatus, reason: str) -> bool:
        run = self.runs.get(campaign_id)
        if run is None:
            return False
        run.request_stop(status, reason)
        return True

    async def wait(self, campaign_id: int) -> ev.Ended | None:
        """How the run ends; also after it already ended (a run can end before `start`
        returns to its caller, e.g. at once on a missing image)."""
        task = self.tasks.get(campaign_id)
        return await task if task else self.ended.get(campaign_id)

    async def stop_all(self, reason: str, timeout: float = 40.0) -> None:
        """Pause every run after its message in flight, and await them (at most
        `timeout` seconds)."""
        waiting = [self._done[cid].wait() for cid in self.runs if cid in self._done]
        for run in list(self.runs.values()):
            run.request_stop(S.PAUSED, reason)
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waiting), timeout)
