"""Campaign operations and their validation: the one API the CLI and the dashboard call."""

from __future__ import annotations

import asyncio
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from waha_tui import events as ev
from waha_tui.config import Settings
from waha_tui.csv_import import ImportResult, parse_contacts
from waha_tui.errors import UserError
from waha_tui.models import Campaign, Recipient, utcnow
from waha_tui.pacing import DEFAULT_DELAY, parse_delay
from waha_tui.phones import chat_id_for
from waha_tui.render import NAME, placeholders, unknown_placeholders
from waha_tui.runner import CampaignRun, RunnerConfig, RunnerPool
from waha_tui.status import FINISHED, CampaignStatus, RecipientStatus, TransitionError
from waha_tui.store import ListInfo, NewRecipient, Store
from waha_tui.waha import SessionInfo, Unauthorized, Unreachable, WahaClient, WahaError

S = CampaignStatus
MAX_IMAGE_BYTES = 16 * 1024 * 1024
MAX_NAME = 200  # the size of the name columns
PAUSED_BY_OPERATOR = "paused by the operator"


@dataclass
class CampaignDraft:
    name: str
    message: str | None = None
    template: str | None = None
    contacts_file: str | None = None
    list_name: str | None = None
    country: str | None = None
    image: str | None = None
    session: str = "default"
    at: str | datetime | None = None
    delay: str | tuple[float, float] | None = None
    default_name: str = "there"
    typing: bool = False
    break_every: int = 0
    break_seconds: float = 0.0
    max_consecutive_failures: int = 10
    auto_resume: bool = False  # if its runner dies: Scheduled again, not Paused


@dataclass(frozen=True)
class CampaignPlan:
    """A checked draft: the campaign and its recipients, not written yet."""

    campaign: Campaign
    recipients: list[NewRecipient]


@dataclass(frozen=True)
class TemplateCheck:
    """What saving a template's text would meet: refused for `errors`, told `warnings`."""

    errors: list[str]
    warnings: list[str]


def check_template(text: str) -> TemplateCheck:
    """The template rules, for saving (CLI and dashboard) and for the editor's live check.

    Refused: an empty text, and a broken placeholder: a "{" followed by a name that is not a
    placeholder, such as {first.name}, {city:} or a {name left without its "}". Sent as
    written to every contact, it is surely a typo. Braces around anything else ({}, { },
    {"a": 1}) stay plain text, as render.py says, and are allowed.

    Told, not refused: every placeholder but {name}. A template is written before a list is
    chosen, so {city} is fine here; it needs a column city in the contact list, and
    create_campaign checks that against the list it is sent to.
    """
    if not text.strip():
        return TemplateCheck(["the text is empty"], [])
    errors = [_broken_placeholder_error(chunk) for chunk in _broken_placeholders(text)]
    warnings = [
        f"{{{key}}} needs a column {key} in the contact list"
        for key in placeholders(text)
        if key != NAME
    ]
    return TemplateCheck(errors, warnings)


def _broken_placeholders(text: str) -> list[str]:
    """Each "{name..." that starts like a placeholder and is not one (render.py decides)."""
    found: list[str] = []
    for line in text.splitlines():
        start = 0
        while (i := line.find("{", start)) != -1:
            start = i + 1
            close, reopen = line.find("}", start), line.find("{", start)
            if close != -1 and (reopen == -1 or close < reopen):
                chunk = line[i : close + 1]
            else:
                chunk = line[i : reopen if reopen != -1 else len(line)]
            inner = chunk[1:].lstrip(" ")
            if (inner[:1].isalnum() or inner[:1] == "_") and not placeholders(chunk):
                found.append(chunk)
    return found


def _broken_placeholder_error(chunk: str) -> str:
    if chunk.endswith("}"):
        return (
            f"{chunk} is not a placeholder: write a name of letters, digits, _, - or spaces"
            " between { and }, e.g. {first_name}"
        )
    head = chunk[1:].lstrip(" ")
    word = head[: next((i for i, ch in enumerate(head) if not (ch.isalnum() or ch == "_")), None)]
    return f"{{{word} has no closing }}"


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
                f"--at {value!r} is not an ISO-8601 date and time, e.g. 2026-12-01T09:30"
            ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time
    return parsed.astimezone(UTC)


