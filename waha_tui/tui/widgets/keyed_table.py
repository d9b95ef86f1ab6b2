"""A DataTable refreshed by keyed diffing (dolphie's way) instead of clear-and-refill.

`clear()` would reset the cursor and the scroll; here only changed cells are updated, new
rows added and gone rows removed, all inside one `batch_update()`, so the cursor stays on
the same row key and nothing jumps.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist


class KeyedTable(DataTable[object]):
    """Rows are keyed by a string; the first column holds a number to keep them in order."""

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: object) -> None:
        super().__init__(cursor_type="row", **kwargs)  # type: ignore[arg-type]
        self._column_spec = list(columns)
        self._shown: dict[str, tuple[object, ...]] = {}

    def on_mount(self) -> None:
        for label, key in self._column_spec:
            self.add_column(label, key=key)

    @property
    def current_key(self) -> str | None:
        """The row key under the cursor, read from the table itself."""
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None

    def sync(self, rows: Iterable[tuple[str, tuple[object, ...]]]) -> bool:
        """Make the table show exactly `rows` (key, cells). True if anything changed."""
        wanted = dict(rows)
        keep = self.current_key
        added = removed = updated = False
        columns = [key for _label, key in self._column_spec]
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in wanted]:
                self.remove_row(key)
                del self._shown[key]
                removed = True
            for key, cells in wanted.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                    added = True
                elif old != cells:
                    for column, before, after in zip(columns, old, cells, strict=True):
                        if before != after:
                            self.update_cell(key, column, after, update_width=True)
                    updated = True
                self._shown[key] = cells
            if added:
                # New rows were appended; keep the order of the first column's numbers.
                self.sort(columns[0], key=_number)
            if keep is not None and keep in wanted and (added or removed):
                index = self.get_row_index(keep)
                if index != self.cursor_row:
                    self.move_cursor(row=index, animate=False, scroll=False)
        return added or removed or updated


def _number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return float("inf")
