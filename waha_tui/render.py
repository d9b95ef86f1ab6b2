"""Message templates: the one grammar, the one parser, and rendering.

The grammar, everywhere a message text is written (`template add`, `campaign create
--message`, the dashboard's editors):

- `{name}`, `{City}`, `{ first name }`: a placeholder. Its name is letters, digits, `_`, `-`
  and spaces; matching is case-insensitive and ignores the spaces around it. `{name}` is the
  contact's name; any other is the contact list's column of that name.
- `{Hi|Hello|Hey}`: a choice (spintax), one option of which each recipient gets (picked
  stably: variants.py); options may hold placeholders and choices of their own
  (`{Hi|Hello {name}|Hey}`). An option may be empty (`{very |}good`: sometimes nothing), but
  not every option of a group (`{|}`).
- `\\{`, `\\}` and `\\|` are a literal `{`, `}` and `|`; a backslash before anything else is
  itself. A `|` outside braces is refused: it is either a choice missing its braces or a
  literal `|` to write `\\|`.
- Braces around nothing (`{}`, `{ }`) or around text that does not start like a name
  (`{"a": 1}`, `{:-)}`) are plain text, as is a `}` on its own. WhatsApp markdown
  (`*bold*`, `_italic_`, `~strike~`, ```` ```mono``` ````) is plain text too.
- Refused, with the line and column of the `{` (or `|`): braces that start like a
  placeholder and are not one (`{first.name}`, `{city:}`), a placeholder or a choice left
  without its `}` (`{name`, `{Hi|Hello`), `{{name}}` (another tool's habit: write `{name}`),
  a choice with no text in any option, and a `|` outside braces. A group never spans lines.

Texts stored before this grammar was enforced are rendered leniently: what would be refused
is sent as it was written, as it always was; so are choices, unless `render` is told how to
choose (campaigns created before choices were sent keep sending them as written).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise

from waha_tui.errors import UserError

NAME = "name"
ESCAPABLE = "{}|"

_NAME = re.compile(r"[\w\- ]+")


class RenderError(UserError):
    """A template needs a value that was not given."""


@dataclass(frozen=True)
class TemplateError:
    """Where a template breaks the grammar (1-based line and column of its `{`)."""

    line: int
    column: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.problem}"


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Placeholder:
    key: str  # lower-cased, spaces around it stripped


@dataclass(frozen=True)
class Variants:
    """A choice: one of its options per recipient."""

    options: tuple[tuple[Part, ...], ...]
    source: str  # as written, braces included: what a lenient render sends
    # Its number among the template's choices, in reading order of their `{` (nested ones
    # too, whichever option holds them): what a stable pick hashes, so a choice's pick
    # never depends on what was picked around it.
    index: int = 0


Part = Literal | Placeholder | Variants


@dataclass
class Parsed:
    parts: list[Part]
    errors: list[TemplateError]


def parse(template: str) -> Parsed:
    """The template's parts, and every place it breaks the grammar. Parts are always
    given: where there is an error, the text is kept as written."""
    errors: list[TemplateError] = []
    parts: list[Part] = []
    groups = itertools.count()
    for number, line in enumerate(template.split("\n"), start=1):
        if number > 1:
            parts.append(Literal("\n"))
        parts.extend(_Line(line, number, errors, groups).sequence(0, len(line), top=True))
    return Parsed(_merged(parts), errors)


class _Line:
    """A recursive-descent parser over one line (a group never spans lines)."""

    def __init__(self, text: str, number: int, errors: list[TemplateError], groups: Iterator[int]):
        self.text, self.number, self.errors, self.groups = text, number, errors, groups
        self.unclosed = False  # a `{` left open: the `|` after it are that one mistake

    def error(self, at: int, problem: str) -> None:
        self.errors.append(TemplateError(self.number, at + 1, problem))

    def sequence(self, start: int, end: int, *, top: bool = False) -> list[Part]:
        """The parts of text[start:end]; an unescaped `|` here is outside any braces (an
        option's text has none: `group` split them off)."""
        text, i = self.text, start
        parts: list[Part] = []
        plain: list[str] = []
        while i < end:
            ch = text[i]
            if ch == "\\" and i + 1 < end and text[i + 1] in ESCAPABLE:
                plain.append(text[i + 1])
                i += 2
            elif ch == "{":
                close = self._closing(i, end)
                group, i = self.group(i, close, end)
                if isinstance(group, Literal):
                    plain.append(group.text)
                else:
                    if plain:
                        parts.append(Literal("".join(plain)))
                        plain = []
                    parts.append(group)
            else:
                if ch == "|" and top and not self.unclosed:
                    self.error(
                        i,
                        "a | outside braces: a choice is {Hi|Hello}; write \\| for a literal |",
                    )
                plain.append(ch)
                i += 1
        if plain:
            parts.append(Literal("".join(plain)))
        return parts

    def _closing(self, start: int, end: int) -> int | None:
        """Index of the `}` closing the `{` at `start` (nested groups counted), or None."""
        depth, i, text = 0, start, self.text
        while i < end:
            ch = text[i]
            if ch == "\\" and i + 1 < end and text[i + 1] in ESCAPABLE:
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return i
            i += 1
        return None

    def group(self, start: int, close: int | None, end: int) -> tuple[Part, int]:
        """The group opening at `start`; returns it and where parsing goes on."""
        text = self.text
        head = text[start + 1 : close if close is not None else end].lstrip(" ")
        starts_like_name = head[:1].isalnum() or head[:1] in "_-"
        if close is None:
            if starts_like_name:
                word = _NAME.match(head)
                shown = (word.group(0) if word else head[:1]).rstrip(" ")
                self.error(start, f"{{{shown} has no closing }}")
                self.unclosed = True
            elif self._bars(start + 1, end):
                self.error(start, "this { of a choice has no closing }")
                self.unclosed = True
            return Literal("{"), start + 1  # lenient: a brace as written
        inner = text[start + 1 : close]
        splits = self._bars(start + 1, close)
        if splits:
            index = next(self.groups)  # before its options': reading order
            bounds = [start + 1, *splits, close]
            options = tuple(
                tuple(self.sequence(a + (1 if k else 0), b))
                for k, (a, b) in enumerate(pairwise(bounds))
            )
            source = text[start : close + 1]
            if all(
                not self._unescaped(a + (1 if k else 0), b).strip()
                for k, (a, b) in enumerate(pairwise(bounds))
            ):
                self.error(
                    start,
                    f"{source} is a choice with no text in any option: write at least one, "
                    "e.g. {Hi|Hello}; \\| for a literal |",
                )
            return Variants(options, source, index), close + 1
        if _NAME.fullmatch(inner) and inner.strip(" "):
            return Placeholder(inner.strip(" ").lower()), close + 1
        if not inner.strip(" "):
            return Literal(text[start : close + 1]), close + 1
        nested = inner.strip(" ")
        if nested.startswith("{") and nested.endswith("}") and _NAME.fullmatch(nested[1:-1]):
            self.error(start, f"write {nested}, not {{{nested}}}: one pair of braces")
            return Literal("{"), start + 1  # lenient: `{`, the placeholder, `}`
        if starts_like_name:
            self.error(
                start,
                f"{text[start : close + 1]} is not a placeholder: write a name of letters, "
                "digits, _, - or spaces between { and }, e.g. {first_name}; \\{ for a "
                "literal {",
            )
            return Literal("{"), start + 1  # lenient: as written
        return Literal(self._unescaped(start, close + 1)), close + 1  # {"a": 1}: text

    def _bars(self, start: int, end: int) -> list[int]:
        """Indexes of the unescaped `|` at depth 0 of text[start:end]."""
        found, depth, i, text = [], 0, start, self.text
        while i < end:
            ch = text[i]
            if ch == "\\" and i + 1 < end and text[i + 1] in ESCAPABLE:
                i += 2
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "|" and depth == 0:
                found.append(i)
            i += 1
        return found

    def _unescaped(self, start: int, end: int) -> str:
        out, i, text = [], start, self.text
        while i < end:
            if text[i] == "\\" and i + 1 < end and text[i + 1] in ESCAPABLE:
                out.append(text[i + 1])
                i += 2
            else:
                out.append(text[i])
                i += 1
        return "".join(out)


def _merged(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, Literal) and out and isinstance(out[-1], Literal):
            out[-1] = Literal(out[-1].text + part.text)
        else:
            out.append(part)
    return out


def template_errors(template: str) -> list[TemplateError]:
    """Every place `template` breaks the grammar, in order: a template with any is refused."""
    return parse(template).errors


def _walk(parts: Iterable[Part]) -> Iterator[Placeholder]:
    for part in parts:
        if isinstance(part, Placeholder):
            yield part
        elif isinstance(part, Variants):
            for option in part.options:
                yield from _walk(option)


def placeholders(template: str | Parsed) -> list[str]:
    """The placeholders used in ``template`` (a text, or one `parse` gave), in every option
    of its choices: lower-cased, unique, in order of first appearance."""
    seen: dict[str, None] = {}
    parts = (parse(template) if isinstance(template, str) else template).parts
    for p in _walk(parts):
        seen.setdefault(p.key, None)
    return list(seen)


def unknown_placeholders(template: str, columns: Iterable[str]) -> list[str]:
    """Placeholders that are neither {name} nor one of ``columns`` (case-insensitive)."""
    known = {column.strip().lower() for column in columns}
    known.add(NAME)
    return [key for key in placeholders(template) if key not in known]


Choose = Callable[[Variants], int]  # which option of a choice (0-based)


def render(
    template: str | Parsed,
    variables: Mapping[str, str],
    *,
    name: str | None,
    default_name: str,
    choose: Choose | None = None,
) -> str:
    """Fill in the placeholders of ``template`` (a text, or one `parse` gave).

    {name} is the contact's name, or ``default_name`` when it is empty. Any other placeholder
    is the variable whose key matches case-insensitively. Raises RenderError naming every
    placeholder that has no variable (those of the options chosen). Values are never
    parsed again. Each choice is the option `choose` says; without `choose`, a choice is
    sent as written (a text stored before choices were sent).
    """
    values = {key.strip().lower(): value for key, value in variables.items()}
    stripped_name = (name or "").strip()
    values[NAME] = stripped_name or default_name
    parts = (parse(template) if isinstance(template, str) else template).parts
    out: list[str] = []
    missing: dict[str, None] = {}
    _fill(parts, values, choose, out, missing)
    if missing:
        shown = ", ".join(f"{{{key}}}" for key in missing)
        it = "it" if len(missing) == 1 else "them"
        raise RenderError(f"the template uses {shown} but there is no value for {it}")
    return "".join(out)


def _fill(
    parts: Iterable[Part],
    values: Mapping[str, str],
    choose: Choose | None,
    out: list[str],
    missing: dict[str, None],
) -> None:
    for part in parts:
        if isinstance(part, Literal):
            out.append(part.text)
        elif isinstance(part, Placeholder):
            if part.key in values:
                out.append(values[part.key])
            else:
                missing.setdefault(part.key, None)
        elif choose is None:
            out.append(part.source)  # as written (see above)
        else:
            _fill(part.options[choose(part)], values, choose, out, missing)