class CampaignService:
    def __init__(self, store: Store, client: WahaClient, pool: RunnerPool | None = None) -> None:
        self.store = store
        self.client = client
        self.pool = pool or RunnerPool(store, client)

    @classmethod
    def open(cls, settings: Settings, *, config: RunnerConfig | None = None) -> CampaignService:
        store = Store(settings.db)
        client = WahaClient(settings.waha_url, settings.api_key)
        return cls(store, client, RunnerPool(store, client, config=config))

    @property
    def bus(self) -> ev.EventBus:
        return self.pool.bus

    async def aclose(self) -> None:
        await self.client.aclose()
        self.store.close()

    # -- contacts and templates --------------------------------------------------------

    def import_contacts(
        self, path: str, list_name: str, *, country: str | None = None
    ) -> tuple[int, ImportResult]:
        list_name = _required("--list", list_name)
        result = parse_contacts(path, country=country)
        list_id = self.store.create_list(list_name, _new_recipients(result))
        return list_id, result

    def lists(self) -> list[ListInfo]:
        return self.store.lists()

    def list_contacts(self, name: str) -> list[NewRecipient]:
        return self.store.list_contacts(name)

    def delete_list(self, name: str) -> None:
        # Campaigns copied their recipients when created, so none is affected.
        self.store.delete_list(name)

    def add_template(self, name: str, text: str) -> int:
        name = _template_name(name)
        _check_template_text(name, text)
        return self.store.add_template(name, text)

    def update_template(self, name: str, text: str) -> None:
        name = _template_name(name)
        _check_template_text(name, text)
        self.store.update_template(name, text)

    def delete_template(self, name: str) -> None:
        # Campaigns copied the text when they were created, so none is affected.
        self.store.delete_template(name)

    def templates(self) -> list[Any]:
        return self.store.templates()

    # -- campaigns ---------------------------------------------------------------------

    def create_campaign(self, draft: CampaignDraft) -> int:
        plan = self.plan_campaign(draft)
        return self.store.create_campaign(plan.campaign, plan.recipients)

    def plan_campaign(self, draft: CampaignDraft) -> CampaignPlan:
        """Every check of create_campaign, and what it would write, without writing it."""
        name = _required("--name", draft.name)
        if len(name) > MAX_NAME:
            raise UserError(f"--name is longer than {MAX_NAME} characters")
        if bool(draft.message) == bool(draft.template):
            raise UserError("give either --message or --template (exactly one)")
        if bool(draft.contacts_file) == bool(draft.list_name):
            raise UserError("give either --contacts FILE.csv or --list NAME (exactly one)")
        text = draft.message or self.store.get_template(draft.template or "").text
        if not text.strip():
            raise UserError("the message is empty")
        session = _required("--session", draft.session)
        when = parse_when(draft.at)
        low, high = (
            parse_delay(draft.delay)
            if isinstance(draft.delay, str)
            else draft.delay or DEFAULT_DELAY
        )
        image_path, image_mime = _check_image(draft.image) if draft.image else (None, None)
        if draft.contacts_file:
            result = parse_contacts(draft.contacts_file, country=draft.country, template=text)
            recipients = _new_recipients(result)
            source = Path(draft.contacts_file).name
        else:
            recipients = self.store.list_contacts(draft.list_name or "")
            _check_list_fits(text, draft.list_name or "", recipients)
            source = draft.list_name
        if not recipients:
            raise UserError("the campaign has no recipients")
        campaign = Campaign(
            name=name,
            session=session,
            template_text=text,
            default_name=draft.default_name,
            image_path=image_path,
            image_mime=image_mime,
            list_name=source,
            scheduled_at=when,
            delay_min=low,
            delay_max=high,
            typing=draft.typing,
            break_every=draft.break_every,
            break_seconds=draft.break_seconds,
            max_consecutive_failures=draft.max_consecutive_failures,
            auto_resume=draft.auto_resume,
        )
        return CampaignPlan(campaign, list(recipients))

    def campaigns(self) -> list[Campaign]:
        return self.store.list_campaigns()

    def campaign(self, campaign_id: int) -> Campaign:
        return self.store.get_campaign(campaign_id)

    def recipients(self, campaign_id: int, status: str | None = None) -> list[Recipient]:
        self.store.get_campaign(campaign_id)  # a clear error for an unknown id
        return self.store.recipients(campaign_id, status=status)

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

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
            expect=(S.RUNNING, S.SCHEDULED),
            pause_reason=PAUSED_BY_OPERATOR,
        )

    async def cancel(self, campaign_id: int) -> Campaign:
        camp = await self._db(self.store.get_campaign, campaign_id)
        if camp.status == S.RUNNING and self.pool.request_stop(
            campaign_id, S.CANCELLED, "cancelled by the operator"
        ):
            return camp
        return await self._db(
            self.store.transition, campaign_id, S.CANCELLED, completed_at=utcnow()
        )

    async def check_session(self, session: str) -> SessionInfo:
        try:
            return await self.client.get_session(session)
        except Unreachable:
            raise UserError(
                f"WAHA at {self.client.base_url} is unreachable: cannot resume"
            ) from None
        except Unauthorized:
            raise UserError("WAHA refused the API key (401): check WAHA_API_KEY") from None

    async def resume(
        self,
        campaign_id: int,
        *,
        start: bool = True,
        spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None,
    ) -> CampaignRun | None:
        """Check its WAHA session, then run a Paused campaign at once (Paused -> Running).

        Returns once the runner has started (the caller chooses whether to wait), or None
        when it was only marked Scheduled: with start=False (for a `waha-tui run`
        elsewhere), or when it never started and its scheduled time is still ahead.
        """
        camp = await self._db(self.store.get_campaign, campaign_id)
        if camp.status != S.PAUSED:
            raise UserError(
                f"campaign {campaign_id} is {camp.status}: only a Paused campaign can be resumed"
            )
        info = await self.check_session(camp.session)
        if not info.working:
            raise UserError(
                f"session '{camp.session}' is {info.status}: start it and scan the QR code first"
            )
        not_yet_due = (
            camp.started_at is None
            and camp.scheduled_at is not None
            and camp.scheduled_at > utcnow()
        )
        if not start or not_yet_due:
            # A campaign paused before its start time goes back to waiting for it.
            await self._db(
                self.store.transition,
                campaign_id,
                S.SCHEDULED,
                expect=(S.PAUSED,),
                pause_reason=None,
            )
            return None
        # The claim takes it from Paused to Running in one transaction, so a refusal (its
        # session busy, claimed elsewhere) leaves it Paused, not Scheduled behind our back.
        return await self.pool.start(campaign_id, spawn)

    async def start(
        self, campaign_id: int, spawn: Callable[[Awaitable[ev.Ended]], Any] | None = None
    ) -> CampaignRun:
        return await self.pool.start(campaign_id, spawn)

    async def retry(self, campaign_id: int, *, unknown: bool, failed: bool) -> int:
        """Queue unknown and/or failed recipients again; the campaign is left Paused."""
        if not unknown and not failed:
            raise UserError("say what to retry: --unknown, --failed or both")
        wanted = [RecipientStatus.UNKNOWN] * unknown + [RecipientStatus.FAILED] * failed
        return await self._db(self.store.retry_recipients, campaign_id, wanted)

    def recover_interrupted(self) -> list[int]:
        return self.store.recover_interrupted()

    async def sessions(self) -> list[SessionInfo]:
        return await self.client.list_sessions()

    def is_finished(self, camp: Campaign) -> bool:
        return camp.status in FINISHED


