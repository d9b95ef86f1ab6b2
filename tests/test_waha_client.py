"""The WAHA client against the simulator (in-process and on a real socket) and against a
small scripted WAHA stand-in for the answers the simulator never gives (other engines'
body shapes, HTML, invalid JSON, huge bodies)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from waha_tui.errors import UserError
from waha_tui.secret import Secret
from waha_tui.simulator import SimState, Simulator, SimulatorServer
from waha_tui.simulator.state import ERROR_463
from waha_tui.waha import (
    BadResponse,
    GatewayError,
    NoAnswer,
    Refused,
    ServerError,
    SessionMissing,
    SessionNotWorking,
    SessionUnavailable,
    Timeouts,
    Unauthorized,
    Unreachable,
    WahaClient,
    WahaError,
    extract_message_id,
)
from waha_tui.waha.client import MAX_BODY_BYTES

KEY = "sk-LEAKCHECK-7f3a9c51e2"  # distinctive, so any leak is easy to spot
CHAT = "491511234567@c.us"


# -- fixtures ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: str
    raw_path: bytes
    headers: dict[str, str]
    body: bytes


class ScriptedWaha:
    """A WAHA stand-in that answers each (method, path) with a canned reply, and keeps
    every request it got so tests can count and inspect them."""

    def __init__(self) -> None:
        self.replies: dict[tuple[str, str], Callable[[], Response]] = {}
        self.seen: list[Seen] = []
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )

    def reply(
        self,
        method: str,
        path: str,
        status: int = 200,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        data = raw if raw is not None else b"" if body is None else json.dumps(body).encode()
        self.replies[(method, path)] = lambda: Response(data, status, media_type=content_type)

    def reply_with(self, method: str, path: str, factory: Callable[[], Response]) -> None:
        self.replies[(method, path)] = factory

    def requests(self, method: str, path: str) -> list[Seen]:
        return [s for s in self.seen if (s.method, s.path) == (method, path)]

    def count(self, method: str, path: str) -> int:
        return len(self.requests(method, path))

    def json_sent(self, method: str, path: str) -> list[Any]:
        return [json.loads(s.body) for s in self.requests(method, path)]

    async def _handle(self, request: Request) -> Response:
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                request.url.query,
                request.scope.get("raw_path", b""),
                dict(request.headers),
                await request.body(),
            )
        )
        factory = self.replies.get((request.method, request.url.path))
        if factory is None:
            body = {
                "message": f"Cannot {request.method} {request.url.path}",
                "error": "Not Found",
                "statusCode": 404,
            }
            return Response(json.dumps(body), 404, media_type="application/json")
        return factory()


@pytest.fixture
def scripted() -> ScriptedWaha:
    return ScriptedWaha()


@pytest.fixture
async def scripted_client(scripted: ScriptedWaha) -> AsyncIterator[WahaClient]:
    client = WahaClient("http://waha.test", KEY, transport=httpx.ASGITransport(app=scripted.app))
    yield client
    await client.aclose()


@pytest.fixture
def keyed_sim() -> Simulator:
    return Simulator(SimState(api_key=KEY, start_delay=0.0))


@pytest.fixture
async def keyed_client(keyed_sim: Simulator) -> AsyncIterator[WahaClient]:
    client = WahaClient("http://waha.test", KEY, transport=httpx.ASGITransport(app=keyed_sim))
    yield client
    await client.aclose()


@pytest.fixture
def keyed_server() -> Iterator[SimulatorServer]:
    with SimulatorServer(Simulator(SimState(api_key=KEY, start_delay=0.0))) as server:
        yield server


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


# -- the happy paths against the simulator ----------------------------------------------


async def test_client_sends_the_api_key_header(
    keyed_sim: Simulator, keyed_client: WahaClient
) -> None:
    sessions = await keyed_client.list_sessions()
    assert [(s.name, s.status, s.working) for s in sessions] == [("default", "WORKING", True)]
    info = await keyed_client.get_session("default")
    assert info.me_id == "15550000000@c.us"
    assert info.engine == "NOWEB"
    assert await keyed_client.ping() is True
    version = await keyed_client.server_version()
    assert version["version"] == keyed_sim.state.version


async def test_list_sessions_asks_for_stopped_ones_too(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("GET", "/api/sessions", body=[{"name": "a", "status": "STOPPED", "me": None}])
    [info] = await scripted_client.list_sessions()
    assert (info.name, info.status, info.me_id, info.working) == ("a", "STOPPED", None, False)
    [request] = scripted.seen
    assert request.query == "all=true"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["accept"] == "application/json"


async def test_request_paths_and_queries(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("GET", "/api/my shop/auth/qr", 200, {"value": "2@qr"})
    scripted.reply("POST", "/api/my shop/auth/request-code", 201, {"code": "ABCD-EFGH"})
    scripted.reply("GET", "/api/contacts/check-exists", 200, {"numberExists": False})
    assert await scripted_client.get_qr_value("my shop") == "2@qr"
    assert await scripted_client.request_pairing_code("my shop", "15551234567") == "ABCD-EFGH"
    assert await scripted_client.check_exists("my shop", "15551234567") == (False, None)
    [qr] = scripted.requests("GET", "/api/my shop/auth/qr")
    assert qr.query == "format=raw"
    assert qr.raw_path == b"/api/my%20shop/auth/qr"  # one path segment, quoted
    assert scripted.json_sent("POST", "/api/my shop/auth/request-code") == [
        {"phoneNumber": "15551234567"}
    ]
    [exists] = scripted.requests("GET", "/api/contacts/check-exists")
    assert exists.query == "phone=15551234567&session=my+shop"


async def test_list_sessions_query_is_all_true(sim: Simulator, asgi_client: WahaClient) -> None:
    sim.state.add_session("stopped", "STOPPED")
    names = {s.name: s.status for s in await asgi_client.list_sessions()}
    assert names == {"default": "WORKING", "stopped": "STOPPED"}


async def test_session_lifecycle_through_the_client(
    sim: Simulator, asgi_client: WahaClient
) -> None:
    sim.state.start_delay = 0.0
    created = await asgi_client.create_session("shop")
    assert (created.name, created.status) == ("shop", "STARTING")
    assert (await asgi_client.get_session("shop")).status == "SCAN_QR_CODE"
    qr = await asgi_client.get_qr_value("shop")
    assert qr and qr == sim.state.sessions["shop"].qr_value
    code = await asgi_client.request_pairing_code("shop", "15551234567")
    assert len(code) == 9 and code[4] == "-"
    sim.state.scan("shop")
    assert (await asgi_client.get_session("shop")).working
    assert (await asgi_client.stop_session("shop")).status == "STOPPED"
    assert (await asgi_client.start_session("shop")).status == "STARTING"
    assert (await asgi_client.get_session("shop")).status == "WORKING"  # still paired
    assert (await asgi_client.restart_session("shop")).status == "STARTING"
    # As WAHA does: logging out a running session restarts it, unpaired, asking for a QR.
    assert (await asgi_client.logout_session("shop")).status == "STARTING"
    after = await asgi_client.get_session("shop")
    assert (after.status, after.me_id) == ("SCAN_QR_CODE", None)


async def test_send_text_with_pre_generated_id(sim: Simulator, asgi_client: WahaClient) -> None:
    assert asgi_client.message_ids("default") is None
    pre = await asgi_client.new_message_id("default")
    assert pre and asgi_client.message_ids("default") is True
    first = await asgi_client.send_text("default", CHAT, "hi", message_id=pre)
    again = await asgi_client.send_text("default", CHAT, "hi", message_id=pre)
    assert first.message_id == again.message_id == f"true_{CHAT}_{pre}"
    assert len(sim.state.sent()) == 1


async def test_send_image_puts_base64_under_data(sim: Simulator, asgi_client: WahaClient) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    result = await asgi_client.send_image(
        "default", CHAT, caption="look", data=png, mimetype="image/png", filename="a.png"
    )
    [msg] = sim.state.sent()
    assert msg.kind == "image" and msg.text == "look" and msg.id == result.message_id
    assert msg.image is not None
    assert base64.b64decode(msg.image["data"]) == png
    assert (msg.image["mimetype"], msg.image["filename"]) == ("image/png", "a.png")


async def test_send_image_wire_format(scripted: ScriptedWaha, scripted_client: WahaClient) -> None:
    scripted.reply("POST", "/api/sendImage", 201, {"id": "true_x@c.us_1"})
    await scripted_client.send_image("s", CHAT, caption="c", data=b"abc", mimetype="image/jpeg")
    [sent] = scripted.json_sent("POST", "/api/sendImage")
    assert sent == {
        "session": "s",
        "chatId": CHAT,
        "caption": "c",
        "file": {"mimetype": "image/jpeg", "data": base64.b64encode(b"abc").decode()},
    }


async def test_send_text_wire_format(scripted: ScriptedWaha, scripted_client: WahaClient) -> None:
    scripted.reply("POST", "/api/sendText", 201, {"id": "true_x@c.us_1"})
    await scripted_client.send_text("s", CHAT, "hello")
    await scripted_client.send_text("s", CHAT, "hello", message_id="3EB0AA")
    assert scripted.json_sent("POST", "/api/sendText") == [
        {"session": "s", "chatId": CHAT, "text": "hello"},
        {"session": "s", "chatId": CHAT, "text": "hello", "id": "3EB0AA"},
    ]


async def test_typing_and_check_exists(sim: Simulator, asgi_client: WahaClient) -> None:
    await asgi_client.start_typing("default", CHAT)
    await asgi_client.stop_typing("default", CHAT)
    assert sim.state.typing == [("default", CHAT, "start"), ("default", CHAT, "stop")]
    assert await asgi_client.check_exists("default", "+49 151 1234567") == (
        True,
        "491511234567@c.us",
    )
    assert await asgi_client.check_exists("default", "0532030482") == (False, None)


# -- success bodies of every engine -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        pytest.param(201, {"id": f"true_{CHAT}_3EB0A1", "ack": 0}, f"true_{CHAT}_3EB0A1", id="id"),
        pytest.param(
            201,
            {"id": {"fromMe": True, "_serialized": f"true_{CHAT}_3EB0B2"}, "ack": 0},
            f"true_{CHAT}_3EB0B2",
            id="id._serialized",
        ),
        pytest.param(
            201,
            {"_data": {"id": {"_serialized": f"true_{CHAT}_3EB0C3"}}, "ack": 0},
            f"true_{CHAT}_3EB0C3",
            id="webjs-_data.id._serialized",
        ),
        pytest.param(
            201,
            {
                "key": {"remoteJid": "491511234567@s.whatsapp.net", "fromMe": True, "id": "3EB0D4"},
                "message": {"extendedTextMessage": {"text": "hi"}},
                "messageTimestamp": "1738070128",
                "status": "PENDING",
            },
            "3EB0D4",
            id="noweb-key.id",
        ),
        pytest.param(
            201,
            {"id": f"true_{CHAT}_FIRST", "key": {"id": "SECOND"}},
            f"true_{CHAT}_FIRST",
            id="id-wins-over-key",
        ),
        pytest.param(201, None, None, id="empty-201"),
        pytest.param(200, {"id": "X200"}, "X200", id="200-is-success"),
        pytest.param(202, {"status": "queued"}, None, id="202-without-id"),
    ],
)
async def test_every_engine_success_shape(
    scripted: ScriptedWaha,
    scripted_client: WahaClient,
    status: int,
    body: Any,
    expected: str | None,
) -> None:
    scripted.reply("POST", "/api/sendText", status, body)
    result = await scripted_client.send_text("default", CHAT, "hi")
    assert result.message_id == expected
    assert result.body == body


@pytest.mark.parametrize(
    "body",
    [None, [], "id", 7, {}, {"id": ""}, {"id": 5}, {"id": {"x": 1}}, {"_data": []}, {"key": "k"}],
)
def test_extract_message_id_ignores_odd_shapes(body: Any) -> None:
    assert extract_message_id(body) is None


async def test_empty_201_with_whitespace_is_success(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("POST", "/api/sendText", 201, raw=b"  \n")
    assert (await scripted_client.send_text("default", CHAT, "hi")).message_id is None


# -- answers that are not WAHA answers ---------------------------------------------------


async def test_html_200_is_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    page = b"<!doctype html><html><body>Welcome to nginx!</body></html>"
    scripted.reply("POST", "/api/sendText", 200, raw=page, content_type="text/html")
    with pytest.raises(BadResponse) as info:
        await scripted_client.send_text("default", CHAT, "hi")
    assert "non-JSON" in str(info.value) and "text/html" in str(info.value)
    assert info.value.status_code == 200


@pytest.mark.parametrize(
    "raw",
    [b'{"id":', b"\xff\xfe\x00garbage", b"[" * 100_000],
    ids=["truncated", "not-utf8", "absurdly-nested"],
)
async def test_invalid_json_is_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient, raw: bytes
) -> None:
    scripted.reply("POST", "/api/sendText", 201, raw=raw)
    with pytest.raises(BadResponse, match="non-JSON"):
        await scripted_client.send_text("default", CHAT, "hi")


async def test_ten_megabyte_body_is_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("GET", "/api/sessions", 200, raw=b"[" + b" " * (10 * 1024 * 1024) + b"]")
    with pytest.raises(BadResponse) as info:
        await scripted_client.list_sessions()
    message = str(info.value)
    assert "10 MB" in message and f"{MAX_BODY_BYTES // (1024 * 1024)} MB limit" in message


async def test_oversized_streamed_body_without_length_is_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(12):
            yield b" " * (1024 * 1024)

    scripted.reply_with(
        "GET", "/api/sessions", lambda: StreamingResponse(chunks(), media_type="application/json")
    )
    with pytest.raises(BadResponse, match=r"a body over the 2 MB limit"):
        await scripted_client.list_sessions()


async def test_redirect_is_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("GET", "/api/sessions/default", 302, raw=b"")
    with pytest.raises(BadResponse, match="HTTP 302"):
        await scripted_client.get_session("default")


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("list", {"not": "a list"}),
        ("get", ["no name"]),
        ("qr", {"mimetype": "image/png"}),
        ("version", []),
        ("exists", {"chatId": "1@c.us"}),
        ("new_id", {"id": 5}),
    ],
)
async def test_unexpected_json_shapes_are_bad_response(
    scripted: ScriptedWaha, scripted_client: WahaClient, call: str, body: Any
) -> None:
    calls = {
        "list": ("GET", "/api/sessions", lambda: scripted_client.list_sessions()),
        "get": ("GET", "/api/sessions/s", lambda: scripted_client.get_session("s")),
        "qr": ("GET", "/api/s/auth/qr", lambda: scripted_client.get_qr_value("s")),
        "version": ("GET", "/api/server/version", lambda: scripted_client.server_version()),
        "exists": (
            "GET",
            "/api/contacts/check-exists",
            lambda: scripted_client.check_exists("s", "1"),
        ),
        "new_id": ("GET", "/api/s/new-message-id", lambda: scripted_client.new_message_id("s")),
    }
    method, path, run = calls[call]
    scripted.reply(method, path, 200, body)
    with pytest.raises(BadResponse):
        await run()


# -- new-message-id support --------------------------------------------------------------


async def test_new_message_id_404_is_a_session_question_for_the_policy(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    """A 404 on new-message-id cannot tell an old server (no such route) from a stopped
    session: the client says so by its class, by status and route, whatever the words, and
    remembers nothing; the runner's policy asks the session and decides."""
    path = "/api/default/new-message-id"  # not scripted: "Cannot GET" (old WAHA)
    with pytest.raises(SessionUnavailable) as old:
        await scripted_client.new_message_id("default")
    assert old.value.session == "default" and old.value.route == f"GET {path}"
    scripted.reply(
        "GET",
        "/api/ghost/new-message-id",
        404,
        {
            "statusCode": 404,
            "message": "We didn't find a session with name 'ghost'.\nPlease start it first",
            "error": "Not Found",
        },
    )
    with pytest.raises(SessionUnavailable):
        await scripted_client.new_message_id("ghost")
    assert scripted_client.message_ids("default") is None
    scripted_client.no_message_ids("default")  # what the runner does once it knows
    assert scripted_client.message_ids("default") is False
    assert scripted_client.message_ids("ghost") is None  # per session


