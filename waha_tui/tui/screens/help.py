"""`?`: every key of the dashboard, in one place."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("↑ ↓ / j k", "move; PgUp PgDn: pages of 100; g G: first / last"),
    ("enter", "details: counters, recipients; h there: its history"),
    ("r", "resume Paused, or Failed with recipients left to send"),
    ("p / c", "pause Running or Scheduled / cancel (asks first)"),
    ("e / C", "edit name, start, delay (Scheduled, Paused) / clone"),
    ("D, ctrl+d", "delete, with its history (asks; never a Running one)"),
    ("/ · s S", "filter by name, status (esc clears) · sort, reverse"),
    ("w", "WhatsApp sessions; link a phone by QR or pairing code"),
    ("N", "new campaign from a list and a template; previewed first"),
    ("L", "contact lists: import a CSV (i), view (enter), delete (d)"),
    ("T", "templates: new (n), edit (enter), delete (d), preview"),
    ("O", "opt-out list: search (/), add (a), remove (D), import (i)"),
    ("ctrl+p", "command palette: new campaign, lists, templates, sessions"),
    ("u f U", "in details: retry unknown, failed, unconfirmed; r p c e C D"),
    ("s / n", "in details: filter by status / follow the one being sent"),
    ("? / esc", "this help / back, close"),
    ("q", "quit; running campaigns pause after the message in flight"),
]


def keys_table() -> Table:
    """Every key and what it does; an action longer than the line wraps, never cut."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, action in KEYS:
        grid.add_row(key, action)
    return grid


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", show=False),
        Binding("q", "dismiss", "Close", show=False),
    ]

    def compose(self) -> ComposeResult:
        # Scrolls where the terminal is shorter than the list.
        with VerticalScroll(id="help-box"):
            yield Static("Keys", id="help-title")
            yield Static(keys_table(), id="help-keys")
            yield Static("esc closes this help", id="help-foot")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
