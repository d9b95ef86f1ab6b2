"""The main screen: the live table of campaigns and the keys that act on the highlighted one."""

from __future__ import annotations

import asyncio
import bisect
import gc
import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static

from waha_tui.logs import caught
from waha_tui.models import utcnow
from waha_tui.status import CampaignStatus, can_resume
from waha_tui.tui.columns import CAMPAIGNS, Fitted, cut, fit
from waha_tui.tui.format import (
    campaign_cells,
    estimate,
    next_in,
    per_minute,
    reason_cell,
    rough,
    shown,
    status_cell,
    ticks,
)
from waha_tui.tui.keys import CAMPAIGN_ACTIONS, CAMPAIGN_KEYS
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.help import HelpScreen
from waha_tui.tui.widgets.key_footer import KeyFooter
from waha_tui.tui.widgets.keyed_table import KeyedTable

if TYPE_CHECKING:
    from waha_tui.tui.app import WahaTuiApp

log = logging.getLogger(__name__)
S = CampaignStatus
PAGE_SIZE = 100  # rows the table holds at a time: its cost stays flat however many campaigns
OVERLAP = timedelta(seconds=5)  # how far back before the latest updated_at seen each read goes
FULL_READ_EVERY = 30.0  # seconds between reads of every row (a safety net; see reload())
GC_THRESHOLD = (10_000, 10, 10)
COUNTDOWN_EVERY = 1.0  # seconds between repaints of the countdowns on screen
RELOAD_DELAY = 0.1  # a burst of runner events makes one reload, this long after the first
ROW_INFO_LINES = 2  # the highlighted campaign's line under the table
ROW_INFO_SLACK = 12  # cells a word-wrapped line may leave empty
DEFAULT_WIDTH = 80  # until the first resize tells the real one
SCROLLBAR = 2  # the table's vertical scrollbar, there once the rows overflow
BAN_WARNING = "⚠ Messaging people who did not ask for it gets WhatsApp numbers banned."


