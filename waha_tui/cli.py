"""The `waha-tui` command line (Typer). Exit codes: 0 done, 1 error, 2 usage, 3 paused."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TextIO, TypeVar

import typer

from waha_tui import events as ev
from waha_tui import logs
from waha_tui.config import Settings
from waha_tui.errors import InvalidInput, UserError
from waha_tui.history import by
from waha_tui.models import MAX_ID, Campaign, CampaignEventRow, OptOut, Recipient
from waha_tui.pacing import Pacing, SendWindow
from waha_tui.printable import printable
from waha_tui.secret import redact, url_password
from waha_tui.spread import Spread, sessions_named
from waha_tui.status import CampaignStatus
from waha_tui.stopping import Stopper
from waha_tui.waha.envelope import Ack

if TYPE_CHECKING:
    from waha_tui.pacing import CapUse
    from waha_tui.service import CampaignService

log = logging.getLogger(__name__)

T = TypeVar("T")
EXIT_PAUSED = 3

app = typer.Typer(
    name="waha-tui",
    help="WhatsApp campaigns through a self-hosted WAHA server, from the terminal.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # \b keeps click from breaking the path at its hyphens.
    epilog=f"\b\nThe dashboard logs to {logs.default_log_file()}\n(a rotating file "
    "created 0600; --log-file or WAHA_TUI_LOG_FILE moves it).\nThe other commands log to "
    "stderr.",
)
contacts_app = typer.Typer(help="Contact lists imported from CSV files.", no_args_is_help=True)
template_app = typer.Typer(help="Message templates.", no_args_is_help=True)
campaign_app = typer.Typer(
    help="Create, inspect, resume, pause, cancel, edit, clone and delete campaigns.",
    no_args_is_help=True,
)
app.add_typer(contacts_app, name="contacts")
app.add_typer(template_app, name="template")
app.add_typer(campaign_app, name="campaign")
optout_app = typer.Typer(
    help="The opt-out list: numbers never messaged again, by any campaign.", no_args_is_help=True
)
app.add_typer(optout_app, name="optout")
caps_app = typer.Typer(
    help="Per-number caps: messages an hour and a day from one WhatsApp number, across "
    "every campaign, session and host, and a new number's warm-up.",
    no_args_is_help=True,
)
app.add_typer(caps_app, name="caps")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"waha-tui {version('waha-tui')}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="SQLite file, or postgresql+psycopg://user@host/db (env WAHA_TUI_DB). A "
            "password in this flag is visible to every local user in the process list: give "
            "it in WAHA_TUI_DB or ~/.pgpass.",
            show_default=False,
        ),
    ] = None,
    waha_url: Annotated[
        str | None, typer.Option("--waha-url", help="WAHA base URL (env WAHA_URL).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            help="WAHA API key (env WAHA_API_KEY). Visible to every local user in the "
            "process list: prefer --api-key-file.",
            show_default=False,
        ),
    ] = None,
    api_key_file: Annotated[
        str | None,
        typer.Option(
            "--api-key-file",
            help="Read the WAHA API key from this file (env WAHA_API_KEY_FILE), e.g. a "
            "systemd credential; a trailing newline is not part of the key.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (env WAHA_TUI_LOG_LEVEL; default info for "
            "the dashboard, run and simulator, warning for the other commands).",
            show_default=False,
        ),
    ] = None,
    log_file: Annotated[
        str | None,
        typer.Option(
            "--log-file",
            help="The dashboard's log file, rotated, created 0600 (env WAHA_TUI_LOG_FILE; "
            "default: below).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
        ),
    ] = False,
) -> None:
    """With no command: open the dashboard."""
    try:
        ctx.obj = Settings.resolve(db, waha_url, api_key, api_key_file)
    except UserError as exc:
        report(exc)
        raise typer.Exit(1) from None
    _start_logging(ctx.invoked_subcommand, log_level, log_file, ctx.obj)
    if ctx.invoked_subcommand is None:
        from waha_tui.tui.app import run_dashboard

        run_dashboard(ctx.obj)


def say(text: str, *, err: bool = False) -> None:
    """Human output. Text from outside (names, CSV values, WAHA's words) is shown, never
    obeyed by the terminal: the one display rule, `printable`."""
    typer.echo(printable(text, multiline=True), err=err)


def row(*fields: object) -> str:
    """A tab-separated line whose every field stays on it."""
    return "\t".join(printable(str(field)) for field in fields)


# Commands that keep running: what they do is logged at info. The dashboard's go to a file.
LONG_RUNNING = frozenset({"run", "simulator", "webhook"})
DASHBOARD = frozenset({None, "demo"})


def _start_logging(
    command: str | None, level: str | None, file: str | None, settings: Settings
) -> None:
    dashboard = command in DASHBOARD
    default = logging.INFO if dashboard or command in LONG_RUNNING else logging.WARNING
    try:
        chosen = logs.parse_level(level, default)
    except UserError as exc:
        fail(str(exc), 2)
    secrets = [
        settings.api_key.reveal() if settings.api_key else None,
        url_password(settings.db),
        url_password(settings.waha_url),
    ]
    logs.configure(level=chosen, file=logs.log_file(file) if dashboard else None, secrets=secrets)


def fail(message: str, code: int = 1) -> NoReturn:
    say(f"error: {message}", err=True)
    raise typer.Exit(code)


def report(exc: UserError) -> None:
    """The error on stderr: one line, or one line per field of refused input."""
    lines = [e.message for e in exc.errors] if isinstance(exc, InvalidInput) else [str(exc)]
    for line in lines:
        say(f"error: {line}", err=True)


def _settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, Settings)
    return obj


def _with_service(ctx: typer.Context, fn: Callable[[CampaignService], Coroutine[Any, Any, T]]) -> T:
    """Open the store and WAHA client, run `fn(service)`, always close them."""
    from waha_tui.service import CampaignService

    async def main() -> T:
        service = CampaignService.open(_settings(ctx))
        try:
            return await fn(service)
        finally:
            await service.aclose()

    try:
        return asyncio.run(main())
    except UserError as exc:
        report(exc)
        raise typer.Exit(1) from None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def campaign_dict(c: Campaign) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status,
        "session": c.session,
        # Every session it sends through, with its weight ([[name, weight], ...]).
        "sessions": [list(pair) for pair in Spread.of(c).sessions],
        "total": c.total,
        "sent": c.sent,
        "failed": c.failed,
        "unknown": c.unknown,
        "skipped": c.skipped,
        # What WhatsApp said after the sends (recipients counted once each).
        "delivered": c.delivered,
        "read": c.read,
        "replied": c.replied,
        "unconfirmed": c.unconfirmed,
        "next_index": c.next_index,
        "scheduled_at": _iso(c.scheduled_at),
        "created_at": _iso(c.created_at),
        "created_by": c.created_by,
        "started_at": _iso(c.started_at),
        "completed_at": _iso(c.completed_at),
        "pause_reason": c.pause_reason,
        "waiting_for": c.waiting_for,
        "waiting_since": _iso(c.waiting_since),
        "last_error": c.last_error,
        "list": c.list_name,
        "image": c.image_path,
        "delay": [c.delay_min, c.delay_max],
        # When it sends (null: any time, every day) and in which zone.
        "window": c.send_window,
        "days": c.window_days,
        "timezone": c.timezone,
        # A long break after every break_every messages, its length drawn from the range.
        "break_every": c.break_every,
        "break": list(Pacing.of(c).break_range),
        # When the next message is due while the run waits (a delay, the window).
        "next_send_at": _iso(c.next_send_at) if c.status == CampaignStatus.RUNNING else None,
        "auto_resume": c.auto_resume,
        "check_numbers": c.check_numbers,
        "message": c.template_text,
        # The other texts (the message is variant 0); each recipient gets one (its "text").
        "variants": list(c.variants or []),
    }


def waiting_text(c: Campaign) -> str | None:
    """ "waiting for session 'x' (STARTING) since 12:03" while its run waits, else None."""
    if c.status != CampaignStatus.RUNNING or not c.waiting_for:
        return None
    since = f" since {c.waiting_since.astimezone():%H:%M}" if c.waiting_since else ""
    return f"{c.waiting_for}{since}"


def recipient_dict(r: Recipient) -> dict[str, Any]:
    return {
        "position": r.position,
        "phone": r.phone,
        "chat_id": r.chat_id,
        "name": r.name,
        "status": r.status,
        "message_id": r.message_id,
        "error": r.error,
        "attempts": r.attempts,
        "sent_at": _iso(r.sent_at),
        # The highest ack (-1 ERROR, 0 PENDING, 1 SERVER, 2 DEVICE, 3 READ, 4 PLAYED; null:
        # none yet), and when it was delivered, read, answered.
        "ack": r.ack,
        "ack_name": Ack(r.ack).name if r.ack is not None else None,
        "delivered_at": _iso(r.delivered_at),
        "read_at": _iso(r.read_at),
        "unconfirmed": bool(r.unconfirmed),
        "replied_at": _iso(r.replied_at),
        "reply_text": r.reply_text,
        "checked_at": _iso(r.checked_at),
        # The text picked for it, stored before its first send (null: not picked yet).
        "text": r.text,
        # The session it went from, fixed at its first attempt (null: not attempted yet,
        # or its campaign's one session).
        "session": r.session,
    }


def event_dict(e: CampaignEventRow) -> dict[str, Any]:
    return {
        "at": _iso(e.at),
        "kind": e.kind,
        "detail": e.detail,
        "user": e.os_user,
        "host": e.host,
        "pid": e.pid,
    }


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))  # faithful: JSON escapes


def _local(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M") if value else "-"


# -- contacts ----------------------------------------------------------------------------


@contacts_app.command("import")
def contacts_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="CSV file with a header row and a phone column.")],
    list_name: Annotated[str, typer.Option("--list", help="Name of the new contact list.")],
    country: Annotated[
        str | None, typer.Option("--country", help="Country (e.g. DE) for national numbers.")
    ] = None,
) -> None:
    """Import a CSV file as a contact list."""

    async def go(service: CampaignService) -> None:
        _list_id, result = await service.import_contacts(file, list_name, country=country)
        for phone, lines in result.duplicates:
            say(f"duplicate {phone} on lines {', '.join(map(str, lines))}: kept once", err=True)
        say(f"imported {len(result.contacts)} contacts into list '{list_name}'")

    _with_service(ctx, go)


@contacts_app.command("lists")
def contacts_lists(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the contact lists."""

    async def go(service: CampaignService) -> None:
        lists = await service.lists()
        if as_json:
            _print_json(
                [
                    {"name": x.name, "contacts": x.contact_count, "created_at": _iso(x.created_at)}
                    for x in lists
                ]
            )
            return
        for x in lists:
            say(row(x.name, f"{x.contact_count} contacts", _local(x.created_at)))

    _with_service(ctx, go)


@contacts_app.command("delete-list")
def contacts_delete_list(ctx: typer.Context, name: str) -> None:
    """Delete a contact list (campaigns keep their own copy of its contacts)."""

    async def go(service: CampaignService) -> None:
        await service.delete_list(name)
        say(f"deleted list '{name}'")

    _with_service(ctx, go)


# -- templates ---------------------------------------------------------------------------


@template_app.command("add")
def template_add(
    ctx: typer.Context,
    name: str,
    text: Annotated[str, typer.Option("--text", help="Message text; {name} and CSV columns.")],
) -> None:
    """Save a message template."""

    async def go(service: CampaignService) -> None:
        await service.add_template(name, text)
        say(f"saved template '{name}'")

    _with_service(ctx, go)


@template_app.command("list")
def template_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the templates."""

    async def go(service: CampaignService) -> None:
        items = await service.templates()
        if as_json:
            _print_json([{"name": t.name, "text": t.text} for t in items])
            return
        for t in items:
            say(row(t.name, " ".join(t.text.split())[:60]))

    _with_service(ctx, go)


# -- campaigns ---------------------------------------------------------------------------


# A negative id ("-3") would otherwise be taken for an unknown option: usage error, exit 2.
ID_COMMAND: dict[str, Any] = {"ignore_unknown_options": True}


def _campaign_id(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        fail(f"campaign id {raw!r} is not a number")
    if value <= 0:
        fail(f"campaign id {raw!r} must be a positive number")
    if value > MAX_ID:
        fail(f"campaign id {raw!r} is too large: no campaign has an id above {MAX_ID}")
    return value


@campaign_app.command("create")
def campaign_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Campaign name.")],
    contacts: Annotated[str | None, typer.Option("--contacts", help="CSV file.")] = None,
    list_name: Annotated[str | None, typer.Option("--list", help="Imported list.")] = None,
    message: Annotated[str | None, typer.Option("--message", help="Message text.")] = None,
    template: Annotated[str | None, typer.Option("--template", help="Template name.")] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            help="Another text (repeatable): each recipient gets the message or one of these, "
            "picked for good before its first send.",
        ),
    ] = None,
    image: Annotated[str | None, typer.Option("--image", help="Image sent with the text.")] = None,
    session: Annotated[
        str,
        typer.Option(
            "--session",
            help="WAHA session, or several with weights: 'a,b' or 'a:3,b:1' (recipients "
            "dealt among them, each number paced on its own).",
        ),
    ] = "default",
    at: Annotated[
        str | None, typer.Option("--at", help="Start time, ISO-8601 (local unless offset).")
    ] = None,
    delay: Annotated[
        str, typer.Option("--delay", help="Random wait between messages, MIN-MAX seconds.")
    ] = "30-60",
    default_name: Annotated[
        str, typer.Option("--default-name", help="{name} for contacts without a name.")
    ] = "there",
    country: Annotated[
        str | None, typer.Option("--country", help="Country for national numbers (CSV).")
    ] = None,
    typing: Annotated[
        bool, typer.Option("--typing", help="Mark the chat read, then show 'typing…' first.")
    ] = False,
    window: Annotated[
        str | None,
        typer.Option(
            "--window",
            help="Send only between these times each day, HH:MM-HH:MM (22:00-06:00 runs "
            "across midnight); outside it the campaign waits.",
        ),
    ] = None,
    days: Annotated[
        str | None,
        typer.Option("--days", help="The window's days: mon-fri, or mon,wed,fri (default: all)."),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="The window's IANA time zone (default: this machine's)."),
    ] = None,
    break_every: Annotated[
        int, typer.Option("--break-every", help="A long break after every N messages.")
    ] = 0,
    break_range: Annotated[
        str | None,
        typer.Option("--break", help="The long break's length, MIN-MAX seconds (random)."),
    ] = None,
    auto_resume: Annotated[
        bool,
        typer.Option(
            "--auto-resume",
            help="If its runner dies, resume it on any runner instead of pausing it.",
        ),
    ] = False,
    check_numbers: Annotated[
        bool,
        typer.Option(
            "--check-numbers",
            help="Ask WAHA whether each number is on WhatsApp before its first message "
            "(skipped if not; the lookup is paced like a message).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a campaign; prints its id as the last line (--json: the campaign, and how
    many opted-out numbers were left out). Numbers on the opt-out list are left out."""
    from waha_tui.service import CampaignDraft

    draft = CampaignDraft(
        name=name,
        message=message,
        template=template,
        variants=list(variant or []),
        contacts_file=contacts,
        list_name=list_name,
        country=country,
        image=image,
        session=session,
        at=at,
        delay=delay,
        default_name=default_name,
        typing=typing,
        auto_resume=auto_resume,
        check_numbers=check_numbers,
        window=window,
        days=days,
        timezone=timezone,
        break_every=break_every,
        break_range=break_range,
    )

    async def go(service: CampaignService) -> None:
        created = await service.create(draft)
        cid = created.campaign_id
        camp = await service.campaign(cid)
        preview = await service.text_preview(cid)
        if as_json:
            _print_json(
                {
                    **campaign_dict(camp),
                    "opted_out_left_out": created.opted_out,
                    "different_texts": preview.count.count,
                    "different_texts_exact": preview.count.exact,
                    "first_texts": preview.first,
                }
            )
            return
        left_out = f" ({created.left_out})" if created.left_out else ""
        say(
            f"campaign '{camp.name}': {camp.total} recipients{left_out}, Scheduled for "
            f"{_local(camp.scheduled_at)} on {sessions_named(camp)}",
            err=True,
        )
        if preview.varied:
            say(f"{preview.count}; the first recipients get:", err=True)
            for i, text in enumerate(preview.first, start=1):
                one_line = " ⏎ ".join(text.splitlines())  # one line per recipient
                say(f"  {i}. {printable(one_line)}", err=True)
        say(str(cid))

    _with_service(ctx, go)


@campaign_app.command("list")
def campaign_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show every campaign."""

    async def go(service: CampaignService) -> None:
        items = await service.campaigns()
        if as_json:
            _print_json([campaign_dict(c) for c in items])
            return
        # A person reads a terminal: a header, and a word when there is nothing. A script
        # reads a pipe: only the tab-separated lines, one per campaign.
        person = sys.stdout.isatty()
        if person and not items:
            say(
                "no campaigns yet: create one with `waha-tui campaign create` or in the "
                "dashboard (`waha-tui`, then N); `waha-tui demo` shows some"
            )
        elif person:
            say(row("id", "status", "sent/total", "failed", "name", "why"))
        for c in items:
            note = c.pause_reason or c.last_error or ""
            say(row(c.id, c.status, f"{c.sent}/{c.total}", f"failed {c.failed}", c.name, note))

    _with_service(ctx, go)


@campaign_app.command("show", context_settings=ID_COMMAND)
def campaign_show(ctx: typer.Context, campaign_id: str, as_json: JsonOpt = False) -> None:
    """Show one campaign."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        c = await service.campaign(cid)
        data = campaign_dict(c)
        if as_json:
            _print_json(data)
            return
        window = SendWindow.of(c)
        for key, value in data.items():
            if key in ("waiting_since", "days", "next_send_at"):
                continue  # the days are in the window's line; when it sends, in waiting's
            if key == "window":
                value = window.describe() if window else "any time"
            elif key == "break":
                value = f"{value[0]:g}-{value[1]:g} s" if c.break_every else None
            elif key == "waiting_for":
                key, value = "waiting", waiting_text(c)
            elif key == "sessions":
                if not c.sessions:
                    continue  # one: the session line says it
                spread = Spread.of(c)
                shares = spread.shares(c.total)
                value = ", ".join(f"{n} ({shares[n]})" for n in spread.names)
                value = f"{spread.text()}: recipients {value}"
            elif key == "variants":
                for i, text in enumerate(c.variants or [], start=1):
                    say(f"{f'variant {i}':13} {printable(text)}")
                continue
            elif key == "next_index":  # the next recipient as a person counts (from 1)
                key, value = (
                    "next",
                    f"{c.next_index + 1} of {c.total}" if c.next_index < c.total else None,
                )
            say(f"{key:13} {printable(str(value)) if value is not None else '-'}")

    _with_service(ctx, go)


@campaign_app.command("recipients", context_settings=ID_COMMAND)
def campaign_recipients(
    ctx: typer.Context,
    campaign_id: str,
    as_json: JsonOpt = False,
    status: Annotated[str | None, typer.Option("--status", help="Only this status.")] = None,
) -> None:
    """Show a campaign's recipients in sending order."""
    from waha_tui.status import RecipientStatus

    cid = _campaign_id(campaign_id)
    if status and status not in {s.value for s in RecipientStatus}:
        fail(f"--status {status!r} is not one of {', '.join(s.value for s in RecipientStatus)}")

    async def go(service: CampaignService) -> None:
        items = await service.recipients(cid, status)
        if as_json:
            _print_json([recipient_dict(r) for r in items])
            return
        for r in items:  # numbered from 1, as everywhere a person reads (--json: from 0)
            say(
                row(
                    r.position + 1,
                    r.phone,
                    r.name or "-",
                    r.status,
                    r.message_id or "-",
                    r.error or "",
                    r.text or "",
                )
            )

    _with_service(ctx, go)


@campaign_app.command("events", context_settings=ID_COMMAND)
def campaign_events(ctx: typer.Context, campaign_id: str, as_json: JsonOpt = False) -> None:
    """Show a campaign's history: what happened, why, and who did it (user@host pid)."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        items = await service.campaign_events(cid)
        if as_json:
            _print_json([event_dict(e) for e in items])
            return
        for e in items:
            when = e.at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if e.at else "-"
            detail = printable(e.detail) if e.detail else "-"
            say(f"{when}  {e.kind:9}  {detail}  ({printable(by(e))})")

    _with_service(ctx, go)


class ProgressPrinter:
    """Renders runner events as 'sending X of Y' with a bar on a terminal, lines otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def __call__(self, event: ev.CampaignEvent) -> None:
        if isinstance(event, ev.RecipientProcessed):
            done = event.next_index
            width = 30
            filled = int(width * done / event.total) if event.total else width
            line = (
                f"campaign {event.campaign_id} [{'#' * filled}{'.' * (width - filled)}] "
                f"sending {min(done + 1, event.total)} of {event.total}  sent {event.sent}  "
                f"failed {event.failed}"
                + (f"  unknown {event.unknown}" if event.unknown else "")
                + (f"  skipped {event.skipped}" if event.skipped else "")
            )
            if self.tty:
                self.stream.write("\r" + printable(line))
            else:
                decile = (10 * done) // max(event.total, 1)
                if decile != self._last_decile:
                    self._last_decile = decile
                    self.stream.write(printable(line) + "\n")
        elif isinstance(event, ev.Started):
            self.stream.write(
                f"campaign {event.campaign_id}: running from recipient "
                f"{event.next_index + 1} of {event.total}\n"
            )
        elif isinstance(event, ev.Paused | ev.Completed | ev.Cancelled | ev.Failed):
            if self.tty:
                self.stream.write("\n")
            self.stream.write(printable(describe_end(event)) + "\n")
        self.stream.flush()


def describe_end(end: ev.CampaignEvent) -> str:
    if isinstance(end, ev.Completed):
        extra = f", {end.unknown} unknown" if end.unknown else ""
        extra += f", {end.skipped} skipped" if end.skipped else ""
        return (
            f"campaign {end.campaign_id} Completed: {end.sent} sent, {end.failed} failed"
            f"{extra} of {end.total}"
        )
    if isinstance(end, ev.Paused):
        return f"campaign {end.campaign_id} Paused at recipient {end.next_index + 1}: {end.reason}"
    if isinstance(end, ev.Cancelled):
        return f"campaign {end.campaign_id} Cancelled"
    if isinstance(end, ev.Failed):
        return f"campaign {end.campaign_id} Failed: {end.error}"
    return str(end)


def install_stopper(service: CampaignService, on_stop: Callable[[str], None]) -> Stopper:
    """SIGINT, SIGTERM and SIGHUP (the SSH connection dropped) pause instead of killing:
    `on_stop` ends the command's own waiting, the runs of this process are paused (a send
    WAHA does not answer is abandoned after its grace), and the process is gone within
    EXIT_DEADLINE seconds whatever hangs."""

    def stop(why: str) -> None:
        on_stop(why)
        # A task of its own: the stop's grace and cancellation run beside the command.
        stopping = asyncio.ensure_future(service.stop_all(f"stopped ({why})"))
        _background.add(stopping)
        stopping.add_done_callback(_background.discard)

    stopper = Stopper(stop)
    stopper.install()
    return stopper


_background: set[asyncio.Future[None]] = set()  # keeps the stop's task referenced


@campaign_app.command("resume", context_settings=ID_COMMAND)
def campaign_resume(
    ctx: typer.Context,
    campaign_id: str,
    detach: Annotated[
        bool, typer.Option("--detach", help="Only mark it Scheduled for `waha-tui run`.")
    ] = False,
) -> None:
    """Resume a Paused campaign, or a Failed one with recipients left, and run it here
    with a progress bar."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> ev.CampaignEvent | None:
        await service.recover_interrupted()
        if detach:
            await service.resume(cid, start=False)
            say(f"campaign {cid} is Scheduled: `waha-tui run` will send it")
            return None
        service.bus.subscribe(ProgressPrinter())
        install_stopper(service, lambda why: None)
        if await service.resume(cid) is None:
            camp = await service.campaign(cid)
            say(
                f"campaign {cid} is Scheduled again for {_local(camp.scheduled_at)}: "
                "`waha-tui run` or the dashboard starts it then"
            )
            return None
        return await service.wait(cid)

    end = _with_service(ctx, go)
    if isinstance(end, ev.Paused):
        raise typer.Exit(EXIT_PAUSED)
    if isinstance(end, ev.Failed):
        raise typer.Exit(1)


@campaign_app.command("retry", context_settings=ID_COMMAND)
def campaign_retry(
    ctx: typer.Context,
    campaign_id: str,
    unknown: Annotated[
        bool, typer.Option("--unknown", help="Re-send recipients whose delivery is unknown.")
    ] = False,
    failed: Annotated[bool, typer.Option("--failed", help="Re-send failed recipients.")] = False,
    unconfirmed: Annotated[
        bool,
        typer.Option(
            "--unconfirmed",
            help="Re-send sent messages WhatsApp never confirmed (asks first when the "
            "repeats could arrive twice).",
        ),
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Do not ask (needed when stdin is not a terminal)."),
    ] = False,
) -> None:
    """Queue unknown, failed or unconfirmed recipients again; the campaign is left Paused
    to resume."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        confirmed = yes
        if unconfirmed and not yes:
            plan = await service.plan_unconfirmed_retry(cid)
            if plan.count and plan.question is not None:
                if not sys.stdin.isatty():
                    fail(
                        f"campaign retry --unconfirmed asks first (the repeats may arrive "
                        f"twice) and stdin is not a terminal: give --yes to queue campaign "
                        f"{cid}'s {plan.count} unconfirmed recipients anyway",
                        2,
                    )
                if not typer.confirm(printable(plan.question), default=False, err=True):
                    say(f"campaign {cid}: nothing queued", err=True)
                    raise typer.Exit(1)
                confirmed = True
        count = await service.retry(
            cid, unknown=unknown, failed=failed, unconfirmed=unconfirmed, confirmed=confirmed
        )
        say(
            f"campaign {cid}: {count} recipient{'s' if count != 1 else ''} queued for retry; "
            f"send them with `waha-tui campaign resume {cid}`"
        )

    _with_service(ctx, go)


@campaign_app.command("pause", context_settings=ID_COMMAND)
def campaign_pause(ctx: typer.Context, campaign_id: str) -> None:
    """Pause a Running or Scheduled campaign (after the message in flight)."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        await service.pause(cid)
        say(f"campaign {cid} paused")

    _with_service(ctx, go)


@campaign_app.command("cancel", context_settings=ID_COMMAND)
def campaign_cancel(ctx: typer.Context, campaign_id: str) -> None:
    """Cancel a campaign for good."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        await service.cancel(cid)
        say(f"campaign {cid} cancelled")

    _with_service(ctx, go)


@campaign_app.command("delete", context_settings=ID_COMMAND)
def campaign_delete(
    ctx: typer.Context,
    campaign_id: str,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Do not ask (needed when stdin is not a terminal)."),
    ] = False,
) -> None:
    """Delete a campaign that is not running, with its recipients and its history; asks
    first on a terminal. A big one goes a batch at a time, so other writers never wait
    long."""
    from waha_tui.status import check_deletable

    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        camp = await service.campaign(cid)
        check_deletable(cid, camp.status)  # refused before it asks
        if not yes:
            if not sys.stdin.isatty():
                fail(
                    f"campaign delete asks first and stdin is not a terminal: give --yes to "
                    f"delete campaign {cid} without asking",
                    2,
                )
            question = (
                f"Delete campaign {cid} '{camp.name}' ({camp.status}, "
                f"{_count(camp.total, 'recipient')}) with its history? This cannot be undone."
            )
            if not typer.confirm(printable(question), default=False, err=True):
                say(f"campaign {cid} kept: nothing was deleted", err=True)
                raise typer.Exit(1)
        progress = _DeleteProgress(cid, camp.total)
        deleted = await service.delete_campaign(cid, on_batch=progress)
        progress.done()
        image = ", and its image" if deleted.image_removed else ""
        say(
            f"deleted campaign {cid} '{camp.name}': {_count(camp.total, 'recipient')}, "
            f"its history{image}"
        )

    _with_service(ctx, go)


