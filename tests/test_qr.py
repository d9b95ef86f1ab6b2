"""The QR code drawn in half blocks: read back module by module, it is segno's code."""

from __future__ import annotations

import hashlib
from base64 import b64encode
from collections.abc import Sequence

import pytest
import segno
from rich.color import ColorType

from waha_tui.tui.widgets.qr import QUIET_ZONE, half_block_lines, qr_lines, qr_size, qr_text

TOP_BOTTOM = {" ": (False, False), "▀": (True, False), "▄": (False, True), "█": (True, True)}


def modules_of(lines: Sequence[str]) -> list[list[bool]]:
    """The inverse of the drawing: two module rows (True is dark) from each text row."""
    rows: list[list[bool]] = []
    for line in lines:
        pairs = [TOP_BOTTOM[ch] for ch in line]  # KeyError: a character that is not a module
        rows.append([top for top, _ in pairs])
        rows.append([bottom for _, bottom in pairs])
    return rows


def segno_modules(value: str, border: int = QUIET_ZONE) -> list[list[bool]]:
    code = segno.make_qr(value, error="L")
    return [[bool(m) for m in row] for row in code.matrix_iter(border=border)]


def waha_like(seed: str) -> str:
    """As long as a real WAHA login value: a ref and three base64 keys."""
    parts = [b64encode(hashlib.sha256(f"{seed}{i}".encode()).digest()).decode() for i in range(5)]
    return f"2@{parts[0]}{parts[1]},{parts[2]},{parts[3]},{parts[4]},1"


VALUES = [
    "2@short",
    "2@aBcDeFgHiJkLmNoPqRsTuVwXyZ012345,AbCdEfGhIjKlMnOp,default",
    waha_like("x"),
]


@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("border", [QUIET_ZONE, 2, 1])
def test_the_half_blocks_read_back_as_segnos_modules(value: str, border: int) -> None:
    expected = segno_modules(value, border)
    lines = qr_lines(value, border=border)
    back = modules_of(lines)
    assert back[: len(expected)] == expected
    # An odd module count leaves a last half row, drawn light: it only widens the margin.
    assert len(back) - len(expected) in (0, 1)
    assert all(not m for row in back[len(expected) :] for m in row)
    assert qr_size(lines) == (len(expected[0]), (len(expected) + 1) // 2)


def test_the_quiet_zone_is_light_on_every_side() -> None:
    lines = qr_lines(VALUES[1])
    rows = modules_of(lines)
    for row in rows[:QUIET_ZONE] + rows[-QUIET_ZONE:]:
        assert not any(row)
    for row in rows:
        assert not any(row[:QUIET_ZONE]) and not any(row[-QUIET_ZONE:])
    assert any(rows[QUIET_ZONE])  # the finder pattern starts right after the margin


def test_a_short_value_is_a_full_qr_code_not_a_micro_one() -> None:
    # segno.make would pick a Micro QR for this, which WhatsApp cannot scan.
    width, _ = qr_size(qr_lines("2@short", border=0))
    assert width >= 21  # version 1, the smallest full QR code
    assert segno.make("2@short").is_micro


def test_a_waha_length_value_fits_a_100_by_40_terminal() -> None:
    width, height = qr_size(qr_lines(waha_like("y")))
    assert width <= 100 - 31 and height <= 40 - 2


def test_only_half_blocks_and_spaces_are_drawn() -> None:
    assert set("".join(qr_lines(VALUES[2]))) <= set(" ▀▄█")


def test_half_block_lines_pairs_rows_top_and_bottom() -> None:
    t, f = True, False
    matrix = [[t, f, t, f], [t, t, f, f], [f, t, t, f]]
    assert half_block_lines(matrix) == ["█▄▀ ", " ▀▀ "]


def test_the_text_is_black_on_white_whatever_the_theme_and_never_wraps() -> None:
    lines = qr_lines(VALUES[0])
    text = qr_text(lines)
    assert text.plain == "\n".join(lines)
    assert text.no_wrap
    style = text.style
    assert not isinstance(style, str)
    assert style.color is not None and style.bgcolor is not None
    # Truecolor values, not ANSI black/white that a terminal palette may remap.
    assert style.color.type == ColorType.TRUECOLOR
    assert style.color.get_truecolor() == (0, 0, 0)
    assert style.bgcolor.get_truecolor() == (255, 255, 255)
    assert text.spans == []  # no markup was parsed out of anything
