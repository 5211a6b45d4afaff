"""Benchmark 3 — balance reads: p50/p99 of `GET /v1/accounts/{id}/balance` over HTTP with 10^3,
10^5 and 10^7 entries in the ledger; the cost must not grow with history.

One database per backend, grown between measurements: 100 accounts (cash and 3 credit lots each,
800 entries), then history loaded with bulk driver inserts (COPY / executemany; not measured) of
balanced `spend` transactions — a cash leg of −1 and a revenue leg of +1, spread evenly over the
100 accounts — after which each account's stored `cash_available` is lowered by exactly its
history's sum, so `adledger verify` stays clean. At 10^7 entries each read account has ~10^5
entries of its own history.

Reads: one client, one request at a time, on random accounts, with a finance key (the server
authenticates each request by its key's hash). The client is `harness.LeanClient` (the standard
library's http.client on one keep-alive connection), not httpx: httpx's own ~1.5 ms a request
would be counted as the server's. Baselines of the same run: `GET /healthz` (the
HTTP floor: no database) and the raw driver reading the account row (the storage floor).
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from adledger.domain.ids import new_ids
from adledger.storage.tables import to_us
from bench import harness as h

READ_ACCOUNTS = 100
BASE_ENTRIES = READ_ACCOUNTS * 8
_TXN_COLS = (
    "id",
    "account_id",
    "kind",
    "currency",
    "created_at",
    "cash_delta",
    "credit_delta",
    "description",
    "event_id",
    "occurred_at",
)
_ENTRY_COLS = ("txn_id", "account_id", "book", "amount")


def load_history(url: str, account_ids: list[str], txns: int, start: int) -> float:
    """Append `txns` balanced spend transactions (2 entries each) by plain driver calls and lower
    the accounts' stored cash to match; the seconds it took."""
    started = time.perf_counter()
    when = to_us(datetime.now(UTC) - timedelta(days=1))
    per_account = dict.fromkeys(account_ids, 0)
    chunk = 100_000
    sqlite = url.startswith("sqlite")
    if sqlite:
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")  # the loader only; the server runs durable
    else:
        import psycopg

        conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"),
            options="-c synchronous_commit=off",
        )
    m = "?" if sqlite else "%s"
    for offset in range(0, txns, chunk):
        n = min(chunk, txns - offset)
        ids = new_ids("txn", n)
        txn_rows, entry_rows = [], []
        for i, txn_id in enumerate(ids):
            a = account_ids[(offset + i) % len(account_ids)]
            per_account[a] += 1
            k = start + offset + i
            txn_rows.append(
                (
                    txn_id,
                    a,
                    "spend",
                    "USD",
                    when,
                    -1,
                    0,
                    f"Ad spend hist-{k}",
                    f"hist-{k:012d}",
                    when,
                )
            )
            entry_rows.append((txn_id, a, "cash", -1))
            entry_rows.append((txn_id, a, "platform:revenue", 1))
        txn_sql = (
            f"INSERT INTO transactions ({', '.join(_TXN_COLS)}) VALUES "
            f"({', '.join(m for _ in _TXN_COLS)})"
        )
        entry_sql = (
            f"INSERT INTO entries ({', '.join(_ENTRY_COLS)}) VALUES "
            f"({', '.join(m for _ in _ENTRY_COLS)})"
        )
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(txn_sql, txn_rows)
            conn.executemany(entry_sql, entry_rows)
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                with cur.copy(f"COPY transactions ({', '.join(_TXN_COLS)}) FROM STDIN") as cp:
                    for row in txn_rows:
                        cp.write_row(row)
                with cur.copy(f"COPY entries ({', '.join(_ENTRY_COLS)}) FROM STDIN") as cp:
                    for row in entry_rows:
                        cp.write_row(row)
            conn.commit()
    update = f"UPDATE accounts SET cash_available = cash_available - {m} WHERE id = {m}"
    if sqlite:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(update, [(n, a) for a, n in per_account.items()])
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with conn.cursor() as cur:
            cur.executemany(update, [(n, a) for a, n in per_account.items()])
        conn.commit()
    conn.close()
    h.pg_analyze(url)
    return time.perf_counter() - started


def raw_reads(url: str, account_ids: list[str], n: int, rng: random.Random) -> list[float]:
    """The storage floor: the driver reads the account row by its primary key."""
    sqlite = url.startswith("sqlite")
    if sqlite:
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"))
    else:
        import psycopg

        conn = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    sql = "SELECT * FROM accounts WHERE id = " + ("?" if sqlite else "%s")
    out = []
    for _ in range(n):
        a = rng.choice(account_ids)
        started = time.perf_counter()
        cur = conn.execute(sql, (a,))
        cur.fetchall()
        if not sqlite:
            conn.rollback()
        out.append(time.perf_counter() - started)
    conn.close()
    return out


def _ok(status: int, body: bytes) -> None:
    if status != 200:
        raise SystemExit(f"GET balance → {status}: {body[:300]!r}")


