"""Which columns fit (tui/columns.py): by priority, never wider than the terminal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.text import Text

from waha_tui.tui.columns import CAMPAIGNS, CELL_PADDING, cut, fit
from waha_tui.tui.format import local_time


@pytest.mark.parametrize("width", [40, 60, 78, 100, 118, 158, 238])
def test_the_columns_shown_never_need_a_sideways_scroll(width: int) -> None:
    fitted = fit(CAMPAIGNS, width)
    keys = [f.key for f in fitted]
    assert keys[:3] == ["id", "name", "status"]  # always, whatever the width
    used = sum(f.width + CELL_PADDING for f in fitted)
    assert used <= max(width, sum(c.width + CELL_PADDING for c in CAMPAIGNS if not c.priority))
    assert keys == [c.key for c in CAMPAIGNS if c.key in keys]  # in their declared order


def test_80_columns_show_what_an_operator_needs_and_wider_shows_more() -> None:
    at80 = [f.key for f in fit(CAMPAIGNS, 78)]
    assert at80 == ["id", "name", "status", "progress", "eta", "due"]
    at120 = [f.key for f in fit(CAMPAIGNS, 118)]
    assert set(at80) < set(at120) and "reason" in at120
    at160 = {f.key: f.width for f in fit(CAMPAIGNS, 158)}
    assert at160["reason"] > 40 and "started" not in at160  # a whole reason comes first
    at200 = fit(CAMPAIGNS, 198)
    widths = {f.key: f.width for f in at200}
    assert [f.key for f in at200][-1] == "reason" and widths["reason"] == 80
    at300 = [f.key for f in fit(CAMPAIGNS, 298)]
    assert {"started", "ended", "scheduled", "next"} <= set(at300)  # the extras, last


def test_a_cut_is_never_silent() -> None:
    long = Text("Welcome series for the spring sale", style="bold")
    short = cut(long, 12)
    assert isinstance(short, Text) and short.plain == "Welcome ser…" and short.cell_len == 12
    assert short.style == "bold"
    assert cut("0123456789", 5) == "0123…" and cut("abc", 5) == "abc"
    assert cut(Text("日本語の名前です"), 7).cell_len <= 7  # wide characters count double


def test_a_date_outside_this_year_shows_its_year() -> None:
    now = datetime.now(UTC)
    this_year = now.replace(month=1, day=2, hour=12)
    assert local_time(this_year) == this_year.astimezone().strftime("%m-%d %H:%M")
    other = this_year.replace(year=now.year + 1)
    assert local_time(other).startswith(f"{now.year + 1}-")
    assert local_time(other, "%Y-%m-%d") == other.astimezone().strftime("%Y-%m-%d")
    assert local_time(None) == "-"
