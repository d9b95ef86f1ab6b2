"""The campaign runner: sends one campaign's recipients in order, durably, with pacing.

Knows nothing of screens: progress goes out as `events`. Database calls run in a worker
thread so a busy database never blocks the event loop the dashboard draws from.
"""

from __future__ import annotations

import asyncio
import contextlib
import mimetypes
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from waha_tui import events as ev
from waha_tui.errors import UserError
from waha_tui.models import Campaign, Recipient
from waha_tui.pacing import Pacing
from waha_tui.render import RenderError, render
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.store import Outcome, Store, StoreError
from waha_tui.waha import (
    Ambiguous,
    BadResponse,
    RecipientRejected,
    ServerError,
    SessionNotFound,
    SessionNotWorking,
    Unauthorized,
    Unreachable,
    WahaClient,
    WahaError,
)

T = TypeVar("T")
S = CampaignStatus
RS = RecipientStatus
BATCH = 500
RESERVE_AHEAD = 32  # message ids stored per transaction ahead of their sends
ID_POOL = 64  # pre-generated ids fetched ahead from WAHA
WRITE_BEHIND = 0.05  # longest an outcome of a message with a stored id waits to be written
WRITE_BATCH = 64  # ... or until this many are waiting
SETTLED = frozenset({RS.SENT, RS.FAILED, RS.UNKNOWN, RS.SKIPPED})


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_seconds_from_env() -> float:
    raw = os.environ.get("WAHA_TUI_LEASE_SECONDS", "15")
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"WAHA_TUI_LEASE_SECONDS={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise UserError("WAHA_TUI_LEASE_SECONDS must be positive")
    return value


class Clock:
    """Real time. Tests pass a fake one to check pacing without sleeping."""

    def monotonic(self) -> float:
        return time.monotonic()

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
    poll_interval: float = 1.0  # how often a wait looks for a pause set by another process
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock = field(default_factory=Clock)


class _Stop(Exception):
    """Ends the loop: the campaign leaves Running with this status and reason."""

    def __init__(self, status: CampaignStatus, reason: str | None = None) -> None:
        super().__init__(reason or status)
        self.status, self.reason = status, reason


