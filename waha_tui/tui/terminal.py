"""A terminal that can vanish: the dashboard's output never blocks on it for long.

Textual writes the screen from its output thread to `sys.__stderr__` with blocking
writes. When an SSH connection drops, those writes fail (EIO) and the thread dies, after
which the app blocks forever on the thread's full queue; when the terminal merely stops
reading (a frozen client, a stalled network), they block forever. Either way the process
could never exit. Here the output goes through a descriptor of our own, opened on the same
terminal without blocking: a write that fails, or that makes no progress for STALL
seconds, marks the terminal gone, reports it once, and every later write is dropped, so
Textual's own shutdown runs to the end.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

from textual.drivers.linux_driver import LinuxDriver

log = logging.getLogger(__name__)

STALL = 5.0  # seconds without a byte taken before a terminal counts as gone
HANGUP_POLL_MS = 500  # how often the hang-up watch looks whether the driver closed


class GuardedTerminal:
    """A write-only file over a terminal, for Textual's output thread."""

    def __init__(
        self, file: IO[str], on_gone: Callable[[str], None], *, stall: float = STALL
    ) -> None:
        self._file = file
        self._on_gone = on_gone
        self.stall = stall
        self.gone: str | None = None
        self._lock = threading.Lock()
        self._fd, self._own = self._open(file)

    @staticmethod
    def _open(file: IO[str]) -> tuple[int, bool]:
        fd = file.fileno()
        try:
            # A description of our own: O_NONBLOCK on the shared one would also change
            # stdin, and the shell's terminal after we exit.
            own = os.open(os.ttyname(fd), os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return fd, False  # not a terminal we can reopen: writes may block
        return own, True

    # What Textual's WriterThread and driver use of a file.
    def fileno(self) -> int:
        return self._file.fileno()

    def isatty(self) -> bool:
        return True

    def flush(self) -> None:
        return

    def write(self, text: str) -> int:
        if self.gone is None:
            self._write(text.encode("utf-8", "replace"))
        return len(text)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                ready = select.select([], [self._fd], [], self.stall)[1]
                if not ready:
                    self.lose(f"the terminal took no output for {self.stall:g} s")
                    return
                continue
            except OSError as exc:
                self.lose(f"the terminal is gone ({errno.errorcode.get(exc.errno or 0, exc)})")
                return
            view = view[written:]

    def lose(self, why: str) -> None:
        with self._lock:
            if self.gone is not None:
                return
            self.gone = why
        log.warning("%s: output to it stops", why)
        self._on_gone(why)

    def close(self) -> None:
        if self._own:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._own = False


class GuardedDriver(LinuxDriver):
    """Textual's Linux driver writing through a GuardedTerminal; input that fails counts
    as the terminal gone too. The app gives `on_terminal_gone` (called from a thread)."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        report: Callable[[str], None] = getattr(app, "on_terminal_gone", lambda why: None)
        # Textual's writer thread writes to `_file`, which it sets to sys.__stderr__ here;
        # tests/test_exit.py fails if a Textual release stops doing so.
        self.terminal = GuardedTerminal(sys.__stderr__ or sys.stderr, report)
        # Duck-typed: the writer thread only calls write, flush and fileno.
        self._file = self.terminal  # type: ignore[assignment]
        self._closing = False

    def start_application_mode(self) -> None:
        # Textual leaves this method unannotated.
        super().start_application_mode()  # type: ignore[no-untyped-call]
        # A hung-up terminal reads as end-of-file, which Textual's input loop skips over
        # without a word: a thread of our own waits for the hang-up itself.
        self._hangup_watch = threading.Thread(
            target=self._watch_hangup, name="waha-tui-hangup", daemon=True
        )
        self._hangup_watch.start()

    def _watch_hangup(self) -> None:
        poller = select.poll()
        poller.register(self.fileno, select.POLLHUP)  # POLLHUP and POLLERR: always reported
        while self.terminal.gone is None and not self._closing:
            for _fd, mask in poller.poll(HANGUP_POLL_MS):
                if mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                    self.terminal.lose("the terminal hung up")
                    return

    def run_input_thread(self) -> None:
        try:
            super().run_input_thread()
        except OSError as exc:
            # Textual would panic (and print a traceback to the vanished terminal).
            self.terminal.lose(f"the terminal is gone (reading it failed: {exc.strerror})")

    def close(self) -> None:
        self._closing = True
        super().close()
        self.terminal.close()
