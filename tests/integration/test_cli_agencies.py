"""Agencies from the CLI (R2, R4, R8, R9), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.clihelp import cli


def test_agency_add_proposes_abbreviation_and_prints_address(data_dir: Path) -> None:
    result = cli(data_dir, "agency", "add", "--name", "Sở Thông tin và Truyền thông")
    assert result.exit_code == 0, result.output
    assert "stttt@khanhhoa.gov.vn" in result.stdout


def test_child_agency_gets_child_underscore_parent(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Ủy ban nhân dân huyện Cam Lâm", "--abbr", "cl")
    result = cli(
        data_dir,
        "agency",
        "add",
        "--name",
        "Phòng Văn hóa và Thông tin",
        "--parent",
        "cl",
        "--json",
    )
    assert result.exit_code == 0, result.output
    agency = json.loads(result.stdout)
    assert agency["address"] == "pvhtt_cl@khanhhoa.gov.vn"
    assert agency["abbr"] == "pvhtt"
    assert agency["parent_address"] == "cl@khanhhoa.gov.vn"


def test_agency_list_shows_the_tree_in_order(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Ủy ban nhân dân xã Cam Hải Đông")
    cli(data_dir, "agency", "add", "--name", "Phòng Kinh tế", "--parent", "chd")
    cli(data_dir, "agency", "add", "--name", "Tổ Một cửa", "--abbr", "tmc", "--parent", "pkt_chd")
    cli(data_dir, "agency", "add", "--name", "Sở Tài chính")
    result = cli(data_dir, "agency", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    # Siblings sorted by name without diacritics ("So ..." before "Uy ban ...").
    assert lines == [
        "stc@khanhhoa.gov.vn  Sở Tài chính",
        "chd@khanhhoa.gov.vn  Ủy ban nhân dân xã Cam Hải Đông",
        "  pkt_chd@khanhhoa.gov.vn  Phòng Kinh tế",
        "    tmc_pkt_chd@khanhhoa.gov.vn  Tổ Một cửa",
    ]
    tree = json.loads(cli(data_dir, "agency", "list", "--json").stdout)
    assert [a["depth"] for a in tree] == [0, 0, 1, 2]


def test_duplicate_agency_address_is_refused_and_nothing_written(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Sở Tài chính")
    result = cli(data_dir, "agency", "add", "--name", "Sở Tư pháp", "--abbr", "stc")
    assert result.exit_code == 3
    assert "stc@khanhhoa.gov.vn" in result.stderr and "đã được sử dụng" in result.stderr
    assert "stc2" in result.stdout.split()
    listed = json.loads(cli(data_dir, "agency", "list", "--json").stdout)
    assert [a["name"] for a in listed] == ["Sở Tài chính"]


def test_unknown_parent_gives_vietnamese_and_english_error(data_dir: Path) -> None:
    result = cli(data_dir, "agency", "add", "--name", "Phòng Kinh tế", "--parent", "khongco")
    assert result.exit_code == 1
    assert "Lỗi: Không có hộp thư khongco@khanhhoa.gov.vn" in result.stderr
    assert "Error: No mailbox khongco@khanhhoa.gov.vn" in result.stderr
    assert json.loads(cli(data_dir, "agency", "list", "--json").stdout) == []


def test_bad_or_reserved_abbreviation_is_refused(data_dir: Path) -> None:
    bad = cli(data_dir, "agency", "add", "--name", "Sở Y tế", "--abbr", "sở y")
    assert bad.exit_code == 1
    reserved = cli(data_dir, "agency", "add", "--name", "Phòng Quản trị", "--address", "postmaster")
    assert reserved.exit_code == 1
    assert "postmaster" in reserved.stderr
    assert json.loads(cli(data_dir, "agency", "list", "--json").stdout) == []


def test_rename_keeps_old_address_as_alias(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Sở Thông tin và Truyền thông")
    result = cli(
        data_dir, "agency", "rename", "stttt", "--name", "Sở Khoa học và Công nghệ", "--json"
    )
    assert result.exit_code == 0, result.output
    renamed = json.loads(result.stdout)
    assert renamed["address"] == "skhcn@khanhhoa.gov.vn"
    assert renamed["aliases"] == ["stttt@khanhhoa.gov.vn"]
    # The old address still names the same agency (mail to it keeps arriving).
    shown = json.loads(cli(data_dir, "agency", "show", "stttt@khanhhoa.gov.vn", "--json").stdout)
    assert shown["name"] == "Sở Khoa học và Công nghệ"
    # And it cannot be taken by anyone else.
    taken = cli(data_dir, "agency", "add", "--name", "Sở Thể thao", "--abbr", "stttt")
    assert taken.exit_code == 3


def test_move_changes_parent_not_address(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Ủy ban nhân dân huyện Cam Lâm", "--abbr", "cl")
    cli(data_dir, "agency", "add", "--name", "Ủy ban nhân dân xã Cam Hải Đông")
    cli(data_dir, "agency", "add", "--name", "Phòng Kinh tế", "--parent", "cl")
    moved = json.loads(
        cli(data_dir, "agency", "move", "pkt_cl", "--parent", "chd", "--json").stdout
    )
    assert moved["address"] == "pkt_cl@khanhhoa.gov.vn"
    assert moved["parent_address"] == "chd@khanhhoa.gov.vn"
    cycle = cli(data_dir, "agency", "move", "chd", "--parent", "pkt_cl")
    assert cycle.exit_code == 1 and "cấp dưới" in cycle.stderr


def test_dissolve_disables_mailbox_and_refuses_while_staffed(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Sở Tài chính")
    cli(
        data_dir,
        "person",
        "add",
        "--agency",
        "stc",
        "--name",
        "Lê Đức Phương",
        "--password",
        "mat-khau-dai",
    )
    refused = cli(data_dir, "agency", "dissolve", "stc")
    assert refused.exit_code == 1 and "1 cán bộ" in refused.stderr
    cli(data_dir, "person", "remove", "ldphuong")
    gone = json.loads(cli(data_dir, "agency", "dissolve", "stc", "--json").stdout)
    assert gone["status"] == "dissolved" and gone["mailbox_status"] == "disabled"
    assert json.loads(cli(data_dir, "agency", "list", "--json").stdout) == []
    assert len(json.loads(cli(data_dir, "agency", "list", "--all", "--json").stdout)) == 1
    # The address stays taken: a new agency cannot receive the old one's mail.
    assert cli(data_dir, "agency", "add", "--name", "Sở Tài chính").exit_code == 3


def test_rename_without_new_abbreviation_keeps_a_chosen_address(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr")
    fixed = cli(data_dir, "agency", "rename", "ttr", "--name", "Thanh tra tỉnh Khánh Hòa", "--json")
    assert fixed.exit_code == 0, fixed.output
    agency = json.loads(fixed.stdout)
    assert agency["address"] == "ttr@khanhhoa.gov.vn" and agency["aliases"] == []
    cli(data_dir, "agency", "add", "--name", "Sở Tài chinh")  # typo, proposed "stc"
    typo = json.loads(
        cli(data_dir, "agency", "rename", "stc", "--name", "Sở Tài chính", "--json").stdout
    )
    assert typo["address"] == "stc@khanhhoa.gov.vn" and typo["name"] == "Sở Tài chính"


def test_nothing_moves_into_or_out_of_a_dissolved_agency(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Ban Quản lý dự án", "--abbr", "bql")
    cli(data_dir, "agency", "add", "--name", "Phòng Kinh tế", "--abbr", "pkt")
    cli(data_dir, "agency", "dissolve", "bql")
    into = cli(data_dir, "agency", "move", "pkt", "--parent", "bql")
    assert into.exit_code == 1 and "giải thể" in into.stderr
    out = cli(data_dir, "agency", "move", "bql", "--parent", "pkt")
    assert out.exit_code == 1
    person = cli(data_dir, "person", "add", "--agency", "bql", "--name", "Lê Phương")
    assert person.exit_code == 1


def test_crossing_moves_never_make_a_cycle(data_dir: Path) -> None:
    import asyncio

    from govmail.config import load_config
    from govmail.core.errors import Conflict
    from govmail.directory.agencies import add_agency, list_agencies, move_agency
    from govmail.store.database import Database

    cfg = load_config(data_dir)

    async def race() -> list[object]:
        db = Database(cfg.effective_database_url)
        try:
            for abbr in ("pa", "pb", "pc"):
                await add_agency(db, cfg, name=f"Phòng {abbr}", abbr=abbr)
            results = await asyncio.gather(
                move_agency(db, cfg, "pa", parent="pb"),
                move_agency(db, cfg, "pb", parent="pc"),
                move_agency(db, cfg, "pc", parent="pa"),
                return_exceptions=True,
            )
            tree = await list_agencies(db, cfg)
            assert len(tree) == 3  # all still reachable from the top: no cycle
            return list(results)
        finally:
            await db.dispose()

    results = asyncio.run(race())
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], Conflict), results


def test_rename_keeps_an_address_the_centre_chose(data_dir: Path) -> None:
    cli(data_dir, "agency", "add", "--name", "Ban Dân tộc", "--address", "bandantoc")
    renamed = json.loads(
        cli(
            data_dir, "agency", "rename", "bandantoc", "--name", "Ban Dân tộc tỉnh", "--json"
        ).stdout
    )
    assert renamed["address"] == "bandantoc@khanhhoa.gov.vn"
    cli(data_dir, "agency", "add", "--name", "Sở Thông tin và Truyền thông")
    followed = json.loads(
        cli(
            data_dir, "agency", "rename", "stttt", "--name", "Sở Khoa học và Công nghệ", "--json"
        ).stdout
    )
    assert followed["address"] == "skhcn@khanhhoa.gov.vn"


def test_control_characters_never_reach_the_directory(data_dir: Path, tmp_path: Path) -> None:
    added = cli(data_dir, "agency", "add", "--name", "Sở A\x01B\u202e", "--abbr", "sab", "--json")
    assert json.loads(added.stdout)["name"] == "Sở A B"
    out = tmp_path / "d.xlsx"
    assert (
        cli(data_dir, "directory", "export", "--format", "xlsx", "--out", str(out)).exit_code == 0
    )
    bad = cli(
        data_dir, "directory", "export", "--format", "csv", "--out", str(tmp_path / "no" / "x.csv")
    )
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert not list((tmp_path).glob("**/.*.partial"))
