"""Who a local address reaches: the mailbox behind an address of our domains."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from govmail.config import Config
from govmail.store.database import Database
from govmail.store.schema import addresses, domains, mailboxes


@dataclass(frozen=True)
class LocalRecipient:
    """A mailbox a local address reaches, with what RCPT needs to decide."""

    mailbox_id: int
    status: str  # active | disabled | deleted
    quota_bytes: int
    used_bytes: int


def is_local_domain(cfg: Config, domain: str) -> bool:
    domain = domain.lower().rstrip(".")
    return domain == cfg.domain or domain in cfg.alias_domains


# Role addresses every mail domain must accept, delivered to [mail] postmaster.
ROLE_ADDRESSES = frozenset({"postmaster", "abuse"})


async def find_local_recipient(db: Database, cfg: Config, local_part: str) -> LocalRecipient | None:
    """The mailbox that ``local_part`` (at our domain or an alias domain) names, whatever
    its status; None when no mailbox has that address (other reserved names included).
    postmaster and abuse reach the configured postmaster mailbox."""
    found = await _by_local_part(db, cfg, local_part.lower())
    if found is None and local_part.lower() in ROLE_ADDRESSES and cfg.postmaster:
        found = await _by_local_part(db, cfg, cfg.postmaster.partition("@")[0])
    return found


_BY_LOCAL_PART = (
    select(mailboxes.c.id, mailboxes.c.status, mailboxes.c.quota_bytes, mailboxes.c.used_bytes)
    .select_from(addresses)
    .join(mailboxes, mailboxes.c.id == addresses.c.mailbox_id)
    .join(domains, domains.c.id == addresses.c.domain_id)
    .where(domains.c.name == bindparam("domain"), addresses.c.local_part == bindparam("local"))
)


async def _by_local_part(db: Database, cfg: Config, local_part: str) -> LocalRecipient | None:
    params = {"domain": cfg.domain, "local": local_part}

    def lookup(conn: Connection) -> LocalRecipient | None:
        row = conn.execute(_BY_LOCAL_PART, params).first()
        return None if row is None else LocalRecipient(*row)

    return await db.run(lookup, write=False)
