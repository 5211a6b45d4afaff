"""The benchmark suite (bench/, `make bench`) can't rot: each benchmark runs at a tiny size, writes
its JSON with the expected keys, and leaves a ledger that verifies (each benchmark raises if
not). No timing is asserted: figures at this size mean nothing."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import harness  # noqa: E402
from bench.__main__ import BENCHMARKS  # noqa: E402

BACKENDS = os.environ.get("ADLEDGER_TEST_BACKENDS", "sqlite,postgres").split(",")
PG_ADMIN_URL = os.environ.get(
    "ADLEDGER_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(harness, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setattr(harness, "PG_ADMIN_URL", PG_ADMIN_URL)
    return tmp_path / "results"


def _check(path: Path, backend: str) -> None:
    data = json.loads(path.read_text())
    assert data["benchmark"] == path.stem
    assert data["profile"] == "tiny" and data["measured_at"]
    result = data["backends"][backend]
    cond = result["conditions"]
    assert cond["backend"] == backend
    assert cond["durability"]["backend"] == backend
    if backend == "sqlite":
        assert cond["durability"]["journal_mode"] == "wal"
        assert cond["durability"]["synchronous"] == "FULL"
    else:
        assert cond["durability"]["synchronous_commit"] == "on"
    assert cond["cores"] and cond["git"]["commit"]
    assert result["figures"], "no figures"
    for f in result["figures"]:
        assert set(f["summary"]) >= {"median", "min", "max", "runs"}, f
    verified = result["verify"]
    checks = verified.values() if "clean" not in verified else [verified]
    assert all(v["clean"] for v in checks)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_benchmark_runs_at_a_tiny_size(name: str, results_dir: Path) -> None:
    BENCHMARKS[name](harness.PROFILES["tiny"])
    _check(results_dir / f"{name}.json", "sqlite")


@pytest.mark.postgres
@pytest.mark.skipif("postgres" not in BACKENDS, reason="PostgreSQL not among the test backends")
def test_spend_benchmark_runs_on_postgres(results_dir: Path) -> None:
    prof = dataclasses.replace(harness.PROFILES["tiny"], backends=("postgres",))
    BENCHMARKS["spend_ingest"](prof)
    _check(results_dir / "spend_ingest.json", "postgres")


def test_goals_report_reads_the_results(results_dir: Path) -> None:
    from bench import report

    BENCHMARKS["memory"](harness.PROFILES["tiny"])
    found = report.goals(report.load(results_dir))
    memory = [g for g in found if g["goal"].startswith("peak server memory")]
    assert memory and memory[0]["measured"] > 0
    assert "| goal |" in report.markdown(results_dir)
