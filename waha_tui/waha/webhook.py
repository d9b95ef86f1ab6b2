"""WAHA's webhooks, received: for deployments where WAHA pushes its events (acks, replies,
session statuses) instead of serving our WebSocket.

A small Starlette app: `POST /` (and `/webhook`) checks WAHA's signature, `X-Webhook-Hmac`,
the HMAC-SHA512 of the raw body in hex (`X-Webhook-Hmac-Algorithm: sha512` when present;
NOTES.md section 6), answers a request it already handled (`X-Webhook-Request-Id`, which
WAHA keeps on its retries) 200 without doing it again, and hands the event, parsed by
`envelope.parse`, to a sink. Knows nothing of campaigns: the sink decides what events do.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from waha_tui.secret import Secret
from waha_tui.waha.envelope import WahaEvent, parse

log = logging.getLogger(__name__)

HMAC_HEADER = "x-webhook-hmac"
ALGORITHM_HEADER = "x-webhook-hmac-algorithm"
REQUEST_ID_HEADER = "x-webhook-request-id"
REMEMBERED = 10_000  # request ids kept to recognise WAHA's retries
MAX_BODY = 2 * 1024 * 1024  # an event is a few kB; a media one carries a URL, not the file
BATCH_WAIT = 0.2  # seconds events wait to share one write (BatchSink)

Sink = Callable[[list[WahaEvent]], Awaitable[None]]


def signature(key: bytes, body: bytes) -> str:
    """WAHA's X-Webhook-Hmac for `body`: HMAC-SHA512, hex."""
    return hmac.new(key, body, hashlib.sha512).hexdigest()


class RecentIds:
    """The last `size` request ids handled, oldest forgotten first."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._ids

    def add(self, request_id: str) -> None:
        self._ids[request_id] = None
        self._ids.move_to_end(request_id)
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)


def create_app(key: Secret, sink: Sink, *, remember: int = REMEMBERED) -> Starlette:
    """The receiver. A request whose sink raised answers 500 and is not remembered: WAHA
    sends it again (its retries policy)."""
    secret = key.reveal().encode()
    handled = RecentIds(remember)

    async def receive(request: Request) -> JSONResponse:
        peer = request.client.host if request.client else "?"
        body = await request.body()
        if len(body) > MAX_BODY:
            log.warning("webhook from %s refused: a body of %d bytes", peer, len(body))
            return JSONResponse({"error": "too large"}, 413)
        algorithm = request.headers.get(ALGORITHM_HEADER)
        given = request.headers.get(HMAC_HEADER, "").strip().lower()
        refused = None
        if algorithm is not None and algorithm.strip().lower() != "sha512":
            refused = "an HMAC algorithm other than sha512"
        elif not given:
            refused = "no signature (X-Webhook-Hmac)"
        elif not hmac.compare_digest(given.encode(), signature(secret, body).encode()):
            refused = "a wrong signature"
        if refused is not None:
            # Neither the body nor the key: who sent it and why it was refused.
            log.warning("webhook from %s refused: %s", peer, refused)
            return JSONResponse({"error": "unauthorized"}, 401)
        request_id = request.headers.get(REQUEST_ID_HEADER, "").strip()
        if request_id and request_id in handled:
            log.debug("webhook %s again: already handled", request_id)
            return JSONResponse({"ok": True, "duplicate": True})
        event = parse(body)
        if event is not None:
            try:
                await sink([event])
            except Exception:
                log.exception("webhook %s: its event was not written", request_id or "?")
                return JSONResponse({"error": "not written"}, 500)
        if request_id:
            handled.add(request_id)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", receive, methods=["POST"]),
            Route("/webhook", receive, methods=["POST"]),
        ]
    )


class BatchSink:
    """Events of requests arriving together written in one call of `write` (in a thread:
    a database write), each request answered once its events are written."""

    def __init__(self, write: Callable[[list[WahaEvent]], Any], *, wait: float = BATCH_WAIT):
        self.write, self.wait = write, wait
        self._pending: list[tuple[Sequence[WahaEvent], asyncio.Future[None]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, events: list[WahaEvent]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((events, done))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.wait, self._flush)
        await done

    def _flush(self) -> None:
        self._timer = None
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._write(batch))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def _write(self, batch: list[tuple[Sequence[WahaEvent], asyncio.Future[None]]]) -> None:
        events = [e for some, _ in batch for e in some]
        try:
            await asyncio.to_thread(self.write, events)
        except Exception as exc:
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
