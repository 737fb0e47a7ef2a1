"""The exact teacher-output cache: the view grid, exactness against the live teacher, keys, files that must
not be served, auto/on/off, float16 error, the device-memory fallback, and a suite through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdbench.cli import main
from kdbench.contracts import PairInfo
from kdbench.errors import KdbenchWarning
from kdbench.plan import Recipe
from kdbench.plan.spec import ComponentRef, DatasetRef, RunSpec, TeacherSpec, content_key
from kdbench.run.components import Components
from kdbench.run.options import RunOptions
from kdbench.run.teacher_outputs import (
    LOOKUP_SECONDS_PER_IMAGE,
    CacheCosts,
    RememberingTeacher,
    TeacherOutputs,
    auto_decision,
    compute_identity,
    forward_seconds,
)
from kdbench.store import TeacherOutputStore
from kdbench.train.batches import AugmentParams, iterate_batches, training_augmentation
from kdbench.train.callbacks import Callback
from kdbench.train.context import build_method_context
from kdbench.train.engine import EngineConfig, train
from kdbench.train.teacher_outputs import CachedTeacherLogits, LiveTeacher, ViewGrid, build_teacher_logits
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.methods.fitnet import FitNet
from kdbench_plugins.methods.kd import HintonKD
from tests.zoo import CIFAR_MODELS

SYNTHETIC = {"num_train": 40, "num_test": 24, "num_classes": 4, "image_size": 8}
GRID = ViewGrid.of(training_augmentation(True))


@pytest.fixture(scope="module")
def data():
    return make_synthetic(**SYNTHETIC)


def teacher_net(seed: int = 123):
    torch.manual_seed(seed)
    return CIFAR_MODELS["resnet8"](num_classes=4).eval()


def table_of(teacher, data, grid=GRID, batch_size=1024):
    table = torch.full((grid.count, data.num_train, data.num_classes), float("nan"))
    rows = table.view(-1, data.num_classes)
    build_teacher_logits(teacher, data, grid, lambda first, x: rows[first:first + x.shape[0]].copy_(x),
                         batch_size=batch_size, mixed_precision=True)
    assert not table.isnan().any()
    return table


# -- the view grid ------------------------------------------------------------------------------------------

def test_view_grid_counts_and_numbers_views_by_hand():
    assert GRID.count == 9 * 9 * 2 == 162
    assert ViewGrid.of(None).count == 1
    params = AugmentParams(dx=torch.tensor([0, 0, 8, 3]), dy=torch.tensor([0, 0, 8, 1]),
                           flip=torch.tensor([False, True, True, False]))
    # v = (dy · 9 + dx) · 2 + flip
    assert GRID.view_index(params).tolist() == [0, 1, 161, (1 * 9 + 3) * 2]
    assert ViewGrid.of(None).view_index(params) is None


def test_every_view_maps_back_to_its_parameters():
    views = torch.arange(GRID.count)
    assert GRID.view_index(GRID.params(views)).tolist() == views.tolist()
    last = GRID.params(torch.tensor([161]))  # (8 · 9 + 8) · 2 + 1
    assert (last.dy.tolist(), last.dx.tolist(), last.flip.tolist()) == ([8], [8], [True])


# -- exactness ----------------------------------------------------------------------------------------------

def test_served_logits_equal_the_live_teachers_on_the_same_views(data):
    teacher = teacher_net()
    cached, live = CachedTeacherLogits(table_of(teacher, data, batch_size=7), GRID), LiveTeacher(teacher)
    batches = iterate_batches(data.train_images, data.train_labels, batch_size=16, mean=data.mean, std=data.std,
                              shuffle=True, generator=torch.Generator().manual_seed(3),
                              augment=training_augmentation(True))
    for batch in batches:
        expected, served = live(batch), cached(batch)
        scale = expected.abs().max()
        assert float((served - expected).abs().max()) <= 1e-6 * float(scale)


def test_unaugmented_runs_have_one_view(data):
    teacher, grid = teacher_net(), ViewGrid.of(None)
    cached = CachedTeacherLogits(table_of(teacher, data, grid), grid)
    batch = next(iterate_batches(data.train_images, data.train_labels, batch_size=40, mean=data.mean, std=data.std,
                                 shuffle=False))
    torch.testing.assert_close(cached(batch), LiveTeacher(teacher)(batch), rtol=1e-6, atol=1e-6)


def kd_outcome(data, teacher, teacher_logits=None, revision=False):
    torch.manual_seed(0)
    student, method = CIFAR_MODELS["resnet8"](num_classes=4), HintonKD()
    recipe = Recipe(epochs=3, batch_size=16, lr=0.05, milestones=(2,)).resolved("resnet8")
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", "resnet8"), recipe))
    return train(student, method, data, EngineConfig(recipe=recipe, seed=0), teacher=teacher,
                 teacher_logits=teacher_logits)


def test_a_kd_run_with_the_cache_has_the_live_runs_epochs(data):
    teacher = teacher_net()
    live = kd_outcome(data, teacher)
    cached = kd_outcome(data, teacher, CachedTeacherLogits(table_of(teacher, data), GRID))
    for a, b in zip(live.epochs, cached.epochs, strict=True):
        assert a.test_top1 == b.test_top1 and a.train_top1 == b.train_top1
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
        assert a.losses == pytest.approx(b.losses, rel=1e-6)


def test_a_feature_method_never_reads_the_cache(data):
    poisoned = CachedTeacherLogits(torch.full((GRID.count, data.num_train, 4), float("nan")), GRID)
    teacher = teacher_net()
    torch.manual_seed(0)
    student, method = CIFAR_MODELS["resnet8"](num_classes=4), FitNet()
    recipe = Recipe(epochs=1, batch_size=16, milestones=()).resolved("resnet8")
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", "resnet8"), recipe))
    outcome = train(student, method, data, EngineConfig(recipe=recipe, seed=0), teacher=teacher,
                    teacher_logits=poisoned)
    assert np.isfinite(outcome.epochs[0].train_loss)


def test_compile_wraps_the_student_and_the_loss(data, monkeypatch):
    compiled = []

    def fake_compile(fn, **kwargs):
        compiled.append(fn)
        return fn

    monkeypatch.setattr(torch, "compile", fake_compile)
    torch.manual_seed(0)
    student, method = CIFAR_MODELS["resnet8"](num_classes=4), HintonKD()
    recipe = Recipe(epochs=1, batch_size=16, milestones=(), compile=True).resolved("resnet8")
    method.setup(build_method_context(method, student, None, data, PairInfo("resnet8", "resnet8"), recipe))
    train(student, method, data, EngineConfig(recipe=recipe, seed=0), teacher=teacher_net())
    assert compiled[0] is student and compiled[1] == method.loss_terms


# -- keys ---------------------------------------------------------------------------------------------------

def run_spec(dataset=SYNTHETIC, teacher_seed=0, **recipe) -> RunSpec:
    ref = DatasetRef("synthetic", dict(dataset), "1")
    resolved = Recipe(epochs=1, batch_size=16, milestones=(), **recipe).resolved("resnet8")
    teacher = TeacherSpec("resnet8", "1", ref, resolved, teacher_seed)
    return RunSpec("s", "kd", ComponentRef("kd", {"T": 4.0}), "resnet8", "1", ref, resolved, 0, teacher=teacher)


@pytest.fixture
def outputs(isolated_home):
    components = Components(RunOptions(home=str(isolated_home), device="cpu", quiet=True))
    return TeacherOutputs(components, TeacherOutputStore(isolated_home), quiet=True)


def test_the_cache_key_follows_teacher_dataset_augmentation_and_precision(outputs, data):
    def key(spec=None, teacher=None, grid=GRID, dtype="float32", dataset=data):
        spec = spec or run_spec()
        return content_key(outputs.identity(spec, teacher or teacher_net(), dataset, grid, dtype))

    base = key()
    assert key() == base  # stable
    assert key(teacher=teacher_net(seed=7)) != base  # other weights
    assert key(spec=run_spec(teacher_seed=1)) != base  # another teacher spec
    other = {**SYNTHETIC, "seed": 5}
    assert key(spec=run_spec(dataset=other), dataset=make_synthetic(**other)) != base  # other data
    assert key(grid=ViewGrid.of(None)) != base  # another augmentation
    assert key(dtype="float16") != base  # another precision


def test_the_cache_settings_stay_out_of_the_run_key_except_a_lossy_dtype():
    base = run_spec().key
    assert run_spec(teacher_cache="off").key == base and run_spec(compile=True).key == base
    assert run_spec(teacher_cache_dtype="float16").key != base
    assert run_spec().teacher.key == run_spec(teacher_cache="on").teacher.key


def test_yaml_on_and_off_are_modes_not_booleans():
    assert Recipe.model_validate({"teacher_cache": True}).teacher_cache == "on"
    assert Recipe.model_validate({"teacher_cache": False}).teacher_cache == "off"
    with pytest.raises(ValueError):
        Recipe.model_validate({"teacher_cache": "maybe"})


# -- the store: what must never be served -------------------------------------------------------------------

def test_missing_truncated_foreign_or_undescribed_tables_are_not_served(isolated_home):
    store, identity, shape = TeacherOutputStore(isolated_home), {"teacher": "a"}, (2, 3, 4)
    assert store.check("k", identity, shape, "float32") == "missing"
    writer = store.writer("k", shape, "float32")
    writer.write(0, torch.arange(12.0).view(3, 4))
    writer.write(3, torch.arange(12.0).view(3, 4) + 1)
    meta = writer.commit(identity)
    assert store.check("k", identity, shape, "float32") == meta
    assert store.open(meta)[1, 2].tolist() == [9.0, 10.0, 11.0, 12.0]
    assert "another teacher" in store.check("k", {"teacher": "b"}, shape, "float32")
    assert "expected" in store.check("k", identity, (2, 3, 5), "float32")
    bin_path, meta_path = store.paths("k")
    with bin_path.open("r+b") as fh:
        fh.truncate(10)
    assert "truncated" in store.check("k", identity, shape, "float32")
    meta_path.write_text("{not json")
    assert "no valid description" in store.check("k", identity, shape, "float32")


def test_a_float16_table_records_its_largest_error(isolated_home):
    store = TeacherOutputStore(isolated_home)
    values = torch.tensor([[1.0001, -2.7182818, 1000.3, 0.1]], dtype=torch.float32)
    writer = store.writer("h", (1, 1, 4), "float16")
    writer.write(0, values)
    meta = writer.commit({})
    as_half = values.numpy().astype(np.float16).astype(np.float32)
    expected = float(np.abs(as_half - values.numpy()).max())  # 1000.3 → 1000.5 in float16
    assert meta.max_abs_error == pytest.approx(expected) and expected == pytest.approx(0.2, abs=1e-3)
    assert meta.max_rel_error == pytest.approx(expected / 1000.3)
    assert store.open(meta).dtype == torch.float16


# -- choosing and obtaining -----------------------------------------------------------------------------------

def costs(**given) -> CacheCosts:
    """1,000 images at 100 µs a forward pass: a 162-view table costs 16.2 s to build, an epoch 0.1 s live."""
    return CacheCosts(**{"views": 162, "images": 1000, "forward_s": 1e-4, "run_epochs": 15, "plan_epochs": 15,
                         **given})


def test_auto_builds_a_table_only_when_the_live_teacher_would_cost_more():
    assert auto_decision(costs(plan_epochs=100)) == (
        False, "auto: live teacher: the plan's 100 teacher epochs ≈ 10.0 s live ≤ a 162-view table ≈ 16.2 s to build")
    # without remembered logits (a GPU) the plan's epochs are the live cost: 225 epochs ≈ 22.5 s > 16.2 s
    build, reason = auto_decision(costs(plan_epochs=225, remembers=False))
    assert build and reason == ("auto: table: the plan's 225 teacher epochs ≈ 22.5 s live > "
                                "a 162-view table ≈ 16.2 s to build")
    # a cheaper build (a GPU's large batches) tips the balance
    assert auto_decision(costs(plan_epochs=150, remembers=False, build_forward_s=5e-5))[0]
    # a table whose reads cost as much as the forward pass never pays
    assert not auto_decision(costs(plan_epochs=10_000, forward_s=LOOKUP_SECONDS_PER_IMAGE, remembers=False))[0]


def test_with_remembered_logits_auto_builds_once_live_can_no_longer_be_cheaper():
    # the quickstart's shape: 225 teacher epochs in the plan, 15 a run, a seed's runs repeating its batches
    build, reason = auto_decision(costs(plan_epochs=225))
    assert not build and "remembered for runs with the same batches" in reason
    assert "this run's 15 teacher epochs ≈ 1.5 s live + 0.0 s so far ≤ a 162-view table ≈ 16.2 s" in reason
    assert "(the plan's 225 teacher epochs ≈ 22.5 s live if no run repeats another's batches)" in reason
    build, reason = auto_decision(costs(plan_epochs=225, run_epochs=0, spent_s=3.0))
    assert not build and reason.startswith("auto: live teacher, remembered: this run's 0 teacher epochs ≈ 0.0 s")
    build, reason = auto_decision(costs(plan_epochs=225, spent_s=15.0))  # 15.0 + 1.5 > 16.2: the table now
    assert build and reason == ("auto: table: 15.0 s live so far + this run's 15 teacher epochs ≈ 1.5 s live > "
                                "a 162-view table ≈ 16.2 s to build")
    build, reason = auto_decision(costs(plan_epochs=240, run_epochs=240))  # one long run pays for it alone
    assert build and reason == ("auto: table: this run's 240 teacher epochs ≈ 24.0 s live > "
                                "a 162-view table ≈ 16.2 s to build")


def test_auto_uses_the_costs_it_measures(outputs, data):
    teacher, method = teacher_net(), HintonKD()
    few = outputs.for_run(run_spec(), method, teacher, data)
    assert isinstance(few.source, RememberingTeacher) and not few.record.used
    assert few.record.reason.startswith("auto: live teacher: the plan's 1 teacher epochs ≈ ")
    key = content_key(outputs.identity(run_spec(), teacher, data, GRID, "float32"))
    live, build = outputs._forward[(key, 16)], outputs._forward[(key, 40)]  # the run's batch; the build's (all 40)
    assert 0 < live < 1 and 0 < build < 1 and f"a 162-view table ≈ {162 * 40 * build:.1f} s" in few.record.reason
    spec = run_spec()
    long_run = replace(spec, recipe=replace(spec.recipe, epochs=200))
    many = outputs.for_run(long_run, method, teacher, data)
    assert many.record.used and many.record.built_seconds is not None
    # its first epoch's batches are the 1-epoch run's, remembered: 199 epochs left to run live
    assert "this run's 199 teacher epochs" in many.record.reason and "162-view table" in many.record.reason
    again = outputs.for_run(run_spec(), method, teacher, data)  # now the table exists: a 1-epoch run uses it too
    assert again.record.used and again.record.built_seconds is None and again.record.reason == "auto: table exists"
    off = outputs.for_run(run_spec(teacher_cache="off"), method, teacher, data)
    assert off.source is None and off.record.reason == "teacher_cache: off"
    assert outputs.for_run(run_spec(teacher_cache="on"), FitNet(), teacher, data).record.used is False


def test_measuring_the_teacher_moves_nothing(data):
    teacher = teacher_net().train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    rng = torch.get_rng_state()
    assert forward_seconds(teacher, data, 16, "cpu", mixed_precision=True, channels_last=True) > 0
    assert teacher.training and torch.equal(torch.get_rng_state(), rng)
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_remembered_logits_are_the_live_teachers_and_a_seeds_next_run_costs_nothing(outputs, data):
    teacher, method = teacher_net(), HintonKD()
    spec = replace(run_spec(), teacher_passes=400)
    spec = replace(spec, recipe=replace(spec.recipe, epochs=3))
    first = outputs.for_run(spec, method, teacher, data)
    assert isinstance(first.source, RememberingTeacher) and "this run's 3 teacher epochs" in first.record.reason
    live = kd_outcome(data, teacher)
    remembered = kd_outcome(data, teacher, first.source)  # kd_outcome trains 3 epochs of 16, seed 0: spec's batches
    memory = first.source.memory
    assert memory.spent_s > 0 and len(memory.logits) == 3 * 3  # 3 epochs × 3 batches of 40 images
    again = kd_outcome(data, teacher, first.source)  # every batch remembered: the teacher does not run
    assert len(memory.logits) == 9
    for a, b, c in zip(live.epochs, remembered.epochs, again.epochs, strict=True):
        assert a.test_top1 == b.test_top1 == c.test_top1 and a.train_loss == b.train_loss == c.train_loss
        assert a.losses == b.losses == c.losses
    second = outputs.for_run(spec, method, teacher, data)
    assert second.source.memory is memory and not second.record.used
    assert second.record.reason.startswith("auto: live teacher, remembered: this run's 0 teacher epochs ≈ 0.0 s")
    assert outputs.for_run(replace(spec, seed=1), method, teacher, data).record.reason.count("this run's 3 ") == 1


def test_a_corrupt_table_is_rebuilt_with_a_warning(outputs, data, isolated_home):
    teacher, method = teacher_net(), HintonKD()
    first = outputs.for_run(run_spec(teacher_cache="on"), method, teacher, data)
    bin_path = isolated_home / "teacher_outputs" / f"{first.record.key}.bin"
    size = bin_path.stat().st_size
    with bin_path.open("r+b") as fh:
        fh.truncate(size // 2)
    fresh = TeacherOutputs(outputs.components, outputs.store, quiet=True)
    with pytest.warns(KdbenchWarning, match="truncated"):
        rebuilt = fresh.for_run(run_spec(teacher_cache="on"), method, teacher, data)
    assert rebuilt.record.used and rebuilt.record.built_seconds is not None and bin_path.stat().st_size == size
    batch = next(iterate_batches(data.train_images, data.train_labels, batch_size=8, mean=data.mean, std=data.std,
                                 shuffle=True, generator=torch.Generator().manual_seed(0),
                                 augment=training_augmentation(True)))
    torch.testing.assert_close(rebuilt.source(batch), LiveTeacher(teacher)(batch), rtol=1e-6, atol=1e-6)


def test_a_table_too_large_for_device_memory_falls_back_to_the_live_teacher(outputs, data, monkeypatch):
    teacher, method = teacher_net(), HintonKD()
    built = outputs.for_run(run_spec(teacher_cache="on"), method, teacher, data)
    meta = outputs.store.check(built.record.key, outputs.identity(run_spec(), teacher, data, GRID, "float32"),
                               (GRID.count, data.num_train, 4), "float32")
    empty = torch.empty

    def no_device_memory(*args, device=None, **kwargs):
        if device is not None and str(device) != "cpu":
            raise torch.OutOfMemoryError("CUDA out of memory")
        return empty(*args, device=device, **kwargs)

    monkeypatch.setattr(torch, "empty", no_device_memory)
    outputs.components.device = "cuda:0"
    outputs._loaded = None
    with pytest.warns(KdbenchWarning, match="does not fit in cuda:0 memory"):
        assert outputs._place(meta) is None
    monkeypatch.setattr(TeacherOutputs, "_place", lambda self, meta: None)
    outputs.components.device = "cpu"
    fallback = outputs.for_run(run_spec(teacher_cache="on"), method, teacher, data)
    assert fallback.source is None and not fallback.record.used and "device memory" in fallback.record.reason


def test_the_plan_counts_the_teacher_epochs_a_table_would_save(write_suite, registry):
    from kdbench.plan import expand, load_suite

    suite = write_suite("""
        name: passes
        dataset: {name: synthetic, params: {num_train: 40, num_test: 24, num_classes: 4, image_size: 8}}
        recipe: {epochs: 7, milestones: []}
        seeds: [0, 1]
        pairs: [{teacher: resnet8, student: resnet8}]
        methods: [ce, kd, {name: kd, revision: paper}, fitnet]
    """)
    plan = expand(load_suite(suite), registry)
    passes = {(s.label, s.seed): s.teacher_passes for s in plan.runs}
    assert passes[("kd", 0)] == passes[("kd+LR", 1)] == 2 * 2 * 7  # two logit-only entries × two seeds × 7 epochs
    assert passes[("ce", 0)] == 0 and passes[("fitnet", 0)] == 0


# -- through the CLI ------------------------------------------------------------------------------------------

CLI_SUITE = """
    name: cache
    dataset: {name: synthetic, params: {num_train: 40, num_test: 24, num_classes: 4, image_size: 8}}
    recipe: {epochs: 2, batch_size: 16, lr: 0.05, milestones: [], teacher_cache: MODE}
    teacher_recipe: {epochs: 1}
    seeds: [0]
    pairs: [{teacher: resnet8, student: resnet8}]
    methods: [kd, {name: kd, revision: paper}, fitnet]
