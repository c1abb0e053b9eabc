"""Signing in and out of the webmail: login (the Authenticator SMTP and IMAP use), the R7
password change a login may owe, TOTP two-factor, logout and logout everywhere."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from govmail.core.errors import InvalidInput
from govmail.directory.accounts import MAX_LOGIN, AuthStatus
from govmail.directory.sessions import (
    MAX_PASSWORD,
    PENDING_PASSWORD,
    PENDING_TOTP,
    begin_totp,
    change_password,
    check_totp,
    close_all_sessions,
    close_session,
    disable_totp,
    open_session,
    owes_password_change,
    provisioning_uri,
    set_pending,
    totp_enabled,
    totp_state,
)
from govmail.mailstore.access import AccessEvent
from govmail.web.pages import WebServices
from govmail.web.session import (
    COOKIE,
    Forbidden,
    Gate,
    Visit,
    clear_session_cookie,
    client_address,
    same_origin,
    set_session_cookie,
)

MAX_TOTP_FAILURES = 5  # per session; then the login starts again (passwords are throttled)

_LOGIN_ERRORS = {
    AuthStatus.INVALID: (
        "Sai địa chỉ thư hoặc mật khẩu.",
        "Wrong address or password.",
    ),
    AuthStatus.THROTTLED: (
        "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau ít phút.",
        "Too many failed logins. Try again in a few minutes.",
    ),
    AuthStatus.DISABLED: (
        "Hộp thư này đã ngừng hoạt động.",
        "This mailbox is disabled.",
    ),
}


def auth_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: /login, /login/totp, /password, /logout, /logout-all, /account/two-factor."""
    router = APIRouter()
    pages = services.pages
    db = services.db
    totp_failures: dict[int, int] = {}

    def redirect(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def login_page(
        request: Request, error: tuple[str, str] | None = None, login: str = "", status: int = 200
    ) -> HTMLResponse:
        return pages.render(
            request, "login.html", {"error": error, "login": login}, status_code=status
        )

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        session = await gate.session(request)
        if session is not None and session.pending is None:
            return redirect("/")
        return login_page(request)

    @router.post("/login")
    async def login(
        request: Request,
        login: Annotated[str, Form(max_length=MAX_LOGIN)] = "",
        password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    ) -> Response:
        # No session yet, so no token: the origin check stops cross-site login forms.
        if not same_origin(request):
            raise Forbidden()
        client = client_address(request)
        result = await services.auth.login(login, password, client)
        if result.status in _LOGIN_ERRORS or result.account is None:
            if result.delay:
                await asyncio.sleep(result.delay)
            status = 429 if result.status is AuthStatus.THROTTLED else 401
            error = _LOGIN_ERRORS.get(result.status, _LOGIN_ERRORS[AuthStatus.INVALID])
            return login_page(request, error, login, status)
        account = result.account
        pending: str | None = None
        if await totp_enabled(db, account.mailbox_id):
            pending = PENDING_TOTP
        elif result.status is AuthStatus.MUST_CHANGE:
            pending = PENDING_PASSWORD
        new = await open_session(
            db,
            account.mailbox_id,
            pending=pending,
            client_address=client,
            user_agent=request.headers.get("user-agent", ""),
            limits=services.limits,
        )
        services.access.record(AccessEvent(account.mailbox_id, "login", "web", client))
        target = {None: "/", PENDING_TOTP: "/login/totp", PENDING_PASSWORD: "/password"}
        response = redirect(target[pending])
        set_session_cookie(response, request, new.token)
        return response

    @router.get("/login/totp")
    async def totp_form(request: Request, visit: Annotated[Visit, Depends(gate.owing)]) -> Response:
        if visit.session.pending != PENDING_TOTP:
            return redirect("/")
        return pages.render(request, "totp.html", {"visit": visit, "error": None})

    @router.post("/login/totp")
    async def totp_login(
        request: Request,
        visit: Annotated[Visit, Depends(gate.owing)],
        code: Annotated[str, Form(max_length=32)] = "",
    ) -> Response:
        session = visit.session
        if session.pending != PENDING_TOTP:
            return redirect("/")
        login, client = visit.account.address, visit.client
        throttled = services.auth.second_factor_throttled(login, client)
        if throttled or not await check_totp(db, session.mailbox_id, code):
            # Counted with the account's login failures (shared with SMTP and IMAP), so
            # fresh sessions get no fresh guesses; the session ends at the limit.
            if not throttled:
                services.auth.second_factor_failed(login, client)
            failures = totp_failures[session.id] = totp_failures.get(session.id, 0) + 1
            if (
                throttled
                or failures >= MAX_TOTP_FAILURES
                or services.auth.second_factor_throttled(login, client)
            ):
                totp_failures.pop(session.id, None)
                await close_session(db, request.cookies.get(COOKIE, ""))
                response = redirect("/login")
                clear_session_cookie(response, request)
                return response
            error = ("Mã xác thực không đúng.", "Wrong authentication code.")
            return pages.render(
                request, "totp.html", {"visit": visit, "error": error}, status_code=401
            )
        totp_failures.pop(session.id, None)
        services.auth.second_factor_passed(login)
        owes = await owes_password_change(db, session.mailbox_id)
        await set_pending(db, session.id, PENDING_PASSWORD if owes else None)
        return redirect("/password" if owes else "/")

    @router.get("/password")
    async def password_form(
        request: Request, visit: Annotated[Visit, Depends(gate.owing)]
    ) -> Response:
        if visit.session.pending == PENDING_TOTP:
            return redirect("/login/totp")
        return pages.render(request, "password.html", {"visit": visit, "error": None})

    @router.post("/password")
    async def password_change(
        request: Request,
        visit: Annotated[Visit, Depends(gate.owing)],
        new_password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
        confirm: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
        current: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
    ) -> Response:
        session = visit.session
        if session.pending == PENDING_TOTP:
            return redirect("/login/totp")
        forced = session.pending == PENDING_PASSWORD
        try:
            if new_password != confirm:
                raise InvalidInput(
                    "Hai lần nhập mật khẩu mới không khớp.", "The two new passwords differ."
                )
            await change_password(
                db,
                session.mailbox_id,
                new_password,
                current=None if forced else current,
                actor=visit.account.address,
                keep_session=session.id,
            )
        except InvalidInput as exc:
            error = (exc.message_vi, exc.message_en)
            return pages.render(
                request, "password.html", {"visit": visit, "error": error}, status_code=400
            )
        return redirect("/?notice=password")

    @router.post("/logout")
    async def logout(request: Request, visit: Annotated[Visit, Depends(gate.owing)]) -> Response:
        await close_session(db, request.cookies.get(COOKIE, ""))
        response = redirect("/login")
        clear_session_cookie(response, request)
        return response

    @router.post("/logout-all")
    async def logout_all(
        request: Request, visit: Annotated[Visit, Depends(gate.action)]
    ) -> Response:
        await close_all_sessions(db, visit.session.mailbox_id)
        response = redirect("/login")
        clear_session_cookie(response, request)
        return response

    @router.get("/account/two-factor")
    async def two_factor(request: Request, visit: Annotated[Visit, Depends(gate.page)]) -> Response:
        state = await totp_state(db, visit.session.mailbox_id)
        return _two_factor_page(services, request, visit, state.enabled, state.secret, None)

    @router.post("/account/two-factor")
    async def two_factor_change(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        step: Annotated[str, Form(max_length=16)] = "",
        code: Annotated[str, Form(max_length=32)] = "",
    ) -> Response:
        box = visit.session.mailbox_id
        if step == "begin":
            state = await totp_state(db, box)
            if state.enabled and not await check_totp(db, box, code):
                # Setting up again replaces the secret: only with a current code, or a
                # stolen session could switch two-factor off (or take it over).
                error = ("Hãy nhập mã xác thực hiện tại.", "Enter the current code.")
                return _two_factor_page(services, request, visit, True, None, error)
            secret = await begin_totp(db, box)
            return _two_factor_page(services, request, visit, False, secret, None)
        if step == "confirm":
            if await check_totp(db, box, code, enabling=True):
                return redirect("/account/two-factor")
            state = await totp_state(db, box)
            error = ("Mã xác thực không đúng.", "Wrong authentication code.")
            return _two_factor_page(services, request, visit, state.enabled, state.secret, error)
        if step == "disable":
            if await check_totp(db, box, code):
                await disable_totp(db, box)
                return redirect("/account/two-factor")
            error = ("Mã xác thực không đúng.", "Wrong authentication code.")
            return _two_factor_page(services, request, visit, True, None, error)
        return redirect("/account/two-factor")

    return router


def _two_factor_page(
    services: WebServices,
    request: Request,
    visit: Visit,
    enabled: bool,
    secret: str | None,
    error: tuple[str, str] | None,
) -> HTMLResponse:
    uri = provisioning_uri(secret, visit.account.address) if secret else None
    return services.pages.render(
        request,
        "two_factor.html",
        {"visit": visit, "enabled": enabled, "secret": secret, "uri": uri, "error": error},
        status_code=400 if error else 200,
    )
