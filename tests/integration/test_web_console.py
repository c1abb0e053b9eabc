"""The centre's admin console (Quản trị) against a real ``govmail serve``: only the
centre gets in; the queue shows requests with their SLA; approving goes through the
collision screen and shows the temporary passwords once; a request is decided once even
when two operators click at the same moment; rejections, password resets, directory
upkeep, the audit log and its CSV, incidents and the Director's endorsement (R10)."""

from __future__ import annotations

import asyncio
import csv
import imaplib
import io
import re
from pathlib import Path

import httpx
import pytest

from tests.integration.browser import base_url, closing_clients, csrf_of, login, post, web
from tests.integration.clihelp import cli
from tests.integration.mailserver import (
    AN,
    BINH,
    PASSWORD,
    TTR,
    RunningServer,
    db_scalar,
    mailbox_messages,
)

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

CONSOLE_PAGES = (
    "/console",
    "/console/passwords",
    "/console/directory",
    "/console/audit",
    "/console/audit.csv",
    "/console/incidents",
    "/console/policy",
)
_PASSWORD = re.compile(r'<code class="password">([^<]+)</code>')


def _centre(server: RunningServer, address: str = BINH) -> httpx.Client:
    """A signed-in centre administrator (ltbinh@ unless told)."""
    assert cli(server.data_dir, "role", "grant", address, "centre_admin").exit_code == 0
    return login(server, address)


def _submit_01(server: RunningServer, tmp_path: Path, *names: str) -> int:
    """File Mẫu 01 for ttr@ at the command line (the operator); returns its number."""
    sheet = tmp_path / f"mau01-{len(list(tmp_path.glob('*.csv')))}.csv"
    lines = ["STT,Họ và tên,Chức vụ,Bộ phận công tác"]
    lines += [f"{n},{name},Chuyên viên,Phòng Nghiệp vụ" for n, name in enumerate(names, 1)]
    sheet.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    done = cli(
        server.data_dir,
        "request",
        "submit",
        "--agency",
        "ttr",
        "--form",
        "01",
        "--file",
        str(sheet),
    )
    assert done.exit_code == 0, done.output
    return int(done.output.split()[0])


def _proposals(page: str, row: int) -> list[str]:
    return re.findall(rf'name="address_{row}" value="([^"]+)"', page)


def _mailboxes_named(server: RunningServer, name: str) -> int:
    value = db_scalar(
        server.data_dir,
        f"select count(*) from people where full_name = '{name}' and status = 'active'",
    )
    assert isinstance(value, int)
    return value


