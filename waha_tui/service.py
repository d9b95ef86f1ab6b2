"""Campaign operations and their validation: the one API the CLI and the dashboard call."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from waha_tui import events as ev
from waha_tui.config import Settings
from waha_tui.csv_import import ImportResult, parse_contacts
from waha_tui.errors import FieldError, InvalidInput, UserError, ref
from waha_tui.history import Entry, Kind
from waha_tui.listener import Listener
from waha_tui.logs import caught
from waha_tui.media import Media, load_image
from waha_tui.models import Campaign, CampaignEventRow, OptOut, Recipient, Template, utcnow
from waha_tui.optout import DEFAULT_KEYWORDS
from waha_tui.optout import checked as checked_keywords
from waha_tui.pacing import (
    DAYS,
    DEFAULT_DELAY,
    Caps,
    CapUse,
    Pacing,
    check_zone,
    local_zone,
    parse_break,
    parse_cap,
    parse_days,
    parse_delay,
    parse_warmup,
    parse_window,
)
from waha_tui.phones import chat_id_for, check_country, normalise_phone
from waha_tui.render import (
    NAME,
    RenderError,
    placeholders,
    template_errors,
    unknown_placeholders,
)
from waha_tui.runner import CampaignRun, RunnerConfig, RunnerPool
from waha_tui.runner.ids import IdSupply, takes_ids
from waha_tui.sessions import SessionService
from waha_tui.spread import Spread, names_of
from waha_tui.spread import parse as parse_sessions
from waha_tui.status import (
    FINISHED,
    PAUSABLE,
    CampaignStatus,
    RecipientStatus,
    TransitionError,
    can_resume,
    described,
)
from waha_tui.store import (
    ANY_TIME,
    CampaignPage,
    ListInfo,
    NewRecipient,
    NotFound,
    OptOutEntry,
    Store,
    StoreError,
)
from waha_tui.variants import CampaignTexts, TextCount
from waha_tui.waha import (
    SessionInfo,
    SessionMissing,
    Unauthorized,
    Unreachable,
    WahaClient,
    WahaError,
)
from waha_tui.waha.errors import CHECK_API_KEY

log = logging.getLogger(__name__)
S = CampaignStatus
T = TypeVar("T")
P = ParamSpec("P")
MAX_NAME = 200  # the size of the name columns
PAUSED_BY_OPERATOR = "paused by the operator"
CANCELLED_BY_OPERATOR = "cancelled by the operator"
DELETE_BATCH = 5000  # recipients per write transaction of a delete (~6 ms on SQLite)
DELETE_REST = 0.02  # seconds, at least, between two: other writers take the lock meanwhile
COPY = " (copy)"  # a clone's name, unless one is given
SESSION_FIXED = (
    "a campaign's session cannot change: what it sent (a message id, an unknown delivery) "
    "belongs to that number; clone the campaign onto another session instead"
)


@dataclass
class CampaignDraft:
    name: str
    message: str | None = None
    template: str | None = None
    # More texts beside the message or template (variant 0): each recipient gets one.
    variants: list[str] = field(default_factory=list)
    contacts_file: str | None = None
    list_name: str | None = None
    country: str | None = None
    image: str | None = None
    session: str = "default"
    at: str | datetime | None = None
    delay: str | tuple[float, float] | None = None
    default_name: str = "there"
    typing: bool = False
    # A long break after every N messages (the form gives its text), its length drawn
    # from break_range ("MIN-MAX" seconds; None: break_seconds, one length).
    break_every: int | str = 0
    break_seconds: float = 0.0
    break_range: str | tuple[float, float] | None = None
    # A daily send window "HH:MM-HH:MM" (None: any time), its days ("mon-fri",
    # "mon,wed,fri"; None: every day), in an IANA zone (None: this machine's).
    window: str | None = None
    days: str | None = None
    timezone: str | None = None
    max_consecutive_failures: int = 10
    auto_resume: bool = False  # if its runner dies: Scheduled again, not Paused
    check_numbers: bool = False  # ask WAHA whether each number is on WhatsApp first


@dataclass(frozen=True)
class CampaignPlan:
    """A checked draft: the campaign and its recipients, not written yet."""

    campaign: Campaign
    recipients: list[NewRecipient]  # without the opted-out numbers
    image: Media | None = None  # its bytes, checked; stored with the campaign
    opted_out: int = 0  # numbers of the list or file left out: on the opt-out list


@dataclass(frozen=True)
class Created:
    campaign_id: int
    opted_out: int  # numbers left out: on the opt-out list

    @property
    def left_out(self) -> str | None:
        """ "3 opted-out numbers left out", or None."""
        if not self.opted_out:
            return None
        n = self.opted_out
        return f"{n} opted-out number{'' if n == 1 else 's'} left out"


@dataclass(frozen=True)
class TextPreview:
    """What a campaign's recipients read: whether its texts vary, how many different
    texts it sends, and its first recipients' texts as they go out (or why one cannot)."""

    varied: bool
    count: TextCount
    first: list[str]


@dataclass(frozen=True)
class UnconfirmedRetry:
    """What `retry --unconfirmed` would do: how many, and whether WhatsApp dedupes the
    repeats (the session takes pre-generated ids and the campaign sends text: each goes
    again with its own id). When it does not, `question` is what to ask the operator."""

    campaign_id: int
    count: int
    deduped: bool

    @property
    def question(self) -> str | None:
        if self.deduped:
            return None
        n = self.count
        return (
            f"Send {n} unconfirmed message{'' if n == 1 else 's'} of campaign "
            f"{self.campaign_id} again? WhatsApp cannot tell the repeats from the first "
            "sends here, so a recipient whose first message did arrive gets it twice."
        )


class NeedsConfirmation(UserError):
    """A retry whose repeats may arrive twice, asked without the operator's yes."""


@dataclass(frozen=True)
class OptOutImport:
    added: int  # numbers new on the list
    already: int  # numbers of the file that were on it before
    duplicates: list[tuple[str, list[int]]]  # (number, its lines in the file): kept once


@dataclass(frozen=True)
class Keywords:
    words: list[str]
    default: bool  # the built-in list (none stored)


@dataclass(frozen=True)
class Deleted:
    campaign: Campaign  # as it was when its delete began
    image_removed: bool  # its image's bytes went too: no other campaign sends them


@dataclass(frozen=True)
class Edited:
    campaign: Campaign  # as it now is
    changes: list[str]  # what changed, from what, as its history records it (none: nothing)


@dataclass(frozen=True)
class TemplateCheck:
    """What saving a template's text would meet: refused for `errors`, told `warnings`."""

    errors: list[str]
    warnings: list[str]


def check_template(text: str) -> TemplateCheck:
    """The template rules, for saving (CLI and dashboard), for a campaign's message and for
    the editor's live check.

    Refused: an empty text, and every place it breaks the template grammar (render.py owns
    it: a broken placeholder such as {first.name} or {name left without its "}", each with
    its line and column).

    Told, not refused: every placeholder but {name}. A template is written before a list is
    chosen, so {city} is fine here; it needs a column city in the contact list, and
    create_campaign checks that against the list it is sent to.
    """
    if not text.strip():
        return TemplateCheck(["the text is empty"], [])
    errors = [str(error) for error in template_errors(text)]
    warnings = [
        f"{{{key}}} needs a column {key} in the contact list"
        for key in placeholders(text)
        if key != NAME
    ]
    return TemplateCheck(errors, warnings)


