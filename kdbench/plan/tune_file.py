"""The ``tune:`` block of a suite file: which method entry to search, over what space, how.

.. code-block:: yaml

    tune:
      method: kd+LR                 # a method entry's label (or its index in `methods`)
      space:
        params.T: {low: 1, high: 8, log: true}
        revision.lambda1: {choices: [0.5, 1, 2, 4, 8]}
        selection.fraction: {low: 0.2, high: 1.0, step: 0.1}
      trials: 20
      sampler: {name: tpe, seed: 0}
      pruner: {name: median}

A list of such mappings defines several studies, run in order. Paths, ranges and names are checked
here and against the registry (``kdbench.plan.tune``) before anything trains.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Where a searched value goes: the method's parameters, the Label Revision or Data Selection block, or
#: the recipe. ``revision.params.eta`` and ``selection.params.k`` reach the strategy's and estimator's own.
SPACE_ROOTS = ("params", "revision", "selection", "recipe")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")


class Distribution(BaseModel):
    """One searched value: a range (``low``, ``high``, optional ``log`` or ``step``) or ``choices``.

    A range is searched over integers when the value it sets is an integer (``recipe.epochs``, a method
    parameter typed ``int``), else over floats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _one_kind_and_a_real_range(self) -> Distribution:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("give either choices or a range (low, high, log, step), not both")
            if not self.choices:
                raise ValueError("choices is empty")
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs low and high (or give choices)")
        if not self.low < self.high:
            raise ValueError(f"empty range: low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got {self.low}")
        if self.log and self.step is not None:
            raise ValueError("a range is either log or stepped, not both")
        if self.step is not None and self.step <= 0:
            raise ValueError(f"step must be positive, got {self.step}")
        return self


class SamplerEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["tpe", "random"] = "tpe"
    seed: int = 0


class PrunerEntry(BaseModel):
    """``median`` (Optuna's MedianPruner), ``successive_halving``, ``hyperband``, ``threshold`` (prune a
    trial whose validation top-1 falls below ``params.lower``) or ``none``; ``params`` go to the pruner."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Literal["median", "successive_halving", "hyperband", "threshold", "none"] = "median"
    params: dict[str, Any] = Field(default_factory=dict)


def _name_or_mapping(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


class StudyEntry(BaseModel):
    """One study: a method entry, its search space and how the search runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str | int  # a method entry's label (as tables show it) or its index in `methods`
    space: dict[str, Distribution] = Field(min_length=1)
    trials: int = Field(20, ge=1)  # finished (complete or pruned) trials the study should hold
    sampler: SamplerEntry = Field(default_factory=SamplerEntry)
    pruner: PrunerEntry = Field(default_factory=PrunerEntry)
    pair: int = Field(0, ge=0)  # which pair of the suite the trials train on
    seed: int | None = None  # the trials' training seed (default: the suite's first seed)
    objective: Literal["best", "last"] = "best"  # validation top-1: the best epoch's or the last one's
    name: str | None = None  # the study's name in the storage (default: <suite>.<label>)
    storage: str | None = None  # an Optuna storage URL (default: SQLite under the run store)

    _as_mapping = field_validator("sampler", "pruner", mode="before")(_name_or_mapping)

    @field_validator("space")
    @classmethod
    def _paths_name_a_place(cls, space: dict[str, Distribution]) -> dict[str, Distribution]:
        for path in space:
            if not _PATH.match(path) or path.split(".")[0] not in SPACE_ROOTS:
                raise ValueError(f"{path!r} is not a searchable path: it starts with one of "
                                 f"{', '.join(SPACE_ROOTS)} followed by a field, e.g. params.T")
        return space


def studies_as_list(value: Any) -> Any:
    """``tune:`` may hold one study (a mapping) or several (a list)."""
    return [value] if isinstance(value, dict) else value
