"""A request's whole journey in a real browser (Playwright driving Debian's Chromium): the
IT officer of ttr@ files Mẫu 01 by uploading a spreadsheet, a centre administrator
resolves the address collision on the console and approves, and the new official logs in
with the temporary password, changes it and finds the welcome mail; screenshots are
kept as test artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from tests.integration.browser import base_url, browser_page, screenshot_dir
from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, BINH, PASSWORD, RunningServer

__all__ = ["browser_page"]  # the fixture

NEWCOMER = "Trần Thị Cúc"
NEW_PASSWORD = "Chao-mung-2026"


@pytest.fixture
def roles(server: RunningServer) -> RunningServer:
    """nvan@ is ttr's IT officer, ltbinh@ a centre administrator (set up before the
    browser starts: Playwright's sync API holds the thread's event loop)."""
    assert cli(server.data_dir, "role", "grant", AN, "it_officer", "--agency", "ttr").exit_code == 0
    assert cli(server.data_dir, "role", "grant", BINH, "centre_admin").exit_code == 0
    return server


def _spreadsheet(path: Path) -> Path:
    """Mẫu 01 with two people; "Nguyễn Văn An" would get nvan@, which is taken."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"])
    sheet.append([1, "Nguyễn Văn An", "Thanh tra viên", "Phòng Thanh tra 1"])
    sheet.append([2, NEWCOMER, "Chuyên viên", "Văn phòng"])
    book.save(path)
    return path


def _log_in(page: Any, server: RunningServer, login: str, password: str) -> None:
    page.goto(base_url(server) + "/login")
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', password)
    page.get_by_role("button", name="Đăng nhập").click()


def test_file_approve_and_first_login(
    roles: RunningServer, browser_page: Any, tmp_path: Path
) -> None:
    server, officer = roles, browser_page
    url = base_url(server)
    shots = screenshot_dir(tmp_path)
    problems: list[str] = []

    def watch(page: Any) -> None:
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)

    watch(officer)

    # The IT officer files Mẫu 01 from the portal by uploading the spreadsheet.
    _log_in(officer, server, "nvan", PASSWORD)
    officer.wait_for_url(url + "/")
    officer.get_by_role("link", name="Cổng cơ quan").first.click()
    officer.wait_for_url("**/portal**")
    officer.locator('a[href^="/portal/new/01"]').click()
    officer.wait_for_url("**/portal/new/01**")
    officer.fill('input[name="requester_name"]', "Nguyễn Văn An")
    officer.fill('input[name="requester_position"]', "Cán bộ chuyên trách CNTT")
    officer.fill('input[name="requester_phone"]', "0258 3822 123")
    officer.set_input_files('input[name="table"]', str(_spreadsheet(tmp_path / "mau-01.xlsx")))
    officer.screenshot(path=str(shots / "40-mau-01.png"))
    officer.get_by_role("button", name="Gửi yêu cầu").click()
    officer.wait_for_url("**/portal/requests/*")
    number = officer.url.rsplit("/", 1)[-1].split("?")[0]
    assert NEWCOMER in officer.content()
    officer.screenshot(path=str(shots / "41-da-gui.png"))

    # A centre administrator, in another browser context, approves it on the console.
    browser = officer.context.browser
    admin_context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 800})
    admin = admin_context.new_page()
    watch(admin)
    _log_in(admin, server, "ltbinh", PASSWORD)
    admin.wait_for_url(url + "/")
    admin.get_by_role("link", name="Quản trị").click()
    admin.wait_for_url(url + "/console")
    assert admin.locator(f'a[href="/console/requests/{number}"]').first.is_visible()
    admin.screenshot(path=str(shots / "42-hang-doi.png"))
    admin.locator(f'a[href="/console/requests/{number}"]').first.click()
    admin.wait_for_url(f"**/console/requests/{number}")
    admin.get_by_role("link", name="Duyệt", exact=True).click()
    admin.wait_for_url(f"**/console/requests/{number}/approve")
    proposals = admin.locator('input[name="address_1"]')
    assert proposals.count() >= 2
    chosen = proposals.nth(1).get_attribute("value")
    assert chosen and chosen != "nvan"
    proposals.nth(1).check()
    admin.screenshot(path=str(shots / "43-chon-dia-chi.png"))
    admin.get_by_role("button", name="Duyệt và thực hiện").click()
    admin.get_by_text("Mật khẩu tạm thời — chỉ hiện một lần").wait_for()
    address = f"{chosen}@khanhhoa.gov.vn"
    row = admin.locator("table.passwords tr", has_text="ttcuc@khanhhoa.gov.vn")
    temporary = row.locator("code.password").inner_text().strip()
    assert admin.locator("table.passwords tr", has_text=address).count() == 1
    admin.screenshot(path=str(shots / "44-da-duyet.png"))
    admin_context.close()

    # The new official logs in with it, must change it, then reads the welcome mail.
    newcomer_context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 800})
    newcomer = newcomer_context.new_page()
    watch(newcomer)
    _log_in(newcomer, server, "ttcuc@khanhhoa.gov.vn", temporary)
    newcomer.wait_for_url(url + "/password")
    newcomer.fill('input[name="new_password"]', NEW_PASSWORD)
    newcomer.fill('input[name="confirm"]', NEW_PASSWORD)
    newcomer.screenshot(path=str(shots / "45-doi-mat-khau.png"))
    newcomer.get_by_role("button", name="Đổi mật khẩu").click()
    newcomer.wait_for_url(url + "/**")
    newcomer.goto(url + "/")
    welcome = newcomer.get_by_role("link", name="Chào mừng", exact=False).first
    welcome.wait_for()
    newcomer.screenshot(path=str(shots / "46-thu-chao-mung.png"))
    newcomer_context.close()
    assert problems == []
