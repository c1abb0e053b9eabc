"""Agencies' requests to the centre from the CLI and through the request desk itself
(R6–R10, R21, R22): filing, the collision screen, approval performed through the
directory's services, refusals by role, races, and the mail that tells everyone."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import openpyxl
import pytest
from sqlalchemy import func, select

from govmail.config import Config, load_config
from govmail.core.errors import Conflict, NotAllowed
from govmail.directory.accounts import Authenticator, AuthStatus
from govmail.store.database import Database
from govmail.store.schema import (
    addresses,
    audit_log,
    delegations,
    folder_messages,
    folders,
    mailboxes,
    people,
    requests,
)
from govmail.workflows.model import RequestRow
from govmail.workflows.roles import Principal, load_principal
from govmail.workflows.service import request_desk
from tests.integration.clihelp import add_official, cli

T = TypeVar("T")
DOMAIN = "khanhhoa.gov.vn"


@pytest.fixture
def province(data_dir: Path) -> Path:
    """Thanh tra tỉnh (ttr) with Nguyễn Văn Nguyên (nvnguyen) and its IT officer Trần Văn
    Bảo (tvbao); Sở Tài chính (stc) with its IT officer Phạm Thị Cúc (ptcuc); an ordinary
    official Lê Văn Dũng (lvdung) of ttr."""
    assert (
        cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr").exit_code == 0
    )
    assert cli(data_dir, "agency", "add", "--name", "Sở Tài chính", "--abbr", "stc").exit_code == 0
    for name, agency in (
        ("Nguyễn Văn Nguyên", "ttr"),
        ("Trần Văn Bảo", "ttr"),
        ("Lê Văn Dũng", "ttr"),
        ("Phạm Thị Cúc", "stc"),
    ):
        assert add_official(data_dir, name, agency).exit_code == 0
    assert cli(data_dir, "role", "grant", "tvbao", "it_officer", "--agency", "ttr").exit_code == 0
    assert cli(data_dir, "role", "grant", "ptcuc", "it_officer", "--agency", "stc").exit_code == 0
    return data_dir


def run(data_dir: Path, work: Callable[[Database, Config], Awaitable[T]]) -> T:
    async def go() -> T:
        cfg = load_config(data_dir)
        db = Database(cfg.effective_database_url)
        try:
            return await work(db, cfg)
        finally:
            await db.dispose()

    return asyncio.run(go())


def principal(data_dir: Path, address: str) -> Principal:
    async def load(db: Database, cfg: Config) -> Principal:
        async with db.read() as conn:
            box = await conn.scalar(
                select(addresses.c.mailbox_id).where(addresses.c.local_part == address)
            )
            return await load_principal(conn, int(box), actor=f"{address}@{DOMAIN}")

    return run(data_dir, load)


def inbox_subjects(data_dir: Path, local: str) -> list[str]:
    async def fetch(db: Database, cfg: Config) -> list[str]:
        from govmail.store.schema import messages

        async with db.read() as conn:
            rows = await conn.execute(
                select(messages.c.subject)
                .join(folder_messages, folder_messages.c.message_id == messages.c.id)
                .join(folders, folders.c.id == folder_messages.c.folder_id)
                .join(addresses, addresses.c.mailbox_id == folders.c.mailbox_id)
                .where(addresses.c.local_part == local, folders.c.name == "INBOX")
                .order_by(folder_messages.c.uid)
            )
            return [str(r[0]) for r in rows]

    return run(data_dir, fetch)


def sizes(data_dir: Path) -> dict[str, int]:
    async def count(db: Database, cfg: Config) -> dict[str, int]:
        async with db.read() as conn:
            return {
                t.name: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
                for t in (people, mailboxes, addresses, folder_messages, audit_log)
            }

    return run(data_dir, count)


def rows_file(tmp_path: Path, rows: list[tuple[str, ...]], *, xlsx: bool = False) -> Path:
    header = ("STT", "Họ và tên", "Chức vụ", "Bộ phận công tác")
    if xlsx:
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(header)
        for i, row in enumerate(rows, 1):
            sheet.append((i, *row))
        path = tmp_path / "mau01.xlsx"
        book.save(path)
        return path
    path = tmp_path / "mau01.csv"
    lines = [",".join(header)] + [",".join((str(i), *r)) for i, r in enumerate(rows, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def submit(data_dir: Path, *args: str) -> dict[str, Any]:
    result = cli(data_dir, "request", "submit", *args, "--json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def test_form_01_collision_stops_approval_until_the_operator_chooses(
    province: Path, tmp_path: Path
) -> None:
    path = rows_file(
        tmp_path,
        [("Nguyễn Văn Nguyên", "Chuyên viên", "Phòng 1"), ("Lê Đức Phương", "Thanh tra viên", "")],
        xlsx=True,
    )
    filed = submit(province, "--agency", "ttr", "--form", "01", "--file", str(path))
    listed = json.loads(cli(province, "request", "list", "--status", "pending", "--json").stdout)
    assert [r["id"] for r in listed] == [filed["id"]]
    assert listed[0]["rows"][1]["name"] == "Lê Đức Phương"

    before = sizes(province)
    refused = cli(province, "request", "approve", str(filed["id"]), "--json")
    assert refused.exit_code == 3
    collisions = json.loads(refused.stdout)["collisions"]
    assert list(collisions) == ["1"]  # nvnguyen is taken; ldphuong is free
    assert collisions["1"][0] == "nvnguyen_ttr"
    assert sizes(province) == before  # nothing written, not even the audit
    text = cli(province, "request", "approve", str(filed["id"]))
    assert text.exit_code == 3 and "1: nvnguyen_ttr" in text.stdout

    done = cli(
        province, "request", "approve", str(filed["id"]), "--address", "1=nvnguyen_ttr", "--json"
    )
    assert done.exit_code == 0, done.output
    approval = json.loads(done.stdout)
    assert approval["created"] == [f"nvnguyen_ttr@{DOMAIN}", f"ldphuong@{DOMAIN}"]
    assert approval["changed"] == []
    assert set(approval["passwords"]) == set(approval["created"])

    # The new official must change the temporary password before IMAP/SMTP take it (R7).
    async def login(db: Database, cfg: Config) -> AuthStatus:
        password = approval["passwords"][f"ldphuong@{DOMAIN}"]
        return (await Authenticator(db, cfg).login("ldphuong", password, "127.0.0.1")).status

    assert run(province, login) == AuthStatus.MUST_CHANGE
    # Welcome mail for each, the passwords for the IT officer, a notice for the agency.
    assert inbox_subjects(province, "ldphuong") == ["Chào mừng đến hệ thống thư điện tử công vụ"]
    assert inbox_subjects(province, "tvbao") == ["[Mật khẩu tạm thời] Thanh tra tỉnh"]
    assert any("Đã thực hiện" in s for s in inbox_subjects(province, "ttr"))

    twice = cli(province, "request", "approve", str(filed["id"]), "--json")
    assert twice.exit_code == 1
    assert json.loads(twice.stdout)["error"]["status"] == "approved"
    shown = json.loads(cli(province, "request", "show", str(filed["id"]), "--json").stdout)
    assert [e["status"] for e in shown["events"]] == ["submitted", "approved"]
    assert "passwords" not in json.dumps(shown["result"]).replace("passwords_issued", "")


def test_r21_late_marking(province: Path, tmp_path: Path) -> None:
    path = rows_file(tmp_path, [("Hoàng Thị Em", "Chuyên viên", "")])
    today = date.today()
    late = submit(
        province,
        "--agency",
        "ttr",
        "--form",
        "01",
        "--file",
        str(path),
        "--decision-date",
        (today - timedelta(days=15)).isoformat(),
    )
    assert late["late"] is True
    on_time = submit(
        province,
        "--agency",
        "stc",
        "--form",
        "01",
        "--file",
        str(path),
        "--decision-date",
        (today - timedelta(days=5)).isoformat(),
    )
    assert on_time["late"] is False
    bad = cli(
        province,
        "request",
        "submit",
        "--agency",
        "stc",
        "--form",
        "01",
        "--file",
        str(path),
        "--decision-date",
        "28/11/2026",
    )
    assert bad.exit_code != 0


def test_malformed_rows_and_duplicates_are_refused(province: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "STT,Họ và tên,Chức vụ,Bộ phận công tác\n1,,Chuyên viên,\n2,Lê Văn Tám,Chuyên viên,\n"
        "3,Lê Văn Tám,Chuyên viên,\n",
        encoding="utf-8",
    )
    before = sizes(province)
    bad = cli(
        province,
        "request",
        "submit",
        "--agency",
        "ttr",
        "--form",
        "01",
        "--file",
        str(path),
        "--json",
    )
    assert bad.exit_code == 1
    problems = json.loads(bad.stdout)["error"]["problems"]
    assert {p["row"] for p in problems} == {2, 4}  # the file's lines: empty name, duplicate
    assert sizes(province) == before

    good = rows_file(tmp_path, [("Lê Văn Tám", "Chuyên viên", "Phòng 2")])
    submit(province, "--agency", "ttr", "--form", "01", "--file", str(good))
    again = cli(
        province,
        "request",
        "submit",
        "--agency",
        "ttr",
        "--form",
        "01",
        "--file",
        str(good),
        "--json",
    )
    assert again.exit_code == 1
    assert json.loads(again.stdout)["error"]["code"] == "conflict"


def test_form_02_changes_keep_the_old_address_and_transfer_in(
    province: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mau02.csv"
    path.write_text(
        "STT,Họ và tên,Địa chỉ hộp thư đã được cấp,Mã,Nội dung mới\n"
        "1,Nguyễn Văn Nguyên,nvnguyen,1,Trưởng phòng\n"
        ",,,2,Phòng Nghiệp vụ 3\n"
        ",,,3,nvnguyen_ttr\n"
        "2,Phạm Thị Cúc,ptcuc,1,Chánh Thanh tra\n",
        encoding="utf-8",
    )
    filed = submit(
        province,
        "--agency",
        "ttr",
        "--form",
        "02",
        "--file",
        str(path),
        "--rename",
        "Thanh tra tỉnh Khánh Hòa",
    )
    done = json.loads(cli(province, "request", "approve", str(filed["id"]), "--json").stdout)
    assert done["changed"][:2] == [f"nvnguyen_ttr@{DOMAIN}", f"ptcuc@{DOMAIN}"]
    person = json.loads(cli(province, "person", "show", "nvnguyen", "--json").stdout)
    assert person["address"] == f"nvnguyen_ttr@{DOMAIN}"
    assert f"nvnguyen@{DOMAIN}" in person["aliases"]  # R8: the old address still delivers
    assert (person["position"], person["department"]) == ("Trưởng phòng", "Phòng Nghiệp vụ 3")
    moved = json.loads(cli(province, "person", "show", "ptcuc", "--json").stdout)
    assert moved["agency_address"] == f"ttr@{DOMAIN}" and moved["address"] == f"ptcuc@{DOMAIN}"
    agency = json.loads(cli(province, "agency", "show", "ttr", "--json").stdout)
    assert "Khánh Hòa" in json.dumps(agency, ensure_ascii=False)


def test_form_03_archives_then_deletes_and_keeps_the_address(
    province: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mau03.csv"
    path.write_text(
        "STT,Họ và tên,Chức vụ,Bộ phận công tác,Địa chỉ hộp thư được cấp\n"
        "1,Lê Văn Dũng,Chuyên viên,,lvdung\n",
        encoding="utf-8",
    )
    filed = submit(province, "--agency", "ttr", "--form", "03", "--file", str(path))
    done = json.loads(cli(province, "request", "approve", str(filed["id"]), "--json").stdout)
    assert done["deleted"] == [f"lvdung@{DOMAIN}"]
    archive = Path(done["archives"][0])
    assert archive.is_file() and archive.parent == province / "archives"
    # The address stays taken: a newcomer with the same name gets another one (R9).
    again = add_official(province, "Lê Văn Dũng", "ttr", "--json")
    assert again.exit_code == 3


def test_reject_tells_the_requester_and_cannot_be_repeated(province: Path, tmp_path: Path) -> None:
    path = rows_file(tmp_path, [("Võ Thị Hoa", "Chuyên viên", "")])
    filed = submit(province, "--agency", "stc", "--form", "01", "--file", str(path))
    assert cli(province, "request", "reject", str(filed["id"])).exit_code != 0  # reason needed
    done = cli(
        province, "request", "reject", str(filed["id"]), "--reason", "Thiếu chữ ký", "--json"
    )
    assert done.exit_code == 0 and json.loads(done.stdout)["status"] == "rejected"
    assert any("Bị từ chối" in s for s in inbox_subjects(province, "stc"))
    again = cli(province, "request", "reject", str(filed["id"]), "--reason", "x")
    assert again.exit_code == 1


def test_r10_agency_outside_the_scope_waits_for_the_director(province: Path) -> None:
    filed = submit(
        province, "--form", "01", "--new-agency", "Cục Thống kê tỉnh", "--abbr", "ctk", "--external"
    )
    assert filed["status"] == "awaiting_director"
    early = cli(province, "request", "approve", str(filed["id"]), "--json")
    assert early.exit_code == 1 and "Giám đốc" in json.loads(early.stdout)["error"]["message_vi"]

    director = principal(province, "nvnguyen")
    assert not director.director

    def endorse_as(who: Principal) -> Any:
        return run(province, lambda db, cfg: request_desk(db, cfg).endorse(who, filed["id"]))

    with pytest.raises(NotAllowed):
        endorse_as(director)
    assert cli(province, "role", "grant", "nvnguyen", "director").exit_code == 0
    endorsed = endorse_as(principal(province, "nvnguyen"))
    assert endorsed.status == "pending" and endorsed.endorsed_by == f"nvnguyen@{DOMAIN}"
    done = json.loads(cli(province, "request", "approve", str(filed["id"]), "--json").stdout)
    assert done["created"] == [f"ctk@{DOMAIN}"]


def test_roles_decide_who_may_file_and_who_may_decide(province: Path) -> None:
    rows = [RequestRow("Đinh Văn Khoa", "Chuyên viên", "")]
    officer = principal(province, "tvbao")
    other = principal(province, "ptcuc")
    official = principal(province, "lvdung")

    def file_as(who: Principal, agency: str) -> Any:
        return run(
            province,
            lambda db, cfg: request_desk(db, cfg).submit(who, form="01", agency=agency, rows=rows),
        )

    with pytest.raises(NotAllowed):
        file_as(official, "ttr")
    with pytest.raises(NotAllowed):
        file_as(other, "ttr")
    filed = file_as(officer, "ttr")
    with pytest.raises(NotAllowed):
        run(province, lambda db, cfg: request_desk(db, cfg).show(other, filed.id))
    with pytest.raises(NotAllowed):
        run(province, lambda db, cfg: request_desk(db, cfg).approve(officer, filed.id))
    seen = run(province, lambda db, cfg: request_desk(db, cfg).list_requests(other))
    assert seen == []
    mine = run(province, lambda db, cfg: request_desk(db, cfg).list_requests(officer))
    assert [r.id for r in mine] == [filed.id]
    # The requester (the officer's own mailbox) was told it was received.
    assert any(f"[Yêu cầu số {filed.id}]" in s for s in inbox_subjects(province, "tvbao"))
    # A delegation is the head's to give (R22), with the signed authorisation.
    with pytest.raises(NotAllowed):
        run(
            province,
            lambda db, cfg: request_desk(db, cfg).submit(
                officer,
                form="delegation",
                agency="ttr",
                payload={"person": "lvdung"},
                document=("uy-quyen.pdf", b"%PDF-1.4 signed"),
            ),
        )


def test_racing_approvals_perform_the_request_once(province: Path, tmp_path: Path) -> None:
    path = rows_file(tmp_path, [("Mai Văn Long", "Chuyên viên", ""), ("Tô Thị Na", "", "")])
    filed = submit(province, "--agency", "ttr", "--form", "01", "--file", str(path))
    operator = Principal.operator("cli:test")

    async def race(db: Database, cfg: Config) -> list[Any]:
        desk = request_desk(db, cfg)
        return await asyncio.gather(
            desk.approve(operator, filed["id"]),
            desk.approve(operator, filed["id"]),
            return_exceptions=True,
        )

    outcomes = run(province, race)
    assert sum(isinstance(o, Conflict) for o in outcomes) == 1
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    people_named = run(
        province,
        lambda db, cfg: _count(db, people.c.full_name.in_(["Mai Văn Long", "Tô Thị Na"])),
    )
    assert people_named == 2


async def _count(db: Database, *where: Any) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(people).where(*where)) or 0)


def test_password_reset_and_delegation_with_document(province: Path, tmp_path: Path) -> None:
    reset = cli(province, "password", "reset", "lvdung", "--json")
    assert reset.exit_code == 0
    issued = json.loads(reset.stdout)
    assert issued["address"] == f"lvdung@{DOMAIN}" and len(issued["password"]) >= 12

    async def login(db: Database, cfg: Config) -> AuthStatus:
        return (await Authenticator(db, cfg).login("lvdung", issued["password"], "::1")).status

    assert run(province, login) == AuthStatus.MUST_CHANGE
    assert "[Mật khẩu tạm thời] Thanh tra tỉnh" in inbox_subjects(province, "tvbao")

    signed = tmp_path / "uy-quyen.pdf"
    signed.write_bytes(b"%PDF-1.4 authorisation")
    granted = cli(province, "delegation", "grant", "ttr", "lvdung", "--document", str(signed))
    assert granted.exit_code == 0

    async def document(db: Database, cfg: Config) -> Any:
        async with db.read() as conn:
            return (await conn.execute(select(delegations.c.document_name))).one()[0]

    assert run(province, document) == "uy-quyen.pdf"
    audit = json.loads(cli(province, "audit", "list", "--json").stdout)
    assert {"at", "actor", "action", "target", "details"} <= set(audit[0])
    actions = [e["action"] for e in audit]
    assert "delegation.grant" in actions and "mailbox.reset_password" in actions
    reset_entry = next(e for e in audit if e["action"] == "mailbox.reset_password")
    assert issued["password"] not in json.dumps(reset_entry)


def test_requests_table_keeps_no_password(province: Path, tmp_path: Path) -> None:
    path = rows_file(tmp_path, [("Quách Văn Sơn", "Chuyên viên", "")])
    filed = submit(province, "--agency", "ttr", "--form", "01", "--file", str(path))
    done = json.loads(cli(province, "request", "approve", str(filed["id"]), "--json").stdout)
    password = done["passwords"][f"qvson@{DOMAIN}"]

    async def stored(db: Database, cfg: Config) -> str:
        async with db.read() as conn:
            row = (await conn.execute(select(requests.c.result))).one()
            entries = (await conn.execute(select(audit_log.c.details))).all()
            return json.dumps([row[0], *[e[0] for e in entries]])

    assert password not in run(province, stored)


def test_a_row_must_name_the_mailbox_owner(province: Path, tmp_path: Path) -> None:
    path = tmp_path / "mau03.csv"
    path.write_text(
        "STT,Họ và tên,Chức vụ,Bộ phận công tác,Địa chỉ hộp thư được cấp\n"
        "1,Phạm Du Lịch,,,nvnguyen\n",
        encoding="utf-8",
    )
    wrong = cli(
        province,
        "request",
        "submit",
        "--agency",
        "ttr",
        "--form",
        "03",
        "--file",
        str(path),
        "--json",
    )
    assert wrong.exit_code == 1
    problem = json.loads(wrong.stdout)["error"]["problems"][0]
    assert "Nguyễn Văn Nguyên" in problem["reason_vi"]


def test_approval_checks_the_rows_again(province: Path, tmp_path: Path) -> None:
    """A person who moved to another agency after the request was filed is no longer the
    filer's to delete, and an officer who moved loses the old agency's role."""
    path = tmp_path / "mau03.csv"
    path.write_text(
        "STT,Họ và tên,Chức vụ,Bộ phận công tác,Địa chỉ hộp thư được cấp\n1,Lê Văn Dũng,,,lvdung\n",
        encoding="utf-8",
    )
    filed = submit(province, "--agency", "ttr", "--form", "03", "--file", str(path))
    assert cli(province, "person", "move", "lvdung", "--to", "stc").exit_code == 0
    refused = cli(province, "request", "approve", str(filed["id"]), "--json")
    assert refused.exit_code == 4  # NotAllowed: not ttr's any more
    person = json.loads(cli(province, "person", "show", "lvdung", "--json").stdout)
    assert person["mailbox_status"] == "active"
    assert not list((province / "archives").glob("lvdung*"))  # its copy did not linger

    assert cli(province, "person", "move", "tvbao", "--to", "stc").exit_code == 0
    roles = json.loads(cli(province, "role", "list", "--json").stdout)
    assert not any(r["address"].startswith("tvbao@") for r in roles)


def test_transfer_in_is_marked_and_a_privileged_password_is_never_mailed(
    province: Path, tmp_path: Path
) -> None:
    assert cli(province, "role", "grant", "ptcuc", "centre_admin").exit_code == 0
    path = tmp_path / "mau02.csv"
    path.write_text(
        "STT,Họ và tên,Địa chỉ hộp thư đã được cấp,Mã,Nội dung mới\n"
        "1,Phạm Thị Cúc,ptcuc,1,Thanh tra viên\n",
        encoding="utf-8",
    )
    filed = submit(province, "--agency", "ttr", "--form", "02", "--file", str(path))
    shown = json.loads(cli(province, "request", "show", str(filed["id"]), "--json").stdout)
    assert shown["rows"][0]["transfer_from"] == f"stc@{DOMAIN}"
    assert cli(province, "request", "approve", str(filed["id"])).exit_code == 0
    assert any("chuyển sang Thanh tra tỉnh" in s for s in inbox_subjects(province, "stc"))

    # ptcuc now works at ttr and holds a role: her reset goes to the operator only.
    before = inbox_subjects(province, "tvbao")
    assert cli(province, "password", "reset", "ptcuc").exit_code == 0
    assert inbox_subjects(province, "tvbao") == before
