"""The agency portal (Cổng cơ quan) against a real ``govmail serve``: the IT officer files
Mẫu 01 typed or as a spreadsheet, sees problem rows, is refused a duplicate, withdraws,
downloads the PDF; another agency's officer and an ordinary official are refused; anyone
reports an incident; the head delegates the agency mailbox with a signed document."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest
from openpyxl import Workbook, load_workbook

from tests.integration.browser import closing_clients, csrf_of, login, web
from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import AN, BINH, DOMAIN, RunningServer, db_scalar, served
from tests.integration.mailserver import mailbox_messages as messages_in

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

CUONG = f"tvcuong@{DOMAIN}"  # IT officer of Sở Tư pháp
TYPED = "Phạm Văn Dũng | Chuyên viên | Văn phòng\nHoàng Thị Em | Phó Chánh Văn phòng | Văn phòng"
REQUESTER = {
    "requester_name": "Nguyễn Văn An",
    "requester_position": "Cán bộ chuyên trách CNTT",
    "requester_phone": "0258 3822 111",
}
PDF_DOCUMENT = b"%PDF-1.4\n% giay uy quyen co chu ky\n%%EOF\n"


@pytest.fixture
def portal(province: Path) -> Iterator[RunningServer]:
    """The province with An IT officer of Thanh tra tỉnh (ttr@), and Sở Tư pháp (stp@)
    whose IT officer is Trần Văn Cường; Bình is an ordinary official."""
    steps = [
        ("role", "grant", AN, "it_officer", "--agency", "ttr"),
        ("agency", "add", "--name", "Sở Tư pháp", "--abbr", "stp"),
    ]
    for step in steps:
        assert cli(province, *step).exit_code == 0, step
    assert add_official(province, "Trần Văn Cường", "stp").exit_code == 0
    assert cli(province, "role", "grant", CUONG, "it_officer", "--agency", "stp").exit_code == 0
    with served(province) as running:
        yield running


def agency_id(server: RunningServer, abbr: str) -> int:
    value = db_scalar(server.data_dir, f"select id from agencies where abbr = '{abbr}'")
    assert isinstance(value, int)
    return value


def request_count(server: RunningServer) -> int:
    return int(str(db_scalar(server.data_dir, "select count(*) from requests")))


def file_form(
    client: httpx.Client,
    server: RunningServer,
    form: str = "01",
    files: dict[str, tuple[str, bytes, str]] | None = None,
    **fields: str,
) -> httpx.Response:
    """Post the portal's form ``form`` for Thanh tra tỉnh as a browser does."""
    data = {
        "csrf": csrf_of(client, f"/portal/new/{form}"),
        "agency": str(agency_id(server, "ttr")),
        **REQUESTER,
        **fields,
    }
    return client.post(f"/portal/new/{form}", data=data, files=files)


def filed_id(reply: httpx.Response) -> int:
    assert reply.status_code == 303, reply.text
    found = re.fullmatch(r"/portal/requests/(\d+)\?filed=1", reply.headers["location"])
    assert found is not None, reply.headers["location"]
    return int(found.group(1))


def subjects_in(data_dir: Path, address: str) -> list[str]:
    found = []
    for _, raw in messages_in(data_dir, address):
        found.append(str(message_from_bytes(raw, policy=policy.default)["Subject"]))
    return found


def test_officer_files_form_01_typed(portal: RunningServer) -> None:
    an = login(portal, AN)
    home = an.get("/portal")
    assert home.status_code == 200 and "Yêu cầu của Thanh tra tỉnh" in home.text
    assert 'href="/portal"' in an.get("/").text  # the nav link
    # An IT officer files every kind but the delegation (the head's).
    assert "/portal/new/01?" in home.text and "/portal/new/reset?" in home.text
    assert "/portal/new/delegation" not in home.text
    page = an.get("/portal/new/01")
    assert "Họ và tên | Chức vụ | Bộ phận công tác" in page.text
    assert "Ngày quyết định có hiệu lực" in page.text
    assert 'href="/portal/template/01.xlsx"' in page.text

    number = filed_id(file_form(an, portal, rows=TYPED, decision_date="2020-01-02"))
    shown = an.get(f"/portal/requests/{number}?filed=1")
    assert shown.status_code == 200
    assert f"Đã gửi yêu cầu số {number}" in shown.text
    assert "Phạm Văn Dũng" in shown.text and "Phó Chánh Văn phòng" in shown.text
    assert "Chờ xử lý" in shown.text and "Nộp muộn" in shown.text  # R21: years late
    assert "0258 3822 111" in shown.text and "Rút lại yêu cầu" in shown.text
    listed = an.get("/portal").text
    assert f'href="/portal/requests/{number}"' in listed
    # The requester's own INBOX gets the notice.
    assert any(s.startswith(f"[Yêu cầu số {number}]") for s in subjects_in(portal.data_dir, AN))


