"""Influence functions through the whole teacher network, with the kronfluence library (Grosse et al. 2023;
George et al. 2018 for EK-FAC; docs/methods.md §6a).

kdbench's own ``influence`` estimator differentiates through the classifier head only, where the Hessian is
exact and cheap. This one hands the teacher network to kronfluence, which approximates the Gauss-Newton
matrix of every tracked ``nn.Linear`` and ``nn.Conv2d`` by Kronecker factors, layer by layer (block-diagonal
across layers). The two agree on the head when their conventions are matched (``fisher: expected``, the same
damping): tests/test_kronfluence.py checks it to float32 rounding.

kronfluence is optional (``pip install 'kdbench[kronfluence]'``): it is imported inside the functions
below, never when kdbench starts, and its absence is one line, raised as soon as the estimator is made.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset, TensorDataset

from kdbench.contracts import DataValueEstimator, Scores, ScoringInputs, TeacherNetwork, classifier_of, hookimpl
from kdbench.errors import KdbenchError

from ._checks import choice, network_checked, positive_float, positive_int

NAME = "kronfluence"
STRATEGIES: tuple[str, ...] = ("identity", "diagonal", "kfac", "ekfac")
MODULES: tuple[str, ...] = ("all", "head")
SCORES: tuple[str, ...] = ("self", "val")
FISHERS: tuple[str, ...] = ("sampled", "expected", "empirical")
MISSING_PACKAGE = "kronfluence: needs the kronfluence package: pip install 'kdbench[kronfluence]'"

# Precision: the factor sums, per-sample gradients and their rotations into the eigenbasis stay float32 (kronfluence's
# defaults); the eigendecomposition and the per-sample scores are float64. On resnet20 with 1,437 16-px images, float64
# everywhere moved the scores by at most 1.5e-6 relative (Spearman 1.0), and float64 sums and rotations alone took
# 1.65x as long (30 s against 18 s on 2 cores): the network's float32 forward and backward bound the precision anyway.
_STATISTICS_DTYPE = torch.float32
_EXACT_DTYPE = torch.float64
_FACTORS, _SCORES = "factors", "scores"


def require_kronfluence() -> ModuleType:
    """The kronfluence package, or the one line that says how to install it."""
    try:
        return importlib.import_module("kronfluence")
    except ImportError:
        raise KdbenchError(MISSING_PACKAGE) from None


class Kronfluence(DataValueEstimator):
    """Whole-network influence (kronfluence): EK-FAC, K-FAC, diagonal or identity preconditioning.

    ``score``: ``self`` = g_iᵀ(F̂ + λI)⁻¹g_i, the self-influence of training sample i (the default), or
    ``val`` = −g_iᵀ(F̂ + λI)⁻¹∇L_val with ∇L_val the gradient of the *mean* validation loss (Koh & Liang's
    I_up,loss; needs a validation split). g_i is the gradient of sample i's cross-entropy with respect to the
    tracked parameters (``modules``: ``all`` Linear and Conv2d layers, or the ``head`` only, bias included)
    and F̂ kronfluence's ``strategy`` approximation of the mean Fisher (= Gauss-Newton) matrix, one block per
    layer. Both are defined exactly like kdbench's ``influence`` (docs/methods.md §6a), so on the head and
    with ``fisher: expected`` the two coincide; kronfluence's pairwise score has no minus sign (it is
    ∇L_valᵀF̂⁻¹g_i) and is negated here to keep kdbench's sign.

    Direction, as for ``influence``: higher → teacher, and a wrong label is expected at the high end
    (``suspect_when = "high"``): a mislabelled sample has a large gradient in directions the rest of the data
    does not support, hence a large self-influence; a positive ``val`` score means that up-weighting the
    sample raises the validation loss.

    ``fisher``: which labels the factor fits (gradient covariance, EK-FAC's corrected eigenvalues) differentiate.
    ``sampled`` (kronfluence's default, the "true" Fisher): one label per sample drawn from the teacher's softmax
    with the sample's own seeded draw, so scores are reproducible and do not depend on the batch size.
    ``expected``: the expectation over all classes, exactly — every sample enters the fits once per class c, its
    loss weighted by √(C·p_c); this is the Gauss-Newton matrix (on the head: the Hessian) that kdbench's
    ``influence`` inverts, at C times the cost of the fits. ``empirical``: the given labels (the empirical
    Fisher). ``damping`` None: kronfluence's heuristic, 0.1 × the mean eigenvalue of each layer's factors, which
    is recomputed and recorded per layer. ``identity`` uses no damping at all (the score is
    then ‖g_i‖², or −g_iᵀ∇L_val). ``batch_size``: kronfluence's data loaders (memory: per-sample gradients of
    one layer at a time).
    """

    higher_to_teacher = True
    suspect_when = "high"
    needs_network = True

    def __init__(
        self,
        strategy: str = "ekfac",
        modules: str = "all",
        score: str = "self",
        damping: float | None = None,
        fisher: str = "sampled",
        batch_size: int = 64,
    ) -> None:
        self.strategy = choice("strategy", strategy, STRATEGIES, NAME)
        self.modules = choice("modules", modules, MODULES, NAME)
        self.score_name = choice("score", score, SCORES, NAME)
        self.damping = None if damping is None else positive_float("damping", damping, NAME)
        self.fisher = choice("fisher", fisher, FISHERS, NAME)
        self.batch_size = positive_int("batch_size", batch_size, NAME)
        # Only the `val` score reads the validation split; shadow the class default per instance.
        self.needs_validation = self.score_name == "val"
        require_kronfluence()  # a missing package fails here, before any teacher is trained or loaded

    def score(self, inputs: ScoringInputs) -> Scores:
        kf = require_kronfluence()
        network = network_checked(inputs, NAME, self.score_name == "val")
        # A private copy: prepare_model wraps its layers in place, and the same inputs may be scored again.
        model = copy.deepcopy(network.model).float().cpu().eval()
        tracked = tracked_modules(model, self.modules)
        values, damping = self._analyse(kf, model, tracked, inputs, network)
        info: dict[str, Any] = {
            "strategy": self.strategy,
            "modules": self.modules,
            "score": self.score_name,
            "fisher": self.fisher,
            "damping": damping.value,
            "damping_source": damping.source,
            "num_tracked_modules": len(tracked),
            "num_params": tracked_parameter_count(network.model, tracked),
            "batch_size": self.batch_size,
            "kronfluence_version": str(kf.__version__),
        }
        if damping.per_module is not None:
            info["damping_per_module"] = damping.per_module
        return Scores(values=values.to(inputs.train.labels.device), info=info)

    def _analyse(
        self, kf: ModuleType, model: nn.Module, tracked: list[str], inputs: ScoringInputs, network: TeacherNetwork
    ) -> tuple[Tensor, Damping]:
        """Fit the factors and score, with kronfluence's files in a temporary folder that is removed afterwards."""
        task = _make_task(kf, self.fisher, tracked)
        train = _dataset(network.train_images, network.train_labels, inputs.seed)
        factor_data = _factor_dataset(train, network.train_images, inputs.train.logits.shape[1], self.fisher)
        with tempfile.TemporaryDirectory(prefix="kdbench-kronfluence-") as output_dir, _quiet():
            model = kf.prepare_model(model, task)
            analyzer = kf.Analyzer(
                analysis_name=NAME,
                model=model,
                task=task,
                cpu=True,
                disable_tqdm=True,
                output_dir=output_dir,
                disable_model_save=True,
            )
            analyzer.fit_all_factors(
                factors_name=_FACTORS,
                dataset=factor_data,
                per_device_batch_size=self.batch_size,
                factor_args=self._factor_arguments(kf),
            )
            damping = resolved_damping(analyzer, self.strategy, self.damping)
            return self._scores(kf, analyzer, train, network), damping

    def _factor_arguments(self, kf: ModuleType) -> Any:
        """Every sample in the fits (kronfluence caps them at 100,000 by default); dtypes: see _STATISTICS_DTYPE."""
        return kf.FactorArguments(
            strategy=self.strategy,
            use_empirical_fisher=self.fisher == "empirical",
            covariance_max_examples=None,
            lambda_max_examples=None,
            activation_covariance_dtype=_STATISTICS_DTYPE,
            gradient_covariance_dtype=_STATISTICS_DTYPE,
            eigendecomposition_dtype=_EXACT_DTYPE,
            per_sample_gradient_dtype=_STATISTICS_DTYPE,
            lambda_dtype=_STATISTICS_DTYPE,
        )

    def _score_arguments(self, kf: ModuleType) -> Any:
        return kf.ScoreArguments(
            damping_factor=self.damping,
            aggregate_query_gradients=self.score_name == "val",
            per_sample_gradient_dtype=_STATISTICS_DTYPE,
            precondition_dtype=_STATISTICS_DTYPE,
            score_dtype=_EXACT_DTYPE,
        )

    def _scores(self, kf: ModuleType, analyzer: Any, train: Dataset[Any], network: TeacherNetwork) -> Tensor:
        """kronfluence's scores in kdbench's conventions: float64, sample order, `val` as −∇L_valᵀF̂⁻¹g_i."""
        score_args = self._score_arguments(kf)
        if self.score_name == "self":
            analyzer.compute_self_scores(
                scores_name=_SCORES,
                factors_name=_FACTORS,
                train_dataset=train,
                per_device_train_batch_size=self.batch_size,
                score_args=score_args,
            )
            return _all_modules(analyzer.load_self_scores(_SCORES)).to(torch.float64)
        assert network.val_images is not None and network.val_labels is not None  # network_checked
        val = _dataset(network.val_images, network.val_labels, seed=0)
        analyzer.compute_pairwise_scores(
            scores_name=_SCORES,
            factors_name=_FACTORS,
            query_dataset=val,
            train_dataset=train,
            per_device_query_batch_size=self.batch_size,
            per_device_train_batch_size=self.batch_size,
            score_args=score_args,
        )
        # The query gradients are summed over the validation split: divide for its mean loss, and negate.
        summed = _all_modules(analyzer.load_pairwise_scores(_SCORES)).to(torch.float64)
        return -summed[0] / int(network.val_labels.shape[0])


# ------------------------------------------------------------------------------------------ inputs


def tracked_modules(model: nn.Module, modules: str) -> list[str]:
    """Names of the layers whose parameters the gradients cover: every Linear and Conv2d, or the head only.

    Found before kronfluence wraps them (its wrappers are no longer ``nn.Linear``); these are the two layer
    types kronfluence supports, so ``all`` is exactly what it would track by default.
    """
    if modules == "head":
        head = classifier_of(model)
        return [name for name, module in model.named_modules() if module is head][:1]
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear | nn.Conv2d)]
    if not names:
        raise KdbenchError(f"{NAME}: {type(model).__name__} has no nn.Linear or nn.Conv2d layer to track")
    return names