async def test_new_message_id_off_in_the_simulator(sim: Simulator) -> None:
    sim.state.message_ids = False
    async with WahaClient("http://waha.test", transport=httpx.ASGITransport(app=sim)) as client:
        with pytest.raises(SessionUnavailable):
            await client.new_message_id("default")
        sim.state.message_ids = True
        assert await client.new_message_id("default")
        assert client.message_ids("default") is True


# -- every typed error -------------------------------------------------------------------


async def test_unauthorized_without_or_with_a_wrong_key(keyed_sim: Simulator) -> None:
    transport = httpx.ASGITransport(app=keyed_sim)
    for key in (None, "wrong-key"):
        async with WahaClient("http://waha.test", key, transport=transport) as client:
            with pytest.raises(Unauthorized) as info:
                await client.get_session("default")
            assert info.value.status_code == 401
            assert "401" in str(info.value)
            assert await client.ping() is True  # /ping needs no key


async def test_session_not_found(asgi_client: WahaClient) -> None:
    # A session route's 404 means the session does not exist ...
    with pytest.raises(SessionMissing) as info:
        await asgi_client.get_session("nope")
    assert info.value.session == "nope" and info.value.status_code == 404
    assert "nope" in str(info.value)
    # ... a message route's 404 only that it is not available (missing, or not started).
    with pytest.raises(SessionUnavailable) as send:
        await asgi_client.send_text("nope", CHAT, "hi")
    assert send.value.session == "nope" and send.value.route == "POST /api/sendText"


