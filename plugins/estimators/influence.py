"""Influence functions on the teacher's classifier head (the paper's Eq. 5; docs/methods.md §6a)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

from torch import Tensor

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, hookimpl
from kdbench.errors import KdbenchError

from . import _influence as math_
from ._checks import VAL_MISSING, choice, positive_float, positive_int, split_checked

SOLVERS: tuple[str, ...] = ("auto", "exact", "ekfac", "kfac", "cg")
PRECONDITIONERS: tuple[str, ...] = ("ekfac", "none")


class Influence(DataValueEstimator):
    """Influence functions on the teacher's classifier head (the paper's Eq. 5; exact on the head).

    ``score``: ``param_norm`` ‖H⁻¹g_i‖ (the default), ``self`` g_iᵀH⁻¹g_i or ``val`` −g_iᵀH⁻¹∇L_val; higher →
    teacher for all three. ``solver``: ``exact``, ``ekfac``, ``kfac``, ``cg``, or ``auto``, which weighs
    :func:`_influence.exact_flops` against ``exact_budget_gflop`` and the machine's memory. ``damping`` None
    means the teacher's weight decay. What each computes, the ``auto`` rule and the measurements behind it:
    docs/methods.md §6a.
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
        self.solver = choice("solver", solver, SOLVERS, name)
        self.score_name = choice("score", score, math_.SCORES, name)
        self.damping = None if damping is None else positive_float("damping", damping, name)
        self.exact_budget_gflop = positive_float("exact_budget_gflop", exact_budget_gflop, name)
        self.cg_tol = positive_float("cg_tol", cg_tol, name)
        self.cg_max_iter = positive_int("cg_max_iter", cg_max_iter, name)
        self.cg_preconditioner = choice("cg_preconditioner", cg_preconditioner, PRECONDITIONERS, name)
        self.chunk_size = positive_int("chunk_size", chunk_size, name)
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

    def _resolve_solver(self, data: math_.HeadData) -> tuple[str, float]:
        cost = math_.exact_flops(data.num_samples, data.num_params, self.score_name)
        if self.solver != "auto":
            return self.solver, cost
        memory = math_.physical_memory_bytes()
        fits = memory is None or math_.dense_hessian_bytes(data.num_params) <= memory // 2
        if fits and cost <= self.exact_budget_gflop * 1e9:
            return "exact", cost
        return ("cg" if self.score_name == "val" else "ekfac"), cost

    def score(self, inputs: ScoringInputs) -> Scores:
        train = split_checked(inputs.train, "influence train split")
        c, d = train.logits.shape[1], train.features.shape[1]
        if tuple(inputs.head_weight.shape) != (c, d):
            raise KdbenchError(
                f"influence: head weight is {tuple(inputs.head_weight.shape)} but the features/logits imply {(c, d)}"
            )
        damping, damping_source = self._damping(inputs)
        data = math_.head_data(train.features, train.logits, train.labels)
        val_gradient = None
        if self.score_name == "val":
            if inputs.val is None:
                raise KdbenchError(f"influence score 'val' {VAL_MISSING}")
            val = split_checked(inputs.val, "influence val split")
            val_gradient = math_.mean_gradient(math_.head_data(val.features, val.logits, val.labels))
        solver, cost = self._resolve_solver(data)
        info: dict[str, Any] = {
            "score": self.score_name,
            "solver": solver,
            "solver_requested": self.solver,
            "damping": damping,
            "damping_source": damping_source,
            "num_params": data.num_params,
            "exact_cost_gflop": math_.gflop(cost),
        }
        if self.solver == "auto":
            info["exact_budget_gflop"] = self.exact_budget_gflop
        values = self._solve(solver, data, damping, val_gradient, info)
        return Scores(values=values, info=info)

    def _solve(
        self,
        solver: str,
        data: math_.HeadData,
        damping: float,
        val_gradient: Tensor | None,
        info: dict[str, Any],
    ) -> Tensor:
        score = self.score_name
        if solver == "exact":
            memory = math_.physical_memory_bytes()
            need = math_.dense_hessian_bytes(data.num_params)
            if memory is not None and need > memory:
                raise KdbenchError(
                    f"influence solver 'exact' needs a dense {data.num_params}² Hessian ({need / 2**30:.1f} GiB) "
                    f"but this machine has {memory / 2**30:.1f} GiB; use solver 'ekfac' or 'cg'"
                )
            return math_.exact_influence(data, damping, score, val_gradient, self.chunk_size)
        if solver in ("ekfac", "kfac"):
            basis = math_.kronecker_eigenbasis(data, corrected=solver == "ekfac", chunk_size=self.chunk_size)
            return math_.eigenbasis_influence(basis, data, damping, score, val_gradient, self.chunk_size)
        if score != "val":
            warnings.warn(
                f"influence solver 'cg' with score {score!r} runs one CG solve per training sample "
                f"({data.num_samples} solves); prefer 'exact' or 'ekfac' for per-sample scores",
                stacklevel=3,
            )
        precond = None
        if self.cg_preconditioner == "ekfac":
            precond = math_.kronecker_eigenbasis(data, corrected=True, chunk_size=self.chunk_size)
        values, stats = math_.cg_influence(
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


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("influence", Influence, version="1")
