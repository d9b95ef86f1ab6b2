"""Campaign and recipient statuses, the one table of allowed campaign transitions, and how
a refused change is worded."""

from __future__ import annotations

from enum import StrEnum

from waha_tui.errors import UserError


class CampaignStatus(StrEnum):
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELLED = "Cancelled"
    # Its recipients are being deleted, a batch at a time; the row goes last. Nothing runs,
    # resumes, retries or edits it meanwhile, and a delete cut short (a crash) leaves it
    # here, where deleting it again finishes the job.
    DELETING = "Deleting"


class RecipientStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # may have been delivered: never re-sent without the operator
    SKIPPED = "skipped"


S = CampaignStatus
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.SCHEDULED: frozenset({S.RUNNING, S.CANCELLED, S.PAUSED, S.DELETING}),
    # Never deleted while it runs: pause or cancel it first.
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.PAUSED: frozenset({S.SCHEDULED, S.CANCELLED, S.DELETING}),
    # Reopened only to retry failed or unknown recipients the operator chose (issue 6).
    S.COMPLETED: frozenset({S.PAUSED, S.DELETING}),
    # Also resumed when recipients are left (can_resume): Paused to run here, Scheduled
    # for a `waha-tui run` elsewhere (issue 12).
    S.FAILED: frozenset({S.PAUSED, S.SCHEDULED, S.DELETING}),
    S.CANCELLED: frozenset({S.DELETING}),
    S.DELETING: frozenset(),
}
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
# What an operator may edit (name, start, delay): what has not started, or is paused.
EDITABLE = frozenset({S.SCHEDULED, S.PAUSED})
# What an operator's pause takes (a Completed campaign becomes Paused only by a retry).
PAUSABLE = frozenset({S.RUNNING, S.SCHEDULED})

# How a person says each change, in a refusal: "it cannot be cancelled".
_CHANGE: dict[str, str] = {
    S.SCHEDULED: "scheduled again",
    S.RUNNING: "started",
    S.PAUSED: "paused",
    S.COMPLETED: "marked Completed",
    S.FAILED: "marked Failed",
    S.CANCELLED: "cancelled",
    S.DELETING: "deleted",
}
# What to do instead, where there is something to do.
_INSTEAD: dict[tuple[str, str], str] = {(S.RUNNING, S.DELETING): "pause or cancel it first"}


def described(status: str) -> str:
    """A status as it reads after "campaign 3 is ...": "Paused", "being deleted"."""
    return "being deleted" if status == S.DELETING else status


def refusal(campaign_id: int, old: str, new: str) -> str:
    """Why campaign `campaign_id` cannot go from `old` to `new`, as a person writes it."""
    if old == new:
        return f"campaign {campaign_id} is already {described(old)}"
    # StrEnum members hash as their text: plain strings find them.
    text = f"campaign {campaign_id} is {described(old)}: it cannot be {_CHANGE.get(new, new)}"
    instead = _INSTEAD.get((old, new))
    return f"{text}; {instead}" if instead else text


class StatusRefused(UserError):
    """What was asked cannot be done to a campaign in its status."""


class TransitionError(StatusRefused):
    def __init__(self, campaign_id: int, old: str, new: str) -> None:
        super().__init__(refusal(campaign_id, old, new))
        self.campaign_id, self.old, self.new = campaign_id, old, new


def can_transition(old: str, new: str) -> bool:
    return CampaignStatus(new) in TRANSITIONS[CampaignStatus(old)]


def can_resume(status: str, next_index: int, total: int) -> bool:
    """What `resume` (CLI, service, the dashboard's r) takes: a Paused campaign, or a
    Failed one with recipients left to send (its run ended on an error of the store or of
    the program, not of its recipients); either goes on from its next recipient."""
    return status == S.PAUSED or (status == S.FAILED and next_index < total)


def can_pause(status: str) -> bool:
    return status in PAUSABLE


def can_delete(status: str) -> bool:
    """Anything but a Running campaign; a Deleting one again, to finish a delete cut short."""
    return status == S.DELETING or can_transition(status, S.DELETING)


def can_edit(status: str) -> bool:
    return status in EDITABLE


def check_transition(campaign_id: int, old: str, new: str) -> None:
    if not can_transition(old, new):
        raise TransitionError(campaign_id, old, new)


def check_deletable(campaign_id: int, status: str) -> None:
    if not can_delete(status):
        raise TransitionError(campaign_id, status, S.DELETING)


def check_editable(campaign_id: int, status: str) -> None:
    """Only a Scheduled or Paused campaign's name, start and delay change."""
    if can_edit(status):
        return
    text = (
        f"campaign {campaign_id} is {described(status)}: only a Scheduled or Paused "
        "campaign can be edited"
    )
    if status == S.RUNNING:
        text += "; pause it first"
    elif status in FINISHED:
        text += "; clone it into a new one"
    raise StatusRefused(text)
