"""Templates, formatting and the web route class that turns refusals into pages.

Jinja2 with autoescaping; amounts go through `domain.money.format_money` for the account's
currency and times through `domain.explain.format_time` in the account's own time zone, so a
page says "$1,234.56" and "15 Dec 2026 at 18:00 EST" exactly as the balance explanation does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from adledger.domain.errors import AdledgerError
from adledger.domain.explain import format_time
from adledger.domain.money import format_money
from adledger.http.problems import status_for
from adledger.service.keys import Principal
from adledger.web import charts
from adledger.web.session import (
    FLASH_COOKIE,
    SESSION_COOKIE,
    CsrfRefused,
    SignedOut,
    clear_cookie,
    csrf_token,
    note_refusal,
    session_key,
    set_cookie,
)

HERE = Path(__file__).parent
SIGN_IN = "/web/sign-in"

# No inline scripts or styles, nothing from elsewhere, never framed.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def money(amount: int | None, currency: str) -> str:
    return "—" if amount is None else format_money(amount, currency)


def when(value: datetime | None, timezone: str = "UTC") -> str:
    return "—" if value is None else format_time(value, timezone)


def day(value: datetime | None, timezone: str = "UTC") -> str:
    """`12 Mar 2026` in the zone."""
    if value is None:
        return "—"
    local = value.astimezone(ZoneInfo(timezone))
    return f"{local.day} {local:%b %Y}"


def iso(value: datetime) -> str:
    return value.isoformat()


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, when=when, day=day, iso=iso)
    env.globals.update(charts=charts, csrf_field="csrf")
    return env


ENV = _environment()


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def flash_of(request: Request) -> str | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        return base64.urlsafe_b64decode(raw.encode()).decode()[:500]
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> Response:
    principal: Principal | None = getattr(request.state, "principal", None)
    key = session_key(request)
    flash = flash_of(request)
    html = ENV.get_template(template).render(
        request=request,
        principal=principal,
        csrf=csrf_token(key) if key and principal else "",
        flash=flash,
        path=request.url.path,
        **context,
    )
    response = secure(HTMLResponse(html, status_code=status))
    if flash is not None:
        clear_cookie(response, FLASH_COOKIE)
    return response


def redirect(url: str, *, flash: str | None = None) -> Response:
    """303 See Other to `url` (after a POST), with a one-time message for the next page."""
    response = secure(RedirectResponse(url, status_code=303))
    if flash:
        set_cookie(response, FLASH_COOKIE, base64.urlsafe_b64encode(flash.encode()).decode(), 60)
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return render(request, "error.html", status=status, title=title, detail=detail)


_TITLES = {404: "Not found", 403: "Not allowed", 409: "Not possible", 422: "Check the form"}


class WebRoute(APIRoute):
    """A page route: sign-in redirects, CSRF refusals and ledger errors become HTML pages with
    the API's status codes (404 for another business's object, 403 for a role without the
    right), and the refusal's code is left for the audit trail.

    Route names get a `web:` prefix: the OpenAPI document finds API routes by function name, and
    a page's handler may share one with an API route (`request_refund`)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.name = f"web:{self.name}"

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except SignedOut as exc:
                request.scope.setdefault("state", {})["audit_code"] = "unauthorized"
                target = request.url.path if request.method == "GET" else "/web"
                response = redirect(f"{SIGN_IN}?next={quote(target)}", flash=exc.detail)
                if session_key(request):
                    clear_cookie(response, SESSION_COOKIE)
                return response
            except CsrfRefused as exc:
                request.scope.setdefault("state", {})["audit_code"] = "forbidden"
                return error_page(request, 403, "Form refused", exc.detail)
            except AdledgerError as exc:
                note_refusal(request, exc)
                status = status_for(exc)
                title = _TITLES.get(status, exc.title)
                detail = exc.detail
                if status == 404:
                    detail = "There is nothing here, or it is not yours to see."
                elif status == 403 and exc.code == "forbidden":
                    detail = "Your key's role may not open this page or do this."
                return error_page(request, status, title, detail)

        return handler
