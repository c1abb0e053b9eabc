"""The audit log: searching it (``govmail audit list``), exporting it (``audit export``)
and its append-only guarantee, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from govmail.config import load_config
from govmail.directory.agencies import add_agency
from govmail.store import audit
from govmail.store.database import Database
from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import DOMAIN, db_execute, db_scalar

KEYS = {"at", "actor", "action", "target", "details", "source"}


def _record(data_dir: Path, entries: list[tuple[str, str, str]], **details: object) -> None:
    """Write (actor, action, target) entries as a service does, in one transaction."""
    cfg = load_config(data_dir)

    async def write() -> None:
        db = Database(cfg.effective_database_url)
        try:
            async with db.write() as conn:
                for actor, action, target in entries:
                    await audit.record(conn, actor, action, target, source="10.0.0.7", **details)
        finally:
            await db.dispose()

    asyncio.run(write())


def _as(data_dir: Path, actor: str, name: str, abbr: str) -> None:
    """Add an agency as ``actor`` (a web or API user would be recorded so)."""
    cfg = load_config(data_dir)

    async def write() -> None:
        db = Database(cfg.effective_database_url)
        try:
            await add_agency(db, cfg, name=name, abbr=abbr, actor=actor)
        finally:
            await db.dispose()

    asyncio.run(write())


@pytest.fixture
def busy(data_dir: Path) -> Path:
    """A few administrative actions: agency.add ×2, person.add ×2, person.move."""
    assert (
        cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr").exit_code == 0
    )
    _as(data_dir, f"admin@{DOMAIN}", "Sở Tài chính", "stc")
    assert add_official(data_dir, "Nguyễn Văn An").exit_code == 0
    assert add_official(data_dir, "Lê Thị Bình").exit_code == 0
    assert cli(data_dir, "person", "move", "nvan", "--to", "stc").exit_code == 0
    return data_dir


def _listed(data_dir: Path, *args: str) -> list[dict[str, object]]:
    result = cli(data_dir, "audit", "list", *args, "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def test_list_is_newest_first_with_the_agreed_shape(busy: Path) -> None:
    entries = _listed(busy)
    assert [e["action"] for e in entries] == [
        "person.move",
        "person.add",
        "person.add",
        "agency.add",
        "agency.add",
    ]
    assert all(set(e) == KEYS for e in entries)
    moved = entries[0]
    assert moved["target"] == f"nvan@{DOMAIN}"
    assert isinstance(moved["details"], dict) and moved["details"]["to"] == f"stc@{DOMAIN}"
    assert str(moved["at"]).endswith("+00:00")
    text = cli(busy, "audit", "list", "--limit", "2").stdout.splitlines()
    assert len(text) == 2
    assert f"  person.move  nvan@{DOMAIN}  {{" in text[0] and f'"stc@{DOMAIN}"' in text[0]


def test_list_filters(busy: Path) -> None:
    people = _listed(busy, "--action", "person.")
    assert [e["action"] for e in people] == ["person.move", "person.add", "person.add"]
    assert [e["action"] for e in _listed(busy, "--action", "person.add")] == ["person.add"] * 2
    assert _listed(busy, "--action", "person_") == []  # '_' is no wildcard
    assert [e["target"] for e in _listed(busy, "--target", "STC")] == [f"stc@{DOMAIN}"]
    by_admin = _listed(busy, "--actor", f"admin@{DOMAIN}")
    assert [(e["action"], e["target"]) for e in by_admin] == [("agency.add", f"stc@{DOMAIN}")]
    assert _listed(busy, "--actor", "admin") == []  # the actor is matched exactly
    assert len(_listed(busy, "--text", "admin@")) == 1  # … but --text is a substring
    assert len(_listed(busy, "--text", "nvan")) == 2  # person.add and person.move
    assert len(_listed(busy, "--action", "person.", "--target", "ltbinh")) == 1
    assert len(_listed(busy, "--limit", "3")) == 3


def test_list_by_period(busy: Path) -> None:
    today = date.today()
    assert len(_listed(busy, "--since", today.isoformat())) == 5
    # A bare --until date includes that whole day.
    assert len(_listed(busy, "--until", today.isoformat())) == 5
    assert _listed(busy, "--since", (today + timedelta(days=1)).isoformat()) == []
    assert _listed(busy, "--until", (today - timedelta(days=1)).isoformat()) == []
    bad = cli(busy, "audit", "list", "--since", "hôm qua")
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_nothing_found_says_so(data_dir: Path) -> None:
    result = cli(data_dir, "audit", "list", "--action", "agency.")
    assert result.exit_code == 0 and result.stdout == "(không có mục nào)\n"


def test_export_csv_has_a_header_and_formula_safe_cells(busy: Path, tmp_path: Path) -> None:
    _record(busy, [('=HYPERLINK("http://x")', "mailbox.quota", "@SUM(1)")], note="-1")
    result = cli(busy, "audit", "export", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["at", "actor", "action", "target", "source", "details"]
    assert len(rows) == 1 + 6
    # Oldest first, as a log reads.
    assert [r[2] for r in rows[1:]] == [
        "agency.add",
        "agency.add",
        "person.add",
        "person.add",
        "person.move",
        "mailbox.quota",
    ]
    last = rows[-1]
    assert last[1] == '\'=HYPERLINK("http://x")' and last[3] == "'@SUM(1)"
    assert last[4] == "10.0.0.7" and json.loads(last[5]) == {"note": "-1"}
    # To a file: UTF-8 with the BOM Excel needs, and a summary on stdout.
    out = tmp_path / "nhat-ky.csv"
    saved = cli(busy, "audit", "export", "--format", "csv", "--out", str(out), "--json")
    assert json.loads(saved.stdout) == {"file": str(out), "format": "csv", "entries": 6}
    assert out.read_bytes().startswith(b"\xef\xbb\xbfat,actor,action")
    assert not list(tmp_path.glob(".*.partial"))


def test_export_jsonl_matches_list_and_takes_filters(busy: Path, tmp_path: Path) -> None:
    result = cli(busy, "audit", "export", "--format", "jsonl", "--action", "person.")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert list(reversed(lines)) == _listed(busy, "--action", "person.")
    bad = cli(busy, "audit", "export", "--format", "xml")
    assert bad.exit_code == 1 and "csv hoặc jsonl" in bad.stderr
    nowhere = cli(busy, "audit", "export", "--out", str(tmp_path / "no" / "x.csv"))
    assert nowhere.exit_code == 1 and "Traceback" not in nowhere.output


def test_export_streams_every_entry_across_pages(data_dir: Path) -> None:
    count = audit.EXPORT_PAGE * 2 + 500
    _record(data_dir, [("cli:test", "mailbox.quota", f"hop{n}@{DOMAIN}") for n in range(count)])
    result = cli(data_dir, "audit", "export", "--format", "jsonl")
    assert result.exit_code == 0, result.output
    targets = [json.loads(line)["target"] for line in result.stdout.splitlines()]
    # Entries written in one transaction share nearly the same time: the pages must
    # still follow each other without losing or repeating one.
    assert targets == [f"hop{n}@{DOMAIN}" for n in range(count)]


def test_the_database_refuses_to_change_or_delete_entries(busy: Path) -> None:
    for sql in ("update audit_log set actor = 'someone else'", "delete from audit_log"):
        with pytest.raises(DBAPIError) as refused:
            db_execute(busy, sql)
        assert "append-only" in str(refused.value)
    assert db_scalar(busy, "select count(*) from audit_log") == 5
    assert db_scalar(busy, "select count(*) from audit_log where actor = 'someone else'") == 0
    if "postgresql" in load_config(busy).effective_database_url:
        with pytest.raises(DBAPIError, match="append-only"):
            db_execute(busy, "truncate audit_log")
        assert db_scalar(busy, "select count(*) from audit_log") == 5
