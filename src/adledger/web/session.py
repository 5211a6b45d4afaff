"""Sign-in, the session cookie, CSRF tokens, and running a page's action like the API would.

* **Session**: signing in with an API key puts the key in a `__Host-` cookie that is `Secure`,
  `HttpOnly` and `SameSite=Strict`. Every request authenticates it again with
  `service.keys.authenticate`, so a revoked key is signed out at its next click, and the key's
  role and business are the page's, exactly as they are the API's.
* **CSRF**: every form carries a token, `HMAC-SHA256(session key, "adledger web csrf")`; a POST
  whose token is missing or wrong is refused with 403 before anything runs. The token is only
  computable from the session secret, which the page's origin alone holds (the cookie is
  HttpOnly and never sent cross-site). The sign-in form, before any session, carries a random
  token that must match a sign-in cookie of its own (double submit).
* **Roles and tenancy**: `allow(principal, *roles)` is `http.deps.admit`, the API's own check, and
  pages pass `principal.scope` to the services as the API routes do, so an advertiser gets the
  same 404 for another business's account.
* **Audit**: `act()` runs a use case in a unit of work and appends the audit record in that same
  transaction, as `http.respond.respond` does for the API; a refusal or a refused request is
  recorded by the `AuditTrail` middleware, which sees every POST, web or API.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.responses import Response

from adledger.domain.errors import AdledgerError, Unauthorized
from adledger.http.audit import record_for
from adledger.http.deps import admit
from adledger.service import audit
from adledger.service.keys import Principal, authenticate
from adledger.service.uow import Database, UnitOfWork

SESSION_COOKIE = "__Host-adledger_session"
SIGN_IN_COOKIE = "__Host-adledger_sign_in"
FLASH_COOKIE = "__Host-adledger_flash"
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf"
_CSRF_PURPOSE = b"adledger web csrf v1"
MAX_FORM_BYTES = 1024 * 1024


class CsrfRefused(Exception):
    """A form posted without its token, or with another session's: a 403 page, nothing runs."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class SignedOut(Exception):
    """No session cookie, or its key was revoked: the page asks to sign in."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def set_cookie(response: Response, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/", secure=True, httponly=True, samesite="strict")


def session_key(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def principal_of(request: Request, db: Database) -> Principal:
    """The signed-in principal, remembered on the request for the audit trail."""
    key = session_key(request)
    if key is None:
        raise SignedOut("sign in with an API key")
    try:
        principal = db.read(authenticate, key)
    except Unauthorized:
        raise SignedOut("this key is unknown or was revoked; sign in again") from None
    request.state.principal = principal
    return principal


def allow(principal: Principal, *roles: str) -> Principal:
    """The API's own role check (`http.deps.admit`): admin always, else one of `roles`."""
    return admit(principal, *roles)


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (the last value of a repeated field)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise CsrfRefused("this form is too large")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=500))


def check_csrf(request: Request, form: dict[str, str]) -> None:
    """Refuse (403) a POST whose form token does not belong to this session."""
    key = session_key(request)
    sent = form.get(CSRF_FIELD, "")
    if key is None or not sent or not hmac.compare_digest(sent, csrf_token(key)):
        raise CsrfRefused(
            "this form did not come from your signed-in adledger page (its security token is "
            "missing or wrong); reload the page and try again"
        )


def sign_in_token(request: Request) -> str:
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)


def check_sign_in_token(request: Request, form: dict[str, str]) -> None:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    if not expected or not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused(
            "the sign-in form's security token is missing or wrong; reload the page and try again"
        )


def act(
    request: Request,
    db: Database,
    fn: Callable[..., Any],
    *args: Any,
    status: int = 303,
    **kwargs: Any,
) -> Any:
    """Run `fn(uow, *args, **kwargs)` and record the change in the audit trail in the same
    transaction (status: the page's answer, a 303 back to the page, unless said otherwise).

    A refusal raises as usual; the caller shows it, and the `AuditTrail` middleware records it
    with the code `note_refusal` leaves on the request.
    """
    state: dict[str, Any] = request.scope.setdefault("state", {})

    def change(uow: UnitOfWork) -> Any:
        result = fn(uow, *args, **kwargs)
        audit.append(uow, record_for(state, request.scope, at=uow.now, status=status))
        return result

    result = db.run(change)
    state["audited"] = True
    return result


def note_refusal(request: Request, exc: AdledgerError) -> None:
    """Leave the refusal's stable code for the audit record of this request."""
    state: dict[str, Any] = request.scope.setdefault("state", {})
    state["audit_code"] = exc.code
