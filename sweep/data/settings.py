"""The dataset settings of a grid (``datasets:`` entries), one model per ``source``.

Declared by the data stage that reads them; ``sweep.config`` composes them into ``SweepConfig``.
Each kind says which grader its problems use (``grader``); loaders are chosen by ``source``
(``sweep.data.problems.LOADERS``). What needs the filesystem (the file exists) is checked by
``sweep.config.load_config``, not here: a manifest's config validates on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MAX_PROBLEMS = 1_048_576  # problems one dataset generates or keeps
MAX_FEW_SHOT = 64  # worked examples before a question


class Strict(BaseModel):
    """Unknown keys are errors, values are frozen, floats finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PromptConfig(Strict):
    system: str | None = Field(default=None, description="System message; dataset default when absent.")
    answer_format: Literal["boxed", "the_answer_is"] | None = Field(
        default=None, description="Instruction for how the final answer is written."
    )
    few_shot: int = Field(
        default=0, ge=0, le=MAX_FEW_SHOT, description="Worked examples put before the question."
    )
    chat_template: bool = Field(default=True, description="Use the model's chat template when it has one.")


class DatasetBase(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="Label used in results.")
    limit: int | None = Field(
        default=None, gt=0, le=MAX_PROBLEMS, description="Keep this many problems (deterministic)."
    )
    seed: int = Field(default=0, description="Seed of the subset drawn when limit is set.")
    prompt: PromptConfig = Field(default_factory=PromptConfig)

    @property
    def data_file(self) -> Path | None:
        """The file this dataset reads from this machine (None: generated, or from the hub)."""
        return None


class ArithmeticDataset(DatasetBase):
    source: Literal["arithmetic"]
    count: int = Field(default=20, gt=0, le=MAX_PROBLEMS, description="Problems generated.")
    levels: list[Annotated[int, Field(ge=0, le=5)]] = Field(
        default=[1, 2, 3], min_length=1, description="0: one addition of one-digit amounts; 1-5: harder."
    )

    @property
    def grader(self) -> str:
        return "numeric"


class FileDataset(DatasetBase):
    source: Literal["gsm8k", "math"]
    path: Path = Field(description="JSONL file.")

    @property
    def data_file(self) -> Path | None:
        return self.path

    @property
    def grader(self) -> str:
        return "numeric" if self.source == "gsm8k" else "math"


class GenericDataset(DatasetBase):
    source: Literal["jsonl", "parquet"]
    path: Path = Field(description="JSONL or Parquet file.")
    fields: dict[Literal["id", "question", "answer", "level", "subject"], str] = Field(
        description="Maps our field names to the file's column names; question and answer are required."
    )
    grader: Literal["numeric", "math"] = Field(default="math", description="How answers are compared.")

    @field_validator("fields")
    @classmethod
    def _required_fields(cls, value: dict[str, str]) -> dict[str, str]:
        missing = {"question", "answer"} - value.keys()
        if missing:
            raise ValueError(f"fields must map {sorted(missing)}")
        return value

    @property
    def data_file(self) -> Path | None:
        return self.path


class HuggingFaceDataset(DatasetBase):
    source: Literal["huggingface"]
    hf_name: str
    hf_config: str | None = None
    split: str = "test"
    format: Literal["gsm8k", "math"]

    @property
    def grader(self) -> str:
        return "numeric" if self.format == "gsm8k" else "math"


DatasetConfig = Annotated[
    ArithmeticDataset | FileDataset | GenericDataset | HuggingFaceDataset, Field(discriminator="source")
]
