"""The advertiser's billing page: the balance explained, credit lots and when they expire, spend
per day, transactions (filtered, paged, as CSV), and the actions — redeem a code, request or
cancel a refund.

Every read and action is the API's own service function with the key's scope, so an advertiser
sees its business's accounts only (another's is a 404, as in the API) and may do here exactly
what its key may do there.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from adledger.domain.errors import AdledgerError
from adledger.domain.money import format_money
from adledger.http.deps import READERS
from adledger.http.problems import status_for
from adledger.http.routers.promotions import RedemptionIn
from adledger.http.routers.refunds import DecisionIn, RefundIn
from adledger.service import accounts, balance, promotions, refunds, statements
from adledger.service.history import KINDS
from adledger.service.keys import Principal
from adledger.service.pagination import Page
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

router = APIRouter(prefix="/web", route_class=WebRoute, include_in_schema=False)

SOON = timedelta(days=7)
EXPIRY_WEEKS = 8
PAGE_SIZE = 25

# Each refusal of a code, in the advertiser's words.
REDEEM_REFUSALS = {
    "code_invalid": "We don't recognise that code. Check it for typos and try again.",
    "code_used": "That code has already been used: each code works once.",
    "promotion_not_active": "That promotion isn't running now: it hasn't started yet, or it "
    "has ended.",
    "promotion_exhausted": "That promotion has run out: all of its rewards have been given.",
    "already_redeemed": "Your business has already redeemed this promotion (it can be "
    "redeemed once per business).",
    "not_eligible": "This account can't take part in that promotion (it may be for new "
    "accounts only or for another currency, or this account is suspended or owes money).",
    "account_closed": "This account is closed, so it can't redeem codes.",
}
REFUND_REFUSALS = {
    "insufficient_refundable_funds": "That is more than can be refunded.",
    "recent_spend": "Refunds wait for a quiet period after the latest spend.",
    "account_not_in_good_standing": "No refund can be requested on this account right now.",
    "account_closed": "This account is closed.",
    "invalid_refund_transition": "This refund can no longer be canceled.",
}


def redeem_message(exc: AdledgerError) -> str:
    if exc.code == "too_many_attempts":
        minutes = max(1, -(-int(exc.extra.get("retry_after", 60)) // 60))
        return (
            "Too many codes that didn't work in the last hour. For your security, try again in "
            f"{minutes} minute{'s' if minutes != 1 else ''}."
        )
    return REDEEM_REFUSALS.get(exc.code, exc.detail)


def refund_message(exc: AdledgerError) -> str:
    lead = REFUND_REFUSALS.get(exc.code)
    return f"{lead} {exc.detail[:1].upper()}{exc.detail[1:]}." if lead else exc.detail


# --- what the page shows ---------------------------------------------------------------------


def billing_view(uow: UnitOfWork, account_id: str, scope: str | None) -> dict[str, Any]:
    """Everything the billing page shows, read in one transaction (one consistent instant)."""
    return {
        "account": accounts.get_account(uow, account_id, business_id=scope),
        "balance": balance.get_balance(uow, account_id, business_id=scope),
        "spend": statements.daily_spend(uow, account_id, business_id=scope),
        "progress": statements.promotion_progress(uow, account_id, business_id=scope),
        "refunds": refunds.list_account_refunds(uow, account_id, business_id=scope, limit=10)[
            "data"
        ],
        "recent": statements.search_transactions(uow, account_id, business_id=scope, limit=8)[
            "data"
        ],
        "now": uow.now,
    }


def lot_rows(lots: list[dict[str, Any]], now: datetime, timezone: str) -> list[dict[str, Any]]:
    """The active lots with "expires in N days" (in local days) and whether that is soon."""
    tz = ZoneInfo(timezone)
    today = now.astimezone(tz).date()
    rows = []
    for lot in lots:
        days = (lot["expires_at"].astimezone(tz).date() - today).days
        if days <= 0:
            left = "expires today"
        elif days == 1:
            left = "expires tomorrow"
        else:
            left = f"expires in {days} days"
        rows.append(
            lot
            | {
                "expires_in": left,
                "soon": lot["expires_at"] - now < SOON,
                "pending": lot["effective_at"] > now,
            }
        )
    return rows


def expiry_weeks(
    lots: list[dict[str, Any]], now: datetime, timezone: str
) -> tuple[list[str], list[int], int]:
    """Credit that expires in each of the coming weeks (labels, amounts) and what expires later."""
    labels, values = [], []
    tz = ZoneInfo(timezone)
    for week in range(EXPIRY_WEEKS):
        start = now + timedelta(weeks=week)
        end = start + timedelta(weeks=1)
        local = start.astimezone(tz)
        labels.append(f"{local.day} {local:%b}")
        values.append(sum(lot["remaining"] for lot in lots if start <= lot["expires_at"] < end))
    horizon = now + timedelta(weeks=EXPIRY_WEEKS)
    later = sum(lot["remaining"] for lot in lots if lot["expires_at"] >= horizon)
    return labels, values, later


def progress_text(item: dict[str, Any], timezone: str) -> str:
    """ "Spend $40.00 more before 12 Mar 2027 to get $50.00 of credit", and the like."""
    cur = item["currency"]
    reward = item["reward"]
    if reward["amount"] is not None:
        prize = f"{format_money(reward['amount'], cur)} of credit"
    else:
        prize = (
            f"{reward['percent']}% of your deposit as credit (up to "
            f"{format_money(reward['max_amount'], cur)})"
        )
    deadline = item.get("deadline")
    by = ""
    if deadline is not None:
        local = deadline.astimezone(ZoneInfo(timezone))
        by = f"{local.day} {local:%b %Y}"
    status = item["status"]
    if status == "granted":
        return f"Earned: {prize}."
    if status == "lapsed":
        return f"Not earned: the offer ended on {by}."
    if item["kind"] == "spend_threshold":
        more = item["threshold"] - item["progress"]
        return (
            f"Spend {format_money(more, cur)} more before {by} to get {prize}. Only ads paid "
            "with prepaid funds count; ads paid with credit don't."
        )
    if item["kind"] == "deposit_bonus":
        return (
            f"Deposit at least {format_money(item['min_deposit'], cur)} before {by} to get {prize}."
        )
    return f"Earning: {prize}."


def _page(
    request: Request,
    db: Database,
    principal: Principal,
    account_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    view = db.read(billing_view, account_id, principal.scope)
    acct, bal, now = view["account"], view["balance"], view["now"]
    tz, cur = acct["timezone"], acct["currency"]
    lots = lot_rows(bal["credit"]["lots"], now, tz)
    week_labels, week_values, later = expiry_weeks(bal["credit"]["lots"], now, tz)
    days = view["spend"]
    day_labels = [f"{d.day.day} {d.day:%b}" for d in days]
    series = [
        charts.Series("credit", "s-credit", [d.credit for d in days]),
        charts.Series("prepaid funds", "s-cash", [d.cash for d in days]),
        charts.Series("unfunded (written off)", "s-unfunded", [d.unfunded for d in days]),
    ]
    total = sum(d.total for d in days)
    spend_chart = charts.stacked_bars(
        day_labels,
        series,
        cur,
        title="Spend per day, last 30 days",
        desc=f"{format_money(total, cur)} of ads in the last 30 days: "
        f"{format_money(sum(d.credit for d in days), cur)} paid with credit, "
        f"{format_money(sum(d.cash for d in days), cur)} with prepaid funds, "
        f"{format_money(sum(d.unfunded for d in days), cur)} not covered by funds.",
        label_every=7,
    )
    expiry_chart = charts.stacked_bars(
        week_labels,
        [charts.Series("expiring credit", "s-expiring", week_values)],
        cur,
        title="Credit expiring, week by week",
        desc=f"{format_money(sum(week_values), cur)} of credit expires in the next "
        f"{EXPIRY_WEEKS} weeks; {format_money(later, cur)} later.",
    )
    progress = [p | {"text": progress_text(p, tz)} for p in view["progress"]]
    return render(
        request,
        "billing.html",
        status=status,
        account=acct,
        balance=bal,
        lots=lots,
        later=later,
        spend=days,
        spend_total=total,
        spend_chart=spend_chart,
        expiry_chart=expiry_chart,
        expiry_weeks=list(zip(week_labels, week_values, strict=True)),
        progress=progress,
        refunds=view["refunds"],
        recent=view["recent"],
        tz=tz,
        cur=cur,
        errors=errors or {},
        values=values or {},
        can_redeem=principal.role in ("advertiser", "admin"),
        charts=charts,
    )


@router.get("/accounts/{account_id}")
def billing_page(account_id: str, request: Request, db: Database = Depends(get_db)) -> Response:
    principal = allow(principal_of(request, db), *READERS)
    return _page(request, db, principal, account_id)


# --- actions ---------------------------------------------------------------------------------


@router.post("/accounts/{account_id}/redeem")
def redeem_code(
    account_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    principal = principal_of(request, db)
    check_csrf(request, form)
    allow(principal, "advertiser")
    code = form.get("code", "").strip()
    values = {"code": code}
    try:
        body = forms.validated(RedemptionIn, code=code)
    except forms.FormError:
        return _page(
            request,
            db,
            principal,
            account_id,
            status=422,
            errors={"redeem": "Enter the code as you received it (like ABCD-EFGH-JKLM-NPQR)."},
            values=values,
        )
    try:
        made = act(
            request, db, promotions.redeem, account_id, code=body.code, business_id=principal.scope
        )
    except AdledgerError as exc:
        if exc.code == "account_not_found":
            raise
        note_refusal(request, exc)
        return _page(
            request,
            db,
            principal,
            account_id,
            status=status_for(exc),
            errors={"redeem": redeem_message(exc)},
            values=values,
        )
    message = (
        "Code redeemed: the credit is in your balance."
        if made["status"] == "granted"
        else "Code redeemed: see below what earns the reward."
    )
    return redirect(f"/web/accounts/{account_id}#promotions", flash=message)


@router.post("/accounts/{account_id}/refunds")
def request_refund(
    account_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    principal = principal_of(request, db)
    check_csrf(request, form)
    allow(principal, *READERS)
    acct = db.read(accounts.get_account, account_id, business_id=principal.scope)
    values = {"amount": form.get("amount", ""), "reason": form.get("reason", "")}
    try:
        amount = forms.amount(form, "amount", acct["currency"], "amount to refund")
        body = forms.validated(RefundIn, amount=amount, reason=forms.text(form, "reason"))
        made = act(
            request,
            db,
            refunds.request_refund,
            account_id,
            amount=body.amount,
            reason=body.reason,
            requested_by=principal.key_id,
            business_id=principal.scope,
        )
    except forms.FormError as exc:
        return _page(
            request,
            db,
            principal,
            account_id,
            status=422,
            errors={"refund": exc.message},
            values=values,
        )
    except AdledgerError as exc:
        if exc.code == "account_not_found":
            raise
        note_refusal(request, exc)
        return _page(
            request,
            db,
            principal,
            account_id,
            status=status_for(exc),
            errors={"refund": refund_message(exc)},
            values=values,
        )
    shown = format_money(made["amount"], acct["currency"])
    return redirect(
        f"/web/accounts/{account_id}#refunds",
        flash=f"Refund of {shown} requested: it is held from your prepaid funds while it waits "
        "for approval.",
    )


@router.post("/refunds/{refund_id}/cancel")
def cancel_refund(
    refund_id: str,
    request: Request,
    db: Database = Depends(get_db),
    form: dict[str, str] = Depends(form_of),
) -> Response:
    principal = principal_of(request, db)
    check_csrf(request, form)
    allow(principal, *READERS)
    found = db.read(refunds.get_refund, refund_id, business_id=principal.scope)
    try:
        body = forms.validated(DecisionIn, reason=forms.text(form, "reason"))
        act(
            request,
            db,
            refunds.cancel_refund,
            refund_id,
            actor_key_id=principal.key_id,
            reason=body.reason,
            business_id=principal.scope,
        )
    except forms.FormError as exc:
        return _page(
            request, db, principal, found["account_id"], status=422, errors={"cancel": exc.message}
        )
    except AdledgerError as exc:
        note_refusal(request, exc)
        return _page(
            request,
            db,
            principal,
            found["account_id"],
            status=status_for(exc),
            errors={"cancel": refund_message(exc)},
        )
    back = request.headers.get("referer", "")
    target = f"/web/accounts/{found['account_id']}#refunds"
    if principal.scope is None and "/web/finance" in back:
        target = "/web/finance"
    return redirect(target, flash="Refund canceled: the held amount is available again.")


# --- transactions ----------------------------------------------------------------------------


def _filters(request: Request, timezone: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The filters as typed (to fill the form again) and as the service takes them."""
    q = request.query_params
    typed = {name: q.get(name, "").strip() for name in ("kind", "since", "until")}
    kind = typed["kind"] or None
    if kind is not None and kind not in KINDS:
        raise forms.FormError("kind", f"“{kind}” is not a kind of transaction.")
    since = forms.local_date(typed["since"], "since")
    until = forms.local_date(typed["until"], "until")
    start, end = forms.day_range(since, until, timezone)
    return typed, {"kind": kind, "since": start, "until": end}


