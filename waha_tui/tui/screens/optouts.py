"""`O`: the opt-out list, the numbers no campaign messages again: search it, add a number
by hand, remove one, import a CSV file.

Every rule is the service's (`OptOutService`, which `waha-tui optout ...` calls too), so
the forms show the CLI's own one-line errors, in the forms' words (errors.said), beside the
field the service names. The list may hold 100,000 numbers: the database pages, searches and
counts it; the table holds one page (PAGE_SIZE rows) at a time, as the main screen does.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Static

from waha_tui.errors import FIELD_NAMES, InvalidInput
from waha_tui.logs import caught
from waha_tui.models import OptOut
from waha_tui.service import OptOutImport, OptOutService
from waha_tui.tui.columns import OPTOUTS, Fitted, cut, fit
from waha_tui.tui.format import local_time, sent_time, shown
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.contacts import duplicate_lines
from waha_tui.tui.screens.sessions import one_line
from waha_tui.tui.widgets.form import Field
from waha_tui.tui.widgets.key_footer import KeyFooter
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.tui.widgets.paged_table import PagedTable, Paging

log = logging.getLogger(__name__)
PAGE_SIZE = 100  # rows the table holds at a time: its cost stays flat however long the list
REFRESH_EVERY = 2.0  # seconds between reads: replies add numbers while the screen is open
DEFAULT_WIDTH = 80  # until the first resize tells the real one
SCROLLBAR = 2
ROW_LINES = 2  # the highlighted number's line under the table
TITLE = "Opt-out list: numbers no campaign messages again"
EMPTY = (
    "The opt-out list is empty. A reply with an opt-out keyword (STOP, BAJA…) adds its "
    "number by itself; press a to add one by hand, or i to import a CSV file."
)
R = TypeVar("R")


@dataclass(frozen=True)
class Intent:
    """Where the cursor goes once the read the operator asked for is in: on this number
    (if it is on the page), else the page's first row, or its last with `at_end`."""

    at_end: bool = False
    phone: str | None = None


def optout_cells(o: OptOut) -> dict[str, object]:
    """Every cell of a number's row, by column key; its reason (what they wrote, a file's
    name) is data, never markup."""
    return {
        "phone": shown(o.phone),
        "added": sent_time(o.added_at),
        "source": shown(o.source),
        "campaign": str(o.campaign_id) if o.campaign_id is not None else "-",
        "reason": shown(o.reason),
    }


def optout_line(o: OptOut) -> Text:
    """The highlighted number, whole, under the table: the Why column is cut."""
    line = shown(o.phone, style="bold")
    line.append(f" · {local_time(o.added_at, '%Y-%m-%d %H:%M')} · ")
    line.append_text(shown(o.source))
    if o.campaign_id is not None:
        line.append(f" · campaign {o.campaign_id}")
    if o.reason:
        line.append(": ")
        line.append_text(shown(o.reason))
    return line


class _OptOutForm(ModalScreen[R | None], Generic[R]):
    """A small form over the list: its fields (the service's name of each -> the form's
    id), each refusal beside its field, all at once; anything else a toast."""

    BINDINGS = [Binding("escape", "close", "Cancel")]
    FIELDS: ClassVar[dict[str, str]]

    def __init__(self, optouts: OptOutService) -> None:
        super().__init__()
        self.optouts = optouts
        self.busy = False

    def value(self, field: str) -> str:
        return self.query_one(f"#optout-{field}", Input).value

    def field(self, name: str) -> Field:
        return self.query_one(f"#optout-{name}-field", Field)

    def submit(self) -> Awaitable[R]:
        raise NotImplementedError

    @on(Input.Submitted)
    def _submitted(self) -> None:
        if self.busy:
            return
        self.busy = True
        self.run_worker(self._run(), group="optout-form", exit_on_error=False)

    async def _run(self) -> None:
        try:
            result = await self.submit()
        except InvalidInput as exc:
            for service_field, field in self.FIELDS.items():
                self.field(field).set_error("\n".join(exc.messages(service_field, "label")))
            return
        except Exception as exc:
            caught(log, exc, "the opt-out list")
            self.notify(one_line(exc), severity="error", markup=False, timeout=10)
            return
        finally:
            self.busy = False
        self.dismiss(result)

    def action_close(self) -> None:
        self.dismiss(None)


