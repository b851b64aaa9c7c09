"""Symbolic grading of math answers with math-verify, in a process pool with per-item timeouts.

math-verify's own timeouts use ``signal.alarm``, which fails outside the main thread (Ray
workers, async actors) and cannot interrupt a sympy computation stuck in C code. So its
timeouts are disabled (``None``) and each item runs as a task in a ``pebble.ProcessPool``
that kills a worker whose item runs past ``timeout_s``; that item is graded incorrect.

Answer keys: the parsed expression with floats made exact (``0.5`` -> ``1/2``), a bare
``x = v`` reduced to ``v``, then ``str(sympy.simplify(expr))``. So ``\\frac{1}{2}``, ``0.5``
and ``1/2`` share the key ``"1/2"``, and ``x+1`` / ``1+x`` share ``"x + 1"``. Text that does
not parse falls back to its normalised string. Keys only group votes; correctness is
math-verify's ``verify`` against the reference, not key equality.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from pebble import ProcessPool

from sweep.answers import normalize_text

log = logging.getLogger(__name__)

# (reference answer, extracted answer) -> (answer key, correct)
MathItemFn = Callable[[str, str], tuple[str, bool]]

DEFAULT_TIMEOUT_S = 5.0


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that we disabled its signal timeouts; we know."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


def _init_worker() -> None:
    """Import math-verify before the first task so imports do not count against its timeout."""
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())
    import math_verify  # noqa: F401


def _as_latex(answer: str) -> str:
    # math-verify extracts from delimited LaTeX; a bare "\frac{1}{2}" would not parse.
    return f"\\boxed{{{answer}}}"


def _first_expression(parsed: list[Any]) -> Any | None:
    return next((item for item in parsed if not isinstance(item, str)), None)


def canonical_key(expr: Any) -> str:
    """A string shared by equal parsed answers (see module docstring)."""
    import sympy

    if isinstance(expr, sympy.Eq) and isinstance(expr.lhs, sympy.Symbol):
        expr = expr.rhs
    try:
        expr = expr.doit()
    except Exception:  # doit is best-effort on unusual objects (sets, matrices)
        pass
    floats = expr.atoms(sympy.Float) if hasattr(expr, "atoms") else set()
    if floats:
        expr = expr.xreplace({f: sympy.Rational(str(f)) for f in floats})
    try:
        expr = sympy.simplify(expr)
    except Exception:  # simplify rejects some set/interval objects; their str is canonical enough
        pass
    return str(expr)


def grade_math_item(reference: str, extracted: str) -> tuple[str, bool]:
    """Key of ``extracted`` and whether it equals ``reference``; runs inside a pool worker."""
    from math_verify import parse, verify

    gold = parse(_as_latex(reference), parsing_timeout=None)
    pred = parse(_as_latex(extracted), parsing_timeout=None)
    expression = _first_expression(pred)
    key = canonical_key(expression) if expression is not None else normalize_text(extracted)
    if gold and pred:
        correct = bool(verify(gold, pred, timeout_seconds=None))
    else:
        correct = normalize_text(extracted) == normalize_text(reference)
    return key, correct


def _default_workers() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cpus))


class MathGrader:
    """Grades (reference, answer) pairs in a lazily started, reused process pool.

    ``item_fn`` must be a picklable module-level function (workers are spawned, not forked,
    so they are safe to start from threads and Ray actors).
    """

    def __init__(
        self,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_workers: int | None = None,
        item_fn: MathItemFn = grade_math_item,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_workers = max_workers or _default_workers()
        self._item_fn = item_fn
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def _get_pool(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                self._pool = ProcessPool(
                    max_workers=self.max_workers,
                    initializer=_init_worker,
                    context=multiprocessing.get_context("spawn"),
                )
            return self._pool

    def grade(
        self, answers: Sequence[str | None], references: Sequence[str]
    ) -> list[tuple[str | None, bool]]:
        """(key, correct) per answer; ``None`` answers give ``(None, False)`` without a task."""
        if len(answers) != len(references):
            raise ValueError(f"{len(answers)} answers for {len(references)} references")
        if all(answer is None for answer in answers):
            return [(None, False)] * len(answers)
        pool, timeout = self._get_pool(), self.timeout_s
        # Schedule the whole batch first so items run in parallel across workers.
        futures = [
            None if answer is None else pool.schedule(self._item_fn, args=(ref, answer), timeout=timeout)
            for answer, ref in zip(answers, references, strict=True)
        ]
        results: list[tuple[str | None, bool]] = []
        for answer, future in zip(answers, futures, strict=True):
            if answer is None or future is None:
                results.append((None, False))
                continue
            try:
                key, correct = future.result()
            except FutureTimeoutError:
                log.warning("math grading timed out after %.1fs on answer %.80r", self.timeout_s, answer)
                key, correct = normalize_text(answer), False
            except Exception as exc:  # a crashed worker or a math-verify bug grades one item wrong
                log.warning("math grading failed on answer %.80r: %r", answer, exc)
                key, correct = normalize_text(answer), False
            results.append((key, correct))
        return results

    def close(self) -> None:
        """Stop the workers; a later ``grade`` starts a fresh pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            pool.join()

    def __enter__(self) -> MathGrader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@functools.cache
def shared_math_grader() -> MathGrader:
    """The process's default grader, created on first use and closed at interpreter exit."""
    grader = MathGrader()
    atexit.register(grader.close)
    return grader