def parse_when(value: str | datetime | None, *, now: datetime | None = None) -> datetime:
    """ISO-8601 to aware UTC; a time without offset is the operator's local time."""
    if value is None or value == "":
        return now or utcnow()
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UserError(
                f"{ref('at')} {value!r} is not an ISO-8601 date and time, e.g. 2026-12-01T09:30"
            ) from None
    try:
        if parsed.tzinfo is None:
            parsed = parsed.astimezone()  # local time
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError, OSError):
        # Only at the ends of the calendar: 9999-12-31T23:59:59-12:00 is in year 10000 UTC.
        raise UserError(
            f"{ref('at')} {value!r} is out of range: give a date before 9999-12-31"
        ) from None


class _Checks:
    """Every field's error of one input, collected so the caller hears of them all at once."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, " ".join(message.split())))

    def run(self, field: str, check: Callable[[], T]) -> T | None:
        """check(), or None with its refusal recorded as `field`'s error."""
        try:
            return check()
        except InvalidInput as exc:
            self.errors.extend(exc.errors)
        except StoreError:
            raise  # the database failed, not the input
        except UserError as exc:
            self.add(field, exc.text)  # the fields it names stay references
        return None

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(self.errors)


class CampaignService:
    """The one API of the dashboard's screens: every call that touches the store or WAHA is
    a coroutine (blocking store I/O runs in a thread), and bad input is InvalidInput.

    The CLI and the scheduler may reach `store` and `pool` for what only they do; the
    screens never do (tests/test_layers.py).
    """

    def __init__(self, store: Store, client: WahaClient, pool: RunnerPool | None = None) -> None:
        self.store = store
        self.client = client
        self.pool = pool or RunnerPool(store, client)
        self.caps = CapsService(store, client)
        # The sessions screen's (w), with each session's number's caps.
        self.session_service = SessionService(client, caps=self.caps.for_sessions)
        self.optouts = OptOutService(store)
        self.delete_batch = DELETE_BATCH
        self.delete_rest = DELETE_REST

    @classmethod
    def open(cls, settings: Settings, *, config: RunnerConfig | None = None) -> CampaignService:
        store = Store(settings.db)
        client = WahaClient(settings.waha_url, settings.api_key)
        return cls(store, client, RunnerPool(store, client, config=config))

    @property
    def bus(self) -> ev.EventBus:
        return self.pool.bus

    @property
    def waha_url(self) -> str:
        return self.client.base_url

    async def aclose(self) -> None:
        await self.client.aclose()
        self.store.close()

    async def warm_up(self) -> None:
        """Ready the way of a resume to its first message (Store.warm_up) in the
        background: a dashboard's first `r` then costs what the next ones do."""
        try:
            await self._db(self.store.warm_up)
        except Exception as exc:  # a warm-up that fails costs only its time
            caught(log, exc, "warming up the resume path")

    def listener(self, **kwargs: Any) -> Listener:
        """WAHA's events for this database, from the WAHA this service talks to (not
        started: `start()`; callbacks as Listener takes them)."""
        return Listener(self.store, self.client.base_url, self.client.api_key, **kwargs)

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        # The store blocks (SQLite, psycopg): off the event loop, so screens stay live.
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A short read on the critical path of an operator's action (a row by its key):
        on SQLite in the loop itself, as a WAL read waits for no writer and costs less than
        the thread hop; where reads may wait on the network (PostgreSQL), in a thread."""
        if self.store.reads_block:
            return await self._db(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    # -- contacts and templates --------------------------------------------------------

    async def import_contacts(
        self, path: str, list_name: str, *, country: str | None = None
    ) -> tuple[int, ImportResult]:
        """A CSV file as a new contact list. Fields: path, list_name, country."""
        return await self._db(self._import_contacts, path, list_name, country)

    def _import_contacts(
        self, path: str, list_name: str, country: str | None
    ) -> tuple[int, ImportResult]:
        checks = _Checks()
        name = checks.run("list_name", lambda: _required(ref("list_name"), list_name))
        if name is not None and name in {x.name for x in self.store.lists()}:
            checks.add("list_name", _list_taken(name))
        region = checks.run("country", lambda: check_country(country)) if country else None
        result = None
        if region is not None or not country:
            # A refused country would make every national number a fault of the file.
            result = checks.run("path", lambda: parse_contacts(path, country=region))
        checks.done()
        assert name is not None and result is not None
        list_id = self.store.create_list(name, _new_recipients(result))
        return list_id, result

    async def lists(self) -> list[ListInfo]:
        return await self._db(self.store.lists)

    async def list_contacts(self, name: str) -> list[NewRecipient]:
        return await self._db(self.store.list_contacts, name)

    async def delete_list(self, name: str) -> None:
        # Campaigns copied their recipients when created, so none is affected.
        await self._db(self.store.delete_list, name)

    async def add_template(self, name: str, text: str) -> int:
        """Fields: name, text."""
        return await self._db(self._add_template, name, text)

    def _add_template(self, name: str, text: str) -> int:
        checks = _Checks()
        checked = checks.run("name", lambda: _template_name(name))
        if checked is not None and self._template_exists(checked):
            checks.add("name", _template_taken(checked))
        _check_template_text(checks, checked or name.strip(), text)
        checks.done()
        assert checked is not None
        return self.store.add_template(checked, text)

    def _template_exists(self, name: str) -> bool:
        try:
            self.store.get_template(name)
        except NotFound:
            return False
        return True

    async def update_template(self, name: str, text: str) -> None:
        """Fields: name, text; an unknown name is NotFound."""
        await self._db(self._update_template, name, text)

    def _update_template(self, name: str, text: str) -> None:
        checks = _Checks()
        checked = checks.run("name", lambda: _template_name(name))
        _check_template_text(checks, checked or name.strip(), text)
        checks.done()
        assert checked is not None
        self.store.update_template(checked, text)

    async def delete_template(self, name: str) -> None:
        # Campaigns copied the text when they were created, so none is affected.
        await self._db(self.store.delete_template, name)

    async def templates(self) -> list[Template]:
        return await self._db(self.store.templates)

    # -- campaigns ---------------------------------------------------------------------

    async def create_campaign(self, draft: CampaignDraft) -> int:
        return (await self.create(draft)).campaign_id

    async def create(self, draft: CampaignDraft) -> Created:
        """create_campaign, and what it left out (`Created.left_out`: say it)."""
        return await self._db(self._create_campaign, draft)

    def _create_campaign(self, draft: CampaignDraft) -> Created:
        plan = self._plan_campaign(draft)
        cid = self.store.create_campaign(plan.campaign, plan.recipients, plan.image)
        return Created(cid, plan.opted_out)

    async def plan_campaign(self, draft: CampaignDraft) -> CampaignPlan:
        """Every check of create_campaign, and what it would write, without writing it.

        Refusals are one InvalidInput with every field's error; fields are the draft's
        attribute names (name, message, template, contacts_file, list_name, country,
        image, session, at, delay).
        """
        return await self._db(self._plan_campaign, draft)

    def _plan_campaign(self, draft: CampaignDraft) -> CampaignPlan:
        checks = _Checks()
        name = checks.run("name", lambda: _campaign_name(draft.name))
        text_field = "template" if draft.template else "message"
        text: str | None = None
        if bool(draft.message) == bool(draft.template):
            checks.add(
                "message", f"give either {ref('message')} or {ref('template')} (exactly one)"
            )
        elif draft.message:
            text = draft.message
        else:
            text = checks.run(
                "template", lambda: self.store.get_template(draft.template or "").text
            )
        if text is not None and not text.strip():
            checks.add(text_field, "the message is empty")
            text = None
        elif text is not None and (broken := template_errors(text)):
            # The same grammar as `template add`: never sent literally by mistake.
            for error in broken:
                checks.add(text_field, f"the message, {error}")
            text = None
        variants = _check_variants(checks, draft.variants)
        # Every text's placeholders need their columns: checked on them all at once (a
        # group never spans lines, so joined by newlines they parse as each alone).
        all_texts = None if text is None or variants is None else "\n".join([text, *variants])
        # One session, or several with weights ("a:3,b"): its recipients dealt among them.
        spread = checks.run("session", lambda: parse_sessions(draft.session, what=ref("session")))
        when = checks.run("at", lambda: parse_when(draft.at))
        delay = checks.run("delay", lambda: _delay(draft.delay))
        every, breaks = _breaks(checks, draft.break_every, draft.break_range, draft.break_seconds)
        window, days, zone = _window(checks, draft.window, draft.days, draft.timezone)
        image = None
        if draft.image:
            image = checks.run("image", lambda: load_image(draft.image or ""))
        recipients: list[NewRecipient] | None = None
        source: str | None = None
        field = "list_name"  # where "no recipients" goes
        if bool(draft.contacts_file) == bool(draft.list_name):
            checks.add(
                "list_name",
                f"give either {ref('contacts_file')} FILE.csv or {ref('list_name')} NAME "
                "(exactly one)",
            )
        elif draft.contacts_file:
            source = Path(draft.contacts_file).name
            region = (
                checks.run("country", lambda: check_country(draft.country or ""))
                if draft.country
                else None
            )
            if region is not None or not draft.country:
                file = draft.contacts_file
                result = checks.run(
                    "contacts_file",
                    lambda: parse_contacts(file, country=region, template=all_texts),
                )
                recipients = None if result is None else _new_recipients(result)
            field = "contacts_file"
        else:
            source = draft.list_name
            recipients = checks.run("list_name", lambda: self.store.list_contacts(source or ""))
            if recipients is not None and all_texts is not None:
                unknown = _unknown_columns(all_texts, source or "", recipients)
                if unknown:
                    checks.add(text_field, unknown)
                elif empty := _empty_values(all_texts, source or "", recipients):
                    checks.add(field, empty)
        opted_out = 0
        if recipients:
            # Never messaged again, whichever list they come back in. Positions stay
            # dense: the store numbers what it is given.
            blocked = self.store.opted_out(r.phone for r in recipients)
            if blocked:
                kept = [r for r in recipients if r.phone not in blocked]
                opted_out = len(recipients) - len(kept)
                if not kept:
                    checks.add(field, f"all {opted_out} numbers are on the opt-out list")
                recipients = kept or None
        if recipients is not None and not recipients:
            checks.add(field, "the campaign has no recipients")
        checks.done()
        assert name and text and spread and when and delay and recipients is not None
        assert variants is not None
        # Where it came from, for display: its bytes are what is sent.
        image_path = str(Path(draft.image or "").expanduser().resolve()) if image else None
        image_mime = image.mimetype if image is not None else None
        campaign = Campaign(
            name=name,
            session=spread.names[0],
            sessions=spread.stored(),
            template_text=text,
            variants=variants,  # a list, even empty: its choices are picked (variants.py)
            default_name=draft.default_name,
            image_path=image_path,
            image_mime=image_mime,
            list_name=source,
            scheduled_at=when,
            delay_min=delay[0],
            delay_max=delay[1],
            typing=draft.typing,
            break_every=every,
            break_seconds=breaks[0],
            break_max=breaks[1],
            send_window=window,
            window_days=days,
            timezone=zone,
            max_consecutive_failures=draft.max_consecutive_failures,
            auto_resume=draft.auto_resume,
            check_numbers=draft.check_numbers,
        )
        return CampaignPlan(campaign, recipients, image, opted_out)

    async def campaigns(self) -> list[Campaign]:
        return await self._db(self.store.list_campaigns)

    async def text_preview(self, campaign_id: int, first: int = 3) -> TextPreview:
        """How many different texts the campaign sends, and its first `first` recipients'
        texts (stored, or as they will be picked)."""
        return await self._db(self._text_preview, campaign_id, first)

    def _text_preview(self, campaign_id: int, first: int) -> TextPreview:
        camp = self.store.get_campaign(campaign_id)
        texts = CampaignTexts.of_campaign(camp)
        shown: list[str] = []
        for rec in self.store.recipients(campaign_id, limit=first):
            try:
                shown.append(texts.text_of(camp, rec))
            except RenderError as exc:
                shown.append(f"(not sent: {exc})")
        return TextPreview(texts.varied, texts.count(), shown)

    async def campaign(self, campaign_id: int) -> Campaign:
        return await self._db(self.store.get_campaign, campaign_id)

    async def campaign_page(
        self,
        sort: str,
        descending: bool,
        needle: str,
        *,
        offset: int,
        limit: int,
        around: int | None = None,
    ) -> CampaignPage:
        """One page of the dashboard's campaigns, sorted and filtered in the database
        (Store.campaign_page), read off the event loop."""
        return await self._db(
            self.store.campaign_page,
            sort,
            descending,
            needle,
            offset=offset,
            limit=limit,
            around=around,
        )

    async def recipients(
        self,
        campaign_id: int,
        status: str | None = None,
        *,
        start: int = 0,
        limit: int | None = None,
    ) -> list[Recipient]:
        return await self._db(self._recipients, campaign_id, status, start, limit)

    def _recipients(
        self, campaign_id: int, status: str | None, start: int, limit: int | None
    ) -> list[Recipient]:
        self.store.get_campaign(campaign_id)  # a clear error for an unknown id
        return self.store.recipients(campaign_id, status=status, start=start, limit=limit)

    async def campaign_events(self, campaign_id: int) -> list[CampaignEventRow]:
        """A campaign's history, oldest first: what happened, why, and who did it."""
        return await self._db(self._campaign_events, campaign_id)

    def _campaign_events(self, campaign_id: int) -> list[CampaignEventRow]:
        self.store.get_campaign(campaign_id)  # a clear error for an unknown id
        return self.store.events(campaign_id)

    async def campaign_window(
        self, campaign_id: int, *, before_next: int, limit: int, status: str | None = None
    ) -> tuple[Campaign, list[Recipient], int | None]:
        """A campaign and at most `limit` of its recipients (only those of `status`, if
        given), up to `before_next` of them before the next one to send: what a details view
        of a huge campaign shows, in one read; with a status, how many of its recipients
        have it (counted by the database, never by reading them)."""
        return await self._db(self._campaign_window, campaign_id, before_next, limit, status)

    def _campaign_window(
        self, campaign_id: int, before_next: int, limit: int, status: str | None
    ) -> tuple[Campaign, list[Recipient], int | None]:
        camp = self.store.get_campaign(campaign_id)
        rows, count = self.store.recipient_window(
            campaign_id, around=camp.next_index, before=before_next, limit=limit, status=status
        )
        return camp, rows, count

    # -- a campaign's life: delete, clone, edit -----------------------------------------

    async def delete_campaign(
        self, campaign_id: int, *, on_batch: Callable[[int], None] | None = None
    ) -> Deleted:
        """Delete a campaign that is not Running: its recipients, its history, and its image
        when no other campaign sends it.

        A campaign of a million recipients is deleted in short write transactions of
        `delete_batch` recipients, with a rest between them, so the write lock is never held
        long: it is first marked Deleting (nothing runs, resumes or edits it meanwhile), and
        its row goes last. A delete cut short leaves it Deleting; deleting it again finishes.
        `on_batch(deleted so far)` follows each batch. The deletion is logged (history.py),
        its history being gone with it."""
        before = await self._db(self.store.mark_deleting, campaign_id)
        gone = 0
        while True:
            started = time.monotonic()
            count = await self._db(self.store.delete_recipients, campaign_id, self.delete_batch)
            gone += count
            if on_batch is not None:
                on_batch(gone)
            if count < self.delete_batch:
                break
            # As long as the batch took, at least: a writer waiting meanwhile gets its turn.
            await asyncio.sleep(max(self.delete_rest, time.monotonic() - started))
        _last, image_removed = await self._db(self.store.drop_campaign, campaign_id)
        return Deleted(before, image_removed)

    async def clone_campaign(
        self,
        campaign_id: int,
        *,
        name: str | None = None,
        at: str | datetime | None = None,
        session: str | None = None,
    ) -> int:
        """A new Scheduled campaign from a campaign's own recipients (all of them, fresh),
        text, image and settings, whether or not its contact list still exists; named
        "<name> (copy)" unless `name` is given, due at `at` (now by default), on `session`
        (its own by default). Fields: name, at, session. Returns the new id."""
        return await self._db(self._clone_campaign, campaign_id, name, at, session)

    def _clone_campaign(
        self, campaign_id: int, name: str | None, at: str | datetime | None, session: str | None
    ) -> int:
        source = self.store.get_campaign(campaign_id)
        checks = _Checks()
        chosen = checks.run(
            "name", lambda: _campaign_name(copy_name(source.name) if name is None else name)
        )
        when = checks.run("at", lambda: parse_when(at))
        where = (
            checks.run("session", lambda: parse_sessions(session, what=ref("session")))
            if session is not None
            else None
        )
        checks.done()
        assert chosen is not None and when is not None
        return self.store.clone_campaign(campaign_id, name=chosen, scheduled_at=when, session=where)

    async def edit_campaign(
        self,
        campaign_id: int,
        *,
        name: str | None = None,
        at: str | datetime | None = None,
        delay: str | tuple[float, float] | None = None,
        session: str | None = None,
        check_numbers: bool | None = None,
        window: str | None = None,
        days: str | None = None,
        timezone: str | None = None,
        break_every: int | str | None = None,
        break_range: str | None = None,
    ) -> Edited:
        """Change a Scheduled or Paused campaign's name, start, delay, number check, send
        window ("any": none), its days ("any": every day), its zone, or its long breaks
        (after how many messages, 0: none; how long, "MIN-MAX" seconds) (None: kept), with
        the checks of create. Its session never changes (SESSION_FIXED): a `session` other
        than its own is refused. Fields: name, at, delay, session, window, days, timezone,
        break_every, break_range."""
        return await self._db(
            self._edit_campaign,
            campaign_id,
            name,
            at,
            delay,
            session,
            check_numbers,
            window,
            days,
            timezone,
            break_every,
            break_range,
        )

    def _edit_campaign(
        self,
        campaign_id: int,
        name: str | None,
        at: str | datetime | None,
        delay: str | tuple[float, float] | None,
        session: str | None,
        check_numbers: bool | None = None,
        window: str | None = None,
        days: str | None = None,
        timezone: str | None = None,
        break_every: int | str | None = None,
        break_range: str | None = None,
    ) -> Edited:
        camp = self.store.get_campaign(campaign_id)  # a clear error for an unknown id
        checks = _Checks()
        new_name = (
            checks.run("name", lambda: _campaign_name(name or "")) if name is not None else None
        )
        when = checks.run("at", lambda: parse_when(at)) if at is not None else None
        pace = checks.run("delay", lambda: _delay(delay)) if delay is not None else None
        if session is not None and session.strip() != Spread.of(camp).text():
            checks.add("session", SESSION_FIXED)
        new_window = new_days = new_zone = None
        if window is not None or days is not None or timezone is not None:
            # Checked as at creation, against what the campaign keeps of the three.
            keep_window = camp.send_window if window is None else window
            keep_days = camp.window_days if days is None else days
            if days is None and _any(keep_window):
                keep_days = None  # no window: its days go with it
            new_window, new_days, new_zone = _window(
                checks,
                None if _any(keep_window) else keep_window,
                None if _any(keep_days) else keep_days,
                timezone if timezone is not None else camp.timezone,
            )
            new_window, new_days = new_window or ANY_TIME, new_days or ANY_TIME
        breaks: tuple[int, float, float] | None = None
        if break_every is not None or break_range is not None:
            # Checked as at creation, against what the campaign keeps of the two; no
            # breaks any more (0) leaves no length behind.
            every_raw = camp.break_every if break_every is None else break_every
            kept = Pacing.of(camp).break_range
            off = str(every_raw).strip() == "0" and break_range is None
            span = (0.0, 0.0) if off else kept if break_range is None else break_range
            every, (low, high) = _breaks(checks, every_raw, span)
            breaks = (every, low, high)
        checks.done()
        asked = (name, at, delay, check_numbers, window, days, timezone, breaks)
        if all(v is None for v in asked):
            raise UserError(
                f"say what to change: {ref('name')}, {ref('at')}, {ref('delay')}, "
                f"{ref('check_numbers')}, {ref('window')}, {ref('days')}, {ref('timezone')}, "
                f"{ref('break_every')} or {ref('break_range')}"
            )
        edited, changes = self.store.edit_campaign(
            campaign_id,
            name=new_name,
            scheduled_at=when,
            delay=pace,
            check_numbers=check_numbers,
            window=new_window,
            days=new_days,
            timezone=new_zone,
            breaks=breaks,
        )
        return Edited(edited, changes)

    # -- runs --------------------------------------------------------------------------

    def running_here(self) -> list[int]:
        """The campaigns this process is sending right now."""
        return sorted(self.pool.runs)

    def runs_here(self, lease_owner: str | None) -> bool:
        """Whether a Running campaign's lease owner is this process."""
        return lease_owner is not None and lease_owner == self.pool.owner

    def request_pause(self, campaign_id: int, reason: str) -> bool:
        """Ask this process's run of a campaign to pause after the message in flight
        (False: it is not running here). No I/O: safe from a signal handler."""
        return self.pool.request_stop(campaign_id, S.PAUSED, reason)

    async def wait(self, campaign_id: int) -> ev.Ended | None:
        """How this process's run of a campaign ends (or ended)."""
        return await self.pool.wait(campaign_id)

    async def stop_all(self, reason: str) -> None:
        """Pause every run of this process after its message in flight, and await them."""
        await self.pool.stop_all(reason)

    async def pause(self, campaign_id: int) -> Campaign:
        camp = await self._db(self.store.get_campaign, campaign_id)
        if camp.status == S.RUNNING and self.pool.request_stop(
            campaign_id, S.PAUSED, PAUSED_BY_OPERATOR
        ):
            return camp  # our own runner pauses after the message in flight
        # Scheduled, or Running in another process: that runner sees it and stops.
        return await self._db(
            self.store.transition,
            campaign_id,
            S.PAUSED,
            expect=PAUSABLE,
            pause_reason=PAUSED_BY_OPERATOR,
        )

    async def cancel(self, campaign_id: int) -> Campaign:
        camp = await self._db(self.store.get_campaign, campaign_id)
        if camp.status == S.RUNNING and self.pool.request_stop(
            campaign_id, S.CANCELLED, CANCELLED_BY_OPERATOR
        ):
            return camp
        return await self._db(
            self.store.transition,
            campaign_id,
            S.CANCELLED,
            entry=Entry(Kind.CANCELLED, CANCELLED_BY_OPERATOR),
            completed_at=utcnow(),
        )

    async def check_session(self, session: str) -> SessionInfo:
        try:
            return await self.client.get_session(session)
        except Unreachable as exc:
            # Said once: the caller says what could not be done ("cannot resume ...").
            raise UserError(str(exc)) from None
        except Unauthorized:
            raise UserError(f"WAHA refused the API key (401): {CHECK_API_KEY}") from None

    async def resume(
        self,
        campaign_id: int,
        *,
        start: bool = True,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
        seen: Any | None = None,
        prepared: ResumePrep | None = None,
    ) -> CampaignRun | None:
        """Check its WAHA session, then run a Paused campaign at once (Paused -> Running),
        or a Failed one with recipients left (Failed -> Paused -> Running), from its next
        recipient.

        `seen`: the campaign as the caller last read it (the dashboard's row: its session
        and image): its session check and first message id are asked for while it is read
        again, and used if it still has that session and image. `prepared`: the same, asked
        for ahead (`prepare_resume`, while the row was highlighted), used if it is of that
        row and at most PREP_FRESH seconds old; it is the resume's from here either way.

        Returns once the runner has started (the caller chooses whether to wait), or None
        when it was only marked Scheduled: with start=False (for a `waha-tui run`
        elsewhere), or when it never started and its scheduled time is still ahead.
        """
        # Until its claim: this process's WAHA events writer does not take the write lock
        # meanwhile, so the claim finds it free (on the loop, without a thread hop).
        with self.store.urgent():
            return await self._resume(
                campaign_id, start=start, spawn=spawn, seen=seen, prepared=prepared
            )

    def prepare_resume(self, row: Any) -> ResumePrep | None:
        """What a resume of `row` (a campaign as the dashboard shows it, highlighted) asks
        WAHA before its claim, asked now: its session's state and its first message id, so
        an `r` that follows finds them ready. Harmless if unused (`drop_prep`): nothing is
        stored or sent, and an unused id is only never used. None: not resumable here."""
        if row.sessions or not can_resume(row.status, row.next_index, row.total):
            return None
        check = asyncio.ensure_future(self.check_session(row.session))
        return ResumePrep(
            row.id,
            row.session,
            takes_ids(row),
            check,
            self.pool.prefetch_ids(row),
            self.pool.config.clock.monotonic(),
        )

    def drop_prep(self, prep: ResumePrep | None) -> None:
        if prep is not None:
            self._drop_early((prep.session, prep.check, prep.ids))

    async def _resume(
        self,
        campaign_id: int,
        *,
        start: bool,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None,
        seen: Any | None,
        prepared: ResumePrep | None = None,
    ) -> CampaignRun | None:
        early: tuple[str, asyncio.Task[SessionInfo], IdSupply | None] | None = None
        seen_takes_ids = False
        if prepared is not None:
            age = self.pool.config.clock.monotonic() - prepared.at
            fits = seen is not None and (prepared.campaign_id, prepared.session) == (
                campaign_id,
                seen.session,
            )
            if start and fits and seen is not None:
                check = prepared.check
                if age > PREP_FRESH or check.cancelled():
                    # Its id keeps; its session's state is asked again.
                    check.cancel()
                    check.add_done_callback(_quietly)
                    check = asyncio.ensure_future(self.check_session(seen.session))
                early = (prepared.session, check, prepared.ids)
                seen_takes_ids = prepared.takes_ids
            else:
                self.drop_prep(prepared)
        if early is None and seen is not None and start and not seen.sessions:
            # The session check and the first message id are on the way before the read.
            check = asyncio.ensure_future(self.check_session(seen.session))
            early = (seen.session, check, self.pool.prefetch_ids(seen))
            seen_takes_ids = takes_ids(seen)
        try:
            camp = await self._read(self.store.get_campaign, campaign_id)
        except BaseException:
            self._drop_early(early)
            raise
        if early is not None and (early[0] != camp.session or takes_ids(camp) != seen_takes_ids):
            self._drop_early(early)  # changed since it was seen: ask again
            early = None
        if not can_resume(camp.status, camp.next_index, camp.total):
            self._drop_early(early)
            if camp.status == S.FAILED:
                raise UserError(
                    f"campaign {campaign_id} is Failed with no recipient left to send: "
                    f"`waha-tui campaign retry {campaign_id}` queues its failed or unknown "
                    "ones again"
                )
            raise UserError(
                f"campaign {campaign_id} is {described(camp.status)}: only a Paused campaign, or a "
                "Failed one with recipients left to send, can be resumed"
            )
        not_yet_due = (
            camp.started_at is None
            and camp.scheduled_at is not None
            and camp.scheduled_at > utcnow()
        )
        if not_yet_due:
            self._drop_early(early)
            early = None
        # The run's first message id is fetched while the session is checked.
        if early is not None:
            ids = early[2]
        else:
            ids = self.pool.prefetch_ids(camp) if start and not not_yet_due else None
        try:
            checked = await self._before_start(
                campaign_id, camp, start, not_yet_due, early[1] if early else None
            )
        except BaseException:
            if ids is not None:
                ids.stop()  # refused: no run took them
            raise
        if checked is None:
            return None
        if early is not None and prepared is not None and early[1] is prepared.check:
            checked = (checked[0], prepared.at)  # asked then: the runner counts from then
        # The claim takes it from Paused to Running in one transaction, so a refusal (its
        # session busy, claimed elsewhere) leaves it Paused, not Scheduled behind our back.
        # The runner does not ask WAHA about the session again before its first message;
        # from here the ids are the run's (`start` stops them if it cannot start).
        return await self.pool.start(campaign_id, spawn, session_checked=checked, ids=ids)

    @staticmethod
    def _drop_early(
        early: tuple[str, asyncio.Task[SessionInfo], IdSupply | None] | None,
    ) -> None:
        if early is None:
            return
        _, check, ids = early
        check.cancel()
        check.add_done_callback(_quietly)  # its error, if any, is nobody's now
        if ids is not None:
            ids.stop()

    async def _before_start(
        self,
        campaign_id: int,
        camp: Campaign,
        start: bool,
        not_yet_due: bool,
        check: asyncio.Task[SessionInfo] | None = None,
    ) -> tuple[str, float] | None:
        """The session check (`check`: already under way), and what is written before a
        run may start: (session, when it was found WORKING), or None when the campaign was
        only marked Scheduled."""
        if camp.sessions:
            checked = await self._any_session_working(camp)
        else:
            info = await (check if check is not None else self.check_session(camp.session))
            if not info.working:
                raise UserError(
                    f"session '{camp.session}' is {info.status}: start it and scan the QR "
                    "code first"
                )
            checked = (camp.session, self.pool.config.clock.monotonic())
        # A Failed campaign is no longer finished once resumed.
        reopened: dict[str, Any] = {"completed_at": None} if camp.status == S.FAILED else {}
        if not start or not_yet_due:
            # A campaign paused before its start time goes back to waiting for it.
            when = "at its scheduled time" if not_yet_due else "by `waha-tui run` or a dashboard"
            await self._db(
                self.store.transition,
                campaign_id,
                S.SCHEDULED,
                expect=(camp.status,),
                entry=Entry(Kind.RESUMED, f"scheduled again, to be sent {when}"),
                pause_reason=None,
                **reopened,
            )
            return None
        if camp.status == S.FAILED:
            # The claim takes Paused (or Scheduled) campaigns only; should it be refused
            # (its session busy elsewhere), the campaign is left Paused: r resumes it.
            await self._db(
                self.store.transition,
                campaign_id,
                S.PAUSED,
                expect=(S.FAILED,),
                entry=Entry(
                    Kind.PAUSED,
                    "reopened to be resumed: it has recipients left",
                    level=logging.INFO,
                ),
                pause_reason=None,
                **reopened,
            )
        return checked

    async def _any_session_working(self, camp: Campaign) -> tuple[str, float]:
        """A campaign with several sessions starts when one of them is WORKING: the
        others' shares wait for theirs (each run checks its own)."""
        names = Spread.of(camp).names
        found = await asyncio.gather(
            *(self.check_session(name) for name in names), return_exceptions=True
        )
        if any(isinstance(info, SessionInfo) and info.working for info in found):
            return ("", self.pool.config.clock.monotonic())  # each run asks its own
        states = []
        for name, info in zip(names, found, strict=True):
            if isinstance(info, UserError):
                raise info  # WAHA unreachable, the key refused: the same for them all
            if isinstance(info, SessionMissing):
                states.append(f"'{name}' missing")
            elif isinstance(info, BaseException):
                raise info
            else:
                states.append(f"'{name}' {info.status}")
        raise UserError(
            f"none of the campaign's sessions is WORKING ({', '.join(states)}): start one "
            "and scan its QR code first"
        )

    async def start(
        self, campaign_id: int, spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None
    ) -> CampaignRun:
        return await self.pool.start(campaign_id, spawn)

    async def retry(
        self,
        campaign_id: int,
        *,
        unknown: bool,
        failed: bool,
        unconfirmed: bool = False,
        confirmed: bool = False,
    ) -> int:
        """Queue unknown, failed and/or unconfirmed recipients again; the campaign is left
        Paused. Unconfirmed ones whose repeats WhatsApp would not dedupe
        (`plan_unconfirmed_retry`) need `confirmed`: NeedsConfirmation otherwise."""
        if not unknown and not failed and not unconfirmed:
            raise UserError("say what to retry: --unknown, --failed, --unconfirmed or several")
        wanted = [RecipientStatus.UNKNOWN] * unknown + [RecipientStatus.FAILED] * failed
        keep_ids = True
        if unconfirmed:
            plan = await self.plan_unconfirmed_retry(campaign_id)
            if plan.question is not None and not confirmed and plan.count:
                raise NeedsConfirmation(
                    f"campaign {campaign_id}: {plan.count} unconfirmed recipients would be sent "
                    "as new messages, which may arrive twice: confirm first"
                )
            keep_ids = plan.deduped
        return await self._db(
            self.store.retry_recipients,
            campaign_id,
            wanted,
            unconfirmed=unconfirmed,
            keep_ids=keep_ids,
        )

    async def plan_unconfirmed_retry(self, campaign_id: int) -> UnconfirmedRetry:
        """What `retry(unconfirmed=True)` would do, for the CLI and the dashboard to ask
        the same question: repeats are deduped only when the campaign sends text (an image
        takes no id) and every session it sends through takes pre-generated ids (asked of
        WAHA once, if this process does not know yet: an older WAHA ignores the id, and
        WEBJS has none)."""
        camp = await self._read(self.store.get_campaign, campaign_id)
        count = camp.unconfirmed
        deduped = bool(count) and takes_ids(camp)
        if deduped:
            for session in names_of(camp.session, camp.sessions):
                if not await self._session_takes_ids(session):
                    deduped = False
                    break
        return UnconfirmedRetry(campaign_id, count, deduped)

    async def _session_takes_ids(self, session: str) -> bool:
        known = self.client.message_ids(session)
        if known is not None:
            return known
        try:
            await self.client.new_message_id(session)  # one unused id: harmless
        except WahaError:
            # No such route (before 2026.4.3), WEBJS's 422, or WAHA not answering: not
            # known to take them, so the operator is asked.
            return False
        return True

    async def recover_interrupted(self) -> list[int]:
        return await self._db(self.store.recover_interrupted)

    async def sessions(self) -> list[SessionInfo]:
        return await self.client.list_sessions()

    def is_finished(self, camp: Campaign) -> bool:
        return camp.status in FINISHED


