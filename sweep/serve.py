"""A Ray Serve app over a finished sweep: read-only SQL, the HTML report, and compute-optimal solving.

    python -m sweep.serve results/smoke [--host 127.0.0.1] [--port 8000]
    serve run sweep.serve:app_builder output=results/smoke

Routes:
- ``GET /sql?q=SELECT …`` (or ``POST /sql`` with ``{"query": …}``): one SELECT over the views
  ``samples``, ``problems``, ``prompts`` and ``nodes``, in the same sandbox as
  ``python -m analysis.query``; rows come back as JSON. Anything else is a 400.
- ``GET /report``: the sweep's HTML report (built on first request when the folder has none).
- ``POST /solve`` with ``{"question": …, "flops_budget": …, "dataset": optional}``: the most
  accurate (model, strategy, method, n) of the sweep whose FLOPs per problem fit the budget
  (``sweep/solve.py``), run on the sweep's engines (started, or found live), answering with the
  answer, the chosen configuration and the FLOPs spent. 422 when nothing fits.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import ray
from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from ray import serve

log = logging.getLogger(__name__)

api = FastAPI(title="scaling-sweep")


class SqlRequest(BaseModel):
    query: str


class SolveRequest(BaseModel):
    question: str = Field(min_length=1)
    flops_budget: float = Field(gt=0, description="FLOPs per problem the answer may cost.")
    dataset: str | None = Field(default=None, description="Whose prompt and frontier to use; default: any.")


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class SweepService:
    """One sweep's results, and (on demand) its engines."""

    def __init__(self, output: str) -> None:
        from sweep.config import SweepConfig
        from sweep.storage import ResultsStore

        self._output = output
        manifest = ResultsStore(output).read_manifest()
        if "config" not in manifest:
            raise ValueError(f"{output}: no manifest.json with a sweep's config")
        self._config = SweepConfig.model_validate(manifest["config"])
        self._accuracy: Any = None
        self._engines: dict[str, Any] = {}
        self._lock = threading.Lock()

    @api.get("/sql")
    def sql_get(self, q: str) -> dict[str, Any]:
        return self._sql(q)

    @api.post("/sql")
    def sql_post(self, request: SqlRequest) -> dict[str, Any]:
        return self._sql(request.query)

    @api.get("/report", response_class=HTMLResponse)
    def report(self) -> str:
        from analysis.report import write_report

        path = Path(self._output) / "report.html"
        if not path.is_file() and write_report(self._output) is None:
            raise HTTPException(status_code=404, detail="the sweep has no samples yet")
        return path.read_text(encoding="utf-8")

    @api.post("/solve")
    def solve(self, request: SolveRequest) -> dict[str, Any]:
        from sweep.solve import NoChoice, choose, solve

        try:
            choice = choose(self._accuracy_table(), flops_budget=request.flops_budget, dataset=request.dataset)
        except NoChoice as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        engine, scorer, reward_params = self._engines_for(choice)
        solution = solve(
            request.question,
            choice=choice,
            config=self._config,
            engine=engine,
            scorer=scorer,
            reward_params=reward_params,
        )
        return solution.to_json()

    def _sql(self, query: str) -> dict[str, Any]:
        import duckdb

        from analysis.query import jsonable
        from analysis.views import QueryRefused, connect_readonly, run_select

        try:
            table = run_select(connect_readonly(self._output), query).to_arrow_table()
        except (QueryRefused, duckdb.Error) as exc:
            raise HTTPException(status_code=400, detail=f"{type(exc).__name__}: {exc}") from None
        return {"columns": table.column_names, "rows": [[jsonable(v) for v in row.values()] for row in table.to_pylist()]}

    def _accuracy_table(self) -> Any:
        from analysis.estimators import compute_accuracy
        from analysis.views import connect

        with self._lock:
            if self._accuracy is None:
                self._accuracy = compute_accuracy(connect(self._output), resamples=100, include_reward_flops=True)
            return self._accuracy

    def _engines_for(self, choice: Any) -> tuple[Any, Any, int]:
        """The policy engine of the chosen model, and its strategy's scorer (reward model engine)."""
        from sweep.engines import resolve_engine_spec
        from sweep.scorers.registry import POLICY_SCORERS, build_scorer

        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        model = next(m for m in self._config.models if m.name == choice.model)
        policy = self._engine(resolve_engine_spec(model, cluster_has_gpus=has_gpus, seed=self._config.seed))
        entry = next(s for s in self._config.strategies if s.label == choice.strategy)
        name = getattr(entry, "reward_model", None)
        if name is None:
            return policy, None, choice.model_params
        prm = next(r for r in self._config.reward_models if r.name == name)
        if prm.kind in POLICY_SCORERS:
            reward, params = policy, choice.model_params
        else:
            spec = resolve_engine_spec(prm, cluster_has_gpus=has_gpus, seed=self._config.seed)
            reward, params = self._engine(spec), spec.params
        return policy, build_scorer(prm.scorer_settings(), engine=reward), params

    def _engine(self, spec: Any) -> Any:
        from sweep.engines import start_engines
        from sweep.scheduler import RemoteEngine

        with self._lock:
            if spec.actor_prefix not in self._engines:
                pool = start_engines(spec, max_restarts=3)  # finds live actors by name, else starts them
                ray.get([h.ready.remote() for h in pool.handles])
                self._engines[spec.actor_prefix] = pool
            return RemoteEngine(self._engines[spec.actor_prefix].handles[0])


def build_app(output: str) -> Any:
    """The Serve application of one results folder."""
    return SweepService.bind(str(Path(output).resolve()) if "://" not in output else output)


def app_builder(args: dict[str, str]) -> Any:
    """For ``serve run sweep.serve:app_builder output=<folder>``."""
    if "output" not in args:
        raise ValueError("pass output=<results folder>")
    return build_app(args["output"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the sweep's results folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if not (Path(args.output) / "manifest.json").is_file() and "://" not in args.output:
        print(f"error: {args.output}: no sweep results (manifest.json) there", file=sys.stderr)
        return 2
    ray.init(address="auto" if _cluster_running() else None, logging_level="WARNING")
    serve.start(http_options={"host": args.host, "port": args.port})
    serve.run(build_app(args.output), name="scaling-sweep", route_prefix="/")
    print(f"serving {args.output} on http://{args.host}:{args.port} (/sql, /report, /solve); Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        serve.shutdown()
    return 0


def _cluster_running() -> bool:
    import os

    return bool(os.environ.get("RAY_ADDRESS"))


if __name__ == "__main__":
    sys.exit(main())
