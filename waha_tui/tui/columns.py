"""Which columns a table shows at a given width: by priority, never by scrolling sideways.

An operator at 80x24 over SSH must see, without a horizontal scroll, what matters: which
campaign, its state, how far it got. Wider terminals show more. Each column has a
priority (0: always) and a width; `fit` keeps the columns that fit, in priority order, and
gives what is left to the flexible ones (the reason where it fits, else the name). Text
longer than its column is cut with an ellipsis, never silently. Later columns (delivery
counts, what a campaign waits for) are added to the lists here, with their priority.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from rich.text import Text

CELL_PADDING = 2  # DataTable's cell_padding (1) on either side of every column


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # the least it is shown with
    priority: int  # 0: always shown; then lower numbers first
    grow_to: int = 0  # a flexible column takes what is left, up to this (0: fixed)
    # An extra is shown only with what is left once the flexible ones reached grow_to:
    # a whole reason is worth more than when a campaign started.
    extra: bool = False


@dataclass(frozen=True)
class Fitted:
    column: Column
    width: int

    @property
    def key(self) -> str:
        return self.column.key


def fit(columns: Sequence[Column], width: int) -> list[Fitted]:
    """The columns shown in `width` cells, in their declared order, with their widths."""
    chosen = [c for c in columns if c.priority == 0]
    used = sum(c.width + CELL_PADDING for c in chosen)
    by_priority = sorted((c for c in columns if c.priority > 0), key=lambda c: c.priority)
    for c in by_priority:
        if not c.extra and used + c.width + CELL_PADDING <= width:
            chosen.append(c)
            used += c.width + CELL_PADDING
    widths = {c.key: c.width for c in chosen}
    left = max(width - used, 0)
    # What is left goes to the last flexible column shown (the reason where it fits, else
    # the name), up to its grow_to; then to the others; then to the extras.
    flexible = [c for c in columns if c.grow_to and c.key in widths]
    for c in reversed(flexible):
        more = min(left, max(c.grow_to - c.width, 0))
        widths[c.key] += more
        left -= more
    for c in by_priority:
        if c.extra and c.width + CELL_PADDING <= left:
            widths[c.key] = c.width
            left -= c.width + CELL_PADDING
    return [Fitted(c, widths[c.key]) for c in columns if c.key in widths]


def cut(cell: object, width: int) -> object:
    """A cell no wider than `width`, an ellipsis where it was cut."""
    if isinstance(cell, Text):
        if cell.cell_len <= width:
            return cell
        cut_text = cell.copy()
        cut_text.truncate(width, overflow="ellipsis")
        return cut_text
    if isinstance(cell, str) and len(cell) > width:
        return cell[: max(width - 1, 0)] + "…"
    return cell


CAMPAIGNS = [
    Column("id", "ID", 4, 0),
    Column("name", "Name", 20, 0, grow_to=40),
    Column("status", "Status", 11, 0),
    Column("progress", "Progress", 16, 0),
    Column("eta", "ETA", 7, 1),  # what is left takes ~this long (pacing.Estimate)
    Column("due", "Next in", 7, 1),  # counting down to the next message
    Column("failed", "Failed", 6, 2),
    # What WhatsApp said after the sends, as shares of those sent (format.share).
    Column("delivered", "Dlvd", 4, 3),
    Column("read", "Read", 4, 4),
    Column("replied", "Repl", 4, 5),
    Column("rate", "Rate", 8, 7),  # messages a minute
    Column("session", "Session", 10, 8),
    Column("started", "Started", 11, 9, extra=True),
    Column("ended", "Ended", 11, 10, extra=True),
    Column("scheduled", "Scheduled", 11, 11, extra=True),
    Column("next", "Next #", 6, 12, extra=True),  # the next recipient's position, 1-based
    # Shown whole under the table for the highlighted campaign: the funnel comes first.
    Column("reason", "Reason", 20, 6, grow_to=80),
]

# At 80 columns: position, phone, name, status, sent time and the start of the error (the
# highlighted one's is shown whole under the table); wider, WAHA's message id too.
RECIPIENTS = [
    Column("pos", "#", 2, 0),  # as wide as the campaign's last position (recipient_columns)
    Column("phone", "Phone", 13, 0),
    Column("name", "Name", 10, 0, grow_to=24),
    Column("status", "Status", 7, 0),  # a sent one's fate once acks came: ✓✓ read, replied
    Column("sent", "Sent", 11, 0),  # format.sent_time: 11 cells at most
    Column("message_id", "WAHA message id", 16, 2, grow_to=40),
    Column("error", "Error", 16, 1, grow_to=200),
]


# A campaign's history (h in details): the detail takes what is left, cut with …; the
# highlighted entry's is shown whole under the table.
HISTORY = [
    Column("pos", "#", 3, 0),
    Column("at", "Time", 14, 0),
    Column("kind", "Event", 9, 0),
    Column("by", "By", 12, 1, grow_to=24),
    Column("detail", "Detail", 20, 0, grow_to=120),  # then who did it, whole
]

# The opt-out list (O): number, when, how (reply, import, hand) and the campaign answered
# fit 80 columns; why takes what is left, cut with … (the highlighted one's is whole below).
OPTOUTS = [
    Column("phone", "Number", 15, 0),  # phones.normalise_phone: at most 15 digits
    Column("added", "When", 11, 0),  # format.sent_time: 11 cells at most
    Column("source", "How", 6, 0),
    Column("campaign", "Campaign", 8, 1),
    Column("reason", "Why", 16, 0, grow_to=200),
]


def recipient_columns(total: int) -> list[Column]:
    """RECIPIENTS, the position as wide as a campaign of `total` recipients needs: a
    million-recipient campaign's 1000000 is never cut, a short one's # column stays narrow."""
    digits = len(str(max(total, 1)))
    return [replace(c, width=max(c.width, digits)) if c.key == "pos" else c for c in RECIPIENTS]


@dataclass(frozen=True)
class Sort:
    """An order of the campaign table: `s` steps through SORTS, `S` reverses."""

    stored: str  # the stored column the database sorts by (models.CAMPAIGN_SORTS)
    label: str  # as the page line names it
    column: str | None  # the table column whose header shows the arrow (None: no column)
    descending: bool = True  # which way first: newest, most, latest first


SORTS = [
    Sort("id", "created", "id"),  # the default: newest first, so a new campaign is on top
    Sort("name", "name", "name", descending=False),
    Sort("status", "status", "status", descending=False),
    Sort("next_index", "progress", "progress"),
    Sort("failed", "failed", "failed"),
    Sort("session", "session", "session", descending=False),
    Sort("scheduled_at", "scheduled", "scheduled"),
    Sort("started_at", "started", "started"),
    Sort("completed_at", "finished", "ended"),
    Sort("total", "recipients", None),
    Sort("updated_at", "last change", None),
]


def sorted_label(label: str, width: int, descending: bool) -> str:
    """A column's header with the sort's arrow, within its width."""
    arrow = "↓" if descending else "↑"
    if len(label) + 2 <= width:
        return f"{label} {arrow}"
    return label[: max(width - 1, 0)] + arrow
