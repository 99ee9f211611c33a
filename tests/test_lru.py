"""The one LRU (inference.lru.ByteBoundedLRU): byte bound, count bound, recency, replace, oversized."""

from __future__ import annotations

import pytest

from inference.lru import ByteBoundedLRU


def test_byte_bound_evicts_least_recently_used():
    lru: ByteBoundedLRU[str] = ByteBoundedLRU(max_bytes=10)
    lru.put("a", "A", nbytes=4)
    lru.put("b", "B", nbytes=4)
    lru.put("c", "C", nbytes=4)  # 12 > 10: "a" goes
    assert "a" not in lru and lru.get("b") == "B" and lru.get("c") == "C"
    assert lru.nbytes == 8 and len(lru) == 2


def test_count_bound_evicts_least_recently_used():
    lru: ByteBoundedLRU[int] = ByteBoundedLRU(max_items=2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("c", 3)
    assert lru.keys() == ["b", "c"] and lru.nbytes == 0


def test_both_bounds_apply():
    lru: ByteBoundedLRU[int] = ByteBoundedLRU(max_bytes=100, max_items=2)
    for i in range(3):
        lru.put(i, i, nbytes=1)
    assert lru.keys() == [1, 2]
    lru.put(3, 3, nbytes=100)
    assert lru.keys() == [3] and lru.nbytes == 100


def test_get_makes_recent_and_counts_hits():
    lru: ByteBoundedLRU[str] = ByteBoundedLRU(max_items=2)
    lru.put("a", "A")
    lru.put("b", "B")
    assert lru.get("a") == "A"  # "a" is now the most recent
    assert "b" in lru  # `in` does not refresh
    lru.put("c", "C")
    assert lru.keys() == ["a", "c"]
    assert lru.get("b") is None and lru.get("b", "gone") == "gone"
    assert (lru.hits, lru.misses) == (1, 2)


def test_a_cached_none_is_a_hit():
    lru: ByteBoundedLRU[None] = ByteBoundedLRU(max_items=4)
    missing = object()
    lru.put("empty", None)
    assert lru.get("empty", missing) is None and lru.get("other", missing) is missing


def test_replace_updates_value_bytes_and_recency():
    lru: ByteBoundedLRU[str] = ByteBoundedLRU(max_bytes=10)
    lru.put("a", "A1", nbytes=3)
    lru.put("b", "B", nbytes=3)
    lru.put("a", "A2", nbytes=5)
    assert lru.get("a") == "A2" and lru.nbytes == 8 and lru.keys() == ["b", "a"]


def test_oversized_item_is_not_kept_and_drops_the_old_value():
    lru: ByteBoundedLRU[str] = ByteBoundedLRU(max_bytes=10)
    lru.put("a", "small", nbytes=2)
    lru.put("b", "B", nbytes=2)
    lru.put("a", "huge", nbytes=11)
    assert "a" not in lru and lru.get("b") == "B" and lru.nbytes == 2


def test_pop_remove_where_and_clear():
    lru: ByteBoundedLRU[int] = ByteBoundedLRU(max_bytes=100)
    for i in range(5):
        lru.put(("x" if i % 2 else "y", i), i, nbytes=10)
    assert lru.pop(("y", 0)) == 0 and lru.pop(("y", 0), -1) == -1 and lru.nbytes == 40
    assert lru.remove_where(lambda key: key[0] == "x") == 2
    assert lru.keys() == [("y", 2), ("y", 4)] and lru.nbytes == 20
    lru.clear()
    assert len(lru) == 0 and lru.nbytes == 0


def test_bad_bounds_and_missing_size():
    with pytest.raises(ValueError):
        ByteBoundedLRU()
    with pytest.raises(ValueError):
        ByteBoundedLRU(max_bytes=-1)
    with pytest.raises(ValueError, match="nbytes"):
        ByteBoundedLRU(max_bytes=10).put("a", 1)