@router.get("/accounts/{account_id}/transactions")
def transactions_page(
    account_id: str, request: Request, db: Database = Depends(get_db)
) -> Response:
    principal = allow(principal_of(request, db), *READERS)
    acct = db.read(accounts.get_account, account_id, business_id=principal.scope)
    after = request.query_params.get("after") or None
    error = None
    page: Page = {"data": [], "has_more": False, "next_cursor": None}
    typed: dict[str, str] = {
        name: request.query_params.get(name, "") for name in ("kind", "since", "until")
    }
    try:
        typed, chosen = _filters(request, acct["timezone"])
        page = db.read(
            statements.search_transactions,
            account_id,
            business_id=principal.scope,
            limit=PAGE_SIZE,
            starting_after=after,
            **chosen,
        )
    except forms.FormError as exc:
        error = exc.message
    except AdledgerError as exc:
        if exc.code == "account_not_found":
            raise
        error = "That page of results no longer exists; start again from the newest."
    query = {k: v for k, v in typed.items() if v}
    next_url = None
    if page["next_cursor"]:
        next_url = "?" + urlencode(query | {"after": page["next_cursor"]})
    return render(
        request,
        "transactions.html",
        status=422 if error else 200,
        account=acct,
        page=page,
        kinds=KINDS,
        typed=typed,
        error=error,
        next_url=next_url,
        first_url=("?" + urlencode(query)) if after else None,
        csv_url=f"/web/accounts/{account_id}/transactions.csv"
        + ("?" + urlencode(query) if query else ""),
        tz=acct["timezone"],
        cur=acct["currency"],
    )


@router.get("/accounts/{account_id}/transactions.csv")
def transactions_csv(account_id: str, request: Request, db: Database = Depends(get_db)) -> Response:
    principal = allow(principal_of(request, db), *READERS)
    acct = db.read(accounts.get_account, account_id, business_id=principal.scope)
    try:
        _, chosen = _filters(request, acct["timezone"])
    except forms.FormError as exc:
        return render(
            request, "error.html", status=422, title="Check the filters", detail=exc.message
        )
    items = db.read(
        statements.export_transactions, account_id, business_id=principal.scope, **chosen
    )
    out = io.StringIO()
    writer = csv.writer(out)
    for row in statements.iter_csv_rows(items):
        writer.writerow([_safe_cell(cell) for cell in row])
    name = f"{account_id}-transactions.csv"
    response = Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
    return secure(response)


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (descriptions quote clients' words)."""
    if value[:1] in ("=", "+", "@", "\t", "\r") or (value[:1] == "-" and not _is_number(value)):
        return "'" + value
    return value


def _is_number(value: str) -> bool:
    return value.lstrip("-").isdigit()
