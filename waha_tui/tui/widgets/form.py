"""One row of a form: a label, the control, the control's error under it, a hint."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Input, Select, Static, TextArea

from waha_tui.printable import printable


class Field(Vertical):
    """The error shows under the control and clears as soon as the value changes."""

    def __init__(
        self, label: str, control: Widget, *, hint: str | Text = "", id: str | None = None
    ) -> None:
        super().__init__(id=id, classes="field")
        self.label = label
        self.control = control
        self._hint = hint
        self._field_error = ""

    def compose(self) -> ComposeResult:
        with Horizontal(classes="field-row"):
            yield Static(Text(self.label), classes="field-label")
            yield self.control
        yield Static(classes="field-error")
        hint = Static(_text(self._hint), classes="field-hint")
        hint.display = bool(self._hint)
        yield hint

    @property
    def error(self) -> str:
        """The error shown under the control ("" when none)."""
        return self._field_error

    def set_error(self, message: str) -> None:
        self._field_error = message
        if not self.is_mounted:
            return
        box = self.query_one(".field-error", Static)
        box.update(Text(printable(message, multiline=True)))  # may quote a CSV, WAHA
        box.display = bool(message)
        self.control.set_class(bool(message), "-invalid")

    def set_hint(self, hint: str | Text) -> None:
        box = self.query_one(".field-hint", Static)
        box.update(_text(hint))
        box.display = bool(str(hint))

    @on(Input.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def _edited(self) -> None:
        if self._field_error:
            self.set_error("")


def _text(value: str | Text) -> Text:
    """Strings as plain text, never read as markup."""
    return Text(value) if isinstance(value, str) else value
