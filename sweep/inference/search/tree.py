"""Batched tree expansion and scoring, shared by the tree-search strategies (beam, REBASE, MCTS).

One call expands many nodes of many problems' trees at once: one generation request per
node (n = its number of children, stopping at the step delimiter), all sent in one batch,
so the engine batches every open node of a shard together and a parent's tokens come from
the prefix cache. One call scores every new node with the reward model, also in one batch.

Compute is recorded per node: generated tokens, its share of the uncached context its
request encoded (vLLM reports the cached part), and the reward-model tokens it added.
What it leaves out: choosing which nodes to expand (the strategies do that; their driver,
``sweep/inference/strategies/tree_search.py``, hands them ``grow`` as their ``expand``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from actors.protocol import Completion, Engine, GenerationRequest, RequestFailed
from sweep.data.prompting import PromptedProblem
from sweep.inference.scorers import Scorer, score_apart
from sweep.inference.search.uct import SearchNode


@dataclass(frozen=True)
class ExpansionParams:
    temperature: float
    top_p: float
    step_max_tokens: int  # per step
    max_tokens: int  # per path, from the root: carried from parent to child
    max_depth: int
    delimiter: str  # a step ends here; generation stops at it
    stop: tuple[str, ...] = ()  # the grid's own stop strings: they end a solution


@dataclass
class Tree:
    """One problem's search tree; ``nodes[0]`` is the root (the prompt, no step)."""

    problem: PromptedProblem
    nodes: list[SearchNode] = field(default_factory=list)
    prompt: str | None = None  # rendered by the engine at the first expansion
    prompt_tokens: int = 0
    stopped: str | None = None  # why the search ended before its budget, if it did
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.nodes:
            self.nodes.append(SearchNode(node_id=0, parent=None))

    @property
    def root(self) -> SearchNode:
        return self.nodes[0]


def expand(
    requests: list[tuple[Tree, SearchNode, int]], *, engine: Engine, params: ExpansionParams
) -> list[tuple[Tree, SearchNode]]:
    """Give each (tree, node, k) k new children in one generation batch; returns the children."""
    batch = []
    for index, (tree, node, k) in enumerate(requests):
        assert k > 0 and not node.terminal and node.path_tokens < params.max_tokens
        sampling = {
            "n": k,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": min(params.step_max_tokens, params.max_tokens - node.path_tokens),
            "stop": [params.delimiter, *params.stop],
        }
        if node.parent is None:  # the root: the engine renders the problem's prompt
            batch.append(
                GenerationRequest(
                    request_id=f"{index}",
                    messages=tree.problem.messages,
                    prompt=tree.problem.prompt,
                    sampling=sampling,
                )
            )
        else:
            assert tree.prompt is not None, "the root is expanded first"
            batch.append(
                GenerationRequest(
                    request_id=f"{index}",
                    prompt=tree.prompt + node.text + params.delimiter,
                    sampling=sampling,
                )
            )
    results = engine.generate(batch) if batch else []
    created = []
    for (tree, node, k), result in zip(requests, results, strict=True):
        if node.parent is None:
            tree.prompt, tree.prompt_tokens = result.prompt, result.prompt_tokens
        tree.latency_s += result.latency_s
        uncached = max(result.prompt_tokens - result.cached_tokens, 0)
        for index in range(k):
            completion = result.completions[index] if index < len(result.completions) else None
            child = _child(tree, node, completion, params)
            child.context_tokens = uncached / k
            if completion is None:
                child.error = result.error or "missing completion"
            created.append((tree, child))
    return created


def _child(
    tree: Tree, parent: SearchNode, completion: Completion | None, params: ExpansionParams
) -> SearchNode:
    step = completion.text.strip() if completion else ""
    tokens = completion.tokens if completion else 0
    child = SearchNode(
        node_id=len(tree.nodes),
        parent=parent,
        text=step if parent.parent is None else parent.text + params.delimiter + step,
        depth=parent.depth + 1,
        step=step,
        tokens=tokens,
        path_tokens=parent.path_tokens + tokens,
    )
    child.finish = _finish(child, completion, params)
    child.terminal = child.finish is not None
    parent.children.append(child)
    tree.nodes.append(child)
    return child


def _finish(child: SearchNode, completion: Completion | None, params: ExpansionParams) -> str | None:
    """Why this node ends its path, or None when the search may go on from it."""
    if completion is None:
        return "error"
    step_ended = completion.finish_reason == "length" or (
        completion.finish_reason == "stop" and completion.stop_reason == params.delimiter
    )
    if not step_ended:
        return "done"  # end of sequence, or one of the grid's stop strings
    if child.path_tokens >= params.max_tokens:
        return "token_cap"
    if child.depth >= params.max_depth:
        return "depth_cap"
    return None


def score(nodes: list[tuple[Tree, SearchNode]], *, scorer: Scorer) -> None:
    """Score each new node's last step with the reward model, in one batch.

    A node's reward tokens are what its input adds to its parent's when the scorer's engine
    caches prefixes (the first step's parent is the prompt), else its whole input. Failed
    nodes score 0 without a read; a node the reward model refuses (too long for it) fails
    and ends its path (finish "error"), and the others of the batch are scored.
    """
    cached = scorer.prefix_cached
    live = [(tree, node) for tree, node in nodes if node.error is None]
    read = score_apart(scorer.score_last, [(tree.prompt or "", node.steps) for tree, node in live])
    for (tree, node), outcome in zip(live, read, strict=True):
        assert node.parent is not None
        if isinstance(outcome, RequestFailed):  # the reward model refused this node: its path ends here
            node.error, node.finish, node.terminal = f"reward model: {outcome}", "error", True
            continue
        value, tokens = outcome
        node.score, node.reward_read = value, tokens
        if not cached:
            node.reward_tokens = tokens
            continue
        # Beyond the prompt, as for sampled solutions: the prompt is shared and cached. (The
        # policy's prompt length stands in for the reward model's at the first step.)
        base = node.parent.reward_read if node.parent.parent is not None else tree.prompt_tokens
        node.reward_tokens = max(tokens - base, 0)
    for _, node in nodes:
        if node.error is not None:
            node.score = 0.0


def grow(
    requests: list[tuple[Tree, SearchNode, int]], *, engine: Engine, params: ExpansionParams, scorer: Scorer
) -> dict[int, list[SearchNode]]:
    """One search step for every tree at once: expand, score, and group the new nodes by tree
    (``id(tree)`` -> its new nodes, in creation order)."""
    created = expand(requests, engine=engine, params=params)
    score(created, scorer=scorer)
    grown: dict[int, list[SearchNode]] = {}
    for tree, node in created:
        grown.setdefault(id(tree), []).append(node)
    return grown
