"""How campaign values look in cells: readable without colour, coloured when there is some."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from waha_tui.history import Kind, by
from waha_tui.models import Campaign, CampaignEventRow, Recipient, utcnow
from waha_tui.pacing import WINDOW_WAIT, CapUse, Estimate, Pacing, SendWindow
from waha_tui.printable import printable
from waha_tui.spread import Spread
from waha_tui.status import FINISHED, CampaignStatus, RecipientStatus
from waha_tui.waha import FeedState
from waha_tui.waha.envelope import Ack

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


def done_of(c: Any) -> int:
    """How many recipients are behind it: its next_index, or for a campaign sending
    through several sessions (whose faster numbers run ahead of next_index) how many are
    settled, from its counters."""
    done: int = c.sent + c.failed + c.unknown + c.skipped if c.sessions else c.next_index
    return min(done, int(c.total))


def progress_cell(c: Campaign) -> Text:
    done = done_of(c)
    total = max(c.total, 1)
    filled = round(BAR_WIDTH * min(done, total) / total)
    bar = "█" * filled + "░" * (BAR_WIDTH - filled)
    if c.status == S.RUNNING and c.sessions and done < c.total:
        label = f"{done} of {c.total} done"
    elif c.status == S.RUNNING and done < c.total:
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
    done, total = done_of(c), max(c.total, 1)
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


def campaign_cells(
    c: Campaign, now: datetime | None = None, caps: Mapping[str, CapUse] | None = None
) -> dict[str, object]:
    """Every cell a campaign's row may show, by column key (tui/columns.py chooses which
    fit); names are Text, never parsed as markup. `now`: for the countdowns; `caps`: the
    caps of its sessions' numbers, by session, for the estimate."""
    now = now or utcnow()
    return {
        "id": str(c.id),
        "name": shown(c.name),
        "session": session_cell(c),
        "status": status_cell(c.status),
        "progress": progress_compact(c),
        "failed": Text(str(c.failed), style="red" if c.failed else ""),
        "delivered": share(c.delivered, c.sent),
        "read": share(c.read, c.sent),
        "replied": share(c.replied, c.sent, style="bold"),
        "eta": eta_cell(c, now, caps),
        "due": due_cell(c, now),
        "rate": rate_cell(c),
        "started": local_time(c.started_at),
        "ended": local_time(c.completed_at),
        "next": str(c.next_index + 1) if c.next_index < c.total else "-",
        "scheduled": local_time(c.scheduled_at),
        "reason": reason_cell(c),
    }


# -- rate and time -------------------------------------------------------------------------

ENDED = FINISHED | {S.DELETING}  # nothing more will be sent: no estimate, no countdown


