"""A Ray Serve app over a finished sweep: read-only SQL, the HTML report, and compute-optimal solving.

    python -m sweep.serve results/smoke [--host 127.0.0.1] [--port 8000] [--run RUN] [--replicas N]
    serve run sweep.serve:app_builder output=results/smoke [run=RUN] [max_replicas=4] ...

Routes:
- ``GET /sql?q=SELECT …`` (or ``POST /sql`` with ``{"query": …}``): one SELECT over the views
  ``samples``, ``problems``, ``prompts`` and ``nodes`` of one run (``all_samples``, ``all_nodes``
  and ``runs`` beside them), in the same sandbox as ``python -m analysis.query``. Rows come back
  as JSON, at most ``sql_max_rows`` of them (``truncated`` and ``note`` say when the result was
  cut); a statement stops at ``sql_timeout_s``, and when its HTTP client disconnects. Anything
  but one SELECT, a timeout or a failing query is a 400 with a message.
- ``GET /report``: the run's HTML report.
- ``POST /solve`` with ``{"question": …, "flops_budget": …, "dataset": optional}``: the most
  accurate (model, strategy, method, n) of the run whose FLOPs per problem fit the budget
  (``sweep/serve/solve.py``), run on the sweep's engines (started, or found live), answering with the
  answer, the chosen configuration and the FLOPs spent. 422 when the input is invalid (a budget
  that is not a finite number > 0, an empty question) or nothing fits; 413 when the question's
  prompt does not fit the chosen model's context, checked with its tokenizer before any engine
  is touched.
- ``GET /v1/models``, ``POST /v1/chat/completions``: OpenAI-compatible; the strategy is chosen by
  extra body fields (``strategy``, ``method``, ``budget``, or ``flops_budget``), errors come in
  OpenAI's format (``sweep/serve/openai_api.py``).
- ``GET /status``: the run served, the SQL limits, queries running and stopped, engines started.

Each replica builds the views once (again only when ``manifest.json`` changes) and gives every
request its own cursor, run on a thread of its own, so one replica answers many queries at once.
Replicas, autoscaling and the SQL limits are options of the app (``ServeOptions``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from ray import serve

from analysis.sandbox import DEFAULT_MAX_ROWS, DEFAULT_MEMORY_LIMIT, DEFAULT_TIMEOUT_S, Watchdog

log = logging.getLogger(__name__)

api = FastAPI(title="scaling-sweep")

APP_NAME = "scaling-sweep"
MAX_QUESTION_CHARS = 100_000  # beyond any context a model of the sweep could read; tokens are checked after
MAX_SQL_CHARS = 100_000
ENGINE_START_TIMEOUT_S = 900.0  # loading a model; a GPU node may first have to come up
SOLVE_TIMEOUT_S = 600.0  # deadline of one /solve engine call: a question, not a shard


class ServeOptions(BaseModel):
    """Options of the Serve app: ``build_app(**options)``, ``app_builder``'s ``key=value`` args, CLI flags."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    output: str = Field(description="The sweep's results folder.")
    run: str | None = Field(
        default=None, description="Run id whose grid /sql, /report and /solve read; default: the latest."
    )
    num_replicas: int | None = Field(
        default=None, ge=1, le=1024, description="Fixed replica count (default 1)."
    )
    min_replicas: int | None = Field(
        default=None, ge=0, le=1024, description="Autoscaling floor (needs max_replicas)."
    )
    max_replicas: int | None = Field(
        default=None, ge=1, le=1024, description="Autoscaling ceiling; setting it turns autoscaling on."
    )
    target_ongoing_requests: float = Field(default=8.0, gt=0, description="Autoscaling target per replica.")
    max_ongoing_requests: int = Field(
        default=32, ge=1, le=10_000, description="Requests one replica runs at once."
    )
    sql_max_rows: int | None = Field(
        default=DEFAULT_MAX_ROWS, ge=1, description="/sql row cap; None lifts it."
    )
    sql_timeout_s: float | None = Field(
        default=DEFAULT_TIMEOUT_S, gt=0, description="/sql statement timeout; None lifts it."
    )
    sql_memory_limit: str = Field(
        default=DEFAULT_MEMORY_LIMIT, description="DuckDB memory limit of one replica's queries."
    )

    @field_validator("run", "sql_max_rows", "sql_timeout_s", mode="before")
    @classmethod
    def _none_spelled_out(cls, value: Any) -> Any:
        # `serve run ... sql_timeout_s=none` passes strings.
        return None if isinstance(value, str) and value.strip().lower() in ("", "none", "null") else value

    @model_validator(mode="after")
    def _one_scaling_mode(self) -> ServeOptions:
        if self.max_replicas is None and self.min_replicas is not None:
            raise ValueError("min_replicas needs max_replicas (autoscaling)")
        if self.max_replicas is not None and self.num_replicas is not None:
            raise ValueError("set num_replicas (fixed) or min_replicas/max_replicas (autoscaling), not both")
        if self.max_replicas is not None and (self.min_replicas or 0) > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of ``SweepService.options``."""
        scaling: dict[str, Any]
        if self.max_replicas is not None:
            scaling = {
                "autoscaling_config": {
                    "min_replicas": self.min_replicas if self.min_replicas is not None else 1,
                    "max_replicas": self.max_replicas,
                    "target_ongoing_requests": self.target_ongoing_requests,
                }
            }
        else:
            scaling = {"num_replicas": self.num_replicas or 1}
        return {**scaling, "max_ongoing_requests": self.max_ongoing_requests}


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_SQL_CHARS)


class SolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    flops_budget: float = Field(
        gt=0, description="FLOPs per problem the answer may cost: a finite number > 0."
    )
    dataset: str | None = Field(default=None, description="Whose prompt and frontier to use; default: any.")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the question is blank")
        return value


@api.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with values JSON cannot spell (a NaN budget) written as text instead of a 500."""
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})


