"""Writes a run's outcomes in order, behind the sends where that is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from waha_tui.logs import caught
from waha_tui.models import Campaign
from waha_tui.store import CapReached, Outcome, SendCount, Store

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
WRITE_BEHIND = 0.05  # longest an outcome of a message with a stored id waits to be written
WRITE_BATCH = 64  # ... or until this many are waiting


@dataclass(frozen=True)
class Committed:
    """What one transaction made durable, and the campaign as it then was."""

    campaign: Campaign
    outcomes: Sequence[Outcome]
    reserved: Sequence[tuple[int, str]]  # (recipient id, message id) stored ahead


class ProgressWriter:
    """Outcomes of messages whose ids were stored ahead may wait up to WRITE_BEHIND seconds
    (or WRITE_BATCH outcomes) to share one transaction: a crash meanwhile leaves those ids
    stored, and a resume re-sends them with the same ids, which WhatsApp dedupes. Ids
    stored ahead (`reserve`) and a `sending` mark ride in the same transactions, with the
    texts picked for those recipients (durable before their messages leave). Each
    commit is handed to `on_commit`; the writer keeps none of the run's state."""

    def __init__(
        self,
        store: Store,
        campaign_id: int,
        *,
        owner: str,
        lease_seconds: float,
        on_commit: Callable[[Committed], None],
        on_error: Callable[[], None],
        counting: Callable[[], SendCount | None] = lambda: None,
        session: str | None = None,
        next_index: Callable[[Sequence[Outcome]], int | None] = lambda _: None,
    ) -> None:
        self.store, self.campaign_id = store, campaign_id
        self.owner, self.lease_seconds = owner, lease_seconds
        self.on_commit, self.on_error = on_commit, on_error
        # The number sends are counted against, and the time (None: not known yet).
        self.counting = counting
        # One session's run of a campaign with several: the session its recipients are
        # stored with, and the campaign's next_index given those outcomes (see lanes.py).
        self.session, self.next_index = session, next_index
        self._capped: CapReached | None = None  # the mark a cap refused
        self.queue: list[Outcome] = []
        self.reserve: list[tuple[int, str]] = []
        self.texts: dict[int, str] = {}  # recipient id -> its text, to store with its id or mark
        self.camp: Campaign | None = None  # the campaign as the last commit saw it
        self.error: Exception | None = None
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._mark: tuple[int, str | None] | None = None  # a `sending` mark to write
        self._marked: Campaign | None = None  # the campaign as the mark's transaction saw it

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def submit(self, outcome: Outcome) -> None:
        self.queue.append(outcome)
        if len(self.queue) >= WRITE_BATCH:
            self.kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WRITE_BEHIND, self.kick)

    def add_reservation(
        self,
        pairs: Sequence[tuple[int, str]],
        *,
        now: bool,
        texts: Mapping[int, str] | None = None,
    ) -> None:
        self.reserve.extend(pairs)
        self.texts.update(texts or {})
        if now:
            self.kick()

    def kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while (self.queue or self.reserve or self._mark) and self.error is None:
            outcomes, self.queue = self.queue, []
            reserve, self.reserve = self.reserve, []
            mark, self._mark = self._mark, None
            texts, self.texts = self.texts, {}
            try:
                camp = await self._db(
                    self.store.commit_progress,
                    self.campaign_id,
                    outcomes,
                    owner=self.owner,
                    lease_seconds=self.lease_seconds,
                    reserve=reserve,
                    sending=mark,
                    count=self.counting(),
                    texts=texts,
                    session=self.session,
                    next_index=self.next_index(outcomes),
                )
            except CapReached as capped:  # committed, all but the mark
                camp, self._capped = capped.campaign, capped
            except Exception as exc:  # the run stops at its next step and pauses
                caught(log, exc, f"campaign {self.campaign_id}: progress not written")
                self.error = exc
                self.on_error()
                return
            self.camp = camp
            if mark is not None:
                self._marked = camp
            self.on_commit(Committed(camp, outcomes, reserve))

    async def flush(
        self, sending: tuple[int, str | None] | None = None, *, text: str | None = None
    ) -> Campaign:
        """Wait until everything submitted is written; the campaign as it then is. With
        `sending`, that recipient is marked `sending` in the same transaction (only while
        the run still owns the campaign: see `Store.commit_progress`), with its `text`
        unless one is stored, and the campaign is as that transaction saw it; CapReached
        when the number's caps refused the mark (everything else was written)."""
        self._mark, self._marked, self._capped = sending, None, None
        if sending is not None and text is not None:
            self.texts[sending[0]] = text
        while self.error is None and (
            self.queue
            or self.reserve
            or self._mark
            or (self._task is not None and not self._task.done())
        ):
            self.kick()
            assert self._task is not None
            # Shielded: a cancelled run still gets its outcomes written.
            await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error
        if sending is not None:
            if self._capped is not None:
                raise self._capped
            assert self._marked is not None
            return self._marked
        if self.camp is None:
            self.camp = await self._db(self.store.get_campaign, self.campaign_id)
        return self.camp
