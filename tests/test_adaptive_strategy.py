"""The live ``adaptive`` strategy on a scripted engine (answers on cue): rounds batched across open
problems, the stopping rule of sweep/inference/stopping.py applied after each round, only drawn samples
written with their round and their problem's stop reason. The real-engine run, and its agreement
with the offline replay, is in test_adaptive_e2e.py."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from actors.protocol import Completion, GenerationRequest, GenerationResult
from sweep.config import GenerationConfig
from sweep.data.problems import Problem
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import StepScores
from sweep.inference.strategies.adaptive import AdaptiveSettings, run_adaptive
from sweep.inference.strategies.base import StrategyOutput

GENERATION = GenerationConfig(max_tokens=32)


class AnsweringEngine:
    """Problem ``p<i>`` answers from ``answers[i]`` in turn (cycling); ``fail`` names problems whose
    requests fail. Records each call's (problem, n) pairs."""

    def __init__(self, answers: dict[str, list[str]], *, fail: Sequence[str] = ()) -> None:
        self.answers = {pid: itertools.cycle(values) for pid, values in answers.items()}
        self.fail = set(fail)
        self.calls: list[list[tuple[str, int]]] = []

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        self.calls.append([(r.request_id.split("/")[0], r.sampling["n"]) for r in requests])
        results = []
        for r in requests:
            pid = r.request_id.split("/")[0]
            if pid in self.fail:
                results.append(GenerationResult(r.request_id, "PROMPT", 10, [], 0.01, 0, error="boom"))
                continue
            completions = [
                Completion(
                    text=f"So the answer is {next(self.answers[pid])}.",
                    tokens=7,
                    finish_reason="stop",
                    cumulative_logprob=-1.0,
                )
                for _ in range(r.sampling["n"])
            ]
            results.append(
                GenerationResult(r.request_id, "PROMPT", 10, completions, 0.01, 0, cached_tokens=4)
            )
        return results


class AnswerScorer:
    """Scores a solution 0.9 if it says 4, else 0.2 (one step)."""

    step_mode, delimiter, prefix_cached = "delimiter", "\n", True

    def __init__(self) -> None:
        self.read = 0

    def score(self, items: Sequence[tuple[str, str]]) -> list[StepScores]:
        self.read += len(items)
        return [StepScores([c], [0.9 if "is 4." in c else 0.2], 5) for _, c in items]


def problems(count: int) -> list[PromptedProblem]:
    return [
        PromptedProblem(
            Problem(dataset="d", problem_id=f"p{i}", question="2+2?", answer="4", grader="numeric"), None, "Q"
        )
        for i in range(count)
    ]


def adaptive(**settings: object) -> AdaptiveSettings:
    return AdaptiveSettings.model_validate({"name": "adaptive", "n_max": 8, **settings})


def draw(engine: AnsweringEngine, count: int, scorer: Any = None, **settings: object) -> StrategyOutput:
    """``run_adaptive`` over ``count`` problems with ``adaptive(**settings)``, engine seed 0."""
    return run_adaptive(
        problems(count), settings=adaptive(**settings), engine=engine, scorer=scorer, generation=GENERATION, seed=0
    )


