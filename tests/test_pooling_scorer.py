"""The ``pooling`` scorer on a real vLLM pooling engine serving a tiny random Qwen2 PRM.

The PRM is built on disk here (``tests/tiny_prm.py``); its scores are meaningless, so the
tests check shape, range, consistency between ``score`` and ``score_last``, and that the
head really reads the text (different texts, different scores).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from tiny_prm import STEP_TAG, build_tiny_prm

from sweep.inference.scorers.pooling import PoolingScorer
from sweep.inference.steps import split_steps

pytestmark = pytest.mark.engine  # every test here runs on the in-process engine below

PROMPT = "Tom has 3 apples and buys 2 more. How many apples?\n"
ITEMS = [
    (PROMPT, "The answer is 5."),
    (PROMPT, "3 + 2 = 5.\n\nThe answer is 5."),
    (PROMPT, "3 + 2 = 7.\n\nHe has 7.\n\nThe answer is 7."),
    ("What is 10 - 4?\n", "10 - 4 = 6.\n\nSo 6."),
]


class BlockingEngine:
    """``VLLMEngine``'s async methods called from plain code, as ``RemoteEngine`` does over Ray."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def step_rewards(self, texts: list[str], *, step_tag: str) -> list[tuple[int, list[list[float]]]]:
        return asyncio.run(self._engine.step_rewards(texts, step_tag=step_tag))


@pytest.fixture(scope="module")
def prm_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real in-process vLLM engine (pooling runner) on the tiny PRM; no Ray."""
    from actors.engine import VLLMEngine

    folder = build_tiny_prm(tmp_path_factory.mktemp("tiny-prm"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        env.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
        env.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        engine = VLLMEngine(
            model=str(folder),
            engine_kwargs={
                "runner": "pooling",
                "dtype": "float32",
                "enforce_eager": True,
                "max_model_len": 512,
            },
            seed=0,
        )
        yield engine
        engine.shutdown()


def test_step_rewards_are_class_probabilities_at_each_tag(prm_engine: Any) -> None:
    (tokens, rows), (_, one) = asyncio.run(
        prm_engine.step_rewards([f"a{STEP_TAG}b{STEP_TAG}c{STEP_TAG}", f"a{STEP_TAG}"], step_tag=STEP_TAG)
    )
    assert tokens == 6 and len(rows) == 3 and len(one) == 1
    assert all(len(row) == 2 and sum(row) == pytest.approx(1.0, abs=1e-5) for row in rows)
    assert one[0] == pytest.approx(rows[0], abs=1e-5)  # causal: the first tag sees the same prefix


def test_step_tag_must_be_one_token(prm_engine: Any) -> None:
    with pytest.raises(ValueError, match="must be one"):
        asyncio.run(prm_engine.step_rewards(["x"], step_tag=" Is this step correct?"))


def test_pooling_scorer_scores_each_step(prm_engine: Any) -> None:
    # the settings every reward_models entry passes, good/bad unused
    scorer = PoolingScorer(engine=BlockingEngine(prm_engine), tag=STEP_TAG, good="+", bad="-")
    scored = scorer.score(ITEMS)
    assert [len(r.scores) for r in scored] == [1, 2, 3, 2]
    assert [r.steps for r in scored][2] == ["3 + 2 = 7.", "He has 7.", "The answer is 7."]
    assert all(0.0 <= s <= 1.0 for r in scored for s in r.scores)
    assert all(r.reward_tokens > 0 for r in scored)
    assert len({round(s, 6) for r in scored for s in r.scores}) > 1  # the head reads the text

    last = scorer.score_last([(p, split_steps(c)) for p, c in ITEMS])
    assert [s for s, _ in last] == pytest.approx([r.scores[-1] for r in scored], abs=1e-5)
    assert [t for _, t in last] == [r.reward_tokens for r in scored]


def test_no_steps_no_request(prm_engine: Any) -> None:
    scorer = PoolingScorer(engine=BlockingEngine(prm_engine))
    (empty, full) = scorer.score([("prompt", "  "), (PROMPT, "The answer is 5.")])
    assert empty.steps == [] and empty.scores == [] and empty.reward_tokens == 0
    assert len(full.scores) == 1
    assert scorer.score_last([("prompt", [])]) == [(0.0, 0)]