class CampaignTable(KeyedTable):
    # DataTable's own enter binding is hidden; this one shows in the footer.
    BINDINGS = [
        Binding("enter", "select_cursor", "Details"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]

    # The table holds one page of campaigns (MainScreen.PAGE_SIZE rows). Moving past its
    # first or last row turns the page, so up/down walk through every campaign; PgUp/PgDn
    # turn a page at a time (within the last page they move the cursor as DataTable does).

    def _turn(self, delta: int, *, cursor_at_end: bool = False) -> bool:
        screen = self.screen
        return isinstance(screen, MainScreen) and screen.turn_page(
            delta, cursor_at_end=cursor_at_end
        )

    def action_cursor_down(self) -> None:
        if not (self.cursor_row >= self.row_count - 1 and self._turn(1)):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if not (self.cursor_row <= 0 and self._turn(-1, cursor_at_end=True)):
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self._turn(1):
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self._turn(-1):
            super().action_page_up()


class MainScreen(Screen[None]):
    BINDINGS = [
        *CAMPAIGN_KEYS,
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("w", "sessions", "WhatsApp"),
        Binding("N", "new_campaign", "New"),
        Binding("L", "contact_lists", "Lists"),
        Binding("T", "templates", "Templates"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        # Every campaign, as the dashboard's columns of its row (`Store.campaign_rows`):
        # plain rows with attribute access, read off the event loop, never validated.
        self.campaigns: dict[int, Any] = {}
        self.filter_text = ""
        self.page = 0  # which PAGE_SIZE slice of the matching campaigns the table holds
        self._order: list[int] = []  # ids of the campaigns matching the filter, ascending
        self._cells: dict[int, tuple[object, ...]] = {}  # cells of rows shown, by id
        # The columns that fit the screen's width (tui/columns.py), refitted on resize.
        self._fitted: list[Fitted] = fit(CAMPAIGNS, DEFAULT_WIDTH - SCROLLBAR)
        self._newest: datetime | None = None  # the latest updated_at seen
        self._full_read_at = -math.inf  # monotonic time of the last read of every row
        self._loading = False
        self._dirty = False
        self._want_full = False
        self._reload_requested = False
        self._bindings_seen: tuple[object, ...] | None = None
        self._waha_line: Text | None = None
        self._hint: str | None = None
        self._froze_heap = False
        self._gc_threshold = gc.get_threshold()

    @property
    def wapp(self) -> WahaTuiApp:
        from waha_tui.tui.app import WahaTuiApp  # not at the top: app.py imports this module

        app = self.app
        assert isinstance(app, WahaTuiApp)
        return app

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

    async def on_mount(self) -> None:
        self.query_one("#banner", Static).display = bool(self.wapp.banner)
        self.query_one("#scheduler-line", Static).display = False
        self.query_one("#page-info", Static).display = False
        self.query_one("#campaigns", KeyedTable).focus()
        await self.reload()
        self.set_interval(self.wapp.refresh_interval, self._tick)
        self.set_interval(COUNTDOWN_EVERY, self._count_down)
        # Everything loaded so far (modules, thousands of campaign rows) lives as long as
        # the app: out of the cyclic collector's sight. And a larger first generation, so
        # the garbage of each frame dies young instead of being promoted: profiled on
        # 10,000 campaigns with one running at full speed, full collections took
        # 100-230 ms of the event loop every ~2 s; with these, none ran in 25 s.
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
        if table.set_columns([(f.column.label, f.key, f.width) for f in fitted]):
            self._cells.clear()
            if self.campaigns:
                self.show(None, reorder=False)

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
        self.show(ids, reorder=False)

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

    async def reload(self, *, full: bool = False) -> None:
        """Read what changed off the event loop, then diff it into the table.

        Reads only the campaigns whose updated_at is at or after the latest one seen, minus
        OVERLAP (updated_at is written by other processes whose clocks may differ a little;
        re-reading a few seconds back is harmless, unchanged rows are skipped). Every row
        is read again at launch, when the count of campaigns does not add up (one was
        deleted, or committed late), and every FULL_READ_EVERY seconds as a safety net.
        """
        if self._loading:
            self._dirty = True
            self._want_full = self._want_full or full
            return
        self._loading = True
        service = self.wapp.service
        try:
            while True:
                self._dirty = False
                full = full or self._want_full
                self._want_full = False
                since = self._read_since(full)
                try:
                    rows, count = await service.campaign_rows(since)
                    known = self.campaigns
                    if since is not None and count != len(known) + sum(
                        1 for r in rows if r.id not in known
                    ):
                        since = None  # deleted or late rows: read them all
                        rows, count = await service.campaign_rows(None)
                except Exception as exc:
                    caught(log, exc, "reading the campaigns")
                    self.notify(str(exc), severity="error", markup=False)
                    return
                if since is None:
                    self._full_read_at = time.monotonic()
                changed, reorder = self._merge(rows, complete=since is None)
                self.show(changed, reorder=reorder)
                full = False
                if not self._dirty:
                    break
        finally:
            self._loading = False

    def _read_since(self, full: bool) -> datetime | None:
        stale = time.monotonic() - self._full_read_at > FULL_READ_EVERY
        if full or stale or self._newest is None:
            return None
        # Never trust a clock ahead of ours: a skewed writer must not hide the others.
        return min(self._newest, utcnow()) - OVERLAP

    def _merge(self, rows: Sequence[Any], *, complete: bool) -> tuple[set[int], bool]:
        """Put rows into the model: (ids whose row changed, whether the list of matching
        campaigns may have changed)."""
        changed: set[int] = set()
        reorder = False
        filtering = bool(self.filter_text.strip())
        campaigns, cells = self.campaigns, self._cells
        newest = self._newest
        for row in rows:
            if newest is None or (row.updated_at is not None and row.updated_at > newest):
                newest = row.updated_at
            cid = row.id
            old = campaigns.get(cid)
            if old == row:
                continue
            if old is None or (filtering and self._matches(old) != self._matches(row)):
                reorder = True
            campaigns[cid] = row
            cells.pop(cid, None)
            changed.add(cid)
        self._newest = newest
        if complete and len(campaigns) != len(rows):
            for cid in campaigns.keys() - _ids(rows):
                del campaigns[cid]
                cells.pop(cid, None)
                changed.add(cid)
            reorder = True
        return changed, reorder

    def _cells_for(self, cid: int) -> tuple[object, ...]:
        cells = self._cells.get(cid)
        if cells is None:
            every = campaign_cells(self.campaigns[cid])
            cells = self._cells[cid] = tuple(cut(every[f.key], f.width) for f in self._fitted)
        return cells

    def page_ids(self) -> list[int]:
        """The ids of the campaigns on the current page, in table order."""
        return self._order[self.page * PAGE_SIZE : (self.page + 1) * PAGE_SIZE]

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self._order) / PAGE_SIZE))

    def show(self, changed: set[int] | None = None, *, reorder: bool = True) -> None:
        """Bring the table (the current page) in line with the model.

        `changed`: the ids whose rows changed (None: any may have, e.g. a new filter);
        `reorder`: campaigns were added or removed, or moved in or out of the filter.
        """
        if reorder or changed is None:
            needle = self.filter_text.strip().lower()
            ids = sorted(self.campaigns)
            self._order = [c for c in ids if self._matches(self.campaigns[c])] if needle else ids
            self.page = min(self.page, self.pages - 1)
        page = self.page_ids()
        shown_once = self._hint is not None  # the first read draws all, even of nothing
        if (
            shown_once
            and changed is not None
            and not reorder
            and not any(c in changed for c in page)
        ):
            # Nothing on screen changed: no diff, no repaint; the footer only if it must.
            self.refresh_bindings_if_changed()
            return
        table = self.query_one("#campaigns", KeyedTable)
        # Cells are cached per campaign and rebuilt only when its row changed.
        table.sync([(str(cid), self._cells_for(cid)) for cid in page])
        self._show_page_info()
        if not self.campaigns:
            hint = (
                "No campaigns yet. Press N to create one (L imports a contact list first), "
                "or quit and try `waha-tui demo` to see campaigns sent to a simulator."
            )
        elif not page:
            hint = f"No campaign matches {self.filter_text!r} (esc clears)"
        else:
            hint = ""
        if hint != self._hint:
            self._hint = hint
            box = self.query_one("#empty-hint", Static)
            box.update(shown(hint))
            box.display = bool(hint)
        self._show_row_info()
        # update_cell does not refresh dynamic bindings: the footer must follow the row.
        self.refresh_bindings_if_changed()

    def _show_page_info(self) -> None:
        info = self.query_one("#page-info", Static)
        total = len(self._order)
        info.display = total > PAGE_SIZE
        if info.display:
            first = self.page * PAGE_SIZE
            last = min(first + PAGE_SIZE, total)
            info.update(
                layout=False,
                content=Text(
                    f"rows {first + 1:,}–{last:,} of {total:,}  ·  page {self.page + 1:,}/"
                    f"{self.pages:,}  ·  PgUp/PgDn"
                ),
            )

    def turn_page(self, delta: int, *, cursor_at_end: bool = False) -> bool:
        """Show another page; the cursor goes to its first row (its last with
        `cursor_at_end`). False when there is no such page."""
        page = max(0, min(self.pages - 1, self.page + delta))
        if page == self.page:
            return False
        self.page = page
        self.show()
        table = self.query_one("#campaigns", KeyedTable)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1 if cursor_at_end else 0, animate=False)
        return True

    def _page_with(self, campaign_id: int) -> int | None:
        index = bisect.bisect_left(self._order, campaign_id)
        if index < len(self._order) and self._order[index] == campaign_id:
            return index // PAGE_SIZE
        return None

    def _refilter(self) -> None:
        """A new filter: keep the highlighted campaign under the cursor if it still matches."""
        keep = self.current()
        self.show()
        page = self._page_with(keep.id) if keep is not None else None
        self.page = page if page is not None else 0
        self.show()
        if keep is not None and page is not None:
            self._move_to(keep.id)

    def _move_to(self, campaign_id: int) -> None:
        table = self.query_one("#campaigns", KeyedTable)
        key = str(campaign_id)
        if key in table.rows:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def _matches(self, c: Any) -> bool:
        needle = self.filter_text.strip().lower()
        return not needle or needle in c.name.lower() or needle in c.status.lower()

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
            return self.wapp.offers(action, c)
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
            elif c.status == S.RUNNING and c.next_index < c.total:
                line.append(f": recipient {c.next_index + 1} of {c.total}")
                left = next_in(c, utcnow())
                line.append(f" · next message in {math.ceil(left)} s" if left else " · sending")
            est = estimate(c, utcnow())
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

    @on(DataTable.RowSelected, "#campaigns")
    def _row_chosen(self) -> None:
        self.action_details()

    def _offered(self, action: str) -> Any | None:
        """The highlighted campaign, if `action` applies to it."""
        c = self.current()
        return c if c is not None and self.wapp.offers(action, c) else None

    def action_resume(self) -> None:
        if (c := self._offered("resume")) is not None:
            self.wapp.start_resume(c.id)

    def action_pause(self) -> None:
        if (c := self._offered("pause")) is not None:
            self.wapp.run_task(self.wapp.pause_campaign(c.id, running=c.status == S.RUNNING))

    def action_cancel(self) -> None:
        if (c := self._offered("cancel")) is not None:
            self.wapp.confirm_cancel(c)

    def action_delete(self) -> None:
        if (c := self._offered("delete")) is not None:
            self.wapp.confirm_delete(c)

    def action_clone(self) -> None:
        if (c := self._offered("clone")) is not None:
            self.wapp.open_campaign_form(c, clone=True)

    def action_edit(self) -> None:
        if (c := self._offered("edit")) is not None:
            self.wapp.open_campaign_form(c, clone=False)

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

    async def show_campaign(self, campaign_id: int) -> None:
        """A campaign just created: in the table, under the cursor."""
        await self.reload_and_wait(full=True)
        self.go_to(campaign_id)

    async def reload_and_wait(self, *, full: bool = False) -> None:
        """A reload that returns once the model is at least as new as the database was
        when it was called (reload() returns at once when one is already under way)."""
        await self.reload(full=full)
        while self._loading:  # the one under way reads again before it ends
            await asyncio.sleep(0.02)

    def go_to(self, campaign_id: int) -> bool:
        """Turn to the page holding this campaign and put the cursor on it (False when no
        shown campaign has this id: unknown, or filtered out)."""
        page = self._page_with(campaign_id)
        if page is None:
            return False
        if page != self.page:
            self.page = page
            self.show()
        self._move_to(campaign_id)
        return True

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.wapp.request_quit()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._refilter()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if not self.filter_text:
            self.query_one("#filter", Input).display = False
            self.call_after_refresh(self._place_toasts)
        self.query_one("#campaigns", KeyedTable).focus()
        self.refresh_bindings()

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


def _ids(rows: Sequence[Any]) -> set[int]:
    return {row.id for row in rows}
