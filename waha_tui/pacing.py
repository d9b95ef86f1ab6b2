"""The one place that decides how long to wait between messages (WhatsApp bans robots)."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Pacing:
    min_delay: float = DEFAULT_DELAY[0]
    max_delay: float = DEFAULT_DELAY[1]
    typing: bool = False
    break_every: int = 0  # a long break after every N messages (0: never)
    break_seconds: float = 0.0

    def delay_after(self, processed_in_run: int, rng: random.Random) -> float:
        """Seconds to wait after the processed_in_run-th message of this run."""
        delay = rng.uniform(self.min_delay, self.max_delay) if self.max_delay > 0 else 0.0
        if self.break_every and processed_in_run % self.break_every == 0:
            delay += self.break_seconds
        return delay

    def typing_seconds(self, text: str, rng: random.Random) -> float:
        """A human types a few characters a second; never longer than the shortest delay."""
        if not self.typing or self.max_delay <= 0:
            return 0.0
        human = 1.0 + len(text) / 25 + rng.uniform(0, 1.5)
        return min(human, 8.0, max(self.min_delay, 0.5))
