"""Bulk import of an agency's staff list (Mẫu 01 as agencies really send it: a spreadsheet)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import Config
from govmail.core.errors import Conflict, GovmailError, InvalidInput
from govmail.core.naming import (
    propose_personal_addresses,
)
from govmail.core.vietnamese import NameParts
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


@dataclass(frozen=True)
class _Row:
    """A staff-list row that passed validation, waiting for its address."""

    number: int
    parts: NameParts
    full_name: str
    position: str
    department: str
    explicit: str | None  # a valid local part the file asks for, or None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.full_name, self.position, self.department)


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

    Rows that name their address are settled first, so an address the file asks for
    is never handed to another row automatically; a row naming the address its person
    already has is recognised as imported. Then the other rows: the k-th identical one
    (agency, full name, position, department) is already imported if the agency has k
    such people not accounted for by an address. Skipped rows never count as imported,
    so fixing a bad row and running the file again creates exactly that row.
    ``password_hash`` gives every new mailbox that (already hashed) password, usable at
    once; without it mailboxes have none until the centre issues one.
    """
    summary = ImportSummary(agency=agency.address)
    suffixes = agency_suffixes(agency)
    dom = await names.domain_id(conn, cfg)
    taken = await names.taken_local_parts(conn, dom)
    present: Counter[tuple[str, str, str]] = Counter()
    owner_of: dict[str, tuple[str, str, str]] = {}  # local part → key of its person here
    for found in await conn.execute(
        select(people.c.full_name, people.c.position, people.c.department, addresses.c.local_part)
        .join(mailboxes, mailboxes.c.person_id == people.c.id)
        .join(addresses, addresses.c.mailbox_id == mailboxes.c.id)
        .where(people.c.agency_id == agency.id, people.c.status == "active")
    ):
        owner_of[found[3]] = (found[0], found[1], found[2])
    for found in await conn.execute(
        select(people.c.full_name, people.c.position, people.c.department).where(
            people.c.agency_id == agency.id, people.c.status == "active"
        )
    ):
        present[(found[0], found[1], found[2])] += 1

    valid: list[_Row] = []
    for row in rows:
        if progress:
            progress(1)
        if isinstance(row, RowProblem):
            summary.skipped.append(_skip(row.row_number, row.reason_vi, row.reason_en))
            continue
        try:
            parts, full_name = clean_full_name(row.name)
            valid.append(
                _Row(
                    row.row_number,
                    parts,
                    full_name,
                    clean_field(row.position, "Chức vụ", "Position"),
                    clean_field(row.department, "Bộ phận công tác", "Department"),
                    names.requested_local_part(row.address, cfg) if row.address else None,
                )
            )
        except GovmailError as exc:
            summary.skipped.append(_skip(row.row_number, exc.message_vi, exc.message_en))

    chosen: dict[int, tuple[str, bool]] = {}  # row number → (local part, automatic)
    for r in valid:
        if r.explicit is None:
            continue
        if owner_of.get(r.explicit) == r.key:
            summary.already_present.append(r.number)
            present[r.key] -= 1
        elif r.explicit in taken:
            summary.skipped.append(
                _skip(
                    r.number,
                    f"Địa chỉ {names.full_address(r.explicit, cfg)} đã được sử dụng.",
                    f"Address {names.full_address(r.explicit, cfg)} is already taken.",
                )
            )
        else:
            taken.add(r.explicit)
            chosen[r.number] = (r.explicit, False)
    seen: Counter[tuple[str, str, str]] = Counter()
    for r in valid:
        if r.explicit is not None:
            continue
        if seen[r.key] < present[r.key]:
            seen[r.key] += 1
            summary.already_present.append(r.number)
            continue
        try:
            local, automatic = _choose_address(r.full_name, suffixes, taken, cfg, strict)
        except GovmailError as exc:
            summary.skipped.append(_skip(r.number, exc.message_vi, exc.message_en))
            continue
        taken.add(local)
        chosen[r.number] = (local, automatic)

    stamp = audit.now()
    new_people: list[dict[str, object]] = []
    new_locals: list[str] = []
    for r in valid:
        if r.number not in chosen:
            continue
        local, automatic = chosen[r.number]
        record = {"row": r.number, "name": r.full_name, "address": names.full_address(local, cfg)}
        summary.created.append(record)
        if automatic:
            summary.auto_addressed.append(record)
        new_locals.append(local)
        new_people.append(
            {
                "full_name": r.full_name,
                "surname": r.parts.surname,
                "middle_name": r.parts.middle,
                "given_name": r.parts.given,
                "agency_id": agency.id,
                "position": r.position,
                "department": r.department,
                "status": "active",
                "search_text": person_search_text(r.full_name, local, r.position, r.department),
                "created_at": stamp,
            }
        )
    summary.already_present.sort()
    summary.skipped.sort(key=lambda s: int(str(s["row"])))
    if new_people:
        await _insert_all(conn, cfg, dom, new_people, new_locals, password_hash)
    return summary


def _skip(row_number: int, reason_vi: str, reason_en: str) -> dict[str, object]:
    return {"row": row_number, "reason_vi": reason_vi, "reason_en": reason_en}


def _choose_address(
    full_name: str,
    suffixes: list[str],
    taken: set[str],
    cfg: Config,
    strict: bool,
) -> tuple[str, bool]:
    """(local part, whether it was chosen automatically instead of the regulation's form)."""
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
    """People, their mailboxes and addresses, one batch per table."""
    stamp = audit.now()
    person_ids = await _insert_with_ids(conn, people, new_people)
    new_mailboxes: list[dict[str, object]] = [
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
    ]
    mailbox_ids = await _insert_with_ids(conn, mailboxes, new_mailboxes)
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


async def _insert_with_ids(
    conn: AsyncConnection, table: Table, rows: list[dict[str, object]]
) -> list[int]:
    """Insert ``rows`` in one batch and return their ids in the same order.

    PostgreSQL returns them from a batched INSERT … RETURNING. SQLite cannot keep
    that order in a batch (SQLAlchemy then inserts row by row: 20,000 round trips), so
    ids are numbered here; safe because our write transactions hold SQLite's write
    lock from their first statement (BEGIN IMMEDIATE), so nobody else inserts meanwhile.
    """
    if conn.dialect.name != "sqlite":
        result = await conn.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        )
        return list(result.scalars().all())
    first = int(await conn.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    await conn.execute(insert(table), [{**row, "id": i} for row, i in zip(rows, ids, strict=True)])
    return ids
