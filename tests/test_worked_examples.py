"""Worked examples: whole stories in the advertiser's words, told through the HTTP API.

Each test is one story. The advertiser's own key reads the balance after every step, and the
steps are commented the way the advertiser would tell it. Amounts are minor units (cents, yen,
fils), exact. The test clock starts at 1 Dec 2026, 12:00 UTC (`T0`) and moves only when a
story says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adledger.http.encoding import rfc3339
from conftest import T0
from tests_support import event

DAY = timedelta(days=1)
US = timedelta(microseconds=1)


# --- the advertiser's view --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Balance:
    """The numbers of `GET /v1/accounts/{id}/balance` that a story checks.

    `lots` are the active lots as (id, remaining), soonest expiry first, as the API lists them.
    """

    cash: int
    held: int = 0
    credit: int
    spendable: int
    refundable: int
    depleted: bool
    lots: tuple[tuple[str, int], ...] = ()
    explanation: str = field(default="", compare=False)


def balance(caller: Any, account_id: str) -> Balance:
    r = caller.get(f"/v1/accounts/{account_id}/balance")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["account_id"] == account_id
    assert body["withdrawable"] == 0  # never anything else
    assert body["spendable"] == body["cash"]["available"] + body["credit"]["available"]
    return Balance(
        cash=body["cash"]["available"],
        held=body["cash"]["held"],
        credit=body["credit"]["available"],
        spendable=body["spendable"],
        refundable=body["refundable"],
        depleted=body["depleted"],
        lots=tuple((lot["id"], lot["remaining"]) for lot in body["credit"]["lots"]),
        explanation=body["explanation"],
    )


# --- what the platform, the ad server and finance do ------------------------------------------


def open_account(api: Any, *, currency: str = "USD", timezone: str = "UTC") -> tuple[str, Any]:
    """A business with one ad account (made by finance), and the advertiser's own key."""
    r = api.finance.post("/v1/businesses", json={"name": "Acme Shoes"})
    assert r.status_code == 201, r.text
    business_id = r.json()["id"]
    r = api.finance.post(
        "/v1/accounts",
        json={
            "name": "Acme Shoes main",
            "currency": currency,
            "business_id": business_id,
            "timezone": timezone,
        },
    )
    assert r.status_code == 201, r.text
    account = r.json()
    assert (account["currency"], account["status"]) == (currency, "active")
    return account["id"], api.advertiser(business_id)


def deposit(
    api: Any, account_id: str, amount: int, *, tax: int = 0, reference: str = "pay_card_1"
) -> dict[str, Any]:
    r = api.finance.post(
        f"/v1/accounts/{account_id}/deposits",
        json={"amount": amount, "tax": tax, "payment_reference": reference},
    )
    assert r.status_code == 201, r.text
    return r.json()


def grant(
    api: Any,
    account_id: str,
    amount: int,
    *,
    expires_at: datetime,
    priority: int | None = None,
    campaign_id: str | None = None,
    reason: str = "goodwill",
) -> str:
    body: dict[str, Any] = {"amount": amount, "expires_at": rfc3339(expires_at), "reason": reason}
    if priority is not None:
        body["priority"] = priority
    if campaign_id is not None:
        body["campaign_id"] = campaign_id
    r = api.finance.post(f"/v1/accounts/{account_id}/credits", json=body)
    assert r.status_code == 201, r.text
    lot = r.json()
    assert (lot["original"], lot["remaining"], lot["status"]) == (amount, amount, "active")
    return str(lot["id"])


def spend(
    api: Any,
    account_id: str,
    amount: int,
    event_id: str,
    *,
    occurred_at: datetime | None = None,
    campaign_id: str | None = None,
) -> dict[str, Any]:
    """The ad server reports delivery that cost `amount`; the funding it got back."""
    when = occurred_at or api.db.clock.now()
    ev = event(event_id, account_id, amount, occurred_at=when, campaign_id=campaign_id)
    r = api.ingest.post("/v1/spend", json={"events": [ev]})
    assert r.status_code == 200, r.text
    [result] = r.json()["results"]
    assert result["status"] == "applied", result
    return {k: v for k, v in result.items() if k not in ("event_id", "status")}