class AddOptOutModal(_OptOutForm[tuple[str, bool]]):
    """`a`: a number by hand, and why; dismissed with (the number as stored, new there)."""

    FIELDS = {"phone": "phone", "country": "country"}

    def compose(self) -> ComposeResult:
        with Vertical(id="optout-add-box", classes="form-box optout-box"):
            yield Static("Add a number to the opt-out list", classes="form-title")
            yield Field(
                FIELD_NAMES["phone"].label,
                Input(placeholder="e.g. +49 151 2345678", id="optout-phone", compact=True),
                id="optout-phone-field",
            )
            yield Field(
                "Reason",
                Input(placeholder="optional, e.g. by phone", id="optout-reason", compact=True),
                id="optout-reason-field",
            )
            yield Field(
                FIELD_NAMES["country"].label,
                Input(placeholder="optional, e.g. DE", id="optout-country", compact=True),
                hint="for a number written without +country code",
                id="optout-country-field",
            )
            yield Static("enter adds · tab next field · esc cancels", classes="form-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#optout-phone", Input).focus()

    def submit(self) -> Awaitable[tuple[str, bool]]:
        return self.optouts.add(
            self.value("phone"),
            reason=self.value("reason"),
            country=self.value("country").strip() or None,
        )


class ImportOptOutsModal(_OptOutForm[OptOutImport]):
    """`i`: every number of a CSV file's phone column (a bad line refuses the file)."""

    FIELDS = {"path": "path", "country": "country"}

    def compose(self) -> ComposeResult:
        with Vertical(id="optout-import-box", classes="form-box optout-box"):
            yield Static("Import opt-outs from a CSV file", classes="form-title")
            yield Field(
                FIELD_NAMES["path"].label,
                Input(placeholder="path/to/optouts.csv", id="optout-path", compact=True),
                id="optout-path-field",
            )
            yield Field(
                FIELD_NAMES["country"].label,
                Input(placeholder="optional, e.g. DE", id="optout-country", compact=True),
                hint="for numbers written without +country code",
                id="optout-country-field",
            )
            yield Static(
                "A header row with a phone column; a reason column is kept if there is one.",
                classes="form-hint",
            )
            yield Static("enter imports · tab next field · esc cancels", classes="form-hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#optout-path", Input).focus()

    def submit(self) -> Awaitable[OptOutImport]:
        return self.optouts.import_file(
            os.path.expanduser(self.value("path").strip()),
            country=self.value("country").strip() or None,
        )


class OptOutTable(PagedTable):
    """One page of numbers (PagedTable: the page turns at its edges, g/G to the ends)."""