def _required(what: str, value: str | None) -> str:
    value = (value or "").strip()
    if not value:
        raise UserError(f"{what} is empty")
    return value


def _template_name(name: str) -> str:
    name = _required("template name", name)
    if len(name) > MAX_NAME:
        raise UserError(f"template name is longer than {MAX_NAME} characters")
    return name


def _check_template_text(name: str, text: str) -> None:
    errors = check_template(text).errors
    if errors:
        raise UserError(f"template '{name}': {'; '.join(errors)}")


def _new_recipients(result: ImportResult) -> list[NewRecipient]:
    return [
        NewRecipient(c.phone, chat_id_for(c.phone), c.name, c.variables) for c in result.contacts
    ]


def _check_list_fits(text: str, list_name: str, recipients: list[NewRecipient]) -> None:
    columns: set[str] = set()
    for r in recipients:
        columns.update(r.variables)
    unknown = unknown_placeholders(text, columns)
    if unknown:
        names = ", ".join("{" + u + "}" for u in unknown)
        have = ", ".join(sorted(columns)) or "none"
        raise UserError(
            f"unknown placeholder {names} in the message: list '{list_name}' has the columns {have}"
        )
    missing: dict[str, list[int]] = {}
    for i, r in enumerate(recipients):
        for key in placeholders(text):
            if key != "name" and not (r.variables.get(key) or "").strip():
                missing.setdefault(key, []).append(i + 1)
    if missing:
        key, rows = next(iter(missing.items()))
        shown = ", ".join(map(str, rows[:10])) + (
            f" and {len(rows) - 10} more" if len(rows) > 10 else ""
        )
        raise UserError(f"{{{key}}} is empty for contacts {shown} of list '{list_name}'")


def _check_image(path_text: str) -> tuple[str, str]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserError(f"--image {path_text}: no such file")
    size = path.stat().st_size
    if size > MAX_IMAGE_BYTES:
        raise UserError(f"--image {path_text}: {size // (1024 * 1024)} MB is over WhatsApp's 16 MB")
    mime = mimetypes.guess_type(path.name)[0] or ""
    if not mime.startswith("image/"):
        raise UserError(f"--image {path_text}: not an image (expected .jpg, .png or .webp)")
    try:
        path.open("rb").close()
    except OSError as exc:
        raise UserError(f"--image {path_text}: {exc.strerror}") from None
    return str(path.resolve()), mime


__all__ = [
    "CampaignDraft",
    "CampaignPlan",
    "CampaignService",
    "TemplateCheck",
    "TransitionError",
    "WahaError",
    "check_template",
    "parse_when",
]
