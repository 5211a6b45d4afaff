"""Server-made, opaque, time-ordered ids with a type prefix (`acct_…`, `txn_…`).

Each id is a prefix and 26 Crockford base32 characters: 48 bits of milliseconds since the epoch and
80 bits that start random and count up within a millisecond, so ids made by one process sort in the
order they were made (the lists page on them).
"""

from __future__ import annotations

import base64
import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
# RFC 4648 base32 digit → Crockford digit, so the C-speed encoder can do the work.
_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _ALPHABET)


def _encode(value: int) -> str:
    """26 Crockford base32 digits of a value below 2^130, most significant first.

    Twenty bytes are 160 bits, 32 base32 digits with no padding; the value sits in the low 130
    bits, so the last 26 digits are exactly its digits.
    """
    digits = base64.b32encode(value.to_bytes(20, "big"))[6:].decode("ascii")
    return digits.translate(_TO_CROCKFORD)


# Every pair of base32 digits (10 bits): a batch of ids shares all but its last few digits, so
# it encodes the shared head once per 2^20 ids and looks the last four digits up.
_PAIRS = [_ALPHABET[i >> 5] + _ALPHABET[i & 31] for i in range(1024)]


def new_ids(prefix: str, count: int) -> list[str]:
    """`count` fresh ids with `prefix`, strictly increasing."""
    global _last_ms, _last_rand
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms, _last_rand = ms, int.from_bytes(os.urandom(10), "big") >> 2
        base = (_last_ms << _RANDOM_BITS) | _last_rand
        _last_rand += count
    ids: list[str] = []
    pairs = _PAIRS
    value, end = base + 1, base + count + 1
    while value < end:
        high = value >> 20
        head = f"{prefix}_{_encode(high << 20)[:22]}"
        stop = min(end, (high + 1) << 20)
        ids += [head + pairs[(v >> 10) & 1023] + pairs[v & 1023] for v in range(value, stop)]
        value = stop
    return ids


def is_id(text: str, prefix: str) -> bool:
    """Whether `text` has the shape of an id made by `new_id(prefix)`."""
    head, sep, body = text.partition("_")
    return head == prefix and sep == "_" and len(body) == 26 and all(c in _ALPHABET for c in body)


def new_id(prefix: str) -> str:
    """One fresh id with `prefix`, e.g. `new_id("acct")` → `"acct_01J…"`."""
    return new_ids(prefix, 1)[0]
