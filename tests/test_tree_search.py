"""Tree-search bookkeeping under conditions a small real model rarely hits on cue: every path cut
by the depth cap or the token cap, failed requests, trees that finish before the MCTS budget.

The engine here is scripted (fault injection); the real-engine runs are in
test_tree_search_e2e.py. Scores come from a scripted scorer that prefers longer steps, or,
for REBASE's allocation, from a table of known step rewards.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from scipy.special import softmax

from actors.protocol import Completion, GenerationRequest, GenerationResult
from sweep.config import GenerationConfig
from sweep.data.problems import Problem
from sweep.data.prompting import PromptedProblem
from sweep.inference.strategies.beam import BeamSettings
from sweep.inference.strategies.mcts import MCTSSettings, run_mcts
from sweep.inference.strategies.rebase import RebaseSettings, run_rebase


class ScriptedEngine:
    """Each completion is ``step <k>`` of ``tokens`` tokens, ending at the delimiter, except:
    with ``finish_after`` steps in a path it ends the solution; ``fail`` fails every request
    whose prompt has that many steps."""

    def __init__(self, *, tokens: int = 5, finish_after: int | None = None, fail: int | None = None) -> None:
        self.tokens, self.finish_after, self.fail = tokens, finish_after, fail
        self.counter = itertools.count()
        self.calls = 0

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        self.calls += 1
        results = []
        for r in requests:
            prompt = r.prompt if r.prompt and "PROMPT" in r.prompt else "PROMPT:"
            depth = prompt.count("\n")  # steps so far
            n = r.sampling["n"]
            if depth == self.fail:
                results.append(GenerationResult(r.request_id, prompt, 10, [], 0.01, 0, error="boom"))
                continue
            done = self.finish_after is not None and depth + 1 >= self.finish_after
            tokens = min(self.tokens, r.sampling["max_tokens"])
            completions = [
                Completion(
                    text=f"step {next(self.counter)}" + (" The answer is 4." if done else ""),
                    tokens=tokens,
                    finish_reason="stop" if done or tokens == self.tokens else "length",
                    cumulative_logprob=-1.0,
                    stop_reason=None if done else "\n",
                )
                for _ in range(n)
            ]
            results.append(GenerationResult(r.request_id, prompt, 10 + depth * 5, completions, 0.01, 0, cached_tokens=8))
        return results


class LengthScorer:
    """Scores a step by its number (later steps, higher), so allocation is deterministic."""

    step_mode = "delimiter"
    delimiter = "\n"
    prefix_cached = True

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        return [(min(int(steps[-1].split()[1]) / 100, 1.0), 20 + 5 * len(steps)) for _, steps in items]


PROBLEMS = [
    PromptedProblem(Problem(dataset="d", problem_id=f"p{i}", question="2+2?", answer="4", grader="numeric"), None, "PROMPT:")
    for i in range(3)
]
GENERATION = GenerationConfig(max_tokens=64)


def rebase(**settings: object) -> RebaseSettings:
    return RebaseSettings.model_validate({"name": "rebase", "budgets": [6], "reward_model": "prm", **settings})


def test_rebase_cut_by_the_depth_cap_still_ends_with_n_leaves() -> None:
    engine = ScriptedEngine()
    out = run_rebase(PROBLEMS, settings=rebase(max_depth=3), engine=engine, scorer=LengthScorer(), generation=GENERATION, seed=0)
    assert engine.calls == 3  # one generation batch per depth for all problems
    assert len(out.samples) == 3 * 6
    for tree in out.trees:
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 6 and {n.finish for n in leaves} == {"depth_cap"} and {n.depth for n in leaves} == {3}
        per_depth = [sum(n.depth == d for n in tree.nodes) for d in (1, 2, 3)]
        assert per_depth == [6, 6, 6]  # nothing finished early: all of the budget stays open
        pruned = [n for n in tree.nodes if n.finish == "pruned"]
        assert all(not n.children for n in pruned)


def test_rebase_token_cap_is_carried_from_parent_to_child() -> None:
    out = run_rebase(
        PROBLEMS, settings=rebase(max_tokens=12, step_max_tokens=5), engine=ScriptedEngine(), scorer=LengthScorer(),
        generation=GENERATION, seed=0,
    )  # fmt: skip
    for tree in out.trees:
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 6 and {n.finish for n in leaves} == {"token_cap"}
        assert {n.path_tokens for n in leaves} == {12}  # 5 + 5 + a last step cut to 2


def test_rebase_counts_finished_solutions_against_the_budget() -> None:
    out = run_rebase(
        PROBLEMS, settings=rebase(), engine=ScriptedEngine(finish_after=2), scorer=LengthScorer(),
        generation=GENERATION, seed=0,
    )  # fmt: skip
    for tree in out.trees:
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 6 and {n.finish for n in leaves} == {"done"} and {n.depth for n in leaves} == {2}
    sample = out.samples[0]
    assert sample.completion.endswith("The answer is 4.") and len(sample.step_scores or []) == 2
    # The tree's compute is spread evenly: the leaves of a problem sum to its totals.
    tree = out.trees[0]
    shares = [s for s in out.samples if s.problem_id == "p0"]
    assert sum(s.cost.completion_tokens for s in shares) == pytest.approx(sum(n.tokens for n in tree.nodes))
    assert sum(s.cost.reward_tokens for s in shares) == pytest.approx(sum(n.reward_tokens for n in tree.nodes))
    # The root prompt is charged whole, once per problem, as sampling charges its prompt; the
    # context re-sent by later expansions is its own column, not folded into the prompt.
    assert all(s.cost.prompt_tokens == tree.prompt_tokens > 0 for s in shares)
    deeper = [n for n in tree.nodes if n.depth >= 2]
    assert sum(s.cost.context_tokens for s in shares) == pytest.approx(sum(n.context_tokens for n in deeper))


# --- REBASE's allocation against the paper, on known rewards -------------------------------------
#
# Every step's text is its label, the path of child indices from the root ("1", then "1.0",
# "1.1", ...), so a table can give each node a known reward and say which nodes finish.

REWARDS = {
    "p0": {
        "0": 0.3, "1": 0.9, "2": 0.95, "3": 0.1, "4": 0.75, "5": 0.2, "6": 0.8, "7": 0.6,
        "1.0": 0.5, "1.1": 0.55, "4.0": 0.9, "6.0": 0.2, "6.1": 0.99, "7.0": 0.85,
    },
    "p1": {
        "0": 0.1, "1": 0.7, "2": 0.4, "3": 0.75, "4": 0.2, "5": 0.65, "6": 0.5, "7": 0.3,
        "1.0": 0.6, "1.1": 0.4, "3.0": 0.9, "3.1": 0.8, "3.2": 0.7, "5.0": 0.3, "5.1": 0.95, "6.0": 0.85,
    },
}  # fmt: skip
DONE = {"p0": {"2", "5", "6.1"}, "p1": {"3.0", "5.1", "6.0"}}  # these steps end their solution
TABLE_PROBLEMS = [
    PromptedProblem(
        Problem(dataset="d", problem_id=p, question="2+2?", answer="4", grader="numeric"),
        None,
        f"PROMPT {p}:",
    )
    for p in REWARDS
]


def parse(prompt: str) -> tuple[str, str]:
    """(problem id, parent label) of a request: ``PROMPT <id>:``, then the parent's steps, each
    ended by the delimiter."""
    head, _, tail = prompt.partition(":")
    steps = tail.split("\n")[:-1]
    return head.split()[1], steps[-1] if steps else ""


class TableEngine:
    """Child i of the node labelled L is labelled ``L.i`` (``i`` under the root); a step listed in
    DONE ends its solution, any other ends at the delimiter. Logs how many children each node got."""

    def __init__(self) -> None:
        self.widths: dict[str, dict[str, int]] = {p: {} for p in REWARDS}  # problem -> parent label -> n

    def generate(self, requests: list[GenerationRequest]) -> list[GenerationResult]:
        results = []
        for r in requests:
            assert r.prompt is not None
            problem, parent = parse(r.prompt)
            assert parent not in self.widths[problem], f"{problem}: {parent!r} expanded twice"
            self.widths[problem][parent] = r.sampling["n"]
            labels = [f"{parent}.{i}" if parent else f"{i}" for i in range(r.sampling["n"])]
            completions = [
                Completion(
                    text=label, tokens=5, finish_reason="stop", cumulative_logprob=-1.0,
                    stop_reason=None if label in DONE[problem] else "\n",
                )
                for label in labels
            ]  # fmt: skip
            results.append(GenerationResult(r.request_id, r.prompt, 10, completions, 0.01, 0))
        return results


class TableScorer:
    """A step's reward from REWARDS; steps at the depth cap are not listed (their score allocates nothing)."""

    step_mode = "delimiter"
    delimiter = "\n"
    prefix_cached = False

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        return [(REWARDS[parse(prompt)[0]].get(steps[-1], 0.0), 10) for prompt, steps in items]


