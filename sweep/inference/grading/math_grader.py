"""Symbolic grading of math answers with math-verify, in a process pool with per-item timeouts.

math-verify's own timeouts use ``signal.alarm``, which fails outside the main thread (Ray
workers, async actors) and cannot interrupt a sympy computation stuck in C code. So its
timeouts are disabled (``None``) and each item runs as a task in a ``pebble.ProcessPool``
that kills a worker whose item runs past ``timeout_s``; that item is graded incorrect and
gets no key (``None``: it casts no vote), since its key was never computed.

One parse per answer gives both its key and its grade (``read_math_answer``):

1. ``prepare_latex`` applies the hand-written rules below to the extracted text;
2. math-verify's ``parse`` reads it (inside ``\\boxed{}``) into a sympy object;
3. ``canonical_value`` makes that object canonical; the key is its string;
4. the grade is ``verify(reference value, that same canonical value)``, or key equality.

So two answers with one key are one canonical value and always get one grade. This is why
math-verify's leniencies that are not transitive are given up: it counts ``5\\%`` equal to
both ``5`` and ``0.05``, and ``0.333333`` equal to ``1/3``, but no key can group 5 with 5% and
5% with 0.05 without also grouping 5 with 0.05. Here floats become exact rationals (``0.5``,
``1/2`` and ``\\frac{2}{4}`` share ``"1/2"``; ``0.333333`` is not ``1/3``) and a percent sign
is dropped (``5\\%`` is ``5``, as in the numeric grader; ``0.05`` is another answer).

math-verify is used as it is for what it reads right: LaTeX (``\\frac``, ``\\dfrac``,
``\\sqrt``, ``\\pi``), brace-less ``\\frac12``, mixed numbers ``2\\frac{1}{2}``, ``\\text{}``
units, degrees, ``\\$``, ``1,234`` and ``10{,}000``, sets, intervals, tuples, matrices,
equations and inequalities, and symbolic equality in ``verify``.

Hand-written rules (``prepare_latex``), each where math-verify is wrong:

- ``10\\,000``, ``10\\ 000`` and thin spaces between thousands groups: math-verify reads them
  as the product 10*0;
- a trailing period, comma or colon: ``18.`` does not parse;
- ``\\text{18 apples}`` and ``\\text{18}``: read as one symbol named "18apples" or "18";
- a plain mixed number ``2 1/2``: read as 3/2;
- a percent sign: see above.

``canonical_value`` also takes ``x = 5`` and ``(x, y) = (2, 3)`` to their right-hand side,
turns math-verify's ordered lists (``3, 2``) into sets (order-free, as in "enter all
solutions"), strips symbol assumptions, and quotes symbol names that would print like
something else (``\\text{1/2}``, a symbol named ``pi``), so that different values never
print alike. Text that does not parse falls back to its normalised string, graded by
equality with the reference's key.
"""

from __future__ import annotations

import atexit
import functools
import logging
import multiprocessing
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from pebble import ProcessPool

from sweep.inference.grading.answers import normalize_text, strip_thousands

log = logging.getLogger(__name__)

# (reference answer, extracted answer) -> (answer key, correct)
MathItemFn = Callable[[str, str], tuple[str, bool]]

DEFAULT_TIMEOUT_S = 5.0

_UNICODE_MINUS = "\u2212"
# "\text{18 apples}" -> number "18", words "apples"
_TEXT_NUMBER = re.compile(
    r"\\(?:text|textbf|textrm|textnormal|mathrm|mathbf)\s*\{"
    r"\s*(-?\d(?:[\d.,/]*\d)?)\s*([A-Za-z][A-Za-z .]*?)?\s*\}"
)
_PERCENT = re.compile(r"\s*(?:\\%|%|\\text\{\s*percent\s*\}|\bpercent\b)")
_PLAIN_MIXED = re.compile(r"(?<![\w.^_}/\\])(\d+)\s+(\d+)\s*/\s*(\d+)(?![\d/])")
_TRAILING_PUNCTUATION = re.compile(r"(?<![.\\])[.,;:]+\s*$")  # not "!": 5! is a factorial
# Symbol names that print as themselves and as nothing else; others are quoted in keys.
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_RESERVED_NAMES = frozenset(
    {"E", "I", "S", "N", "O", "Q", "pi", "oo", "zoo", "nan", "true", "false", "EmptySet",
     "EulerGamma", "Catalan", "GoldenRatio", "TribonacciConstant", "UniversalSet",
     "Naturals", "Naturals0", "Integers", "Rationals", "Reals", "Complexes"}
)  # fmt: skip


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that we disabled its signal timeouts; we know."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


def _init_worker() -> None:
    """Import math-verify before the first task so imports do not count against its timeout."""
    for name in ("math_verify.parser", "math_verify.grader"):
        logging.getLogger(name).addFilter(_DropTimeoutDisabledWarning())
    import math_verify  # noqa: F401


def prepare_latex(answer: str) -> str:
    """The hand-written rules applied before math-verify reads an answer (module docstring)."""
    text = answer.strip().replace(_UNICODE_MINUS, "-")
    text = _TEXT_NUMBER.sub(lambda m: m.group(1) + (f"\\text{{ {m.group(2)}}}" if m.group(2) else ""), text)
    text = _PERCENT.sub("", text)
    text = strip_thousands(text, commas=False)
    text = _PLAIN_MIXED.sub(_mixed_as_latex, text)
    return _TRAILING_PUNCTUATION.sub("", text).strip()


