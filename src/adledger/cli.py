"""The `adledger` command line: serve the API, migrate, make keys, seed the demo, run checks.

Every command opens the same `Database` and calls the same service functions as the HTTP API.
The database is `--database-url`, else `ADLEDGER_DATABASE_URL`, else `./adledger.db`; the option
may be given before the command (`adledger --database-url URL demo`) or after it.

Errors are turned into exit codes once, here at the edge (`EXIT_CODES`), and printed with their
stable code: invalid input 2, not found 3, conflict 4, anything else 1.
"""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from sqlalchemy.exc import DBAPIError
from typer.core import TyperGroup

from adledger.config import Settings
from adledger.domain.errors import AdledgerError, Conflict, InvalidInput, InvalidTime, NotFound
from adledger.domain.money import format_money
from adledger.service.uow import Database, UnitOfWork

T = TypeVar("T")

EXIT_CODES: tuple[tuple[type[AdledgerError], int], ...] = (
    (InvalidInput, 2),
    (NotFound, 3),
    (Conflict, 4),
)


def exit_code_for(exc: AdledgerError) -> int:
    for family, code in EXIT_CODES:
        if isinstance(exc, family):
            return code
    return 1


def _out() -> Console:
    # Made per use, so output goes to whatever stdout is now (a terminal, a pipe, CliRunner).
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 120  # a pipe has no width; don't cut ids to Rich's default of 80
    return console


def _err() -> Console:
    return Console(stderr=True, highlight=False)


class _Edge(TyperGroup):
    """The root group: the one place where adledger's errors become messages and exit codes."""

    def invoke(self, ctx: Any) -> Any:  # Any: typer vendors its own click
        try:
            return super().invoke(ctx)
        except AdledgerError as exc:
            _err().print(f"error: {exc.code}: {exc.detail}", markup=False)
            raise typer.Exit(exit_code_for(exc)) from exc
        except DBAPIError as exc:
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            _err().print(f"error: database_error: {first}", markup=False)
            _err().print(
                "Is the database reachable, and migrated? (`adledger db upgrade`)", markup=False
            )
            raise typer.Exit(1) from exc


app = typer.Typer(
    cls=_Edge,
    help="adledger: the billing ledger of an ad platform (prepaid funds, promotional credit).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create (shown once) and revoke.", no_args_is_help=True)
promotions_app = typer.Typer(
    help="Promotions: create, list, make codes, report.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(promotions_app, name="promotions")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL, e.g. sqlite:///./adledger.db or postgresql+psycopg://user@host/db. "
        "Default: $ADLEDGER_DATABASE_URL, else sqlite:///./adledger.db.",
        show_default=False,
    ),
]


@app.callback()
def _root(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    ctx.obj = {"database_url": database_url}


def _settings(ctx: typer.Context, database_url: str | None) -> Settings:
    """Settings from the environment; a --database-url after the command wins over one before."""
    root = ctx.find_root().obj or {}
    return Settings.from_env(database_url or root.get("database_url"))


@contextmanager
def _database(ctx: typer.Context, database_url: str | None) -> Iterator[Database]:
    db = Database(_settings(ctx, database_url))
    try:
        yield db
    finally:
        db.dispose()


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")


def _parse_time(text: str) -> datetime:
    """RFC 3339 with an explicit offset (`2026-12-01T12:00:00Z`); a naive time is refused."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidTime(f"{text!r} is not an RFC 3339 time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidTime(f"{text!r} has no UTC offset; add one, e.g. Z or +09:00")
    return value


def _command_line(ctx: typer.Context) -> str:
    """The command as the audit trail tells it: its path and the options given (no secrets:
    no command takes one)."""
    given = [
        f"--{name.replace('_', '-')}={value}"
        for name, value in ctx.params.items()
        if value not in (None, False) and name != "database_url"
    ]
    command = ctx.command_path.split(" ", 1)[1:]  # the program's own name varies; say adledger
    return " ".join(["adledger", *command, *given])


def _change(ctx: typer.Context, db: Database, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a state-changing use case and record it in the audit trail, in one transaction."""
    from adledger.domain.audit import AuditRecord
    from adledger.domain.ids import new_id
    from adledger.service import audit

    def change(uow: UnitOfWork) -> T:
        result = fn(uow, *args, **kwargs)
        record = AuditRecord(
            at=uow.now,
            request_id=new_id("req"),
            actor=f"cli:{getpass.getuser()}",
            role=None,
            method="CLI",
            path=_command_line(ctx)[:2000],
            status=0,
        )
        audit.append(uow, record)
        return result

    return db.run(change)


# --- serve and db ------------------------------------------------------------------------------


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate the database and serve the HTTP API (docs at /docs); expire credit every minute."""
    import uvicorn

    from adledger.http.app import create_app

    settings = _settings(ctx, database_url)
    # The app's lifespan applies migrations before the first request is served.
    uvicorn.run(create_app(settings, sweep=True), host=host, port=port)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Apply every migration not yet applied (safe to run again)."""
    from adledger.storage.migrate import upgrade

    with _database(ctx, database_url) as db:
        upgrade(db.engine)
        _out().print(f"Database is at the newest schema: {_safe_url(db)}", markup=False)


def _safe_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=True)


