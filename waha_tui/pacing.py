"""The one place that decides how long to wait between messages (WhatsApp bans robots)."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from waha_tui.errors import UserError, ref
from waha_tui.phones import masked_own

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
    """How fast a campaign sends and how long what is left takes, from its pacing and its
    number's caps: the one estimate every screen and command shows."""

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
        self,
        remaining: int,
        *,
        next_in: float | None = None,
        text_length: int = 0,
        caps: CapUse | None = None,
    ) -> Estimate:
        """`remaining` recipients left; `next_in`: seconds until the next one is due when a
        wait is under way (None: the next one goes now); `caps`: the caps of the number it
        sends from and what that number sent lately (None: it has none, or it is not known
        yet), which hold it back as they hold back the runner (`Caps.blocked`)."""
        gap = self.mean_gap(text_length)
        rate = 60.0 / gap
        wait = max(next_in or 0.0, 0.0)
        if remaining <= 0:
            return Estimate(rate, 0.0)
        if caps is None or not caps.caps.any:
            # The next one goes now: its send, then a gap before each of the others.
            return Estimate(rate, wait + SEND_SECONDS + (remaining - 1) * gap)
        start = caps.at + timedelta(seconds=wait)
        left = (start - caps.at).total_seconds() + caps.span(remaining, start, gap)
        left += SEND_SECONDS
        if remaining > 1:
            rate = min(rate, 60.0 * remaining / left)
        return Estimate(rate, left)


# -- per-number caps (issue 17) -------------------------------------------------------------
# A number's caps count every message it sent in the clock hour and in the day, both in the
# caps' own zone (the day ends at midnight there), whichever campaign, session or host sent
# it: the store counts and checks them in the transaction that reserves a send.

MAX_WARMUP_DAYS = 60
_STEPS = 5000  # the estimate's walk through hours and days, at most (then it extrapolates)


def check_zone(text: str, *, field: str = "caps_zone") -> str:
    """An IANA time zone name ("Europe/Berlin"), as this machine knows it."""
    name = (text or "").strip()
    try:
        if not name or name.startswith(("/", ".")):
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"{ref(field)} {text!r} is not a time zone this machine knows (an IANA name "
            "such as Europe/Berlin; a machine without /usr/share/zoneinfo needs tzdata)"
        ) from None
    return name


def local_zone() -> str:
    """This machine's IANA zone (TZ, else /etc/localtime's target, else /etc/timezone),
    for caps set without --timezone; UTC when none can be told."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    for name in candidates:
        try:
            return check_zone(name)
        except UserError:
            continue
    return "UTC"


def parse_cap(value: int | None, field: str) -> int | None:
    """A cap: a whole number of messages, at least 1 (None: no cap)."""
    if value is None:
        return None
    if value < 1 or value > 1_000_000:
        raise UserError(f"{ref(field)} {value} is not a number of messages from 1 to 1000000")
    return value


def parse_warmup(text: str) -> tuple[int, ...]:
    """'20,40,80' -> (20, 40, 80): a new number's daily caps, day by day."""
    parts = [p.strip() for p in (text or "").split(",")]
    if not any(parts):
        return ()
    plan: list[int] = []
    for i, part in enumerate(parts, 1):
        if not part.isdecimal() or int(part) < 1:
            raise UserError(
                f"{ref('warmup')} {text!r}: day {i} ({part!r}) is not a number of messages "
                "of at least 1; give them comma-separated, e.g. 20,40,80"
            )
        plan.append(int(part))
    if len(plan) > MAX_WARMUP_DAYS:
        raise UserError(f"{ref('warmup')} has {len(plan)} days: at most {MAX_WARMUP_DAYS}")
    return tuple(plan)


@dataclass(frozen=True)
class CapHit:
    """A cap a number has reached: no message from it before `until`."""

    number: str  # me.id's digits
    cap: int
    per: str  # "hour" or "day"
    until: datetime  # UTC: the hour's or the day's end in the caps' zone
    zone: str
    warmup_day: int | None = None  # the warm-up's day (1-based) when its plan set the cap
    warmup_days: int = 0

    def reason(self) -> str:
        """What the campaign waits for: "cap of 200/day reached on +49…5678: next message
        at 00:00 (Europe/Berlin)". The number is masked: the line is stored and logged."""
        plan = f" (warm-up day {self.warmup_day} of {self.warmup_days})" if self.warmup_day else ""
        at = self.until.astimezone(ZoneInfo(self.zone))
        return (
            f"cap of {self.cap}/{self.per}{plan} reached on {masked_own(self.number)}: "
            f"next message at {at:%H:%M} ({self.zone})"
        )


