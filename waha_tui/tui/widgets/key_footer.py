"""A footer that shows every key the screen offers, on a second line when one is not enough.

Textual's Footer keeps to one line and cuts what does not fit: at 80 columns the main
screen's keys for a Paused campaign (resume, cancel, edit, clone, delete, and the screens)
would lose Help and Quit. This one packs whole keys into lines as wide as the terminal, so
none is ever cut; on a wide terminal it is the one line Footer draws. It is a Footer (the
same bindings, refreshed when they change), drawn as text.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.geometry import Size
from textual.widget import Widget
from textual.widgets import Footer


class KeyLines(Widget):
    """The keys, as whole items packed into lines of the widget's width."""

    COMPONENT_CLASSES = {"key-lines--key", "key-lines--description"}
    DEFAULT_CSS = """
    KeyLines {
        width: 1fr;
        height: auto;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-lines--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-lines--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
    }
    """

    def __init__(self, keys: list[tuple[str, str, bool]]) -> None:
        """`keys`: (key as shown, description, enabled), in the footer's order."""
        super().__init__()
        self.keys = keys

    def _items(self) -> list[Text]:
        key_style = self.get_component_rich_style("key-lines--key")
        description_style = self.get_component_rich_style("key-lines--description")
        items = []
        for key, description, enabled in self.keys:
            item = Text.assemble((f" {key} ", key_style), (f"{description} ", description_style))
            if not enabled:
                item.stylize(Style(dim=True))
            items.append(item)
        return items

    def lines(self, width: int) -> list[Text]:
        """The items packed greedily into lines of `width` cells; one never splits."""
        lines: list[Text] = []
        line = Text()
        for item in self._items():
            if line.cell_len and line.cell_len + item.cell_len > width:
                lines.append(line)
                line = Text()
            line.append_text(item)
        if line.cell_len or not lines:
            lines.append(line)
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self.lines(width))

    def render(self) -> Text:
        return Text("\n").join(self.lines(self.content_region.width or self.size.width))


class KeyFooter(Footer):
    DEFAULT_CSS = """
    KeyFooter {
        height: auto;
        max-height: 3;
    }
    """

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys: list[tuple[str, str, bool]] = []
        actions: set[str] = set()
        for _key, binding, enabled, _tooltip in self.screen.active_bindings.values():
            # One item per action, as Footer does (D and ctrl+d both delete).
            if binding.show and binding.action not in actions:
                actions.add(binding.action)
                keys.append(self._item(binding, enabled))
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if palette is not None:
                keys.append(self._item(palette.binding, palette.enabled))
        yield KeyLines(keys)

    def _item(self, binding: Binding, enabled: bool) -> tuple[str, str, bool]:
        return (self.app.get_key_display(binding), binding.description, enabled)
