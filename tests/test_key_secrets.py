"""Secrets at rest and revocation (CONTRACT.md §3, §5): API keys and promotion codes are stored
only as hashes, and a revoked key is refused on its very next request.

The at-rest test makes keys and codes every way there is (HTTP with and without an
Idempotency-Key, the CLI, the demo seed), uses them, replays them, then dumps every row of every
table as text and looks for each secret, as sent and in the forms it could be normalised to.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from adledger.cli import app as cli
from adledger.domain.promotions import code_digest
from adledger.http.app import create_app
from adledger.http.encoding import rfc3339
from adledger.service import promotions
from adledger.service.keys import hash_key
from adledger.storage.tables import metadata
from api_support import assert_problem
from factories import make_account, make_business


def dump(db: Any) -> str:
    """Every row of every table (the audit trail's too), as text."""
    lines = []
    with db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                lines.append(f"{table.name}: " + " | ".join(str(v) for v in row))
        conn.rollback()
    return "\n".join(lines)


def forms(secret: str) -> set[str]:
    """The secret, and what it could be stored as if normalised on the way (a code's case,
    dashes and spaces are ignored; a key's prefix is fixed)."""
    bare = secret.replace("-", "").replace(" ", "")
    found = {secret, secret.lower(), secret.upper(), bare, bare.lower(), bare.upper()}
    if secret.startswith("adl_"):
        found.add(secret.removeprefix("adl_"))
    return {f for f in found if len(f) >= 12}


def cli_run(url: str, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--database-url", url, *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_no_table_holds_a_plaintext_api_key_or_promotion_code(api, db, clock):
    biz = make_business(db)["id"]
    acct = make_account(db, business_id=biz)["id"]
    keys: list[str] = []
    codes: list[str] = []

    # Keys over HTTP: every role, with and without an Idempotency-Key, and a replay of one.
    for i, (role, business) in enumerate(
        [("admin", None), ("finance", None), ("ingest", None), ("advertiser", biz)]
    ):
        body = {"role": role, "name": f"http {role}", "business_id": business}
        made = api.admin.post("/v1/api-keys", json=body)
        assert made.status_code == 201, made.text
        keys.append(made.json()["key"])
        headers = {"Idempotency-Key": f"make-{i}"}
        made = api.admin.post("/v1/api-keys", json=body, headers=headers)
        assert made.status_code == 201, made.text
        keys.append(made.json()["key"])
        again = api.admin.post("/v1/api-keys", json=body, headers=headers)
        assert_problem(again, 409, "response_shown_once")

    # Keys from the CLI, and the demo seed's keys and coupon code.
    url = db.settings.database_url
    keys.append(
        cli_run(url, "keys", "create", "--role", "finance", "--name", "cli").splitlines()[-1]
    )
    keys.append(
        cli_run(
            url, "keys", "create", "--role", "advertiser", "--business", biz, "--name", "cli adv"
        ).splitlines()[-1]
    )
    exports = cli_run(url, "demo", "--env")
    for word in exports.split():
        name, _, value = word.partition("=")
        if name.endswith("_KEY"):
            keys.append(value)
        elif name == "CODE":
            codes.append(value)

    # Codes over HTTP (with and without an Idempotency-Key, and a replay) and from the CLI.
    now = clock.now()
    promo = api.finance.post(
        "/v1/promotions",
        json={
            "name": "Secrets",
            "kind": "coupon",
            "currency": "USD",
            "reward": {"amount": 100},
            "credit_valid_days": 30,
            "starts_at": rfc3339(now - timedelta(days=1)),
            "ends_at": rfc3339(now + timedelta(days=30)),
            "eligibility": {"once_per_business": False},
        },
    ).json()["id"]
    r = api.finance.post(f"/v1/promotions/{promo}/codes", json={"count": 3})
    codes += r.json()["codes"]
    headers = {"Idempotency-Key": "codes"}
    codes += api.finance.post(
        f"/v1/promotions/{promo}/codes", json={"count": 3}, headers=headers
    ).json()["codes"]
    again = api.finance.post(f"/v1/promotions/{promo}/codes", json={"count": 3}, headers=headers)
    assert_problem(again, 409, "response_shown_once")
    codes += cli_run(url, "promotions", "codes", promo, "--count", "3").split()
    codes += db.run(promotions.create_codes, promo, count=2)["codes"]

    # Use them: keys authenticate reads and idempotent writes; codes are redeemed (typed in
    # other forms too), refused when used again, with the refusals stored for replay.
    for key in keys:
        r = api.client.get("/v1/accounts", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code in (200, 403), r.text
    advertiser = api.advertiser(biz)
    for i, code in enumerate(codes[:4]):
        typed = code.lower().replace("-", " ") if i % 2 else code
        r = advertiser.post(
            f"/v1/accounts/{acct}/redemptions",
            json={"code": typed},
            headers={"Idempotency-Key": f"redeem-{i}"},
        )
        assert r.status_code in (201, 409), r.text
        used = advertiser.post(
            f"/v1/accounts/{acct}/redemptions",
            json={"code": code},
            headers={"Idempotency-Key": f"redeem-again-{i}"},
        )
        assert used.status_code == 409, used.text
    api.admin.delete(f"/v1/api-keys/{advertiser.key_id}")

    assert len(keys) == 14 and len(codes) >= 11, (len(keys), len(codes))
    assert len(set(keys)) == len(keys) and len(set(codes)) == len(codes)
    rows = dump(db)
    # The dump holds what is stored instead: each key's and each code's digest.
    assert all(hash_key(key) in rows for key in keys)
    assert all(code_digest(code) in rows for code in codes)
    found = [secret for secret in keys + codes for f in forms(secret) if f in rows]
    assert not found, f"secrets stored in plaintext: {found}"


# --- revocation ---------------------------------------------------------------------------------


def _key(api: Any, role: str, business_id: str | None) -> dict[str, Any]:
    body = {"role": role, "name": f"to revoke ({role})", "business_id": business_id}
    made = api.admin.post("/v1/api-keys", json=body)
    assert made.status_code == 201, made.text
    return dict(made.json())


@pytest.mark.parametrize("role", ["admin", "finance", "ingest", "advertiser"])
def test_a_revoked_key_fails_on_its_very_next_request_in_the_same_session(api, db, role):
    acct = make_account(db)
    made = _key(api, role, acct["business_id"] if role == "advertiser" else None)
    read = {
        "admin": "/v1/accounts",
        "finance": "/v1/accounts",
        "advertiser": f"/v1/accounts/{acct['id']}",
        "ingest": None,
    }[role]
    auth = {"Authorization": f"Bearer {made['key']}"}
    spend = {"events": [{"event_id": "ev-r", "account_id": acct["id"], "amount": 1,
                         "occurred_at": rfc3339(db.clock.now())}]}  # fmt: skip
    # One client session: the key authenticates several requests, GET and POST, one stored.
    with TestClient(api.client.app) as session:
        for _ in range(3):
            if read:
                assert session.get(read, headers=auth).status_code == 200
            else:
                r = session.post("/v1/spend", json=spend, headers={**auth, "Idempotency-Key": "s"})
                assert r.status_code == 200, r.text
        stored = session.post(
            "/v1/businesses" if role in ("admin", "finance") else "/v1/spend",
            json={"name": "before"} if role in ("admin", "finance") else spend,
            headers={**auth, "Idempotency-Key": "kept"},
        )
        assert stored.status_code in (200, 201, 403), stored.text

        assert api.admin.delete(f"/v1/api-keys/{made['id']}").status_code == 200

        # The very next request of the session, and every one after: 401, replays included.
        if read:
            assert_problem(session.get(read, headers=auth), 401, "unauthorized")
        assert_problem(
            session.post(
                "/v1/businesses" if role in ("admin", "finance") else "/v1/spend",
                json={"name": "before"} if role in ("admin", "finance") else spend,
                headers={**auth, "Idempotency-Key": "kept"},
            ),
            401,
            "unauthorized",
        )
        assert_problem(session.post("/v1/spend", json=spend, headers=auth), 401, "unauthorized")


def test_an_admin_key_that_revokes_itself_is_refused_at_once(api):
    made = _key(api, "admin", None)
    auth = {"Authorization": f"Bearer {made['key']}"}
    with TestClient(api.client.app) as session:
        assert session.get("/v1/accounts", headers=auth).status_code == 200
        assert session.delete(f"/v1/api-keys/{made['id']}", headers=auth).status_code == 200
        assert_problem(session.get("/v1/accounts", headers=auth), 401, "unauthorized")
        r = session.delete(f"/v1/api-keys/{made['id']}", headers=auth)
        assert_problem(r, 401, "unauthorized")


def test_a_key_revoked_from_the_cli_is_refused_over_http_at_once(api, db):
    made = _key(api, "finance", None)
    auth = {"Authorization": f"Bearer {made['key']}"}
    assert api.client.get("/v1/accounts", headers=auth).status_code == 200
    cli_run(db.settings.database_url, "keys", "revoke", made["id"])
    assert_problem(api.client.get("/v1/accounts", headers=auth), 401, "unauthorized")


@pytest.fixture
def served(db: Any) -> Iterator[str]:
    """The app served by uvicorn on a loopback port of its own, for real keep-alive sessions."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(db=db, migrate=False), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _client_port(r: httpx.Response) -> int:
    return int(r.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_revoked_key_is_refused_on_a_kept_alive_connection_of_a_real_server(api, served):
    """Over one HTTP/1.1 keep-alive connection to a real server: the key works, is revoked (from
    another connection), and the next request on the same connection is 401."""
    made = _key(api, "finance", None)
    auth = {"Authorization": f"Bearer {made['key']}"}
    with httpx.Client(base_url=served, headers=auth, timeout=10) as session:
        first = session.get("/v1/accounts")
        assert first.status_code == 200, first.text
        again = session.post("/v1/businesses", json={"name": "on the connection"})
        assert again.status_code == 201, again.text
        port = _client_port(first)
        assert _client_port(again) == port  # the same connection

        with httpx.Client(base_url=served, timeout=10) as admin:
            revoked = admin.delete(
                f"/v1/api-keys/{made['id']}",
                headers={"Authorization": f"Bearer {api.admin.key}"},
            )
            assert revoked.status_code == 200, revoked.text

        after = session.get("/v1/accounts")
        assert _client_port(after) == port  # still the same connection
        assert after.status_code == 401 and after.json()["code"] == "unauthorized", after.text
        assert session.post("/v1/businesses", json={"name": "no"}).status_code == 401
