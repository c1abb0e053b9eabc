"""Reads the tables of the request forms Mẫu 01/02/03 from spreadsheets and typed text."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govmail.core.errors import InvalidInput
from govmail.core.naming import DEFAULT_RESERVED, validate_local_part
from govmail.core.vietnamese import normalize_name
from govmail.directory.people import MAX_FIELD, clean_full_name
from govmail.directory.spreadsheet import (
    cell_text,
    formula_problem,
    header_key,
    read_table,
)
from govmail.workflows.model import (
    CHANGE_CODES,
    CODE_ADDRESS,
    FORM_01,
    FORM_02,
    FORM_03,
    FORM_TITLES,
    RequestRow,
)

__all__ = ["MAX_ROWS", "parse_typed_rows", "read_form_file", "template_csv", "template_xlsx"]

MAX_ROWS = 2000  # data lines per form: a larger list is several requests
_MAX_ROWS_VI = f"{MAX_ROWS:,}".replace(",", ".")  # Vietnamese groups digits with "."
_SHOWN_ROWS = 5  # rows named in the error's message; all are in details["problems"]

# Column titles, compared by spreadsheet.header_key (no diacritics, case or punctuation):
# the regulation's own, their usual shortenings, and English.
_HEADERS: dict[str, tuple[str, ...]] = {
    "name": ("Họ và tên", "Họ tên", "Name", "Full name"),
    "position": ("Chức vụ", "Chức danh", "Position", "Title", "Job title"),
    "department": (
        "Bộ phận công tác",
        "Bộ phận",
        "Phòng ban",
        "Đơn vị",
        "Department",
        "Unit",
    ),
    "address": (
        "Địa chỉ hộp thư đã được cấp",
        "Địa chỉ hộp thư được cấp",
        "Địa chỉ hộp thư",
        "Địa chỉ hộp thư đề nghị",
        "Địa chỉ thư điện tử",
        "Địa chỉ email",
        "Địa chỉ",
        "Hộp thư",
        "Email",
        "Address",
        "Email address",
        "Mailbox",
    ),
    "code": ("Mã", "Mã thay đổi", "Code", "Change code"),
    "value": ("Nội dung mới", "Nội dung thay đổi", "Nội dung", "New value", "New content"),
    "reason": ("Lý do", "Lý do xóa", "Lý do (nếu có)", "Reason"),
}

# How a field is named in a problem: (Vietnamese, English).
_LABELS: dict[str, tuple[str, str]] = {
    "name": ("Họ và tên", "name"),
    "position": ("Chức vụ", "position"),
    "department": ("Bộ phận công tác", "department"),
    "address": ("Địa chỉ hộp thư", "address"),
    "code": ("Mã", "code"),
    "value": ("Nội dung mới", "new value"),
    "reason": ("Lý do", "reason"),
}


@dataclass(frozen=True)
class _Form:
    file_order: tuple[str, ...]  # the fields read from a file; its columns without a header
    required: tuple[str, ...]  # columns a file's header must name
    typed_order: tuple[str, ...]  # fields of a typed line, in order
    typed_rest: str | None  # the field that takes a typed line's extra separators
    titles: tuple[str, ...]  # the template's header (after STT)
    example: tuple[str, ...]


_FORMS: dict[str, _Form] = {
    FORM_01: _Form(
        file_order=("name", "position", "department", "address"),
        required=("name", "position", "department"),
        typed_order=("name", "position", "department", "address"),
        typed_rest=None,
        titles=("Họ và tên", "Chức vụ", "Bộ phận công tác"),
        example=("Nguyễn Văn An", "Chuyên viên", "Văn phòng"),
    ),
    FORM_02: _Form(
        file_order=("name", "address", "code", "value"),
        required=("name", "address", "code", "value"),
        typed_order=("name", "address", "code", "value"),
        typed_rest="value",
        titles=("Họ và tên", "Địa chỉ hộp thư đã được cấp", "Mã", "Nội dung mới"),
        # The regulation's own example.
        example=(
            "Nguyễn Văn Nguyên",
            "nvnguyen_ttr",
            "1\n2\n3",
            "Trưởng phòng\nPhòng Nghiệp vụ 3\nnvnguyen",
        ),
    ),
    FORM_03: _Form(
        file_order=("name", "position", "department", "address", "reason"),
        required=("name", "address"),
        typed_order=("name", "address", "reason"),
        typed_rest="reason",
        # The regulation's columns, and the optional reason RequestRow keeps.
        titles=("Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư được cấp", "Lý do"),
        example=("Phạm Du Lịch", "Chuyên viên", "Phòng Nghiệp vụ 1", "pdlich_ttr", "Nghỉ hưu"),
    ),
}

# Multi-line cells: Mẫu 02's "Mã" and "Nội dung mới" hold one change per line.
_LINE_FIELDS = frozenset({"code", "value"})
# Between codes: "1,2,3", "1; 2", "1\n2", and "1.2", which Excel keeps of "1,2" typed
# where the comma is the decimal separator (Vietnamese regional settings).
_CODE_SEPARATORS = re.compile(r"[\s,;./+]+")
_TYPED_SEPARATORS = ("\t", "|", ";")  # a typed line's separator: the first it holds
_NEWLINES = re.compile(r"\r\n|\r|\n")
_DOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+")
_NAME_TITLE_KEYS = frozenset(header_key(title) for title in _HEADERS["name"])


@dataclass(frozen=True)
class _Line:
    """One line of the table: its row (file) or line (typed) number and its fields."""

    number: int
    fields: Mapping[str, str]
    broken: bool = False  # a cell holds a formula: reported, not read

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


@dataclass
class _Problems:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: int, reason_vi: str, reason_en: str) -> None:
        self.items.append({"row": row, "reason_vi": reason_vi, "reason_en": reason_en})

    def raise_any(self, **details: Any) -> None:
        if self.items:
            raise _invalid(self.items, **details)


# --- public -----------------------------------------------------------------------------


def read_form_file(path: Path, form: str) -> list[RequestRow]:
    """The rows of form ``form`` (FORM_01/02/03) in the .xlsx (first sheet) or .csv file.

    Columns are found by their titles (Vietnamese with or without diacritics, English; a
    title block above and a second header row of sub-columns are allowed); a file without
    a header holds the form's columns in order (Mẫu 03: name, position, department,
    address, reason), after an optional STT. Mẫu 02 groups a person's changes from one
    line per change or from cells holding several codes and values. Raises InvalidInput
    listing every problem in ``details["problems"]`` (``row`` is the spreadsheet's row
    number; 0 for the file as a whole).
    """
    spec = _spec(form)
    problems = _Problems()
    try:
        lines = _file_lines(path, spec, problems)
    except InvalidInput as error:
        if "problems" in error.details:
            raise
        # Wrong type, damaged file, legacy encoding: one problem for the whole file, so
        # that callers show every failure of the form the same way.
        problems.add(0, error.message_vi, error.message_en)
        raise _invalid(problems.items, **{**error.details, "file": path.name}) from error
    if not lines and not problems.items:
        problems.add(
            0,
            f"Tệp {path.name} không có dòng dữ liệu nào.",
            f"{path.name} holds no data rows.",
        )
    rows = _rows(form, lines, problems)
    problems.raise_any(file=path.name)
    return rows


def parse_typed_rows(text: str, form: str) -> list[RequestRow]:
    """The rows of form ``form`` typed one per line (Mẫu 02: one change per line).

    Fields are separated by TAB (pasted from a spreadsheet), "|" or ";" (the first of
    these a line holds), in the form's order: Mẫu 01 name, position, department and an
    optional address asked for; Mẫu 02 name, address, code, new value (name and address
    blank or repeated on a person's further changes); Mẫu 03 name, address, reason.
    Extra separators belong to the last field of Mẫu 02 and 03. A leading STT and a
    header line are skipped; blank lines are ignored. Raises InvalidInput listing every
    problem in ``details["problems"]`` (``row`` is the line number; 0 for the text).
    """
    spec = _spec(form)
    problems = _Problems()
    lines: list[_Line] = []
    for number, raw in enumerate(_NEWLINES.split(text), start=1):
        if not raw.strip():
            continue
        parts, separator = _typed_fields(raw)
        if not lines and any(header_key(p) in _NAME_TITLE_KEYS for p in parts[:2]):
            continue  # a header line pasted with the rows (after an STT title or not)
        if len(lines) == MAX_ROWS:
            _too_many(problems, number)
            break
        line = _typed_line(number, parts, separator, spec, problems)
        if line is not None:
            lines.append(line)
    if not lines and not problems.items:
        problems.add(0, "Chưa nhập dòng nào.", "No rows were typed.")
    rows = _rows(form, lines, problems)
    problems.raise_any()
    return rows


def template_xlsx(form: str) -> bytes:
    """A blank .xlsx of form ``form``: the regulation's header, one example row and a
    second sheet of instructions, for the portal's "Tải mẫu" link."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    spec = _spec(form)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = f"Mẫu {form}"
    bold = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    if form == FORM_02:
        # The regulation's header: "Đề nghị thay đổi" spans "Mã" and "Nội dung mới".
        sheet.append(["STT", *spec.titles[:2], "Đề nghị thay đổi", None])
        sheet.append([None, None, None, *spec.titles[2:]])
        for columns in ("A1:A2", "B1:B2", "C1:C2", "D1:E1"):
            sheet.merge_cells(columns)
        header_rows = 2
    else:
        sheet.append(["STT", *spec.titles])
        header_rows = 1
    sheet.append([1, *spec.example])
    for row in sheet.iter_rows(min_row=1, max_row=header_rows + 1):
        for cell in row:
            cell.alignment = wrap
            if cell.row <= header_rows:
                cell.font = bold
    for letter, width in zip("ABCDEF", (6, 28, 28, 28, 28, 28), strict=False):
        sheet.column_dimensions[letter].width = width
    guide = workbook.create_sheet("Hướng dẫn")
    for line in _guide(form):
        guide.append([line])
    guide.column_dimensions["A"].width = 110
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def template_csv(form: str) -> str:
    """The same template as CSV text, starting with a BOM so that Excel reads UTF-8."""
    spec = _spec(form)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["STT", *spec.titles])
    writer.writerow(["1", *spec.example])
    return "\ufeff" + out.getvalue()