def _mixed_as_latex(match: re.Match[str]) -> str:
    whole, numerator, denominator = match.groups()
    if not 0 < int(numerator) < int(denominator):
        return match.group()  # "2 3/2" is not a mixed number; leave it to math-verify
    return f"{whole}\\frac{{{numerator}}}{{{denominator}}}"


def _as_latex(answer: str) -> str:
    # math-verify extracts from delimited LaTeX; a bare "\frac{1}{2}" would not parse.
    return f"\\boxed{{{answer}}}"


def _first_expression(parsed: list[Any]) -> Any | None:
    return next((item for item in parsed if not isinstance(item, str)), None)


def canonical_value(expr: Any) -> Any:
    """One representative for equal parsed answers; its ``str`` is the key (module docstring)."""
    import sympy
    from latex2sympy2_extended.sets import FiniteSet as ListedSet

    if isinstance(expr, sympy.MatrixBase):
        expr = sympy.ImmutableMatrix(expr)
    if isinstance(expr, sympy.Eq) and _names_unknowns(expr.lhs):
        expr = expr.rhs
    expr = _try(lambda: expr.doit(), expr)  # also drops UnevaluatedExpr
    expr = _try(
        lambda: expr.replace(lambda e: isinstance(e, ListedSet), lambda e: sympy.FiniteSet(*e.args)), expr
    )
    if not isinstance(expr, sympy.Basic):
        return expr
    floats = expr.atoms(sympy.Float)
    if floats:
        expr = expr.xreplace({f: sympy.Rational(str(f)) for f in floats})
    symbols = expr.atoms(sympy.Symbol)
    if symbols:
        expr = expr.xreplace({s: sympy.Symbol(_printable_name(s.name)) for s in symbols})
    return _simplify(expr)


def _names_unknowns(lhs: Any) -> bool:
    import sympy

    if isinstance(lhs, sympy.Symbol):
        return True
    return isinstance(lhs, sympy.Tuple) and all(isinstance(item, sympy.Symbol) for item in lhs)


def _printable_name(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name not in _RESERVED_NAMES:
        return name
    return repr(name)  # "'1/2'" cannot print like the number 1/2


def _simplify(expr: Any) -> Any:
    import sympy

    if isinstance(expr, sympy.Expr):
        return _try(lambda: sympy.simplify(expr), expr)
    if isinstance(expr, (sympy.FiniteSet, sympy.Tuple, sympy.Interval)):
        return _try(lambda: expr.func(*[_simplify(arg) for arg in expr.args]), expr)
    return expr


def _try(step: Callable[[], Any], fallback: Any) -> Any:
    try:
        return step()
    except Exception:  # sympy rejects some steps on unusual objects; they stay as they are
        return fallback


@functools.lru_cache(maxsize=4096)
def read_math_answer(answer: str) -> tuple[Any | None, str]:
    """One parse of an answer: its canonical value (``None`` if it does not parse) and its key.

    Cached per worker: sampled answers repeat, and a problem's reference repeats per sample.
    """
    from math_verify import parse

    prepared = prepare_latex(answer)
    expression = _first_expression(parse(_as_latex(prepared), parsing_timeout=None))
    if expression is None:
        return None, normalize_text(prepared)
    value = canonical_value(expression)
    return value, str(value)


def grade_math_item(reference: str, extracted: str) -> tuple[str, bool]:
    """Key of ``extracted`` and whether it equals ``reference``; runs inside a pool worker.

    The grade depends only on the reference and the key's value: equal keys, equal grades.
    """
    from math_verify import verify

    value, key = read_math_answer(extracted)
    gold, gold_key = read_math_answer(reference)
    if key and key == gold_key:
        correct = True
    elif value is None or gold is None:
        correct = False
    else:
        correct = bool(verify(gold, value, timeout_seconds=None))
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
        """(key, correct) per answer; ``None`` answers give ``(None, False)`` without a task.

        Each distinct (reference, answer) pair is one task: sampled answers repeat. An item that
        times out or crashes its worker is graded ``(None, False)``: wrong, and no vote.
        """
        if len(answers) != len(references):
            raise ValueError(f"{len(answers)} answers for {len(references)} references")
        items = list(  # distinct, in first-seen order
            dict.fromkeys(
                (ref, answer) for answer, ref in zip(answers, references, strict=True) if answer is not None
            )
        )
        if not items:
            return [(None, False)] * len(answers)
        pool, timeout = self._get_pool(), self.timeout_s
        # Schedule the whole batch first so items run in parallel across workers.
        futures = {item: pool.schedule(self._item_fn, args=item, timeout=timeout) for item in items}
        graded: dict[tuple[str, str], tuple[str | None, bool]] = {}
        for item, future in futures.items():
            try:
                key, correct = future.result()
                graded[item] = (key, bool(correct))
            except FutureTimeoutError:
                log.warning("math grading timed out after %.1fs on answer %.80r", self.timeout_s, item[1])
                graded[item] = (None, False)
            except Exception as exc:  # a crashed worker or a math-verify bug grades one item wrong
                log.warning("math grading failed on answer %.80r: %r", item[1], exc)
                graded[item] = (None, False)
        return [
            (None, False) if answer is None else graded[(ref, answer)]
            for answer, ref in zip(answers, references, strict=True)
        ]

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
