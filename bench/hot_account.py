"""Benchmark 2 — a hot account: every event on one account, over HTTP, from one client and from 8
concurrent clients (10,000 events a call), beside the raw storage ceiling of the same rows.

The hot account holds plenty of cash (so events stay cash-funded after its 3 lots are used up);
99 other accounts exist and get nothing. With 8 clients, every batch locks the same account
row (PostgreSQL `FOR UPDATE`; SQLite's write lock serialises all writers anyway), so the
batches queue: the figure shows what the lock costs. The baseline replays each batch's rows with
plain driver calls, one transaction per batch, from one connection.
"""

from __future__ import annotations

import random
from typing import Any

from bench import harness as h
from bench.spend_ingest import _mode, http_sender


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    for backend in prof.backends:
        h.console.rule(f"hot account — {backend}")
        with h.fresh_database(backend, "hot") as url, h.fresh_database(backend, "raw") as raw_url:
            seeded = h.seed_accounts(url, 100, cash=10**13)
            raw_seeded = h.seed_accounts(raw_url, 100, cash=10**13)
            h.ensure_audit_head(raw_url)
            hot = seeded.accounts[0]
            raw_seeded.accounts = raw_seeded.accounts[:1]
            raw = h.RawWriter(raw_url, raw_seeded)
            rng = random.Random(5)
            cond = h.conditions(
                url,
                accounts=1,
                skew="all events on one account",
                batch_size=prof.batch,
                lots_per_account=3,
                clients=[1, prof.hot_clients],
                profile=prof.name,
            )
            modes: dict[str, Any] = {}
            key = h.make_key(url, "ingest")
            try:
                with h.Server(url) as server:
                    one = http_sender(server.base_url, key, 1)
                    one([h.spend_events([hot] * prof.batch, rng)])  # warm-up
                    modes["1_client"] = _mode(
                        "HTTP hot, 1 client",
                        url,
                        raw,
                        None,
                        hot,
                        prof,
                        rng,
                        one,
                        max(3, prof.hot_batches_per_client * 2),
                    )
                    many = http_sender(server.base_url, key, prof.hot_clients)
                    modes[f"{prof.hot_clients}_clients"] = _mode(
                        f"HTTP hot, {prof.hot_clients} clients",
                        url,
                        raw,
                        None,
                        hot,
                        prof,
                        rng,
                        many,
                        prof.hot_batches_per_client * prof.hot_clients,
                    )
            finally:
                raw.close()
            verified = h.verify_clean(url, f"hot account ({backend})")
            figures = [f for m in modes.values() for f in m["figures"]]
            h.show_table(f"Hot account — {backend}", figures, cond)
            out["backends"][backend] = {
                "conditions": cond,
                "modes": modes,
                "figures": figures,
                "verify": verified,
            }
    h.write_result("hot_account", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
