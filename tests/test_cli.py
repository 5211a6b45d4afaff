"""The `adledger` command line, run in-process with CliRunner over the same service layer.

Most tests run on a SQLite file; the story test at the end runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, inspect, select, update
from typer.testing import CliRunner, Result

from adledger.cli import app, exit_code_for
from adledger.clock import FixedClock
from adledger.config import Settings
from adledger.demo import BUSINESS_NAME, seed_demo
from adledger.domain import errors
from adledger.http.app import create_app
from adledger.service import balance, promotions, verify
from adledger.service.uow import Database
from adledger.storage.tables import accounts, businesses, deposits, lots, refunds
from factories import grant, make_account

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--database-url", url, *args])


def last_line(result: Result) -> str:
    return result.stdout.rstrip("\n").splitlines()[-1]


@pytest.fixture
def cli_db(database_url: str) -> Iterator[Database]:
    """The CLI's database seen from the test, on the real clock (as the CLI sees it)."""
    database = Database(Settings(database_url=database_url))
    yield database
    database.dispose()


def days_ago(cli_db: Database, days: float) -> Database:
    """The same database on a clock `days` in the past, to arrange history."""
    return Database(
        cli_db.settings, FixedClock(datetime.now(UTC) - timedelta(days=days)), engine=cli_db.engine
    )


def count(db: Database, query: Any) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def http_get(db: Database, path: str, key: str) -> Any:
    with TestClient(create_app(db=db, migrate=False)) as client:
        return client.get(path, headers={"Authorization": f"Bearer {key}"})


# --- keys --------------------------------------------------------------------------------------


@sqlite_only
def test_keys_create_prints_the_key_alone_on_the_last_line_and_it_authenticates(
    database_url, cli_db
):
    result = run(database_url, "keys", "create", "--role", "finance", "--name", "Fin team")
    assert result.exit_code == 0, result.output
    key = last_line(result)
    assert key.startswith("adl_") and " " not in key
    assert http_get(cli_db, "/v1/accounts", key).status_code == 200


@sqlite_only
def test_a_key_revoked_from_the_cli_is_refused_on_its_next_request(database_url, cli_db):
    made = run(database_url, "keys", "create", "--role", "admin", "--name", "Ops")
    key = last_line(made)
    key_id = next(w for w in made.stdout.split() if w.startswith("key_"))
    result = run(database_url, "keys", "revoke", key_id)
    assert result.exit_code == 0, result.output
    assert "Revoked" in result.stdout
    assert http_get(cli_db, "/v1/accounts", key).status_code == 401


@sqlite_only
def test_an_advertiser_key_is_bound_to_the_business_it_names(database_url, cli_db):
    acct = make_account(cli_db)
    result = run(
        database_url,
        "keys",
        "create",
        "--role",
        "advertiser",
        "--name",
        "Acme",
        "--business",
        acct["business_id"],
    )
    assert result.exit_code == 0, result.output
    assert acct["business_id"] in result.stdout
    r = http_get(cli_db, f"/v1/accounts/{acct['id']}", last_line(result))
    assert r.status_code == 200


@sqlite_only
def test_the_database_url_may_follow_the_command_or_come_from_the_environment(
    database_url, cli_db, monkeypatch
):
    after = CliRunner().invoke(
        app,
        [
            "keys",
            "create",
            "--role",
            "ingest",
            "--name",
            "ad server",
            "--database-url",
            database_url,
        ],
    )
    assert after.exit_code == 0, after.output
    monkeypatch.setenv("ADLEDGER_DATABASE_URL", database_url)
    from_env = CliRunner().invoke(app, ["keys", "create", "--role", "ingest", "--name", "two"])
    assert from_env.exit_code == 0, from_env.output
    for result in (after, from_env):
        assert http_get(cli_db, "/healthz", last_line(result)).status_code == 200
        assert http_get(cli_db, "/v1/accounts", last_line(result)).status_code == 403


# --- bad input: one exit code per error family --------------------------------------------------


