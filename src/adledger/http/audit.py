"""Request ids and the audit trail at the HTTP edge.

`AuditTrail` is the outermost piece of the app. It gives every request an id (the caller's
`X-Request-Id` if it is a sensible one, else a new `req_…`), returns it in `X-Request-Id`, and
makes sure every state-changing request (POST, PUT, PATCH, DELETE) leaves one audit record:

* a change that succeeds is recorded by `respond()` inside the change's own transaction, so
  the two commit together (`audited` in the request state tells this middleware so);
* everything else — a refusal (its stable code is read from the problem document), a request
  refused before it reached a use case (401, 403, 413, 422), an idempotent replay (`replayed`),
  a crash (500) — is recorded here, after the response, in a transaction of its own.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adledger.domain.audit import AuditRecord
from adledger.domain.ids import new_id
from adledger.service import audit
from adledger.service.keys import Principal
from adledger.service.uow import Database

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REQUEST_ID_HEADER = "x-request-id"
_SENSIBLE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
MAX_PATH = 2000


def request_id_of(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if _SENSIBLE_ID.fullmatch(text):
                return text
    return new_id("req")


def target_of(scope: Scope) -> str:
    """What was asked: the path and its query, as sent (cut to the column's size)."""
    path = str(scope.get("path", ""))
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return (path + ("?" + query if query else ""))[:MAX_PATH]


def record_for(
    state: dict[str, Any],
    scope: Scope,
    *,
    at: Any,
    status: int,
    code: str | None = None,
) -> AuditRecord:
    principal: Principal | None = state.get("principal")
    headers = dict(scope.get("headers", ()))
    key = headers.get(b"idempotency-key")
    return AuditRecord(
        at=at,
        request_id=state["request_id"],
        actor=principal.key_id if principal else None,
        role=principal.role if principal else None,
        method=scope["method"],
        path=target_of(scope),
        status=status,
        code=code,
        idempotency_key=key.decode("latin-1")[:255] if key else None,
    )


class AuditTrail:
    """ASGI middleware: request ids for all, an audit record for every state-changing request."""

    def __init__(self, app: ASGIApp, db: Database) -> None:
        self.app = app
        self.db = db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        request_id = state["request_id"] = request_id_of(scope)
        status = 500
        problem = bytearray()
        is_problem = False

        async def tell(message: Message) -> None:
            nonlocal status, is_problem
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                is_problem = (b"content-type", b"application/problem+json") in headers
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and is_problem:
                problem.extend(message.get("body", b""))
            await send(message)

        crashed = False
        try:
            await self.app(scope, receive, tell)
        except BaseException:
            crashed = True  # the 500 is answered further out, by the server error handler
            raise
        finally:
            if scope["method"] in WRITES and not state.get("audited"):
                code = state.get("audit_code") or _code_of(bytes(problem))
                if crashed:
                    code = code or "internal_error"
                record = record_for(state, scope, at=self.db.clock.now(), status=status, code=code)
                await anyio.to_thread.run_sync(self.db.run, audit.append, record)


def _code_of(problem: bytes) -> str | None:
    if not problem:
        return None
    try:
        code = json.loads(problem).get("code")
    except (ValueError, AttributeError):
        return None
    return str(code)[:64] if code else None