def paid(credit: int, cash: int, unfunded: int, *lots: tuple[str, int]) -> dict[str, Any]:
    """How one spend event was paid, as `POST /v1/spend` reports it."""
    return {
        "credit_used": credit,
        "cash_used": cash,
        "unfunded": unfunded,
        "lots": [{"lot_id": lot_id, "amount": amount} for lot_id, amount in lots],
    }


def ask_refund(caller: Any, account_id: str, amount: int) -> Any:
    return caller.post(f"/v1/accounts/{account_id}/refunds", json={"amount": amount})


def decide(caller: Any, refund_id: str, action: str, **body: Any) -> dict[str, Any]:
    r = caller.post(f"/v1/refunds/{refund_id}/{action}", json=body or None)
    assert r.status_code == 200, r.text
    return dict(r.json())


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert (problem["status"], problem["code"]) == (status, code)
    return dict(problem)


def history(caller: Any, account_id: str) -> list[dict[str, Any]]:
    r = caller.get(f"/v1/accounts/{account_id}/transactions")
    assert r.status_code == 200, r.text
    assert r.json()["has_more"] is False
    return list(r.json()["data"])


LIABILITIES = (
    "currency",
    "cash_available",
    "cash_held",
    "credit_outstanding",
    "credit_granted",
    "credit_used",
    "credit_expired",
    "credit_voided",
    "credit_forfeited",
    "overdelivery_written_off",
)


def liabilities(api: Any, currency: str) -> dict[str, Any]:
    """The liabilities report's figures (fields added later are not this story's business)."""
    r = api.finance.get(f"/v1/reports/liabilities?currency={currency}")
    assert r.status_code == 200, r.text
    return {name: r.json()[name] for name in LIABILITIES}


def expiry_run(api: Any) -> dict[str, Any]:
    """An expiry run's answer, as the contract states it: the lots closed and the amounts."""
    r = api.finance.post("/v1/expirations/run", json={})
    assert r.status_code == 200, r.text
    return {name: r.json()[name] for name in ("expired_lots", "expired_amounts")}


# --- the stories ------------------------------------------------------------------------------


