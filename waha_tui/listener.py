"""WAHA's events, listened to whenever a dashboard or `waha-tui run` is open, sending or
not, so an ack or an opt-out that arrives after a campaign ended is not lost.

The feed (waha/feed.py) runs on an event loop of its own, in a thread of its own: at
thousands of frames a second its reading and parsing would otherwise sit between the
dashboard's keypresses. Events are gathered there and written in batches by
delivery.apply in a worker thread (one transaction a batch: at thousands of acks a second
a batch carries hundreds), and sends that WhatsApp never confirmed are flagged now and
then. What changed goes to subscribers, on the caller's loop: the dashboard says opt-outs
and the feed's state, `waha-tui run` logs them. Writing an event is idempotent, so every
host may listen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from waha_tui import delivery
from waha_tui.delivery import Applied
from waha_tui.logs import caught
from waha_tui.models import utcnow
from waha_tui.secret import Secret
from waha_tui.store import Store, StoreError
from waha_tui.waha.envelope import SessionStatusEvent, WahaEvent
from waha_tui.waha.feed import Backoff, EventFeed, FeedState

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.1  # seconds: what arrived meanwhile is written in one transaction
FLUSH_AT = 2_000  # events: written at once when this many wait
CONFIRM_EVERY = 10.0  # seconds between looks for sends never confirmed
# Longest a batch waits for an operator's resume on its way to its claim: the claim then
# finds the write lock free (a batch of a few hundred acks holds it for milliseconds).
HOLD_OFF = 0.25  # seconds


class Listener:
    def __init__(
        self,
        store: Store,
        waha_url: str,
        api_key: Secret | None,
        *,
        on_applied: Callable[[Applied], None] | None = None,
        on_state: Callable[[FeedState], None] | None = None,
        on_session: Callable[[SessionStatusEvent], None] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self._on_applied = on_applied
        self._on_state = on_state
        self._on_session = on_session
        self.feed = EventFeed(
            waha_url, api_key, on_events=self._arrived, on_state=self._state, backoff=backoff
        )
        self._pending: list[WahaEvent] = []
        self._caller: asyncio.AbstractEventLoop | None = None  # where callbacks run
        self._loop: asyncio.AbstractEventLoop | None = None  # the feed's, in its thread
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.written = 0  # events written, for the benchmark and the tests

    @property
    def state(self) -> FeedState:
        return self.feed.state

    def attach(
        self,
        *,
        on_applied: Callable[[Applied], None] | None = None,
        on_state: Callable[[FeedState], None] | None = None,
        on_session: Callable[[SessionStatusEvent], None] | None = None,
    ) -> None:
        """Tell what happens from now on to these callbacks, on the running loop (a
        listener handed over: the demo's, listening since before the dashboard opened)."""
        self._on_applied, self._on_state, self._on_session = on_applied, on_state, on_session
        self._caller = asyncio.get_running_loop()

    def start(self) -> None:
        """Listen, from a thread of its own; callbacks come on the running loop."""
        if self._thread is not None:
            return
        self._caller = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._thread_main, name="waha-events", daemon=True)
        self._thread.start()

    async def aclose(self) -> None:
        """Stop listening; what already arrived is written first (briefly: never waiting
        on the network: the feed's close is bounded)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        await asyncio.to_thread(self._started.wait, 5.0)
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join, 10.0)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as exc:
            caught(log, exc, "the WAHA events thread")
        finally:
            self._started.set()

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake, self._stop = asyncio.Event(), asyncio.Event()
        self.feed.start()
        tasks = [
            asyncio.ensure_future(self._write_loop()),
            asyncio.ensure_future(self._confirm_loop()),
        ]
        self._started.set()
        await self._stop.wait()
        await self.feed.aclose()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pending:
            await self._flush()

    # -- on the feed's loop ----------------------------------------------------------------

    def _arrived(self, events: list[WahaEvent]) -> None:
        for e in events:
            if isinstance(e, SessionStatusEvent) and self._on_session is not None:
                self._tell(self._on_session, e)
        self._pending.extend(events)
        if len(self._pending) >= FLUSH_AT and self._wake is not None:
            self._wake.set()

    def _state(self, state: FeedState) -> None:
        # (The feed logs its own changes.)
        if self._on_state is not None:
            self._tell(self._on_state, state)

    # -- writing ---------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        wake = self._wake
        assert wake is not None  # set by _run before this starts
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), FLUSH_EVERY)
            wake.clear()
            if self._pending:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            applied = await asyncio.to_thread(delivery.apply, self.store, batch, hold_off=HOLD_OFF)
        except StoreError as exc:
            # The database is away (busy, gone): the events are kept for the next try.
            log.warning("WAHA events: %d not written yet: %s", len(batch), exc)
            self._pending[:0] = batch
            await asyncio.sleep(1.0)
            return
        except Exception as exc:
            caught(log, exc, f"writing {len(batch)} WAHA events")
            return  # a batch that cannot be written is dropped, never retried forever
        self.written += len(batch)
        if self._on_applied is not None:
            self._tell(self._on_applied, applied)

    async def _confirm_loop(self) -> None:
        while True:
            await asyncio.sleep(CONFIRM_EVERY)
            await self.flag_unconfirmed()

    async def flag_unconfirmed(self) -> int:
        """Sends that WhatsApp never confirmed in time while the feed was live, from
        sessions known to send acks, flagged (never re-sent by themselves)."""
        live_since = self.feed.live_since
        sessions = self.feed.sessions_with_acks()
        if live_since is None or not sessions:
            return 0
        try:
            return await asyncio.to_thread(
                delivery.flag_unconfirmed,
                self.store,
                live_since=live_since,
                sessions_with_acks=set(sessions),
                now=utcnow(),
            )
        except StoreError as exc:
            log.warning("WAHA events: could not look for unconfirmed sends: %s", exc)
            return 0

    def _tell(self, sink: Callable[[Any], None], what: object) -> None:
        """Run a callback on the caller's loop (the dashboard's: its widgets are not
        thread-safe); from that loop itself, at once."""
        caller = self._caller
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if caller is None or running is caller:
            _call(sink, what)
            return
        with contextlib.suppress(RuntimeError):  # the caller's loop has ended: nobody to tell
            caller.call_soon_threadsafe(_call, sink, what)


def _call(sink: Callable[[Any], None], what: object) -> None:
    try:
        sink(what)
    except Exception as exc:
        caught(log, exc, "a WAHA events subscriber")