_NUMBER = re.compile(r"^\+?[\d\s().-]+$")


class CapsService:
    """Per-number caps (issue 17): messages per hour and per day from one WhatsApp number,
    whichever campaign, session name or host sends from it, and a new number's warm-up.
    The rules are pacing.Caps'; the store counts and checks them as it reserves a send."""

    def __init__(self, store: Store, client: WahaClient) -> None:
        self.store, self.client = store, client

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def number_of(self, target: str) -> str:
        """A number ("+49 151 ...", international) as me.id's digits, or a session's number
        as WAHA says it (the session must be linked: `me`)."""
        text = (target or "").strip()
        if _NUMBER.match(text) and any(ch.isdigit() for ch in text):
            try:
                return normalise_phone(text)
            except UserError as exc:
                raise UserError(f"{ref('target')} {text!r}: {exc}") from None
        try:
            info = await self.client.get_session(text)
        except SessionMissing:
            raise UserError(f"{ref('target')}: WAHA has no session '{text}'") from None
        except (Unreachable, Unauthorized, WahaError) as exc:
            raise UserError(f"{ref('target')} '{text}': WAHA: {exc}") from None
        if info.number is None:
            raise UserError(
                f"{ref('target')}: session '{text}' shows no number yet (it is "
                f"{info.status}, no phone linked): link it, or give the number itself"
            )
        return info.number

    async def set(
        self,
        target: str,
        *,
        per_hour: int | None = None,
        per_day: int | None = None,
        timezone: str | None = None,
        warmup: str | None = None,
        warmup_start: str | None = None,
    ) -> CapUse:
        """Set a number's caps; what is not given keeps its value (0 per hour or per day,
        "off" as the warm-up: none). A new number's day ends in this machine's zone unless
        given. The warm-up starts today (in the caps' zone) unless given, or kept."""
        number = await self.number_of(target)
        found = await self._db(self.store.number_caps, number)
        old = found[0] if found else None
        zone = (
            check_zone(timezone, field="caps_zone")
            if timezone is not None
            else (old.timezone if old else local_zone())
        )
        if zone is None:
            raise UserError(
                "this machine's time zone cannot be known (no TZ, and /etc/localtime does "
                f"not link into a zoneinfo folder): give {ref('caps_zone')}, e.g. Europe/Berlin"
            )
        hour = _cap(per_hour, "per_hour", old.per_hour if old else None)
        day = _cap(per_day, "per_day", old.per_day if old else None)
        plan: tuple[int, ...] = tuple(old.warmup or ()) if old else ()
        if warmup is not None:
            plan = () if warmup.strip().lower() in ("off", "none") else parse_warmup(warmup)
        caps = Caps(per_hour=hour, per_day=day, zone=zone, warmup=plan)
        start = old.warmup_start if old and old.warmup else None
        if warmup_start is not None:
            try:
                day_one = datetime.strptime(warmup_start.strip(), "%Y-%m-%d").date()
            except ValueError:
                raise UserError(
                    f"{ref('warmup_start')} {warmup_start!r} is not a date (YYYY-MM-DD)"
                ) from None
            start = caps.day_of(day_one)
        elif plan and start is None:
            start = caps.day_start(utcnow())
        if warmup_start is not None and not plan:
            raise UserError(f"{ref('warmup_start')} needs a warm-up plan ({ref('warmup')})")
        if not (hour or day or plan):
            raise UserError(
                f"no cap for {number}: give {ref('per_hour')}, {ref('per_day')} or {ref('warmup')}"
            )
        await self._db(
            self.store.set_caps,
            number,
            per_hour=hour,
            per_day=day,
            zone=zone,
            warmup=plan,
            warmup_start=start,
        )
        uses = await self._db(self.store.cap_uses, [number])
        return uses[number]

    async def show(self) -> list[CapUse]:
        """Every number with caps, with what it sent this hour and today."""
        uses = await self._db(self.store.cap_uses)
        return [uses[n] for n in sorted(uses)]

    async def clear(self, target: str) -> str:
        """Remove a number's caps; its number. Unknown: an error."""
        number = await self.number_of(target)
        if not await self._db(self.store.clear_caps, number):
            raise NotFound(f"{ref('number')} +{number} has no caps")
        return number

    async def for_sessions(self, sessions: Sequence[SessionInfo]) -> dict[str, CapUse]:
        """Each session's number's caps and counts, by session name (sessions with no
        number, or whose number has no caps, are left out): one read."""
        numbers = {s.name: s.number for s in sessions if s.number}
        if not numbers:
            return {}
        uses = await self._db(self.store.cap_uses, set(numbers.values()))
        return {name: uses[n] for name, n in numbers.items() if n in uses}


