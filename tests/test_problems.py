"""Loading problems: file formats, user errors, stable ids and seeded subsets, arithmetic."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.config import ArithmeticDataset, FileDataset, GenericDataset, HuggingFaceDataset
from sweep.data.arithmetic import LEVELS, Step, generate_items
from sweep.data.problems import DatasetError, Problem, few_shot_examples, load_problems

ROOT = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


GSM8K_RECORDS: list[dict[str, Any]] = [
    {"question": "Ann has 2 cats and buys 3 more. How many cats?", "answer": "2 + 3 = <<2+3=5>>5\n#### 5"},
    {"question": "A car costs $1,200 more than $300. Price?", "answer": "300 + 1200 = 1500\n#### 1,500"},
    {"question": "Owe 4 dollars?", "answer": "She owes -4.\n#### -4"},
]

MATH_RECORDS: list[dict[str, Any]] = [
    {
        "problem": "Compute $\\frac{1}{2}+\\frac{1}{4}$.",
        "solution": "We get $\\boxed{\\frac{3}{4}}$.",
        "answer": "\\frac{3}{4}",
        "subject": "Prealgebra",
        "level": 2,
        "unique_id": "test/prealgebra/1.json",
    },
    {
        "problem": "Simplify $\\sqrt{8}$.",
        "solution": "$\\boxed{x}$ is not the last box: $\\sqrt{8} = \\boxed{2\\sqrt{2}}$.",
        "type": "Algebra",
        "level": "Level 3",
    },
    {
        "problem": "Nested?",
        "solution": "So the set is $\\boxed{\\{\\frac{1}{2}, 3\\}}$.",
        "subject": "Algebra",
        "level": "Level ?",
    },
]


def gsm8k(path: Path, **kwargs: Any) -> FileDataset:
    return FileDataset(name="gsm", source="gsm8k", path=path, **kwargs)


# --- GSM8K / MATH ----------------------------------------------------------------------------


def test_gsm8k_answers_ids_and_solutions(tmp_path: Path) -> None:
    problems = load_problems(gsm8k(write_jsonl(tmp_path / "g.jsonl", GSM8K_RECORDS)))
    assert [(p.problem_id, p.answer) for p in problems] == [
        ("gsm8k-00000", "5"),
        ("gsm8k-00001", "1500"),
        ("gsm8k-00002", "-4"),
    ]
    first = problems[0]
    assert first.grader == "numeric" and first.dataset == "gsm"
    assert first.solution == "2 + 3 = 5"  # text before ####, calculator notes dropped
    assert first.question == GSM8K_RECORDS[0]["question"]


def test_gsm8k_record_id_is_used(tmp_path: Path) -> None:
    records = [{**GSM8K_RECORDS[0], "id": "custom-7"}]
    assert load_problems(gsm8k(write_jsonl(tmp_path / "g.jsonl", records)))[0].problem_id == "custom-7"


def test_math_fields_levels_and_boxed_fallback(tmp_path: Path) -> None:
    dataset = FileDataset(name="m", source="math", path=write_jsonl(tmp_path / "m.jsonl", MATH_RECORDS))
    by_id = {p.problem_id: p for p in load_problems(dataset)}
    assert sorted(by_id) == ["math-00001", "math-00002", "test/prealgebra/1.json"]
    first = by_id["test/prealgebra/1.json"]
    assert (first.answer, first.level, first.subject) == ("\\frac{3}{4}", 2, "Prealgebra")
    assert first.grader == "math"
    second = by_id["math-00001"]
    assert (second.answer, second.level, second.subject) == ("2\\sqrt{2}", 3, "Algebra")
    third = by_id["math-00002"]
    assert (third.answer, third.level) == ("\\{\\frac{1}{2}, 3\\}", None)


def test_generic_jsonl_and_parquet_use_field_mapping(tmp_path: Path) -> None:
    rows: list[dict[str, Any]] = [
        {"qid": "b", "q": "2+2?", "a": 4, "lvl": "Level 1"},
        {"qid": "a", "q": "x?", "a": "\\pi", "lvl": 5},
    ]
    fields: dict[Any, str] = {"id": "qid", "question": "q", "answer": "a", "level": "lvl"}
    jsonl_path = write_jsonl(tmp_path / "g.jsonl", rows)
    jsonl = GenericDataset(name="g", source="jsonl", path=jsonl_path, fields=fields)
    table = pa.Table.from_pylist([{**r, "a": str(r["a"]), "lvl": str(r["lvl"])} for r in rows])
    pq.write_table(table, tmp_path / "g.parquet")
    parquet = GenericDataset(
        name="g", source="parquet", path=tmp_path / "g.parquet", fields=fields, grader="numeric"
    )
    for dataset in (jsonl, parquet):
        problems = load_problems(dataset)
        assert [(p.problem_id, p.question, p.answer, p.level) for p in problems] == [
            ("a", "x?", "\\pi", 5),
            ("b", "2+2?", "4", 1),
        ]
        assert {p.grader for p in problems} == {dataset.grader}


# --- user errors -----------------------------------------------------------------------------


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match="nope.jsonl"):
        load_problems(gsm8k(path))


def test_bad_json_names_path_and_line(tmp_path: Path) -> None:
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(GSM8K_RECORDS[0]) + "\n\n{not json\n")
    with pytest.raises(DatasetError, match=r"g\.jsonl:3: invalid JSON"):
        load_problems(gsm8k(path))


def test_missing_field_names_path_line_and_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "g.jsonl", [GSM8K_RECORDS[0], {"question": "no answer"}])
    with pytest.raises(DatasetError, match=r"g\.jsonl:2: missing field 'answer'"):
        load_problems(gsm8k(path))


def test_gsm8k_answer_without_final_line(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "g.jsonl", [{"question": "q", "answer": "it is 5"}])
    with pytest.raises(DatasetError, match=r"g\.jsonl:1: .*####"):
        load_problems(gsm8k(path))


def test_math_without_answer_or_box(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "no box here"}])
    with pytest.raises(DatasetError, match=r"m\.jsonl:1: no 'answer'"):
        load_problems(FileDataset(name="m", source="math", path=path))


def test_generic_missing_mapped_field_and_column(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "g.jsonl", [{"q": "2+2?"}])
    dataset = GenericDataset(name="g", source="jsonl", path=path, fields={"question": "q", "answer": "a"})
    with pytest.raises(DatasetError, match=r"g\.jsonl:1: missing field 'a' \(fields.answer\)"):
        load_problems(dataset)
    pq.write_table(pa.Table.from_pylist([{"q": "2+2?"}]), tmp_path / "g.parquet")
    parquet = GenericDataset(name="g", source="parquet", path=tmp_path / "g.parquet", fields=dataset.fields)
    with pytest.raises(DatasetError, match=r"g\.parquet: no column\(s\) \['a'\]"):
        load_problems(parquet)


def test_duplicate_ids_are_an_error(tmp_path: Path) -> None:
    records = [{**GSM8K_RECORDS[0], "id": "x"}, {**GSM8K_RECORDS[1], "id": "x"}]
    with pytest.raises(DatasetError, match="duplicate problem id 'x'"):
        load_problems(gsm8k(write_jsonl(tmp_path / "g.jsonl", records)))


def test_huggingface_failure_is_a_dataset_error() -> None:
    # Either `datasets` is missing or the hub is unreachable here; both must be a clear DatasetError.
    dataset = HuggingFaceDataset(
        name="hf", source="huggingface", hf_name="no-such/dataset-xyz", format="gsm8k"
    )
    with pytest.raises(DatasetError, match="no-such/dataset-xyz"):
        load_problems(dataset)


# --- ordering and subsets --------------------------------------------------------------------


def many_gsm8k(tmp_path: Path, n: int) -> Path:
    records = [{"question": f"q{i}", "answer": f"#### {i}"} for i in range(n)]
    return write_jsonl(tmp_path / "many.jsonl", records)


def test_limit_is_a_seeded_sorted_subset(tmp_path: Path) -> None:
    path = many_gsm8k(tmp_path, 50)
    full = load_problems(gsm8k(path))
    assert [p.problem_id for p in full] == sorted(p.problem_id for p in full)
    a = load_problems(gsm8k(path, limit=10, seed=1))
    assert a == load_problems(gsm8k(path, limit=10, seed=1))
    assert len(a) == 10 and [p.problem_id for p in a] == sorted(p.problem_id for p in a)
    assert set(a) <= set(full)
    assert a != load_problems(gsm8k(path, limit=10, seed=2))
    assert load_problems(gsm8k(path, limit=500)) == full


def test_ids_do_not_depend_on_file_order(tmp_path: Path) -> None:
    records = [{**r, "id": f"id-{i}"} for i, r in enumerate(GSM8K_RECORDS)]
    forward = load_problems(gsm8k(write_jsonl(tmp_path / "f.jsonl", records), limit=2, seed=3))
    backward = load_problems(gsm8k(write_jsonl(tmp_path / "b.jsonl", records[::-1]), limit=2, seed=3))
    assert forward == backward


# --- arithmetic ------------------------------------------------------------------------------


def fold(start: int, steps: tuple[Step, ...]) -> int:
    """Independent recomputation of an item's answer from its structure."""
    ops = {"add": int.__add__, "sub": int.__sub__, "mul": int.__mul__}
    value = start
    for step in steps:
        if step.op == "div":
            assert value % step.operand == 0
            value //= step.operand
        else:
            value = ops[step.op](value, step.operand)
        assert value > 0
    return value


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), levels=st.lists(st.integers(1, 5), min_size=1, max_size=5))
def test_arithmetic_items_are_exact_and_match_their_level(seed: int, levels: list[int]) -> None:
    for item in generate_items(count=10, levels=levels, seed=seed):
        assert len(item.steps) == LEVELS[item.level].ops
        assert item.answer == fold(item.start, item.steps)
        assert str(item.start) in item.question
        assert all(str(step.operand) in item.question for step in item.steps)
        assert item.solution.splitlines()[-1].startswith(f"{item.name} has {item.answer} ")


