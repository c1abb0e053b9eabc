"""Reads agencies' staff lists (.xlsx, .csv) into rows for ``govmail import officials``."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
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
# The last two are newer Excel's (dynamic arrays, LAMBDA).
_FORMULA_ERRORS = frozenset(
    {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#SPILL!", "#CALC!"}
)

# How each field's column is named in a row problem: (Vietnamese, English).
_FIELD_LABELS: dict[str, tuple[str, str]] = {
    "name": ("Họ và tên", "name"),
    "position": ("Chức vụ", "position"),
    "department": ("Bộ phận công tác", "department"),
    "address": ("Địa chỉ hộp thư", "address"),
}

_CSV_DELIMITERS = (",", ";", "\t")
_CSV_SNIFF_ROWS = 10
_CSV_SNIFF_CHARS = 65536

# Legacy Vietnamese encodings (R12, see VIETNAMESE.md). Before Unicode (TCVN 6909:2001)
# Vietnamese was typed in TCVN3 (ABC, .VnTime fonts) or VNI (VNI-Times fonts). Their bytes
# decode without error as Windows-1258, into nonsense: TCVN3 "báo cáo kết quả" reads
# "b¸o c¸o kÕt qu¶", VNI "Quản lý văn bản" reads "Quaûn lyù vaên baûn". The heuristic
# reads the bytes as Latin-1 (the mojibake a user sees) and counts what genuine
# Windows-1258 Vietnamese never holds:
# - the symbols ¡ … ¿ (0xA1-0xBF), where TCVN3 puts ă â ê ô ơ ư đ, à ả ã á ạ, ằ ẳ ẵ ắ;
#   TCVN3's ư is 0xAD, the soft hyphen, so the check runs on the raw bytes;
# - Latin-1 letters no Vietnamese word uses (ä å æ ç ë î ï ñ ö ø û ü ÿ, their capitals,
#   × ÷), with which VNI spells tones, ư and đ (ï dot below, ø grave, û hook, ö ư, ñ đ);
# - VNI's vowel + mark pairs that are no Vietnamese letter pair: a or e + à á â ã ê õ,
#   o + â õ, a, e, o, u or y + ù ú ("aâ" â, "eâ" ê, "aê" ă, "eã" ễ, "oõ" õ, "yù" ý).
#   Windows-1258 text has "uâ", "iê", "oă", "uơ" (read as "oã", "uõ") and "giúp",
#   never these.
# A file is taken for legacy when it has at least _LEGACY_MIN_MARKERS markers and they
# make up at least 1/_LEGACY_SHARE of its non-ASCII characters: TCVN3 and VNI text scores
# about a half or more, a genuine file's stray « » ° § far less. It is refused, not
# converted: Python has no TCVN3 or VNI codec, and the user can convert it (Unikey).
_LEGACY_TCVN3_MARKERS = frozenset(bytes(range(0xA1, 0xC0)).decode("latin-1"))
_LEGACY_VNI_MARKERS = frozenset("ÄÅÆÇËÎÏÑÖ×ØÛÜßäåæçëîïñö÷øûüÿ")
_LEGACY_VNI_PAIRS = re.compile("[ae][àáâãêõ]|o[âõ]|[aeouy][ùú]", re.IGNORECASE)
_LEGACY_MIN_MARKERS = 2
_LEGACY_SHARE = 3

_RawRow = tuple[int, Sequence[Any]]


def read_staff_list(path: Path) -> Iterator[StaffRow | RowProblem]:
    """Yield one StaffRow or RowProblem per non-blank data row of a staff list, in order.

    The file is .xlsx (first worksheet) or .csv (UTF-8, with or without BOM, or
    Windows-1258; delimiter , ; or tab). Columns are found by their header, in Vietnamese
    or English and in any order (a title block above the header is skipped); without a
    header they are name, position, department and an optional address. A row with an
    Excel formula error (#REF!, #N/A, …) or an unevaluated formula ("=…") in any of these
    columns is a RowProblem. Raises InvalidInput at once, before any row is yielded, when
    the file has another extension, cannot be read, is a CSV in a legacy Vietnamese
    encoding (TCVN3, VNI), holds no data or has a header without a name column.
    """
    rows = _raw_rows(path)
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
            if not _is_blank(_mapped(cells, columns)) and not _is_repeated_header(cells, columns):
                yield _staff_row(row_number, cells, columns)
    finally:
        rest.close()


def _staff_row(
    row_number: int, cells: Sequence[Any], columns: dict[str, int]
) -> StaffRow | RowProblem:
    def cell(field: str) -> Any:
        index = columns.get(field)
        return cells[index] if index is not None and index < len(cells) else None

    texts = {field: _text(cell(field)) for field in _HEADERLESS_ORDER}
    for field in _HEADERLESS_ORDER:
        problem = _formula_problem(row_number, field, columns.get(field), texts[field])
        if problem is not None:
            return problem
    raw_name = cell("name")
    name = texts["name"]
    if not name:
        return RowProblem(row_number, "Thiếu họ và tên.", "The name is missing.")
    if not isinstance(raw_name, str) or not _has_letter(name):
        return RowProblem(
            row_number,
            f"Ô họ và tên không chứa họ tên: {name!r}.",
            f"The name cell does not hold a name: {name!r}.",
        )
    address = texts["address"].lower()
    return StaffRow(
        row_number=row_number,
        name=name,
        position=texts["position"],
        department=texts["department"],
        address=address or None,
    )


def _formula_problem(
    row_number: int, field: str, index: int | None, text: str
) -> RowProblem | None:
    """A problem when ``text`` is an Excel formula error or a formula nobody evaluated.

    A formula in a CSV (=HYPERLINK("mailto:…")) or a text cell of an .xlsx is never
    computed here; importing its source as a name, position or address would be wrong.
    """
    if index is None:
        return None
    label_vi, label_en = _FIELD_LABELS[field]
    return formula_problem(row_number, index, label_vi, label_en, text)


def formula_problem(
    row_number: int, index: int, label_vi: str, label_en: str, text: str
) -> RowProblem | None:
    """A problem when ``text``, read from column ``index`` (0-based) of the column named
    ``label_vi``/``label_en``, is an Excel formula error or an unevaluated formula."""
    column = _column_letter(index)
    if text in _FORMULA_ERRORS:
        return RowProblem(
            row_number,
            f"Ô {label_vi} (cột {column}, dòng {row_number}) chứa lỗi công thức Excel"
            f" {text}: hãy sửa công thức hoặc nhập giá trị.",
            f"The {label_en} cell (column {column}, row {row_number}) holds the Excel"
            f" formula error {text}: fix the formula or type the value.",
        )
    if text.startswith("="):
        return RowProblem(
            row_number,
            f"Ô {label_vi} (cột {column}, dòng {row_number}) chứa công thức chưa được"
            f" tính: {text!r}. Hãy thay công thức bằng giá trị.",
            f"The {label_en} cell (column {column}, row {row_number}) holds a formula"
            f" that was not evaluated: {text!r}. Replace it with its value.",
        )
    return None


def _column_letter(index: int) -> str:
    """Excel's letters for a 0-based column index: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


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


def _mapped(cells: Sequence[Any], columns: dict[str, int]) -> list[Any]:
    """The cells of the columns we read: a template row numbered in advance (STT 5 and
    nothing else) is as blank as an empty one."""
    return [cells[i] for i in columns.values() if i < len(cells)]


def _is_blank(cells: Sequence[Any]) -> bool:
    return all(c is None or (isinstance(c, str) and not c.strip()) for c in cells)


# --- header-mapped tables (the request forms, other lists) -----------------------------


@dataclass
class Table:
    """A spreadsheet's data rows under its header, as read_table finds them.

    ``columns`` maps each recognised field to its 0-based column. ``header_rows`` holds
    the header's row numbers: two when the row under the header names sub-columns (Mẫu
    02's "Đề nghị thay đổi" over "Mã" and "Nội dung mới"), none when the file has no
    header (or no data at all) and the fields are taken in the caller's order. ``rows``
    yields (row number, raw cells) for each row with something in a mapped column,
    repeated headers skipped. Close the table (or use ``with``) when stopping early.
    """

    columns: dict[str, int]
    header_rows: tuple[int, ...]
    rows: Iterator[tuple[int, Sequence[Any]]]
    _source: Generator[_RawRow, None, None]

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Table:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_table(
    path: Path,
    headers: Mapping[str, Sequence[str]],
    order: Sequence[str],
    *,
    key: str = "name",
    search_rows: int = 20,
) -> Table:
    """Open the .xlsx (first sheet) or .csv at ``path`` as a table of ``headers``' fields.

    ``headers`` maps each field to the column titles that name it (compared without
    diacritics, case, spaces or punctuation). The header is the first of the first
    ``search_rows`` non-blank rows that names the ``key`` field, else the first naming
    two fields (a header missing ``key``: the caller says so); without one, the fields
    are ``order``'s, after an ordinal (STT) column if the first row starts with one.
    Files are read as read_staff_list reads them. Raises InvalidInput for another
    extension, an unreadable file or a legacy-encoded CSV; a file without data gives a
    table without header or rows. Reading ``rows`` can raise InvalidInput for a file
    damaged further on.
    """
    source = _raw_rows(path)
    try:
        keys = {_header_key(label): field for field, labels in headers.items() for label in labels}
        head: list[_RawRow] = []
        for row in source:
            if not _is_blank(row[1]):
                head.append(row)
                if len(head) == search_rows:
                    break
        columns, header_rows, start = _table_layout(head, keys, order, key)
    except BaseException:
        source.close()
        raise
    return Table(columns, header_rows, _table_rows(columns, keys, head[start:], source), source)


def header_key(text: str) -> str:
    """A header cell as compared: no diacritics, case, spaces or punctuation."""
    return _header_key(text)


def cell_text(value: Any, *, keep_lines: bool = False) -> str:
    """A cell as clean text (NFC, whitespace collapsed, numbers without a trailing .0).

    With ``keep_lines`` a text cell keeps its line breaks (one value per line, as Mẫu
    02's "Mã" and "Nội dung mới" cells hold them), each line collapsed on its own and
    trailing empty lines dropped; leading ones stay, since they keep lines aligned.
    """
    if not keep_lines or not isinstance(value, str):
        return _text(value)
    lines = [_text(line) for line in value.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _raw_rows(path: Path) -> Generator[_RawRow, None, None]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix == ".csv":
        return _csv_rows(path)
    raise InvalidInput(
        f"Tệp {path.name} không phải bảng tính .xlsx hoặc .csv"
        " (tệp .xls cũ: hãy lưu lại dưới dạng .xlsx).",
        f"{path.name} is not an .xlsx or .csv spreadsheet (save old .xls files as .xlsx).",
        file=str(path),
    )


def _table_layout(
    head: Sequence[_RawRow], keys: Mapping[str, str], order: Sequence[str], key: str
) -> tuple[dict[str, int], tuple[int, ...], int]:
    """The columns, the header's row numbers and where data starts in ``head``."""
    if not head:
        return {}, (), 0
    found = [_columns_of(cells, keys) for _, cells in head]
    index = next((i for i, columns in enumerate(found) if key in columns), None)
    if index is None:
        index = next((i for i, columns in enumerate(found) if len(columns) >= 2), None)
    if index is None:
        first = head[0][1]
        offset = 1 if len(first) > 1 and _is_ordinal(first[0]) else 0
        return {field: offset + i for i, field in enumerate(order)}, (), 0
    columns = dict(found[index])
    header_rows: tuple[int, ...] = (head[index][0],)
    start = index + 1
    # A second header row names sub-columns under a merged title; it holds only titles.
    if start < len(head) and found[start] and _only_titles(head[start][1], keys):
        for field, column in found[start].items():
            columns.setdefault(field, column)
        header_rows += (head[start][0],)
        start += 1
    return columns, header_rows, start


def _columns_of(cells: Sequence[Any], keys: Mapping[str, str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        if isinstance(cell, str):
            field = keys.get(_header_key(cell))
            if field is not None and field not in columns:
                columns[field] = index
    return columns


def _only_titles(cells: Sequence[Any], keys: Mapping[str, str]) -> bool:
    return all(
        _is_blank((cell,)) or (isinstance(cell, str) and _header_key(cell) in keys)
        for cell in cells
    )


def _table_rows(
    columns: dict[str, int],
    keys: Mapping[str, str],
    head: Iterable[_RawRow],
    rest: Generator[_RawRow, None, None],
) -> Iterator[tuple[int, Sequence[Any]]]:
    try:
        for row_number, cells in chain(head, rest):
            mapped = _mapped(cells, columns)
            # Lists pasted together from several sheets repeat the header.
            if not _is_blank(mapped) and not _only_titles(mapped, keys):
                yield row_number, cells
    finally:
        rest.close()


# --- file formats -----------------------------------------------------------------------


def _unreadable(path: Path, error: Exception) -> InvalidInput:
    return InvalidInput(
        f"Không đọc được tệp {path.name}: tệp hỏng hoặc không đúng định dạng.",
        f"Cannot read {path.name}: damaged file or wrong format ({error}).",
        file=str(path),
    )


# 20,000 officials take ~5 MB of sheet XML; an .xlsx that unpacks to more is not a
# staff list but a decompression bomb (openpyxl parses the shared strings into memory).
MAX_XLSX_UNPACKED = 200 * 1024 * 1024


def _refuse_zip_bomb(path: Path, data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise _unreadable(path, error) from error
    if unpacked > MAX_XLSX_UNPACKED:
        raise InvalidInput(
            f"Tệp {path.name} giải nén ra hơn {MAX_XLSX_UNPACKED // 2**20} MB: không phải"
            " một danh sách hợp lệ.",
            f"{path.name} unpacks to more than {MAX_XLSX_UNPACKED // 2**20} MB: refused.",
        )


def _xlsx_rows(path: Path) -> Generator[_RawRow, None, None]:
    # openpyxl is imported here so that reading a CSV does not pay for loading it.
    from openpyxl import load_workbook

    try:
        data = path.read_bytes()
    except OSError as error:
        raise _unreadable(path, error) from error
    _refuse_zip_bomb(path, data)
    try:
        # Reading the bytes first means no OS file handle stays open if the caller
        # abandons the iterator (a read-only workbook otherwise keeps its file open).
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
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
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
        # Not UTF-8: check for TCVN3/VNI before trying Windows-1258, which would accept
        # their bytes (and before any clean-up, which could drop TCVN3's ư, a soft hyphen).
        legacy = _legacy_encoding(data)
        if legacy is not None:
            raise InvalidInput(
                f"Tệp {path.name} có vẻ được gõ bằng bảng mã cũ {legacy}, không phải"
                " Unicode. Hãy chuyển mã tệp (ví dụ bằng Unikey) và lưu lại dưới dạng"
                " Unicode UTF-8 theo TCVN 6909:2001, rồi nhập lại.",
                f"{path.name} seems to be in the legacy Vietnamese encoding {legacy}, not"
                " Unicode. Convert it (e.g. with Unikey) and save it as Unicode UTF-8"
                " (TCVN 6909:2001), then import it again.",
                file=str(path),
                encoding=legacy,
            )
        # cp1258 spells tones as combining marks; the caller's NFC composes them.
        encodings = ("cp1258",)
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


def _legacy_encoding(data: bytes) -> str | None:
    """The legacy encoding ``data`` looks like ("TCVN3 (ABC)" or "VNI"), else None.

    See the comment on _LEGACY_TCVN3_MARKERS for the heuristic.
    """
    text = data.decode("latin-1")
    non_ascii = sum(1 for char in text if char >= "\x80")
    symbols = sum(1 for char in text if char in _LEGACY_TCVN3_MARKERS)
    letters = sum(1 for char in text if char in _LEGACY_VNI_MARKERS)
    pairs = len(_LEGACY_VNI_PAIRS.findall(text))
    markers = symbols + letters + pairs
    if markers < _LEGACY_MIN_MARKERS or markers * _LEGACY_SHARE < non_ascii:
        return None
    # Both use the odd letters (TCVN3 has ä ë ø ß for ọ ở ứ ò); only TCVN3 has the
    # symbols, and only VNI the pairs.
    return "TCVN3 (ABC)" if symbols > pairs else "VNI"


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
