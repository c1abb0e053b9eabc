"""The ``govmail`` command line: thin commands over the service functions.

Exit codes: 0 success; 1 a domain error (message in Vietnamese and English on stderr);
2 wrong usage; 3 the wanted address is taken (free proposals on stdout, one per line);
4 an import finished but skipped rows (listed with their row numbers).
Every command takes ``--data DIR`` (default $GOVMAIL_DATA, else ./data) and ``--json``.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from asyncpg import PostgresError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from govmail.config import Config, load_config
from govmail.core.errors import AddressTaken, GovmailError, InvalidInput
from govmail.directory import agencies, mailboxes, people
from govmail.directory.export import (
    CSV_ENCODING,
    DirectoryEntry,
    write_csv,
    write_vcf,
    write_xlsx,
)
from govmail.directory.importer import import_officials
from govmail.directory.search import directory_entries, search_directory
from govmail.ops.setup import init_data_dir
from govmail.store.database import Database, DatabaseUnavailable

T = TypeVar("T")

DataDir = Annotated[
    Path,
    typer.Option("--data", envvar="GOVMAIL_DATA", help="Data directory.", show_default=True),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of standard input (not visible in ps).",
    ),
]
DEFAULT_DATA: Path = Path("data")

app = typer.Typer(
    help="govmail — hệ thống thư điện tử công vụ (official e-mail platform).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
agency_app = typer.Typer(help="Cơ quan và hộp thư cơ quan (agencies).", no_args_is_help=True)
person_app = typer.Typer(help="Cán bộ và hộp thư cá nhân (officials).", no_args_is_help=True)
address_app = typer.Typer(help="Địa chỉ hộp thư (addresses).", no_args_is_help=True)
directory_app = typer.Typer(help="Danh bạ (the directory).", no_args_is_help=True)
import_app = typer.Typer(help="Nhập dữ liệu (imports).", no_args_is_help=True)
queue_app = typer.Typer(help="Hàng đợi thư đi (the outbound queue).", no_args_is_help=True)
delegation_app = typer.Typer(
    help="Ủy quyền hộp thư cơ quan (agency mailbox delegation, R22).", no_args_is_help=True
)
mailbox_app = typer.Typer(help="Hộp thư (mailboxes).", no_args_is_help=True)
app.add_typer(mailbox_app, name="mailbox")
app.add_typer(agency_app, name="agency")
app.add_typer(person_app, name="person")
app.add_typer(address_app, name="address")
app.add_typer(directory_app, name="directory")
app.add_typer(import_app, name="import")
app.add_typer(queue_app, name="queue")
app.add_typer(delegation_app, name="delegation")
dns_app = typer.Typer(help="Bản ghi DNS cần công bố (DNS records).", no_args_is_help=True)
app.add_typer(dns_app, name="dns")
policy_app = typer.Typer(
    help="Quy định gửi thư: nhật ký và thư bị giữ (the sending policy, R11–R18).",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def main() -> None:
    app()


def _fail(exc: GovmailError, as_json: bool) -> typer.Exit:
    if as_json:
        print(json.dumps({"error": exc.as_dict()}, ensure_ascii=False, indent=2))
    else:
        err.print(f"Lỗi: {exc.message_vi}", markup=False)
        err.print(f"Error: {exc.message_en}", markup=False)
        if isinstance(exc, AddressTaken):
            for proposal in exc.proposals:
                print(proposal)
    return typer.Exit(exc.exit_code)


def _run(data: Path, as_json: bool, action: Callable[[Database, Config], Awaitable[T]]) -> T:
    """Run one use case against the data directory; domain errors become exit codes."""

    async def go() -> T:
        cfg = load_config(data)
        db = Database(cfg.effective_database_url)
        try:
            await db.require_current_schema()
            return await action(db, cfg)
        finally:
            await db.dispose()

    return _guarded(as_json, go)


def _guarded(as_json: bool, go: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return _translated(as_json, lambda: asyncio.run(go()))


def _translated(as_json: bool, work: Callable[[], T]) -> T:
    """Run ``work``; domain errors, an unreachable database and file-system errors
    become a bilingual message and an exit code, never a traceback."""
    try:
        return work()
    except GovmailError as exc:
        raise _fail(exc, as_json) from None
    except (ArgumentError, NoSuchModuleError) as exc:
        raise _fail(
            InvalidInput(
                f"Địa chỉ cơ sở dữ liệu không hợp lệ: {exc}", f"Invalid database URL: {exc}"
            ),
            as_json,
        ) from None
    except (ConnectionError, TimeoutError, socket.gaierror, DBAPIError, PostgresError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _fail(DatabaseUnavailable(reason), as_json) from None
    except OSError as exc:
        where = exc.filename or ""
        raise _fail(
            GovmailError(
                f"Lỗi tệp/thư mục {where}: {exc.strerror or exc}",
                f"File system error at {where}: {exc.strerror or exc}",
            ),
            as_json,
        ) from None


def _password(given: str | None, from_stdin: bool, as_json: bool) -> str | None:
    """--password or --password-stdin (one line); None means "generate one"."""
    if not from_stdin:
        return given
    if given is not None:
        raise _fail(
            InvalidInput(
                "Chỉ dùng một trong --password và --password-stdin.",
                "Use either --password or --password-stdin, not both.",
            ),
            as_json,
        )
    return sys.stdin.readline().rstrip("\r\n")


def _emit(as_json: bool, payload: Any, text: str) -> None:
    if as_json:
        print(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        out.print(text, markup=False)


# --- init and serve ---------------------------------------------------------------


@app.command()
def init(
    domain: Annotated[str, typer.Option(help="The province's mail domain.")] = "khanhhoa.gov.vn",
    demo: Annotated[bool, typer.Option("--demo", help="Load a generated sample province.")] = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Tạo thư mục dữ liệu mới: cấu hình, cơ sở dữ liệu, chứng thư TLS (create a data directory)."""
    result = _guarded(as_json, lambda: init_data_dir(data, domain=domain, demo=demo))
    lines = [
        f"Đã khởi tạo {result.data_dir} cho tên miền {result.domain}.",
        f"  Cơ sở dữ liệu: {result.database}",
        f"  Chứng thư TLS tự ký: {result.tls_cert}",
    ]
    if demo:
        lines.append(f"  Tỉnh mẫu: {result.demo_agencies} cơ quan, {result.demo_people} cán bộ.")
        lines.extend(
            f"  Tài khoản mẫu: {a['address']} / {a['password']} ({a['name']}, {a['agency']}"
            + (f"; {a['role']})" if a.get("role") else ")")
            for a in result.demo_accounts
        )
    _emit(as_json, result.as_dict(), "\n".join(lines))


