"""Time the `influence` estimator's solvers on a CIFAR-100-sized teacher head (synthetic, CPU).

    python benchmarks/score_influence.py                          # 50,000 × 100 classes × d=256: ekfac + exact
    python benchmarks/score_influence.py --skip-exact             # EK-FAC and CG only (seconds)
    python benchmarks/score_influence.py --num-train 5000 --threads 2

The problem mimics resnet32x4's head: ReLU'd class-structured Gaussian features (d = 256), logits
from a least-squares linear head scaled so the teacher is confident but not saturated, labels with
a little noise. The exact solver builds the dense 25,700² Hessian (5.3 GB) and is O(N·P²); it runs
once for both `self` and `param_norm` (one factorisation) unless --exact-score picks one.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from scipy.stats import spearmanr

from kdbench.contracts import ScoringInputs, SplitOutputs
from kdbench_plugins.estimators import _influence as influence
from kdbench_plugins.estimators.influence import Influence


def synthetic_head(num_train: int, num_val: int, num_classes: int, dim: int, seed: int) -> ScoringInputs:
    """ScoringInputs for a realistic synthetic head (see the module docstring)."""
    g = torch.Generator().manual_seed(seed)
    n = num_train + num_val
    means = torch.randn(num_classes, dim, generator=g, dtype=torch.float64) * 0.6
    labels = torch.randint(0, num_classes, (n,), generator=g)
    feats = torch.relu(means[labels] + torch.randn(n, dim, generator=g, dtype=torch.float64))
    noisy = torch.rand(n, generator=g) < 0.05
    labels = torch.where(noisy, torch.randint(0, num_classes, (n,), generator=g), labels)
    ht = torch.cat([feats, torch.ones(n, 1, dtype=torch.float64)], dim=1)
    targets = torch.nn.functional.one_hot(labels, num_classes).to(torch.float64)
    theta = torch.linalg.lstsq(ht[:num_train], targets[:num_train]).solution  # D×C
    logits = 24.0 * (ht @ theta)
    weight, bias = 24.0 * theta[:-1].T.contiguous(), 24.0 * theta[-1].contiguous()

    def split(sl: slice) -> SplitOutputs:
        return SplitOutputs(features=feats[sl], logits=logits[sl], labels=labels[sl])

    return ScoringInputs(
        train=split(slice(0, num_train)),
        head_weight=weight,
        head_bias=bias,
        weight_decay=5e-4,
        val=split(slice(num_train, n)),
    )


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-train", type=int, default=50_000)
    parser.add_argument("--num-val", type=int, default=5_000)
    parser.add_argument("--num-classes", type=int, default=100)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-exact", action="store_true")
    parser.add_argument("--exact-score", choices=("both", "self", "param_norm"), default="both")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    inputs = synthetic_head(args.num_train, args.num_val, args.num_classes, args.dim, seed=0)
    probs = torch.softmax(inputs.train.logits, dim=1)
    acc = float((probs.argmax(1) == inputs.train.labels).double().mean())
    print(
        f"problem: N={args.num_train} C={args.num_classes} d={args.dim} P={args.num_classes * (args.dim + 1)} "
        f"train acc={acc:.3f} mean max p={float(probs.amax(1).mean()):.3f}",
        flush=True,
    )

    results: dict[str, object] = {}
    scores: dict[str, torch.Tensor] = {}
    for score in ("self", "param_norm", "val"):
        out, secs = timed(lambda s=score: Influence(solver="ekfac", score=s).score(inputs))
        scores[f"ekfac/{score}"] = out.values
        results[f"ekfac/{score}_s"] = round(secs, 3)
        print(f"ekfac {score}: {secs:.2f} s", flush=True)
    out, secs = timed(lambda: Influence(solver="cg", score="val").score(inputs))
    scores["cg/val"] = out.values
    results["cg/val_s"] = round(secs, 3)
    results["cg/val_iterations"] = out.info["cg_iterations"]
    print(f"cg val: {secs:.2f} s, {out.info['cg_iterations']} iterations", flush=True)
    rho = spearmanr(scores["ekfac/val"].numpy(), scores["cg/val"].numpy()).statistic
    results["spearman_ekfac_vs_cg_val"] = round(float(rho), 5)
    print(f"Spearman ekfac vs cg (val, exact to cg_tol): {rho:.5f}", flush=True)

    auto = Influence().score(inputs).info
    results["auto_choice_param_norm"] = auto["solver"]
    results["exact_cost_gflop_param_norm"] = auto["exact_cost_gflop"]
    print(f"auto (param_norm) chose {auto['solver']}; exact estimated {auto['exact_cost_gflop']} GFLOP", flush=True)

    if not args.skip_exact:
        exact = _time_exact(inputs, args.exact_score)
        results.update({k: v for k, v in exact.items() if not k.startswith("values/")})
        for score in ("self", "param_norm"):
            if f"values/{score}" in exact:
                rho = spearmanr(scores[f"ekfac/{score}"].numpy(), exact[f"values/{score}"].numpy()).statistic
                results[f"spearman_ekfac_vs_exact_{score}"] = round(float(rho), 5)
                print(f"Spearman ekfac vs exact ({score}): {rho:.5f}", flush=True)
    print(json.dumps(results, indent=2))


def _time_exact(inputs: ScoringInputs, which: str) -> dict:
    """Exact solver phase by phase (build H, Cholesky, triangular solves), sharing one factorisation."""
    data = influence.head_data(inputs.train.features, inputs.train.logits, inputs.train.labels)
    lam = inputs.weight_decay
    out: dict = {}
    h, out["exact/build_hessian_s"] = timed(lambda: influence.exact_hessian(data, lam))
    print(f"exact: built H in {out['exact/build_hessian_s']:.1f} s", flush=True)
    low, out["exact/cholesky_s"] = timed(lambda: influence.cholesky_lower_inplace(h, lam))
    print(f"exact: Cholesky in {out['exact/cholesky_s']:.1f} s", flush=True)
    rows = influence._rows(data.num_samples, data.num_params, 1024)
    self_vals = torch.empty(data.num_samples, dtype=torch.float64)
    norm_vals = torch.empty(data.num_samples, dtype=torch.float64)
    t_lower = t_upper = 0.0
    for start in range(0, data.num_samples, rows):
        stop = min(start + rows, data.num_samples)
        g = influence.per_sample_gradients(data, start, stop).reshape(stop - start, -1).T
        y, dt = timed(lambda g=g: torch.linalg.solve_triangular(low, g, upper=False))
        t_lower += dt
        self_vals[start:stop] = (y * y).sum(0)
        if which != "self":
            x, dt = timed(lambda y=y: torch.linalg.solve_triangular(low.mT, y, upper=True))
            t_upper += dt
            norm_vals[start:stop] = torch.linalg.vector_norm(x, dim=0)
        print(f"exact: solved {stop}/{data.num_samples} ({t_lower + t_upper:.0f} s so far)", flush=True)
    base = out["exact/build_hessian_s"] + out["exact/cholesky_s"]
    out["exact/self_total_s"] = round(base + t_lower, 1)
    if which != "self":
        out["exact/param_norm_total_s"] = round(base + t_lower + t_upper, 1)
        out["values/param_norm"] = norm_vals
    out["values/self"] = self_vals
    return out


if __name__ == "__main__":
    main()