def _cap(value: int | None, field: str, old: int | None) -> int | None:
    if value is None:
        return old
    if value == 0:
        return None
    return parse_cap(value, field)


class OptOutService:
    """The opt-out list (numbers never messaged again) and its keywords, for the CLI and
    the dashboard. Numbers go through phones.normalise_phone; bad input is InvalidInput."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _db(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def add(
        self, phone: str, *, reason: str | None = None, country: str | None = None
    ) -> tuple[str, bool]:
        """The number as the list holds it, and whether it is new there (False: it was on
        the list already, unchanged). Fields: phone, country."""
        number = _phone(phone, country)
        entry = OptOutEntry(number, "hand", (reason or "").strip() or None)
        return number, bool(await self._db(self.store.add_optouts, [entry]))

    async def remove(self, phone: str, *, country: str | None = None) -> str:
        """Fields: phone, country. Returns the number removed; NotFound if it was not on
        the list."""
        number = _phone(phone, country)
        if not await self._db(self.store.remove_optout, number):
            raise NotFound(f"{number} is not on the opt-out list")
        return number

    async def page(
        self, search: str = "", *, offset: int = 0, limit: int = 100
    ) -> tuple[list[OptOut], int]:
        """A page of the list (newest first) and how many match; `search`: a part of the
        number. Field: search."""
        if search.strip() and not any(ch.isdecimal() for ch in search):
            raise InvalidInput([FieldError("search", f"{ref('search')} {search!r} holds no digit")])
        return await self._db(self._page, search, offset, limit)

    def _page(self, search: str, offset: int, limit: int) -> tuple[list[OptOut], int]:
        return (
            self.store.optouts(search, offset=offset, limit=limit),
            self.store.count_optouts(search),
        )

    async def import_file(self, path: str, *, country: str | None = None) -> OptOutImport:
        """Every number of a CSV file's phone column added (all or nothing: a bad line
        refuses the file, naming it and the line), its reason the file and line, or the
        file's `reason` column. Fields: path, country."""
        return await self._db(self._import_file, path, country)

    def _import_file(self, path: str, country: str | None) -> OptOutImport:
        checks = _Checks()
        region = checks.run("country", lambda: check_country(country)) if country else None
        result = None
        if region is not None or not country:
            result = checks.run("path", lambda: parse_contacts(path, country=region))
        checks.done()
        assert result is not None
        name = Path(path).name
        entries = [
            OptOutEntry(
                c.phone,
                "import",
                (c.variables.get("reason") or "").strip() or f"{name} line {c.line}",
            )
            for c in result.contacts
        ]
        added = self.store.add_optouts(entries)
        return OptOutImport(len(added), len(entries) - len(added), result.duplicates)

    async def opted_out(self, phones: list[str]) -> set[str]:
        return await self._db(self.store.opted_out, phones)

    async def keywords(self) -> Keywords:
        stored = await self._db(self.store.optout_keywords)
        if stored is None:
            return Keywords(list(DEFAULT_KEYWORDS), True)
        return Keywords(stored, False)

    async def set_keywords(self, words: str | Sequence[str]) -> Keywords:
        """A new list for every host: a comma-separated text or a list. Field: keywords."""
        # "STOP, BAJA," : an empty piece of a comma-separated text is no keyword.
        given = (
            [w for w in words.split(",") if w.strip()] if isinstance(words, str) else list(words)
        )
        try:
            chosen = checked_keywords(given)
        except UserError as exc:
            raise InvalidInput([FieldError("keywords", exc.text)]) from None
        await self._db(self.store.set_optout_keywords, chosen)
        return Keywords(chosen, False)

    async def reset_keywords(self) -> Keywords:
        """Back to the built-in list (which later versions of waha-tui may extend)."""
        await self._db(self.store.set_optout_keywords, None)
        return Keywords(list(DEFAULT_KEYWORDS), True)


