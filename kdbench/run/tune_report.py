"""What a study leaves behind: the best values as a suite fragment, the trials as CSV, and two plots
(validation top-1 over trial numbers, and each parameter's importance once enough trials are complete).

Everything is read back from the study's storage, so the report of a study that several workers (or
several ``kdbench tune`` calls) filled is the same as that of one run straight through.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
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


VALUE_LABEL = "validation top-1 (%)"  # every study maximises it (kdbench.run.tune.load)
MIN_IMPORTANCE_TRIALS = 5  # complete trials before fANOVA's importances mean anything (it runs from two)


def report(study: Study, optuna_study: Any, out: Path) -> StudyReport:
    """Write ``best.yaml``, ``trials.csv``, ``history.png`` and ``importance.png`` into ``out``; where the
    importances would mean nothing, ``importance.txt`` says why instead of the plot."""
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
                  f"{complete} complete of {len(states)}); floats to 4 significant digits\n")
        files["best.yaml"] = (header + fragment).encode()
    files.update(_plots(optuna_study, notes))
    stale = "importance.txt" if "importance.png" in files else "importance.png"
    (out / stale).unlink(missing_ok=True)  # what an earlier report of this study wrote in its place
    paths = write_outputs(out, files)
    return StudyReport(complete, states.count("PRUNED"), states.count("FAIL"), best_value, best_params, fragment,
                       paths, notes)


def importance_note(optuna_study: Any) -> str | None:
    """Why the importance plot would mean nothing, in one line; None when it is worth drawing."""
    trials = [t for t in optuna_study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    params = sorted({name for t in trials for name in t.params})
    if len(params) == 1:
        return f"no importance plot: the search space has one parameter ({params[0]}), its importance is 1"
    if len(trials) < MIN_IMPORTANCE_TRIALS:
        return (f"no importance plot: {len(trials)} complete trial(s), it needs at least {MIN_IMPORTANCE_TRIALS} to "
                "mean anything")
    return None


def history_figure(optuna_study: Any) -> Any:
    """Each complete trial's validation top-1 and the best so far, over whole trial numbers."""
    from matplotlib.ticker import MaxNLocator
    from optuna.visualization import matplotlib as optuna_plots

    axes = _quietly(optuna_plots.plot_optimization_history, optuna_study, target_name=VALUE_LABEL)
    _title(axes, f"study {optuna_study.study_name}: {VALUE_LABEL} per trial")
    axes.set_xlabel("trial")
    axes.set_ylabel(VALUE_LABEL)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes.get_legend_handles_labels()
    names = {VALUE_LABEL: "trial", "Best Value": "best so far"}
    axes.legend(handles, [names.get(label, label) for label in labels], loc="best")
    return axes.figure


def importance_figure(optuna_study: Any) -> Any:
    """How much of the spread in validation top-1 each parameter accounts for (fANOVA, seeded: the same
    study draws the same plot)."""
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization import matplotlib as optuna_plots

    axes = _quietly(optuna_plots.plot_param_importances, optuna_study, evaluator=FanovaImportanceEvaluator(seed=0),
                    target_name=VALUE_LABEL)
    _title(axes, f"study {optuna_study.study_name}: what drives {VALUE_LABEL}")
    axes.set_xlabel("importance for validation top-1 (fANOVA, sums to 1)")
    axes.set_ylabel("parameter")
    if axes.get_legend() is not None:  # one objective: the legend would only repeat the axis label
        axes.get_legend().remove()
    return axes.figure


def _title(axes: Any, text: str) -> None:
    """Optuna's own title (centred on one plot, left on the other) gives way to ``text``, on the left."""
    for loc in ("center", "right"):
        axes.set_title("", loc=loc)
    axes.set_title(text, loc="left")


def _quietly(draw: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore", ExperimentalWarning)
        return draw(*args, **kwargs)


def _plots(optuna_study: Any, notes: list[str]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    drawings: dict[str, Callable[[Any], Any]] = {"history.png": history_figure, "importance.png": importance_figure}
    for name, draw in drawings.items():
        if name == "importance.png" and (note := importance_note(optuna_study)) is not None:
            notes.append(note)
            out["importance.txt"] = (note + "\n").encode()
            continue
        with matplotlib.rc_context():  # Optuna switches to its ggplot style: only for these plots
            try:
                figure = draw(optuna_study)
            except (ValueError, RuntimeError) as exc:  # e.g. a single distinct value: nothing to attribute
                notes.append(f"no {name}: {exc}")
                continue
            figure.set_size_inches(7, 4.5)
            figure.tight_layout()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=110)
            plt.close(figure)
        out[name] = buffer.getvalue()
    return out
