"""Merging agencies from the CLI (``govmail agency merge``), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from govmail.config import load_config
from govmail.store.database import Database
from govmail.workflows.roles import Principal, grant_role, list_roles
from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import DOMAIN, db_scalar, mailbox_messages, mx, served


def _roles(data_dir: Path) -> list[tuple[str, str]]:
    """(address, role) of every role held, as the centre's console lists them."""
    cfg = load_config(data_dir)

    async def read() -> list[tuple[str, str]]:
        db = Database(cfg.effective_database_url)
        try:
            return [(g.address, g.role) for g in await list_roles(db, cfg)]
        finally:
            await db.dispose()

    return asyncio.run(read())


def _grant(data_dir: Path, address: str, role: str, agency: str) -> None:
    cfg = load_config(data_dir)

    async def write() -> None:
        db = Database(cfg.effective_database_url)
        try:
            await grant_role(db, cfg, Principal.operator("cli:test"), address, role, agency)
        finally:
            await db.dispose()

    asyncio.run(write())


def _two_departments(data_dir: Path) -> None:
    """Sở Thông tin và Truyền thông (address stt, formerly stttt) with two officials and
    one sub-agency, and Sở Khoa học và Công nghệ (skhcn) with one official."""
    assert cli(data_dir, "agency", "add", "--name", "Sở Thông tin và Truyền thông").exit_code == 0
    renamed = cli(
        data_dir,
        "agency",
        "rename",
        "stttt",
        "--name",
        "Sở Thông tin và Truyền thông",
        "--address",
        "stt",
    )
    assert renamed.exit_code == 0, renamed.output
    assert cli(data_dir, "agency", "add", "--name", "Sở Khoa học và Công nghệ").exit_code == 0
    child = cli(data_dir, "agency", "add", "--name", "Phòng Bưu chính", "--parent", "stt")
    assert child.exit_code == 0, child.output
    assert add_official(data_dir, "Nguyễn Văn An", "stt").exit_code == 0
    assert add_official(data_dir, "Lê Thị Bình", "stt").exit_code == 0
    assert add_official(data_dir, "Trần Văn Cường", "skhcn").exit_code == 0


def test_merge_moves_people_children_and_addresses(data_dir: Path) -> None:
    _two_departments(data_dir)
    result = cli(data_dir, "agency", "merge", "stt", "--into", "skhcn", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "merged": f"stt@{DOMAIN}",
        "into": f"skhcn@{DOMAIN}",
        "people": 2,
        "children": [f"pbc_stt@{DOMAIN}"],
        # Oldest first: the one it kept from the rename, then its current address.
        "aliases": [f"stttt@{DOMAIN}", f"stt@{DOMAIN}"],
    }
    # The officials keep their addresses (R2) and now belong to the target.
    an = json.loads(cli(data_dir, "person", "show", "nvan", "--json").stdout)
    assert an["address"] == f"nvan@{DOMAIN}" and an["agency_address"] == f"skhcn@{DOMAIN}"
    target = json.loads(cli(data_dir, "agency", "show", "skhcn", "--json").stdout)
    assert target["active_people"] == 3
    assert target["aliases"] == [f"stttt@{DOMAIN}", f"stt@{DOMAIN}"]
    assert [(c["address"], c["parent_address"]) for c in target["children"]] == [
        (f"pbc_stt@{DOMAIN}", f"skhcn@{DOMAIN}")
    ]
    # The old addresses now name the target; the merged agency is gone from the tree.
    old = json.loads(cli(data_dir, "agency", "show", "stttt", "--json").stdout)
    assert old["name"] == "Sở Khoa học và Công nghệ"
    listed = json.loads(cli(data_dir, "agency", "list", "--json").stdout)
    assert [a["address"] for a in listed] == [f"skhcn@{DOMAIN}", f"pbc_stt@{DOMAIN}"]
    # Nobody can add someone to the merged agency or take its old addresses.
    assert add_official(data_dir, "Phạm Thị Dung", "stttt").exit_code == 0  # lands in skhcn
    dung = json.loads(cli(data_dir, "person", "show", "ptdung", "--json").stdout)
    assert dung["agency_address"] == f"skhcn@{DOMAIN}"
    assert cli(data_dir, "agency", "add", "--name", "Sở Tài chính", "--abbr", "stt").exit_code == 3


