"""`enter`: one campaign's counters, timings, pause reason and recipients, live; `h` shows
its history instead of its recipients, `s` only the recipients of one status.

The cursor follows the recipient being sent, like `tail -f`, as long as it is on it (with a
status filter: on the newest matching one, the one nearest the next recipient); moved
elsewhere, it stays there until the operator goes back to that row or presses `n`."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Static

from waha_tui.errors import UserError
from waha_tui.logs import caught
from waha_tui.models import Campaign, CampaignEventRow, Recipient, utcnow
from waha_tui.pacing import CapUse
from waha_tui.service import CampaignService, NotFound
from waha_tui.spread import Spread
from waha_tui.status import CampaignStatus, RecipientStatus
from waha_tui.tui.columns import HISTORY, Fitted, cut, fit, recipient_columns
from waha_tui.tui.format import (
    breaks_cell,
    due_cell,
    eta_cell,
    event_cells,
    funnel_cell,
    local_time,
    progress_cell,
    rate_cell,
    recipient_cells,
    recipient_line,
    recipient_status_cell,
    shown,
    status_cell,
    waiting_cell,
    window_cell,
)
from waha_tui.tui.keys import CAMPAIGN_ACTIONS, CAMPAIGN_KEYS, CampaignActions
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.sessions import one_line
from waha_tui.tui.widgets.key_footer import KeyFooter
from waha_tui.tui.widgets.keyed_table import KeyedTable

log = logging.getLogger(__name__)
# What `s` goes through: every recipient, then those of each status.
FILTERS: tuple[RecipientStatus | None, ...] = (None, *RecipientStatus)
HISTORY_TITLE = "History: who did what, and why (h: recipients)"
S = CampaignStatus
RETRYABLE = (CampaignStatus.PAUSED, CampaignStatus.COMPLETED, CampaignStatus.FAILED)
WINDOW = 1000  # recipients shown around the next one, so huge campaigns stay light
BEFORE_NEXT = 50  # of them, at most this many before it (more once fewer follow)
DEFAULT_WIDTH = 80  # until the first resize tells the real one
SCROLLBAR = 2


def summary(c: Campaign, caps: Mapping[str, CapUse] | None = None) -> Group:
    """The counters in a grid of short values; the long ones (why it waits, why it paused,
    its last error) under it, wrapped, so the grid keeps its columns at 80 wide."""
    notes = Text()
    waiting = waiting_cell(c)
    for label, value in (
        ("Waiting", waiting if waiting.plain else None),
        ("Paused", shown(c.pause_reason, style="yellow") if c.pause_reason else None),
        ("Last error", shown(c.last_error, style="red") if c.last_error else None),
    ):
        if value is not None:
            if notes:
                notes.append("\n")
            notes.append(f"{label}: ", style="bold")
            notes.append_text(value)
    return Group(_counters(c, caps), notes) if notes else Group(_counters(c, caps))


def _counters(c: Campaign, caps: Mapping[str, CapUse] | None = None) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Campaign", shown(f"{c.id} {c.name}"), "Status", status_cell(c.status))
    sessions = Spread.of(c)
    label = "Sessions" if sessions.multi else "Session"
    grid.add_row(label, shown(sessions.text()), "Progress", progress_cell(c))
    # The funnel, sent -> delivered -> read -> replied, beside what was not sent.
    grid.add_row(
        "Sent",
        funnel_cell(c.sent, c.sent, "green"),
        "Failed",
        Text(str(c.failed), style="red" if c.failed else ""),
    )
    grid.add_row(
        "Delivered",
        funnel_cell(c.delivered, c.sent, "green"),
        "Unknown",
        Text(str(c.unknown), style="magenta" if c.unknown else ""),
    )
    skipped = Text(str(c.skipped), style="dim")
    if c.unconfirmed:
        skipped.append(f" · {c.unconfirmed} unconf.", style="yellow")
    grid.add_row("Read", funnel_cell(c.read, c.sent, "cyan"), "Skipped", skipped)
    grid.add_row(
        "Replied",
        funnel_cell(c.replied, c.sent, "bold green"),
        "Next",
        f"{c.next_index + 1} of {c.total}" if c.next_index < c.total else "-",
    )
    # Month, day and time (the year when it is not this one): "created … by user@host"
    # stays on its line at 80 columns; the history has the seconds.
    fmt = "%m-%d %H:%M"
    grid.add_row(
        "Scheduled", local_time(c.scheduled_at, fmt), "Started", local_time(c.started_at, fmt)
    )
    created = local_time(c.created_at, fmt) + (f" by {c.created_by}" if c.created_by else "")
    grid.add_row("Created", shown(created), "Ended", local_time(c.completed_at, fmt))
    grid.add_row("Delay", f"{c.delay_min:g}-{c.delay_max:g} s", "List", shown(c.list_name or "-"))
    grid.add_row("Rate", rate_cell(c), "ETA", eta_cell(c, utcnow(), caps))
    if c.send_window or c.break_every:  # the rest send at any time, without long breaks
        grid.add_row("Window", window_cell(c), "Breaks", breaks_cell(c))
    if c.status == CampaignStatus.RUNNING and c.lease_owner:
        owner = ":".join(c.lease_owner.split(":")[:2])
        grid.add_row("Runner", shown(f"process {owner}"), "Next in", due_cell(c, utcnow()))
    return grid


class DetailsScreen(CampaignActions, Screen[None]):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        *CAMPAIGN_KEYS,  # as on the main screen, by the same rules
        Binding("u", "retry('unknown')", "Retry unknown"),
        Binding("f", "retry('failed')", "Retry failed"),
        Binding("U", "retry_unconfirmed", "Retry unconfirmed"),
        Binding("h", "toggle_history", "History"),
        Binding("s", "next_filter", "Status"),
        Binding("n", "follow", "Follow"),  # offered once the cursor left the followed row
    ]

    def __init__(self, service: CampaignService, campaign_id: int) -> None:
        super().__init__()
        self.service = service
        self.campaign_id = campaign_id
        self._loading = False
        self.campaign: Campaign | None = None
        self.history_shown = False
        self._history_of: object = None  # the campaign's updated_at the history was read at
        self._width = DEFAULT_WIDTH
        self._fitted: list[Fitted] = fit(recipient_columns(0), self._width - SCROLLBAR)
        self._recipients: dict[str, Recipient] = {}
        self._history_fitted: list[Fitted] = fit(HISTORY, DEFAULT_WIDTH - SCROLLBAR)
        self._events: list[CampaignEventRow] = []  # those shown, by row key
        self.status_filter: RecipientStatus | None = None
        self._matching: int | None = None  # how many have that status, counted by the database
        # The row the cursor follows (the recipient being sent, or the newest matching one)
        # as of the last read; the cursor on it, it moves along with the next read.
        self._followed: str | None = None
        self._jump = True  # to the followed row at the next read, wherever the cursor is
        self._offered_follow = True  # what the footer was last told (True: no `n`)
        self._planning = False  # U asked WAHA whether repeats are deduped: one at a time

    def compose(self) -> ComposeResult:
        yield Static(id="details-summary")
        yield Static(id="details-title")
        table = KeyedTable([(f.column.label, f.key) for f in self._fitted], id="recipients")
        table.set_columns([(f.column.label, f.key, f.width) for f in self._fitted])
        yield table
        history = KeyedTable([(f.column.label, f.key) for f in self._history_fitted], id="history")
        history.set_columns([(f.column.label, f.key, f.width) for f in self._history_fitted])
        yield history
        # Under the table shown: the highlighted recipient's error, or event's detail, whole.
        yield Static(id="recipient-error")
        yield KeyFooter()

    async def on_mount(self) -> None:
        await self.reload()
        self.set_interval(0.5, self.reload)

    async def reload(self) -> None:
        if self._loading:
            return
        self._loading = True
        try:
            while True:
                wanted = self.status_filter
                camp, recipients, matching = await self.service.campaign_window(
                    self.campaign_id, before_next=BEFORE_NEXT, limit=WINDOW, status=wanted
                )
                if wanted == self.status_filter:
                    break  # else `s` was pressed meanwhile: read what it asks for
        except Exception as exc:
            caught(log, exc, f"campaign {self.campaign_id}: reading its details")
            self.notify(str(exc), severity="error", markup=False)
            if isinstance(exc, NotFound):
                self.after_delete()  # deleted elsewhere: nothing more to show
            return
        finally:
            self._loading = False
        self.campaign = camp
        # Its numbers' caps, as the list's ETA counts them (read with the WAHA line).
        caps = self.wapp.main.caps
        self.query_one("#details-summary", Static).update(summary(camp, caps))
        follow = self.following  # asked before the rows change: the followed one may go
        self._recipients = {str(r.position): r for r in recipients}
        self._matching = matching
        self._refit()
        self._show_recipients()
        self._follow(camp, follow)
        self._show_title()
        self._show_recipient_error()
        self.refresh_bindings()
        # Every entry of the history moves updated_at: read it again only then.
        if self.history_shown and camp.updated_at != self._history_of:
            await self._load_history(camp.updated_at)

    def _show_recipients(self) -> None:
        fitted = self._fitted
        self.query_one("#recipients", KeyedTable).sync(
            (key, tuple(cut(cells[f.key], f.width) for f in fitted))
            for key, cells in ((k, recipient_cells(r)) for k, r in self._recipients.items())
        )

    def _follow(self, camp: Campaign, follow: bool) -> None:
        """Put the cursor on the followed row as it moves, if it was on it (`follow`)."""
        table = self.query_one("#recipients", KeyedTable)
        followed = self._followed_key(camp)
        if followed is not None and follow:
            table.move_cursor(row=table.get_row_index(followed), animate=False)
        self._followed, self._jump = followed, False

    def _followed_key(self, camp: Campaign) -> str | None:
        """The row the cursor follows: the recipient being sent or next (the last one when
        none is left); with a filter, the matching one nearest it, at or before it first."""
        keys = [k for k, r in self._recipients.items() if r.position <= camp.next_index]
        if keys:
            return keys[-1]
        return next(iter(self._recipients), None)

    @property
    def following(self) -> bool:
        """Whether the cursor is on the row it follows (or goes there at the next read)."""
        if self._jump:
            return True
        return self.query_one("#recipients", KeyedTable).current_key == self._followed

    def _show_title(self) -> None:
        if self.history_shown:
            title = Text(HISTORY_TITLE, style="bold")
        else:
            title = recipients_title(
                self.status_filter,
                self._matching,
                len(self._recipients),
                self.campaign.total if self.campaign else 0,
            )
        self.query_one("#details-title", Static).update(title)

    def _refit(self) -> None:
        total = self.campaign.total if self.campaign else 0
        fitted = fit(recipient_columns(total), self._width - SCROLLBAR)
        if fitted != self._fitted:
            self._fitted = fitted
            table = self.query_one("#recipients", KeyedTable)
            if table.set_columns([(f.column.label, f.key, f.width) for f in fitted]):
                self._show_recipients()

    def on_resize(self, event: events.Resize) -> None:
        self._width = event.size.width
        self._refit()
        fitted = fit(HISTORY, self._width - SCROLLBAR)
        if fitted != self._history_fitted:
            self._history_fitted = fitted
            table = self.query_one("#history", KeyedTable)
            if table.set_columns([(f.column.label, f.key, f.width) for f in fitted]):
                self.show_history(self._events)

    @on(DataTable.RowHighlighted, "#recipients")
    def _show_recipient_error(self) -> None:
        """What went wrong with the highlighted recipient, or what WhatsApp said after its
        send, whole: its columns are cut."""
        if not self.history_shown:  # else the line under the table is the event's
            key = self.query_one("#recipients", KeyedTable).current_key
            r = self._recipients.get(key) if key is not None else None
            self._show_under(recipient_line(r) if r is not None else Text())
        if self.following != self._offered_follow:  # `n`: only away from the followed row
            self._offered_follow = self.following
            self.refresh_bindings()

    def _show_under(self, text: Text) -> None:
        """A line or three under the table: what its cut column holds, whole."""
        box = self.query_one("#recipient-error", Static)
        room = 3 * (self.size.width - 4) - 12  # its three lines, words wrapping early
        if text.cell_len > room > 0:
            text.truncate(room, overflow="ellipsis")
        box.update(text)
        box.display = bool(text)

    async def _load_history(self, seen: object) -> None:
        try:
            events = await self.service.campaign_events(self.campaign_id)
        except Exception as exc:
            caught(log, exc, f"campaign {self.campaign_id}: reading its history")
            self.notify(str(exc), severity="error", markup=False)
            return
        self._history_of = seen
        self.show_history(events)

    def show_history(self, events: list[CampaignEventRow]) -> None:
        self._events = events
        table = self.query_one("#history", KeyedTable)
        at_end = table.cursor_row >= table.row_count - 1
        fitted = self._history_fitted
        rows = (
            (str(e.id), tuple(cut(cells[f.key], f.width) for f in fitted))
            for cells, e in ((event_cells(i, e), e) for i, e in enumerate(events, 1))
        )
        if table.sync(rows) and at_end:
            table.move_cursor(row=table.row_count - 1)  # follow the newest, unless looking back
        self._show_event_detail()

    @on(DataTable.RowHighlighted, "#history")
    def _show_event_detail(self) -> None:
        """The highlighted entry's detail, whole: its column is cut."""
        if not self.history_shown:
            return
        key = self.query_one("#history", KeyedTable).current_key
        event = next((e for e in self._events if str(e.id) == key), None)
        self._show_under(shown(event.detail) if event is not None and event.detail else Text())

    async def action_next_filter(self) -> None:
        """The next status filter; the cursor goes to the row it follows there."""
        self.status_filter = FILTERS[(FILTERS.index(self.status_filter) + 1) % len(FILTERS)]
        self._jump = True
        await self.reload()  # the title changes with the rows and their count

    async def action_follow(self) -> None:
        if self.campaign is not None:
            self._follow(self.campaign, follow=True)
        self.refresh_bindings()

    async def action_toggle_history(self) -> None:
        self.history_shown = not self.history_shown
        self._show_title()
        history = self.query_one("#history", KeyedTable)
        recipients = self.query_one("#recipients", KeyedTable)
        history.display, recipients.display = self.history_shown, not self.history_shown
        self._show_recipient_error()
        (history if self.history_shown else recipients).focus()
        if self.history_shown:
            self._history_of = None
            await self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        c = self.campaign
        if action in CAMPAIGN_ACTIONS:
            return self.offers_campaign_action(action)
        if action == "next_filter":
            return not self.history_shown
        if action == "follow":
            return not self.history_shown and not self.following
        if action not in ("retry", "retry_unconfirmed"):
            return True
        if c is None or c.status not in RETRYABLE:
            return False
        if action == "retry_unconfirmed":
            return c.unconfirmed > 0
        return bool(c.unknown if parameters == ("unknown",) else c.failed)

    def acted_on(self) -> Campaign | None:
        return self.campaign

    def after_delete(self) -> None:
        # Once asked for, back to the list, where the row shows it go.
        if self.is_current:
            self.dismiss()

    def action_retry(self, which: str) -> None:
        c = self.campaign
        if c is None or not self.check_action("retry", (which,)):
            return
        count = c.unknown if which == "unknown" else c.failed
        warning = (
            " They may already have it: WAHA never confirmed those sends."
            if which == "unknown"
            else ""
        )
        question = (
            f"Send campaign {c.id} again to its {count} {which} recipient"
            f"{'s' if count != 1 else ''}?{warning} The campaign is left Paused: press r on "
            "the list to send."
        )

        async def retry() -> None:
            try:
                done = await self.service.retry(
                    self.campaign_id, unknown=which == "unknown", failed=which == "failed"
                )
            except UserError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self.notify(
                f"campaign {self.campaign_id}: {done} recipients queued; press r on the list "
                "to send them",
                markup=False,
            )
            await self.reload()

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(retry(), group="actions", exit_on_error=False)

        self.app.push_screen(ConfirmationModal(question, yes="Queue them", no="Keep"), answered)

    def action_retry_unconfirmed(self) -> None:
        """Sent ones WhatsApp never confirmed, queued again: asked with the service's own
        question (it warns when the repeats would not be deduped, so may arrive twice)."""
        if self._planning or not self.check_action("retry_unconfirmed", ()):
            return
        self._planning = True
        self.run_worker(self._retry_unconfirmed(), group="actions", exit_on_error=False)

    async def _retry_unconfirmed(self) -> None:
        cid = self.campaign_id
        try:
            plan = await self.service.plan_unconfirmed_retry(cid)
        except Exception as exc:
            caught(log, exc, f"campaign {cid}: planning a retry of its unconfirmed recipients")
            self.notify(one_line(exc), severity="error", markup=False)
            return
        finally:
            self._planning = False
        if not plan.count:
            self.notify(f"campaign {cid} has no unconfirmed recipients", markup=False)
            return
        n = plan.count
        question = plan.question or (
            f"Send campaign {cid} again to its {n} unconfirmed recipient{'s' if n != 1 else ''}? "
            "Each repeat carries its first message's id: WhatsApp drops it where that arrived."
        )
        question += " The campaign is left Paused: press r on the list to send."

        async def retry() -> None:
            try:
                done = await self.service.retry(
                    cid, unknown=False, failed=False, unconfirmed=True, confirmed=True
                )
            except Exception as exc:
                caught(log, exc, f"campaign {cid}: retrying its unconfirmed recipients")
                self.notify(one_line(exc), severity="error", markup=False)
                return
            twice = "" if plan.deduped else " (as new messages: they may arrive twice)"
            self.notify(
                f"campaign {cid}: {done} unconfirmed recipients queued{twice}; press r on the "
                "list to send them",
                markup=False,
            )
            await self.reload()

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(retry(), group="actions", exit_on_error=False)

        self.app.push_screen(ConfirmationModal(question, yes="Queue them", no="Keep"), answered)


def recipients_title(status: str | None, matching: int | None, shown_rows: int, total: int) -> Text:
    """What the recipients table shows: "Recipients: failed, 12 of 40"; says when none
    match, and when only a window of them is shown."""
    title = Text("Recipients: ", style="bold")
    if status is None:
        count = total
        title.append(f"all {total:,}, in sending order")
    else:
        count = matching or 0
        title.append_text(recipient_status_cell(status))
        title.append(f", {count:,} of {total:,}" if count else f", none of {total:,}")
    if shown_rows < count:
        title.append(f" ({shown_rows:,} shown, around the next)", style="dim")
    return title
