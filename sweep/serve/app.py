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
Replicas, autoscaling and the SQL limits are options of the app (``sweep/serve/options.py``).
What it leaves out: the command line (``sweep/serve/cli.py``), running statements
(``sweep/serve/sql.py``), starting engines (``sweep/serve/engines.py``) and choosing and running
a configuration (``sweep/serve/solve.py``); this module routes and maps errors to HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import threading
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import ray
from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from ray import serve

from sweep.serve.engines import Engines, NoEngine
from sweep.serve.options import ServeOptions
from sweep.serve.solve import MAX_QUESTION_CHARS
from sweep.serve.sql import QueryFailed, SqlRunner

log = logging.getLogger(__name__)

api = FastAPI(title="scaling-sweep")

MAX_SQL_CHARS = 100_000


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("the question is blank")
    return value


class SqlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_SQL_CHARS)


class SolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    question: Annotated[str, AfterValidator(_not_blank)] = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    flops_budget: float = Field(
        gt=0, description="FLOPs per problem the answer may cost: a finite number > 0."
    )
    dataset: str | None = Field(default=None, description="Whose prompt and frontier to use; default: any.")


@api.exception_handler(RequestValidationError)
async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with values JSON cannot spell (a NaN budget) written as text instead of a 500."""
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})


# Helpers the deployment's methods call are defined (or imported) above it: ``serve.ingress``
# copies the class when this module is imported, with the module globals that exist at that point.


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
        self._lock = threading.Lock()  # the config, the accuracy table and the report
        self._views_lock = threading.Lock()
        self._views: Any = None
        self._version: int | None = None
        self._config, self._run_id = self._read_config()
        self._accuracy: Any = None
        self._report: str | None = None
        self._engines = Engines()
        self._queries = SqlRunner(
            self._current_views,
            max_rows=options.sql_max_rows,
            timeout_s=options.sql_timeout_s,
            workers=options.max_ongoing_requests,
        )
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
        return {
            "output": self._output,
            "run": self._run_id,
            "sql": {
                **self._queries.stats(),
                "max_rows": self._options.sql_max_rows,
                "timeout_s": self._options.sql_timeout_s,
            },
            "engines": self._engines.started(),
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
                facts = gather_facts(connect(self._output, run=self._options.run), self._output)
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
            prompt_question,
            solve,
        )

        accuracy = self._accuracy_table()
        try:
            choice = choose(accuracy, flops_budget=request.flops_budget, dataset=request.dataset)
        except NoChoice as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        # Before any engine: a prompt the engine would refuse is the caller's error, with a message.
        config = self._config
        tokenizer, max_model_len = self._engines.context(choice, config=config)
        prompted = prompt_question(request.question, choice=choice, config=config)
        try:
            check_question_fits(
                prompted, choice=choice, config=config, tokenizer=tokenizer, max_model_len=max_model_len
            )
        except QuestionTooLong as exc:
            raise HTTPException(status_code=413, detail=str(exc)) from None
        try:
            engine, scorer, reward_params = self._engines.for_choice(choice, config=config)
        except NoEngine as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        try:
            solution = solve(
                prompted,
                choice=choice,
                config=config,
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
        from sweep.serve.openai_api import answer_chat
        from sweep.serve.openai_request import OpenAIError

        try:
            body = await request.json()
        except ValueError as exc:
            return JSONResponse(OpenAIError(f"the body is not JSON: {exc}").body(), status_code=400)
        config = self._config
        try:
            answer = await asyncio.to_thread(
                answer_chat,
                body,
                config=config,
                accuracy=self._accuracy_table,
                model_params=lambda name: self._engines.policy_spec(name, config=config).params,
                context=partial(self._engines.context, config=config),
                engines=partial(self._engines.for_choice, config=config),
            )
        except OpenAIError as exc:
            error = exc
        except NoEngine as exc:
            error = OpenAIError(str(exc), status=503, kind="server_error")
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
        try:
            body = await self._queries.run(query)
        except QueryFailed as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        return Response(content=body, media_type="application/json")

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

    def _accuracy_table(self) -> Any:
        self._current_views()
        with self._lock:
            return self._accuracy_locked()


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

