"""A seeded generator of arithmetic word problems with exact integer answers.

Each problem is first built as a structured ``ArithmeticItem`` (a start value and a chain
of integer operations), then rendered to a question and a worked solution from a few
natural-language themes. Difficulty level L (1..5) means L operations on larger numbers,
with multiplication from level 3 and exact division from level 4. Level 0 sits below them:
one addition of two one-digit amounts. It is the level where a 135M model's samples are
right a third to two thirds of the time and its wrong samples disagree, so majority voting
and pass@n visibly grow with n (the demo task, BENCHMARKS.md). At level 1 its errors are
systematic (it adds where it should subtract, every sample alike) and voting helps little.
All intermediate values stay positive integers.

Determinism: item ``i`` of stream ``s`` under seed ``n`` draws from its own
``random.Random(f"{s}:{n}:{i}")`` (string seeds hash with SHA-512, independent of
``PYTHONHASHSEED``), so items are identical across processes and machines, and item ``i``
does not change when ``count`` grows. No global random state is touched.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Op = Literal["add", "sub", "mul", "div"]

# Intermediate values are capped so questions stay readable for small models.
MAX_VALUE = 100_000


@dataclass(frozen=True)
class LevelSpec:
    ops: int  # operations in the chain
    start: tuple[int, int]  # inclusive range of the starting amount
    operand: tuple[int, int]  # range of add/sub operands
    factor: tuple[int, int]  # range of mul/div factors
    kinds: tuple[Op, ...]


_ALL_OPS: tuple[Op, ...] = ("add", "sub", "mul", "div")

LEVELS: dict[int, LevelSpec] = {
    # start from 2: the themes' start sentences are plural ("has {n} apples")
    0: LevelSpec(ops=1, start=(2, 9), operand=(1, 9), factor=(2, 2), kinds=("add",)),
    1: LevelSpec(ops=1, start=(2, 20), operand=(1, 10), factor=(2, 2), kinds=_ALL_OPS[:2]),
    2: LevelSpec(ops=2, start=(5, 50), operand=(1, 30), factor=(2, 2), kinds=_ALL_OPS[:2]),
    3: LevelSpec(ops=3, start=(10, 100), operand=(2, 50), factor=(2, 4), kinds=_ALL_OPS[:3]),
    4: LevelSpec(ops=4, start=(20, 200), operand=(5, 100), factor=(2, 6), kinds=_ALL_OPS),
    5: LevelSpec(ops=5, start=(50, 999), operand=(10, 500), factor=(2, 9), kinds=_ALL_OPS),
}


@dataclass(frozen=True)
class Theme:
    noun: str  # plural; ``one`` is the singular
    one: str
    start: str  # "{name} has {n} apples."
    add: str
    sub: str
    mul: str
    div: str

    def counted(self, count: int) -> str:
        """The noun as it follows ``count``: "1 apple", "2 apples"."""
        return self.one if count == 1 else self.noun


THEMES: tuple[Theme, ...] = (
    Theme(
        noun="apples",
        one="apple",
        start="{name} has {n} apples.",
        add="{P} picks {k} more {things}.",
        sub="{P} gives away {k} {things}.",
        mul="Then {p} ends up with {k} times as many apples as {p} had.",
        div="{P} packs the apples equally into {k} baskets and keeps one basket.",
    ),
    Theme(
        noun="coins",
        one="coin",
        start="{name} has {n} coins in a jar.",
        add="{P} finds {k} more {things}.",
        sub="{P} spends {k} {things}.",
        mul="Then {p} saves until {p} has {k} times as many coins as before.",
        div="{P} splits the coins into {k} equal piles and keeps one pile.",
    ),
    Theme(
        noun="pages",
        one="page",
        start="{name} has written {n} pages of notes.",
        add="{P} writes {k} more {things}.",
        sub="{P} throws away {k} {things}.",
        mul="Then {p} copies the notes so there are {k} times as many pages.",
        div="{P} divides the pages equally into {k} folders and keeps one folder.",
    ),
    Theme(
        noun="marbles",
        one="marble",
        start="{name} has {n} marbles.",
        add="{P} wins {k} more {things}.",
        sub="{P} loses {k} {things}.",
        mul="Then {p} ends up with {k} times as many marbles as {p} had.",
        div="{P} shares the marbles into {k} equal groups and keeps one group.",
    ),
    Theme(
        noun="stickers",
        one="sticker",
        start="{name} has {n} stickers.",
        add="{P} buys {k} more {things}.",
        sub="{P} uses {k} {things}.",
        mul="Then {p} gets {k} times as many stickers as {p} had.",
        div="{P} splits the stickers into {k} equal stacks and keeps one stack.",
    ),
)

NAMES: tuple[tuple[str, str], ...] = (
    ("Ava", "she"), ("Ben", "he"), ("Mia", "she"), ("Leo", "he"),
    ("Zoe", "she"), ("Sam", "he"), ("Nora", "she"), ("Omar", "he"),
)  # fmt: skip

_STEP_LABELS: dict[Op, str] = {
    "add": "Add {k}", "sub": "Take away {k}", "mul": "Multiply by {k}", "div": "Divide by {k}"
}  # fmt: skip
_STEP_SYMBOLS: dict[Op, str] = {"add": "+", "sub": "-", "mul": "*", "div": "/"}


@dataclass(frozen=True)
class Step:
    op: Op
    operand: int


def apply_step(value: int, step: Step) -> int:
    """One operation on exact integers; division must be exact (a generator invariant)."""
    if step.op == "add":
        return value + step.operand
    if step.op == "sub":
        return value - step.operand
    if step.op == "mul":
        return value * step.operand
    assert value % step.operand == 0, (value, step)
    return value // step.operand


@dataclass(frozen=True)
class ArithmeticItem:
    level: int
    theme: Theme
    name: str
    pronoun: str
    start: int
    steps: tuple[Step, ...]

    @property
    def values(self) -> list[int]:
        """The amount after each step, starting with ``start``."""
        values = [self.start]
        for step in self.steps:
            values.append(apply_step(values[-1], step))
        return values

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def question(self) -> str:
        fmt = {"name": self.name, "p": self.pronoun, "P": self.pronoun.capitalize()}
        sentences = [self.theme.start.format(n=self.start, **fmt)]
        for step in self.steps:
            template: str = getattr(self.theme, step.op)
            sentences.append(template.format(k=step.operand, things=self.theme.counted(step.operand), **fmt))
        sentences.append(f"How many {self.theme.noun} does {self.name} have now?")
        return " ".join(sentences)

    @property
    def solution(self) -> str:
        """Worked steps, without the final-answer line (the prompt format adds that)."""
        lines = [f"Start with {self.start} {self.theme.noun}."]
        values = self.values
        for before, step, after in zip(values[:-1], self.steps, values[1:], strict=True):
            label = _STEP_LABELS[step.op].format(k=step.operand)
            lines.append(f"{label}: {before} {_STEP_SYMBOLS[step.op]} {step.operand} = {after}.")
        lines.append(f"{self.name} has {self.answer} {self.theme.counted(self.answer)} now.")
        return "\n".join(lines)


def _draw_step(rng: random.Random, spec: LevelSpec, value: int) -> Step:
    op: Op = rng.choice(spec.kinds)
    if op == "div":
        divisors = [d for d in range(spec.factor[0], spec.factor[1] + 1) if value % d == 0]
        if divisors:
            return Step("div", rng.choice(divisors))
        op = "mul"
    if op == "mul":
        factor = rng.randint(*spec.factor)
        if value * factor <= MAX_VALUE:
            return Step("mul", factor)
        op = "sub"
    if op == "sub" and value > 1:
        high = min(spec.operand[1], value - 1)
        return Step("sub", rng.randint(min(spec.operand[0], high), high))
    return Step("add", rng.randint(*spec.operand))


def generate_item(rng: random.Random, level: int) -> ArithmeticItem:
    """One problem of ``level`` drawn from ``rng``."""
    spec = LEVELS[level]
    theme = rng.choice(THEMES)
    name, pronoun = rng.choice(NAMES)
    start = rng.randint(*spec.start)
    steps: list[Step] = []
    value = start
    for _ in range(spec.ops):
        step = _draw_step(rng, spec, value)
        steps.append(step)
        value = apply_step(value, step)
    return ArithmeticItem(
        level=level, theme=theme, name=name, pronoun=pronoun, start=start, steps=tuple(steps)
    )


def generate_items(
    *, count: int, levels: Sequence[int], seed: int, stream: str = "arith"
) -> list[ArithmeticItem]:
    """``count`` items, item ``i`` at level ``levels[i % len(levels)]``."""
    if not levels:
        raise ValueError("levels must not be empty")
    return [
        generate_item(random.Random(f"{stream}:{seed}:{index}"), levels[index % len(levels)])
        for index in range(count)
    ]