def tracked_parameter_count(model: nn.Module, tracked: list[str]) -> int:
    """Parameters the gradients cover (weights and biases of the tracked layers), read off the unwrapped model."""
    named = dict(model.named_modules())
    return sum(p.numel() for name in tracked for p in named[name].parameters())


def _dataset(images: Tensor, labels: Tensor, seed: int) -> TensorDataset:
    """(image, label, draw): the draw is sample i's uniform number for the ``sampled`` Fisher, fixed by the seed
    and the sample's index, so the drawn labels do not depend on the batch size."""
    generator = torch.Generator().manual_seed(int(seed))
    draws = torch.rand(int(labels.shape[0]), generator=generator, dtype=torch.float64)
    return TensorDataset(images.float().cpu(), labels.long().cpu(), draws)


class _ClassReplicas(Dataset[tuple[Tensor, Tensor, Tensor]]):
    """Every training image once per class c, labelled c: the ``expected`` Fisher's factor-fitting set.

    kronfluence averages its factor statistics over the items it sees; with the loss of item (i, c) weighted
    by √(C·p_ic), that average over N·C items is (1/N) Σ_i Σ_c p_ic (…), the exact expectation over the model's
    own labels. Indexed rather than materialised: C copies of the images would not fit for C = 100.
    """

    def __init__(self, images: Tensor, num_classes: int) -> None:
        self.images = images
        self.num_classes = num_classes

    def __len__(self) -> int:
        return int(self.images.shape[0]) * self.num_classes

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        sample, label = divmod(int(index), self.num_classes)
        return self.images[sample], torch.tensor(label), torch.tensor(0.0, dtype=torch.float64)


