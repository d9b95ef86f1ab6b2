"""A QR code drawn with Unicode half blocks, to scan WAHA's login code off the terminal.

Two module rows share one text row (▀ top dark, ▄ bottom dark, █ both, space neither), so a
module is one cell wide and half a cell high: square on a normal terminal font, and as big as
a QR code can be while still fitting an SSH window.
"""

from __future__ import annotations

from collections.abc import Sequence

import segno
from rich.color import Color
from rich.style import Style
from rich.text import Text

QUIET_ZONE = 4  # modules of light margin on each side, as the QR specification asks
# Pure black on pure white whatever the theme or terminal palette: a phone cannot read a
# code drawn light-on-dark or in a theme's grey.
QR_STYLE = Style(color=Color.from_rgb(0, 0, 0), bgcolor=Color.from_rgb(255, 255, 255))
_CELL = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}

Matrix = list[list[bool]]


def qr_matrix(value: str, *, border: int = QUIET_ZONE) -> Matrix:
    """segno's modules for `value` (True is dark), quiet zone included."""
    # make_qr, not make: a short value would become a Micro QR, which WhatsApp cannot read.
    code = segno.make_qr(value, error="L")
    return [[bool(m) for m in row] for row in code.matrix_iter(border=border)]


def half_block_lines(matrix: Sequence[Sequence[bool]]) -> list[str]:
    """Two module rows per line; an odd last row is paired with a light one (more margin)."""
    lines: list[str] = []
    for top in range(0, len(matrix), 2):
        upper = matrix[top]
        lower = matrix[top + 1] if top + 1 < len(matrix) else [False] * len(upper)
        lines.append("".join(_CELL[(a, b)] for a, b in zip(upper, lower, strict=True)))
    return lines


def qr_lines(value: str, *, border: int = QUIET_ZONE) -> list[str]:
    return half_block_lines(qr_matrix(value, border=border))


def qr_text(lines: Sequence[str]) -> Text:
    """The lines as one Text, black on white, never wrapped (a wrapped code is unreadable)."""
    return Text("\n".join(lines), style=QR_STYLE, no_wrap=True, overflow="crop", end="")


def qr_size(lines: Sequence[str]) -> tuple[int, int]:
    """(columns, rows) the drawn code takes."""
    return (len(lines[0]) if lines else 0, len(lines))
