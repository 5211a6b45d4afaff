"""The FastAPI application: routers, problem handlers, migrations and the expiry sweeper."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adledger import __version__, web
from adledger.clock import Clock
from adledger.config import Settings
from adledger.http import openapi, problems
from adledger.http.audit import AuditTrail
from adledger.http.routers import (
    accounts,
    audit,
    balance,
    credits,
    deposits,
    expirations,
    health,
    keys,
    promotions,
    refunds,
    reports,
    spend,
    transactions,
)
from adledger.service.uow import Database
from adledger.storage.migrate import upgrade

log = logging.getLogger("adledger")

DESCRIPTION = f"""\
adledger is the billing ledger of an ad platform. It keeps an advertiser's **prepaid funds**
("cash": their own money, spendable, and refundable after approval) apart from **promotional ad
credit** ("credit": granted by the platform, spent first, expires lot by lot, never withdrawn,
refunded or turned into cash). Spend beyond what an account holds is written off as
overdelivery, never owed. Every movement is an immutable double-entry transaction.

## Roles

Authenticate with `Authorization: Bearer <api key>`. Each operation lists the roles that may
call it (also as `x-roles`).

{openapi.role_table()}

No key, or an unknown or revoked one → 401. A key whose role may not call an operation → 403.
An advertiser key asking for another business's object → 404, as if it did not exist. A refund
can never be approved with the key that requested it (403 `self_approval_forbidden`).

## Conventions

* **Money**: amounts are JSON integers in the minor units of the account's currency (cents for
  USD, yen for JPY, fils for KWD), `0 < amount ≤ 10^15`. A float, string, boolean or NaN → 422.
  Each account has exactly one ISO 4217 currency.
* **Time**: RFC 3339 with an explicit offset (`2026-12-01T12:00:00Z`); returned in UTC. A time
  without an offset, a date or a Unix timestamp → 422.
* **Ids**: opaque strings made by the server, with a type prefix: `acct_`, `biz_`, `lot_`,
  `txn_`, `dep_`, `rf_`, `promo_`, `red_`, `key_`.
* **Errors**: `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail` and
  a stable snake_case `code` to branch on (below); a `validation_error` lists what is wrong in
  `errors`. Request bodies refuse unknown fields.
* **Idempotency**: every POST (and `DELETE /v1/api-keys/{{key_id}}`) takes an optional
  `Idempotency-Key` header, scoped to the calling API key. The same key and request → the
  first response again (status and body). The same key with another request → 422
  `idempotency_key_reused`; while the first is still running → 409 `idempotency_key_in_use`.
* **Pagination**: lists take `?limit=` (1–500, default 50) and `?starting_after=<cursor>` and
  answer `{{"data": [...], "has_more": bool, "next_cursor": str | null}}`, newest first. Pass
  `next_cursor` as `starting_after` for the next page.
* **Compatibility**: responses may gain new fields; ignore the ones you don't know.

## Error codes

{openapi.error_code_table()}

Spend results carry their own rejection codes: see `SpendResult.code`.
"""


class BodySizeLimit:
    """Refuse request bodies over the limit with 413: at once when `Content-Length` says so, and
    as soon as the bytes read pass the limit when it doesn't (a chunked body)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request bodies are limited to {self.max_bytes} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                response = problems.problem(
                    413, "request_too_large", "Request body too large", detail
                )
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised while the route reads its body, before any response has begun.
                    raise StarletteHTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


class ExpirySweeper:
    """Runs the expiry run every `interval` seconds in a background thread while serving."""

    def __init__(self, db: Database, interval: float) -> None:
        self.db = db
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="expiry-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        from adledger.service import expiry

        while not self._stop.wait(self.interval):
            try:
                self.db.run(expiry.run_expiry)
            except Exception:  # keep sweeping; the next minute tries again
                log.exception("expiry sweep failed")


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    db: Database | None = None,
    sweep: bool = False,
    migrate: bool = True,
) -> FastAPI:
    settings = settings or (db.settings if db else Settings.from_env())
    database = db or Database(settings, clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(database.engine)
        sweeper = ExpirySweeper(database, settings.expiry_interval_seconds) if sweep else None
        if sweeper:
            sweeper.start()
        try:
            yield
        finally:
            if sweeper:
                sweeper.stop()

    app = FastAPI(
        title="adledger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
    )
    openapi.install(app)
    app.state.db = database
    problems.install(app)
    # FastAPI tries the routes in order, one by one (~60 of them): the two the ad server calls
    # thousands of times a second, spend and balance, come first. (The OpenAPI document keeps
    # its reading order: `openapi.finish` sorts the paths by `openapi.TAG_ORDER`.)
    for module in (
        health,
        spend,
        balance,
        keys,
        accounts,
        deposits,
        credits,
        refunds,
        promotions,
        expirations,
        transactions,
        reports,
        audit,
    ):
        app.include_router(module.router)
    web.install(app)  # the pages for advertisers and finance staff (not in the OpenAPI document)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AuditTrail, db=database)  # outermost: it sees every answer, 413s too
    return app