def largest_remainder(quotas: np.ndarray) -> list[int]:
    """Round quotas to integers summing to their (integer) total: floors, then one more to the largest
    fractional parts. The test data keeps the parts at the cut apart, so no tie rule is needed."""
    floors = np.floor(quotas).astype(int)
    leftover = round(quotas.sum()) - int(floors.sum())
    parts = quotas - floors
    order = np.argsort(-parts, kind="stable")
    if 0 < leftover < len(parts):
        gap = parts[order[leftover - 1]] - parts[order[leftover]]
        assert gap > 1e-6, "a tie at the cut: change the test data"
    floors[order[:leftover]] += 1
    return floors.tolist()


def paper_widths(problem: str, *, budget: int, temperature: float, max_depth: int) -> dict[str, int]:
    """Children per node (label -> count) by Wu et al. (2024) §3.1.2: B_0 = N; at depth i the C_i
    finished nodes leave B_i = B_{i-1} - C_i, and open node j gets Round(B_i · softmax(R_j / T_b))."""
    widths = {"": budget}
    remaining, parents = budget, {"": budget}
    for _ in range(1, max_depth):  # nodes at the depth cap are never expanded
        fresh = [f"{p}.{i}" if p else f"{i}" for p, k in parents.items() for i in range(k)]
        remaining -= sum(label in DONE[problem] for label in fresh)
        open_nodes = [label for label in fresh if label not in DONE[problem]]
        assert len(open_nodes) == remaining
        rewards = np.array([REWARDS[problem][label] for label in open_nodes])
        counts = largest_remainder(remaining * softmax(rewards / temperature))
        widths.update(zip(open_nodes, counts, strict=True))
        parents = {label: c for label, c in zip(open_nodes, counts, strict=True) if c}
    return widths