# --- reading ----------------------------------------------------------------------------


def _spec(form: str) -> _Form:
    spec = _FORMS.get(form)
    if spec is None:
        raise InvalidInput(
            f"Không có mẫu phiếu '{form}': chỉ Mẫu 01, 02 và 03 có danh sách.",
            f"No form {form!r}: only forms 01, 02 and 03 hold a table.",
            form=form,
        )
    return spec


def _file_lines(path: Path, spec: _Form, problems: _Problems) -> list[_Line]:
    headers = {name: _HEADERS[name] for name in spec.file_order}
    lines: list[_Line] = []
    with read_table(path, headers, spec.file_order) as table:
        if table.header_rows:
            for name in spec.required:
                if name not in table.columns:
                    _missing_column(problems, table.header_rows[0], name)
            if problems.items:
                return []
        for row_number, cells in table.rows:
            if len(lines) == MAX_ROWS:
                _too_many(problems, row_number)
                break
            lines.append(_file_line(row_number, cells, table.columns, problems))
    return lines


def _file_line(
    row_number: int, cells: Any, columns: Mapping[str, int], problems: _Problems
) -> _Line:
    fields: dict[str, str] = {}
    usable = True
    for name, index in columns.items():
        value = cells[index] if index < len(cells) else None
        text = cell_text(value, keep_lines=name in _LINE_FIELDS)
        label_vi, label_en = _LABELS[name]
        problem = formula_problem(row_number, index, label_vi, label_en, text)
        if problem is not None:
            problems.add(row_number, problem.reason_vi, problem.reason_en)
            usable = False
        fields[name] = text
    return _Line(row_number, fields, broken=not usable)


