"""Varied text: a campaign's variants and choices, each recipient's stable pick, and how
many different texts a campaign sends.

A campaign's texts are its template_text (variant 0) and `campaign.variants`; each may hold
choices (`{Hi|Hello}`, render.py's grammar). A recipient's variant, and the option of each
choice in it, come from SHA-256 of the campaign id, the recipient's position and the choice's
number: the same in every process, host and Python version (never `hash()`, which is
salted per process), so a re-send carries the same text even where it was not stored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from waha_tui.models import Campaign, Recipient
from waha_tui.render import (
    Literal,
    Part,
    Placeholder,
    RenderError,
    Variants,
    parse,
    placeholders,
    render,
)

COUNT_LIMIT = 10_000  # distinct texts counted one by one; more is "more than 10,000"
COUNT_WORK = 200_000  # combinations looked at, at most, to count them
SAMPLE_TRIES = 50  # picks tried for a few different samples


def pick_index(campaign_id: int, position: int, what: str, choices: int) -> int:
    """A stable pick among `choices` for one recipient: `what` names the choice."""
    digest = hashlib.sha256(f"{campaign_id}:{position}:{what}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % choices


@dataclass(frozen=True)
class TextCount:
    """How many different texts: `count` exactly, or (not `exact`) more than `count`."""

    count: int
    exact: bool

    def __str__(self) -> str:
        n = f"{self.count:,}"
        if not self.exact:
            return f"more than {n} different texts"
        return f"{n} different text{'' if self.count == 1 else 's'}"


class CampaignTexts:
    """A campaign's texts, parsed once: what a run renders each recipient's text from."""

    def __init__(self, texts: Sequence[str], *, spin: bool = True) -> None:
        assert texts, "a campaign has at least its template_text"
        self.texts = [parse(t) for t in texts]
        # False: a campaign created before choices were sent (variants None): its text is
        # sent as written, as it always was (render's lenient rule).
        self.spin = spin

    @classmethod
    def of(cls, template_text: str, variants: Sequence[str] | None) -> CampaignTexts:
        return cls([template_text, *(variants or [])], spin=variants is not None)

    @classmethod
    def of_campaign(cls, camp: Campaign) -> CampaignTexts:
        return cls.of(camp.template_text, camp.variants)

    def text_of(self, camp: Campaign, rec: Recipient) -> str:
        """The recipient's text: the one stored (what every send and re-send of it
        carries), else its pick (RenderError when a value is missing)."""
        if rec.text is not None:
            return rec.text
        assert camp.id is not None
        return self.pick(
            camp.id, rec.position, rec.variables, name=rec.name, default_name=camp.default_name
        )

    @property
    def varied(self) -> bool:
        """Whether recipients may get different texts (before their values go in)."""
        return self.spin and (len(self.texts) > 1 or any(_has_choice(t.parts) for t in self.texts))

    def pick(
        self,
        campaign_id: int,
        position: int,
        variables: Mapping[str, str],
        *,
        name: str | None,
        default_name: str,
    ) -> str:
        """The text of the recipient at `position` (render's RenderError if a value is
        missing): the same for the same campaign and position, wherever it is computed."""
        if not self.spin:
            return render(self.texts[0], variables, name=name, default_name=default_name)
        variant = pick_index(campaign_id, position, "variant", len(self.texts))

        def choose(group: Variants) -> int:
            return pick_index(campaign_id, position, f"{variant}.{group.index}", len(group.options))

        parsed = self.texts[variant]
        return render(parsed, variables, name=name, default_name=default_name, choose=choose)

    def count(self) -> TextCount:
        """How many different texts the campaign sends, before the values go in (a
        placeholder counts as itself): exactly while that is at most COUNT_LIMIT."""
        if not self.spin:
            return TextCount(1, True)
        combinations = sum(_combinations(t.parts) for t in self.texts)
        seen: set[str] = set()
        looked = 0
        for parsed in self.texts:
            for text in _spelled(parsed.parts):
                seen.add(text)
                looked += 1
                if len(seen) > COUNT_LIMIT:
                    return TextCount(COUNT_LIMIT, False)
                if looked >= COUNT_WORK and looked < combinations:
                    return TextCount(len(seen) - 1, False)  # so many repeats: at least
        return TextCount(len(seen), True)

    def sample_positions(self, want: int) -> list[int]:
        """Up to `want` made-up positions (negative: no recipient's) whose picks differ
        before the values go in, the same each time, so a preview does not flicker."""
        keys = {key for t in self.texts for key in placeholders(t)}
        marks = {key: f"\x00{key}\x00" for key in keys}
        found: dict[str, int] = {}
        for i in range(SAMPLE_TRIES):
            position = -1 - i
            try:
                text = self.pick(0, position, marks, name="\x00name\x00", default_name="")
            except RenderError:  # cannot be: every placeholder has its mark
                continue
            found.setdefault(text, position)
            if len(found) >= want:
                break
        return list(found.values())

    def samples(
        self, want: int, variables: Mapping[str, str], *, name: str | None, default_name: str
    ) -> list[str]:
        """Up to `want` different texts, as the contact of these values would read them."""
        return [
            self.pick(0, position, variables, name=name, default_name=default_name)
            for position in self.sample_positions(want)
        ]


def _has_choice(parts: Sequence[Part]) -> bool:
    return any(isinstance(p, Variants) for p in parts)


def _combinations(parts: Sequence[Part]) -> int:
    total = 1
    for part in parts:
        if isinstance(part, Variants):
            total *= sum(_combinations(option) for option in part.options)
    return total


def _spelled(parts: Sequence[Part]) -> Iterator[str]:
    """Every text `parts` can make, lazily (with repeats); a placeholder spelled as a mark
    no typed text holds, so `{name}` and `\\{name\\}` stay apart."""
    if not parts:
        yield ""
        return
    head, rest = parts[0], parts[1:]
    if isinstance(head, Literal):
        heads: Iterator[str] = iter((head.text,))
    elif isinstance(head, Placeholder):
        heads = iter((f"\x00{head.key}\x00",))
    else:
        heads = (text for option in head.options for text in _spelled(option))
    for first in heads:
        for tail in _spelled(rest):
            yield first + tail
