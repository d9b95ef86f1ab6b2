"""The simulator's events, over real sockets: /ws as WAHA serves it (and as Core 2024.10.8
refused it), the envelope and payloads against WAHA's spec, acks as configured, replies,
and webhooks signed as WAHA signs them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.test_simulator_schema import SPEC_URI, spec, validate
from waha_tui.simulator import SimulatorServer
from waha_tui.simulator.events import signature
from waha_tui.waha.message_ids import bare

CHAT = "491511234567@c.us"
EVENT_ID = re.compile(r"^evt_[0-9a-hjkmnp-tv-z]{26}$")  # a lower-case ULID
FAST = {"server": 0.005, "device": 0.01, "read": 0.015, "read_share": 1}


def envelope_schema(name: str) -> dict[str, Any]:
    """The spec's WAHAWebhook* component, with `event` as what it means: the generator
    declares it `type: object` with an enum of strings, which nothing can match, and its
    `default` names the component's event."""

    def absolute(node: Any) -> Any:  # the copy's refs still point into the spec
        if isinstance(node, dict):
            return {
                k: (SPEC_URI + v if k == "$ref" and v.startswith("#") else absolute(v))
                for k, v in node.items()
            }
        return [absolute(v) for v in node] if isinstance(node, list) else node

    schema = absolute(spec()["components"]["schemas"][name])
    event = schema["properties"]["event"]
    schema["properties"]["event"] = {"const": event["default"]}
    assert event["default"] in event["enum"]
    return dict(schema)


def ws_url(server: SimulatorServer, query: str = "session=*&events=*") -> str:
    return f"ws://127.0.0.1:{server.port}/ws?{query}"


