"""Profile the spend hot path in-process with cProfile: `python -m bench.profile_spend
[--backend sqlite|postgres] [--batches N]`.

The same traffic as benchmark 1 (10,000 accounts with cash and 3 lots, Zipf s = 1.1, batches of
10,000). Prints the functions with the most own time and the most cumulative time, each as a
share of the profiled total, so hot spots can be written down with evidence in
docs/performance.md. (For the HTTP server, sample `adledger serve` with py-spy from a throwaway
virtualenv; see docs/performance.md.)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import time

from adledger.service.spend import post_spend
from bench import harness as h


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_spend")
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    with h.fresh_database(args.backend, "profile") as url:
        seeded = h.seed_accounts(url, 10_000)
        h.pg_analyze(url)
        zipf = h.Zipf(seeded.accounts)
        rng = random.Random(42)
        db = h.database(url)
        db.run(post_spend, h.service_events(h.spend_events(zipf.draw(h.BATCH), rng)))  # warm-up
        batches = [
            h.service_events(h.spend_events(zipf.draw(h.BATCH), rng)) for _ in range(args.batches)
        ]
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for events in batches:
            db.run(post_spend, events)
        profiler.disable()
        took = time.perf_counter() - started
        db.dispose()
        h.verify_clean(url, "profiled spend")
    events = args.batches * h.BATCH
    print(f"{events:,} events in {took:.2f} s under cProfile ({events / took:,.0f} events/s)")
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = stats.stats  # type: ignore[attr-defined]
    for title, index in (("own time", 2), ("cumulative time", 3)):
        print(f"\n--- top {args.top} by {title} (share of {total:.2f} s profiled) ---")
        ranked = sorted(rows.items(), key=lambda kv: kv[1][index], reverse=True)[: args.top]
        for (file, line, fn), (_cc, calls, tt, ct, _callers) in ranked:
            where = file.split("/src/")[-1].split("site-packages/")[-1]
            value = tt if index == 2 else ct
            print(f"{value / total:6.1%}  {value:7.3f} s  {calls:>9,}  {fn}  ({where}:{line})")


if __name__ == "__main__":
    main()
