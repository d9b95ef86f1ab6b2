"""The display rule: text from outside is shown as text, never obeyed by the terminal.

Contact names and headers from CSV files, WAHA's answers, session names, pairing codes,
file names and error messages may hold control characters: `ESC ] 0 ; ... BEL` would set
the terminal's title, `ESC [ 2 J` clear the screen, a bidi override reverse what follows.
Everything the dashboard and the CLI's human output show of such text goes through
`printable`: C0 and C1 control characters, DEL and the bidi controls are replaced by a
visible escape (`\\x1b`, `\\u202e`). What is stored and what is sent stay exactly as given,
and `--json` output is faithful (JSON escapes them itself).
"""

from __future__ import annotations

import re

# C0 (but tab and newline, handled below), DEL, C1; the bidi embeddings, overrides and
# isolates (U+202A-U+202E, U+2066-U+2069), and the line and paragraph separators, which
# break a line where no newline is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_LINE_BREAKS = re.compile("[\t\n]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, *, multiline: bool = False) -> str:
    """`text` with every control character made visible. One line unless `multiline`, in
    which case newlines (and tabs) stay what they are."""
    shown = _CONTROL.sub(_visible, text)
    if not multiline:
        shown = _LINE_BREAKS.sub(_visible, shown)
    return shown