def test_officer_files_form_01_as_spreadsheet(portal: RunningServer) -> None:
    an = login(portal, AN)
    template = an.get("/portal/template/01.xlsx")
    assert template.status_code == 200 and template.content.startswith(b"PK")
    assert "attachment" in template.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(template.content)).active
    assert sheet is not None and sheet["B1"].value == "Họ và tên"
    assert an.get("/portal/template/01.csv").content.startswith("\ufeffSTT".encode())
    assert an.get("/portal/template/reset.xlsx").status_code == 404

    book = Workbook()
    rows = book.active
    assert rows is not None
    rows.append(["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"])
    rows.append([1, "Võ Thị Giang", "Thanh tra viên", "Phòng Nghiệp vụ 2"])
    rows.append([2, "Đặng Văn Hùng", "Chuyên viên", "Phòng Nghiệp vụ 2"])
    upload = io.BytesIO()
    book.save(upload)
    sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    reply = file_form(
        an, portal, files={"table": ("danh sách cán bộ.xlsx", upload.getvalue(), sheet_type)}
    )
    shown = an.get(f"/portal/requests/{filed_id(reply)}").text
    assert "Võ Thị Giang" in shown and "Đặng Văn Hùng" in shown and "Danh sách (2)" in shown


def test_malformed_rows_are_shown_and_nothing_is_filed(portal: RunningServer) -> None:
    an = login(portal, AN)
    typed = "Phạm Văn Dũng | Chuyên viên | Văn phòng\n| Chuyên viên | Văn phòng\nA | b | c | d | e"
    reply = file_form(an, portal, rows=typed)
    assert reply.status_code == 422
    problems = re.findall(r'<td class="num">(\d+)</td><td>([^<]+)', reply.text)
    assert [row for row, _ in problems] == ["2", "3"]
    assert "Thiếu họ và tên" in problems[0][1]
    # What was typed is kept, and so are the requester's fields.
    assert "A | b | c | d | e</textarea>" in reply.text and "0258 3822 111" in reply.text
    # A spreadsheet that is not one: the whole file is the problem.
    broken = file_form(an, portal, files={"table": ("ds.xlsx", b"not a workbook", "x/y")})
    assert broken.status_code == 422 and "Cả danh sách" in broken.text
    # The desk's own checks: Mẫu 03 naming someone of another agency.
    other = file_form(an, portal, form="03", rows=f"Trần Văn Cường | {CUONG} | Nghỉ hưu")
    assert other.status_code == 422 and "không thuộc Thanh tra tỉnh" in other.text
    assert request_count(portal) == 0


def test_duplicate_submission_is_refused(portal: RunningServer) -> None:
    an = login(portal, AN)
    filed_id(file_form(an, portal, rows=TYPED))
    again = file_form(an, portal, rows=TYPED)
    assert again.status_code == 409
    assert "Một yêu cầu giống hệt đang chờ xử lý" in again.text
    assert request_count(portal) == 1


def test_withdraw_while_open(portal: RunningServer) -> None:
    an = login(portal, AN)
    number = filed_id(file_form(an, portal, rows=TYPED))
    done = an.post(f"/portal/requests/{number}/withdraw", data={"csrf": csrf_of(an, "/portal")})
    assert done.status_code == 303
    shown = an.get(done.headers["location"]).text
    assert "Đã rút lại yêu cầu số" in shown and "Rút lại yêu cầu</button>" not in shown
    again = an.post(f"/portal/requests/{number}/withdraw", data={"csrf": csrf_of(an, "/portal")})
    assert again.status_code == 409
    # Withdrawn, it is no longer open: the same list may be filed again.
    assert filed_id(file_form(an, portal, rows=TYPED)) > number
    assert "Đã rút lại" in an.get("/portal?status=withdrawn").text


