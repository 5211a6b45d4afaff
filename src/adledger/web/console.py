"""The finance console (finance and admin keys): the refund queue with each account's context,
account search and the account's actions (grant credit, void a lot, suspend or reinstate,
reverse a deposit), promotions (create, codes as a one-time CSV, the report) and the
liabilities report with its charts.

Each action is the API's service function, admitted by the API's own role check, recorded in
the audit trail in its own transaction. The four-eyes rule is the service's: approving a refund
with the key that requested it is refused (403 `self_approval_forbidden`), and the page says so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adledger.domain.errors import AdledgerError
from adledger.domain.money import check_currency, format_money
from adledger.http.deps import STAFF
from adledger.http.problems import status_for
from adledger.http.routers.credits import CreditIn, VoidIn
from adledger.http.routers.deposits import ReverseIn
from adledger.http.routers.promotions import CodesIn, PromotionIn
from adledger.http.routers.refunds import DecisionIn, RejectIn
from adledger.service import (
    accounts,
    balance,
    console,
    credits,
    deposits,
    promotions,
    refunds,
    reports,
)
from adledger.service.keys import Principal
from adledger.service.uow import Database, UnitOfWork
from adledger.web import charts, forms
from adledger.web.render import WebRoute, redirect, render, secure
from adledger.web.session import (
    act,
    allow,
    check_csrf,
    form_of,
    get_db,
    note_refusal,
    principal_of,
)

router = APIRouter(prefix="/web/finance", route_class=WebRoute, include_in_schema=False)

SELF_APPROVAL = (
    "You requested this refund yourself, so you can't approve it: another finance colleague "
    "must (the four-eyes rule)."
)


def staff(request: Request, db: Database) -> Principal:
    return allow(principal_of(request, db), *STAFF)


def staff_post(request: Request, db: Database, form: dict[str, str]) -> Principal:
    principal = principal_of(request, db)
    check_csrf(request, form)
    return allow(principal, *STAFF)


def refusal_text(exc: AdledgerError) -> str:
    if exc.code == "self_approval_forbidden":
        return SELF_APPROVAL
    return f"{exc.detail[:1].upper()}{exc.detail[1:]}."


# --- the refund queue ------------------------------------------------------------------------


def _queue_page(
    request: Request,
    db: Database,
    principal: Principal,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
) -> Response:
    after = request.query_params.get("after") or None

    def view(uow: UnitOfWork) -> dict[str, Any]:
        return {
            "queue": console.refund_queue(uow, limit=25, starting_after=after),
            "approved": refunds.list_refunds(uow, status="approved", limit=25),
            "now": uow.now,
        }

    try:
        found = db.read(view)
    except AdledgerError:
        after = None
        found = db.read(view)
    return render(
        request,
        "finance_queue.html",
        status=status,
        queue=found["queue"],
        approved=found["approved"]["data"],
        errors=errors or {},
        principal_key=principal.key_id,
        next_url=f"?after={found['queue']['next_cursor']}" if found["queue"]["has_more"] else None,
    )


@router.get("")
def queue_page(request: Request, db: Database = Depends(get_db)) -> Response:
    return _queue_page(request, db, staff(request, db))


_DECISIONS: dict[str, tuple[Callable[..., Any], str]] = {
    "approve": (refunds.approve_refund, "approved: the payment service may now pay it out"),
    "reject": (refunds.reject_refund, "rejected: the held amount is available to the advertiser"),
    "settle": (refunds.settle_refund, "marked paid"),
    "fail": (refunds.fail_refund, "marked failed: the held amount is available again"),
}


@router.post("/refunds/{refund_id}/{decision}")
def decide_refund(
    refund_id: str,
    decision: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    principal = staff_post(request, db, form)
    if decision not in _DECISIONS:
        return render(
            request, "error.html", status=404, title="Not found", detail="No such action."
        )
    fn, done = _DECISIONS[decision]
    found = db.read(refunds.get_refund, refund_id)
    reason = forms.text(form, "reason")
    try:
        if decision == "reject":
            forms.validated(RejectIn, reason=reason or "")
        else:
            forms.validated(DecisionIn, reason=reason)
        act(request, db, fn, refund_id, actor_key_id=principal.key_id, reason=reason)
    except forms.FormError:
        message = "Give a reason for the rejection (up to 500 characters)."
        return _queue_page(request, db, principal, status=422, errors={refund_id: message})
    except AdledgerError as exc:
        if exc.code == "refund_not_found":
            raise
        note_refusal(request, exc)
        return _queue_page(
            request, db, principal, status=status_for(exc), errors={refund_id: refusal_text(exc)}
        )
    amount = format_money(found["amount"], found["currency"])
    return redirect("/web/finance", flash=f"Refund {refund_id} of {amount} {done}.")


# --- accounts --------------------------------------------------------------------------------


@router.get("/accounts")
def accounts_page(request: Request, db: Database = Depends(get_db)) -> Response:
    staff(request, db)
    query = request.query_params.get("q", "")
    error = None
    found: list[dict[str, Any]] = []
    try:
        found = db.read(console.search_accounts, query)
    except AdledgerError as exc:
        error = exc.detail
    return render(
        request,
        "finance_accounts.html",
        status=422 if error else 200,
        query=query,
        results=found,
        error=error,
    )


def account_view(uow: UnitOfWork, account_id: str) -> dict[str, Any]:
    return {
        "account": accounts.get_account(uow, account_id),
        "balance": balance.get_balance(uow, account_id),
        "context": console.account_context(uow, [account_id])[account_id],
        "lots": credits.list_credits(uow, account_id, limit=50)["data"],
        "deposits": deposits.list_deposits(uow, account_id, limit=25)["data"],
        "refunds": refunds.list_account_refunds(uow, account_id, limit=25)["data"],
        "now": uow.now,
    }


def _account_page(
    request: Request,
    db: Database,
    account_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    view = db.read(account_view, account_id)
    acct = view["account"]
    now = view["now"]
    default_expiry = (now + timedelta(days=30)).astimezone(ZoneInfo(acct["timezone"]))
    return render(
        request,
        "finance_account.html",
        status=status,
        account=acct,
        balance=view["balance"],
        context=view["context"],
        lots=view["lots"],
        deposits=view["deposits"],
        refunds=view["refunds"],
        tz=acct["timezone"],
        cur=acct["currency"],
        errors=errors or {},
        values=values or {},
        default_expiry=default_expiry.strftime("%Y-%m-%dT%H:%M"),
    )


@router.get("/accounts/{account_id}")
def account_page(account_id: str, request: Request, db: Database = Depends(get_db)) -> Response:
    staff(request, db)
    return _account_page(request, db, account_id)


def _account_action(
    request: Request,
    db: Database,
    account_id: str,
    form_name: str,
    run: Callable[[], str],
    values: dict[str, str] | None = None,
) -> Response:
    """Run an account action; on success back to the account with `run`'s message, else the
    account page again with the error beside the form and nothing changed."""
    try:
        message = run()
    except forms.FormError as exc:
        return _account_page(
            request, db, account_id, status=422, errors={form_name: exc.message}, values=values
        )
    except AdledgerError as exc:
        if exc.code == "account_not_found":
            raise
        note_refusal(request, exc)
        return _account_page(
            request,
            db,
            account_id,
            status=status_for(exc),
            errors={form_name: refusal_text(exc)},
            values=values,
        )
    return redirect(f"/web/finance/accounts/{account_id}", flash=message)


@router.post("/accounts/{account_id}/credits")
def grant_credit(
    account_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    staff_post(request, db, form)
    acct = db.read(accounts.get_account, account_id)
    values = {k: form.get(k, "") for k in ("amount", "expires_at", "reason", "campaign_id")}

    def run() -> str:
        amount = forms.amount(form, "amount", acct["currency"], "amount of credit")
        expires = forms.local_datetime(form, "expires_at", acct["timezone"], "expiry")
        body = forms.validated(
            CreditIn,
            amount=amount,
            expires_at=expires.isoformat(),
            reason=forms.text(form, "reason") or "",
            campaign_id=forms.text(form, "campaign_id"),
            priority=forms.integer(form, "priority", "priority", default=50),
        )
        lot = act(request, db, credits.grant_credit, account_id, **body.model_dump())
        return f"Granted {format_money(lot['original'], acct['currency'])} of credit ({lot['id']})."

    return _account_action(request, db, account_id, "grant", run, values)


@router.post("/accounts/{account_id}/{change}")
def change_status(
    account_id: str,
    change: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    staff_post(request, db, form)
    actions = {"suspend": accounts.suspend_account, "reinstate": accounts.reinstate_account}
    if change not in actions:
        return render(
            request, "error.html", status=404, title="Not found", detail="No such action."
        )

    def run() -> str:
        made = act(request, db, actions[change], account_id)
        return f"Account {made['name']} is now {made['status']}."

    return _account_action(request, db, account_id, "status", run)


@router.post("/lots/{lot_id}/void")
def void_lot(
    lot_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    staff_post(request, db, form)
    account_id = form.get("account_id", "")

    def run() -> str:
        body = forms.validated(VoidIn, reason=forms.text(form, "reason") or "")
        lot = act(request, db, credits.void_credit, lot_id, reason=body.reason)
        return f"Lot {lot['id']} voided; its unspent remainder is gone."

    return _account_action(request, db, account_id, f"void-{lot_id}", run)


@router.post("/deposits/{deposit_id}/reverse")
def reverse_deposit(
    deposit_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    staff_post(request, db, form)
    found = db.read(deposits.get_deposit, deposit_id)

    def run() -> str:
        body = forms.validated(ReverseIn, reason=forms.text(form, "reason") or "")
        act(request, db, deposits.reverse_deposit, deposit_id, reason=body.reason)
        return f"Deposit {deposit_id} reversed."

    return _account_action(request, db, found["account_id"], f"reverse-{deposit_id}", run)


# --- promotions ------------------------------------------------------------------------------


def _promotions_page(
    request: Request,
    db: Database,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    def view(uow: UnitOfWork) -> dict[str, Any]:
        return {
            "promotions": promotions.list_promotions(uow, limit=50)["data"],
            "currencies": console.currencies_in_use(uow),
            "now": uow.now,
        }

    found = db.read(view)
    now = found["now"]
    defaults = {
        "kind": "coupon",
        "currency": (found["currencies"] or ["USD"])[0],
        "credit_valid_days": "30",
        "window_days": "60",
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M"),
        "once_per_business": "on",
    }
    return render(
        request,
        "promotions.html",
        status=status,
        promotions=found["promotions"],
        currencies=found["currencies"],
        error=error,
        values=values or defaults,
    )


@router.get("/promotions")
def promotions_page(request: Request, db: Database = Depends(get_db)) -> Response:
    staff(request, db)
    return _promotions_page(request, db)


PROMOTION_FIELDS = (
    "name",
    "kind",
    "currency",
    "reward_amount",
    "reward_percent",
    "reward_max_amount",
    "threshold",
    "min_deposit",
    "credit_valid_days",
    "window_days",
    "starts_at",
    "ends_at",
    "max_redemptions",
    "budget",
    "new_accounts_only",
    "new_account_days",
    "once_per_business",
)


def promotion_terms(form: dict[str, str]) -> PromotionIn:
    """The creation form as the API's request model (times in UTC, amounts in major units)."""
    currency = (form.get("currency") or "").strip().upper()
    kind = form.get("kind", "")
    try:
        check_currency(currency)
    except AdledgerError:
        raise forms.FormError(
            field="currency", message="Choose an ISO 4217 currency, like USD."
        ) from None
    reward: dict[str, Any] = {}
    if form.get("reward_percent", "").strip() and kind == "deposit_bonus":
        reward["percent"] = forms.integer(form, "reward_percent", "percentage")
        reward["max_amount"] = forms.amount(
            form, "reward_max_amount", currency, "most the bonus grants"
        )
    else:
        reward["amount"] = forms.amount(form, "reward_amount", currency, "reward")
    eligibility: dict[str, Any] = {
        "new_accounts_only": form.get("new_accounts_only") == "on",
        "once_per_business": form.get("once_per_business") == "on",
    }
    days = forms.integer(form, "new_account_days", "number of days")
    if days is not None:
        eligibility["new_account_days"] = days
    values: dict[str, Any] = {
        "name": forms.text(form, "name") or "",
        "kind": kind,
        "currency": currency,
        "reward": reward,
        "credit_valid_days": forms.integer(form, "credit_valid_days", "days of validity"),
        "starts_at": forms.local_datetime(form, "starts_at", "UTC", "start").isoformat(),
        "ends_at": forms.local_datetime(form, "ends_at", "UTC", "end").isoformat(),
        "eligibility": eligibility,
        "window_days": forms.integer(form, "window_days", "window", default=60),
    }
    if kind == "spend_threshold":
        values["threshold"] = forms.amount(form, "threshold", currency, "spend threshold")
    if kind == "deposit_bonus":
        values["min_deposit"] = forms.amount(form, "min_deposit", currency, "minimum deposit")
    if (n := forms.integer(form, "max_redemptions", "most redemptions")) is not None:
        values["max_redemptions"] = n
    if (budget := forms.optional_amount(form, "budget", currency, "budget")) is not None:
        values["budget"] = budget
    return forms.validated(PromotionIn, **values)


