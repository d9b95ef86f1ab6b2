"""What the runner reports. The CLI renders these as a progress bar, the dashboard as rows."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CampaignEvent:
    campaign_id: int


@dataclass(frozen=True)
class Started(CampaignEvent):
    total: int
    next_index: int


@dataclass(frozen=True)
class RecipientProcessed(CampaignEvent):
    position: int
    status: str
    sent: int
    failed: int
    unknown: int
    total: int
    next_index: int
    error: str | None = None
    skipped: int = 0  # opted out or not on WhatsApp: settled without a message


@dataclass(frozen=True)
class Waiting(CampaignEvent):
    """The run waits for something to come back (a session restarting, ...) and goes on
    by itself when it does; the wait is also stored on the campaign."""

    reason: str


@dataclass(frozen=True)
class Paused(CampaignEvent):
    reason: str
    next_index: int


@dataclass(frozen=True)
class Completed(CampaignEvent):
    sent: int
    failed: int
    unknown: int
    total: int
    skipped: int = 0


@dataclass(frozen=True)
class Cancelled(CampaignEvent):
    next_index: int


@dataclass(frozen=True)
class Failed(CampaignEvent):
    error: str


Ended = Paused | Completed | Cancelled | Failed
EventSink = Callable[[CampaignEvent], None]


class EventBus:
    """Fan-out to any number of sinks; a failing sink never stops the runner, and is logged."""

    def __init__(self) -> None:
        self._sinks: list[EventSink] = []

    def subscribe(self, sink: EventSink) -> Callable[[], None]:
        self._sinks.append(sink)
        return lambda: self._sinks.remove(sink) if sink in self._sinks else None

    def publish(self, event: CampaignEvent) -> None:
        for sink in list(self._sinks):
            try:
                sink(event)
            except Exception:
                log.exception(
                    "campaign %s: event subscriber %r failed on %s",
                    event.campaign_id,
                    sink,
                    type(event).__name__,
                )
