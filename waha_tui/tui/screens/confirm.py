"""A yes/no question before anything destructive (k9s and posting do the same)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from waha_tui.printable import printable


class ConfirmationModal(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n", "answer(False)", "No"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    FOLLOW_EVERY = 0.5  # seconds between reads of a question that follows what it asks about

    def __init__(
        self,
        question: str,
        *,
        yes: str = "Yes",
        no: str = "No",
        follow: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        """`follow`: the question and its yes button as they are now, read again while
        the modal is open (what it describes may change under the operator's eyes)."""
        super().__init__()
        self.question, self.yes, self.no = question, yes, no
        self._follow = follow

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            # Questions name campaigns and sessions: text from outside, shown as text.
            yield Static(Text(printable(self.question, multiline=True)), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button(f"{self.no} (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()
        if self._follow is not None:
            self.set_interval(self.FOLLOW_EVERY, self._refresh_question)
        self.call_after_refresh(self._place_toasts)

    def on_resize(self) -> None:
        self.call_after_refresh(self._place_toasts)

    def _place_toasts(self) -> None:
        """Toasts stay in the rows under the question, never over its buttons: at 80x24 a
        second toast landed on them. What does not fit waits for the dialog to close."""
        box = self.query_one("#confirm-box").region
        room = max(self.size.height - box.bottom - 1, 0)  # the rack keeps a margin of 1
        for rack in self.query("ToastRack"):  # Textual's own widget; by name, not import
            rack.styles.max_height = room

    def _refresh_question(self) -> None:
        assert self._follow is not None
        question, yes = self._follow()
        if (question, yes) != (self.question, self.yes):
            self.question, self.yes = question, yes
            self.query_one("#confirm-question", Static).update(
                Text(printable(question, multiline=True))
            )
            self.query_one("#yes", Button).label = f"{yes} (y)"

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
