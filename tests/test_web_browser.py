"""End to end in a real browser: `adledger serve` as a subprocess, driven by Playwright with
Debian's Chromium (never a downloaded browser). The story: an advertiser signs in, reads the
balance, redeems a code and asks for a refund; finance approves it and marks it paid; the
advertiser sees it paid. Another business's URL is a 404 and a form without its CSRF token is
refused. Every page is photographed at desktop and phone width into docs/screenshots/ (the
README shows them), and checked for unlabelled fields. The ledger verifies clean at the end.

SQLite only: the pages' behaviour on both backends is covered by the TestClient tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adledger.clock import FixedClock
from adledger.config import Settings
from adledger.service import expiry, keys, promotions
from adledger.service.uow import Database
from adledger.service.verify import verify_ledger
from factories import deposit, grant, make_account
from server_support import Server, fresh_database
from web_support import make_promotion, post_spend

CHROMIUM = os.environ.get("ADLEDGER_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).parent.parent / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
        reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run does)",
    ),
]

# Fields that need no label of their own.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(e => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
  .map(e => e.name || e.id)"""


WIDER_THAN_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1
               && !(e.parentElement && e.parentElement.closest('.scroll')))
  .slice(0, 5).map(e => e.tagName + '.' + e.className)"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A served database with two months of one advertiser's history, recorded day by day:
    deposits, credit (one lot expired unspent, one expiring within the week, one for a single
    campaign), daily spend, a "spend X get Y" offer in progress and a coupon code to redeem; a
    stranger's account; finance and advertiser keys."""
    with fresh_database("sqlite", tmp_path, "web") as url:
        now = datetime.now(UTC)
        clock = FixedClock(now - timedelta(days=60))
        db = Database(Settings(database_url=url), clock)

        def on(day: float) -> None:  # move the seeding clock to `day` days from now
            clock.at = now + timedelta(days=day)

        try:
            acct = make_account(db, cash=80_000, name="Acme US", timezone="America/New_York")
            on(-50)
            grant(db, acct["id"], amount=4_000, days=40, campaign_id="cmp_launch", reason="launch")
            on(-30)
            grant(db, acct["id"], amount=15_000, days=75, reason="goodwill")
            on(-16)
            _, (offer,) = make_promotion(
                db,
                kind="spend_threshold",
                reward=5_000,
                threshold=10_000,
                name="Spend $100, get $50",
            )
            for n in range(1, 25):
                on(n - 25)
                if n == 10:
                    db.run(promotions.redeem, acct["id"], code=offer)
                post_spend(db, acct["id"], 400 + 170 * (n % 5) + 60 * n, clock.now(), n)
                if n == 15:
                    on(n - 25 + 0.01)
                    db.run(expiry.run_expiry)  # the launch lot expired unspent: breakage
            on(-5)
            deposit(db, acct["id"], amount=20_000, reference="pay_topup")
            on(0)
            grant(db, acct["id"], amount=2_500, days=4, reason="welcome")
            grant(db, acct["id"], amount=5_000, days=20, campaign_id="cmp_spring_sale")
            _, (code,) = make_promotion(db, reward=2_000, name="Welcome back $20")
            stranger = make_account(db, cash=1_234, name="Stranger's account")
            advertiser = db.run(
                keys.create_key, role="advertiser", name="acme", business_id=acct["business_id"]
            )
            finance = db.run(keys.create_key, role="finance", name="finance desk")
            server = Server(
                url,
                tmp_path / "serve.log",
                env={"ADLEDGER_REFUND_QUIET_PERIOD_SECONDS": "0"},
            )
            server.start()
            try:
                yield {
                    "db": db,
                    "url": server.base_url,
                    "account": acct,
                    "stranger": stranger,
                    "code": code,
                    "advertiser": advertiser["key"],
                    "finance": finance["key"],
                }
            finally:
                server.stop()
            violations = db.read(verify_ledger)
            assert not violations, [f"{v.check}: {v.message}" for v in violations]
        finally:
            db.dispose()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/web")
    assert page.url.startswith(base + "/web/sign-in")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.focus("#api_key")
    page.keyboard.type(key)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # the form is usable by keyboard alone
    page.wait_for_url(lambda url: "/web/sign-in" not in url)