class _StoppedElsewhere(Exception):
    """Someone else (CLI, another dashboard) already moved the campaign out of Running."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


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
    ) -> None:
        self.store, self.client, self.campaign_id = store, client, campaign_id
        self.owner, self.config, self.publish = owner, config, publish
        self.wake = asyncio.Event()
        self.stop_request: tuple[CampaignStatus, str] | None = None
        self.started = asyncio.get_running_loop().create_future()
        self._last_session_check = -1e18
        self._processed_in_run = 0
        self._image: tuple[bytes, str, str] | None = None
        self._ambiguous_seen = False
        # Pre-generated message ids, fetched ahead by one task (`_fill_ids`).
        self._ids: asyncio.Queue[str | Exception | None] = asyncio.Queue(maxsize=ID_POOL)
        self._id_task: asyncio.Task[None] | None = None
        self._ids_to_fetch = 0
        self._reserved: dict[int, str] = {}  # recipient id -> id stored ahead, not sent yet
        self._reserving: dict[int, str] = {}  # the same, not committed yet
        self._writer = _ProgressWriter(self)
        self._elsewhere: str | None = None  # a status set by another process, seen late

    def request_stop(self, status: CampaignStatus, reason: str) -> None:
        """Pause or cancel: takes effect after the message in flight, or at once in a wait."""
        if self.stop_request is None:
            self.stop_request = (status, reason)
        self.wake.set()

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    # -- the run -----------------------------------------------------------------------

    async def run(self) -> ev.Ended:
        try:
            camp = await self._db(
                self.store.claim, self.campaign_id, self.owner, self.config.lease_seconds
            )
        except BaseException as exc:
            if not self.started.done():
                self.started.set_exception(exc)
            raise
        self.started.set_result(camp)
        self.publish(ev.Started(self.campaign_id, camp.total, camp.next_index))
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            end = await self._loop(camp)
        except _Stop as stop:
            end = await self._finish(stop.status, stop.reason)
        except _StoppedElsewhere as other:
            await self._settle()
            camp = await self._db(self.store.finish, self.campaign_id, self.owner, S.PAUSED)
            end = self._ended_as(camp, other.status)
        except asyncio.CancelledError:
            # The task itself was cancelled (app shutting down): leave it resumable.
            await asyncio.shield(
                self._finish(
                    S.PAUSED,
                    self.stop_request[1]
                    if self.stop_request
                    else "stopped: the program running it exited",
                )
            )
            raise
        except Exception as exc:
            end = await self._finish(S.FAILED, None, error=f"unexpected error: {exc}")
        finally:
            heartbeat.cancel()
            self._drop_prefetch()
        self.publish(end)
        return end

    async def _loop(self, camp: Campaign) -> ev.Ended:
        pacing = Pacing(
            camp.delay_min, camp.delay_max, camp.typing, camp.break_every, camp.break_seconds
        )
        if camp.image_path:
            self._image = self._load_image(camp)
        position = camp.next_index
        self._ids_to_fetch = camp.total - position
        first = True
        while True:
            batch = await self._db(
                self.store.recipients, self.campaign_id, start=position, limit=BATCH
            )
            if not batch:
                break
            for i, rec in enumerate(batch):
                if rec.position != position:
                    raise UserError(f"recipient position {position} is missing")
                if rec.status in SETTLED:
                    # Settled earlier (before a retry moved next_index back): never re-sent,
                    # and no wait is spent on it.
                    position = rec.position + 1
                    continue
                if not first:
                    await self._pause_between(pacing)
                first = False
                self._check_stop()
                camp = await self._process(camp, rec, pacing, batch[i:])
                position = rec.position + 1
        return await self._finish(S.COMPLETED)

    def _check_stop(self) -> None:
        if self.stop_request:
            raise _Stop(*self.stop_request)
        if self._writer.error is not None:
            raise self._writer.error
        if self._elsewhere is not None:
            raise _StoppedElsewhere(self._elsewhere)

    async def _pause_between(self, pacing: Pacing) -> None:
        delay = pacing.delay_after(self._processed_in_run, self.config.rng)
        await self._sleep(delay)

    async def _sleep(self, seconds: float) -> None:
        """A wait that ends at once on a pause request, and notices one set elsewhere."""
        clock = self.config.clock
        end = clock.monotonic() + seconds
        while True:
            self._check_stop()
            remaining = end - clock.monotonic()
            if remaining > 0 and await clock.wait(
                min(remaining, self.config.poll_interval), self.wake
            ):
                self._check_stop()
            done = end - clock.monotonic() <= 0
            if done and seconds <= 0:
                return  # no wait: the writer's transactions report a pause set elsewhere
            # Also after the wait: a message whose id was stored ahead has no transaction
            # of its own before it goes out, so a pause set elsewhere is looked for here.
            status = await self._db(
                self.store.heartbeat, self.campaign_id, self.owner, self.config.lease_seconds
            )
            if status != S.RUNNING:
                raise _StoppedElsewhere(status)
            if done:
                return

    async def _heartbeat(self) -> None:
        # Keeps the lease alive while one send takes long (the waits renew it too).
        interval = max(self.config.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(StoreError):
                await self._db(
                    self.store.heartbeat, self.campaign_id, self.owner, self.config.lease_seconds
                )

    # -- one recipient -----------------------------------------------------------------

    async def _process(
        self, camp: Campaign, rec: Recipient, pacing: Pacing, upcoming: list[Recipient]
    ) -> Campaign:
        assert rec.id is not None
        resend_id: str | None = None
        ahead = self._reserved.get(rec.id)
        if ahead is None and rec.id in self._reserving:
            await self._writer.flush()
            ahead = self._reserved.get(rec.id)
        if ahead is None and (rec.status == RS.SENDING or rec.message_id):
            # Caught in flight by a crash (`sending`, or an id stored ahead whose outcome
            # was not written yet): the message may have gone out.
            if not rec.message_id or self._image:  # an image cannot be re-sent with its id
                return await self._record(
                    rec, RS.UNKNOWN, error="interrupted while sending; it may have been delivered"
                )
            resend_id = rec.message_id  # same id: WhatsApp dedupes it
        await self._check_session(camp)
        try:
            text = render(
                camp.template_text, rec.variables, name=rec.name, default_name=camp.default_name
            )
        except RenderError as exc:
            return await self._record(rec, RS.FAILED, error=str(exc))
        # sendImage takes no pre-generated id (WAHA's OpenAPI): a retry could not be deduped.
        message_id = resend_id or ahead
        if message_id is None and not self._image:
            message_id = await self._reserve_ids(camp, upcoming)
        # Pipelined: its id is already durable, so its outcome may be written behind the
        # next sends; a crash before that leaves the id stored and a resume re-sends it
        # with that id, which WhatsApp dedupes.
        pipelined = message_id is not None and resend_id is None
        typing = pacing.typing_seconds(text, self.config.rng)
        if typing:
            await self._typing(camp, rec, typing)
        if pipelined:
            self._check_stop()
            self._top_up(upcoming[1:])
        else:
            # Only now: a pause during typing must leave it pending, as nothing was sent.
            # The same transaction sees a pause or cancel set by another process, and
            # renews the lease.
            # The previous outcome rides in this transaction.
            now = await self._writer.flush(sending=(rec.id, message_id))
            if not self._ours(now):
                raise _StoppedElsewhere(now.status)
        self._ambiguous_seen = resend_id is not None
        # From here its stored id may be used: it is no longer released at the end.
        self._reserved.pop(rec.id, None)
        try:
            result = await self._send(camp, rec, text, message_id)
        except (_Stop, _StoppedElsewhere):
            # Stopped in a retry wait: unless an attempt may have gone out, nothing was sent.
            if not self._ambiguous_seen:
                await self._db(self.store.set_recipient_pending, rec.id, attempted=pipelined)
            elif pipelined:
                await self._in_doubt(rec, message_id)
            raise
        except (SessionNotWorking, SessionNotFound, Unauthorized, Unreachable) as exc:
            if not self._ambiguous_seen:
                # Surely not sent: it goes out normally after resume.
                await self._db(self.store.set_recipient_pending, rec.id, attempted=pipelined)
            elif pipelined:
                await self._in_doubt(rec, message_id)
            # Otherwise it stays `sending` with its id, and a resume re-sends that same id.
            raise _Stop(S.PAUSED, self._pause_reason(camp, exc)) from None
        except (RecipientRejected, ServerError) as exc:
            if self._ambiguous_seen:
                # An earlier attempt may have gone out: reporting it failed invites a re-send.
                camp = await self._record(
                    rec,
                    RS.UNKNOWN,
                    attempted=pipelined,
                    error=f"{exc} after an unconfirmed attempt; it may have "
                    "been delivered, so it is not re-sent automatically",
                )
            else:
                camp = await self._record(rec, RS.FAILED, error=str(exc), attempted=pipelined)
            return self._after_failure(camp)
        except (Ambiguous, BadResponse) as exc:
            if message_id:
                # The message keeps its pre-generated id: a resume re-sends it safely.
                if pipelined:
                    await self._in_doubt(rec, message_id)
                raise _Stop(
                    S.PAUSED,
                    f"WAHA did not confirm the message to {rec.phone} ({exc}); on resume it is "
                    "re-sent with the same id, so it cannot arrive twice",
                ) from None
            camp = await self._record(
                rec, RS.UNKNOWN, error=f"{exc}; not re-sent automatically", attempted=pipelined
            )
            return self._after_failure(camp)
        # Written behind: with the next message's `sending` mark, or within WRITE_BEHIND.
        self._submit(rec, RS.SENT, message_id=result or message_id, attempted=pipelined)
        return camp

    async def _in_doubt(self, rec: Recipient, message_id: str | None) -> None:
        """A message sent without a `sending` mark may have gone out: mark it so (with
        its id, and the attempt counted) for the screens and a resume."""
        await self._writer.flush()
        await self._db(self.store.mark_sending, rec.id, message_id)

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

    def _seen(self, camp: Campaign) -> None:
        if not self._ours(camp) and self._elsewhere is None:
            self._elsewhere = camp.status
            self.wake.set()

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
        self._processed_in_run += 1
        self._writer.submit(Outcome(rec.id, rec.position, status, message_id, error, attempted))

    def _published(self, outcomes: list[Outcome], camp: Campaign) -> None:
        """Events for outcomes now durable, each with the counters as they were after it."""
        counts = {RS.SENT: camp.sent, RS.FAILED: camp.failed, RS.UNKNOWN: camp.unknown}
        for o in outcomes:
            counts[o.status] -= 1
        for o in outcomes:
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
                    o.position + 1,
                    o.error,
                )
            )
        self._seen(camp)

    async def _retry_unreachable(self, call: Callable[[], Awaitable[T]]) -> T:
        """Connection refused means the request never left: retrying is always safe."""
        delays = self.config.unreachable_backoff
        for attempt in range(len(delays) + 1):
            try:
                return await call()
            except Unreachable:
                if attempt == len(delays):
                    raise
                await self._sleep(delays[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    async def _check_session(self, camp: Campaign) -> None:
        now = self.config.clock.monotonic()
        if now - self._last_session_check < self.config.session_check_interval:
            return
        try:
            info = await self._retry_unreachable(lambda: self.client.get_session(camp.session))
        except (Unreachable, Unauthorized, SessionNotFound) as exc:
            raise _Stop(S.PAUSED, self._pause_reason(camp, exc)) from None
        except WahaError:
            return  # a passing error on the status check: the send itself will tell
        if not info.working:
            raise _Stop(S.PAUSED, _session_reason(camp.session, info.status))
        self._last_session_check = now

    def _unreserved(self, upcoming: list[Recipient]) -> list[Recipient]:
        return [
            r
            for r in upcoming[:RESERVE_AHEAD]
            if r.status == RS.PENDING
            and not r.message_id
            and r.id not in self._reserved
            and r.id not in self._reserving
        ]

    def _queue_reservation(self, recipients: list[Recipient], ids: list[str]) -> None:
        pairs = [(r.id, mid) for r, mid in zip(recipients, ids, strict=False) if r.id is not None]
        self._reserving.update(pairs)
        self._writer.reserve.extend(pairs)
        if len(self._reserved) < RESERVE_AHEAD // 2:
            # Few durable ids left: write these now, behind the send, rather than make a
            # coming message wait for a transaction of its own.
            self._writer.kick()

    async def _reserve_ids(self, camp: Campaign, upcoming: list[Recipient]) -> str | None:
        """An id for `upcoming[0]`, stored before it is sent, with ids for the next few
        recipients in the same transaction; None when WAHA has no pre-generated ids."""
        if self.client.supports_message_ids is False:
            return None
        fresh = self._unreserved(upcoming)
        ids = await self._take_ids(camp, len(fresh))
        if not ids:
            return None
        self._queue_reservation(fresh, ids)
        await self._writer.flush()
        self._check_stop()
        return self._reserved[fresh[0].id]  # type: ignore[index]

    def _top_up(self, upcoming: list[Recipient]) -> None:
        """Store the ids already fetched for the next recipients, behind this send, so the
        next message rarely waits for a transaction of its own."""
        fresh = self._unreserved(upcoming)
        ids: list[str] = []
        while len(ids) < len(fresh) and not self._ids.empty():
            item = self._ids.get_nowait()
            if isinstance(item, Exception):
                self._ids.put_nowait(item)  # the filler stopped after it: it stays last
                break
            if item is not None:
                ids.append(item)
        if ids:
            self._queue_reservation(fresh, ids)

    async def _take_ids(self, camp: Campaign, want: int) -> list[str]:
        """Up to `want` ids from the pool, waiting only for the first."""
        if self.client.supports_message_ids is False:
            return []
        if self._ids.empty() and (self._id_task is None or self._id_task.done()):
            self._ids_to_fetch = max(self._ids_to_fetch, 1)
            self._id_task = asyncio.ensure_future(self._fill_ids(camp))
        out: list[str] = []
        item = await self._ids.get()
        while True:
            if isinstance(item, Exception):
                if not out:
                    raise item
                self._ids.put_nowait(item)  # room: one was just taken; raised next time
                return out
            if item is None:  # no id this time: this message goes without one
                return out
            out.append(item)
            if len(out) >= want or self._ids.empty():
                return out
            item = self._ids.get_nowait()

    async def _fill_ids(self, camp: Campaign) -> None:
        # Fetched while messages are sent, so the extra request stays off the critical
        # path; never more than the recipients left. An unused id costs nothing.
        while self._ids_to_fetch > 0:
            try:
                mid = await self._new_message_id(camp)
            except Exception as exc:  # _Stop: given to the taker, who raises it
                await self._ids.put(exc)
                return
            await self._ids.put(mid)
            if mid is None:
                return
            self._ids_to_fetch -= 1

    def _drop_prefetch(self) -> None:
        task, self._id_task = self._id_task, None
        if task is not None:
            task.cancel()
            # Retrieve its outcome so asyncio never logs an unretrieved exception.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _new_message_id(self, camp: Campaign) -> str | None:
        if self.client.supports_message_ids is False:
            return None
        try:
            return await self._retry_unreachable(lambda: self.client.new_message_id(camp.session))
        except (Unreachable, Unauthorized, SessionNotFound, SessionNotWorking) as exc:
            raise _Stop(S.PAUSED, self._pause_reason(camp, exc)) from None
        except WahaError:
            return None

    async def _typing(self, camp: Campaign, rec: Recipient, seconds: float) -> None:
        try:
            await self.client.start_typing(camp.session, rec.chat_id)
            await self._sleep(seconds)
            await self.client.stop_typing(camp.session, rec.chat_id)
        except WahaError:
            pass  # typing is cosmetic; the send reports real problems

    async def _send(
        self, camp: Campaign, rec: Recipient, text: str, message_id: str | None
    ) -> str | None:
        async def once() -> str | None:
            if self._image:
                data, mime, filename = self._image
                res = await self.client.send_image(
                    camp.session,
                    rec.chat_id,
                    caption=text,
                    data=data,
                    mimetype=mime,
                    filename=filename,
                )
            else:
                res = await self.client.send_text(
                    camp.session, rec.chat_id, text, message_id=message_id
                )
            return res.message_id

        if not message_id:
            return await self._retry_unreachable(once)
        # With a pre-generated id even an ambiguous send can be repeated: WhatsApp dedupes.
        retries = self.config.ambiguous_retries
        for attempt in range(len(retries) + 1):
            try:
                return await self._retry_unreachable(once)
            except (Ambiguous, BadResponse):
                self._ambiguous_seen = True
                if attempt == len(retries):
                    raise
                await self._sleep(retries[attempt])
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_image(self, camp: Campaign) -> tuple[bytes, str, str]:
        path = Path(camp.image_path or "")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _Stop(S.PAUSED, f"image {path} cannot be read ({exc.strerror})") from None
        mime = camp.image_mime or mimetypes.guess_type(path.name)[0] or "image/jpeg"
        return data, mime, path.name

    def _pause_reason(self, camp: Campaign, exc: WahaError) -> str:
        if isinstance(exc, SessionNotWorking):
            return _session_reason(exc.session or camp.session, exc.status or "not WORKING")
        if isinstance(exc, SessionNotFound):
            return f"WAHA has no session named '{camp.session}': create and start it"
        if isinstance(exc, Unauthorized):
            return "WAHA refused the API key (401): check WAHA_API_KEY"
        if isinstance(exc, Unreachable):
            return f"WAHA at {self.client.base_url} is unreachable: is it running?"
        return str(exc)

    # -- ending ------------------------------------------------------------------------

    async def _finish(
        self, status: CampaignStatus, reason: str | None = None, *, error: str | None = None
    ) -> ev.Ended:
        await self._settle()
        camp = await self._db(
            self.store.finish,
            self.campaign_id,
            self.owner,
            status,
            pause_reason=reason,
            last_error=error,
        )
        return self._ended_as(camp, camp.status)

    async def _settle(self) -> None:
        """Before the run ends: every outcome written, ids stored ahead and unused dropped."""
        with contextlib.suppress(StoreError):
            # If the database refuses, those recipients keep their stored ids: a resume
            # re-sends them with those ids, which WhatsApp dedupes.
            await self._writer.flush()
        unused, self._reserved = list(self._reserved), {}
        if unused:
            await self._db(self.store.release_ids, unused)

    def _ended_as(self, camp: Campaign, status: str) -> ev.Ended:
        cid = self.campaign_id
        if status == S.COMPLETED:
            return ev.Completed(cid, camp.sent, camp.failed, camp.unknown, camp.total)
        if status == S.CANCELLED:
            return ev.Cancelled(cid, camp.next_index)
        if status == S.FAILED:
            return ev.Failed(cid, camp.last_error or "failed")
        return ev.Paused(cid, camp.pause_reason or status, camp.next_index)


class _ProgressWriter:
    """Writes a run's outcomes in order and publishes each once it is durable. Outcomes
    of messages whose ids were stored ahead may wait up to WRITE_BEHIND seconds (or
    WRITE_BATCH outcomes) to share one transaction: a crash meanwhile leaves those ids
    stored, and a resume re-sends them with the same ids, which WhatsApp dedupes. Ids
    stored ahead (`reserve`) ride in the same transactions."""

    def __init__(self, run: CampaignRun) -> None:
        self.run = run
        self.queue: list[Outcome] = []
        self.reserve: list[tuple[int, str]] = []
        self.camp: Campaign | None = None
        self.error: Exception | None = None
        self._task: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.mark: tuple[int, str | None] | None = None  # a `sending` mark to write
        self.marked: Campaign | None = None  # the campaign as the mark's transaction saw it

    def submit(self, outcome: Outcome) -> None:
        self.queue.append(outcome)
        if len(self.queue) >= WRITE_BATCH:
            self.kick()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(WRITE_BEHIND, self.kick)

    def kick(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        run = self.run
        while (self.queue or self.reserve or self.mark) and self.error is None:
            outcomes, self.queue = self.queue, []
            reserve, self.reserve = self.reserve, []
            mark, self.mark = self.mark, None
            try:
                camp = await run._db(
                    run.store.commit_progress,
                    run.campaign_id,
                    outcomes,
                    owner=run.owner,
                    lease_seconds=run.config.lease_seconds,
                    reserve=reserve,
                    sending=mark,
                )
            except Exception as exc:
                self.error = exc
                run.wake.set()
                return
            self.camp = camp
            if mark is not None:
                self.marked = camp
            for rid, mid in reserve:
                run._reserving.pop(rid, None)
                run._reserved[rid] = mid
            if outcomes:
                run._published(outcomes, camp)
            else:
                run._seen(camp)

    async def flush(self, sending: tuple[int, str | None] | None = None) -> Campaign:
        """Wait until everything submitted is written; the campaign as it then is. With
        `sending`, that recipient is marked `sending` in the same transaction (only while
        the run still owns the campaign: see `Store.commit_progress`), and the campaign is
        as that transaction saw it."""
        self.mark, self.marked = sending, None
        while self.error is None and (
            self.queue
            or self.reserve
            or self.mark
            or (self._task is not None and not self._task.done())
        ):
            self.kick()
            assert self._task is not None
            # Shielded: a cancelled run still gets its outcomes written.
            await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error
        if sending is not None:
            assert self.marked is not None
            return self.marked
        if self.camp is None:
            self.camp = await self.run._db(self.run.store.get_campaign, self.run.campaign_id)
        return self.camp


def _session_reason(session: str, status: str) -> str:
    if status in ("STOPPED", "SCAN_QR_CODE", "FAILED"):
        return f"session '{session}' is {status}: start it and scan the QR code, then resume"
    return f"session '{session}' is {status}, not WORKING: resume once it is WORKING"


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class RunnerPool:
    """The campaigns this process is running, one run per campaign, one per WAHA session."""

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
        self.config = config or RunnerConfig(lease_seconds=lease_seconds_from_env())
        self.bus = bus or ev.EventBus()
        self.runs: dict[int, CampaignRun] = {}
        self.tasks: dict[int, asyncio.Future[ev.Ended]] = {}
        self.ended: dict[int, ev.Ended] = {}  # how each campaign's last run here ended

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

        async def body() -> ev.Ended:
            try:
                end = await run.run()
                self.ended[campaign_id] = end
                return end
            finally:
                self.runs.pop(campaign_id, None)
                self.tasks.pop(campaign_id, None)

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
        """Pause every run after its message in flight, and wait for them to settle."""
        for run in list(self.runs.values()):
            run.request_stop(S.PAUSED, reason)
        deadline = time.monotonic() + timeout
        while self.runs and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