"""


def run_records(root: Path) -> dict[str, dict]:
    return {r["label"]: r for r in (json.loads(p.read_text()) for p in root.glob("raw/cache/*/record.json"))}


def test_a_suite_with_the_cache_gives_the_live_numbers_and_says_so(write_suite, tmp_path, isolated_home):
    on = write_suite(CLI_SUITE.replace("MODE", "on"), "on.yaml")
    assert main(["run", str(on), "--quiet", "--runs", str(tmp_path / "on")]) == 0
    cached = run_records(tmp_path / "on")
    assert cached["kd"]["teacher_cache"]["used"] and cached["kd+LR"]["teacher_cache"]["used"]
    assert cached["fitnet"]["teacher_cache"] == {"used": False, "reason": "the method reads the teacher's features",
                                                "key": None, "dtype": None, "views": None, "built_seconds": None,
                                                "max_abs_error": None, "max_rel_error": None}
    assert len(list((isolated_home / "teacher_outputs").glob("*.bin"))) == 1  # one table shared by kd and kd+LR
    off = write_suite(CLI_SUITE.replace("MODE", "off"), "off.yaml")
    assert main(["run", str(off), "--quiet", "--runs", str(tmp_path / "off")]) == 0
    live = run_records(tmp_path / "off")
    for label in ("kd", "kd+LR"):
        assert live[label]["key"] == cached[label]["key"]  # the cache is not part of what a run is
        assert live[label]["teacher_cache"]["reason"] == "teacher_cache: off"
        for a, b in zip(live[label]["metrics"], cached[label]["metrics"], strict=True):
            assert a["test_top1"] == b["test_top1"] and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)


def test_a_bad_cache_mode_is_one_line_and_exit_2(write_suite, tmp_path, capsys):
    bad = write_suite(CLI_SUITE.replace("MODE", "maybe"))
    assert main(["run", str(bad), "--quiet", "--runs", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "teacher_cache" in err and not (tmp_path / "r").exists()


def test_warnings_module_is_quiet_for_a_valid_table(outputs, data):
    teacher = teacher_net()
    outputs.for_run(run_spec(teacher_cache="on"), HintonKD(), teacher, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        TeacherOutputs(outputs.components, outputs.store, quiet=True).for_run(run_spec(), HintonKD(), teacher, data)


# -- interrupted builds: the finished views are kept, and the next build goes on from them exactly ----------

SHAPE = (GRID.count, SYNTHETIC["num_train"], SYNTHETIC["num_classes"])
IDENTITY = {"teacher": "t", "format": 1}
PER_VIEW = 3  # batches of 16, 16 and 8 of the 40 training images


class Steps(Callback):
    """Counts a build's steps; raises KeyboardInterrupt (Ctrl-C) at step ``stop_at``."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.stop_at, self.steps, self.started = stop_at, 0, None

    def start(self, run):
        self.started = run

    def step(self):
        self.steps += 1
        if self.steps == self.stop_at:
            raise KeyboardInterrupt


