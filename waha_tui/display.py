"""Text from outside (WAHA's errors, CSV files, names) on a terminal: data, never commands."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates: they make text read in another order than stored.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` on one line, each control character (escape sequences, line breaks, bidi
    overrides) shown as a space."""
    return "".join(" " if ch in _BIDI or unicodedata.category(ch) == "Cc" else ch for ch in text)
