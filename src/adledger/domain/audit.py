"""The audit trail: who changed what, when, with what outcome — in a hash chain.

Every state-changing request (and every state-changing CLI command) leaves one `AuditRecord`.
Records are numbered without gaps (`seq`) and chained: each one's `hash` is the SHA-256 of the
previous record's hash and its own canonical content, so changing, removing or reordering any
record breaks every hash after it. `adledger verify` walks the chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

GENESIS = "0" * 64  # the "previous hash" of the first record
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One state-changing request and its outcome.

    `actor` is the API key's id (`key_…`), `cli:<user>` for the command line, or None when the
    request named no valid key; `status` is the HTTP status (0 for the CLI) and `code` the stable
    problem code of a refusal (None for a success).
    """

    at: datetime
    request_id: str
    actor: str | None
    role: str | None
    method: str
    path: str
    status: int
    code: str | None = None
    idempotency_key: str | None = None

    def canonical(self) -> bytes:
        """The record's content as canonical JSON: what the hash covers, byte for byte."""
        content = asdict(self)
        content["at"] = (self.at - _EPOCH) // _MICROSECOND  # exact, whatever the time zone
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def chain_hash(seq: int, prev_hash: str, record: AuditRecord) -> str:
    """The hash of record number `seq`, following the record whose hash is `prev_hash`."""
    h = hashlib.sha256()
    h.update(f"{seq}:{prev_hash}:".encode())
    h.update(record.canonical())
    return h.hexdigest()