def _typed_fields(raw: str) -> tuple[list[str], str]:
    """A typed line's fields and its separator ("" for a line of one field)."""
    separator = next((s for s in _TYPED_SEPARATORS if s in raw), "")
    parts = raw.split(separator) if separator else [raw]
    return [" ".join(p.split()) for p in parts], separator


def _typed_line(
    number: int, parts: list[str], separator: str, spec: _Form, problems: _Problems
) -> _Line | None:
    order = spec.typed_order
    # A leading STT (pasted from the form's table): a name is never a number, and a blank
    # first cell followed by a full row is an empty STT.
    if len(parts) > 1 and (_is_ordinal(parts[0]) or (not parts[0] and len(parts) > len(order))):
        parts = parts[1:]
    if len(parts) > len(order):
        if spec.typed_rest is None:
            problems.add(
                number,
                f"Dòng có {len(parts)} cột, nhiều hơn {len(order)} cột của mẫu"
                f" ({_order_vi(order)}).",
                f"The line has {len(parts)} fields, more than the form's {len(order)}"
                f" ({', '.join(_LABELS[n][1] for n in order)}).",
            )
            return None
        # "Phòng Tổ chức; Biên chế" typed with ";" between fields is one value.
        joiner = "; " if separator == ";" else " "
        parts = [*parts[: len(order) - 1], joiner.join(p for p in parts[len(order) - 1 :] if p)]
    return _Line(number, dict(zip(order, parts, strict=False)))