@pytest.mark.parametrize("status", ["STARTING", "SCAN_QR_CODE", "FAILED"])
async def test_session_not_working_carries_the_status(
    sim: Simulator, asgi_client: WahaClient, status: str
) -> None:
    sim.state.set_status("default", status)
    with pytest.raises(SessionNotWorking) as info:
        await asgi_client.send_text("default", CHAT, "hi")
    assert (info.value.session, info.value.status, info.value.status_code) == (
        "default",
        status,
        422,
    )
    assert status in str(info.value)
    assert sim.state.sent() == []


async def test_other_4xx_are_refused_with_their_status(
    sim: Simulator, asgi_client: WahaClient
) -> None:
    # 400 from the body validation (no mimetype).
    with pytest.raises(Refused) as bad_file:
        await asgi_client.send_image("default", CHAT, caption="", data=b"x", mimetype="")
    assert bad_file.value.status_code == 400 and "file must be an object" in str(bad_file.value)
    # 422 that is not about a WORKING session: the QR of a session that is already paired.
    with pytest.raises(SessionNotWorking) as qr:
        await asgi_client.get_qr_value("default")
    assert qr.value.expected == ["SCAN_QR_CODE"] and qr.value.status == "WORKING"
    assert qr.value.status_code == 422
    # 422 plain string exception.
    with pytest.raises(Refused, match="already exists"):
        await asgi_client.create_session("default")
    assert sim.state.sent() == []