def test_deposit_goodwill_credit_spend_and_a_refund_paid_back_to_my_card(api, clock):
    """I deposit $500 (and pay $50 of tax with it, which is never part of my balance), and
    support gives me $100 of goodwill credit that expires in 30 days. My ads deliver $150: the
    credit pays first, then $50 of my cash, so I have $450 of cash and no credit left. Once the
    quiet period after spend is over I ask for $200 back; it is held at once, finance approves
    it, the payment service pays it to my card, and $250 is left."""
    acct, me = open_account(api)

    # I have just opened my account: nothing in it yet, so my ads can't run.
    assert balance(me, acct) == Balance(cash=0, credit=0, spendable=0, refundable=0, depleted=True)

    # I pay $500 by card. The $50 of sales tax on top is recorded but isn't mine to spend.
    dep = deposit(api, acct, 50_000, tax=5_000)
    assert (dep["amount"], dep["tax"]) == (50_000, 5_000)
    assert balance(me, acct) == Balance(
        cash=50_000, credit=0, spendable=50_000, refundable=50_000, depleted=False
    )

    # Support gives me $100 of goodwill credit; it expires 30 days from now.
    goodwill = grant(api, acct, 10_000, expires_at=T0 + 30 * DAY)
    now = balance(me, acct)
    assert now == Balance(
        cash=50_000,
        credit=10_000,
        spendable=60_000,
        refundable=50_000,  # credit is never refunded
        depleted=False,
        lots=((goodwill, 10_000),),
    )
    assert "$100.00 expires on 31 Dec 2026 at 12:00 UTC" in now.explanation
    assert "can't be withdrawn, refunded or turned into cash" in now.explanation

    # My ads deliver $150 of impressions: the credit pays first, my cash pays the other $50.
    assert spend(api, acct, 15_000, "ev-1") == paid(10_000, 5_000, 0, (goodwill, 10_000))
    now = balance(me, acct)
    assert now == Balance(
        cash=45_000,
        credit=0,
        spendable=45_000,
        refundable=0,  # right after spend, refunds wait for delivery to settle
        depleted=False,
    )
    assert "Refunds open again at 1 Dec 2026 at 15:00 UTC" in now.explanation

    # Three hours later, all of my $450 could come back to me.
    clock.advance(hours=3)
    assert balance(me, acct) == Balance(
        cash=45_000, credit=0, spendable=45_000, refundable=45_000, depleted=False
    )

    # I ask for $200 back. It is held at once, so my ads can't spend it while I wait.
    r = ask_refund(me, acct, 20_000)
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["status"], refund["amount"]) == ("pending", 20_000)
    assert balance(me, acct) == Balance(
        cash=25_000, held=20_000, credit=0, spendable=25_000, refundable=25_000, depleted=False
    )

    # Finance approves it; the money stays held until the payment service has paid it.
    assert decide(api.finance, refund["id"], "approve")["status"] == "approved"
    assert balance(me, acct) == Balance(
        cash=25_000, held=20_000, credit=0, spendable=25_000, refundable=25_000, depleted=False
    )

    # The payment service pays the $200 back to my card. $250 is left.
    assert decide(api.finance, refund["id"], "settle")["status"] == "paid"
    now = balance(me, acct)
    assert now == Balance(
        cash=25_000, credit=0, spendable=25_000, refundable=25_000, depleted=False
    )
    assert "Prepaid funds: $250.00 available." in now.explanation
    assert "You can ask for a refund of up to $250.00 now" in now.explanation

    # My history tells the same story, newest first; the tax never touched my cash.
    assert [(t["kind"], t["cash_delta"], t["credit_delta"]) for t in history(me, acct)] == [
        ("refund_payout", 0, 0),
        ("refund_hold", -20_000, 0),
        ("spend", -5_000, -10_000),
        ("credit_grant", 0, 10_000),
        ("deposit", 50_000, 0),
    ]