def test_pdf_names_the_request(portal: RunningServer) -> None:
    an = login(portal, AN)
    number = filed_id(file_form(an, portal, rows=TYPED))
    assert f'href="/portal/requests/{number}.pdf"' in an.get(f"/portal/requests/{number}").text
    pdf = an.get(f"/portal/requests/{number}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    disposition = pdf.headers["content-disposition"]
    assert disposition.startswith("attachment") and f"yeu-cau-{number}-" in disposition


def test_other_agency_officer_is_refused(portal: RunningServer) -> None:
    an = login(portal, AN)
    number = filed_id(file_form(an, portal, rows=TYPED))
    cuong = login(portal, CUONG)
    assert "Yêu cầu của Sở Tư pháp" in cuong.get("/portal").text
    page = cuong.get(f"/portal/requests/{number}")
    assert page.status_code == 403 and "Bạn không có quyền xem yêu cầu này" in page.text
    pdf = cuong.get(f"/portal/requests/{number}.pdf")
    assert pdf.status_code == 403 and not pdf.content.startswith(b"%PDF")
    withdraw = cuong.post(
        f"/portal/requests/{number}/withdraw", data={"csrf": csrf_of(cuong, "/portal")}
    )
    assert withdraw.status_code == 403
    # Nor may he file for Thanh tra tỉnh.
    ttr = agency_id(portal, "ttr")
    assert cuong.get(f"/portal/new/01?agency={ttr}").status_code == 403
    data = {"csrf": csrf_of(cuong, "/portal"), "agency": str(ttr), "rows": TYPED, **REQUESTER}
    assert cuong.post("/portal/new/01", data=data).status_code == 403
    assert "Chờ xử lý" in an.get(f"/portal/requests/{number}").text
    assert request_count(portal) == 1


def test_official_reports_incidents_but_files_no_request(portal: RunningServer) -> None:
    binh = login(portal, BINH)
    home = binh.get("/portal").text
    assert "Báo sự cố" in home and "/portal/new/01" not in home
    refused = binh.get("/portal/new/01")
    assert refused.status_code == 403 and "Chỉ cán bộ chuyên trách CNTT" in refused.text
    data = {"csrf": csrf_of(binh, "/portal"), "rows": TYPED, **REQUESTER}
    assert binh.post("/portal/new/01", data=data).status_code == 403
    assert request_count(portal) == 0

    empty = binh.post("/portal/incidents", data={"csrf": csrf_of(binh), "subject": " "})
    assert empty.status_code == 422 and "Thiếu tiêu đề" in empty.text
    reported = binh.post(
        "/portal/incidents",
        data={
            "csrf": csrf_of(binh),
            "subject": "Không gửi được thư có tệp đính kèm",
            "description": "Từ sáng nay, thư có tệp PDF 3 MB báo lỗi.",
        },
    )
    assert reported.status_code == 303
    shown = binh.get(reported.headers["location"]).text
    assert "Đã gửi báo cáo sự cố số" in shown and "Mới tiếp nhận" in shown
    assert "Không gửi được thư có tệp đính kèm" in binh.get("/portal").text
    assert any(s.startswith("[Sự cố số") for s in subjects_in(portal.data_dir, BINH))
    # Another official does not see it.
    path = reported.headers["location"].split("?")[0]
    assert login(portal, AN).get(path).status_code == 403


def test_head_delegates_with_signed_document(portal: RunningServer) -> None:
    an = login(portal, AN)
    assert an.get("/portal/new/delegation").status_code == 403  # an IT officer, not head
    assert (
        cli(portal.data_dir, "role", "grant", AN, "agency_head", "--agency", "ttr").exit_code == 0
    )
    page = an.get("/portal/new/delegation")
    assert page.status_code == 200 and f'<option value="{BINH}"' in page.text
    not_signed = file_form(
        an,
        portal,
        "delegation",
        files={"document": ("uy-quyen.txt", b"chu ky", "text/plain")},
        person=BINH,
    )
    assert not_signed.status_code == 422 and "phải là tệp PDF hoặc ảnh" in not_signed.text
    number = filed_id(
        file_form(
            an,
            portal,
            "delegation",
            files={"document": ("Giấy ủy quyền.pdf", PDF_DOCUMENT, "application/pdf")},
            person=BINH,
        )
    )
    shown = an.get(f"/portal/requests/{number}").text
    assert "Giấy ủy quyền.pdf" in shown and BINH in shown
    document = an.get(f"/portal/requests/{number}/document")
    assert document.content == PDF_DOCUMENT
    assert "attachment" in document.headers["content-disposition"]


def test_password_reset_picks_from_the_agencys_people(portal: RunningServer) -> None:
    an = login(portal, AN)
    page = an.get("/portal/new/reset").text
    assert f'<option value="{BINH}"' in page and CUONG not in page  # only Thanh tra tỉnh
    number = filed_id(file_form(an, portal, "reset", address=BINH))
    shown = an.get(f"/portal/requests/{number}").text
    assert "Cấp lại mật khẩu" in shown and BINH in shown


def test_refusals_without_login_csrf_or_form(portal: RunningServer) -> None:
    anonymous = web(portal)
    assert anonymous.get("/portal").headers["location"] == "/login"
    an = login(portal, AN)
    data = {"agency": str(agency_id(portal, "ttr")), "rows": TYPED, **REQUESTER}
    refused = an.post("/portal/new/01", data=data)
    assert refused.status_code == 403 and "trang đã cũ" in refused.text
    assert request_count(portal) == 0
    assert an.get("/portal/new/04").status_code == 404
    assert an.get("/portal/requests/999").status_code == 404
