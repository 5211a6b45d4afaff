"""Run the real `adledger serve` as a subprocess, for tests that kill it or shut it down.

* `fresh_database(backend, tmp_path)`: a new, migrated database of its own (a SQLite file in
  `tmp_path`, or a new PostgreSQL database on the local server, dropped afterwards).
* `Server(database_url)`: `adledger serve` on a free port, in its own process group, its output
  in a log file; `start()` waits for `/healthz`, `kill()` is SIGKILL, `terminate()` is SIGTERM.
* `cli(database_url, ...)` runs the `adledger` command; `mint_key(...)` makes an API key with
  `adledger keys create` and returns it (the last line of its output).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from adledger.storage.engine import make_engine
from adledger.storage.migrate import upgrade

ADLEDGER = str(Path(sys.executable).with_name("adledger"))
PG_ADMIN_URL = os.environ.get(  # as in conftest.py
    "ADLEDGER_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def fresh_database(backend: str, tmp_path: Path, name: str = "server") -> Iterator[str]:
    """A new database, migrated, used by nothing else; PostgreSQL ones are dropped after."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / f'{name}-{uuid.uuid4().hex[:6]}.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    db_name = f"adledger_srv_{uuid.uuid4().hex[:12]}"
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


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADLEDGER_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def cli(database_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `adledger --database-url URL ARGS...` and return what it did (never raises)."""
    return subprocess.run(
        [ADLEDGER, "--database-url", database_url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def mint_key(database_url: str, role: str, name: str, business: str | None = None) -> str:
    args = ["keys", "create", "--role", role, "--name", name]
    if business:
        args += ["--business", business]
    done = cli(database_url, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.rstrip("\n").splitlines()[-1]


class Server:
    """`adledger serve` against `database_url` on `port` (the same port across restarts)."""

    def __init__(
        self,
        database_url: str,
        log_path: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = _env(env)
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== start #{self.starts + 1} at {time.time():.3f}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [
                    ADLEDGER,
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.database_url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,  # its own process group: signals reach only it
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"adledger serve exited {self.proc.returncode} while starting:\n{self.log()}"
                )
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"adledger serve gave no /healthz in {timeout} s:\n{self.log()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the server's whole process group, and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):  # it died by itself meanwhile
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> None:
        """SIGTERM to the server (a graceful shutdown); does not wait."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """Whatever state it is in: SIGTERM, then SIGKILL if it does not go within 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def log(self, tail: int = 60) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-tail:])
