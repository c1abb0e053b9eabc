"""Officials and their personal mailboxes from the CLI (R2, R5, R7, R8, R9)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from govmail.config import load_config
from govmail.directory.passwords import verify_password
from govmail.store.database import Database
from govmail.store.schema import addresses, audit_log, mailboxes, people
from tests.integration.clihelp import add_official, cli


@pytest.fixture
def province(data_dir: Path) -> Path:
    cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr")
    cli(data_dir, "agency", "add", "--name", "Sở Tài chính")
    return data_dir


def _mailbox_row(data_dir: Path, person_name: str) -> dict[str, object]:
    async def fetch() -> dict[str, object]:
        db = Database(load_config(data_dir).effective_database_url)
        try:
            async with db.read() as conn:
                row = (
                    await conn.execute(
                        select(mailboxes)
                        .join(people, people.c.id == mailboxes.c.person_id)
                        .where(people.c.full_name == person_name)
                    )
                ).one()
                return dict(row._mapping)
        finally:
            await db.dispose()

    return asyncio.run(fetch())


def _count_people(data_dir: Path) -> int:
    """Rows in every table a use case writes: 'nothing written' means none of these grew."""
    return sum(_table_sizes(data_dir).values())


def _table_sizes(data_dir: Path) -> dict[str, int]:
    async def fetch() -> dict[str, int]:
        db = Database(load_config(data_dir).effective_database_url)
        try:
            async with db.read() as conn:
                return {
                    t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
                    for t in (people, mailboxes, addresses, audit_log)
                }
        finally:
            await db.dispose()

    return asyncio.run(fetch())


def test_person_add_uses_regulation_form_and_random_password(province: Path) -> None:
    result = cli(
        province,
        "person",
        "add",
        "--agency",
        "ttr",
        "--name",
        "Lê Đức Phương",
        "--position",
        "Thanh tra viên",
        "--json",
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    assert created["address"] == "ldphuong@khanhhoa.gov.vn"
    password = created["initial_password"]
    assert password and len(password) >= 12
    row = _mailbox_row(province, "Lê Đức Phương")
    assert row["must_change_password"] is True  # R7: changed at first login
    assert verify_password(str(row["password_hash"]), password)
    assert str(row["password_hash"]).startswith("$argon2id$")
    assert row["quota_bytes"] == 100 * 1024 * 1024  # R17


def test_person_add_with_agreed_password_does_not_force_change(province: Path) -> None:
    result = cli(
        province,
        "person",
        "add",
        "--agency",
        "ttr",
        "--name",
        "Nguyễn Thị Minh Khai",
        "--password",
        "Mật khẩu đã thống nhất",
    )
    assert result.exit_code == 0
    assert "ntmkhai@khanhhoa.gov.vn" in result.stdout
    assert "Mật khẩu ban đầu" not in result.stdout
    row = _mailbox_row(province, "Nguyễn Thị Minh Khai")
    assert row["must_change_password"] is False
    assert verify_password(str(row["password_hash"]), "Mật khẩu đã thống nhất")


def test_decomposed_and_upper_case_names_give_the_same_address(province: Path) -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "LÊ  ĐỨC   PHƯƠNG")
    first = cli(province, "person", "add", "--agency", "ttr", "--name", nfd, "--json")
    assert json.loads(first.stdout)["address"] == "ldphuong@khanhhoa.gov.vn"
    again = cli(province, "person", "add", "--agency", "stc", "--name", "Lê Đức Phương")
    assert again.exit_code == 3  # same regulation form: taken


def test_taken_address_exits_3_with_proposals_and_writes_nothing(province: Path) -> None:
    add_official(province, "Nguyễn Văn Nguyên", "ttr")
    before = _count_people(province)
    result = cli(province, "person", "add", "--agency", "ttr", "--name", "Nguyễn Văn Nguyên")
    assert result.exit_code == 3
    proposals = result.stdout.split()
    assert proposals[0] == "nvnguyen_ttr"  # agency suffix first, as in Mẫu 02
    assert "nvnguyen" not in proposals
    assert len(proposals) == len(set(proposals)) >= 3
    assert _count_people(province) == before
    # The first proposal works as an explicit address.
    ok = add_official(province, "Nguyễn Văn Nguyên", "ttr", "--address", proposals[0])
    assert ok.exit_code == 0 and "nvnguyen_ttr@khanhhoa.gov.vn" in ok.stdout


def test_one_word_name_and_bad_address_are_refused(province: Path) -> None:
    before = _table_sizes(province)
    one = cli(province, "person", "add", "--agency", "ttr", "--name", "Phương")
    assert one.exit_code == 1
    assert "hai từ" in one.stderr and "two words" in one.stderr
    bad = cli(
        province,
        "person",
        "add",
        "--agency",
        "ttr",
        "--name",
        "Lê Phương",
        "--address",
        "lê.phương",
    )
    assert bad.exit_code == 1
    reserved = cli(
        province, "person", "add", "--agency", "ttr", "--name", "Lê Phương", "--address", "abuse"
    )
    assert reserved.exit_code == 1
    unknown = cli(province, "person", "add", "--agency", "khongco", "--name", "Lê Phương")
    assert unknown.exit_code == 1
    assert _table_sizes(province) == before


def test_move_keeps_address(province: Path) -> None:
    add_official(province, "Lê Đức Phương", "ttr")
    moved = json.loads(cli(province, "person", "move", "ldphuong", "--to", "stc", "--json").stdout)
    assert moved["address"] == "ldphuong@khanhhoa.gov.vn"
    assert moved["agency_address"] == "stc@khanhhoa.gov.vn"


def test_update_position_department_and_address_keeps_alias(province: Path) -> None:
    add_official(province, "Phạm Đình Lịch", "ttr", "--address", "pdlich_ttr")
    result = cli(
        province,
        "person",
        "update",
        "pdlich_ttr",
        "--position",
        "Chánh Thanh tra",
        "--department",
        "Lãnh đạo",
        "--address",
        "pdlich",
        "--json",
    )
    assert result.exit_code == 0, result.output
    updated = json.loads(result.stdout)
    assert updated["address"] == "pdlich@khanhhoa.gov.vn"
    assert updated["aliases"] == ["pdlich_ttr@khanhhoa.gov.vn"]
    assert (updated["position"], updated["department"]) == ("Chánh Thanh tra", "Lãnh đạo")
    shown = json.loads(cli(province, "person", "show", "pdlich_ttr", "--json").stdout)
    assert shown["address"] == "pdlich@khanhhoa.gov.vn"
    nothing = cli(province, "person", "update", "pdlich")
    assert nothing.exit_code == 1


def test_remove_hides_from_directory_and_keeps_address_taken(province: Path) -> None:
    add_official(province, "Lê Đức Phương", "ttr")
    removed = cli(province, "person", "remove", "ldphuong", "--json")
    assert json.loads(removed.stdout)["mailbox_status"] == "deleted"
    assert json.loads(cli(province, "directory", "search", "phuong", "--json").stdout) == []
    suggestions = cli(province, "address", "suggest", "--name", "Lê Đức Phương").stdout.split()
    assert "ldphuong" not in suggestions
    again = cli(province, "person", "remove", "ldphuong")
    assert again.exit_code == 1


def test_address_suggest_lists_regulation_form_first_when_free(province: Path) -> None:
    free = cli(province, "address", "suggest", "--name", "Nguyễn Thị Minh Khai", "--agency", "ttr")
    assert free.exit_code == 0
    assert free.stdout.split()[0] == "ntmkhai"
    add_official(province, "Nguyễn Thị Minh Khai", "stc")
    taken = cli(
        province,
        "address",
        "suggest",
        "--name",
        "Nguyễn Thị Minh Khai",
        "--agency",
        "ttr",
        "--json",
    )
    proposals = json.loads(taken.stdout)
    assert proposals[0] == "ntmkhai_ttr"
    assert "ntmkhai" not in proposals
    # Stable: the same question gets the same answer.
    assert (
        json.loads(
            cli(
                province,
                "address",
                "suggest",
                "--name",
                "Nguyễn Thị Minh Khai",
                "--agency",
                "ttr",
                "--json",
            ).stdout
        )
        == proposals
    )


def test_reset_password_issues_a_new_one(province: Path) -> None:
    add_official(province, "Lê Đức Phương", "ttr")
    issued = json.loads(cli(province, "mailbox", "reset-password", "ldphuong", "--json").stdout)
    row = _mailbox_row(province, "Lê Đức Phương")
    assert verify_password(str(row["password_hash"]), issued["initial_password"])
    assert not verify_password(str(row["password_hash"]), "12345678")
    assert row["must_change_password"] is True


def test_json_error_is_one_document(province: Path) -> None:
    result = cli(province, "person", "show", "khongco", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "not_found"
    assert error["message_vi"] and error["message_en"]


def test_quota_is_per_mailbox_and_never_below_the_regulation(province: Path) -> None:
    add_official(province, "Lê Đức Phương", "ttr")
    raised = cli(province, "mailbox", "quota", "ldphuong", "--mb", "2048", "--json")
    assert raised.exit_code == 0, raised.output
    assert _mailbox_row(province, "Lê Đức Phương")["quota_bytes"] == 2048 * 1024 * 1024
    too_small = cli(province, "mailbox", "quota", "ldphuong", "--mb", "50")
    assert too_small.exit_code == 1 and "100 MB" in too_small.stderr
    agency_small = cli(province, "mailbox", "quota", "ttr", "--mb", "200")
    assert agency_small.exit_code == 1 and "500 MB" in agency_small.stderr
    assert _mailbox_row(province, "Lê Đức Phương")["quota_bytes"] == 2048 * 1024 * 1024


def test_foreign_domain_long_name_and_empty_password_are_refused(province: Path) -> None:
    before = _table_sizes(province)
    foreign = cli(
        province,
        "person",
        "add",
        "--agency",
        "ttr",
        "--name",
        "Lê Đức Phương",
        "--address",
        "ldphuong@gmail.com",
    )
    assert foreign.exit_code == 1 and "gmail.com" in foreign.stderr
    long_name = "Nguyễn " + "Văn " * 60 + "An"
    too_long = cli(province, "person", "add", "--agency", "ttr", "--name", long_name)
    assert too_long.exit_code == 1 and "200" in too_long.stderr
    empty = cli(
        province, "person", "add", "--agency", "ttr", "--name", "Lê Đức Phương", "--password", ""
    )
    assert empty.exit_code == 1 and "8" in empty.stderr
    assert _table_sizes(province) == before


def test_reserved_regulation_form_gets_proposals(province: Path) -> None:
    # "Ái Bụi Use" folds to "abuse": the form exists but is reserved (RFC 2142).
    result = cli(province, "person", "add", "--agency", "ttr", "--name", "Ái Bụi Use")
    assert result.exit_code == 3
    assert "abuse" not in result.stdout.split() and result.stdout.split()[0] == "abuse_ttr"


def test_password_from_stdin_stays_off_the_command_line(province: Path) -> None:
    from typer.testing import CliRunner

    from govmail.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "person",
            "add",
            "--agency",
            "ttr",
            "--name",
            "Lê Đức Phương",
            "--password-stdin",
            "--data",
            str(province),
        ],
        input="mật khẩu qua stdin\n",
    )
    assert result.exit_code == 0, result.output
    row = _mailbox_row(province, "Lê Đức Phương")
    assert verify_password(str(row["password_hash"]), "mật khẩu qua stdin")
    assert row["must_change_password"] is False


def test_quota_and_password_only_for_active_mailboxes(province: Path) -> None:
    add_official(province, "Lê Đức Phương")
    huge = cli(province, "mailbox", "quota", "ldphuong", "--mb", "99999999999999")
    assert huge.exit_code == 1 and "Traceback" not in huge.output
    issued = json.loads(cli(province, "mailbox", "reset-password", "LDPHUONG", "--json").stdout)
    assert issued["address"] == "ldphuong@khanhhoa.gov.vn"
    cli(province, "person", "remove", "ldphuong")
    assert cli(province, "mailbox", "quota", "ldphuong", "--mb", "200").exit_code == 1
    assert cli(province, "mailbox", "reset-password", "ldphuong").exit_code == 1


def test_remove_and_update_of_one_person_happen_one_after_the_other(province: Path) -> None:
    from govmail.core.errors import Conflict
    from govmail.directory.people import remove_person, update_person

    add_official(province, "Lê Đức Phương")
    cfg = load_config(province)

    async def race() -> list[object]:
        db = Database(cfg.effective_database_url)
        try:
            return list(
                await asyncio.gather(
                    remove_person(db, cfg, "ldphuong"),
                    update_person(db, cfg, "ldphuong", address="phuongle", position="Mới"),
                    return_exceptions=True,
                )
            )
        finally:
            await db.dispose()

    results = asyncio.run(race())
    shown = json.loads(cli(province, "person", "show", "ldphuong", "--json").stdout)
    assert shown["status"] == "removed"
    if not isinstance(results[1], BaseException):
        # The update went first; the removal then removed the updated person.
        assert shown["address"] == "phuongle@khanhhoa.gov.vn"
    else:
        assert isinstance(results[1], Conflict)
        assert shown["address"] == "ldphuong@khanhhoa.gov.vn" and shown["aliases"] == []
