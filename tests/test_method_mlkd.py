"""MLKD (Jin et al., CVPR 2023) and the strong view it trains on (docs/methods.md, MLKD).

The loss is checked in float64 against formulas written out here (per-sample terms, batch terms and the student's
gradients on both views), against the reference code's own expressions re-typed (batch means times a 0/1 mask),
under Label Revision (each view revised where its own teacher is wrong) and with logit standardization. The strong
view is checked against PIL's operations, for determinism in (seed, epoch), alignment with the weak view's rows,
DDP shards, and for leaving every run without it as it was.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from kdbench.contracts import PairInfo, StepInputs
from kdbench.errors import KdbenchError
from kdbench.plan import Recipe, expand, load_suite
from kdbench.train.batches import normalize, training_augmentation
from kdbench.train.context import build_method_context
from kdbench.train.distributed import Shard
from kdbench.train.engine import EngineConfig, train
from kdbench.train.sources import HeldSource, SourceSettings, StreamedSource, epoch_seed
from kdbench.train.strong_view import (
    GEOMETRIC,
    OP_INDEX,
    OPS,
    PIXEL_OPS,
    StrongAugment,
    affine,
    affine_coefficients,
    cutout,
    strong_view_seed,
)
from kdbench.train.supervision import Supervision
from kdbench.train.teacher_outputs import CachedTeacherLogits, ViewGrid, build_teacher_logits
from kdbench_plugins.datasets.synthetic import make_synthetic
from kdbench_plugins.methods.mlkd import MLKD
from kdbench_plugins.revisions.paper import PaperRevision
from tests.zoo import CIFAR_MODELS

B, C = 7, 5  # an odd batch: the median is a sample's own confidence, so ρ = 4/7, not 1/2


# -- the loss, by hand ----------------------------------------------------------------------------------------

def softmax_rows(z: torch.Tensor) -> torch.Tensor:
    e = torch.exp(z - z.max(dim=1, keepdim=True).values)
    return e / e.sum(dim=1, keepdim=True)


def kl_rows(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_c q_c (log q_c − log p_c) for each row, 0·log 0 = 0, as a loop over classes."""
    out = torch.zeros(q.shape[0], dtype=q.dtype)
    for c in range(q.shape[1]):
        term = torch.where(q[:, c] > 0, q[:, c] * (torch.log(q[:, c].clamp_min(1e-300)) - torch.log(p[:, c])),
                           torch.zeros_like(q[:, c]))
        out = out + term
    return out


def gram_error(pt: torch.Tensor, ps: torch.Tensor, over_classes: bool) -> torch.Tensor:
    """Σ_ij (G_t − G_s)²_ij with G_ij = Σ_k p_ik p_jk over the batch's rows, or over its classes (columns)."""
    if over_classes:
        pt, ps = pt.T, ps.T
    n = pt.shape[0]
    total = torch.zeros((), dtype=pt.dtype)
    for i in range(n):
        for j in range(n):
            total = total + (sum(pt[i] * pt[j]) - sum(ps[i] * ps[j])) ** 2
    return total


def share_at_or_below_median(v: torch.Tensor) -> float:
    return float(np.mean(v.numpy() <= np.percentile(v.numpy(), 50)))