@sqlite_only
def test_an_unknown_role_exits_2_with_its_code(database_url):
    result = run(database_url, "keys", "create", "--role", "wizard", "--name", "x")
    assert result.exit_code == 2
    assert "invalid_role" in result.stderr


@sqlite_only
def test_an_advertiser_key_without_a_business_exits_2(database_url):
    result = run(database_url, "keys", "create", "--role", "advertiser", "--name", "x")
    assert result.exit_code == 2
    assert "validation_error" in result.stderr


@sqlite_only
@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("keys", "revoke", "key_nope"), "api_key_not_found"),
        (("balance", "acct_nope"), "account_not_found"),
        (
            ("keys", "create", "--role", "advertiser", "--name", "x", "--business", "biz_nope"),
            "business_not_found",
        ),
    ],
)
def test_something_missing_exits_3_with_its_code(database_url, args, code):
    result = run(database_url, *args)
    assert result.exit_code == 3
    assert code in result.stderr


@sqlite_only
@pytest.mark.parametrize(
    ("as_of", "code"),
    [
        ("2026-01-01T00:00:00", "invalid_time"),  # no offset
        ("yesterday", "invalid_time"),
        ("2999-01-01T00:00:00Z", "as_of_in_future"),
    ],
)
def test_a_bad_as_of_exits_2_with_its_code(database_url, as_of, code):
    result = run(database_url, "expire", "--as-of", as_of)
    assert result.exit_code == 2
    assert code in result.stderr


def test_error_families_map_to_exit_codes_once():
    assert exit_code_for(errors.InvalidAmount()) == 2
    assert exit_code_for(errors.AccountNotFound()) == 3
    assert exit_code_for(errors.InsufficientRefundableFunds()) == 4
    assert exit_code_for(errors.SelfApproval()) == 1
    assert exit_code_for(errors.AdledgerError()) == 1


def test_a_database_without_the_schema_exits_1_and_says_how_to_migrate(tmp_path):
    result = run(f"sqlite:///{tmp_path / 'empty.db'}", "balance", "acct_x")
    assert result.exit_code == 1
    assert "adledger db upgrade" in result.stderr


# --- db upgrade and serve -----------------------------------------------------------------------


def test_db_upgrade_makes_the_schema_on_a_new_database_and_can_run_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    for _ in range(2):
        result = run(url, "db", "upgrade")
        assert result.exit_code == 0, result.output
    db = Database(Settings(database_url=url))
    try:
        assert {"accounts", "lots", "transactions", "entries"} <= set(
            inspect(db.engine).get_table_names()
        )
    finally:
        db.dispose()


def test_serve_hands_the_app_with_the_expiry_sweeper_to_uvicorn(tmp_path, monkeypatch):
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    result = run(url, "serve", "--host", "0.0.0.0", "--port", "8765")
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == ("0.0.0.0", 8765)
    assert seen["app"].state.db.settings.database_url == url


# --- demo ----------------------------------------------------------------------------------------


