"""RFC 9457 problem documents. The one place where errors become HTTP statuses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from adledger.domain.errors import (
    AdledgerError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthorized,
)
from adledger.http.encoding import dumps

PROBLEM_JSON = "application/problem+json"

STATUS_BY_FAMILY: tuple[tuple[type[AdledgerError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (Unauthorized, 401),
    (RateLimited, 429),
)


def status_for(exc: AdledgerError) -> int:
    for family, status in STATUS_BY_FAMILY:
        if isinstance(exc, family):
            return status
    return 400


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> Response:
    body = {
        "type": f"urn:adledger:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status == 429 and "retry_after" in extra:
        headers = {"Retry-After": str(extra["retry_after"])}
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: AdledgerError) -> Response:
    return problem(status_for(exc), exc.code, exc.title, exc.detail, **exc.extra)


_STATUS_CODES = {
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("request_too_large", "Request body too large"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
}


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    return [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(AdledgerError)
    async def _adledger(_: Request, exc: AdledgerError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": e.get("msg", ""),
                "type": e.get("type"),
            }
            for e in exc.errors()[:50]
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p != "body") or "request"
        return problem(
            422,
            "validation_error",
            "Invalid request",
            f"{where}: {first['msg']}",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:
            # FastAPI's own 400: a body its JSON parser gave up on (nested too deep, a number
            # past Python's digit limit, bytes that are not UTF-8). To a client that is a body
            # that is not valid JSON, so it gets the same 422 as malformed JSON.
            return problem(
                422,
                "validation_error",
                "Invalid request",
                "body: could not be parsed as JSON (nested too deep, a number too long, "
                "or not UTF-8)",
                errors=[{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}],
            )
        code, title = _STATUS_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        response = problem(exc.status_code, code, title, str(exc.detail))
        response.headers.update(exc.headers or {})
        if exc.status_code == 405:
            response.headers["Allow"] = ", ".join(_allowed_methods(request))
        return response

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> Response:
        return problem(
            500, "internal_error", "Internal server error", "an unexpected error occurred"
        )