def build_table(store, data, teacher, *, dtype="float32", batch_size=16, stop_at=None, identity=IDENTITY):
    """A build as the run layer makes one: the writer goes on from the finished views with their batch size."""
    writer, steps = store.writer("k", SHAPE, dtype, identity=identity, batch_size=batch_size), Steps(stop_at)
    try:
        build_teacher_logits(teacher, data, GRID, writer.write, batch_size=writer.batch_size, mixed_precision=True,
                             step=steps.step, first_view=writer.views_done, view_done=writer.view_done)
    except BaseException:
        writer.close()
        raise
    return writer.commit(), steps.steps, writer.resumed_views


def table_bytes(store, key="k"):
    return store.paths(key)[0].read_bytes()


@pytest.fixture(scope="module")
def one_go(data, tmp_path_factory):
    """The tables (float32 and float16) built without interruption, for the others to equal."""
    store = TeacherOutputStore(tmp_path_factory.mktemp("one_go"))
    out = {}
    for dtype in ("float32", "float16"):
        meta, steps, resumed = build_table(store, data, teacher_net(), dtype=dtype)
        assert steps == GRID.count * PER_VIEW and resumed == 0
        out[dtype] = (table_bytes(store), meta)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_a_build_interrupted_by_ctrl_c_goes_on_from_its_finished_views_to_the_same_table(data, one_go,
                                                                                          isolated_home, dtype):
    store, teacher = TeacherOutputStore(isolated_home), teacher_net()
    with pytest.raises(KeyboardInterrupt):
        build_table(store, data, teacher, dtype=dtype, stop_at=50 * PER_VIEW + 2)  # in view 50, two batches in
    partial, progress = store.build_paths("k")
    assert partial.is_file() and len(json.loads(progress.read_text())["views"]) == 50
    assert store.check("k", IDENTITY, SHAPE, dtype) == "missing"  # a half table is never served
    meta, steps, resumed = build_table(store, data, teacher, dtype=dtype)
    assert resumed == 50 and steps == (GRID.count - 50) * PER_VIEW  # only the views left were computed
    assert table_bytes(store) == one_go[dtype][0]
    assert (meta.max_abs_error, meta.max_rel_error) == (one_go[dtype][1].max_abs_error, one_go[dtype][1].max_rel_error)
    assert not partial.exists() and not progress.exists() and store.check("k", IDENTITY, SHAPE, dtype) == meta


