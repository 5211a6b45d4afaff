"""Benchmark 1 — spend ingestion, in-process (service layer) and over HTTP, beside the raw storage
ceiling of the same run.

* 10,000 accounts (profile `accounts`), each with cash and 3 credit lots (one scoped to campaign
  `cmp_1`); events pick their account with Zipf skew (s = 1.1): the hottest account gets ~15% of
  the events, the ten hottest ~40%. 30% of events name `cmp_1`. Amounts 50–5,000 cents.
* In-process: `Database.run(post_spend, events)` — one unit of work per batch of 10,000, as the
  HTTP route calls it (SpendEvent objects are made before the clock starts).
* HTTP: `POST /v1/spend` with 10,000 events a call (the bodies are encoded before the clock
  starts), from this process, to a real `adledger serve` subprocess, one call at a time. No
  `Idempotency-Key` (event ids are the idempotency of spend).
* Baseline, the raw storage ceiling: for every adledger batch, the same rows — one transactions
  row per applied event, the same number of entries, one UPDATE per touched account and per lot
  drawn, and (HTTP) the audit record and audit_head update — written by plain driver calls in one
  transaction, into a second database of the same schema, with the same durability settings and
  random event ids. Each run does adledger's batches, then the baseline's, so both see the same
  machine load.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from adledger.service.spend import post_spend
from bench import harness as h

ROW_TABLES = ("transactions", "entries", "lots", "accounts", "audit_log", "idempotency_keys")


def http_batches(
    base_url: str, key: str, bodies: list[bytes], clients: int = 1
) -> tuple[float, list[float], list[bytes]]:
    """POST the bodies to /v1/spend from `clients` threads (client i sends bodies i, i+n, …);
    (wall seconds, latency of each call, each response body)."""
    latencies: list[float] = [0.0] * len(bodies)
    responses: list[bytes] = [b""] * len(bodies)

    def one_client(c: int) -> None:
        with h.client(base_url, key) as http:
            for i in range(c, len(bodies), clients):
                started = time.perf_counter()
                r = http.post("/v1/spend", content=bodies[i])
                latencies[i] = time.perf_counter() - started
                if r.status_code != 200:
                    raise SystemExit(f"POST /v1/spend → {r.status_code}: {r.text[:500]}")
                responses[i] = r.content

    wall, _ = h.run_threads(clients, one_client)
    return wall, latencies, responses


def check_applied(batches: list[list[dict[str, Any]]], results: list[list[dict[str, Any]]]) -> None:
    for events, res in zip(batches, results, strict=True):
        bad = [r for r in res if r["status"] != "applied"]
        if bad or len(res) != len(events):
            raise SystemExit(f"spend not applied: {bad[:3]}")


def _mode(
    mode: str,
    url: str,
    raw: h.RawWriter,
    zipf: h.Zipf | None,
    hot: str | None,
    prof: h.Profile,
    rng: random.Random,
    send: Any,
    batches_per_run: int,
) -> dict[str, Any]:
    """`runs` runs of `batches_per_run` batches through `send`, each followed by the baseline."""
    per_run: list[dict[str, Any]] = []
    profiles: list[h.WriteProfile] = []
    before = h.row_counts(url, ROW_TABLES)
    events_total = 0
    for run in range(prof.runs):
        batches = [
            h.spend_events(zipf.draw(prof.batch) if zipf else [hot] * prof.batch, rng)  # type: ignore[list-item]
            for _ in range(batches_per_run)
        ]
        wall, latencies, results = send(batches)
        check_applied(batches, results)
        extra = (1, 1) if mode.lower().startswith("http") else (0, 0)
        run_profiles = [
            h.profile_from_results(ev, res, *extra)
            for ev, res in zip(batches, results, strict=True)
        ]
        profiles.extend(run_profiles)
        raw_lat = [raw.write(p) for p in run_profiles]
        events = sum(len(b) for b in batches)
        events_total += events
        per_run.append(
            {
                "events": events,
                "seconds": wall,
                "events_per_s": events / wall,
                "p50_ms": h.percentile(latencies, 50) * 1e3,
                "p99_ms": h.percentile(latencies, 99) * 1e3,
                "baseline_events_per_s": events / sum(raw_lat),
                "baseline_p50_ms": h.percentile(raw_lat, 50) * 1e3,
                "baseline_p99_ms": h.percentile(raw_lat, 99) * 1e3,
            }
        )
        per_run[-1]["ratio"] = per_run[-1]["events_per_s"] / per_run[-1]["baseline_events_per_s"]
        h.console.print(
            f"  {mode} run {run + 1}: {per_run[-1]['events_per_s']:,.0f} events/s "
            f"(baseline {per_run[-1]['baseline_events_per_s']:,.0f}/s, "
            f"ratio {per_run[-1]['ratio']:.0%})",
            markup=False,
        )
    after = h.row_counts(url, ROW_TABLES)
    delta = h.diff_counts(before, after)
    rows_per_event = {k: round(v / events_total, 4) for k, v in delta.items()}
    figures = [
        h.figure(f"{mode} events/s", [r["events_per_s"] for r in per_run], "events/s"),
        h.figure(f"{mode} batch p50", [r["p50_ms"] for r in per_run], "ms"),
        h.figure(f"{mode} batch p99", [r["p99_ms"] for r in per_run], "ms"),
        h.figure(
            f"{mode} baseline (raw, rows-equivalent) events/s",
            [r["baseline_events_per_s"] for r in per_run],
            "events/s",
        ),
        h.figure(f"{mode} baseline batch p99", [r["baseline_p99_ms"] for r in per_run], "ms"),
        h.figure(f"{mode} adledger / baseline", [r["ratio"] for r in per_run], "%"),
    ]
    return {
        "runs": per_run,
        "figures": figures,
        "rows_inserted_per_event": rows_per_event,
        "write_profile": h.mean_profile(profiles),
    }


def in_process_sender(url: str) -> tuple[Any, Any]:
    db = h.database(url)

    def send(batches: list[list[dict[str, Any]]]) -> tuple[float, list[float], list[Any]]:
        prepared = [h.service_events(b) for b in batches]
        latencies, results = [], []
        wall_start = time.perf_counter()
        for evs in prepared:
            started = time.perf_counter()
            results.append(db.run(post_spend, evs))
            latencies.append(time.perf_counter() - started)
        return time.perf_counter() - wall_start, latencies, results

    return send, db


def http_sender(base_url: str, key: str, clients: int = 1) -> Any:
    def send(batches: list[list[dict[str, Any]]]) -> tuple[float, list[float], list[Any]]:
        bodies = [h.spend_body(b) for b in batches]
        wall, latencies, responses = http_batches(base_url, key, bodies, clients)
        return wall, latencies, [json.loads(r)["results"] for r in responses]

    return send


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    for backend in prof.backends:
        h.console.rule(f"spend ingestion — {backend}")
        with h.fresh_database(backend, "spend") as url, h.fresh_database(backend, "raw") as raw_url:
            seeded = h.seed_accounts(url, prof.accounts, lots_per_account=prof.lots_per_account)
            raw_seeded = h.seed_accounts(
                raw_url, prof.accounts, lots_per_account=prof.lots_per_account
            )
            h.ensure_audit_head(raw_url)
            h.pg_analyze(url)
            h.pg_analyze(raw_url)
            zipf = h.Zipf(seeded.accounts)
            rng = random.Random(42)
            raw = h.RawWriter(raw_url, raw_seeded)
            cond = h.conditions(
                url,
                accounts=prof.accounts,
                skew=zipf.describe(),
                batch_size=prof.batch,
                batches_per_run=prof.batches_per_run,
                lots_per_account=prof.lots_per_account,
                client="this process (HTTP: a separate process from the server), 1 call at a time",
                profile=prof.name,
            )
            try:
                send, db = in_process_sender(url)
                send([h.spend_events(zipf.draw(prof.batch), rng)])  # warm-up, not measured
                raw.write(h.WriteProfile(prof.batch, 2 * prof.batch, 100, 100))
                in_proc = _mode(
                    "in-process", url, raw, zipf, None, prof, rng, send, prof.batches_per_run
                )
                db.dispose()
                key = h.make_key(url, "ingest")
                with h.Server(url) as server:
                    send = http_sender(server.base_url, key)
                    send([h.spend_events(zipf.draw(prof.batch), rng)])  # warm-up
                    over_http = _mode(
                        "HTTP", url, raw, zipf, None, prof, rng, send, prof.batches_per_run
                    )
            finally:
                raw.close()
            verified = h.verify_clean(url, f"spend ingestion ({backend})")
            figures = in_proc["figures"] + over_http["figures"]
            h.show_table(f"Spend ingestion — {backend}", figures, cond)
            out["backends"][backend] = {
                "conditions": cond,
                "in_process": in_proc,
                "http": over_http,
                "figures": figures,
                "verify": verified,
            }
    h.write_result("spend_ingest", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
