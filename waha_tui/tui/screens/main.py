"""The main screen: the live table of campaigns and the keys that act on the highlighted one."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from waha_tui.logs import caught
from waha_tui.models import utcnow
from waha_tui.pacing import CapUse
from waha_tui.service import CampaignPage
from waha_tui.status import CampaignStatus, can_resume
from waha_tui.tui.columns import CAMPAIGNS, SORTS, Fitted, Sort, cut, fit, sorted_label
from waha_tui.tui.format import (
    campaign_cells,
    done_of,
    due_cell,
    estimate,
    next_in,
    per_minute,
    reason_cell,
    rough,
    shown,
    status_cell,
    ticks,
)
from waha_tui.tui.keys import CAMPAIGN_ACTIONS, CAMPAIGN_KEYS, CampaignActions
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.help import HelpScreen
from waha_tui.tui.widgets.key_footer import KeyFooter
from waha_tui.tui.widgets.keyed_table import KeyedTable
from waha_tui.tui.widgets.paged_table import PagedTable, Paging

log = logging.getLogger(__name__)
S = CampaignStatus
PAGE_SIZE = 100  # rows the table holds at a time: its cost stays flat however many campaigns
GC_THRESHOLD = (10_000, 10, 10)
COUNTDOWN_EVERY = 1.0  # seconds between repaints of the countdowns on screen
RELOAD_DELAY = 0.1  # a burst of runner events makes one reload, this long after the first
ROW_INFO_LINES = 2  # the highlighted campaign's line under the table
ROW_INFO_SLACK = 12  # cells a word-wrapped line may leave empty
DEFAULT_WIDTH = 80  # until the first resize tells the real one
SCROLLBAR = 2  # the table's vertical scrollbar, there once the rows overflow
BAN_WARNING = "⚠ Messaging people who did not ask for it gets WhatsApp numbers banned."


@dataclass(frozen=True)
class Intent:
    """What the next read is for, besides showing what changed: a page the operator turned
    to (the cursor on its first or last row), or a campaign to put the cursor on."""

    at_end: bool = False  # a page: the cursor on its last row
    around: int | None = None  # this campaign's page, the cursor on it (if it matches)


class CampaignTable(PagedTable):
    # DataTable's own enter binding is hidden; this one shows in the footer.
    BINDINGS = [Binding("enter", "select_cursor", "Details")]


class MainScreen(CampaignActions, Paging, Screen[None]):
    BINDINGS = [
        *CAMPAIGN_KEYS,
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter"),
        # Not in the footer (no room at 80 columns): in ? help, and on the page line.
        Binding("s", "sort_next", "Sort", show=False),
        Binding("S", "sort_reverse", "Reverse sort", show=False),
        Binding("w", "sessions", "WhatsApp"),
        Binding("N", "new_campaign", "New"),
        Binding("L", "contact_lists", "Lists"),
        Binding("T", "templates", "Templates"),
        Binding("O", "optouts", "Opt-outs"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # The campaigns of the page shown, in table order, as the dashboard's columns of
        # their rows (`Store.campaign_page`): plain rows with attribute access, read off the
        # event loop, never validated. Only one page is ever held: the database sorts,
        # filters and counts (100,000 campaigns cost what 100 do).
        self.campaigns: dict[int, Any] = {}
        self.filter_text = ""
        self.sort: Sort = SORTS[0]
        self.descending = self.sort.descending
        self.page = 0  # which PAGE_SIZE slice of the matching campaigns the table holds
        self.count = 0  # how many campaigns match the filter
        self._cells: dict[int, tuple[object, ...]] = {}  # cells of rows shown, by id
        # The columns that fit the screen's width (tui/columns.py), refitted on resize.
        self._fitted: list[Fitted] = fit(CAMPAIGNS, DEFAULT_WIDTH - SCROLLBAR)
        self._shown_sort: tuple[Sort, bool] | None = None  # the order of the rows shown
        self._view = 0  # bumped when the operator changes what to show (page, sort, filter)
        self._intent: Intent | None = None  # what the read for that change is for
        self._loaded = False  # the first read is in
        self._loading = False
        self._read_error: str | None = None  # the last failed read's error, until one works
        self._dirty = False
        self._reload_requested = False
        self._bindings_seen: tuple[object, ...] | None = None
        self._waha_line: Text | None = None
        # Each WAHA session's number's caps and counts, by session name, read with the
        # sessions line: what the ETA estimates with.
        self.caps: dict[str, CapUse] = {}
        self._hint: str | None = None
        self._froze_heap = False
        self._gc_threshold = gc.get_threshold()

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f"WAHA {self.wapp.service.waha_url}  ·  checking sessions…"), id="waha-line"
        )
        yield Static(Text(BAN_WARNING), id="ban-warning")
        yield Static(Text(self.wapp.banner or ""), id="banner")
        yield Static(id="scheduler-line")  # shown only while scheduling is impaired
        table = CampaignTable([(f.column.label, f.key) for f in self._fitted], id="campaigns")
        table.set_columns([(f.column.label, f.key, f.width) for f in self._fitted])
        yield table
        yield Static(id="page-info")
        yield Static(id="row-info")
        yield Static(id="empty-hint")
        yield Input(placeholder="filter by name or status (esc clears)", id="filter")
        # No "^p palette" here: it would cover q at 80 columns; ? lists ctrl+p instead.
        yield KeyFooter(show_command_palette=False)

    def _columns(self) -> list[tuple[str, str, int | None]]:
        """The table's columns, the sorted one's header with an arrow."""
        shown = self._shown_sort
        return [
            (
                sorted_label(f.column.label, f.width, shown[1])
                if shown is not None and f.key == shown[0].column
                else f.column.label,
                f.key,
                f.width,
            )
            for f in self._fitted
        ]

    async def on_mount(self) -> None:
        self.query_one("#banner", Static).display = bool(self.wapp.banner)
        self.query_one("#scheduler-line", Static).display = False
        self.query_one("#campaigns", KeyedTable).focus()
        await self.reload()
        self.set_interval(self.wapp.refresh_interval, self._tick)
        self.set_interval(COUNTDOWN_EVERY, self._count_down)
        # Everything loaded so far (modules, Textual's widgets) lives as long as the app:
        # out of the cyclic collector's sight. And a larger first generation, so the
        # garbage of each frame dies young instead of being promoted: profiled on 10,000
        # campaigns with one running at full speed, full collections took 100-230 ms of
        # the event loop every ~2 s; with these, none ran in 25 s.
        gc.freeze()
        self._froze_heap = True
        self._gc_threshold = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLD)

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._place_toasts)  # the footer may wrap to another line
        fitted = fit(CAMPAIGNS, event.size.width - SCROLLBAR)
        if fitted == self._fitted:
            return
        self._fitted = fitted
        table = self.query_one("#campaigns", KeyedTable)
        if table.set_columns(self._columns()):
            self._cells.clear()
            if self._loaded:
                self.show()

    def on_unmount(self) -> None:
        if self._froze_heap:
            gc.unfreeze()  # back to the collector: nothing is kept beyond the app
            gc.set_threshold(*self._gc_threshold)
            self._froze_heap = False

    # -- data --------------------------------------------------------------------------

    def _tick(self) -> None:
        if not self._loading:
            self._start_reload()

    def _count_down(self) -> None:
        """The clock moved: the rows on screen that count down are rebuilt (their cells
        diffed, so only what changed repaints); rows scrolled away wait for their turn."""
        table = self.query_one("#campaigns", KeyedTable)
        top = int(table.scroll_y)
        visible = self.page_ids()[top : top + table.size.height]
        ids = {cid for cid in visible if ticks(self.campaigns[cid])}
        if not ids:
            return
        for cid in ids:
            self._cells.pop(cid, None)
        self.show()  # a keyed diff: only the cells that changed repaint

    def request_reload(self) -> None:
        """Something changed (a runner event): reload soon. Bursts coalesce into at most
        one reload per RELOAD_DELAY, however many events arrive meanwhile."""
        if self._reload_requested:
            return
        self._reload_requested = True
        self.set_timer(RELOAD_DELAY, self._requested_reload)

    def _requested_reload(self) -> None:
        self._reload_requested = False
        self._start_reload()

    def _start_reload(self) -> None:
        # A task of its own: the screen's message queue (keys, bindings) never waits on a read.
        self.run_worker(self.reload(), group="reload", exit_on_error=False)

    async def reload(self) -> None:
        """Read the page shown (and how many campaigns match) off the event loop, then diff
        it into the table; a page, a sort or a filter the operator asked for meanwhile
        makes it read again.

        The cursor stays on its campaign: when a change moves it off the page (sorted by
        progress, say), the page now holding it is read and shown instead.
        """
        if self._loading:
            self._dirty = True
            return
        self._loading = True
        service = self.wapp.service
        try:
            while True:
                self._dirty = False
                view, intent = self._view, self._intent
                sort, descending, needle = self.sort, self.descending, self.filter_text
                around = intent.around if intent is not None else None
                try:
                    page = await service.campaign_page(
                        sort.stored,
                        descending,
                        needle,
                        offset=self.page * PAGE_SIZE,
                        limit=PAGE_SIZE,
                        around=around,
                    )
                    keep = self.current()  # now: the cursor may have moved during the read
                    if (
                        intent is None
                        and view == self._view
                        and keep is not None
                        and page.count
                        and not any(r.id == keep.id for r in page.rows)
                    ):
                        # Its campaign left the page: follow it, if it still matches.
                        near = await service.campaign_page(
                            sort.stored,
                            descending,
                            needle,
                            offset=self.page * PAGE_SIZE,
                            limit=PAGE_SIZE,
                            around=keep.id,
                        )
                        page = near if near.found else page
                except Exception as exc:
                    # Said once, not every tick while the database stays away.
                    if str(exc) != self._read_error:
                        self._read_error = str(exc)
                        caught(log, exc, "reading the campaigns")
                        self.notify(str(exc), severity="error", markup=False)
                    self._intent = None  # keys move the cursor again; the next tick retries
                    return
                if self._read_error is not None:
                    self._read_error = None
                    log.info("reading the campaigns works again")
                    self.notify("the campaigns are read again", markup=False)
                if view != self._view:
                    continue  # the operator asked for something else meanwhile
                self._intent = None
                self._apply(page, (sort, descending))
                self._place_cursor(intent, page)
                if not self._dirty:
                    break
        finally:
            self._loading = False

    def _apply(self, page: CampaignPage, order: tuple[Sort, bool]) -> None:
        """Put a page read into the model, and the model on screen where it changed."""
        old, cells = self.campaigns, self._cells
        fresh = {row.id: row for row in page.rows}
        for cid, row in fresh.items():
            if old.get(cid) != row:
                cells.pop(cid, None)
        for cid in old.keys() - fresh.keys():
            cells.pop(cid, None)
        same = (
            self._loaded
            and list(old) == list(fresh)
            and all(old[c] == fresh[c] for c in fresh)
            and (page.count, page.offset // PAGE_SIZE) == (self.count, self.page)
            and order == self._shown_sort
        )
        self.campaigns, self.count, self.page = fresh, page.count, page.offset // PAGE_SIZE
        if same:
            # Nothing on screen changed: no diff, no repaint; the footer only if it must.
            self.refresh_bindings_if_changed()
            return
        if order != self._shown_sort:
            self._shown_sort = order
            table = self.query_one("#campaigns", KeyedTable)
            if table.set_columns(self._columns()):
                cells.clear()
        self._loaded = True
        self.show()

    def _place_cursor(self, intent: Intent | None, page: CampaignPage) -> None:
        if intent is None:
            return
        table = self.query_one("#campaigns", KeyedTable)
        if intent.around is not None and page.found:
            self._move_to(intent.around)
        elif table.row_count:
            table.move_cursor(row=table.row_count - 1 if intent.at_end else 0, animate=False)

    def _cells_for(self, cid: int) -> tuple[object, ...]:
        cells = self._cells.get(cid)
        if cells is None:
            c = self.campaigns[cid]
            every = campaign_cells(c, caps=self.caps)
            cells = self._cells[cid] = tuple(cut(every[f.key], f.width) for f in self._fitted)
        return cells

    def page_ids(self) -> list[int]:
        """The ids of the campaigns on the current page, in table order."""
        return list(self.campaigns)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / PAGE_SIZE))

    def show(self) -> None:
        """Bring the table (the current page) in line with the model."""
        table = self.query_one("#campaigns", KeyedTable)
        # Cells are cached per campaign and rebuilt only when its row changed.
        table.sync([(str(cid), self._cells_for(cid)) for cid in self.campaigns])
        self._show_page_info()
        if self.campaigns:
            hint = ""
        elif self.filter_text.strip():
            hint = f"No campaign matches {self.filter_text!r} (esc clears)"
        else:
            hint = (
                "No campaigns yet. Press N to create one (L imports a contact list first), "
                "or quit and try `waha-tui demo` to see campaigns sent to a simulator."
            )
        self._show_hint(hint)
        self._show_row_info()
        # update_cell does not refresh dynamic bindings: the footer must follow the row.
        self.refresh_bindings_if_changed()

    def _show_hint(self, hint: str) -> None:
        if hint != self._hint:
            self._hint = hint
            box = self.query_one("#empty-hint", Static)
            box.update(shown(hint))
            box.display = bool(hint)

    def _show_page_info(self) -> None:
        """One line: the order (s, S change it) and, past one page, which rows these are."""
        shown_sort = self._shown_sort or (self.sort, self.descending)
        sort, descending = shown_sort
        line = Text(f"sort: {sort.label} {'↓' if descending else '↑'} (s S)")
        total = self.count
        if total > PAGE_SIZE:
            first = self.page * PAGE_SIZE
            last = min(first + PAGE_SIZE, total)
            line.append(
                f" · rows {first + 1:,}–{last:,} of {total:,} · page {self.page + 1:,}/"
                f"{self.pages:,} · PgUp/PgDn"
            )
        elif total:
            line.append(f" · {total:,} campaign{'s' if total != 1 else ''}")
        self.query_one("#page-info", Static).update(layout=False, content=line)

    @property
    def turning(self) -> bool:
        """A read the operator asked for (page, sort, filter, a campaign) is under way."""
        return self._intent is not None

    def _ask(self, intent: Intent | None) -> None:
        """The operator changed what to show: read it (now, or after the read under way)."""
        self._view += 1
        self._intent = intent
        self._start_reload()

    def paged_table(self) -> KeyedTable:
        return self.query_one("#campaigns", KeyedTable)

    def ask_page(self, *, at_end: bool) -> None:
        self._ask(Intent(at_end=at_end))

    def _keep_cursor(self) -> Intent:
        """A new sort or filter: the highlighted campaign stays under the cursor if it
        still matches; else the first page."""
        keep = self.current()
        if self._intent is not None and self._intent.around is not None:
            keep_id: int | None = self._intent.around  # still on its way
        else:
            keep_id = keep.id if keep is not None else None
        self.page = 0
        return Intent(around=keep_id)

    def _refilter(self) -> None:
        self._ask(self._keep_cursor())

    def action_sort_next(self) -> None:
        """The next sort of SORTS, in its first direction."""
        self.sort = SORTS[(SORTS.index(self.sort) + 1) % len(SORTS)]
        self.descending = self.sort.descending
        self._ask(self._keep_cursor())

    def action_sort_reverse(self) -> None:
        self.descending = not self.descending
        self._ask(self._keep_cursor())

    def _move_to(self, campaign_id: int) -> None:
        table = self.query_one("#campaigns", KeyedTable)
        key = str(campaign_id)
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def current(self) -> Any | None:
        """The campaign under the cursor, from the model (not from the cells)."""
        key = self.query_one("#campaigns", KeyedTable).current_key
        return self.campaigns.get(int(key)) if key else None

    def _bindings_signature(self) -> tuple[object, ...] | None:
        """What check_action's answers depend on."""
        try:
            c = self.current()
            box = self.query_one("#filter", Input).display
        except NoMatches:
            return None
        return (
            None
            if c is None
            else (
                c.id,
                c.status,
                c.lease_owner,
                c.next_index < c.total,  # a Failed campaign with recipients left resumes
                c.id in self.wapp.resuming,
                c.id in self.wapp.deleting,
            ),
            bool(self.filter_text),
            box,
        )

    def refresh_bindings(self) -> None:
        self._bindings_seen = self._bindings_signature()
        super().refresh_bindings()

    def refresh_bindings_if_changed(self) -> None:
        """refresh_bindings() makes the footer recompose: only when what the bindings
        depend on (the row under the cursor, the filter) changed since it last ran."""
        if self._bindings_signature() != self._bindings_seen:
            self.refresh_bindings()

    # -- bindings ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        c = self.current()
        if action in CAMPAIGN_ACTIONS:
            return self.offers_campaign_action(action)
        if action == "details":
            return c is not None
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter", Input).display
        return True

    def _show_row_info(self) -> None:
        """The highlighted campaign's reason, wrapped under the table: the Reason column is
        not shown at 80 columns, and where it is, it is cut."""
        c = self.current()
        info = self.query_one("#row-info", Static)
        line = Text()
        if c is not None:
            line.append(f"#{c.id} ", style="bold")
            line.append_text(status_cell(c.status))
            if c.status == S.RUNNING and not self.wapp.service.runs_here(c.lease_owner):
                # Another dashboard or `waha-tui run` holds it: shown live, not runnable here.
                owner = ":".join((c.lease_owner or "?").split(":")[:2])
                line.append(f" in another process ({owner})", style="cyan")
            detail = reason_cell(c)
            if detail.plain:
                line.append(": ")
                line.append_text(detail)
            elif c.status == S.PAUSED:
                line.append(": press r to resume")
            elif c.status == S.SCHEDULED:
                when = due_cell(c, utcnow()).plain
                line.append(
                    ": due, the scheduler starts it" if when == "due" else f": starts in {when}"
                )
            elif c.status == S.RUNNING and c.sessions and c.next_index < c.total:
                line.append(f": {done_of(c)} of {c.total} done over {len(c.sessions)} numbers")
            elif c.status == S.RUNNING and c.next_index < c.total:
                line.append(f": recipient {c.next_index + 1} of {c.total}")
                left = next_in(c, utcnow())
                line.append(f" · next message in {math.ceil(left)} s" if left else " · sending")
            est = estimate(c, utcnow(), self.caps)
            if est is not None and c.status != S.DELETING and c.next_index < c.total:
                left_words = "to go" if c.status == S.RUNNING else "of sending left"
                line.append(
                    f" · {per_minute(est.per_minute)}, {rough(est.seconds_left)} {left_words}",
                    style="dim",
                )
            if c.status == S.FAILED and can_resume(c.status, c.next_index, c.total):
                line.append(f" · r resumes it from recipient {c.next_index + 1}")
        # ROW_INFO_LINES lines, always: no re-layout of the screen. Longer text is cut with
        # an ellipsis (with room for the words that wrap early); details (enter) has it all.
        room = ROW_INFO_LINES * (self.size.width - 2) - ROW_INFO_SLACK
        if line.cell_len > room > 0:
            line.truncate(room, overflow="ellipsis")
        info.update(line, layout=False)

    @on(DataTable.RowHighlighted, "#campaigns")
    def _row_moved(self) -> None:
        self._show_row_info()
        self.refresh_bindings_if_changed()
        self.wapp.prepare_resume(self.current())

    @on(DataTable.RowSelected, "#campaigns")
    def _row_chosen(self) -> None:
        self.action_details()

    def acted_on(self) -> Any | None:
        return self.current()

    def action_details(self) -> None:
        c = self.current()
        if c is not None and c.id is not None:
            self.app.push_screen(DetailsScreen(self.wapp.service, c.id))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()
        self.refresh_bindings()
        self.call_after_refresh(self._place_toasts)

    def _place_toasts(self) -> None:
        """Toasts sit above what is under the table (the highlighted campaign's line, the
        filter, the footer), never over what is typed or the reason being read."""
        below = sum(
            w.outer_size.height
            for w in (
                self.query_one(KeyFooter),
                self.query_one("#filter", Input),
                self.query_one("#row-info", Static),
                self.query_one("#page-info", Static),
            )
            if w.display
        )
        for rack in self.query("ToastRack"):  # Textual's own widget; by name, not import
            rack.styles.margin = (0, 0, max(below, 1), 0)

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.call_after_refresh(self._place_toasts)
        self.filter_text = ""
        self.query_one("#campaigns", KeyedTable).focus()
        self._refilter()

    def action_sessions(self) -> None:
        self.wapp.open_sessions()

    def action_new_campaign(self) -> None:
        self.wapp.open_new_campaign()

    def action_contact_lists(self) -> None:
        self.wapp.open_contact_lists()

    def action_templates(self) -> None:
        self.wapp.open_templates()

    def action_optouts(self) -> None:
        self.wapp.open_optouts()

    async def show_campaign(self, campaign_id: int) -> None:
        """A campaign just created: in the table, under the cursor (unless the filter
        hides it)."""
        if not self.go_to(campaign_id):
            await self.reload_and_wait()

    async def reload_and_wait(self) -> None:
        """A reload that returns once the model is at least as new as the database was
        when it was called (reload() returns at once when one is already under way)."""
        await self.reload()
        while self._loading:  # the one under way reads again before it ends
            await asyncio.sleep(0.02)

    def go_to(self, campaign_id: int) -> bool:
        """Put the cursor on this campaign: at once if it is on the page shown (True);
        else its page is read, and the cursor goes there when it is in (if the campaign
        matches the filter)."""
        if campaign_id in self.campaigns and self._intent is None:
            self._move_to(campaign_id)
            return True
        self._ask(Intent(around=campaign_id))
        return False

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.wapp.request_quit()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        if event.value == self.filter_text:
            return  # esc cleared it already
        self.filter_text = event.value
        self._refilter()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if not self.filter_text:
            self.query_one("#filter", Input).display = False
            self.call_after_refresh(self._place_toasts)
        self.query_one("#campaigns", KeyedTable).focus()
        self.refresh_bindings()

    def set_caps(self, caps: dict[str, CapUse]) -> None:
        def key(uses: dict[str, CapUse]) -> object:  # what moves an ETA (not the read's time)
            return {name: (u.caps, u.in_hour, u.in_day) for name, u in uses.items()}

        changed = key(caps) != key(self.caps)
        self.caps = caps
        if changed:
            self._cells.clear()
            if self._loaded:
                self.show()

    def set_waha_line(self, text: Text) -> None:
        if text != self._waha_line:  # polled every few seconds; mostly the same
            self._waha_line = text
            self.query_one("#waha-line", Static).update(text, layout=False)

    def set_scheduler_health(self, impaired: str | None) -> None:
        line = self.query_one("#scheduler-line", Static)
        line.update(shown(impaired, style="bold red"))
        line.display = impaired is not None

    def set_banner(self, text: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(shown(text))
        banner.display = bool(text)
