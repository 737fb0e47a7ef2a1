"""The table layouts, in one registry: the paper's (one module each) and the generic method × pair table.

Layout detection (``detect_layout``), first rule that matches wins:

0. ``removal``: some run removed samples (Data Selection with ``mode: drop``): removal curves.
1. ``lambda``: KD runs with DS and LR show two or more distinct (λ1, λ2) settings (Table VIII).
2. ``eta``: KD runs with DS and LR show two or more distinct η values (Table IX).
3. ``selection``: KD runs with DS and without LR show two or more distinct (fraction, strategy)
   combinations (Table II).
4. ``ablation``: a single teacher → student pair, where some distillation method has a run without
   DS/LR and a run with exactly one of them, and the DS and LR settings do not vary (Table III).
5. ``method_pair``: anything else (the generic method × pair table).

Why this order: the sweeps are the most specific signatures, and their frames also contain what the
weaker rules look for (a λ sweep carries the DS-only baseline, i.e. mixed DS/LR flags; a selection
study carries vanilla KD next to DS-only KD), so they are tested first. The ablation rule needs one
pair and a single-flag arm so that "KD vs KD+LR+DS over ten pairs" (Table IV) or "OA vs LDA over five
pairs" (Tables V, VI) stays in the method × pair layout, and needs fixed settings so that a comparison
of estimators at one fraction is shown row by row there instead of being cut down to one estimator.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from kdbench.tables.ablation import ablation_table, is_ablation
from kdbench.tables.cells import Table
from kdbench.tables.estimators import estimators_table
from kdbench.tables.eta_sweep import eta_table
from kdbench.tables.imagenet import imagenet_table
from kdbench.tables.lambda_sweep import lambda_table
from kdbench.tables.method_pair import method_pair_table
from kdbench.tables.noise import noise_table
from kdbench.tables.oa_lda import oa_lda_table
from kdbench.tables.paper_common import KD, configs, prepare
from kdbench.tables.removal import is_removal, removal_table, without_removal
from kdbench.tables.selection import is_selection_study, selection_table
from kdbench.tables.teachers import teachers_table
from kdbench.tables.vanilla import vanilla_table

#: Layout name (what a suite's ``table.layout`` and ``kdbench tables --layout`` say) → renderer.
LAYOUTS: dict[str, Callable[..., Table]] = {
    "method_pair": method_pair_table,
    "selection": selection_table,
    "ablation": ablation_table,
    "lambda": lambda_table,
    "eta": eta_table,
    "vanilla": vanilla_table,
    "oa_lda": oa_lda_table,
    "imagenet": imagenet_table,
    "noise": noise_table,
    "estimators": estimators_table,
    "teachers": teachers_table,
    "removal": removal_table,
}


def detect_layout(frame: pd.DataFrame) -> str:
    """Which paper table ``frame`` reproduces, for suites that do not name a layout.

    Rules, first match wins (see the module docstring for why in this order): "lambda" when KD + DS + LR
    runs vary (λ1, λ2); "eta" when they vary η; "selection" when DS-only KD runs vary (fraction,
    strategy); "ablation" for one pair where a method has a plain run and a DS-only or LR-only run at a
    single DS/LR setting; otherwise "method_pair".
    """
    if frame.empty:
        return "method_pair"
    if is_removal(frame):
        return "removal"
    data = prepare(frame)
    kd = data[data["method"] == KD]
    swept = kd[kd["ds"] & kd["lr"]]
    if len(configs(swept, ("lr_lambda1", "lr_lambda2"))) >= 2:
        return "lambda"
    if len(configs(swept, ("lr_eta",))) >= 2:
        return "eta"
    if is_selection_study(kd):
        return "selection"
    if is_ablation(data):
        return "ablation"
    return "method_pair"



def render(frame: pd.DataFrame, metric: str = "best", layout: str | None = None, title: str = "") -> tuple[str, Table]:
    """The table in ``layout`` (recognised from the records when None), under a ``### title`` heading."""
    layout = layout or detect_layout(frame)
    if layout != "removal":  # a drop run is neither a DS run nor a baseline of any other layout
        frame = without_removal(frame)
    if layout == "method_pair":
        return layout, method_pair_table(frame, metric=metric, title=title)
    table = LAYOUTS[layout](frame, metric=metric)
    heading = f"### {title}\n\n" if title else ""
    return layout, Table(markdown=heading + table.markdown, tidy=table.tidy)
