"""Problems: load a configured dataset into a sorted, stable list of ``Problem`` records.

A ``datasets:`` entry is validated by its settings model (``sweep.data.settings``, one per
``source``); its loader is registered by that ``source`` in ``LOADERS``: how its problems are
read, and where its few-shot examples come from (a separate generator stream for arithmetic,
a fixed built-in set for the others). Sources: GSM8K and MATH JSONL files, generic
JSONL/Parquet with a field mapping, the Hugging Face hub (optional ``datasets`` package), and
the built-in arithmetic generator (``sweep.data.arithmetic``). Every problem names the grader
its dataset declares (``.grader``), a key into ``GRADERS``; a MATH record without an
``answer`` field gets the last ``\\boxed{}`` of its solution, read by ``sweep.data.boxed`` as
completions' boxed answers are.

Problems are sorted by ``problem_id``; ``limit`` then keeps a subset drawn with
``random.Random(dataset.seed)`` and re-sorted, so ids and subsets are stable across runs
and machines. Prompt rendering and grading live elsewhere (``sweep.data.prompting``,
``sweep.inference.grading.graders``); this module only reads and validates data.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.data.arithmetic import generate_items
from sweep.data.boxed import find_last_boxed
from sweep.data.settings import (
    ArithmeticDataset,
    DatasetConfig,
    FileDataset,
    GenericDataset,
    HuggingFaceDataset,
)


@dataclass(frozen=True)
class Problem:
    dataset: str  # dataset label (DatasetConfig.name)
    problem_id: str  # stable id
    question: str
    answer: str  # reference final answer text, e.g. "42" or "\\frac{1}{2}"
    grader: str  # key into sweep.inference.grading.graders.GRADERS
    level: int | None = None
    subject: str | None = None
    solution: str | None = None  # worked solution (used for few-shot examples)


class DatasetError(Exception):
    """A user-caused dataset error; the message names the path (and line) or dataset."""


Record = tuple[int, dict[str, Any]]  # (0-based row/line index, record)

_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$", re.DOTALL)
_CALCULATOR_NOTE = re.compile(r"<<[^<>]*>>")  # GSM8K's "<<48/2=24>>" annotations
_LEVEL = re.compile(r"(?:level\s*)?(\d+)", re.IGNORECASE)


def load_problems(dataset: DatasetConfig) -> list[Problem]:
    """All problems of ``dataset`` sorted by id, then the seeded ``limit`` subset if set."""
    problems = sorted(_load_all(dataset), key=lambda p: p.problem_id)
    _check_unique_ids(problems, dataset)
    if not problems:
        raise DatasetError(f"datasets.{dataset.name}: no problems loaded")
    if dataset.limit is not None and dataset.limit < len(problems):
        subset = random.Random(dataset.seed).sample(problems, dataset.limit)
        problems = sorted(subset, key=lambda p: p.problem_id)
    return problems


def _load_all(dataset: DatasetConfig) -> list[Problem]:
    return LOADERS[dataset.source].load(dataset)


def _load_file(dataset: FileDataset) -> list[Problem]:
    records = _read_jsonl(dataset.path)
    return _parse_records(records, dataset, fmt=dataset.source, where=str(dataset.path))


def _load_hub(dataset: HuggingFaceDataset) -> list[Problem]:
    records = _read_hub(dataset)
    return _parse_records(records, dataset, fmt=dataset.format, where=f"{dataset.hf_name}[{dataset.split}]")


def _load_arithmetic(dataset: ArithmeticDataset) -> list[Problem]:
    return _arithmetic_problems(dataset, stream="arith")


def _check_unique_ids(problems: list[Problem], dataset: DatasetConfig) -> None:
    for before, after in zip(problems, problems[1:]):
        if before.problem_id == after.problem_id:
            raise DatasetError(f"datasets.{dataset.name}: duplicate problem id {after.problem_id!r}")


# --- readers -------------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[Record]:
    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    records: list[Record] = []
    with path.open(encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{index + 1}: invalid JSON: {exc.msg}") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{index + 1}: expected a JSON object, got {type(record).__name__}")
            records.append((index, record))
    return records


def _read_parquet(path: Path, columns: Iterable[str]) -> list[Record]:
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DatasetError(f"{path}: no such dataset file")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise DatasetError(f"{path}: not a readable Parquet file: {exc}") from None
    wanted = sorted(set(columns))
    missing = [c for c in wanted if c not in schema.names]
    if missing:
        raise DatasetError(f"{path}: no column(s) {missing}; columns are {schema.names}")
    table = pq.read_table(path, columns=wanted)
    return list(enumerate(table.to_pylist()))


def _read_hub(dataset: HuggingFaceDataset) -> list[Record]:
    label = f"datasets.{dataset.name} ({dataset.hf_name})"
    try:
        import datasets as hf_datasets
    except ImportError:
        raise DatasetError(
            f"{label}: source huggingface needs the `datasets` package (pip install datasets)"
        ) from None
    try:
        loaded = hf_datasets.load_dataset(dataset.hf_name, dataset.hf_config, split=dataset.split)
    except Exception as exc:  # offline, unknown name, bad split: all user-fixable
        raise DatasetError(f"{label}: cannot load split {dataset.split!r} from the hub: {exc}") from None
    return list(enumerate(dict(row) for row in loaded))


# --- record formats ------------------------------------------------------------------------


def _require(record: dict[str, Any], field: str, where: str, index: int, column: str | None = None) -> Any:
    column = column or field
    value = record.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        mapped = f" (fields.{field})" if column != field else ""
        raise DatasetError(f"{where}:{index + 1}: missing field {column!r}{mapped}")
    return value


def _parse_level(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = _LEVEL.fullmatch(str(value).strip())
    return int(match.group(1)) if match else None  # "Level ?" in MATH has no level


def _parse_records(records: list[Record], dataset: DatasetConfig, *, fmt: str, where: str) -> list[Problem]:
    parse = _gsm8k_problem if fmt == "gsm8k" else _math_problem
    return [parse(record, dataset.name, where, index) for index, record in records]


def _gsm8k_problem(record: dict[str, Any], name: str, where: str, index: int) -> Problem:
    question = str(_require(record, "question", where, index))
    full = str(_require(record, "answer", where, index))
    match = _GSM8K_FINAL.search(full)
    if match is None:
        raise DatasetError(f"{where}:{index + 1}: answer has no '#### <number>' line")
    answer = match.group(1).replace(",", "").strip()
    solution = _CALCULATOR_NOTE.sub("", full[: match.start()]).strip()
    problem_id = str(record["id"]) if record.get("id") is not None else f"gsm8k-{index:05d}"
    return Problem(name, problem_id, question, answer, "numeric", solution=solution or None)


def _math_problem(record: dict[str, Any], name: str, where: str, index: int) -> Problem:
    question = str(_require(record, "problem", where, index))
    solution = record.get("solution")
    answer = record.get("answer")
    if answer is None or not str(answer).strip():
        boxed = find_last_boxed(str(solution)) if solution else None
        if not boxed:
            raise DatasetError(f"{where}:{index + 1}: no 'answer' field and no \\boxed{{...}} in 'solution'")
        answer = boxed
    unique_id = record.get("unique_id")
    problem_id = str(unique_id) if unique_id is not None else f"math-{index:05d}"
    subject = record.get("subject") or record.get("type")
    return Problem(
        name,
        problem_id,
        question,
        str(answer).strip(),
        "math",
        level=_parse_level(record.get("level")),
        subject=str(subject) if subject is not None else None,
        solution=str(solution) if solution else None,
    )


def _load_generic(dataset: GenericDataset) -> list[Problem]:
    fields = dataset.fields
    if dataset.source == "parquet":
        records = _read_parquet(dataset.path, fields.values())
    else:
        records = _read_jsonl(dataset.path)
    where = str(dataset.path)
    problems = []
    for index, record in records:
        question = _require(record, "question", where, index, fields["question"])
        answer = _require(record, "answer", where, index, fields["answer"])
        problem_id = (
            str(_require(record, "id", where, index, fields["id"]))
            if "id" in fields
            else f"{dataset.source}-{index:05d}"
        )
        subject = record.get(fields["subject"]) if "subject" in fields else None
        problems.append(
            Problem(
                dataset.name,
                problem_id,
                str(question),
                str(answer).strip(),
                dataset.grader,
                level=_parse_level(record.get(fields["level"])) if "level" in fields else None,
                subject=str(subject) if subject is not None else None,
            )
        )
    return problems


def _arithmetic_problems(
    dataset: ArithmeticDataset, *, stream: str, count: int | None = None
) -> list[Problem]:
    count = dataset.count if count is None else count
    items = generate_items(count=count, levels=dataset.levels, seed=dataset.seed, stream=stream)
    return [
        Problem(
            dataset.name,
            f"{stream}-L{item.level}-{index:04d}",
            item.question,
            str(item.answer),
            "numeric",
            level=item.level,
            solution=item.solution,
        )
        for index, item in enumerate(items)
    ]


# --- few-shot examples ---------------------------------------------------------------------

# (question, worked solution without the final-answer line, answer)
_GSM8K_SHOTS: tuple[tuple[str, str, str], ...] = (
    (
        "Tom has 3 boxes with 12 pencils in each box. He gives away 10 pencils. "
        "How many pencils does he have left?",
        "Tom has 3 * 12 = 36 pencils.\nAfter giving away 10, he has 36 - 10 = 26 pencils.",
        "26",
    ),
    (
        "A shirt costs $15 and a hat costs $8. How much do 2 shirts and 1 hat cost in dollars?",
        "Two shirts cost 2 * 15 = 30 dollars.\nWith the hat the total is 30 + 8 = 38 dollars.",
        "38",
    ),
    (
        "Lena reads 20 pages a day. How many days does she need to read a 140-page book?",
        "She needs 140 / 20 = 7 days.",
        "7",
    ),
    (
        "A class has 30 students and 40% of them walk to school. How many students do not walk?",
        "40% of 30 is 0.4 * 30 = 12 students who walk.\nSo 30 - 12 = 18 students do not walk.",
        "18",
    ),
)

# (question, worked solution ending in \boxed{answer}, answer, subject, level)
_MATH_SHOTS: tuple[tuple[str, str, str, str, int], ...] = (
    (
        "What is $\\frac{1}{2} + \\frac{1}{3}$?",
        "$\\frac{1}{2} + \\frac{1}{3} = \\frac{3}{6} + \\frac{2}{6} = \\boxed{\\frac{5}{6}}$.",
        "\\frac{5}{6}",
        "Prealgebra",
        1,
    ),
    (
        "Solve for $x$: $2x + 3 = 11$.",
        "Subtract 3 from both sides: $2x = 8$, so $x = \\boxed{4}$.",
        "4",
        "Algebra",
        1,
    ),
    (
        "What is the remainder when $2^{10}$ is divided by 7?",
        "Since $2^3 = 8 \\equiv 1 \\pmod 7$, $2^{10} = (2^3)^3 \\cdot 2 \\equiv 2 \\pmod 7$. "
        "The remainder is $\\boxed{2}$.",
        "2",
        "Number Theory",
        2,
    ),
    (
        "Simplify $\\sqrt{50}$.",
        "$\\sqrt{50} = \\sqrt{25 \\cdot 2} = \\boxed{5\\sqrt{2}}$.",
        "5\\sqrt{2}",
        "Algebra",
        1,
    ),
)


def _builtin_shots(fmt: str, name: str) -> list[Problem]:
    if fmt == "gsm8k":
        return [
            Problem(name, f"gsm8k-shot-{i}", q, a, "numeric", solution=s)
            for i, (q, s, a) in enumerate(_GSM8K_SHOTS)
        ]
    return [
        Problem(name, f"math-shot-{i}", q, a, "math", level=level, subject=subject, solution=s)
        for i, (q, s, a, subject, level) in enumerate(_MATH_SHOTS)
    ]


def few_shot_examples(dataset: DatasetConfig, k: int) -> list[Problem]:
    """``k`` worked examples for the prompt, never one of the dataset's own problems.

    Arithmetic draws from a separate generator stream (ids ``arith-shot-...``) and skips
    any question that also occurs among the test problems; other sources use a fixed
    built-in set of four examples in GSM8K or MATH style.
    """
    if k <= 0:
        return []
    return LOADERS[dataset.source].shots(dataset, k)


def _arithmetic_shots(dataset: ArithmeticDataset, k: int) -> list[Problem]:
    test_questions = {p.question for p in _arithmetic_problems(dataset, stream="arith")}
    # Collisions with test questions are rare (level 1 only), so 4k + 64 draws always suffice.
    candidates = _arithmetic_problems(dataset, stream="arith-shot", count=4 * k + 64)
    examples = [p for p in candidates if p.question not in test_questions][:k]
    assert len(examples) == k, "arithmetic few-shot stream exhausted"
    return examples


def _builtin_examples(dataset: DatasetConfig, k: int) -> list[Problem]:
    shots = _builtin_shots("gsm8k" if dataset.grader == "numeric" else "math", dataset.name)
    if k > len(shots):
        raise DatasetError(
            f"datasets.{dataset.name}.prompt.few_shot: at most {len(shots)} built-in examples, got {k}"
        )
    return shots[:k]


@dataclass(frozen=True)
class Loader:
    """How one ``source`` is read: its problems, and its few-shot examples (k > 0)."""

    load: Callable[[Any], list[Problem]]
    shots: Callable[[Any, int], list[Problem]] = _builtin_examples


# Loaders by a dataset entry's ``source`` (the settings model of each is in sweep.data.settings).
LOADERS: dict[str, Loader] = {
    "arithmetic": Loader(load=_load_arithmetic, shots=_arithmetic_shots),
    "gsm8k": Loader(load=_load_file),
    "math": Loader(load=_load_file),
    "jsonl": Loader(load=_load_generic),
    "parquet": Loader(load=_load_generic),
    "huggingface": Loader(load=_load_hub),
}
