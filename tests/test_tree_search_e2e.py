"""Tree search end to end on the real vLLM CPU engine: REBASE and MCTS with the small model as
its own step-token PRM; the nodes table forms valid trees, REBASE ends with exactly N leaves,
MCTS spends exactly its budget, costs add up, and resume and a killed engine lose no row."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from sweep.results.schema import NODES, SAMPLES

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "tests" / "configs" / "tree.yaml"
FINISHES = {"done", "depth_cap", "token_cap", "error"}


@pytest.fixture
def tree_config(tmp_path: Path) -> Any:
    from sweep.config import load_config

    return load_config(TREE).model_copy(update={"output": str(tmp_path / "out")})


def read(output: Path, table: str) -> list[dict[str, Any]]:
    files = sorted(str(f) for f in (output / table).rglob("*.parquet"))
    schema = SAMPLES if table == "samples" else NODES
    return ds.dataset(files, format="parquet", schema=schema).to_table().to_pylist()


def check_trees(output: Path, config: Any) -> None:
    """The invariants every finished tree-search sweep must satisfy."""
    samples, nodes = read(output, "samples"), read(output, "nodes")
    problems = sum(d.count for d in config.datasets)
    trees: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for node in nodes:
        trees[node["tree_id"]].append(node)
    assert len(trees) == problems * 3  # one tree per problem per strategy

    for tree_id, rows in trees.items():
        by_id = {r["node_id"]: r for r in rows}
        assert len(by_id) == len(rows), f"{tree_id}: duplicated nodes"
        roots = [r for r in rows if r["parent_id"] is None]
        assert [r["node_id"] for r in roots] == [0] and roots[0]["depth"] == 0
        for r in rows:
            if r["parent_id"] is not None:
                parent = by_id[r["parent_id"]]
                assert r["depth"] == parent["depth"] + 1
                assert not parent["terminal"], "a finished node is never expanded"
                assert r["path_tokens"] == parent["path_tokens"] + r["tokens"]
                assert r["score"] is not None and 0.0 <= r["score"] <= 1.0
            assert r["depth"] <= 5 and r["path_tokens"] <= 96
            if r["terminal"]:
                assert r["finish"] in FINISHES
        children = {r["parent_id"] for r in rows}
        terminal = [r for r in rows if r["terminal"]]
        strategy, budget = rows[0]["strategy"], rows[0]["budget"]
        if strategy == "rebase":
            assert budget == 4 and len(terminal) == 4, "REBASE ends with exactly N finished leaves"
        elif strategy == "beam":
            assert 2 <= len(terminal) <= 4  # between N / M and N finished beams
            for depth in {r["depth"] for r in rows if r["depth"] > 0}:
                assert sum(r["depth"] == depth for r in rows) <= 4  # N candidates a step at most
        else:
            expanded = [r for r in rows if r["node_id"] in children]
            if len(expanded) < budget:  # stopped early only when every path had finished
                assert all(r["terminal"] for r in rows if r["node_id"] not in children and r["parent_id"] is not None)
            else:
                assert len(expanded) == budget == 3, "MCTS spends exactly its expansion budget"
            assert len(by_id[0]["step"]) == 0 and sum(r["parent_id"] == 0 for r in rows) == 3  # root_children

    # Leaves are the samples: linked by node id, with the path's scores.
    leaves = defaultdict(list)
    for s in samples:
        leaves[(s["shard_id"], s["problem_id"])].append(s)
        assert s["budget"] is not None and s["node_id"] is not None and s["reward_model"] == "smol-prm"
    assert len(leaves) == problems * 3
    for (shard_id, problem_id), rows in leaves.items():
        tree = {r["node_id"]: r for r in trees[f"{shard_id}/{problem_id}"]}
        assert sorted(s["sample_index"] for s in rows) == list(range(len(rows))), "no duplicated or lost row"
        for s in rows:
            leaf = tree[s["node_id"]]
            assert leaf["parent_id"] is not None and s["completion_tokens"] == leaf["path_tokens"]
            assert s["score_last"] == pytest.approx(leaf["score"])
            assert len(s["step_scores"]) == leaf["depth"]
            if leaf["terminal"]:
                assert s["extracted_answer"] == leaf["answer"] and s["correct"] == leaf["correct"]
        if rows[0]["strategy"] == "rebase":
            assert len(rows) == 4
        # A problem's leaves carry its tree's whole compute between them.
        values = tree.values()
        assert sum(s["completion_flops"] for s in rows) == pytest.approx(sum(n["policy_flops"] for n in values))
        assert sum(s["reward_flops"] for s in rows) == pytest.approx(sum(n["reward_flops"] for n in values))
        # The root prompt is charged whole on every leaf (once per problem, as for sampling);
        # the context later expansions re-sent and the cache missed is context_flops.
        params = rows[0]["model_params"]
        assert {s["prompt_flops"] for s in rows} == {2.0 * params * rows[0]["prompt_tokens"]}
        assert rows[0]["prompt_tokens"] > 0
        deeper = [n for n in values if n["depth"] >= 2]
        assert sum(s["context_flops"] for s in rows) == pytest.approx(sum(n["prefix_flops"] for n in deeper))
        assert sum(n["reward_flops"] for n in values) > 0


def test_tree_search_sweep(engine_pool: Any, tree_config: Any) -> None:
    from analysis.estimators import compute_accuracy
    from analysis.views import connect
    from sweep.driver import run_sweep

    outcome = run_sweep(tree_config, show_progress=False, write_report=False)
    output = Path(tree_config.output)
    assert not outcome.shards_failed and outcome.shards_skipped == 0
    check_trees(output, tree_config)

    curves = compute_accuracy(connect(str(output)), resamples=5)
    rebase = curves[curves["strategy"] == "rebase"]
    assert set(rebase["n"]) == {4} and {"majority_vote", "weighted_vote_last", "best_of_n_min"} <= set(rebase["method"])
    # The search used the PRM, so every method of a tree search pays for it.
    assert (rebase["reward_flops_per_problem"] > 0).all() and (rebase["problems"] == 4).all()
    assert set(curves.loc[curves["strategy"] == "mcts", "n"]) == {3}

    summary = {(r["strategy"], r["n"]) for r in outcome.summary.to_pylist()}
    assert summary == {("rebase", 4), ("mcts", 3), ("beam", 4)}

    # Resume: a shard whose samples file is gone (a crash after its nodes were written) runs
    # again; its nodes file is replaced, never appended to.
    lost = min((output / "samples" / "model=smollm2-135m-instruct" / "strategy=rebase").glob("*.parquet"))
    lost.unlink()
    again = run_sweep(tree_config, show_progress=False, write_report=False)
    assert again.shards_skipped == again.shards_total - 1 and not again.shards_failed
    check_trees(output, tree_config)


def test_engine_killed_mid_tree_search(engine_pool: Any, tree_config: Any) -> None:
    import ray

    from sweep.driver import run_sweep

    config = tree_config.model_copy(update={"scheduler": tree_config.scheduler.model_copy(update={"shard_size": 1})})
    output = Path(config.output)
    outcome: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run_sweep(config, show_progress=False, write_report=False)))
    worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((output / "samples").rglob("*.parquet")):
        time.sleep(0.05)
    ray.kill(engine_pool.handles[0], no_restart=False)  # mid-search: in-flight shards re-run
    killed_at = len(list((output / "samples").rglob("*.parquet")))
    worker.join(timeout=600)
    assert killed_at < 12, "the kill must land mid-sweep"
    assert not outcome["result"].shards_failed
    assert outcome["result"].retries >= 1, "the shards in flight on the killed engine ran again"
    check_trees(output, config)
    ray.get(engine_pool.handles[0].ready.remote(), timeout=300)
