"""EventFeed against the simulator over a real socket: acks, replies and session status
arrive as WahaEvents; the feed comes back after the server drops it, is refused without a
fast retry loop, keeps the key out of every log and state, and closes at once."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets

from waha_tui.errors import UserError
from waha_tui.simulator import SimulatorServer
from waha_tui.waha import (
    Ack,
    AckEvent,
    Backoff,
    EventFeed,
    FeedState,
    MessageEvent,
    SessionStatusEvent,
    WahaEvent,
    bare,
    events_url,
)

CHAT = "491511234567@c.us"
FAST = {"server": 0.005, "device": 0.01, "read": 0.015, "read_share": 1}
QUICK = Backoff(initial=0.02, cap=0.1, stable=60.0, refused=300.0)
KEY = "k3y-that-must-not-show"


class Rig:
    """A feed and what it handed over."""

    def __init__(self, url: str, key: str | None = None, **kwargs: object) -> None:
        self.batches: list[list[WahaEvent]] = []
        self.states: list[FeedState] = []
        self.feed = EventFeed(
            url,
            key,
            on_events=self.batches.append,
            on_state=self.states.append,
            backoff=kwargs.pop("backoff", QUICK),  # type: ignore[arg-type]
            rng=random.Random(1),
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def events(self) -> list[WahaEvent]:
        return [e for batch in self.batches for e in batch]

    def phases(self) -> list[str]:
        return [s.phase for s in self.states]


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition never came true")
        await asyncio.sleep(0.01)


@pytest.fixture
async def http(sim_server: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim_server.url, headers={"X-Api-Key": KEY}) as client:
        yield client


@pytest.fixture
async def rig(sim_server: SimulatorServer) -> AsyncIterator[Rig]:
    rig = Rig(sim_server.url)
    rig.feed.start()
    await until(lambda: rig.feed.state.phase == "live")
    yield rig
    await rig.feed.aclose()


async def send(http: httpx.AsyncClient, chat: str = CHAT) -> str:
    resp = await http.post(
        "/api/sendText", json={"session": "default", "chatId": chat, "text": "hi"}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


# -- what arrives --------------------------------------------------------------------------


async def test_a_sends_acks_arrive_with_its_bare_id(rig: Rig, http: httpx.AsyncClient) -> None:
    assert not rig.feed.acks_seen("default")
    await http.post("/_sim/acks", json=FAST)
    sent = await send(http)
    await until(lambda: len(rig.events) == 3)
    acks = rig.events
    assert all(isinstance(a, AckEvent) for a in acks)
    assert [a.ack for a in acks if isinstance(a, AckEvent)] == [Ack.SERVER, Ack.DEVICE, Ack.READ]
    assert {a.wa_id for a in acks if isinstance(a, AckEvent)} == {bare(sent)}
    assert {(a.session, a.chat_id) for a in acks if isinstance(a, AckEvent)} == {("default", CHAT)}
    assert rig.feed.acks_seen("default") and not rig.feed.acks_seen("other")
    assert rig.feed.live_since is not None and rig.states[-1].line() == "events: live"


async def test_duplicates_and_out_of_order_acks_arrive_as_configured(
    rig: Rig, http: httpx.AsyncClient
) -> None:
    await http.post("/_sim/acks", json={**FAST, "duplicate": 1, "out_of_order": 1})
    await send(http)
    await until(lambda: len(rig.events) == 6)
    levels = [e.ack for e in rig.events if isinstance(e, AckEvent)]
    assert levels == [Ack.READ, Ack.READ, Ack.DEVICE, Ack.DEVICE, Ack.SERVER, Ack.SERVER]


async def test_a_reply_and_session_status_arrive(rig: Rig, http: httpx.AsyncClient) -> None:
    await http.post("/_sim/reply", json={"from": "491511234567", "body": "STOP please"})
    await until(lambda: any(isinstance(e, MessageEvent) for e in rig.events))
    reply = next(e for e in rig.events if isinstance(e, MessageEvent))
    assert (reply.session, reply.from_chat, reply.body) == ("default", CHAT, "STOP please")
    await http.post("/api/sessions/default/stop")
    await http.post("/api/sessions/default/start")
    await until(lambda: len([e for e in rig.events if isinstance(e, SessionStatusEvent)]) == 3)
    statuses = [e.status for e in rig.events if isinstance(e, SessionStatusEvent)]
    assert statuses == ["STOPPED", "STARTING", "WORKING"]


async def test_frames_ready_together_are_one_batch_and_bad_frames_are_counted() -> None:
    ack = {
        "event": "message.ack",
        "session": "default",
        "timestamp": 1,
        "payload": {"id": f"true_{CHAT}_AAA", "to": CHAT, "fromMe": True, "ack": 2},
    }

    async def burst(ws: websockets.ServerConnection) -> None:
        frames = [
            "not json",
            "[]",
            json.dumps({"event": "presence.update", "session": "d", "payload": {}}),
        ]
        frames += [json.dumps(ack)] * 50
        for frame in frames:
            await ws.send(frame)
        await asyncio.sleep(10)

    async with websockets.serve(burst, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        rig = Rig(f"http://127.0.0.1:{port}")
        rig.feed.start()
        try:
            await until(lambda: len(rig.events) == 50)
        finally:
            await rig.feed.aclose()
    assert (rig.feed.malformed, rig.feed.ignored, rig.feed.received) == (2, 1, 53)
    assert len(rig.batches) < 50  # frames read in one go were handed over in one call
    assert rig.feed.state.phase == "live"  # bad frames are never fatal


async def test_a_failing_consumer_does_not_stop_the_feed(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    got: list[WahaEvent] = []

    def consume(events: list[WahaEvent]) -> None:
        got.extend(events)
        raise RuntimeError("the database is locked")

    feed = EventFeed(sim_server.url, on_events=consume)
    feed.start()
    try:
        await until(lambda: feed.state.phase == "live")
        await http.post("/_sim/reply", json={"from": CHAT, "body": "one"})
        await until(lambda: len(got) == 1)
        await http.post("/_sim/reply", json={"from": CHAT, "body": "two"})
        await until(lambda: len(got) == 2)
    finally:
        await feed.aclose()


# -- the connection ------------------------------------------------------------------------


async def test_the_feed_comes_back_when_the_server_drops_it(
    rig: Rig, sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    first_live = rig.feed.live_since
    await http.post("/_sim/acks", json=FAST)
    await send(http)
    await until(lambda: rig.feed.acks_seen("default"))
    sim_server.sim.close_sockets(1001, "Server is shutting down")
    await until(lambda: rig.phases()[-2:] == ["down", "live"])
    assert rig.phases() == ["live", "down", "live"]
    down = rig.states[1]
    assert down.reason == "closed by WAHA: 1001 Server is shutting down"
    assert down.next_try is not None and down.next_try - down.since <= timedelta(seconds=0.2)
    assert rig.feed.live_since is not None and first_live is not None
    assert rig.feed.live_since > first_live
    assert not rig.feed.acks_seen("default")  # this connection has seen none yet
    # And it still works.
    await http.post("/_sim/reply", json={"from": CHAT, "body": "back"})
    await until(lambda: any(isinstance(e, MessageEvent) for e in rig.events))


async def test_a_server_that_is_not_there_is_down_with_a_retry() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    rig = Rig(f"http://127.0.0.1:{port}")
    rig.feed.start()
    try:
        await until(lambda: len(rig.states) >= 3)
    finally:
        await rig.feed.aclose()
    first = rig.states[0]
    assert (first.phase, first.reason) == ("down", "connection refused")
    assert all(s.since == first.since for s in rig.states)  # down since the first failure
    later = first.since + timedelta(seconds=12)
    assert first.next_try is not None
    line = FeedState("down", first.since, "connection refused", later + timedelta(seconds=4)).line(
        later
    )
    assert line == "events: down 12s (connection refused), retry in 4s"


async def test_core_2024_10_8_serves_session_status_only(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    await http.post("/_sim/faults", json={"ws": {"version": "2024.10.8"}})
    await http.post("/_sim/acks", json=FAST)
    rig = Rig(sim_server.url)
    rig.feed.start()
    try:
        await until(lambda: rig.feed.state.phase == "live")  # `session=*&events=*` it takes
        await send(http)
        await http.post("/_sim/sessions/default/status", json={"status": "FAILED"})
        await until(lambda: len(rig.events) == 1)
        await asyncio.sleep(0.1)
    finally:
        await rig.feed.aclose()
    assert [type(e) for e in rig.events] == [SessionStatusEvent]
    assert not rig.feed.acks_seen("default")  # a server that sends no acks: nothing to expect


async def test_a_request_core_2024_10_8_refuses_is_not_asked_again_soon(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    await http.post("/_sim/faults", json={"ws": {"version": "2024.10.8"}})
    wanted = ("session.status", "message", "message.ack")
    rig = Rig(sim_server.url, events=wanted, backoff=Backoff(initial=0.01, cap=0.01))
    assert rig.feed.url.endswith(
        "/ws?session=*&events=session.status&events=message&events=message.ack"
    )
    rig.feed.start()
    try:
        await until(lambda: rig.feed.state.phase == "refused")
        await asyncio.sleep(0.3)  # a fast retry loop would have connected again by now
    finally:
        await rig.feed.aclose()
    assert sim_server.sim.events.connections == 1
    assert rig.phases() == ["refused"]
    state = rig.feed.state
    said = "Only 'session.status' event is allowed for now, use events=session.status or events=*"
    assert state.reason == said
    assert state.next_try is not None
    wait = state.next_try - state.since
    assert timedelta(minutes=4) <= wait <= timedelta(minutes=6)
    minutes = round(wait.total_seconds()) // 60
    assert state.line(state.since) == f"events: refused by WAHA ({said}), retry in {minutes}m"


async def test_the_key_goes_in_the_url_only_when_waha_refuses_it_in_the_header(
    sim_server: SimulatorServer, http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim_server.state.require_api_key(KEY)
    rig = Rig(sim_server.url, KEY)
    rig.feed.start()
    try:
        await until(lambda: rig.feed.state.phase == "live")
        # WAHA reads /ws's key from the query only: a try with the header, then one there.
        assert sim_server.sim.events.connections == 2
        await http.post("/_sim/reply", json={"from": CHAT, "body": "hello"})
        await until(lambda: len(rig.events) == 1)
    finally:
        await rig.feed.aclose()
    # A server that takes the header never sees the key in the URL.
    await http.post("/_sim/faults", json={"ws": {"key_header": True}})
    header_only = Rig(sim_server.url, KEY, key_in_query=False)
    header_only.feed.start()
    try:
        await until(lambda: header_only.feed.state.phase == "live")
    finally:
        await header_only.feed.aclose()
    assert sim_server.sim.events.connections == 3
    assert KEY not in caplog.text and "x-api-key=" not in caplog.text.lower()
    assert KEY not in repr(rig.feed) and KEY not in rig.feed.url


async def test_a_wrong_key_is_refused_and_shown_nowhere(
    sim_server: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sim_server.state.require_api_key("the-right-one")
    rig = Rig(sim_server.url, KEY)
    rig.feed.start()
    try:
        await until(lambda: rig.feed.state.phase == "refused")
        await asyncio.sleep(0.2)
    finally:
        await rig.feed.aclose()
    assert sim_server.sim.events.connections == 2  # header, then URL; then minutes of quiet
    state = rig.feed.state
    assert state.reason == "Unauthorized: the API key was refused"
    for record in caplog.records:
        assert KEY not in record.getMessage(), record.getMessage()
        assert KEY not in str(record.args)
    for s in rig.states:
        assert KEY not in s.line() and KEY not in repr(s)
    assert "x-api-key" not in caplog.text.lower()


async def test_a_handshake_refused_with_401_is_a_refusal() -> None:
    async def refuse(
        conn: websockets.ServerConnection, request: websockets.Request
    ) -> websockets.Response:
        return conn.respond(401, "Unauthorized\n")

    async with websockets.serve(
        lambda ws: asyncio.sleep(0), "127.0.0.1", 0, process_request=refuse
    ) as server:
        port = server.sockets[0].getsockname()[1]
        rig = Rig(f"http://127.0.0.1:{port}", KEY, key_in_query=True)
        rig.feed.start()
        try:
            await until(lambda: rig.feed.state.phase == "refused")
        finally:
            await rig.feed.aclose()
    assert rig.feed.state.reason == "HTTP 401: the API key was refused"


async def test_closing_is_prompt_whatever_the_server_does() -> None:
    # A server that takes the connection and never answers the handshake...
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    rig = Rig(f"http://127.0.0.1:{port}", open_timeout=30.0)
    rig.feed.start()
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await rig.feed.aclose()
    assert time.monotonic() - started < 0.5
    silent.close()

    # ...and one that stops reading once the socket is open: no close handshake comes back.
    async def vanish(ws: websockets.ServerConnection) -> None:
        ws.transport.pause_reading()
        await asyncio.sleep(30)

    async with websockets.serve(vanish, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        rig = Rig(f"http://127.0.0.1:{port}", close_timeout=0.3)
        rig.feed.start()
        await until(lambda: rig.feed.state.phase == "live")
        started = time.monotonic()
        await rig.feed.aclose()
        assert time.monotonic() - started < 1.0


# -- words ---------------------------------------------------------------------------------


def test_the_events_url_and_the_state_lines() -> None:
    assert events_url("http://waha:3000") == "ws://waha:3000/ws?session=*&events=*"
    assert events_url("https://h/waha/", "a b&c") == (
        "wss://h/waha/ws?session=*&events=*&x-api-key=a%20b%26c"
    )
    with pytest.raises(UserError):
        EventFeed("ftp://waha", on_events=lambda events: None)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert FeedState("connecting", now).line(now) == "events: connecting"
    assert FeedState("live", now).line(now + timedelta(hours=3)) == "events: live"
    refused = FeedState("refused", now, "Unauthorized", now + timedelta(minutes=5))
    assert refused.line(now) == "events: refused by WAHA (Unauthorized), retry in 5m"
    late = FeedState("down", now, "connection lost", now)
    assert late.line(now + timedelta(hours=2, minutes=3)) == (
        "events: down 2h 3m (connection lost), retrying"
    )


async def test_what_waha_says_is_printable_and_short(sim_server: SimulatorServer) -> None:
    rig = Rig(sim_server.url)
    rig.feed.start()
    try:
        await until(lambda: rig.feed.state.phase == "live")
        sim_server.sim.close_sockets(4001, json.dumps({"error": "\x1b]0;pwned\x07 ok"}))
        await until(lambda: rig.feed.state.phase == "refused")
    finally:
        await rig.feed.aclose()
    reason = rig.feed.state.reason
    assert reason == "\\x1b]0;pwned\\x07 ok"  # the terminal is never told to do anything