def test_campaign_credit_then_priority_then_soonest_expiry_decide_which_lot_pays(api):
    """I deposit $100 and hold four lots of $10 credit: a summer-campaign lot (priority 90,
    90 days), a priority-10 lot (60 days) and two ordinary priority-50 lots, one expiring in 10
    days and one in 30. Summer spend takes the summer lot first, even though its priority is
    the worst. Other spend takes the priority-10 lot, then the ordinary lot that expires sooner.
    One event can be paid by two lots and my cash together."""
    acct, me = open_account(api)

    # I put $100 on my account.
    deposit(api, acct, 10_000)
    assert balance(me, acct) == Balance(
        cash=10_000, credit=0, spendable=10_000, refundable=10_000, depleted=False
    )

    # I get four $10 lots of credit. The API lists them soonest expiry first.
    ordinary_30d = grant(api, acct, 1_000, expires_at=T0 + 30 * DAY)
    ordinary_10d = grant(api, acct, 1_000, expires_at=T0 + 10 * DAY)
    priority_10 = grant(api, acct, 1_000, expires_at=T0 + 60 * DAY, priority=10)
    summer = grant(api, acct, 1_000, expires_at=T0 + 90 * DAY, priority=90, campaign_id="summer")
    now = balance(me, acct)
    assert now == Balance(
        cash=10_000,
        credit=4_000,
        spendable=14_000,
        refundable=10_000,
        depleted=False,
        lots=(
            (ordinary_10d, 1_000),
            (ordinary_30d, 1_000),
            (priority_10, 1_000),
            (summer, 1_000),
        ),
    )
    assert "$10.00 expires on 1 Mar 2027 at 12:00 UTC (only for campaign summer)" in (
        now.explanation
    )

    # My summer campaign spends $5: the summer lot pays, because it was given for that campaign.
    assert spend(api, acct, 500, "ev-summer-1", campaign_id="summer") == paid(
        500, 0, 0, (summer, 500)
    )
    assert balance(me, acct) == Balance(
        cash=10_000,
        credit=3_500,
        spendable=13_500,
        refundable=0,  # spend was just recorded
        depleted=False,
        lots=((ordinary_10d, 1_000), (ordinary_30d, 1_000), (priority_10, 1_000), (summer, 500)),
    )

    # My winter campaign spends $7: the summer lot can't pay, so the priority-10 lot does.
    assert spend(api, acct, 700, "ev-winter-1", campaign_id="winter") == paid(
        700, 0, 0, (priority_10, 700)
    )
    assert balance(me, acct) == Balance(
        cash=10_000,
        credit=2_800,
        spendable=12_800,
        refundable=0,
        depleted=False,
        lots=((ordinary_10d, 1_000), (ordinary_30d, 1_000), (priority_10, 300), (summer, 500)),
    )

    # Winter spends $8: the priority-10 lot's last $3 first, then $5 from the 10-day lot.
    # The 30-day lot has the same priority but expires later, so it waits.
    assert spend(api, acct, 800, "ev-winter-2", campaign_id="winter") == paid(
        800, 0, 0, (priority_10, 300), (ordinary_10d, 500)
    )
    assert balance(me, acct) == Balance(
        cash=10_000,
        credit=2_000,
        spendable=12_000,
        refundable=0,
        depleted=False,
        lots=((ordinary_10d, 500), (ordinary_30d, 1_000), (summer, 500)),
    )

    # A $30 event outside any campaign is paid by two lots and my cash at once:
    # $5 from the 10-day lot, $10 from the 30-day lot, and $15 of my cash.
    assert spend(api, acct, 3_000, "ev-plain-1") == paid(
        1_500, 1_500, 0, (ordinary_10d, 500), (ordinary_30d, 1_000)
    )
    assert balance(me, acct) == Balance(
        cash=8_500,
        credit=500,
        spendable=9_000,
        refundable=0,
        depleted=False,
        lots=((summer, 500),),  # only the summer lot is left, for summer spend only
    )

    # Summer spends $6: its lot's last $5, then $1 of my cash.
    assert spend(api, acct, 600, "ev-summer-2", campaign_id="summer") == paid(
        500, 100, 0, (summer, 500)
    )
    assert balance(me, acct) == Balance(
        cash=8_400, credit=0, spendable=8_400, refundable=0, depleted=False
    )


