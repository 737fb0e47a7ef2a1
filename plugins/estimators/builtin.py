"""Built-in data-value estimators (METHODS.md §6a): influence, random, TracIn, KNN-Shapley and cheap controls.

Each scores every training sample from the trained teacher's :class:`~kdbench.estimators.ScoringInputs`
and returns the resolved settings it actually used in ``Scores.info``. Registered through the
``kdbench`` entry-point group like any third-party plugin.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from kdbench import influence
from kdbench.errors import KdbenchError
from kdbench.estimators import DataValueEstimator, Scores, ScoringInputs, SplitOutputs
from kdbench.hookspecs import hookimpl
from kdbench.shapley import knn_shapley

SOLVERS: tuple[str, ...] = ("auto", "exact", "ekfac", "kfac", "cg")
PRECONDITIONERS: tuple[str, ...] = ("ekfac", "none")
VAL_MISSING = "needs a validation split: set the dataset's val_fraction"


def _split_checked(split: SplitOutputs, what: str) -> SplitOutputs:
    """The split with consistent shapes (N×d features, N×C logits, N labels in range), else a one-line error."""
    h, z, y = split.features, split.logits, split.labels
    if h.dim() != 2 or z.dim() != 2 or y.dim() != 1 or not (h.shape[0] == z.shape[0] == y.shape[0]):
        raise KdbenchError(
            f"{what}: expected features N×d, logits N×C and labels N, got {tuple(h.shape)}, {tuple(z.shape)}, "
            f"{tuple(y.shape)}"
        )
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= z.shape[1]):
        raise KdbenchError(f"{what}: labels must lie in 0..{z.shape[1] - 1}")
    return split


def _probs(split: SplitOutputs) -> Tensor:
    return torch.softmax(split.logits.to(torch.float64), dim=1)


def _positive_int(name: str, value: Any, estimator: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise KdbenchError(f"{estimator}: {name} must be a positive integer, got {value!r}")
    return value


def _positive_float(name: str, value: Any, estimator: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise KdbenchError(f"{estimator}: {name} must be a positive number, got {value!r}")
    return float(value)


def _choice(name: str, value: Any, choices: tuple[str, ...], estimator: str) -> str:
    if value not in choices:
        raise KdbenchError(f"{estimator}: {name} must be one of {', '.join(choices)}, got {value!r}")
    return str(value)


class Influence(DataValueEstimator):
    """Influence functions on the teacher's classifier head (the paper's Eq. 5; exact on the head).

    Scores (higher → teacher):
      * ``param_norm`` ‖H⁻¹g_i‖, the size of the parameter change sample i causes (paper default);
      * ``self`` g_iᵀH⁻¹g_i, how much sample i's own loss depends on its presence;
      * ``val`` −g_iᵀH⁻¹∇L_val (Koh & Liang's I_up,loss): positive = up-weighting i raises the
        validation loss, i.e. harmful or atypical samples, which go to the teacher like the others.

    Solvers: ``exact`` (dense Hessian, Cholesky), ``ekfac``/``kfac`` (Kronecker eigenbasis),
    ``cg`` (matrix-free, EK-FAC-preconditioned; one solve per sample for self/param_norm, so slow).
    ``auto`` takes ``exact`` when its estimated cost (:func:`kdbench.influence.exact_flops`) is at most
    ``exact_budget_gflop`` and the dense Hessian fits in half the machine's memory; otherwise ``cg``
    for ``val`` (a single solve, exact to ``cg_tol``) and ``ekfac`` for the per-sample scores.
    Why not METHODS.md's "exact when P ≤ 30k": on 2 CPU cores a CIFAR-100 head (N = 50k, P = 25,700,
    ~1e14 flops) took 12 min (`self`) and 19 min (`param_norm`) exactly, against 0.4 s for EK-FAC with
    Spearman 0.9999 to exact; for `val`, though, EK-FAC ranks only ~0.5-0.7 against exact while
    preconditioned CG is exact in ~5 s (benchmarks/score_influence.py). The default budget, 6000
    GFLOP, is about a minute there.
    ``damping`` None means the teacher's weight decay (the head was trained with it).
    """

    higher_to_teacher = True

    def __init__(
        self,
        solver: str = "auto",
        score: str = "param_norm",
        damping: float | None = None,
        exact_budget_gflop: float = 6000.0,
        cg_tol: float = 1e-10,
        cg_max_iter: int = 500,
        cg_preconditioner: str = "ekfac",
        chunk_size: int = 1024,
    ) -> None:
        name = "influence"
        self.solver = _choice("solver", solver, SOLVERS, name)
        self.score_name = _choice("score", score, influence.SCORES, name)
        self.damping = None if damping is None else _positive_float("damping", damping, name)
        self.exact_budget_gflop = _positive_float("exact_budget_gflop", exact_budget_gflop, name)
        self.cg_tol = _positive_float("cg_tol", cg_tol, name)
        self.cg_max_iter = _positive_int("cg_max_iter", cg_max_iter, name)
        self.cg_preconditioner = _choice("cg_preconditioner", cg_preconditioner, PRECONDITIONERS, name)
        self.chunk_size = _positive_int("chunk_size", chunk_size, name)
        # Only the `val` score reads the validation split; shadow the class default per instance.
        self.needs_validation = self.score_name == "val"

    def _damping(self, inputs: ScoringInputs) -> tuple[float, str]:
        if self.damping is not None:
            return self.damping, "parameter"
        wd = float(inputs.weight_decay)
        if not math.isfinite(wd) or wd <= 0:
            raise KdbenchError(
                f"influence: the teacher's weight decay is {wd:g}, which cannot damp the head's singular Hessian; "
                "set the estimator's damping parameter (> 0)"
            )
        return wd, "teacher_weight_decay"

    def _resolve_solver(self, data: influence.HeadData) -> tuple[str, float]:
        cost = influence.exact_flops(data.num_samples, data.num_params, self.score_name)
        if self.solver != "auto":
            return self.solver, cost
        memory = influence.physical_memory_bytes()
        fits = memory is None or influence.dense_hessian_bytes(data.num_params) <= memory // 2
        if fits and cost <= self.exact_budget_gflop * 1e9:
            return "exact", cost
        return ("cg" if self.score_name == "val" else "ekfac"), cost

    def score(self, inputs: ScoringInputs) -> Scores:
        train = _split_checked(inputs.train, "influence train split")
        c, d = train.logits.shape[1], train.features.shape[1]
        if tuple(inputs.head_weight.shape) != (c, d):
            raise KdbenchError(
                f"influence: head weight is {tuple(inputs.head_weight.shape)} but the features/logits imply {(c, d)}"
            )
        damping, damping_source = self._damping(inputs)
        data = influence.head_data(train.features, train.logits, train.labels)
        val_gradient = None
        if self.score_name == "val":
            if inputs.val is None:
                raise KdbenchError(f"influence score 'val' {VAL_MISSING}")
            val = _split_checked(inputs.val, "influence val split")
            val_gradient = influence.mean_gradient(influence.head_data(val.features, val.logits, val.labels))
        solver, cost = self._resolve_solver(data)
        info: dict[str, Any] = {
            "score": self.score_name,
            "solver": solver,
            "solver_requested": self.solver,
            "damping": damping,
            "damping_source": damping_source,
            "num_params": data.num_params,
            "exact_cost_gflop": influence.gflop(cost),
        }
        if self.solver == "auto":
            info["exact_budget_gflop"] = self.exact_budget_gflop
        values = self._solve(solver, data, damping, val_gradient, info)
        return Scores(values=values, info=info)

    def _solve(
        self,
        solver: str,
        data: influence.HeadData,
        damping: float,
        val_gradient: Tensor | None,
        info: dict[str, Any],
    ) -> Tensor:
        score = self.score_name
        if solver == "exact":
            memory = influence.physical_memory_bytes()
            need = influence.dense_hessian_bytes(data.num_params)
            if memory is not None and need > memory:
                raise KdbenchError(
                    f"influence solver 'exact' needs a dense {data.num_params}² Hessian ({need / 2**30:.1f} GiB) "
                    f"but this machine has {memory / 2**30:.1f} GiB; use solver 'ekfac' or 'cg'"
                )
            return influence.exact_influence(data, damping, score, val_gradient, self.chunk_size)
        if solver in ("ekfac", "kfac"):
            basis = influence.kronecker_eigenbasis(data, corrected=solver == "ekfac", chunk_size=self.chunk_size)
            return influence.eigenbasis_influence(basis, data, damping, score, val_gradient, self.chunk_size)
        if score != "val":
            warnings.warn(
                f"influence solver 'cg' with score {score!r} runs one CG solve per training sample "
                f"({data.num_samples} solves); prefer 'exact' or 'ekfac' for per-sample scores",
                stacklevel=3,
            )
        precond = None
        if self.cg_preconditioner == "ekfac":
            precond = influence.kronecker_eigenbasis(data, corrected=True, chunk_size=self.chunk_size)
        values, stats = influence.cg_influence(
            data,
            damping,
            score,
            val_gradient,
            preconditioner=precond,
            tol=self.cg_tol,
            max_iter=self.cg_max_iter,
            chunk_size=self.chunk_size,
        )
        info.update(
            cg_tol=self.cg_tol,
            cg_preconditioner=self.cg_preconditioner,
            cg_iterations=stats.iterations,
            cg_max_relative_residual=stats.max_relative_residual,
            cg_converged=stats.converged,
        )
        if not stats.converged:
            warnings.warn(
                f"influence CG did not reach relative residual {self.cg_tol:g} in {self.cg_max_iter} iterations "
                f"(worst {stats.max_relative_residual:.3g}); raise cg_max_iter or damping",
                stacklevel=3,
            )
        return values


class RandomScores(DataValueEstimator):
    """Uniform scores in [0, 1) from a seeded generator: the random-selection baseline (Table II)."""

    higher_to_teacher = True

    def __init__(self, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise KdbenchError(f"random: seed must be an integer or null, got {seed!r}")
        self.seed = seed

    def score(self, inputs: ScoringInputs) -> Scores:
        seed = int(inputs.seed) if self.seed is None else self.seed
        generator = torch.Generator().manual_seed(seed)
        values = torch.rand(inputs.train.num_samples, generator=generator, dtype=torch.float64)
        return Scores(values=values.to(inputs.train.labels.device), info={"seed": seed})


def _grand_squared(split: SplitOutputs) -> Tensor:
    """‖∇_θ ℓ_i‖² of the head's gradient δ_i ⊗ h̃_i: ‖δ_i‖²·(‖h_i‖² + 1)."""
    probs = _probs(split)
    delta = probs - torch.nn.functional.one_hot(split.labels.long(), probs.shape[1]).to(torch.float64)
    return delta.pow(2).sum(dim=1) * (split.features.to(torch.float64).pow(2).sum(dim=1) + 1.0)


