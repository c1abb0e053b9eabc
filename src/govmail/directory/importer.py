"""Bulk import of an agency's staff list (Mẫu 01 as agencies really send it: a spreadsheet)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import Conflict, GovmailError, InvalidInput
from govmail.core.naming import (
    propose_personal_addresses,
)
from govmail.directory import addresses as names
from govmail.directory.model import Agency, ImportSummary
from govmail.directory.people import (
    active_agency,
    agency_suffixes,
    clean_field,
    clean_full_name,
    person_search_text,
    regulation_local_part,
)
from govmail.directory.spreadsheet import RowProblem, StaffRow, read_staff_list
from govmail.store import audit
from govmail.store.database import Database, is_unique_violation
from govmail.store.schema import addresses, mailboxes, people


async def import_officials(
    db: Database,
    cfg: Config,
    path: Path,
    *,
    agency: str,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    actor: str = "cli",
) -> ImportSummary:
    """Create a personal mailbox for every good row of the staff list at ``path``.

    A row whose regulation address is taken gets the first free proposal (listed in
    ``auto_addressed``) or, with ``strict``, is skipped. Rows already in the directory
    (same agency, full name, position and department) are recognised, so a re-run
    changes nothing. Bad rows are skipped with their row number and reason. Everything
    is written in one transaction: a crash leaves the directory as it was. Mailboxes
    get no password: the centre issues them (``govmail mailbox reset-password``, R7).
    ``progress`` is called with the number of rows handled since its last call.
    """
    rows: list[StaffRow | RowProblem] = list(read_staff_list(path))
    try:
        async with db.write() as conn:
            owner = await active_agency(conn, cfg, agency)
            summary = await import_rows(conn, cfg, owner, rows, strict=strict, progress=progress)
            await audit.record(
                conn,
                actor,
                "import.officials",
                summary.agency,
                file=path.name,
                created=[r["address"] for r in summary.created],
                auto_addressed=len(summary.auto_addressed),
                already_present=len(summary.already_present),
                skipped=len(summary.skipped),
            )
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # Another writer took one of the chosen addresses meanwhile; nothing was written.
        raise Conflict(
            "Một địa chỉ vừa được cấp bởi thao tác khác trong lúc nhập; không có gì được ghi."
            " Hãy chạy lại lệnh nhập.",
            "An address was taken by another operation during the import; nothing was"
            " written. Run the import again.",
        ) from None
    if len(summary.created) >= 1000:
        await db.refresh_statistics()
    return summary


async def import_rows(
    conn: AsyncConnection,
    cfg: Config,
    agency: Agency,
    rows: Iterable[StaffRow | RowProblem],
    *,
    strict: bool = False,
    progress: Callable[[int], None] | None = None,
    password_hash: str | None = None,
) -> ImportSummary:
    """The import itself, inside the caller's transaction (also used for the demo province).

    ``password_hash`` gives every new mailbox that (already hashed) password, usable
    at once; without it mailboxes have none until the centre issues one.
    """
    summary = ImportSummary()
    suffixes = agency_suffixes(agency)
    summary.agency = agency.address
    stamp = audit.now()
    dom = await names.domain_id(conn, cfg)
    taken = await names.taken_local_parts(conn, dom)
    present = Counter(
        tuple(r)
        for r in await conn.execute(
            select(people.c.full_name, people.c.position, people.c.department).where(
                people.c.agency_id == agency.id, people.c.status == "active"
            )
        )
    )
    seen: Counter[tuple[str, str, str]] = Counter()
    new_people: list[dict[str, object]] = []
    new_locals: list[str] = []
    for row in rows:
        if progress:
            progress(1)
        if isinstance(row, RowProblem):
            summary.skipped.append(_skip(row.row_number, row.reason_vi, row.reason_en))
            continue
        try:
            parts, full_name = clean_full_name(row.name)
            position = clean_field(row.position, "Chức vụ", "Position")
            department = clean_field(row.department, "Bộ phận công tác", "Department")
            key = (full_name, position, department)
            seen[key] += 1
            # The k-th identical row is already imported if the agency has k such people.
            if seen[key] <= present[key]:
                summary.already_present.append(row.row_number)
                continue
            local, chosen = _choose_address(row, full_name, suffixes, taken, cfg, strict)
        except GovmailError as exc:
            summary.skipped.append(_skip(row.row_number, exc.message_vi, exc.message_en))
            continue
        taken.add(local)
        address = names.full_address(local, cfg)
        record = {"row": row.row_number, "name": full_name, "address": address}
        summary.created.append(record)
        if chosen:
            summary.auto_addressed.append(record)
        new_locals.append(local)
        new_people.append(
            {
                "full_name": full_name,
                "surname": parts.surname,
                "middle_name": parts.middle,
                "given_name": parts.given,
                "agency_id": agency.id,
                "position": position,
                "department": department,
                "status": "active",
                "search_text": person_search_text(full_name, local, position, department),
                "created_at": stamp,
            }
        )
    if new_people:
        await _insert_all(conn, cfg, dom, new_people, new_locals, password_hash)
    return summary


def _skip(row_number: int, reason_vi: str, reason_en: str) -> dict[str, object]:
    return {"row": row_number, "reason_vi": reason_vi, "reason_en": reason_en}


def _choose_address(
    row: StaffRow,
    full_name: str,
    suffixes: list[str],
    taken: set[str],
    cfg: Config,
    strict: bool,
) -> tuple[str, bool]:
    """(local part, whether it was chosen automatically instead of the regulation's form)."""
    if row.address:
        local = names.requested_local_part(row.address, cfg)
        if local in taken:
            raise InvalidInput(
                f"Địa chỉ {names.full_address(local, cfg)} đã được sử dụng.",
                f"Address {names.full_address(local, cfg)} is already taken.",
            )
        return local, False
    local = regulation_local_part(full_name)
    if local not in taken:
        return local, False
    if strict:
        raise InvalidInput(
            f"Địa chỉ {names.full_address(local, cfg)} đã được sử dụng (--strict: bỏ qua).",
            f"Address {names.full_address(local, cfg)} is taken (--strict: skipped).",
        )
    proposals = propose_personal_addresses(
        full_name, suffixes, taken.__contains__, limit=1, reserved=cfg.reserved_local_parts
    )
    return proposals[0], True


async def _insert_all(
    conn: AsyncConnection,
    cfg: Config,
    dom: int,
    new_people: list[dict[str, object]],
    new_locals: Iterable[str],
    password_hash: str | None,
) -> None:
    stamp = audit.now()
    person_ids = (
        (
            await conn.execute(
                insert(people).returning(people.c.id, sort_by_parameter_order=True), new_people
            )
        )
        .scalars()
        .all()
    )
    mailbox_ids = (
        (
            await conn.execute(
                insert(mailboxes).returning(mailboxes.c.id, sort_by_parameter_order=True),
                [
                    {
                        "kind": "personal",
                        "person_id": pid,
                        "status": "active",
                        "quota_bytes": cfg.personal_quota_bytes,
                        "password_hash": password_hash,
                        "must_change_password": password_hash is None,
                        "created_at": stamp,
                    }
                    for pid in person_ids
                ],
            )
        )
        .scalars()
        .all()
    )
    await conn.execute(
        insert(addresses),
        [
            {
                "domain_id": dom,
                "local_part": local,
                "mailbox_id": box,
                "kind": "primary",
                "created_at": stamp,
            }
            for box, local in zip(mailbox_ids, new_locals, strict=True)
        ],
    )
