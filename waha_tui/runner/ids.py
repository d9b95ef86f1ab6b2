"""Pre-generated message ids (WAHA >= 2026.4.3): fetched ahead from WAHA by one task, and
stored with the recipients they are for before their messages leave.

A stored id on a recipient means "this message may have been sent with it": a resume
re-sends it with the same id and WhatsApp delivers it once. So ids stored ahead and never
used are released when the run ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from waha_tui.models import Campaign, Recipient
from waha_tui.status import RecipientStatus

log = logging.getLogger(__name__)
RESERVE_AHEAD = 32  # message ids stored per transaction ahead of their sends
ID_POOL = 64  # pre-generated ids fetched ahead from WAHA


def takes_ids(camp: Campaign) -> bool:
    """Whether a campaign's messages go out with pre-generated ids: sendImage takes none
    (WAHA's OpenAPI), so an image could not be re-sent deduped."""
    return not (camp.image_path or camp.image_sha256)


class IdSupply:
    def __init__(
        self, fetch: Callable[[], Awaitable[str]], wanted: int, *, session: str | None = None
    ) -> None:
        self._fetch = fetch
        self.session = session  # whose ids these are, when fetched before a claim
        self._to_fetch = wanted  # never more than the recipients left: unused ids cost a call
        self._fetched = 0
        self._failed = False  # the fetching stopped at an error, queued for the taker
        # Fetched ids, or the error that stopped the fetching (it stays last in the queue).
        self._queue: asyncio.Queue[str | Exception] = asyncio.Queue(maxsize=ID_POOL)
        self._task: asyncio.Task[None] | None = None
        self.reserved: dict[int, str] = {}  # recipient id -> id stored ahead, not sent yet
        self.reserving: dict[int, str] = {}  # the same, not committed yet

    def unreserved(self, upcoming: Sequence[Recipient]) -> list[Recipient]:
        """The next recipients that still need an id stored."""
        return [
            r
            for r in upcoming[:RESERVE_AHEAD]
            if r.status == RecipientStatus.PENDING
            and not r.message_id
            and r.id not in self.reserved
            and r.id not in self.reserving
        ]

    def prime(self) -> None:
        """Start fetching now, before the first `take` (which would start it)."""
        if self._task is None and self._to_fetch > 0:
            self._task = asyncio.ensure_future(self._fill())

    def want(self, count: int) -> None:
        """Fetch `count` ids in all (the recipients left, once known), going on in the
        background from those fetched so far."""
        self._to_fetch = max(count - self._fetched, 0)
        if self._to_fetch and self._task is not None and self._task.done() and not self._failed:
            self._task = asyncio.ensure_future(self._fill())

    async def take(self, want: int) -> list[str]:
        """Up to `want` ids, waiting only for the first; raises what stopped the fetching
        (a WAHA error) when no id came before it."""
        if self._queue.empty() and (self._task is None or self._task.done()):
            self._to_fetch = max(self._to_fetch, 1)
            self._failed = False
            self._task = asyncio.ensure_future(self._fill())
        out: list[str] = []
        item = await self._queue.get()
        while True:
            if isinstance(item, Exception):
                if not out:
                    raise item
                self._queue.put_nowait(item)  # room: one was just taken; raised next time
                return out
            out.append(item)
            if len(out) >= want or self._queue.empty():
                return out
            item = self._queue.get_nowait()

    def ready(self, want: int) -> list[str]:
        """Up to `want` ids already fetched, without waiting."""
        ids: list[str] = []
        while len(ids) < want and not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, Exception):
                self._queue.put_nowait(item)  # the filler stopped after it: it stays last
                break
            ids.append(item)
        return ids

    async def _fill(self) -> None:
        # Fetched while messages are sent, so the extra request stays off the critical path.
        while self._to_fetch > 0:
            try:
                mid = await self._fetch()
            except Exception as exc:  # handed to the taker, whose policy decides
                log.debug("fetching a message id failed, handed to the run: %r", exc)
                self._failed = True
                await self._queue.put(exc)
                return
            await self._queue.put(mid)
            self._to_fetch -= 1
            self._fetched += 1

    def pair(self, recipients: Sequence[Recipient], ids: Sequence[str]) -> list[tuple[int, str]]:
        """Assign ids to recipients; they are being stored (see `committed`)."""
        pairs = [(r.id, mid) for r, mid in zip(recipients, ids, strict=False) if r.id is not None]
        self.reserving.update(pairs)
        return pairs

    def committed(self, pairs: Sequence[tuple[int, str]]) -> None:
        for rid, mid in pairs:
            self.reserving.pop(rid, None)
            self.reserved[rid] = mid

    @property
    def low(self) -> bool:
        """Few stored ids left: store the next ones now rather than make a coming message
        wait for a transaction of its own."""
        return len(self.reserved) < RESERVE_AHEAD // 2

    def use(self, recipient_id: int) -> None:
        """Its message is about to leave: from here its stored id is never released."""
        self.reserved.pop(recipient_id, None)

    def unused(self) -> list[int]:
        """Recipients whose stored ids were never used; forgotten here."""
        unused, self.reserved = list(self.reserved), {}
        return unused

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Retrieve its outcome so asyncio never logs an unretrieved exception.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
