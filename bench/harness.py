"""The shared harness of the benchmark suite: sizes, timing and statistics, Rich tables, results
JSON with the conditions, fresh databases, a real `adledger serve`, bulk seeding, Zipf traffic,
and the raw-driver baselines ("the storage ceiling") that every figure is shown beside.

Nothing here asserts a time. A benchmark fails loudly only when the ledger does not verify.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, insert, select, text

from adledger.config import Settings
from adledger.domain import ledger
from adledger.domain.ids import new_id, new_ids
from adledger.service import keys as key_service
from adledger.service.history import fitted
from adledger.service.uow import Database, UnitOfWork
from adledger.service.verify import verify_ledger
from adledger.storage.engine import make_engine
from adledger.storage.migrate import upgrade
from adledger.storage.postings import Posting, post
from adledger.storage.tables import accounts, deposits, lots, metadata, to_us

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(os.environ.get("ADLEDGER_BENCH_RESULTS", ROOT / "bench" / "results"))
PG_ADMIN_URL = os.environ.get(
    "ADLEDGER_BENCH_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ADLEDGER = str(Path(sys.executable).with_name("adledger"))
ZIPF_S = 1.1
BATCH = 10_000
console = Console(width=140)


# --- sizes ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How big each benchmark is. `full` is `make bench`, `quick` is `make bench-quick`, `tiny`
    is the smoke test (seconds; its figures mean nothing)."""

    name: str
    backends: tuple[str, ...] = ("sqlite", "postgres")
    runs: int = 3
    accounts: int = 10_000
    lots_per_account: int = 3
    batch: int = BATCH
    batches_per_run: int = 10  # spend ingestion, per run and mode
    hot_batches_per_client: int = 3
    hot_clients: int = 8
    balance_sizes: tuple[int, ...] = (10**3, 10**5, 10**7)
    balance_requests: int = 2_000
    expiry_lots: int = 10**6
    refund_clients: int = 16
    refund_requests: int = 2_000  # per run and kind
    memory_events: int = 1_000_000
    expiry_runs: int = 3
    # Backends measured at the biggest sizes (10^7 entries, 10^6 lots, 10^6 events); the others
    # stop at the quick sizes, to keep `make bench` under half an hour on 2 cores.
    big_backends: tuple[str, ...] = ("sqlite", "postgres")

    def big(self, backend: str) -> bool:
        return backend in self.big_backends


PROFILES = {
    "full": Profile(
        "full",
        batches_per_run=6,
        hot_batches_per_client=1,
        balance_requests=1_000,
        refund_requests=960,
        expiry_runs=2,
        big_backends=("sqlite",),
    ),
    "quick": Profile(
        "quick",
        batches_per_run=3,
        hot_batches_per_client=1,
        balance_sizes=(10**3, 10**5),
        balance_requests=500,
        expiry_lots=10**5,
        refund_requests=480,
        memory_events=100_000,
    ),
    "tiny": Profile(
        "tiny",
        backends=("sqlite",),
        runs=2,
        accounts=50,
        batch=100,
        batches_per_run=2,
        hot_batches_per_client=1,
        hot_clients=2,
        balance_sizes=(10**2, 10**3),
        balance_requests=20,
        expiry_lots=400,
        refund_clients=2,
        refund_requests=10,
        memory_events=500,
    ),
}


def profile_from_env(default: str = "quick") -> Profile:
    return PROFILES[os.environ.get("ADLEDGER_BENCH_PROFILE", default)]


# --- statistics and tables -----------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of one figure over the runs."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }


