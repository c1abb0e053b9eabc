"""Shared fixtures: a fresh data directory on each storage backend (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN_DSN = os.environ.get("GOVMAIL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_unavailable_reason() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL at {PG_ADMIN_DSN} is unreachable: {exc}"
    return None


_PG_REASON: list[str | None] = []


def require_postgres() -> None:
    """Skip (locally) or fail (CI=true) when PostgreSQL cannot be reached."""
    if not _PG_REASON:
        _PG_REASON.append(_pg_unavailable_reason())
    reason = _PG_REASON[0]
    if reason:
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
        pytest.skip(reason)


@pytest.fixture
def pg_database_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    require_postgres()
    name = f"govmail_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test once per storage backend; sets GOVMAIL_DATABASE_URL for PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_database_url")
        monkeypatch.setenv("GOVMAIL_DATABASE_URL", url)
    else:
        monkeypatch.delenv("GOVMAIL_DATABASE_URL", raising=False)
    yield request.param


@pytest.fixture(scope="session")
def quiet_dns() -> Iterator[str]:
    """A loopback DNS server that knows no names: test installations ask it instead of
    the Internet's (SPF, DMARC, MX lookups), so no test depends on outside DNS."""
    from tests.integration.dnsserver import dns_server

    with dns_server() as (_zone, where):
        yield where


@pytest.fixture
def data_dir(tmp_path: Path, backend: str, quiet_dns: str) -> Path:
    """An initialised data directory (no demo data) on the backend under test, whose
    DNS is ``quiet_dns``."""
    from govmail.ops.setup import init_data_dir
    from tests.integration.mailserver import set_option

    path = tmp_path / "data"
    asyncio.run(init_data_dir(path, domain="khanhhoa.gov.vn", demo=False))
    set_option(path, "nameservers", [quiet_dns], section="dns")
    # The subject rule (R13) answers most test mail ("Subject: x") with a warning notice
    # in the sender's INBOX; tests of other things keep their mailboxes to themselves.
    # tests/integration/test_policy.py turns it back on.
    set_option(path, "subject", "off", section="policy.submission")
    return path