def _order_vi(order: Iterable[str]) -> str:
    return ", ".join(_LABELS[name][0] for name in order)


def _is_ordinal(text: str) -> bool:
    bare = text.rstrip(".")
    return bare.isascii() and bare.isdigit()


# --- rows -------------------------------------------------------------------------------


def _rows(form: str, lines: list[_Line], problems: _Problems) -> list[RequestRow]:
    if form == FORM_02:
        return _changes_rows(lines, problems)
    return _people_rows(form, lines, problems)


def _people_rows(form: str, lines: list[_Line], problems: _Problems) -> list[RequestRow]:
    """Mẫu 01 and 03: one person per line."""
    rows: list[RequestRow] = []
    seen: dict[tuple[str, ...], int] = {}
    seen_addresses: dict[str, tuple[int, str]] = {}
    for line in lines:
        if line.broken:
            continue
        before = len(problems.items)
        name = _name(line, problems)
        position = _text_field(line, "position", problems)
        department = _text_field(line, "department", problems)
        reason = _text_field(line, "reason", problems) if form == FORM_03 else ""
        address = ""
        if line.get("address"):
            # Mẫu 01 asks for an address: a reserved name cannot be given. Mẫu 03 names an
            # existing one, which the shape check is enough for.
            reserved = DEFAULT_RESERVED if form == FORM_01 else frozenset()
            address = _address(line, line.get("address"), "address", reserved, problems)
        elif form == FORM_03:
            problems.add(line.number, "Thiếu địa chỉ hộp thư.", "The address is missing.")
        if len(problems.items) > before:
            continue
        if form == FORM_01 and _duplicate(
            line.number, (_same(name), _same(position), _same(department)), seen, problems
        ):
            continue
        if address and _duplicate_address(line.number, name, address, seen_addresses, problems):
            continue
        rows.append(RequestRow(name, position, department, address, reason=reason))
    return rows


@dataclass
class _Person:
    """A Mẫu 02 person while their lines are read."""

    number: int
    name: str
    address: str
    changes: list[tuple[int, str]] = field(default_factory=list)
    codes: dict[int, int] = field(default_factory=dict)  # code → line it was given on
    usable: bool = True
    coded: bool = False  # a code or value was written, right or wrong