def test_merge_ends_delegations_and_roles_and_is_audited(data_dir: Path) -> None:
    _two_departments(data_dir)
    assert cli(data_dir, "delegation", "grant", "stt", "nvan").exit_code == 0
    _grant(data_dir, f"nvan@{DOMAIN}", "it_officer", "stt")
    _grant(data_dir, f"tvcuong@{DOMAIN}", "agency_head", "skhcn")
    assert cli(data_dir, "agency", "merge", "stt", "--into", "skhcn").exit_code == 0
    assert db_scalar(data_dir, "select count(*) from delegations where revoked_at is null") == 0
    # The source's IT officer is no longer one; the target's head keeps the role.
    assert _roles(data_dir) == [(f"tvcuong@{DOMAIN}", "agency_head")]
    (entry,) = json.loads(
        cli(data_dir, "audit", "list", "--action", "agency.merge", "--json").stdout
    )
    assert entry["target"] == f"stt@{DOMAIN}"
    assert entry["actor"].startswith("cli:") and entry["source"] == "cli"
    details = entry["details"]
    assert details["into"] == f"skhcn@{DOMAIN}" and details["people"] == 2
    assert details["children"] == [f"pbc_stt@{DOMAIN}"]
    assert details["roles"] == [{"address": f"nvan@{DOMAIN}", "role": "it_officer"}]
    assert details["delegations_revoked"] == 1
    assert details["before"]["status"] == "active" and details["after"]["status"] == "dissolved"
    assert details["after"]["target_aliases"] == [f"stttt@{DOMAIN}", f"stt@{DOMAIN}"]


def test_text_output_says_what_moved(data_dir: Path) -> None:
    _two_departments(data_dir)
    result = cli(data_dir, "agency", "merge", "stttt", "--into", "skhcn")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"Đã sáp nhập stt@{DOMAIN} vào skhcn@{DOMAIN}: 2 cán bộ chuyển sang,"
        " 1 cơ quan trực thuộc chuyển sang."
    )
    assert f"Thư gửi stttt@{DOMAIN}, stt@{DOMAIN} nay đến hộp thư skhcn@{DOMAIN}." in (
        result.stdout
    )


def test_mail_to_the_old_agency_address_reaches_the_new_one(province: Path) -> None:
    assert cli(province, "agency", "add", "--name", "Sở Nội vụ").exit_code == 0
    assert cli(province, "agency", "merge", "ttr", "--into", "snv").exit_code == 0
    with served(province) as server, mx(server) as client:
        refused = client.sendmail(
            "dan@example.org", [f"ttr@{DOMAIN}"], b"Subject: Don thu\r\n\r\nKinh gui\r\n"
        )
        assert refused == {}
    ((stored, _raw),) = mailbox_messages(province, f"snv@{DOMAIN}")
    assert stored.subject == "Don thu"


def test_merge_refusals_change_nothing(data_dir: Path) -> None:
    _two_departments(data_dir)
    cli(data_dir, "agency", "add", "--name", "Ban Quản lý dự án", "--abbr", "bql")
    cli(data_dir, "agency", "dissolve", "bql")
    cli(data_dir, "agency", "add", "--name", "Kho bạc Nhà nước", "--abbr", "kbnn", "--external")
    before = cli(data_dir, "agency", "list", "--all", "--json").stdout
    cases = {
        ("stt", "stttt"): "chính nó",  # the same agency under its two addresses
        ("stt", "pbc_stt"): "trực thuộc",  # into its own sub-agency
        ("stt", "bql"): "giải thể",  # into a dissolved agency
        ("bql", "skhcn"): "giải thể",  # a dissolved agency
        ("kbnn", "skhcn"): "phạm vi",  # across the R10 scope
        ("skhcn", "kbnn"): "phạm vi",
        ("stt", "khongco"): "Không có hộp thư",
        ("stt", "nvan"): "không phải cơ quan",
    }
    for (source, into), said in cases.items():
        refused = cli(data_dir, "agency", "merge", source, "--into", into)
        assert refused.exit_code == 1, (source, into, refused.output)
        assert said in refused.stderr and "Error: " in refused.stderr, (source, into)
    assert cli(data_dir, "agency", "list", "--all", "--json").stdout == before
    assert cli(data_dir, "audit", "list", "--action", "agency.merge", "--json").stdout == "[]\n"
