"""Run a use case for a route and turn its result into a response, honouring Idempotency-Key.

Routes call `respond(...)` for writes and `read(...)` for reads; both return a ready `Response`,
so FastAPI's response models document the API without re-validating large bodies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from adledger.domain.errors import AdledgerError, ResponseShownOnce
from adledger.http.audit import record_for
from adledger.http.encoding import dumps
from adledger.http.problems import error_response
from adledger.service import audit, idempotency
from adledger.service.keys import Principal
from adledger.service.uow import Database, UnitOfWork

JSON = "application/json"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type=JSON)


def read(db: Database, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Response:
    return json_response(db.read(fn, *args, **kwargs))


def _request_hash(request: Request, body: BaseModel | None) -> str:
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(b"\0" + request.url.path.encode())
    h.update(b"\0" + str(request.url.query).encode())
    if body is not None:
        h.update(b"\0" + body.model_dump_json().encode())
    return h.hexdigest()


def respond(
    request: Request,
    db: Database,
    principal: Principal,
    fn: Callable[..., Any],
    *args: Any,
    body: BaseModel | None = None,
    status: int = 200,
    shown_once: bool = False,
    **kwargs: Any,
) -> Response:
    """Run `fn(uow, *args, **kwargs)` in a unit of work and answer with its JSON result.

    With an `Idempotency-Key` header, the first response (success or refusal) is stored with the
    work, atomically, and given again for a repeat of the same request.

    `shown_once`: the response carries secrets that must never be stored (a new API key,
    promotion codes). With an Idempotency-Key the work still happens once, but what is stored in
    place of the response is a 409 `response_shown_once` problem, which a repeat gets.

    A change that succeeds is recorded in the audit trail in its own transaction (see
    `http.audit`); refusals and replays are recorded by the `AuditTrail` middleware.
    """
    state: dict[str, Any] = request.scope.setdefault("state", {})

    def audited(uow: UnitOfWork) -> None:
        audit.append(uow, record_for(state, request.scope, at=uow.now, status=status))

    key = request.headers.get("idempotency-key")
    if key is None:

        def change(uow: UnitOfWork) -> Any:
            result = fn(uow, *args, **kwargs)
            audited(uow)
            return result

        result = db.run(change)
        state["audited"] = True
        return json_response(result, status)

    idempotency.check_key(key)
    scope = principal.key_id
    fingerprint = _request_hash(request, body)
    claimed = db.run(idempotency.claim, scope, key, fingerprint)
    if isinstance(claimed, idempotency.StoredResponse):
        state["audit_code"] = "replayed"
        return Response(claimed.body, status_code=claimed.status, media_type=_media(claimed.status))

    def work(uow: UnitOfWork) -> str:
        text = dumps(fn(uow, *args, **kwargs))
        if shown_once:
            stand_in = error_response(
                ResponseShownOnce(
                    "this request succeeded once and its response, which held secrets, was shown "
                    "only then; make a new request with a new Idempotency-Key"
                )
            )
            idempotency.complete(
                uow, scope, key, claimed, stand_in.status_code, bytes(stand_in.body).decode()
            )
        else:
            idempotency.complete(uow, scope, key, claimed, status, text)
        audited(uow)
        return text

    try:
        text = db.run(work)
    except idempotency.ClaimLost as lost:
        return error_response(lost)  # the work rolled back; the key is the other request's
    except AdledgerError as exc:
        refusal = error_response(exc)
        try:
            db.run(
                idempotency.complete,
                scope,
                key,
                claimed,
                refusal.status_code,
                bytes(refusal.body).decode(),
            )
        except idempotency.ClaimLost as lost:
            return error_response(lost)
        return refusal
    except BaseException:
        db.run(idempotency.release, scope, key, claimed)
        raise
    state["audited"] = True
    return Response(text, status_code=status, media_type=JSON)


def _media(status: int) -> str:
    return JSON if status < 400 else "application/problem+json"