def test_a_run_interrupted_while_building_goes_on_the_next_time_with_the_same_batches(outputs, data, monkeypatch,
                                                                                       tmp_path):
    """Through the run layer: Ctrl-C during the build, then the next run (with another batch size configured)
    goes on from the finished views with the first batch size and publishes the table a build in one go makes."""
    monkeypatch.setattr("kdbench.run.teacher_outputs.CPU_BUILD_BATCH", 16)
    teacher, spec, method = teacher_net(), run_spec(teacher_cache="on"), HintonKD()
    displays = []

    def display(quiet, unit="epoch"):
        displays.append(Steps(stop_at=20 * PER_VIEW + 1 if len(displays) == 1 else None))
        return displays[-1]

    monkeypatch.setattr("kdbench.run.teacher_outputs.progress_display", display)
    reference = TeacherOutputs(Components(RunOptions(home=str(tmp_path / "ref"), device="cpu", quiet=True)),
                               TeacherOutputStore(tmp_path / "ref"), quiet=True)
    key = reference.for_run(spec, method, teacher, data).record.key
    with pytest.raises(KeyboardInterrupt):
        outputs.for_run(spec, method, teacher, data)
    monkeypatch.setattr("kdbench.run.teacher_outputs.CPU_BUILD_BATCH", 8)  # the next process would batch by 8
    fresh = TeacherOutputs(outputs.components, outputs.store, quiet=True)
    served = fresh.for_run(spec, method, teacher, data)
    assert served.record.used and served.record.key == key
    resumed = displays[2]
    assert resumed.started.first_epoch == 21 and resumed.started.steps_per_epoch == PER_VIEW  # batches of 16
    assert resumed.steps == (GRID.count - 20) * PER_VIEW
    assert table_bytes(outputs.store, key) == table_bytes(reference.store, key)