def by_problem(samples: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for s in samples:
        out.setdefault(s.problem_id, []).append(s)
    return out


def test_confident_problems_stop_and_split_ones_draw_to_n_max() -> None:
    engine = AnsweringEngine({"p0": ["4"], "p1": ["4", "5"], "p2": ["4", "4", "4", "4", "7"]})
    out = draw(engine, 3, rule="beta", threshold=0.9, window=2)
    rows = by_problem(out.samples)
    # Beta: 2 agreeing give P(p1 > p2) = 1 - 2^-3 = 0.875 < 0.9; 4 give 1 - 2^-5 = 0.97.
    assert len(rows["p0"]) == 4 and {s.stop_reason for s in rows["p0"]} == {"rule"}
    assert len(rows["p1"]) == 8 and {s.stop_reason for s in rows["p1"]} == {"n_max"}  # 4 vs 4: never settled
    assert len(rows["p2"]) == 4 and {s.stop_reason for s in rows["p2"]} == {"rule"}
    for samples in rows.values():
        assert [s.sample_index for s in samples] == list(range(len(samples)))
        assert [s.round for s in samples] == [i // 2 for i in range(len(samples))]
        assert {s.budget for s in samples} == {8}
    # One engine call per round, holding every problem still open, each drawing one window.
    assert engine.calls == [
        [("p0", 2), ("p1", 2), ("p2", 2)],
        [("p0", 2), ("p1", 2), ("p2", 2)],
        [("p1", 2)],
        [("p1", 2)],
    ]
    # The prompt is charged once; later rounds' uncached re-sent prompt is context.
    assert {s.cost.prompt_tokens for s in out.samples} == {10}
    assert [s.cost.context_tokens for s in rows["p1"]] == [0, 0] + [3.0] * 6  # (10 - 4 cached) / 2 per sample


def test_esc_stops_after_a_window_of_agreeing_answers_and_the_cap_cuts_the_last_round() -> None:
    engine = AnsweringEngine({"p0": ["1", "2", "3", "3", "3"], "p1": ["1", "2"]})
    out = draw(engine, 2, rule="esc", threshold=3, window=3, n_max=7)
    rows = by_problem(out.samples)
    # p0: window 1 = (1, 2, 3) mixed; window 2 = (3, 3, 1): mixed; window 3 is cut to 1 draw by n_max.
    assert len(rows["p0"]) == 7 and rows["p0"][0].stop_reason == "n_max"
    assert engine.calls[-1] == [("p0", 1), ("p1", 1)]
    engine = AnsweringEngine({"p0": ["5"]})
    out = draw(engine, 1, rule="esc", threshold=3, window=3)
    assert len(out.samples) == 3 and out.samples[0].stop_reason == "rule"


def test_weighted_rule_scores_each_sample_once_and_keeps_the_scores() -> None:
    engine = AnsweringEngine({"p0": ["4", "9"], "p1": ["9"]})
    scorer = AnswerScorer()
    out = draw(engine, 2, scorer=scorer, rule="weighted", threshold=0.8, window=2, reward_model="prm")
    rows = by_problem(out.samples)
    # p0: 4 (0.9) vs 9 (0.2) each round: the leader's share 0.9 / 1.1 = 0.82 >= 0.8 after round one.
    assert len(rows["p0"]) == 2 and rows["p0"][0].stop_reason == "rule"
    assert len(rows["p1"]) == 2 and rows["p1"][0].stop_reason == "rule"  # one answer: share 1
    assert scorer.read == len(out.samples)  # scored during the search; the runner reuses them
    assert all(s.step_scores is not None and s.cost.reward_tokens == 5 for s in out.samples)


def test_a_failed_round_stops_its_problem_with_error_rows_and_the_others_go_on() -> None:
    engine = AnsweringEngine({"p0": ["4"], "p1": ["4"]}, fail=["p1"])
    out = draw(engine, 2, rule="beta", threshold=0.9, window=2)
    rows = by_problem(out.samples)
    assert len(rows["p1"]) == 2 and all(s.error == "boom" and s.stop_reason == "error" for s in rows["p1"])
    assert len(rows["p0"]) == 4 and rows["p0"][0].stop_reason == "rule"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"window": 9}, "must not exceed n_max"),
        ({"rule": "weighted", "threshold": 0.8}, "name a reward_model"),
        ({"rule": "esc", "threshold": 2.5}, "number of agreeing answers"),
        ({"rule": "dirichlet"}, "rule"),
    ],
)
def test_bad_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        adaptive(**settings)


def test_the_grid_key_is_n_max() -> None:
    settings = adaptive(window=4)
    assert settings.n_max == 8 and settings.n_values == [8]
    assert settings.model_dump()["n_max"] == 8  # the manifest keeps grid.yaml's key
    assert AdaptiveSettings.model_validate(settings.model_dump()) == settings


def test_solve_runs_a_replayed_adaptive_method_live(tiny_config: object) -> None:
    """/solve's choice of an adaptive_* row runs that rule live and pays only for what it drew."""
    from sweep.serve.solve import Choice, prompt_question, solve

    class Always4(AnsweringEngine):
        def __init__(self) -> None:
            super().__init__({})
            self.answers = _Four()

    class _Four(dict):
        def __missing__(self, key: str) -> itertools.cycle:
            return itertools.cycle(["4"])

    choice = Choice(
        model="smollm2-135m-instruct",
        model_params=10**8,
        dataset="arithmetic",
        strategy="sampling",
        method="adaptive_beta_0.9_r2",
        n=8,
        accuracy=0.5,
        flops_per_problem=1e9,
    )
    engine = Always4()
    solution = solve(
        prompt_question("What is 2 + 2?", choice=choice, config=tiny_config), choice=choice, config=tiny_config, engine=engine, scorer=None, reward_params=10**8
    )
    assert (
        solution.answer == "4" and solution.samples == 4
    )  # of 8 at most: two rounds of two, 1 - 2^-5 >= 0.9
    assert [n for call in engine.calls for _, n in call] == [2, 2]
