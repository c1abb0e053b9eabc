"""The directory page (Danh bạ) against a real ``govmail serve``: the agency tree with each
agency's address, an agency's officials with position and department a page at a time,
and search without diacritics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from govmail.config import load_config
from govmail.directory.agencies import find_agency_id
from govmail.directory.browse import agency_page
from govmail.store.database import Database
from tests.integration.browser import closing_clients, login, post
from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import AN, DOMAIN, RunningServer, served

__all__ = ["closing_clients"]  # the fixture, used by every test here
pytestmark = pytest.mark.usefixtures("closing_clients")

STTTT = f"stttt@{DOMAIN}"
TTCNTT = f"ttcntt@{DOMAIN}"


@pytest.fixture
def province(data_dir: Path) -> Path:
    """Two top agencies (Thanh tra tỉnh, Sở Thông tin và Truyền thông) and a centre under
    the Sở, with officials whose names, positions and departments carry diacritics."""

    def ok(*args: str) -> None:
        result = cli(data_dir, *args)
        assert result.exit_code == 0, result.output

    ok("agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr")
    ok("agency", "add", "--name", "Sở Thông tin và Truyền thông", "--abbr", "stttt")
    ok(
        "agency",
        "add",
        "--name",
        "Trung tâm Công nghệ thông tin và Truyền thông",
        "--abbr",
        "ttcntt",
        "--parent",
        STTTT,
        "--address",
        "ttcntt",
    )
    for name, agency, position, department in (
        ("Nguyễn Văn An", "ttr", "Chánh Thanh tra", "Văn phòng"),
        ("Lê Thị Bình", "stttt", "Chuyên viên", "Phòng Bưu chính, Viễn thông"),
        ("Đặng Thị Dung", "stttt", "Trưởng phòng", "Phòng Công nghệ thông tin"),
        ("Trần Đức Cường", "stttt", "Phó Giám đốc", "Ban Giám đốc"),
    ):
        result = add_official(
            data_dir, name, agency, "--position", position, "--department", department
        )
        assert result.exit_code == 0, result.output
    return data_dir


@pytest.fixture
def server(province: Path) -> Iterator[RunningServer]:
    with served(province) as running:
        yield running


def _agency_link(page: str, name: str) -> str:
    found = re.search(rf'href="(/directory/agency/\d+)">{re.escape(name)}</a>', page)
    assert found is not None, name
    return found.group(1)


def test_directory_shows_the_agency_tree_and_its_people(server: RunningServer) -> None:
    client = login(server, AN)
    assert 'href="/directory"' in client.get("/").text
    tree = client.get("/directory")
    assert tree.status_code == 200
    page = tree.text
    for name, address in (
        ("Thanh tra tỉnh", f"ttr@{DOMAIN}"),
        ("Sở Thông tin và Truyền thông", STTTT),
        ("Trung tâm Công nghệ thông tin và Truyền thông", TTCNTT),
    ):
        assert name in page and address in page
    # The centre is nested inside the Sở's list item, not beside it.
    so = page.index("Sở Thông tin và Truyền thông")
    centre = page.index("Trung tâm Công nghệ thông tin")
    assert so < centre and "<ul>" in page[so:centre]

    agency = client.get(_agency_link(page, "Sở Thông tin và Truyền thông")).text
    assert STTTT in agency and "3 cán bộ" in agency
    assert "Trung tâm Công nghệ thông tin và Truyền thông" in agency  # its sub-agency
    for name, position, department in (
        ("Lê Thị Bình", "Chuyên viên", "Phòng Bưu chính, Viễn thông"),
        ("Đặng Thị Dung", "Trưởng phòng", "Phòng Công nghệ thông tin"),
        ("Trần Đức Cường", "Phó Giám đốc", "Ban Giám đốc"),
    ):
        row = re.search(rf"<tr><td>{name}</td>.*?</tr>", agency)
        assert row is not None, name
        assert position in row.group(0) and department in row.group(0)
    assert "Nguyễn Văn An" not in agency  # he works at the Thanh tra
    assert "Trang 1 / 1" in agency
    assert client.get("/directory/agency/999999").status_code == 404


def test_directory_search_needs_no_diacritics(server: RunningServer) -> None:
    client = login(server, AN)
    found = client.get("/directory", params={"q": "nguyen van an"}).text
    assert "Nguyễn Văn An" in found and AN in found and "Chánh Thanh tra" in found
    assert "Lê Thị Bình" not in found
    by_abbreviation = client.get("/directory", params={"q": "stttt"}).text
    assert "Sở Thông tin và Truyền thông" in by_abbreviation and STTTT in by_abbreviation
    by_department = client.get("/directory", params={"q": "cong nghe thong tin"}).text
    assert "Đặng Thị Dung" in by_department
    assert "Trung tâm Công nghệ thông tin và Truyền thông" in by_department
    nothing = client.get("/directory", params={"q": "khong co ai ten nay"}).text
    assert "Không tìm thấy ai" in nothing


def test_directory_is_read_only_and_for_signed_in_officials(server: RunningServer) -> None:
    visitor = login(server, AN)
    assert post(visitor, "/directory", {"q": "x"}).status_code == 405
    visitor.cookies.clear()
    anonymous = visitor.get("/directory", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"


def test_a_large_agency_is_shown_a_page_at_a_time(province: Path) -> None:
    cfg = load_config(province)

    async def pages() -> list[list[str]]:
        db = Database(cfg.effective_database_url)
        try:
            async with db.read() as conn:
                so = await find_agency_id(conn, cfg, "stttt")
            first = await agency_page(db, cfg, so, page=1, per_page=2)
            second = await agency_page(db, cfg, so, page=2, per_page=2)
            beyond = await agency_page(db, cfg, so, page=9, per_page=2)
            assert first is not None and second is not None and beyond is not None
            assert first.agency.address == STTTT
            assert (first.total, first.pages, second.page, beyond.page) == (3, 2, 2, 2)
            return [[p.full_name for p in first.people], [p.full_name for p in second.people]]
        finally:
            await db.dispose()

    # Folded name order: "Đặng" sorts as "dang", before "le" and "tran".
    assert asyncio.run(pages()) == [["Đặng Thị Dung", "Lê Thị Bình"], ["Trần Đức Cường"]]
