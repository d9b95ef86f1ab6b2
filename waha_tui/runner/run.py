"""One run of one campaign: its recipients in order, durably, with pacing.

Knows nothing of screens: progress goes out as `events`. Database calls run in a worker
thread so a busy database never blocks the event loop the dashboard draws from. What each
failure means is `policy`'s call; this module only carries the verdicts out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ParamSpec, TypeVar

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.media import Media, MediaError, load_image
from waha_tui.models import Campaign, Recipient, utcnow
from waha_tui.pacing import CapHit, Pacing, SendWindow
from waha_tui.render import RenderError
from waha_tui.runner.config import RunnerConfig
from waha_tui.runner.ids import IdSupply, takes_ids
from waha_tui.runner.lanes import Board, about
from waha_tui.runner.leases import LeaseKeeper
from waha_tui.runner.policy import (
    FailRecipient,
    Kind,
    Op,
    Pause,
    Proceed,
    Retry,
    Unknown,
    Verdict,
    after_session_check,
    decide,
    session_verdict,
)
from waha_tui.runner.writer import Committed, ProgressWriter
from waha_tui.spread import Spread
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Busy, CapReached, Claimed, Outcome, SendCount, Store, StoreError
from waha_tui.variants import CampaignTexts
from waha_tui.waha import SendResult, SessionInfo, SessionMissing, WahaClient, WahaError

log = logging.getLogger(__name__)
T = TypeVar("T")
P = ParamSpec("P")
S = CampaignStatus
RS = RecipientStatus
BATCH = 500
FIRST_BATCH = 32  # recipients read before the first message of a run
CLAIM_HOLD = 1.0  # seconds a claim waits for this process's background write first
SETTLED = frozenset({RS.SENT, RS.FAILED, RS.UNKNOWN, RS.SKIPPED})
TAKEN_OVER = "taken over by another runner"
# Why a recipient is skipped (its error): it never gets a message.
OPTED_OUT = "opted out"
NOT_ON_WHATSAPP = "not on WhatsApp"
COUNTDOWN_FROM = 1.0  # seconds: a shorter wait is not worth a write for the countdown


class _Stop(Exception):
    """Ends the loop: the campaign leaves Running with this status and reason."""

    def __init__(self, status: CampaignStatus, reason: str | None = None) -> None:
        super().__init__(reason or status)
        self.status, self.reason = status, reason


class _StoppedElsewhere(Exception):
    """Someone else (CLI, another dashboard, another runner) moved the campaign out of
    this run's hands."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass
class _Attempt:
    """How sending one message went."""

    maybe_sent: bool  # some attempt may have gone out
    sent: SendResult | None = None
    verdict: Verdict | None = None  # why it was not sent
    stopped: BaseException | None = None  # a stop that came during a retry's wait
    on_wire: bool = False  # a request is out right now


@dataclass(frozen=True)
class _Lane:
    """This run is one session's share of a campaign sending through several (lanes.py):
    started by `parent`, the campaign's run, which holds the claim and writes its end."""

    parent: CampaignRun
    session: str
    board: Board


@dataclass
class _InFlight:
    """The recipient whose message is being delivered."""

    rec: Recipient
    message_id: str | None
    pipelined: bool  # its id was stored ahead, with no `sending` mark
    attempt: _Attempt


