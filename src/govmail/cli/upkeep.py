"""Directory upkeep and the audit log at the command line: ``agency merge``, ``audit list``
and ``audit export``.

app.py registers these at its very end, after the names imported below exist:

    from govmail.cli.upkeep import agency_merge, audit_app  # noqa: E402
    agency_app.command("merge")(agency_merge)
    app.add_typer(audit_app, name="audit")
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from govmail.cli.app import (
    DEFAULT_DATA,
    AsJson,
    DataDir,
    _emit,
    _fail,
    _os_actor,
    _run,
    _since,
)
from govmail.config import Config
from govmail.core.errors import InvalidInput
from govmail.directory.agencies import merge_agency
from govmail.directory.export import CSV_ENCODING
from govmail.store.audit import EXPORT_FORMATS, AuditEntry, export_audit, list_audit
from govmail.store.database import Database

audit_app = typer.Typer(
    help="Nhật ký quản trị: ai làm gì, khi nào, từ đâu (the append-only audit log).",
    no_args_is_help=True,
)

Since = Annotated[
    str | None, typer.Option(help="Only entries from this time on (YYYY-MM-DD[THH:MM]).")
]
Until = Annotated[
    str | None,
    typer.Option(help="Only entries before this time; a bare date includes that whole day."),
]
Actor = Annotated[str | None, typer.Option(help="Only this actor (exact, e.g. cli:root).")]
Action = Annotated[
    str | None, typer.Option(help='Only actions starting with this ("person." finds person.add).')
]
Target = Annotated[str | None, typer.Option(help="Only targets containing this text.")]
Text = Annotated[
    str | None, typer.Option("--text", help="Only entries whose actor, action or target has it.")
]


# --- agency merge -----------------------------------------------------------------------


def agency_merge(
    source: Annotated[str, typer.Argument(help="The address of the agency that is merged.")],
    into: Annotated[str, typer.Option("--into", help="The address of the agency it joins.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Sáp nhập cơ quan vào cơ quan khác: cán bộ, cơ quan trực thuộc và địa chỉ chuyển sang
    (merge an agency into another: people, sub-agencies and addresses move)."""
    who = _os_actor()
    merged = _run(
        data,
        as_json,
        lambda db, cfg: merge_agency(db, cfg, source, into, actor=who, source="cli"),
    )
    lines = [
        f"Đã sáp nhập {merged['merged']} vào {merged['into']}:"
        f" {merged['people']} cán bộ chuyển sang, {len(merged['children'])} cơ quan trực thuộc"
        " chuyển sang.",
        f"  Thư gửi {', '.join(merged['aliases'])} nay đến hộp thư {merged['into']}.",
    ]
    lines.extend(f"  └ {child}" for child in merged["children"])
    _emit(as_json, merged, "\n".join(lines))


# --- audit log ----------------------------------------------------------------------------


def _until(value: str | None) -> datetime | None:
    """The end of a period, exclusive: a bare date means the end of that day."""
    parsed = _since(value)
    if parsed is None or value is None or "T" in value or " " in value.strip():
        return parsed
    return parsed + timedelta(days=1)


def _entry_line(entry: AuditEntry) -> str:
    line = (
        f"{entry.at.astimezone():%Y-%m-%d %H:%M:%S}  {entry.actor}  {entry.action}  {entry.target}"
    )
    if entry.source:
        line += f"  [{entry.source}]"
    if entry.details:
        line += "  " + json.dumps(entry.details, ensure_ascii=False, default=str)
    return line


@audit_app.command("list")
def audit_list(
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    text: Text = None,
    limit: Annotated[int, typer.Option(min=1, max=100000)] = 100,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Các mục nhật ký quản trị, mới nhất trước (audit log entries, newest first)."""
    start, end = _since(since), _until(until)
    found = _run(
        data,
        as_json,
        lambda db, cfg: list_audit(
            db,
            since=start,
            until=end,
            actor=actor,
            action=action,
            target=target,
            text=text,
            limit=limit,
        ),
    )
    text_out = "\n".join(_entry_line(e) for e in found)
    _emit(as_json, [e.as_dict() for e in found], text_out or "(không có mục nào)")


@audit_app.command("export")
def audit_export(
    format_: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    out_file: Annotated[Path | None, typer.Option("--out", help="File (default stdout).")] = None,
    since: Since = None,
    until: Until = None,
    actor: Actor = None,
    action: Action = None,
    target: Target = None,
    text: Text = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xuất nhật ký quản trị ra CSV hoặc JSON Lines, cũ nhất trước (export the audit log)."""
    if format_ not in EXPORT_FORMATS:
        raise _fail(
            InvalidInput(
                f"Định dạng không hỗ trợ: {format_} (chọn csv hoặc jsonl).",
                f"Unsupported format: {format_} (choose csv or jsonl).",
            ),
            as_json,
        )
    filters: dict[str, Any] = {
        "since": _since(since),
        "until": _until(until),
        "actor": actor,
        "action": action,
        "target": target,
        "text": text,
    }
    if out_file is None:
        _run(data, as_json, lambda db, cfg: export_audit(db, sys.stdout, fmt=format_, **filters))
        return

    async def to_file(db: Database, cfg: Config) -> int:
        # Written beside the target and renamed: a failed export leaves no half a file.
        partial = out_file.with_name(f".{out_file.name}.partial")
        encoding = CSV_ENCODING if format_ == "csv" else "utf-8"
        try:
            with partial.open("w", encoding=encoding, newline="") as fh:
                count = await export_audit(db, fh, fmt=format_, **filters)
            partial.replace(out_file)
        finally:
            partial.unlink(missing_ok=True)
        return count

    count = _run(data, as_json, to_file)
    _emit(
        as_json,
        {"file": str(out_file), "format": format_, "entries": count},
        f"Đã xuất {count} mục nhật ký ra {out_file}.",
    )