def test_credit_pays_for_delivery_until_its_expiry_and_the_rest_goes_to_breakage(api, clock):
    """I deposit $100 and receive $50 of credit that expires on 2 Dec 2026 at 12:00 UTC. The
    ad server reports late. Delivery one microsecond before the expiry is paid by the credit.
    Delivery at the expiry instant is paid by my cash. The expiry run takes the $38 left in the
    lot, a second run does nothing, and finance sees the $38 as expired credit."""
    acct, me = open_account(api)
    expires = T0 + DAY

    # I put $100 on my account and get $50 of credit that expires tomorrow at noon.
    deposit(api, acct, 10_000)
    lot = grant(api, acct, 5_000, expires_at=expires, reason="welcome offer")
    assert balance(me, acct) == Balance(
        cash=10_000,
        credit=5_000,
        spendable=15_000,
        refundable=10_000,
        depleted=False,
        lots=((lot, 5_000),),
    )

    # Noon the next day: the credit has expired, but the expiry run hasn't taken it yet.
    # It can't pay for anything I do from now on.
    clock.advance(days=1)
    now = balance(me, acct)
    assert now == Balance(
        cash=10_000,
        credit=0,
        spendable=10_000,
        refundable=10_000,
        depleted=False,
        lots=((lot, 5_000),),
    )
    assert "$50.00 expired on 2 Dec 2026 at 12:00 UTC and can't be used" in now.explanation

    # The ad server reports $12 of delivery that happened one microsecond before the expiry:
    # the credit still pays for it.
    assert spend(api, acct, 1_200, "ev-before", occurred_at=expires - US) == paid(
        1_200, 0, 0, (lot, 1_200)
    )
    assert balance(me, acct) == Balance(
        cash=10_000,
        credit=0,
        spendable=10_000,
        refundable=0,
        depleted=False,
        lots=((lot, 3_800),),
    )

    # It also reports $3 of delivery at the expiry instant itself. That is my cash's job now.
    assert spend(api, acct, 300, "ev-at", occurred_at=expires) == paid(0, 300, 0)
    assert balance(me, acct) == Balance(
        cash=9_700,
        credit=0,
        spendable=9_700,
        refundable=0,
        depleted=False,
        lots=((lot, 3_800),),
    )

    # The expiry run takes the $38 left in the lot. It is gone for good.
    assert expiry_run(api) == {"expired_lots": 1, "expired_amounts": {"USD": 3_800}}
    now = balance(me, acct)
    assert now == Balance(cash=9_700, credit=0, spendable=9_700, refundable=0, depleted=False)
    assert "There is no promotional credit." in now.explanation

    # Running it again finds nothing to do.
    assert expiry_run(api) == {"expired_lots": 0, "expired_amounts": {}}
    assert balance(me, acct) == Balance(
        cash=9_700, credit=0, spendable=9_700, refundable=0, depleted=False
    )

    # Finance's report: of the $50 granted, $12 paid for ads and $38 expired.
    assert liabilities(api, "USD") == {
        "currency": "USD",
        "cash_available": 9_700,
        "cash_held": 0,
        "credit_outstanding": 0,
        "credit_granted": 5_000,
        "credit_used": 1_200,
        "credit_expired": 3_800,
        "credit_voided": 0,
        "credit_forfeited": 0,
        "overdelivery_written_off": 0,
    }
    assert [t["kind"] for t in history(me, acct)] == [
        "expiry",
        "spend",
        "spend",
        "credit_grant",
        "deposit",
    ]


def test_delivery_beyond_all_my_funds_is_written_off_never_owed(api, clock):
    """I have $20 of cash and $5 of credit. My ads deliver $30 before the ad server stops
    them, and then another $1. The $6 that nothing paid for is written off by the platform as
    overdelivery: my balance is $0, never below, and it says I am depleted. When I deposit $10,
    my ads can spend again."""
    acct, me = open_account(api)

    # I put $20 on my account and get $5 of credit.
    deposit(api, acct, 2_000)
    lot = grant(api, acct, 500, expires_at=T0 + 30 * DAY)
    assert balance(me, acct) == Balance(
        cash=2_000,
        credit=500,
        spendable=2_500,
        refundable=2_000,
        depleted=False,
        lots=((lot, 500),),
    )

    # My ads deliver $30: the $5 of credit, all of my $20 of cash, and $5 nothing covers.
    assert spend(api, acct, 3_000, "ev-1") == paid(500, 2_000, 500, (lot, 500))
    now = balance(me, acct)
    assert now == Balance(cash=0, credit=0, spendable=0, refundable=0, depleted=True)
    assert "Nothing is left to spend (the account is depleted)" in now.explanation

    # Another $1 is delivered before the ad server stops me. Nothing pays for it either.
    assert spend(api, acct, 100, "ev-2") == paid(0, 0, 100)
    assert balance(me, acct) == Balance(cash=0, credit=0, spendable=0, refundable=0, depleted=True)

    # I owe nothing: the account stays active and in good standing.
    r = me.get(f"/v1/accounts/{acct}")
    assert (r.status_code, r.json()["status"]) == (200, "active")
    assert "owes" not in balance(me, acct).explanation

    # Finance sees the $6 as overdelivery that the platform wrote off.
    assert liabilities(api, "USD") == {
        "currency": "USD",
        "cash_available": 0,
        "cash_held": 0,
        "credit_outstanding": 0,
        "credit_granted": 500,
        "credit_used": 500,
        "credit_expired": 0,
        "credit_voided": 0,
        "credit_forfeited": 0,
        "overdelivery_written_off": 600,
    }

    # An hour later I deposit $10, and my account is spendable again.
    clock.advance(hours=1)
    deposit(api, acct, 1_000, reference="pay_card_2")
    assert balance(me, acct) == Balance(
        cash=1_000,
        credit=0,
        spendable=1_000,
        refundable=0,  # the quiet period after the last spend runs until 15:00
        depleted=False,
    )

    # My ads run again, and the new cash pays for them in full. Nothing is taken for the past.
    assert spend(api, acct, 400, "ev-3") == paid(0, 400, 0)
    assert balance(me, acct) == Balance(
        cash=600, credit=0, spendable=600, refundable=0, depleted=False
    )
    assert liabilities(api, "USD")["overdelivery_written_off"] == 600


