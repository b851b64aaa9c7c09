"""build_shards: deterministic shard ids that move with exactly the settings that change the output."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from sweep.config import SweepConfig
from sweep.data.problems import Problem
from sweep.data.prompting import PromptedProblem
from sweep.grid import Shard, build_shards, digest

IDENTITY = {"path": "/models/tiny", "engine": {"max_model_len": 2048}, "device": "cpu", "seed": 0}


def make_config(**overrides: Any) -> SweepConfig:
    data: dict[str, Any] = {
        "name": "unit",
        "output": "results/unit",
        "models": [{"name": "tiny", "path": "/models/tiny"}],
        "datasets": [{"name": "arith", "source": "arithmetic"}],
        "strategies": [{"name": "greedy"}, {"name": "sampling", "n": [1, 2, 8], "temperature": 0.7}],
        "generation": {"max_tokens": 64},
        "scheduler": {"shard_size": 3},
    }
    data.update(overrides)
    return SweepConfig.model_validate(data)


def make_problem(index: int, *, question: str | None = None, answer: str | None = None) -> PromptedProblem:
    question = question if question is not None else f"What is {index} + {index}?"
    problem = Problem(
        dataset="arith",
        problem_id=f"p{index:03d}",
        question=question,
        answer=answer if answer is not None else str(2 * index),
        grader="numeric",
    )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    return PromptedProblem(problem=problem, messages=messages, prompt=None)


def make_problems(count: int = 7) -> list[PromptedProblem]:
    return [make_problem(i) for i in range(count)]


def shards_of(
    config: SweepConfig | None = None,
    problems: list[PromptedProblem] | None = None,
    identity: dict[str, Any] | None = None,
) -> list[Shard]:
    config = config or make_config()
    return build_shards(
        config,
        prompted={"arith": problems if problems is not None else make_problems()},
        model_identity={"tiny": identity if identity is not None else IDENTITY},
    )


def ids(shards: list[Shard], label: str | None = None) -> list[str]:
    return [s.shard_id for s in shards if label is None or s.strategy.label == label]


# --- determinism ---------------------------------------------------------------------------


def test_same_config_same_ids() -> None:
    first, second = shards_of(), shards_of()
    assert ids(first) == ids(second)
    assert [s.seed for s in first] == [s.seed for s in second]


def test_ids_do_not_depend_on_problem_input_order() -> None:
    problems = make_problems()
    shuffled = problems[3:] + problems[:3][::-1]
    assert ids(shards_of(problems=problems)) == ids(shards_of(problems=shuffled))


def test_digest_is_stable_and_key_order_free() -> None:
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
    assert len(digest("x")) == 16 and len(digest("x", 8)) == 8
    # Pinned: a change to the hashing scheme would silently orphan every stored shard.
    # The scheme: sha256 of compact, key-sorted JSON, hex, truncated.
    assert digest([0, {"b": 1, "a": "x"}]) == hashlib.sha256(b'[0,{"a":"x","b":1}]').hexdigest()[:16]


# --- what changes the ids ------------------------------------------------------------------


def test_generation_settings_change_ids() -> None:
    base = ids(shards_of())
    assert set(ids(shards_of(make_config(generation={"max_tokens": 65})))).isdisjoint(base)
    assert set(ids(shards_of(make_config(generation={"max_tokens": 64, "stop": ["\n\n"]})))).isdisjoint(base)


def test_temperature_changes_sampling_ids_only() -> None:
    base = shards_of()
    hotter = shards_of(make_config(strategies=[{"name": "greedy"}, {"name": "sampling", "n": [1, 2, 8]}]))
    assert ids(hotter, "greedy") == ids(base, "greedy")
    assert set(ids(hotter, "sampling")).isdisjoint(ids(base, "sampling"))


def test_top_p_changes_ids() -> None:
    strategies = [{"name": "sampling", "n": [1, 2, 8], "temperature": 0.7, "top_p": 0.9}]
    assert set(ids(shards_of(make_config(strategies=strategies)))).isdisjoint(ids(shards_of(), "sampling"))


def test_seed_changes_ids() -> None:
    assert set(ids(shards_of(make_config(seed=1)))).isdisjoint(ids(shards_of()))


def test_model_identity_changes_ids() -> None:
    base = ids(shards_of())
    for key, value in [("path", "/models/other"), ("engine", {"max_model_len": 4096}), ("device", "gpu")]:
        identity = {**copy.deepcopy(IDENTITY), key: value}
        assert set(ids(shards_of(identity=identity))).isdisjoint(base), key


def test_problem_text_changes_only_its_shard() -> None:
    problems = make_problems()
    changed = list(problems)
    changed[4] = make_problem(4, question="What is 4 + 5?")  # p004 lies in the second chunk of 3
    before, after = ids(shards_of(problems=problems), "greedy"), ids(shards_of(problems=changed), "greedy")
    assert before[0] == after[0] and before[2] == after[2]
    assert before[1] != after[1]


def test_reference_answer_changes_ids() -> None:
    problems = make_problems()
    changed = [*problems[:1], make_problem(1, answer="3"), *problems[2:]]
    assert ids(shards_of(problems=changed))[0] != ids(shards_of(problems=problems))[0]


def test_plain_prompt_changes_ids() -> None:
    problems = [
        PromptedProblem(p.problem, None, f"Question: {p.problem.question}\nAnswer:") for p in make_problems()
    ]
    other = [PromptedProblem(p.problem, None, f"Q: {p.problem.question}\nA:") for p in make_problems()]
    assert set(ids(shards_of(problems=problems))).isdisjoint(ids(shards_of(problems=other)))


# --- what must not change the ids ----------------------------------------------------------


def test_n_list_with_same_n_max_keeps_ids() -> None:
    # The n axis is evaluated from one draw of n_max samples: adding n values must not regenerate.
    a = make_config(strategies=[{"name": "sampling", "n": [1, 2, 8], "temperature": 0.7}])
    b = make_config(strategies=[{"name": "sampling", "n": [1, 4, 8], "temperature": 0.7}])
    c = make_config(strategies=[{"name": "sampling", "n": [8], "temperature": 0.7}])
    assert ids(shards_of(a)) == ids(shards_of(b)) == ids(shards_of(c))


def test_larger_n_max_changes_ids() -> None:
    a = make_config(strategies=[{"name": "sampling", "n": [1, 2, 8], "temperature": 0.7}])
    b = make_config(strategies=[{"name": "sampling", "n": [1, 2, 16], "temperature": 0.7}])
    assert set(ids(shards_of(a))).isdisjoint(ids(shards_of(b)))


def test_strategy_label_keeps_ids() -> None:
    relabelled = make_config(
        strategies=[
            {"name": "greedy", "label": "argmax"},
            {"name": "sampling", "n": [1, 2, 8], "temperature": 0.7},
        ]
    )
    assert ids(shards_of(relabelled)) == ids(shards_of())


def test_scheduler_settings_other_than_shard_size_keep_ids() -> None:
    config = make_config(scheduler={"shard_size": 3, "max_inflight_per_engine": 9, "max_attempts": 1})
    assert ids(shards_of(config)) == ids(shards_of())


# --- chunking, rows, seeds -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "size", "sizes"), [(7, 3, [3, 3, 1]), (6, 3, [3, 3]), (2, 5, [2]), (4, 1, [1] * 4)]
)
def test_chunking_by_shard_size(count: int, size: int, sizes: list[int]) -> None:
    shards = shards_of(make_config(scheduler={"shard_size": size}), make_problems(count))
    greedy = [s for s in shards if s.strategy.label == "greedy"]
    assert [len(s.problems) for s in greedy] == sizes
    # Every problem lands in exactly one shard per strategy, sorted by id.
    flat = [p.problem.problem_id for s in greedy for p in s.problems]
    assert flat == sorted(p.problem.problem_id for p in make_problems(count))
    assert len(shards) == 2 * len(sizes)


def test_grid_order_and_fields() -> None:
    config = make_config(
        models=[{"name": "tiny", "path": "/models/tiny"}, {"name": "big", "path": "/models/big"}],
    )
    shards = build_shards(
        config,
        prompted={"arith": make_problems()},
        model_identity={"tiny": IDENTITY, "big": {**IDENTITY, "path": "/models/big"}},
    )
    assert [(s.model, s.strategy.label) for s in shards[::3]] == [
        ("tiny", "greedy"),
        ("tiny", "sampling"),
        ("big", "greedy"),
        ("big", "sampling"),
    ]
    assert {s.dataset for s in shards} == {"arith"}
    assert len(set(ids(shards))) == len(shards)


def test_expected_rows_is_problems_times_n_max() -> None:
    shards = shards_of()  # 7 problems in chunks of 3; greedy n_max 1, sampling n_max 8
    assert [s.expected_rows for s in shards if s.strategy.label == "greedy"] == [3, 3, 1]
    assert [s.expected_rows for s in shards if s.strategy.label == "sampling"] == [24, 24, 8]


def test_shard_seeds_distinct_and_in_range() -> None:
    shards = shards_of(make_config(scheduler={"shard_size": 1}), make_problems(40))
    seeds = [s.seed for s in shards]
    assert len(set(seeds)) == len(seeds) == 80
    assert all(0 <= seed < 2**31 - 1 for seed in seeds)
