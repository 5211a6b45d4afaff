"""Dependencies every router shares: the database, the caller, and the roles a route allows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adledger.domain.errors import Forbidden, Unauthorized
from adledger.service.keys import Principal, authenticate
from adledger.service.uow import Database

_bearer = HTTPBearer(auto_error=False, description="An adledger API key")


# Dependencies that do no I/O are `async def`: FastAPI runs a plain `def` dependency in its
# thread pool, and each hop there costs a request more than the work (a balance read is ~1 ms).
async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    db: Database = Depends(get_db),
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("send an API key: Authorization: Bearer <key>")
    principal = db.read(authenticate, credentials.credentials)
    request.state.principal = principal
    return principal


def admit(principal: Principal, *roles: str) -> Principal:
    """`principal`, if its role is one of `roles` or admin; else 403 `forbidden`. The one role
    check of the API and the web pages."""
    if principal.role != "admin" and principal.role not in roles:
        raise Forbidden(f"a {principal.role} key may not do this")
    return principal


def require(*roles: str) -> Callable[..., Any]:
    """A dependency that admits the given roles (admin is always admitted).

    The roles are kept on the dependency as `roles` (in the order given, admin last), which the
    OpenAPI document reads to say who may call each operation (`http.openapi`).
    """

    async def dependency(principal: Principal = Depends(get_principal)) -> Principal:
        return admit(principal, *roles)

    dependency.roles = tuple(dict.fromkeys((*roles, "admin")))  # type: ignore[attr-defined]
    return dependency


STAFF = ("finance",)
READERS = ("finance", "advertiser")