def test_rebase_widths_follow_the_softmax_allocation_of_known_rewards() -> None:
    settings = rebase(budgets=[8], balance_temperature=0.2, max_depth=3)
    expected = {p: paper_widths(p, budget=8, temperature=0.2, max_depth=3) for p in REWARDS}
    # p0 by hand. Depth 1: "2" and "5" finished, B_1 = 8 - 2 = 6; quotas of "0", "1", "3", "4", "6", "7"
    # are 0.126, 2.532, 0.046, 1.196, 1.535, 0.565: floors give 4, the two largest parts ("7", "6") one
    # more each (plain rounding would spend 7). Depth 2: "6.1" finished, B_2 = 6 - 1 = 5; quotas of
    # "1.0", "1.1", "4.0", "6.0", "7.0" are 0.319, 0.410, 2.361, 0.071, 1.838: floors give 3, then
    # "7.0" and "1.1" one more (plain rounding would spend 4).
    assert expected["p0"] == {
        "": 8,
        "0": 0, "1": 2, "3": 0, "4": 1, "6": 2, "7": 1,
        "1.0": 0, "1.1": 1, "4.0": 2, "6.0": 0, "7.0": 2,
    }  # fmt: skip

    engine = TableEngine()
    out = run_rebase(
        TABLE_PROBLEMS, settings=settings, engine=engine, scorer=TableScorer(), generation=GENERATION, seed=0
    )

    for problem, tree in zip(REWARDS, out.trees, strict=True):
        assert tree.problem.problem.problem_id == problem
        # The engine was asked for exactly the paper's widths, and nothing else.
        assert engine.widths[problem] == {label: n for label, n in expected[problem].items() if n}
        # The tree holds them: every open node below the cap has its allocated children, the rest are pruned.
        got = {n.step: len(n.children) for n in tree.nodes if n.depth < 3 and n.finish != "done"}
        assert got == expected[problem]
        pruned = {label for label, n in expected[problem].items() if n == 0}
        assert {n.step for n in tree.nodes if n.finish == "pruned"} == pruned
        # B_{i-1} nodes at depth i, of which B_i = B_{i-1} - C_i stay open; N leaves in all.
        budgets = [8]
        for depth in (1, 2, 3):
            budgets.append(budgets[-1] - sum(label.count(".") + 1 == depth for label in DONE[problem]))
            assert sum(n.depth == depth for n in tree.nodes) == budgets[depth - 1]
            assert sum(n.depth == depth and n.finish != "done" for n in tree.nodes) == budgets[depth]
        assert sorted(n.step for n in tree.nodes if n.finish == "done") == sorted(DONE[problem])
        assert sum(n.terminal for n in tree.nodes) == 8


