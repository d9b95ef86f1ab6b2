"""Which columns fit (tui/columns.py): by priority, never wider than the terminal."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.text import Text

from waha_tui.tui import format
from waha_tui.tui.columns import CAMPAIGNS, CELL_PADDING, cut, fit, recipient_columns
from waha_tui.tui.format import local_time, sent_time


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
    # Wider: how the sends fared (the highlighted campaign's reason is under the table).
    assert set(at80) < set(at120) and {"failed", "delivered", "read", "replied"} <= set(at120)
    at160 = {f.key: f.width for f in fit(CAMPAIGNS, 158)}
    assert at160["reason"] >= 20 and "started" not in at160  # a whole reason comes first
    at240 = fit(CAMPAIGNS, 238)
    widths = {f.key: f.width for f in at240}
    assert [f.key for f in at240][-1] == "reason" and widths["reason"] == 80
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


@pytest.mark.parametrize("total", [9, 40, 1_000, 99_999, 1_000_000])
def test_80_columns_show_a_recipients_position_phone_status_and_sent_time(total: int) -> None:
    columns = recipient_columns(total)
    at80 = fit(columns, 78)
    keys = [f.key for f in at80]
    assert {"pos", "phone", "status", "sent"} <= set(keys)
    assert sum(f.width + CELL_PADDING for f in at80) <= 78
    widths = {f.key: f.width for f in at80}
    assert widths["pos"] >= len(str(total))  # its last position is never cut
    assert widths["sent"] >= len("2025-11-28") and widths["sent"] >= len("11-28 14:03")
    if total < 100_000:
        assert "error" in keys  # the start of what went wrong, the rest under the table
    at120 = [f.key for f in fit(columns, 118)]
    assert "message_id" in at120 and "error" in at120


def test_a_recipients_sent_time_says_the_day_only_when_not_today(
    monkeypatch: pytest.MonkeyPatch, utc: None
) -> None:
    today = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
    monkeypatch.setattr(format, "now", lambda: today)
    assert sent_time(datetime(2026, 11, 28, 9, 5, 7, tzinfo=UTC)) == "09:05:07"
    assert sent_time(datetime(2026, 2, 1, 9, 5, 7, tzinfo=UTC)) == "02-01 09:05"
    assert sent_time(datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == "2025-12-31"
    assert sent_time(None) == ""
    longest = max(len(sent_time(datetime(2026, m, 1, tzinfo=UTC))) for m in range(1, 13))
    column = next(c for c in recipient_columns(1) if c.key == "sent")
    assert longest <= column.width
