"""Writes the directory (Danh bạ) as CSV, Excel workbook or vCard 4.0 address book."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, BinaryIO, TextIO

# Excel reads a CSV file as UTF-8 only when it starts with a BOM; callers writing a file
# open it with this encoding (and newline="", as the csv module requires).
CSV_ENCODING = "utf-8-sig"

AGENCY = "agency"
PERSONAL = "personal"


@dataclass(frozen=True)
class DirectoryEntry:
    """One mailbox of the directory.

    ``kind`` is "agency" or "personal". For an agency entry ``name`` is the agency's name
    and ``agency`` its parent's name ("" at the top); for a personal entry ``agency`` is
    the agency the official works in.
    """

    address: str
    name: str
    kind: str
    agency: str
    agency_address: str
    position: str
    department: str


CSV_HEADER = tuple(f.name for f in fields(DirectoryEntry))

XLSX_SHEET_TITLE = "Danh bạ"
XLSX_HEADER = (
    "Địa chỉ hộp thư",
    "Họ và tên / Tên cơ quan",
    "Loại",
    "Cơ quan",
    "Hộp thư cơ quan",
    "Chức vụ",
    "Bộ phận công tác",
)
# Widths in characters, sized for typical Vietnamese agency names and addresses.
_XLSX_WIDTHS = (30, 36, 10, 44, 24, 24, 32)
_XLSX_KIND_LABELS = {AGENCY: "Cơ quan", PERSONAL: "Cá nhân"}

_VCARD_LINE_OCTETS = 75  # RFC 6350 §3.2, excluding the CRLF


# CSV formula injection (CWE-1236): Excel and LibreOffice run a cell that starts with
# = + - or @ as a formula (=HYPERLINK(…) can leak data or lure a click, =cmd|… once ran
# programs), and a leading tab or CR can hide such a start. Directory values come from
# agencies' files and users, so write_csv prefixes such a value with an apostrophe, which
# the spreadsheet shows as text. (write_xlsx marks cells as text instead.)
_CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_csv(entries: Iterable[DirectoryEntry], out: TextIO) -> None:
    """Write a header row and one row per entry; ``out`` must be opened with newline="".

    A value starting with = + - @, a tab or a CR is written with a leading apostrophe, so
    that spreadsheet programs show it as text instead of running it as a formula.
    """
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    writer.writerows([_csv_text(value) for value in _values(entry)] for entry in entries)


def _csv_text(value: str) -> str:
    return "'" + value if value.startswith(_CSV_FORMULA_STARTS) else value


def write_xlsx(entries: Iterable[DirectoryEntry], out: BinaryIO) -> None:
    """Write a one-sheet workbook ("Danh bạ") with a bold Vietnamese header row."""
    # openpyxl is imported here so that CSV and vCard exports do not pay for loading it.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    # Write-only mode streams rows, so a province-sized directory needs little memory.
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(XLSX_SHEET_TITLE)
    for column, width in enumerate(_XLSX_WIDTHS, 1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"

    bold = Font(bold=True)
    header = []
    for title in XLSX_HEADER:
        cell = WriteOnlyCell(sheet, value=title)
        cell.font = bold
        header.append(cell)
    sheet.append(header)

    def text(value: str) -> Any:
        # openpyxl stores any string starting with "=" as a formula; a directory value
        # must stay text, and must not run as a formula when someone opens the file.
        if not value.startswith("="):
            return value
        cell = WriteOnlyCell(sheet, value=value)
        cell.data_type = "s"
        return cell

    kind_column = CSV_HEADER.index("kind")
    for entry in entries:
        row = [text(value) for value in _values(entry)]
        row[kind_column] = _XLSX_KIND_LABELS.get(entry.kind, text(entry.kind))
        sheet.append(row)
    workbook.save(out)


def _values(entry: DirectoryEntry) -> list[str]:
    return [getattr(entry, name) for name in CSV_HEADER]


def write_vcf(entries: Iterable[DirectoryEntry], out: TextIO) -> None:
    """Write one vCard 4.0 (RFC 6350) per entry, CRLF-terminated and folded at 75 octets.

    ``out`` must be opened with newline="" so the CRLFs pass through unchanged; vCard 4.0
    is always UTF-8.
    """
    for entry in entries:
        for line in _vcard_lines(entry):
            out.write(_fold(line))


def _vcard_lines(entry: DirectoryEntry) -> list[str]:
    lines = ["BEGIN:VCARD", "VERSION:4.0"]
    if entry.kind == AGENCY:
        lines.append("KIND:org")
    lines.append(f"FN:{_escape(entry.name)}")
    if entry.kind == AGENCY:
        # ORG lists the organisation, then its units: the parent first, if any.
        units = [entry.agency, entry.name] if entry.agency else [entry.name]
    else:
        lines.append(f"N:{_structured_name(entry.name)}")
        units = [entry.agency, entry.department] if entry.department else [entry.agency]
    lines.append(f"EMAIL;TYPE=work:{_escape(entry.address)}")
    if any(units):
        lines.append("ORG:" + ";".join(_escape(unit) for unit in units))
    if entry.position:
        lines.append(f"TITLE:{_escape(entry.position)}")
    lines.append("END:VCARD")
    return lines


def _structured_name(full_name: str) -> str:
    """N value: family;given;additional;prefixes;suffixes.

    The surname is the first word and the given name the last (Vietnamese order); the
    words between are middle names. Compound surnames (Tôn Thất …) cannot be told apart
    from the string, as the directory itself knows.
    """
    words = full_name.split()
    if not words:
        return ";;;;"
    if len(words) == 1:
        return f";{_escape(words[0])};;;"
    family, middle, given = words[0], " ".join(words[1:-1]), words[-1]
    return f"{_escape(family)};{_escape(given)};{_escape(middle)};;"


def _escape(value: str) -> str:
    """Escape a text value (RFC 6350 §3.4): backslash, comma, semicolon, line breaks."""
    return (
        value.replace("\\", "\\\\")
        .replace(",", "\\,")
        .replace(";", "\\;")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Return ``line`` folded into CRLF-terminated physical lines of at most 75 octets.

    Continuation lines start with one space (which counts toward the 75). Lines break
    between characters, never inside a UTF-8 sequence.
    """
    parts: list[str] = []
    current: list[str] = []
    size = 0
    limit = _VCARD_LINE_OCTETS
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > limit:
            parts.append("".join(current))
            current, size = [" "], 1
        current.append(char)
        size += octets
    parts.append("".join(current))
    return "\r\n".join(parts) + "\r\n"
