"""Contact lists from CSV files.

An import is all or nothing: every problem in the file is collected and reported in one
line with its line numbers, and nothing is returned, so callers never write half a list.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from waha_tui.errors import UserError
from waha_tui.phones import PhoneError, check_country, normalise_phone
from waha_tui.render import NAME, placeholders, unknown_placeholders

PHONE_HEADERS = ("phone", "phone_number", "phonenumber")
NAME_HEADERS = ("name", "first_name", "firstname")  # in order of preference
DELIMITERS = (",", ";", "\t")  # Excel writes ';' in locales where ',' is the decimal mark

MAX_FIELD_CHARS = 64 * 1024
MAX_LINE_CHARS = 1_000_000
# Above our own limits, so the csv module never stops first with its own message for a
# long line; a multi-line quoted field beyond it is reported as too long like any other.
_CSV_FIELD_LIMIT = 2 * MAX_LINE_CHARS
_LISTED_LINES = 10


@dataclass(frozen=True, slots=True)
class ParsedContact:
    line: int  # 1-based line in the file; the header is line 1
    phone: str  # normalised digits
    name: str | None
    variables: dict[str, str]  # every other column; keys lower-cased and stripped


@dataclass(frozen=True)
class ImportResult:
    contacts: list[ParsedContact]
    columns: list[str]  # variable columns, lower-cased, in header order
    duplicates: list[tuple[str, list[int]]]  # (phone, lines it appeared on); the first is kept


class CsvImportError(UserError):
    """A file that cannot be imported; the message is "<file>: <what>" on one line."""


def parse_contacts(
    path: str | Path,
    *,
    country: str | None = None,
    template: str | None = None,
    max_rows: int | None = None,
) -> ImportResult:
    """Read and check a contacts CSV file; raises CsvImportError if anything is wrong."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise CsvImportError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise CsvImportError(f"{source}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise CsvImportError(f"{source}: cannot be read ({exc.strerror or exc})") from None
    return parse_contacts_text(
        _decode(data, source), source=source, country=country, template=template, max_rows=max_rows
    )


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvImportError(
            f"{source}: is not UTF-8 text (line 1, it is UTF-16); save it as UTF-8"
            ' (in Excel: "CSV UTF-8")'
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CsvImportError(
            f'{source}: is not UTF-8 text (line {line}); save it as UTF-8 (in Excel: "CSV UTF-8")'
        ) from None


class _Lines:
    """Physical lines of the text, counted, with over-long lines stopped before csv sees them."""

    def __init__(self, text: str, source: str) -> None:
        # newline="" keeps line endings for csv and splits on \r\n, \n and \r alike.
        self._lines = iter(io.StringIO(text, newline=""))
        self._source = source
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.count += 1
        if len(line) > MAX_LINE_CHARS:
            raise CsvImportError(
                f"{self._source}: line {self.count} is longer than 1 MB; nothing was imported"
            )
        if "\x00" in line:
            # Not text: a NUL ends strings in C, in databases and in terminals alike.
            raise CsvImportError(
                f"{self._source}: line {self.count} holds a NUL byte (\\x00), which is not "
                "text: is it a CSV file? Nothing was imported"
            )
        return line


def _detect_delimiter(header_line: str) -> str:
    """The delimiter that splits the header into the most cells; ',' when none splits it."""
    best, best_cells = ",", 1
    for delimiter in DELIMITERS:
        cells = len(next(csv.reader([header_line], delimiter=delimiter)))
        if cells > best_cells:
            best, best_cells = delimiter, cells
    return best


def _line_list(lines: list[int]) -> str:
    shown = ", ".join(str(n) for n in lines[:_LISTED_LINES])
    if len(lines) > _LISTED_LINES:
        shown += f" and {len(lines) - _LISTED_LINES} more"
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}"


def _csv_error(source: str, line: int, exc: csv.Error) -> CsvImportError:
    text = str(exc)
    if "unexpected end of data" in text:
        what = f'a quoted value starting on line {line} is never closed (a " is missing)'
    elif "field larger than field limit" in text:
        what = f"line {line} has a field longer than 64 KiB (is a quote left open?)"
    elif "expected after" in text:
        what = (
            f'line {line} has a " in the wrong place: a quoted value must end with " right'
            ' before the delimiter; write "" for a quote inside it'
        )
    else:
        what = f"line {line} cannot be read as CSV ({text})"
    return CsvImportError(f"{source}: {what}; nothing was imported")


def _braced(keys: list[str]) -> str:
    return ", ".join(f"{{{key}}}" for key in keys)


