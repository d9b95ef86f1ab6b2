"""A DataTable refreshed by keyed diffing (dolphie's way) instead of clear-and-refill.

`clear()` would reset the cursor and the scroll; here only changed cells are updated, new
rows added and gone rows removed, all inside one `batch_update()`, so the cursor stays on
the same row key and nothing jumps. The rows are shown in the order given (a table sorted
by a column that changes, progress say, reorders them).
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from typing import TypeVar

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowDoesNotExist, RowKey

# Past this many rows gone at once (and more than half), sync clears and refills.
REFILL_AFTER = 8
# A render cache's key (a tuple whose parts name a row, a line...) and value.
_Key = TypeVar("_Key", bound=tuple[object, ...])
_Value = TypeVar("_Value")


class KeyedTable(DataTable[object]):
    """Rows are keyed by a string, shown in the order `sync` is given them."""

    def __init__(
        self,
        columns: Sequence[tuple[str, str]],
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(cursor_type="row", name=name, id=id, classes=classes, disabled=disabled)
        self._column_spec = list(columns)
        self._widths: list[int | None] = [None] * len(self._column_spec)
        self._shown: dict[str, tuple[object, ...]] = {}
        self._order: list[str] = []  # the row keys in table order
        self._restore: str | None = None  # the row the cursor goes back to after set_columns

    def on_mount(self) -> None:
        for (label, key), width in zip(self._column_spec, self._widths, strict=True):
            self.add_column(label, key=key, width=width)

    def set_columns(self, columns: Sequence[tuple[str, str, int | None]]) -> bool:
        """Show these columns (label, key, width; None: as wide as the content). The rows
        go with the old columns: the next `sync` brings them back, the cursor on the same
        row key. False if they are the columns shown already."""
        spec = [(label, key) for label, key, _width in columns]
        widths = [width for _label, _key, width in columns]
        if spec == self._column_spec and widths == self._widths:
            return False
        self._restore = self.current_key or self._restore
        self._column_spec, self._widths = spec, widths
        self._shown.clear()
        self._order = []
        if self.is_mounted:
            self.clear(columns=True)
            for (label, key), width in zip(spec, widths, strict=True):
                self.add_column(label, key=key, width=width)
        return True

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
        gone = sum(1 for k in self._shown if k not in wanted)
        if gone > REFILL_AFTER and gone * 2 > len(self._shown):
            self._refill(wanted, keep)
            return True
        added = removed = updated = reordered = False
        # Where rows end up: gone ones closed up, new ones appended.
        order = [k for k in self._order if k in wanted]
        order += [k for k in wanted if k not in self._shown]
        patched: set[str] = set()
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
                        if before != after and not self._set_cell(key, column, after):
                            self.update_cell(key, column, after, update_width=True)
                            patched.discard(key)  # the whole table re-renders anyway
                        elif before != after:
                            patched.add(key)
                    updated = True
                self._shown[key] = cells
            if patched and not added:
                self._forget_rows(patched)
            self._order = list(wanted)
            if order != self._order or added:
                # Also after rows were added in order: what the sort that used to follow
                # every add did. Without it, lines drawn before the idle handler widens
                # the columns for the new rows could stay on screen, cut.
                self._reorder(self._order)
                reordered = order != self._order
            if keep is None and self._restore in wanted:
                keep, added = self._restore, True  # back where it was before set_columns
            if keep is not None and keep in wanted and (added or removed or reordered):
                index = self.get_row_index(keep)
                if index != self.cursor_row:
                    # A row that moved takes the cursor with it, into view.
                    scroll = keep == self._restore or reordered
                    self.move_cursor(row=index, animate=False, scroll=scroll)
            self._restore = None
        return added or removed or updated or reordered

    def _refill(self, wanted: dict[str, tuple[object, ...]], keep: str | None) -> None:
        """Most rows go (another page, another order): clear and add them all, which is
        several times cheaper than removing rows one by one (each remove_row walks every
        row and refreshes). The cursor stays on its row key if it stays, else on its row."""
        row = self.cursor_row
        with self.app.batch_update():
            self.clear()
            for key, cells in wanted.items():
                self.add_row(*cells, key=key)
            self._shown = dict(wanted)
            self._order = list(wanted)
            if keep in wanted:
                row = self.get_row_index(keep)
            if self.row_count:
                self.move_cursor(row=min(row, self.row_count - 1), animate=False)
        self._restore = None

    def _reorder(self, keys: list[str]) -> None:
        """Put the rows in this order (what DataTable.sort does, by key not by value)."""
        self._row_locations = TwoWayDict({RowKey(k): i for i, k in enumerate(keys)})
        self._update_count += 1
        self.refresh()

    # -- updating a row without re-rendering the whole table ------------------------------
    #
    # DataTable.update_cell bumps a counter that is part of every render cache key, so one
    # changed cell re-renders every visible line of the table (~40 ms for a screenful of
    # campaigns on a slow machine, at every refresh tick while a campaign runs). Here a
    # changed cell that fits its column drops only its own row's cache entries and
    # refreshes that row. Columns grow to fit, never shrink (no jitter, no re-measuring
    # of the column). Relies on DataTable internals (textual is pinned): when they are not
    # as expected, it falls back to update_cell.

    def _set_cell(self, key: str, column: str, value: object) -> bool:
        """Put a value in a cell without invalidating the table; False: use update_cell."""
        try:
            width = _cell_width(value)
            col = self.columns.get(ColumnKey(column))
            if width is None or col is None or width > col.content_width:
                return False
            row = self._data[RowKey(key)]
            column_key = ColumnKey(column)
            if column_key not in row:
                return False
            row[column_key] = value
        except (AttributeError, KeyError, TypeError):
            return False
        return True

    def _forget_rows(self, keys: set[str]) -> None:
        """Drop the cached renders of these rows and repaint them (see above)."""
        try:
            row_keys = {RowKey(k) for k in keys}
            indexes = {index for k in row_keys if (index := self._row_locations.get(k)) is not None}
            lines: set[int] = set()
            for index in indexes:
                region = self._get_row_region(index)
                lines.update(range(region.y, region.y + region.height))
            # Each cache has its own key type: one typed call per cache.
            _discard_keys(self._row_render_cache, 0, row_keys)
            _discard_keys(self._cell_render_cache, 0, row_keys)
            _discard_keys(self._row_renderable_cache, 1, indexes)
            _discard_keys(self._line_cache, 0, lines)
            for index in indexes:
                self.refresh_row(index)
        except (AttributeError, LookupError, TypeError):
            self._update_count += 1  # what update_cell does: everything renders again
            self.refresh()


def _discard_keys(cache: LRUCache[_Key, _Value], part: int, wanted: Container[object]) -> None:
    """Drop the entries of a DataTable render cache whose key's `part` is in `wanted`."""
    for cache_key in [k for k in cache.keys() if k[part] in wanted]:  # noqa: SIM118
        cache.discard(cache_key)


def _cell_width(value: object) -> int | None:
    if isinstance(value, Text):
        return value.cell_len if "\n" not in value.plain else None
    if isinstance(value, str):
        # DataTable renders a str cell as markup.
        text = Text.from_markup(value)
        return text.cell_len if "\n" not in text.plain else None
    return None