class CampaignRun:
    """One run of one campaign, from claim to Completed, Paused, Cancelled or Failed."""

    def __init__(
        self,
        store: Store,
        client: WahaClient,
        campaign_id: int,
        *,
        owner: str,
        config: RunnerConfig,
        publish: ev.EventSink,
        session_checked: tuple[str, float] | None = None,
        ids: IdSupply | None = None,
        leases: LeaseKeeper | None = None,
        lane: _Lane | None = None,
    ) -> None:
        self.store, self.client, self.campaign_id = store, client, campaign_id
        self._lane = lane
        self._cancelled = False  # its task was cancelled (the process stopping)
        self._lanes: list[CampaignRun] = []  # a campaign with several sessions: its lanes
        # The process's heartbeat (RunnerPool's, shared by its runs), or one of its own.
        self.leases = leases or LeaseKeeper(store, owner, config)
        self.owner, self.config, self.publish = owner, config, publish
        self.wake = asyncio.Event()
        self.stop_request: tuple[CampaignStatus, str] | None = None
        self.started = asyncio.get_running_loop().create_future()
        self.end: ev.Ended | None = None  # how the run ended, also when it was cancelled
        self.session = lane.session if lane is not None else ""
        self._last_session_check = -1e18
        self._session_checked = session_checked  # by the caller, just before the claim
        self._processed_in_run = 0
        self._image: Media | None = None
        self._ids: IdSupply | None = ids  # fetched before the claim, for its session
        self._writer = ProgressWriter(
            store,
            campaign_id,
            owner=owner,
            lease_seconds=config.lease_seconds,
            on_commit=self._committed,
            on_error=self.wake.set,
            counting=self._send_count,
            session=lane.session if lane is not None else None,
            next_index=(
                partial(lane.board.next_index, lane.session) if lane is not None else lambda _: None
            ),
        )
        # Whether the number this run sends from has caps (read with each session check):
        # then every message is reserved in a transaction of its own before it leaves,
        # where the store counts and checks it, and none goes out on an id stored ahead.
        self._capped = False
        self._no_number_said = False
        self._cap_reason: str | None = None  # the cap this run waits at, as stored
        self._elsewhere: str | None = None  # a status set by another process, seen late
        # The message being delivered, for a stop that abandons it.
        self._in_flight: _InFlight | None = None
        # The numbers of the batch in hand that are on the opt-out list, read when (clock).
        self._optout: set[str] = set()
        self._optout_at = -1e18
        # The last recipient asked something of WhatsApp (a send, a lookup): the pacing
        # delay is due before the next one. An opted-out one asked nothing.
        self._owe_wait = False
        self._texts: CampaignTexts | None = None  # the campaign's texts, parsed once

    def request_stop(self, status: CampaignStatus, reason: str) -> None:
        """Pause or cancel: takes effect after the message in flight, or at once in a wait."""
        if self.stop_request is None:
            self.stop_request = (status, reason)
        self.wake.set()
        for lane in self._lanes:
            lane.request_stop(status, reason)

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _short_read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A short indexed read on the way to a message (the number's caps, a first
        batch's opt-outs): on SQLite in the loop, as a WAL read waits for no writer and
        costs less than the thread hop (two such hops sat between a resume's claim and
        its first message); where reads may wait on the network (PostgreSQL), in a thread."""
        if self.store.reads_block:
            return await self._db(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> ev.Ended:
        try:
            # An id fetched before the claim (`RunnerPool.prefetch_ids`, while the resume
            # checked the session) is stored in the claim's transaction for the first
            # recipient, if the rules let it take one; unused, it is dropped. The first
            # message needs an id before it leaves anyway: waiting for it here costs nothing.
            early = await self._early_id()
            pick = partial(self._first_reservation, early) if early else None
            claimed = await self._claim(pick)
        except BaseException as exc:
            if self._ids is not None:
                self._ids.stop()
            if not self.started.done():
                self.started.set_exception(exc)
            raise
        camp, first = claimed.campaign, claimed.recipients
        if claimed.reserved is not None:
            assert self._ids is not None
            self._ids.committed([claimed.reserved])
        self.session = camp.session
        if self._session_checked is not None and self._session_checked[0] == camp.session:
            # The resume found it WORKING a moment ago: not asked again before the first
            # message, only after session_check_interval, as between messages.
            self._last_session_check = self._session_checked[1]
        self.started.set_result(camp)
        self.publish(ev.Started(self.campaign_id, camp.total, camp.next_index))
        self.leases.join(self.campaign_id, self._lost)
        try:
            spread = Spread.of(camp)
            end = await self._guarded(
                self._run_lanes(camp, spread) if spread.multi else self._loop(camp, first)
            )
        finally:
            self.leases.leave(self.campaign_id)
            if self._ids is not None:
                self._ids.stop()
        self.end = end
        self.publish(end)
        return end

    async def _guarded(self, work: Coroutine[Any, Any, ev.Ended]) -> ev.Ended:
        """Run `work` to the run's end, and turn however it stopped into that end."""
        try:
            return await work
        except _Stop as stop:
            return await self._finish(stop.status, stop.reason)
        except _StoppedElsewhere as other:
            return await self._given_up(other.status)
        except StoreError as exc:
            verdict = decide(Op.STORE, exc, session=self.session)
            assert isinstance(verdict, Pause)
            return await self._finish(S.PAUSED, verdict.reason)
        except asyncio.CancelledError:
            # The task itself was cancelled (the process stopping, a send abandoned after
            # the stop's grace): leave it resumable.
            reason = self.stop_request[1] if self.stop_request else None
            self._cancelled = True
            self.end = await asyncio.shield(
                self._abandoned(reason or "stopped: the program running it exited")
            )
            if self._lane is None:
                self.publish(self.end)
            raise
        except Exception as exc:
            log.exception("campaign %s: unexpected error", self.campaign_id)
            return await self._finish(S.FAILED, None, error=f"unexpected error: {exc}")

    # -- several sessions --------------------------------------------------------------

    async def _run_lanes(self, camp: Campaign, spread: Spread) -> ev.Ended:
        """A run per session over its share, under this run's claim; the campaign's end
        once they all stopped: Completed when every share is settled, else Paused with
        why each share that is left waits."""
        if self._ids is not None:  # ids are a session's: each lane fetches its own
            self._ids.stop()
            self._ids = None
        board = Board(spread, camp.next_index, camp.total)
        self._lanes = [
            CampaignRun(
                self.store,
                self.client,
                self.campaign_id,
                owner=self.owner,
                config=self.config,
                publish=self.publish,
                leases=self.leases,
                lane=_Lane(self, name, board),
            )
            for name in spread.names
        ]
        log.info("campaign %s: sending through sessions %s", self.campaign_id, spread.text())
        tasks = [asyncio.ensure_future(lane._guarded(lane._loop(camp))) for lane in self._lanes]
        try:
            ends = await asyncio.gather(*tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()  # each leaves its message in flight resumable
            await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))
            raise
        if self.stop_request is not None:
            return await self._finish(*self.stop_request)
        if self._elsewhere is not None:
            return await self._given_up(self._elsewhere)
        failed = [e for e in ends if isinstance(e, ev.Failed)]
        if failed:
            return await self._finish(S.FAILED, None, error=failed[0].error)
        left = [
            (lane.session, e.reason)
            for lane, e in zip(self._lanes, ends, strict=True)
            if isinstance(e, ev.Paused)
        ]
        if not left:
            return await self._finish(S.COMPLETED)
        reason = "; ".join(about(name, why) for name, why in left)
        if len(left) < len(ends):
            reason += " (the other sessions' recipients are done)"
        return await self._finish(S.PAUSED, reason)

    def _mine(self, rec: Recipient) -> bool:
        """Whether `rec` is this run's to send: every one, or its session's share."""
        if self._lane is None:
            return True
        return (rec.session or self._lane.board.spread.session_of(rec.position)) == self.session

    async def _set_waiting(self, reason: str | None) -> None:
        """What the campaign waits for (None: nothing), stored for every host's dashboard
        and published; a lane's wait joins its siblings' in the campaign's one line."""
        line = reason
        if self._lane is not None:
            line = self._lane.board.wait(self.session, reason)
        await self._db(self.store.set_waiting, self.campaign_id, self.owner, line)
        if line is not None:
            self.publish(ev.Waiting(self.campaign_id, line))

    async def _set_next_send(self, at: datetime) -> None:
        """When the next message is due; a campaign with several sessions: its earliest."""
        due: datetime | None = at
        if self._lane is not None:
            due = self._lane.board.next_send(self.session, at, utcnow())
        if due is not None:
            await self._db(self.store.set_next_send, self.campaign_id, self.owner, due)

    async def _claim(
        self,
        pick: Callable[[Campaign, list[Recipient]], tuple[int, str, str | None] | None] | None,
    ) -> Claimed:
        claim = partial(
            self.store.claim_and_read,
            self.campaign_id,
            self.owner,
            self.config.lease_seconds,
            read=FIRST_BATCH,
            reserve=pick,
        )
        if not self.store.reads_block:
            # SQLite: in the loop when the write lock is free (a few statements, a
            # millisecond or two; a thread hop each way cost more under load), without
            # waiting for it; else in a thread, waiting as any write does.
            with contextlib.suppress(Busy):
                return claim(wait=False)
            # Most likely this process's WAHA events writer holds the lock: the claim goes
            # the moment it is done, rather than when SQLite's busy handler looks again.
            return await self._db(self._claim_after_background, claim)
        return await self._db(claim)

    def _claim_after_background(self, claim: Callable[[], Claimed]) -> Claimed:
        self.store.background_done(CLAIM_HOLD)
        return claim()

    async def _early_id(self) -> str | None:
        if self._ids is None:
            return None
        try:
            return (await self._ids.take(1))[0]
        except Exception:  # met again when the first id is taken, where the policy decides
            return None

    def _first_reservation(
        self, message_id: str, camp: Campaign, recipients: list[Recipient]
    ) -> tuple[int, str, str | None] | None:
        """In the claim's transaction: which recipient `message_id` is stored for, if any,
        with its text. The first one `_process` will send, when it would store an id
        before sending it: pending with no id of its own, in a text campaign on the id's
        session, its message rendering."""
        assert self._ids is not None
        if not takes_ids(camp) or camp.session != self._ids.session or camp.sessions:
            return None
        rec = next((r for r in recipients if r.status not in SETTLED), None)
        if rec is None or rec.id is None or rec.status != RS.PENDING or rec.message_id:
            return None
        try:
            text = self._text_of(camp, rec)
        except RenderError:
            return None  # it fails without an id
        return rec.id, message_id, text

    def _text_of(self, camp: Campaign, rec: Recipient) -> str:
        """The recipient's text: the one stored, else its stable pick, rendered (which a
        re-send of it picks again alike). RenderError when a value is missing."""
        if self._texts is None:
            self._texts = CampaignTexts.of_campaign(camp)
        return self._texts.text_of(camp, rec)

    def _texts_of(self, camp: Campaign, recipients: list[Recipient]) -> dict[int, str]:
        """The texts of recipients about to get an id stored: stored with it. One that
        does not render gets none (it fails on its turn, unsent)."""
        texts: dict[int, str] = {}
        for rec in recipients:
            if rec.id is not None and rec.text is None:
                with contextlib.suppress(RenderError):
                    texts[rec.id] = self._text_of(camp, rec)
        return texts

    async def _loop(self, camp: Campaign, read: list[Recipient] | None = None) -> ev.Ended:
        pacing = Pacing.of(camp)
        if camp.image_path or camp.image_sha256:
            self._image = await self._load_image(camp)
        position = camp.next_index
        if self._ids is not None and (self._image or self._ids.session != self.session):
            assert not self._ids.reserved  # `_first_reservation` stored none for these
            self._ids.stop()  # sendImage takes no pre-generated id; ids are per session
            self._ids = None
        if self._ids is not None:
            self._ids.want(camp.total - position)  # fetching since before the claim
        else:
            self._ids = IdSupply(
                lambda: self.client.new_message_id(self.session), camp.total - position
            )
            if not self._image and self.client.message_ids(self.session) is not False:
                # On its way while the session is checked: nothing is stored or sent
                # before it is used.
                self._ids.prime()
        # A missing or unusable session pauses the campaign before any recipient is touched
        # (a lane's is asked before its first message: a session with nothing left to send
        # holds nothing back).
        if self._lane is None:
            await self._check_session()
        await self._read_caps()
        first = True
        while True:
            if first and read is not None:
                batch, read = read, None
            else:
                # A short first read: the first message waits for it (building 500 rows
                # takes milliseconds); later batches go while messages are in flight.
                limit = FIRST_BATCH if first else BATCH
                batch = await self._db(
                    self.store.recipients, self.campaign_id, start=position, limit=limit
                )
            if not batch:
                break
            end = batch[-1].position + 1
            if self._lane is not None:
                # Its own share only: the others' are their lanes' (no wait, no id, no look).
                batch = [rec for rec in batch if self._mine(rec)]
            await self._read_optouts(batch)
            for i, rec in enumerate(batch):
                if rec.position != position and self._lane is None:
                    raise UserError(f"recipient {position + 1} is missing")
                if rec.status in SETTLED:
                    # Settled earlier (before a retry moved next_index back): never re-sent,
                    # and no wait is spent on it.
                    position = rec.position + 1
                    continue
                if self._owe_wait:
                    await self._pause_between(pacing)
                first = False
                self._check_stop()
                if self.config.clock.monotonic() - self._optout_at >= self.config.optout_refresh:
                    await self._read_optouts(batch[i:])  # a long batch: read the rest again
                camp = await self._process(camp, rec, pacing, batch[i:])
                position = rec.position + 1
            position = end
        return await self._finish(S.COMPLETED)

    def _check_stop(self) -> None:
        if self.stop_request:
            raise _Stop(*self.stop_request)
        if self._writer.error is not None:
            raise self._writer.error
        if self._elsewhere is not None:
            raise _StoppedElsewhere(self._elsewhere)

    async def _read_optouts(self, recipients: list[Recipient]) -> None:
        """Which of these recipients' numbers are on the opt-out list: one query for a
        batch, never one per recipient."""
        phones = [r.phone for r in recipients if r.status not in SETTLED]
        if not phones:
            self._optout = set()
        elif len(phones) <= FIRST_BATCH:
            self._optout = await self._short_read(self.store.opted_out, phones)
        else:
            self._optout = await self._db(self.store.opted_out, phones)
        self._optout_at = self.config.clock.monotonic()

    async def _pause_between(self, pacing: Pacing, *, lookup: bool = False) -> None:
        """The pacing delay: after a recipient's message (with the long breaks), or after
        a number lookup before its message (`lookup`: WhatsApp counts those too)."""
        rng = self.config.rng
        delay = pacing.gap(rng) if lookup else pacing.delay_after(self._processed_in_run, rng)
        if delay >= COUNTDOWN_FROM:
            # Stored, so every host's dashboard counts down to the next message.
            due = utcnow() + timedelta(seconds=delay)
            await self._set_next_send(due)
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """A wait that ends at once on a pause request, and on a pause, cancel or takeover
        the process's heartbeat (`LeaseKeeper`) sees set elsewhere: it reads every run's
        campaign each poll_interval and renews the leases, so the wait itself touches the
        database only once, when it is over."""
        clock = self.config.clock
        end = clock.monotonic() + seconds
        while True:
            self._check_stop()
            remaining = end - clock.monotonic()
            if remaining <= 0:
                break
            await clock.wait(remaining, self.wake)
        if seconds > 0:
            # A message whose id was stored ahead has no transaction of its own before it
            # goes out: a pause set elsewhere since the heartbeat's last read is looked for
            # here (a read: the heartbeat renews the lease).
            await self._still_ours()
        # No wait: the writer's transactions report a pause set elsewhere.

    async def _still_ours(self) -> None:
        """A cheap read of the campaign's status and owner. On SQLite it runs on the loop:
        a WAL read by primary key waits for no writer and costs less than a thread hop,
        which would cost the runner a tenth of its speed."""
        if self.store.reads_block:
            status, owner = await self._db(self.store.status_and_owner, self.campaign_id)
        else:
            status, owner = self.store.status_and_owner(self.campaign_id)
        if status != S.RUNNING or owner != self.owner:
            raise _StoppedElsewhere(status)

    def _lost(self, status: str) -> None:
        """The heartbeat found the campaign paused, cancelled or taken over elsewhere: the
        run stops before its next send (at once in a wait)."""
        if self._elsewhere is None:
            self._elsewhere = status
            self.wake.set()
        for lane in self._lanes:
            lane._lost(status)

    # -- what WAHA says ----------------------------------------------------------------

    def _decide(self, op: Op, exc: BaseException, tries: Counter[Kind]) -> Verdict:
        return decide(
            op,
            exc,
            session=self.session,
            tries=tries,
            budget=self.config.budget,
            waha_url=self.client.base_url,
        )

    async def _ask_session(self, op: Op, first: Pause, exc: WahaError) -> Verdict:
        """The policy's follow-up question: what does WAHA say of the session itself?"""
        try:
            info: SessionInfo | None = await self.client.get_session(self.session)
        except SessionMissing:
            info = None
        except WahaError:
            return first
        return after_session_check(op, first, exc, info, budget=self.config.budget)

    async def _verdict(self, op: Op, exc: WahaError, tries: Counter[Kind]) -> Verdict:
        verdict = self._decide(op, exc, tries)
        if isinstance(verdict, Pause) and verdict.ask_session:
            verdict = await self._ask_session(op, verdict, exc)
        return verdict

    async def _wait(self, retry: Retry, tries: Counter[Kind]) -> None:
        """Wait out a Retry (raises _Stop when it turns into a pause)."""
        tries[retry.kind] += 1
        log.info(
            "campaign %s: retry %s in %g s: %s",
            self.campaign_id,
            retry.kind,
            retry.after,
            retry.reason,
        )
        if retry.kind == Kind.SESSION:
            await self._wait_for_session(retry)
        else:
            await self._sleep(retry.after)

    async def _wait_for_session(self, retry: Retry) -> None:
        """Poll the session until it is WORKING again, for at most the session grace; the
        wait is stored on the campaign, so every dashboard and `campaign show` see it."""
        clock = self.config.clock
        since = clock.monotonic()
        await self._set_waiting(retry.reason)
        tries: Counter[Kind] = Counter()
        verdict: Verdict = retry
        try:
            while True:
                await self._sleep(verdict.after if isinstance(verdict, Retry) else retry.after)
                try:
                    info = await self.client.get_session(self.session)
                except WahaError as exc:
                    verdict = self._decide(Op.SESSION, exc, tries)
                    if isinstance(verdict, Retry):
                        tries[verdict.kind] += 1
                        continue
                else:
                    verdict = session_verdict(
                        self.session,
                        info.status,
                        waited=clock.monotonic() - since,
                        budget=self.config.budget,
                    )
                if isinstance(verdict, Proceed):
                    log.info("campaign %s: session '%s' is back", self.campaign_id, self.session)
                    return
                if isinstance(verdict, Pause):
                    raise _Stop(S.PAUSED, verdict.reason)
        finally:
            with contextlib.suppress(StoreError):
                await asyncio.shield(self._set_waiting(None))

    async def _wait_for_window(self, window: SendWindow | None) -> None:
        """Outside the campaign's send window, wait (in order: the next recipient stays
        next) until it opens. The campaign stays Running; what it waits for and until when
        is stored for every host's dashboard, and the history records it once per wait."""
        if window is None:
            return
        clock = self.config.clock
        said: str | None = None
        try:
            while True:
                now = clock.wall()
                opens = window.opens_at(now)
                if opens is None:
                    break
                if said is None:
                    said = window.waiting_for(opens, now)
                    log.info("campaign %s: %s", self.campaign_id, said)
                    await self._set_next_send(opens)
                    await self._set_waiting(said)
                # Waited (the process's heartbeat renews the lease and looks for a pause
                # meanwhile), then the wall clock is read again: a clock set meanwhile
                # moves the opening, and the wait goes on until it.
                await self._sleep(max((opens - now).total_seconds(), 0.0))
        finally:
            if said is not None:
                log.info("campaign %s: its send window is open", self.campaign_id)
                with contextlib.suppress(StoreError):
                    await asyncio.shield(self._set_waiting(None))

    async def _check_session(self) -> None:
        """Is the session WORKING? Asked before the first message and then every
        session_check_interval; a flapping session is waited for."""
        now = self.config.clock.monotonic()
        if now - self._last_session_check < self.config.session_check_interval:
            return
        tries: Counter[Kind] = Counter()
        while True:
            try:
                info = await self.client.get_session(self.session)
            except WahaError as exc:
                verdict = await self._verdict(Op.SESSION, exc, tries)
            else:
                verdict = session_verdict(
                    self.session, info.status, waited=0.0, budget=self.config.budget
                )
            if isinstance(verdict, Retry):
                await self._wait(verdict, tries)
                if verdict.kind == Kind.SESSION:
                    break  # it came back
                continue
            if isinstance(verdict, Pause):
                raise _Stop(S.PAUSED, verdict.reason)
            break
        self._last_session_check = self.config.clock.monotonic()
        await self._read_caps()

    # -- the number's caps -------------------------------------------------------------

    def _send_count(self) -> SendCount | None:
        """The number this run's messages are counted against, and now; None while the
        session has shown no number (no `me`): such sends are neither counted nor capped."""
        number = self.client.number(self.session)
        return SendCount(number, self.config.clock.wall()) if number else None

    async def _read_caps(self) -> None:
        number = self.client.number(self.session)
        if number is None:
            if not self._no_number_said:
                self._no_number_said = True
                log.warning(
                    "campaign %s: session '%s' shows no number (no `me` from WAHA): its "
                    "messages are not counted against any number's caps",
                    self.campaign_id,
                    self.session,
                )
            self._capped = False
            return
        self._capped = bool(await self._short_read(self.store.number_caps, number))

    async def _reserve_send(self, rec: Recipient, message_id: str | None, text: str) -> Campaign:
        """Mark `rec` sending (with the previous outcomes, renewing the lease, its `text`
        unless one is stored): the send reserved from its number, counted and checked
        against its caps in that one transaction. At a cap the campaign waits, Running,
        until the cap lifts."""
        assert rec.id is not None
        while True:
            try:
                now = await self._writer.flush(sending=(rec.id, message_id), text=text)
            except CapReached as capped:
                if not self._ours(capped.campaign):
                    raise _StoppedElsewhere(capped.campaign.status) from None
                self._capped = True  # caps set since the last look: no more sends ahead
                await self._wait_for_cap(capped.hit)
                continue
            if self._cap_reason is not None:
                self._cap_reason = None
                log.info("campaign %s: the cap lifted, sending again", self.campaign_id)
                with contextlib.suppress(StoreError):
                    await self._set_waiting(None)
            return now

    async def _wait_for_cap(self, hit: CapHit) -> None:
        """Wait until the cap lifts (its hour or day is over), looking again every
        cap_recheck seconds for a cap raised meanwhile. Stored and recorded in the history
        once per cap reached; the process's heartbeat renews the lease meanwhile."""
        reason = hit.reason()
        if reason != self._cap_reason:
            self._cap_reason = reason
            log.info("campaign %s waits: %s", self.campaign_id, reason)
            await self._set_waiting(reason)
            await self._set_next_send(hit.until)
        left = (hit.until - self.config.clock.wall()).total_seconds()
        await self._sleep(min(max(left, 0.0), self.config.cap_recheck))

    # -- one recipient -----------------------------------------------------------------

    async def _process(
        self, camp: Campaign, rec: Recipient, pacing: Pacing, upcoming: list[Recipient]
    ) -> Campaign:
        assert rec.id is not None and self._ids is not None
        self._owe_wait = True
        resend_id: str | None = None
        ahead = self._ids.reserved.get(rec.id)
        if ahead is None and rec.id in self._ids.reserving:
            await self._writer.flush()
            ahead = self._ids.reserved.get(rec.id)
        opted_out = rec.phone in self._optout
        if ahead is None and (rec.status == RS.SENDING or rec.message_id):
            # Caught in flight by a crash (`sending`, or an id stored ahead whose outcome
            # was not written yet), or an unknown one queued again: it may have gone out.
            # An image cannot be re-sent with its id; a number that opted out since is not
            # written to again.
            if not rec.message_id or self._image or opted_out:
                why = "interrupted while sending; it may have been delivered"
                if opted_out:
                    why += f" ({OPTED_OUT} since: not re-sent)"
                return await self._record(rec, RS.UNKNOWN, error=why)
            resend_id = rec.message_id  # same id: WhatsApp dedupes it
        elif opted_out:
            self._owe_wait = False  # nothing was asked of WhatsApp
            return await self._skip(rec, OPTED_OUT)
        await self._wait_for_window(pacing.window)
        await self._check_session()
        try:
            text = self._text_of(camp, rec)
        except RenderError as exc:
            verdict: Verdict | None = self._decide(Op.SEND, exc, Counter())
            assert isinstance(verdict, FailRecipient)
            return self._after_failure(await self._record(rec, RS.FAILED, error=verdict.reason))
        if camp.check_numbers and resend_id is None and rec.checked_at is None:
            # Before its first message (a resume does not ask again: checked_at).
            found = await self._check_number(rec)
            if found is None:
                return await self._skip(rec, NOT_ON_WHATSAPP)
            if isinstance(found, FailRecipient):
                await self._drop_reserved(rec)
                return self._after_failure(await self._record(rec, RS.FAILED, error=found.reason))
            # As stored: the rows are built without validation, so copied the same way.
            fields = {name: getattr(rec, name) for name in Recipient.model_fields}
            rec = Recipient.model_construct(**{**fields, "chat_id": found, "checked_at": utcnow()})
            await self._pause_between(pacing, lookup=True)
            self._check_stop()
            await self._wait_for_window(pacing.window)  # the lookup's delay may end outside
        assert rec.id is not None
        # sendImage takes no pre-generated id (WAHA's OpenAPI): a retry could not be deduped.
        message_id = resend_id or ahead
        if message_id is None and not self._image:
            message_id = await self._reserve_ids(camp, upcoming)
        # Pipelined: its id is already durable, so its outcome may be written behind the
        # next sends; a crash before that leaves the id stored and a resume re-sends it
        # with that id, which WhatsApp dedupes.
        pipelined = message_id is not None and resend_id is None and not self._capped
        typing = pacing.typing_seconds(text, self.config.rng)
        if typing:
            await self._typing(rec, typing)
        if pipelined:
            self._check_stop()
            self._top_up(camp, upcoming[1:])
            # No transaction of its own before it leaves: a pause or cancel another process
            # committed since the last look must still stop it ("paused" means nothing
            # more goes out).
            await self._still_ours()
        else:
            # Only now: a pause during typing must leave it pending, as nothing was sent.
            # The same transaction sees a pause or cancel set by another process, and
            # renews the lease. The previous outcome rides in this transaction.
            # Its text rides in it too (unless stored): durable before the message leaves.
            now = await self._reserve_send(rec, message_id, text)
            if not self._ours(now):
                raise _StoppedElsewhere(now.status)
        self._ids.use(rec.id)
        # Not cleared on cancellation: `_abandoned` reads it.
        self._in_flight = _InFlight(rec, message_id, pipelined, _Attempt(resend_id is not None))
        attempt = await self._deliver(rec, text, message_id, self._in_flight.attempt)
        self._in_flight = None
        if attempt.sent is not None:
            # Written behind: with the next message's `sending` mark, or within WRITE_BEHIND.
            sent_id = attempt.sent.message_id or message_id
            self._submit(rec, RS.SENT, message_id=sent_id, attempted=pipelined)
            return camp
        verdict = attempt.verdict
        if attempt.stopped is not None or isinstance(verdict, Pause):
            await self._leave_unsent(rec, message_id, pipelined, attempt.maybe_sent)
            if attempt.stopped is not None:
                raise attempt.stopped
            assert isinstance(verdict, Pause)
            raise _Stop(S.PAUSED, verdict.reason)
        if isinstance(verdict, FailRecipient) and not attempt.maybe_sent:
            log.warning(
                "campaign %s: recipient %s failed: %s",
                self.campaign_id,
                rec.position + 1,  # positions for people count from 1
                verdict.reason,
            )
            camp = await self._record(rec, RS.FAILED, error=verdict.reason, attempted=pipelined)
        else:
            assert isinstance(verdict, FailRecipient | Unknown)
            reason = verdict.reason
            if isinstance(verdict, FailRecipient):
                # An earlier attempt may have gone out: reporting it failed invites a re-send.
                reason = (
                    f"{reason} after an unconfirmed attempt; it may have been delivered, so "
                    "it is not re-sent automatically"
                )
            log.warning(
                "campaign %s: recipient %s unknown: %s", self.campaign_id, rec.position + 1, reason
            )
            camp = await self._record(rec, RS.UNKNOWN, error=reason, attempted=pipelined)
        return self._after_failure(camp)

    async def _check_number(self, rec: Recipient) -> str | FailRecipient | None:
        """Is the recipient's number on WhatsApp? Its chat id as WhatsApp answered it
        (stored on the recipient before its message leaves), None when it is not, or why
        this recipient fails. WAHA's errors get the policy's verdicts, as a send's do; a
        pause ends the run with the recipient untouched."""
        assert rec.id is not None
        tries: Counter[Kind] = Counter()
        digits = rec.phone
        while True:
            try:
                exists, chat_id = await self.client.check_exists(self.session, digits)
                break
            except WahaError as exc:
                verdict = await self._verdict(Op.CHECK, exc, tries)
            if isinstance(verdict, Retry):
                await self._wait(verdict, tries)
                continue
            if isinstance(verdict, FailRecipient):
                log.warning(
                    "campaign %s: recipient %s failed its number check: %s",
                    self.campaign_id,
                    rec.position + 1,
                    verdict.reason,
                )
                return verdict
            assert isinstance(verdict, Pause), verdict  # a check is never ambiguous
            raise _Stop(S.PAUSED, verdict.reason)
        if not exists:
            log.info(
                "campaign %s: recipient %s is not on WhatsApp: skipped",
                self.campaign_id,
                rec.position + 1,
            )
            return None
        chat_id = chat_id if isinstance(chat_id, str) and chat_id else rec.chat_id
        if chat_id != rec.chat_id:
            log.info(
                "campaign %s: recipient %s is %s on WhatsApp",
                self.campaign_id,
                rec.position + 1,
                chat_id,
            )
        await self._db(self.store.set_checked, rec.id, chat_id)
        return chat_id

    async def _skip(self, rec: Recipient, why: str) -> Campaign:
        """Settled without a message: its id stored ahead, if any, is dropped."""
        await self._drop_reserved(rec)
        log.info("campaign %s: recipient %s skipped: %s", self.campaign_id, rec.position + 1, why)
        return await self._record(rec, RS.SKIPPED, error=why)

    async def _drop_reserved(self, rec: Recipient) -> None:
        """A recipient who gets no message keeps no id stored ahead (a stored id means "may
        have been sent")."""
        assert rec.id is not None and self._ids is not None
        if self._ids.reserved.pop(rec.id, None) is not None:
            await self._writer.flush()  # its reservation is written before it is undone
            await self._db(self.store.release_ids, [rec.id])

    async def _deliver(
        self, rec: Recipient, text: str, message_id: str | None, attempt: _Attempt
    ) -> _Attempt:
        """Send one message, repeating it as the policy allows."""
        op = Op.SEND_WITH_ID if message_id else Op.SEND
        tries: Counter[Kind] = Counter()
        while True:
            attempt.on_wire = True  # stays set if the send is abandoned (cancelled)
            try:
                attempt.sent = await self._send_once(rec, text, message_id)
                attempt.on_wire = False
                return attempt
            except WahaError as exc:
                attempt.on_wire = False
                verdict = await self._verdict(op, exc, tries)
            if not isinstance(verdict, Retry):
                attempt.verdict = verdict
                return attempt
            attempt.maybe_sent = attempt.maybe_sent or verdict.maybe_sent
            try:
                await self._wait(verdict, tries)
            except (_Stop, _StoppedElsewhere, StoreError) as stop:
                attempt.stopped = stop
                return attempt

    async def _send_once(self, rec: Recipient, text: str, message_id: str | None) -> SendResult:
        if self._image:
            return await self.client.send_image(
                self.session,
                rec.chat_id,
                caption=text,
                data=self._image.data,
                mimetype=self._image.mimetype,
                filename=self._image.filename,
            )
        return await self.client.send_text(self.session, rec.chat_id, text, message_id=message_id)

    async def _leave_unsent(
        self, rec: Recipient, message_id: str | None, pipelined: bool, maybe_sent: bool
    ) -> None:
        """A message that did not go through, as the run stops: pending again if it surely
        did not go out; otherwise `sending` with its id, so a resume re-sends that id."""
        assert rec.id is not None
        with contextlib.suppress(StoreError):  # then the resume finds it `sending`: unknown
            if not maybe_sent:
                await self._db(self.store.set_recipient_pending, rec.id, attempted=pipelined)
            elif pipelined:
                # Sent without a `sending` mark: mark it so (with its id, the attempt counted).
                await self._writer.flush()
                await self._db(self.store.mark_sending, rec.id, message_id)
            # Otherwise it was marked `sending` with its id before it left.

    def _after_failure(self, camp: Campaign) -> Campaign:
        limit = camp.max_consecutive_failures
        if limit and camp.consecutive_failures >= limit:
            raise _Stop(
                S.PAUSED,
                f"{camp.consecutive_failures} messages in a row failed (last: {camp.last_error}); "
                "check the list and the WhatsApp number before resuming",
            )
        return camp

    async def _record(
        self,
        rec: Recipient,
        status: RecipientStatus,
        *,
        message_id: str | None = None,
        error: str | None = None,
        attempted: bool = False,
    ) -> Campaign:
        """Write an outcome now (after any written behind): the campaign as it then is."""
        self._submit(rec, status, message_id=message_id, error=error, attempted=attempted)
        camp = await self._writer.flush()
        if not self._ours(camp):
            raise _StoppedElsewhere(camp.status)
        return camp

    def _ours(self, camp: Campaign) -> bool:
        """Still Running under this run's lease (not paused, cancelled or taken over)."""
        return camp.status == S.RUNNING and camp.lease_owner == self.owner

    def _submit(
        self,
        rec: Recipient,
        status: RecipientStatus,
        *,
        message_id: str | None = None,
        error: str | None = None,
        attempted: bool = False,
    ) -> None:
        assert rec.id is not None
        if status != RS.SKIPPED:  # the long breaks come after so many messages
            self._processed_in_run += 1
        self._writer.submit(Outcome(rec.id, rec.position, status, message_id, error, attempted))

    def _committed(self, done: Committed) -> None:
        """A transaction of the writer is durable: its ids count as stored, its outcomes
        are published, each with the counters as they were after it."""
        if self._ids is not None:
            self._ids.committed(done.reserved)
        if self._lane is not None:
            self._lane.board.written(self.session, done.outcomes)
        camp = done.campaign
        counts = {
            RS.SENT: camp.sent,
            RS.FAILED: camp.failed,
            RS.UNKNOWN: camp.unknown,
            RS.SKIPPED: camp.skipped,
        }
        for o in done.outcomes:
            counts[o.status] -= 1
        for o in done.outcomes:
            counts[o.status] += 1
            self.publish(
                ev.RecipientProcessed(
                    self.campaign_id,
                    o.position,
                    o.status,
                    counts[RS.SENT],
                    counts[RS.FAILED],
                    counts[RS.UNKNOWN],
                    camp.total,
                    # A lane's next is the campaign's: below its siblings' unsent ones too.
                    o.position + 1 if self._lane is None else camp.next_index,
                    o.error,
                    counts[RS.SKIPPED],
                )
            )
        if not self._ours(camp) and self._elsewhere is None:
            self._elsewhere = camp.status
            self.wake.set()

    # -- message ids -------------------------------------------------------------------

    async def _reserve_ids(self, camp: Campaign, upcoming: list[Recipient]) -> str | None:
        """An id for `upcoming[0]`, stored before it is sent, with ids for the next few
        recipients in the same transaction; None when the session has no pre-generated
        ids."""
        assert self._ids is not None
        if self.client.message_ids(self.session) is False:
            return None
        fresh = self._ids.unreserved(upcoming)
        tries: Counter[Kind] = Counter()
        while True:
            try:
                ids = await self._ids.take(len(fresh))
                break
            except WahaError as exc:
                verdict = await self._verdict(Op.NEW_ID, exc, tries)
            if isinstance(verdict, Proceed):
                log.info("campaign %s: %s", self.campaign_id, verdict.note)
                self.client.no_message_ids(self.session)
                return None
            if isinstance(verdict, Retry):
                await self._wait(verdict, tries)
                continue
            assert isinstance(verdict, Pause)
            raise _Stop(S.PAUSED, verdict.reason)
        pairs = self._ids.pair(fresh, ids)
        texts = self._texts_of(camp, fresh[: len(pairs)])
        self._writer.add_reservation(pairs, now=False, texts=texts)
        await self._writer.flush()
        self._check_stop()
        first = fresh[0].id
        assert first is not None  # read from the store: it has its id
        return self._ids.reserved[first]

    def _top_up(self, camp: Campaign, upcoming: list[Recipient]) -> None:
        """Store the ids already fetched for the next recipients, behind this send, so the
        next message rarely waits for a transaction of its own."""
        assert self._ids is not None
        fresh = self._ids.unreserved(upcoming)
        ids = self._ids.ready(len(fresh))
        if ids:
            pairs = self._ids.pair(fresh, ids)
            texts = self._texts_of(camp, fresh[: len(pairs)])
            self._writer.add_reservation(pairs, now=self._ids.low, texts=texts)

    # -- typing, images ----------------------------------------------------------------

    async def _typing(self, rec: Recipient, seconds: float) -> None:
        # As a person does: open the chat (its messages marked read), then type. Best
        # effort: a refusal costs the campaign nothing.
        try:
            await self.client.send_seen(self.session, rec.chat_id)
        except WahaError as exc:
            log.debug("campaign %s: chat not marked read: %s", self.campaign_id, exc)
        try:
            await self.client.start_typing(self.session, rec.chat_id)
            await self._sleep(seconds)
            await self.client.stop_typing(self.session, rec.chat_id)
        except WahaError as exc:
            verdict = self._decide(Op.TYPING, exc, Counter())
            log.debug("campaign %s: %s", self.campaign_id, verdict)

    async def _load_image(self, camp: Campaign) -> Media:
        """The bytes stored with the campaign when it was created; a campaign created before
        they were stored reads its file, checked as at creation now."""
        if camp.image_sha256:
            media = await self._db(self.store.media, camp.image_sha256)
            if media is None:
                raise _Stop(S.PAUSED, "the campaign's image is missing from the database")
            return media
        try:
            return load_image(camp.image_path or "", given_as="the campaign's image")
        except MediaError as exc:
            raise _Stop(S.PAUSED, str(exc)) from None

    # -- ending ------------------------------------------------------------------------

    async def _finish(
        self, status: CampaignStatus, reason: str | None = None, *, error: str | None = None
    ) -> ev.Ended:
        """Write how the run ended. A busy database is tried again for store_grace seconds;
        if it never answers, the campaign stays Running until its lease lapses, and then
        reads as Paused ("interrupted") everywhere. The store records the end in the
        campaign's history and logs it. A lane writes nothing: its campaign's run does,
        once every lane stopped."""
        await self._settle()
        if self._lane is not None:
            return await self._lane_end(status, reason, error)
        clock, delay = self.config.clock, 0.5
        deadline = clock.monotonic() + self.config.store_grace
        while True:
            try:
                camp = await self._db(
                    self.store.finish,
                    self.campaign_id,
                    self.owner,
                    status,
                    pause_reason=reason,
                    last_error=error,
                )
                return self._ended_as(camp, camp.status)
            except StoreError as exc:
                if clock.monotonic() >= deadline:
                    why = f"{reason or status}; the database could not be written ({exc})"
                    log.error(
                        "campaign %s: its end could not be written: %s", self.campaign_id, why
                    )
                    return ev.Paused(self.campaign_id, why, self._last_next_index())
                log.warning("campaign %s: writing its end again: %s", self.campaign_id, exc)
            await clock.wait(delay, asyncio.Event())
            delay = min(delay * 2, 8.0)

    async def _abandoned(self, reason: str) -> ev.Ended:
        """The run was cancelled, perhaps with a message on the wire: that one may have
        gone out, so it is left `sending` with its id (the next resume re-sends that id,
        which WhatsApp dedupes, or marks it unknown), and the campaign paused."""
        flight = self._in_flight
        if flight is not None:
            maybe_sent = flight.attempt.on_wire or flight.attempt.maybe_sent
            if maybe_sent:
                log.warning(
                    "campaign %s: abandoned the send to recipient %s in flight; it may "
                    "have gone out, the next resume settles it",
                    self.campaign_id,
                    flight.rec.position + 1,
                )
            await self._leave_unsent(
                flight.rec, flight.message_id, flight.pipelined, maybe_sent=maybe_sent
            )
        return await self._finish(S.PAUSED, reason)

    async def _given_up(self, status: str) -> ev.Ended:
        """Another process moved the campaign (paused, cancelled, took it over)."""
        await self._settle()
        if self._lane is not None:
            self._lane.parent._lost(status)  # its siblings stop too
            return await self._lane_end(S.PAUSED, status, None)
        try:
            camp = await self._db(self.store.finish, self.campaign_id, self.owner, S.PAUSED)
        except StoreError as exc:
            why = f"database unavailable: {exc}"
            return ev.Paused(self.campaign_id, why, self._last_next_index())
        if camp.status == S.RUNNING:  # under someone else's lease now
            log.warning("campaign %s: %s", self.campaign_id, TAKEN_OVER)
            return ev.Paused(self.campaign_id, TAKEN_OVER, camp.next_index)
        return self._ended_as(camp, status)

    async def _settle(self) -> None:
        """Before the run ends: every outcome written, ids stored ahead and unused dropped."""
        with contextlib.suppress(StoreError):
            # If the database refuses, those recipients keep their stored ids: a resume
            # re-sends them with those ids, which WhatsApp dedupes.
            await self._writer.flush()
        unused = self._ids.unused() if self._ids is not None else []
        if unused:
            with contextlib.suppress(StoreError):  # kept ids are re-sent deduped: harmless
                await self._db(self.store.release_ids, unused)

    async def _lane_end(
        self, status: CampaignStatus, reason: str | None, error: str | None
    ) -> ev.Ended:
        """How this lane stopped, for its campaign's run. A share that waits (its session
        gone, ...) says so in the campaign's waiting line while the other lanes go on."""
        assert self._lane is not None
        board, camp = self._lane.board, self._writer.camp
        if status == S.COMPLETED:
            board.done(self.session)
            log.info("campaign %s: session '%s' sent its share", self.campaign_id, self.session)
            done = (camp.sent, camp.failed, camp.unknown, camp.skipped) if camp else (0, 0, 0, 0)
            return ev.Completed(self.campaign_id, *done[:3], board.total, done[3])
        if status == S.FAILED:
            return ev.Failed(self.campaign_id, error or reason or "failed")
        if status == S.CANCELLED:
            return ev.Cancelled(self.campaign_id, self._last_next_index())
        why = reason or "stopped"
        if self.stop_request is None and self._elsewhere is None and not self._cancelled:
            log.warning(
                "campaign %s: session '%s' stopped, its recipients wait: %s",
                self.campaign_id,
                self.session,
                why,
            )
            with contextlib.suppress(StoreError):
                line = f"{why} (its recipients wait; the other sessions go on)"
                await asyncio.shield(self._set_waiting(line))
        return ev.Paused(self.campaign_id, why, self._last_next_index())

    def _last_next_index(self) -> int:
        camp = self._writer.camp
        return camp.next_index if camp is not None else 0

    def _ended_as(self, camp: Campaign, status: str) -> ev.Ended:
        cid = self.campaign_id
        if status == S.COMPLETED:
            return ev.Completed(cid, camp.sent, camp.failed, camp.unknown, camp.total, camp.skipped)
        if status == S.CANCELLED:
            return ev.Cancelled(cid, camp.next_index)
        if status == S.FAILED:
            return ev.Failed(cid, camp.last_error or "failed")
        return ev.Paused(cid, camp.pause_reason or status, camp.next_index)
