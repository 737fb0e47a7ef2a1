"""Head influence against independent constructions: dense kron sums, explicit EK-FAC, leave-one-out refits.

Everything is float64. The reference quantities are built the slow, obvious way (torch.kron of every
sample's S_i ⊗ h̃h̃ᵀ, torch.linalg.solve), never through the plugin's _influence module.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from scipy.stats import spearmanr

from kdbench.contracts import ScoringInputs, SplitOutputs
from kdbench.errors import KdbenchError
from kdbench_plugins.estimators import _influence as influence
from kdbench_plugins.estimators.influence import Influence

F64 = torch.float64


def random_split(n: int, c: int, d: int, seed: int, logit_scale: float = 2.0) -> SplitOutputs:
    g = torch.Generator().manual_seed(seed)
    return SplitOutputs(
        features=torch.randn(n, d, generator=g, dtype=F64),
        logits=logit_scale * torch.randn(n, c, generator=g, dtype=F64),
        labels=torch.randint(0, c, (n,), generator=g),
    )


def inputs_for(train: SplitOutputs, val: SplitOutputs | None = None, weight_decay: float = 1e-2) -> ScoringInputs:
    c, d = train.logits.shape[1], train.features.shape[1]
    return ScoringInputs(
        train=train,
        head_weight=torch.zeros(c, d, dtype=F64),
        head_bias=torch.zeros(c, dtype=F64),
        weight_decay=weight_decay,
        val=val,
    )


def pieces(split: SplitOutputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """h̃, p, δ computed independently of the plugin's _influence module."""
    ht = torch.cat([split.features, torch.ones(split.num_samples, 1, dtype=F64)], dim=1)
    p = torch.exp(split.logits - torch.logsumexp(split.logits, dim=1, keepdim=True))
    delta = p - torch.eye(split.logits.shape[1], dtype=F64)[split.labels]
    return ht, p, delta


