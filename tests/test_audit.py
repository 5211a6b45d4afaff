"""The audit trail: every state-changing request leaves one record — who, what, when, how it
ended, the request id — in an append-only hash chain that `adledger verify` checks.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from adledger.cli import app as cli_app
from adledger.http.app import create_app
from adledger.service import verify
from adledger.storage.tables import audit_log
from factories import make_account
from tests_support import balances


def records(db: Any) -> list[Any]:
    with db.engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.seq)).all()
        conn.rollback()
    return rows


def last(db: Any) -> Any:
    return records(db)[-1]


def deposit_body(amount: int = 500) -> dict[str, Any]:
    return {"amount": amount, "payment_reference": "pay_1"}


@pytest.fixture
def acct(api):  # type: ignore[no-untyped-def]
    return make_account(api.db, cash=1_000)


def test_a_change_that_succeeds_is_recorded_with_who_what_and_the_request_id(api, acct):
    r = api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=deposit_body())
    assert r.status_code == 201
    rec = last(api.db)
    assert (rec.actor, rec.role, rec.method, rec.status, rec.code) == (
        api.finance.key_id,
        "finance",
        "POST",
        201,
        None,
    )
    assert rec.path == f"/v1/accounts/{acct['id']}/deposits"
    assert rec.request_id == r.headers["x-request-id"] and rec.request_id.startswith("req_")
    assert rec.at == api.db.clock.now()


def test_a_refusal_is_recorded_with_its_stable_code(api, acct):
    r = api.advertiser(acct["business_id"]).post(
        f"/v1/accounts/{acct['id']}/refunds", json={"amount": 99_999}
    )
    assert r.status_code == 409
    rec = last(api.db)
    assert (rec.status, rec.code, rec.role) == (409, "insufficient_refundable_funds", "advertiser")


def test_requests_refused_before_any_use_case_are_recorded_too(api, acct):
    url = f"/v1/accounts/{acct['id']}/deposits"
    api.client.post(url, json=deposit_body())  # no key
    api.ingest.post(url, json=deposit_body())  # a role that may not
    api.finance.post(url, json={"amount": 1.5, "payment_reference": "p"})  # invalid
    got = [(r.actor, r.role, r.status, r.code) for r in records(api.db)[-3:]]
    assert got == [
        (None, None, 401, "unauthorized"),
        (api.ingest.key_id, "ingest", 403, "forbidden"),
        (api.finance.key_id, "finance", 422, "validation_error"),
    ]


def test_reads_leave_no_record(api, acct):
    before = len(records(api.db))
    api.finance.get(f"/v1/accounts/{acct['id']}/balance")
    api.finance.get("/v1/accounts")
    assert len(records(api.db)) == before


def test_an_idempotent_replay_is_recorded_as_such(api, acct):
    key = {"Idempotency-Key": "dep-1"}
    url = f"/v1/accounts/{acct['id']}/deposits"
    first = api.finance.post(url, json=deposit_body(), headers=key)
    again = api.finance.post(url, json=deposit_body(), headers=key)
    assert first.json() == again.json()
    a, b = records(api.db)[-2:]
    assert (a.code, b.code) == (None, "replayed")
    assert a.idempotency_key == b.idempotency_key == "dep-1"
    assert balances(api.db, acct["id"])["cash"] == 1_500


def test_a_sensible_request_id_from_the_caller_is_kept_and_a_strange_one_replaced(api, acct):
    url = f"/v1/accounts/{acct['id']}/deposits"
    mine = api.finance.post(url, json=deposit_body(), headers={"X-Request-Id": "lb-7f3a.2"})
    assert mine.headers["x-request-id"] == "lb-7f3a.2" == last(api.db).request_id
    odd = api.finance.post(url, json=deposit_body(), headers={"X-Request-Id": "a b<script>"})
    assert odd.headers["x-request-id"].startswith("req_")
    assert api.finance.get("/v1/accounts").headers["x-request-id"].startswith("req_")


def test_a_change_and_its_record_commit_together(api, acct, monkeypatch):
    """If the record can't be written, the change is not made either (and the crash itself is
    recorded by the middleware)."""

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("audit storage unavailable")

    monkeypatch.setattr("adledger.http.respond.record_for", broken)
    before = len(records(api.db))
    r = api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=deposit_body())
    assert r.status_code == 500
    assert balances(api.db, acct["id"])["cash"] == 1_000
    crash = records(api.db)[before:]
    assert [(c.status, c.code) for c in crash] == [(500, "internal_error")]


def test_the_trail_is_admin_only_and_newest_first_in_pages(api, acct):
    for amount in (100, 200, 300):
        api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=deposit_body(amount))
    assert api.finance.get("/v1/audit").status_code == 403
    page = api.admin.get("/v1/audit", params={"limit": 2}).json()
    seqs = [r["seq"] for r in page["data"]]
    assert seqs == sorted(seqs, reverse=True) and page["has_more"]
    rest = api.admin.get("/v1/audit", params={"starting_after": page["next_cursor"]}).json()
    assert all(r["seq"] < seqs[-1] for r in rest["data"])
    mine = api.admin.get("/v1/audit", params={"actor": api.finance.key_id}).json()["data"]
    assert [r["status"] for r in mine] == [201, 201, 201]
    bad = api.admin.get("/v1/audit", params={"starting_after": "abc"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


def test_records_are_numbered_without_gaps_under_concurrent_requests(api, db):
    acct = make_account(db, cash=0)
    barrier = threading.Barrier(16)

    def one(n: int) -> int:
        with TestClient(create_app(db=db, migrate=False)) as client:
            barrier.wait()
            headers = {"Authorization": f"Bearer {api.finance.key}"}
            url = f"/v1/accounts/{acct['id']}/deposits"
            return client.post(url, json=deposit_body(100 + n), headers=headers).status_code

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(one, range(16))) == {201}
    seqs = [r.seq for r in records(db)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert db.read(verify.verify_ledger) == []


def test_the_database_refuses_to_change_or_delete_a_record(api, acct):
    api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=deposit_body())
    for statement in ("UPDATE audit_log SET status = 200", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError), api.db.engine.begin() as conn:
            conn.execute(text(statement))
    assert len(records(api.db)) >= 1


def _tamper(db: Any, backend: str, statement: str) -> None:
    """What someone with the database's password could do: lift the trigger and edit."""
    with db.engine.begin() as conn:
        if backend == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
            conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        conn.execute(text(statement))


