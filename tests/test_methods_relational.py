"""SemCKD and CRD (relational / contrastive feature methods) against hand computations and structural checks.

Hand computations use NumPy in float64 on tiny examples; the methods run in float64 too (``.double()``)
so that the comparisons can be tight.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdbench.contracts import MethodContext, PairInfo, StepInputs, feature_shapes
from kdbench.errors import KdbenchError
from kdbench.store import ResumeFile
from kdbench_plugins.methods import crd as crd_module
from kdbench_plugins.methods import semckd as semckd_module
from kdbench_plugins.methods.crd import CRD
from kdbench_plugins.methods.semckd import SemCKD
from tests.zoo import CIFAR_MODELS

# --------------------------------------------------------------------------------------------------
# helpers


def context(
    student_shapes: list[tuple[int, ...]],
    teacher_shapes: list[tuple[int, ...]],
    *,
    batch_size: int,
    num_classes: int = 3,
    train_labels: torch.Tensor | None = None,
    num_train: int | None = None,
) -> MethodContext:
    n = num_train if num_train is not None else (len(train_labels) if train_labels is not None else 100)
    return MethodContext(
        pair=PairInfo("student", "teacher"),
        num_classes=num_classes,
        num_train=n,
        batch_size=batch_size,
        epochs=1,
        student_feature_shapes=student_shapes,
        teacher_feature_shapes=teacher_shapes,
        train_labels=train_labels,
    )


def feats(shapes: list[tuple[int, ...]], batch: int, gen: torch.Generator, grad: bool = False) -> list[torch.Tensor]:
    out = [torch.randn((batch, *s), generator=gen, dtype=torch.float64) for s in shapes]
    return [f.requires_grad_(grad) for f in out]


def step_for(student_feats, teacher_feats, *, num_classes=3, indices=None, gen=None) -> StepInputs:
    batch = student_feats[0].shape[0]
    gen = gen or torch.Generator().manual_seed(0)
    return StepInputs(
        student_logits=torch.randn(batch, num_classes, generator=gen, dtype=torch.float64, requires_grad=True),
        teacher_logits=torch.randn(batch, num_classes, generator=gen, dtype=torch.float64),
        targets=torch.arange(batch) % num_classes,
        indices=indices if indices is not None else torch.arange(batch),
        epoch=1,
        student_feats=student_feats,
        teacher_feats=teacher_feats,
    )


def randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def np_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_plugins_register_their_names():
    seen: dict[str, type] = {}
    semckd_module.kdbench_register_methods(lambda name, factory, **kw: seen.__setitem__(name, factory))
    crd_module.kdbench_register_methods(lambda name, factory, **kw: seen.__setitem__(name, factory))
    assert seen == {"semckd": SemCKD, "crd": CRD}


# --------------------------------------------------------------------------------------------------
# SemCKD

# [stem, stage1, stage2, pooled]: two stage maps on each side, different widths and sizes.
S_SHAPES = [(2, 8, 8), (3, 4, 4), (4, 2, 2), (4,)]
T_SHAPES = [(2, 8, 8), (5, 4, 4), (6, 2, 2), (6,)]


def semckd(s_shapes=S_SHAPES, t_shapes=T_SHAPES, batch=8, **params) -> SemCKD:
    torch.manual_seed(0)
    method = SemCKD(**params)
    method.setup(context(s_shapes, t_shapes, batch_size=batch))
    return method.double()


def test_semckd_declares_full_batches_and_defaults():
    method = SemCKD()
    assert SemCKD.full_batches_only is True and SemCKD.needs_features and SemCKD.uses_teacher
    assert not SemCKD.needs_indices and not SemCKD.owns_logit_loss
    assert (method.beta, method.gamma, method.alpha, method.T, method.align) == (400.0, 1.0, 1.0, 4.0, "pool_larger")
    with pytest.raises(KdbenchError):
        SemCKD(align="bilinear")


def test_semckd_attention_is_per_sample_and_matches_numpy():
    """α[b, i, :] = softmax_j(q_bi · k_bj) from each sample's row of the Gram matrices; sums to 1 per (b, i)."""
    method = semckd()
    gen = torch.Generator().manual_seed(1)
    fs, ft = feats(S_SHAPES[1:-1], 8, gen), feats(T_SHAPES[1:-1], 8, gen)
    att = method.attention(fs, ft).detach().numpy()
    assert att.shape == (8, 2, 2)
    np.testing.assert_allclose(att.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    assert np.ptp(att[:, 0, 0]) > 1e-6  # per instance: the weights differ between samples

    def embed(module, f):
        x = f.detach().numpy().reshape(8, -1)
        g = x @ x.T
        w1, b1 = module.linear1.weight.detach().numpy(), module.linear1.bias.detach().numpy()
        w2, b2 = module.linear2.weight.detach().numpy(), module.linear2.bias.detach().numpy()
        return np_normalize(np.maximum(g @ w1.T + b1, 0.0) @ w2.T + b2)

    q = np.stack([embed(m, f) for m, f in zip(method.query, fs, strict=True)], axis=1)  # [B, n_s, B/4]
    k = np.stack([embed(m, f) for m, f in zip(method.key, ft, strict=True)], axis=1)
    assert q.shape == (8, 2, 2)  # MLP B -> B/2 -> B/4
    expected = np_softmax(np.einsum("bid,bjd->bij", q, k), axis=-1)
    np.testing.assert_allclose(att, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("student", "teacher"), [("resnet8x4", "resnet32x4"), ("vgg8", "vgg13")])
def test_semckd_value_embeddings_on_zoo_shapes(student, teacher):
    """Default alignment on real tensors (batch 8); ``to_teacher`` on meta tensors (shapes only, no compute)."""
    s_shapes = feature_shapes(CIFAR_MODELS[student](num_classes=100))
    t_shapes = feature_shapes(CIFAR_MODELS[teacher](num_classes=100))
    gen = torch.Generator().manual_seed(2)
    fs = [torch.randn((8, *s), generator=gen) for s in s_shapes[1:-1]]
    ft = [torch.randn((8, *s), generator=gen) for s in t_shapes[1:-1]]
    torch.manual_seed(0)
    method = SemCKD()
    method.setup(context(s_shapes, t_shapes, batch_size=8, num_classes=100))
    assert len(method.value) == len(fs) and all(len(row) == len(ft) for row in method.value)
    for align, device in (("pool_larger", "cpu"), ("to_teacher", "meta")):
        method.align = align
        method.to(device)
        with torch.no_grad():
            for i, f_s in enumerate(fs):
                for j, f_t in enumerate(ft):
                    value, target = method.aligned_pair(i, j, f_s.to(device), f_t.to(device))
                    c_t, h_t, w_t = t_shapes[1 + j]
                    h_s, w_s = s_shapes[1 + i][1:]
                    assert value.shape == target.shape
                    if align == "to_teacher" or (h_s >= h_t and w_s >= w_t):
                        assert value.shape == (8, c_t, h_t, w_t)
                    else:  # the reference pools the (larger) teacher target down instead
                        assert value.shape == (8, c_t, h_s, w_s)
                    if device == "cpu":
                        assert torch.isfinite(value).all()


def block_mean(x: np.ndarray, f: int) -> np.ndarray:
    b, c, h, w = x.shape
    return x.reshape(b, c, h // f, f, w // f, f).mean(axis=(3, 5))


@pytest.mark.parametrize(
    ("s_hw", "t_hw", "align"),
    [(4, 2, "pool_larger"), (2, 4, "pool_larger"), (2, 2, "pool_larger"), (2, 4, "to_teacher")],
)
def test_semckd_loss_single_pair_matches_hand_computation(s_hw, t_hw, align):
    """One student and one teacher layer: α = 1, so the loss is β·Σ_b mean_CHW((v − t)²)/(B·1)."""
    batch = 4
    s_shapes, t_shapes = [(3, 8, 8), (3, s_hw, s_hw), (3,)], [(3, 8, 8), (3, t_hw, t_hw), (3,)]
    method = semckd(s_shapes, t_shapes, batch=batch, align=align)
    method.value[0][0] = nn.Identity()  # make v known: the (aligned) student map itself
    gen = torch.Generator().manual_seed(3)
    fs, ft = feats(s_shapes, batch, gen), feats(t_shapes, batch, gen)
    terms = method.loss_terms(step_for(fs, ft))

    s, t = fs[1].detach().numpy(), ft[1].detach().numpy()
    if s_hw > t_hw:
        s = block_mean(s, s_hw // t_hw)
    elif t_hw > s_hw and align == "pool_larger":
        t = block_mean(t, t_hw // s_hw)
    elif t_hw > s_hw:  # to_teacher: adaptive pooling to a larger size repeats pixels
        s = s.repeat(t_hw // s_hw, axis=2).repeat(t_hw // s_hw, axis=3)
    per_sample = [float(((s[b] - t[b]) ** 2).mean()) for b in range(batch)]
    expected = 400.0 * sum(per_sample) / (batch * 1)
    assert terms.batch["semckd"].item() == pytest.approx(expected, rel=1e-12)


def test_semckd_loss_weights_pairs_by_attention():
    """Two teacher layers of equal shape and identity value maps: β·Σ_{b,j} α_b0j·mse_b0j / (B·1)."""
    batch = 8
    s_shapes, t_shapes = [(2, 4, 4), (2, 2, 2), (2,)], [(2, 4, 4), (2, 2, 2), (2, 2, 2), (2,)]
    method = semckd(s_shapes, t_shapes, batch=batch)
    method.value[0][0], method.value[0][1] = nn.Identity(), nn.Identity()
    gen = torch.Generator().manual_seed(4)
    fs, ft = feats(s_shapes, batch, gen), feats(t_shapes, batch, gen)
    terms = method.loss_terms(step_for(fs, ft))
    att = method.attention(fs[1:-1], ft[1:-1]).detach().numpy()
    s = fs[1].detach().numpy()
    total = 0.0
    for b in range(batch):
        for j in range(2):
            total += att[b, 0, j] * float(((s[b] - ft[1 + j].detach().numpy()[b]) ** 2).mean())
    assert terms.batch["semckd"].item() == pytest.approx(400.0 * total / batch, rel=1e-12)


def test_semckd_keeps_ce_and_kd_per_sample():
    method = semckd(gamma=0.5, alpha=2.0, T=3.0)
    gen = torch.Generator().manual_seed(5)
    step = step_for(feats(S_SHAPES, 8, gen), feats(T_SHAPES, 8, gen))
    terms = method.loss_terms(step)
    zs, zt, y = step.student_logits.detach().numpy(), step.teacher_logits.numpy(), step.targets.numpy()
    ce = -np.log(np_softmax(zs))[np.arange(8), y]
    p_t, p_s = np_softmax(zt / 3.0), np_softmax(zs / 3.0)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1)
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), 0.5 * ce, rtol=1e-12)
    np.testing.assert_allclose(terms.sample["kd"].detach().numpy(), 2.0 * 9.0 * kl, rtol=1e-12)
    assert set(terms.batch) == {"semckd"}


def test_semckd_gradients_reach_student_features_and_every_module():
    method = semckd()
    gen = torch.Generator().manual_seed(6)
    fs, ft = feats(S_SHAPES, 8, gen, grad=True), feats(T_SHAPES, 8, gen)
    terms = method.loss_terms(step_for(fs, ft))
    terms.batch["semckd"].backward()
    for f in fs[1:-1]:
        assert f.grad is not None and f.grad.abs().sum() > 0
    for name, param in method.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert {n.split(".")[0] for n, _ in method.named_parameters()} == {"query", "key", "value"}


def test_semckd_refuses_other_batch_sizes():
    method = semckd()
    gen = torch.Generator().manual_seed(7)
    with pytest.raises(KdbenchError, match="full batches of 8"):
        method.loss_terms(step_for(feats(S_SHAPES, 6, gen), feats(T_SHAPES, 6, gen)))


# --------------------------------------------------------------------------------------------------
# CRD


def crd(labels: torch.Tensor, d_s: int = 5, d_t: int = 6, **params) -> CRD:
    torch.manual_seed(0)
    method = CRD(**params)
    n_classes = int(labels.max()) + 1
    method.setup(context([(d_s,)], [(d_t,)], batch_size=4, num_classes=n_classes, train_labels=labels))
    return method.double()


_SHUFFLE = torch.randperm(50, generator=torch.Generator().manual_seed(0))
UNBALANCED = torch.tensor([0] * 2 + [1] * 5 + [2] * 8 + [3] * 15 + [4] * 20)[_SHUFFLE]


def test_crd_declarations_and_defaults():
    method = CRD()
    assert CRD.needs_indices and CRD.needs_features and CRD.uses_teacher and not CRD.full_batches_only
    assert (method.beta, method.gamma, method.feat_dim, method.num_negatives, method.nce_t, method.momentum) == (
        0.8, 1.0, 128, 16384, 0.07, 0.5)


def test_crd_negatives_never_share_the_anchor_class_and_are_uniform():
    labels = UNBALANCED
    method = crd(labels, num_negatives=20)
    assert method.effective_negatives == 20
    indices = torch.arange(50)
    draws = torch.cat([method.sample_negatives(indices) for _ in range(400)], dim=1)  # [50, 8000]
    assert draws.shape == (50, 8000)
    assert not (labels[draws] == labels[indices].unsqueeze(1)).any()
    for anchor in (int(torch.nonzero(labels == 0)[0]), int(torch.nonzero(labels == 4)[0])):
        others = torch.nonzero(labels != labels[anchor]).flatten()
        counts = torch.bincount(draws[anchor], minlength=50)[others].double()
        assert (counts > 0).all()  # every other-class sample is reachable
        expected = 8000 / len(others)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < len(others) + 6 * math.sqrt(2 * len(others))  # loose: dof ± 6 sd


def test_crd_caps_negatives_at_what_every_class_can_offer():
    method = crd(UNBALANCED, num_negatives=1000)
    assert method.effective_negatives == 50 - 20
    with pytest.raises(KdbenchError, match="two classes"):
        crd(torch.zeros(10, dtype=torch.long))


def fixed_crd(feat_dim=3, **params):
    """N = 6 samples of 3 classes, banks set to known unit vectors, embeddings known, negatives fixed (K = 2)."""
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    method = crd(labels, d_s=3, d_t=2, feat_dim=feat_dim, num_negatives=2, **params)
    rng = np.random.default_rng(0)
    bank_s, bank_t = np_normalize(rng.normal(size=(6, feat_dim))), np_normalize(rng.normal(size=(6, feat_dim)))
    with torch.no_grad():
        method.memory_s.copy_(torch.from_numpy(bank_s))
        method.memory_t.copy_(torch.from_numpy(bank_t))
        method.embed_s.weight.copy_(torch.from_numpy(rng.normal(size=(feat_dim, 3))))
        method.embed_s.bias.copy_(torch.from_numpy(rng.normal(size=feat_dim)))
        method.embed_t.weight.copy_(torch.from_numpy(rng.normal(size=(feat_dim, 2))))
        method.embed_t.bias.copy_(torch.from_numpy(rng.normal(size=feat_dim)))
    negatives = {0: [2, 5], 3: [0, 4], 4: [1, 3]}  # dataset index -> its two other-class negatives
    method.sample_negatives = lambda idx: torch.tensor([negatives[int(i)] for i in idx])  # type: ignore[method-assign]
    return method, negatives


def np_embed(linear: nn.Linear, x: np.ndarray) -> np.ndarray:
    return np_normalize(x @ linear.weight.detach().numpy().T + linear.bias.detach().numpy())


def hand_nce(anchor: np.ndarray, bank: np.ndarray, contrast: list[list[int]], tau: float, n: int, z: float | None):
    """Plain-Python NCE of CRD; returns (loss, Z used)."""
    out = [[math.exp(float(anchor[b] @ bank[c]) / tau) for c in row] for b, row in enumerate(contrast)]
    if z is None:
        z = sum(sum(r) for r in out) / sum(len(r) for r in out) * n
    m = len(contrast[0]) - 1
    pn = 1.0 / n
    total = 0.0
    for row in out:
        p = [v / z for v in row]
        total += math.log(p[0] / (p[0] + m * pn + 1e-7))
        total += sum(math.log(m * pn / (q + m * pn + 1e-7)) for q in p[1:])
    return -total / len(contrast), z


def test_crd_nce_loss_and_z_match_hand_computation():
    method, negatives = fixed_crd()
    bank_s, bank_t = method.memory_s.numpy().copy(), method.memory_t.numpy().copy()
    idx = [0, 3, 4]
    gen = torch.Generator().manual_seed(8)
    fs, ft = randn(gen, 3, 3), randn(gen, 3, 2)
    step = step_for([fs], [ft], indices=torch.tensor(idx))
    terms = method.loss_terms(step)

    contrast = [[i, *negatives[i]] for i in idx]
    v_s, v_t = np_embed(method.embed_s, fs.numpy()), np_embed(method.embed_t, ft.numpy())
    loss_s, z_s = hand_nce(v_s, bank_t, contrast, 0.07, 6, None)  # student anchor vs teacher bank
    loss_t, z_t = hand_nce(v_t, bank_s, contrast, 0.07, 6, None)  # teacher anchor vs student bank
    assert method.nce_z_s.item() == pytest.approx(z_s, rel=1e-12)
    assert method.nce_z_t.item() == pytest.approx(z_t, rel=1e-12)
    assert terms.batch["crd"].item() == pytest.approx(0.8 * (loss_s + loss_t), rel=1e-10)
    ce = -np.log(np_softmax(step.student_logits.detach().numpy()))[np.arange(3), step.targets.numpy()]
    np.testing.assert_allclose(terms.sample["ce"].detach().numpy(), ce, rtol=1e-12)
    assert set(terms.sample) == {"ce"}
    fixed_z = (method.nce_z_s.item(), method.nce_z_t.item())

    # Second batch: Z stays what the first batch fixed, and the loss uses it (and the updated banks).
    bank_s, bank_t = method.memory_s.numpy().copy(), method.memory_t.numpy().copy()
    fs2, ft2 = randn(gen, 3, 3), randn(gen, 3, 2)
    terms2 = method.loss_terms(step_for([fs2], [ft2], indices=torch.tensor(idx)))
    assert (method.nce_z_s.item(), method.nce_z_t.item()) == fixed_z
    v_s2, v_t2 = np_embed(method.embed_s, fs2.numpy()), np_embed(method.embed_t, ft2.numpy())
    loss_s2, _ = hand_nce(v_s2, bank_t, contrast, 0.07, 6, fixed_z[0])
    loss_t2, _ = hand_nce(v_t2, bank_s, contrast, 0.07, 6, fixed_z[1])
    assert terms2.batch["crd"].item() == pytest.approx(0.8 * (loss_s2 + loss_t2), rel=1e-10)


def test_crd_memory_update_is_momentum_then_renormalise():
    method, _ = fixed_crd()
    old_s, old_t = method.memory_s.numpy().copy(), method.memory_t.numpy().copy()
    idx = [3, 0]
    gen = torch.Generator().manual_seed(9)
    fs, ft = randn(gen, 2, 3), randn(gen, 2, 2)
    method.loss_terms(step_for([fs], [ft], indices=torch.tensor(idx)))
    v_s, v_t = np_embed(method.embed_s, fs.numpy()), np_embed(method.embed_t, ft.numpy())
    exp_s, exp_t = old_s.copy(), old_t.copy()
    for row, i in enumerate(idx):
        exp_s[i] = np_normalize(0.5 * old_s[i] + 0.5 * v_s[row])
        exp_t[i] = np_normalize(0.5 * old_t[i] + 0.5 * v_t[row])
    np.testing.assert_allclose(method.memory_s.numpy(), exp_s, rtol=0, atol=1e-13)
    np.testing.assert_allclose(method.memory_t.numpy(), exp_t, rtol=0, atol=1e-13)

    method.eval()  # no bank update outside training
    before = method.memory_s.clone()
    method.loss_terms(step_for([fs], [ft], indices=torch.tensor(idx)))
    assert torch.equal(method.memory_s, before)


def test_crd_gradients_reach_embeddings_and_student_features_not_banks():
    method, _ = fixed_crd()
    gen = torch.Generator().manual_seed(10)
    fs = torch.randn(3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    ft = randn(gen, 3, 2)
    terms = method.loss_terms(step_for([fs], [ft], indices=torch.tensor([0, 3, 4])))
    terms.batch["crd"].backward()
    assert fs.grad is not None and fs.grad.abs().sum() > 0
    for module in (method.embed_s, method.embed_t):
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
        assert module.bias.grad is not None
    for bank in (method.memory_s, method.memory_t):
        assert not bank.requires_grad and bank.grad is None
    assert {n for n, _ in method.named_parameters()} == {"embed_s.weight", "embed_s.bias", "embed_t.weight",
                                                         "embed_t.bias"}
    assert {"memory_s", "memory_t", "nce_z_s", "nce_z_t"} <= set(method.state_dict())


def test_crd_scores_dense_and_gathered_paths_agree():
    gen = torch.Generator().manual_seed(11)
    anchor = randn(gen, 4, 8)
    bank = torch.randn(100, 8, generator=gen, dtype=torch.float64)
    contrast = torch.randint(0, 100, (4, 5), generator=gen)  # 100 > 4·5: gathered path
    gathered = CRD._scores(anchor, bank, contrast)
    dense = CRD._scores(anchor, bank, torch.cat([contrast] * 5, dim=1))[:, :5]  # 100 ≤ 4·25: dense path
    expected = torch.stack([bank[contrast[b]] @ anchor[b] for b in range(4)])
    torch.testing.assert_close(gathered, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dense, expected, rtol=1e-12, atol=1e-12)


def test_crd_state_dict_restores_the_negative_stream():
    first = crd(UNBALANCED, num_negatives=7)
    first.sample_negatives(torch.arange(5))
    state = first.state_dict()
    expected = first.sample_negatives(torch.arange(5))
    torch.manual_seed(123)
    second = CRD(num_negatives=7)
    second.setup(context([(5,)], [(6,)], batch_size=4, num_classes=5, train_labels=UNBALANCED))
    second.load_state_dict(state)
    assert torch.equal(second.sample_negatives(torch.arange(5)), expected)
    assert torch.equal(second.memory_s, first.memory_s.float())


# --------------------------------------------------------------------------------------------------
# Both through the real training loop (tiny synthetic data, resnet8 → resnet8)


@pytest.fixture(scope="module")
def tiny_data():
    from kdbench_plugins.datasets.synthetic import make_synthetic

    return make_synthetic(num_train=100, num_test=20, num_classes=4, image_size=8, seed=1)


def engine_run(data, method, *, epochs=1, seed=0, init_seed=None, **kw):
    from kdbench.plan import Recipe
    from kdbench.train.context import build_method_context
    from kdbench.train.engine import EngineConfig, train

    recipe = Recipe(epochs=epochs, batch_size=32, lr=0.05, milestones=(10,)).resolved("resnet8")
    torch.manual_seed(123)
    teacher = CIFAR_MODELS["resnet8"](num_classes=data.num_classes).eval()
    torch.manual_seed(seed if init_seed is None else init_seed)
    student = CIFAR_MODELS["resnet8"](num_classes=data.num_classes)
    method.setup(build_method_context(method, student, teacher, data, PairInfo("resnet8", "resnet8"), recipe))
    config = EngineConfig(recipe=recipe, seed=seed, **kw.pop("config", {}))
    return student, train(student, method, data, config, teacher=teacher, **kw)


def test_engine_trains_semckd_on_full_batches(tiny_data):
    method = SemCKD()
    _, outcome = engine_run(tiny_data, method)
    assert method.batch_size == 32  # 100 samples: 3 full batches, the partial one is dropped
    metrics = outcome.epochs[-1]
    assert math.isfinite(metrics.train_loss) and metrics.losses["semckd"] > 0 and metrics.losses["kd"] >= 0


def test_engine_trains_crd_and_resumes_exactly(tiny_data, tmp_path):
    full_method = CRD(num_negatives=64)
    full, _ = engine_run(tiny_data, full_method, epochs=2)
    assert full_method.nce_z_s.item() > 0 and full_method.nce_z_t.item() > 0
    assert torch.allclose(full_method.memory_s.norm(dim=1), torch.ones(100, dtype=torch.float32))  # all visited

    resume = tmp_path / "resume.pt"

    from kdbench.train.callbacks import Callback

    class Interrupt(Callback):
        def epoch_end(self, end):
            if end.metrics.epoch == 2:  # after epoch 1's resume checkpoint, before the run ends
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine_run(tiny_data, CRD(num_negatives=64), epochs=2, checkpointer=ResumeFile(resume), callbacks=[Interrupt()],
                   config={"checkpoint_every": 1})
    assert torch.load(resume, weights_only=True)["epoch"] == 1
    resumed_method = CRD(num_negatives=64)
    resumed, _ = engine_run(tiny_data, resumed_method, epochs=2, init_seed=99, checkpointer=ResumeFile(resume),
                            config={"checkpoint_every": 1})
    torch.testing.assert_close(resumed_method.memory_t, full_method.memory_t, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(resumed.state_dict()["fc.weight"], full.state_dict()["fc.weight"], rtol=1e-5,
                               atol=1e-6)
