"""The published training recipes by name (``reference/recipes.csv``), so a published number is compared only
with runs trained the way it was (MLKD's and LS's numbers came from other recipes than the CRD one).

A run's recipe has a name when its resolved schedule (epochs, batch size, learning rate for its student,
milestones, weight decay) is one of them. A run on no published recipe (a shortened CPU run, say) is
compared with its dataset's first recipe, the one every paper suite uses, as before recipes had names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

RECIPES_CSV = Path(__file__).resolve().parent / "reference" / "recipes.csv"


@lru_cache(maxsize=1)
def _recipes() -> tuple[dict[str, Any], ...]:
    frame = pd.read_csv(RECIPES_CSV, dtype=str, keep_default_na=False)
    return tuple({"name": r["name"], "dataset": r["dataset"], "epochs": int(r["epochs"]),
                  "batch_size": int(r["batch_size"]), "lrs": {float(v) for v in r["lrs"].split(";")},
                  "milestones": tuple(int(v) for v in r["milestones"].split(";")),
                  "weight_decay": float(r["weight_decay"])} for _, r in frame.iterrows())


def recipe_name(dataset: str, epochs: int, batch_size: int, lr: float, milestones: tuple[int, ...],
                weight_decay: float) -> str:
    """The published recipe a run followed (its student's resolved learning rate), else ``""``."""
    for recipe in _recipes():
        if (recipe["dataset"], recipe["epochs"], recipe["batch_size"], recipe["milestones"]) == (
                dataset, epochs, batch_size, tuple(milestones)) and any(
                abs(lr - v) < 1e-12 for v in recipe["lrs"]) and abs(weight_decay - recipe["weight_decay"]) < 1e-12:
            return str(recipe["name"])
    return ""


def default_recipe(dataset: str) -> str:
    """The recipe a run on no published recipe is compared with: the dataset's first (``""`` for none)."""
    return next((str(r["name"]) for r in _recipes() if r["dataset"] == dataset), "")