def shoot(page: Any, name: str) -> None:
    """The page at desktop and at phone width; no field without a label on it."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert page.evaluate(UNLABELLED) == [], name
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
        if label == "phone":  # readable at phone width: nothing wider than the screen
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            wide = page.evaluate(WIDER_THAN_SCREEN)
            assert overflow <= 1, f"{name} is {overflow}px wider than a phone: {wide}"
    page.set_viewport_size(DESKTOP)


def test_the_refund_story_in_a_real_browser(world, browser):  # type: ignore[no-untyped-def]
    base, acct = world["url"], world["account"]
    advertiser = browser.new_context(viewport=DESKTOP).new_page()

    # Sign in as the advertiser and read the balance.
    advertiser.goto(base + "/web/sign-in")
    shoot(advertiser, "sign-in")
    sign_in(advertiser, base, world["advertiser"])
    assert advertiser.url == f"{base}/web/accounts/{acct['id']}"
    cookie = next(c for c in advertiser.context.cookies() if c["name"].endswith("session"))
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Strict")
    balance = advertiser.locator("#balance-h + dl")
    assert "Prepaid funds available" in balance.inner_text()
    assert advertiser.get_by_text("is not withdrawable").count() == 1
    assert advertiser.locator("tr.soon").count() == 1
    assert "Spend $" in advertiser.locator(".progress").inner_text()

    # Redeem a code.
    advertiser.fill("#code", world["code"].lower())
    advertiser.get_by_role("button", name="Redeem").click()
    advertiser.wait_for_load_state()
    assert "Code redeemed" in advertiser.locator(".flash").inner_text()
    assert "Welcome back $20" in advertiser.locator(".progress").inner_text()
    shoot(advertiser, "billing")

    # A refused code, in plain words.
    advertiser.fill("#code", "NOPE-NOPE-NOPE-NOPE")
    advertiser.get_by_role("button", name="Redeem").click()
    assert "We don't recognise that code" in advertiser.locator("#redeem-error").inner_text()

    # Request a refund of $50.
    advertiser.goto(f"{base}/web/accounts/{acct['id']}")
    advertiser.fill("#amount", "50")
    advertiser.fill("#reason", "Campaign ended early")
    advertiser.get_by_role("button", name="Request refund").click()
    advertiser.wait_for_load_state()
    assert "Refund of $50.00 requested" in advertiser.locator(".flash").inner_text()
    assert "pending" in advertiser.locator("#refunds").inner_text()

    # The history, filtered, and its CSV.
    advertiser.goto(f"{base}/web/accounts/{acct['id']}/transactions")
    advertiser.select_option("#kind", "spend")
    advertiser.get_by_role("button", name="Filter").click()
    advertiser.wait_for_load_state()
    assert "kind=spend" in advertiser.url
    with advertiser.expect_download() as got:
        advertiser.get_by_text("Download as CSV").click()
    assert got.value.suggested_filename == f"{acct['id']}-transactions.csv"
    shoot(advertiser, "transactions")

    # Another business's account is not found.
    answer = advertiser.goto(f"{base}/web/accounts/{world['stranger']['id']}")
    assert answer.status == 404
    assert "Stranger" not in advertiser.content()

    # A form whose CSRF token was removed is refused, and nothing changes.
    advertiser.goto(f"{base}/web/accounts/{acct['id']}")
    advertiser.evaluate(
        "document.querySelector('form[action$=\"/refunds\"] input[name=csrf]').remove()"
    )
    advertiser.fill("#amount", "10")
    with advertiser.expect_navigation() as nav:
        advertiser.get_by_role("button", name="Request refund").click()
    assert nav.value.status == 403
    assert "security token" in advertiser.locator("main").inner_text()

    # Finance approves it and marks it paid.
    finance = browser.new_context(viewport=DESKTOP).new_page()
    sign_in(finance, base, world["finance"])
    assert finance.url == f"{base}/web/finance"
    card = finance.locator(".queue > li").filter(has_text="$50.00 for Acme US")
    assert "Account age" in card.inner_text() and "Spend, 30 days" in card.inner_text()
    shoot(finance, "finance-queue")
    card.get_by_role("button", name="Approve").click()
    finance.wait_for_load_state()
    assert "approved" in finance.locator(".flash").inner_text()
    finance.get_by_role("button", name="Mark the refund of $50.00 paid").click()
    finance.wait_for_load_state()
    assert "marked paid" in finance.locator(".flash").inner_text()

    # The advertiser sees it paid.
    advertiser.goto(f"{base}/web/accounts/{acct['id']}")
    assert "$50.00 paid" in advertiser.locator("#refunds").inner_text()

    # The rest of the console, photographed.
    finance.goto(f"{base}/web/finance/accounts?q=acme")
    shoot(finance, "finance-accounts")
    finance.get_by_role("link", name="Acme US").click()
    finance.wait_for_load_state()
    shoot(finance, "finance-account")
    finance.goto(f"{base}/web/finance/promotions")
    shoot(finance, "promotions")
    finance.get_by_role("link", name="Welcome back $20").click()
    finance.wait_for_load_state()
    shoot(finance, "promotion-report")
    finance.goto(f"{base}/web/finance/liabilities")
    assert finance.locator("svg.chart").count() == 2
    shoot(finance, "liabilities")

    # Signing out ends the session.
    finance.get_by_role("button", name="Sign out").click()
    finance.wait_for_load_state()
    assert finance.url.startswith(base + "/web/sign-in")
    finance.goto(base + "/web/finance")
    assert finance.url.startswith(base + "/web/sign-in")