@app.command()
def serve(
    web: Annotated[
        str | None, typer.Option(help="HOST:PORT for the web app (default from config).")
    ] = None,
    smtp: Annotated[
        str | None, typer.Option(help="HOST:PORT for the MX (production: 0.0.0.0:25).")
    ] = None,
    submission: Annotated[
        str | None,
        typer.Option(help="HOST:PORT for submission with STARTTLS (production: 0.0.0.0:587)."),
    ] = None,
    submissions: Annotated[
        str | None,
        typer.Option(help="HOST:PORT for submission over TLS (production: 0.0.0.0:465)."),
    ] = None,
    imap: Annotated[
        str | None, typer.Option(help="HOST:PORT for IMAP with STARTTLS (production: 0.0.0.0:143).")
    ] = None,
    imaps: Annotated[
        str | None, typer.Option(help="HOST:PORT for IMAP over TLS (production: 0.0.0.0:993).")
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Chạy mọi dịch vụ trong một tiến trình (serve every protocol and the web)."""
    from govmail.serve import run_server

    listen = {
        "web": web,
        "smtp": smtp,
        "submission": submission,
        "submissions": submissions,
        "imap": imap,
        "imaps": imaps,
    }
    _translated(as_json, lambda: run_server(load_config(data), listen=listen, as_json=as_json))


# --- agencies ---------------------------------------------------------------------


def _agency_text(a: Any) -> str:
    parent = f", trực thuộc {a.parent_address}" if a.parent_address else ""
    state = "" if a.status == "active" else " [đã giải thể]"
    aliases = f" (địa chỉ cũ: {', '.join(a.aliases)})" if a.aliases else ""
    return f"{a.address}  {a.name}{parent}{state}{aliases}"


@agency_app.command("add")
def agency_add(
    name: Annotated[str, typer.Option(help='Full name, e.g. "Sở Thông tin và Truyền thông".')],
    abbr: Annotated[str | None, typer.Option(help="Abbreviation (proposed from the name).")] = None,
    parent: Annotated[str | None, typer.Option(help="Parent agency's address.")] = None,
    external: Annotated[bool, typer.Option("--external", help="Outside the scope (R10).")] = False,
    address: Annotated[str | None, typer.Option(help="Exact address local part.")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Tạo cơ quan và hộp thư cơ quan (create an agency and its mailbox)."""
    created = _run(
        data,
        as_json,
        lambda db, cfg: agencies.add_agency(
            db, cfg, name=name, abbr=abbr, parent=parent, external=external, address=address
        ),
    )
    _emit(
        as_json, created.as_dict(), f"Đã tạo hộp thư cơ quan: {created.address}  ({created.name})"
    )


@agency_app.command("list")
def agency_list(
    all_: Annotated[bool, typer.Option("--all", help="Include dissolved agencies.")] = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Cây cơ quan (the agency tree)."""
    tree = _run(
        data, as_json, lambda db, cfg: agencies.list_agencies(db, cfg, include_dissolved=all_)
    )
    text = "\n".join(
        f"{'  ' * a.depth}{a.address}  {a.name}{'' if a.status == 'active' else ' [đã giải thể]'}"
        for a in tree
    )
    _emit(as_json, [a.as_dict() for a in tree], text or "(chưa có cơ quan nào)")


@agency_app.command("show")
def agency_show(
    agency: Annotated[str, typer.Argument(help="The agency's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thông tin một cơ quan (one agency)."""
    detail = _run(data, as_json, lambda db, cfg: agencies.show_agency(db, cfg, agency))
    lines = [
        _agency_text(detail.agency),
        f"  Viết tắt: {detail.agency.abbr}; hộp thư: {detail.agency.mailbox_status};"
        f" cán bộ đang hoạt động: {detail.active_people}",
    ]
    lines.extend(f"  └ {_agency_text(c)}" for c in detail.children)
    _emit(as_json, detail.as_dict(), "\n".join(lines))


@agency_app.command("rename")
def agency_rename(
    agency: Annotated[str, typer.Argument(help="The agency's address.")],
    name: Annotated[str, typer.Option(help="The new full name.")],
    abbr: Annotated[str | None, typer.Option(help="New abbreviation (proposed).")] = None,
    address: Annotated[str | None, typer.Option(help="Exact new address local part.")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Đổi tên cơ quan; địa chỉ cũ được giữ làm bí danh (rename; old address kept as alias)."""
    renamed = _run(
        data,
        as_json,
        lambda db, cfg: agencies.rename_agency(
            db, cfg, agency, name=name, abbr=abbr, address=address
        ),
    )
    _emit(as_json, renamed.as_dict(), f"Đã đổi tên: {_agency_text(renamed)}")


@agency_app.command("move")
def agency_move(
    agency: Annotated[str, typer.Argument(help="The agency's address.")],
    parent: Annotated[
        str | None,
        typer.Option("--parent", "--to", help="New parent's address; omit for top level."),
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Chuyển cơ quan sang cơ quan cấp trên khác (move under another parent)."""
    moved = _run(
        data, as_json, lambda db, cfg: agencies.move_agency(db, cfg, agency, parent=parent)
    )
    _emit(as_json, moved.as_dict(), f"Đã chuyển: {_agency_text(moved)}")


@agency_app.command("dissolve")
def agency_dissolve(
    agency: Annotated[str, typer.Argument(help="The agency's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Giải thể cơ quan; hộp thư cơ quan bị khóa (dissolve; the mailbox is disabled, R9)."""
    gone = _run(data, as_json, lambda db, cfg: agencies.dissolve_agency(db, cfg, agency))
    _emit(as_json, gone.as_dict(), f"Đã giải thể {gone.name}; hộp thư {gone.address} đã bị khóa.")


# --- people -----------------------------------------------------------------------


def _person_text(p: Any) -> str:
    state = "" if p.status == "active" else " [đã xóa]"
    extra = ", ".join(x for x in (p.position, p.department) if x)
    aliases = f" (địa chỉ cũ: {', '.join(p.aliases)})" if p.aliases else ""
    extra = f" — {extra}" if extra else ""
    return f"{p.address}  {p.full_name}{extra}, {p.agency_name}{state}{aliases}"


@person_app.command("add")
def person_add(
    agency: Annotated[str, typer.Option(help="The agency's address.")],
    name: Annotated[str, typer.Option(help='Full name, e.g. "Lê Đức Phương".')],
    position: Annotated[str, typer.Option(help="Chức vụ.")] = "",
    department: Annotated[str, typer.Option(help="Bộ phận công tác.")] = "",
    address: Annotated[str | None, typer.Option(help="Exact address local part.")] = None,
    password: Annotated[
        str | None, typer.Option(help="Password agreed with the user (else a random one).")
    ] = None,
    password_stdin: PasswordStdin = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Tạo cán bộ và hộp thư cá nhân (create an official and their mailbox, R5)."""
    agreed = _password(password, password_stdin, as_json)
    created = _run(
        data,
        as_json,
        lambda db, cfg: people.add_person(
            db,
            cfg,
            agency=agency,
            name=name,
            position=position,
            department=department,
            address=address,
            password=agreed,
        ),
    )
    text = f"Đã tạo hộp thư cá nhân: {created.person.address}  ({created.person.full_name})"
    if created.initial_password:
        text += (
            f"\nMật khẩu ban đầu (chỉ hiện một lần, phải đổi khi đăng nhập lần đầu):"
            f" {created.initial_password}"
        )
    _emit(as_json, created.as_dict(), text)


@person_app.command("show")
def person_show(
    address: Annotated[str, typer.Argument(help="The person's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thông tin một cán bộ (one official)."""
    found = _run(data, as_json, lambda db, cfg: people.show_person(db, cfg, address))
    _emit(as_json, found.as_dict(), _person_text(found))


@person_app.command("move")
def person_move(
    address: Annotated[str, typer.Argument(help="The person's address.")],
    to: Annotated[str, typer.Option("--to", help="The new agency's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Chuyển công tác; địa chỉ giữ nguyên (move to another agency; address unchanged, R2)."""
    moved = _run(data, as_json, lambda db, cfg: people.move_person(db, cfg, address, to=to))
    _emit(as_json, moved.as_dict(), f"Đã chuyển: {_person_text(moved)}")


@person_app.command("update")
def person_update(
    address: Annotated[str, typer.Argument(help="The person's address.")],
    position: Annotated[str | None, typer.Option(help="New position (change code 1).")] = None,
    department: Annotated[str | None, typer.Option(help="New department (code 2).")] = None,
    new_address: Annotated[
        str | None, typer.Option("--address", help="New address (code 3); old kept as alias.")
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thay đổi thông tin theo Mẫu 02 (change position, department or address, R8)."""
    updated = _run(
        data,
        as_json,
        lambda db, cfg: people.update_person(
            db, cfg, address, position=position, department=department, address=new_address
        ),
    )
    _emit(as_json, updated.as_dict(), f"Đã cập nhật: {_person_text(updated)}")


@person_app.command("remove")
def person_remove(
    address: Annotated[str, typer.Argument(help="The person's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xóa hộp thư cá nhân theo Mẫu 03 (remove an official's mailbox, R9)."""
    removed = _run(data, as_json, lambda db, cfg: people.remove_person(db, cfg, address))
    _emit(as_json, removed.as_dict(), f"Đã xóa hộp thư {removed.address} ({removed.full_name}).")


@mailbox_app.command("reset-password")
def mailbox_reset_password(
    address: Annotated[str, typer.Argument(help="The mailbox's address.")],
    password: Annotated[str | None, typer.Option(help="Password agreed with the user.")] = None,
    password_stdin: PasswordStdin = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Cấp mật khẩu mới (issue a new password, R7)."""
    agreed = _password(password, password_stdin, as_json)
    issued = _run(
        data,
        as_json,
        lambda db, cfg: mailboxes.reset_password(db, cfg, address, password=agreed),
    )
    mailbox, initial = issued
    text = f"Đã đặt mật khẩu cho {mailbox}."
    if initial:
        text = (
            f"Mật khẩu mới của {mailbox} (chỉ hiện một lần, phải đổi khi đăng nhập lần đầu):"
            f" {initial}"
        )
    _emit(as_json, {"address": mailbox, "initial_password": initial}, text)


@mailbox_app.command("export")
def mailbox_export(
    address: Annotated[str, typer.Argument(help="The mailbox's address (a deleted one too).")],
    to: Annotated[
        Path | None, typer.Option("--to", help="Directory (default: <data>/archives).")
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xuất toàn bộ thư của hộp thư ra tệp ZIP lưu trữ (export a mailbox to an archive, R9)."""
    from govmail.mailstore.archive import MailboxArchive, export_mailbox
    from govmail.store import audit
    from govmail.store.blobs import FileBlobStore

    who = _os_actor()

    async def export(db: Database, cfg: Config) -> MailboxArchive:
        done = await export_mailbox(
            db, cfg, FileBlobStore(cfg.blob_dir), address, to or cfg.archive_dir
        )
        async with db.write() as conn:  # a bulk read of someone's mail is audited
            await audit.record(
                conn,
                who,
                "mailbox.export",
                done.address,
                source="cli",
                path=str(done.path),
                messages=done.messages,
                missing=done.missing,
            )
        return done

    result = _run(data, as_json, export)
    text = (
        f"Đã xuất {result.messages} thư, {result.folders} thư mục của {result.address}"
        f" vào {result.path} ({result.size:,} byte)."
    )
    if result.missing:
        text += f" Cảnh báo: {result.missing} thư không đọc được nội dung (xem manifest.json)."
    _emit(as_json, result.as_dict(), text)


@mailbox_app.command("quota")
def mailbox_quota(
    address: Annotated[str, typer.Argument(help="The mailbox's address.")],
    mb: Annotated[int, typer.Option("--mb", help="New quota in megabytes.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Đặt hạn mức dung lượng một hộp thư (set one mailbox's quota, R17)."""
    result = _run(
        data, as_json, lambda db, cfg: mailboxes.set_quota(db, cfg, address, megabytes=mb)
    )
    _emit(as_json, result, f"Hạn mức của {result['address']}: {result['quota_mb']} MB.")


# --- addresses and the directory ------------------------------------------------


@address_app.command("suggest")
def address_suggest(
    name: Annotated[str, typer.Option(help="Full name.")],
    agency: Annotated[str | None, typer.Option(help="The agency's address.")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Đề xuất địa chỉ còn trống, tốt nhất trước (free addresses, best first)."""
    proposals = _run(
        data, as_json, lambda db, cfg: people.suggest_addresses(db, cfg, name=name, agency=agency)
    )
    _emit(as_json, proposals, "\n".join(proposals))


@directory_app.command("search")
def directory_search(
    query: Annotated[str, typer.Argument(help='Words to find, e.g. "nguyen van".')],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Tìm trong danh bạ, không phân biệt dấu (diacritics-insensitive search)."""
    hits = _run(data, as_json, lambda db, cfg: search_directory(db, cfg, query, limit=limit))
    text = "\n".join(
        f"{h.address}  {h.name}"
        + (
            f" — {', '.join(x for x in (h.position, h.department) if x)}"
            if h.position or h.department
            else ""
        )
        + (f", {h.agency_name}" if h.agency_name else "")
        for h in hits
    )
    _emit(as_json, [h.as_dict() for h in hits], text or "(không tìm thấy)")


@directory_app.command("export")
def directory_export(
    format_: Annotated[str, typer.Option("--format", help="csv, xlsx or vcf.")] = "csv",
    out_file: Annotated[Path | None, typer.Option("--out", help="File (default stdout).")] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xuất danh bạ ra CSV, Excel hoặc vCard (export the directory)."""
    if format_ not in ("csv", "xlsx", "vcf"):
        raise _fail(
            GovmailError(
                f"Định dạng không hỗ trợ: {format_} (chọn csv, xlsx hoặc vcf).",
                f"Unsupported format: {format_} (choose csv, xlsx or vcf).",
            ),
            as_json,
        )
    entries = _run(data, as_json, directory_entries)
    if as_json and out_file is None:
        _emit(True, [asdict(e) for e in entries], "")
        return
    if out_file is None:
        if format_ == "xlsx":
            write_xlsx(entries, sys.stdout.buffer)
        else:
            (write_csv if format_ == "csv" else write_vcf)(entries, sys.stdout)
    else:
        _translated(as_json, lambda: _export_file(entries, format_, out_file))
    if out_file is not None:
        _emit(
            as_json,
            {"file": str(out_file), "format": format_, "entries": len(entries)},
            f"Đã xuất {len(entries)} mục ra {out_file}.",
        )


def _export_file(entries: list[DirectoryEntry], format_: str, out_file: Path) -> None:
    """Write beside the target and rename: a failed export leaves no half-written file."""
    partial = out_file.with_name(f".{out_file.name}.partial")
    try:
        if format_ == "xlsx":
            with partial.open("wb") as fh:
                write_xlsx(entries, fh)
        else:
            encoding = CSV_ENCODING if format_ == "csv" else "utf-8"
            with partial.open("w", encoding=encoding, newline="") as fh:
                (write_csv if format_ == "csv" else write_vcf)(entries, fh)
        partial.replace(out_file)
    finally:
        partial.unlink(missing_ok=True)


@import_app.command("officials")
def import_officials_cmd(
    file: Annotated[Path, typer.Argument(help="Staff list (.xlsx or .csv).")],
    agency: Annotated[str, typer.Option(help="The agency's address.")],
    strict: Annotated[
        bool, typer.Option("--strict", help="Skip rows whose regulation address is taken.")
    ] = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Nhập danh sách cán bộ từ Excel/CSV (import officials from a spreadsheet)."""
    progress = Progress(
        TextColumn("Đang nhập"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )
    task = progress.add_task("import", total=None)

    async def run(db: Database, cfg: Config) -> Any:
        return await import_officials(
            db,
            cfg,
            file,
            agency=agency,
            strict=strict,
            progress=lambda n: progress.advance(task, n),
        )

    with progress:
        summary = _run(data, as_json, run)
    lines = [f"Đã tạo: {len(summary.created)} hộp thư"]
    lines.extend(f"  dòng {r['row']}: {r['name']} → {r['address']}" for r in summary.created)
    lines += [
        "Địa chỉ chọn tự động (địa chỉ theo quy định đã có người dùng):"
        f" {len(summary.auto_addressed)}",
    ]
    lines.extend(f"  dòng {r['row']}: {r['address']}" for r in summary.auto_addressed)
    lines.append(f"Đã có trong danh bạ (bỏ qua): {len(summary.already_present)}")
    lines.append(f"Bỏ qua do lỗi: {len(summary.skipped)}")
    lines.extend(f"  dòng {r['row']}: {r['reason_vi']}" for r in summary.skipped)
    if summary.created:
        lines.append(
            "Các hộp thư mới chưa có mật khẩu: cấp bằng 'govmail mailbox reset-password ĐỊA_CHỈ'."
        )
    _emit(as_json, summary.as_dict(), "\n".join(lines))
    if summary.skipped:
        raise typer.Exit(4)


# --- outbound queue -----------------------------------------------------------------


@queue_app.command("list")
def queue_list(
    all_: Annotated[bool, typer.Option("--all", help="Also mail already sent or bounced.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100000)] = 1000,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thư đang chờ gửi ra ngoài (mail waiting to leave for other domains)."""
    from govmail.delivery.queue import list_queue

    queued = _run(data, as_json, lambda db, cfg: list_queue(db, include_done=all_, limit=limit))
    text = "\n".join(
        f"{q.id:>8}  {q.created_at:%Y-%m-%d %H:%M}  {q.status:8}  <{q.sender}> → <{q.recipient}>"
        f"  {q.size} B  {q.subject}" + (f"  ({q.last_error})" if q.last_error else "")
        for q in queued
    )
    _emit(as_json, [q.as_dict() for q in queued], text or "(hàng đợi trống)")


@queue_app.command("show")
def queue_show(
    row: Annotated[int, typer.Argument(help="The queue row's number (from 'queue list').")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Chi tiết một thư trong hàng đợi (one queued mail: attempts, last error, headers)."""
    from govmail.delivery.queue import show_queued
    from govmail.store.blobs import FileBlobStore

    found = _run(data, as_json, lambda db, cfg: show_queued(db, FileBlobStore(cfg.blob_dir), row))
    m, when = found.mail, "%Y-%m-%d %H:%M:%S"
    pending = m.status in ("queued", "deferred")
    lines = [
        f"Thư số {m.id}: <{m.sender}> → <{m.recipient}>",
        f"  Trạng thái: {m.status}, đã thử {m.attempts} lần",
        f"  Vào hàng đợi: {m.created_at:{when}}",
        f"  Lần thử tới: {m.next_attempt_at:{when}}" if pending else "",
        f"  Máy chủ nhận gần nhất: {found.relay}" if found.relay else "",
        f"  Lỗi gần nhất: {m.last_error}" if m.last_error else "",
        f"  Đã báo chậm cho người gửi: {found.warned_at:{when}}" if found.warned_at else "",
        f"  Kích thước: {m.size} B",
        *(f"  {name}: {value}" for name, value in found.headers.items()),
    ]
    _emit(as_json, found.as_dict(), "\n".join(line for line in lines if line))


@queue_app.command("retry")
def queue_retry(
    rows: Annotated[list[int] | None, typer.Argument(help="Queue row numbers.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every mail waiting.")] = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Gửi lại ngay thư đang chờ (make waiting mail due now, like postqueue -f)."""
    from govmail.delivery.queue import retry_queued

    if not rows and not all_:
        raise typer.BadParameter(
            "hãy nêu số thư cần gửi lại, hoặc --all (name the rows to retry, or --all)."
        )
    who = _os_actor()
    done = _run(data, as_json, lambda db, cfg: retry_queued(db, None if all_ else rows, actor=who))
    _emit(
        as_json,
        {"retried": done},
        f"Sẽ gửi lại ngay {len(done)} thư (máy chủ đang chạy sẽ gửi trong vài giây).",
    )


@queue_app.command("delete")
def queue_delete(
    rows: Annotated[list[int], typer.Argument(help="Queue row numbers.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xóa thư đang chờ khỏi hàng đợi, không báo người gửi (remove pending mail, like
    postsuper -d; not mail already sent or bounced, nor mail being sent right now)."""
    from govmail.delivery.queue import delete_queued

    done = _run(data, as_json, lambda db, cfg: delete_queued(db, rows, actor=_os_actor()))
    _emit(
        as_json,
        {"deleted": done},
        f"Đã xóa {len(done)} thư khỏi hàng đợi; người gửi không được thông báo.",
    )


def _os_actor() -> str:
    """Who runs a command, for the audit log: ``cli:`` and the operating-system user."""
    import getpass
    import os

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return f"cli:uid={os.getuid()}"


# --- DNS ----------------------------------------------------------------------------


@dns_app.command("records")
def dns_records_cmd(data: DataDir = DEFAULT_DATA, as_json: AsJson = False) -> None:
    """Mọi bản ghi DNS cần công bố: MX, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, autoconfig, SRV.

    One record per line in zone-file form (NAME TTL IN TYPE VALUE, names ending with a dot,
    TXT split into quoted strings of at most 255 bytes). --json: a list of {name, type,
    value}, names without the final dot and TXT values whole.
    """
    from govmail.ops.dns_records import dns_records

    records = _translated(as_json, lambda: dns_records(load_config(data)))
    if as_json:
        _emit(True, [r.as_dict() for r in records], "")
    else:
        print("\n".join(r.zone_line() for r in records))


# --- delegation (R22) ----------------------------------------------------------------


@delegation_app.command("grant")
def delegation_grant(
    agency: Annotated[str, typer.Argument(help="The agency mailbox's address, e.g. stttt.")],
    person: Annotated[str, typer.Argument(help="The delegated official's address.")],
    document: Annotated[
        Path | None,
        typer.Option("--document", help="The head's signed authorisation (R22), kept on file."),
    ] = None,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Ủy quyền cho một cán bộ dùng hộp thư cơ quan (let an official use it)."""
    from govmail.directory.delegations import grant_delegation
    from govmail.store.blobs import FileBlobStore

    who = _os_actor()
    attached = _translated(as_json, document.read_bytes) if document is not None else None

    async def grant(db: Database, cfg: Config) -> Any:
        kept = None
        if document is not None and attached is not None:
            kept = (document.name, FileBlobStore(cfg.blob_dir).put(attached))
        return await grant_delegation(
            db, cfg, agency, person, actor=who, source="cli", document=kept
        )

    change = _run(data, as_json, grant)
    _emit(
        as_json,
        change.as_dict(),
        f"{change.person_address} được dùng hộp thư {change.agency_address}.",
    )


@delegation_app.command("revoke")
def delegation_revoke(
    agency: Annotated[str, typer.Argument(help="The agency mailbox's address.")],
    person: Annotated[str, typer.Argument(help="The delegated official's address.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thu hồi ủy quyền (revoke a delegation)."""
    from govmail.directory.delegations import revoke_delegation

    change = _run(data, as_json, lambda db, cfg: revoke_delegation(db, cfg, agency, person))
    _emit(
        as_json,
        change.as_dict(),
        f"Đã thu hồi quyền của {change.person_address} trên {change.agency_address}.",
    )


# --- sending policy -------------------------------------------------------------------


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"'{value}': hãy ghi ngày dạng YYYY-MM-DD (a date as YYYY-MM-DD)."
        ) from None
    return parsed if parsed.tzinfo else parsed.astimezone()


@policy_app.command("log")
def policy_log(
    since: Annotated[
        str | None, typer.Option(help="Only decisions from this date (YYYY-MM-DD[THH:MM]).")
    ] = None,
    rule: Annotated[
        str | None,
        typer.Option(help="size, formats, classified, unicode, subject or signatures."),
    ] = None,
    sender: Annotated[str | None, typer.Option(help="Only this sender's messages.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100000)] = 1000,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Nhật ký quyết định của các quy định gửi thư, mới nhất trước (the policy log)."""
    from govmail.policy.review import list_decisions

    start = _since(since)
    found = _run(
        data,
        as_json,
        lambda db, cfg: list_decisions(db, since=start, rule=rule, sender=sender, limit=limit),
    )
    text = "\n".join(
        f"{d.at:%Y-%m-%d %H:%M:%S}  {d.direction:10}  {d.rule:10}  {d.action:11}  <{d.sender}>"
        f"  {d.message_id or '-'}  {d.reason_vi}"
        + (f"  (cách ly số {d.quarantine_id})" if d.quarantine_id else "")
        for d in found
    )
    _emit(as_json, [d.as_dict() for d in found], text or "(chưa có quyết định nào)")


@policy_app.command("quarantine")
def policy_quarantine(
    all_: Annotated[bool, typer.Option("--all", help="Also messages released or deleted.")] = False,
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Thư bị giữ lại vì có dấu độ mật (messages held in quarantine, R15)."""
    from govmail.policy.review import list_quarantine

    held = _run(data, as_json, lambda db, cfg: list_quarantine(db, include_done=all_))
    text = "\n".join(
        f"{h.id:>6}  {h.at:%Y-%m-%d %H:%M}  {h.status:8}  <{h.sender}> → {', '.join(h.recipients)}"
        f"  {h.size} B  {h.subject}  [{h.reason_vi}]"
        for h in held
    )
    _emit(as_json, [h.as_dict() for h in held], text or "(không có thư nào bị giữ)")


@policy_app.command("release")
def policy_release(
    held_id: Annotated[int, typer.Argument(help="The held message's number.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Gửi đi một thư bị giữ sau khi xem xét (release a held message to its recipients)."""
    from govmail.policy.review import release
    from govmail.store.blobs import FileBlobStore

    who = _os_actor()
    done = _run(
        data, as_json, lambda db, cfg: release(db, FileBlobStore(cfg.blob_dir), held_id, actor=who)
    )
    text = (
        f"Đã gửi thư số {held_id}: {len(done.delivered)} hộp thư trong tỉnh nhận"
        + (f", {len(done.refused)} không nhận được (đầy hoặc đã khóa)" if done.refused else "")
        + (f", {done.queued} người nhận bên ngoài vào hàng đợi" if done.queued else "")
        + "."
    )
    _emit(as_json, done.as_dict(), text)


@policy_app.command("delete")
def policy_delete(
    held_id: Annotated[int, typer.Argument(help="The held message's number.")],
    data: DataDir = DEFAULT_DATA,
    as_json: AsJson = False,
) -> None:
    """Xóa hẳn một thư bị giữ (delete a held message for good)."""
    from govmail.policy.review import delete_held
    from govmail.store.blobs import FileBlobStore

    who = _os_actor()
    _run(
        data,
        as_json,
        lambda db, cfg: delete_held(db, FileBlobStore(cfg.blob_dir), held_id, actor=who),
    )
    _emit(as_json, {"deleted": held_id}, f"Đã xóa thư số {held_id}.")


# The commands of the request workflows, roles, passwords, tokens and incidents live in
# their own module, which adds them to ``app`` when imported (after everything above).
from govmail.cli import workflows as _workflows  # noqa: E402, F401
from govmail.cli.upkeep import agency_merge, audit_app  # noqa: E402

agency_app.command("merge")(agency_merge)
app.add_typer(audit_app, name="audit")
