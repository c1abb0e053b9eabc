"""The webmail's settings page (Cài đặt): signature, vacation auto-reply, language, and the
links to the password and two-factor pages."""

# No `from __future__ import annotations` here: FastAPI reads the routes' annotations
# at definition, and `Depends(gate.page)` names the router function's local `gate`.

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from govmail.mailstore.preferences import (
    MAX_SIGNATURE,
    MAX_SUBJECT,
    MAX_TEXT,
    Preferences,
    SettingsError,
    Vacation,
    load_preferences,
    save_preferences,
)
from govmail.web.directory import page_frame
from govmail.web.pages import WebServices
from govmail.web.session import Gate, Visit

# Form limits a little above the stored ones, so an over-long value gets the Vietnamese
# message from ``checked`` rather than a bare 400 (CRLF doubles line ends).
_FORM_SIGNATURE = 2 * MAX_SIGNATURE
_FORM_TEXT = 2 * MAX_TEXT


def _day(value: str) -> date | None:
    """A date field (YYYY-MM-DD, as <input type="date"> sends it), or None when empty."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise SettingsError(
            "Ngày không hợp lệ (định dạng năm-tháng-ngày).", "Invalid date (YYYY-MM-DD)."
        ) from None


LANGUAGE_COOKIE = "govmail_lang"


def settings_router(services: WebServices, gate: Gate) -> APIRouter:
    """Routes: GET /settings (?saved=1), POST /settings."""
    router = APIRouter()
    db, pages, store = services.db, services.pages, services.store

    async def render(
        request: Request,
        visit: Visit,
        prefs: Preferences,
        *,
        error: tuple[str, str] | None = None,
        saved: bool = False,
        status_code: int = 200,
    ) -> Response:
        context = await page_frame(services, visit)
        return pages.render(
            request,
            "settings.html",
            {
                **context,
                "prefs": prefs,
                "error": error,
                "saved": saved,
                "max_signature": MAX_SIGNATURE,
                "max_subject": MAX_SUBJECT,
            },
            status_code=status_code,
        )

    @router.get("/settings")
    async def settings(
        request: Request, visit: Annotated[Visit, Depends(gate.page)], saved: int = 0
    ) -> Response:
        box = visit.mailbox_id
        prefs = await db.run(lambda conn: load_preferences(conn, box), write=False, brief=True)
        return await render(request, visit, prefs, saved=bool(saved))

    @router.post("/settings")
    async def save(
        request: Request,
        visit: Annotated[Visit, Depends(gate.action)],
        signature: Annotated[str, Form(max_length=_FORM_SIGNATURE)] = "",
        language: Annotated[str, Form(max_length=2)] = "vi",
        vacation_enabled: Annotated[str, Form(max_length=4)] = "",
        vacation_start: Annotated[str, Form(max_length=10)] = "",
        vacation_end: Annotated[str, Form(max_length=10)] = "",
        vacation_subject: Annotated[str, Form(max_length=2 * MAX_SUBJECT)] = "",
        vacation_text: Annotated[str, Form(max_length=_FORM_TEXT)] = "",
    ) -> Response:
        box = visit.mailbox_id
        wanted = Preferences(signature, language, Vacation(bool(vacation_enabled)))
        try:
            vacation = Vacation(
                bool(vacation_enabled),
                _day(vacation_start),
                _day(vacation_end),
                vacation_subject,
                vacation_text,
            )
            wanted = Preferences(signature, language, vacation)
            await db.run(lambda conn: save_preferences(conn, box, wanted), write=True)
        except SettingsError as exc:
            return await render(
                request, visit, wanted, error=(exc.message_vi, exc.message_en), status_code=400
            )
        store.vacations.forget()
        response = RedirectResponse("/settings?saved=1", status_code=303)
        # The pages' language rides in a cookie: no query per page for it.
        response.set_cookie(
            LANGUAGE_COOKIE,
            wanted.language,
            max_age=400 * 86400,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
        )
        return response

    return router