def test_demo_seeds_a_new_database_once_and_then_only_mints_keys(tmp_path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"  # not migrated: the demo does it
    first = run(url, "demo")
    assert first.exit_code == 0, first.output
    assert "Seeded the demo" in first.stdout
    second = run(url, "demo")
    assert second.exit_code == 0, second.output
    assert "already here" in second.stdout

    db = Database(Settings(database_url=url))
    try:
        assert count(db, select(func.count()).where(businesses.c.name == BUSINESS_NAME)) == 1
        assert count(db, select(func.count()).select_from(accounts)) == 1
        assert count(db, select(func.count()).select_from(deposits)) == 2
        assert count(db, select(func.count()).select_from(lots)) == 3
        assert count(db, select(func.count()).select_from(refunds)) == 1
        account_id = db.read(_only_account_id)
        assert account_id in first.stdout and account_id in second.stdout
        # Fresh keys each time, and they work.
        keys_first = _exports(first.stdout)
        keys_second = _exports(second.stdout)
        assert keys_first["ADVERTISER_KEY"] != keys_second["ADVERTISER_KEY"]
        r = http_get(db, f"/v1/accounts/{account_id}", keys_second["ADVERTISER_KEY"])
        assert r.status_code == 200
        assert http_get(db, "/v1/accounts", keys_second["FINANCE_KEY"]).status_code == 200
    finally:
        db.dispose()


def test_demo_env_prints_only_export_lines(tmp_path):
    result = run(f"sqlite:///{tmp_path / 'demo.db'}", "demo", "--env", "--url", "http://h:1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.startswith("export ") for line in lines)
    assert _exports(result.stdout)["API"] == "http://h:1"
    assert set(_exports(result.stdout)) == {
        "API",
        "ACCOUNT",
        "ADMIN_KEY",
        "FINANCE_KEY",
        "INGEST_KEY",
        "ADVERTISER_KEY",
        "CODE",
    }


def test_the_demo_tells_a_consistent_story(db, clock):
    info = seed_demo(db)
    bal = db.read(balance.get_balance, info.account_id)
    # $750 deposited, $45 of spend paid by cash, $100 held for the pending refund.
    assert bal["cash"] == {"available": 60_500, "held": 10_000, "debt": 0}
    # $150 campaign credit with $60 used, a $25 welcome coupon, $200 goodwill.
    assert bal["credit"]["available"] == 31_500
    expiries = sorted(lot["expires_at"] - clock.now() for lot in bal["credit"]["lots"])
    assert expiries[0] <= timedelta(days=7) and expiries[-1] >= timedelta(days=300)
    assert any(lot["campaign_id"] for lot in bal["credit"]["lots"])
    assert bal["refundable"] == 60_500  # the spend was a day ago: past the quiet period
    # "Spend $100, get $25" was redeemed before the spend: its $45 of cash spend counts.
    [offer] = db.read(promotions.list_redemptions, info.account_id)["data"]
    assert (offer["status"], offer["progress"], offer["threshold"]) == ("earning", 4_500, 10_000)
    assert db.read(verify.verify_ledger) == []
    again = seed_demo(db)
    assert again.account_id == info.account_id and again.coupon_code != info.coupon_code
    coupon = db.run(promotions.redeem, info.account_id, code=again.coupon_code)
    assert coupon["status"] == "granted"


# --- promotions --------------------------------------------------------------------------------


@sqlite_only
def test_promotions_create_prints_the_id_last_and_codes_print_one_a_line(database_url, cli_db):
    made = run(
        database_url,
        *("promotions", "create", "--name", "Welcome", "--kind", "coupon", "--currency", "USD"),
        *("--reward", "5000", "--credit-valid-days", "30", "--ends-at", "2099-01-01T00:00:00Z"),
    )
    assert made.exit_code == 0, made.output
    promo = last_line(made)
    assert promo.startswith("promo_")
    codes = run(database_url, "promotions", "codes", promo, "--count", "3")
    assert codes.exit_code == 0, codes.output
    printed = codes.stdout.split()
    assert len(printed) == 3 and len(set(printed)) == 3
    acct = make_account(cli_db)
    assert cli_db.run(promotions.redeem, acct["id"], code=printed[0])["status"] == "granted"
    listed = run(database_url, "promotions", "list")
    assert promo in listed.stdout and "1" in listed.stdout and "$50.00" in listed.stdout
    report = run(database_url, "promotions", "report", promo)
    assert report.exit_code == 0, report.output
    assert "1 granted" in report.stdout and "$50.00" in report.stdout


@sqlite_only
def test_promotions_create_refuses_incoherent_terms_with_exit_2(database_url):
    result = run(
        database_url,
        *("promotions", "create", "--name", "X", "--kind", "spend_threshold"),
        *("--currency", "USD", "--reward", "500", "--credit-valid-days", "30"),
        *("--ends-at", "2099-01-01T00:00:00Z"),
    )
    assert result.exit_code == 2
    assert "validation_error" in result.stderr and "threshold" in result.stderr


@sqlite_only
def test_promotion_codes_for_an_unknown_promotion_exit_3(database_url):
    result = run(database_url, "promotions", "codes", "promo_nope")
    assert result.exit_code == 3 and "promotion_not_found" in result.stderr


# --- balance, expire, verify ----------------------------------------------------------------------


@sqlite_only
def test_balance_shows_cash_and_credit_and_explains_on_request(database_url, cli_db):
    acct = make_account(cli_db, cash=12_345)
    grant(cli_db, acct["id"], amount=5_000, days=10)
    result = run(database_url, "balance", acct["id"])
    assert result.exit_code == 0, result.output
    assert "$123.45" in result.stdout and "$50.00" in result.stdout
    assert "$173.45" in result.stdout  # spendable
    explanation = " ".join(cli_db.read(balance.get_balance, acct["id"])["explanation"].split())
    explained = run(database_url, "balance", acct["id"], "--explain")
    assert explanation not in " ".join(result.stdout.split())
    assert explanation in " ".join(explained.stdout.split())


@sqlite_only
def test_expire_takes_expired_credit_once(database_url, cli_db):
    acct = make_account(cli_db)
    past = days_ago(cli_db, 3)
    grant(past, acct["id"], amount=5_000, days=1)  # expired two days ago
    grant(cli_db, acct["id"], amount=7_000, days=30)
    first = run(database_url, "expire")
    assert first.exit_code == 0, first.output
    assert "Expired 1 lot: $50.00" in first.stdout
    again = run(database_url, "expire")
    assert again.exit_code == 0 and "Expired 0 lots." in again.stdout
    assert cli_db.read(balance.get_balance, acct["id"])["credit"]["available"] == 7_000


@sqlite_only
def test_expire_as_of_a_past_instant_leaves_later_expiries_alone(database_url, cli_db):
    acct = make_account(cli_db)
    grant(days_ago(cli_db, 3), acct["id"], amount=5_000, days=2)  # expired a day ago
    as_of = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    assert "Expired 0 lots." in run(database_url, "expire", "--as-of", as_of).stdout
    assert "Expired 1 lot" in run(database_url, "expire").stdout


@sqlite_only
def test_verify_names_each_violation_and_exits_non_zero(database_url, cli_db):
    acct = make_account(cli_db, cash=10_000)
    assert run(database_url, "verify").exit_code == 0
    with cli_db.engine.begin() as conn:  # corrupt a stored balance behind the ledger's back
        conn.execute(
            update(accounts).where(accounts.c.id == acct["id"]).values(cash_available=10_001)
        )
    result = run(database_url, "verify")
    assert result.exit_code == 1
    assert "account_balances" in result.stderr and acct["id"] in result.stderr


# --- the whole story, on every backend ------------------------------------------------------------


def test_the_cli_story_on_every_backend(database_url, cli_db):
    assert run(database_url, "db", "upgrade").exit_code == 0

    demo = run(database_url, "demo")
    assert demo.exit_code == 0, demo.output
    again = run(database_url, "demo")
    assert again.exit_code == 0 and "already here" in again.stdout
    assert count(cli_db, select(func.count()).select_from(accounts)) == 1
    account_id = cli_db.read(_only_account_id)

    made = run(database_url, "keys", "create", "--role", "finance", "--name", "Fin")
    assert made.exit_code == 0, made.output
    assert http_get(cli_db, f"/v1/accounts/{account_id}", last_line(made)).status_code == 200

    shown = run(database_url, "balance", account_id, "--explain")
    assert shown.exit_code == 0, shown.output
    assert "$605.00" in shown.stdout and "$315.00" in shown.stdout

    expired = run(database_url, "expire")
    assert expired.exit_code == 0 and "Expired 0 lots." in expired.stdout

    checked = run(database_url, "verify")
    assert checked.exit_code == 0, checked.output
    assert "clean" in checked.stdout
    for check in verify.CHECKS:
        assert check.name in checked.stdout

    assert run(database_url, "balance", "acct_nope").exit_code == 3


# --- helpers ------------------------------------------------------------------------------------


def _only_account_id(uow: Any) -> str:
    return str(uow.conn.execute(select(accounts.c.id)).scalar_one())


def _exports(stdout: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            for pair in line.removeprefix("export ").split():
                name, _, value = pair.partition("=")
                found[name] = value
    return found