@dataclass(frozen=True)
class Caps:
    """A number's caps (the number_caps table's row): the one place their rules live."""

    per_hour: int | None = None
    per_day: int | None = None
    zone: str = "UTC"
    warmup: tuple[int, ...] = ()  # daily caps, day by day from warmup_start, then per_day
    warmup_start: datetime | None = None  # the first instant of the warm-up's first day

    @property
    def any(self) -> bool:
        return bool(self.per_hour or self.per_day or self.warmup)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def day_of(self, day: date) -> datetime:
        """The first instant (UTC) of a date in the caps' zone: its midnight, or the end of
        the gap when a clock change skips midnight."""
        return datetime.combine(day, time(0), self.tz).astimezone(UTC)

    def day_start(self, at: datetime) -> datetime:
        return self.day_of(self.local_day(at))

    def day_end(self, at: datetime) -> datetime:
        return self.day_of(self.local_day(at) + timedelta(days=1))

    def hour_start(self, at: datetime) -> datetime:
        """The start of the clock hour holding `at`, in the caps' zone (a zone half an hour
        off UTC has its hours on the half hour)."""
        local = at.astimezone(self.tz)
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return max(start, self.day_start(at))

    def hour_end(self, at: datetime) -> datetime:
        return min(self.hour_start(at) + timedelta(hours=1), self.day_end(at))

    def warmup_day(self, at: datetime) -> int | None:
        """Which day of the warm-up plan `at` falls on (1: its first; a start still ahead
        counts as day 1), None when there is no plan or it is over."""
        if not self.warmup:
            return None
        if self.warmup_start is None:
            return 1
        day = (self.local_day(at) - self.local_day(self.warmup_start)).days + 1
        day = max(day, 1)
        return day if day <= len(self.warmup) else None

    def day_cap(self, at: datetime) -> int | None:
        """The daily cap on `at`'s day: the warm-up plan's entry for that day (never above
        per_day), else per_day; None: no daily cap."""
        day = self.warmup_day(at)
        if day is None:
            return self.per_day
        planned = self.warmup[day - 1]
        return min(planned, self.per_day) if self.per_day else planned

    def blocked(self, at: datetime, in_hour: int, in_day: int, number: str = "") -> CapHit | None:
        """Whether a message may go at `at` when the number sent `in_hour` messages in that
        clock hour and `in_day` that day: None, or the cap reached and when it lifts. The
        day's cap first: when both are reached, the wait is the longer one."""
        day_cap = self.day_cap(at)
        if day_cap is not None and in_day >= day_cap:
            day = self.warmup_day(at)
            return CapHit(
                number, day_cap, "day", self.day_end(at), self.zone, day, len(self.warmup)
            )
        if self.per_hour is not None and in_hour >= self.per_hour:
            return CapHit(number, self.per_hour, "hour", self.hour_end(at), self.zone)
        return None

    def span(
        self, count: int, start: datetime, gap: float, used: tuple[int, int] = (0, 0)
    ) -> float:
        """Seconds from `start`, when the next message goes, until the last of `count`
        messages goes, one every `gap` seconds while the caps allow (`Caps.blocked`: what the
        runner obeys). `used`: what the number sent in `start`'s hour and day."""
        t, (in_hour, in_day), left = start, used, count
        steps = 0
        while steps < _STEPS and left > 0:
            steps += 1
            hit = self.blocked(t, in_hour, in_day)
            if hit is not None:
                in_day = 0 if self.day_start(hit.until) != self.day_start(t) else in_day
                t, in_hour = hit.until, 0
                continue
            day_start = self.day_start(t)
            if t == day_start and in_day == 0 and in_hour == 0:
                # A whole day at once: what its caps let through, or all it has time for.
                per_day = self._day_capacity(t, gap)
                if left > per_day:
                    left -= per_day
                    t = self.day_end(t)
                    continue
            end = self.hour_end(t) if self.per_hour else self.day_end(t)
            room = left
            if self.per_hour is not None:
                room = min(room, self.per_hour - in_hour)
            day_cap = self.day_cap(t)
            if day_cap is not None:
                room = min(room, day_cap - in_day)
            fit = math.floor((end - t).total_seconds() / gap) + 1 if gap > 0 else room
            sent = max(min(room, fit), 1)
            left -= sent
            if left <= 0:
                return (t - start).total_seconds() + (sent - 1) * gap
            after = t + timedelta(seconds=sent * gap)
            in_hour = 0 if self.hour_start(after) != self.hour_start(t) else in_hour + sent
            in_day = 0 if self.day_start(after) != day_start else in_day + sent
            t = after
        # Too far ahead to walk: the rest at the steady daily rate.
        per_day = max(self._day_capacity(t, gap), 1)
        return (t - start).total_seconds() + left * 86400.0 / per_day

    def _day_capacity(self, day_start: datetime, gap: float) -> int:
        """Messages a whole day from its first instant lets through, on average."""
        seconds = (self.day_end(day_start) - day_start).total_seconds()
        per_hour = 3600.0 / gap if gap > 0 else math.inf
        if self.per_hour is not None:
            per_hour = min(per_hour, self.per_hour)
        most = seconds / 3600.0 * per_hour
        day_cap = self.day_cap(day_start)
        if day_cap is not None:
            most = min(most, day_cap)
        return max(int(most), 1)


@dataclass(frozen=True)
class CapUse:
    """A number's caps and what it sent in the clock hour and the day holding `at` (its
    caps' zone): what the estimate and the sessions screen need."""

    number: str
    caps: Caps
    in_hour: int
    in_day: int
    at: datetime

    @property
    def day_cap(self) -> int | None:
        return self.caps.day_cap(self.at)

    def span(self, count: int, start: datetime, gap: float) -> float:
        """`Caps.span` from `start`, counting what was sent so far where `start` is in the
        same hour and day as `at`."""
        c = self.caps
        in_day = self.in_day if c.day_start(start) == c.day_start(self.at) else 0
        in_hour = self.in_hour if c.hour_start(start) == c.hour_start(self.at) else 0
        return c.span(count, start, gap, (in_hour, in_day))

    def summary(self) -> str:
        """ "83/200 today, 12/30 this hour, warm-up day 3 of 6" (what is capped only)."""
        c = self.caps
        parts = []
        day_cap = self.day_cap
        parts.append(f"{self.in_day}/{day_cap} today" if day_cap else f"{self.in_day} today")
        if c.per_hour:
            parts.append(f"{self.in_hour}/{c.per_hour} this hour")
        day = c.warmup_day(self.at)
        if day is not None:
            parts.append(f"warm-up day {day} of {len(c.warmup)}")
        return ", ".join(parts)
