"""The directory (Danh bạ) and spreadsheet import from the CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest

from tests.integration.clihelp import add_official, cli


@pytest.fixture
def province(data_dir: Path) -> Path:
    cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr")
    cli(data_dir, "agency", "add", "--name", "Sở Tài chính")
    for name, agency, position in [
        ("Nguyễn Văn An", "ttr", "Thanh tra viên"),
        ("Nguyễn Vân Anh", "stc", "Kế toán"),
        ("Trần Thị Thuỷ", "stc", "Chuyên viên"),
        ("Lê Văn Nguyên", "ttr", "Chánh Thanh tra"),
    ]:
        add_official(data_dir, name, agency, "--position", position)
    return data_dir


def test_search_is_diacritics_insensitive(province: Path) -> None:
    hits = json.loads(cli(province, "directory", "search", "nguyen van", "--json").stdout)
    names = [h["name"] for h in hits]
    assert names[:2] == ["Nguyễn Văn An", "Nguyễn Vân Anh"]  # names starting with it first
    assert "Lê Văn Nguyên" in names  # every word matches somewhere
    assert "Trần Thị Thuỷ" not in names
    # Old and new tone placement, upper case, decomposed input.
    assert (
        json.loads(cli(province, "directory", "search", "THỦY", "--json").stdout)[0]["name"]
        == "Trần Thị Thuỷ"
    )
    by_agency = json.loads(cli(province, "directory", "search", "tai chinh", "--json").stdout)
    assert by_agency[0] == {
        "kind": "agency",
        "name": "Sở Tài chính",
        "address": "stc@khanhhoa.gov.vn",
        "agency_name": "",
        "position": "",
        "department": "",
    }


def test_search_treats_underscore_literally(province: Path) -> None:
    add_official(province, "Nguyễn Văn An", "ttr", "--address", "nvan_ttr")
    hits = json.loads(cli(province, "directory", "search", "nvan_t", "--json").stdout)
    assert [h["address"] for h in hits] == ["nvan_ttr@khanhhoa.gov.vn"]
    assert json.loads(cli(province, "directory", "search", "%", "--json").stdout) == []


def test_export_csv_to_stdout_has_header_and_address_column(province: Path) -> None:
    result = cli(province, "directory", "export", "--format", "csv")
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["address"] for r in rows} >= {"ttr@khanhhoa.gov.vn", "nvan@khanhhoa.gov.vn"}
    assert len(rows) == 6
    an = next(r for r in rows if r["address"] == "nvan@khanhhoa.gov.vn")
    assert an["name"] == "Nguyễn Văn An" and an["position"] == "Thanh tra viên"


def test_export_xlsx_and_vcf_files(province: Path, tmp_path: Path) -> None:
    xlsx = tmp_path / "danhba.xlsx"
    result = cli(province, "directory", "export", "--format", "xlsx", "--out", str(xlsx))
    assert result.exit_code == 0, result.output
    sheet = openpyxl.load_workbook(xlsx).active
    values = [c for row in sheet.iter_rows(values_only=True) for c in row]
    assert "Trần Thị Thuỷ" in values and "ttthuy@khanhhoa.gov.vn" in values
    vcf = tmp_path / "danhba.vcf"
    cli(province, "directory", "export", "--format", "vcf", "--out", str(vcf))
    text = vcf.read_text(encoding="utf-8")
    assert text.count("BEGIN:VCARD") == 6
    assert "EMAIL;TYPE=work:ttthuy@khanhhoa.gov.vn" in text
    bad = cli(province, "directory", "export", "--format", "pdf")
    assert bad.exit_code == 1


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)


def test_import_xlsx_with_vietnamese_header(province: Path, tmp_path: Path) -> None:
    staff = tmp_path / "danh-sach.xlsx"
    _write_xlsx(
        staff,
        [
            ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác", "Địa chỉ hộp thư"],
            [1, "Phạm Minh Tuấn", "Chuyên viên", "Phòng Nghiệp vụ", None],
            [2, "Nguyễn Văn An", "Chuyên viên", "Văn phòng", None],  # nvan taken → nvan_ttr
            [None, None, None, None, None],
            [4, "Hoa", "Văn thư", "", None],  # one-word name
            [5, "Đỗ Thị Hà", "Kế toán", "Văn phòng", "dtha.ketoan"],
            [6, "Trần Quốc Bảo", "Cán bộ", "", "nvan"],  # explicit address taken
        ],
    )
    result = cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json")
    assert result.exit_code == 4, result.output  # good rows committed, bad ones listed
    summary = json.loads(result.stdout)
    assert [c["address"] for c in summary["created"]] == [
        "pmtuan@khanhhoa.gov.vn",
        "nvan_ttr@khanhhoa.gov.vn",
        "dtha.ketoan@khanhhoa.gov.vn",
    ]
    assert [a["row"] for a in summary["auto_addressed"]] == [3]
    assert [s["row"] for s in summary["skipped"]] == [5, 7]
    hits = json.loads(cli(province, "directory", "search", "pham minh", "--json").stdout)
    assert hits[0]["agency_name"] == "Thanh tra tỉnh" and hits[0]["department"] == "Phòng Nghiệp vụ"

    rerun = cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json")
    again = json.loads(rerun.stdout)
    assert again["created"] == [] and again["already_present"] == [2, 3, 6]


def test_import_csv_english_header_strict_and_text_summary(province: Path, tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "Department,Name,Position\n"
        "Văn phòng,Nguyễn Văn An,Chuyên viên\n"
        "Văn phòng,Vũ Thị Mai,Văn thư\n",
        encoding="utf-8",
    )
    result = cli(province, "import", "officials", str(staff), "--agency", "stc", "--strict")
    assert result.exit_code == 4, result.output
    assert "Đã tạo: 1 hộp thư" in result.stdout
    assert "dòng 2:" in result.stdout  # the taken one, skipped under --strict
    found = json.loads(cli(province, "directory", "search", "vu thi mai", "--json").stdout)
    assert found[0]["address"] == "vtmai@khanhhoa.gov.vn" and found[0]["department"] == "Văn phòng"


def test_import_rejects_unknown_agency_and_bad_file(province: Path, tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text("Họ và tên\nVũ Thị Mai\n", encoding="utf-8")
    assert cli(province, "import", "officials", str(staff), "--agency", "khongco").exit_code == 1
    odd = tmp_path / "staff.pdf"
    odd.write_bytes(b"%PDF-1.4")
    assert cli(province, "import", "officials", str(odd), "--agency", "stc").exit_code == 1
    assert json.loads(cli(province, "directory", "search", "vu thi mai", "--json").stdout) == []


def test_search_follows_changes_to_people(province: Path) -> None:
    def found(query: str) -> list[str]:
        hits = json.loads(cli(province, "directory", "search", query, "--json").stdout)
        return [h["address"] for h in hits]

    assert found("thanh tra vien") == ["nvan@khanhhoa.gov.vn"]
    cli(
        province,
        "person",
        "update",
        "nvan",
        "--position",
        "Phó Chánh Thanh tra",
        "--address",
        "nguyenvanan",
    )
    assert found("thanh tra vien") == []
    assert found("pho chanh") == ["nguyenvanan@khanhhoa.gov.vn"]
    assert found("nguyenvanan") == ["nguyenvanan@khanhhoa.gov.vn"]
    cli(province, "person", "remove", "nguyenvanan")
    assert found("pho chanh") == []


def test_import_refuses_addresses_of_other_domains_row_by_row(
    province: Path, tmp_path: Path
) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "Họ và tên,Chức vụ,Email\n"
        "Vũ Thị Mai,Văn thư,maivu@gmail.com\n"
        "Đỗ Văn Hải,Cán bộ,dvhai@khanhhoa.gov.vn\n",
        encoding="utf-8",
    )
    result = cli(province, "import", "officials", str(staff), "--agency", "stc", "--json")
    assert result.exit_code == 4
    summary = json.loads(result.stdout)
    assert [c["address"] for c in summary["created"]] == ["dvhai@khanhhoa.gov.vn"]
    assert summary["skipped"][0]["row"] == 2
    assert "gmail.com" in summary["skipped"][0]["reason_vi"]
    ok = cli(province, "import", "officials", str(staff), "--agency", "stc")
    assert ok.exit_code == 4  # the Gmail row is still refused, the other already present


def test_fixing_a_bad_row_and_rerunning_creates_exactly_that_row(
    province: Path, tmp_path: Path
) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "Họ và tên,Chức vụ,Địa chỉ hộp thư\n"
        "Nguyễn Văn Tèo,Chuyên viên,nvteo_ttr_x..\n"
        "Nguyễn Văn Tèo,Chuyên viên,\n",
        encoding="utf-8",
    )
    first = json.loads(
        cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json").stdout
    )
    assert [c["address"] for c in first["created"]] == ["nvteo@khanhhoa.gov.vn"]
    assert [s["row"] for s in first["skipped"]] == [2]
    again = json.loads(
        cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json").stdout
    )
    assert again["created"] == [] and again["already_present"] == [3]
    staff.write_text(
        staff.read_text(encoding="utf-8").replace("nvteo_ttr_x..", "nvteo2"), encoding="utf-8"
    )
    fixed = cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json")
    assert fixed.exit_code == 0
    summary = json.loads(fixed.stdout)
    assert [c["address"] for c in summary["created"]] == ["nvteo2@khanhhoa.gov.vn"]
    assert summary["already_present"] == [3]


def test_an_address_the_file_asks_for_is_not_given_to_another_row(
    province: Path, tmp_path: Path
) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "Họ và tên,Chức vụ,Địa chỉ hộp thư\n"
        "Nguyễn Văn An,Chuyên viên,\n"  # nvan is taken: would get nvan_ttr automatically
        "Nguyễn Văn An,Thanh tra viên chính,nvan_ttr\n",
        encoding="utf-8",
    )
    result = cli(province, "import", "officials", str(staff), "--agency", "ttr", "--json")
    assert result.exit_code == 0, result.output
    created = {c["row"]: c["address"] for c in json.loads(result.stdout)["created"]}
    assert created[3] == "nvan_ttr@khanhhoa.gov.vn"
    assert created[2] not in ("nvan@khanhhoa.gov.vn", "nvan_ttr@khanhhoa.gov.vn")


def test_rows_numbered_in_advance_are_blank(province: Path, tmp_path: Path) -> None:
    staff = tmp_path / "staff.csv"
    staff.write_text("STT,Họ và tên,Chức vụ\n1,Vũ Thị Mai,Văn thư\n2,,\n3,,\n", encoding="utf-8")
    result = cli(province, "import", "officials", str(staff), "--agency", "stc", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["skipped"] == []