class TracIn(DataValueEstimator):
    """TracIn self-influence (Pruthi et al. 2020) on the head: Σ_t η_t ‖δ_i^t‖²·‖h̃_i^t‖² over checkpoints.

    Each checkpoint contributes with its own features, logits and learning rate. With zero or one
    checkpoint this is GraNd² at a single set of weights (the final ones when there are none, with
    η = 1), not TracIn; a warning says so. Higher → teacher.
    """

    higher_to_teacher = True
    needs_checkpoints = True

    def score(self, inputs: ScoringInputs) -> Scores:
        checkpoints = inputs.checkpoints
        n = inputs.train.num_samples
        if len(checkpoints) <= 1:
            warnings.warn(
                f"tracin with {len(checkpoints)} checkpoint(s) degenerates to GraNd² (squared head-gradient "
                "norm) at a single set of weights; save teacher checkpoints during training for TracIn",
                stacklevel=2,
            )
        if not checkpoints:
            values = _grand_squared(_split_checked(inputs.train, "tracin train split"))
            return Scores(values=values, info={"num_checkpoints": 0, "epochs": [], "lrs": []})
        values = torch.zeros(n, dtype=torch.float64, device=inputs.train.labels.device)
        for ckpt in checkpoints:
            split = _split_checked(ckpt.train, f"tracin checkpoint (epoch {ckpt.epoch})")
            if split.num_samples != n:
                raise KdbenchError(
                    f"tracin: checkpoint of epoch {ckpt.epoch} has {split.num_samples} samples, the train split {n}"
                )
            values += float(ckpt.lr) * _grand_squared(split)
        info = {
            "num_checkpoints": len(checkpoints),
            "epochs": [int(c.epoch) for c in checkpoints],
            "lrs": [float(c.lr) for c in checkpoints],
        }
        return Scores(values=values, info=info)


