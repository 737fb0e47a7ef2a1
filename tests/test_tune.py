"""`kdbench tune`: studies in real Optuna storage, trials that are runs (and are reused), an objective on
the validation split only, pruning, parallel trials, the report, --final, and one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
import yaml

from kdbench.cli import main
from kdbench.plan.tune_file import Distribution
from kdbench.run.tune import suggest, validation_curve
from kdbench.run.tune_report import (
    MIN_IMPORTANCE_TRIALS,
    history_figure,
    importance_figure,
    importance_note,
    report,
)

SUITE = """
    name: t
    dataset: {name: digits, params: {image_size: 8, val_fraction: 0.25}}
    recipe: {epochs: 2, batch_size: 64, lr: 0.05, milestones: []}
    teacher_recipe: {epochs: 1}
    seeds: [0, 1]
    pairs: [{teacher: resnet8, student: resnet8}]
    methods: [kd, {name: kd, revision: paper}]
    tune:
      method: kd
      space: SPACE
      trials: 4
      sampler: {name: tpe, seed: 0}
      pruner: PRUNER
"""


def suite_text(space: str = "{params.T: {low: 1, high: 8, log: true}, params.alpha: {low: 0.1, high: 1.0}}",
               pruner: str = "none", **replace: str) -> str:
    text = SUITE.replace("SPACE", space).replace("PRUNER", pruner)
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def trial_records(runs: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (runs / "raw" / "t.tune").glob("*/record.json")}


def storage(runs: Path) -> str:
    return f"sqlite:///{runs.resolve() / 't' / 'tune' / 'studies.db'}"


def test_a_study_lives_in_sqlite_and_its_values_are_validation_top1(write_suite, tmp_path, capsys):
    suite, runs = write_suite(suite_text()), tmp_path / "runs"
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet", "--final"]) == 0
    study = optuna.load_study(study_name="t.kd", storage=storage(runs))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4
    records = trial_records(runs)
    for trial in study.trials:
        record = records[trial.user_attrs["run_key"]]
        validation = [m["val_top1"] for m in record["metrics"]]
        assert trial.value == max(validation)  # the objective: best validation top-1 ...
        assert record["spec"]["method"]["params"]["T"] == trial.params["params.T"]
    # ... and never the test accuracy (the records carry both; on digits they differ)
    assert any(t.value != records[t.user_attrs["run_key"]]["best_top1"] for t in study.trials)
    out = tmp_path / "runs" / "t" / "tune" / "kd"
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["methods"][0]["label"] == "kd (tuned)"
    assert best["methods"][0]["params"]["T"] == float(f"{study.best_params['params.T']:.4g}")  # 4 significant digits
    assert len((out / "trials.csv").read_text().splitlines()) == 1 + 4
    assert (out / "history.png").read_bytes()[:4] == b"\x89PNG"
    # four complete trials are too few for importances: a note instead of the plot
    assert not (out / "importance.png").exists()
    assert (out / "importance.txt").read_text().startswith("no importance plot: 4 complete trial(s)")
    assert "no importance plot" in capsys.readouterr().out
    # --final: the best values and the untuned entry, every seed, test top-1 side by side
    table = (tmp_path / "runs" / "t.final" / "table.md").read_text()
    assert "kd (tuned)" in table and "| kd " in table
    finals = [json.loads(p.read_text()) for p in (runs / "raw" / "t.final").glob("*/record.json")]
    assert sorted((r["label"], r["seed"]) for r in finals) == [("kd", 0), ("kd", 1), ("kd (tuned)", 0),
                                                              ("kd (tuned)", 1)]


def test_trials_reuse_trained_runs_and_a_second_tune_continues_the_study(write_suite, tmp_path):
    suite, runs = write_suite(suite_text(space="{params.T: {choices: [2, 4]}}")), tmp_path / "runs"
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet"]) == 0
    first = trial_records(runs)
    study = optuna.load_study(study_name="t.kd", storage=storage(runs))
    assert len(study.trials) == 4 and len(first) == len({t.params["params.T"] for t in study.trials}) <= 2
    stamps = {k: r["finished_at"] for k, r in first.items()}
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet", "--trials", "6"]) == 0
    study = optuna.load_study(study_name="t.kd", storage=storage(runs))
    assert len(study.trials) == 6 and all(t.state.name == "COMPLETE" for t in study.trials)
    again = trial_records(runs)
    assert {k: again[k]["finished_at"] for k in stamps} == stamps  # nothing finished was retrained
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet", "--trials", "6"]) == 0  # already there
    assert len(optuna.load_study(study_name="t.kd", storage=storage(runs)).trials) == 6


def test_a_pruned_trial_is_pruned_not_failed_and_leaves_no_record(write_suite, tmp_path):
    # validation top-1 can never reach 101: the threshold pruner stops every trial after its first epoch
    suite = write_suite(suite_text(pruner="{name: threshold, params: {lower: 101.0}}"))
    runs = tmp_path / "runs"
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet", "--trials", "2"]) == 0
    study = optuna.load_study(study_name="t.kd", storage=storage(runs))
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]
    assert all(list(t.intermediate_values) == [1] for t in study.trials)
    assert trial_records(runs) == {} and not list((runs / "raw").glob("*/*/failure.json"))


def test_trials_run_in_parallel_through_the_pool_executor(write_suite, tmp_path):
    suite, runs = write_suite(suite_text()), tmp_path / "runs"
    assert main(["tune", str(suite), "--runs", str(runs), "--quiet", "--trials", "2", "--executor", "pool",
                 "--param", "devices=2", "--storage", f"journal:{tmp_path / 'journal.log'}"]) == 0
    journal = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log")))
    study = optuna.load_study(study_name="t.kd", storage=journal)
    assert len(study.trials) == 2 and all(t.state.name == "COMPLETE" for t in study.trials)
    assert len(trial_records(runs)) == len({t.user_attrs["run_key"] for t in study.trials})
    assert all(r["environment"]["executor"] == "pool" for r in trial_records(runs).values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_size: 8, val_fraction: 0.25": "image_size: 8"}, "needs a validation split"),
        ({"SPACE": "{params.Tx: {low: 1, high: 8}}"}, "method 'kd' has no 'Tx'; did you mean 'T'"),
        ({"SPACE": "{params.T: {low: 8, high: 1}}"}, "empty range"),
        ({"SPACE": "{params.T: {choices: []}}"}, "choices is empty"),
        ({"SPACE": "{revision.lambda1: {low: 1, high: 2}}"}, "has no revision block"),
        ({"SPACE": "{learning.rate: {low: 1, high: 2}}"}, "not a searchable path"),
        ({"method: kd\n": "method: kd+DS\n"}, "no method entry labelled 'kd+DS'"),
        ({"SPACE": "{recipe.batch_size: {low: 0, high: 4}}"}, "makes no valid run"),
    ],
)
def test_bad_studies_are_one_line_and_exit_2(write_suite, tmp_path, capsys, change, message):
    text = SUITE
    for old, new in change.items():
        text = text.replace(old, new)
    suite = write_suite(text.replace("SPACE", "{params.T: {low: 1, high: 8}}").replace("PRUNER", "none"))
    assert main(["tune", str(suite), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "runs" / "raw").exists()


def test_a_bad_space_names_its_line(write_suite, tmp_path, capsys):
    suite = write_suite(suite_text(space="\n        params.T: {low: 8, high: 1}"))
    assert main(["tune", str(suite), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"{suite}:11: tune.0.space.params.T" in err


def test_a_range_is_over_integers_when_its_value_is_an_int(write_suite, registry):
    from kdbench.plan import load_suite
    from kdbench.plan.tune import studies

    suite = write_suite(suite_text(space="{params.T: {low: 1, high: 8}, recipe.epochs: {low: 1, high: 3}}"))
    (study,) = studies(load_suite(suite), registry)
    assert study.integer_paths == {"recipe.epochs"}  # T is a float parameter even with integer bounds


def test_suggestions_follow_the_distributions():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    values = suggest(trial, {"params.T": Distribution(low=1, high=8, log=True),
                             "recipe.epochs": Distribution(low=2, high=6, step=2),
                             "selection.fraction": Distribution(low=0.2, high=1.0, step=0.1),
                             "revision.lambda1": Distribution(choices=[0.5, 1, 2])}, frozenset({"recipe.epochs"}))
    assert 1 <= values["params.T"] <= 8 and isinstance(values["params.T"], float)
    assert values["recipe.epochs"] in (2, 4, 6) and isinstance(values["recipe.epochs"], int)
    assert round(values["selection.fraction"] * 10) == pytest.approx(values["selection.fraction"] * 10)
    assert values["revision.lambda1"] in (0.5, 1, 2)


def test_the_pruner_sees_a_running_best_for_the_best_objective():
    class Epoch:
        def __init__(self, v):
            self.val_top1 = v

    epochs = [Epoch(v) for v in (50.0, 70.0, 60.0)]
    assert validation_curve(epochs, "best") == [50.0, 70.0, 70.0]
    assert validation_curve(epochs, "last") == [50.0, 70.0, 60.0]


def synthetic_study(trials: int, params: tuple[str, ...] = ("params.T", "params.alpha")) -> optuna.Study:
    """A study filled without training: validation top-1 as a plain function of the values."""
    study = optuna.create_study(study_name="t.kd", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: sum(10 * t.suggest_float(p, 0.1, 8.0) for p in params) % 100, n_trials=trials)
    return study


def test_the_history_plot_reads_validation_top1_over_whole_trials():
    figure = history_figure(synthetic_study(3))  # three trials: Optuna's own ticks fall at 0.25
    (axes,) = figure.axes
    assert axes.get_ylabel() == "validation top-1 (%)" and axes.get_xlabel() == "trial"
    assert "Objective Value" not in [axes.get_ylabel(), *(t.get_text() for t in axes.get_legend().get_texts())]
    assert axes.get_title(loc="left") == "study t.kd: validation top-1 (%) per trial" and not axes.get_title()
    figure.canvas.draw()
    ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_the_importance_plot_says_what_it_attributes():
    study = synthetic_study(MIN_IMPORTANCE_TRIALS)
    assert importance_note(study) is None
    (axes,) = importance_figure(study).axes
    assert axes.get_xlabel() == "importance for validation top-1 (fANOVA, sums to 1)"
    assert axes.get_ylabel() == "parameter" and axes.get_legend() is None
    assert sorted(t.get_text() for t in axes.get_yticklabels()) == ["params.T", "params.alpha"]


def test_the_importance_plot_needs_enough_trials_and_two_parameters():
    few = importance_note(synthetic_study(MIN_IMPORTANCE_TRIALS - 1))
    assert few == f"no importance plot: {MIN_IMPORTANCE_TRIALS - 1} complete trial(s), it needs at least " \
                  f"{MIN_IMPORTANCE_TRIALS} to mean anything"
    one = importance_note(synthetic_study(8, params=("params.T",)))
    assert one == "no importance plot: the search space has one parameter (params.T), its importance is 1"


def test_the_report_rounds_best_yaml_and_notes_a_missing_importance_plot(write_suite, registry, tmp_path):
    from kdbench.plan import load_suite
    from kdbench.plan.tune import studies

    space = ("{params.T: {low: 1, high: 20000}, params.alpha: {choices: [0.123456, 0.5]}, "
             "recipe.epochs: {low: 1, high: 9}}")
    (study,) = studies(load_suite(write_suite(suite_text(space=space))), registry)
    optuna_study = optuna.create_study(study_name=study.name, direction="maximize")
    best = {"params.T": 12345.6, "params.alpha": 0.123456, "recipe.epochs": 3}
    dists = {"params.T": optuna.distributions.FloatDistribution(1, 20000),
             "params.alpha": optuna.distributions.CategoricalDistribution([0.123456, 0.5]),
             "recipe.epochs": optuna.distributions.IntDistribution(1, 9)}
    optuna_study.add_trial(optuna.trial.create_trial(params=best, distributions=dists, value=91.23456))
    out = tmp_path / "out"
    result = report(study, optuna_study, out)
    text = (out / "best.yaml").read_text()
    assert text.startswith("# study t.kd: best validation top-1 91.23 (trial 0, 1 complete of 1)")
    fragment = yaml.safe_load(text)
    assert fragment["methods"][0]["params"] == {"T": 12350.0, "alpha": 0.123456}  # a choice stays as listed
    assert fragment["recipe"] == {"epochs": 3} and isinstance(fragment["recipe"]["epochs"], int)
    assert result.best_params == best  # Optuna's values, unrounded, for --final
    assert result.notes == [(out / "importance.txt").read_text().strip()] and not (out / "importance.png").exists()
    for _ in range(MIN_IMPORTANCE_TRIALS):  # enough trials now: the plot replaces the note
        optuna_study.add_trial(optuna.trial.create_trial(
            params={"params.T": float(len(optuna_study.trials)), "params.alpha": 0.5, "recipe.epochs": 2},
            distributions=dists, value=float(len(optuna_study.trials))))
    result = report(study, optuna_study, out)
    assert result.notes == [] and (out / "importance.png").is_file() and not (out / "importance.txt").exists()


@pytest.mark.parametrize(("value", "shown"), [(0.123456, 0.1235), (12345.6, 12350.0), (3, 3), (2.5e-05, 2.5e-05),
                                              (1.0, 1.0), (True, True), ("sgd", "sgd")])
def test_best_values_keep_four_significant_digits(value, shown):
    from kdbench.plan.tune import significant

    assert significant(value) == shown and type(significant(value)) is type(value)


def test_a_trials_epoch_lines_show_validation_top1_and_the_final_runs_test_top1(write_suite, tmp_path, capsys):
    # what a study judges a trial by is what its progress shows; --final's runs are judged on the test split
    suite = write_suite(suite_text(space="{params.T: {choices: [2]}}").replace("seeds: [0, 1]", "seeds: [0]"))
    assert main(["tune", str(suite), "--runs", str(tmp_path / "runs"), "--trials", "1", "--final"]) == 0
    err = capsys.readouterr().err.splitlines()
    # the trial (T=2), then --final's untuned kd (T=4; its tuned twin is the trial's run, reused)
    epochs = [line for line in err if line.startswith("kd resnet8 → resnet8 seed 0: epoch ")]
    assert len(epochs) == 4, err
    assert all(re.search(r"/2 loss [\d.]+ val top1 [\d.]+", line) for line in epochs[:2]), epochs
    assert all(re.search(r"/2 loss [\d.]+ top1 [\d.]+", line) for line in epochs[2:]), epochs
