"""Benchmark 6 — memory: the peak RSS of the `adledger serve` process during a 1,000,000-event
HTTP run (quick: 100,000), and that it is bounded: RSS after 10% of the run vs after 100%.

The same traffic as benchmark 1 (10,000 accounts with cash and 3 lots, Zipf s = 1.1, 10,000
events a call, one client). A thread samples /proc/<pid>/status (VmRSS, and VmHWM, the kernel's
high-water mark) every 100 ms. One run per backend: the run is long, and what is measured is a
peak, not a rate. The server runs its expiry sweeper as usual.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

from bench import harness as h


def run(prof: h.Profile) -> dict[str, Any]:
    out: dict[str, Any] = {"profile": prof.name, "backends": {}}
    for backend in prof.backends:
        wanted = prof.memory_events if prof.big(backend) else min(prof.memory_events, 100_000)
        calls = max(10, wanted // prof.batch)
        h.console.rule(f"memory — {backend}")
        with h.fresh_database(backend, "memory") as url:
            seeded = h.seed_accounts(url, prof.accounts)
            h.pg_analyze(url)
            zipf = h.Zipf(seeded.accounts)
            rng = random.Random(1)
            key = h.make_key(url, "ingest")
            started = time.perf_counter()
            bodies = [
                h.spend_body(h.spend_events(zipf.draw(prof.batch), rng)) for _ in range(calls)
            ]
            h.console.print(
                f"  {calls} bodies made in {time.perf_counter() - started:.1f} s", markup=False
            )
            marks: dict[str, dict[str, int]] = {}
            latencies = []
            with h.Server(url) as server, h.client(server.base_url, key) as http:
                marks["idle"] = h.proc_memory(server.pid)
                with h.MemorySampler(server.pid) as sampler:
                    wall_start = time.perf_counter()
                    for i, body in enumerate(bodies, start=1):
                        t = time.perf_counter()
                        r = http.post("/v1/spend", content=body)
                        latencies.append(time.perf_counter() - t)
                        if r.status_code != 200:
                            raise SystemExit(f"POST /v1/spend → {r.status_code}: {r.text[:300]}")
                        if i == 1:
                            marks["after_first_call"] = h.proc_memory(server.pid)
                            applied = json.loads(r.content)["results"]
                            if any(x["status"] != "applied" for x in applied):
                                raise SystemExit("spend not applied")
                        if i == max(1, calls // 10):
                            marks["at_10pct"] = h.proc_memory(server.pid)
                        if i == calls // 2:
                            marks["at_50pct"] = h.proc_memory(server.pid)
                    wall = time.perf_counter() - wall_start
                    marks["at_100pct"] = h.proc_memory(server.pid)
            events = calls * prof.batch
            peak_kb = max([s[2] for s in sampler.samples] + [marks["at_100pct"]["VmHWM"]])
            verified = h.verify_clean(url, f"memory run ({backend})")
            cond = h.conditions(
                url,
                accounts=prof.accounts,
                skew=zipf.describe(),
                batch_size=prof.batch,
                events=events,
                lots_per_account=3,
                samples=len(sampler.samples),
                profile=prof.name,
            )
            rss10 = marks["at_10pct"]["VmRSS"] / 1024
            rss100 = marks["at_100pct"]["VmRSS"] / 1024
            figures = [
                h.figure("server peak RSS (VmHWM)", [peak_kb / 1024], "MB"),
                h.figure("server RSS idle, before the run", [marks["idle"]["VmRSS"] / 1024], "MB"),
                h.figure("server RSS at 10% of the run", [rss10], "MB"),
                h.figure("server RSS at 100% of the run", [rss100], "MB"),
                h.figure("RSS 100% / 10%", [rss100 / rss10], "x"),
                h.figure("events/s during the run", [events / wall], "events/s"),
                h.figure("batch p99", [h.percentile(latencies, 99) * 1e3], "ms"),
            ]
            h.show_table(f"Memory, {events:,}-event HTTP run — {backend}", figures, cond)
            out["backends"][backend] = {
                "conditions": cond,
                "marks_kb": marks,
                "peak_kb": peak_kb,
                "events": events,
                "seconds": wall,
                "rss_samples_mb": [
                    round(s[1] / 1024, 1)
                    for s in sampler.samples[:: max(1, len(sampler.samples) // 200)]
                ],
                "figures": figures,
                "verify": verified,
            }
    h.write_result("memory", out)
    return out


if __name__ == "__main__":
    run(h.profile_from_env())
