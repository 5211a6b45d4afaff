"""The goals of issue 5 checked against bench/results/*.json, and the figures as Markdown for
docs/performance.md: `python -m bench.report [--markdown]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from bench import harness as h

NAMES = (
    "spend_ingest",
    "hot_account",
    "balance_reads",
    "expiry_run",
    "refunds_redemptions",
    "memory",
)


def load(results_dir: Path | None = None) -> dict[str, Any]:
    folder = results_dir or h.RESULTS_DIR
    found = {}
    for name in NAMES:
        path = folder / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def _fig(figures: list[dict[str, Any]], name: str) -> float | None:
    for f in figures:
        if f["figure"] == name:
            return float(f["summary"]["median"])
    return None


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal: what, target, measured (median), met, and by how much."""
    out: list[dict[str, Any]] = []

    def add(
        what: str, measured: float | None, target: float, unit: str, higher: bool = True
    ) -> None:
        if measured is None:
            out.append(
                {
                    "goal": what,
                    "target": target,
                    "measured": None,
                    "met": None,
                    "unit": unit,
                    "by": "not measured",
                }
            )
            return
        met = measured >= target if higher else measured <= target
        if higher:
            by = f"{measured / target:.0%} of the goal" + (
                "" if met else f" (short by {target - measured:,.0f})"
            )
        else:
            by = f"{measured / target:.2f}× the limit"
        out.append(
            {
                "goal": what,
                "target": target,
                "measured": measured,
                "met": met,
                "unit": unit,
                "by": by,
            }
        )

    spend = results.get("spend_ingest", {}).get("backends", {})
    sq, pg = spend.get("sqlite", {}), spend.get("postgres", {})
    add(
        "HTTP ingestion, SQLite ≥ 25,000 events/s",
        _fig(sq.get("figures", []), "HTTP events/s"),
        25_000,
        "events/s",
    )
    ratio = _fig(sq.get("figures", []), "HTTP adledger / baseline")
    add(
        "HTTP ingestion, SQLite ≥ 40% of the raw ceiling",
        None if ratio is None else ratio * 100,
        40,
        "%",
    )
    add(
        "in-process ingestion (SQLite) ≥ 50,000 events/s",
        _fig(sq.get("figures", []), "in-process events/s"),
        50_000,
        "events/s",
    )
    add(
        "in-process ingestion (PostgreSQL) ≥ 50,000 events/s",
        _fig(pg.get("figures", []), "in-process events/s"),
        50_000,
        "events/s",
    )
    add(
        "HTTP ingestion, PostgreSQL ≥ 15,000 events/s",
        _fig(pg.get("figures", []), "HTTP events/s"),
        15_000,
        "events/s",
    )
    hot = results.get("hot_account", {}).get("backends", {})
    for backend, data in hot.items():
        for f in data["figures"]:
            if f["figure"].endswith(" events/s") and "baseline" not in f["figure"]:
                add(
                    f"hot account ≥ 10,000 events/s ({f['figure'].removesuffix(' events/s')}, "
                    f"{backend})",
                    f["summary"]["median"],
                    10_000,
                    "events/s",
                )
    bal = results.get("balance_reads", {}).get("backends", {})
    for backend, data in bal.items():
        for f in data["figures"]:
            if f["figure"].endswith("balance p99"):
                add(
                    f"balance p99 ≤ 5 ms ({f['figure'].split(':')[0]}, {backend})",
                    f["summary"]["median"],
                    5,
                    "ms",
                    higher=False,
                )
            if f["figure"].startswith("p99 ratio"):
                add(
                    f"balance {f['figure']} ≤ 1.5× ({backend})",
                    f["summary"]["median"],
                    1.5,
                    "×",
                    higher=False,
                )
    mem = results.get("memory", {}).get("backends", {})
    for backend, data in mem.items():
        add(
            f"peak server memory < 500 MB ({data['events']:,} events, {backend})",
            data["peak_kb"] / 1024,
            500,
            "MB",
            higher=False,
        )
    return out


def print_goals(results_dir: Path | None = None) -> list[dict[str, Any]]:
    found = goals(load(results_dir))
    table = Table(title="Goals of issue 5 (medians of the latest results)", title_justify="left")
    for col in ("goal", "measured", "met", "by how much"):
        table.add_column(col)
    for g in found:
        measured = "—" if g["measured"] is None else f"{g['measured']:,.2f} {g['unit']}"
        met = {True: "[green]met[/]", False: "[red]missed[/]", None: "—"}[g["met"]]
        table.add_row(g["goal"], measured, met, g["by"])
    h.console.print(table)
    return found


def markdown(results_dir: Path | None = None) -> str:
    results = load(results_dir)
    lines: list[str] = []
    for name, data in results.items():
        for backend, b in data.get("backends", {}).items():
            cond = b.get("conditions", {})
            git = cond.get("git", {})
            lines.append(f"#### {name} — {backend}")
            lines.append("")
            lines.append(
                f"measured {data.get('measured_at', '?')[:16]} UTC, "
                f"profile `{data.get('profile')}`,"
                f" commit `{git.get('commit', '?')[:10]}`"
                + (
                    f" + uncommitted src changes (diff {git.get('src_diff_sha1')})"
                    if git.get("dirty")
                    else ""
                )
                + f", load average at start {cond.get('loadavg_1m_at_start')} on "
                f"{cond.get('cores')} cores"
            )
            lines.append("")
            lines.append("| figure | median | min | max | unit |")
            lines.append("| --- | ---: | ---: | ---: | --- |")
            for f in b.get("figures", []):
                s, unit = f["summary"], f.get("unit", "")
                lines.append(
                    f"| {f['figure']} | {h.fmt(s['median'], unit)} | {h.fmt(s['min'], unit)} | "
                    f"{h.fmt(s['max'], unit)} | {unit} |"
                )
            lines.append("")
    lines.append("#### Goals")
    lines.append("")
    lines.append("| goal | measured (median) | met? | by how much |")
    lines.append("| --- | ---: | --- | --- |")
    for g in goals(results):
        measured = "—" if g["measured"] is None else f"{g['measured']:,.2f} {g['unit']}"
        met = {True: "met", False: "**missed**", None: "—"}[g["met"]]
        lines.append(f"| {g['goal']} | {measured} | {met} | {g['by']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if "--markdown" in sys.argv:
        sys.stdout.write(markdown())
    else:
        print_goals()
