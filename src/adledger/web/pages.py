"""Signing in and out, and the start page that sends each role where it works."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adledger.domain.errors import Unauthorized
from adledger.http.deps import READERS, STAFF
from adledger.service import accounts
from adledger.service.keys import authenticate
from adledger.service.uow import Database
from adledger.web.render import SIGN_IN, WebRoute, redirect, render
from adledger.web.session import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGN_IN_COOKIE,
    allow,
    check_csrf,
    check_sign_in_token,
    clear_cookie,
    form_of,
    get_db,
    principal_of,
    session_key,
    set_cookie,
    sign_in_token,
)

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)


def _next(target: str | None) -> str:
    """Only a path of these pages (never another site) to go to after signing in."""
    if target and target.startswith("/web") and not target.startswith("//"):
        return target
    return "/web"


def _sign_in_page(request: Request, *, status: int = 200, error: str | None = None) -> Response:
    token = sign_in_token(request)
    response = render(
        request,
        "sign_in.html",
        status=status,
        sign_in_token=token,
        error=error,
        next=_next(request.query_params.get("next")),
    )
    set_cookie(response, SIGN_IN_COOKIE, token, 3600)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return _sign_in_page(request)


@router.post("/sign-in")
def sign_in(
    request: Request, db: Database = Depends(get_db), form: dict[str, str] = Depends(form_of)
) -> Response:
    check_sign_in_token(request, form)
    key = form.get("api_key", "").strip()
    if not key:
        return _sign_in_page(request, status=422, error="Enter your API key.")
    try:
        principal = db.read(authenticate, key)
    except Unauthorized:
        request.scope.setdefault("state", {})["audit_code"] = "unauthorized"
        return _sign_in_page(
            request, status=401, error="That key is unknown or was revoked. Check it and try again."
        )
    request.state.principal = principal
    response = redirect(_next(form.get("next")))
    set_cookie(response, SESSION_COOKIE, key, SESSION_SECONDS)
    clear_cookie(response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(
    request: Request, db: Database = Depends(get_db), form: dict[str, str] = Depends(form_of)
) -> Response:
    if session_key(request):
        check_csrf(request, form)
    response = redirect(SIGN_IN, flash="You are signed out.")
    clear_cookie(response, SESSION_COOKIE)
    return response


@router.get("")
def home(request: Request, db: Database = Depends(get_db)) -> Response:
    """Staff go to the refund queue; an advertiser to its account (or the list of them)."""
    principal = principal_of(request, db)
    if principal.role in STAFF or principal.role == "admin":
        return redirect("/web/finance")
    allow(principal, *READERS)
    page = db.read(accounts.list_accounts, business_id=principal.scope, limit=100)
    if len(page["data"]) == 1:
        return redirect(f"/web/accounts/{page['data'][0]['id']}")
    return render(request, "home.html", accounts=page["data"])