def duration(seconds: float) -> str:
    """A duration in at most 6 characters, rounded up to its last unit (a countdown never
    shows less than is left): 43s, 5m05s, 2h05m, 3d04h."""
    s = max(math.ceil(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    m = math.ceil(s / 60)
    if m < 24 * 60:
        return f"{m // 60}h{m % 60:02d}m"
    h = math.ceil(s / 3600)
    if h < 100 * 24:
        return f"{h // 24}d{h % 24:02d}h"
    return f"{math.ceil(h / 24)}d"


def rough(seconds: float) -> str:
    """An estimate's duration, no finer than it is: <1m, ~25m, ~2h05m, ~3d04h."""
    if seconds < 60:
        return "<1m"
    if seconds < 3600:
        return f"~{math.ceil(seconds / 60)}m"
    return "~" + duration(seconds)


def ticks(c: Any) -> bool:
    """Whether the campaign's row changes with the clock alone (a countdown is on it)."""
    return c.status in (S.RUNNING, S.SCHEDULED)


def next_in(c: Any, now: datetime) -> float | None:
    """Seconds until a Running campaign's next message, while it waits between two or for
    its send window to open (None: it is sending, or waits for something with no time)."""
    due = c.next_send_at
    if c.status != S.RUNNING or due is None:
        return None
    left = (due - now).total_seconds()
    return left if left > 0 else None


def session_cell(c: Any) -> Text:
    """Its session, or its first and how many more: "sales +2"."""
    names = Spread.of(c).names
    return shown(names[0] if len(names) == 1 else f"{names[0]} +{len(names) - 1}")


def estimate(c: Any, now: datetime, caps: Mapping[str, CapUse] | None = None) -> Estimate | None:
    """How fast and how long, from the campaign's pacing and its numbers' caps (`caps`:
    by session, read with the WAHA sessions, `CapsService.for_sessions`); None once it
    ended."""
    if c.status in ENDED:
        return None
    left = max(c.total - done_of(c), 0)
    sessions = Spread.of(c).sessions
    caps = caps or {}
    return Pacing.of(c).estimate(
        left,
        next_in=next_in(c, now),
        caps=caps.get(sessions[0][0]),
        now=now,
        lanes=tuple(w for _, w in sessions),
        lane_caps=tuple(caps.get(name) for name, _ in sessions),
    )


def eta_cell(c: Any, now: datetime, caps: Mapping[str, CapUse] | None = None) -> Text:
    """The time what is left takes: "~2h05m" (an estimate, hence the tilde)."""
    est = estimate(c, now, caps)
    if est is None or c.next_index >= c.total:
        return Text("-", style="dim")
    return Text(rough(est.seconds_left))


def due_cell(c: Any, now: datetime) -> Text:
    """When the next message goes: a countdown while Running waits between two or for its
    send window ("9h05m", the line under the table says until when), "now" while it
    sends, "wait" while it waits for its session; when a Scheduled one starts."""
    if c.status == S.RUNNING:
        left = next_in(c, now)
        if c.waiting_for:
            # A wait with a known end (the window) counts down; one without, "wait".
            if left is not None and str(c.waiting_for).startswith(WINDOW_WAIT):
                return Text(duration(left), style="cyan")
            return Text("wait", style="cyan")
        return Text(duration(left)) if left is not None else Text("now", style="bold green")
    if c.status == S.SCHEDULED:
        at = c.scheduled_at
        if at is None or at <= now:
            return Text("due", style="cyan")
        return Text(duration((at - now).total_seconds()), style="cyan")
    return Text("-", style="dim")


def window_cell(c: Any) -> Text:
    """ "09:00-20:00 mon-fri (Europe/Berlin)", or "any time"."""
    window = SendWindow.of(c)
    return shown(window.describe()) if window else Text("any time", style="dim")


def breaks_cell(c: Any) -> Text:
    """ "600-1200 s every 50", or "none"."""
    if not c.break_every:
        return Text("none", style="dim")
    low, high = Pacing.of(c).break_range
    return Text(f"{low:g}-{high:g} s every {c.break_every}")


def per_minute(rate: float) -> str:
    """Messages a minute in at most 8 characters: 1.3/min, 120/min, 4.6k/min."""
    if rate < 10:
        return f"{rate:.1f}/min"
    if rate < 999.5:
        return f"{rate:.0f}/min"
    if rate < 9_950:
        return f"{rate / 1000:.1f}k/min"
    if rate < 999_500:
        return f"{rate / 1000:.0f}k/min"
    return ">1M/min"


def average_rate(c: Any) -> float | None:
    """Messages a minute an ended campaign really sent, start to end (pauses included)."""
    if c.started_at is None or c.completed_at is None:
        return None
    minutes = (c.completed_at - c.started_at).total_seconds() / 60
    processed = c.sent + c.failed + c.unknown
    return processed / minutes if minutes > 0 and processed else None


def rate_cell(c: Any) -> Text:
    """Messages a minute: what the pacing gives (dim: not sending now), or, once ended,
    what it really averaged."""
    if c.status in ENDED:
        rate = average_rate(c)
        return Text(per_minute(rate)) if rate is not None else Text("-", style="dim")
    est = estimate(c, utcnow())  # the pacing's rate (every session's, several together)
    rate = est.per_minute if est is not None else 60.0 / Pacing.of(c).mean_gap()
    return Text(per_minute(rate), style="" if c.status == S.RUNNING else "dim")


# -- what WhatsApp said after the sends -------------------------------------------------

# WhatsApp's ticks, and a word where a tick says nothing without colour.
ACK_LOOK: dict[int, tuple[str, str]] = {
    Ack.ERROR: ("error", "red"),
    Ack.PENDING: ("sent", "green"),  # WhatsApp's clock: nothing more than sent yet
    Ack.SERVER: ("✓", ""),
    Ack.DEVICE: ("✓✓", ""),
    Ack.READ: ("✓✓ read", "cyan"),
    Ack.PLAYED: ("✓✓ read", "cyan"),
}


def share(n: int, of: int, style: str = "") -> Text:
    """n as a whole percentage of `of` (the sent), in 4 cells: "92%", "100%", "-"."""
    if of <= 0:
        return Text("-", style="dim")
    pct = min(round(100 * n / of), 100)
    if n and not pct:
        return Text("<1%", style=style)
    return Text(f"{pct}%", style=style if n else "dim")


def recipient_fate_cell(r: Recipient) -> Text:
    """A recipient's status in 7 cells; a sent one's, once WhatsApp said more, its fate:
    the highest ack (✓ server, ✓✓ phone, ✓✓ read), "replied", or "unconf." (no SERVER or
    DEVICE ack in time while the event feed was live). The line under the table says it
    in words, with the times."""
    if r.status != RS.SENT or (r.ack is None and r.replied_at is None and not r.unconfirmed):
        return recipient_status_cell(r.status)
    if r.replied_at is not None:
        return Text("replied", style="bold green")
    if r.unconfirmed:
        return Text("unconf.", style="yellow")  # the line under the table says it whole
    if r.ack is None:
        return recipient_status_cell(r.status)
    word, style = ACK_LOOK.get(r.ack, (str(r.ack), ""))
    return Text(word, style=style)


def recipient_line(r: Recipient) -> Text:
    """The highlighted recipient, whole, under its table: its error, or what WhatsApp said
    after the send and when (the table's cells are cut or only ticks); then the text it
    was (or is to be) sent, once picked."""
    line = _recipient_said(r)
    if r.session:  # a campaign with several numbers: which one it went (goes) from
        if not line.plain:
            line = Text(f"#{r.position + 1} ", style="bold")
        else:
            line.append(" · ")
        line.append_text(shown(f"via {r.session}", style="dim"))
    if r.text:
        if not line.plain:
            line = Text(f"#{r.position + 1} ", style="bold")
        else:
            line.append("\n")
        line.append("text: ", style="dim")
        line.append_text(shown(" ⏎ ".join(r.text.splitlines())))
    return line


def _recipient_said(r: Recipient) -> Text:
    text = Text(f"#{r.position + 1} ", style="bold")
    if r.error:
        return text.append_text(shown(r.error, style="red"))
    said: list[Text] = []
    fmt = "%m-%d %H:%M:%S"
    if r.delivered_at is not None:
        said.append(Text(f"delivered {local_time(r.delivered_at, fmt)}"))
    elif r.ack == Ack.SERVER:
        said.append(Text("reached WhatsApp's server, not the phone yet"))
    if r.read_at is not None:
        said.append(Text(f"read {local_time(r.read_at, fmt)}", style="cyan"))
    if r.unconfirmed:
        said.append(
            Text("not confirmed: WhatsApp never acknowledged the send in time", style="yellow")
        )
    if r.replied_at is not None:
        reply = Text(f"replied {local_time(r.replied_at, fmt)}: ", style="bold green")
        said.append(reply.append_text(shown(r.reply_text or "")))
    if not said:
        return Text("")
    return text.append_text(Text(" · ").join(said))


def feed_cell(state: FeedState) -> Text:
    """The event feed in the WAHA line: acks and replies come in, or they do not now."""
    if state.phase == "live":
        return Text("events live", style="green")
    if state.phase == "connecting":
        return Text("events connecting", style="cyan")
    # Down or refused: the line has room for the gist; the log has the reason.
    return Text(
        "events refused" if state.phase == "refused" else "events down", style="bold yellow"
    )


FUNNEL_BAR = 10


def funnel_cell(n: int, of: int, style: str) -> Text:
    """One step of the funnel sent -> delivered -> read -> replied: a bar of its share of
    the sent, the count and the share."""
    filled = round(FUNNEL_BAR * min(n, of) / of) if of > 0 else 0
    text = Text("█" * filled, style=style)
    text.append("░" * (FUNNEL_BAR - filled), style="dim")
    text.append(f" {n}")
    if of > 0:
        text.append(f" {share(n, of).plain}", style="dim")
    return text


def recipient_cells(r: Recipient) -> dict[str, object]:
    """Every cell a recipient's row may show, by column key (tui/columns.py chooses)."""
    return {
        "pos": str(r.position + 1),
        "phone": shown(r.phone),
        "name": shown(r.name),
        "status": recipient_fate_cell(r),
        "sent": sent_time(r.sent_at),
        "message_id": shown(r.message_id),
        "error": shown(r.error, style="red" if r.error else ""),
    }


def event_cells(number: int, e: CampaignEventRow) -> dict[str, object]:
    """One entry of a campaign's history, by column key; its detail (WAHA's words, say)
    shown as data."""
    return {
        "pos": str(number),
        "at": local_time(e.at, "%m-%d %H:%M:%S"),
        "kind": Text(e.kind, style=EVENT_LOOK.get(e.kind, "")),
        "by": shown(by(e)),
        "detail": shown(e.detail),
    }