def test_yen_and_kuwaiti_dinar_accounts_count_in_their_own_minor_units(api):
    """My Tokyo account is in yen, which has no minor unit: ¥50,000 is 50000. My Kuwait
    account is in dinars of 1,000 fils: KWD 12.345 is 12345. Each one's credit pays first, and
    each explanation is written in its own currency, with times in its own time zone."""
    yen, me_in_tokyo = open_account(api, currency="JPY", timezone="Asia/Tokyo")
    kwd, me_in_kuwait = open_account(api, currency="KWD", timezone="Asia/Kuwait")
    new_year = datetime.fromisoformat("2027-01-01T00:00:00+09:00")

    # In Tokyo I deposit ¥50,000.
    deposit(api, yen, 50_000)
    now = balance(me_in_tokyo, yen)
    assert now == Balance(
        cash=50_000, credit=0, spendable=50_000, refundable=50_000, depleted=False
    )
    assert "Prepaid funds: ¥50,000 available." in now.explanation
    assert "¥50,000.00" not in now.explanation

    # I get ¥3,000 of credit until New Year, Tokyo time.
    yen_lot = grant(api, yen, 3_000, expires_at=new_year)
    now = balance(me_in_tokyo, yen)
    assert now == Balance(
        cash=50_000,
        credit=3_000,
        spendable=53_000,
        refundable=50_000,
        depleted=False,
        lots=((yen_lot, 3_000),),
    )
    assert "¥3,000 expires on 1 Jan 2027 at 00:00 JST" in now.explanation

    # My Tokyo ads deliver ¥4,500: the ¥3,000 of credit, then ¥1,500 of my cash.
    assert spend(api, yen, 4_500, "ev-tokyo") == paid(3_000, 1_500, 0, (yen_lot, 3_000))
    now = balance(me_in_tokyo, yen)
    assert now == Balance(cash=48_500, credit=0, spendable=48_500, refundable=0, depleted=False)
    assert "Prepaid funds: ¥48,500 available." in now.explanation

    # In Kuwait I deposit KWD 12.345, that is 12,345 fils.
    deposit(api, kwd, 12_345)
    now = balance(me_in_kuwait, kwd)
    assert now == Balance(
        cash=12_345, credit=0, spendable=12_345, refundable=12_345, depleted=False
    )
    assert "Prepaid funds: KWD 12.345 available." in now.explanation

    # I get KWD 1.500 of credit until New Year, Kuwait time.
    kwd_lot = grant(api, kwd, 1_500, expires_at=datetime.fromisoformat("2027-01-01T00:00+03:00"))
    now = balance(me_in_kuwait, kwd)
    assert now == Balance(
        cash=12_345,
        credit=1_500,
        spendable=13_845,
        refundable=12_345,
        depleted=False,
        lots=((kwd_lot, 1_500),),
    )
    assert "KWD 1.500 expires on 1 Jan 2027 at 00:00 UTC+03" in now.explanation

    # My Kuwait ads deliver KWD 2.000: KWD 1.500 of credit, then KWD 0.500 of my cash.
    assert spend(api, kwd, 2_000, "ev-kuwait") == paid(1_500, 500, 0, (kwd_lot, 1_500))
    now = balance(me_in_kuwait, kwd)
    assert now == Balance(cash=11_845, credit=0, spendable=11_845, refundable=0, depleted=False)
    assert "Prepaid funds: KWD 11.845 available." in now.explanation

    # Finance's report keeps each currency apart.
    jpy_report, kwd_report = liabilities(api, "JPY"), liabilities(api, "KWD")
    assert (jpy_report["cash_available"], jpy_report["credit_used"]) == (48_500, 3_000)
    assert (kwd_report["cash_available"], kwd_report["credit_used"]) == (11_845, 1_500)
    assert liabilities(api, "USD")["cash_available"] == 0