KILLED_BUILD = """
import os, signal, sys
import torch
from kdbench.store import TeacherOutputStore
from kdbench.train.teacher_outputs import build_teacher_logits
from tests.test_teacher_cache import GRID, IDENTITY, SHAPE, SYNTHETIC, teacher_net
from kdbench_plugins.datasets.synthetic import make_synthetic

torch.set_num_threads(1)
writer = TeacherOutputStore(sys.argv[1]).writer("k", SHAPE, "float32", identity=IDENTITY, batch_size=16)
def write(first, logits):
    writer.write(first, logits)
    if first == 30 * 40 + 16:  # view 30, its second batch: killed with half a view written
        os.kill(os.getpid(), signal.SIGKILL)
build_teacher_logits(teacher_net(), make_synthetic(**SYNTHETIC), GRID, write, batch_size=16, mixed_precision=True,
                     view_done=writer.view_done)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="no SIGKILL here")
def test_a_build_killed_mid_view_goes_on_from_its_finished_views_to_the_same_table(data, one_go, isolated_home):
    """A real SIGKILL (no handler, no flush, no close): the views finished before it are kept and checked."""
    root = Path(__file__).resolve().parent.parent
    killed = subprocess.run([sys.executable, "-c", KILLED_BUILD, str(isolated_home)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = TeacherOutputStore(isolated_home)
    assert store.check("k", IDENTITY, SHAPE, "float32") == "missing"
    meta, steps, resumed = build_table(store, data, teacher_net())
    assert resumed == 30 and steps == (GRID.count - 30) * PER_VIEW
    assert table_bytes(store) == one_go["float32"][0]


def interrupted(store, data, views=10):
    with pytest.raises(KeyboardInterrupt):
        build_table(store, data, teacher_net(), stop_at=views * PER_VIEW + 1)
    return store.build_paths("k")


@pytest.mark.parametrize("plant", ["garbage", "another build", "too many views", "no partial table",
                                   "a short partial table"])
def test_a_planted_or_corrupt_progress_file_is_not_trusted_the_build_starts_over(data, one_go, isolated_home, plant):
    store = TeacherOutputStore(isolated_home)
    partial, progress = interrupted(store, data)
    recorded = json.loads(progress.read_text())
    if plant == "garbage":
        progress.write_text("{not json")
    elif plant == "another build":
        progress.write_text(json.dumps({**recorded, "identity": {"teacher": "other"}}))
    elif plant == "too many views":
        progress.write_text(json.dumps({**recorded, "views": recorded["views"] * 20}))
    elif plant == "no partial table":
        partial.unlink()
    else:
        with partial.open("r+b") as fh:
            fh.truncate(100)
    with pytest.warns(KdbenchWarning, match="the build starts over"):
        _, steps, resumed = build_table(store, data, teacher_net())
    assert resumed == 0 and steps == GRID.count * PER_VIEW
    assert table_bytes(store) == one_go["float32"][0]


def test_finished_views_whose_bytes_changed_are_computed_again(data, one_go, isolated_home):
    """A progress file is checked against the partial table: a view whose digest no longer matches (a planted
    progress file, a disk that lost a write) and every view after it are built again."""
    store = TeacherOutputStore(isolated_home)
    partial, _ = interrupted(store, data)
    view_bytes = SHAPE[1] * SHAPE[2] * 4
    with partial.open("r+b") as fh:
        fh.seek(6 * view_bytes + 20)
        fh.write(b"\x7f\x7f\x7f\x7f")
    with pytest.warns(KdbenchWarning, match="view 6 does not match its digest"):
        _, steps, resumed = build_table(store, data, teacher_net())
    assert resumed == 6 and steps == (GRID.count - 6) * PER_VIEW
    assert table_bytes(store) == one_go["float32"][0]


def test_a_planted_link_as_partial_table_is_never_written_through(data, isolated_home, tmp_path):
    store = TeacherOutputStore(isolated_home)
    store.root.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    partial, _ = store.build_paths("k")
    partial.symlink_to(victim)
    build_table(store, data, teacher_net())
    assert victim.read_text() == "mine" and not partial.exists()


def test_a_half_built_table_is_never_published(data, isolated_home):
    store = TeacherOutputStore(isolated_home)
    writer = store.writer("k", SHAPE, "float32", identity=IDENTITY, batch_size=16)
    writer.write(0, torch.zeros(SHAPE[1], SHAPE[2]))
    writer.view_done(0)
    with pytest.raises(ValueError, match="out of order"):
        writer.view_done(2)
    with pytest.raises(RuntimeError, match="1 of 162 views finished"):
        writer.commit()
    writer.abort()
    assert not any(store.root.iterdir())


def test_a_cpu_tables_identity_names_its_memory_format_and_a_cuda_tables_stays_as_it_was():
    """NHWC and NCHW kernels round differently on a CPU, so a table built in one format is never served to a run
    in the other; CUDA tables were always built channels_last, and their keys do not move."""
    assert compute_identity("cpu", True, True) == "float32, channels_last"
    assert compute_identity("cpu", True, False) == "float32"  # as every CPU table before the switch
    assert compute_identity("cuda", True, True) == compute_identity("cuda:1", True, False) == "bf16-autocast"
    assert compute_identity("cuda", False, True) == "float32"
