"""The one place that decides how long to wait between messages (WhatsApp bans robots),
and when a campaign may send at all (its daily send window, in its own time zone)."""

from __future__ import annotations

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


def check_zone(name: str, *, field: str = "timezone") -> str:
    """An IANA time zone name as zoneinfo knows it ('Europe/Berlin'), or a refusal naming
    `field` (a window's --timezone, or the caps')."""
    cleaned = (name or "").strip()
    try:
        if not cleaned or cleaned.startswith(("/", ".")) or ".." in cleaned:
            raise ValueError(cleaned)
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UserError(
            f"{ref(field)} {name!r} is not an IANA time zone, e.g. Europe/Berlin (a machine "
            "without /usr/share/zoneinfo needs the tzdata package)"
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
    """How fast a campaign sends and how long what is left takes, from its pacing and its
    number's caps: the one estimate every screen and command shows."""

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
        caps: CapUse | None = None,
        now: datetime | None = None,
        lanes: tuple[int, ...] = (1,),
        lane_caps: tuple[CapUse | None, ...] = (),
    ) -> Estimate:
        """`lanes`: the weights of the sessions it sends through (spread.py). Each sends its
        share at this pacing, all at once, held back by its own number's caps (`lane_caps`,
        in the same order; missing ones: none): the time left is the slowest share's, the
        rate theirs together.

        `remaining` recipients left; `next_in`: seconds until the next one is due when a
        wait is under way (None: the next one goes now); `caps`: the caps of the number it
        sends from and what that number sent lately (None: it has none, or it is not known
        yet), which hold it back as they hold back the runner (`Caps.blocked`); `now`: the
        moment it is asked at (default: the clock's), from which a send window's closures
        are counted. A window and caps are each walked on their own and the slower rules:
        both at once can be off by the part of a day the window keeps closed."""
        if len(lanes) > 1:
            each = [
                self.estimate(
                    math.ceil(remaining * weight / sum(lanes)),
                    next_in=next_in,
                    text_length=text_length,
                    caps=lane_caps[i] if i < len(lane_caps) else None,
                    now=now,
                )
                for i, weight in enumerate(lanes)
            ]
            return Estimate(sum(e.per_minute for e in each), max(e.seconds_left for e in each))
        gap = self.mean_gap(text_length)
        rate = 60.0 / gap
        wait = max(next_in, 0.0) if next_in is not None else 0.0
        if remaining <= 0:
            return Estimate(rate, 0.0)
        # The next one goes when due: its send, then a gap before each of the others.
        work = SEND_SECONDS + (remaining - 1) * gap
        left = wait + work
        if self.window is not None:
            # With a window the work is done only while it is open, from when the next is due.
            start = (now or datetime.now(UTC)) + timedelta(seconds=wait)
            left = wait + self.window.open_seconds_until(start, work)
        if caps is not None and caps.caps.any:
            start = caps.at + timedelta(seconds=wait)
            capped = wait + caps.span(remaining, start, gap) + SEND_SECONDS
            if remaining > 1:
                rate = min(rate, 60.0 * remaining / capped)
            left = max(left, capped)
        return Estimate(rate, left)


# -- per-number caps (issue 17) -------------------------------------------------------------
# A number's caps count every message it sent in the clock hour and in the day, both in the
# caps' own zone (the day ends at midnight there), whichever campaign, session or host sent
# it: the store counts and checks them in the transaction that reserves a send.

MAX_WARMUP_DAYS = 60
_STEPS = 5000  # the estimate's walk through hours and days, at most (then it extrapolates)


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
