import pytest

from waha_tui.errors import UserError
from waha_tui.phones import PhoneError, chat_id_for, check_country, normalise_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("49301234567", "49301234567"),
        ("+49 30 1234567", "49301234567"),
        ("0049 30 1234567", "49301234567"),
        ("+1 (415) 555-0132", "14155550132"),
        ("1.415.555.0132", "14155550132"),
        ("  +62 812-3456-789  ", "628123456789"),
        ("+55\u00a011\u00a091234\u20115678", "5511912345678"),  # Excel no-break space/hyphen
        ("\u0664\u0669\u0663\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667", "49301234567"),
        ("1234567", "1234567"),
        ("123456789012345", "123456789012345"),
    ],
)
def test_international_numbers_become_digits(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("030 1234567", "DE", "49301234567"),
        ("030 1234567", "de", "49301234567"),
        ("(030) 123-4567", " De ", "49301234567"),
        ("0812-3456-789", "ID", "628123456789"),
        ("(11) 91234-5678", "BR", "5511912345678"),
        # Already international: the country must not be prefixed again.
        ("+62 812 3456 789", "DE", "628123456789"),
        ("0062 812 3456 789", "DE", "628123456789"),
        # National digits that already carry the country code are recognised by phonenumbers.
        ("49301234567", "DE", "49301234567"),
    ],
)
def test_country_turns_national_numbers_international(
    raw: str, country: str, expected: str
) -> None:
    assert normalise_phone(raw, country) == expected


@pytest.mark.parametrize("raw", ["030 1234567", "0812-3456-789", "(030) 123-4567"])
def test_without_country_a_national_number_is_refused(raw: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone(raw)
    message = str(info.value)
    assert message.startswith(f"{raw!r} is a national number (it starts with 0)")
    assert "--country" in message


@pytest.mark.parametrize("raw", ["+030 1234567", "000301234567", "+0 301234567"])
def test_a_zero_after_the_international_prefix_is_refused(raw: str) -> None:
    with pytest.raises(PhoneError, match="starts with 0 after the international prefix"):
        normalise_phone(raw)
    with pytest.raises(PhoneError, match="starts with 0 after the international prefix"):
        normalise_phone(raw, "DE")


def test_without_country_international_digits_are_kept() -> None:
    assert normalise_phone("49301234567") == "49301234567"
    assert normalise_phone("00 49 30 1234567") == "49301234567"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("12 34", "'12 34' has 4 digits; a phone number needs 7 to 15"),
        ("+49 123", "'+49 123' has 5 digits; a phone number needs 7 to 15"),
        ("1234567890123456", "'1234567890123456' has 16 digits; a phone number needs 7 to 15"),
        ("---", "'---' has 0 digits"),
        ("", "phone number is empty"),
        ("   ", "phone number is empty"),
        ("call me", "'call me' contains 'c'"),
        ("+49 30 1234567 ext 5", "contains 'e'"),
        ("49+301234567", "contains '+'"),
        ("4930/1234567", "contains '/'"),
        ("491234567890.0", "looks like a spreadsheet number"),
    ],
)
def test_bad_numbers_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone(raw)
    assert message in str(info.value)


def test_a_long_junk_value_is_shortened_in_the_message() -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone("x" * 500)
    assert len(str(info.value)) < 150


@pytest.mark.parametrize(
    ("raw", "country"),
    [("12", "DE"), ("0812", "ID"), ("1", "BR"), ("030 12345678901234567890", "DE")],
)
def test_impossible_national_numbers_are_rejected(raw: str, country: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone(raw, country)
    assert repr(raw) in str(info.value)
    assert country in str(info.value)


@pytest.mark.parametrize("country", ["XX", "UK", "DEU", "49"])
def test_unknown_country_is_named(country: str) -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone("030 1234567", country)
    assert f"unknown country code {country!r}" in str(info.value)


def test_uk_hint_points_to_gb() -> None:
    with pytest.raises(PhoneError, match=r"\(the United Kingdom is GB\)"):
        check_country("uk")
    assert check_country(" gb ") == "GB"


def test_phone_error_is_a_value_error_and_a_user_error() -> None:
    with pytest.raises(PhoneError) as info:
        normalise_phone("nope")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, UserError)


def test_chat_id() -> None:
    assert chat_id_for("49301234567") == "49301234567@c.us"
    assert chat_id_for("+49 30 1234567") == "49301234567@c.us"
    with pytest.raises(PhoneError):
        chat_id_for("12")