def _factor_dataset(train: TensorDataset, images: Tensor, num_classes: int, fisher: str) -> Dataset[Any]:
    """What the factors are fitted on: the training set, or its class replicas for the ``expected`` Fisher."""
    return _ClassReplicas(images.float().cpu(), int(num_classes)) if fisher == "expected" else train


# ------------------------------------------------------------------------------------------ the task


def _sampled_labels(logits: Tensor, draws: Tensor) -> Tensor:
    """One label per sample from softmax(logits), by inverting the CDF at the sample's fixed uniform draw."""
    cdf = torch.softmax(logits.detach().double(), dim=1).cumsum(dim=1)
    drawn = torch.searchsorted(cdf, (draws.double() * cdf[:, -1]).unsqueeze(1)).squeeze(1)
    return drawn.clamp_max(logits.shape[1] - 1)


def _make_task(kf: ModuleType, fisher: str, tracked: list[str]) -> Any:
    """kronfluence's Task for a classifier: summed cross-entropy (per-sample gradients are those of each sample's
    own loss, as kdbench's g_i), the same loss as the validation measurement. Built here because its base class
    lives in the optional package."""
    cross_entropy = nn.functional.cross_entropy

    class ClassificationTask(kf.Task):  # type: ignore[name-defined]
        def compute_train_loss(self, batch: Any, model: nn.Module, sample: bool = False) -> Tensor:
            images, labels, draws = batch
            logits = model(images)
            if not sample:
                return cross_entropy(logits, labels, reduction="sum")
            if fisher == "expected":
                probs = torch.softmax(logits.detach(), dim=1).gather(1, labels[:, None]).squeeze(1)
                weights = (logits.shape[1] * probs).sqrt()
                return (weights * cross_entropy(logits, labels, reduction="none")).sum()
            return cross_entropy(logits, _sampled_labels(logits, draws), reduction="sum")

        def compute_measurement(self, batch: Any, model: nn.Module) -> Tensor:
            images, labels, _ = batch
            return cross_entropy(model(images), labels, reduction="sum")

        def get_influence_tracked_modules(self) -> list[str]:
            return list(tracked)

    return ClassificationTask()


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Damping:
    """The damping kronfluence used: one value, or (heuristic) one per module; None for ``identity``."""

    value: float | None
    source: str
    per_module: dict[str, float] | None = None


