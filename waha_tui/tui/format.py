"""How campaign values look in cells: readable without colour, coloured when there is some."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from waha_tui.history import Kind, by
from waha_tui.models import Campaign, CampaignEventRow, Recipient
from waha_tui.printable import printable
from waha_tui.status import CampaignStatus, RecipientStatus

S = CampaignStatus
RS = RecipientStatus

# A symbol and a word, so the status reads the same in 16 colours, with NO_COLOR, or in tmux.
STATUS_LOOK: dict[str, tuple[str, str]] = {
    S.SCHEDULED: ("○", "cyan"),
    S.RUNNING: ("●", "bold green"),
    S.PAUSED: ("‖", "bold yellow"),
    S.COMPLETED: ("✓", "green"),
    S.FAILED: ("✗", "bold red"),
    S.CANCELLED: ("–", "dim"),
    S.DELETING: ("×", "dim red"),
}
RECIPIENT_LOOK: dict[str, str] = {
    RS.PENDING: "dim",
    RS.SENDING: "bold cyan",
    RS.SENT: "green",
    RS.FAILED: "red",
    RS.UNKNOWN: "bold magenta",
    RS.SKIPPED: "dim",
}
EVENT_LOOK: dict[str, str] = {
    Kind.WAITING: "cyan",
    Kind.PAUSED: "yellow",
    Kind.FAILED: "bold red",
    Kind.COMPLETED: "green",
    Kind.CANCELLED: "dim",
}
BAR_WIDTH = 8
COMPACT_BAR = 6
# A delete under way, or one cut short (its process died): deleting it again finishes it.
DELETING_NOTE = "being deleted; if it stays, delete it again to finish"


def status_cell(status: str) -> Text:
    symbol, style = STATUS_LOOK.get(status, ("?", ""))
    return Text(f"{symbol} {status}", style=style)


def recipient_status_cell(status: str) -> Text:
    return Text(status, style=RECIPIENT_LOOK.get(status, ""))


def progress_cell(c: Campaign) -> Text:
    done = c.next_index
    total = max(c.total, 1)
    filled = round(BAR_WIDTH * min(done, total) / total)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    if c.status == S.RUNNING and done < c.total:
        label = f"sending {done + 1} of {c.total}"
    else:
        label = f"{c.sent}/{c.total} sent"
    text = Text(bar, style="green" if c.status != S.FAILED else "red")
    text.append(f" {label}")
    return text


def count(n: int) -> str:
    """A count in few characters: 999, 12,345 as 12.3k, 1.2M."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def progress_compact(c: Campaign) -> Text:
    """The table's progress: a short bar and processed/total (the row line says more)."""
    done, total = min(c.next_index, c.total), max(c.total, 1)
    filled = round(COMPACT_BAR * done / total)
    text = Text("█" * filled + "░" * (COMPACT_BAR - filled))
    text.stylize("green" if c.status != S.FAILED else "red")
    text.append(f" {count(done)}/{count(c.total)}")
    return text


def shown(text: str | None, style: str = "") -> Text:
    """Text from outside (names, CSV values, WAHA's words) as a cell or a line: plain text,
    never markup, its control characters made visible (the display rule, printable)."""
    return Text(printable(text or ""), style=style)


def local_time(value: datetime | None, fmt: str = "%m-%d %H:%M") -> str:
    """A time in the operator's zone; the short form gains the year outside this year."""
    if value is None:
        return "-"
    local = value.astimezone()
    if "%Y" not in fmt and local.year != datetime.now(local.tzinfo).year:
        fmt = "%Y-" + fmt
    return local.strftime(fmt)


def now() -> datetime:
    """What "today" is for the cells (snapshot tests freeze it)."""
    return datetime.now(UTC)


def sent_time(value: datetime | None) -> str:
    """When a recipient was sent, in local time and at most 11 cells: 14:03:07 today,
    11-28 14:03 this year, 2025-11-28 before ("" when it was not)."""
    if value is None:
        return ""
    local, today = value.astimezone(), now().astimezone()
    if local.date() == today.date():
        return local.strftime("%H:%M:%S")
    return local.strftime("%m-%d %H:%M" if local.year == today.year else "%Y-%m-%d")


def waiting_cell(c: Campaign) -> Text:
    """ "waiting for session 'x' (STARTING) since 12:03" while its run waits ("" else)."""
    if c.status != S.RUNNING or not c.waiting_for:
        return Text("")
    since = f" since {local_time(c.waiting_since, '%H:%M')}" if c.waiting_since else ""
    return shown(f"{c.waiting_for}{since}", style="cyan")


def reason_cell(c: Campaign) -> Text:
    if c.status == S.DELETING:
        return Text(DELETING_NOTE, style="red")
    waiting = waiting_cell(c)
    if waiting.plain:  # what holds it up now comes before the last error
        return waiting
    if c.status == S.PAUSED and c.pause_reason:
        return shown(c.pause_reason, style="yellow")
    if c.last_error and c.status in (S.FAILED, S.RUNNING, S.PAUSED):
        return shown(c.last_error, style="red")
    if c.unknown:
        return Text(f"{c.unknown} unknown: may have been delivered", style="magenta")
    return Text("")


def campaign_cells(c: Campaign) -> dict[str, object]:
    """Every cell a campaign's row may show, by column key (tui/columns.py chooses which
    fit); names are Text, never parsed as markup."""
    return {
        "id": str(c.id),
        "name": shown(c.name),
        "session": shown(c.session),
        "status": status_cell(c.status),
        "progress": progress_compact(c),
        "failed": Text(str(c.failed), style="red" if c.failed else ""),
        "next": str(c.next_index + 1) if c.next_index < c.total else "-",
        "scheduled": local_time(c.scheduled_at),
        "reason": reason_cell(c),
    }


def recipient_cells(r: Recipient) -> dict[str, object]:
    """Every cell a recipient's row may show, by column key (tui/columns.py chooses)."""
    return {
        "pos": str(r.position + 1),
        "phone": shown(r.phone),
        "name": shown(r.name),
        "status": recipient_status_cell(r.status),
        "sent": sent_time(r.sent_at),
        "message_id": shown(r.message_id),
        "error": shown(r.error, style="red" if r.error else ""),
    }


def event_cells(number: int, e: CampaignEventRow) -> tuple[object, ...]:
    """One entry of a campaign's history; its detail (WAHA's words, say) shown as data."""
    return (
        str(number),
        local_time(e.at, "%m-%d %H:%M:%S"),
        Text(e.kind, style=EVENT_LOOK.get(e.kind, "")),
        shown(by(e)),
        shown(e.detail),
    )