def test_only_the_centre_gets_in(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc")
    official = login(server, AN)
    for path in (*CONSOLE_PAGES, f"/console/requests/{number}", f"/console/requests/{number}.pdf"):
        reply = official.get(path)
        assert reply.status_code == 403, path
        assert "Yêu cầu bị từ chối" in reply.text
    refused = post(official, f"/console/requests/{number}/approve")
    assert refused.status_code == 403
    assert post(official, "/console/passwords", {"address": BINH}).status_code == 403
    assert db_scalar(server.data_dir, f"select status from requests where id = {number}") == (
        "pending"
    )
    # Not signed in at all: the login page.
    assert web(server).get("/console").headers["location"] == "/login"


def test_queue_shows_a_request_with_its_due_date(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc", "Phạm Văn Dũng")
    admin = _centre(server)
    page = admin.get("/console").text
    assert f'href="/console/requests/{number}"' in page
    assert "Thanh tra tỉnh" in page and "Mẫu 01" in page
    assert "Hạn xử lý" in page and re.search(r"\d\d:\d\d, \d\d/\d\d/\d{4}", page)
    assert "<strong>1</strong> chờ xử lý" in page
    assert "quá hạn</strong>" not in page
    # Filtering by another form hides it; by the agency keeps it.
    assert f"/console/requests/{number}" not in admin.get("/console?form=03").text
    assert f"/console/requests/{number}" in admin.get("/console?agency=ttr").text
    detail = admin.get(f"/console/requests/{number}").text
    assert "Trần Thị Cúc" in detail and "Phạm Văn Dũng" in detail and "Duyệt" in detail
    pdf = admin.get(f"/console/requests/{number}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_approve_picking_a_proposal_for_the_collision(
    server: RunningServer, tmp_path: Path
) -> None:
    # "Nguyễn Văn An" would be nvan@, which is taken; "Trần Thị Cúc" gets ttcuc@.
    number = _submit_01(server, tmp_path, "Nguyễn Văn An", "Trần Thị Cúc")
    assert cli(server.data_dir, "role", "grant", AN, "it_officer", "--agency", "ttr").exit_code == 0
    admin = _centre(server)
    screen = admin.get(f"/console/requests/{number}/approve").text
    proposals = _proposals(screen, 1)
    assert proposals and all("@" not in p and p != "nvan" for p in proposals)
    assert "nvan@khanhhoa.gov.vn đã được sử dụng" in screen
    assert 'readonly value="ttcuc@khanhhoa.gov.vn"' in screen
    assert _proposals(screen, 2) == []

    done = post(admin, f"/console/requests/{number}/approve", {"address_1": proposals[1]})
    assert done.status_code == 200, done.text
    chosen = f"{proposals[1]}@khanhhoa.gov.vn"
    assert chosen in done.text and "ttcuc@khanhhoa.gov.vn" in done.text
    assert "chỉ hiện một lần" in done.text
    passwords = _PASSWORD.findall(done.text)
    assert len(passwords) == 2

    # The password works in the webmail (and must be changed first), and is never shown
    # again: not on the request page, not in the queue.
    newcomer = web(server).post("/login", data={"login": chosen, "password": passwords[0]})
    assert newcomer.headers["location"] == "/password"
    again = admin.get(f"/console/requests/{number}").text
    assert "Đã thực hiện" in again and chosen in again
    assert all(p not in again for p in passwords)
    # The IT officer got the passwords by mail; the agency got the decision.
    notices = [m for m, _ in mailbox_messages(server.data_dir, AN)]
    assert any("mật khẩu" in (m.subject or "").lower() for m in notices)


def test_approve_typing_another_address(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Nguyễn Văn An")
    admin = _centre(server)
    screen = admin.get(f"/console/requests/{number}/approve").text
    first = _proposals(screen, 1)[0]
    # The typed address wins over the radio button left on the first proposal.
    done = post(
        admin,
        f"/console/requests/{number}/approve",
        {"address_1": first, "custom_1": "an.nguyen.ttr"},
    )
    assert done.status_code == 200, done.text
    assert "an.nguyen.ttr@khanhhoa.gov.vn" in done.text
    assert f"{first}@khanhhoa.gov.vn" not in done.text


def test_a_taken_choice_shows_the_screen_again(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Nguyễn Văn An")
    admin = _centre(server)
    # No choice at all, then an address that is taken: the screen again, nothing done.
    choices: list[dict[str, object]] = [{}, {"custom_1": "ltbinh"}]
    for data in choices:
        again = post(admin, f"/console/requests/{number}/approve", data)
        assert again.status_code == 409
        assert "đã được sử dụng" in again.text and _proposals(again.text, 1)
    assert db_scalar(server.data_dir, f"select status from requests where id = {number}") == (
        "pending"
    )


def test_approving_twice_says_it_was_decided(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc")
    admin = _centre(server)
    assert post(admin, f"/console/requests/{number}/approve").status_code == 200
    second = post(admin, f"/console/requests/{number}/approve")
    assert second.status_code == 409
    assert f"Yêu cầu số {number} đã được xử lý" in second.text
    assert _mailboxes_named(server, "Trần Thị Cúc") == 1
    # The screen no longer offers to approve it.
    assert "Duyệt và thực hiện" not in admin.get(f"/console/requests/{number}/approve").text


def test_two_operators_approving_at_once(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc", "Phạm Văn Dũng")
    first, second = _centre(server, BINH), _centre(server, AN)
    url = base_url(server)

    async def approve(client: httpx.Client) -> httpx.Response:
        token = csrf_of(client, "/console/passwords")
        async with httpx.AsyncClient(
            base_url=url, headers={"Origin": url}, cookies=client.cookies, timeout=30
        ) as racer:
            return await racer.post(f"/console/requests/{number}/approve", data={"csrf": token})

    async def both() -> list[httpx.Response]:
        return list(await asyncio.gather(approve(first), approve(second)))

    replies = asyncio.run(both())
    assert sorted(r.status_code for r in replies) == [200, 409]
    winner = next(r for r in replies if r.status_code == 200)
    assert len(_PASSWORD.findall(winner.text)) == 2
    loser = next(r for r in replies if r.status_code == 409)
    assert "đã được xử lý" in loser.text
    assert _mailboxes_named(server, "Trần Thị Cúc") == 1
    assert _mailboxes_named(server, "Phạm Văn Dũng") == 1
    approvals = db_scalar(
        server.data_dir,
        f"select count(*) from audit_log where action = 'request.approve'"
        f" and target = 'request/{number}'",
    )
    assert approvals == 1


def test_reject_needs_a_reason_and_tells_the_agency(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc")
    admin = _centre(server)
    empty = post(admin, f"/console/requests/{number}/reject", {"reason": "  "})
    assert empty.status_code == 400 and "Cần nêu lý do từ chối" in empty.text
    reason = "Thiếu quyết định tuyển dụng kèm theo."
    done = post(admin, f"/console/requests/{number}/reject", {"reason": reason})
    assert done.status_code == 303
    page = admin.get(f"/console/requests/{number}").text
    assert "Bị từ chối" in page and reason in page
    # Filed at the command line: the agency mailbox hears of it, with the reason.
    mail = [raw for _, raw in mailbox_messages(server.data_dir, TTR)]
    assert any(reason.encode() in raw or b"Thi=E1=BA=BFu" in raw for raw in mail) or any(
        "từ chối" in (m.subject or "").lower() for m, _ in mailbox_messages(server.data_dir, TTR)
    )
    assert _mailboxes_named(server, "Trần Thị Cúc") == 0


def test_password_reset_is_shown_once_and_imap_wants_it_changed(server: RunningServer) -> None:
    admin = _centre(server)
    done = post(admin, "/console/passwords", {"address": "nvan"})
    assert done.status_code == 200
    assert AN in done.text and "chỉ hiện một lần" in done.text
    (temporary,) = _PASSWORD.findall(done.text)
    assert temporary not in admin.get("/console/passwords").text

    # IMAP refuses the temporary password (and the old one) until it is changed.
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    try:
        with pytest.raises(imaplib.IMAP4.error, match=r"đổi mật khẩu|change your password"):
            client.login(AN, temporary)
    finally:
        client.shutdown()
    owner = web(server)
    reply = owner.post("/login", data={"login": AN, "password": temporary})
    assert reply.headers["location"] == "/password"
    changed = owner.post(
        "/password",
        data={
            "csrf": csrf_of(owner, "/password"),
            "current": temporary,
            "new_password": "Mat-khau-moi-2026",
            "confirm": "Mat-khau-moi-2026",
        },
    )
    assert changed.status_code == 303, changed.text
    client = imaplib.IMAP4("127.0.0.1", server.port("imap"), timeout=30)
    assert client.login(AN, "Mat-khau-moi-2026")[0] == "OK"
    client.logout()

    unknown = post(admin, "/console/passwords", {"address": "khongco"})
    assert unknown.status_code == 404 and "khongco" in unknown.text


def test_audit_search_and_csv_export(server: RunningServer, tmp_path: Path) -> None:
    number = _submit_01(server, tmp_path, "Trần Thị Cúc")
    admin = _centre(server)
    assert post(admin, f"/console/requests/{number}/approve").status_code == 200

    page = admin.get("/console/audit", params={"action": "request."}).text
    assert "request.approve" in page and "request.submit" in page
    assert "person.add" not in page
    assert page.index("request.approve") < page.index("request.submit")  # newest first
    by_actor = admin.get("/console/audit", params={"actor": BINH, "target": "ttcuc"}).text
    assert "person.add" in by_actor and "request.submit" not in by_actor
    assert "Không có mục nào" in admin.get("/console/audit", params={"text": "khong-co-dau"}).text
    bad = admin.get("/console/audit", params={"since": "31/12/2025"})
    assert bad.status_code == 400 and "Ngày không hợp lệ" in bad.text

    exported = admin.get("/console/audit.csv", params={"action": "request."})
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    actions = [row[2] for row in rows[1:]]
    assert actions == ["request.submit", "request.approve"]  # oldest first, as a log reads
    assert rows[2][1] == BINH


def test_renaming_an_agency_shows_in_the_audit(server: RunningServer) -> None:
    admin = _centre(server)
    tree = admin.get("/console/directory").text
    assert "Thanh tra tỉnh" in tree and "2 cán bộ" in tree
    done = post(
        admin, "/console/directory/agency/rename", {"agency": "ttr", "name": "Thanh tra Tỉnh ủy"}
    )
    assert done.status_code == 200 and "Đã đổi tên cơ quan" in done.text
    assert "Thanh tra Tỉnh ủy" in done.text
    audit = admin.get("/console/audit", params={"action": "agency."}).text
    assert "agency.rename" in audit and BINH in audit


def test_directory_actions_show_vietnamese_errors(server: RunningServer) -> None:
    admin = _centre(server)
    small = post(admin, "/console/directory/quota", {"mailbox": AN, "megabytes": "1"})
    assert small.status_code == 400 and "tối thiểu" in small.text
    ok = post(admin, "/console/directory/quota", {"mailbox": AN, "megabytes": "2048"})
    assert ok.status_code == 200 and "2048 MB" in ok.text
    busy = post(admin, "/console/directory/agency/dissolve", {"agency": "ttr"})
    assert busy.status_code == 409 and "còn 2 cán bộ" in busy.text
    role = post(
        admin,
        "/console/directory/role",
        {"address": AN, "role": "it_officer", "agency": "ttr", "action": "grant"},
    )
    assert role.status_code == 200 and "Cán bộ chuyên trách CNTT" in role.text
    twice = post(
        admin,
        "/console/directory/role",
        {"address": AN, "role": "it_officer", "agency": "ttr", "action": "grant"},
    )
    assert twice.status_code == 409 and "đã có vai trò này" in twice.text
    moved = post(
        admin,
        "/console/directory/person/update",
        {"person": AN, "position": "Phó Chánh Thanh tra"},
    )
    assert moved.status_code == 200 and "Phó Chánh Thanh tra" in moved.text
    delegated = post(
        admin, "/console/directory/delegation", {"agency": "ttr", "person": AN, "action": "grant"}
    )
    assert delegated.status_code == 200 and "Đã ủy quyền" in delegated.text


def test_director_endorses_a_request_outside_the_scope(server: RunningServer) -> None:
    done = cli(
        server.data_dir,
        "request",
        "submit",
        "--form",
        "01",
        "--new-agency",
        "Cục Thống kê tỉnh",
        "--abbr",
        "ctk",
        "--external",
    )
    assert done.exit_code == 0, done.output
    number = int(done.output.split()[0])
    admin = _centre(server)
    assert cli(server.data_dir, "role", "grant", AN, "director").exit_code == 0
    director = login(server, AN)

    early = post(admin, f"/console/requests/{number}/approve")
    assert early.status_code == 409 and "chờ Giám đốc Sở phê duyệt" in early.text
    assert "Phê duyệt (Điều 5)" not in admin.get(f"/console/requests/{number}").text
    queue = director.get("/console").text
    assert "<strong>1</strong> chờ Giám đốc Sở" in queue
    # The Director sees the R10 pages only, not the rest of the console.
    assert director.get("/console/passwords").status_code == 403
    page = director.get(f"/console/requests/{number}").text
    assert "Phê duyệt (Điều 5)" in page
    endorsed = post(director, f"/console/requests/{number}/endorse", {"note": "Đồng ý."})
    assert endorsed.status_code == 303
    assert "Giám đốc Sở đã phê duyệt" in director.get(f"/console/requests/{number}").text
    approved = post(admin, f"/console/requests/{number}/approve")
    assert approved.status_code == 200 and "ctk@khanhhoa.gov.vn" in approved.text


def test_incidents_move_on_with_a_note(server: RunningServer) -> None:
    reporter = login(server, AN)
    filed = post(
        reporter,
        "/portal/incidents",
        {"subject": "Không gửi được thư", "description": "Outlook báo lỗi 535."},
    )
    assert filed.status_code in (200, 303), filed.text
    admin = _centre(server)
    page = admin.get("/console/incidents").text
    assert "Không gửi được thư" in page and "Mới tiếp nhận" in page
    found = re.search(r'action="/console/incidents/(\d+)"', page)
    assert found is not None
    path = f"/console/incidents/{found.group(1)}"
    assert post(admin, path, {"status": "in_progress", "note": "Đang kiểm tra."}).status_code == 303
    assert (
        post(admin, path, {"status": "resolved", "note": "Đã cấp lại mật khẩu."}).status_code == 303
    )
    resolved = admin.get("/console/incidents?status=resolved").text
    assert "Đã xử lý xong" in resolved and "Đã cấp lại mật khẩu." in resolved
    assert "Không gửi được thư" not in admin.get("/console/incidents?status=open").text
    bad = post(admin, path, {"status": "closed"})
    assert bad.status_code == 400 and "Trạng thái không hợp lệ" in bad.text


def test_policy_page_lists_decisions_and_quarantine(server: RunningServer) -> None:
    admin = _centre(server)
    page = admin.get("/console/policy")
    assert page.status_code == 200
    assert "Thư đang bị giữ lại" in page.text and "Quyết định gần đây" in page.text
    missing = post(admin, "/console/policy/quarantine/999/release")
    assert missing.status_code == 404


def test_console_link_and_nothing_inline(server: RunningServer) -> None:
    assert "Quản trị" not in login(server, AN).get("/").text  # an official has no console
    admin = _centre(server)
    assert 'href="/console">Quản trị</a>' in admin.get("/").text
    for path in ("/console", "/console/directory", "/console/audit", "/console/passwords"):
        text = admin.get(path).text
        assert "<script>" not in text and " style=" not in text, path
    assert PASSWORD  # the province's agreed password is never shown by the console
