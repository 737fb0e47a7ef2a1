"""What a study leaves behind: the best values as a suite fragment, the trials as CSV, and two plots.

Everything is read back from the study's storage, so the report of a study that several workers (or
several ``kdbench tune`` calls) filled is the same as that of one run straight through.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kdbench.plan.tune import Study, tuned_entry
from kdbench.store import write_outputs


@dataclass(frozen=True)
class StudyReport:
    complete: int
    pruned: int
    failed: int
    best_value: float | None
    best_params: dict[str, Any]
    fragment: str  # ready-to-paste YAML: the tuned method entry (and recipe fields)
    paths: list[Path]
    notes: list[str]  # what could not be drawn, and why


def report(study: Study, optuna_study: Any, out: Path) -> StudyReport:
    """Write ``best.yaml``, ``trials.csv``, ``history.png`` and ``importance.png`` into ``out``."""
    states = [t.state.name for t in optuna_study.get_trials(deepcopy=False)]
    complete = states.count("COMPLETE")
    files: dict[str, bytes] = {"trials.csv": optuna_study.trials_dataframe().to_csv(index=False).encode()}
    notes: list[str] = []
    best_value, best_params, fragment = None, {}, ""
    if complete:
        best = optuna_study.best_trial
        best_value, best_params = float(best.value), dict(best.params)
        fragment = yaml.safe_dump(tuned_entry(study, best_params), sort_keys=False)
        header = (f"# study {study.name}: best validation top-1 {best_value:.2f} (trial {best.number}, "
                  f"{complete} complete of {len(states)})\n")
        files["best.yaml"] = (header + fragment).encode()
    files.update(_plots(optuna_study, complete, notes))
    paths = write_outputs(out, files)
    return StudyReport(complete, states.count("PRUNED"), states.count("FAIL"), best_value, best_params, fragment,
                       paths, notes)


def _plots(optuna_study: Any, complete: int, notes: list[str]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.exceptions import ExperimentalWarning
    from optuna.visualization import matplotlib as optuna_plots

    out: dict[str, bytes] = {}
    drawings = {"history.png": optuna_plots.plot_optimization_history,
                "importance.png": optuna_plots.plot_param_importances}
    for name, draw in drawings.items():
        if name == "importance.png" and complete < 2:
            notes.append("no importance plot: it needs two complete trials")
            continue
        try:
            with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
                warnings.simplefilter("ignore", ExperimentalWarning)
                axes = draw(optuna_study)
        except (ValueError, RuntimeError) as exc:  # e.g. a single distinct value: nothing to attribute
            notes.append(f"no {name}: {exc}")
            continue
        figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
        figure.set_size_inches(7, 4.5)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        plt.close(figure)
        out[name] = buffer.getvalue()
    return out
