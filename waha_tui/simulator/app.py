"""A WAHA look-alike as an ASGI app: WAHA's routes, status codes and bodies, plus faults.

The same app serves tests in-process (httpx.ASGITransport) and users on a loopback port
(uvicorn, see `server.py`). Control routes live under `/_sim/`, a prefix WAHA never uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from waha_tui.simulator.events import EventHub, Listener, unmask
from waha_tui.simulator.state import (
    CONNECTION_CLOSED,
    ERROR_463,
    PROXY_STATUSES,
    RATE_OVERLIMIT,
    SEND_SHAPES,
    STATUSES,
    WS_VERSIONS,
    AckPlan,
    ChatFault,
    SimSession,
    SimState,
)

logger = logging.getLogger(__name__)

QR_PNG_BASE64 = (  # a 1x1 grey PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
DOCS_URL = "https://waha.devlike.pro/"
# The exact wordings of WAHA Core 2024.10.8 (real-2024.10.8.json).
CORE_ONLY = (
    "WAHA Core support only 'default' session. If you want to run more then one WhatsApp "
    f"account - please get WAHA PLUS version. Check this out: {DOCS_URL}"
)
STATUS_NOT_AS_EXPECTED = "Session status is not as expected. Try again later or restart the session"
NOT_IMPLEMENTED = "The method is not implemented by the engine."
# WEBJS's pairing-code failure outside SCAN_QR_CODE (recording 34_webjs_request_code).
WEBJS_PAIRING_ERROR = (
    "Evaluation failed: TypeError: Cannot read properties of undefined (reading "
    "'PairingCodeLinkUtils')\n    at pptr://__puppeteer_evaluation_script__:2:30"
)
# NOWEB never answers a pairing-code request outside SCAN_QR_CODE (recording 13: no answer
# in 150 s); an hour stands for "never" and still lets the server shut down.
NOWEB_PAIRING_HANG = 3600.0
# Extra fields WAHA's exception filter copies from the engine's error (Boom, gRPC).
ENGINE_ERROR_FIELDS: dict[str, dict[str, Any]] = {
    ERROR_463: {"code": 2, "details": "server returned error 463", "metadata": {}},
    CONNECTION_CLOSED: {"data": None, "isBoom": True, "isServer": False, "output": {}},
    RATE_OVERLIMIT: {"data": 429, "isBoom": True, "isServer": True, "output": {}},
}
# /ws: WAHA closes a socket it will not serve right after accepting it.
WS_POLICY_VIOLATION = 1008  # a missing or wrong key: reason "Unauthorized"
WS_REFUSED = 4001  # Core 2024.10.8: parameters it does not support, reason {"error": ...}
WS_ONLY_ALL_SESSIONS = "Only connecting to all sessions is allowed for now, use session=*"
WS_ONLY_SESSION_STATUS = (
    "Only 'session.status' event is allowed for now, use events=session.status or events=*"
)
# nginx's wording for the pages a proxy in front of WAHA answers with.
PROXY_REASONS = {413: "Request Entity Too Large", 502: "Bad Gateway", 504: "Gateway Time-out"}


class DroppedResponse(Response):
    """Cuts the connection mid-answer, after the request was carried out."""

    def __init__(self) -> None:
        super().__init__(status_code=201)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Promise a body, send part of it, then return: the server closes the connection
        # and the client sees it lost mid-answer.
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id":', "more_body": True})


class WahaJSON(JSONResponse):
    """JSON as NestJS (Express) sends it, charset named: `application/json; charset=utf-8`."""

    media_type = "application/json; charset=utf-8"


def whatsapp_number(phone: str) -> str:
    """The number WhatsApp knows an account by. Brazil gave its mobile numbers a ninth digit
    (a 9 after the two-digit area code, DDD) between 2012 and 2016; an account registered
    before its area's change still has the old 8-digit number, a message to the 9-digit
    form opens a chat with nobody, and check-exists answers the account's own id
    (devlikeapro/waha#238; Baileys#1997: "read the jid field that already returns
    corrected"). Which accounts are old cannot be told from the number (whatsapp-web.js#596);
    the simulator plays the rule of thumb given there: area codes from 31 on are old
    accounts (5531996883193 -> 553196883193), 11-30 keep their ninth digit."""
    if len(phone) == 13 and phone.startswith("55") and phone[4] == "9" and int(phone[2:4]) > 30:
        return phone[:4] + phone[5:]
    return phone


def _json(data: Any, status: int = 200) -> JSONResponse:
    return WahaJSON(data, status_code=status)


def _nest_error(status: int, message: Any, error: str) -> JSONResponse:
    """NestJS's HttpException body."""
    return _json({"statusCode": status, "message": message, "error": error}, status)


def _session_not_found() -> JSONResponse:
    """The session routes' 404 (`/api/sessions/{s}[/action]`): no session of that name."""
    return _nest_error(404, "Session not found", "Not Found")


def _no_sim_session(name: str) -> JSONResponse:
    """A control route's 404 (ours, not WAHA's): it names the session."""
    return _nest_error(404, f"Session not found: '{name}'", "Not Found")


def _not_started(name: str) -> JSONResponse:
    """The message routes' 404: the session is unknown or STOPPED (WAHA cannot tell)."""
    return _nest_error(
        404,
        f"We didn't find a session with name '{name}'.\n"
        f"Please start it first by using POST /api/sessions/{name}/start request",
        "Not Found",
    )


def _not_working(sess: SimSession, expected: str = "WORKING") -> JSONResponse:
    return _json(
        {
            "error": STATUS_NOT_AS_EXPECTED,
            "session": sess.name,
            "status": sess.status,
            "expected": [expected],
        },
        422,
    )


def _unprocessable(message: str) -> JSONResponse:
    return _nest_error(422, message, "Unprocessable Entity")


def _proxy_page(status: int) -> Response:
    """A reverse proxy's own page: HTML, not WAHA's JSON."""
    title = f"{status} {PROXY_REASONS[status]}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return HTMLResponse(page, status_code=status)


def session_info(sess: SimSession, engine: str) -> dict[str, Any]:
    return {
        "name": sess.name,
        "status": sess.status,
        "config": {"proxy": None, "webhooks": [], "debug": False},
        "me": sess.me(),
        "presence": {},
        "timestamps": {"activity": time.time() * 1000 if sess.status == "WORKING" else None},
        # A stopped session has no engine to ask: WAHA answers {} (18_session_stop).
        "engine": {} if sess.status == "STOPPED" else {"engine": engine},
    }


def session_dto(sess: SimSession, engine: str) -> dict[str, Any]:
    """What the lifecycle routes answer: WAHA re-reads the session (getSessionInfo), so the
    answer carries `me` and `engine` beside SessionDTO's fields (08d_session_start)."""
    return {
        "name": sess.name,
        "status": sess.status,
        "config": {"proxy": None, "webhooks": []},
        "me": sess.me(),
        "engine": {} if sess.status == "STOPPED" else {"engine": engine},
    }


def _bare_id(msg_id: str, chat_id: str) -> str:
    prefix = f"true_{chat_id}_"
    return msg_id[len(prefix) :] if msg_id.startswith(prefix) else msg_id


def wa_message(
    sess: SimSession, chat_id: str, text: str, msg_id: str, media: bool
) -> dict[str, Any]:
    """WAHA's WAMessage (the spec's shape; NOWEB answers it since 2025)."""
    me = f"{sess.phone}@c.us"
    return {
        "id": msg_id,
        "timestamp": int(time.time()),
        "from": me,
        "fromMe": True,
        "source": "api",
        "to": chat_id,
        "participant": me,
        "body": text,
        "hasMedia": media,
        "mediaUrl": "",
        "ack": 0,
        "ackName": "PENDING",
        "_data": {},
    }


def baileys_message(chat_id: str, text: str, msg_id: str, media: bool) -> dict[str, Any]:
    """NOWEB's raw Baileys WebMessageInfo (#760): the id is the bare `key.id`."""
    jid = chat_id.replace("@c.us", "@s.whatsapp.net")
    content = (
        {"imageMessage": {"caption": text, "mimetype": "image/png"}}
        if media
        else {"extendedTextMessage": {"text": text}}
    )
    return {
        "key": {"remoteJid": jid, "fromMe": True, "id": _bare_id(msg_id, chat_id)},
        "message": content,
        "messageTimestamp": str(int(time.time())),
        "status": "PENDING",
    }


def webjs_message(
    sess: SimSession, chat_id: str, text: str, msg_id: str, media: bool
) -> dict[str, Any]:
    """whatsapp-web.js's Message as WEBJS answers it (#1615): the id is an object whose
    `_serialized` is the full id, in `_data.id` (and `id`, as whatsapp-web.js copies it)."""
    me = f"{sess.phone}@c.us"
    now = int(time.time())
    ident = {
        "fromMe": True,
        "remote": chat_id,
        "id": _bare_id(msg_id, chat_id),
        "_serialized": msg_id,
    }
    kind = "image" if media else "chat"
    data = {"id": ident, "body": text, "type": kind, "t": now, "from": me, "to": chat_id}
    return {
        "_data": {**data, "ack": 0, "isNewMsg": True},
        "id": ident,
        "ack": 0,
        "hasMedia": media,
        "body": text,
        "type": kind,
        "timestamp": now,
        "from": me,
        "to": chat_id,
        "deviceType": "web",
        "fromMe": True,
        "hasQuotedMsg": False,
    }


class Simulator:
    def __init__(self, state: SimState | None = None) -> None:
        self.state = state or SimState()
        self.started_at = time.time()
        self.events = EventHub(self.state, self._environment)
        routes: list[Route | WebSocketRoute] = [
            WebSocketRoute("/ws", self.ws_events),
            Route("/ping", self.ping, methods=["GET"]),
            Route("/api/server/version", self.version, methods=["GET"]),
            Route("/api/version", self.version, methods=["GET"]),  # deprecated alias
            Route("/api/server/status", self.server_status, methods=["GET"]),
            Route("/api/sessions", self.list_sessions, methods=["GET"]),
            Route("/api/sessions", self.create_session, methods=["POST"]),
            Route("/api/sessions/{session}", self.get_session, methods=["GET"]),
            Route("/api/sessions/{session}", self.update_session, methods=["PUT"]),
            Route("/api/sessions/{session}", self.delete_session, methods=["DELETE"]),
            Route("/api/sessions/{session}/me", self.get_me, methods=["GET"]),
            Route("/api/sessions/{session}/{action}", self.session_action, methods=["POST"]),
            Route("/api/sendText", self.send_text, methods=["POST"]),
            Route("/api/sendImage", self.send_image, methods=["POST"]),
            Route("/api/sendSeen", self.send_seen, methods=["POST"]),
            Route("/api/startTyping", self.typing_start, methods=["POST"]),
            Route("/api/stopTyping", self.typing_stop, methods=["POST"]),
            Route("/api/contacts/check-exists", self.check_exists, methods=["GET"]),
            Route("/api/{session}/auth/qr", self.qr, methods=["GET"]),
            Route("/api/{session}/auth/request-code", self.request_code, methods=["POST"]),
            Route("/api/{session}/new-message-id", self.new_message_id, methods=["GET"]),
            Route("/_sim/messages", self.sim_messages, methods=["GET"]),
            Route("/_sim/reset", self.sim_reset, methods=["POST"]),
            Route("/_sim/faults", self.sim_faults, methods=["POST"]),
            Route("/_sim/sessions/{session}/status", self.sim_status, methods=["POST"]),
            Route("/_sim/sessions/{session}/scan", self.sim_scan, methods=["POST"]),
            Route("/_sim/acks", self.sim_acks, methods=["POST"]),
            Route("/_sim/reply", self.sim_reply, methods=["POST"]),
            Route("/_sim/ws/close", self.sim_ws_close, methods=["POST"]),
        ]
        self._app = Starlette(routes=routes)
        self._app.add_exception_handler(404, self._route_not_found)
        self._app.add_exception_handler(405, self._route_not_found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.events.bind(asyncio.get_running_loop())
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        path = scope["path"]
        if path != "/ping" and not path.startswith("/_sim/") and not self._authorized(scope):
            resp = _json({"message": "Unauthorized", "statusCode": 401}, 401)
            await resp(scope, receive, send)
            return
        await self._app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        key = self.state.api_key
        if not key:
            return True
        wanted = key.encode()
        for name, value in scope.get("headers", []):
            if name.lower() == b"x-api-key" and secrets.compare_digest(value, wanted):
                return True
        # WAHA >= 2026.4.3 also takes ?x-api-key= (percent-encoded like any query value).
        query = scope.get("query_string", b"").decode("latin-1")
        for value in parse_qs(query, keep_blank_values=True).get("x-api-key", []):
            if secrets.compare_digest(value.encode(), wanted):
                return True
        return False

    @staticmethod
    async def _route_not_found(request: Request, exc: Exception) -> Response:
        return _json(
            {
                "message": f"Cannot {request.method} {request.url.path}",
                "error": "Not Found",
                "statusCode": 404,
            },
            404,
        )

    def _environment(self) -> dict[str, Any]:
        """WAHAEnvironment as 2024.10.8 words it (its 500s carry it too)."""
        st = self.state
        return {"version": st.version, "engine": st.engine, "tier": st.tier, "browser": ""}

    def _engine_error(
        self, request: Request, message: str, body: Any, data: Any = None
    ) -> JSONResponse:
        """WAHA's exception filter for anything that is not an HttpException (an engine or
        WhatsApp error): a 500 naming the error, the request and the server."""
        extra = dict(ENGINE_ERROR_FIELDS.get(message, {}))
        if data is not None:
            extra["data"] = data
        query = request.url.query
        return _json(
            {
                "statusCode": 500,
                "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z",
                "exception": {
                    "stack": f"Error: {message}\n    at WhatsappSession (<path>)",
                    "message": message,
                    **extra,
                    "name": "Error",
                },
                "request": {
                    # Express's req.url: the path with its query string.
                    "path": request.url.path + (f"?{query}" if query else ""),
                    "method": request.method,
                    "body": body,
                    "query": dict(request.query_params),
                },
                "version": self._environment(),
            },
            500,
        )

    def _chat_fault(self, request: Request, fault: ChatFault, body: Any) -> JSONResponse:
        if fault.status >= 500:
            return self._engine_error(request, fault.message, body)
        return _nest_error(fault.status, fault.message, HTTPStatus(fault.status).phrase)

    def _core_refuses(self, name: str) -> bool:
        return self.state.core and name != "default"

    # -- WAHA routes -------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return _json({"message": "pong"})

    async def version(self, request: Request) -> Response:
        return _json({**self._environment(), "platform": "linux/x64", "worker": {"id": None}})

    async def server_status(self, request: Request) -> Response:
        now = time.time()
        return _json(
            {
                "startTimestamp": int(self.started_at * 1000),
                "uptime": int((now - self.started_at) * 1000),
                "worker": {"id": ""},
            }
        )

    async def list_sessions(self, request: Request) -> Response:
        show_all = request.query_params.get("all") in ("true", "1")
        engine = self.state.engine
        with self.state.lock:
            names = list(self.state.sessions)
            infos = [session_info(s, engine) for n in names if (s := self.state.get(n))]
        if not show_all:
            infos = [i for i in infos if i["status"] != "STOPPED"]
        return _json(infos)

    async def create_session(self, request: Request) -> Response:
        body = await _body(request)
        name = str(body.get("name") or "default")
        with self.state.lock:
            if name in self.state.sessions:
                return _unprocessable(f"Session '{name}' already exists. Use PUT to update it.")
            if self._core_refuses(name):
                return _unprocessable(CORE_ONLY)
            config = _session_config(body.get("config"))
            if isinstance(config, Response):
                return config
            added = self.state.add_session(name, "STOPPED")
            added.webhooks, added.metadata = config
            sess = self.state.start(name) if body.get("start", True) else self.state.get(name)
            assert sess is not None
            return _json(session_dto(sess, self.state.engine), 201)

    async def get_session(self, request: Request) -> Response:
        sess = self.state.get(request.path_params["session"])
        if sess is None:
            return _session_not_found()  # 08c_session_get_unknown, also on Core
        return _json(session_info(sess, self.state.engine))

    async def update_session(self, request: Request) -> Response:
        """PUT: WAHA stops the session, saves the config, and starts it again if it ran."""
        name = request.path_params["session"]
        body = await _body(request)
        with self.state.lock:
            if self._core_refuses(name):
                return _unprocessable(CORE_ONLY)
            sess = self.state.get(name)
            if sess is None:
                return _session_not_found()
            if "config" in body:
                config = _session_config(body["config"])
                if isinstance(config, Response):
                    return config
                sess.webhooks, sess.metadata = config
            if sess.status != "STOPPED":
                self.state.stop(name)
                sess = self.state.start(name)
            return _json(session_dto(sess, self.state.engine))

    async def delete_session(self, request: Request) -> Response:
        name = request.path_params["session"]
        if self._core_refuses(name):
            return _unprocessable(CORE_ONLY)
        self.state.delete(name)  # idempotent: an unknown name is fine too
        return Response(status_code=200)

    async def get_me(self, request: Request) -> Response:
        name = request.path_params["session"]
        if self._core_refuses(name):
            return _unprocessable(CORE_ONLY)
        sess = self.state.get(name)
        if sess is None or sess.status == "STOPPED":
            return _not_started(name)  # it reads the running session, as message routes do
        me = sess.me()
        if me is None:
            # NestJS answers a handler's null with 200 and no body at all (17c_me).
            return Response(status_code=200)
        return _json(me)

    async def session_action(self, request: Request) -> Response:
        name, action = request.path_params["session"], request.path_params["action"]
        if action not in ("start", "stop", "restart", "logout"):
            return await self._route_not_found(request, Exception())
        with self.state.lock:
            if self._core_refuses(name):
                return _unprocessable(CORE_ONLY)
            sess = self.state.get(name)
            if sess is None:
                return _session_not_found()
            running = sess.status != "STOPPED"
            if action == "start":
                if running:
                    return _unprocessable(f"Session '{name}' is already started.")  # 19e
                sess = self.state.start(name)
            elif action == "stop":
                sess = self.state.stop(name)
            elif action == "logout":
                sess = self.state.logout(name)
            else:
                self.state.stop(name)
                sess = self.state.start(name)
            answer = _json(session_dto(sess, self.state.engine), 201)
        if running and self.state.stop_delay:
            await asyncio.sleep(self.state.stop_delay)  # WAHA waits for the engine to stop
        return answer

    async def _running(self, name: str, expected: str = "WORKING") -> SimSession | Response:
        """What WAHA does before a message route: Core's one-session rule (422 at once),
        the running session or a 404, then the status wait (422 with `expected`)."""
        if self._core_refuses(name):
            return _unprocessable(CORE_ONLY)
        sess = self.state.get(name)
        if sess is None or sess.status == "STOPPED":
            return _not_started(name)
        faults = self.state.faults
        deadline = time.monotonic() + faults.status_wait
        while sess.status != expected:
            left = deadline - time.monotonic()
            if left <= 0:
                return _not_working(sess, expected)
            await asyncio.sleep(min(faults.status_poll, left))
            sess = self.state.get(name) or sess
        return sess

    def _session_name(self, raw: Any) -> str:
        # Core 2024.10.8 has no default for a missing `session` (15b: the Core 422).
        return str(raw) if raw else ("" if self.state.core else "default")

    def _take_proxy(self, after_record: bool) -> int:
        """The status of the proxy page answering this send, if the fault is armed."""
        faults = self.state.faults
        with self.state.lock:
            if faults.proxy_count > 0 and faults.proxy_after_record == after_record:
                faults.proxy_count -= 1
                return faults.proxy_status
        return 0

    async def _send(self, request: Request, kind: str) -> Response:
        body = await _body(request)
        # A proxy that refuses before forwarding: WAHA never saw the request.
        if status := self._take_proxy(after_record=False):
            return _proxy_page(status)
        name = self._session_name(body.get("session"))
        chat_id = str(body.get("chatId") or "")
        if "@" not in chat_id and chat_id:
            chat_id += "@c.us"  # WAHA's ensureSuffix
        text = str(body.get("text" if kind == "text" else "caption") or "")
        found = await self._running(name)
        if isinstance(found, Response):
            return found
        image = None
        if kind == "image":
            file = body.get("file")
            if not isinstance(file, dict) or not file.get("mimetype"):
                return _nest_error(400, ["file must be an object"], "Bad Request")
            image = {k: file.get(k) for k in ("mimetype", "filename", "data", "url")}
        faults = self.state.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.hang:
            with self.state.lock:
                self.state.held += 1
            try:
                await asyncio.sleep(faults.hang)
            finally:
                with self.state.lock:
                    self.state.held -= 1
        with self.state.lock:
            sess = self.state.get(name)
            if sess is None or sess.status == "STOPPED":
                return _not_started(name)
            if sess.status != "WORKING":
                return _not_working(sess)
            if chat_id in faults.fail_chat_ids:
                return self._chat_fault(request, faults.fail_chat_ids[chat_id], body)
            if sess.timelocked(time.time()) and chat_id not in sess.chats:
                return self._engine_error(request, ERROR_463, body)
            if faults.fail_next > 0:
                faults.fail_next -= 1
                return self._engine_error(
                    request, faults.fail_next_message, body, faults.fail_next_data
                )
            msg, new = self.state.record(
                name, chat_id, text, kind=kind, message_id=body.get("id") or None, image=image
            )
            if new:  # WhatsApp acknowledges it whatever becomes of the answer below
                self.events.schedule_acks(name, msg)
            drop = faults.drop_after_record > 0
            if drop:
                faults.drop_after_record -= 1
            shape = faults.send_shape or ("webjs" if self.state.engine == "WEBJS" else "noweb")
        # A proxy that forwarded the send and then failed: the message WAS sent.
        if status := self._take_proxy(after_record=True):
            return _proxy_page(status)
        if drop:
            return DroppedResponse()
        media = kind == "image"
        if shape == "empty":
            return Response(status_code=201)  # WEBJS 2025.6.5 (#1083, #1087)
        if shape == "baileys":
            return _json(baileys_message(chat_id, text, msg.id, media), 201)
        if shape == "webjs":
            return _json(webjs_message(sess, chat_id, text, msg.id, media), 201)
        return _json(wa_message(sess, chat_id, text, msg.id, media), 201)

    async def send_text(self, request: Request) -> Response:
        return await self._send(request, "text")

    async def send_image(self, request: Request) -> Response:
        return await self._send(request, "image")

    async def _typing(self, request: Request, what: str) -> Response:
        body = await _body(request)
        found = await self._running(self._session_name(body.get("session")))
        if isinstance(found, Response):
            return found
        with self.state.lock:
            self.state.typing.append((found.name, str(body.get("chatId")), what))
        if self.state.faults.typing_latency:
            await asyncio.sleep(self.state.faults.typing_latency)
        return _json({"result": True}, 201)  # WAHA's chatting controller returns it

    async def send_seen(self, request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body.get("chatId"), str):
            return _nest_error(400, ["chatId must be a string"], "Bad Request")
        found = await self._running(self._session_name(body.get("session")))
        if isinstance(found, Response):
            return found
        with self.state.lock:
            self.state.seen.append((found.name, body["chatId"]))
            failing = self.state.faults.seen_status
        if failing:
            return _nest_error(failing, "sendSeen failed", "Internal Server Error")
        return _json({}, 201)  # the OpenAPI's 201: an object

    async def typing_start(self, request: Request) -> Response:
        return await self._typing(request, "start")

    async def typing_stop(self, request: Request) -> Response:
        return await self._typing(request, "stop")

    async def check_exists(self, request: Request) -> Response:
        phone = "".join(ch for ch in request.query_params.get("phone", "") if ch.isdigit())
        found = await self._running(self._session_name(request.query_params.get("session")))
        if isinstance(found, Response):
            return found
        st = self.state
        with st.lock:
            st.lookups.append((found.name, phone))
        fault = st.take_check_fault()
        if fault is not None:
            return self._engine_error(request, fault[0], None, fault[1])
        if not 7 <= len(phone) <= 15 or phone.startswith("0") or phone in st.faults.not_on_whatsapp:
            # WAHA's engines answer a number without an account with this alone, no chatId.
            return _json({"numberExists": False})
        return _json({"numberExists": True, "chatId": f"{whatsapp_number(phone)}@c.us"})

    async def qr(self, request: Request) -> Response:
        found = await self._running(request.path_params["session"], "SCAN_QR_CODE")
        if isinstance(found, Response):
            return found
        if request.query_params.get("format") == "raw":
            return _json({"value": found.qr_value})
        # A stand-in picture (WAHA draws the QR): base64 JSON when asked, else a PNG.
        if "application/json" in request.headers.get("accept", ""):
            return _json({"mimetype": "image/png", "data": QR_PNG_BASE64})
        return Response(base64.b64decode(QR_PNG_BASE64), media_type="image/png")

    async def request_code(self, request: Request) -> Response:
        name = request.path_params["session"]
        body = await _body(request)
        if self._core_refuses(name):
            return _unprocessable(CORE_ONLY)
        sess = self.state.get(name)
        if sess is None or sess.status == "STOPPED":
            return _not_started(name)
        if sess.status != "SCAN_QR_CODE":
            # No status wait here: the engine is asked at once, and fails its own way.
            if self.state.engine == "WEBJS":
                return self._engine_error(request, WEBJS_PAIRING_ERROR, body)
            logger.debug("pairing code for %s outside SCAN_QR_CODE: never answering", name)
            await asyncio.sleep(NOWEB_PAIRING_HANG)
            return _not_working(sess, "SCAN_QR_CODE")
        if not str(body.get("phoneNumber") or "").isdigit():
            return _unprocessable("phoneNumber must be digits in international format")
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        code = "".join(secrets.choice(alphabet) for _ in range(8))
        with self.state.lock:
            sess.pairing_code = f"{code[:4]}-{code[4:]}"
        return _json({"code": sess.pairing_code}, 201)

    async def new_message_id(self, request: Request) -> Response:
        if not self.state.message_ids:  # a server older than 2026.4.3 has no such route
            return await self._route_not_found(request, Exception())
        name = request.path_params["session"]
        if self._core_refuses(name):
            return _unprocessable(CORE_ONLY)
        sess = self.state.get(name)
        if sess is None or sess.status == "STOPPED":
            return _not_started(name)
        if self.state.engine == "WEBJS":
            return _unprocessable(NOT_IMPLEMENTED)  # only NOWEB and GOWS pre-generate ids
        return _json({"id": "3EB0" + secrets.token_hex(8).upper()})

    # -- the event socket ----------------------------------------------------------------

    async def ws_events(self, websocket: WebSocket) -> None:
        """`/ws?session=*&events=...&x-api-key=...`: WAHA accepts every handshake, then
        closes what it will not serve (WebsocketGatewayCore.handleConnection)."""
        query = parse_qs(websocket.scope.get("query_string", b"").decode("latin-1"))
        with self.state.lock:
            legacy = self.state.faults.ws_version == "2024.10.8"
            key_header = self.state.faults.ws_key_header
        await websocket.accept()
        self.events.connections += 1
        if legacy:
            # Core 2024.10.8: no key on the socket; one session (`*`), and only
            # session.status, whatever else was asked for.
            session = (query.get("session") or ["*"])[0] or "*"
            asked = ",".join(query.get("events") or ["*"]).split(",")
            refusal = None
            if session != "*":
                refusal = WS_ONLY_ALL_SESSIONS
            elif asked not in (["*"], ["session.status"]):
                refusal = WS_ONLY_SESSION_STATUS
            if refusal is not None:
                await websocket.close(WS_REFUSED, json.dumps({"error": refusal}))
                return
            listener = Listener("*", {"session.status"}, legacy=True)
        else:
            if not self._ws_authorized(websocket, query, key_header):
                await websocket.close(WS_POLICY_VIOLATION, "Unauthorized")
                return
            session = (query.get("session") or ["*"])[0] or "*"
            asked = [e for value in query.get("events") or ["*"] for e in value.split(",")]
            listener = Listener(session, unmask(asked), legacy=False)
        await self._serve(websocket, listener)

    def _ws_authorized(
        self, websocket: WebSocket, query: dict[str, list[str]], header: bool
    ) -> bool:
        """The key from `x-api-key` in the query (any case), as WAHA's WebSocketAuth reads
        it; from the X-Api-Key header too only with the `key_header` knob."""
        key = self.state.api_key
        if not key:
            return True
        given = next((v[0] for k, v in query.items() if k.lower() == "x-api-key" and v), None)
        if given is None and header:
            given = websocket.headers.get("x-api-key")
        return given is not None and secrets.compare_digest(given.encode(), key.encode())

    async def _serve(self, websocket: WebSocket, listener: Listener) -> None:
        hub = self.events
        hub.listeners.add(listener)

        async def watch() -> None:
            # The client may close at any time: notice it while waiting for events.
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
            except (WebSocketDisconnect, RuntimeError):
                pass
            listener.outbox.put_nowait(None)

        watcher = asyncio.create_task(watch())
        try:
            while True:
                item = await listener.outbox.get()
                if item is None:
                    break
                if isinstance(item, tuple):
                    await websocket.close(*item)
                    break
                await websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # gone while we wrote
        finally:
            hub.listeners.discard(listener)
            watcher.cancel()

    def reply(self, session: str, sender: str, body: str) -> dict[str, Any]:
        """Someone writes to `session` from `sender` (a phone or a chat id, `@lid` too):
        the `message` event, to every listener and webhook. Returns its payload."""
        chat_id = _chat_id(sender)
        sess = self.state.get(session)
        if sess is None:
            raise KeyError(session)
        return self.events.reply(sess, chat_id, body)

    def close_sockets(self, code: int = 1001, reason: str = "Server is shutting down") -> None:
        """Close every `/ws` socket now, as WAHA does when it shuts down."""
        self.events.close_sockets(code, reason)

    # -- control routes ----------------------------------------------------------------

    async def sim_messages(self, request: Request) -> Response:
        return _json([m.as_dict() for m in self.state.sent(request.query_params.get("session"))])

    async def sim_reset(self, request: Request) -> Response:
        self.state.reset()
        return _json({"ok": True})

    async def sim_faults(self, request: Request) -> Response:
        """Body keys (all optional):
        - fail_chat_ids {chatId: message | {message, status (400)}}: bad recipients, the
          whole set of them ({} clears it);
        - fail_next {count, message (Connection Closed), data}: account-level 500s;
        - latency, typing_latency, hang, drop_after_record: numbers;
        - status_wait: seconds (or {seconds, poll}) of WAHA's status wait before a 422;
        - send_shape: noweb | baileys | webjs | empty (null: the engine's own);
        - proxy_error {status (413|502|504), after_record (true), count (1)};
        - timelock {session, until (epoch seconds, null lifts it), type (DEFAULT)};
        - stop_after {session, sends, status (STOPPED), for_seconds};
        - not_on_whatsapp [numbers]: check-exists says they have no account ([] clears);
        - fail_next_checks {count, message (rate-overlimit), data (429)}: check-exists 500s;
        - api_key, message_ids;
        - ws {version: current | 2024.10.8, key_header}: how /ws answers;
        - clear (true: drop every fault first)."""
        body = await _body(request)
        st = self.state
        try:
            plan = _FaultPlan.parse(body)
        except (TypeError, ValueError, KeyError) as exc:
            return _unprocessable(f"invalid fault: {_said(exc)}")
        for session in plan.sessions():
            if st.get(session) is None:
                return _no_sim_session(session)
        if body.get("clear"):
            st.clear_faults()
        try:
            plan.apply(st)
        except ValueError as exc:
            return _unprocessable(f"invalid fault: {_said(exc)}")
        if "api_key" in body:
            st.require_api_key(str(body["api_key"]) if body["api_key"] else None)
        if "message_ids" in body:
            st.message_ids = bool(body["message_ids"])
        return _json({"ok": True})

    async def sim_status(self, request: Request) -> Response:
        status = str((await _body(request)).get("status", ""))
        if status not in STATUSES:
            return _unprocessable(f"status must be one of {', '.join(STATUSES)}")
        try:
            self.state.set_status(request.path_params["session"], status)
        except ValueError as exc:  # a second session on Core
            return _unprocessable(str(exc))
        return _json({"ok": True})

    async def sim_scan(self, request: Request) -> Response:
        name = request.path_params["session"]
        if self.state.get(name) is None:
            return _no_sim_session(name)
        self.state.scan(name)
        return _json({"ok": True})

    async def sim_acks(self, request: Request) -> Response:
        """The whole AckPlan (keys left out keep their default): server, device, read
        (seconds after the send), none_share, error_share, read_share, duplicate,
        out_of_order (0..1), chats {chatId: none|error|server|device|read}, seed."""
        body = await _body(request)
        known = set(AckPlan.__dataclass_fields__)
        unknown = sorted(set(body) - known)
        if unknown:
            return _unprocessable(f"invalid acks: unknown keys {', '.join(unknown)}")
        try:
            plan = AckPlan(
                **{k: _non_negative(v, k) for k, v in body.items() if k not in ("chats", "seed")},
                chats={
                    (c if "@" in c else f"{c}@c.us"): str(o)
                    for c, o in dict(body.get("chats") or {}).items()
                },
                seed=None if body.get("seed") is None else int(body["seed"]),
            )
            self.state.set_acks(plan)
        except (TypeError, ValueError) as exc:
            return _unprocessable(f"invalid acks: {_said(exc)}")
        return _json({"ok": True})

    async def sim_reply(self, request: Request) -> Response:
        """`{session, from, body}`: an inbound message (the `message` event)."""
        body = await _body(request)
        name = str(body.get("session") or "default")
        sender = str(body.get("from") or "")
        try:
            chat_id = _chat_id(sender)
        except ValueError as exc:
            return _unprocessable(str(exc))
        sess = self.state.get(name)
        if sess is None:
            return _no_sim_session(name)
        if sess.status != "WORKING":
            return _unprocessable(f"session {name!r} is {sess.status}: nothing reaches it")
        payload = self.events.reply(sess, chat_id, str(body.get("body") or ""))
        return _json({"ok": True, "id": payload["id"]})

    async def sim_ws_close(self, request: Request) -> Response:
        """`{code (1001), reason}`: close every open /ws socket."""
        body = await _body(request)
        try:
            code = int(body.get("code") or 1001)
        except (TypeError, ValueError):
            return _unprocessable("code must be a WebSocket close code")
        if not (code in (1000, 1001, 1011, 1012, 1013) or 3000 <= code <= 4999):
            return _unprocessable("code must be 1000, 1001, 1011-1013 or 3000-4999")
        self.close_sockets(code, str(body.get("reason") or "Server is shutting down"))
        return _json({"ok": True})


@dataclass
class _FaultPlan:
    """`POST /_sim/faults`, checked whole before any of it is applied."""

    fail_chats: list[tuple[str, str | None, int]] | None = None  # None: left as they are
    fail_next: tuple[int, str, Any] | None = None
    numbers: dict[str, float] = field(default_factory=dict)
    status_wait: tuple[float, float] | None = None
    send_shape: tuple[str | None] | None = None
    proxy: tuple[int, bool, int] | None = None
    timelock: tuple[str, float | None, str] | None = None
    stop: tuple[str, int, str, float | None] | None = None
    ws: tuple[str | None, bool | None] | None = None
    not_on_whatsapp: list[str] | None = None
    fail_checks: tuple[int, str, Any] | None = None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _FaultPlan:
        plan = cls()
        if "fail_chat_ids" in body:
            plan.fail_chats = []
            if not isinstance(body["fail_chat_ids"] or {}, dict):
                raise ValueError(
                    "fail_chat_ids must map chat ids to a message or {message, status}"
                )
        for chat_id, spec in dict(body.get("fail_chat_ids") or {}).items():
            spec = spec if isinstance(spec, dict) else {"message": spec}
            status = int(spec.get("status") or 400)
            if not 400 <= status <= 599:
                raise ValueError("a chat's status must be a 4xx or 5xx")
            message = str(spec.get("message") or "") or None
            plan.fail_chats = [*(plan.fail_chats or []), (str(chat_id), message, status)]
        fail_next = body.get("fail_next")
        if fail_next is not None:
            if not isinstance(fail_next, dict):
                fail_next = {"count": fail_next}
            message = str(fail_next.get("message") or CONNECTION_CLOSED)
            plan.fail_next = (int(fail_next["count"]), message, fail_next.get("data"))
        plan.numbers = {
            k: _non_negative(body[k], k)
            for k in ("latency", "typing_latency", "hang", "drop_after_record")
            if k in body
        }
        wait = body.get("status_wait")
        if wait is not None:
            wait = wait if isinstance(wait, dict) else {"seconds": wait}
            poll = _non_negative(wait.get("poll", 0.5), "poll")
            if poll <= 0:
                raise ValueError("poll must be > 0")
            plan.status_wait = (_non_negative(wait["seconds"], "status_wait"), poll)
        if "send_shape" in body:
            shape = body["send_shape"]
            if shape is not None and shape not in SEND_SHAPES:
                raise ValueError(f"send_shape must be one of {', '.join(SEND_SHAPES)} or null")
            plan.send_shape = (shape,)
        proxy = body.get("proxy_error")
        if proxy is not None:
            proxy = proxy if isinstance(proxy, dict) else {"status": proxy}
            status = int(proxy["status"])
            if status not in PROXY_STATUSES:
                raise ValueError(f"proxy_error status must be one of {PROXY_STATUSES}")
            plan.proxy = (status, bool(proxy.get("after_record", True)), int(proxy.get("count", 1)))
        if "not_on_whatsapp" in body:
            numbers = body["not_on_whatsapp"] or []
            if not isinstance(numbers, list):
                raise ValueError("not_on_whatsapp must be a list of phone numbers")
            plan.not_on_whatsapp = [str(n) for n in numbers]
        checks = body.get("fail_next_checks")
        if checks is not None:
            checks = checks if isinstance(checks, dict) else {"count": checks}
            plan.fail_checks = (
                int(checks["count"]),
                str(checks.get("message") or RATE_OVERLIMIT),
                checks.get("data", 429),
            )
        lock = body.get("timelock")
        if lock is not None:
            until = lock.get("until")
            plan.timelock = (
                str(lock["session"]),
                None if until is None else _non_negative(until, "until"),
                str(lock.get("type") or "DEFAULT"),
            )
        after = body.get("stop_after")
        if after is not None:
            for_seconds = after.get("for_seconds")
            plan.stop = (
                str(after["session"]),
                int(after["sends"]),
                str(after.get("status") or "STOPPED"),
                None if for_seconds is None else _non_negative(for_seconds, "for_seconds"),
            )
            if plan.stop[2] not in STATUSES:
                raise ValueError(f"stop_after status must be one of {', '.join(STATUSES)}")
        ws = body.get("ws")
        if ws is not None:
            if not isinstance(ws, dict):
                raise ValueError("ws must be {version, key_header}")
            version = ws.get("version")
            if version is not None and version not in WS_VERSIONS:
                raise ValueError(f"ws version must be one of {', '.join(WS_VERSIONS)}")
            header = ws.get("key_header")
            plan.ws = (version, None if header is None else bool(header))
        return plan

    def sessions(self) -> list[str]:
        """The sessions the plan names, which must exist."""
        return [t[0] for t in (self.timelock, self.stop) if t is not None]

    def apply(self, st: SimState) -> None:
        if self.fail_chats is not None:
            st.clear_chat_faults()  # the map given is the whole set: {} clears it
            for chat_id, message, status in self.fail_chats:
                st.fail_chat(chat_id, message, status)
        if self.fail_next is not None:
            count, message, data = self.fail_next
            st.fail_next_sends(count, message, data=data)
        if "latency" in self.numbers:
            st.set_latency(self.numbers["latency"])
        if "typing_latency" in self.numbers:
            st.set_typing_latency(self.numbers["typing_latency"])
        if "hang" in self.numbers:
            st.set_hang(self.numbers["hang"])
        if "drop_after_record" in self.numbers:
            st.drop_after_record(int(self.numbers["drop_after_record"]))
        if self.status_wait is not None:
            st.status_wait(*self.status_wait)
        if self.send_shape is not None:
            st.send_shape(self.send_shape[0])
        if self.proxy is not None:
            status, after_record, count = self.proxy
            st.proxy_error(status, after_record=after_record, count=count)
        if self.not_on_whatsapp is not None:
            st.not_on_whatsapp(self.not_on_whatsapp)
        if self.fail_checks is not None:
            count, message, data = self.fail_checks
            st.fail_next_checks(count, message, data=data)
        if self.timelock is not None:
            st.timelock(*self.timelock)
        if self.stop is not None:
            name, sends, stop_status, for_seconds = self.stop
            st.stop_after(name, sends, stop_status, for_seconds=for_seconds)
        if self.ws is not None:
            st.ws_behaviour(*self.ws)


def _non_negative(value: Any, what: str) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a number >= 0")
    return number


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _session_config(config: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None] | Response:
    """config.webhooks and config.metadata of a session create / update."""
    if config is None:
        return [], None
    if not isinstance(config, dict):
        return _nest_error(400, ["config must be an object"], "Bad Request")
    hooks = config.get("webhooks") or []
    if not isinstance(hooks, list) or not all(
        isinstance(h, dict) and isinstance(h.get("url"), str) and isinstance(h.get("events"), list)
        for h in hooks
    ):
        return _nest_error(400, ["config.webhooks must be a list of {url, events}"], "Bad Request")
    metadata = config.get("metadata")
    return [dict(h) for h in hooks], metadata if isinstance(metadata, dict) else None


def _chat_id(sender: str) -> str:
    """A phone (any punctuation) as `<digits>@c.us`; a chat id (`@c.us`, `@lid`) as is."""
    sender = sender.strip()
    if "@" in sender:
        return sender
    digits = "".join(ch for ch in sender if ch.isdigit())
    if not digits:
        raise ValueError("from must be a phone number or a chat id")
    return f"{digits}@c.us"


def create_app(state: SimState | None = None) -> ASGIApp:
    return Simulator(state)


def _said(exc: Exception) -> str:
    """A refused fault in words: what was wrong, not the name of the exception."""
    if isinstance(exc, KeyError):
        return f"{exc.args[0]!r} is missing" if exc.args else "a key is missing"
    return str(exc) or "not understood"