class _DeleteProgress:
    """'deleting campaign 3: 50,000 of 1,000,000 recipients' on a terminal's stderr."""

    def __init__(self, campaign_id: int, total: int) -> None:
        self.campaign_id, self.total = campaign_id, total
        self.tty = sys.stderr.isatty()
        self.shown = False

    def __call__(self, gone: int) -> None:
        if self.tty and self.total > 0:
            self.shown = True
            sys.stderr.write(
                f"\rdeleting campaign {self.campaign_id}: {gone:,} of {self.total:,} recipients"
            )
            sys.stderr.flush()

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _count(number: int, what: str) -> str:
    return f"{number:,} {what}{'' if number == 1 else 's'}"


@campaign_app.command("clone", context_settings=ID_COMMAND)
def campaign_clone(
    ctx: typer.Context,
    campaign_id: str,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The new campaign's name (default: '<name> (copy)')."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Start time, ISO-8601 (local unless offset); default now."),
    ] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", help="WAHA session, or 'a,b' / 'a:3,b:1' (default: the campaign's)."
        ),
    ] = None,
) -> None:
    """A new Scheduled campaign from a campaign's own recipients (every one, as new), text,
    image and settings, whether or not its contact list still exists; prints its id as the
    last line."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        new = await service.clone_campaign(cid, name=name, at=at, session=session)
        camp = await service.campaign(new)
        say(
            f"campaign '{camp.name}': {_count(camp.total, 'recipient')} cloned from campaign "
            f"{cid}, Scheduled for {_local(camp.scheduled_at)} on {sessions_named(camp)}",
            err=True,
        )
        say(str(new))

    _with_service(ctx, go)


@campaign_app.command("edit", context_settings=ID_COMMAND)
def campaign_edit(
    ctx: typer.Context,
    campaign_id: str,
    name: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="A new start time, ISO-8601 (local unless offset).")
    ] = None,
    delay: Annotated[
        str | None,
        typer.Option("--delay", help="A new random wait between messages, MIN-MAX seconds."),
    ] = None,
    window: Annotated[
        str | None,
        typer.Option("--window", help="A new send window, HH:MM-HH:MM ('any': none)."),
    ] = None,
    days: Annotated[
        str | None,
        typer.Option("--days", help="The window's days: mon-fri, mon,wed,fri ('any': all)."),
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="The window's IANA time zone.")
    ] = None,
    check_numbers: Annotated[
        bool | None,
        typer.Option(
            "--check-numbers/--no-check-numbers",
            help="Ask WAHA whether each number is on WhatsApp before its first message.",
            show_default=False,
        ),
    ] = None,
    break_every: Annotated[
        int | None,
        typer.Option("--break-every", help="A long break after every N messages (0: none)."),
    ] = None,
    break_range: Annotated[
        str | None,
        typer.Option("--break", help="The long break's length, MIN-MAX seconds (random)."),
    ] = None,
    # Not offered, but understood: the refusal says why, rather than "no such option".
    session: Annotated[str | None, typer.Option("--session", hidden=True)] = None,
) -> None:
    """Change a Scheduled or Paused campaign's name, start time, delay, number check, send
    window (its hours, days, zone) or long breaks. Its session stays: clone it (campaign
    clone ID --session NAME) to send it from another number."""
    cid = _campaign_id(campaign_id)

    async def go(service: CampaignService) -> None:
        edited = await service.edit_campaign(
            cid,
            name=name,
            at=at,
            delay=delay,
            session=session,
            check_numbers=check_numbers,
            window=window,
            days=days,
            timezone=timezone,
            break_every=break_every,
            break_range=break_range,
        )
        say(f"campaign {cid}: {'; '.join(edited.changes) or 'nothing changed'}")

    _with_service(ctx, go)


# -- the opt-out list --------------------------------------------------------------------

CountryOpt = Annotated[
    str | None,
    typer.Option("--country", help="Country (e.g. DE) for a national number."),
]


def optout_dict(o: OptOut) -> dict[str, Any]:
    return {
        "phone": o.phone,
        "added_at": _iso(o.added_at),
        "source": o.source,
        "reason": o.reason,
        "campaign_id": o.campaign_id,
    }


@optout_app.command("add")
def optout_add(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="The number, international or with --country.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, in your words.")] = None,
    country: CountryOpt = None,
) -> None:
    """Add a number to the opt-out list: no campaign messages it again."""

    async def go(service: CampaignService) -> None:
        number, added = await service.optouts.add(phone, reason=reason, country=country)
        if added:
            say(f"{number} added to the opt-out list")
        else:
            say(f"{number} was on the opt-out list already")

    _with_service(ctx, go)


@optout_app.command("remove")
def optout_remove(
    ctx: typer.Context,
    phone: Annotated[str, typer.Argument(help="The number, international or with --country.")],
    country: CountryOpt = None,
) -> None:
    """Take a number off the opt-out list (campaigns may message it again)."""

    async def go(service: CampaignService) -> None:
        number = await service.optouts.remove(phone, country=country)
        say(f"{number} removed from the opt-out list")

    _with_service(ctx, go)


OPTOUT_PAGE = 1000


@optout_app.command("list")
def optout_list(
    ctx: typer.Context,
    search: Annotated[
        str, typer.Option("--search", help="Only numbers containing these digits.")
    ] = "",
    as_json: JsonOpt = False,
) -> None:
    """Show the opt-out list, the newest first."""

    async def go(service: CampaignService) -> None:
        items, count = await service.optouts.page(search, limit=OPTOUT_PAGE)
        while len(items) < count:  # a page at a time: the list may be long
            more, _ = await service.optouts.page(search, offset=len(items), limit=OPTOUT_PAGE)
            if not more:
                break
            items += more
        if as_json:
            _print_json([optout_dict(o) for o in items])
            return
        if sys.stdout.isatty() and not items:
            say("no number matches" if search else "the opt-out list is empty")
        for o in items:
            campaign = f"campaign {o.campaign_id}" if o.campaign_id is not None else "-"
            say(row(o.phone, _local(o.added_at), o.source, campaign, o.reason or ""))

    _with_service(ctx, go)


@optout_app.command("import")
def optout_import(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="CSV file with a header row and a phone column.")],
    country: CountryOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add every number of a CSV file's phone column (an optional reason column is kept);
    a bad line refuses the whole file."""

    async def go(service: CampaignService) -> None:
        result = await service.optouts.import_file(file, country=country)
        if as_json:
            _print_json(
                {
                    "added": result.added,
                    "already": result.already,
                    "duplicates": [
                        {"phone": phone, "lines": lines} for phone, lines in result.duplicates
                    ],
                }
            )
            return
        for phone, lines in result.duplicates:
            say(f"duplicate {phone} on lines {', '.join(map(str, lines))}: kept once", err=True)
        already = f" ({result.already} were on it already)" if result.already else ""
        say(f"added {_count(result.added, 'number')} to the opt-out list{already}")

    _with_service(ctx, go)