def fmt(value: float, unit: str = "") -> str:
    if value != value:  # NaN
        return "—"
    if unit == "ms":
        return f"{value:,.2f}"
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "%":
        return f"{value:.0%}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def show_table(title: str, rows: list[dict[str, Any]], conditions: dict[str, Any]) -> None:
    """One Rich table: a row per figure with its median, min and max, then the conditions."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for col, just in (
        ("figure", "left"),
        ("median", "right"),
        ("min", "right"),
        ("max", "right"),
        ("unit", "left"),
    ):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for row in rows:
        s, unit = row["summary"], row.get("unit", "")
        table.add_row(
            row["figure"], fmt(s["median"], unit), fmt(s["min"], unit), fmt(s["max"], unit), unit
        )
    console.print(table)
    shown = {k: v for k, v in conditions.items() if k not in {"durability", "git"}}
    console.print(
        "conditions: " + ", ".join(f"{k}={v}" for k, v in shown.items()),
        markup=False,
        soft_wrap=True,
    )
    console.print(f"durability: {conditions.get('durability')}", markup=False, soft_wrap=True)


def figure(name: str, values: Sequence[float], unit: str = "") -> dict[str, Any]:
    return {"figure": name, "unit": unit, "values": list(values), "summary": summary(values)}


# --- conditions and results ----------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def git_state() -> dict[str, Any]:
    """The commit, whether the tree differs from it, and a digest of the src/ difference (the
    figures are of the code that ran, which may hold uncommitted work)."""
    diff = _git("diff", "HEAD", "--", "src")
    return {
        "commit": _git("rev-parse", "HEAD") or "unknown",
        "dirty": bool(_git("status", "--porcelain", "--", "src")),
        "src_diff_sha1": hashlib.sha1(diff.encode()).hexdigest()[:12] if diff else None,
    }


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cores": os.cpu_count(),
        "loadavg_1m_at_start": round(load[0], 2),
        "python": sys.version.split()[0],
    }


def durability(url: str) -> dict[str, Any]:
    """The durability settings as the app's own engine sets them, read back from the database."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return {
                    "backend": "sqlite",
                    "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                    "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(
                        conn.exec_driver_sql("PRAGMA synchronous").scalar()  # type: ignore[arg-type]
                    ),
                    "write_transactions": "BEGIN IMMEDIATE",
                }
            names = ("synchronous_commit", "fsync", "full_page_writes", "wal_level")
            found = {n: conn.exec_driver_sql(f"SHOW {n}").scalar() for n in names}
            found["server_version"] = conn.exec_driver_sql("SHOW server_version").scalar()
            return {"backend": "postgres", **found, "isolation": "READ COMMITTED"}
    finally:
        engine.dispose()


def conditions(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "backend": "sqlite" if url.startswith("sqlite") else "postgres",
        **extra,
        "durability": durability(url),
        **machine(),
        "git": git_state(),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """bench/results/<name>.json (atomically), with the time it was measured."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    data = {"benchmark": name, "measured_at": datetime.now(UTC).isoformat(), **data}
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    console.print(f"→ {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


# --- databases -----------------------------------------------------------------------------------

_TMP = Path(os.environ.get("ADLEDGER_BENCH_TMP", tempfile.gettempdir()))


@contextmanager
def fresh_database(backend: str, name: str = "bench") -> Iterator[str]:
    """A new migrated database used by nothing else: a SQLite file in a temporary directory, or a
    `bench_<random>` database on the local PostgreSQL server, dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"adledger-{name}-", dir=_TMP) as tmp:
            url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
        return
    db_name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db_name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def clone_database(url: str) -> Iterator[str]:
    """A copy of the database at `url` (nothing may be connected to it), dropped afterwards."""
    if url.startswith("sqlite"):
        src = Path(url.removeprefix("sqlite:///"))
        con = sqlite3.connect(src)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        with tempfile.TemporaryDirectory(prefix="adledger-clone-", dir=_TMP) as tmp:
            dst = Path(tmp) / "ledger.db"
            subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
            yield f"sqlite:///{dst}"
        return
    template = url.rsplit("/", 1)[1]
    db_name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db_name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def database(url: str) -> Database:
    return Database(Settings(database_url=url))


def verify_clean(url: str, what: str) -> dict[str, Any]:
    """`adledger verify` (its `verify_ledger`) on the benchmark's ledger; raises if not clean."""
    db = database(url)
    try:
        started = time.perf_counter()
        violations = db.read(verify_ledger)
        took = time.perf_counter() - started
    finally:
        db.dispose()
    if violations:
        listed = "; ".join(f"{v.check}: {v.message}" for v in violations[:20])
        raise SystemExit(f"{what}: adledger verify FAILED ({len(violations)}): {listed}")
    console.print(f"[green]verify ok[/] {what} ({took:.1f} s)")
    return {"clean": True, "seconds": round(took, 2)}