async def test_a_404_is_classified_by_route_and_body_not_by_its_words(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    # WAHA's JSON on a message route, whatever it says: the session is not available.
    with pytest.raises(SessionUnavailable) as info:
        await scripted_client.send_text("default", CHAT, "hi")
    assert info.value.status_code == 404 and "Cannot POST /api/sendText" in info.value.detail
    # A proxy's HTML 404 is not WAHA speaking of a session.
    scripted.reply("POST", "/api/sendText", 404, raw=b"<html>404</html>", content_type="text/html")
    with pytest.raises(Refused) as page:
        await scripted_client.send_text("default", CHAT, "hi")
    assert not isinstance(page.value, SessionUnavailable) and page.value.status_code == 404
    # A session route's 404 means the session does not exist.
    scripted.reply(
        "GET",
        "/api/sessions/sales",
        404,
        {"statusCode": 404, "message": "Session not found", "error": "Not Found"},
    )
    with pytest.raises(SessionMissing, match="no session named 'sales'"):
        await scripted_client.get_session("sales")


async def test_422_with_odd_expected_is_refused(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    scripted.reply("POST", "/api/sendText", 422, {"expected": 5, "message": "odd"})
    with pytest.raises(Refused, match="odd"):
        await scripted_client.send_text("default", CHAT, "hi")


async def test_server_error_keeps_whatsapps_message(
    sim: Simulator, asgi_client: WahaClient
) -> None:
    sim.state.fail_next_sends(1, ERROR_463)
    with pytest.raises(ServerError) as info:
        await asgi_client.send_text("default", CHAT, "hi")
    assert info.value.status_code == 500
    assert "server returned error 463" in str(info.value)
    assert ERROR_463 in str(info.value)
    assert sim.state.sent() == []


async def test_html_502_from_a_proxy_is_a_gateway_error(
    scripted: ScriptedWaha, scripted_client: WahaClient
) -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head></html>"
    scripted.reply("POST", "/api/sendText", 502, raw=page, content_type="text/html")
    with pytest.raises(GatewayError, match="502 Bad Gateway") as info:
        await scripted_client.send_text("default", CHAT, "hi")
    assert info.value.status_code == 502


async def test_unreachable_on_a_closed_port() -> None:
    port = closed_port()
    async with WahaClient(f"http://127.0.0.1:{port}", KEY) as client:
        with pytest.raises(Unreachable) as info:
            await client.send_text("default", CHAT, "hi")
    # In words, not the name of httpx's exception (ConnectError).
    assert str(info.value) == f"WAHA at http://127.0.0.1:{port} is unreachable (connection refused)"
    assert info.value.status_code is None


async def test_ambiguous_when_the_server_hangs(sim_server: SimulatorServer) -> None:
    sim_server.state.set_hang(0.5)
    timeouts = Timeouts(connect=1.0, read=0.1, write=1.0, pool=1.0)
    async with WahaClient(sim_server.url, timeouts=timeouts) as client:
        started = time.monotonic()
        with pytest.raises(NoAnswer, match=r"no answer within 0\.1 s .*may have been sent"):
            await client.send_text("default", CHAT, "slow")
        assert time.monotonic() - started < 0.45  # the client's own timeout, not the server's
    # Ambiguous indeed: the server carries the send out after the client gave up.
    assert wait_for(lambda: len(sim_server.state.sent()) == 1)


async def test_ambiguous_when_the_connection_drops_after_record(
    sim_server: SimulatorServer,
) -> None:
    sim_server.state.drop_after_record(1)
    async with WahaClient(sim_server.url) as client:
        with pytest.raises(NoAnswer) as lost:
            await client.send_text("default", CHAT, "first")
        said = str(lost.value)
        assert said.startswith("the connection to WAHA was lost (") and "Error" not in said
        assert said.endswith(
            ") during POST /api/sendText (sending a message); the message may have been sent"
        )
        [recorded] = sim_server.state.sent()
        assert recorded.text == "first"
        result = await client.send_text("default", CHAT, "second")  # the fault was one-shot
    assert result.message_id and result.message_id.startswith(f"true_{CHAT}_")
    assert [m.text for m in sim_server.state.sent()] == ["first", "second"]


async def test_real_socket_round_trip_with_key(keyed_server: SimulatorServer) -> None:
    async with WahaClient(keyed_server.url, Secret(KEY)) as client:
        result = await client.send_text("default", "491511234567", "over tcp")
        assert result.message_id and result.message_id.startswith(f"true_{CHAT}_")
    async with WahaClient(keyed_server.url) as client:
        with pytest.raises(Unauthorized):
            await client.list_sessions()


def test_every_error_is_a_user_error() -> None:
    for cls in (
        BadResponse,
        GatewayError,
        NoAnswer,
        Refused,
        ServerError,
        SessionMissing,
        SessionNotWorking,
        SessionUnavailable,
        Unauthorized,
        Unreachable,
    ):
        assert issubclass(cls, WahaError) and issubclass(cls, UserError)


# -- the API key never leaks --------------------------------------------------------------


async def test_api_key_never_in_reprs_messages_or_logs(
    caplog: pytest.LogCaptureFixture,
    keyed_sim: Simulator,
    keyed_server: SimulatorServer,
    scripted: ScriptedWaha,
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []

    async def expect(error: type[WahaError], run: Callable[[], Any]) -> None:
        with pytest.raises(error) as info:
            await run()
        errors.append(info.value)

    keyed_sim.state.fail_next_sends(1, ERROR_463)
    client = WahaClient("http://waha.test", KEY, transport=httpx.ASGITransport(app=keyed_sim))
    async with client:
        assert KEY not in repr(client) and KEY not in str(client)
        await expect(SessionMissing, lambda: client.get_session("nope"))
        await expect(ServerError, lambda: client.send_text("default", "1@c.us", "x"))
        await expect(SessionNotWorking, lambda: client.get_qr_value("default"))
        keyed_sim.state.set_status("default", "STARTING")
        await expect(SessionNotWorking, lambda: client.send_text("default", "2@c.us", "x"))
        keyed_sim.state.require_api_key("another-key")
        await expect(Unauthorized, lambda: client.list_sessions())

    # A proxy that echoes the request (headers included) into its error message.
    scripted.reply(
        "POST", "/api/sendText", 500, {"exception": {"message": f"echo X-Api-Key {KEY}"}}
    )
    scripted.reply("GET", "/", 200, raw=b"<html>" + KEY.encode(), content_type="text/html")
    async with WahaClient(
        "http://waha.test", KEY, transport=httpx.ASGITransport(app=scripted.app)
    ) as echo:
        await expect(ServerError, lambda: echo.send_text("default", CHAT, "x"))
        assert "echo X-Api-Key ***" in str(errors[-1])

    keyed_server.state.set_hang(0.4)
    timeouts = Timeouts(read=0.1)
    async with WahaClient(keyed_server.url, KEY, timeouts=timeouts) as real:
        assert KEY not in repr(real)
        assert (await real.get_session("default")).working  # logs a real request at DEBUG
        await expect(NoAnswer, lambda: real.send_text("default", CHAT, "x"))
    async with WahaClient(f"http://127.0.0.1:{closed_port()}", KEY) as dead:
        await expect(Unreachable, lambda: dead.ping())

    assert len(errors) == 8
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error), type(error).__name__
        assert KEY not in repr(error.__cause__) and KEY not in repr(error.args)
    assert caplog.records, "httpx logs requests at DEBUG/INFO: the check must see them"
    assert KEY not in caplog.text
    for record in caplog.records:
        assert KEY not in record.getMessage()


def test_api_key_with_unsendable_characters_is_a_user_error() -> None:
    for bad in ("kéy-" + KEY, KEY + "\n", "tab\t" + KEY):
        with pytest.raises(UserError) as info:
            WahaClient("http://localhost:3000", bad)
        assert KEY not in str(info.value) and "API key" in str(info.value)


def test_timeouts_are_always_finite() -> None:
    client = WahaClient("http://localhost:3000", timeouts=Timeouts(read=7.5))
    timeout = client._http.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (5.0, 7.5, 10.0, 5.0)
    default = WahaClient("http://localhost:3000")._http.timeout
    assert None not in (default.connect, default.read, default.write, default.pool)


# -- the WAHA URL --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("localhost:3000", "expected http://host:port"),
        ("http://", "expected http://host:port"),
        ("ftp://waha:21", "expected http://host:port"),
        ("//waha:3000", "expected http://host:port"),
        ("http://waha:port", "invalid port"),
        ("http://waha:99999", "invalid port"),
        ("http://[::1", "expected http://host:port"),
        ("http://wa ha:3000", "spaces"),
        ("http://waha:3000/\x00", "control characters"),
    ],
)
def test_malformed_waha_url_is_a_clear_user_error(url: str, expected: str) -> None:
    with pytest.raises(UserError) as info:
        WahaClient(url)
    assert not isinstance(info.value, WahaError)
    assert "WAHA URL" in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize(
    "url",
    [f"http://waha:3000/?x-api-key={KEY}", f"http://admin:{KEY}@waha:3000", f"http://waha/#{KEY}"],
)
def test_waha_url_with_secrets_is_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(UserError, match="must not contain") as info:
        WahaClient(url)
    assert KEY not in str(info.value)
    assert "waha" in str(info.value)


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://localhost:3000/", "http://localhost:3000"),
        ("  https://waha.example.com  ", "https://waha.example.com"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("http://10.0.0.5:3000/waha/", "http://10.0.0.5:3000/waha"),
    ],
)
def test_valid_waha_urls(url: str, base: str) -> None:
    client = WahaClient(url)
    assert client.base_url == base
    assert repr(client) == f"WahaClient({base!r})"