async def next_event(ws: Any, timeout: float = 3.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def events_of(ws: Any, count: int) -> list[dict[str, Any]]:
    return [await next_event(ws) for _ in range(count)]


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as caught:
        await asyncio.wait_for(ws.recv(), 3)
    assert caught.value.rcvd is not None, "closed without a close frame"
    return caught.value.rcvd.code, caught.value.rcvd.reason


@pytest.fixture
async def http(sim_server: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim_server.url) as client:
        yield client


async def send(http: httpx.AsyncClient, chat: str = CHAT, text: str = "hi") -> str:
    resp = await http.post(
        "/api/sendText", json={"session": "default", "chatId": chat, "text": text}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


# -- acks ----------------------------------------------------------------------------------


async def test_a_send_is_acked_server_device_read_in_wahas_shape(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    assert (await http.post("/_sim/acks", json=FAST)).status_code == 200
    async with websockets.connect(ws_url(sim_server)) as ws:
        sent = await send(http)
        acks = await events_of(ws, 3)
    assert [a["payload"]["ack"] for a in acks] == [1, 2, 3]
    assert [a["payload"]["ackName"] for a in acks] == ["SERVER", "DEVICE", "READ"]
    for env in acks:
        validate(env, envelope_schema("WAHAWebhookMessageAck"))
        assert EVENT_ID.match(env["id"]), env["id"]
        assert env["event"] == "message.ack" and env["session"] == "default"
        assert env["me"]["id"] == "15550000000@c.us"
        payload = env["payload"]
        assert payload["id"] == f"true_{CHAT}_{bare(sent)}"  # the serialized form
        assert bare(payload["id"]) == bare(sent)
        assert (payload["fromMe"], payload["to"]) == (True, CHAT)
    assert len({a["id"] for a in acks}) == 3


async def test_duplicates_and_out_of_order_acks_on_demand(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    plan = {**FAST, "duplicate": 1, "out_of_order": 1}
    assert (await http.post("/_sim/acks", json=plan)).status_code == 200
    async with websockets.connect(ws_url(sim_server)) as ws:
        await send(http)
        acks = await events_of(ws, 6)
    assert [a["payload"]["ack"] for a in acks] == [3, 3, 2, 2, 1, 1]
    assert len({a["id"] for a in acks}) == 6  # a duplicate is an event of its own


async def test_a_chats_outcome_is_fixed_and_shares_are_drawn_from_the_seed(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    never, failing, delivered = "491510000001@c.us", "491510000002@c.us", "491510000003@c.us"
    plan = {**FAST, "chats": {never: "none", failing: "error", "491510000003": "device"}}
    assert (await http.post("/_sim/acks", json=plan)).status_code == 200
    async with websockets.connect(ws_url(sim_server)) as ws:
        for chat in (never, failing, delivered):
            await send(http, chat)
        got = await events_of(ws, 3)
        with pytest.raises(TimeoutError):
            await next_event(ws, timeout=0.2)  # nothing for `never`, no READ for `delivered`
    levels = sorted((e["payload"]["to"], e["payload"]["ack"]) for e in got)
    assert levels == [(failing, -1), (delivered, 1), (delivered, 2)]
    # The same seed draws the same outcomes: half of the messages read, by a fixed draw.
    outcomes = []
    for _ in range(2):
        plan = {**FAST, "read_share": 0.5, "seed": 7}
        assert (await http.post("/_sim/acks", json=plan)).status_code == 200
        async with websockets.connect(ws_url(sim_server)) as ws:
            for i in range(6):
                await send(http, f"49151000001{i}@c.us")
            seen: dict[str, int] = {}
            with pytest.raises(TimeoutError):
                while True:
                    env = await next_event(ws, timeout=0.3)
                    seen[env["payload"]["to"]] = env["payload"]["ack"]
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0].values()) == {2, 3}


async def test_the_ack_plan_is_checked_and_reset(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    for bad in ({"server": -1}, {"read_share": 2}, {"chats": {CHAT: "lost"}}, {"nope": 1}):
        resp = await http.post("/_sim/acks", json=bad)
        assert resp.status_code == 422, bad
        assert "invalid acks" in resp.json()["message"]
    await http.post("/_sim/acks", json={"none_share": 1})
    assert sim_server.state.acks.none_share == 1
    await http.post("/_sim/reset")
    assert sim_server.state.acks.none_share == 0 and sim_server.state.acks.server == 0.2


# -- session.status and replies ------------------------------------------------------------


async def test_session_status_on_every_change(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    async with websockets.connect(
        ws_url(sim_server, "session=default&events=session.status")
    ) as ws:
        await http.post("/api/sessions/default/stop")
        await http.post("/api/sessions/default/start")
        got = await events_of(ws, 3)  # WORKING comes by itself when STARTING is over
    assert [e["payload"]["status"] for e in got] == ["STOPPED", "STARTING", "WORKING"]
    for env in got:
        validate(env, envelope_schema("WAHAWebhookSessionStatus"))
    assert [p["status"] for p in got[-1]["payload"]["statuses"]][-3:] == [
        "STOPPED",
        "STARTING",
        "WORKING",
    ]
    assert "me" not in got[0] and got[-1]["me"]["id"] == "15550000000@c.us"


async def test_a_reply_arrives_as_a_message_event(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    async with websockets.connect(ws_url(sim_server, "events=message&events=message.ack")) as ws:
        resp = await http.post("/_sim/reply", json={"from": "+49 151 1234567", "body": "STOP"})
        assert resp.status_code == 200
        env = await next_event(ws)
        lid = await http.post("/_sim/reply", json={"from": "123456789@lid", "body": "who?"})
        assert lid.status_code == 200
        from_lid = await next_event(ws)
    validate(env, envelope_schema("WAHAWebhookMessage"))
    payload = env["payload"]
    assert (payload["from"], payload["fromMe"], payload["body"]) == (CHAT, False, "STOP")
    assert payload["id"] == resp.json()["id"] and payload["id"].startswith(f"false_{CHAT}_")
    assert from_lid["payload"]["from"] == "123456789@lid"
    refused = await http.post("/_sim/reply", json={"from": "abc", "body": "x"})
    assert refused.status_code == 422
    await http.post("/_sim/sessions/default/status", json={"status": "STOPPED"})
    assert (await http.post("/_sim/reply", json={"from": CHAT})).status_code == 422


# -- the socket: key, parameters, 2024.10.8 -------------------------------------------------


async def test_the_key_is_read_from_the_query_as_waha_does(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    sim_server.state.require_api_key("s3cret")
    for query, headers in (
        ("session=*&events=*", None),
        ("session=*&events=*&x-api-key=wrong", None),
        ("session=*&events=*", {"X-Api-Key": "s3cret"}),  # WAHA reads no header on /ws
    ):
        async with websockets.connect(ws_url(sim_server, query), additional_headers=headers) as ws:
            assert await closed_with(ws) == (1008, "Unauthorized")
    async with websockets.connect(ws_url(sim_server, "X-API-KEY=s3cret")) as ws:
        await http.post("/_sim/sessions/default/status", json={"status": "FAILED"})
        assert (await next_event(ws))["payload"]["status"] == "FAILED"
    # The knob for a server that takes the header.
    await http.post("/_sim/faults", json={"ws": {"key_header": True}})
    async with websockets.connect(
        ws_url(sim_server), additional_headers={"X-Api-Key": "s3cret"}
    ) as ws:
        await http.post("/_sim/sessions/default/status", json={"status": "WORKING"})
        assert (await next_event(ws))["payload"]["status"] == "WORKING"


async def test_core_2024_10_8_refuses_all_but_its_two_requests_with_4001(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    resp = await http.post("/_sim/faults", json={"ws": {"version": "2024.10.8"}})
    assert resp.status_code == 200
    only_status = (
        "Only 'session.status' event is allowed for now, use events=session.status or events=*"
    )
    for query, error in (
        (
            "session=default&events=*",
            "Only connecting to all sessions is allowed for now, use session=*",
        ),
        ("session=*&events=message.ack", only_status),
        ("session=*&events=session.status,message", only_status),
    ):
        async with websockets.connect(ws_url(sim_server, query)) as ws:
            code, reason = await closed_with(ws)
        assert (code, json.loads(reason)) == (4001, {"error": error}), query
    async with websockets.connect(ws_url(sim_server)) as ws:
        await http.post("/_sim/acks", json=FAST)
        await send(http)  # acked, but 2024.10.8 sends session.status only
        await http.post("/api/sessions/default/stop")
        env = await next_event(ws)
    assert env["event"] == "session.status" and env["payload"] == {
        "name": "default",
        "status": "STOPPED",
        "statuses": env["payload"]["statuses"],
    }
    assert "id" not in env and "timestamp" not in env  # 2024.10.8's envelope had neither
    assert (await http.post("/_sim/faults", json={"ws": {"version": "9"}})).status_code == 422


async def test_the_simulator_closes_every_socket_on_demand(
    sim_server: SimulatorServer, http: httpx.AsyncClient
) -> None:
    async with (
        websockets.connect(ws_url(sim_server)) as one,
        websockets.connect(ws_url(sim_server)) as two,
    ):
        await asyncio.sleep(0.05)
        assert (
            await http.post("/_sim/ws/close", json={"code": 1012, "reason": "restart"})
        ).status_code == 200
        assert await closed_with(one) == (1012, "restart")
        assert await closed_with(two) == (1012, "restart")
    assert (await http.post("/_sim/ws/close", json={"code": 5})).status_code == 422


# -- webhooks ------------------------------------------------------------------------------


def test_the_hmac_is_wahas_documented_test_vector() -> None:
    body = b'{"event":"message","session":"default","engine":"WEBJS"}'
    digest = signature(body, "my-secret-key")
    assert digest.startswith("208f8a55") and digest.endswith("3fa89")
    assert digest == hmac.new(b"my-secret-key", body, hashlib.sha512).hexdigest()


class Receiver:
    """A webhook receiver on a loopback port: a tiny Starlette app under uvicorn."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.got = threading.Event()
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, lifespan="off", log_level="critical")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])), daemon=True
        )

    async def hook(self, request: Request) -> JSONResponse:
        self.calls.append((dict(request.headers), await request.body()))
        self.got.set()
        return JSONResponse({"ok": True})

    def __enter__(self) -> Receiver:
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rec:
        yield rec


async def test_a_webhook_gets_the_events_signed(
    sim_server: SimulatorServer, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nobody listens there: that webhook fails, and nothing else does
    config = {
        "webhooks": [
            {"url": f"http://127.0.0.1:{dead_port}/x", "events": ["*"]},
            {
                "url": f"http://127.0.0.1:{receiver.port}/hook",
                "events": ["message.ack", "nonsense"],
                "hmac": {"key": "my-secret-key"},
                "customHeaders": [{"name": "X-Team", "value": "ops"}],
            },
        ],
        "metadata": {"user.id": "7"},
    }
    resp = await http.post("/api/sessions", json={"name": "hooked", "config": config})
    assert resp.status_code == 201, resp.text
    await asyncio.sleep(0.1)  # STARTING, then SCAN_QR_CODE: session.status, not asked for
    assert (await http.post("/_sim/sessions/hooked/scan")).status_code == 200
    await http.post("/_sim/acks", json={**FAST, "chats": {CHAT: "server"}})
    answer = await http.post(
        "/api/sendText", json={"session": "hooked", "chatId": CHAT, "text": "x"}
    )
    assert answer.status_code == 201
    assert await asyncio.to_thread(receiver.got.wait, 5)
    await asyncio.sleep(0.1)
    assert len(receiver.calls) == 1  # one ack; no session.status (not subscribed)
    headers, raw = receiver.calls[0]
    assert headers["x-webhook-hmac"] == hmac.new(b"my-secret-key", raw, hashlib.sha512).hexdigest()
    assert headers["x-webhook-hmac-algorithm"] == "sha512"
    assert headers["x-team"] == "ops" and headers["x-webhook-request-id"]
    assert abs(int(headers["x-webhook-timestamp"]) - json.loads(raw)["timestamp"]) < 5000
    env = json.loads(raw)
    validate(env, envelope_schema("WAHAWebhookMessageAck"))
    assert env["session"] == "hooked" and env["metadata"] == {"user.id": "7"}
    assert bare(env["payload"]["id"]) == bare(answer.json()["id"])
    # The simulator still answers after the failed webhook.
    assert (await http.get("/api/sessions/hooked")).status_code == 200


async def test_a_session_config_without_proper_webhooks_is_refused(http: httpx.AsyncClient) -> None:
    resp = await http.post(
        "/api/sessions", json={"name": "bad", "config": {"webhooks": [{"x": 1}]}}
    )
    assert resp.status_code == 400
    resp = await http.put("/api/sessions/default", json={"config": {"webhooks": "http://x"}})
    assert resp.status_code == 400
