"""Run the benchmark suite: `python -m bench [--profile full|quick|tiny] [--only NAME,...]
[--backends sqlite,postgres]`. `make bench` is the full profile, `make bench-quick` the quick one.

Each benchmark prints its table and writes bench/results/<name>.json; the goals of issue 5 are
then checked against those files (`python -m bench.report`), met or missed by how much.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from bench import (
    balance_reads,
    expiry_run,
    harness,
    hot_account,
    memory,
    refunds_redemptions,
    report,
    spend_ingest,
)

BENCHMARKS = {
    "spend_ingest": spend_ingest.run,
    "hot_account": hot_account.run,
    "balance_reads": balance_reads.run,
    "expiry_run": expiry_run.run,
    "refunds_redemptions": refunds_redemptions.run,
    "memory": memory.run,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(harness.PROFILES), default="quick")
    parser.add_argument("--only", help="comma-separated benchmarks: " + ", ".join(BENCHMARKS))
    parser.add_argument("--backends", help="comma-separated: sqlite,postgres")
    parser.add_argument("--runs", type=int, help="runs per figure (default: the profile's)")
    args = parser.parse_args()
    prof = harness.PROFILES[args.profile]
    if args.backends:
        prof = dataclasses.replace(prof, backends=tuple(args.backends.split(",")))
    if args.runs:
        prof = dataclasses.replace(prof, runs=args.runs)
    names = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    took = {}
    for name in names:
        t = time.perf_counter()
        BENCHMARKS[name](prof)
        took[name] = time.perf_counter() - t
    harness.console.rule("done")
    for name, seconds in took.items():
        harness.console.print(f"  {name}: {seconds:,.0f} s", markup=False)
    harness.console.print(f"  total: {time.perf_counter() - started:,.0f} s", markup=False)
    report.print_goals()


if __name__ == "__main__":
    main()
