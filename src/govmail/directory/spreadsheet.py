"""Reads agencies' staff lists (.xlsx, .csv) into rows for ``govmail import officials``."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from pathlib import Path
from typing import Any

from govmail.core.errors import InvalidInput


@dataclass(frozen=True)
class StaffRow:
    """One official as written in the file; ``row_number`` is 1-based, as Excel shows it."""

    row_number: int
    name: str
    position: str
    department: str
    address: str | None


@dataclass(frozen=True)
class RowProblem:
    """A row that could not be read as an official, with the reason for the user."""

    row_number: int
    reason_vi: str
    reason_en: str


# Header cells are compared after _header_key(): no diacritics, case, spaces or punctuation.
_HEADER_NAMES: dict[str, tuple[str, ...]] = {
    "name": ("Họ và tên", "Họ tên", "Name", "Full name"),
    "position": ("Chức vụ", "Position", "Title"),
    "department": ("Bộ phận công tác", "Bộ phận", "Phòng ban", "Department"),
    "address": ("Địa chỉ hộp thư", "Địa chỉ thư điện tử", "Hộp thư", "Email", "Address"),
}
_HEADERLESS_ORDER = ("name", "position", "department", "address")

# A title block ("ỦY BAN NHÂN DÂN …", "DANH SÁCH CÁN BỘ …") often sits above the header
# in agencies' spreadsheets; look this many non-blank rows down for it.
_HEADER_SEARCH_ROWS = 10

# What Excel stores in a cell whose formula failed; data_only mode returns these strings.
_FORMULA_ERRORS = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})

_CSV_DELIMITERS = (",", ";", "\t")
_CSV_SNIFF_ROWS = 10
_CSV_SNIFF_CHARS = 65536

_RawRow = tuple[int, Sequence[Any]]


def read_staff_list(path: Path) -> Iterator[StaffRow | RowProblem]:
    """Yield one StaffRow or RowProblem per non-blank data row of a staff list, in order.

    The file is .xlsx (first worksheet) or .csv (UTF-8, with or without BOM, or
    Windows-1258; delimiter , ; or tab). Columns are found by their header, in Vietnamese
    or English and in any order (a title block above the header is skipped); without a
    header they are name, position, department and an optional address. Raises
    InvalidInput at once, before any row is yielded, when the file has another extension,
    cannot be read, holds no data or has a header without a name column.
    """
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        rows = _xlsx_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise InvalidInput(
            f"Tệp {path.name} không phải bảng tính .xlsx hoặc .csv"
            " (tệp .xls cũ: hãy lưu lại dưới dạng .xlsx).",
            f"{path.name} is not an .xlsx or .csv spreadsheet (save old .xls files as .xlsx).",
            file=str(path),
        )
    # Find the layout now, so an empty or unusable file fails before the caller starts.
    try:
        head = _leading_rows(rows)
        if not head:
            raise InvalidInput(
                f"Tệp {path.name} không có dữ liệu.",
                f"{path.name} holds no data.",
                file=str(path),
            )
        columns, data_start = _layout(path, head)
    except BaseException:
        rows.close()
        raise
    return _staff_rows(columns, head[data_start:], rows)


# --- layout -----------------------------------------------------------------------------


def _leading_rows(rows: Iterator[_RawRow]) -> list[_RawRow]:
    """Pull the first non-blank rows (up to the header search depth) off ``rows``."""
    head: list[_RawRow] = []
    for row in rows:
        if not _is_blank(row[1]):
            head.append(row)
            if len(head) == _HEADER_SEARCH_ROWS:
                break
    return head


def _layout(path: Path, head: Sequence[_RawRow]) -> tuple[dict[str, int], int]:
    """Return the column index of each field and where data starts in ``head``."""
    for index, (_, cells) in enumerate(head):
        columns = _header_columns(cells)
        if columns:
            if "name" not in columns:
                # Reading on would turn every row into a "missing name" problem.
                labels = ", ".join(_HEADER_NAMES["name"])
                raise InvalidInput(
                    f"Tệp {path.name}: dòng tiêu đề {head[index][0]} không có cột họ và tên"
                    f" (tên cột được nhận: {labels}).",
                    f"{path.name}: header row {head[index][0]} has no name column"
                    f" (recognised names: {labels}).",
                    file=str(path),
                    row_number=head[index][0],
                )
            return columns, index + 1
    # No header: fixed order. A leading ordinal column (STT) is skipped, since a name is
    # never a number.
    first = head[0][1]
    offset = 1 if len(first) > 1 and _is_ordinal(first[0]) else 0
    return {field: offset + i for i, field in enumerate(_HEADERLESS_ORDER)}, 0


def _header_columns(cells: Sequence[Any]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if isinstance(cell, str):
            field = _HEADER_KEYS.get(_header_key(cell))
            if field is not None and field not in columns:
                columns[field] = index
    return columns


def _header_key(text: str) -> str:
    # A local fold (no dependency on core.vietnamese): NFKC, strip marks, đ/Ð → d, keep
    # only letters and digits, so "Họ và tên:", "HO VA TEN" and "Full-name" all match.
    decomposed = unicodedata.normalize("NFD", unicodedata.normalize("NFKC", text))
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    bare = bare.replace("đ", "d").replace("ð", "d")
    return "".join(c for c in bare if c.isalnum())


_HEADER_KEYS: dict[str, str] = {
    _header_key(label): field for field, labels in _HEADER_NAMES.items() for label in labels
}


def _is_ordinal(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and value.strip().rstrip(".").isdigit()


# --- rows -------------------------------------------------------------------------------


def _staff_rows(
    columns: dict[str, int], head: Iterable[_RawRow], rest: Generator[_RawRow, None, None]
) -> Iterator[StaffRow | RowProblem]:
    try:
        for row_number, cells in chain(head, rest):
            if not _is_blank(cells) and not _is_repeated_header(cells, columns):
                yield _staff_row(row_number, cells, columns)
    finally:
        rest.close()


def _staff_row(
    row_number: int, cells: Sequence[Any], columns: dict[str, int]
) -> StaffRow | RowProblem:
    def cell(field: str) -> Any:
        index = columns.get(field)
        return cells[index] if index is not None and index < len(cells) else None

    raw_name = cell("name")
    name = _text(raw_name)
    if not name:
        return RowProblem(row_number, "Thiếu họ và tên.", "The name is missing.")
    if not isinstance(raw_name, str) or name in _FORMULA_ERRORS or not _has_letter(name):
        return RowProblem(
            row_number,
            f"Ô họ và tên không chứa họ tên: {name!r}.",
            f"The name cell does not hold a name: {name!r}.",
        )
    address = _text(cell("address")).lower()
    return StaffRow(
        row_number=row_number,
        name=name,
        position=_text(cell("position")),
        department=_text(cell("department")),
        address=address or None,
    )


def _is_repeated_header(cells: Sequence[Any], columns: dict[str, int]) -> bool:
    # Lists pasted together from several sheets repeat the header; it is not a person.
    index = columns.get("name")
    if index is None or index >= len(cells) or not isinstance(cells[index], str):
        return False
    return _HEADER_KEYS.get(_header_key(cells[index])) == "name"


def _text(value: Any) -> str:
    """A cell as clean text: NFC, whitespace collapsed; numbers without a trailing .0."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, dt.datetime) and value.time() == dt.time():
        text = value.date().isoformat()
    elif isinstance(value, dt.date | dt.time):
        text = value.isoformat()
    else:
        text = str(value)
    # str.split() also splits on no-break spaces, which pasted text often carries.
    return " ".join(unicodedata.normalize("NFC", text).split())


