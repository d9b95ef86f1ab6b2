from pathlib import Path

import pytest

from waha_tui.csv_import import (
    CsvImportError,
    ImportResult,
    ParsedContact,
    parse_contacts,
    parse_contacts_text,
)
from waha_tui.errors import UserError


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Relative paths, as an operator would type them, so messages start "contacts.csv: ".
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, content: str | bytes, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return Path(name)


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(CsvImportError) as info:
        parse_contacts(path, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_basic_file(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name,City\n+49 30 1234567,Ann,Berlin\n4915112345678,,Rome\n")
    result = parse_contacts(path)
    assert result == ImportResult(
        contacts=[
            ParsedContact(line=2, phone="49301234567", name="Ann", variables={"city": "Berlin"}),
            ParsedContact(line=3, phone="4915112345678", name=None, variables={"city": "Rome"}),
        ],
        columns=["city"],
        duplicates=[],
    )


def test_header_aliases_case_and_spaces(tmp_path: Path) -> None:
    path = write(tmp_path, " PhoneNumber , FirstName , Zip Code ,x\n4930123456, Bo , 10115 , y \n")
    [contact] = parse_contacts(path).contacts
    assert contact == ParsedContact(
        line=2, phone="4930123456", name="Bo", variables={"zip code": "10115", "x": "y"}
    )
    path = write(tmp_path, "phone_number,first_name\n4930123456,Cy\n")
    assert parse_contacts(path).contacts[0].name == "Cy"


def test_name_column_preference_keeps_other_aliases_as_variables(tmp_path: Path) -> None:
    path = write(tmp_path, "first_name,phone,name\nAnn,4930123456,Ann Smith\n")
    result = parse_contacts(path)
    assert result.contacts[0].name == "Ann Smith"
    assert result.columns == ["first_name"]


def test_phone_formats(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "phone\n+49 30 1234567\n0044 20-7946-0018\n(415) 555.0132\n+62 812-3456-789\n",
    )
    phones = [c.phone for c in parse_contacts(path).contacts]
    assert phones == ["49301234567", "442079460018", "4155550132", "628123456789"]


def test_country_conversion(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n030 1234567\n+62 812 3456 789\n0049 89 123456\n")
    phones = [c.phone for c in parse_contacts(path, country="de").contacts]
    assert phones == ["49301234567", "628123456789", "4989123456"]
    path = write(tmp_path, "phone\n0812-3456-789\n")
    assert parse_contacts(path, country="ID").contacts[0].phone == "628123456789"


def test_unknown_country_is_reported_once(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n030 1234567\n030 7654321\n")
    message = error_of(path, country="XX")
    assert message.startswith("contacts.csv: unknown country code 'XX'")
    assert "line" not in message


def test_impossible_number_for_country(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n030 1234567\n0301\n")
    message = error_of(path, country="DE")
    assert "invalid phone on line 3 " in message
    assert message.endswith("; nothing was imported")


def test_utf8_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffphone,name\n4930123456,Jürgen\n".encode())
    result = parse_contacts(path)
    assert result.contacts[0].name == "Jürgen"
    assert result.columns == []


def test_semicolon_delimiter_with_crlf(tmp_path: Path) -> None:
    path = write(tmp_path, 'Name;Phone;Note\r\nAnn;+49 30 1234567;"a, b; c"\r\n')
    [contact] = parse_contacts(path).contacts
    assert contact == ParsedContact(
        line=2, phone="49301234567", name="Ann", variables={"note": "a, b; c"}
    )


def test_tab_delimiter_and_excel_sep_line(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\tname\tcity\n4930123456\tAnn\tBerlin, DE\n")
    assert parse_contacts(path).contacts[0].variables == {"city": "Berlin, DE"}
    path = write(tmp_path, "sep=;\nphone;name,with comma\n4930123456;Ann\n")
    result = parse_contacts(path)
    assert result.columns == ["name,with comma"]
    assert result.contacts[0].line == 3


def test_blank_lines_filler_rows_and_short_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "\n\nphone;name;city\n\n4930123456;Ann\n;;\n  \n4930123457;Bo;Rome\n")
    result = parse_contacts(path)
    assert [(c.line, c.name, c.variables) for c in result.contacts] == [
        (5, "Ann", {"city": ""}),
        (8, "Bo", {"city": "Rome"}),
    ]


def test_multiline_quoted_value_keeps_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,note\n4930123456,"two\nlines"\n4930123457,x\n')
    contacts = parse_contacts(path).contacts
    assert [(c.line, c.variables["note"]) for c in contacts] == [(2, "two\nlines"), (4, "x")]


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"phone,name\n4930123456,Ann\n4930123457,Bo\n4930123458,J\xfcrgen\n")
    assert error_of(path) == (
        'contacts.csv: is not UTF-8 text (line 4); save it as UTF-8 (in Excel: "CSV UTF-8")'
    )


def test_utf16_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n4930123456\n".encode("utf-16"))
    assert "is not UTF-8 text (line 1, it is UTF-16)" in error_of(path)


@pytest.mark.parametrize("content", ["", "\n\n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    assert error_of(write(tmp_path, content)) == "contacts.csv: has no contacts (the file is empty)"


@pytest.mark.parametrize("content", ["phone,name\n", "phone,name\n\n,\n"])
def test_header_only(tmp_path: Path, content: str) -> None:
    assert error_of(write(tmp_path, content)) == "contacts.csv: has no contacts (only a header row)"


def test_missing_file(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.csv") == f"{tmp_path / 'nope.csv'}: no such file"


def test_no_phone_column_lists_columns(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "Name,Mobile,City\nAnn,4930123456,Berlin\n"))
    assert message.startswith("contacts.csv: has no phone column")
    assert message.endswith("columns found: 'Name', 'Mobile', 'City'")


def test_no_header_row(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "4930123456,Ann\n4930123457,Bo\n"))
    assert "line 1 must be a header row" in message
    assert "columns found: '4930123456', 'Ann'" in message


def test_two_phone_columns(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "phone,Phone_Number\n4930123456,4930123457\n"))
    assert message == (
        "contacts.csv: has more than one phone column ('phone', 'Phone_Number'); keep one"
    )


def test_repeated_column(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "phone,city,City\n4930123456,a,b\n"))
    assert message == "contacts.csv: column names appear more than once in the header: city"


def test_too_many_cells_names_the_lines(tmp_path: Path) -> None:
    content = "phone;name\n4930123456;Ann\n4930123457;Smith; Bo\n4930123458;Cy\n4930123459;a;b;c\n"
    assert error_of(write(tmp_path, content)) == (
        "contacts.csv: more cells than the header's 2 on lines 3, 5 (quote values that contain"
        " ';'); nothing was imported"
    )


def test_values_under_an_unnamed_column(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name,\n4930123456,Ann,\n4930123457,Bo,oops\n")
    assert error_of(path) == (
        "contacts.csv: values in a column with no header on line 3; nothing was imported"
    )
    path = write(tmp_path, "phone,name,\n4930123456,Ann,\n")
    assert parse_contacts(path).columns == []


def test_invalid_phones_reject_everything_with_all_lines(tmp_path: Path) -> None:
    content = "phone,name\n4930123456,Ann\n12,Bo\n4930123457,Cy\n,Dee\nn/a,Ed\n+49 (30) 1,Fy\n"
    assert error_of(write(tmp_path, content)) == (
        "contacts.csv: invalid phone on lines 3, 5, 6, 7 (line 3: '12' has 2 digits; a phone"
        " number needs 7 to 15); nothing was imported"
    )


def test_listed_lines_are_capped(tmp_path: Path) -> None:
    content = "phone\n" + "x\n" * 25
    message = error_of(write(tmp_path, content))
    assert "invalid phone on lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 15 more (" in message


def test_duplicates_keep_the_first(tmp_path: Path) -> None:
    content = (
        "phone,name\n+49 30 1234567,Ann\n4930123456,Bo\n0049301234567,Ann again\n"
        "49 30 123456,Bo again\n49301234567,Ann third\n"
    )
    result = parse_contacts(write(tmp_path, content))
    assert [(c.line, c.name) for c in result.contacts] == [(2, "Ann"), (3, "Bo")]
    assert result.duplicates == [("49301234567", [2, 4, 6]), ("4930123456", [3, 5])]


def test_duplicates_after_country_conversion(tmp_path: Path) -> None:
    result = parse_contacts(write(tmp_path, "phone\n030 1234567\n+49 30 1234567\n"), country="DE")
    assert [c.phone for c in result.contacts] == ["49301234567"]
    assert result.duplicates == [("49301234567", [2, 3])]


def test_template_with_known_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name,City,Zip\n4930123456,,Berlin,\n")
    result = parse_contacts(path, template='Hi {Name}, *{CITY}* {"json": 1}')
    assert result.contacts[0].variables == {"city": "Berlin", "zip": ""}


def test_template_with_unknown_placeholders(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,name,City\n4930123456,Ann,Berlin\n")
    assert error_of(path, template="Hi {name} from {town} {Zip} {city}") == (
        "contacts.csv: the template uses {town}, {zip}, which are not columns in the file"
        " (columns: city; {name} is always available)"
    )
    assert "{town}, which is not a column" in error_of(path, template="{town}")


def test_template_using_the_name_header_hints_at_name(tmp_path: Path) -> None:
    path = write(tmp_path, "phone,first_name\n4930123456,Ann\n")
    message = error_of(path, template="Hi {first_name}")
    assert message.endswith(
        "(columns: none; {name} is always available); write {name} for the contact's name"
    )


def test_template_with_empty_values(tmp_path: Path) -> None:
    content = (
        "phone,name,city,zip\n4930123451,,Berlin,1\n4930123452,Bo,Rome,2\n"
        "4930123453,Cy, ,3\n4930123454,Dee,Oslo,\n4930123455,Ed,,\n"
    )
    path = write(tmp_path, content)
    assert error_of(path, template="{name} in {city} {zip} {City}") == (
        "contacts.csv: {city} is empty on lines 4, 6; {zip} is empty on lines 5, 6;"
        " nothing was imported"
    )
    # Without a template, empty cells are fine; {name} never needs a value.
    assert len(parse_contacts(path).contacts) == 5
    assert len(parse_contacts(path, template="Hi {name}").contacts) == 5


def test_all_problems_in_one_line(tmp_path: Path) -> None:
    content = "phone,city\n4930123456,a,b\nabc,Rome\n4930123457,\n"
    assert error_of(write(tmp_path, content), template="{city}") == (
        "contacts.csv: more cells than the header's 2 on line 2 (quote values that contain ',');"
        " invalid phone on line 3 (line 3: 'abc' contains 'a'; a phone number may only have"
        " digits, spaces, dashes, dots, parentheses and a leading +); {city} is empty on line 4;"
        " nothing was imported"
    )


def test_max_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "phone\n4930123451\n4930123452\n4930123451\n")
    # The duplicate does not count: two contacts fit a limit of two.
    assert len(parse_contacts(path, max_rows=2).contacts) == 2
    assert error_of(path, max_rows=1) == (
        "contacts.csv: has more than 1 contacts; split it into smaller files"
    )


def test_field_over_64_kib(tmp_path: Path) -> None:
    path = write(tmp_path, f"phone,note\n4930123456,short\n4930123457,{'x' * 70_000}\n")
    assert error_of(path) == (
        "contacts.csv: a field longer than 64 KiB on line 3; nothing was imported"
    )


def test_quoted_field_over_the_csv_module_default_limit(tmp_path: Path) -> None:
    # 200 lines of 1,000 chars: no line is too long, but the field beats csv's 128 KiB default.
    big = "\n".join(["y" * 1000] * 200)
    path = write(tmp_path, f'phone,note\n4930123456,ok\n4930123457,"{big}"\n')
    assert error_of(path) == (
        "contacts.csv: a field longer than 64 KiB on line 3; nothing was imported"
    )


def test_line_over_1_mb(tmp_path: Path) -> None:
    path = write(tmp_path, f"phone,note\n4930123456,ok\n4930123457,{'z' * (1024 * 1024)}\n")
    assert error_of(path) == "contacts.csv: line 3 is longer than 1 MB; nothing was imported"


@pytest.mark.parametrize("where", ["name", "header"])
def test_a_nul_byte_is_refused_with_its_line(tmp_path: Path, where: str) -> None:
    body = (
        "phone,na\x00me\n4930123456,Ann\n"
        if where == "header"
        else "phone,name\n4930123456,Ann\n4930123457,B\x00o\n"
    )
    line = 1 if where == "header" else 3
    assert error_of(write(tmp_path, body)) == (
        f"contacts.csv: line {line} holds a NUL byte (\\x00), which is not text: is it a "
        "CSV file? Nothing was imported"
    )


def test_unclosed_quote_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,name\n4930123456,Ann\n4930123457,"Bo\n4930123458,Cy\n')
    assert error_of(path) == (
        'contacts.csv: a quoted value starting on line 3 is never closed (a " is missing);'
        " nothing was imported"
    )


def test_quote_in_the_wrong_place_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,name\n4930123456,"Ann" Smith\n')
    message = error_of(path)
    assert message.startswith('contacts.csv: line 2 has a " in the wrong place')


def test_quote_inside_unquoted_value_is_literal(tmp_path: Path) -> None:
    path = write(tmp_path, 'phone,size\n4930123456,5" screen\n')
    assert parse_contacts(path).contacts[0].variables == {"size": '5" screen'}


def test_100k_rows(tmp_path: Path) -> None:
    lines = ["phone;name;city"] + [f"+49 151 {i:07d};Name {i};City {i % 7}" for i in range(100_000)]
    lines.append("+49 151 0000000;dup;x")
    path = write(tmp_path, "\r\n".join(lines) + "\r\n")
    result = parse_contacts(path, template="Hi {name} from {city}")
    assert len(result.contacts) == 100_000
    assert result.contacts[-1] == ParsedContact(
        line=100_001, phone="491510099999", name="Name 99999", variables={"city": "City 4"}
    )
    assert result.duplicates == [("491510000000", [2, 100_002])]


def test_parse_text_uses_the_source_name() -> None:
    assert parse_contacts_text("phone\n4930123456\n").contacts[0].phone == "4930123456"
    with pytest.raises(CsvImportError, match=r"^<input>: has no contacts"):
        parse_contacts_text("phone\n")
    with pytest.raises(CsvImportError, match=r"^pasted: invalid phone on line 2 "):
        parse_contacts_text("phone\n1\n", source="pasted")