# --- keys --------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help="admin, finance, ingest or advertiser.")],
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
    business: Annotated[
        str | None,
        typer.Option("--business", help="The business an advertiser key is bound to."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make an API key. It is shown once, alone on the last line of the output."""
    from adledger.service import keys

    with _database(ctx, database_url) as db:
        made = _change(ctx, db, keys.create_key, role=role, name=name, business_id=business)
    bound = f" for business {made['business_id']}" if made["business_id"] else ""
    _out().print(f"Created {made['role']} key {made['id']} ({made['name']}){bound}.", markup=False)
    _out().print("Store it now: it is shown only this once.", markup=False)
    typer.echo(made["key"])  # plain, alone on the last line: scripts take it with `tail -n1`


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (key_…), not the key itself.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: the next request made with it is refused (401)."""
    from adledger.service import keys

    with _database(ctx, database_url) as db:
        revoked = _change(ctx, db, keys.revoke_key, key_id)
    _out().print(
        f"Revoked {revoked['role']} key {revoked['id']} ({revoked['name']}) "
        f"at {_when(revoked['revoked_at'])}.",
        markup=False,
    )


# --- demo --------------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Option(help="Where the API is served, for the printed commands.")
    ] = "http://127.0.0.1:8000",
    env: Annotated[
        bool,
        typer.Option(
            "--env", help='Print only `export` lines, for `eval "$(adledger demo --env)"`.'
        ),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Seed a demo advertiser (once) and print fresh API keys and commands to try."""
    from adledger.demo import BUSINESS_NAME, seed_or_find
    from adledger.storage.migrate import upgrade

    with _database(ctx, database_url) as db:
        upgrade(db.engine)
        info = _change(ctx, db, seed_or_find)
    exports = (
        f"export API={shlex.quote(url.rstrip('/'))} ACCOUNT={info.account_id}\n"
        f"export ADMIN_KEY={info.admin_key} FINANCE_KEY={info.finance_key}\n"
        f"export INGEST_KEY={info.ingest_key} ADVERTISER_KEY={info.advertiser_key}"
        + (f"\nexport CODE={info.coupon_code}" if info.coupon_code else "")
    )
    if env:
        typer.echo(exports)
        return

    out = _out()
    if info.seeded:
        out.print(
            f"Seeded the demo: business {BUSINESS_NAME!r} ({info.business_id}).", markup=False
        )
    else:
        out.print(
            f"The demo is already here ({BUSINESS_NAME!r}, {info.business_id}): minted fresh keys.",
            markup=False,
        )
    out.print(f"Ad account: {info.account_id} ({info.currency})", markup=False)
    out.print()
    table = Table(title="API keys (shown once; run `adledger demo` again for new ones)")
    table.add_column("role")
    table.add_column("key", no_wrap=True, overflow="ignore")
    for role, key in (
        ("admin", info.admin_key),
        ("finance", info.finance_key),
        ("ingest", info.ingest_key),
        (f"advertiser ({BUSINESS_NAME})", info.advertiser_key),
    ):
        table.add_row(role, key)
    out.print(table)
    out.print()
    out.print("Paste into a shell, then try the commands below:", markup=False)
    typer.echo(exports)
    base = url.rstrip("/")
    typer.echo(TRY_COMMANDS.replace("{docs}", base + "/docs").replace("{web}", base + "/web"))


# Printed by `adledger demo`, after the `export` lines; the README's tour goes further.
TRY_COMMANDS = """
curl -s "$API/v1/accounts/$ACCOUNT/balance" -H "Authorization: Bearer $ADVERTISER_KEY" \\
  | python3 -m json.tool
curl -s "$API/v1/accounts/$ACCOUNT/transactions?limit=5" \\
  -H "Authorization: Bearer $ADVERTISER_KEY" | python3 -m json.tool
curl -s -X POST "$API/v1/spend" -H "Authorization: Bearer $INGEST_KEY" \\
  -H 'Content-Type: application/json' -d @- <<EOF
{"events": [{"event_id": "evt_$(date +%s)", "account_id": "$ACCOUNT", "amount": 1500,
             "occurred_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"}]}
EOF

API docs: {docs}    A longer tour: README.md
Web pages: {web}    sign in with the advertiser key (billing) or the finance key (console)"""


# --- expiry, balance, verify -------------------------------------------------------------------


@app.command()
def expire(
    ctx: typer.Context,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Expire lots whose expires_at ≤ this RFC 3339 time (not in the future). "
            "Default: now.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Expire credit lots that have run out: their unspent remainder goes to breakage."""
    from adledger.service.expiry import run_expiry

    when = _parse_time(as_of) if as_of is not None else None
    with _database(ctx, database_url) as db:
        result = _change(ctx, db, run_expiry, as_of=when)
    amounts = result["expired_amounts"]
    total = ", ".join(format_money(amount, cur) for cur, amount in sorted(amounts.items()))
    count = result["expired_lots"]
    lots = "lot" if count == 1 else "lots"
    _out().print(f"Expired {count} {lots}" + (f": {total}" if total else "."), markup=False)
    lapsed = result["lapsed_redemptions"]
    if lapsed:
        word = "redemption" if lapsed == 1 else "redemptions"
        _out().print(f"Lapsed {lapsed} {word} whose window ended unearned.", markup=False)


@app.command()
def balance(
    ctx: typer.Context,
    account: Annotated[str, typer.Argument(help="The ad account's id (acct_…).")],
    explain: Annotated[
        bool, typer.Option("--explain", help="Also say, in plain words, what the numbers mean.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Show an ad account's balance: prepaid cash, promotional credit and what each can do."""
    from adledger.service.balance import get_balance

    with _database(ctx, database_url) as db:
        bal = db.read(get_balance, account)
    cur = bal["currency"]

    def money(amount: int) -> str:
        return format_money(amount, cur)

    out = _out()
    out.print(f"{bal['account_id']} ({cur}) as of {_when(bal['as_of'])}", markup=False)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("balance")
    table.add_column("amount", justify="right", no_wrap=True)
    table.add_row("Prepaid cash available", money(bal["cash"]["available"]))
    table.add_row("Prepaid cash held for refunds", money(bal["cash"]["held"]))
    table.add_row("Promotional credit available", money(bal["credit"]["available"]))
    table.add_row("Spendable on ads", money(bal["spendable"]))
    table.add_row("Refundable now", money(bal["refundable"]))
    table.add_row("Withdrawable", money(bal["withdrawable"]))
    table.add_row("Depleted (ads stop delivering)", "yes" if bal["depleted"] else "no")
    out.print(table)

    if bal["credit"]["lots"]:
        lots = Table(box=box.SIMPLE_HEAD, title="Active credit lots, soonest expiry first")
        lots.add_column("lot", no_wrap=True)  # ids stay whole, to be copied
        lots.add_column("remaining", justify="right", no_wrap=True)
        lots.add_column("expires (UTC)", no_wrap=True)
        lots.add_column("campaign", no_wrap=True)
        lots.add_column("priority", justify="right")
        for lot in bal["credit"]["lots"]:
            lots.add_row(
                lot["id"],
                money(lot["remaining"]),
                lot["expires_at"].strftime("%Y-%m-%d %H:%M"),
                lot["campaign_id"] or "any",
                str(lot["priority"]),
            )
        out.print(lots)
    if explain:
        out.print(bal["explanation"], markup=False)


@app.command()
def verify(ctx: typer.Context, database_url: DatabaseUrl = None) -> None:
    """Check the whole ledger: balanced transactions, stored balances equal to their entries, …"""
    from adledger.service.verify import CHECKS, Check, Violation, verify_ledger

    out = _out()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} checks"),
        console=out,
        transient=True,
    )
    upcoming = iter(CHECKS[1:])

    def on_check(check: Check, violations: list[Violation]) -> None:
        mark = "ok  " if not violations else f"FAIL ({len(violations)})"
        progress.console.print(f"{mark} {check.name}: {check.title}", markup=False, soft_wrap=True)
        following = next(upcoming, None)
        progress.update(
            task, advance=1, description=f"checking {following.name}" if following else "done"
        )

    with _database(ctx, database_url) as db, progress:
        task = progress.add_task(f"checking {CHECKS[0].name}", total=len(CHECKS))
        violations = db.read(verify_ledger, on_check=on_check)
    if not violations:
        out.print(f"Ledger is clean: all {len(CHECKS)} checks passed.", markup=False)
        return
    err = _err()
    for violation in violations:
        err.print(
            f"violation: {violation.check}: {violation.message}", markup=False, soft_wrap=True
        )
    err.print(f"{len(violations)} violation(s): the ledger does not verify.", markup=False)
    raise typer.Exit(1)


# --- promotions ---------------------------------------------------------------------------------

MinorUnits = "in the currency's minor units (5000 = $50.00)"


@promotions_app.command("create")
def promotions_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What advertisers and finance call it.")],
    kind: Annotated[str, typer.Option(help="coupon, spend_threshold or deposit_bonus.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code; only such accounts redeem.")],
    ends_at: Annotated[str, typer.Option(help="Codes redeem until this RFC 3339 time.")],
    credit_valid_days: Annotated[
        int, typer.Option(help="Each granted lot expires this many days after it is granted.")
    ],
    reward: Annotated[int | None, typer.Option(help=f"The credit granted, {MinorUnits}.")] = None,
    percent: Annotated[
        int | None, typer.Option(help="deposit_bonus: a whole % of the deposit (with --max).")
    ] = None,
    max_amount: Annotated[
        int | None, typer.Option("--max", help=f"With --percent: the most granted, {MinorUnits}.")
    ] = None,
    starts_at: Annotated[
        str | None, typer.Option(help="Codes redeem from this RFC 3339 time. Default: now.")
    ] = None,
    threshold: Annotated[
        int | None, typer.Option(help=f"spend_threshold: cash spend that earns it, {MinorUnits}.")
    ] = None,
    min_deposit: Annotated[
        int | None, typer.Option(help=f"deposit_bonus: the smallest deposit, {MinorUnits}.")
    ] = None,
    window_days: Annotated[
        int, typer.Option(help="Days after redeeming for the spend or deposit to come.")
    ] = 60,
    max_redemptions: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    budget: Annotated[
        int | None, typer.Option(help=f"At most this much credit in all, {MinorUnits}.")
    ] = None,
    new_accounts_only: Annotated[
        bool, typer.Option(help="Only young accounts that have not spent yet.")
    ] = False,
    new_account_days: Annotated[int, typer.Option(help="How young, with the above.")] = 30,
    once_per_business: Annotated[
        bool, typer.Option(help="One redemption per business, whichever account redeems.")
    ] = True,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a promotion; its id is printed alone on the last line."""
    from adledger.service import promotions

    with _database(ctx, database_url) as db:
        made = _change(
            ctx,
            db,
            promotions.create_promotion,
            name=name,
            kind=kind,
            currency=currency,
            reward={"amount": reward, "percent": percent, "max_amount": max_amount},
            credit_valid_days=credit_valid_days,
            starts_at=_parse_time(starts_at) if starts_at else db.clock.now(),
            ends_at=_parse_time(ends_at),
            max_redemptions=max_redemptions,
            budget=budget,
            eligibility={
                "new_accounts_only": new_accounts_only,
                "new_account_days": new_account_days,
                "once_per_business": once_per_business,
            },
            threshold=threshold,
            window_days=window_days,
            min_deposit=min_deposit,
        )
    _out().print(
        f"Created {made['kind']} promotion {made['name']!r}, {made['status']} from "
        f"{_when(made['starts_at'])} to {_when(made['ends_at'])}.",
        markup=False,
    )
    typer.echo(made["id"])


def _reward_text(promo: dict[str, Any]) -> str:
    reward, cur = promo["reward"], promo["currency"]
    if reward.get("amount") is not None:
        text = format_money(reward["amount"], cur)
    else:
        text = f"{reward['percent']}% up to {format_money(reward['max_amount'], cur)}"
    if promo["kind"] == "spend_threshold":
        text += f" for {format_money(promo['threshold'], cur)} of spend"
    elif promo["kind"] == "deposit_bonus":
        text += f" on a deposit of {format_money(promo['min_deposit'], cur)}+"
    return text


@promotions_app.command("list")
def promotions_list(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="scheduled, active or ended (as of now).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List promotions, newest first."""
    from adledger.service import promotions

    with _database(ctx, database_url) as db:
        page = db.read(promotions.list_promotions, status=status, limit=500)
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("promotion", "name", "kind", "status", "reward", "redeemed", "ends"):
        table.add_column(column, no_wrap=column in ("promotion", "kind", "ends"))
    for p in page["data"]:
        cap = f"/{p['max_redemptions']}" if p["max_redemptions"] else ""
        table.add_row(
            p["id"],
            p["name"],
            p["kind"],
            p["status"],
            _reward_text(p),
            f"{p['redemptions']}{cap}",
            _when(p["ends_at"]),
        )
    _out().print(table)


@promotions_app.command("codes")
def promotions_codes(
    ctx: typer.Context,
    promotion: Annotated[str, typer.Argument(help="The promotion's id (promo_…).")],
    count: Annotated[int, typer.Option(help="How many codes, 1–10,000.")] = 1,
    database_url: DatabaseUrl = None,
) -> None:
    """Make single-use codes and print them, one a line on stdout. They are shown only now."""
    from adledger.service import promotions

    with _database(ctx, database_url) as db:
        made = _change(ctx, db, promotions.create_codes, promotion, count=count)
    _err().print(
        f"{len(made['codes'])} code(s) for {promotion}; store them now, they are not kept.",
        markup=False,
    )
    typer.echo("\n".join(made["codes"]))


@promotions_app.command("report")
def promotions_report(
    ctx: typer.Context,
    promotion: Annotated[str, typer.Argument(help="The promotion's id (promo_…).")],
    database_url: DatabaseUrl = None,
) -> None:
    """What a promotion granted, what became of the credit, and the cash it brought."""
    from adledger.service import promotions

    with _database(ctx, database_url) as db:
        rep = db.read(promotions.report, promotion)
        promo = db.read(promotions.get_promotion, promotion)
    cur = rep["currency"]
    out = _out()
    out.print(f"{promo['name']} ({promotion}), {promo['kind']}, {promo['status']}", markup=False)
    counts = rep["redemptions"]
    out.print(
        f"Redemptions: {counts['granted']} granted, {counts['earning']} earning, "
        f"{counts['lapsed']} lapsed",
        markup=False,
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("credit")
    table.add_column("amount", justify="right", no_wrap=True)
    for label, field in (
        ("Granted", "credit_granted"),
        ("Used on ads", "credit_used"),
        ("Outstanding", "credit_outstanding"),
        ("Expired unspent (breakage)", "credit_expired"),
        ("Voided", "credit_voided"),
        ("Clawed back", "credit_clawed_back"),
        ("Forfeited", "credit_forfeited"),
        ("Cash spent by redeemers in their windows", "cash_spend_in_windows"),
    ):
        table.add_row(label, format_money(rep[field], cur))
    if rep["budget"] is not None:
        table.add_row(
            "Budget committed / budget",
            (f"{format_money(rep['budget_committed'], cur)} / {format_money(rep['budget'], cur)}"),
        )
    out.print(table)


# --- audit ---------------------------------------------------------------------------------------


@app.command("audit")
def audit_trail(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="How many records, newest first (1–500).")] = 20,
    actor: Annotated[
        str | None, typer.Option(help="Only this actor's records (key_… or cli:user).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show the audit trail: every state-changing request and command, newest first."""
    from adledger.service import audit

    with _database(ctx, database_url) as db:
        page = db.read(audit.list_audit, actor=actor, limit=limit)
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("#", "at (UTC)", "actor", "role", "request", "status", "code"):
        table.add_column(column, no_wrap=column != "request", overflow="fold")
    for r in page["data"]:
        table.add_row(
            str(r["seq"]),
            r["at"].strftime("%Y-%m-%d %H:%M:%S"),
            r["actor"] or "—",
            r["role"] or "—",
            f"{r['method']} {r['path']}",
            str(r["status"]) if r["status"] else "—",
            r["code"] or "",
        )
    _out().print(table)
    if page["has_more"]:
        _out().print("… older records follow; show more with --limit (up to 500).", markup=False)


def main() -> None:
    app()
