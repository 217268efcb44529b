"""`/docs`: Swagger UI from assets vendored in this package, so the API's documentation
works on a machine with no internet (FastAPI's default loads it from a CDN).

Swagger UI 5.35.0 (`swagger-ui-dist` from npm, Apache-2.0; see static/vendor/VENDORED.md).
The validator badge is off: it would send the schema to validator.swagger.io.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

SWAGGER = "/ui/static/vendor/swagger-ui-5.35.0"
router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
async def docs(request: Request) -> HTMLResponse:
    openapi_url = request.app.openapi_url or "/openapi.json"
    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
        swagger_css_url=f"{SWAGGER}/swagger-ui.css",
        swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        swagger_ui_parameters={"validatorUrl": None},
    )
