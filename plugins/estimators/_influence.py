"""Influence functions on a softmax classifier head: exact, EK-FAC, K-FAC and conjugate gradient (float64).

Why the head: with the features frozen, the head's damped loss is strictly convex, so Koh & Liang's influence
``−H⁻¹ g_i`` is well defined and exact, and its structure makes it cheap: rank-one per-sample gradients, a
Hessian that is a sum of Kronecker products, Hessian-vector products without H. The formulas: docs/methods.md §6a.

Conventions: θ = [W b] is C×D (D = d + 1) and is vectorised row-major, so that ``g_i = kron(δ_i, h̃_i)``
and H is exactly what ``torch.kron`` builds. Vectors in parameter space (gradients, solutions) are kept
as C×D tensors, batches of them as R×C×D. All functions are pure: tensors in, tensors out.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from kdbench.errors import KdbenchError

SCORES: tuple[str, ...] = ("param_norm", "self", "val")

# Temporaries are sized to about this many float64 elements (2**25 · 8 B = 256 MiB) whatever N, C, D are.
_CHUNK_ELEMENTS = 2**25
# Column width of the tiles in which the dense Hessian is accumulated (only tiles on or above the
# diagonal are computed; 2048 keeps each GEMM large enough to run at full speed).
_TILE_WIDTH = 2048


@dataclass(frozen=True)
class HeadData:
    """The per-sample pieces of the head's loss: h̃ (N×D), p = softmax(z) (N×C) and δ = p − e_y (N×C)."""

    htilde: Tensor
    probs: Tensor
    residual: Tensor

    @property
    def num_samples(self) -> int:
        return int(self.htilde.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def dim(self) -> int:
        """D = d + 1 (features plus the bias input)."""
        return int(self.htilde.shape[1])

    @property
    def num_params(self) -> int:
        return self.num_classes * self.dim


def head_data(features: Tensor, logits: Tensor, labels: Tensor) -> HeadData:
    """h̃, p and δ in float64 from a split's features, logits and labels."""
    h = features.to(torch.float64)
    ones = torch.ones(h.shape[0], 1, dtype=torch.float64, device=h.device)
    probs = torch.softmax(logits.to(torch.float64), dim=1)
    residual = probs.clone()
    residual[torch.arange(labels.shape[0], device=labels.device), labels.long()] -= 1.0
    return HeadData(htilde=torch.cat([h, ones], dim=1), probs=probs, residual=residual)


def _rows(num_samples: int, width: int, chunk_size: int) -> int:
    """Samples per chunk: at most ``chunk_size`` and at most ~_CHUNK_ELEMENTS / width elements per temporary."""
    return max(1, min(chunk_size, _CHUNK_ELEMENTS // max(1, width), max(1, num_samples)))


def mean_gradient(data: HeadData) -> Tensor:
    """(1/N) Σ g_i as a C×D matrix: the gradient of the mean loss (e.g. ∇L_val for the `val` score)."""
    return data.residual.T @ data.htilde / max(1, data.num_samples)


def gradient_dot(data: HeadData, v: Tensor) -> Tensor:
    """g_iᵀ v for every sample (N), for one C×D vector v: δ_iᵀ V h̃_i, without forming any g_i."""
    return ((data.residual @ v) * data.htilde).sum(dim=1)


def per_sample_gradients(data: HeadData, start: int, stop: int) -> Tensor:
    """g_i for samples start..stop as an R×C×D batch (materialised: only for chunked use)."""
    return data.residual[start:stop, :, None] * data.htilde[start:stop, None, :]


def hessian_matvec(data: HeadData, v: Tensor, damping: float, chunk_size: int = 1024) -> Tensor:
    """H V for a C×D vector or an R×C×D batch, from the structure (never forms H): ~4·N·C·D flops each."""
    batch = v if v.dim() == 3 else v[None]
    out = torch.zeros_like(batch)
    rows = _rows(data.num_samples, batch.shape[0] * data.num_classes, chunk_size)
    for start in range(0, data.num_samples, rows):
        ht = data.htilde[start : start + rows]
        pt = data.probs[start : start + rows].T  # C×n
        z = batch @ ht.T  # R×C×n: V h̃_i
        sz = pt * z - pt * (pt * z).sum(dim=1, keepdim=True)  # S_i V h̃_i
        out += sz @ ht
    out = out / data.num_samples + damping * batch
    return out if v.dim() == 3 else out[0]


# ----------------------------------------------------------------------------------------------- exact


def exact_flops(num_samples: int, num_params: int, score: str) -> float:
    """Rough flop count of the exact solver, used by ``auto`` to decide whether it is affordable.

    Building H is a symmetric rank-N update (~N·P² flops), the Cholesky factorisation P³/3, and every
    per-sample score needs triangular solves against all N gradients: N·P² for `self`, 2·N·P² for
    `param_norm` (the last is inherent: H⁻¹ is dense, so applying it to N distinct gradients costs
    O(N·P²) whatever their rank). `val` needs one solve and then N cheap dot products.
    """
    n, p = float(num_samples), float(num_params)
    solve = {"self": n * p * p, "param_norm": 2.0 * n * p * p}.get(score, 4.0 * p * p + 4.0 * n * p)
    return n * p * p + p**3 / 3.0 + solve


def dense_hessian_bytes(num_params: int) -> int:
    """Memory of the dense P×P float64 Hessian (factorised in place, so this is the exact solver's peak)."""
    return 8 * num_params * num_params


def physical_memory_bytes() -> int | None:
    """Total RAM of this machine, or None where the OS does not say (used to refuse impossible dense solves)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def exact_hessian(data: HeadData, damping: float, chunk_size: int = 1024) -> Tensor:
    """The dense P×P Hessian ``(1/N) Σ S_i ⊗ h̃_i h̃_iᵀ + λI``, built from its structure in chunks of samples.

    With U_i = p_i ⊗ h̃_i, ``Σ S_i ⊗ h̃h̃ᵀ = blockdiag_a(Σ_i p_ia h̃_i h̃_iᵀ) − UᵀU``: the block diagonal is C
    small D×D products, and UᵀU is accumulated tile by tile, only on and above the diagonal (tiles are
    whole classes), then mirrored — so building H costs ~N·P² flops, half of a plain UᵀU, and no
    temporary larger than ~256 MiB besides H itself.
    """
    c, dd, p = data.num_classes, data.dim, data.num_params
    h = torch.zeros(p, p, dtype=torch.float64, device=data.htilde.device)
    per_tile = max(1, _TILE_WIDTH // dd)
    tiles = [(a * dd, min(c, a + per_tile) * dd) for a in range(0, c, per_tile)]
    rows = _rows(data.num_samples, p, chunk_size)
    for start in range(0, data.num_samples, rows):
        ht = data.htilde[start : start + rows]
        pr = data.probs[start : start + rows]
        u = (pr[:, :, None] * ht[:, None, :]).reshape(-1, p)
        for i, (r0, r1) in enumerate(tiles):
            for s0, s1 in tiles[i:]:
                h[r0:r1, s0:s1].addmm_(u[:, r0:r1].T, u[:, s0:s1], alpha=-1.0)
        for a in range(c):
            block = slice(a * dd, (a + 1) * dd)
            h[block, block].addmm_((ht * pr[:, a : a + 1]).T, ht)
    for i, (r0, r1) in enumerate(tiles):
        for s0, s1 in tiles[i + 1 :]:
            h[s0:s1, r0:r1].copy_(h[r0:r1, s0:s1].T)
    h.mul_(1.0 / data.num_samples)
    h.diagonal().add_(damping)
    return h


def cholesky_lower_inplace(h: Tensor, damping: float, block: int = 512) -> Tensor:
    """Factor a symmetric positive definite H = L Lᵀ, overwriting H with L (lower, zeros above).

    A right-looking blocked Cholesky in torch: factor a diagonal block, solve the panel below it,
    and update only the lower tiles of the trailing matrix (one GEMM per row block) — ~P³/3 flops at
    GEMM speed and no second P×P copy, which matters at P = 25,700 (5.3 GB). (torch.linalg.cholesky
    always copies; SciPy's in-place potrf crashed at that size in testing.)
    """
    n = h.shape[0]
    for k0 in range(0, n, block):
        k1 = min(k0 + block, n)
        l11, info = torch.linalg.cholesky_ex(h[k0:k1, k0:k1])
        if int(info) != 0:
            raise KdbenchError(
                f"the head's Hessian is not positive definite at damping={damping:g} (Cholesky failed at pivot "
                f"{k0 + int(info)}); increase the influence damping"
            )
        h[k0:k1, k0:k1].copy_(l11)
        h[k0:k1, k1:].zero_()
        if k1 == n:
            break
        l21 = torch.linalg.solve_triangular(l11.mT, h[k1:, k0:k1], upper=True, left=False)
        h[k1:, k0:k1].copy_(l21)
        for i0 in range(k1, n, block):
            i1 = min(i0 + block, n)
            h[i0:i1, k1:i1].addmm_(l21[i0 - k1 : i1 - k1], l21[: i1 - k1].T, alpha=-1.0)
    return h


def exact_influence(
    data: HeadData,
    damping: float,
    score: str,
    val_gradient: Tensor | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    """Influence scores with the dense Hessian and its Cholesky factor (exact to rounding).

    ``self`` = ‖L⁻¹g_i‖², ``param_norm`` = ‖L⁻ᵀL⁻¹g_i‖, ``val`` = −g_iᵀ(H⁻¹∇L_val). Gradients are built
    chunk by chunk as P×n right-hand sides, so memory stays at H plus a few hundred MiB. The per-sample
    scores are inherently O(N·P²) (see :func:`exact_flops`).
    """
    _check_score(score, val_gradient)
    low = cholesky_lower_inplace(exact_hessian(data, damping, chunk_size), damping)
    if score == "val":
        assert val_gradient is not None
        b = val_gradient.reshape(-1, 1).to(torch.float64)
        y = torch.linalg.solve_triangular(low, b, upper=False)
        v = torch.linalg.solve_triangular(low.mT, y, upper=True)
        return -gradient_dot(data, v.reshape(data.num_classes, data.dim))
    out = torch.empty(data.num_samples, dtype=torch.float64, device=low.device)
    rows = _rows(data.num_samples, data.num_params, chunk_size)
    for start in range(0, data.num_samples, rows):
        stop = min(start + rows, data.num_samples)
        g = per_sample_gradients(data, start, stop).reshape(stop - start, -1).T  # P×n
        y = torch.linalg.solve_triangular(low, g, upper=False)
        if score == "self":
            out[start:stop] = (y * y).sum(dim=0)
        else:
            x = torch.linalg.solve_triangular(low.mT, y, upper=True)
            out[start:stop] = torch.linalg.vector_norm(x, dim=0)
    return out


# -------------------------------------------------------------------------------------- K-FAC / EK-FAC


@dataclass(frozen=True)
class KroneckerEigenbasis:
    """H ≈ (Q_S ⊗ Q_A) diag(Λ) (Q_S ⊗ Q_A)ᵀ + λI, with Λ a C×D grid of (corrected) eigenvalues."""

    q_s: Tensor  # C×C eigenvectors of S̄ = mean_i S_i
    q_a: Tensor  # D×D eigenvectors of A = mean_i h̃_i h̃_iᵀ
    eigenvalues: Tensor  # C×D, without damping


def kronecker_eigenbasis(data: HeadData, corrected: bool = True, chunk_size: int = 1024) -> KroneckerEigenbasis:
    """The eigenbasis of the two Kronecker factors, with K-FAC or EK-FAC eigenvalues.

    K-FAC: Λ_ab = σ_a·μ_b (eigenvalues of S̄ and A). EK-FAC (George et al. 2018): Λ_ab is the exact
    diagonal of H in that basis, ``mean_i (Q_Sᵀ S_i Q_S)_aa · (Q_Aᵀ h̃_i)_b²``, where
    ``(Q_Sᵀ S_i Q_S)_aa = Σ_c p_ic Q_ca² − (Σ_c p_ic Q_ca)²`` — O(N·C² + N·D² + N·C·D) in all.
    """
    n = data.num_samples
    a = data.htilde.T @ data.htilde / n
    s_bar = torch.diag(data.probs.mean(dim=0)) - data.probs.T @ data.probs / n
    sigma, q_s = torch.linalg.eigh(s_bar)
    mu, q_a = torch.linalg.eigh(a)
    if not corrected:
        lam = sigma.clamp_min(0.0)[:, None] * mu.clamp_min(0.0)[None, :]
        return KroneckerEigenbasis(q_s=q_s, q_a=q_a, eigenvalues=lam)
    lam = torch.zeros(data.num_classes, data.dim, dtype=torch.float64, device=a.device)
    q_s2 = q_s * q_s
    rows = _rows(n, data.num_classes + data.dim, chunk_size)
    for start in range(0, n, rows):
        pr = data.probs[start : start + rows]
        s_diag = pr @ q_s2 - (pr @ q_s) ** 2  # n×C
        u2 = (data.htilde[start : start + rows] @ q_a) ** 2  # n×D
        lam += s_diag.T @ u2
    # Rounding can leave the exactly-null direction (the all-ones class vector) a hair below zero.
    return KroneckerEigenbasis(q_s=q_s, q_a=q_a, eigenvalues=(lam / n).clamp_min(0.0))


def eigenbasis_solve(basis: KroneckerEigenbasis, damping: float, v: Tensor) -> Tensor:
    """(Q (Λ+λ)⁻¹ Qᵀ) V for a C×D vector or R×C×D batch: the K-FAC/EK-FAC inverse, also CG's preconditioner."""
    rotated = basis.q_s.T @ v @ basis.q_a
    return basis.q_s @ (rotated / (basis.eigenvalues + damping)) @ basis.q_a.T


def eigenbasis_influence(
    basis: KroneckerEigenbasis,
    data: HeadData,
    damping: float,
    score: str,
    val_gradient: Tensor | None = None,
    chunk_size: int = 1024,
) -> Tensor:
    """Scores with the Kronecker-eigenbasis inverse; per sample O(C·D) because Qᵀg_i = (Q_Sᵀδ_i) ⊗ (Q_Aᵀh̃_i)."""
    _check_score(score, val_gradient)
    inv = 1.0 / (basis.eigenvalues + damping)
    vhat = None
    if score == "val":
        assert val_gradient is not None
        vhat = (basis.q_s.T @ val_gradient.to(torch.float64) @ basis.q_a) * inv
    out = torch.empty(data.num_samples, dtype=torch.float64, device=inv.device)
    rows = _rows(data.num_samples, data.num_classes + data.dim, chunk_size)
    for start in range(0, data.num_samples, rows):
        stop = min(start + rows, data.num_samples)
        alpha = data.residual[start:stop] @ basis.q_s  # n×C
        beta = data.htilde[start:stop] @ basis.q_a  # n×D
        if vhat is not None:
            out[start:stop] = -((alpha @ vhat) * beta).sum(dim=1)
        elif score == "self":
            out[start:stop] = ((alpha * alpha) @ inv * (beta * beta)).sum(dim=1)
        else:
            out[start:stop] = ((alpha * alpha) @ (inv * inv) * (beta * beta)).sum(dim=1).sqrt()
    return out


# ------------------------------------------------------------------------------------------------- CG


@dataclass(frozen=True)
class CGStats:
    """Convergence record of a batch of CG solves (its worst column)."""

    iterations: int
    max_relative_residual: float
    converged: bool

    def merge(self, other: CGStats) -> CGStats:
        return CGStats(
            iterations=max(self.iterations, other.iterations),
            max_relative_residual=max(self.max_relative_residual, other.max_relative_residual),
            converged=self.converged and other.converged,
        )


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor],
    rhs: Tensor,
    preconditioner: Callable[[Tensor], Tensor] | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
) -> tuple[Tensor, CGStats]:
    """Preconditioned CG on a batch of independent SPD systems (R×C×D), each stopped at ‖r‖ ≤ tol·‖b‖.

    Converged columns are frozen (step 0) while the others go on, so a batch costs as many matvecs as
    its slowest column.
    """
    precond = preconditioner or (lambda r: r)

    def dot(a: Tensor, b: Tensor) -> Tensor:
        return (a * b).sum(dim=(1, 2))

    def relative(r: Tensor, bnorm: Tensor) -> Tensor:
        rnorm = torch.linalg.vector_norm(r, dim=(1, 2))
        return torch.where(bnorm > 0, rnorm / torch.where(bnorm > 0, bnorm, 1.0), 0.0)

    bnorm = torch.linalg.vector_norm(rhs, dim=(1, 2))
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = precond(r)
    p = z.clone()
    rz = dot(r, z)
    rel = relative(r, bnorm)
    done = rel <= tol
    iterations = 0
    while not bool(done.all()) and iterations < max_iter:
        iterations += 1
        ap = matvec(p)
        pap = dot(p, ap)
        alpha = torch.where(done | (pap <= 0), 0.0, rz / torch.where(pap > 0, pap, 1.0))
        x = x + alpha[:, None, None] * p
        r = r - alpha[:, None, None] * ap
        rel = torch.where(done, rel, relative(r, bnorm))
        done = done | (rel <= tol)
        z = precond(r)
        rz_new = dot(r, z)
        beta = torch.where(done | (rz == 0), 0.0, rz_new / torch.where(rz != 0, rz, 1.0))
        p = z + beta[:, None, None] * p
        rz = rz_new
    worst = float(rel.max()) if rel.numel() else 0.0
    return x, CGStats(iterations=iterations, max_relative_residual=worst, converged=bool(done.all()))


def cg_influence(
    data: HeadData,
    damping: float,
    score: str,
    val_gradient: Tensor | None = None,
    *,
    preconditioner: KroneckerEigenbasis | None = None,
    tol: float = 1e-10,
    max_iter: int = 500,
    chunk_size: int = 1024,
    rhs_batch: int = 64,
) -> tuple[Tensor, CGStats]:
    """Scores from matrix-free (optionally EK-FAC-preconditioned) CG, with the worst solve's record.

    `val` is one solve, H⁻¹∇L_val, followed by N dot products: cheap. `self` and `param_norm` need one
    solve per training sample (batched ``rhs_batch`` at a time), i.e. ~N × iterations × 4·N·P flops:
    only sensible for small problems or as a cross-check of the other solvers.
    """
    _check_score(score, val_gradient)

    def matvec(v: Tensor) -> Tensor:
        return hessian_matvec(data, v, damping, chunk_size)

    precond = None if preconditioner is None else (lambda r: eigenbasis_solve(preconditioner, damping, r))
    if score == "val":
        assert val_gradient is not None
        x, stats = conjugate_gradient(matvec, val_gradient.to(torch.float64)[None], precond, tol, max_iter)
        return -gradient_dot(data, x[0]), stats
    out = torch.empty(data.num_samples, dtype=torch.float64, device=data.htilde.device)
    stats = CGStats(iterations=0, max_relative_residual=0.0, converged=True)
    for start in range(0, data.num_samples, rhs_batch):
        stop = min(start + rhs_batch, data.num_samples)
        g = per_sample_gradients(data, start, stop)
        x, batch_stats = conjugate_gradient(matvec, g, precond, tol, max_iter)
        out[start:stop] = (g * x).sum(dim=(1, 2)) if score == "self" else torch.linalg.vector_norm(x, dim=(1, 2))
        stats = stats.merge(batch_stats)
    return out, stats


def _check_score(score: str, val_gradient: Tensor | None) -> None:
    if score not in SCORES:
        raise KdbenchError(f"unknown influence score {score!r}; choose one of {', '.join(SCORES)}")
    if score == "val" and val_gradient is None:
        raise KdbenchError("influence score 'val' needs a validation split: set the dataset's val_fraction")


def gflop(flops: float) -> float:
    """Flops in GFLOP, rounded for the record."""
    return float(f"{flops / 1e9:.4g}") if math.isfinite(flops) else flops
