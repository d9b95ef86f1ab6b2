"""Serve the simulator on a real socket: in a background thread (tests, demo) or blocking (CLI)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn

from waha_tui.simulator.app import Simulator
from waha_tui.simulator.state import SimState


def _config(sim: Simulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        sim,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
        # WAHA pings every /ws client every 10 s and drops one that stops answering.
        ws_ping_interval=10.0,
        ws_ping_timeout=20.0,
        # Its lines go to the process's own logging (logs.py), never a handler of uvicorn's
        # own on the terminal (the demo draws the dashboard there).
        log_config=None,
    )


class SimulatorServer:
    """A uvicorn server for one Simulator on its own thread and event loop."""

    def __init__(
        self, sim: Simulator | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sim = sim or Simulator()
        self.host = host
        # Bind first, so port 0 becomes a real free port before anything else starts.
        # The socket must say IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted
        # connections whose proto is TCP, and without it every keep-alive request waits
        # ~40 ms on Nagle + delayed ACK.
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )[0]
        self._sock = socket.socket(family, kind, proto)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(address)
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.sim, host, self.port, "critical"))
        # No signal handlers to switch off: uvicorn (>= 0.29) installs them only on the
        # main thread, and this server runs on a thread of its own.
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> SimState:
        return self.sim.state

    def start(self) -> SimulatorServer:
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])),
            name="waha-simulator",
            daemon=True,
        )
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the WAHA simulator failed to start")
            threading.Event().wait(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread:
            self._thread.join(timeout=5)
        self._sock.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_forever(sim: Simulator, host: str, port: int) -> None:
    uvicorn.Server(_config(sim, host, port, "warning")).run()
