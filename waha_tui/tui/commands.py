"""The command palette (ctrl+p): every screen of the dashboard by name."""

from __future__ import annotations

from collections.abc import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import ModalScreen

# (title, what it opens, the WahaTuiApp method that opens it)
COMMANDS: list[tuple[str, str, str]] = [
    ("New campaign", "a campaign from a contact list and a template (N)", "open_new_campaign"),
    ("Contact lists", "import a CSV file, view or delete a list (L)", "open_contact_lists"),
    ("Templates", "create, edit or delete message templates (T)", "open_templates"),
    ("Opt-out list", "numbers never messaged again: search, add, remove (O)", "open_optouts"),
    ("WhatsApp sessions", "the WAHA sessions; link a phone (w)", "open_sessions"),
]


class DashboardCommands(Provider):
    """Offered over the dashboard's screens; a question or a form on top must be answered
    (or closed) first, so nothing opens behind it."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        if isinstance(self.screen, ModalScreen):
            return []
        return [(title, help_, getattr(self.app, method)) for title, help_, method in COMMANDS]

    async def discover(self) -> Hits:
        for title, help_, run in self._commands():
            yield DiscoveryHit(title, run, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_, run in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, text=title, help=help_)
