"""The campaigns this process runs: one run per campaign, one per WAHA session, and one
heartbeat (`LeaseKeeper`) renewing all their leases."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.models import Campaign
from waha_tui.runner.config import RunnerConfig, new_owner_id
from waha_tui.runner.ids import IdSupply, takes_ids
from waha_tui.runner.leases import LeaseKeeper
from waha_tui.runner.run import CampaignRun
from waha_tui.status import CampaignStatus
from waha_tui.stopping import IN_FLIGHT_GRACE
from waha_tui.store import Store
from waha_tui.waha import WahaClient

S = CampaignStatus
log = logging.getLogger(__name__)
# After a run is cancelled: time to mark what was in flight and write the pause.
CANCEL_GRACE = 2.0


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
        # One heartbeat for every run of this process: one write renews all their leases.
        self.leases = LeaseKeeper(store, self.owner, self.config)
        self.runs: dict[int, CampaignRun] = {}
        self.tasks: dict[int, asyncio.Future[ev.Ended]] = {}
        self.ended: dict[int, ev.Ended] = {}  # how each campaign's last run here ended
        # Set when a run's body is over, however it was spawned (a task, a Textual worker).
        self._done: dict[int, asyncio.Event] = {}
        # The task each run's body runs in (an asyncio task or a Textual worker's), to
        # abandon a send that outlives the stop's grace.
        self._body_tasks: dict[int, asyncio.Task[Any]] = {}

    def is_running(self, campaign_id: int) -> bool:
        return campaign_id in self.runs

    async def start(
        self,
        campaign_id: int,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
        *,
        session_checked: tuple[str, float] | None = None,
        ids: IdSupply | None = None,
    ) -> CampaignRun:
        """Claim and start; returns once the campaign is Running (or raises why not).

        `spawn` lets the dashboard run it as one of its workers; default: an asyncio task.
        `session_checked`: (session, when) the caller found that session WORKING, on the
        runner's clock; the run's first session check counts from then. `ids`: from
        `prefetch_ids`, the run's from here (stopped if it cannot start).
        """
        if campaign_id in self.runs:
            if ids is not None:
                ids.stop()
            raise UserError(f"campaign {campaign_id} is already running in this process")
        run = CampaignRun(
            self.store,
            self.client,
            campaign_id,
            owner=self.owner,
            config=self.config,
            publish=self.bus.publish,
            session_checked=session_checked,
            ids=ids,
            leases=self.leases,
        )
        self.runs[campaign_id] = run
        self.ended.pop(campaign_id, None)
        done = self._done[campaign_id] = asyncio.Event()

        async def body() -> ev.Ended:
            task = asyncio.current_task()
            if task is not None:
                self._body_tasks[campaign_id] = task
            try:
                return await run.run()
            finally:
                if run.end is not None:
                    self.ended[campaign_id] = run.end
                self.runs.pop(campaign_id, None)
                self.tasks.pop(campaign_id, None)
                self._body_tasks.pop(campaign_id, None)
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

    def prefetch_ids(self, camp: Campaign) -> IdSupply | None:
        """Start fetching a message id for a run of `camp` about to start, for `start`
        (None: its messages take none, or this WAHA hands out none). Nothing is stored or
        sent with it before the run's claim; unused, it is dropped."""
        session = camp.session
        if camp.sessions:  # several: each session's run fetches its own, after the claim
            return None
        if not takes_ids(camp) or self.client.message_ids(session) is False:
            return None
        ids = IdSupply(lambda: self.client.new_message_id(session), 1, session=session)
        ids.prime()
        return ids

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
        if task is not None:
            # Not `await task`: a run cancelled by a stop's grace still ended as recorded.
            await asyncio.wait([task])
        return self.ended.get(campaign_id)

    async def stop_all(self, reason: str, grace: float = IN_FLIGHT_GRACE) -> None:
        """Pause every run after its message in flight and await them. A run still busy
        after `grace` seconds (a send WAHA does not answer) is cancelled: the send is
        abandoned, its recipient left `sending` for the next resume to settle, and the
        campaign paused, all within CANCEL_GRACE more seconds."""
        waiting = {cid: self._done[cid] for cid in self.runs if cid in self._done}
        for run in list(self.runs.values()):
            run.request_stop(S.PAUSED, reason)
        if not waiting:
            return
        if await _all_set(waiting.values(), grace):
            return
        for cid, done in waiting.items():
            task = self._body_tasks.get(cid)
            if not done.is_set() and task is not None:
                log.warning(
                    "campaign %s: still busy %g s after the stop; abandoning its send in "
                    "flight (its fate is unknown: the next resume settles it)",
                    cid,
                    grace,
                )
                task.cancel()
        if not await _all_set(waiting.values(), CANCEL_GRACE):
            late = sorted(cid for cid, done in waiting.items() if not done.is_set())
            log.error(
                "campaigns %s did not stop in time; their leases lapse and they read as "
                "Paused (interrupted)",
                late,
            )


async def _all_set(events: Any, timeout: float) -> bool:
    """Whether every event is set within `timeout` seconds."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), timeout)
        return True
    return False
