"""A WAHA look-alike as an ASGI app: WAHA's routes, status codes and bodies, plus faults.

The same app serves tests in-process (httpx.ASGITransport) and users on a loopback port
(uvicorn, see `server.py`). Control routes live under `/_sim/`, a prefix WAHA never uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from waha_tui.simulator.state import ERROR_463, STATUSES, SimSession, SimState

ENGINE = "NOWEB"
QR_PNG_BASE64 = (  # a 1x1 grey PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)


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


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def _not_found_session(name: str) -> JSONResponse:
    return _json(
        {
            "statusCode": 404,
            "message": (
                f"We didn't find a session with name '{name}'.\n"
                f"Please start it first by using POST /api/sessions/{name}/start request"
            ),
            "error": "Not Found",
        },
        404,
    )


def _not_working(sess: SimSession, expected: str = "WORKING") -> JSONResponse:
    return _json(
        {
            "error": "Session status is not as expected. Try again later or restart the session",
            "session": sess.name,
            "status": sess.status,
            "expected": [expected],
        },
        422,
    )


def _unprocessable(message: str) -> JSONResponse:
    return _json({"statusCode": 422, "message": message, "error": "Unprocessable Entity"}, 422)


def _engine_error(request: Request, message: str, body: Any) -> JSONResponse:
    return _json(
        {
            "statusCode": 500,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "exception": {"message": message, "name": "Error", "stack": f"Error: {message}"},
            "request": {
                "path": request.url.path,
                "method": request.method,
                "body": body,
                "query": dict(request.query_params),
            },
            "version": {"version": "2026.7.2", "engine": ENGINE, "tier": "CORE"},
        },
        500,
    )


def session_info(sess: SimSession) -> dict[str, Any]:
    return {
        "name": sess.name,
        "status": sess.status,
        "config": {"proxy": None, "webhooks": [], "debug": False},
        "me": sess.me(),
        "presence": {},
        "timestamps": {"activity": time.time() * 1000 if sess.status == "WORKING" else None},
        "engine": {"engine": ENGINE},
    }


def session_dto(sess: SimSession) -> dict[str, Any]:
    return {"name": sess.name, "status": sess.status, "config": {"proxy": None, "webhooks": []}}


def wa_message(sess: SimSession, chat_id: str, text: str, msg_id: str, media: bool) -> dict:
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


class Simulator:
    def __init__(self, state: SimState | None = None) -> None:
        self.state = state or SimState()
        routes = [
            Route("/ping", self.ping, methods=["GET"]),
            Route("/api/server/version", self.version, methods=["GET"]),
            Route("/api/sessions", self.list_sessions, methods=["GET"]),
            Route("/api/sessions", self.create_session, methods=["POST"]),
            Route("/api/sessions/{session}", self.get_session, methods=["GET"]),
            Route("/api/sessions/{session}/{action}", self.session_action, methods=["POST"]),
            Route("/api/sendText", self.send_text, methods=["POST"]),
            Route("/api/sendImage", self.send_image, methods=["POST"]),
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
        ]
        self._app = Starlette(routes=routes)
        self._app.add_exception_handler(404, self._route_not_found)
        self._app.add_exception_handler(405, self._route_not_found)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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

    # -- WAHA routes -------------------------------------------------------------------

    async def ping(self, request: Request) -> Response:
        return _json({"message": "pong"})

    async def version(self, request: Request) -> Response:
        return _json(
            {
                "version": self.state.version,
                "engine": ENGINE,
                "tier": "CORE",
                "browser": "",
                "platform": "linux/x64",
                "worker": {"id": None},
            }
        )

    async def list_sessions(self, request: Request) -> Response:
        show_all = request.query_params.get("all") in ("true", "1")
        with self.state.lock:
            names = list(self.state.sessions)
            infos = [session_info(s) for n in names if (s := self.state.get(n))]
        if not show_all:
            infos = [i for i in infos if i["status"] != "STOPPED"]
        return _json(infos)

    async def create_session(self, request: Request) -> Response:
        body = await _body(request)
        name = str(body.get("name") or "default")
        with self.state.lock:
            if name in self.state.sessions:
                return _unprocessable(f"Session '{name}' already exists")
            self.state.add_session(name, "STOPPED")
            sess = self.state.start(name) if body.get("start", True) else self.state.get(name)
            assert sess is not None
            return _json(session_dto(sess), 201)

    async def get_session(self, request: Request) -> Response:
        name = request.path_params["session"]
        sess = self.state.get(name)
        if sess is None:
            return _not_found_session(name)
        return _json(session_info(sess))

    async def session_action(self, request: Request) -> Response:
        name, action = request.path_params["session"], request.path_params["action"]
        if action not in ("start", "stop", "restart", "logout"):
            return await self._route_not_found(request, Exception())
        with self.state.lock:
            if action != "start" and self.state.get(name) is None:
                return _not_found_session(name)
            if action == "start":
                sess = self.state.start(name)
            elif action == "stop":
                sess = self.state.stop(name)
            elif action == "logout":
                sess = self.state.logout(name)
            else:
                self.state.stop(name)
                sess = self.state.start(name)
            return _json(session_dto(sess), 201)

    async def _working(self, name: str) -> SimSession | Response:
        sess = self.state.get(name)
        if sess is None:
            return _not_found_session(name)
        if sess.status != "WORKING":
            return _not_working(sess)
        return sess

    async def _send(self, request: Request, kind: str) -> Response:
        body = await _body(request)
        name = str(body.get("session") or "default")
        chat_id = str(body.get("chatId") or "")
        if "@" not in chat_id and chat_id:
            chat_id += "@c.us"  # WAHA's ensureSuffix
        text = str(body.get("text" if kind == "text" else "caption") or "")
        image = None
        if kind == "image":
            file = body.get("file")
            if not isinstance(file, dict) or not file.get("mimetype"):
                return _json(
                    {
                        "statusCode": 400,
                        "message": ["file must be an object"],
                        "error": "Bad Request",
                    },
                    400,
                )
            image = {k: file.get(k) for k in ("mimetype", "filename", "data", "url")}
        found = await self._working(name)
        if isinstance(found, Response):
            return found
        faults = self.state.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if faults.hang:
            await asyncio.sleep(faults.hang)
        with self.state.lock:
            sess = self.state.get(name)
            if sess is None or sess.status != "WORKING":
                return _not_working(sess) if sess else _not_found_session(name)
            if chat_id in faults.fail_chat_ids:
                return _engine_error(request, faults.fail_chat_ids[chat_id], body)
            if faults.fail_next > 0:
                faults.fail_next -= 1
                return _engine_error(request, faults.fail_next_message, body)
            msg, _new = self.state.record(
                name, chat_id, text, kind=kind, message_id=body.get("id") or None, image=image
            )
            drop = faults.drop_after_record > 0
            if drop:
                faults.drop_after_record -= 1
        if drop:
            return DroppedResponse()
        return _json(wa_message(sess, chat_id, text, msg.id, kind == "image"), 201)

    async def send_text(self, request: Request) -> Response:
        return await self._send(request, "text")

    async def send_image(self, request: Request) -> Response:
        return await self._send(request, "image")

    async def _typing(self, request: Request, what: str) -> Response:
        body = await _body(request)
        found = await self._working(str(body.get("session") or "default"))
        if isinstance(found, Response):
            return found
        with self.state.lock:
            self.state.typing.append((found.name, str(body.get("chatId")), what))
        return Response(status_code=201)

    async def typing_start(self, request: Request) -> Response:
        return await self._typing(request, "start")

    async def typing_stop(self, request: Request) -> Response:
        return await self._typing(request, "stop")

    async def check_exists(self, request: Request) -> Response:
        phone = "".join(ch for ch in request.query_params.get("phone", "") if ch.isdigit())
        found = await self._working(request.query_params.get("session", "default"))
        if isinstance(found, Response):
            return found
        if not 7 <= len(phone) <= 15 or phone.startswith("0"):
            return _json({"numberExists": False})
        return _json({"numberExists": True, "chatId": f"{phone}@c.us"})

    async def qr(self, request: Request) -> Response:
        name = request.path_params["session"]
        sess = self.state.get(name)
        if sess is None:
            return _not_found_session(name)
        if sess.status != "SCAN_QR_CODE":
            return _not_working(sess, "SCAN_QR_CODE")
        if request.query_params.get("format") == "raw":
            return _json({"value": sess.qr_value})
        # A stand-in picture (WAHA draws the QR): base64 JSON when asked, else a PNG.
        if "application/json" in request.headers.get("accept", ""):
            return _json({"mimetype": "image/png", "data": QR_PNG_BASE64})
        return Response(base64.b64decode(QR_PNG_BASE64), media_type="image/png")

    async def request_code(self, request: Request) -> Response:
        name = request.path_params["session"]
        body = await _body(request)
        sess = self.state.get(name)
        if sess is None:
            return _not_found_session(name)
        if sess.status != "SCAN_QR_CODE":
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
        if self.state.get(name) is None:
            return _not_found_session(name)
        return _json({"id": "3EB0" + secrets.token_hex(8).upper()})

    # -- control routes ----------------------------------------------------------------

    async def sim_messages(self, request: Request) -> Response:
        return _json([m.as_dict() for m in self.state.sent(request.query_params.get("session"))])

    async def sim_reset(self, request: Request) -> Response:
        self.state.reset()
        return _json({"ok": True})

    async def sim_faults(self, request: Request) -> Response:
        """Body keys (all optional): fail_chat_ids {chatId: message}, fail_next {count, message},
        latency, hang, drop_after_record, api_key, message_ids, stop_after {session, sends,
        status (STOPPED)},
        clear (true: drop every fault first)."""
        body = await _body(request)
        st = self.state
        stop: tuple[str, int, str] | None = None
        try:
            fail_chat_ids = dict(body.get("fail_chat_ids") or {})
            fail_next = body.get("fail_next")
            if fail_next is not None and not isinstance(fail_next, dict):
                fail_next = {"count": fail_next}
            fail_count = int(fail_next["count"]) if fail_next is not None else 0
            numbers = {
                k: float(body[k]) for k in ("latency", "hang", "drop_after_record") if k in body
            }
            if any(not math.isfinite(v) or v < 0 for v in numbers.values()):
                raise ValueError("latency, hang and drop_after_record must be >= 0")
            if body.get("stop_after") is not None:
                after = body["stop_after"]
                stop = (
                    str(after["session"]),
                    int(after["sends"]),
                    str(after.get("status") or "STOPPED"),
                )
        except (TypeError, ValueError, KeyError) as exc:
            return _unprocessable(f"invalid fault: {type(exc).__name__}: {exc}")
        if stop is not None and st.get(stop[0]) is None:
            return _not_found_session(stop[0])
        if body.get("clear"):
            st.clear_faults()
        for chat_id, message in fail_chat_ids.items():
            st.fail_chat(str(chat_id), str(message or ERROR_463))
        if fail_next is not None:
            st.fail_next_sends(fail_count, str(fail_next.get("message") or "Connection Closed"))
        if "latency" in numbers:
            st.set_latency(numbers["latency"])
        if "hang" in numbers:
            st.set_hang(numbers["hang"])
        if "drop_after_record" in numbers:
            st.drop_after_record(int(numbers["drop_after_record"]))
        if "api_key" in body:
            st.require_api_key(str(body["api_key"]) if body["api_key"] else None)
        if "message_ids" in body:
            st.message_ids = bool(body["message_ids"])
        if stop is not None:
            st.stop_after(*stop)
        return _json({"ok": True})

    async def sim_status(self, request: Request) -> Response:
        status = str((await _body(request)).get("status", ""))
        if status not in STATUSES:
            return _unprocessable(f"status must be one of {', '.join(STATUSES)}")
        self.state.set_status(request.path_params["session"], status)
        return _json({"ok": True})

    async def sim_scan(self, request: Request) -> Response:
        name = request.path_params["session"]
        if self.state.get(name) is None:
            return _not_found_session(name)
        self.state.scan(name)
        return _json({"ok": True})


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def create_app(state: SimState | None = None) -> ASGIApp:
    return Simulator(state)
