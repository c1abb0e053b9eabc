"""Starting the SMTP listeners of ``govmail serve`` on sockets bound beforehand."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections import Counter
from pathlib import Path

from govmail.config import Config
from govmail.directory.accounts import Authenticator
from govmail.mailstore.service import MailStore
from govmail.policy.service import SendingPolicy
from govmail.smtp.handler import MX, SUBMISSION, MailHandler
from govmail.smtp.protocol import GovSMTP, HandlerTables


def server_tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """TLS 1.2+ for every listener, from the configured certificate (None if unset)."""
    if cert is None or key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


async def start_smtp(
    cfg: Config,
    store: MailStore,
    auth: Authenticator,
    sockets: dict[str, socket.socket],
    tls: ssl.SSLContext | None,
    sending: SendingPolicy | None = None,
) -> list[asyncio.Server]:
    """One asyncio server per SMTP socket given ('smtp', 'submission', 'submissions')."""
    loop = asyncio.get_running_loop()
    connections: Counter[str] = Counter()
    servers = []
    for name, sock in sockets.items():
        role = MX if name == "smtp" else SUBMISSION
        handler = MailHandler(role, cfg, store, auth, sending)
        implicit = name == "submissions"
        tables = HandlerTables.of(handler)

        def factory(
            handler: MailHandler = handler,
            implicit: bool = implicit,
            tables: HandlerTables = tables,
        ) -> GovSMTP:
            return GovSMTP(
                handler,
                tables=tables,
                limits=cfg.smtp,
                connections=connections,
                hostname=cfg.hostname,
                tls_context=tls,
                implicit_tls=implicit,
            )

        servers.append(
            await loop.create_server(
                factory,
                sock=sock,
                start_serving=True,  # 465's TLS: see GovSMTP
            )
        )
    return servers