def arith(**kwargs: Any) -> ArithmeticDataset:
    return ArithmeticDataset(name="arith", source="arithmetic", **kwargs)


def test_arithmetic_problems_are_deterministic_with_stable_ids() -> None:
    problems = load_problems(arith(count=12, levels=[1, 3, 5], seed=7))
    assert problems == load_problems(arith(count=12, levels=[1, 3, 5], seed=7))
    assert problems != load_problems(arith(count=12, levels=[1, 3, 5], seed=8))
    assert problems[0].problem_id == "arith-L1-0000"
    assert {p.problem_id for p in problems} >= {"arith-L1-0009", "arith-L3-0001", "arith-L5-0011"}
    assert all(p.grader == "numeric" and p.solution and p.level in (1, 3, 5) for p in problems)
    # Growing `count` keeps the earlier problems unchanged.
    grown = {p.problem_id: p for p in load_problems(arith(count=24, levels=[1, 3, 5], seed=7))}
    assert all(grown[p.problem_id] == p for p in problems)


def test_arithmetic_is_identical_in_a_fresh_process() -> None:
    code = (
        "from sweep.data.arithmetic import generate_items;"
        "print([(i.question, i.answer) for i in generate_items(count=6, levels=[2, 4], seed=11)])"
    )
    env = {"PYTHONHASHSEED": "123", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    here = generate_items(count=6, levels=[2, 4], seed=11)
    assert out.stdout.strip() == str([(i.question, i.answer) for i in here])


def test_arithmetic_known_problem() -> None:
    # Pinned: a generator change would silently change every arithmetic sweep's problems.
    problem = load_problems(arith(count=3, levels=[2], seed=0))[0]
    assert problem.problem_id == "arith-L2-0000"
    assert problem.question == (
        "Mia has 27 stickers. She buys 21 more stickers. She uses 18 stickers. "
        "How many stickers does Mia have now?"
    )
    assert problem.answer == "30"
    assert problem.solution == (
        "Start with 27 stickers.\nAdd 21: 27 + 21 = 48.\n"
        "Take away 18: 48 - 18 = 30.\nMia has 30 stickers now."
    )


# --- few-shot --------------------------------------------------------------------------------


def test_arithmetic_few_shot_never_overlaps_test_problems() -> None:
    dataset = arith(count=40, levels=[1], seed=2)
    shots = few_shot_examples(dataset, 4)
    tests = load_problems(dataset)
    assert len(shots) == 4 and shots == few_shot_examples(dataset, 4)
    assert not {p.problem_id for p in shots} & {p.problem_id for p in tests}
    assert not {p.question for p in shots} & {p.question for p in tests}
    assert all(p.solution for p in shots)


def test_builtin_few_shot_sets(tmp_path: Path) -> None:
    math = FileDataset(name="m", source="math", path=tmp_path / "unused.jsonl")
    shots = few_shot_examples(math, 4)
    assert len(shots) == 4 and all(p.grader == "math" for p in shots)
    assert all(p.solution and f"\\boxed{{{p.answer}}}" in p.solution for p in shots)
    numeric = few_shot_examples(gsm8k(tmp_path / "unused.jsonl"), 2)
    assert [p.grader for p in numeric] == ["numeric", "numeric"]
    assert all(isinstance(p, Problem) and p.answer.lstrip("-").isdigit() for p in numeric)
    assert few_shot_examples(math, 0) == []
    with pytest.raises(DatasetError, match="few_shot"):
        few_shot_examples(math, 5)
