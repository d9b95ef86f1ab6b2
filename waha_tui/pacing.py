"""The one place that decides how long to wait between messages (WhatsApp bans robots),
and when a campaign may send at all (its daily send window, in its own time zone)."""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from waha_tui.errors import UserError, ref

# WAHA's anti-ban guidance: "wait a random time between 30 and 60 seconds".
DEFAULT_DELAY = (30.0, 60.0)
_DELAY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$")


def parse_delay(text: str, field: str = "delay", example: str = "30-60") -> tuple[float, float]:
    """'30-60' -> (30.0, 60.0) seconds; `field` names the input in a refusal."""
    found = _DELAY.match(text or "")
    if not found:
        raise UserError(f"{ref(field)} {text!r} is not MIN-MAX in seconds, e.g. {example}")
    low, high = float(found.group(1)), float(found.group(2))
    if low > high:
        raise UserError(f"{ref(field)} {text!r}: MIN is larger than MAX")
    if high > 86400:
        raise UserError(f"{ref(field)} {text!r}: MAX is over a day")
    return low, high


def parse_break(text: str) -> tuple[float, float]:
    """A long break's range, '600-1200' -> (600.0, 1200.0) seconds (--break)."""
    return parse_delay(text, "break_range", "600-1200")


# -- send windows ------------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
WINDOW_WAIT = "outside send window"  # how a window's wait starts (waiting_for)


def _clock_time(text: str, whole: str) -> time:
    found = _CLOCK.match(text)
    hour, minute = (int(found.group(1)), int(found.group(2))) if found else (99, 99)
    if hour > 23 or minute > 59:
        raise UserError(
            f"{ref('window')} {whole!r}: {text.strip()!r} is not a time of day HH:MM "
            "(00:00 to 23:59)"
        )
    return time(hour, minute)


def parse_window(text: str) -> str:
    """'9:00-20:00' -> '09:00-20:00' (as stored); an end before the start runs across
    midnight (22:00-06:00). A window of no length is refused."""
    start, sep, end = (text or "").partition("-")
    if not sep:
        raise UserError(f"{ref('window')} {text!r} is not HH:MM-HH:MM, e.g. 09:00-20:00")
    opens, closes = _clock_time(start, text), _clock_time(end, text)
    if opens == closes:
        raise UserError(f"{ref('window')} {text!r} has no length: its start is its end")
    return f"{opens:%H:%M}-{closes:%H:%M}"


def parse_days(text: str) -> str:
    """'mon-fri' or 'mon,wed,fri' (or a mix, 'mon-wed,sat') -> 'mon,tue,wed,thu,fri' (as
    stored, in the week's order). A range may wrap: 'fri-mon'."""
    chosen: set[int] = set()
    parts = [p.strip().lower() for p in (text or "").split(",")]
    for part in parts:
        first, sep, last = part.partition("-")
        names = [first.strip(), last.strip()] if sep else [first]
        for name in names:
            if name not in DAYS:
                raise UserError(
                    f"{ref('days')} {text!r}: {name!r} is not a day; use {','.join(DAYS)} "
                    "or a range such as mon-fri"
                )
        a = DAYS.index(names[0])
        b = DAYS.index(names[-1])
        chosen.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return ",".join(DAYS[i] for i in sorted(chosen))


def check_zone(name: str) -> str:
    """An IANA time zone name as zoneinfo knows it ('Europe/Berlin'), or a refusal."""
    cleaned = (name or "").strip()
    try:
        if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
            raise ValueError(cleaned)
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(
            f"{ref('timezone')} {name!r} is not an IANA time zone, e.g. Europe/Berlin"
        ) from None
    return cleaned


