"""How a process of ours stops: the one rule for the dashboard and `waha-tui run`.

On SIGHUP (an SSH connection dropped), SIGTERM (systemd), SIGINT (Ctrl-C) or a terminal
that stops taking output, the process starts no new send, awaits a send already on the
wire for at most IN_FLIGHT_GRACE seconds (then abandons it: its fate is ambiguous and
the next resume settles it), pauses its campaigns, releases their leases and exits.
Whatever hangs on the way out (a vanished terminal, a database that stopped answering),
the process is gone EXIT_DEADLINE seconds after the stop began. SIGINT or SIGTERM once the
stop is under way exits at once; a repeated SIGHUP does not, as it says nothing new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

IN_FLIGHT_GRACE = 5.0  # seconds a send already on the wire is awaited before it is abandoned
EXIT_DEADLINE = 10.0  # seconds from the first stop request to the process being gone
# Leave room under the deadline for what follows the campaigns' pause (closing the
# store and the client, restoring the terminal).
WATCHDOG_MARGIN = 0.5

REASONS = {
    signal.SIGHUP: "the terminal closed (SIGHUP)",
    signal.SIGTERM: "SIGTERM",
    signal.SIGINT: "interrupted (Ctrl-C)",
}


def hard_exit(code: int, why: str) -> None:
    """Leave now, whatever else is running or blocked (threads, a terminal, a database)."""
    log.error("exiting at once: %s", why)
    for handler in logging.getLogger().handlers:
        # Never the terminal: a handler on a vanished one could block here too.
        if getattr(handler, "stream", None) not in (sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(OSError, ValueError):  # leaving: a failing file is moot
                handler.flush()
    os._exit(code)


class Stopper:
    """Turns the first stop request into an orderly stop (`on_stop(reason)`, on the event
    loop) and guarantees the exit: a watchdog ends the process EXIT_DEADLINE seconds later
    if it is still there, and a second SIGINT or SIGTERM ends it at once."""

    def __init__(
        self,
        on_stop: Callable[[str], None],
        *,
        deadline: float = EXIT_DEADLINE,
        watchdog: bool = True,
        exit: Callable[[int, str], None] = hard_exit,
    ) -> None:
        self._on_stop = on_stop
        self.deadline = deadline
        # Off only where the process outlives the stop (an app under test).
        self.use_watchdog = watchdog
        self._exit = exit
        self.reason: str | None = None  # set once the stop began
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchdog: threading.Timer | None = None
        self._signal: signal.Signals | None = None
        # A request from another thread before the loop was bound (a terminal gone while
        # the app starts): carried out by bind(), never dropped.
        self._pending: str | None = None

    @property
    def stopping(self) -> bool:
        return self.reason is not None

    def bind(self) -> None:
        """Take requests from other threads onto the running event loop (and carry out
        one that came before it)."""
        self._loop = asyncio.get_running_loop()
        if self._pending is not None and not self.stopping:
            self._loop.call_soon(self.request, self._pending)

    def install(self) -> None:
        """Handle SIGHUP, SIGTERM and SIGINT on the running event loop."""
        self.bind()
        assert self._loop is not None
        for sig in REASONS:
            self._loop.add_signal_handler(sig, self.on_signal, sig)

    def uninstall(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            for sig in REASONS:
                self._loop.remove_signal_handler(sig)

    def on_signal(self, sig: signal.Signals) -> None:
        if self.stopping and sig != signal.SIGHUP:
            self._exit(128 + sig, f"{sig.name} while stopping ({self.reason})")
            return
        log.warning("%s: stopping", REASONS[sig])
        self._signal = self._signal or sig
        self.request(REASONS[sig])

    def request(self, reason: str) -> None:
        """Begin the orderly stop, once (later calls only log). Call on the event loop;
        from another thread use `request_threadsafe`."""
        if self.stopping:
            log.info("stop requested again (%s); already stopping: %s", reason, self.reason)
            return
        self.reason = reason
        self._arm_watchdog()
        self._on_stop(reason)

    def _arm_watchdog(self) -> None:
        if self.use_watchdog and self._watchdog is None:
            self._watchdog = threading.Timer(self.deadline - WATCHDOG_MARGIN, self._overdue)
            self._watchdog.daemon = True
            self._watchdog.start()

    def request_threadsafe(self, reason: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self.request, reason)
                return
            except RuntimeError:  # the loop closed between the check and the call
                pass
        # No loop yet (the app is starting) or any more: bind() carries it out, and
        # whatever happens, the process is gone by the deadline.
        log.warning("stop requested (%s) before the event loop took requests", reason)
        self._pending = self._pending or reason
        self._arm_watchdog()

    def disarm(self) -> None:
        """The process is done by itself (tests run several stops in one process)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.uninstall()

    @property
    def exit_code(self) -> int:
        """The code a process that stopped on a signal leaves with (shells and systemd
        read 128 + the signal)."""
        return 128 + self._signal if self._signal is not None else 0

    def _overdue(self) -> None:
        self._exit(
            self.exit_code or 1,
            f"still running {self.deadline:g} s after the stop began "
            f"({self.reason or self._pending})",
        )
