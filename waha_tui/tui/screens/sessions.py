"""`w`: the WAHA server's WhatsApp sessions, live, and linking a phone by QR or pairing code."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Coroutine
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.validation import ValidationResult, Validator
from textual.widgets import DataTable, Footer, Input, Static

from waha_tui.errors import UserError
from waha_tui.logs import caught
from waha_tui.pacing import CapUse
from waha_tui.printable import printable
from waha_tui.sessions import SessionService, connected_number
from waha_tui.tui.format import shown
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.tui.widgets.qr import QUIET_ZONE, qr_lines, qr_size, qr_text
from waha_tui.waha import SessionInfo, SessionUnavailable, WahaError

log = logging.getLogger(__name__)
SCAN = "SCAN_QR_CODE"
SESSION_COLUMNS = [
    ("#", "pos"),
    ("Session", "name"),
    ("Status", "status"),
    ("Number", "number"),
    ("Name", "push_name"),
]
# A symbol and a word, so a status reads the same without colour.
SESSION_LOOK: dict[str, tuple[str, str]] = {
    "WORKING": ("●", "bold green"),
    SCAN: ("▣", "bold yellow"),
    "STARTING": ("◌", "cyan"),
    "STOPPED": ("○", "red"),
    "FAILED": ("✗", "bold red"),
}
SESSION_ACTIONS = ("start", "stop", "restart", "logout", "pair")
MIN_LEFT = 30  # columns kept for the table beside the QR code
LINK_STEPS = "WhatsApp → Settings → Linked devices → Link a device"


def one_line(exc: BaseException) -> str:
    """The error as one toast line (WAHA's messages may hold newlines)."""
    # A field named in a UserError is named as the dashboard's forms name it (its label).
    said = exc.said("label") if isinstance(exc, UserError) else str(exc)
    text = printable(" ".join(said.split())) or type(exc).__name__
    return text if isinstance(exc, UserError) else f"unexpected error: {type(exc).__name__}: {text}"


def session_status_cell(status: str) -> Text:
    symbol, style = SESSION_LOOK.get(status, ("?", "magenta"))
    return Text(f"{symbol} {printable(status)}", style=style)


def session_cells(pos: int, s: SessionInfo) -> tuple[object, ...]:
    """One row; everything WAHA sent is Text, never parsed as markup."""
    return (
        str(pos),
        shown(s.name),
        session_status_cell(s.status),
        shown(connected_number(s) or "-"),
        shown(s.me_push_name),
    )


class SessionTable(KeyedTable):
    BINDINGS = [
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class ServiceRule(Validator):
    """A form field checked by the service's own rule, so its message shows on the field."""

    def __init__(self, check: Callable[[str], object]) -> None:
        super().__init__()
        self.check = check

    def validate(self, value: str) -> ValidationResult:
        try:
            self.check(value)
        except UserError as exc:
            return self.failure(one_line(exc))
        return self.success()


class FormModal(ModalScreen[Any]):
    """A one-field form: the field's error under it, cleared as soon as the value changes."""

    BINDINGS = [Binding("escape", "close", "Cancel")]

    def field_failed(self, event: Input.Submitted) -> bool:
        result = event.validation_result
        if result is None or result.is_valid:
            return False
        self.show_error(result.failure_descriptions[0])
        return True

    def show_error(self, message: str) -> None:
        error = self.query_one(".form-error", Static)
        error.update(shown(message))
        error.display = bool(message)
        self.query_one(Input).set_class(bool(message), "-invalid")

    @on(Input.Changed)
    def _edited(self) -> None:
        self.show_error("")

    def action_close(self) -> None:
        self.dismiss(None)


class NewSessionModal(FormModal):
    """`n`: the name of a new session; WAHA creates and starts it."""

    def __init__(self, service: SessionService, taken: Collection[str]) -> None:
        super().__init__()
        self.service = service
        self.taken = set(taken)

    def compose(self) -> ComposeResult:
        with Vertical(id="new-session-box", classes="form-box"):
            yield Static("New WhatsApp session", classes="form-title")
            yield Input(
                placeholder="name: letters, digits, - and _",
                id="new-session-name",
                validators=[ServiceRule(lambda v: self.service.check_name(v, self.taken))],
                validate_on=["submitted"],
            )
            yield Static(id="new-session-error", classes="form-error")
            yield Static("enter creates and starts it · esc cancels", classes="form-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if not self.field_failed(event):
            self.dismiss(event.value.strip())


class PairingModal(FormModal):
    """`P`: link a phone by typing a code on it instead of scanning the QR code."""

    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, service: SessionService, session: str) -> None:
        super().__init__()
        self.service = service
        self.session = session
        self.code: str | None = None
        self._asking = False

    def compose(self) -> ComposeResult:
        with Vertical(id="pair-box", classes="form-box"):
            yield Static(
                shown(f"Link session '{self.session}' with a phone number"), classes="form-title"
            )
            yield Input(
                placeholder="the phone's number with country code, e.g. +49 151 2345678",
                id="pair-phone",
                validators=[ServiceRule(self.service.check_phone)],
                validate_on=["submitted"],
            )
            yield Static(id="pair-error", classes="form-error")
            yield Static(id="pair-code")
            yield Static(id="pair-steps")
            yield Static("enter asks WAHA for a code · esc closes", classes="form-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if self.field_failed(event) or self._asking:
            return
        self._asking = True
        self.run_worker(self._ask(event.value), group="pairing", exit_on_error=False)

    async def _ask(self, phone: str) -> None:
        try:
            code = await self.service.pairing_code(self.session, phone)
        except Exception as exc:
            caught(log, exc, f"pairing code for session '{self.session}'")
            self.notify(
                f"no pairing code for '{self.session}': {one_line(exc)}",
                severity="error",
                markup=False,
                timeout=8,
            )
            return
        finally:
            self._asking = False
        self.show_code(code, self.service.check_phone(phone))

    def show_code(self, code: str, phone: str) -> None:
        self.code = code
        box = self.query_one("#pair-code", Static)
        # Spaced out and bold: it is read off the screen and typed letter by letter.
        box.update(shown(" ".join(code), style="bold"))
        box.display = True
        steps = self.query_one("#pair-steps", Static)
        steps.update(
            Text(
                f"On the phone +{phone}: {LINK_STEPS} → Link with phone number instead, "
                "then type this code."
            )
        )
        steps.display = True


class SessionsScreen(Screen[None]):
    BINDINGS = [
        Binding("s", "start", "Start"),
        Binding("x", "stop", "Stop"),
        Binding("R", "restart", "Restart"),
        Binding("l", "logout", "Log out"),
        Binding("P", "pair", "Pairing code"),
        Binding("n", "new", "New session"),
        Binding("escape", "back", "Back"),
    ]
    REFRESH_INTERVAL = 2.0  # seconds between session lists
    QR_INTERVAL = 3.0  # WAHA issues a new QR value about every 20 s

    def __init__(self, service: SessionService) -> None:
        super().__init__()
        self.service = service
        self.sessions: dict[str, SessionInfo] = {}
        self.caps: dict[str, CapUse] = {}  # each session's number's caps, by session name
        self.loaded = False
        self.busy: set[str] = set()  # sessions with an action in flight
        self.error: str | None = None  # the last failed refresh, shown until one succeeds
        self.qr_for: str | None = None  # the session whose QR code is wanted
        self.qr_value: str | None = None
        self.qr_shown: list[str] | None = None  # the drawn lines, None when no code is shown
        self._qr_fetching: str | None = None
        self._too_small: tuple[int, int] | None = None
        self._loading = False
        self._dirty = False
        self._select: str | None = None  # a session to move the cursor to once it is listed

    def compose(self) -> ComposeResult:
        yield Static(self._title(), id="sessions-title")
        with Horizontal(id="sessions-body"):
            with Vertical(id="sessions-left"):
                yield SessionTable(SESSION_COLUMNS, id="sessions")
                yield Static(id="session-info")
            with Vertical(id="qr-panel"):
                yield Static(id="qr")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sessions", KeyedTable).focus()
        self.refresh_sessions()
        self.set_interval(self.REFRESH_INTERVAL, self.refresh_sessions)
        self.set_interval(self.QR_INTERVAL, self.refresh_qr)

    def run_task(self, coro: Coroutine[Any, Any, None]) -> None:
        # Workers, so a slow or dead WAHA never blocks the screen.
        self.run_worker(coro, group="sessions", exit_on_error=False)

    # -- the list ----------------------------------------------------------------------

    def refresh_sessions(self) -> None:
        self.run_task(self.reload())

    async def reload(self) -> None:
        if self._loading:
            self._dirty = True  # an action finished mid-load: load again right after
            return
        self._loading = True
        try:
            while True:
                self._dirty = False
                try:
                    found = await self.service.list()
                except Exception as exc:
                    caught(log, exc, "listing the WAHA sessions")
                    self._failed(exc)
                    return
                try:
                    self.caps = await self.service.caps(found)
                except Exception as exc:  # shown without caps until the next list
                    caught(log, exc, "reading the numbers' caps")
                self._loaded(found)
                if not self._dirty:
                    break
        finally:
            self._loading = False

    def _failed(self, exc: Exception) -> None:
        message = one_line(exc)
        if message != self.error:  # a dead WAHA is one toast, not one every refresh
            self.notify(message, severity="error", markup=False, timeout=8)
        self.error = message
        self.query_one("#sessions-title", Static).update(self._title())

    def _loaded(self, found: list[SessionInfo]) -> None:
        before = self.sessions
        self.sessions = {s.name: s for s in found}
        self.error = None
        if self.loaded:
            for s in found:
                old = before.get(s.name)
                if s.working and old is not None and not old.working:
                    self._connected(s)
        self.loaded = True
        self.show()

    def _connected(self, s: SessionInfo) -> None:
        self.notify(
            f"session '{s.name}' is connected as {connected_number(s) or 'an unknown number'}",
            markup=False,
            timeout=8,
        )
        screen = self.app.screen
        if isinstance(screen, PairingModal) and screen.session == s.name:
            screen.dismiss(None)  # the code was typed in: nothing left to do there

    def show(self) -> None:
        table = self.query_one("#sessions", KeyedTable)
        table.sync(
            (name, session_cells(pos, s)) for pos, (name, s) in enumerate(self.sessions.items(), 1)
        )
        if self._select in self.sessions:
            table.move_cursor(row=table.get_row_index(self._select), animate=False)
            self._select = None
        self.query_one("#sessions-title", Static).update(self._title())
        self._follow_cursor()

    def current(self) -> SessionInfo | None:
        key = self.query_one("#sessions", KeyedTable).current_key
        return self.sessions.get(key) if key else None

    @on(DataTable.RowHighlighted, "#sessions")
    def _row_moved(self) -> None:
        self._follow_cursor()

    def _follow_cursor(self) -> None:
        """The QR code, the help line and the footer keys follow the highlighted session."""
        s = self.current()
        wanted = s.name if s is not None and s.status == SCAN else None
        if wanted != self.qr_for:
            self.qr_for = wanted
            self._hide_qr()  # never one session's code under another one's name
            if wanted is not None:
                self.refresh_qr()
        self._show_info()
        self.refresh_bindings()

    def _title(self) -> Text:
        line = Text("WhatsApp sessions", style="bold")
        line.append(f"  on WAHA {self.service.base_url}")
        if self.error:
            line.append("  ")
            line.append(printable(self.error), style="bold red")
        elif not self.loaded:
            line.append("  loading…", style="dim")
        return line

    def _show_info(self) -> None:
        info = self.query_one("#session-info", Static)
        s = self.current()
        line = Text()
        name = printable(s.name) if s is not None else ""  # WAHA's text, shown as text
        if s is None:
            if self.loaded and not self.sessions:
                line.append("No sessions on this WAHA server. Press n to create one.")
        elif s.status == "WORKING":
            number = printable(connected_number(s) or "an unknown number")
            line.append(f"'{name}' is connected as {number}")
            if s.me_push_name:
                line.append(f" ({printable(s.me_push_name)})")
            line.append(".")
            use = self.caps.get(s.name)
            if use is not None:
                # "Caps: 83/200 today, 12/30 this hour, warm-up day 3 of 6."
                line.append(f" Caps: {use.summary()}.", style="cyan")
        elif s.status == SCAN:
            if self._too_small is not None:
                w, h = self._too_small
                line.append(
                    f"The terminal is too small for the QR code ({w}×{h} needed): enlarge it, ",
                    style="yellow",
                )
                line.append("or press P to link with a phone number.", style="yellow")
            else:
                line.append(f"To link '{name}', scan the QR code with the phone: {LINK_STEPS}. ")
                line.append("No camera? Press P for a pairing code.")
        elif s.status == "STARTING":
            line.append(f"'{name}' is starting…")
        elif s.status in ("STOPPED", "FAILED"):
            line.append(f"'{name}' is {printable(s.status)}. Press s to start it")
            line.append(", or l to log out and link it anew." if s.status == "FAILED" else ".")
        else:
            line.append(f"'{name}' is {printable(s.status)}.")
        info.update(line)

    # -- the QR code -------------------------------------------------------------------

    def refresh_qr(self) -> None:
        name = self.qr_for
        if name is not None and self._qr_fetching != name:
            self.run_task(self._fetch_qr(name))

    async def _fetch_qr(self, name: str) -> None:
        self._qr_fetching = name
        try:
            value = await self.service.qr(name)
        except Exception as exc:
            caught(log, exc, f"QR code of session '{name}'")
            # 422: it left SCAN_QR_CODE since the list was read; the next list shows why.
            gone = isinstance(exc, SessionUnavailable) or (
                isinstance(exc, WahaError) and exc.status_code == 422
            )
            if name == self.qr_for and not gone:
                self._failed(exc)
            return
        finally:
            if self._qr_fetching == name:
                self._qr_fetching = None
        if name == self.qr_for and value != self.qr_value:  # redraw only a new code
            self.qr_value = value
            self._draw_qr()

    def _draw_qr(self) -> None:
        value = self.qr_value
        if value is None:
            return
        room = (self.size.width - MIN_LEFT - 1, self.size.height - 2)  # title and footer rows
        lines: list[str] | None = None
        need = (0, 0)
        # The full quiet zone when it fits; a narrower one still scans on most phones.
        for border in (QUIET_ZONE, 2, 1):
            candidate = qr_lines(value, border=border)
            need = qr_size(candidate)
            if need[0] <= room[0] and need[1] <= room[1]:
                lines = candidate
                break
        panel = self.query_one("#qr-panel")
        if lines is None:
            self._too_small = need
            self.qr_shown = None
            panel.display = False
        else:
            self._too_small = None
            self.qr_shown = lines
            self.query_one("#qr", Static).update(qr_text(lines))
            panel.display = True
        self._show_info()

    def _hide_qr(self) -> None:
        self.qr_value = None
        self.qr_shown = None
        self._too_small = None
        self.query_one("#qr-panel").display = False
        self.query_one("#qr", Static).update("")

    def on_resize(self, event: Resize) -> None:
        self._draw_qr()

    # -- keys --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action not in SESSION_ACTIONS:
            return True
        s = self.current()
        if s is None or s.name in self.busy:
            return False
        if action == "start":
            return s.status in ("STOPPED", "FAILED")
        if action in ("stop", "restart"):
            return s.status != "STOPPED"
        if action == "logout":
            return s.status in ("WORKING", "STOPPED", "FAILED")
        return s.status == SCAN  # pair

    def _act(self, action: str, verb: str, done: str) -> None:
        s = self.current()
        if s is not None and self.check_action(action, ()):
            self._act_on(s.name, action, verb, done)

    def _act_on(self, name: str, action: str, verb: str, done: str) -> None:
        if name in self.busy:
            return
        self.busy.add(name)
        self.refresh_bindings()
        self.run_task(self._run(name, action, verb, done))

    async def _run(self, name: str, action: str, verb: str, done: str) -> None:
        call = getattr(self.service, action)
        try:
            await call(name)
        except Exception as exc:
            caught(log, exc, f"{verb} session '{name}'")
            self.notify(
                f"cannot {verb} session '{name}': {one_line(exc)}", severity="error", markup=False
            )
        else:
            self.notify(f"session '{name}' {done}", markup=False)
        finally:
            self.busy.discard(name)
        await self.reload()

    def action_start(self) -> None:
        self._act("start", "start", "is starting")

    def action_stop(self) -> None:
        self._act("stop", "stop", "stopped")

    def action_restart(self) -> None:
        self._act("restart", "restart", "is restarting")

    def action_logout(self) -> None:
        s = self.current()
        if s is None or not self.check_action("logout", ()):
            return
        name = s.name
        number = connected_number(s)

        def answered(yes: bool | None) -> None:
            if yes:
                self._act_on(name, "logout", "log out", "logged out")

        linked = f" and unlink {number}" if number else ""
        question = (
            f"Log out session '{name}'{linked}? Campaigns on it stop sending until a phone "
            "scans a new QR code."
        )
        self.app.push_screen(ConfirmationModal(question, yes="Log out", no="Keep it"), answered)

    def action_new(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.run_task(self._create(name))

        self.app.push_screen(NewSessionModal(self.service, self.sessions), chosen)

    async def _create(self, name: str) -> None:
        try:
            await self.service.create(name, taken=self.sessions)
        except Exception as exc:
            caught(log, exc, f"creating session '{name}'")
            self.notify(
                f"cannot create session '{name}': {one_line(exc)}", severity="error", markup=False
            )
            return
        self.notify(f"session '{name}' created and starting", markup=False)
        self._select = name
        await self.reload()

    def action_pair(self) -> None:
        s = self.current()
        if s is not None and self.check_action("pair", ()):
            self.app.push_screen(PairingModal(self.service, s.name))

    def action_back(self) -> None:
        self.app.pop_screen()