def test_a_refund_waits_for_the_quiet_period_and_a_withdrawal_is_always_refused(api, clock):
    """I have $300 of cash and $40 of credit. A withdrawal is always refused, and the refusal
    explains what I could get back instead. After my ads spend $60, a refund is refused for 3
    hours so that delivery can settle. Once that time has passed I can ask for $100 back. A
    withdrawal is still refused."""
    acct, me = open_account(api)

    # I put $300 on my account and get $40 of credit.
    deposit(api, acct, 30_000)
    lot = grant(api, acct, 4_000, expires_at=T0 + 30 * DAY)
    before = Balance(
        cash=30_000,
        credit=4_000,
        spendable=34_000,
        refundable=30_000,
        depleted=False,
        lots=((lot, 4_000),),
    )
    assert balance(me, acct) == before

    # I ask to withdraw $100. That is never possible; I am told what I can do instead.
    problem = refused(
        me.post(f"/v1/accounts/{acct}/withdrawals", json={"amount": 10_000}),
        409,
        "withdrawal_not_supported",
    )
    assert (problem["refundable"], problem["credit_available"]) == (30_000, 4_000)
    assert "You asked to withdraw $100.00" in problem["detail"]
    assert "This account has $300.00 of prepaid funds available." in problem["detail"]
    assert "You can ask for a refund of up to $300.00 now" in problem["detail"]
    assert "Its $40.00 of promotional credit pays for ads only" in problem["detail"]
    assert balance(me, acct) == before

    # My ads deliver $60: $40 of credit, then $20 of cash.
    assert spend(api, acct, 6_000, "ev-1") == paid(4_000, 2_000, 0, (lot, 4_000))
    after_spend = Balance(cash=28_000, credit=0, spendable=28_000, refundable=0, depleted=False)
    assert balance(me, acct) == after_spend

    # I ask for $100 back at once. Refused: spend was just recorded. I'm told when to come back.
    problem = refused(ask_refund(me, acct, 10_000), 409, "recent_spend")
    assert problem["refunds_open_at"] == "2026-12-01T15:00:00Z"
    assert "within the last 3 hours" in problem["detail"]
    assert balance(me, acct) == after_spend

    # A withdrawal now is refused too, and shows that nothing is refundable right now.
    problem = refused(
        me.post(f"/v1/accounts/{acct}/withdrawals", json={"amount": 10_000}),
        409,
        "withdrawal_not_supported",
    )
    assert (problem["refundable"], problem["credit_available"]) == (0, 0)
    assert "Refunds open again at 1 Dec 2026 at 15:00 UTC" in problem["detail"]

    # One minute before the three hours are up, still refused.
    clock.advance(hours=2, minutes=59)
    refused(ask_refund(me, acct, 10_000), 409, "recent_spend")
    assert balance(me, acct) == after_spend

    # Two minutes later the quiet period is over; all of my cash could come back.
    clock.advance(minutes=2)
    assert balance(me, acct) == Balance(
        cash=28_000, credit=0, spendable=28_000, refundable=28_000, depleted=False
    )

    # I ask for $100 back, and this time it is held for me.
    r = ask_refund(me, acct, 10_000)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "pending"
    held = Balance(
        cash=18_000, held=10_000, credit=0, spendable=18_000, refundable=18_000, depleted=False
    )
    assert balance(me, acct) == held

    # A withdrawal is still refused, with the refund I could still ask for.
    problem = refused(
        me.post(f"/v1/accounts/{acct}/withdrawals", json={"amount": 1}),
        409,
        "withdrawal_not_supported",
    )
    assert (problem["refundable"], problem["credit_available"]) == (18_000, 0)
    assert balance(me, acct) == held


