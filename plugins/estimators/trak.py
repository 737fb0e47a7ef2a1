"""TRAK (Park et al. 2023) on the whole teacher network, over its training checkpoints (docs/methods.md §6a).

The traker package does the work that defines TRAK: per-sample gradients of the margin, the random
projection, the kernel (ΦᵀΦ)⁻¹ and the out-to-loss weights Q. It is an optional dependency
(``pip install 'kdbench[trak]'``), imported only when the estimator is used: this module loads at every
start of kdbench, where a missing package must cost nothing.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, TeacherNetwork, hookimpl
from kdbench.errors import KdbenchError

from ._checks import choice, network_checked, positive_int

NAME = "trak"
SCORES: tuple[str, ...] = ("self", "val")
PROJECTORS: tuple[str, ...] = ("auto", "basic", "cuda")
MISSING_PACKAGE = "trak: needs the traker package: pip install 'kdbench[trak]'"
# A CPU projection matrix (parameters × proj_dim, float32) this small is generated once and kept; a larger one is
# generated in blocks of TRAK's default width, again for every batch. The block width seeds the blocks, so this
# rule is part of what the projection is: changing it changes the scores (bump the registered version).
SINGLE_BLOCK_BYTES = 1 << 30
TRAK_BLOCK_WIDTH = 100
# Rows of TRAK's stored features read at a time when the scores are formed from them.
ROWS_PER_READ = 8192

Checkpoint = tuple[int | None, nn.Module]  # (epoch, module); epoch None for the final teacher


def _traker_package() -> Any:
    """The ``trak`` module, or the one line that says how to install it."""
    try:
        import trak
    except ImportError:
        raise KdbenchError(MISSING_PACKAGE) from None
    return trak


class Trak(DataValueEstimator):
    """TRAK attributions of the teacher's training samples, averaged over its last training checkpoints.

    For checkpoint c, φ_i = Pᵀ∇_θ f(x_i, y_i)/√p_θ is the projected gradient of the margin
    f = log(p_y/(1 − p_y)), Φ stacks the training φ_i and Q_i = 1 − p_y. TRAK's attribution of training
    sample i to a target j is τ_ij = mean_c[φ_iᵀ(ΦᵀΦ)⁻¹φ_j / s_c] · mean_c Q_i, with s_c the mean |entry| of
    (ΦᵀΦ)⁻¹ (traker's rescaling). ``score``:

    - ``self`` (default): τ_ii, each sample's attribution to its own margin (≥ 0), the diagonal of the
      train×train matrix, read off TRAK's stored features and gradients without forming the matrix.
      Like influence's ``self`` and TracIn self-influence, a high value marks a sample the model fits by
      memorising it (atypical or mislabelled): higher → teacher, suspicious when high.
    - ``val``: −mean_j τ_ij over the validation samples j, signed like influence's ``val`` (positive = the
      sample lowers the validation margins, a harmful one), so one direction serves both scores: higher →
      teacher, suspicious when high.

    ``checkpoints``: the last k the teacher kept (None: all); a teacher that kept none is scored at its
    final weights alone, with a warning. ``projector``: ``basic`` (TRAK's CPU projector, Gaussian),
    ``cuda`` (fast_jl, Rademacher, on the GPU) or ``auto`` (cuda where CUDA and fast_jl are present).
    """

    higher_to_teacher = True
    suspect_when = "high"
    needs_checkpoints = True
    needs_network = True

    def __init__(
        self,
        proj_dim: int = 512,
        checkpoints: int | None = None,
        score: str = "self",
        batch_size: int = 64,
        projector: str = "auto",
    ) -> None:
        self.proj_dim = positive_int("proj_dim", proj_dim, NAME)
        self.checkpoints = None if checkpoints is None else positive_int("checkpoints", checkpoints, NAME)
        self.score_name = choice("score", score, SCORES, NAME)
        self.batch_size = positive_int("batch_size", batch_size, NAME)
        self.projector = choice("projector", projector, PROJECTORS, NAME)
        # Only the `val` score reads the validation split; shadow the class default per instance.
        self.needs_validation = self.score_name == "val"
        _traker_package()  # a missing package stops the plan, not the scoring after the teacher's passes

    def score(self, inputs: ScoringInputs) -> Scores:
        trak = _traker_package()
        net = network_checked(inputs, NAME, self.score_name == "val")
        chosen, source = chosen_checkpoints(net, self.checkpoints)
        kind = resolved_projector(self.projector)
        num_params = sum(p.numel() for p in net.model.parameters())
        self._check_sizes(num_params, net.train_images.shape[0])
        with tempfile.TemporaryDirectory(prefix="kdbench-trak-") as save_dir, quiet_traker(trak):
            traker = make_traker(
                trak,
                copy.deepcopy(net.model),
                net.train_images.shape[0],
                save_dir,
                kind,
                self.proj_dim,
                int(inputs.seed),
            )
            device = str(traker.device)
            # traker's chunked CUDA projector (networks over ~134M parameters) projects at most feat_bs rows a call
            batch_size = min(self.batch_size, getattr(traker.projector, "feat_bs", self.batch_size))
            featurize(traker, chosen, net.train_images, net.train_labels, batch_size, device)
            if self.score_name == "self":
                values = self_scores(traker, len(chosen))
            else:
                assert net.val_images is not None and net.val_labels is not None
                values = -mean_target_scores(traker, chosen, net.val_images, net.val_labels, batch_size, device)
            projector_used = projector_name(traker.projector)
        info: dict[str, Any] = {
            "score": self.score_name,
            "proj_dim": self.proj_dim,
            "projector": projector_used,
            "projector_requested": self.projector,
            "device": device,
            "num_checkpoints": len(chosen),
            "checkpoints_requested": self.checkpoints,
            "checkpoint_source": source,
            "epochs": [epoch for epoch, _ in chosen if epoch is not None],
            "num_params": int(num_params),
            "batch_size": batch_size,
            "seed": int(inputs.seed),
            "traker_version": str(trak.__version__),
        }
        return Scores(values=values, info=info)

    def _check_sizes(self, num_params: int, num_samples: int) -> None:
        """ΦᵀΦ (proj_dim²) has rank at most min(samples, parameters): below proj_dim it is singular."""
        if self.proj_dim > num_params:
            raise KdbenchError(f"trak: proj_dim {self.proj_dim} exceeds the network's {num_params} parameters")
        if self.proj_dim >= num_samples:
            raise KdbenchError(
                f"trak: proj_dim {self.proj_dim} must be below the {num_samples} training samples "
                "(the kernel ΦᵀΦ is singular otherwise); set a smaller proj_dim"
            )


def chosen_checkpoints(net: TeacherNetwork, wanted: int | None) -> tuple[list[Checkpoint], str]:
    """The last ``wanted`` checkpoints the teacher kept (all for None) and where they come from: ``saved``,
    or ``final_teacher`` when it kept none (a published checkpoint) and its final weights stand in."""
    saved: list[Checkpoint] = [(int(epoch), module) for epoch, _, module in net.checkpoints]
    if not saved:
        warnings.warn(
            "trak: the teacher kept no training checkpoints; scoring with its final weights as the only "
            "checkpoint (single-model TRAK)",
            stacklevel=3,
        )
        return [(None, net.model)], "final_teacher"
    if wanted is not None and wanted > len(saved):
        warnings.warn(
            f"trak: {wanted} checkpoints asked for but the teacher kept {len(saved)}; using all of them", stacklevel=3
        )
    k = len(saved) if wanted is None else min(wanted, len(saved))
    return saved[-k:], "saved"


def resolved_projector(requested: str) -> str:
    """``basic`` or ``cuda``: ``auto`` takes fast_jl's CUDA projector where it can run, else TRAK's CPU one."""
    cuda_ready = torch.cuda.is_available() and importlib.util.find_spec("fast_jl") is not None
    if requested == "cuda" and not cuda_ready:
        raise KdbenchError("trak: projector 'cuda' needs a CUDA device and the fast_jl package; use 'basic' or 'auto'")
    if requested == "auto":
        return "cuda" if cuda_ready else "basic"
    return requested


def single_block_width(num_params: int, proj_dim: int) -> int:
    """The BasicProjector's block width: all of proj_dim when the matrix fits SINGLE_BLOCK_BYTES (made once)."""
    return proj_dim if num_params * proj_dim * 4 <= SINGLE_BLOCK_BYTES else min(proj_dim, TRAK_BLOCK_WIDTH)


def make_traker(
    trak: Any, model: nn.Module, num_samples: int, save_dir: str, kind: str, proj_dim: int, seed: int
) -> Any:
    """A TRAKer on ``model`` (which it will load each checkpoint into), writing its memmaps under ``save_dir``.

    ``basic``: on the CPU, with a BasicProjector seeded from ``seed``. ``cuda``: on the GPU, where TRAKer
    picks fast_jl's projector itself (chunked for very large models). float32 throughout: TRAK's float16
    is a GPU memory saving that costs precision."""
    from trak.modelout_functions import ImageClassificationModelOutput
    from trak.projectors import BasicProjector, ProjectionType

    num_params = sum(p.numel() for p in model.parameters())
    projector = None
    device = "cuda" if kind == "cuda" else "cpu"
    if kind == "basic":
        projector = BasicProjector(
            grad_dim=num_params,
            proj_dim=proj_dim,
            seed=seed,
            proj_type=ProjectionType.normal,
            device="cpu",
            block_size=single_block_width(num_params, proj_dim),
            dtype=torch.float32,
        )
    return trak.TRAKer(
        model=model.to(device).eval(),
        task=ImageClassificationModelOutput(),
        train_set_size=num_samples,
        save_dir=save_dir,
        device=device,
        projector=projector,
        proj_dim=proj_dim,
        projector_seed=seed,
        use_half_precision=False,
        logging_level=logging.WARNING,
    )


def projector_name(projector: Any) -> str:
    return {"BasicProjector": "basic", "CudaProjector": "cuda", "ChunkedCudaProjector": "cuda_chunked"}.get(
        type(projector).__name__, type(projector).__name__
    )


@contextmanager
def quiet_traker(trak: Any) -> Iterator[None]:
    """No progress bars from traker (kdbench shows its own), and no logging handler left behind: TRAKer calls
    ``logging.basicConfig``, which would otherwise configure the root logger of the whole process."""
    module = trak.traker
    bar = module.tqdm
    handlers = list(logging.root.handlers)
    module.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        module.tqdm = bar
        for handler in logging.root.handlers[:]:
            if handler not in handlers:
                logging.root.removeHandler(handler)


def batches(images: Tensor, labels: Tensor, batch_size: int, device: str) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, images.shape[0], batch_size):
        yield images[start : start + batch_size].to(device), labels[start : start + batch_size].long().to(device)


