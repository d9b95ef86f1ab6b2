"""The one place that decides how long to wait between messages (WhatsApp bans robots)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Protocol

from waha_tui.errors import UserError, ref

# WAHA's anti-ban guidance: "wait a random time between 30 and 60 seconds".
DEFAULT_DELAY = (30.0, 60.0)
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$")


def parse_delay(text: str) -> tuple[float, float]:
    """'30-60' -> (30.0, 60.0) seconds."""
    found = _DELAY.match(text or "")
    if not found:
        raise UserError(f"{ref('delay')} {text!r} is not MIN-MAX in seconds, e.g. 30-60")
    low, high = float(found.group(1)), float(found.group(2))
    if low > high:
        raise UserError(f"{ref('delay')} {text!r}: MIN is larger than MAX")
    if high > 86400:
        raise UserError(f"{ref('delay')} {text!r}: MAX is over a day")
    return low, high


# What one message costs besides the wait (WAHA's answer, the database): for estimates only.
SEND_SECONDS = 0.5
TYPING_CAP = 8.0  # seconds: nobody watches a typing indicator longer


class Paced(Protocol):
    """A campaign's pacing settings (the model, or a dashboard row)."""

    @property
    def delay_min(self) -> float: ...
    @property
    def delay_max(self) -> float: ...
    @property
    def typing(self) -> bool: ...
    @property
    def break_every(self) -> int: ...
    @property
    def break_seconds(self) -> float: ...


@dataclass(frozen=True)
class Estimate:
    """How fast a campaign sends and how long what is left takes, from its pacing: the one
    estimate every screen and command shows (a later issue adds send windows and caps)."""

    per_minute: float  # messages a minute, on average
    seconds_left: float  # until the last recipient is processed


@dataclass(frozen=True)
class Pacing:
    min_delay: float = DEFAULT_DELAY[0]
    max_delay: float = DEFAULT_DELAY[1]
    typing: bool = False
    break_every: int = 0  # a long break after every N messages (0: never)
    break_seconds: float = 0.0

    @classmethod
    def of(cls, c: Paced) -> Pacing:
        return cls(c.delay_min, c.delay_max, c.typing, c.break_every, c.break_seconds)

    def gap(self, rng: random.Random) -> float:
        """The random wait after one request WhatsApp counts (a message, a number lookup),
        without the long breaks."""
        return rng.uniform(self.min_delay, self.max_delay) if self.max_delay > 0 else 0.0

    def delay_after(self, processed_in_run: int, rng: random.Random) -> float:
        """Seconds to wait after the processed_in_run-th message of this run."""
        delay = self.gap(rng)
        if self.break_every and processed_in_run % self.break_every == 0:
            delay += self.break_seconds
        return delay

    def typing_seconds(self, text: str, rng: random.Random) -> float:
        """A human types a few characters a second; never longer than the shortest delay."""
        return self._typing(len(text), rng.uniform(0, 1.5))

    def _typing(self, length: int, hesitation: float) -> float:
        if not self.typing or self.max_delay <= 0:
            return 0.0
        human = 1.0 + length / 25 + hesitation
        return min(human, TYPING_CAP, max(self.min_delay, 0.5))

    def mean_gap(self, text_length: int = 0) -> float:
        """The mean seconds from one message to the next: the delay, a share of the long
        breaks, the typing and the send itself."""
        delay = (self.min_delay + self.max_delay) / 2 if self.max_delay > 0 else 0.0
        if self.break_every:
            delay += self.break_seconds / self.break_every
        return delay + self._typing(text_length, 0.75) + SEND_SECONDS

    def estimate(
        self, remaining: int, *, next_in: float | None = None, text_length: int = 0
    ) -> Estimate:
        """`remaining` recipients left; `next_in`: seconds until the next one is due when a
        wait is under way (None: the next one goes now)."""
        gap = self.mean_gap(text_length)
        if remaining <= 0:
            left = 0.0
        elif next_in is None:
            # The next one goes now: its send, then a gap before each of the others.
            left = SEND_SECONDS + (remaining - 1) * gap
        else:
            left = max(next_in, 0.0) + SEND_SECONDS + (remaining - 1) * gap
        return Estimate(60.0 / gap, left)
