"""``govmail serve``: every listener of one installation in one asyncio process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Iterator
from typing import Any

import uvicorn

from govmail.config import Config
from govmail.core.errors import InvalidInput
from govmail.delivery.inbound import stop_checks
from govmail.delivery.worker import Outbound
from govmail.directory.accounts import Authenticator
from govmail.imap.server import ImapServer, start_imap
from govmail.mailstore.access import AccessLog
from govmail.mailstore.service import MailStore
from govmail.ops.setup import prepare_database
from govmail.policy.service import SendingPolicy
from govmail.smtp.listeners import server_tls_context, start_smtp
from govmail.store.blobs import FileBlobStore
from govmail.store.database import Database
from govmail.web.app import create_app


def parse_listen(value: str) -> tuple[str, int]:
    """'127.0.0.1:8080' or '[::1]:8080' → (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(
            f"Địa chỉ lắng nghe không hợp lệ: '{value}' (dạng HOST:PORT).",
            f"Invalid listen address: '{value}' (expected HOST:PORT).",
        )
    return host.strip("[]") or "0.0.0.0", int(port)


SMTP_LISTENERS = ("smtp", "submission", "submissions")
IMAP_LISTENERS = ("imap", "imaps")


def run_server(cfg: Config, *, listen: dict[str, str | None], as_json: bool) -> None:
    """Serve until SIGINT/SIGTERM. ``listen`` overrides the configured HOST:PORT of a
    listener ('web', 'smtp', 'submission', 'submissions'). Prints what listens (actual
    ports) once ready."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        pass
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiosmtpd logs every connection, and warns on each login about an attribute it sets
    # itself; its errors still show.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    where = {**cfg.listeners, **{k: v for k, v in listen.items() if v}}
    asyncio.run(_serve(cfg, where, as_json))


class _WebServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process shuts all listeners down
    together on SIGINT/SIGTERM and exits 0, instead of uvicorn re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen_socket(listen: str, service: str) -> socket.socket:
    """Bind ``listen`` before anything is served, so a port in use is a clear error."""
    host, port = parse_listen(listen)
    try:
        return socket.create_server((host, port), reuse_port=False, backlog=512)
    except OSError as exc:
        raise InvalidInput(
            f"Không mở được cổng {service} {listen}: {exc.strerror or exc}.",
            f"Cannot listen for {service} on {listen}: {exc.strerror or exc}.",
        ) from None


async def _serve(cfg: Config, where: dict[str, str], as_json: bool) -> None:
    sockets: dict[str, socket.socket] = {}
    try:
        for name in ("web", *SMTP_LISTENERS, *IMAP_LISTENERS):
            sockets[name] = listen_socket(where[name], name)
    except InvalidInput:
        for sock in sockets.values():
            sock.close()
        raise
    web_socket = sockets.pop("web")
    tls = server_tls_context(cfg.tls_cert, cfg.tls_key)
    if tls is None:
        # Implicit TLS needs a certificate.
        sockets.pop("submissions").close()
        sockets.pop("imaps").close()
    imap_sockets = {name: sockets.pop(name) for name in IMAP_LISTENERS if name in sockets}
    # No ping before each checkout in the server: a dropped connection fails one
    # transaction (SMTP answers 451, the client retries) and SQLAlchemy then replaces
    # the pool; a ping would cost a round trip on every RCPT and delivery.
    db = Database(cfg.effective_database_url, pool_pre_ping=False)
    blobs = FileBlobStore(cfg.blob_dir)
    blobs.sweep_tmp()
    store = MailStore(db, cfg, blobs)
    smtp_servers: list[asyncio.Server] = []
    imap_servers: list[asyncio.Server] = []
    auth = Authenticator(db, cfg)
    imap = ImapServer(cfg, store, auth, AccessLog(db), tls)
    outbound = Outbound(cfg, db, store)
    try:
        await prepare_database(db, cfg)
        await outbound.start()
        store.commits.on_queued = outbound.wake
        if not cfg.postmaster:
            logging.getLogger("govmail").warning(
                "[mail] postmaster is not set: mail to postmaster@%s is refused", cfg.domain
            )
        sending = SendingPolicy(cfg, db, store)
        smtp_servers = await start_smtp(cfg, store, auth, sockets, tls, sending)
        imap_servers = await start_imap(imap, imap_sockets)
        server = _WebServer(
            uvicorn.Config(
                create_app(db, cfg, store=store, auth=auth, access=imap.access, sending=sending),
                log_level="warning",
                lifespan="off",
                server_header=False,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        task = asyncio.create_task(server.serve(sockets=[web_socket]))
        while not server.started and not task.done():
            await asyncio.sleep(0.02)
        if server.started:
            host, port = web_socket.getsockname()[:2]
            listening = {"web": f"http://{host}:{port}/"}
            for name, sock in {**sockets, **imap_sockets}.items():
                host, port = sock.getsockname()[:2]
                listening[name] = f"{host}:{port}"
            _announce(cfg, listening, as_json)
        await task
    finally:
        for listener in (*smtp_servers, *imap_servers):
            listener.close()
        stop_checks()
        await imap.close()
        # Transactions in flight finish; what waits stays queued for the next start.
        await outbound.stop()
        await store.close()
        web_socket.close()
        for sock in (*sockets.values(), *imap_sockets.values()):
            sock.close()
        await db.dispose()


def _announce(cfg: Config, listening: dict[str, str], as_json: bool) -> None:
    demo_file = cfg.data_dir / "demo-accounts.json"
    demo: list[dict[str, Any]] = (
        json.loads(demo_file.read_text(encoding="utf-8")) if demo_file.exists() else []
    )
    if as_json:
        print(json.dumps({"listening": listening, "demo_accounts": demo}, ensure_ascii=False))
    else:
        print(f"govmail đang chạy cho {cfg.domain} (dữ liệu: {cfg.data_dir})")
        for name, where in listening.items():
            print(f"  {name:12} {where}")
        print(f"  {'healthz':12} {listening['web']}healthz")
        print(
            f"Webmail: mở {listening['web']} trong trình duyệt, đăng nhập bằng địa chỉ đầy đủ"
            " và mật khẩu (open it in a browser; log in with a full address)."
        )
        if "submission" in listening:
            print(
                "Gửi thư (mail clients): submission với STARTTLS hoặc submissions (TLS),"
                " đăng nhập bằng địa chỉ đầy đủ và mật khẩu."
            )
        if "imap" in listening:
            print(
                "Đọc thư (IMAP): imap với STARTTLS hoặc imaps (TLS), cùng tên đăng nhập;"
                " hộp thư cơ quan được ủy quyền nằm trong thư mục Shared/<tên cơ quan>."
            )
            if cfg.tls_cert is not None:
                print(f"  Chứng chỉ TLS (certificate): {cfg.tls_cert}")
        if demo:
            print("Tài khoản mẫu (demo accounts):")
            for account in demo:
                role = f", {account['role']}" if account.get("role") else ""
                print(f"  {account['address']} / {account['password']}  ({account['name']}{role})")
        print("Dừng: Ctrl+C")
    sys.stdout.flush()
