"""A table that holds one page of a long list read in SQL (the campaigns, the opt-out
list): moving past its first or last row turns the page, so up/down walk through every
row; PgUp/PgDn turn a page at a time (within the last page they move the cursor as
DataTable does); g/G (Home/End) go to the first and the last row of all. The screen it
sits on does the reading (Pages)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from textual.binding import Binding

from waha_tui.tui.widgets.keyed_table import KeyedTable


@runtime_checkable
class Pages(Protocol):
    @property
    def turning(self) -> bool:
        """A page asked for is being read: its rows are on their way."""
        ...

    def turn_page(self, delta: int, *, at_end: bool = False) -> bool:
        """Read the page `delta` pages on (the cursor on its last row with `at_end`); False
        when there is no such page."""
        ...

    def go_to_end(self, *, last: bool) -> None: ...


class PagedTable(KeyedTable):
    BINDINGS = [
        Binding("j", "cursor_down", show=False),
        Binding("k", "cursor_up", show=False),
        Binding("g,home", "first_row", show=False),
        Binding("G,end", "last_row", show=False),
    ]

    def _pages(self) -> Pages | None:
        screen = self.screen
        return screen if isinstance(screen, Pages) else None

    def _turn(self, delta: int, *, at_end: bool = False) -> bool:
        pages = self._pages()
        return pages is not None and pages.turn_page(delta, at_end=at_end)

    def _turning(self) -> bool:
        """A key repeated at the page's edge while a page is read would turn a second."""
        pages = self._pages()
        return pages is not None and pages.turning

    def action_cursor_down(self) -> None:
        if self._turning():
            return
        if not (self.cursor_row >= self.row_count - 1 and self._turn(1)):
            super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self._turning():
            return
        if not (self.cursor_row <= 0 and self._turn(-1, at_end=True)):
            super().action_cursor_up()

    def action_page_down(self) -> None:
        if not self._turn(1):
            super().action_page_down()

    def action_page_up(self) -> None:
        if not self._turn(-1):
            super().action_page_up()

    def action_first_row(self) -> None:
        if (pages := self._pages()) is not None:
            pages.go_to_end(last=False)

    def action_last_row(self) -> None:
        if (pages := self._pages()) is not None:
            pages.go_to_end(last=True)


class Paging:
    """What a screen showing one page of a PagedTable does with its keys (Pages): turn a
    page, go to the first or the last row of all. The screen reads the pages: it says how
    many there are, which table, and how to ask for one (the cursor on its last row
    `at_end`); `page` is the one shown or asked for."""

    page: int

    @property
    def pages(self) -> int:
        raise NotImplementedError

    @property
    def turning(self) -> bool:
        raise NotImplementedError

    def paged_table(self) -> KeyedTable:
        raise NotImplementedError

    def ask_page(self, *, at_end: bool) -> None:
        raise NotImplementedError

    def turn_page(self, delta: int, *, at_end: bool = False) -> bool:
        """Show another page; the cursor goes to its first row (its last with `at_end`)
        once it is read. False when there is no such page."""
        page = max(0, min(self.pages - 1, self.page + delta))
        if page == self.page:
            return False
        self.page = page
        self.ask_page(at_end=at_end)
        return True

    def go_to_end(self, *, last: bool) -> None:
        """The first (or the last) row of all, under the screen's order and filter."""
        page = self.pages - 1 if last else 0
        table = self.paged_table()
        if page == self.page and not self.turning:
            if table.row_count:
                table.move_cursor(row=table.row_count - 1 if last else 0, animate=False)
            return
        self.page = page
        self.ask_page(at_end=last)
