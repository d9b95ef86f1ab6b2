"""Errors a user should see as clear lines: the base class, and bad input field by field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class UserError(Exception):
    """An error whose message is meant for the operator, printed without a traceback."""


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one field of an input.

    `field` is the name of the parameter (or draft attribute) it is about, e.g. "name",
    "list_name", "at": a form places the message beside its control by that name, never
    by reading the message. `message` names the field as the CLI does ("--at ...").
    """

    field: str
    message: str


class InvalidInput(UserError):
    """Input refused, with every field's error at once (in the order they were found)."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        assert self.errors, "InvalidInput without an error"
        # One line: each message names its own field.
        super().__init__("; ".join(e.message for e in self.errors))

    @property
    def fields(self) -> list[str]:
        return [e.field for e in self.errors]

    def messages(self, field: str) -> list[str]:
        return [e.message for e in self.errors if e.field == field]
