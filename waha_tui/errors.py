"""Errors a user should see as clear lines: the base class, bad input field by field, and how
a message names a field (the CLI by its flag, the dashboard's forms by its label)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class FieldName:
    """How one input field is called: the CLI's flag, the label of a dashboard form."""

    flag: str
    label: str


# The one table: every field the service names in its refusals (the parameters and draft
# attributes of its methods), as each reader knows it.
FIELD_NAMES: dict[str, FieldName] = {
    "name": FieldName("--name", "Name"),
    "message": FieldName("--message", "Message"),
    "variants": FieldName("--variant", "Variant"),
    "template": FieldName("--template", "Template"),
    "contacts_file": FieldName("--contacts", "CSV file"),
    "list_name": FieldName("--list", "List name"),
    "country": FieldName("--country", "Country"),
    "image": FieldName("--image", "Image"),
    "session": FieldName("--session", "Session"),
    "at": FieldName("--at", "Start"),
    "delay": FieldName("--delay", "Delay"),
    "window": FieldName("--window", "Send window"),
    "days": FieldName("--days", "Days"),
    "timezone": FieldName("--timezone", "Time zone"),
    "break_every": FieldName("--break-every", "Break every"),
    "break_range": FieldName("--break", "Break (s)"),
    "phone": FieldName("PHONE", "Phone number"),
    "search": FieldName("--search", "Search"),
    "keywords": FieldName("--set", "Keywords"),
    "path": FieldName("FILE", "CSV file"),
    "check_numbers": FieldName("--check-numbers", "Check numbers on WhatsApp first"),
    # A number's caps (waha-tui caps set).
    "target": FieldName("SESSION_OR_NUMBER", "Session or number"),
    "number": FieldName("NUMBER", "Number"),
    "per_hour": FieldName("--per-hour", "Per hour"),
    "per_day": FieldName("--per-day", "Per day"),
    "caps_zone": FieldName("--timezone", "Time zone"),
    "warmup": FieldName("--warmup", "Warm-up"),
    "warmup_start": FieldName("--warmup-start", "Warm-up start"),
}
Reader = Literal["flag", "label"]
# A field named inside a message, between two of these: our code writes them (ref), and
# said() turns them into the reader's word before anything is shown. (A control character
# that str.split() does not take for a space: messages are normalised with it.)
_MARK = "\x1a"
_REF = re.compile(f"{_MARK}([a-z_]+){_MARK}")


def ref(field: str) -> str:
    """`field` named in a message; said() words it for whoever reads it."""
    if field not in FIELD_NAMES:
        raise KeyError(f"no field {field!r} in FIELD_NAMES")
    return f"{_MARK}{field}{_MARK}"


def said(text: str, reader: Reader = "flag") -> str:
    """A message with each field it names worded for its reader: "--at" or "Start"."""

    def word(found: re.Match[str]) -> str:
        name = FIELD_NAMES.get(found.group(1))
        return found.group(0) if name is None else getattr(name, reader)

    return _REF.sub(word, text)


class UserError(Exception):
    """An error whose message is meant for the operator, printed without a traceback.

    str() is the CLI's wording (fields named by their flags); said("label") the forms'.
    """

    def __str__(self) -> str:
        return said(self.text)

    @property
    def text(self) -> str:
        """The message with its field references kept: to build another message from."""
        return super().__str__()

    def said(self, reader: Reader) -> str:
        return said(self.text, reader)


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field of an input.

    `field` is the name of the parameter (or draft attribute) it is about, e.g. "name",
    "list_name", "at": a form places the message beside its control by that name, never
    by reading the message. `text` may name fields (ref()): `message` is the CLI's
    wording of it ("--at ..."), `label_message` a form's ("Start ...").
    """

    field: str
    text: str

    @property
    def message(self) -> str:
        return said(self.text, "flag")

    @property
    def label_message(self) -> str:
        return said(self.text, "label")


class InvalidInput(UserError):
    """Input refused, with every field's error at once (in the order they were found)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        assert self.errors, "InvalidInput without an error"
        # One line: each message names its own field.
        super().__init__("; ".join(e.text for e in self.errors))

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]

    def messages(self, field: str, reader: Reader = "flag") -> list[str]:
        return [said(e.text, reader) for e in self.errors if e.field == field]
