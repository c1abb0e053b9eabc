"""The JSON API (OpenAPI at /api/docs): everything the console does, for the province's
other systems, authenticated by bearer tokens (govmail token create)."""

from fastapi import FastAPI

from govmail.web.pages import WebServices


def api_app(services: WebServices) -> FastAPI:
    app = FastAPI(title="govmail API", docs_url="/docs", openapi_url="/openapi.json")
    return app