def resolved_damping(analyzer: Any, strategy: str, damping: float | None) -> Damping:
    """What kronfluence adds to the eigenvalues it inverts, recomputed from the fitted factors for the heuristic
    (kronfluence applies it internally and does not report it)."""
    if strategy == "identity":
        return Damping(None, "not used by strategy 'identity'")
    if damping is not None:
        return Damping(damping, "parameter")
    # ScoreArguments(damping_factor=None): per module, this scale (0.1) × the mean of the eigenvalues it inverts.
    scale = float(importlib.import_module("kronfluence.utils.constants").HEURISTIC_DAMPING_SCALE)
    per_module: dict[str, float] = {}
    if strategy == "kfac":
        eigen = analyzer.load_eigendecomposition(_FACTORS)
        for name, activation in eigen["activation_eigenvalues"].items():
            gradient = eigen["gradient_eigenvalues"][name]
            mean = activation.double().mean() * gradient.double().mean()  # mean of their Kronecker product
            per_module[name] = float(scale * mean)
    else:
        lambdas = analyzer.load_lambda_matrices(_FACTORS)
        for name, matrix in lambdas["lambda_matrix"].items():
            count = lambdas["num_lambda_processed"][name].double()
            per_module[name] = float(scale * (matrix.double() / count).mean())
    return Damping(None, "kronfluence_heuristic", per_module)


def _all_modules(scores: dict[str, Tensor] | None) -> Tensor:
    if scores is None or "all_modules" not in scores:
        raise KdbenchError(f"{NAME}: kronfluence wrote no scores")
    return scores["all_modules"]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """kronfluence logs every step at INFO and warns that it uses the deprecated ``torch.cuda.amp.GradScaler`` (at
    every pass, about its code, not the user's): keep its loggers at WARNING and that warning out while it runs,
    without touching the root logger (which kronfluence's own ``log_level`` would set)."""
    logger = logging.getLogger("kronfluence")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp\.GradScaler", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


@hookimpl
def kdbench_register_estimators(register: Callable[..., None]) -> None:
    register("kronfluence", Kronfluence, version="1")
