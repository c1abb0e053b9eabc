"""Creating a data directory (``govmail init``): config, TLS, schema, reserved names, demo."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from govmail.config import CONFIG_FILE, Config, config_from_text, render_config
from govmail.core.errors import Conflict, InvalidInput
from govmail.core.naming import validate_local_part
from govmail.core.sample import demo_province
from govmail.delivery.dkim import ensure_keys
from govmail.directory import addresses as names
from govmail.directory.agencies import create_agency
from govmail.directory.importer import import_rows
from govmail.directory.model import Agency
from govmail.directory.passwords import hash_password
from govmail.directory.spreadsheet import StaffRow
from govmail.ops.tls import write_self_signed
from govmail.store import audit
from govmail.store.database import Database
from govmail.store.schema import addresses, agencies, domains, roles

# Public on purpose: the demo province is for trying govmail out, never for real mail.
DEMO_PASSWORD = "Demo@1480"


# The demo's first officials get the portal's and the console's roles, so every page
# can be tried: the centre's administrator, an agency IT officer, the Director (R10).
DEMO_ROLES = (
    ("centre_admin", "Quản trị Trung tâm CNTT&TT"),
    ("it_officer", "Cán bộ chuyên trách CNTT của cơ quan"),
    ("director", "Giám đốc Sở TT&TT"),
)


@dataclass
class InitResult:
    data_dir: str
    domain: str
    database: str
    tls_cert: str
    demo_agencies: int = 0
    demo_people: int = 0
    demo_accounts: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _valid_domain(domain: str) -> str:
    domain = domain.strip().lower().rstrip(".")
    labels = domain.split(".")
    if (
        len(labels) < 2
        or len(domain) > 253
        or not all(
            label
            and len(label) <= 63
            and label.replace("-", "").isalnum()
            and label.isascii()
            and not label.startswith("-")
            and not label.endswith("-")
            for label in labels
        )
    ):
        raise InvalidInput(
            f"Tên miền không hợp lệ: '{domain}'.", f"Invalid domain name: '{domain}'."
        )
    return domain


async def prepare_database(db: Database, cfg: Config) -> None:
    """Migrate, then make sure the domains, reserved names and DKIM keys exist (idempotent):
    an alias domain added to the config later gets its key at the next start."""
    await db.migrate()
    await asyncio.to_thread(ensure_keys, cfg)
    async with db.write() as conn:
        # Several nodes may start at once on one PostgreSQL database.
        await db.serialize(conn, "govmail.prepare")
        stamp = audit.now()
        known = {r[0] for r in await conn.execute(select(domains.c.name))}
        if cfg.domain not in known:
            await conn.execute(insert(domains).values(name=cfg.domain, created_at=stamp))
        dom = await names.domain_id(conn, cfg)
        for alias in cfg.alias_domains:
            if alias not in known:
                await conn.execute(
                    insert(domains).values(name=alias, alias_of=dom, created_at=stamp)
                )
        taken = await names.taken_local_parts(conn, dom)
        for local in sorted(cfg.reserved_local_parts - taken):
            await names.claim(conn, dom, validate_local_part(local, frozenset()), None, "reserved")


async def init_data_dir(data_dir: Path, *, domain: str, demo: bool) -> InitResult:
    """Create a new data directory; refuses one that already has a configuration.

    The configuration is written last, atomically: an init that fails half-way (an
    unreachable database, say) leaves no govmail.toml behind and can simply be run
    again. Everything is created readable by the owner only (password hashes, keys).
    """
    domain = _valid_domain(domain)
    if (data_dir / CONFIG_FILE).exists():
        raise Conflict(
            f"{data_dir} đã được khởi tạo (có {CONFIG_FILE}); không ghi đè.",
            f"{data_dir} is already initialised ({CONFIG_FILE} exists); not overwriting.",
        )
    # The demo's centre sits in the Department of Information and Communications.
    text = render_config(domain, postmaster="stttt" if demo else "")
    cfg = config_from_text(data_dir, text)
    if cfg.tls_cert is None or cfg.tls_key is None:  # render_config always sets both
        raise InvalidInput("Cấu hình mẫu thiếu [tls].", "The config template lacks [tls].")
    old_umask = os.umask(0o077)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "blobs").mkdir(exist_ok=True)
        await asyncio.to_thread(
            write_self_signed, cfg.tls_cert, cfg.tls_key, [cfg.hostname, domain, "localhost"]
        )
        db = Database(cfg.effective_database_url)
        try:
            await prepare_database(db, cfg)
            result = InitResult(
                data_dir=str(data_dir),
                domain=domain,
                database=db.url.render_as_string(hide_password=True),
                tls_cert=str(cfg.tls_cert),
            )
            if demo:
                await load_demo(db, cfg, result)
                # serve prints these on start, as make run promises.
                (data_dir / "demo-accounts.json").write_text(
                    json.dumps(result.demo_accounts, ensure_ascii=False, indent=2),
                    encoding="utf-8",
                )
        finally:
            await db.dispose()
        partial = data_dir / f".{CONFIG_FILE}.tmp"
        partial.write_text(text, encoding="utf-8")
        partial.replace(data_dir / CONFIG_FILE)
    finally:
        os.umask(old_umask)
    return result


async def load_demo(db: Database, cfg: Config, result: InitResult) -> None:
    """Load the generated sample province in one transaction; every demo account has
    DEMO_PASSWORD (hashed once: the password is public anyway)."""
    password_hash = await asyncio.to_thread(hash_password, DEMO_PASSWORD)
    async with db.write() as conn:
        if await conn.scalar(select(func.count()).select_from(agencies)):
            raise Conflict(
                "Cơ sở dữ liệu đã có cơ quan; tỉnh mẫu chỉ được nạp vào cơ sở dữ liệu trống.",
                "The database already holds agencies; the demo province loads only into"
                " an empty one.",
            )
        staff: list[tuple[Agency, list[dict[str, object]]]] = []
        for sample in demo_province():
            # Top-level agencies' addresses are their abbreviations, so the parent's
            # abbreviation names it.
            agency = await create_agency(
                conn,
                cfg,
                name=sample.name,
                abbr=sample.abbr,
                parent=sample.parent_abbr,
                external=False,
                address=None,
                actor="demo",
            )
            rows = [
                StaffRow(i + 1, o.full_name, o.position, o.department, None)
                for i, o in enumerate(sample.officials)
            ]
            summary = await import_rows(conn, cfg, agency, rows, password_hash=password_hash)
            result.demo_agencies += 1
            result.demo_people += len(summary.created)
            staff.append((agency, summary.created))
        # The Department of Information and Communications hosts the centre and its
        # Director; the first other agency with staff gets an IT officer.
        home = next(
            (a for a in staff if "Thông tin và Truyền thông" in a[0].name and len(a[1]) > 1),
            next(a for a in staff if len(a[1]) > 1),
        )
        other = next(a for a in staff if a[0].id != home[0].id and a[1])
        for (agency, created), index, (role, label) in zip(
            (home, other, home), (1, 0, 0), DEMO_ROLES, strict=True
        ):
            person = created[index]
            await _grant_demo_role(conn, str(person["address"]), role, agency.id)
            result.demo_accounts.append(
                {
                    "address": str(person["address"]),
                    "name": str(person["name"]),
                    "agency": agency.name,
                    "password": DEMO_PASSWORD,
                    "role": label,
                }
            )


async def _grant_demo_role(conn: AsyncConnection, address: str, role: str, agency_id: int) -> None:
    box = await conn.scalar(
        select(addresses.c.mailbox_id).where(addresses.c.local_part == address.split("@")[0])
    )
    scoped = agency_id if role in ("it_officer", "agency_head") else None
    await conn.execute(
        insert(roles).values(
            mailbox_id=box,
            role=role,
            agency_id=scoped,
            scope=scoped or 0,
            granted_by="demo",
            granted_at=audit.now(),
        )
    )
    await audit.record(conn, "demo", "role.grant", address, role=role)
