"""How a campaign's recipients are shared among the sessions (numbers) it sends through.

The one place of the rule. A campaign names one session ("default") or several, each
with a weight ("sales:3,support:1"). Positions are dealt to them in a fixed pattern that
repeats every sum-of-weights recipients (smooth weighted round robin: sales, sales,
support, sales, ...), so whose a position is never depends on what was sent: a session
that stops only holds back its own share, and every host reads the same shares. A
recipient's session is also stored at its first attempt (`Recipient.session`), and that
stored one wins from then on: what it sent belongs to that number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from waha_tui.errors import UserError

MAX_WEIGHT = 100
MAX_SESSIONS = 20
MAX_NAME = 100  # campaign.session's length


@dataclass(frozen=True)
class Spread:
    sessions: tuple[tuple[str, int], ...]  # (name, weight), in the order given

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.sessions]

    @property
    def multi(self) -> bool:
        return len(self.sessions) > 1

    @property
    def pattern(self) -> tuple[str, ...]:
        """One period of the deal: each name as often as its weight, spread evenly."""
        return _pattern(self.sessions)

    def session_of(self, position: int) -> str:
        pattern = self.pattern
        return pattern[position % len(pattern)]

    def shares(self, total: int) -> dict[str, int]:
        """How many of `total` recipients each session gets (before any is attempted)."""
        pattern = self.pattern
        whole, rest = divmod(total, len(pattern))
        counts = Counter({name: 0 for name in self.names})
        for name in pattern:
            counts[name] += whole
        for name in pattern[:rest]:
            counts[name] += 1
        return dict(counts)

    def text(self) -> str:
        """As written: "default", or "sales:3,support" (weight 1 left out)."""
        return ",".join(name if w == 1 else f"{name}:{w}" for name, w in self.sessions)

    def stored(self) -> list[list[Any]] | None:
        """The campaign's `sessions` column: None for one session (`campaign.session`)."""
        return [[name, w] for name, w in self.sessions] if self.multi else None

    @classmethod
    def of(cls, camp: Any) -> Spread:
        """A campaign's (or a row's): its `sessions`, else its one `session`."""
        stored = getattr(camp, "sessions", None)
        if stored:
            return cls(tuple((str(name), int(w)) for name, w in stored))
        return cls(((str(camp.session), 1),))


def parse(text: str, *, what: str = "session") -> Spread:
    """ "default", "a,b" or "a:3,b:1": UserError naming the part that is wrong."""
    parts = [p.strip() for p in (text or "").split(",")]
    if not any(parts):
        raise UserError(f"{what} is empty")
    seen: list[tuple[str, int]] = []
    for part in parts:
        if not part:
            raise UserError(f"{what}: an empty name between commas in {text!r}")
        name, colon, weight = part.partition(":")
        name = name.strip()
        if not name or len(name) > MAX_NAME or not name.isprintable() or " " in name:
            # Names are WAHA's (sessions made elsewhere too): only what the list's own
            # grammar or a terminal cannot carry is refused here.
            raise UserError(f"{what}: {name!r} is not a session name")
        w = 1
        if colon:
            try:
                w = int(weight.strip())
            except ValueError:
                w = 0
            if not 1 <= w <= MAX_WEIGHT:
                raise UserError(
                    f"{what}: the weight in {part!r} must be a whole number from 1 to {MAX_WEIGHT}"
                )
        if any(name == other for other, _ in seen):
            raise UserError(f"{what}: session '{name}' is named twice")
        seen.append((name, w))
    if len(seen) > MAX_SESSIONS:
        raise UserError(f"{what}: at most {MAX_SESSIONS} sessions per campaign")
    return Spread(tuple(seen))


def sessions_named(camp: Any) -> str:
    """ "session 'default'", or "sessions a:3,b" for a campaign with several."""
    spread = Spread.of(camp)
    return f"sessions {spread.text()}" if spread.multi else f"session '{spread.names[0]}'"


def names_of(session: str, sessions: Sequence[Sequence[Any]] | None) -> list[str]:
    """The sessions a campaign row sends through (its `session` and `sessions` columns)."""
    return [str(s[0]) for s in sessions] if sessions else [session]


def overlap(mine: Iterable[str], theirs: Iterable[str]) -> list[str]:
    theirs = set(theirs)
    return [name for name in mine if name in theirs]


@lru_cache(maxsize=64)
def _pattern(sessions: tuple[tuple[str, int], ...]) -> tuple[str, ...]:
    # Smooth weighted round robin (nginx's): each turn every name gains its weight, the
    # one ahead is dealt and loses the total. Weights 3 and 1 deal a, a, b, a.
    total = sum(w for _, w in sessions)
    current = [0] * len(sessions)
    out: list[str] = []
    for _ in range(total):
        for i, (_, w) in enumerate(sessions):
            current[i] += w
        best = max(range(len(sessions)), key=lambda i: current[i])
        current[best] -= total
        out.append(sessions[best][0])
    return tuple(out)