def logits(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    z = {k: torch.randn(B, C, generator=g, dtype=torch.float64) * s for k, s in
         (("zs_w", 2.0), ("zs_s", 2.0), ("zt_w", 3.0), ("zt_s", 3.0))}
    z["y"] = torch.arange(B) % C
    return z


def step_of(z, revise=None) -> StepInputs:
    return StepInputs(student_logits=z["zs_w"], targets=z["y"], epoch=3, teacher_logits=z["zt_w"],
                      student_logits_strong=z["zs_s"], teacher_logits_strong=z["zt_s"], revise_teacher=revise)


def by_hand(z, revise=None, logit_std=False, gamma=0.1, alpha=0.9, base=4.0):
    """Every term of MLKD written out: per-sample ce, kd_weak, kd_strong, and the batch terms bc, cc."""
    y = z["y"]
    temps = [base, 3.0, 5.0, 2.0, 6.0]
    pt1 = softmax_rows(z["zt_w"])
    rho = share_at_or_below_median(pt1.max(dim=1).values)
    rho_c = share_at_or_below_median(pt1.sum(dim=0))

    def zscore(v):
        mean = v.mean(dim=1, keepdim=True)
        std = torch.sqrt(((v - mean) ** 2).sum(dim=1, keepdim=True) / (v.shape[1] - 1))
        return (v - mean) / (std + 1e-7)

    def target(zt, t, scaled=None):
        p = softmax_rows(scaled if scaled is not None else zt / t)
        if revise is None:
            return p
        wrong = zt.argmax(dim=1) != y  # right or wrong by this view's own teacher
        return torch.where(wrong[:, None], revise(p, y), p)

    def kd(view, t):
        zs, zt = z[f"zs_{view}"], z[f"zt_{view}"]
        s, tt = (zscore(zs) / t, zscore(zt) / t) if logit_std else (zs / t, zt / t)
        return t**2 * kl_rows(target(zt, t, tt), softmax_rows(s))

    rows = torch.arange(B)
    ce = -torch.log(softmax_rows(z["zs_w"]))[rows, y] - torch.log(softmax_rows(z["zs_s"]))[rows, y]
    kd_weak = sum(kd("w", t) for t in temps)
    kd_strong = kd("s", base) + kd("s", 3.0) + kd("s", 5.0) + kd("w", 2.0) + kd("w", 6.0)
    bc = sum(gram_error(target(z["zt_w"], t), softmax_rows(z["zs_w"] / t), False) / B for t in temps)
    cc = sum(gram_error(target(z["zt_w"], t), softmax_rows(z["zs_w"] / t), True) / C for t in temps)
    return {"ce": gamma * ce, "kd_weak": alpha * rho * kd_weak, "kd_strong": alpha * kd_strong,
            "bc": alpha * rho * bc, "cc": alpha * rho_c * cc}


def total_of(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """What the engine minimises without DS: the mean of the per-sample terms plus the batch terms."""
    return sum(v.mean() if v.dim() else v for v in terms.values())


def plugin_terms(method: MLKD, step: StepInputs) -> dict[str, torch.Tensor]:
    out = method.loss_terms(step)
    return {**out.sample, **out.batch}


def assert_terms_and_gradients(method, z, expected_of, revise=None) -> None:
    for k in ("zs_w", "zs_s"):
        z[k] = z[k].detach().requires_grad_(True)
    got = plugin_terms(method, step_of(z, revise))
    expected = expected_of(z)
    assert set(got) == set(expected)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-10, atol=1e-12, msg=name)
    g_got = torch.autograd.grad(total_of(got), [z["zs_w"], z["zs_s"]])
    g_exp = torch.autograd.grad(total_of(expected), [z["zs_w"], z["zs_s"]])
    for a, b in zip(g_got, g_exp, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_term_and_the_student_gradients_match_the_formulas(seed):
    z = logits(seed)
    assert_terms_and_gradients(MLKD(), z, by_hand)


def test_the_confidence_factors_are_shares_not_selections():
    z = logits(5)
    pt = softmax_rows(z["zt_w"])
    assert share_at_or_below_median(pt.max(dim=1).values) == pytest.approx(4 / 7)
    assert share_at_or_below_median(pt.sum(dim=0)) == pytest.approx(3 / 5)
    terms = plugin_terms(MLKD(), step_of(z))
    # every sample keeps its own KL term, scaled by ρ: none is dropped
    assert bool((terms["kd_weak"] > 0).all())


def reference_total(z, T=4.0, gamma=0.1, alpha=0.9) -> torch.Tensor:
    """The reference's forward_train (KD_ours.py) with its expressions re-typed: batch-mean losses multiplied by a
    0/1 mask (np.percentile's median) and averaged; the strong KD at T=2, 6 reading the weak view; the strong
    views' Gram terms left out of the loss."""
    zs_w, zs_s, zt_w, zt_s, y = z["zs_w"], z["zs_s"], z["zt_w"], z["zt_s"], z["y"]

    def kd(s, t, temp):
        return F.kl_div(F.log_softmax(s / temp, dim=1), F.softmax(t / temp, dim=1), reduction="none").sum(1).mean() \
            * temp**2

    def cc(s, t, temp):
        ps, pt = F.softmax(s / temp, dim=1), F.softmax(t / temp, dim=1)
        return ((pt.T @ pt - ps.T @ ps) ** 2).sum() / C

    def bc(s, t, temp):
        ps, pt = F.softmax(s / temp, dim=1), F.softmax(t / temp, dim=1)
        return ((pt @ pt.T - ps @ ps.T) ** 2).sum() / B

    pred = F.softmax(zt_w, dim=1)
    conf = pred.max(dim=1).values
    mask = conf.le(float(np.percentile(conf.numpy(), 50)))
    class_conf = pred.sum(dim=0)
    class_mask = class_conf.le(float(np.percentile(class_conf.numpy(), 50)))
    loss_ce = gamma * (F.cross_entropy(zs_w, y) + F.cross_entropy(zs_s, y))
    temps = [T, 3.0, 5.0, 2.0, 6.0]
    kd_weak = sum(alpha * (kd(zs_w, zt_w, t) * mask).mean() for t in temps)
    kd_strong = alpha * (kd(zs_s, zt_s, T) + kd(zs_s, zt_s, 3.0) + kd(zs_s, zt_s, 5.0) + kd(zs_w, zt_w, 2.0)
                         + kd(zs_w, zt_w, 6.0))
    cc_weak = sum(alpha * (cc(zs_w, zt_w, t) * class_mask).mean() for t in temps)
    bc_weak = sum(alpha * (bc(zs_w, zt_w, t) * mask).mean() for t in temps)
    return loss_ce + kd_weak + kd_strong + cc_weak + bc_weak


@pytest.mark.parametrize("seed", [0, 3])
def test_the_total_is_the_reference_codes(seed):
    z = logits(seed)
    z["zs_w"].requires_grad_(True)
    z["zs_s"].requires_grad_(True)
    ours = Supervision().batch_loss(MLKD().loss_terms(step_of(z)), z["zs_w"], z["zt_w"], z["y"],
                                    torch.arange(B)).total()
    ref = reference_total(z)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, [z["zs_w"], z["zs_s"]]), torch.autograd.grad(ref, [z["zs_w"], z["zs_s"]]),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def paper_revision(p: torch.Tensor, y: torch.Tensor, eta: float = 0.8) -> torch.Tensor:
    """Eq. 7–9 on every row: β = η / (p_max − p_y + 1), q = β·p + (1 − β)·e_y."""
    p_y = p[torch.arange(p.shape[0]), y]
    beta = eta / (p.max(dim=1).values - p_y + 1)
    return beta[:, None] * p + (1 - beta)[:, None] * F.one_hot(y, p.shape[1]).to(p.dtype)


def test_label_revision_revises_each_views_teacher_where_that_view_is_wrong():
    z = logits(7)
    # row 0: right on both views; row 1: wrong on the weak view only; row 2: wrong on the strong view only
    for view, wrong_rows in (("w", (1,)), ("s", (2,))):
        zt = z[f"zt_{view}"]
        for i in range(3):
            top = int(zt[i].argmax())
            if i in wrong_rows and top == int(z["y"][i]):
                zt[i, (top + 1) % C] = zt[i].max() + 1
            elif i not in wrong_rows:
                zt[i, z["y"][i]] = zt[i].max() + 1
    # PaperRevision(0.8).revise is what Supervision(revision_in_method=True) hands the step
    assert_terms_and_gradients(MLKD(), z, lambda zz: by_hand(zz, revise=paper_revision), PaperRevision(0.8).revise)
    # and not merely the unrevised loss: the revised target changes the terms
    plain = plugin_terms(MLKD(), step_of(z))
    revised = plugin_terms(MLKD(), step_of(z, PaperRevision(0.8).revise))
    assert not torch.allclose(plain["kd_weak"][1], revised["kd_weak"][1])
    torch.testing.assert_close(plain["kd_weak"][0], revised["kd_weak"][0])


def test_logit_standardization_z_scores_the_instance_terms_only():
    """MLKD+LS as its official code runs it (base temperature 2, weight 9): the KL terms on Z-scored logits, the
    Gram terms on the raw ones."""
    assert_terms_and_gradients(MLKD(T=2.0, alpha=9.0, logit_std=True), logits(11),
                               lambda zz: by_hand(zz, logit_std=True, alpha=9.0, base=2.0))


def test_parameters_are_checked_and_default_to_the_reference():
    m = MLKD()
    assert m.temperatures == (4.0, 3.0, 5.0, 2.0, 6.0) and m.strong_kd_temperatures == 3
    assert (m.gamma, m.alpha, m.logit_std) == (0.1, 0.9, False)
    assert MLKD.needs_strong_view and MLKD.owns_logit_loss and MLKD.uses_teacher and not MLKD.needs_features
    with pytest.raises(ValueError):
        MLKD(extra_temperatures=(3.0, 0.0))
    with pytest.raises(ValueError):
        MLKD(strong_kd_temperatures=6)
    with pytest.raises(ValueError, match="strong view"):
        MLKD().loss_terms(StepInputs(student_logits=torch.zeros(2, 3), targets=torch.zeros(2, dtype=torch.long),
                                     epoch=1, teacher_logits=torch.zeros(2, 3)))


# -- the strong view --------------------------------------------------------------------------------------------

def pil_op(img: Image.Image, name: str, v: float) -> Image.Image:
    """The reference's RandAugment operations (FixMatch's list, as MLKD's dataset code applies them), re-typed."""
    return {
        "auto_contrast": lambda: ImageOps.autocontrast(img),
        "brightness": lambda: ImageEnhance.Brightness(img).enhance(v),
        "color": lambda: ImageEnhance.Color(img).enhance(v),
        "contrast": lambda: ImageEnhance.Contrast(img).enhance(v),
        "equalize": lambda: ImageOps.equalize(img),
        "identity": lambda: img,
        "posterize": lambda: ImageOps.posterize(img, max(1, int(v))),
        "rotate": lambda: img.rotate(v),
        "sharpness": lambda: ImageEnhance.Sharpness(img).enhance(v),
        "shear_x": lambda: img.transform(img.size, Image.AFFINE, (1, v, 0, 0, 1, 0)),
        "shear_y": lambda: img.transform(img.size, Image.AFFINE, (1, 0, 0, v, 1, 0)),
        "solarize": lambda: ImageOps.solarize(img, v),
        "translate_x": lambda: img.transform(img.size, Image.AFFINE, (1, 0, v * img.size[0], 0, 1, 0)),
        "translate_y": lambda: img.transform(img.size, Image.AFFINE, (1, 0, 0, 0, 1, v * img.size[1])),
    }[name]()


def test_every_operation_and_cutout_give_pils_pixels():
    rng = np.random.default_rng(0)
    n = 12
    imgs = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    yy, xx = np.mgrid[0:32, 0:32]
    for i in range(n // 2):  # smooth images too: equalize, autocontrast and the maps meet real histograms
        base = (xx * rng.uniform(2, 8) + yy * rng.uniform(-4, 4) + rng.uniform(0, 100)) % 256
        imgs[i] = np.stack([base, (base * 0.7 + 30) % 256, 255 - base], -1).astype(np.uint8)
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    for name, lo, hi in OPS:
        v = torch.tensor(rng.uniform(lo, hi, n))
        if name in GEOMETRIC:
            ours = affine(x, affine_coefficients(torch.full((n,), OP_INDEX[name]), v, x.shape))
        elif name == "identity":
            ours = x
        else:
            ours = PIXEL_OPS[name](x, v)
        ref = np.stack([np.asarray(pil_op(Image.fromarray(imgs[i]), name, float(v[i]))) for i in range(n)])
        assert np.array_equal(ours.permute(0, 2, 3, 1).numpy(), ref), name
    for i in range(n):  # Cutout: numpy's uniform(w) is w + (1 − w)·u, the u our parameters hold
        side = float(rng.uniform(0, 0.5))
        ux, uy = rng.random(), rng.random()
        w = 32
        cx, cy, s = w + (1 - w) * ux, w + (1 - w) * uy, side * w
        x0, y0 = int(max(0, cx - s / 2)), int(max(0, cy - s / 2))
        img = Image.fromarray(imgs[i]).copy()
        ImageDraw.Draw(img).rectangle((x0, y0, min(w, x0 + s), min(w, y0 + s)), (125, 123, 114))
        ours = cutout(x[i:i + 1], *(torch.tensor([v], dtype=torch.float64) for v in (side, ux, uy)))
        assert np.array_equal(ours[0].permute(1, 2, 0).numpy(), np.asarray(img))


@pytest.fixture(scope="module")
def data():
    return make_synthetic(num_train=40, num_test=8, num_classes=4, image_size=16, seed=2)


def epoch_batches(data, seed=0, epoch=1, strong=True, batch_size=16, shard=None):
    source = HeldSource(data, SourceSettings(batch_size=batch_size, augment=True, drop_last=False, device="cpu",
                                             strong_view=strong, shard=shard or Shard()))
    return list(source.train_epoch(seed, epoch))


def test_the_strong_view_is_deterministic_in_seed_and_epoch_and_differs_from_the_weak_one(data):
    a, b = epoch_batches(data), epoch_batches(data)
    other_epoch, other_seed = epoch_batches(data, epoch=2), epoch_batches(data, seed=1)
    for x, y in zip(a, b, strict=True):
        assert x.strong_images is not None and torch.equal(x.strong_images, y.strong_images)
        assert x.strong_images.shape == x.images.shape and x.strong_images.dtype == x.images.dtype
        assert bool(((x.strong_images - x.images).abs().amax(dim=(1, 2, 3)) > 0).all())  # every row differs
    # another epoch or seed draws other orders too: compare sample by sample
    def by_index(batches):
        return {int(i): s for bt in batches for i, s in zip(bt.indices, bt.strong_images, strict=True)}

    first = by_index(a)
    for other in (other_epoch, other_seed):
        assert sum(not torch.equal(first[i], s) for i, s in by_index(other).items()) == len(first)


def test_the_strong_view_shows_the_weak_views_rows_and_leaves_the_weak_view_as_it_was(data):
    seed, epoch = 3, 2
    with_strong, without = epoch_batches(data, seed, epoch), epoch_batches(data, seed, epoch, strong=False)
    params = StrongAugment().sample(data.num_train, torch.Generator().manual_seed(
        strong_view_seed(epoch_seed(seed, epoch))))
    position = 0
    for s, w in zip(with_strong, without, strict=True):
        assert w.strong_images is None
        assert torch.equal(s.images, w.images) and torch.equal(s.indices, w.indices)
        assert torch.equal(s.labels, w.labels) and torch.equal(s.labels, data.train_labels[s.indices])
        rows = slice(position, position + len(s))
        expected = normalize(StrongAugment()(data.train_images[s.indices], params[rows]), data.mean, data.std)
        assert torch.equal(s.strong_images, expected)  # row i is the strong view of sample indices[i]
        position += len(s)
    assert position == data.num_train


def test_ddp_ranks_share_the_strong_view_of_one_process(data):
    whole = epoch_batches(data, batch_size=10)
    ranks = [epoch_batches(data, batch_size=10, shard=Shard(rank=r, world=2)) for r in (0, 1)]
    for k, batch in enumerate(whole):
        assert torch.equal(ranks[0][k].strong_images, batch.strong_images[0::2])
        assert torch.equal(ranks[1][k].strong_images, batch.strong_images[1::2])


def test_a_streamed_dataset_refuses_a_strong_view_in_one_line():
    with pytest.raises(KdbenchError, match="held in memory"):
        StreamedSource(None, SourceSettings(batch_size=4, augment=True, drop_last=False, device="cpu",  # type: ignore[arg-type]
                                            strong_view=True))


# -- in the engine, with the teacher cache, and in the plan ----------------------------------------------------

def mlkd_outcome(data, teacher, teacher_logits=None):
    torch.manual_seed(0)
    student, method = CIFAR_MODELS["resnet8"](num_classes=data.num_classes), MLKD()
    recipe = Recipe(epochs=2, batch_size=16, lr=0.05, milestones=(1,)).resolved("resnet8")
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", "resnet8"), recipe))
    return train(student, method, data, EngineConfig(recipe=recipe, seed=0), teacher=teacher,
                 teacher_logits=teacher_logits)


def test_with_the_teacher_cache_the_weak_view_is_served_and_the_strong_one_runs_live(data):
    torch.manual_seed(123)
    teacher = CIFAR_MODELS["resnet8"](num_classes=data.num_classes).eval()
    grid = ViewGrid.of(training_augmentation(True))
    table = torch.full((grid.count, data.num_train, data.num_classes), float("nan"))
    rows = table.view(-1, data.num_classes)
    build_teacher_logits(teacher, data, grid, lambda first, x: rows[first:first + x.shape[0]].copy_(x),
                         batch_size=64, mixed_precision=False)
    live = mlkd_outcome(data, teacher)
    cached = mlkd_outcome(data, teacher, CachedTeacherLogits(table, grid))
    assert {"ce", "kd_weak", "kd_strong", "bc", "cc"} <= set(live.epochs[0].losses)
    for a, b in zip(live.epochs, cached.epochs, strict=True):
        assert a.test_top1 == b.test_top1 and a.train_top1 == b.train_top1
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-6)
        assert all(math.isfinite(v) for v in a.losses.values())


SUITE = """
    name: strong
    dataset: {name: synthetic, params: {num_train: 40, num_test: 24, num_classes: 4, image_size: 8}}
    recipe: {epochs: 2, milestones: []}
    seeds: [0]
    pairs: [{teacher: resnet8, student: resnet8}]
    methods: METHODS
"""


def test_runs_without_a_strong_view_keep_their_keys(write_suite, registry):
    alone = expand(load_suite(write_suite(SUITE.replace("METHODS", "[ce, kd]"), "a.yaml")), registry)
    beside = expand(load_suite(write_suite(SUITE.replace("METHODS", "[ce, kd, mlkd, {name: mlkd, revision: paper}]"),
                                           "b.yaml")), registry)
    keys = {s.label: s.key for s in beside.runs}
    assert {s.label: s.key for s in alone.runs} == {k: keys[k] for k in ("ce", "kd")}
    assert keys["mlkd"] != keys["kd"] and keys["mlkd+LR"] != keys["mlkd"]
    recipes = {s.label: s.recipe.identity() for s in beside.runs}
    assert recipes["mlkd"] == recipes["kd"]  # the strong view is the method's need, not a recipe field
    spec = next(s for s in beside.runs if s.label == "mlkd+LR")
    assert spec.revision is not None and spec.revision.in_method


def test_a_suite_trains_mlkd_with_lr_and_ds_and_its_record_says_the_strong_view_ran_live(write_suite, tmp_path):
    import json

    from kdbench.cli import main

    suite = write_suite("""
        name: strong
        dataset: {name: synthetic, params: {num_train: 40, num_test: 24, num_classes: 4, image_size: 8}}
        recipe: {epochs: 1, batch_size: 16, milestones: [], teacher_cache: on}
        teacher_recipe: {epochs: 1}
        seeds: [0]
        pairs: [{teacher: resnet8, student: resnet8}]
        methods: [{name: mlkd, revision: paper, selection: {estimator: random}}]
    """)
    assert main(["run", str(suite), "--quiet", "--runs", str(tmp_path / "runs")]) == 0
    (record,) = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "raw" / "strong").glob("*/record.json")]
    assert record["label"] == "mlkd+LR+DS" and record["teacher_cache"]["used"]
    assert record["teacher_cache"]["reason"].endswith("; strong view: live teacher")
    assert math.isfinite(record["best_top1"])
