"""Acceptance: `waha-tui simulator` as a real process, spoken to over a real socket."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from waha_tui.waha import Unauthorized, WahaClient

KEY = "k"
CHAT = "491511234567@c.us"


@dataclass
class RunningSimulator:
    proc: subprocess.Popen[str]
    port: int
    first_line: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(proc: subprocess.Popen[str], port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the simulator exited with {proc.returncode}:\n{out}\n{err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"the simulator did not listen on port {port} within {timeout} s")


def read_line(proc: subprocess.Popen[str], timeout: float = 5.0) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            pytest.fail("the simulator printed nothing")
    return proc.stdout.readline()


@pytest.fixture(scope="module")
def simulator_process() -> Iterator[RunningSimulator]:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WAHA_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "waha_tui", "simulator", "--api-key", KEY, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        wait_until_listening(proc, port)
        yield RunningSimulator(proc, port, read_line(proc))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_prints_where_it_listens(simulator_process: RunningSimulator) -> None:
    line = simulator_process.first_line
    assert "listening on" in line
    assert f"http://127.0.0.1:{simulator_process.port}" in line


def test_api_key_is_required(simulator_process: RunningSimulator) -> None:
    resp = httpx.get(f"{simulator_process.url}/api/sessions/default", timeout=5.0)
    assert resp.status_code == 401
    assert resp.json() == {"message": "Unauthorized", "statusCode": 401}
    wrong = httpx.get(
        f"{simulator_process.url}/api/sessions/default",
        headers={"X-Api-Key": "not-k"},
        timeout=5.0,
    )
    assert wrong.status_code == 401


def test_session_and_send_with_the_key(simulator_process: RunningSimulator) -> None:
    headers = {"X-Api-Key": KEY}
    with httpx.Client(base_url=simulator_process.url, headers=headers, timeout=5.0) as client:
        session = client.get("/api/sessions/default")
        assert session.status_code == 200
        assert session.json()["status"] == "WORKING"
        sent = client.post(
            "/api/sendText", json={"session": "default", "chatId": CHAT, "text": "hello"}
        )
        assert sent.status_code == 201
        assert sent.json()["id"].startswith(f"true_{CHAT}_")
        recorded = client.get("/_sim/messages").json()
        assert [(m["chatId"], m["text"]) for m in recorded][-1] == (CHAT, "hello")


async def test_the_waha_client_against_the_process(simulator_process: RunningSimulator) -> None:
    async with WahaClient(simulator_process.url, KEY) as client:
        assert (await client.get_session("default")).working
        result = await client.send_text("default", "491511234568", "from the client")
        assert result.message_id and result.message_id.startswith("true_491511234568@c.us_")
    async with WahaClient(simulator_process.url) as keyless:
        with pytest.raises(Unauthorized):
            await keyless.list_sessions()


def test_process_is_still_running(simulator_process: RunningSimulator) -> None:
    assert simulator_process.proc.poll() is None


def test_help_lists_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", "simulator", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"},
    )
    assert done.returncode == 0, done.stderr
    for option in ("--host", "--port", "--api-key", "--tier", "--engine"):
        assert option in done.stdout


def test_core_tier_and_webjs_engine_from_the_command_line() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "waha_tui",
            "simulator",
            "--port",
            str(port),
            "--tier",
            "core",
            "--engine",
            "webjs",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_until_listening(proc, port)
        assert "(CORE, WEBJS)" in read_line(proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as client:
            version = client.get("/api/server/version").json()
            assert (version["tier"], version["engine"]) == ("CORE", "WEBJS")
            other = client.post(
                "/api/sendText", json={"session": "second", "chatId": CHAT, "text": "x"}
            )
            assert other.status_code == 422
            assert other.json()["message"].startswith("WAHA Core support only 'default' session")
            assert client.get("/api/default/new-message-id").status_code == 422
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_an_unknown_tier_is_an_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "waha_tui", "simulator", "--tier", "gold", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "tier must be one of PLUS, CORE" in done.stderr
