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


class RecipientStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"  # may have been delivered: never re-sent without the operator
    SKIPPED = "skipped"


S = CampaignStatus
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.SCHEDULED: frozenset({S.RUNNING, S.CANCELLED, S.PAUSED}),
    S.RUNNING: frozenset({S.PAUSED, S.COMPLETED, S.FAILED, S.CANCELLED}),
    S.PAUSED: frozenset({S.SCHEDULED, S.CANCELLED}),
    # Reopened only to retry failed or unknown recipients the operator chose (issue 6).
    S.COMPLETED: frozenset({S.PAUSED}),
    # Also resumed when recipients are left (can_resume): Paused to run here, Scheduled
    # for a `waha-tui run` elsewhere (issue 12).
    S.FAILED: frozenset({S.PAUSED, S.SCHEDULED}),
    S.CANCELLED: frozenset(),
}
FINISHED = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})

# How a person says each change, in a refusal: "it cannot be cancelled".
_CHANGE: dict[str, str] = {
    S.SCHEDULED: "scheduled again",
    S.RUNNING: "started",
    S.PAUSED: "paused",
    S.COMPLETED: "marked Completed",
    S.FAILED: "marked Failed",
    S.CANCELLED: "cancelled",
}


def refusal(campaign_id: int, old: str, new: str) -> str:
    """Why campaign `campaign_id` cannot go from `old` to `new`, as a person writes it."""
    if old == new:
        return f"campaign {campaign_id} is already {old}"
    # StrEnum members hash as their text: plain strings find them.
    return f"campaign {campaign_id} is {old}: it cannot be {_CHANGE.get(new, new)}"


class TransitionError(UserError):
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


def check_transition(campaign_id: int, old: str, new: str) -> None:
    if not can_transition(old, new):
        raise TransitionError(campaign_id, old, new)
