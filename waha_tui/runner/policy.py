"""What a failure means for a campaign: the one place that decides.

`decide(op, error)` takes what was being done (a send with or without a pre-generated id, a
status check, an id fetch, a typing call, a database write) and what went wrong, and says
what to do. WAHA's answers are classified by status code and route first (the error's class,
see `waha_tui.waha.errors.error_for`); their message text only words the reason. The rule
of thumb: errors of the account, the session, the network or the database pause the
campaign; only an error about this one recipient fails it; a send whose fate is unknown is
ambiguous (re-sent with its pre-generated id, which WhatsApp dedupes, or marked unknown).
The README's "Error policy" table is this module in words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from waha_tui.render import RenderError
from waha_tui.store import StoreError
from waha_tui.waha.client import SessionInfo
from waha_tui.waha.errors import (
    CHECK_API_KEY,
    BadResponse,
    GatewayError,
    NoAnswer,
    Refused,
    ServerError,
    SessionMissing,
    SessionNotWorking,
    SessionUnavailable,
    Unauthorized,
    Unreachable,
    WahaError,
)


class Op(StrEnum):
    SEND = "send"  # a send without a pre-generated id: it must never be repeated blindly
    SEND_WITH_ID = "send with id"  # WhatsApp dedupes a repeat of the same id
    SESSION = "session check"  # GET /api/sessions/{s}
    NEW_ID = "message id"  # GET /api/{s}/new-message-id
    # GET /api/contacts/check-exists before a recipient's first message: answered like a
    # send (it needs a WORKING session, WhatsApp counts it), but it sends nothing, so an
    # unanswered one is simply asked again.
    CHECK = "number check"
    TYPING = "typing"  # startTyping / stopTyping: cosmetic
    STORE = "database"  # any read or write of the store


class Kind(StrEnum):
    """Which retry budget a Retry draws on."""

    UNREACHABLE = "unreachable"  # the request never left: repeat after a backoff
    AMBIGUOUS = "ambiguous"  # it may have gone out: repeat with the same id
    SESSION = "session"  # wait for the session to come back, polling its status


@dataclass(frozen=True)
class Pause:
    """Stop the campaign, resumable; the recipient in hand was not sent."""

    reason: str
    # Ask GET /api/sessions/{s} before pausing: a 404 on a message route cannot tell a
    # missing session from a stopped one, and a 463 is worded with the lock's end.
    ask_session: bool = False


@dataclass(frozen=True)
class FailRecipient:
    """This recipient cannot be sent (its own fault); the campaign goes on."""

    reason: str


@dataclass(frozen=True)
class Unknown:
    """The send may have gone out and cannot be repeated safely: never re-sent
    automatically."""

    reason: str


@dataclass(frozen=True)
class Retry:
    """Try again after `after` seconds (for Kind.SESSION: look at the session again)."""

    after: float
    kind: Kind
    reason: str
    maybe_sent: bool = False  # the failed attempt may have gone out


@dataclass(frozen=True)
class Proceed:
    """Carry on without what failed (typing is cosmetic; a session without ids sends
    without them)."""

    note: str
    no_ids: bool = False


Verdict = Pause | FailRecipient | Unknown | Retry | Proceed


@dataclass(frozen=True)
class Budget:
    """How long each kind of retry may go on before it becomes a pause."""

    unreachable: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    ambiguous: tuple[float, ...] = (1.0, 3.0)
    session_grace: float = 30.0  # STARTING / FAILED: how long to wait for WORKING
    session_poll: float = 2.0


SENDS = frozenset({Op.SEND, Op.SEND_WITH_ID})
# A session in these comes back by itself (a WEBJS auto-restart, a NOWEB reconnect).
FLAPPING = frozenset({"STARTING", "FAILED"})


def decide(
    op: Op,
    error: BaseException,
    *,
    session: str,
    tries: Mapping[Kind, int] | None = None,
    budget: Budget | None = None,
    waha_url: str = "WAHA",
) -> Verdict:
    """The verdict for `error` raised while doing `op` on `session`. `tries` counts the
    retries already spent, per kind, on this one step."""
    tries = tries or {}
    budget = budget or Budget()
    if op == Op.TYPING:
        return Proceed(f"typing skipped: {error}")
    if op == Op.STORE or isinstance(error, StoreError):
        return Pause(f"database unavailable: {error}; resume once it is back")
    if isinstance(error, RenderError):
        return FailRecipient(str(error))
    if not isinstance(error, WahaError):
        raise TypeError(f"not a WAHA or store error: {error!r}")
    if isinstance(error, Unreachable):
        spent = tries.get(Kind.UNREACHABLE, 0)
        if spent < len(budget.unreachable):
            return Retry(budget.unreachable[spent], Kind.UNREACHABLE, str(error))
        return Pause(f"WAHA at {waha_url} is unreachable: is it running?")
    if isinstance(error, Unauthorized):
        return Pause(
            f"WAHA refused the API key (HTTP {error.status_code}): {CHECK_API_KEY}, then resume"
        )
    if isinstance(error, SessionMissing):
        return _missing(session)
    if isinstance(error, SessionNotWorking):
        return session_verdict(session, error.status, waited=0.0, budget=budget)
    if isinstance(error, SessionUnavailable):
        return Pause(
            f"session '{session}' is not available at WAHA (missing or not started)",
            ask_session=True,
        )
    if op in SENDS or op == Op.CHECK:
        return _send_failure(op, error, tries, budget, session)
    if op == Op.NEW_ID and isinstance(error, Refused) and error.status_code == 422:
        # WEBJS: "not implemented by the engine". Asked once, remembered for the session.
        return Proceed(f"session '{session}' hands out no message ids", no_ids=True)
    return Pause(f"{error}; resume once WAHA answers again")


def _send_failure(
    op: Op, error: WahaError, tries: Mapping[Kind, int], budget: Budget, session: str
) -> Verdict:
    ambiguous = isinstance(error, NoAnswer | GatewayError) or (
        isinstance(error, BadResponse) and not 300 <= (error.status_code or 0) < 400
    )
    if ambiguous:
        if op == Op.SEND:
            return Unknown(f"{error}; not re-sent automatically")
        spent = tries.get(Kind.AMBIGUOUS, 0)
        if spent < len(budget.ambiguous):
            return Retry(
                budget.ambiguous[spent], Kind.AMBIGUOUS, str(error), maybe_sent=op != Op.CHECK
            )
        if op == Op.CHECK:
            return Pause(f"WAHA did not answer a number check ({error}); resume once it does")
        return Pause(
            f"WAHA did not confirm a message ({error}); on resume it is re-sent with the "
            "same id, so it cannot arrive twice"
        )
    if isinstance(error, Refused):
        code = error.status_code
        if code == 400:
            # A field of this one request (its chat id, its text, the number checked) was
            # refused.
            return FailRecipient(f"WAHA refused this recipient (HTTP 400): {error.detail}")
        if code == 413:
            return Pause(
                "the message was refused as too large (HTTP 413, by WAHA or a proxy in "
                "front of it): raise the proxy's body limit or send a smaller image, then resume"
            )
        if code == 429:
            return Pause(
                "too many requests (HTTP 429, from WAHA or a proxy in front of it): wait, "
                "then resume with a longer delay"
            )
        if code == 422:
            return Pause(f"WAHA will not send on session '{session}': {error.detail}")
        return Pause(f"{error}; check WAHA_URL and WAHA, then resume")
    if isinstance(error, ServerError):
        return Pause(_engine_reason(session, error.detail), ask_session=True)
    return Pause(f"{error}; check WAHA_URL and WAHA, then resume")


def _engine_reason(session: str, detail: str) -> str:
    """A 500 from WAHA's engine is the account's or the session's trouble, not the
    recipient's; the words come from WhatsApp's message."""
    low = detail.lower()
    if "463" in low:
        return (
            f"WhatsApp's reach-out timelock on session '{session}' (error 463): new contacts "
            "cannot be messaged for now, and every try extends it; wait it out, then resume"
        )
    if "connection closed" in low:
        return (
            f"WhatsApp closed the connection of session '{session}' (Connection Closed): "
            "check the phone and the session, then resume"
        )
    if "rate-overlimit" in low:
        return (
            f"WhatsApp's rate limit on session '{session}' (rate-overlimit): wait, then "
            "resume with a longer delay"
        )
    return f"WAHA's engine failed on session '{session}' ({detail}): check WAHA, then resume"


def session_verdict(session: str, status: str, *, waited: float, budget: Budget) -> Verdict:
    """What a session's status means for sending on it."""
    if status == "WORKING":
        return Proceed(f"session '{session}' is WORKING")
    if status in FLAPPING:
        if waited < budget.session_grace:
            return Retry(
                budget.session_poll, Kind.SESSION, f"waiting for session '{session}' ({status})"
            )
        return Pause(
            f"session '{session}' stayed {status} for {budget.session_grace:g} s, not "
            "WORKING: check it, then resume"
        )
    if status == "STOPPED":
        return Pause(
            f"session '{session}' is STOPPED: start it (and scan the QR code if it asks), "
            "then resume"
        )
    if status == "SCAN_QR_CODE":
        return Pause(
            f"session '{session}' is SCAN_QR_CODE: scan the QR code to link the phone, then resume"
        )
    return Pause(f"session '{session}' is {status}, not WORKING: resume once it is WORKING")