def dense_problem(split: SplitOutputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(1/N) Σ S_i ⊗ h̃_i h̃_iᵀ (undamped) and the N×P matrix of per-sample gradients δ_i ⊗ h̃_i, by kron."""
    ht, p, delta = pieces(split)
    n = split.num_samples
    hess = sum(
        torch.kron(torch.diag(pi) - torch.outer(pi, pi), torch.outer(hi, hi)) for pi, hi in zip(p, ht, strict=True)
    )
    grads = torch.stack([torch.kron(di, hi) for di, hi in zip(delta, ht, strict=True)])
    return hess / n, grads


def scores_from_inverse(solve, grads: torch.Tensor, score: str, val_grad: torch.Tensor | None) -> torch.Tensor:
    """The three scores given a function applying (an approximation of) H⁻¹ to a P×k matrix."""
    if score == "val":
        return -(grads @ solve(val_grad[:, None])[:, 0])
    x = solve(grads.T).T
    return (grads * x).sum(dim=1) if score == "self" else x.norm(dim=1)


SMALL = dict(n=60, c=4, d=5)
LAMBDA = 3e-3


@pytest.fixture(scope="module")
def small():
    train = random_split(SMALL["n"], SMALL["c"], SMALL["d"], seed=1)
    val = random_split(25, SMALL["c"], SMALL["d"], seed=2)
    hess, grads = dense_problem(train)
    _, val_grads = dense_problem(val)
    return train, val, hess, grads, val_grads.mean(dim=0)


def test_exact_hessian_matches_kron_sum(small):
    train, _, hess, _, _ = small
    data = influence.head_data(train.features, train.logits, train.labels)
    built = influence.exact_hessian(data, LAMBDA, chunk_size=7)  # several chunks
    expected = hess + LAMBDA * torch.eye(hess.shape[0], dtype=F64)
    torch.testing.assert_close(built, expected, rtol=1e-12, atol=1e-14)


def test_hessian_matvec_matches_dense(small):
    train, _, hess, _, _ = small
    data = influence.head_data(train.features, train.logits, train.labels)
    v = torch.randn(3, SMALL["c"], SMALL["d"] + 1, generator=torch.Generator().manual_seed(0), dtype=F64)
    got = influence.hessian_matvec(data, v, LAMBDA, chunk_size=11)
    expected = (v.reshape(3, -1) @ (hess + LAMBDA * torch.eye(hess.shape[0], dtype=F64))).reshape(v.shape)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("score", ["param_norm", "self", "val"])
def test_exact_matches_dense_solve(small, score):
    train, val, hess, grads, val_grad = small
    h_damped = hess + LAMBDA * torch.eye(hess.shape[0], dtype=F64)
    expected = scores_from_inverse(lambda b: torch.linalg.solve(h_damped, b), grads, score, val_grad)
    out = Influence(solver="exact", score=score, damping=LAMBDA, chunk_size=16).score(inputs_for(train, val))
    assert out.values.dtype == F64 and out.info["solver"] == "exact" and out.info["damping"] == LAMBDA
    torch.testing.assert_close(out.values, expected, rtol=1e-8, atol=0)


def explicit_kronecker_inverse(train: SplitOutputs, hess: torch.Tensor, corrected: bool, lam: float):
    """The K-FAC / EK-FAC matrix built literally: Q = Q_S ⊗ Q_A and Λ = diag(Qᵀ H Q) (EK-FAC) or σ ⊗ μ."""
    ht, p, _ = pieces(train)
    n = train.num_samples
    a = sum(torch.outer(hi, hi) for hi in ht) / n
    s_bar = sum(torch.diag(pi) - torch.outer(pi, pi) for pi in p) / n
    sigma, q_s = torch.linalg.eigh(s_bar)
    mu, q_a = torch.linalg.eigh(a)
    q = torch.kron(q_s, q_a)
    lam_diag = torch.diagonal(q.T @ hess @ q) if corrected else torch.kron(sigma, mu)
    matrix = q @ torch.diag(lam_diag.clamp_min(0) + lam) @ q.T
    return lambda b: torch.linalg.solve(matrix, b)


@pytest.mark.parametrize("solver", ["ekfac", "kfac"])
@pytest.mark.parametrize("score", ["param_norm", "self", "val"])
def test_kronecker_solvers_match_explicit_construction(small, solver, score):
    train, val, hess, grads, val_grad = small
    solve = explicit_kronecker_inverse(train, hess, corrected=solver == "ekfac", lam=LAMBDA)
    expected = scores_from_inverse(solve, grads, score, val_grad)
    out = Influence(solver=solver, score=score, damping=LAMBDA, chunk_size=13).score(inputs_for(train, val))
    assert out.info["solver"] == solver
    torch.testing.assert_close(out.values, expected, rtol=1e-8, atol=0)


@pytest.mark.parametrize("preconditioner", ["ekfac", "none"])
@pytest.mark.parametrize("score", ["param_norm", "self", "val"])
def test_cg_matches_exact(small, score, preconditioner):
    train, val, *_ = small
    inputs = inputs_for(train, val)
    exact = Influence(solver="exact", score=score, damping=LAMBDA).score(inputs).values
    cg = Influence(solver="cg", score=score, damping=LAMBDA, cg_tol=1e-12, cg_preconditioner=preconditioner)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = cg.score(inputs)
    assert any("one CG solve per training sample" in str(w.message) for w in caught) == (score != "val")
    assert out.info["cg_converged"] and out.info["cg_iterations"] > 0
    torch.testing.assert_close(out.values, exact, rtol=1e-7, atol=1e-9 * float(exact.abs().max()))


def clustered_head(n: int, c: int, d: int, seed: int) -> SplitOutputs:
    """Class-clustered ReLU features, 5% label noise, logits from a least-squares head (realistic p)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(c, d, generator=g, dtype=F64)
    labels = torch.randint(0, c, (n,), generator=g)
    feats = torch.relu(means[labels] + torch.randn(n, d, generator=g, dtype=F64))
    flip = torch.rand(n, generator=g) < 0.05
    labels = torch.where(flip, torch.randint(0, c, (n,), generator=g), labels)
    ht = torch.cat([feats, torch.ones(n, 1, dtype=F64)], dim=1)
    theta = torch.linalg.lstsq(ht, torch.eye(c, dtype=F64)[labels]).solution
    logits = ht @ theta
    return SplitOutputs(features=feats, logits=4.0 * logits / logits.std(), labels=labels)


def test_ekfac_ranks_like_exact_on_a_realistic_head():
    inputs = inputs_for(clustered_head(3000, 20, 32, seed=3), weight_decay=5e-4)
    for score in ("self", "param_norm"):
        exact = Influence(solver="exact", score=score).score(inputs)
        ekfac = Influence(solver="ekfac", score=score).score(inputs)
        assert exact.info["damping"] == ekfac.info["damping"] == 5e-4
        assert exact.info["damping_source"] == "teacher_weight_decay"
        assert spearmanr(exact.values.numpy(), ekfac.values.numpy()).statistic >= 0.99


# ------------------------------------------------------------------------------------------ leave-one-out


class SoftmaxHead:
    """(1/N) Σ_i w_i ℓ_i(θ) + (λ/2)‖θ‖² on frozen features, for a batch of weightings w (R×N) at once."""

    def __init__(self, ht: torch.Tensor, labels: torch.Tensor, num_classes: int, lam: float) -> None:
        self.ht, self.labels, self.c, self.lam = ht, labels, num_classes, lam
        self.onehot = torch.eye(num_classes, dtype=F64)[labels]

    def grad_hess(self, theta: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, dd = self.ht.shape
        c, p_dim = self.c, self.c * dd
        probs = torch.softmax(torch.einsum("rcd,nd->rnc", theta, self.ht), dim=-1)
        grad = torch.einsum("rn,rnc,nd->rcd", w, probs - self.onehot, self.ht) / n + self.lam * theta
        s = torch.diag_embed(probs) - probs[..., :, None] * probs[..., None, :]
        outer = (self.ht[:, :, None] * self.ht[:, None, :]).reshape(n, dd * dd)
        hess = torch.einsum("rnk,nm->rkm", (s * w[..., None, None]).reshape(len(w), n, c * c), outer)
        hess = hess.reshape(-1, c, c, dd, dd).permute(0, 1, 3, 2, 4).reshape(-1, p_dim, p_dim) / n
        return grad, hess + self.lam * torch.eye(p_dim, dtype=F64)

    def newton(self, theta: torch.Tensor, w: torch.Tensor, max_iter: int = 40) -> torch.Tensor:
        """Pure Newton (the objective is strongly convex and smooth), to a gradient of ~1e-15."""
        for _ in range(max_iter):
            grad, hess = self.grad_hess(theta, w)
            if float(grad.abs().max()) < 1e-14:
                break
            theta = theta - torch.linalg.solve(hess, grad.reshape(len(w), -1)).reshape(theta.shape)
        assert float(self.grad_hess(theta, w)[0].abs().max()) < 1e-12
        return theta


def per_sample_loss(theta: torch.Tensor, ht: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logp = torch.log_softmax(torch.einsum("rcd,nd->rnc", theta, ht), dim=-1)
    return -logp.gather(-1, labels.expand(theta.shape[0], -1)[..., None])[..., 0]


def test_influence_predicts_leave_one_out_refits():
    """Removing sample i moves θ* by ≈ (1/N)H⁻¹g_i, so (to first order)
    ‖Δθ‖ = param_norm/N, Δℓ_i = self/N and ΔL_val = ∇L_valᵀΔθ = −val/N."""
    n, c, d, lam = 300, 4, 8, 5e-3
    g = torch.Generator().manual_seed(0)
    means = torch.randn(c, d, generator=g, dtype=F64)

    def make(m: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, c, (m,), generator=g)
        h = means[y] + torch.randn(m, d, generator=g, dtype=F64)
        y = torch.where(torch.rand(m, generator=g) < 0.1, torch.randint(0, c, (m,), generator=g), y)
        return h, y

    (h, y), (hv, yv) = make(n), make(200)
    ht = torch.cat([h, torch.ones(n, 1, dtype=F64)], dim=1)
    htv = torch.cat([hv, torch.ones(len(yv), 1, dtype=F64)], dim=1)
    head = SoftmaxHead(ht, y, c, lam)
    full = head.newton(torch.zeros(1, c, d + 1, dtype=F64), torch.ones(1, n, dtype=F64))
    loo = head.newton(full.expand(n, -1, -1).clone(), 1.0 - torch.eye(n, dtype=F64))

    idx = torch.arange(n)
    d_theta = (loo - full).reshape(n, -1).norm(dim=1)
    d_own = per_sample_loss(loo, ht, y)[idx, idx] - per_sample_loss(full, ht, y)[0]
    d_val = per_sample_loss(loo, htv, yv).mean(dim=1) - per_sample_loss(full, htv, yv).mean()

    logits = lambda x: x @ full[0].T  # noqa: E731
    inputs = ScoringInputs(
        train=SplitOutputs(features=h, logits=logits(ht), labels=y),
        head_weight=full[0, :, :-1],
        head_bias=full[0, :, -1],
        weight_decay=lam,
        val=SplitOutputs(features=hv, logits=logits(htv), labels=yv),
    )
    pred = {s: Influence(solver="exact", score=s).score(inputs).values for s in ("param_norm", "self", "val")}

    def rho(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(spearmanr(a.numpy(), b.numpy()).statistic)

    assert rho(pred["self"], d_own) >= 0.99
    assert rho(pred["param_norm"], d_theta) >= 0.99
    assert rho(pred["val"], -d_val) >= 0.95
    # Scale, not just rank: first order misses only the leverage of sample i (a few per cent to ~20% here).
    assert 0.9 < float((n * d_own / pred["self"]).median()) < 1.3
    assert 0.9 < float((n * d_theta / pred["param_norm"]).median()) < 1.3


# ----------------------------------------------------------------------------------------- user errors


def test_val_score_without_validation_split_is_a_user_error(small):
    train, *_ = small
    with pytest.raises(KdbenchError, match="val_fraction"):
        Influence(score="val").score(inputs_for(train))
    assert Influence(score="val").needs_validation and not Influence().needs_validation


@pytest.mark.parametrize(
    "params",
    [
        {"solver": "lissa"},
        {"score": "loss"},
        {"damping": 0.0},
        {"damping": -1.0},
        {"cg_max_iter": 0},
        {"cg_tol": float("nan")},
        {"cg_preconditioner": "jacobi"},
        {"chunk_size": 0},
    ],
)
def test_bad_parameters_are_user_errors(params):
    with pytest.raises(KdbenchError):
        Influence(**params)


def test_zero_weight_decay_without_damping_is_a_user_error(small):
    train, *_ = small
    with pytest.raises(KdbenchError, match="damping"):
        Influence().score(inputs_for(train, weight_decay=0.0))


def test_auto_picks_exact_when_cheap_and_otherwise_ekfac_or_cg(small):
    train, val, *_ = small
    inputs = inputs_for(train, val)
    assert Influence().score(inputs).info["solver"] == "exact"
    tiny_budget = 1e-6
    out = Influence(exact_budget_gflop=tiny_budget).score(inputs)
    assert out.info["solver"] == "ekfac" and out.info["solver_requested"] == "auto"
    assert Influence(score="val", exact_budget_gflop=tiny_budget).score(inputs).info["solver"] == "cg"


def test_cost_model_sends_cifar100_heads_to_ekfac():
    """50k × 100 classes × 257 inputs: exact is ~1e14 flops (≈15 min on 2 cores), far over the default budget."""
    cost = influence.exact_flops(50_000, 25_700, "param_norm")
    assert cost > 6000.0 * 1e9 and influence.exact_flops(50_000, 2_570, "param_norm") < 6000.0 * 1e9
