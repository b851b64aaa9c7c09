"""Step splitting: delimiter and "Step k:" modes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from sweep.inference.steps import split_steps


def test_blank_line_delimiter() -> None:
    text = "Start with 8.\nAdd 2.\n\nNow 10.\n\n\n\nThe answer is 10."
    assert split_steps(text) == ["Start with 8.\nAdd 2.", "Now 10.", "The answer is 10."]


def test_custom_delimiter() -> None:
    assert split_steps("a ки b ки c", delimiter="ки") == ["a", "b", "c"]


def test_step_markers() -> None:
    text = "Let us solve it.\nStep 1: add 2 and 3.\nStep 2: that is 5.\nstep 3) The answer is 5."
    assert split_steps(text, mode="step_marker") == [
        "Let us solve it.",
        "Step 1: add 2 and 3.",
        "Step 2: that is 5.",
        "step 3) The answer is 5.",
    ]


def test_no_markers_is_one_step() -> None:
    assert split_steps("The answer is 4.", mode="step_marker") == ["The answer is 4."]
    assert split_steps("   ") == []


@given(st.lists(st.text(alphabet="abc xyz.\n", min_size=1).map(str.strip).filter(lambda s: s and "\n\n" not in s), max_size=8))
def test_join_then_split_round_trips(steps: list[str]) -> None:
    assert split_steps("\n\n".join(steps)) == steps
