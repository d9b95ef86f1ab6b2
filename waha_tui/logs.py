"""Where each process logs, set up once from the CLI's entry (`configure`).

The dashboard draws on the terminal, so it logs only to a private rotating file in the
user's state directory; `waha-tui run` and the other commands log to stderr, in the form
systemd's journal reads (a `<priority>` prefix and no timestamp) when stderr is the journal.
Every line goes through `redact`: the API key and the database password never reach a log,
not even inside a URL or a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from waha_tui.errors import UserError
from waha_tui.printable import printable
from waha_tui.secret import redact

APP_NAME = "waha-tui"
LOG_FILE_NAME = "waha-tui.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3  # waha-tui.log.1 ... .3
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# Libraries whose INFO and DEBUG lines are noise here (httpx logs every request).
QUIET = ("httpx", "httpcore", "asyncio", "sqlalchemy", "psycopg", "uvicorn")
# Python's levels as syslog priorities, which the journal reads from a "<N>" prefix.
PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}
FILE_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
STDERR_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"

_OURS = "_waha_tui_handler"  # marks the handlers `configure` installed


def default_log_file() -> Path:
    """The dashboard's log: in the user's state directory (~/.local/state/waha-tui on
    Linux, or $XDG_STATE_HOME/waha-tui)."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / LOG_FILE_NAME


def log_file(given: str | None = None) -> Path:
    """--log-file, else WAHA_TUI_LOG_FILE, else the default."""
    text = given or os.environ.get("WAHA_TUI_LOG_FILE")
    return Path(text).expanduser() if text else default_log_file()


def parse_level(given: str | None, default: int) -> int:
    """--log-level, else WAHA_TUI_LOG_LEVEL, else `default`."""
    text = given if given is not None else os.environ.get("WAHA_TUI_LOG_LEVEL")
    if text is None or not text.strip():
        return default
    level = LEVELS.get(text.strip().lower())
    if level is None:
        where = "--log-level" if given is not None else "WAHA_TUI_LOG_LEVEL"
        raise UserError(f"{where} {text!r} is not one of {', '.join(LEVELS)}")
    return level


class RedactingFormatter(logging.Formatter):
    """Formats as usual, the message on one line with no control characters, then hides
    the secrets in the whole text, traceback included."""

    def __init__(self, fmt: str, secrets: Iterable[str | None] = (), *, journal: bool = False):
        super().__init__(fmt)
        self.secrets = [s for s in secrets if s]
        self.journal = journal

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The line itself: text from outside (WAHA's words) can neither forge a line nor
        # drive the terminal. A traceback after it keeps its lines.
        return printable(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record), self.secrets)
        if not self.journal:
            return text
        # Each line of a traceback gets the priority too: the journal splits on newlines.
        prefix = f"<{PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines())


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating log file created 0600 whatever the umask, and so is each new file after
    a rotation: the log holds phone numbers."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # One left wider by hand is narrowed; someone else's we may append to is left alone.
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def on_journal(stream: TextIO) -> bool:
    """Whether `stream` is systemd's journal: JOURNAL_STREAM names its device and inode."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        found = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{found.st_dev}:{found.st_ino}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Whatever sys.stderr is when a line is written, as logging's last resort does: a
    command run in-process (tests, a wrapper) swaps it and closes the one it lent."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure(
    *,
    level: int,
    file: Path | None = None,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> None:
    """Set up this process's logging (again: a second call replaces the first).

    With `file`: that file only, nothing on the terminal (the dashboard). Otherwise
    `stream` (stderr), in the journal's form when it is the journal.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    handler: logging.Handler
    if file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handler = PrivateRotatingFileHandler(
                file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
            )
        except OSError as exc:
            raise UserError(
                f"cannot write the log file {file}: {exc.strerror or exc}; choose another "
                "with --log-file or WAHA_TUI_LOG_FILE"
            ) from None
        handler.setFormatter(RedactingFormatter(FILE_FORMAT, secrets))
        # A warning printed on the terminal would tear the dashboard's screen.
        logging.captureWarnings(True)
    else:
        out = stream or sys.stderr
        handler = logging.StreamHandler(out) if stream is not None else _StderrHandler()
        journal = on_journal(out)
        fmt = JOURNAL_FORMAT if journal else STDERR_FORMAT
        handler.setFormatter(RedactingFormatter(fmt, secrets, journal=journal))
    setattr(handler, _OURS, True)
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def caught(logger: logging.Logger, exc: BaseException, doing: str) -> None:
    """Log what a catch-all caught: an error meant for the operator as its one line
    (warning), anything else with its traceback (error)."""
    if isinstance(exc, UserError):
        logger.warning("%s: %s", doing, exc)
    else:
        logger.error("%s: unexpected %s", doing, type(exc).__name__, exc_info=exc)
