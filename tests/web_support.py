"""Helpers for the web page tests: a signed-in browser over Starlette's TestClient.

The session cookie is `Secure`, so the client talks to `https://testserver` (a cookie jar sends
Secure cookies over https only, as browsers do). `Visitor.post` sends the page's CSRF token
unless told not to.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from adledger.http.app import create_app
from adledger.service import keys as key_service
from adledger.service.uow import Database

TOKEN = re.compile(r'name="csrf" value="([^"]*)"')


def web_client(db: Database) -> TestClient:
    return TestClient(
        create_app(db=db, migrate=False),
        base_url="https://testserver",
        raise_server_exceptions=False,
    )


class Visitor:
    """One browser session: `Visitor(client).sign_in(key)`, then `get` and `post` pages."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""
        self.key_id = ""

    def sign_in(self, key: str) -> Any:
        page = self.client.get("/web/sign-in")
        token = TOKEN.search(page.text)
        assert token, page.text
        landed = self.client.post(
            "/web/sign-in", data={"csrf": token.group(1), "api_key": key}, follow_redirects=True
        )
        found = TOKEN.search(landed.text)
        self.csrf = found.group(1) if found else ""
        return landed

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True) -> Any:
        form = dict(data or {})
        if csrf:
            form["csrf"] = self.csrf
        return self.client.post(path, data=form, follow_redirects=False)


def visitor(
    db: Database, role: str, business_id: str | None = None
) -> tuple[Visitor, dict[str, Any]]:
    """A new key of `role` and a browser signed in with it (each with its own cookie jar)."""
    made = db.run(key_service.create_key, role=role, name=f"web {role}", business_id=business_id)
    browser = Visitor(web_client(db))
    browser.sign_in(made["key"])
    browser.key_id = made["id"]
    return browser, made


def text_of(html: str) -> str:
    """The page's words, tags stripped and spaces squeezed, for asserting on what people read."""
    words = re.sub(r"<[^>]+>", " ", html)
    return re.sub(r"\s+", " ", words.replace("&#39;", "'").replace("&amp;", "&")).strip()


def make_promotion(
    db: Database, *, kind: str = "coupon", reward: int = 2_000, codes: int = 1, **terms: Any
) -> tuple[dict[str, Any], list[str]]:
    """A promotion running from now for 30 days, and `codes` fresh codes of it."""
    from datetime import timedelta

    from adledger.service import promotions

    now = db.clock.now()
    promo = db.run(
        promotions.create_promotion,
        name=terms.pop("name", f"{kind} offer"),
        kind=kind,
        currency=terms.pop("currency", "USD"),
        reward=terms.pop("reward_terms", {"amount": reward}),
        credit_valid_days=terms.pop("credit_valid_days", 30),
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(days=30),
        **terms,
    )
    made = db.run(promotions.create_codes, promo["id"], count=codes) if codes else {"codes": []}
    return promo, made["codes"]


def post_spend(db: Database, account_id: str, amount: int, occurred_at: Any, n: int = 0) -> Any:
    from adledger.service.spend import SpendEvent
    from adledger.service.spend import post_spend as post

    event = SpendEvent(f"evt_{account_id[-8:]}_{n}_{amount}", account_id, amount, occurred_at)
    return db.run(post, [event])[0]