@router.post("/promotions")
def create_promotion(
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    staff_post(request, db, form)
    values = {k: form.get(k, "") for k in PROMOTION_FIELDS}
    try:
        body = promotion_terms(form)
        made = act(request, db, promotions.create_promotion, **body.model_dump())
    except forms.FormError as exc:
        return _promotions_page(request, db, status=422, error=exc.message, values=values)
    except AdledgerError as exc:
        note_refusal(request, exc)
        return _promotions_page(
            request, db, status=status_for(exc), error=refusal_text(exc), values=values
        )
    return redirect(
        f"/web/finance/promotions/{made['id']}", flash=f"Promotion “{made['name']}” created."
    )


def _promotion_page(
    request: Request,
    db: Database,
    promotion_id: str,
    *,
    status: int = 200,
    error: str | None = None,
) -> Response:
    def view(uow: UnitOfWork) -> dict[str, Any]:
        return {
            "promotion": promotions.get_promotion(uow, promotion_id),
            "report": promotions.report(uow, promotion_id),
        }

    found = db.read(view)
    return render(
        request,
        "promotion.html",
        status=status,
        promotion=found["promotion"],
        report=found["report"],
        cur=found["promotion"]["currency"],
        error=error,
    )


@router.get("/promotions/{promotion_id}")
def promotion_page(promotion_id: str, request: Request, db: Database = Depends(get_db)) -> Response:
    staff(request, db)
    return _promotion_page(request, db, promotion_id)


@router.post("/promotions/{promotion_id}/codes")
def make_codes(
    promotion_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    """The codes, once, as a CSV download: only their digests are kept, so this response is
    the only place they ever appear (it is not cached)."""
    staff_post(request, db, form)
    try:
        count = forms.integer(form, "count", "number of codes")
        body = forms.validated(CodesIn, count=count)
        made = act(request, db, promotions.create_codes, promotion_id, count=body.count, status=200)
    except forms.FormError:
        message = "Enter how many codes to make: a whole number from 1 to 10,000."
        return _promotion_page(request, db, promotion_id, status=422, error=message)
    except AdledgerError as exc:
        if exc.code == "promotion_not_found":
            raise
        note_refusal(request, exc)
        return _promotion_page(
            request, db, promotion_id, status=status_for(exc), error=refusal_text(exc)
        )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["promotion_id", "code"])
    for code in made["codes"]:
        writer.writerow([promotion_id, code])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return secure(
        Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{promotion_id}-codes-{stamp}.csv"'
            },
        )
    )