def _has_letter(text: str) -> bool:
    return any(c.isalpha() for c in text)


def _is_blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


# --- file formats -----------------------------------------------------------------------


def _unreadable(path: Path, error: Exception) -> InvalidInput:
    return InvalidInput(
        f"Không đọc được tệp {path.name}: tệp hỏng hoặc không đúng định dạng.",
        f"Cannot read {path.name}: damaged file or wrong format ({error}).",
        file=str(path),
    )


def _xlsx_rows(path: Path) -> Generator[_RawRow, None, None]:
    # openpyxl is imported here so that reading a CSV does not pay for loading it.
    from openpyxl import load_workbook

    try:
        # Reading the bytes first means no OS file handle stays open if the caller
        # abandons the iterator (a read-only workbook otherwise keeps its file open).
        workbook = load_workbook(io.BytesIO(path.read_bytes()), read_only=True, data_only=True)
    except Exception as error:
        # openpyxl raises many unrelated types for damaged files (zipfile, KeyError, XML).
        raise _unreadable(path, error) from error
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # Some programs write a wrong <dimension>; openpyxl would stop reading there.
        sheet.reset_dimensions()
        yield from _numbered(path, sheet.iter_rows(values_only=True), Exception)
    finally:
        workbook.close()


def _csv_rows(path: Path) -> Generator[_RawRow, None, None]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise _unreadable(path, error) from error
    text = unicodedata.normalize("NFC", _decode(path, data))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(text))
    # Rows are numbered as records, which is what Excel shows; a quoted cell holding a
    # line break would make a text editor's line numbers run ahead.
    yield from _numbered(path, reader, csv.Error)


def _numbered(
    path: Path, rows: Iterator[Sequence[Any]], errors: type[Exception]
) -> Iterator[_RawRow]:
    """Number ``rows`` from 1, turning a reader's ``errors`` into InvalidInput."""
    row_number = 0
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except errors as error:
            raise _unreadable(path, error) from error
        row_number += 1
        yield row_number, cells


def _decode(path: Path, data: bytes) -> str:
    encodings: tuple[str, ...]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export, renamed to .csv.
        encodings = ("utf-16",)
    else:
        # cp1258 spells tones as combining marks; the caller's NFC composes them.
        encodings = ("utf-8-sig", "cp1258")
    for encoding in encodings:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput(
        f"Không đọc được tệp {path.name}: không phải UTF-8 hoặc Windows-1258."
        " Hãy lưu tệp CSV với mã hóa UTF-8.",
        f"Cannot read {path.name}: neither UTF-8 nor Windows-1258. Save the CSV as UTF-8.",
        file=str(path),
    )


def _sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first record into the most cells (ties: , ; tab).

    csv.Sniffer is not used: it guesses from character frequencies and is misled by
    commas inside Vietnamese unit names ("Phòng Tổ chức, Biên chế …").
    """
    sample = text[:_CSV_SNIFF_CHARS]
    separators = "".join(_CSV_DELIMITERS) + " "
    best, best_score = ",", (0, 0)
    for delimiter in _CSV_DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        # Records of nothing but separators (";;;" under ",") say nothing about the layout.
        content = (r for r in reader if any(cell.strip(separators) for cell in r))
        records = list(islice(content, _CSV_SNIFF_ROWS))
        if not records:
            continue
        score = (len(records[0]), sum(len(r) for r in records))
        if score > best_score:
            best, best_score = delimiter, score
    return best