def test_canceled_and_rejected_refunds_give_the_held_cash_back_and_history_shows_it_all(api, clock):
    """I deposit $100 and ask for $30 back, then change my mind and cancel: the $30 is mine
    to spend again. Later I ask for $40 back and finance rejects it: the $40 comes back too. My
    history lists every movement, newest first."""
    acct, me = open_account(api)

    # I put $100 on my account.
    dep = deposit(api, acct, 10_000, reference="pay_card_7")
    full = Balance(cash=10_000, credit=0, spendable=10_000, refundable=10_000, depleted=False)
    assert balance(me, acct) == full

    # An hour later I ask for $30 back; it is held.
    clock.advance(hours=1)
    r = ask_refund(me, acct, 3_000)
    assert r.status_code == 201, r.text
    first = r.json()
    assert balance(me, acct) == Balance(
        cash=7_000, held=3_000, credit=0, spendable=7_000, refundable=7_000, depleted=False
    )

    # Another hour later I change my mind and cancel it. The $30 is back in my cash.
    clock.advance(hours=1)
    assert decide(me, first["id"], "cancel")["status"] == "canceled"
    assert balance(me, acct) == full

    # Then I ask for $40 back.
    clock.advance(hours=1)
    r = ask_refund(me, acct, 4_000)
    assert r.status_code == 201, r.text
    second = r.json()
    assert balance(me, acct) == Balance(
        cash=6_000, held=4_000, credit=0, spendable=6_000, refundable=6_000, depleted=False
    )

    # Finance rejects it. The $40 comes back to my cash.
    clock.advance(hours=1)
    rejected = decide(api.finance, second["id"], "reject", reason="bank details mismatch")
    assert (rejected["status"], rejected["decision_reason"]) == (
        "rejected",
        "bank details mismatch",
    )
    assert balance(me, acct) == full

    # My history, newest first: every hold and every release, then the deposit.
    items = history(me, acct)
    assert [
        (t["kind"], t["created_at"], t["cash_delta"], t["refund_id"], t["deposit_id"])
        for t in items
    ] == [
        ("refund_release", "2026-12-01T16:00:00Z", 4_000, second["id"], None),
        ("refund_hold", "2026-12-01T15:00:00Z", -4_000, second["id"], None),
        ("refund_release", "2026-12-01T14:00:00Z", 3_000, first["id"], None),
        ("refund_hold", "2026-12-01T13:00:00Z", -3_000, first["id"], None),
        ("deposit", "2026-12-01T12:00:00Z", 10_000, None, dep["id"]),
    ]
    assert all(t["credit_delta"] == 0 for t in items)
    assert "rejected (bank details mismatch)" in items[0]["description"]
    assert items[4]["description"] == "Deposit pay_card_7"
    ids = [t["id"] for t in items]
    assert ids == sorted(ids, reverse=True)

    # My refunds list says what became of each request.
    r = me.get(f"/v1/accounts/{acct}/refunds")
    assert [(x["id"], x["status"]) for x in r.json()["data"]] == [
        (second["id"], "rejected"),
        (first["id"], "canceled"),
    ]