# --- liabilities -----------------------------------------------------------------------------


@router.get("/liabilities")
def liabilities_page(request: Request, db: Database = Depends(get_db)) -> Response:
    staff(request, db)
    currencies = db.read(console.currencies_in_use)
    currency = (request.query_params.get("currency") or (currencies or ["USD"])[0]).upper()
    if currency not in currencies and currencies:
        return render(
            request,
            "error.html",
            status=404,
            title="Not found",
            detail=f"No account holds {currency}.",
        )

    def view(uow: UnitOfWork) -> dict[str, Any]:
        return {
            "report": reports.liabilities(uow, currency),
            "history": console.liabilities_history(uow, currency, days=90),
        }

    found = db.read(view)
    history = found["history"]
    labels = [f"{d.day.day} {d.day:%b}" for d in history]
    last = history[-1] if history else None
    owed = charts.lines(
        labels,
        [
            charts.Series("prepaid funds owed", "s-cash", [d.cash for d in history]),
            charts.Series(
                "credit outstanding", "s-credit", [d.credit_outstanding for d in history]
            ),
        ],
        currency,
        title="Prepaid funds owed and credit outstanding, last 90 days",
        desc=(
            f"At the end of today: {format_money(last.cash, currency)} of prepaid funds owed "
            f"and {format_money(last.credit_outstanding, currency)} of credit outstanding."
            if last
            else "No history yet."
        ),
        label_every=15,
    )
    breakage = charts.lines(
        labels,
        [charts.Series("breakage to date", "s-expiring", [d.breakage for d in history])],
        currency,
        title="Breakage (credit expired unspent) to date, last 90 days",
        desc=f"{format_money(last.breakage, currency)} of credit expired unspent to date."
        if last
        else "No history yet.",
        label_every=15,
    )
    return render(
        request,
        "liabilities.html",
        report=found["report"],
        currency=currency,
        currencies=currencies,
        owed_chart=owed,
        breakage_chart=breakage,
        history=history[-14:],
        cur=currency,
    )
