"""Server-made ids: a type prefix, time-ordered, strictly increasing and unique within a process.

Pure domain tests of `adledger.domain.ids`. Tests that fake the clock also save and restore the
module's counter state, so they leave no trace on ids made afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from adledger.domain import ids
from adledger.domain.ids import new_id, new_ids

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# 2100-01-01T00:00:00Z in milliseconds: far beyond any real clock the suite runs under.
FAR_FUTURE_MS = 4_102_444_800_000


def decode(identifier: str) -> int:
    value = 0
    for char in identifier.rsplit("_", 1)[1]:
        value = value * 32 + ALPHABET.index(char)
    return value


def millis_of(identifier: str) -> int:
    return decode(identifier) >> 80


class FakeClock:
    def __init__(self, ms: int = FAR_FUTURE_MS) -> None:
        self.ms = ms

    def time_ns(self) -> int:
        return self.ms * 1_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    fake = FakeClock()
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=fake.time_ns))
    monkeypatch.setattr(ids, "_last_ms", ids._last_ms)
    monkeypatch.setattr(ids, "_last_rand", ids._last_rand)
    yield fake


def test_an_id_keeps_its_type_prefix() -> None:
    for prefix in ("acct", "biz", "lot", "txn", "dep", "rf", "promo", "red"):
        identifier = new_id(prefix)
        assert identifier.startswith(f"{prefix}_")


def test_an_id_is_the_prefix_and_26_crockford_base32_characters() -> None:
    body = new_id("txn").removeprefix("txn_")
    assert len(body) == 26
    assert set(body) <= set(ALPHABET)


def test_ids_are_strictly_increasing_within_a_process() -> None:
    made = [new_id("txn") for _ in range(10_000)]
    assert all(a < b for a, b in zip(made, made[1:], strict=False))


def test_ids_are_unique_over_many() -> None:
    made = [new_id("txn") for _ in range(20_000)] + new_ids("txn", 20_000)
    assert len(set(made)) == len(made)


def test_a_batch_of_ids_is_strictly_increasing_and_follows_earlier_ids() -> None:
    before = new_id("txn")
    batch = new_ids("txn", 500)
    after = new_id("txn")
    assert len(batch) == 500
    assert [before, *batch, after] == sorted({before, *batch, after})


def test_ids_of_different_prefixes_share_one_order() -> None:
    acct, txn = new_id("acct"), new_id("txn")
    assert decode(acct) < decode(txn)


def test_an_empty_batch_is_empty() -> None:
    assert new_ids("txn", 0) == []


def test_ids_made_on_many_threads_are_unique() -> None:
    results: list[list[str]] = [[] for _ in range(8)]

    def make(slot: list[str]) -> None:
        slot.extend(new_id("txn") for _ in range(2_000))
        slot.extend(new_ids("txn", 100))

    threads = [threading.Thread(target=make, args=(slot,)) for slot in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    made = [identifier for slot in results for identifier in slot]
    assert len(set(made)) == len(made) == 8 * 2_100
    for slot in results:
        assert slot == sorted(slot)


def test_an_id_carries_the_millisecond_it_was_made(clock: FakeClock) -> None:
    assert millis_of(new_id("txn")) == clock.ms
    clock.ms += 5
    assert millis_of(new_id("txn")) == clock.ms


def test_ids_keep_increasing_while_the_clock_stands_still(clock: FakeClock) -> None:
    made = [new_id("txn") for _ in range(1_000)] + new_ids("txn", 1_000)
    assert all(a < b for a, b in zip(made, made[1:], strict=False))
    assert {millis_of(identifier) for identifier in made} == {clock.ms}


def test_ids_keep_increasing_when_the_clock_steps_back(clock: FakeClock) -> None:
    first = new_id("txn")
    clock.ms -= 60_000
    second = new_id("txn")
    clock.ms += 120_000
    third = new_id("txn")
    assert first < second < third


def test_ids_sort_as_strings_in_the_order_they_were_made(clock: FakeClock) -> None:
    made = []
    for step in range(50):
        clock.ms += step % 3  # sometimes the same millisecond, sometimes the next
        made.append(new_id("txn"))
    assert made == sorted(made)
    assert [decode(identifier) for identifier in made] == sorted(map(decode, made))


def test_a_batch_of_ids_across_a_carry_is_each_value_encoded_in_full(monkeypatch):
    """A batch encodes its shared head once per 2^20 ids: across that boundary (and the
    carries above it) every id is still exactly its own value, one after another."""
    for rand in ((1 << 20) - 3, (1 << 40) - 2, (1 << 78) - 1):
        monkeypatch.setattr(ids, "_last_ms", FAR_FUTURE_MS)
        monkeypatch.setattr(ids, "_last_rand", rand)
        base = (FAR_FUTURE_MS << 80) | rand
        made = ids.new_ids("txn", 7)
        assert made == [f"txn_{ids._encode(base + i + 1)}" for i in range(7)]
