"""The web application: health check, the well-known documents and the Vietnamese webmail."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govmail import __version__
from govmail.config import Config
from govmail.directory.accounts import Authenticator
from govmail.directory.sessions import SessionLimits
from govmail.mailstore.access import AccessLog
from govmail.mailstore.service import MailStore
from govmail.policy.service import SendingPolicy
from govmail.store.database import Database
from govmail.web.agency import agency_router
from govmail.web.api import api_app
from govmail.web.auth import auth_router
from govmail.web.compose import compose_router
from govmail.web.console import console_router
from govmail.web.directory import directory_router
from govmail.web.mail import mail_router
from govmail.web.pages import PAGE_CSP, SECURITY_HEADERS, Pages, WebServices, error_text
from govmail.web.portal import portal_router
from govmail.web.session import AccountLoader, Forbidden, Gate, NotSignedIn, StepOwed
from govmail.web.settings import settings_router
from govmail.web.wellknown import wellknown_router
from govmail.workflows.service import request_desk

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(
    db: Database,
    cfg: Config,
    *,
    store: MailStore | None = None,
    auth: Authenticator | None = None,
    access: AccessLog | None = None,
    sending: SendingPolicy | None = None,
    limits: SessionLimits | None = None,
) -> FastAPI:
    """The ASGI app for one installation; ``db`` and ``cfg`` are passed, never looked up.
    With ``store`` and ``auth`` (``govmail serve`` passes the process's own, shared with
    SMTP and IMAP) it serves the webmail; without them only /healthz and the well-known
    documents."""
    app = FastAPI(
        title="govmail", version=__version__, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.include_router(wellknown_router(cfg))

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """200 when the database answers, 503 otherwise (for load balancers and monitoring)."""
        try:
            async with db.read() as conn:
                await conn.execute(text("select 1"))
        except (SQLAlchemyError, OSError) as exc:
            return JSONResponse(
                {"status": "error", "database": type(exc).__name__, "version": __version__},
                status_code=503,
            )
        return JSONResponse(
            {"status": "ok", "database": "ok", "domain": cfg.domain, "version": __version__}
        )

    if store is not None and auth is not None:
        services = WebServices(
            db=db,
            cfg=cfg,
            store=store,
            auth=auth,
            access=access or AccessLog(db),
            sending=sending,
            limits=limits or SessionLimits(),
            pages=Pages(),
            desk=request_desk(db, cfg, store.blobs),
        )
        _add_webmail(app, services)
    app.add_middleware(SecurityHeaders)
    return app


def _add_webmail(app: FastAPI, services: WebServices) -> None:
    gate = Gate(services.db, services.limits, AccountLoader(services.db, services.cfg))
    app.include_router(auth_router(services, gate))
    app.include_router(mail_router(services, gate))
    app.include_router(compose_router(services, gate))
    app.include_router(agency_router(services, gate))
    app.include_router(directory_router(services, gate))
    app.include_router(settings_router(services, gate))
    app.include_router(portal_router(services, gate))
    app.include_router(console_router(services, gate))
    app.mount("/api", api_app(services))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    pages = services.pages

    def wants_fragment(request: Request) -> bool:
        return request.headers.get("hx-request") == "true"

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if wants_fragment(request):
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(StepOwed)
    async def step_owed(request: Request, exc: StepOwed) -> Response:
        if wants_fragment(request):
            return Response(status_code=401, headers={"HX-Redirect": exc.path})
        return RedirectResponse(exc.path, status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        vi, en = (
            "Yêu cầu bị từ chối: trang đã cũ hoặc không đến từ hộp thư. Hãy tải lại trang.",
            "Request refused: the page is stale or did not come from the webmail.",
        )
        return pages.error(request, 403, vi, en)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return pages.error(request, exc.status_code, *error_text(exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return pages.error(request, 400, *error_text(400))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.exception("web request %s %s failed", request.method, request.url.path)
        return pages.error(request, 500, *error_text(500))


class SecurityHeaders:
    """Adds the security headers to every response that did not set its own (the message
    frame and downloads set a stricter policy themselves)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", PAGE_CSP.encode()),
            *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