def row_counts(url: str, tables: Sequence[str] | None = None) -> dict[str, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = tables or [t.name for t in metadata.sorted_tables]
            return {
                n: int(conn.execute(select(func.count()).select_from(metadata.tables[n])).scalar())
                for n in names
            }
    finally:
        engine.dispose()


def diff_counts(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def pg_analyze(url: str) -> None:
    """Fresh planner statistics after a bulk load (as autovacuum would give a while later)."""
    if url.startswith("sqlite"):
        engine = make_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        engine.dispose()
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


# --- seeding: accounts with cash and credit lots, written by the app's own writer -------------


@dataclass
class Seeded:
    accounts: list[str]
    lots: dict[str, list[str]]
    businesses: list[str] = field(default_factory=list)


def seed_accounts(
    url: str,
    n: int,
    *,
    lots_per_account: int = 3,
    cash: int = 1_000_000_000,
    lot_amount: int = 500_000,
    businesses: int = 0,
    chunk: int = 1_000,
) -> Seeded:
    """`n` USD accounts, each with one deposit of `cash` and `lots_per_account` credit lots (one
    scoped to campaign `cmp_1`), in few transactions: rows by bulk insert, ledger postings by
    `storage.postings.post` (the one writer), so stored balances equal their entries."""
    db = database(url)
    now = db.clock.now()
    seeded = Seeded([], {})
    biz_ids = new_ids("biz", businesses)
    seeded.businesses = biz_ids
    if biz_ids:
        db.run(
            lambda uow: uow.conn.execute(
                insert(metadata.tables["businesses"]),
                [
                    {"id": b, "name": f"Bench business {i}", "created_at": now}
                    for i, b in enumerate(biz_ids)
                ],
            )
        )

    def one_chunk(uow: UnitOfWork, start: int, count: int) -> None:
        ids = new_ids("acct", count)
        uow.conn.execute(
            insert(accounts),
            [
                {
                    "id": a,
                    "business_id": biz_ids[(start + i) % len(biz_ids)] if biz_ids else None,
                    "name": f"Bench account {start + i}",
                    "currency": "USD",
                    "timezone": "UTC",
                    "status": "active",
                    "created_at": now - timedelta(days=2),
                }
                for i, a in enumerate(ids)
            ],
        )
        dep_ids = new_ids("dep", count)
        uow.conn.execute(
            insert(deposits),
            [
                {
                    "id": d,
                    "account_id": a,
                    "amount": cash,
                    "tax": 0,
                    "payment_reference": f"bench-{d}",
                    "payment_fingerprint": None,
                    "created_at": now,
                }
                for a, d in zip(ids, dep_ids, strict=True)
            ],
        )
        lot_rows: list[dict[str, Any]] = []
        postings: list[Posting] = []
        txn_ids = iter(new_ids("txn", count * (1 + lots_per_account)))
        for a, d in zip(ids, dep_ids, strict=True):
            postings.append(
                Posting(
                    next(txn_ids),
                    a,
                    "USD",
                    now,
                    ledger.deposit(cash, 0, f"bench-{d}"),
                    {"deposit_id": d},
                )
            )
            mine = new_ids("lot", lots_per_account)
            seeded.lots[a] = mine
            for j, lot_id in enumerate(mine):
                lot_rows.append(
                    {
                        "id": lot_id,
                        "account_id": a,
                        "source": "manual",
                        "original": lot_amount,
                        "remaining": 0,
                        "effective_at": now - timedelta(days=1),
                        "expires_at": now + timedelta(days=30 + j),
                        "priority": 10 * (j + 1),
                        "campaign_id": "cmp_1" if j == 1 else None,
                        "status": "active",
                        "reason": "bench seed",
                        "created_at": now,
                    }
                )
                postings.append(
                    Posting(
                        next(txn_ids),
                        a,
                        "USD",
                        now,
                        fitted(ledger.credit_grant(lot_id, lot_amount, "bench seed")),
                    )
                )
        if lot_rows:
            uow.conn.execute(insert(lots), lot_rows)
        post(uow.conn, postings)
        seeded.accounts.extend(ids)

    try:
        for start in range(0, n, chunk):
            db.run(one_chunk, start, min(chunk, n - start))
    finally:
        db.dispose()
    return seeded


def make_key(url: str, role: str, business_id: str | None = None) -> str:
    db = database(url)
    try:
        made = db.run(
            key_service.create_key, role=role, name=f"bench {role}", business_id=business_id
        )
    finally:
        db.dispose()
    return str(made["key"])


# --- traffic -------------------------------------------------------------------------------------


class Zipf:
    """Ranks 1..n drawn with probability ∝ 1/k^s, mapped onto `items` in a shuffled order."""

    def __init__(self, items: Sequence[str], s: float = ZIPF_S, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.items = list(items)
        self.rng.shuffle(self.items)
        weights = [1 / (k**s) for k in range(1, len(self.items) + 1)]
        self.cum = list(accumulate(weights))
        total = self.cum[-1]
        self.s = s
        self.top1_share = weights[0] / total
        self.top10_share = sum(weights[:10]) / total

    def draw(self, k: int) -> list[str]:
        total = self.cum[-1]
        rnd = self.rng.random
        cum, items, n = self.cum, self.items, len(self.items) - 1
        return [items[min(n, bisect_left(cum, rnd() * total))] for _ in range(k)]

    def describe(self) -> dict[str, Any]:
        return {
            "s": self.s,
            "accounts": len(self.items),
            "top1_share": round(self.top1_share, 4),
            "top10_share": round(self.top10_share, 4),
        }


def event_ids(rng: random.Random, k: int) -> list[str]:
    """Random (not ordered) event ids, as an ad server's are."""
    return [f"ev-{rng.getrandbits(96):024x}" for _ in range(k)]


def spend_events(
    account_ids: Sequence[str], rng: random.Random, *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """One batch of spend events (JSON-ready) for the given accounts, in order."""
    now = now or datetime.now(UTC)
    ids = event_ids(rng, len(account_ids))
    out = []
    for event_id, account_id in zip(ids, account_ids, strict=True):
        ev: dict[str, Any] = {
            "event_id": event_id,
            "account_id": account_id,
            "amount": rng.randint(50, 5_000),
            "occurred_at": now - timedelta(seconds=rng.randint(0, 3_600)),
        }
        if rng.random() < 0.3:
            ev["campaign_id"] = "cmp_1"
        out.append(ev)
    return out


def spend_body(events: Sequence[dict[str, Any]]) -> bytes:
    """The JSON body of `POST /v1/spend` (made before the clock starts)."""
    return json.dumps(
        {"events": list(events)},
        default=lambda v: v.isoformat().replace("+00:00", "Z"),
        separators=(",", ":"),
    ).encode()


def service_events(events: Sequence[dict[str, Any]]) -> list[Any]:
    from adledger.service.spend import SpendEvent

    return [SpendEvent(**ev) for ev in events]


# --- a real `adledger serve` --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`adledger serve` as a subprocess in its own process group, as an operator runs it."""

    def __init__(self, url: str, log_dir: Path | None = None) -> None:
        self.url = url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._own_dir = log_dir is None  # a log directory of our own is removed on exit
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="adledger-serve-", dir=_TMP))
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADLEDGER_")}
        env["PYTHONUNBUFFERED"] = "1"
        self.log_path = self.log_dir / f"serve-{self.port}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    ADLEDGER,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"adledger serve exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        log = self.log()
        self.__exit__()
        raise SystemExit(f"adledger serve gave no /healthz in 60 s:\n{log}")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        if self._own_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self, tail: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])
        except FileNotFoundError:
            return "(no log)"