# Helpers the deployment's methods call are defined above it: ``serve.ingress`` copies the class
# when this module is imported, with the module globals that exist at that point.


def _max_model_len(spec: Any) -> int | None:
    """The context the engine will have: its ``max_model_len`` (the CPU default included), capped by
    what the model's config.json declares; None when neither is known (then vLLM decides)."""
    from actors.models import model_context_length

    lengths = []
    if isinstance(spec.engine_kwargs.get("max_model_len"), int):
        lengths.append(spec.engine_kwargs["max_model_len"])
    declared = model_context_length(spec.path, spec.path)
    if declared is not None:
        lengths.append(declared[0])
    return min(lengths) if lengths else None


def _cluster_has_gpus() -> bool:
    return ray.cluster_resources().get("GPU", 0) > 0


def _manifest_version(output: str) -> int | None:
    try:
        return os.stat(Path(output) / "manifest.json").st_mtime_ns
    except OSError:
        return None


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats written as text: JSON has no NaN, and a 500 is no answer."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@serve.deployment(ray_actor_options={"num_cpus": 0}, graceful_shutdown_timeout_s=5)
@serve.ingress(api)
class SweepService:
    """One sweep run's results, and (on demand) its engines."""

    def __init__(self, options: ServeOptions) -> None:
        self._options = options
        self._output = options.output
        self._lock = threading.Lock()  # engines, tokenizers, the accuracy table
        self._views_lock = threading.Lock()
        self._views: Any = None
        self._version: int | None = None
        self._config, self._run_id = self._read_config()
        self._accuracy: Any = None
        self._report: str | None = None
        self._engines: dict[str, Any] = {}
        self._tokenizers: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=options.max_ongoing_requests, thread_name_prefix="sql")
        self._watchdog = Watchdog()  # one thread times out and cancels every request's statement
        self._stats = {"running": 0, "done": 0, "timed_out": 0, "cancelled": 0}
        self._seconds: deque[float] = deque(maxlen=1000)  # the last statements' time on the replica
        self._stats_lock = threading.Lock()
        self._current_views()  # build now: a bad folder or run fails the deployment, not the first request

    @api.get("/sql")
    async def sql_get(self, q: str) -> Response:
        if not q.strip() or len(q) > MAX_SQL_CHARS:
            raise HTTPException(
                status_code=422, detail=f"q must be one SELECT of 1 to {MAX_SQL_CHARS:,} characters"
            )
        return await self._sql(q)

    @api.post("/sql")
    async def sql_post(self, request: SqlRequest) -> Response:
        return await self._sql(request.query)

    @api.get("/status")
    def status(self) -> dict[str, Any]:
        with self._stats_lock:
            stats = dict(self._stats)
            recent = sorted(self._seconds)
        if recent:  # time from taking a cursor to the JSON body, without HTTP and Serve
            stats["recent_p50_ms"] = recent[len(recent) // 2] * 1000
        return {
            "output": self._output,
            "run": self._run_id,
            "sql": {
                **stats,
                "max_rows": self._options.sql_max_rows,
                "timeout_s": self._options.sql_timeout_s,
            },
            "engines": sorted(self._engines),
        }

    @api.get("/report", response_class=HTMLResponse)
    def report(self) -> str:
        from analysis.report import build_report, gather_facts
        from analysis.views import connect

        self._current_views()  # a new run resets the cached report
        with self._lock:
            if self._report is None:
                accuracy = self._accuracy_locked()
                if accuracy.empty:
                    raise HTTPException(status_code=404, detail="the run has no samples yet")
                run = f" (run {self._run_id})" if self._run_id else ""
                facts = gather_facts(connect(self._output, run=self._options.run), self._output, run=self._options.run)
                self._report = build_report(
                    accuracy, title=f"Inference scaling report: {self._output}{run}", facts=facts
                )
            return self._report

    @api.post("/solve")
    def solve(self, request: SolveRequest) -> dict[str, Any]:
        from actors.protocol import RequestFailed
        from actors.remote import EngineTimeout
        from sweep.serve.solve import (
            NoChoice,
            QuestionTooLong,
            SolveFailed,
            check_question_fits,
            choose,
            solve,
        )

        self._current_views()
        with self._lock:
            accuracy = self._accuracy_locked()
        try:
            choice = choose(accuracy, flops_budget=request.flops_budget, dataset=request.dataset)
        except NoChoice as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        # Before any engine: a prompt the engine would refuse is the caller's error, with a message.
        spec = self._policy_spec(choice)
        try:
            check_question_fits(
                request.question,
                choice=choice,
                config=self._config,
                tokenizer=self._tokenizer(spec.path),
                max_model_len=_max_model_len(spec),
            )
        except QuestionTooLong as exc:
            raise HTTPException(status_code=413, detail=str(exc)) from None
        engine, scorer, reward_params = self._engines_for(choice)
        try:
            solution = solve(
                request.question,
                choice=choice,
                config=self._config,
                engine=engine,
                scorer=scorer,
                reward_params=reward_params,
            )
        except (SolveFailed, RequestFailed) as exc:  # refused by the engine; it goes on serving
            raise HTTPException(status_code=422, detail=f"the engine refused the question: {exc}") from None
        except EngineTimeout as exc:
            raise HTTPException(status_code=504, detail=str(exc)) from None
        except ray.exceptions.RayActorError as exc:  # restarting after a crash: try again shortly
            raise HTTPException(
                status_code=503, detail=f"the engine is restarting: {exc}", headers={"Retry-After": "30"}
            ) from None
        return _finite(solution.to_json())

    # --- the OpenAI-compatible routes (sweep/serve/openai_api.py) ---------------------------------------

    @api.get("/v1/models")
    def openai_models(self) -> dict[str, Any]:
        from sweep.serve.openai_api import model_list

        return model_list(self._config, created=(self._version or 0) // 10**9)

    @api.post("/v1/chat/completions")
    async def openai_chat(self, request: Request) -> JSONResponse:
        from sweep.serve.openai_api import OpenAIError, answer_chat

        try:
            body = await request.json()
        except ValueError as exc:
            return JSONResponse(OpenAIError(f"the body is not JSON: {exc}").body(), status_code=400)
        try:
            answer = await asyncio.to_thread(
                answer_chat,
                body,
                config=self._config,
                accuracy=self._accuracy_table,
                model_params=lambda name: self._policy_spec_of(name).params,
                context=self._context,
                engines=self._engines_for,
            )
        except OpenAIError as exc:
            error = exc
        except HTTPException as exc:  # no engine (503)
            error = OpenAIError(str(exc.detail), status=exc.status_code, kind="server_error")
        except ray.exceptions.RayActorError as exc:
            error = OpenAIError(f"the engine is restarting: {exc}", status=503, kind="server_error")
        except Exception as exc:  # noqa: BLE001 - a client gets OpenAI's format, even for our bugs
            log.exception("chat completion failed")
            error = OpenAIError(f"{type(exc).__name__}: {exc}", status=500, kind="server_error")
        else:
            return JSONResponse(answer)
        return JSONResponse(error.body(), status_code=error.status)

    # --- /sql ---------------------------------------------------------------------------------

    async def _sql(self, query: str) -> Response:
        import duckdb

        from analysis.sandbox import QueryRefused

        cancel = threading.Event()
        job = self._pool.submit(self._run_query, query, cancel)
        try:
            body = await asyncio.wrap_future(job)
        except asyncio.CancelledError:
            # Serve cancels the request when its HTTP client disconnects: stop the query too
            # (a job still queued sees the flag and never starts).
            cancel.set()
            with self._stats_lock:
                self._stats["cancelled"] += 1
            raise
        except (QueryRefused, duckdb.Error) as exc:
            raise HTTPException(status_code=400, detail=f"{type(exc).__name__}: {exc}") from None
        return Response(content=body, media_type="application/json")

    def _run_query(self, query: str, cancel: threading.Event) -> bytes:
        """On a worker thread: the query on its own cursor, and the JSON body of its rows."""
        from analysis.query import jsonable
        from analysis.sandbox import QueryTimeout, run_select

        start = time.perf_counter()
        cursor = self._current_views().cursor()
        with self._stats_lock:
            self._stats["running"] += 1
        try:
            selection = run_select(
                cursor,
                query,
                max_rows=self._options.sql_max_rows,
                timeout_s=self._options.sql_timeout_s,
                cancel=cancel,
                watchdog=self._watchdog,
            )
        except QueryTimeout:
            with self._stats_lock:
                self._stats["timed_out"] += 1
            raise
        finally:
            cursor.close()
            with self._stats_lock:
                self._stats["running"] -= 1
                self._stats["done"] += 1
        table = selection.table
        body = {
            "columns": table.column_names,
            "rows": [[jsonable(v) for v in row.values()] for row in table.to_pylist()],
            "truncated": selection.truncated,
            "note": selection.note,
        }
        encoded = json.dumps(body, default=str, allow_nan=False).encode()
        with self._stats_lock:
            self._seconds.append(time.perf_counter() - start)
        return encoded

    def _current_views(self) -> Any:
        """The replica's read-only views; rebuilt (and the caches reset) when manifest.json changes."""
        from analysis.sandbox import connect_readonly

        version = _manifest_version(self._output)
        with self._views_lock:
            if self._views is None or version != self._version:
                self._views = connect_readonly(
                    self._output, run=self._options.run, memory_limit=self._options.sql_memory_limit
                )
                if self._version is not None:  # a new run: config, accuracy and report follow it
                    with self._lock:
                        self._config, self._run_id = self._read_config()
                        self._accuracy = None
                        self._report = None
                self._version = version
            return self._views

    # --- /solve and /report -----------------------------------------------------------------------

    def _read_config(self) -> tuple[Any, str | None]:
        """The run's sweep config (the manifest's own for a folder with no recorded runs) and its id."""
        from sweep.config import SweepConfig
        from sweep.results.runs import select_run
        from sweep.results.store import ResultsStore

        manifest = ResultsStore(self._output).read_manifest()
        record = select_run(manifest, self._options.run)
        config = (record or {}).get("config") or manifest.get("config")
        if config is None:
            raise ValueError(f"{self._output}: no manifest.json with a sweep's config")
        return SweepConfig.model_validate(config), (record or {}).get("run_id")

    def _accuracy_locked(self) -> Any:
        """The run's accuracy table, computed once (call with ``self._lock`` held)."""
        from analysis.estimators import compute_accuracy
        from analysis.views import connect

        if self._accuracy is None:
            self._accuracy = compute_accuracy(
                connect(self._output, run=self._options.run), resamples=100, include_reward_flops=True
            )
        return self._accuracy

    def _policy_spec(self, choice: Any) -> Any:
        return self._policy_spec_of(choice.model)

    def _policy_spec_of(self, name: str) -> Any:
        from actors.spec import resolve_engine_spec

        model = next(m for m in self._config.models if m.name == name)
        return resolve_engine_spec(model, cluster_has_gpus=_cluster_has_gpus(), seed=self._config.seed)

    def _context(self, choice: Any) -> tuple[Any, int | None]:
        """The chosen model's tokenizer and context length, without an engine."""
        spec = self._policy_spec(choice)
        return self._tokenizer(spec.path), _max_model_len(spec)

    def _accuracy_table(self) -> Any:
        self._current_views()
        with self._lock:
            return self._accuracy_locked()

    def _tokenizer(self, path: str) -> Any:
        """The model's tokenizer, loaded once per replica by transformers (no engine)."""
        with self._lock:
            if path not in self._tokenizers:
                from transformers import AutoTokenizer

                self._tokenizers[path] = AutoTokenizer.from_pretrained(path)
            return self._tokenizers[path]

    def _engines_for(self, choice: Any) -> tuple[Any, Any, int]:
        """The policy engine of the chosen model, and its strategy's scorer (reward model engine)."""
        from actors.spec import resolve_engine_spec
        from sweep.inference.scorers.registry import build_scorer

        has_gpus = _cluster_has_gpus()
        policy = self._engine(self._policy_spec(choice))
        entry = next(s for s in self._config.strategies if s.label == choice.strategy)
        name = entry.reward_model
        if name is None:
            return policy, None, choice.model_params
        prm = next(r for r in self._config.reward_models if r.name == name)
        if prm.reads_policy:
            reward, params = policy, choice.model_params
        else:
            spec = resolve_engine_spec(prm, cluster_has_gpus=has_gpus, seed=self._config.seed)
            reward, params = self._engine(spec), spec.params
        return policy, build_scorer(prm.scorer_settings(), engine=reward), params

    def _engine(self, spec: Any) -> Any:
        from actors.pool import start_engines
        from actors.remote import RemoteEngine

        with self._lock:
            if spec.actor_prefix not in self._engines:
                pool = start_engines(spec, max_restarts=3)  # finds live actors by name, else starts them
                if pool.unplaceable is not None:
                    raise HTTPException(status_code=503, detail=pool.unplaceable)
                try:
                    ray.get([h.ready.remote() for h in pool.handles], timeout=ENGINE_START_TIMEOUT_S)
                except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError) as exc:
                    pool.shutdown()
                    raise HTTPException(
                        status_code=503, detail=f"the engine of {spec.model} did not start: {exc}"
                    ) from None
                self._engines[spec.actor_prefix] = pool
            return RemoteEngine(self._engines[spec.actor_prefix].handles[0], timeout_s=SOLVE_TIMEOUT_S)


def build_app(output: str, **options: Any) -> Any:
    """The Serve application of one results folder; ``options`` are ``ServeOptions``' fields."""
    output = str(Path(output).resolve()) if "://" not in output else output
    settings = ServeOptions(output=output, **options)
    return SweepService.options(**settings.deployment_options()).bind(settings)


def app_builder(args: dict[str, str]) -> Any:
    """For ``serve run sweep.serve:app_builder output=<folder> [run=…] [num_replicas=…] …``."""
    if "output" not in args:
        raise ValueError("pass output=<results folder>")
    return build_app(**args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweep.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the sweep's results folder")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--run", help="run id whose grid the app reads (default: the latest)")
    parser.add_argument("--replicas", type=int, help="fixed number of replicas (default 1)")
    parser.add_argument("--min-replicas", type=int, help="autoscaling floor (with --max-replicas)")
    parser.add_argument("--max-replicas", type=int, help="autoscaling ceiling: turns autoscaling on")
    parser.add_argument(
        "--target-ongoing-requests", type=float, default=8.0, help="autoscaling target per replica"
    )
    parser.add_argument(
        "--max-ongoing-requests", type=int, default=32, help="requests one replica runs at once"
    )
    parser.add_argument("--sql-max-rows", type=int, default=DEFAULT_MAX_ROWS, help="/sql row cap")
    parser.add_argument(
        "--sql-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="/sql statement timeout, seconds"
    )
    parser.add_argument(
        "--sql-memory-limit", default=DEFAULT_MEMORY_LIMIT, help="DuckDB memory limit per replica"
    )
    parser.add_argument("--no-sql-limit", action="store_true", help="lift /sql's row cap and timeout")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    from pydantic import ValidationError

    from sweep.results.runs import RunNotFound, select_run
    from sweep.results.store import ManifestError, ResultsStore

    if not (Path(args.output) / "manifest.json").is_file() and "://" not in args.output:
        print(f"error: {args.output}: no sweep results (manifest.json) there", file=sys.stderr)
        return 2
    try:
        app = build_app(
            args.output,
            run=args.run,
            num_replicas=args.replicas,
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            target_ongoing_requests=args.target_ongoing_requests,
            max_ongoing_requests=args.max_ongoing_requests,
            sql_max_rows=None if args.no_sql_limit else args.sql_max_rows,
            sql_timeout_s=None if args.no_sql_limit else args.sql_timeout,
            sql_memory_limit=args.sql_memory_limit,
        )
        select_run(ResultsStore(args.output).read_manifest(), args.run)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        print(f"error: {details}", file=sys.stderr)
        return 2
    except (RunNotFound, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    # Ctrl-C raises KeyboardInterrupt wherever the main thread waits (starting Ray, deploying,
    # serving); SIGTERM does the same. Either way the finally clause stops what was started.
    signal.signal(signal.SIGTERM, _interrupt)
    attached = _cluster_running()
    try:
        ray.init(address="auto" if attached else "local", logging_level="WARNING")
        serve.start(http_options={"host": args.host, "port": args.port})
        serve.run(app, name=APP_NAME, route_prefix="/")
        print(
            f"serving {args.output} on http://{args.host}:{args.port} (/sql, /report, /solve); Ctrl-C stops",
            flush=True,
        )
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C while stopping exits at once
        print("stopping", file=sys.stderr, flush=True)
        _stop(attached)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _stop(attached: bool) -> None:
    """Take the app down within a few seconds.

    On a cluster this process joined, only the app goes (other apps and the engines stay), without
    waiting for its replicas' graceful shutdown. A local Ray started here goes whole: its processes,
    Serve's controller, proxy and replicas with them.
    """
    if attached:
        try:
            serve.delete(APP_NAME, _blocking=False)
        except Exception as exc:  # noqa: BLE001 - whatever the cluster says, this process is stopping
            log.warning("could not delete the Serve app: %s", exc)
    ray.shutdown()


def _cluster_running() -> bool:
    return bool(os.environ.get("RAY_ADDRESS"))


if __name__ == "__main__":
    sys.exit(main())