def measure(
    server: h.Server, key: str, account_ids: list[str], prof: h.Profile, rng: random.Random
) -> dict[str, Any]:
    per_run = []
    with h.LeanClient(server.base_url, key) as http:
        for a in account_ids[:20]:  # warm-up
            _ok(*http.get(f"/v1/accounts/{a}/balance"))
        for _ in range(prof.runs):
            lat, floor = [], []
            for _ in range(prof.balance_requests):
                a = rng.choice(account_ids)
                started = time.perf_counter()
                status, body = http.get(f"/v1/accounts/{a}/balance")
                lat.append(time.perf_counter() - started)
                _ok(status, body)
            for _ in range(max(1, prof.balance_requests // 2)):
                started = time.perf_counter()
                _ok(*http.get("/healthz"))
                floor.append(time.perf_counter() - started)
            raw = raw_reads(server.url, account_ids, max(1, prof.balance_requests // 2), rng)
            per_run.append(
                {
                    "requests": len(lat),
                    "p50_ms": h.percentile(lat, 50) * 1e3,
                    "p99_ms": h.percentile(lat, 99) * 1e3,
                    "healthz_p50_ms": h.percentile(floor, 50) * 1e3,
                    "healthz_p99_ms": h.percentile(floor, 99) * 1e3,
                    "raw_row_read_p50_ms": h.percentile(raw, 50) * 1e3,
                    "raw_row_read_p99_ms": h.percentile(raw, 99) * 1e3,
                }
            )
    return {"runs": per_run}


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    for backend in prof.backends:
        h.console.rule(f"balance reads — {backend}")
        with h.fresh_database(backend, "balance") as url:
            seeded = h.seed_accounts(url, READ_ACCOUNTS)
            accounts = seeded.accounts
            key = h.make_key(url, "finance")
            rng = random.Random(3)
            sizes: dict[str, Any] = {}
            entries_now = h.row_counts(url, ["entries"])["entries"]
            loaded = 0
            targets = [t for t in prof.balance_sizes if prof.big(backend) or t <= 10**5]
            for target in targets:
                need = max(0, (target - entries_now) // 2)
                took = load_history(url, accounts, need, loaded) if need else 0.0
                loaded += need
                counts = h.row_counts(url, ["transactions", "entries"])
                entries_now = counts["entries"]
                h.console.print(
                    f"  ledger: {counts['entries']:,} entries, {counts['transactions']:,} "
                    f"transactions (history loaded in {took:.1f} s)",
                    markup=False,
                )
                with h.Server(url) as server:
                    m = measure(server, key, accounts, prof, rng)
                m |= {
                    "entries": counts["entries"],
                    "transactions": counts["transactions"],
                    "load_seconds": round(took, 1),
                }
                sizes[str(target)] = m
                r = m["runs"]
                h.console.print(
                    f"  10^{len(str(target)) - 1}: p50 "
                    f"{sorted(x['p50_ms'] for x in r)[len(r) // 2]:.2f} ms, p99 "
                    f"{sorted(x['p99_ms'] for x in r)[len(r) // 2]:.2f} ms",
                    markup=False,
                )
            verified = h.verify_clean(url, f"balance reads ({backend})")
            cond = h.conditions(
                url,
                accounts=READ_ACCOUNTS,
                lots_per_account=3,
                entries=[sizes[k]["entries"] for k in sizes],
                requests_per_run=prof.balance_requests,
                client="1 client (the standard library's http.client), sequential, keep-alive",
                profile=prof.name,
            )
            figures = []
            for target, m in sizes.items():
                label = f"10^{len(target) - 1} entries"
                figures.append(
                    h.figure(f"{label}: balance p50", [r["p50_ms"] for r in m["runs"]], "ms")
                )
                figures.append(
                    h.figure(f"{label}: balance p99", [r["p99_ms"] for r in m["runs"]], "ms")
                )
            first, last = sizes[min(sizes, key=int)], sizes[max(sizes, key=int)]
            big = f"10^{len(max(sizes, key=int)) - 1}"
            small = f"10^{len(min(sizes, key=int)) - 1}"
            figures.append(
                h.figure(
                    f"p99 ratio {big} / {small}",
                    [
                        b["p99_ms"] / a["p99_ms"]
                        for a, b in zip(first["runs"], last["runs"], strict=True)
                    ],
                    "x",
                )
            )
            figures.append(
                h.figure(
                    f"p50 ratio {big} / {small}",
                    [
                        b["p50_ms"] / a["p50_ms"]
                        for a, b in zip(first["runs"], last["runs"], strict=True)
                    ],
                    "x",
                )
            )
            all_runs = [r for m in sizes.values() for r in m["runs"]]
            figures.append(
                h.figure("baseline GET /healthz p50", [r["healthz_p50_ms"] for r in all_runs], "ms")
            )
            figures.append(
                h.figure("baseline GET /healthz p99", [r["healthz_p99_ms"] for r in all_runs], "ms")
            )
            figures.append(
                h.figure(
                    "baseline raw account-row read p99",
                    [r["raw_row_read_p99_ms"] for r in all_runs],
                    "ms",
                )
            )
            h.show_table(f"Balance reads — {backend}", figures, cond)
            out["backends"][backend] = {
                "conditions": cond,
                "sizes": sizes,
                "figures": figures,
                "verify": verified,
            }
    h.write_result("balance_reads", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