def client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=httpx.Timeout(300.0),
    )


class LeanClient:
    """One keep-alive HTTP/1.1 connection through the standard library's `http.client`, for
    latency figures. httpx spends ~1.5 ms of its own on every request (GET /healthz: p50 2.4 ms
    with httpx, 1.0 ms with this), which would be counted as the server's."""

    def __init__(self, base_url: str, key: str) -> None:
        parts = urlsplit(base_url)
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80)
        self._headers = {"Authorization": f"Bearer {key}"}

    def get(self, path: str) -> tuple[int, bytes]:
        self._conn.request("GET", path, headers=self._headers)
        response = self._conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def proc_memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in kB, from /proc/<pid>/status."""
    found: dict[str, int] = {}
    with suppress(FileNotFoundError, ProcessLookupError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0])
    return found


class MemorySampler:
    """Samples a process's RSS every `interval` seconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            m = proc_memory(self.pid)
            if m:
                self.samples.append((time.perf_counter(), m["VmRSS"], m["VmHWM"]))
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the raw storage ceiling ---------------------------------------------------------------------


@dataclass
class WriteProfile:
    """What one batch (or one request) writes: rows inserted into transactions and entries, and
    rows updated in accounts and lots, plus other rows inserted per batch (audit records...)."""

    txns: int
    entries: int
    account_updates: int
    lot_updates: int
    extra_inserts: int = 0  # e.g. the audit record of an HTTP call
    extra_updates: int = 0  # e.g. audit_head

    def rows(self) -> int:
        return (
            self.txns
            + self.entries
            + self.account_updates
            + self.lot_updates
            + self.extra_inserts
            + self.extra_updates
        )


