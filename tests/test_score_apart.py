"""A reward model that refuses some inputs of a batch: only those fail, the rest are scored."""

from __future__ import annotations

from collections.abc import Sequence

from actors.protocol import RequestFailed
from sweep.inference.scorers import score_apart


class Refusing:
    """Reads a batch, or refuses all of it when it holds an input longer than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list[int] = []

    def read(self, items: Sequence[str]) -> list[int]:
        self.batches.append(len(items))
        if any(len(text) > self.limit for text in items):
            raise RequestFailed("prompt longer than the context")
        return [len(text) for text in items]


def test_nothing_refused_costs_one_read() -> None:
    reader = Refusing(limit=10)
    assert score_apart(reader.read, ["a", "bb", "ccc"]) == [1, 2, 3]
    assert reader.batches == [3]


def test_only_the_refused_inputs_fail() -> None:
    reader = Refusing(limit=3)
    items = ["a", "toolong", "bb", "ccc", "xxxxxxxx", "d"]
    out = score_apart(reader.read, items)
    assert [isinstance(o, RequestFailed) for o in out] == [False, True, False, False, True, False]
    assert [o for o in out if not isinstance(o, RequestFailed)] == [1, 2, 3, 1]
    assert len(reader.batches) <= 1 + 2 * 2 * 3  # halving: about log2(batch) reads per refused input


def test_empty_batch_reads_nothing() -> None:
    reader = Refusing(limit=3)
    assert score_apart(reader.read, []) == [] and reader.batches == []


def test_a_batch_past_its_deadline_is_not_split() -> None:
    import pytest

    from actors.protocol import DeadlineExceeded

    calls: list[int] = []

    def late(items: Sequence[str]) -> list[int]:
        calls.append(len(items))
        raise DeadlineExceeded("still running at its deadline")

    with pytest.raises(DeadlineExceeded):
        score_apart(late, ["a", "b", "c", "d"])
    assert calls == [4]
