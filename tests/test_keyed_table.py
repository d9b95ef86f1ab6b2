"""KeyedTable's fast path reaches into DataTable's private caches (textual is pinned).
If a Textual release changes them, these tests fail loudly instead of the table quietly
showing stale rows."""

from __future__ import annotations

from rich.text import Text
from textual.app import App, ComposeResult
from textual.cache import LRUCache
from textual.geometry import Region
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from waha_tui.tui.widgets.keyed_table import KeyedTable


class One(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([("#", "n"), ("Value", "v")], id="t")


def screen_text(table: KeyedTable) -> str:
    lines = table.render_lines(Region(0, 0, table.size.width, table.size.height))
    return "\n".join(line.text for line in lines)


def test_the_private_parts_the_fast_path_uses_are_there() -> None:
    table = DataTable[object]()
    for name in ("_row_render_cache", "_cell_render_cache", "_row_renderable_cache", "_line_cache"):
        assert isinstance(getattr(table, name), LRUCache), name
    for name in ("_data", "_row_locations", "_update_count"):
        assert hasattr(table, name), name
    assert callable(table._get_row_region)


async def test_a_changed_cell_is_drawn_anew_without_a_full_rerender() -> None:
    async with One().run_test(size=(40, 8)) as pilot:
        table = pilot.app.query_one("#t", KeyedTable)
        table.sync([(str(i), (str(i), Text(f"old-{i}"))) for i in range(1, 4)])
        await pilot.pause(0.1)
        assert "old-2" in screen_text(table)
        # The caches hold the rows now, keyed as the fast path expects.
        assert any(k[0] == RowKey("2") for k in table._row_render_cache.keys())  # noqa: SIM118
        updates = table._update_count
        table.sync(
            [(str(i), (str(i), Text(f"{'new' if i == 2 else 'old'}-{i}"))) for i in range(1, 4)]
        )
        await pilot.pause(0.1)
        assert table._update_count == updates, "the fast path was not taken"
        drawn = screen_text(table)
        assert "new-2" in drawn and "old-2" not in drawn, drawn  # never a stale row
        assert "old-1" in drawn and "old-3" in drawn


def _order(table: KeyedTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


async def test_rows_show_in_the_order_given_and_the_cursor_keeps_its_row() -> None:
    async with One().run_test(size=(40, 20)) as pilot:
        table = pilot.app.query_one("#t", KeyedTable)
        table.sync([(k, (k, Text(f"v{k}"))) for k in ["1", "2", "3", "4"]])
        table.move_cursor(row=1)  # on "2"
        await pilot.pause(0.05)
        # Reordered (a sort by a column that changed), one gone, one new in the middle.
        table.sync([(k, (k, Text(f"v{k}"))) for k in ["4", "2", "9", "1"]])
        await pilot.pause(0.05)
        assert _order(table) == ["4", "2", "9", "1"]
        assert table.current_key == "2"
        assert "v9" in screen_text(table)
        # Most rows replaced (another page): cleared and refilled, the cursor on its key.
        many = [str(n) for n in range(100, 130)]
        table.sync([(k, (k, Text(f"v{k}"))) for k in ["4", "2", "9", "1", *many]])
        table.move_cursor(row=table.get_row_index("120"))
        await pilot.pause(0.05)
        fresh = [str(n) for n in range(200, 220)]
        table.sync([(k, (k, Text(f"v{k}"))) for k in [*fresh, "120"]])
        await pilot.pause(0.05)
        assert _order(table) == [*fresh, "120"]
        assert table.current_key == "120"
        assert "v120" in screen_text(table) and "v4 " not in screen_text(table)