def _phone(raw: str, country: str | None) -> str:
    checks = _Checks()
    region = checks.run("country", lambda: check_country(country)) if country else None
    number = None
    if region is not None or not country:  # a refused country would refuse the number too
        number = checks.run("phone", lambda: normalise_phone(raw, region))
    checks.done()
    assert number is not None
    return number


def _required(what: str, value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise UserError(f"{what} is empty")
    return value


def _campaign_name(name: str) -> str:
    name = _required(ref("name"), name)
    if len(name) > MAX_NAME:
        raise UserError(f"{ref('name')} is longer than {MAX_NAME} characters")
    return name


def copy_name(name: str) -> str:
    """A clone's name: "<name> (copy)", the name shortened (…) to fit MAX_NAME."""
    room = MAX_NAME - len(COPY)
    return (name if len(name) <= room else name[: room - 1] + "…") + COPY


def _delay(value: str | tuple[float, float] | None) -> tuple[float, float]:
    return parse_delay(value) if isinstance(value, str) else value or DEFAULT_DELAY


def _any(value: str | None) -> bool:
    """A window or days given as "any" (in an edit): none, any time, every day."""
    return value is not None and value.strip().lower() in ("any", ANY_TIME)


def _window(
    checks: _Checks, window: str | None, days: str | None, zone: str | None
) -> tuple[str | None, str | None, str | None]:
    """The send window, its days and zone as stored: (None, None, zone) for any time.
    The zone defaults to this machine's; a window with no zone to be had is refused."""
    hours = checks.run("window", lambda: parse_window(window or "")) if window else None
    chosen = checks.run("days", lambda: parse_days(days or "")) if days else None
    if days and not window:
        checks.add("days", f"{ref('days')} needs a {ref('window')}, e.g. 09:00-20:00")
    if chosen == ",".join(DAYS):
        chosen = None  # every day: the same as none
    given = (zone or "").strip()
    where = checks.run("timezone", lambda: check_zone(given)) if given else local_zone()
    if window and not given and where is None:
        checks.add(
            "timezone",
            "this machine's time zone cannot be known (no TZ, and /etc/localtime does not "
            f"link into a zoneinfo folder): give {ref('timezone')}, e.g. Europe/Berlin",
        )
    return hours, chosen, where


def _breaks(
    checks: _Checks,
    raw: int | str,
    given: str | tuple[float, float] | None,
    seconds: float = 0.0,
) -> tuple[int, tuple[float, float]]:
    """The long breaks: after how many messages (`raw`), and their range in seconds
    (`given`: "MIN-MAX", or a range; None: `seconds` to `seconds`)."""
    every = 0
    try:
        every = int(str(raw).strip() or "0")
        if every < 0:
            raise ValueError(raw)
    except ValueError:
        checks.add("break_every", f"{ref('break_every')} {raw!r} is not a whole number of messages")
    if isinstance(given, str) and given.strip():
        span = checks.run("break_range", lambda: parse_break(str(given))) or (0.0, 0.0)
    elif isinstance(given, tuple):
        span = given
    else:
        span = (seconds, seconds)
        given = None
    if every and given is None and not seconds:
        checks.add("break_range", f"{ref('break_every')} needs {ref('break_range')} MIN-MAX")
    if given is not None and not every and span != (0.0, 0.0):
        checks.add("break_every", f"{ref('break_range')} needs {ref('break_every')} N")
    return every, span


def _list_taken(name: str) -> str:
    return f"a contact list named '{name}' already exists: delete it or pick another name"


def _template_taken(name: str) -> str:
    return f"a template named '{name}' already exists"


def _template_name(name: str) -> str:
    name = _required("template name", name)
    if len(name) > MAX_NAME:
        raise UserError(f"template name is longer than {MAX_NAME} characters")
    return name


def _check_template_text(checks: _Checks, name: str, text: str) -> None:
    for error in check_template(text).errors:
        checks.add("text", f"template '{name}': {error}")


def _check_variants(checks: _Checks, variants: Sequence[str]) -> list[str] | None:
    """The draft's variants as stored, or None with each one's errors recorded (numbered
    from 1, as given: --variant flags, or the form's blocks)."""
    ok = True
    for i, variant in enumerate(variants, start=1):
        if not variant.strip():
            checks.add("variants", f"{ref('variants')} {i} is empty")
            ok = False
        for error in template_errors(variant):
            checks.add("variants", f"{ref('variants')} {i}, {error}")
            ok = False
    return list(variants) if ok else None


def _new_recipients(result: ImportResult) -> list[NewRecipient]:
    return [
        NewRecipient(c.phone, chat_id_for(c.phone), c.name, c.variables) for c in result.contacts
    ]


def _unknown_columns(text: str, list_name: str, recipients: list[NewRecipient]) -> str | None:
    """The message's placeholders the list has no column for (an error of the message)."""
    columns: set[str] = set()
    for r in recipients:
        columns.update(r.variables)
    unknown = unknown_placeholders(text, columns)
    if not unknown:
        return None
    names = ", ".join("{" + u + "}" for u in unknown)
    have = ", ".join(sorted(columns)) or "none"
    return f"unknown placeholder {names} in the message: list '{list_name}' has the columns {have}"


def _empty_values(text: str, list_name: str, recipients: list[NewRecipient]) -> str | None:
    """Contacts whose column for a placeholder is empty (an error of the list)."""
    missing: dict[str, list[int]] = {}
    for i, r in enumerate(recipients):
        for key in placeholders(text):
            if key != "name" and not (r.variables.get(key) or "").strip():
                missing.setdefault(key, []).append(i + 1)
    if not missing:
        return None
    key, rows = next(iter(missing.items()))
    shown = ", ".join(map(str, rows[:10])) + (
        f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    )
    return f"{{{key}}} is empty for contacts {shown} of list '{list_name}'"


__all__ = [
    "CampaignDraft",
    "CampaignPage",
    "CampaignPlan",
    "CampaignService",
    "Created",
    "Deleted",
    "Edited",
    "FieldError",
    "InvalidInput",
    "Keywords",
    "ListInfo",
    "NeedsConfirmation",
    "NewRecipient",
    "NotFound",
    "OptOutImport",
    "OptOutService",
    "TemplateCheck",
    "TextPreview",
    "TransitionError",
    "UnconfirmedRetry",
    "WahaError",
    "check_template",
    "parse_when",
]


# How old a resume's session check and first id, asked for while its row was highlighted,
# may be when `r` comes: older, they are asked again (the runner's first session check
# after the claim counts from the check's time, as when it is asked at `r`).
PREP_FRESH = 2.0


@dataclass
class ResumePrep:
    """A resume's questions to WAHA, asked ahead (`CampaignService.prepare_resume`)."""

    campaign_id: int
    session: str
    takes_ids: bool
    check: asyncio.Task[SessionInfo]
    ids: IdSupply | None
    at: float  # when they were asked (the runner's clock)


def _quietly(task: asyncio.Task[Any]) -> None:
    """A task nobody awaits any more: its error is read, so asyncio does not report it."""
    if not task.cancelled():
        task.exception()