def featurize(
    traker: Any, chosen: Sequence[Checkpoint], images: Tensor, labels: Tensor, batch_size: int, device: str
) -> None:
    """TRAK's features for every checkpoint (model id = its position in ``chosen``), then its kernel."""
    for model_id, (_, module) in enumerate(chosen):
        traker.load_checkpoint(module.state_dict(), model_id=model_id)
        for x, y in batches(images, labels, batch_size, device):
            traker.featurize(batch=(x, y), num_samples=x.shape[0])
    traker.finalize_features()


def _rows(array: Any, start: int) -> Tensor:
    return torch.from_numpy(np.array(array[start : start + ROWS_PER_READ], dtype=np.float64))


def self_scores(traker: Any, num_models: int) -> Tensor:
    """The diagonal of TRAK's train×train scores, mean_c(F_c[i]·G_c[i]) · mean_c Q_c[i], row block by row
    block: the targets are the training samples themselves, whose projected gradients G_c TRAK already
    stored while featurizing (its ``score`` would recompute the same ones), so no N×N matrix is formed."""
    n = traker.train_set_size
    dots = torch.zeros(n, dtype=torch.float64)
    weights = torch.zeros(n, dtype=torch.float64)
    for model_id in range(num_models):
        traker.saver.load_current_store(model_id)
        store = traker.saver.current_store
        for start in range(0, n, ROWS_PER_READ):
            end = min(start + ROWS_PER_READ, n)
            dots[start:end] += (_rows(store["features"], start) * _rows(store["grads"], start)).sum(dim=1)
            weights[start:end] += _rows(store["out_to_loss"], start)[:, 0]
    return (dots / num_models) * (weights / num_models)