def _changes_rows(lines: list[_Line], problems: _Problems) -> list[RequestRow]:
    """Mẫu 02: a person's changes, from one line each or several per line, grouped."""
    people: list[_Person] = []
    seen: dict[str, tuple[int, str]] = {}
    current: _Person | None = None
    for line in lines:
        raw_name, raw_address = line.get("name"), line.get("address")
        if line.broken:
            # Its cells cannot be trusted: the lines after it that continue a person
            # continue this one, without problems of their own.
            current = _Person(line.number, "", "", usable=False, coded=True)
            continue
        if current is not None and _continues(current, raw_name, raw_address):
            person = current
        else:
            person = _new_person(line, problems)
            people.append(person)
            if person.usable:
                person.usable = not _duplicate_address(
                    line.number, person.name, person.address, seen, problems
                )
            current = person
        person.coded = person.coded or bool(line.get("code") or line.get("value"))
        for code, value in _line_changes(line, problems):
            if code in person.codes:
                label_vi, label_en = CHANGE_CODES[code]
                problems.add(
                    line.number,
                    f"Mã {code} ({label_vi}) đã ghi cho người này ở dòng {person.codes[code]}.",
                    f"Code {code} ({label_en}) was already given for this person on row"
                    f" {person.codes[code]}.",
                )
                continue
            person.codes[code] = line.number
            person.changes.append((code, value))
    rows: list[RequestRow] = []
    for person in people:
        if person.usable and not person.coded:
            problems.add(
                person.number,
                "Chưa ghi thay đổi nào (cột Mã: 1 chức vụ, 2 bộ phận công tác, 3 địa chỉ).",
                "No change is given (Code column: 1 position, 2 department, 3 address).",
            )
        rows.append(
            RequestRow(name=person.name, address=person.address, changes=tuple(person.changes))
        )
    return rows


def _continues(person: _Person, raw_name: str, raw_address: str) -> bool:
    """Whether a line with this name and address is the person's next change: each is
    blank or the same as on the person's first line."""
    same_name = not raw_name or _same(normalize_name(raw_name)) == _same(person.name)
    same_address = not raw_address or raw_address.strip().lower() == person.address
    return same_name and same_address


def _new_person(line: _Line, problems: _Problems) -> _Person:
    before = len(problems.items)
    name = _name(line, problems)
    address = ""
    if line.get("address"):
        address = _address(line, line.get("address"), "address", frozenset(), problems)
    else:
        problems.add(line.number, "Thiếu địa chỉ hộp thư đã được cấp.", "The address is missing.")
    return _Person(line.number, name, address, usable=len(problems.items) == before)


def _line_changes(line: _Line, problems: _Problems) -> list[tuple[int, str]]:
    """The (code, new value) pairs of one line: one code, or several with one value each
    (a line per value, or values separated as the codes are)."""
    code_text, value_text = line.get("code"), line.get("value")
    if not code_text and not value_text:
        return []
    if not code_text:
        problems.add(
            line.number,
            f"Thiếu mã thay đổi (1, 2 hoặc 3) cho nội dung '{_short(value_text)}'.",
            f"The change code (1, 2 or 3) is missing for '{_short(value_text)}'.",
        )
        return []
    codes: list[int] = []
    for token in _CODE_SEPARATORS.split(code_text):
        if not token:
            continue
        # len() first: int() of thousands of digits is slow, and refused past 4,300.
        code = int(token) if len(token) < 4 and token.isascii() and token.isdigit() else 0
        if code not in CHANGE_CODES:
            problems.add(
                line.number,
                f"Mã thay đổi '{_short(token)}' không hợp lệ: 1 chức vụ, 2 bộ phận công tác,"
                " 3 địa chỉ hộp thư.",
                f"Unknown change code '{_short(token)}': 1 position, 2 department, 3 address.",
            )
            return []
        codes.append(code)
    values = _split_values(value_text, len(codes))
    if values is None:
        problems.add(
            line.number,
            f"Có {len(codes)} mã nhưng số nội dung mới không khớp: ghi mỗi nội dung trên một"
            " dòng trong ô, hoặc mỗi thay đổi một dòng.",
            f"{len(codes)} codes, but the new values do not match them: put each value on"
            " its own line in the cell, or each change on its own row.",
        )
        return []
    changes: list[tuple[int, str]] = []
    for code, value in zip(codes, values, strict=True):
        if code == CODE_ADDRESS:
            # Empty: convert the address to the regulation's form (R5).
            if value:
                value = _address(line, value, "value", DEFAULT_RESERVED, problems)
        else:
            value = normalize_name(value)
            label_vi, label_en = CHANGE_CODES[code]
            if not value:
                problems.add(
                    line.number,
                    f"Mã {code} ({label_vi}) cần nội dung mới.",
                    f"Code {code} ({label_en}) needs a new value.",
                )
                continue
            if len(value) > MAX_FIELD:
                _too_long(problems, line.number, label_vi, label_en)
                continue
        changes.append((code, value))
    return changes


