"""Server-rendered pages for advertisers and finance staff, served by `adledger serve` itself.

An adapter like `http/`: the pages call the same service functions as the API, in the same
units of work, with the same role checks and tenant scope (see `web.session`). Routes are left
out of the OpenAPI document: they are pages, not API operations.

    pages.py    signing in and out, the start page
    billing.py  the advertiser's billing page, transactions and CSV, redeem / refund / cancel
    console.py  the finance console: refund queue, accounts, promotions, liabilities
    session.py  the session cookie, CSRF tokens, role checks, audited actions
    render.py   templates, formatting, and refusals as pages
    forms.py    reading forms with the API's own request models
    charts.py   inline SVG charts
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the pages and their static files on `app`."""
    from adledger.web import billing, console, pages

    for module in (pages, billing, console):
        app.include_router(module.router)
    app.mount("/web/static", StaticFiles(directory=STATIC), name="web-static")
