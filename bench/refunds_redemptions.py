"""Benchmark 5 — refund requests and redemption requests under 16 concurrent clients over HTTP:
requests/s and p99, beside the HTTP floor and the raw storage floor of the same run.

16 businesses, one advertiser key and one client thread each; each business has 25 accounts
holding cash. Every request carries a fresh `Idempotency-Key` (as a careful client sends).

* Refunds: `POST /v1/accounts/{id}/refunds {amount}` (1–100 cents; answered 201 `pending`, the
  amount held at once), each client cycling over its own accounts.
* Redemptions: coupon promotions (once per business off, so each of a business's accounts may
  redeem) with single-use codes; each request redeems a fresh code on an account that has not
  redeemed that promotion (answered 201 `granted`: a credit lot is made). Every redemption of one
  promotion locks the promotion's row; there are as many promotions as needed for 400 accounts.
* Baselines: `GET /healthz` from 16 clients (the HTTP floor: no database), and the raw storage
  floor — 16 threads, each committing, per request, the rows adledger wrote per request (counted
  from the tables after the run) by plain driver calls in one transaction.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta
from typing import Any

from adledger.service import promotions
from bench import harness as h

ACCOUNTS_PER_BUSINESS = 25
COUNTED = (
    "transactions",
    "entries",
    "refunds",
    "redemptions",
    "lots",
    "idempotency_keys",
    "audit_log",
    "promotion_codes",
)


def _clients(
    base_url: str, keys: list[str], work: list[list[tuple[str, dict[str, Any]]]], status: int
) -> tuple[float, list[float]]:
    """Client i sends work[i] (path, body) one at a time; (wall seconds, all latencies)."""

    def one(i: int) -> list[float]:
        lat = []
        with h.client(base_url, keys[i]) as http:
            for path, body in work[i]:
                started = time.perf_counter()
                if body is None:
                    r = http.get(path)
                else:
                    r = http.post(path, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
                lat.append(time.perf_counter() - started)
                if r.status_code != status:
                    raise SystemExit(f"{path} → {r.status_code}: {r.text[:300]}")
        return lat

    wall, lats = h.run_threads(len(keys), one)
    return wall, [x for lat in lats for x in lat]


def _raw_floor(
    url: str, seeded: h.Seeded, threads: int, per_thread: int, profile: h.WriteProfile
) -> tuple[float, list[float]]:
    def one(i: int) -> list[float]:
        w = h.RawWriter(url, seeded)
        try:
            return [w.write(profile) for _ in range(per_thread)]
        finally:
            w.close()

    wall, lats = h.run_threads(threads, one)
    return wall, [x for lat in lats for x in lat]


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    n_clients = prof.refund_clients
    per_client = max(1, prof.refund_requests // n_clients)
    for backend in prof.backends:
        h.console.rule(f"refunds and redemptions — {backend}")
        with (
            h.fresh_database(backend, "refunds") as url,
            h.fresh_database(backend, "raw") as raw_url,
        ):
            seeded = h.seed_accounts(
                url, n_clients * ACCOUNTS_PER_BUSINESS, businesses=n_clients, lots_per_account=0
            )
            raw_seeded = h.seed_accounts(raw_url, 100, lots_per_account=1)
            h.ensure_audit_head(raw_url)
            accounts_by_biz: dict[str, list[str]] = {b: [] for b in seeded.businesses}
            for i, a in enumerate(seeded.accounts):
                accounts_by_biz[seeded.businesses[i % n_clients]].append(a)
            keys = [h.make_key(url, "advertiser", b) for b in seeded.businesses]
            # Promotions and codes for every redemption of every run.
            total = per_client * n_clients * prof.runs
            n_promos = -(-total // len(seeded.accounts))
            db = h.database(url)
            now = db.clock.now()
            codes: list[tuple[str, list[str]]] = []
            for p in range(n_promos):
                promo = db.run(
                    promotions.create_promotion,
                    name=f"Bench coupon {p}",
                    kind="coupon",
                    currency="USD",
                    reward={"amount": 1_000},
                    credit_valid_days=30,
                    starts_at=now - timedelta(hours=1),
                    ends_at=now + timedelta(days=30),
                    eligibility={"once_per_business": False},
                )
                made = db.run(promotions.create_codes, promo["id"], count=len(seeded.accounts))
                codes.append((promo["id"], made["codes"]))
            db.dispose()
            # Redemption work: (promotion p, account slot j) pairs, client i owns its accounts.
            pairs: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(n_clients)]
            for p, (_promo, promo_codes) in enumerate(codes):
                for j, a in enumerate(seeded.accounts):
                    client_no = j % n_clients
                    pairs[client_no].append(
                        (f"/v1/accounts/{a}/redemptions", {"code": promo_codes[j]})
                    )
                _ = p
            rng = random.Random(9)
            cond = h.conditions(
                url,
                clients=n_clients,
                businesses=n_clients,
                accounts=len(seeded.accounts),
                promotions=n_promos,
                requests_per_run=per_client * n_clients,
                idempotency_key="fresh on every request",
                profile=prof.name,
            )
            kinds: dict[str, Any] = {
                "refund": [],
                "redemption": [],
                "healthz": [],
                "raw_refund": [],
                "raw_redemption": [],
            }
            with h.Server(url) as server:
                for run_no in range(prof.runs):
                    for kind in ("refund", "redemption"):
                        if kind == "refund":
                            work = [
                                [
                                    (f"/v1/accounts/{a}/refunds", {"amount": rng.randint(1, 100)})
                                    for k in range(per_client)
                                    for a in [accounts_by_biz[b][k % ACCOUNTS_PER_BUSINESS]]
                                ]
                                for b in seeded.businesses
                            ]
                        else:
                            work = [
                                pairs[i][run_no * per_client : (run_no + 1) * per_client]
                                for i in range(n_clients)
                            ]
                        before = h.row_counts(url, COUNTED)
                        wall, lat = _clients(server.base_url, keys, work, 201)
                        delta = h.diff_counts(before, h.row_counts(url, COUNTED))
                        n = sum(len(w) for w in work)
                        per_req = {t: v / n for t, v in delta.items()}
                        kinds[kind].append(
                            {
                                "requests": n,
                                "seconds": wall,
                                "rps": n / wall,
                                "p50_ms": h.percentile(lat, 50) * 1e3,
                                "p99_ms": h.percentile(lat, 99) * 1e3,
                                "rows_inserted_per_request": per_req,
                            }
                        )
                        txns = round(per_req.get("transactions", 0))
                        ents = round(per_req.get("entries", 0))
                        other = round(
                            sum(
                                v
                                for t, v in per_req.items()
                                if t not in ("transactions", "entries")
                            )
                        )
                        rp = h.WriteProfile(max(1, txns), max(2, ents), 1, 0, other, 2)
                        rwall, rlat = _raw_floor(
                            raw_url, raw_seeded, n_clients, max(1, per_client // 2), rp
                        )
                        rn = n_clients * max(1, per_client // 2)
                        kinds[f"raw_{kind}"].append(
                            {
                                "rps": rn / rwall,
                                "p99_ms": h.percentile(rlat, 99) * 1e3,
                                "profile": h.asdict_profile(rp),
                            }
                        )
                        h.console.print(
                            f"  {kind} run {run_no + 1}: {n / wall:,.0f} requests/s, p99 "
                            f"{h.percentile(lat, 99) * 1e3:.1f} ms (raw floor {rn / rwall:,.0f}/s)",
                            markup=False,
                        )
                    hz = [[("/healthz", None)] * per_client for _ in range(n_clients)]
                    hwall, hlat = _clients(server.base_url, keys, hz, 200)  # type: ignore[arg-type]
                    kinds["healthz"].append(
                        {
                            "rps": n_clients * per_client / hwall,
                            "p99_ms": h.percentile(hlat, 99) * 1e3,
                        }
                    )
            verified = h.verify_clean(url, f"refunds and redemptions ({backend})")
            figures = []
            for kind in ("refund", "redemption"):
                figures.append(
                    h.figure(f"{kind} requests/s", [r["rps"] for r in kinds[kind]], "req/s")
                )
                figures.append(h.figure(f"{kind} p50", [r["p50_ms"] for r in kinds[kind]], "ms"))
                figures.append(h.figure(f"{kind} p99", [r["p99_ms"] for r in kinds[kind]], "ms"))
                figures.append(
                    h.figure(
                        f"{kind}: raw storage floor requests/s",
                        [r["rps"] for r in kinds[f"raw_{kind}"]],
                        "req/s",
                    )
                )
                figures.append(
                    h.figure(
                        f"{kind}: adledger / raw floor",
                        [
                            a["rps"] / b["rps"]
                            for a, b in zip(kinds[kind], kinds[f"raw_{kind}"], strict=True)
                        ],
                        "%",
                    )
                )
            figures.append(
                h.figure(
                    "baseline GET /healthz requests/s",
                    [r["rps"] for r in kinds["healthz"]],
                    "req/s",
                )
            )
            figures.append(
                h.figure("baseline GET /healthz p99", [r["p99_ms"] for r in kinds["healthz"]], "ms")
            )
            h.show_table(f"Refunds and redemptions, {n_clients} clients — {backend}", figures, cond)
            out["backends"][backend] = {
                "conditions": cond,
                "runs": kinds,
                "figures": figures,
                "verify": verified,
            }
    h.write_result("refunds_redemptions", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