class OptOutsScreen(Paging, Screen[None]):
    BINDINGS = [
        Binding("slash", "search", "Search"),
        Binding("a", "add", "Add"),
        Binding("D", "remove", "Remove"),
        Binding("ctrl+d", "remove", "Remove", show=False),
        Binding("i", "import_csv", "Import CSV"),
        # One key, two meanings: the search first, then back (check_action picks).
        Binding("escape", "clear_search", "Clear search"),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, optouts: OptOutService) -> None:
        super().__init__()
        self.optouts = optouts
        self.rows: dict[str, OptOut] = {}  # the page shown, by number, in table order
        self.count = 0  # how many numbers match the search
        self.page = 0
        self.search_text = ""
        self.loaded = False
        self._error: str | None = None  # the service's refusal of the search typed
        self._read_error: str | None = None  # the last failed read's, until one works
        self._fitted: list[Fitted] = fit(OPTOUTS, DEFAULT_WIDTH - SCROLLBAR)
        self._view = 0  # bumped when the operator asks for something else (page, search)
        self._intent: Intent | None = None
        self._loading = False
        self._dirty = False

    def compose(self) -> ComposeResult:
        yield Static(Text(TITLE, style="bold"), id="optouts-title")
        table = OptOutTable([(f.column.label, f.key) for f in self._fitted], id="optouts")
        table.set_columns(self._columns())
        yield table
        yield Static(id="optouts-count")
        yield Static(id="optouts-row")
        yield Static(id="optouts-hint")
        yield Input(placeholder="a part of the number (esc clears)", id="optouts-search")
        yield KeyFooter()

    def _columns(self) -> list[tuple[str, str, int | None]]:
        return [(f.column.label, f.key, f.width) for f in self._fitted]

    async def on_mount(self) -> None:
        self.query_one("#optouts", KeyedTable).focus()
        await self.reload()
        self.set_interval(REFRESH_EVERY, self._tick)

    def on_resize(self, event: events.Resize) -> None:
        fitted = fit(OPTOUTS, event.size.width - SCROLLBAR)
        if fitted == self._fitted:
            return
        self._fitted = fitted
        if self.query_one("#optouts", KeyedTable).set_columns(self._columns()) and self.loaded:
            self._show_rows()

    # -- reading -------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._loading:
            self._start_reload()

    def _start_reload(self) -> None:
        self.run_worker(self.reload(), group="optouts", exit_on_error=False)

    def _ask(self, intent: Intent | None) -> None:
        """The operator changed what to show: read it (now, or after the read under way)."""
        self._view += 1
        self._intent = intent
        self._start_reload()

    async def reload(self) -> None:
        """Read the page shown and how many match, off the event loop; a page or search
        asked for meanwhile makes it read again."""
        if self._loading:
            self._dirty = True
            return
        self._loading = True
        try:
            while True:
                self._dirty = False
                view, intent, search, page = self._view, self._intent, self.search_text, self.page
                error = None
                try:
                    rows, count = await self.optouts.page(
                        search, offset=page * PAGE_SIZE, limit=PAGE_SIZE
                    )
                except InvalidInput as exc:
                    rows, count, error = [], 0, exc.said("label")
                except Exception as exc:
                    # Said once, not at every tick while the database stays away.
                    if str(exc) != self._read_error:
                        self._read_error = str(exc)
                        caught(log, exc, "reading the opt-out list")
                        self.notify(one_line(exc), severity="error", markup=False)
                    self._intent = None
                    return
                self._read_error = None
                if view != self._view:
                    continue  # the operator asked for something else meanwhile
                if not rows and count and page:
                    # Past the end: numbers were removed (here or elsewhere). The last page.
                    self.page = (count - 1) // PAGE_SIZE
                    continue
                self._intent = None
                self._apply(rows, count, error)
                self._place_cursor(intent)
                if not self._dirty:
                    break
        finally:
            self._loading = False

    def _apply(self, rows: list[OptOut], count: int, error: str | None) -> None:
        self.rows = {o.phone: o for o in rows}
        self.count, self._error, self.loaded = count, error, True
        self._show_rows()

    def _show_rows(self) -> None:
        fitted = self._fitted
        self.query_one("#optouts", KeyedTable).sync(
            (phone, tuple(cut(cells[f.key], f.width) for f in fitted))
            for phone, cells in ((p, optout_cells(o)) for p, o in self.rows.items())
        )
        self._show_count()
        self._show_hint()
        self._show_row()
        self.refresh_bindings()

    def _place_cursor(self, intent: Intent | None) -> None:
        if intent is None:
            return
        table = self.query_one("#optouts", KeyedTable)
        if intent.phone is not None and intent.phone in self.rows:
            table.move_cursor(row=table.get_row_index(intent.phone), animate=False)
        elif table.row_count:
            table.move_cursor(row=table.row_count - 1 if intent.at_end else 0, animate=False)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / PAGE_SIZE))

    @property
    def turning(self) -> bool:
        """A read the operator asked for (a page, a search) is under way."""
        return self._intent is not None

    def _show_count(self) -> None:
        """How many match, and past one page which rows these are."""
        n = self.count
        numbers = f"{n:,} number{'' if n == 1 else 's'}"
        if self._error is not None:
            line = Text("")
        elif self.search_text.strip():
            line = Text(f"{numbers} match{'es' if n == 1 else ''} ")
            line.append_text(shown(repr(self.search_text.strip())))
        else:
            line = Text(f"{numbers} on the list")
        if n > PAGE_SIZE:
            first = self.page * PAGE_SIZE
            last = min(first + PAGE_SIZE, n)
            line.append(
                f" · rows {first + 1:,}–{last:,} · page {self.page + 1:,}/{self.pages:,}"
                " · PgUp/PgDn"
            )
        self.query_one("#optouts-count", Static).update(line)

    def _show_hint(self) -> None:
        if self._error is not None:
            hint = shown(self._error, style="red")
        elif self.rows or not self.loaded:
            hint = Text("")
        elif self.search_text.strip():
            hint = shown(f"No number matches {self.search_text.strip()!r} (esc clears)")
        else:
            hint = Text(EMPTY)
        box = self.query_one("#optouts-hint", Static)
        box.update(hint)
        box.display = bool(hint.plain)

    def _show_row(self) -> None:
        o = self.current()
        line = optout_line(o) if o is not None else Text("")
        room = ROW_LINES * (self.size.width - 2) - 12  # its lines, words wrapping early
        if line.cell_len > room > 0:
            line.truncate(room, overflow="ellipsis")
        self.query_one("#optouts-row", Static).update(line)

    def current(self) -> OptOut | None:
        key = self.query_one("#optouts", KeyedTable).current_key
        return self.rows.get(key) if key else None

    @on(DataTable.RowHighlighted, "#optouts")
    def _row_moved(self) -> None:
        self._show_row()
        self.refresh_bindings()

    # -- pages ---------------------------------------------------------------------------

    def paged_table(self) -> KeyedTable:
        return self.query_one("#optouts", KeyedTable)

    def ask_page(self, *, at_end: bool) -> None:
        self._ask(Intent(at_end=at_end))

    # -- keys ----------------------------------------------------------------------------

    def _searching(self) -> bool:
        return bool(self.search_text) or self.query_one("#optouts-search", Input).display

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "remove":
            return self.current() is not None
        if action == "clear_search":
            return self._searching()
        if action == "back":
            return not self._searching()
        return True

    def action_search(self) -> None:
        box = self.query_one("#optouts-search", Input)
        box.display = True
        box.focus()
        self.refresh_bindings()

    @on(Input.Changed, "#optouts-search")
    def _search_changed(self, event: Input.Changed) -> None:
        if event.value == self.search_text:
            return  # esc cleared it already
        self.search_text = event.value
        self.page = 0
        self._ask(Intent())

    @on(Input.Submitted, "#optouts-search")
    def _search_done(self) -> None:
        if not self.search_text:
            self.query_one("#optouts-search", Input).display = False
        self.query_one("#optouts", KeyedTable).focus()
        self.refresh_bindings()

    def action_clear_search(self) -> None:
        box = self.query_one("#optouts-search", Input)
        box.value = ""
        box.display = False
        self.query_one("#optouts", KeyedTable).focus()
        if self.search_text:
            self.search_text = ""
            self.page = 0
            self._ask(Intent())
        self.refresh_bindings()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_add(self) -> None:
        def done(added: tuple[str, bool] | None) -> None:
            if added is None:
                return
            number, new = added
            if new:
                self.notify(f"{number} added to the opt-out list", markup=False)
                self.page = 0  # the newest first: on top
                self._ask(Intent(phone=number))
            else:
                self.notify(f"{number} was on the opt-out list already", markup=False)

        self.app.push_screen(AddOptOutModal(self.optouts), done)

    def action_import_csv(self) -> None:
        def done(result: OptOutImport | None) -> None:
            if result is None:
                return
            n = result.added
            already = f" ({result.already} were on it already)" if result.already else ""
            added = f"{n:,} number{'' if n == 1 else 's'}"
            self.notify(f"added {added} to the opt-out list{already}", markup=False)
            duplicates = duplicate_lines(result.duplicates)
            if duplicates:
                self.notify("\n".join(duplicates), severity="warning", markup=False, timeout=12)
            self.page = 0
            self._ask(Intent())

        self.app.push_screen(ImportOptOutsModal(self.optouts), done)

    def action_remove(self) -> None:
        o = self.current()
        if o is None:
            return
        phone = o.phone

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._remove(phone), group="optout-remove", exit_on_error=False)

        question = f"Take {phone} off the opt-out list? Campaigns may message it again."
        self.app.push_screen(ConfirmationModal(question, yes="Remove it", no="Keep it"), answered)

    async def _remove(self, phone: str) -> None:
        try:
            number = await self.optouts.remove(phone)
        except Exception as exc:
            caught(log, exc, f"removing {phone} from the opt-out list")
            self.notify(f"cannot remove {phone}: {one_line(exc)}", severity="error", markup=False)
        else:
            self.notify(f"{number} removed from the opt-out list", markup=False)
        await self.reload()  # the cursor stays on its row: the next number moves up into it
