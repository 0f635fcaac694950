"""Operations endpoints: health, readiness, the OpenAPI document and its browsable docs."""

from __future__ import annotations

import os

import flask_openapi3_swagger
from flask import Blueprint, Flask, Response, current_app, jsonify, render_template_string, send_from_directory
from flask_openapi3_swagger.templates import swagger_html_string

from app.extensions import talisman
from app.observability.health import readiness

bp = Blueprint("ops", __name__)

SWAGGER_STATIC = os.path.join(os.path.dirname(flask_openapi3_swagger.__file__), "templates", "swagger")
#: The docs page runs Swagger UI (bundled locally, inline bootstrap script): it alone gets a CSP
#: allowing same-origin scripts and styles; every API response keeps ``default-src 'none'``.
DOCS_CSP = {
    "default-src": "'none'",
    "script-src": "'self' 'unsafe-inline'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
}


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    ready, checks = readiness()
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(current_app.api_doc)  # type: ignore[attr-defined]


@bp.get("/docs")
@talisman(content_security_policy=DOCS_CSP)
def docs() -> Response:
    html = swagger_html_string.replace('"swagger/', '"/docs/swagger/')
    page = render_template_string(html, doc_url="/openapi.json", swagger_config={}, oauth_config=None)
    return Response(page, mimetype="text/html")


@bp.get("/docs/swagger/<path:filename>")
def docs_asset(filename: str) -> Response:
    return send_from_directory(SWAGGER_STATIC, filename, max_age=3600)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