class KnnShapley(DataValueEstimator):
    """Exact KNN-Shapley (Jia et al. 2019) on the teacher's penultimate features, Euclidean distance.

    Value of a training sample = its mean Shapley value over validation points for the K-NN utility
    (fraction of the K nearest with the right label). Higher → teacher.
    """

    higher_to_teacher = True
    needs_validation = True

    def __init__(self, k: int = 5) -> None:
        self.k = _positive_int("k", k, "knn-shapley")

    def score(self, inputs: ScoringInputs) -> Scores:
        if inputs.val is None:
            raise KdbenchError(f"knn-shapley {VAL_MISSING}")
        train = _split_checked(inputs.train, "knn-shapley train split")
        val = _split_checked(inputs.val, "knn-shapley val split")
        if val.features.shape[1] != train.features.shape[1]:
            raise KdbenchError("knn-shapley: train and validation features have different widths")
        values = knn_shapley(train.features, train.labels, val.features, val.labels, k=self.k)
        info = {"k": self.k, "distance": "euclidean", "num_val": val.num_samples}
        return Scores(values=values, info=info)


class EL2N(DataValueEstimator):
    """EL2N (Paul et al. 2021) of the trained teacher: ‖p − e_y‖₂. Higher (harder) → teacher."""

    higher_to_teacher = True

    def score(self, inputs: ScoringInputs) -> Scores:
        split = _split_checked(inputs.train, "el2n train split")
        probs = _probs(split)
        delta = probs - torch.nn.functional.one_hot(split.labels.long(), probs.shape[1]).to(torch.float64)
        return Scores(values=torch.linalg.vector_norm(delta, dim=1), info={})


