"""A message as WhatsApp shows it: *bold*, _italic_, ~strike~ and ```monospace```.

A pure function from the message text to a Rich ``Text``. The text is only ever appended as
plain text, so Rich markup ("[bold]"), emoji codes and braces in it stay exactly as typed.

WhatsApp's rules, as followed here:

* A marker opens at the start of the text or after a character that is not a letter or
  digit, and is followed by a non-space; it closes at the next same marker that follows a
  non-space and is not itself followed by a letter or digit. So ``2*3*4``, ``snake_case``
  and ``* spaced *`` stay as typed.
* *, _ and ~ do not reach over a line break; they nest (``*_both_*``).
* ```monospace``` may span lines, and nothing inside it is formatted.
* The markers of a formatted part are not shown; markers that open nothing stay visible.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

BOLD = Style(bold=True)
ITALIC = Style(italic=True)
STRIKE = Style(strike=True)
# Every cell of a terminal is monospaced already: a shaded background sets the code apart.
MONO = Style(color="bright_white", bgcolor="bright_black")

INLINE_STYLES: dict[str, Style] = {"*": BOLD, "_": ITALIC, "~": STRIKE}
_MONO = re.compile(r"```(.+?)```", re.DOTALL)


def whatsapp_text(message: str) -> Text:
    """``message`` with WhatsApp's formatting applied and its markers removed."""
    out = Text()
    last = 0
    for found in _MONO.finditer(message):
        out.append_text(_inline(message[last : found.start()]))
        out.append(found.group(1), style=MONO)
        last = found.end()
    out.append_text(_inline(message[last:]))
    return out


def _word_char(ch: str) -> bool:
    return ch.isalnum()


def _opens(text: str, i: int) -> bool:
    before = text[i - 1] if i else ""
    after = text[i + 1] if i + 1 < len(text) else ""
    return not _word_char(before) and after != "" and not after.isspace() and after != text[i]


def _closing(text: str, i: int) -> int | None:
    marker = text[i]
    j = i + 2  # at least one character between the markers
    while j < len(text):
        ch = text[j]
        if ch == "\n":
            return None
        if ch == marker and not text[j - 1].isspace():
            after = text[j + 1] if j + 1 < len(text) else ""
            if not _word_char(after):
                return j
        j += 1
    return None


def _inline(text: str) -> Text:
    out = Text()
    plain_from = i = 0
    while i < len(text):
        style = INLINE_STYLES.get(text[i])
        if style is not None and _opens(text, i):
            j = _closing(text, i)
            if j is not None:
                out.append(text[plain_from:i])
                inner = _inline(text[i + 1 : j])
                inner.stylize_before(style)  # nested parts keep their own style on top
                out.append_text(inner)
                i = plain_from = j + 1
                continue
        i += 1
    out.append(text[plain_from:])
    return out


__all__ = ["BOLD", "ITALIC", "MONO", "STRIKE", "whatsapp_text"]
