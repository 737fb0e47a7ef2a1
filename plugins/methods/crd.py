"""CRD: contrastive representation distillation (Tian, Krishnan, Isola, "Contrastive Representation
Distillation", ICLR 2020, arXiv 1910.10699).

Why: KL or L2 matching treats the dimensions of a representation as independent. CRD's contrastive objective,
a lower bound on the mutual information between teacher and student representations, makes the student keep
the teacher's *structure*: its embedding of a sample must be close to the teacher's embedding of that sample
and far from the teacher's embeddings of other classes' samples. Memory banks supply the many negatives that
would otherwise need a huge batch. What is computed, the defaults and how negatives are drawn: docs/methods.md §4.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kdbench.contracts import (
    DistillationMethod,
    LossTerms,
    MethodContext,
    StepInputs,
    cross_entropy_per_sample,
    hookimpl,
    upcast,
)
from kdbench.errors import KdbenchError

NCE_EPS = 1e-7

# How negatives are drawn (see CRD.sample_negatives and docs/methods.md §4). Module constants so that tests
# can force either strategy.
DENSE_MAX_KEYS = 2**25  # most random keys (rows × largest other-class count) held at once by the dense strategy
SPARSE_MAX_FRACTION = 0.125  # the sparse strategy only when K ≤ this fraction of every anchor's candidates
KEY_RANGE = 2**62  # dense keys are uniform integers in [0, KEY_RANGE); KEY_RANGE itself marks "not a candidate"


def negative_strategy(batch: int, max_other: int, min_other: int, k: int) -> tuple[str, int]:
    """How to draw K distinct negatives for ``batch`` anchors: ``("dense", rows per block)`` or ``("sparse", 0)``.

    ``max_other`` and ``min_other`` are the largest and smallest number of other-class candidates of any
    class. Dense (random keys, K smallest) costs ``batch × max_other`` keys but no host synchronisation; it
    runs in one block when that is at most ``DENSE_MAX_KEYS``. Above, the sparse strategy (i.i.d. draws,
    duplicates redrawn; one host check per round) is used when collisions are rare, ``k ≤ SPARSE_MAX_FRACTION
    · min_other``; otherwise dense in blocks of rows that each stay within ``DENSE_MAX_KEYS``.
    """
    if batch * max_other <= DENSE_MAX_KEYS:
        return "dense", max(1, batch)
    if k <= SPARSE_MAX_FRACTION * min_other:
        return "sparse", 0
    return "dense", max(1, DENSE_MAX_KEYS // max_other)


def uniform_below(bound: Tensor, generator: torch.Generator) -> Tensor:
    """One uniform integer in ``[0, bound)`` per element of ``bound`` (int64, any positive values)."""
    u = torch.rand(bound.shape, generator=generator, device=bound.device, dtype=torch.float64)
    return torch.minimum((u * bound).long(), bound - 1)


def nce_loss(probs: Tensor, num_data: int) -> Tensor:
    """NCE loss of CRD (Eq. 18 of the paper): column 0 of ``probs`` [B, K+1] is the positive, the rest noise.

    ``probs`` are the unnormalised model probabilities ``exp(score/τ)/Z``; the noise distribution is
    uniform over the N training samples, and K noise samples are drawn per positive.
    """
    batch, m = probs.shape[0], probs.shape[1] - 1
    m_pn = m / float(num_data)
    pos = probs[:, 0]
    neg = probs[:, 1:]
    log_d1 = torch.log(pos / (pos + m_pn + NCE_EPS))
    log_d0 = torch.log(m_pn / (neg + m_pn + NCE_EPS))
    return -(log_d1.sum() + log_d0.sum()) / batch


class CRD(DistillationMethod):
    """CRD (Tian et al., ICLR 2020): NCE between student and teacher embeddings with memory-bank negatives.

    Total loss ``γ·CE + β·(L_NCE(student anchor, teacher bank) + L_NCE(teacher anchor, student bank))``.
    """

    needs_features = True
    needs_indices = True

    # Buffers registered in setup (declared for the type checker: nn.Module's __getattr__ is typed Tensor | Module).
    class_of: Tensor
    by_class: Tensor
    class_count: Tensor
    class_start: Tensor
    memory_s: Tensor
    memory_t: Tensor
    nce_z_s: Tensor
    nce_z_t: Tensor

    def __init__(
        self,
        beta: float = 0.8,
        gamma: float = 1.0,
        feat_dim: int = 128,
        num_negatives: int = 16384,
        nce_t: float = 0.07,
        momentum: float = 0.5,
    ) -> None:
        super().__init__()
        if int(feat_dim) < 1 or int(num_negatives) < 1:
            raise KdbenchError(f"crd: feat_dim and num_negatives must be positive, got {feat_dim}, {num_negatives}")
        if not 0.0 <= float(momentum) <= 1.0:
            raise KdbenchError(f"crd: momentum must lie in [0, 1], got {momentum}")
        if float(nce_t) <= 0.0:
            raise KdbenchError(f"crd: nce_t must be positive, got {nce_t}")
        self.beta, self.gamma = float(beta), float(gamma)
        self.feat_dim, self.num_negatives = int(feat_dim), int(num_negatives)
        self.nce_t, self.momentum = float(nce_t), float(momentum)
        self.num_data = 0
        self.effective_negatives = 0  # num_negatives capped at what every class can offer; set in setup
        self._min_other = self._max_other = 0  # fewest and most other-class candidates of any class; set in setup
        self._equal_classes = True
        self._seed = 0
        self._generator: torch.Generator | None = None
        self._pending_rng: tuple[str, Tensor] | None = None
        self.embed_s: nn.Module = nn.Identity()
        self.embed_t: nn.Module = nn.Identity()

    # -- setup -----------------------------------------------------------------------------------------

    def setup(self, ctx: MethodContext) -> None:
        if not ctx.student_feature_shapes or not ctx.teacher_feature_shapes:
            raise KdbenchError("crd needs the pooled features of student and teacher (feats[-1])")
        if ctx.train_labels is None:
            raise KdbenchError("crd needs the training labels (MethodContext.train_labels) to draw negatives")
        labels = torch.as_tensor(ctx.train_labels).detach().to("cpu", torch.long).reshape(-1)
        num_data = int(ctx.num_train)
        if labels.numel() != num_data:
            raise KdbenchError(f"crd: {labels.numel()} training labels for num_train={num_data}")
        d_s = math.prod(ctx.student_feature_shapes[-1])
        d_t = math.prod(ctx.teacher_feature_shapes[-1])
        self.embed_s = nn.Linear(d_s, self.feat_dim)
        self.embed_t = nn.Linear(d_t, self.feat_dim)

        # Per-class index table for exact, vectorised other-class sampling.
        num_classes = max(int(ctx.num_classes), int(labels.max()) + 1 if num_data else 0)
        counts = torch.bincount(labels, minlength=num_classes)
        present = counts[counts > 0]
        available = int((num_data - present).min()) if present.numel() else 0
        if available < 1:
            raise KdbenchError("crd needs training samples of at least two classes to draw negatives")
        self.num_data = num_data
        self.effective_negatives = min(self.num_negatives, available)
        self._min_other, self._max_other = available, int((num_data - present).max())
        self._equal_classes = self._min_other == self._max_other  # then no anchor's keys need masking
        self.register_buffer("class_of", labels, persistent=False)
        self.register_buffer("by_class", torch.argsort(labels, stable=True), persistent=False)
        self.register_buffer("class_count", counts, persistent=False)
        self.register_buffer("class_start", torch.cumsum(counts, 0) - counts, persistent=False)

        # The method's own random stream, seeded from the (per-run seeded) global RNG.
        self._seed = int(torch.randint(0, 2**62, (1,)).item())
        self._generator = torch.Generator().manual_seed(self._seed)
        stdv = 1.0 / math.sqrt(self.feat_dim / 3.0)
        for name in ("memory_s", "memory_t"):
            bank = torch.rand(num_data, self.feat_dim, generator=self._generator) * (2 * stdv) - stdv
            self.register_buffer(name, bank)
        # NCE's normaliser Z, one per direction (student anchor, teacher anchor); ≤ 0 until the first batch fixes it.
        self.register_buffer("nce_z_s", torch.tensor(-1.0))
        self.register_buffer("nce_z_t", torch.tensor(-1.0))

    # -- randomness ------------------------------------------------------------------------------------

    def _generator_on(self, device: torch.device) -> torch.Generator:
        """The method's generator on ``device`` (made there from the seed on first use, e.g. after ``.to``)."""
        gen = self._generator
        if gen is None or gen.device.type != device.type or (
            device.index is not None and gen.device.index != device.index
        ):
            gen = torch.Generator(device=device)
            gen.manual_seed(self._seed)
            self._generator = gen
        if self._pending_rng is not None:
            device_type, state = self._pending_rng
            if device_type == gen.device.type:
                gen.set_state(state)
            self._pending_rng = None
        return gen

    def get_extra_state(self) -> dict[str, Any]:
        gen = self._generator
        return {
            "seed": self._seed,
            "rng_device": gen.device.type if gen is not None else None,
            "rng_state": gen.get_state() if gen is not None else None,
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self._seed = int(state.get("seed", self._seed))
        self._generator = None
        if state.get("rng_state") is not None:
            self._pending_rng = (str(state["rng_device"]), state["rng_state"])

    def sample_negatives(self, indices: Tensor) -> Tensor:
        """K distinct dataset indices per anchor, a uniform K-subset of the other-class samples: [B, K].

        Without replacement, as the reference, and independently per anchor. An anchor of class c has
        ``M_c = N − n_c`` candidates, the sorted positions outside c's block of ``by_class``; a candidate
        rank ``r`` in ``[0, M_c)`` is position ``r + n_c·[r ≥ start_c]``. The ranks come from
        :func:`negative_strategy`'s choice: dense draws a uniform random key per rank (ranks ≥ M_c get a key
        above all others) and keeps the K smallest keys, which is an exactly uniform K-subset (up to ties of
        62-bit keys) without any host synchronisation; sparse draws K i.i.d. ranks and redraws repeats until
        none is left, i.e. keeps the first K distinct values of an i.i.d. stream, again a uniform K-subset.
        The order of the negatives within a row is not random; the loss does not depend on it.
        """
        device = self.class_of.device
        cls = self.class_of[indices]
        count = self.class_count[cls].unsqueeze(1)
        start = self.class_start[cls].unsqueeze(1)
        other = self.num_data - count  # M_c: how many samples of other classes, per anchor [B, 1]
        gen = self._generator_on(device)
        batch, k = int(indices.shape[0]), self.effective_negatives
        strategy, rows = negative_strategy(batch, self._max_other, self._min_other, k)
        if batch == 0:
            rank = torch.zeros(0, k, dtype=torch.long, device=device)
        elif strategy == "sparse":
            rank = self._ranks_sparse(other, gen)
        else:
            rank = torch.cat([self._ranks_dense(other[i : i + rows], gen) for i in range(0, batch, rows)])
        position = rank + count * (rank >= start)  # skip the anchor's own class block
        return self.by_class[position]

    def _ranks_dense(self, other: Tensor, gen: torch.Generator) -> Tensor:
        """Random keys over ``[0, M_max)`` per row, ranks ≥ the row's M_c excluded, the K smallest kept."""
        keys = torch.randint(0, KEY_RANGE, (other.shape[0], self._max_other), generator=gen, device=other.device)
        if not self._equal_classes:
            keys.masked_fill_(torch.arange(self._max_other, device=other.device) >= other, KEY_RANGE)
        return keys.topk(self.effective_negatives, dim=1, largest=False, sorted=False).indices

    def _ranks_sparse(self, other: Tensor, gen: torch.Generator) -> Tensor:
        """K i.i.d. ranks per row, every repeat of an earlier value redrawn until a row holds K distinct ones.

        One host check per round; meant for K small against M_c, where a round or two suffice.
        """
        rank = uniform_below(other.expand(-1, self.effective_negatives), gen)
        while True:
            ordered, order = rank.sort(dim=1, stable=True)  # stable: which copy is "the repeat" is fixed
            repeat = torch.zeros_like(rank, dtype=torch.bool)
            repeat.scatter_(1, order[:, 1:], ordered[:, 1:] == ordered[:, :-1])
            if not bool(repeat.any()):
                return rank
            rank[repeat] = uniform_below(other.expand_as(rank)[repeat], gen)

    # -- loss ------------------------------------------------------------------------------------------

    @staticmethod
    def _scores(anchor: Tensor, bank: Tensor, contrast: Tensor) -> Tensor:
        """``bank[contrast] · anchor`` per row: [B, K+1]. Dense ``anchor @ bankᵀ`` when the bank is not much
        larger than the number of contrast rows (no [B, K+1, D] gather then); same numbers either way."""
        if bank.shape[0] <= 4 * contrast.shape[1]:
            return torch.gather(anchor @ bank.t(), 1, contrast)
        return torch.bmm(bank[contrast], anchor.unsqueeze(2)).squeeze(2)

    def _embed(self, embed: nn.Module, feat: Tensor) -> Tensor:
        weight = cast(Tensor, embed.weight)  # nn.Module attributes are typed Tensor | Module; a Linear's is a Tensor
        return F.normalize(embed(upcast(feat).reshape(feat.shape[0], -1).to(weight.dtype)), p=2.0, dim=1)

    def contrastive_loss(self, student_pooled: Tensor, teacher_pooled: Tensor, indices: Tensor) -> Tensor:
        """Unweighted CRD term: NCE(student anchor vs teacher bank) + NCE(teacher anchor vs student bank).

        Fixes Z on the first call and, in training mode, updates both memory banks afterwards.
        """
        device_type = student_pooled.device.type
        with torch.autocast(device_type=device_type, enabled=False):
            v_s = self._embed(self.embed_s, student_pooled)
            v_t = self._embed(self.embed_t, teacher_pooled)
            idx = indices.to(device=self.memory_s.device, dtype=torch.long)
            contrast = torch.cat([idx.unsqueeze(1), self.sample_negatives(idx)], dim=1)
            out_s = torch.exp(self._scores(v_s, self.memory_t.to(v_s.dtype), contrast) / self.nce_t)
            out_t = torch.exp(self._scores(v_t, self.memory_s.to(v_t.dtype), contrast) / self.nce_t)
            with torch.no_grad():  # Z = mean(exp(s/τ))·N from the first batch, then fixed (no host sync)
                for z, out in ((self.nce_z_s, out_s), (self.nce_z_t, out_t)):
                    z.copy_(torch.where(z > 0, z, (out.mean() * self.num_data).to(z.dtype)))
            loss = nce_loss(out_s / self.nce_z_s.to(out_s.dtype), self.num_data) + nce_loss(
                out_t / self.nce_z_t.to(out_t.dtype), self.num_data
            )
            if self.training:
                self.update_memory(idx, v_s.detach(), v_t.detach())
        return loss

    @torch.no_grad()
    def update_memory(self, indices: Tensor, v_s: Tensor, v_t: Tensor) -> None:
        """``bank[idx] ← normalize(momentum · bank[idx] + (1 − momentum) · v)`` for both banks.

        Out of place (the buffer is replaced by an updated copy): the dense score path keeps the old bank
        for the backward pass, which an in-place write would invalidate.
        """
        for name, v in (("memory_s", v_s), ("memory_t", v_t)):
            bank: Tensor = getattr(self, name)
            mixed = bank.index_select(0, indices) * self.momentum + v.to(bank.dtype) * (1.0 - self.momentum)
            setattr(self, name, bank.index_copy(0, indices, F.normalize(mixed, p=2.0, dim=1)))

    def loss_terms(self, step: StepInputs) -> LossTerms:
        assert step.student_feats is not None and step.teacher_feats is not None, "crd needs features"
        assert step.indices is not None, "crd needs indices"
        if self.num_data == 0:
            raise KdbenchError("crd.setup() must run before the first step")
        loss = self.contrastive_loss(step.student_feats[-1], step.teacher_feats[-1], step.indices)
        return LossTerms(
            sample={"ce": self.gamma * cross_entropy_per_sample(step.student_logits, step.targets)},
            batch={"crd": self.beta * loss},
        )

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, gamma={self.gamma}, feat_dim={self.feat_dim}, num_negatives={self.num_negatives} "
            f"(effective {self.effective_negatives}), nce_t={self.nce_t}, momentum={self.momentum}, "
            f"num_data={self.num_data}"
        )


@hookimpl
def kdbench_register_methods(register: Callable[..., Any]) -> None:
    register("crd", CRD, version="2")  # 2: negatives without replacement (issue 19)