class Margin(DataValueEstimator):
    """Probability margin p_y − max_{c≠y} p_c. A low margin is a hard sample, so *lower* → teacher."""

    higher_to_teacher = False

    def score(self, inputs: ScoringInputs) -> Scores:
        split = _split_checked(inputs.train, "margin train split")
        probs = _probs(split)
        y = split.labels.long()[:, None]
        own = probs.gather(1, y)[:, 0]
        others = probs.scatter(1, y, -math.inf).amax(dim=1) if probs.shape[1] > 1 else torch.zeros_like(own)
        return Scores(values=own - others, info={})


class Loss(DataValueEstimator):
    """The teacher's cross-entropy −log p_y (from log-softmax, stable). Higher (harder) → teacher."""

    higher_to_teacher = True

    def score(self, inputs: ScoringInputs) -> Scores:
        split = _split_checked(inputs.train, "loss train split")
        logp = torch.log_softmax(split.logits.to(torch.float64), dim=1)
        return Scores(values=-logp.gather(1, split.labels.long()[:, None])[:, 0], info={})


class TeacherCorrect(DataValueEstimator):
    """1.0 where the teacher's argmax equals the label, else 0.0.

    Higher → teacher: the samples the teacher gets right are the ones whose soft labels carry correct
    dark knowledge; the ones it gets wrong are left to ground truth (D_s). Ties in the sort are the
    selector's business.
    """

    higher_to_teacher = True

    def score(self, inputs: ScoringInputs) -> Scores:
        split = _split_checked(inputs.train, "teacher-correct train split")
        correct = split.logits.argmax(dim=1) == split.labels.long()
        return Scores(values=correct.to(torch.float64), info={})


@hookimpl
def kdbench_register_estimators(register):
    register("influence", Influence, version="1")
    register("random", RandomScores, version="1")
    register("tracin", TracIn, version="1")
    register("knn-shapley", KnnShapley, version="1")
    register("el2n", EL2N, version="1")
    register("margin", Margin, version="1")
    register("loss", Loss, version="1")
    register("teacher-correct", TeacherCorrect, version="1")
