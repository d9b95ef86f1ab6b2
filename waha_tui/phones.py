"""Phone number normalisation: the one place that decides what a phone number is.

Numbers are stored and sent as international digits without '+', e.g. "49301234567",
which is what WAHA expects in a chat id ("49301234567@c.us").
"""

from __future__ import annotations

import re

import phonenumbers

from waha_tui.errors import UserError, ref

MIN_DIGITS = 7
MAX_DIGITS = 15  # ITU E.164 maximum

# Separators people type or spreadsheets produce (plus any whitespace, e.g. Excel's no-break
# space); the Unicode dashes come from Word/Excel autocorrect.
_DELETE_SEPARATORS = str.maketrans("", "", "-.()\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
# A number column saved as floats by pandas/Excel ("491234567890.0"): removing the dot would
# silently append a digit and send to someone else.
_FLOAT_EXPORT = re.compile(r"\+?\d+\.0")
_SHOWN_MAX = 40  # keep error lines short when a whole sentence lands in the phone column


class PhoneError(ValueError, UserError):
    """A phone number that cannot be used; the message says what is wrong with it."""


def _shown(raw: str) -> str:
    text = raw.strip()
    if len(text) > _SHOWN_MAX:
        text = text[: _SHOWN_MAX - 1] + "…"
    return repr(text)


def check_country(country: str) -> str:
    """The upper-cased region code for ``country``; PhoneError if phonenumbers doesn't know it."""
    region = country.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        hint = " (the United Kingdom is GB)" if region == "UK" else ""
        raise PhoneError(
            f"unknown country code {country.strip()!r}{hint}: "
            "use a two-letter ISO 3166 code such as DE, ID or BR"
        )
    return region


def normalise_phone(raw: str, country: str | None = None) -> str:
    """Digits only, international, no '+'.

    Removes spaces, dashes, dots, parentheses, a leading '+' or '00'. With ``country`` (ISO
    3166 alpha-2, case-insensitive), a national number (not starting with + or 00) is
    converted with `phonenumbers`; without it the digits are taken as international, and a
    number still starting with 0 (a national one) is refused. Raises PhoneError for junk, an
    unknown country, an impossible number, or a result outside 7-15 digits.
    """
    region = check_country(country) if country is not None and country.strip() else None
    text = raw.strip()
    if not text:
        raise PhoneError("phone number is empty")
    if _FLOAT_EXPORT.fullmatch(text):
        raise PhoneError(
            f"{_shown(raw)} looks like a spreadsheet number with a decimal part; "
            "format the phone column as text"
        )

    international = text.startswith("+")
    body = text[1:] if international else text
    number = "".join(body.translate(_DELETE_SEPARATORS).split())  # split() drops any whitespace
    if number and not number.isdecimal():
        bad = next(ch for ch in number if not ch.isdecimal())
        raise PhoneError(
            f"{_shown(raw)} contains {bad!r}; a phone number may only have digits, "
            "spaces, dashes, dots, parentheses and a leading +"
        )
    if not number.isascii():
        number = "".join(str(int(ch)) for ch in number)  # Arabic-Indic etc. digits to ASCII
    if not international and number.startswith("00"):
        international = True
        number = number[2:]

    if region is not None and not international and number:
        number = _national_to_international(raw, number, region)
    if number.startswith("0"):
        # No country code starts with 0: WhatsApp could never deliver to it.
        if not international:  # with a country it was converted above
            raise PhoneError(
                f"{_shown(raw)} is a national number (it starts with 0): give its country in "
                f"{ref('country')}, e.g. DE, or write it as +<country code><number>"
            )
        raise PhoneError(f"{_shown(raw)} starts with 0 after the international prefix")

    if not MIN_DIGITS <= len(number) <= MAX_DIGITS:
        raise PhoneError(
            f"{_shown(raw)} has {len(number)} digits; "
            f"a phone number needs {MIN_DIGITS} to {MAX_DIGITS}"
        )
    return number


def _national_to_international(raw: str, number: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        raise PhoneError(f"{_shown(raw)} is not a phone number for {region}") from None
    # Local-only numbers can't be dialled from abroad, so WhatsApp can't reach them either.
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise PhoneError(f"{_shown(raw)} is not a possible phone number for {region}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164).lstrip("+")


def chat_id_for(phone: str) -> str:
    """The WAHA chat id of a personal chat, "<digits>@c.us"."""
    return f"{normalise_phone(phone)}@c.us"


def masked(number: str) -> str:
    """A number (or any id) as a log line shows it: its last four characters only, so a
    log read by others never holds whom a campaign reached ("…4567")."""
    text = number.strip()
    return "…" + text[-4:] if len(text) > 4 else "…"


def masked_own(digits: str) -> str:
    """One of the operator's own numbers as a stored or logged line shows it: its country
    code and last four digits ("+49…5678"), enough to tell one's numbers apart."""
    text = digits.strip().lstrip("+")
    try:
        code = str(phonenumbers.parse(f"+{text}").country_code)
    except phonenumbers.NumberParseException:
        code = ""
    return f"+{code}{masked(text)}"