def test_failed_requests_become_error_leaves_not_lost_budget() -> None:
    out = run_rebase(
        PROBLEMS, settings=rebase(), engine=ScriptedEngine(fail=1), scorer=LengthScorer(), generation=GENERATION, seed=0
    )
    for tree in out.trees:
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 6 and {n.finish for n in leaves} == {"error"}
        assert all(n.error == "boom" and n.score == 0.0 for n in leaves)
    assert all(s.error == "boom" for s in out.samples)


def test_mcts_spends_exactly_its_budget() -> None:
    settings = MCTSSettings.model_validate(
        {"name": "mcts", "budgets": [7], "reward_model": "prm", "root_children": 4, "children": 2, "max_depth": 20}
    )
    engine = ScriptedEngine()
    out = run_mcts(PROBLEMS, settings=settings, engine=engine, scorer=LengthScorer(), generation=GENERATION, seed=0)
    assert engine.calls == 7  # one batch per iteration, all problems together
    for tree in out.trees:
        expanded = [n for n in tree.nodes if n.children]
        assert len(expanded) == 7 and len(tree.nodes) == 1 + 4 + 2 * 6
        assert tree.root.visits == 4 + 2 * 6  # every new node backed up once through the root
        assert tree.stopped is None
    # No path finished: the open leaves are the samples, so every problem has rows.
    assert {s.finish_reason for s in out.samples} == {"open"}


def test_mcts_stops_when_every_path_has_finished() -> None:
    settings = MCTSSettings.model_validate({"name": "mcts", "budgets": [10], "reward_model": "prm", "root_children": 3})
    out = run_mcts(
        PROBLEMS, settings=settings, engine=ScriptedEngine(finish_after=2), scorer=LengthScorer(),
        generation=GENERATION, seed=0,
    )  # fmt: skip
    for tree in out.trees:
        # Root into 3, then each of those into 2 finished solutions: 4 expansions, then nothing is left.
        assert tree.stopped == "exhausted" and tree.root.exhausted
        assert sum(1 for n in tree.nodes if n.children) == 4
        assert sum(n.terminal for n in tree.nodes) == 6
    assert len(out.samples) == 3 * 6 and {s.finish_reason for s in out.samples} == {"done"}