def parse_contacts_text(
    text: str,
    *,
    source: str = "<input>",
    country: str | None = None,
    template: str | None = None,
    max_rows: int | None = None,
) -> ImportResult:
    """Parse and check contacts CSV text; raises CsvImportError if anything is wrong."""
    if country is not None and country.strip():
        try:
            country = check_country(country)
        except PhoneError as exc:
            raise CsvImportError(f"{source}: {exc.text}") from None
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    text = text.removeprefix("\ufeff")
    lines = _Lines(text, source)

    header_line = next((line for line in lines if line.strip()), None)
    delimiter: str | None = None
    # Excel's optional first line "sep=;" names the delimiter.
    if header_line is not None and len(header_line.strip()) == 5:
        directive = header_line.strip()
        if directive.lower().startswith("sep=") and directive[4] in DELIMITERS:
            delimiter = directive[4]
            header_line = next((line for line in lines if line.strip()), None)
    if header_line is None:
        raise CsvImportError(f"{source}: has no contacts (the file is empty)")
    header_line_no = lines.count
    if delimiter is None:
        delimiter = _detect_delimiter(header_line)

    reader = csv.reader(itertools.chain([header_line], lines), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _csv_error(source, header_line_no, exc) from None
    names = [cell.strip().lower() for cell in header]
    width = len(header)

    phone_cols = [i for i, key in enumerate(names) if key in PHONE_HEADERS]
    if not phone_cols:
        found = ", ".join(repr(cell.strip()) for cell in header if cell.strip()) or "none"
        raise CsvImportError(
            f"{source}: has no phone column (phone, phone_number or phoneNumber); "
            f"line {header_line_no} must be a header row such as phone,name; columns found: {found}"
        )
    if len(phone_cols) > 1:
        both = ", ".join(repr(header[i].strip()) for i in phone_cols)
        raise CsvImportError(f"{source}: has more than one phone column ({both}); keep one")
    phone_col = phone_cols[0]
    name_col = next((names.index(key) for key in NAME_HEADERS if key in names), None)

    repeated = sorted({key for key in names if key and names.count(key) > 1})
    if repeated:
        raise CsvImportError(
            f"{source}: column names appear more than once in the header: {', '.join(repeated)}"
        )
    var_cols = [(i, key) for i, key in enumerate(names) if key and i not in (phone_col, name_col)]
    columns = [key for _, key in var_cols]
    unnamed_cols = [i for i, key in enumerate(names) if not key]

    required: list[str] = []
    if template is not None:
        unknown = unknown_placeholders(template, columns)
        if unknown:
            verb = "is not a column" if len(unknown) == 1 else "are not columns"
            hint = (
                "; write {name} for the contact's name"
                if any(key in NAME_HEADERS for key in unknown)
                else ""
            )
            raise CsvImportError(
                f"{source}: the template uses {_braced(unknown)}, which {verb} in the file "
                f"(columns: {', '.join(columns) or 'none'}; {{name}} is always available){hint}"
            )
        required = [key for key in placeholders(template) if key != NAME]

    contacts: list[ParsedContact] = []
    first_line: dict[str, int] = {}
    duplicates: dict[str, list[int]] = {}
    too_many_cells: list[int] = []
    long_fields: list[int] = []
    unnamed_values: list[int] = []
    bad_phones: list[int] = []
    first_phone_error = ""
    empty: dict[str, list[int]] = {key: [] for key in required}

    while True:
        line = lines.count + 1  # csv pulls lines only on demand, so this is where the row starts
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise _csv_error(source, line, exc) from None
        if not any(cell.strip() for cell in row):
            continue  # blank lines and Excel's ";;;" filler rows
        if len(row) > width:
            too_many_cells.append(line)
            continue
        if any(len(cell) > MAX_FIELD_CHARS for cell in row):
            long_fields.append(line)
            continue
        if len(row) < width:
            row += [""] * (width - len(row))  # spreadsheets drop trailing empty cells
        if unnamed_cols and any(row[i].strip() for i in unnamed_cols):
            unnamed_values.append(line)

        variables = {key: row[i].strip() for i, key in var_cols}
        for key in required:
            if not variables[key]:
                empty[key].append(line)
        try:
            phone = normalise_phone(row[phone_col], country)
        except PhoneError as exc:
            bad_phones.append(line)
            # exc.text: the field it names (--country) stays a reference (errors.said).
            first_phone_error = first_phone_error or f"line {line}: {exc.text}"
            continue

        first = first_line.get(phone)
        if first is not None:
            duplicates.setdefault(phone, [first]).append(line)
            continue
        first_line[phone] = line
        name = (row[name_col].strip() or None) if name_col is not None else None
        contacts.append(ParsedContact(line=line, phone=phone, name=name, variables=variables))
        if max_rows is not None and len(contacts) > max_rows:
            raise CsvImportError(
                f"{source}: has more than {max_rows} contacts; split it into smaller files"
            )

    shown_delimiter = "tab" if delimiter == "\t" else repr(delimiter)
    problems = []
    if too_many_cells:
        problems.append(
            f"more cells than the header's {width} on {_line_list(too_many_cells)}"
            f" (quote values that contain {shown_delimiter})"
        )
    if long_fields:
        problems.append(f"a field longer than 64 KiB on {_line_list(long_fields)}")
    if unnamed_values:
        problems.append(f"values in a column with no header on {_line_list(unnamed_values)}")
    if bad_phones:
        problems.append(f"invalid phone on {_line_list(bad_phones)} ({first_phone_error})")
    problems += [
        f"{{{key}}} is empty on {_line_list(empty[key])}" for key in required if empty[key]
    ]
    if problems:
        raise CsvImportError(f"{source}: {'; '.join(problems)}; nothing was imported")
    if not contacts:
        raise CsvImportError(f"{source}: has no contacts (only a header row)")

    return ImportResult(
        contacts=contacts,
        columns=columns,
        duplicates=sorted(duplicates.items(), key=lambda item: item[1][0]),
    )