def after_session_check(
    op: Op,
    first: Pause,
    error: WahaError,
    info: SessionInfo | None,
    *,
    waited: float = 0.0,
    budget: Budget | None = None,
) -> Verdict:
    """The verdict once GET /api/sessions/{s} answered (`info`; None: the session does not
    exist) after `first` asked for it."""
    budget = budget or Budget()
    session = getattr(error, "session", None) or (info.name if info else "default")
    if isinstance(error, SessionUnavailable):
        if info is None:
            return _missing(session)
        if info.status == "WORKING":
            if op == Op.NEW_ID:
                # A 404 while the session works: the route itself is missing (before 2026.4.3).
                return Proceed(f"session '{session}' hands out no message ids", no_ids=True)
            return Pause(f"{error} although the session is WORKING; check WAHA, then resume")
        return session_verdict(session, info.status, waited=waited, budget=budget)
    if info is not None and info.timelocked:
        # UTC, spelled out: the reason is stored and read on hosts in other time zones.
        ends = (
            f"WhatsApp says it ends {info.timelock_until:%Y-%m-%d %H:%M} UTC"
            if info.timelock_until
            else "WhatsApp does not say when it ends"
        )
        return Pause(f"{first.reason} (timelock active: {ends})")
    return first


def _missing(session: str) -> Pause:
    return Pause(
        f"WAHA has no session named '{session}': create it, or create the campaign on "
        "another session"
    )