def beam(**settings: object) -> BeamSettings:
    return BeamSettings.model_validate({"name": "beam", "budgets": [8], "reward_model": "prm", "beam_width": 4, **settings})


def test_beam_search_keeps_the_best_beams_and_expands_each_into_m() -> None:
    from sweep.inference.strategies.beam import run_beam

    engine = ScriptedEngine()
    out = run_beam(PROBLEMS, settings=beam(max_depth=3), engine=engine, scorer=LengthScorer(), generation=GENERATION, seed=0)
    assert engine.calls == 3
    for tree in out.trees:
        per_depth = [[n for n in tree.nodes if n.depth == d] for d in (1, 2, 3)]
        assert [len(nodes) for nodes in per_depth] == [8, 8, 8]  # N candidates a step: 2 beams x 4
        for depth in per_depth[:2]:
            kept = [n for n in depth if n.children]
            # The 2 kept beams are the best-scored (LengthScorer: later steps score higher).
            assert len(kept) == 2 and min(n.score for n in kept) >= max(n.score for n in depth if not n.children)
            assert all(len(n.children) == 4 for n in kept)
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 8 and {n.finish for n in leaves} == {"depth_cap"}


def test_beam_search_stops_once_enough_paths_finished() -> None:
    from sweep.inference.strategies.beam import run_beam

    out = run_beam(
        PROBLEMS, settings=beam(), engine=ScriptedEngine(finish_after=2), scorer=LengthScorer(),
        generation=GENERATION, seed=0,
    )  # fmt: skip
    for tree in out.trees:
        leaves = [n for n in tree.nodes if n.terminal]
        assert len(leaves) == 8 and {n.depth for n in leaves} == {2}  # both beams' 4 children finished
    with pytest.raises(ValueError, match="multiples of beam_width"):
        beam(budgets=[6])


class RefusingScorer(LengthScorer):
    """Refuses (as an engine refuses an input too long for its context) any batch holding a
    path of ``refuse_depth`` steps for problem p1's prompt."""

    def __init__(self, refuse_depth: int) -> None:
        self.refuse_depth = refuse_depth

    def score_last(self, items: Sequence[tuple[str, list[str]]]) -> list[tuple[float, int]]:
        from actors.protocol import RequestFailed

        if any(prompt == "PROMPT p1:" and len(steps) == self.refuse_depth for prompt, steps in items):
            raise RequestFailed("prompt longer than max_model_len")
        return super().score_last(items)


def test_nodes_the_reward_model_refuses_end_as_errors_and_the_search_goes_on() -> None:
    problems = [
        PromptedProblem(
            Problem(dataset="d", problem_id=f"p{i}", question="2+2?", answer="4", grader="numeric"), None, f"PROMPT p{i}:"
        )
        for i in range(3)
    ]
    out = run_rebase(
        problems, settings=rebase(max_depth=3), engine=ScriptedEngine(), scorer=RefusingScorer(refuse_depth=2),
        generation=GENERATION, seed=0,
    )  # fmt: skip
    by_problem = {t.problem.problem.problem_id: t for t in out.trees}
    refused = [n for n in by_problem["p1"].nodes if n.depth == 2]
    assert refused and all(n.finish == "error" and n.terminal and "reward model" in (n.error or "") for n in refused)
    for pid in ("p0", "p2"):  # scored in the same batches, untouched by p1's refusals
        tree = by_problem[pid]
        assert not [n for n in tree.nodes if n.error] and {n.finish for n in tree.nodes if n.terminal} == {"depth_cap"}
    assert len(out.samples) == 3 * 6  # every tree still ends with its budget of leaves