def mean_target_scores(
    traker: Any, chosen: Sequence[Checkpoint], images: Tensor, labels: Tensor, batch_size: int, device: str
) -> Tensor:
    """mean_j of TRAK's scores τ_ij over the targets (``images``), without the train×targets matrix: the
    targets' projected gradients come from TRAK's ``score``, and only their mean meets the features."""
    n, num_models = traker.train_set_size, len(chosen)
    dots = torch.zeros(n, dtype=torch.float64)
    weights = torch.zeros(n, dtype=torch.float64)
    for model_id, (_, module) in enumerate(chosen):
        traker.start_scoring_checkpoint(
            exp_name="targets", checkpoint=module.state_dict(), model_id=model_id, num_targets=int(images.shape[0])
        )
        _restore_projection(traker.projector)
        for x, y in batches(images, labels, batch_size, device):
            traker.score(batch=(x, y), num_samples=x.shape[0])
        target_mean = torch.from_numpy(np.array(traker.saver.current_store["targets_grads"], dtype=np.float64))
        target_mean = target_mean.mean(dim=0)
        traker.saver.load_current_store(model_id)
        store = traker.saver.current_store
        for start in range(0, n, ROWS_PER_READ):
            end = min(start + ROWS_PER_READ, n)
            dots[start:end] += _rows(store["features"], start) @ target_mean
            weights[start:end] += _rows(store["out_to_loss"], start)[:, 0]
    return (dots / num_models) * (weights / num_models)


def _restore_projection(projector: Any) -> None:
    """Regenerate the matrix of a one-block BasicProjector that ``finalize_features`` freed: traker 0.3 only
    regenerates it when the model id changes, so scoring the last featurized checkpoint would find it gone."""
    if getattr(projector, "proj_matrix_available", True) is False and getattr(projector, "num_blocks", 0) == 1:
        projector.generate_sketch_matrix(projector.generator_states[0])


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register(NAME, Trak, version="1")