def _split_values(text: str, count: int) -> list[str] | None:
    """``count`` values from a "Nội dung mới" cell; None when they cannot be matched."""
    if count == 1:
        return [" ".join(text.split())]
    if "\n" in text:
        parts = text.split("\n")
    elif not text:
        parts = []
    else:
        parts = [text]
        for separator in (";", ","):
            pieces = text.split(separator)
            if len(pieces) == count:
                parts = pieces
                break
            if len(pieces) > 1:
                return None  # separated, but not into one value per code
    if len(parts) > count:
        return None
    # Missing values at the end are empty (code 3: convert; codes 1 and 2: a problem).
    return [p.strip() for p in parts] + [""] * (count - len(parts))


# --- fields -----------------------------------------------------------------------------


def _name(line: _Line, problems: _Problems) -> str:
    text = line.get("name")
    if not text:
        problems.add(line.number, "Thiếu họ và tên.", "The name is missing.")
        return ""
    try:
        return clean_full_name(text)[1]
    except InvalidInput as error:
        problems.add(line.number, error.message_vi, error.message_en)
        return ""


def _text_field(line: _Line, name: str, problems: _Problems) -> str:
    value = normalize_name(line.get(name))
    if len(value) > MAX_FIELD:
        _too_long(problems, line.number, *_LABELS[name])
        return ""
    return value


def _address(
    line: _Line, text: str, name: str, reserved: frozenset[str], problems: _Problems
) -> str:
    """An address as given, lower-cased, when its local part is plausible (any domain)."""
    value = text.strip().lower()
    local, at, domain = value.partition("@")
    label_vi, label_en = _LABELS[name]
    if at and not _DOMAIN.fullmatch(domain):
        problems.add(
            line.number,
            f"Ô {label_vi}: '{_short(value)}' không phải địa chỉ thư điện tử hợp lệ.",
            f"The {label_en} cell: '{_short(value)}' is not a valid e-mail address.",
        )
        return ""
    try:
        validate_local_part(local, reserved)
    except InvalidInput as error:
        problems.add(
            line.number,
            f"Ô {label_vi}: {error.message_vi}",
            f"The {label_en} cell: {error.message_en}",
        )
        return ""
    return value


def _same(text: str) -> str:
    """The form two spellings of one name share: case and spacing ignored."""
    return normalize_name(text).casefold()


def _duplicate(
    number: int, key: tuple[str, ...], seen: dict[tuple[str, ...], int], problems: _Problems
) -> bool:
    first = seen.setdefault(key, number)
    if first == number:
        return False
    problems.add(
        number,
        f"Người này đã có ở dòng {first}.",
        f"This person is already listed on row {first}.",
    )
    return True


def _duplicate_address(
    number: int, name: str, address: str, seen: dict[str, tuple[int, str]], problems: _Problems
) -> bool:
    """Whether ``address`` was listed before: the same person again, or another person
    given the same mailbox."""
    first, first_name = seen.setdefault(address, (number, _same(name)))
    if first == number:
        return False
    if first_name == _same(name):
        problems.add(
            number,
            f"Người này đã có ở dòng {first}.",
            f"This person is already listed on row {first}.",
        )
    else:
        problems.add(
            number,
            f"Hộp thư {address} đã có ở dòng {first}, cho người khác.",
            f"The mailbox {address} is already listed on row {first}, for someone else.",
        )
    return True


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


