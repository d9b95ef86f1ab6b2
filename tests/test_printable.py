"""The display rule (waha_tui/printable.py): control characters are shown, not obeyed."""

from __future__ import annotations

import pytest

from waha_tui.printable import printable

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
CLEAR = "\x1b[2J"  # clears the screen
RLO = "\u202e"  # right-to-left override


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"Ann{TITLE}", "Ann\\x1b]0;pwned\\x07"),
        (f"{CLEAR}Bo", "\\x1b[2JBo"),
        (f"evil{RLO}gnp.exe", "evil\\u202egnp.exe"),
        ("nul\x00 del\x7f c1\x9b", "nul\\x00 del\\x7f c1\\x9b"),
        ("two\nlines\tand a tab", "two\\x0alines\\x09and a tab"),
        ("Zoë 🙂 مرحبا 日本", "Zoë 🙂 مرحبا 日本"),  # text is text, in any script
    ],
)
def test_one_line(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_multiline_keeps_newlines_and_tabs_only() -> None:
    assert printable(f"a\n\tb\r\n{CLEAR}", multiline=True) == "a\n\tb\\x0d\n\\x1b[2J"


def test_nothing_printable_is_left_that_a_terminal_obeys() -> None:
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    shown = printable(every)
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in shown)
    assert not any(0x202A <= ord(ch) <= 0x202E or 0x2066 <= ord(ch) <= 0x2069 for ch in shown)
