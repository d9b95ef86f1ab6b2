"""The main screen: the live table of campaigns and the keys that act on the highlighted one."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from waha_tui.models import Campaign
from waha_tui.status import CampaignStatus
from waha_tui.tui.format import campaign_cells, reason_cell, status_cell
from waha_tui.tui.screens.confirm import ConfirmationModal
from waha_tui.tui.screens.details import DetailsScreen
from waha_tui.tui.screens.help import HelpScreen
from waha_tui.tui.widgets.keyed_table import KeyedTable

if TYPE_CHECKING:
    from waha_tui.tui.app import WahaTuiApp

S = CampaignStatus
CAMPAIGN_COLUMNS = [
    ("ID", "id"),
    ("Name", "name"),
    ("Session", "session"),
    ("Status", "status"),
    ("Progress", "progress"),
    ("Failed", "failed"),
    ("Next", "next"),
    ("Scheduled", "scheduled"),
    ("Reason", "reason"),
]
BAN_WARNING = "⚠ Messaging people who did not ask for it gets WhatsApp numbers banned."


class CampaignTable(KeyedTable):
    # DataTable's own enter binding is hidden; this one shows in the footer.
    BINDINGS = [
        Binding("enter", "select_cursor", "Details"),
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
    ]


class MainScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "resume", "Resume"),
        Binding("p", "pause", "Pause"),
        Binding("c", "cancel", "Cancel"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter"),
        Binding("w", "sessions", "WhatsApp"),
        Binding("N", "new_campaign", "New"),
        Binding("L", "contact_lists", "Lists", show=False),  # ? and ctrl+p list them
        Binding("T", "templates", "Templates", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit_app", "Quit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.campaigns: dict[int, Campaign] = {}
        self.filter_text = ""
        self._loading = False
        self._dirty = False

    @property
    def wapp(self) -> WahaTuiApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(
            Text(f"WAHA {self.wapp.service.client.base_url}  ·  checking sessions…"), id="waha-line"
        )
        yield Static(Text(BAN_WARNING), id="ban-warning")
        yield Static(Text(self.wapp.banner or ""), id="banner")
        yield CampaignTable(CAMPAIGN_COLUMNS, id="campaigns")
        yield Static(id="row-info")
        yield Static(id="empty-hint")
        yield Input(placeholder="filter by name or status (esc clears)", id="filter")
        # No "^p palette" here: it would cover q at 80 columns; ? lists ctrl+p instead.
        yield Footer(show_command_palette=False)

    async def on_mount(self) -> None:
        self.query_one("#banner", Static).display = bool(self.wapp.banner)
        self.query_one("#campaigns", KeyedTable).focus()
        await self.reload()
        self.set_interval(self.wapp.refresh_interval, self.reload)

    # -- data --------------------------------------------------------------------------

    async def reload(self) -> None:
        """Read campaigns off the event loop, then diff them into the table."""
        if self._loading:
            self._dirty = True
            return
        self._loading = True
        try:
            while True:
                self._dirty = False
                try:
                    campaigns = await asyncio.to_thread(self.wapp.service.store.list_campaigns)
                except Exception as exc:
                    self.notify(str(exc), severity="error", markup=False)
                    return
                self.campaigns = {c.id: c for c in campaigns if c.id is not None}
                self.show()
                if not self._dirty:
                    break
        finally:
            self._loading = False

    def show(self) -> None:
        table = self.query_one("#campaigns", KeyedTable)
        rows = [
            (str(cid), campaign_cells(c)) for cid, c in self.campaigns.items() if self._matches(c)
        ]
        table.sync(rows)
        hint = self.query_one("#empty-hint", Static)
        if not self.campaigns:
            hint.update("No campaigns yet. Press N to create one (or: waha-tui campaign create).")
        elif not rows:
            hint.update(Text(f"No campaign matches {self.filter_text!r} (esc clears)"))
        else:
            hint.update("")
        hint.display = not rows
        self._show_row_info()
        # update_cell does not refresh dynamic bindings: the footer must follow the row.
        self.refresh_bindings()

    def _matches(self, c: Campaign) -> bool:
        needle = self.filter_text.strip().lower()
        return not needle or needle in c.name.lower() or needle in c.status.lower()

    def current(self) -> Campaign | None:
        """The campaign under the cursor, from the model (not from the cells)."""
        key = self.query_one("#campaigns", KeyedTable).current_key
        return self.campaigns.get(int(key)) if key else None

    # -- bindings ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        c = self.current()
        if action == "resume":
            return bool(c and c.status == S.PAUSED and c.id not in self.wapp.resuming)
        if action == "pause":
            return bool(c and c.status in (S.RUNNING, S.SCHEDULED))
        if action == "cancel":
            return bool(c and c.status in (S.RUNNING, S.SCHEDULED, S.PAUSED))
        if action == "details":
            return c is not None
        if action == "clear_filter":
            return bool(self.filter_text) or self.query_one("#filter", Input).display
        return True

    def _show_row_info(self) -> None:
        """The highlighted campaign's reason in full: the Reason column is off-screen at 80x24."""
        c = self.current()
        info = self.query_one("#row-info", Static)
        line = Text()
        if c is not None:
            line.append(f"#{c.id} ", style="bold")
            line.append_text(status_cell(c.status))
            if c.status == S.RUNNING and c.lease_owner != self.wapp.service.pool.owner:
                # Another dashboard or `waha-tui run` holds it: shown live, not runnable here.
                owner = ":".join((c.lease_owner or "?").split(":")[:2])
                line.append(f" in another process ({owner})", style="cyan")
            detail = reason_cell(c)
            if detail.plain:
                line.append(": ")
                line.append_text(detail)
            elif c.status == S.PAUSED:
                line.append(": press r to resume")
        info.update(line)

    @on(DataTable.RowHighlighted, "#campaigns")
    def _row_moved(self) -> None:
        self._show_row_info()
        self.refresh_bindings()

    @on(DataTable.RowSelected, "#campaigns")
    def _row_chosen(self) -> None:
        self.action_details()

    def action_resume(self) -> None:
        c = self.current()
        if c is None or c.id is None or not self.check_action("resume", ()):
            return
        self.wapp.start_resume(c.id)

    def action_pause(self) -> None:
        c = self.current()
        if c is None or c.id is None or not self.check_action("pause", ()):
            return
        self.wapp.run_task(self.wapp.pause_campaign(c.id))

    def action_cancel(self) -> None:
        c = self.current()
        if c is None or c.id is None or not self.check_action("cancel", ()):
            return
        cid = c.id

        def answered(yes: bool | None) -> None:
            if yes:
                self.wapp.run_task(self.wapp.cancel_campaign(cid))

        question = (
            f"Cancel campaign {cid} “{c.name}”? {c.total - c.next_index} recipients will "
            "not get the message. This cannot be undone."
        )
        self.app.push_screen(ConfirmationModal(question, yes="Cancel it", no="Keep it"), answered)

    def action_details(self) -> None:
        c = self.current()
        if c is not None and c.id is not None:
            self.app.push_screen(DetailsScreen(self.wapp.service, c.id))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()
        self.refresh_bindings()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.query_one("#campaigns", KeyedTable).focus()
        self.show()

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
        await self.reload()
        table = self.query_one("#campaigns", KeyedTable)
        key = str(campaign_id)
        if key in [k.value for k in table.rows]:
            table.move_cursor(row=table.get_row_index(key), animate=False)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen())

    def action_quit_app(self) -> None:
        self.wapp.request_quit()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self.show()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        if not self.filter_text:
            self.query_one("#filter", Input).display = False
        self.query_one("#campaigns", KeyedTable).focus()
        self.refresh_bindings()

    def set_waha_line(self, text: Text) -> None:
        self.query_one("#waha-line", Static).update(text)

    def set_banner(self, text: str) -> None:
        banner = self.query_one("#banner", Static)
        banner.update(Text(text))
        banner.display = bool(text)