# --- problems ---------------------------------------------------------------------------


def _missing_column(problems: _Problems, row: int, name: str) -> None:
    label_vi, label_en = _LABELS[name]
    titles = ", ".join(_HEADERS[name])
    problems.add(
        row,
        f"Dòng tiêu đề thiếu cột {label_vi} (tên cột được nhận: {titles}).",
        f"The header has no {label_en} column (recognised titles: {titles}).",
    )


def _too_many(problems: _Problems, row: int) -> None:
    problems.add(
        row,
        f"Danh sách dài quá {_MAX_ROWS_VI} dòng: hãy chia thành nhiều phiếu.",
        f"The list is longer than {MAX_ROWS:,} rows: split it into several requests.",
    )


def _too_long(problems: _Problems, row: int, label_vi: str, label_en: str) -> None:
    problems.add(
        row,
        f"Ô {label_vi} dài quá {MAX_FIELD} ký tự.",
        f"The {label_en} cell is longer than {MAX_FIELD} characters.",
    )


def _invalid(items: list[dict[str, Any]], **details: Any) -> InvalidInput:
    """One error for all the problems; its message names the first rows."""
    items = sorted(items, key=lambda p: int(p["row"]))
    first = items[0]
    rows = sorted({int(p["row"]) for p in items if p["row"]})
    if not rows:
        return InvalidInput(first["reason_vi"], first["reason_en"], **details, problems=items)
    shown = ", ".join(str(r) for r in rows[:_SHOWN_ROWS])
    more = len(rows) - _SHOWN_ROWS
    where_vi = f"dòng {shown}" + (f" và {more} dòng khác" if more > 0 else "")
    where_en = ("rows " if len(rows) > 1 else "row ") + shown
    where_en += f" and {more} more" if more > 0 else ""
    at_vi = f"Dòng {first['row']}: " if first["row"] else ""
    at_en = f"Row {first['row']}: " if first["row"] else ""
    return InvalidInput(
        f"Danh sách có {len(items)} lỗi ở {where_vi}. {at_vi}{first['reason_vi']}",
        f"The list has {len(items)} problem{'s' if len(items) > 1 else ''} on {where_en}."
        f" {at_en}{first['reason_en']}",
        **details,
        problems=items,
    )


def _guide(form: str) -> Iterator[str]:
    yield FORM_TITLES[form][0]
    yield ""
    yield "Ghi mỗi người một dòng ở trang thứ nhất; xóa dòng ví dụ (STT 1) trước khi gửi."
    yield "Giữ nguyên tên các cột ở dòng tiêu đề (có thể đổi thứ tự các cột)."
    if form == FORM_01:
        yield "Có thể thêm cột 'Địa chỉ hộp thư đề nghị' nếu muốn đề nghị địa chỉ cụ thể."
    if form == FORM_02:
        yield (
            "Ghi chú: Nội dung cột “Mã” nhận giá trị 1 khi thay đổi chức vụ, nhận giá trị 2"
            " khi thay đổi bộ phận công tác và nhận giá trị 3 khi thay đổi địa chỉ hộp thư"
            " điện tử."
        )
        yield (
            "Nhiều thay đổi của một người: ghi mỗi mã và nội dung trên một dòng trong ô"
            " (Alt+Enter), hoặc mỗi thay đổi một dòng và để trống họ tên, địa chỉ."
        )
        yield "Mã 3 để trống nội dung: chuyển địa chỉ về dạng theo Quy định."
    if form == FORM_03:
        yield "Cột Lý do không bắt buộc."
    yield f"Tối đa {_MAX_ROWS_VI} dòng mỗi phiếu; mỗi ô tối đa {MAX_FIELD} ký tự."
