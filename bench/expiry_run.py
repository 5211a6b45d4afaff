"""Benchmark 4 — the expiry run (`service.expiry.run_expiry` in a `Database.run`, what
`POST /v1/expirations/run` and the server's sweeper call) over 10^6 lots of which 10% are due.

To show that its work grows with the due lots and not with all lots, three configurations:

* A — N lots (10^6; quick 10^5), 10% due (the issue's case);
* B — N/10 lots, all due: as many due lots as A, ten times fewer lots;
* C — N lots, 1% due: as many lots as A, ten times fewer due.

If the run scales with due lots, A ≈ B and C ≈ A/10. Lots are spread evenly over 10,000
accounts (fewer in tiny sizes). Each configuration is loaded once into a template database with
bulk driver inserts (lots, their `credit_grant` transactions and entries, stored `remaining`
equal to their entries, so `adledger verify` is clean; not measured) and every run works on a
fresh copy of it (a file copy / `CREATE DATABASE … TEMPLATE`), since an expiry run is not
repeatable. Due lots have `expires_at` one or two hours ago, the others in 30 days. Baseline of
the same run: the rows the expiry wrote (one transaction and two entries per due lot, one
UPDATE per lot and per account) by plain driver calls in one transaction, on the same copy.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from adledger.domain.ids import new_ids
from adledger.service.expiry import run_expiry
from adledger.storage.tables import to_us
from bench import harness as h


def load_lots(
    url: str, account_ids: list[str], total: int, due_early: int, due_late: int
) -> dict[str, Any]:
    """`total` active lots of 1,000 cents with their grants; the first `due_early` expired two
    hours ago, the next `due_late` one hour ago, the rest expire in 30 days."""
    now = datetime.now(UTC)
    created = to_us(now - timedelta(days=3))
    early, late, later = (to_us(now - timedelta(hours=k)) for k in (2, 1, -24 * 30))
    sqlite = url.startswith("sqlite")
    if sqlite:
        conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("PRAGMA synchronous=OFF")  # the loader only
    else:
        import psycopg

        conn = psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"),
            options="-c synchronous_commit=off",
        )
    lot_cols = (
        "id",
        "account_id",
        "source",
        "original",
        "remaining",
        "effective_at",
        "expires_at",
        "priority",
        "status",
        "reason",
        "created_at",
    )
    txn_cols = (
        "id",
        "account_id",
        "kind",
        "currency",
        "created_at",
        "cash_delta",
        "credit_delta",
        "description",
        "lot_id",
    )
    entry_cols = ("txn_id", "account_id", "lot_id", "book", "amount")
    all_lots: list[str] = []
    chunk = 100_000
    for offset in range(0, total, chunk):
        n = min(chunk, total - offset)
        lot_ids = new_ids("lot", n)
        txn_ids = new_ids("txn", n)
        lot_rows, txn_rows, entry_rows = [], [], []
        for i, (lot_id, txn_id) in enumerate(zip(lot_ids, txn_ids, strict=True)):
            k = offset + i
            a = account_ids[k % len(account_ids)]
            expires = early if k < due_early else late if k < due_early + due_late else later
            lot_rows.append(
                (
                    lot_id,
                    a,
                    "manual",
                    1_000,
                    1_000,
                    created,
                    expires,
                    50,
                    "active",
                    "bench",
                    created,
                )
            )
            txn_rows.append(
                (
                    txn_id,
                    a,
                    "credit_grant",
                    "USD",
                    created,
                    0,
                    1_000,
                    "Credit granted: bench",
                    lot_id,
                )
            )
            entry_rows.append((txn_id, a, lot_id, "credit", 1_000))
            entry_rows.append((txn_id, a, None, "platform:promotion", -1_000))
        all_lots.extend(lot_ids)
        tables = (
            ("lots", lot_cols, lot_rows),
            ("transactions", txn_cols, txn_rows),
            ("entries", entry_cols, entry_rows),
        )
        if sqlite:
            conn.execute("BEGIN IMMEDIATE")
            for table, cols, rows in tables:
                marks = ", ".join("?" for _ in cols)
                conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", rows)
            conn.execute("COMMIT")
        else:
            with conn.cursor() as cur:
                for table, cols, rows in tables:
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
                        for row in rows:
                            cp.write_row(row)
            conn.commit()
    if sqlite:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    h.pg_analyze(url)
    return {"lots": all_lots}


CONFIGS = (
    # name, total lots (fraction of N), due lots (fraction of N), as_of (hours ago)
    ("A", 1.0, 0.10, 0.5),
    ("B", 0.1, 0.10, 0.5),
    ("C", 1.0, 0.01, 1.5),
)


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    for backend in prof.backends:
        n = prof.expiry_lots if prof.big(backend) else min(prof.expiry_lots, 10**5)
        n_accounts = min(10_000, max(10, n // 100))
        h.console.rule(f"expiry run — {backend}")
        configs: dict[str, Any] = {}
        verified: dict[str, Any] = {}
        # Template 1 (A and C): N lots, the first 1% due early, the next 9% due late.
        # Template 2 (B): N/10 lots, all due late.
        with (
            h.fresh_database(backend, "expiry-big") as big,
            h.fresh_database(backend, "expiry-small") as small,
        ):
            templates = {}
            for url, total, early, late in (
                (big, n, n // 100, n // 10 - n // 100),
                (small, n // 10, 0, n // 10),
            ):
                seeded = h.seed_accounts(url, n_accounts, lots_per_account=0)
                started = time.perf_counter()
                loaded = load_lots(url, seeded.accounts, total, early, late)
                h.console.print(
                    f"  template: {total:,} lots loaded in {time.perf_counter() - started:.1f} s",
                    markup=False,
                )
                seeded.lots = {"all": loaded["lots"]}
                templates[url] = seeded
            cond = h.conditions(
                big,
                lots=n,
                accounts=n_accounts,
                profile=prof.name,
                configs={c[0]: {"lots": int(c[1] * n), "due": int(c[2] * n)} for c in CONFIGS},
            )
            for name, total_f, due_f, hours_ago in CONFIGS:
                template = big if name != "B" else small
                per_run = []
                for run_no in range(prof.expiry_runs):
                    with h.clone_database(template) as url:
                        db = h.database(url)
                        as_of = db.clock.now() - timedelta(hours=hours_ago)
                        before = h.row_counts(url, ["transactions", "entries"])
                        started = time.perf_counter()
                        result = db.run(run_expiry, as_of)
                        took = time.perf_counter() - started
                        again = db.run(run_expiry, as_of)
                        db.dispose()
                        written = h.diff_counts(
                            before, h.row_counts(url, ["transactions", "entries"])
                        )
                        due = int(due_f * n)
                        if result["expired_lots"] != due or again["expired_lots"] != 0:
                            raise SystemExit(
                                f"expiry {name}: expired {result['expired_lots']}, "
                                f"wanted {due}; second run {again['expired_lots']}"
                            )
                        if run_no == prof.expiry_runs - 1:
                            verified[name] = h.verify_clean(url, f"expiry {name} ({backend})")
                        h.ensure_audit_head(url)
                        raw = h.RawWriter(url, templates[template])
                        touched = min(n_accounts, due)
                        raw_s = raw.write(
                            h.WriteProfile(
                                written.get("transactions", 0),
                                written.get("entries", 0),
                                touched,
                                due,
                            )
                        )
                        raw.close()
                    per_run.append(
                        {
                            "seconds": took,
                            "expired_lots": result["expired_lots"],
                            "lots_per_s": due / took,
                            "baseline_seconds": raw_s,
                            "ratio": raw_s / took,
                        }
                    )
                    h.console.print(
                        f"  {name} run {run_no + 1}: {took:.2f} s for {due:,} due "
                        f"of {int(total_f * n):,} lots (baseline {raw_s:.2f} s)",
                        markup=False,
                    )
                configs[name] = {"lots": int(total_f * n), "due": int(due_f * n), "runs": per_run}
        figures = []
        for name, c in configs.items():
            label = f"{name}: {c['due']:,} due of {c['lots']:,} lots"
            figures.append(h.figure(f"{label} — run time", [r["seconds"] for r in c["runs"]], "s"))
            figures.append(
                h.figure(
                    f"{label} — baseline (raw rows)",
                    [r["baseline_seconds"] for r in c["runs"]],
                    "s",
                )
            )
        a, b, c_ = (configs[k]["runs"] for k in "ABC")
        figures.append(
            h.figure(
                "A / B (same due, 10× lots; ≈1 if cost follows due lots)",
                [x["seconds"] / y["seconds"] for x, y in zip(a, b, strict=True)],
                "x",
            )
        )
        figures.append(
            h.figure(
                "A / C (same lots, 10× due; ≈10 if cost follows due lots)",
                [x["seconds"] / y["seconds"] for x, y in zip(a, c_, strict=True)],
                "x",
            )
        )
        figures.append(
            h.figure("A: baseline / adledger", [r["ratio"] for r in configs["A"]["runs"]], "%")
        )
        h.show_table(f"Expiry run — {backend}", figures, cond)
        out["backends"][backend] = {
            "conditions": cond,
            "configs": configs,
            "figures": figures,
            "verify": verified,
        }
    h.write_result("expiry_run", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