def local_zone() -> str | None:
    """This machine's time zone as an IANA name: TZ when it names one, else the zone file
    /etc/localtime links to, else /etc/timezone (Debian). None when none of them says (a
    TZ of POSIX rules, a copied /etc/localtime): the caller asks for --timezone then."""
    tz = os.environ.get("TZ", "").removeprefix(":").strip()
    if tz:
        return _known(tz)
    try:
        target = os.path.realpath("/etc/localtime")
        if "/zoneinfo/" in target:
            found = _known(target.split("/zoneinfo/", 1)[1])
            if found:
                return found
    except OSError:
        pass
    try:
        return _known(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        return None


def _known(name: str) -> str | None:
    try:
        return check_zone(name)
    except UserError:
        return None


@dataclass(frozen=True)
class SendWindow:
    """A daily window in a zone: on each chosen day it opens at `opens` and closes at
    `closes` (the next day when `closes` is not after `opens`), both wall-clock times in
    `zone`. The rules at DST changes: an opening (or closing) in a skipped hour is the
    moment the clock jumps; in a repeated hour, its first occurrence (the repeat is no
    second window)."""

    opens: time
    closes: time
    days: frozenset[int]  # date.weekday(): 0 is Monday
    zone: str

    @classmethod
    def of(cls, c: Paced) -> SendWindow | None:
        """The campaign's window (None: it may send at any time)."""
        window = getattr(c, "send_window", None)
        if not window:
            return None
        start, _, end = window.partition("-")
        days = getattr(c, "window_days", None)
        chosen = frozenset(DAYS.index(d) for d in days.split(",")) if days else frozenset(range(7))
        return cls(
            _clock_time(start, window),
            _clock_time(end, window),
            chosen,
            getattr(c, "timezone", None) or "UTC",
        )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def _at(self, day: date, wall: time) -> datetime:
        """The first moment (UTC) the clock in the zone shows `wall` or later on `day`."""
        tz = self.tz
        naive = datetime.combine(day, wall)
        first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
        if first.astimezone(tz).replace(tzinfo=None) == naive:
            other = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
            return min(first, other)  # a repeated hour: its first occurrence
        # A skipped hour: the moment the clock jumps past `wall`, between the two readings.
        low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
        low, high = min(low, first), max(low, first)
        while high - low > timedelta(seconds=1):
            mid = low + (high - low) / 2
            if mid.astimezone(tz).replace(tzinfo=None) >= naive:
                high = mid
            else:
                low = mid
        return high.replace(microsecond=0)

    def interval(self, moment: datetime) -> tuple[datetime, datetime]:
        """The window that contains `moment` or comes next: (opens, closes), in UTC."""
        today = moment.astimezone(self.tz).date()
        overnight = self.closes <= self.opens
        for offset in range(-1, 9):
            day = today + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            opens = self._at(day, self.opens)
            closes = self._at(day + timedelta(days=1) if overnight else day, self.closes)
            if closes > moment and closes > opens:  # a window a DST jump emptied is none
                return opens, closes
        raise ValueError(f"no send window on {sorted(self.days)}")  # parse_days forbids

    def opens_at(self, moment: datetime) -> datetime | None:
        """None when `moment` is inside the window; else when it next opens (UTC)."""
        opens, _closes = self.interval(moment)
        return None if opens <= moment else opens

    def waiting_for(self, opens: datetime, moment: datetime) -> str:
        """ "outside send window until 09:00 (Europe/Berlin)"; a later day than the zone's
        today says which: "until Mon 09:00"."""
        local = opens.astimezone(self.tz)
        day = "" if local.date() == moment.astimezone(self.tz).date() else f"{local:%a} "
        return f"{WINDOW_WAIT} until {day}{local:%H:%M} ({self.zone})"

    def open_seconds_until(self, start: datetime, work: float) -> float:
        """Wall seconds from `start` until the window has been open for `work` seconds:
        time outside it is time a campaign does not send."""
        at, left = start, work
        for _ in range(20_000):  # ~55 years of daily windows: an estimate stops somewhere
            opens, closes = self.interval(at)
            at = max(at, opens)
            room = (closes - at).total_seconds()
            if room >= left:
                return (at - start).total_seconds() + left
            left -= room
            at = closes
        return (at - start).total_seconds() + left

    def describe(self) -> str:
        """ "09:00-20:00 mon-fri (Europe/Berlin)": how screens show it."""
        days = "" if len(self.days) == 7 else " " + days_text(self.days)
        return f"{self.opens:%H:%M}-{self.closes:%H:%M}{days} ({self.zone})"


def days_text(days: frozenset[int]) -> str:
    """{0,1,2,3,4} -> 'mon-fri'; {0,2,4} -> 'mon,wed,fri'."""
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(
        f"{DAYS[r[0]]}-{DAYS[r[-1]]}" if len(r) > 2 else ",".join(DAYS[d] for d in r) for r in runs
    )


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
    @property
    def break_max(self) -> float: ...


@dataclass(frozen=True)
class Estimate:
    """How fast a campaign sends and how long what is left takes, from its pacing: the one
    estimate every screen and command shows (a later issue adds send windows and caps)."""

    per_minute: float  # messages a minute while it sends (outside its window: none)
    seconds_left: float  # until the last recipient is processed, window closures included


@dataclass(frozen=True)
class Pacing:
    min_delay: float = DEFAULT_DELAY[0]
    max_delay: float = DEFAULT_DELAY[1]
    typing: bool = False
    break_every: int = 0  # a long break after every N messages (0: never)
    break_seconds: float = 0.0  # the shortest long break
    break_max: float = 0.0  # the longest (below break_seconds: as long as the shortest)
    window: SendWindow | None = None  # when it may send (None: any time)

    @classmethod
    def of(cls, c: Paced) -> Pacing:
        return cls(
            c.delay_min,
            c.delay_max,
            c.typing,
            c.break_every,
            c.break_seconds,
            getattr(c, "break_max", 0.0) or 0.0,
            SendWindow.of(c),
        )

    @property
    def break_range(self) -> tuple[float, float]:
        return self.break_seconds, max(self.break_seconds, self.break_max)

    def long_break(self, rng: random.Random) -> float:
        """One long break's length, drawn from its range."""
        low, high = self.break_range
        return rng.uniform(low, high) if high > low else low

    def gap(self, rng: random.Random) -> float:
        """The random wait after one request WhatsApp counts (a message, a number lookup),
        without the long breaks."""
        return rng.uniform(self.min_delay, self.max_delay) if self.max_delay > 0 else 0.0

    def delay_after(self, processed_in_run: int, rng: random.Random) -> float:
        """Seconds to wait after the processed_in_run-th message of this run."""
        delay = self.gap(rng)
        if self.break_every and processed_in_run % self.break_every == 0:
            delay += self.long_break(rng)
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
            delay += sum(self.break_range) / 2 / self.break_every
        return delay + self._typing(text_length, 0.75) + SEND_SECONDS

    def estimate(
        self,
        remaining: int,
        *,
        next_in: float | None = None,
        text_length: int = 0,
        now: datetime | None = None,
    ) -> Estimate:
        """`remaining` recipients left; `next_in`: seconds until the next one is due when a
        wait is under way (None: the next one goes now); `now`: the moment it is asked at
        (default: the clock's), from which a send window's closures are counted."""
        gap = self.mean_gap(text_length)
        wait = max(next_in, 0.0) if next_in is not None else 0.0
        if remaining <= 0:
            return Estimate(60.0 / gap, 0.0)
        # The next one goes when due: its send, then a gap before each of the others.
        work = SEND_SECONDS + (remaining - 1) * gap
        if self.window is None:
            return Estimate(60.0 / gap, wait + work)
        # With a window the work is done only while it is open, from when the next is due.
        start = (now or datetime.now(UTC)) + timedelta(seconds=wait)
        return Estimate(60.0 / gap, wait + self.window.open_seconds_until(start, work))
