"""`?`: every key of the dashboard, in one place."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

KEYS: list[tuple[str, str]] = [
    ("↑ ↓ / j k", "move between campaigns; PgUp PgDn: pages of 100"),
    ("enter", "details: counters, recipients; h there: its history"),
    ("r", "resume Paused, or Failed with recipients left to send"),
    ("p / c", "pause Running or Scheduled / cancel (asks first)"),
    ("e / C", "edit name, start, delay (Scheduled, Paused) / clone"),
    ("D, ctrl+d", "delete, with its history (asks; never a Running one)"),
    ("/", "filter by name or status; esc clears"),
    ("w", "WhatsApp sessions; link a phone by QR or pairing code"),
    ("N", "new campaign from a list and a template; previewed first"),
    ("L", "contact lists: import a CSV (i), view (enter), delete (d)"),
    ("T", "templates: new (n), edit (enter), delete (d), preview"),
    ("ctrl+p", "command palette: new campaign, lists, templates, sessions"),
    ("u / f", "in details: retry unknown / failed (asks); r p c e C D"),
    ("? / esc", "this help / back, close"),
    ("q", "quit; running campaigns pause after the message in flight"),
]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static("Keys", id="help-title")
            table: DataTable[str] = DataTable(show_cursor=False, id="help-keys")
            yield table
            yield Static("esc closes this help", id="help-foot")

    def on_mount(self) -> None:
        table = self.query_one("#help-keys", DataTable)
        table.add_columns("Key", "Action")
        for key, action in KEYS:
            table.add_row(key, action)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