@optout_app.command("keywords")
def optout_keywords(
    ctx: typer.Context,
    set_: Annotated[
        str | None,
        typer.Option(
            "--set",
            help='The replies that opt out, comma-separated: "STOP,BAJA,...". Case, accents '
            "and surrounding punctuation do not matter; the whole reply must be one.",
        ),
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="Back to the built-in list.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show (or set) the keywords that put a replying number on the opt-out list."""
    if set_ is not None and reset:
        fail("give --set or --reset, not both", 2)

    async def go(service: CampaignService) -> None:
        if set_ is not None:
            words = await service.optouts.set_keywords(set_)
        elif reset:
            words = await service.optouts.reset_keywords()
        else:
            words = await service.optouts.keywords()
        if as_json:
            _print_json({"keywords": words.words, "default": words.default})
            return
        which = "built-in" if words.default else "set for this database"
        say(f"opt-out keywords ({which}): {', '.join(words.words)}")

    _with_service(ctx, go)


# -- headless ----------------------------------------------------------------------------


def caps_dict(u: CapUse) -> dict[str, Any]:
    c = u.caps
    start = c.warmup_start.astimezone(c.tz).date().isoformat() if c.warmup_start else None
    return {
        "number": f"+{u.number}",
        "per_hour": c.per_hour,
        "per_day": c.per_day,
        "timezone": c.zone,
        "warmup": list(c.warmup) or None,
        "warmup_start": start,
        "warmup_day": c.warmup_day(u.at),
        "today": {"sent": u.in_day, "cap": u.day_cap},
        "this_hour": {"sent": u.in_hour, "cap": c.per_hour},
    }


def caps_line(u: CapUse) -> str:
    c = u.caps
    caps = [f"{c.per_hour}/hour" if c.per_hour else "-", f"{c.per_day}/day" if c.per_day else "-"]
    plan = "-"
    if c.warmup:
        start = c.warmup_start.astimezone(c.tz).date().isoformat() if c.warmup_start else "?"
        plan = f"warm-up {','.join(map(str, c.warmup))} from {start}"
    return row(f"+{u.number}", *caps, c.zone, plan, u.summary())


@caps_app.command("set")
def caps_set(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="SESSION_OR_NUMBER",
            help="A WAHA session (its linked number is capped) or the number, international.",
        ),
    ],
    per_hour: Annotated[
        int | None, typer.Option("--per-hour", help="Messages a clock hour (0: no cap).")
    ] = None,
    per_day: Annotated[
        int | None, typer.Option("--per-day", help="Messages a day (0: no cap).")
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option("--timezone", help="IANA zone whose midnight ends its day (default: here)."),
    ] = None,
    warmup: Annotated[
        str | None,
        typer.Option("--warmup", help='Daily caps day by day, e.g. "20,40,80" ("off": none).'),
    ] = None,
    warmup_start: Annotated[
        str | None,
        typer.Option("--warmup-start", help="The warm-up's first day, YYYY-MM-DD (default today)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cap the messages a number sends (options not given keep their values)."""

    async def go(service: CampaignService) -> None:
        use = await service.caps.set(
            target,
            per_hour=per_hour,
            per_day=per_day,
            timezone=timezone,
            warmup=warmup,
            warmup_start=warmup_start,
        )
        if as_json:
            _print_json(caps_dict(use))
        else:
            say(caps_line(use))

    _with_service(ctx, go)


@caps_app.command("show")
def caps_show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Each capped number: its caps, and what it sent today and this hour."""

    async def go(service: CampaignService) -> None:
        uses = await service.caps.show()
        if as_json:
            _print_json([caps_dict(u) for u in uses])
            return
        if sys.stdout.isatty() and not uses:
            say("no number has caps")
        for u in uses:
            say(caps_line(u))

    _with_service(ctx, go)


@caps_app.command("clear")
def caps_clear(
    ctx: typer.Context,
    number: Annotated[str, typer.Argument(help="The number (or its session).")],
) -> None:
    """Remove a number's caps: it sends at its campaigns' pace alone."""

    async def go(service: CampaignService) -> None:
        digits = await service.caps.clear(number)
        say(f"+{digits}: caps removed")

    _with_service(ctx, go)


@app.command("run")
def run_headless(
    ctx: typer.Context,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when nothing is due or running.")
    ] = False,
    events: Annotated[
        bool,
        typer.Option(
            "--events/--no-events",
            help="Listen to WAHA's events (acks, replies, opt-outs) over its WebSocket while "
            "running; --no-events where `waha-tui webhook` receives them instead.",
        ),
    ] = True,
) -> None:
    """Headless scheduler and runner: sends every campaign when it is due, and writes
    what WhatsApp says after the sends (acks, replies, opt-outs) while it runs."""
    from waha_tui.scheduler import Scheduler

    async def go(service: CampaignService) -> None:
        stop = asyncio.Event()
        printer = ProgressPrinter()
        service.bus.subscribe(printer)

        stopper = install_stopper(service, lambda why: stop.set())
        # The listener logs its state and what it writes (opt-outs, pauses).
        listener = service.listener() if events else None
        if listener is not None:
            listener.start()
        # What the scheduler meets (a campaign it cannot start, the database gone and
        # back) is logged: stderr, the journal under systemd.
        scheduler = Scheduler(service)
        try:
            await scheduler.run(until_idle=until_idle, stop=stop)
            await service.stop_all(f"stopped ({stopper.reason or 'waha-tui run ended'})")
        finally:
            if listener is not None:
                await listener.aclose()

    _with_service(ctx, go)


@app.command()
def doctor(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Check what waha-tui needs: WAHA and its key, its version and features (message ids,
    the events WebSocket, check-exists), each session, the database. Exits 1 when
    something needed is missing, 0 otherwise (warnings allowed)."""
    from waha_tui.doctor import diagnose, failed

    try:
        findings = asyncio.run(diagnose(_settings(ctx)))
    except UserError as exc:
        report(exc)
        raise typer.Exit(1) from None
    if as_json:
        _print_json([f.as_dict() for f in findings])
    else:
        for f in findings:
            fix = f"; {f.fix}" if f.fix else ""
            say(f"{f.level:4}  {f.check}: {f.detail}{fix}")
    if failed(findings):
        raise typer.Exit(1)


WEBHOOK_KEY_ENV = "WAHA_TUI_WEBHOOK_HMAC_KEY"


@app.command()
def webhook(
    ctx: typer.Context,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            help="HOST:PORT to listen on (loopback by default; another host is said in a "
            "warning line).",
        ),
    ] = "127.0.0.1:8765",
    hmac_key_file: Annotated[
        str | None,
        typer.Option(
            "--hmac-key-file",
            help=f"The file holding WAHA's webhook HMAC key (WHATSAPP_HOOK_HMAC_KEY), or "
            f"{WEBHOOK_KEY_ENV}; never a flag of its own (the process list shows flags).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Receive WAHA's webhooks (POST / or /webhook), signed with HMAC-SHA512, and write
    their acks, replies and statuses to the database: for WAHA that pushes its events
    instead of serving the WebSocket."""
    import os

    import uvicorn

    from waha_tui.config import read_key_file
    from waha_tui.secret import Secret
    from waha_tui.store import Store
    from waha_tui.waha.webhook import BatchSink, create_app

    host, port = _listen(listen)
    try:
        if hmac_key_file is not None:
            key = read_key_file(hmac_key_file, "--hmac-key-file")
        elif os.environ.get(WEBHOOK_KEY_ENV):
            key = os.environ[WEBHOOK_KEY_ENV]
        else:
            fail(
                f"give WAHA's webhook HMAC key: --hmac-key-file FILE or {WEBHOOK_KEY_ENV} "
                "(unsigned webhooks are never taken)"
            )
        store = Store(_settings(ctx).db)
    except UserError as exc:
        report(exc)
        raise typer.Exit(1) from None
    from waha_tui.delivery import apply  # what events do to the database

    receiver = create_app(Secret(key), BatchSink(lambda events: apply(store, events)))
    if not _loopback(host):
        say(
            f"warning: listening on {host}, beyond this machine: only requests signed with "
            "the HMAC key are taken, but put TLS (a reverse proxy) in front of it",
            err=True,
        )
    shown = f"[{host}]" if ":" in host else host
    say(f"receiving WAHA's webhooks on http://{shown}:{port}/ (POST / or /webhook)")
    sys.stdout.flush()
    try:
        uvicorn.Server(
            uvicorn.Config(
                receiver,
                host=host,
                port=port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        ).run()
    finally:
        store.close()


def _listen(value: str) -> tuple[str, int]:
    """--listen HOST:PORT ([::1]:PORT for IPv6)."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--listen {value!r} is not HOST:PORT, e.g. 127.0.0.1:8765", 2)
    return host, int(port)


@app.command()
def demo(
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the demo's database when it quits (its path is shown)."),
    ] = False,
) -> None:
    """Open the dashboard on demo campaigns sent to a built-in WAHA simulator; its temporary
    folder is removed when it quits."""
    from waha_tui.demo import run_demo

    run_demo(keep=keep)


@app.command()
def simulator(
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="Require this X-Api-Key.", show_default=False)
    ] = None,
    no_message_ids: Annotated[
        bool, typer.Option("--no-message-ids", help="Act as WAHA older than 2026.4.3.")
    ] = False,
    tier: Annotated[
        str,
        typer.Option(help="PLUS (several sessions) or CORE (only 'default', as WAHA Core)."),
    ] = "PLUS",
    engine: Annotated[
        str, typer.Option(help="NOWEB or WEBJS: the engine's answers and body shapes.")
    ] = "NOWEB",
) -> None:
    """Run the WAHA simulator: WAHA's API on a loopback port, with faults under /_sim/."""
    from waha_tui.simulator import SimState, Simulator
    from waha_tui.simulator.server import serve_forever

    try:
        state = SimState(
            api_key=api_key,
            message_ids=not no_message_ids,
            tier=tier.upper(),
            engine=engine.upper(),
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    sim = Simulator(state)
    if not _loopback(host):
        say(
            f"warning: listening on {host}, beyond this machine: the simulator's /_sim/ "
            "routes (faults, state, sent messages) need no API key, so anyone who can reach "
            "the port can read and change them",
            err=True,
        )
    key_note = " (API key required)" if api_key else ""
    say(
        f"WAHA simulator listening on http://{host}:{port}{key_note} ({state.tier}, {state.engine})"
    )
    sys.stdout.flush()
    serve_forever(sim, host, port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve beyond this machine


def main() -> None:
    try:
        app()
    except UserError as exc:
        report(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Logged with its traceback (secrets hidden): on stderr, or in the dashboard's file.
        log.critical("unexpected error", exc_info=True)
        say(f"error: unexpected {type(exc).__name__}: {redact(str(exc))}", err=True)
        sys.exit(1)
