"""Serve the simulator on a real socket: in a background thread (tests, demo) or blocking (CLI)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn

from waha_tui.simulator.app import Simulator


def _config(sim: Simulator, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        sim,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )


class SimulatorServer:
    """A uvicorn server for one Simulator on its own thread and event loop."""

    def __init__(
        self, sim: Simulator | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sim = sim or Simulator()
        self.host = host
        # Bind first, so port 0 becomes a real free port before anything else starts.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_config(self.sim, host, self.port, "critical"))
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def state(self):
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
