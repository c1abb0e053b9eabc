"""The web application: health check now; webmail, agency portal and console come later."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from govmail import __version__
from govmail.config import Config
from govmail.store.database import Database
from govmail.web.wellknown import wellknown_router


def create_app(db: Database, cfg: Config) -> FastAPI:
    """The ASGI app for one installation; ``db`` and ``cfg`` are passed, never looked up."""
    app = FastAPI(title="govmail", version=__version__, docs_url=None, redoc_url=None)
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

    return app