async def test_base_url_with_a_path_prefix(scripted: ScriptedWaha) -> None:
    scripted.reply("GET", "/waha/api/sessions/default", 200, {"name": "default", "status": "X"})
    transport = httpx.ASGITransport(app=scripted.app)
    async with WahaClient("http://waha.test/waha/", transport=transport) as client:
        info = await client.get_session("default")
    assert (info.name, info.status, info.working) == ("default", "X", False)


async def test_a_call_that_is_not_a_send_times_out_saying_what_it_was_doing() -> None:
    """NOWEB never answers a pairing-code request outside SCAN_QR_CODE (the recording's
    13_request_code: no answer in 150 s). Only a send "may have been carried out"."""
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with WahaClient(url, timeouts=Timeouts(read=0.2)) as client:
            with pytest.raises(NoAnswer) as info:
                await asyncio.wait_for(client.request_pairing_code("default", "4915100000001"), 5)
            with pytest.raises(NoAnswer) as send:
                await asyncio.wait_for(client.send_text("default", CHAT, "hi"), 5)
    text = str(info.value)
    assert "requesting a pairing code for session 'default'" in text
    assert "no answer within 0.2 s" in text
    assert "may have" not in text and "carried out" not in text
    assert "the message may have been sent" in str(send.value)


async def test_a_request_searches_for_no_module(sim_server: SimulatorServer) -> None:
    """After the first request, none looks for a module: httpcore's `import sniffio` on
    every request searched all of sys.path each time while sniffio was not installed."""
    import importlib.abc
    import sys

    searched: list[str] = []

    class Spy(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
            searched.append(name)
            return None

    async with WahaClient(sim_server.url) as client:
        await client.get_session("default")  # whatever loads lazily, once
        spy = Spy()
        sys.meta_path.insert(0, spy)
        try:
            for _ in range(3):
                await client.get_session("default")
                await client.send_text("default", "4915100000001@c.us", "hi")
        finally:
            sys.meta_path.remove(spy)
    assert searched == []


async def test_many_sessions_send_at_once_without_queueing(sim_server: SimulatorServer) -> None:
    # One process runs a campaign per session: 60 sends on the wire at once, each answered
    # after 0.5 s, all go out together (a pool of 20 connections took three rounds).
    state = sim_server.state
    for i in range(60):
        state.set_status(f"s{i}", "WORKING")
    state.set_latency(0.5)
    async with WahaClient(sim_server.url) as client:
        await client.get_session("s0")  # connected before the clock starts
        began = time.monotonic()
        await asyncio.gather(
            *(client.send_text(f"s{i}", f"49151000000{i:02d}@c.us", "hi") for i in range(60))
        )
        elapsed = time.monotonic() - began
    assert len(state.sent()) == 60
    assert elapsed < 1.0, elapsed