_TXN_COLS = (
    "id",
    "account_id",
    "kind",
    "currency",
    "created_at",
    "cash_delta",
    "credit_delta",
    "description",
    "lot_id",
    "event_id",
    "event_hash",
    "occurred_at",
    "campaign_id",
    "refund_id",
    "deposit_id",
)
_ENTRY_COLS = ("txn_id", "account_id", "lot_id", "book", "amount")
_AUDIT_COLS = (
    "seq",
    "at",
    "request_id",
    "actor",
    "role",
    "method",
    "path",
    "status",
    "code",
    "idempotency_key",
    "prev_hash",
    "hash",
)


class RawWriter:
    """Plain driver calls (sqlite3 / psycopg), no adledger code: the same rows adledger writes,
    into a database of the same schema (same tables, indexes, constraints and triggers), one
    transaction per batch, with the same durability settings (SQLite WAL + synchronous=FULL +
    BEGIN IMMEDIATE; PostgreSQL synchronous_commit=on). Inserts use executemany on SQLite and
    COPY on PostgreSQL; updates use executemany on both."""

    def __init__(self, url: str, seeded: Seeded, seed: int | None = None) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.accounts = seeded.accounts
        self.lots = [lot for ls in seeded.lots.values() for lot in ls]
        self.rng = random.Random(seed)  # None: seeded from the OS, so event ids never repeat
        # Audit seq numbers far from the app's, and from any other writer's.
        self.seq = random.SystemRandom().randrange(10**12, 10**15)
        if self.sqlite:
            self.conn: Any = sqlite3.connect(
                url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False
            )
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
                "busy_timeout=60000",
            ):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            dsn = url.replace("postgresql+psycopg://", "postgresql://")
            self.conn = psycopg.connect(dsn, options="-c synchronous_commit=on")

    def close(self) -> None:
        self.conn.close()

    def _rows(self, p: WriteProfile) -> tuple[list[tuple[Any, ...]], ...]:
        rng = self.rng
        now = to_us(datetime.now(UTC))
        accts = rng.sample(self.accounts, min(len(self.accounts), max(1, p.account_updates)))
        ids = new_ids("txn", p.txns)
        txn_rows = []
        for i, txn_id in enumerate(ids):
            a = accts[i % len(accts)]
            event_id = f"ev-{rng.getrandbits(96):024x}"
            txn_rows.append(
                (
                    txn_id,
                    a,
                    "spend",
                    "USD",
                    now,
                    -100,
                    0,
                    f"Ad spend {event_id}",
                    None,
                    event_id,
                    f"{rng.getrandbits(128):032x}",
                    now,
                    None,
                    None,
                    None,
                )
            )
        entry_rows = []
        per = p.entries / p.txns if p.txns else 0
        for i in range(p.entries):
            t = txn_rows[min(len(txn_rows) - 1, int(i / per))] if txn_rows else None
            assert t is not None
            book = "platform:revenue" if i % 2 else "cash"
            entry_rows.append((t[0], t[1], None, book, 100 if i % 2 else -100))
        acct_rows = [(0, a) for a in accts[: p.account_updates]]
        lot_rows = [(0, lot) for lot in rng.sample(self.lots, min(len(self.lots), p.lot_updates))]
        audit_rows = []
        for _ in range(p.extra_inserts):
            self.seq += 1
            audit_rows.append(
                (
                    self.seq,
                    now,
                    new_id("req"),
                    "key_bench",
                    "ingest",
                    "POST",
                    "/v1/spend",
                    200,
                    None,
                    None,
                    "0" * 64,
                    f"{rng.getrandbits(256):064x}",
                )
            )
        return txn_rows, entry_rows, acct_rows, lot_rows, audit_rows

    def write(self, p: WriteProfile) -> float:
        """Write one batch in one transaction; the seconds it took (rows made before timing)."""
        txn_rows, entry_rows, acct_rows, lot_rows, audit_rows = self._rows(p)
        txn_sql = f"INSERT INTO transactions ({', '.join(_TXN_COLS)}) VALUES ({_marks(15, self)})"
        entry_sql = f"INSERT INTO entries ({', '.join(_ENTRY_COLS)}) VALUES ({_marks(5, self)})"
        audit_sql = f"INSERT INTO audit_log ({', '.join(_AUDIT_COLS)}) VALUES ({_marks(12, self)})"
        m = "?" if self.sqlite else "%s"
        acct_sql = (
            f"UPDATE accounts SET cash_available = cash_available + {m}, "
            f"last_spend_at = {now_us()} WHERE id = {m}"
        )
        lot_sql = f"UPDATE lots SET remaining = remaining + {m} WHERE id = {m}"
        head_sql = f"UPDATE audit_head SET seq = seq WHERE id = {1}"
        started = time.perf_counter()
        if self.sqlite:
            c = self.conn
            c.execute("BEGIN IMMEDIATE")
            c.executemany(txn_sql, txn_rows)
            c.executemany(entry_sql, entry_rows)
            if acct_rows:
                c.executemany(acct_sql, acct_rows)
            if lot_rows:
                c.executemany(lot_sql, lot_rows)
            if audit_rows:
                c.executemany(audit_sql, audit_rows)
            for _ in range(p.extra_updates):
                c.execute(head_sql)
            c.execute("COMMIT")
        else:
            with self.conn.cursor() as cur:
                with cur.copy(f"COPY transactions ({', '.join(_TXN_COLS)}) FROM STDIN") as cp:
                    for row in txn_rows:
                        cp.write_row(row)
                with cur.copy(f"COPY entries ({', '.join(_ENTRY_COLS)}) FROM STDIN") as cp:
                    for row in entry_rows:
                        cp.write_row(row)
                if acct_rows:
                    cur.executemany(acct_sql, acct_rows)
                if lot_rows:
                    cur.executemany(lot_sql, lot_rows)
                if audit_rows:
                    with cur.copy(f"COPY audit_log ({', '.join(_AUDIT_COLS)}) FROM STDIN") as cp:
                        for row in audit_rows:
                            cp.write_row(row)
                for _ in range(p.extra_updates):
                    cur.execute(head_sql)
            self.conn.commit()
        return time.perf_counter() - started