def _chain_violations(db: Any) -> list[str]:
    check = next(c for c in verify.CHECKS if c.name == "audit_chain")
    return [v.message for v in db.read(verify.run_check, check)]


def _three_records(api, acct) -> None:  # type: ignore[no-untyped-def]
    for amount in (100, 200, 300):
        api.finance.post(f"/v1/accounts/{acct['id']}/deposits", json=deposit_body(amount))


def test_an_intact_trail_verifies(api, acct):
    _three_records(api, acct)
    assert _chain_violations(api.db) == []


@pytest.mark.corrupts_ledger
def test_verify_finds_a_record_edited_behind_its_back(api, acct, backend):
    _three_records(api, acct)
    second = records(api.db)[1].seq
    _tamper(api.db, backend, f"UPDATE audit_log SET status = 200 WHERE seq = {second}")
    assert _chain_violations(api.db) == [
        f"audit record {second} was altered: its hash does not match it"
    ]
    result = CliRunner().invoke(cli_app, ["--database-url", api.db.settings.database_url, "verify"])
    assert result.exit_code == 1 and "audit_chain" in result.stderr


@pytest.mark.corrupts_ledger
def test_verify_finds_a_record_removed_from_the_middle(api, acct, backend):
    _three_records(api, acct)
    seqs = [r.seq for r in records(api.db)]
    _tamper(api.db, backend, f"DELETE FROM audit_log WHERE seq = {seqs[1]}")
    assert _chain_violations(api.db) == [
        f"audit record {seqs[2]} follows {seqs[0]}: records are missing"
    ]


@pytest.mark.corrupts_ledger
def test_verify_finds_the_newest_records_cut_off(api, acct, backend):
    _three_records(api, acct)
    newest = records(api.db)[-1].seq
    _tamper(api.db, backend, f"DELETE FROM audit_log WHERE seq = {newest}")
    assert _chain_violations(api.db) == [
        f"the audit head does not name the last record ({newest - 1})"
    ]


def test_cli_changes_are_recorded_and_the_trail_can_be_read_from_the_cli(api):
    url = api.db.settings.database_url
    made = CliRunner().invoke(
        cli_app, ["--database-url", url, "keys", "create", "--role", "finance", "--name", "ops"]
    )
    assert made.exit_code == 0, made.output
    rec = last(api.db)
    assert rec.method == "CLI" and rec.actor.startswith("cli:") and rec.status == 0
    assert rec.path == "adledger keys create --role=finance --name=ops"
    key = made.stdout.strip().splitlines()[-1]
    assert key not in rec.path
    shown = CliRunner().invoke(cli_app, ["--database-url", url, "audit", "--limit", "5"])
    assert shown.exit_code == 0 and "keys create" in shown.stdout
    with api.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_log)).scalar() >= 1