def _marks(n: int, w: RawWriter) -> str:
    return ", ".join(("?" if w.sqlite else "%s") for _ in range(n))


def now_us() -> int:
    return to_us(datetime.now(UTC))


def ensure_audit_head(url: str) -> None:
    """The raw writer updates `audit_head`; make sure its one row exists."""
    engine = make_engine(url)
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT count(*) FROM audit_head").scalar() == 0:
            conn.exec_driver_sql(
                "INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"
            )
    engine.dispose()


def profile_from_results(
    events: Sequence[dict[str, Any]],
    results: Sequence[dict[str, Any]],
    extra_inserts: int = 0,
    extra_updates: int = 0,
) -> WriteProfile:
    """The write profile of one spend batch, from its results: one transaction per applied event,
    one entry per non-zero leg, one account UPDATE per touched account (balance and
    last_spend_at folded into one), one lot UPDATE per lot drawn."""
    txns = entries = 0
    touched: set[str] = set()
    lots_drawn: set[str] = set()
    for ev, r in zip(events, results, strict=True):
        if r["status"] != "applied":
            continue
        txns += 1
        legs = len(r["lots"]) + (r["cash_used"] > 0) + (r["unfunded"] > 0)
        entries += legs + 1  # + revenue
        lots_drawn.update(d["lot_id"] for d in r["lots"])
        touched.add(ev["account_id"])
    return WriteProfile(txns, entries, len(touched), len(lots_drawn), extra_inserts, extra_updates)


def mean_profile(profiles: Sequence[WriteProfile]) -> dict[str, float]:
    n = sum(p.txns for p in profiles) or 1
    return {
        "entries_per_event": sum(p.entries for p in profiles) / n,
        "account_updates_per_batch": statistics.mean(p.account_updates for p in profiles),
        "lot_updates_per_batch": statistics.mean(p.lot_updates for p in profiles),
        "extra_inserts_per_batch": statistics.mean(p.extra_inserts for p in profiles),
        "extra_updates_per_batch": statistics.mean(p.extra_updates for p in profiles),
    }


def run_threads(n: int, target: Callable[[int], Any]) -> tuple[float, list[Any]]:
    """Run `target(i)` in `n` threads started together; (wall seconds, their results)."""
    results: list[Any] = [None] * n
    errors: list[BaseException] = []
    barrier = threading.Barrier(n + 1)

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    took = time.perf_counter() - started
    if errors:
        raise errors[0]
    return took, results


def asdict_profile(p: WriteProfile) -> dict[str, int]:
    return asdict(p)
