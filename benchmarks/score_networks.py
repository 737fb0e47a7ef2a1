"""Time every registered data-value estimator on a teacher network's real scoring inputs (CPU by default).

    python benchmarks/score_networks.py                                    # the digits teacher: resnet20, 16 px
    python benchmarks/score_networks.py --case cifar                       # resnet32x4 × 5,000 CIFAR-shaped images
    python benchmarks/score_networks.py --case cifar --num-train 500 --estimator kronfluence --modules all
    python benchmarks/score_networks.py --out timings.json                 # the figures as JSON too
    python benchmarks/score_networks.py --markdown docs/estimator_timings.md --append   # a table, case by case

Unlike ``test_estimator_scoring.py`` (synthetic heads, pytest-benchmark), the inputs here come from the path a
run takes (``kdbench.train.scoring.scoring_inputs``): a registered model, a registered dataset with a 10%
validation split, three teacher checkpoints (TracIn's, TRAK's), and the teacher as a network for the
estimators that differentiate through it (``kronfluence``, ``trak``). The two cases are the digits suites'
teacher (resnet20 on digits at 16 px: 1,293 training images, 10 classes) and a CIFAR-100-shaped one (resnet32x4
on the ``synthetic`` dataset at 32 px, 100 classes, ``--num-train`` training images). Kronfluence is timed
over the whole network (``modules: all``) and over kdbench's own unit, the head (``modules: head``).

The teacher keeps its initial weights: no estimator's cost depends on the values of the weights (the sizes
of its factors, projections and solves do not), and training resnet32x4 would take longer than scoring.
Each estimator runs once (seconds to an hour; a second round would only repeat it); the shared forward pass
that computes every estimator's inputs is timed on its own line. TRAK projects to ``min(512, N/2)``
dimensions: its kernel must be invertible.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from kdbench.registry import load_registry
from kdbench.train.scoring import scoring_inputs


@dataclass(frozen=True)
class Case:
    """A teacher and the dataset it is scored on."""

    model: str
    dataset: str
    params: dict[str, Any]
    num_classes: int


def case_of(name: str, num_train: int) -> Case:
    if name == "digits":
        return Case("resnet20", "digits", {"image_size": 16, "val_fraction": 0.1}, 10)
    # synthetic's num_train includes the validation split it holds out: 10% more, so ~num_train remain
    total = num_train + num_train // 9
    return Case("resnet32x4", "synthetic", {"num_train": total, "num_test": 100, "num_classes": 100,
                                             "image_size": 32, "val_fraction": 0.1}, 100)


@dataclass(frozen=True)
class Timing:
    case: str
    model: str
    estimator: str
    params: dict[str, Any]
    num_train: int
    seconds: float
    peak_rss_gb: float


def variants(names: list[str], num_train: int, modules: str = "both") -> list[tuple[str, dict[str, Any]]]:
    """Each estimator at its defaults; kronfluence over the whole network and (or) over the head; TRAK's
    projection smaller than the training set."""
    out: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        if name == "kronfluence":
            out += [(name, {"modules": m}) for m in ("all", "head") if modules in (m, "both")]
        elif name == "trak":
            out.append((name, {"proj_dim": min(512, num_train // 2)}))
        else:
            out.append((name, {}))
    return out


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=("digits", "cifar"), default="digits")
    parser.add_argument("--num-train", type=int, default=5000, help="cifar case: training images (default 5,000)")
    parser.add_argument("--estimator", action="append", default=None,
                        help="time only these (repeatable; default: every registered estimator)")
    parser.add_argument("--modules", choices=("all", "head", "both"), default="both",
                        help="kronfluence over the whole network, the head, or both (default)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="also write the timings to this JSON file")
    parser.add_argument("--markdown", default=None, help="also write them as a Markdown table to this file")
    parser.add_argument("--append", action="store_true", help="append to --markdown instead of replacing it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    registry = load_registry()
    case = case_of(args.case, args.num_train)
    data = registry.get("dataset", case.dataset).create(case.params, root=None, download=False)
    create_model = registry.get("model", case.model).create

    def teacher_at(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return create_model(num_classes=case.num_classes).eval()

    teacher = teacher_at(0)
    checkpoints = [(epoch, lr, teacher_at(epoch)) for epoch, lr in ((5, 0.05), (10, 0.005), (15, 0.0005))]
    start = time.perf_counter()
    inputs = scoring_inputs(teacher, data, weight_decay=5e-4, checkpoints=checkpoints, network=True, loader_workers=0)
    forward = time.perf_counter() - start
    n = inputs.train.num_samples
    print(f"{args.case}: {case.model}, {n} training images, {case.num_classes} classes; "
          f"teacher and checkpoint outputs in {forward:.1f} s")
    names = args.estimator or registry.names("estimator")
    timings = []
    for name, params in variants(names, n, args.modules):
        estimator = registry.get("estimator", name).create(params)
        start = time.perf_counter()
        scores = estimator.score(inputs)
        seconds = time.perf_counter() - start
        assert scores.values.shape == (n,)
        timing = Timing(args.case, case.model, name, params, n, seconds, peak_rss_gb())
        timings.append(timing)
        shown = ", ".join(f"{k}={v}" for k, v in params.items())
        print(f"  {name}{f' ({shown})' if shown else ''}: {seconds:.2f} s "
              f"({1000 * seconds / n:.2f} ms per sample; peak RSS so far {timing.peak_rss_gb:.1f} GB)", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"forward_s": forward, "timings": [asdict(t) for t in timings]}, f, indent=1)
    if args.markdown:
        with open(args.markdown, "a" if args.append else "w") as f:
            f.write(markdown(timings, forward, args.threads))


def markdown(timings: list[Timing], forward: float, threads: int) -> str:
    """One table per case: estimator, parameters, seconds, ms per sample, the process's peak RSS so far."""
    first = timings[0]
    lines = [f"\n### {first.case}: {first.model}, {first.num_train} training images, {threads} threads\n",
             f"Shared forward pass (teacher and 3 checkpoints): {forward:.1f} s.\n",
             "| estimator | parameters | seconds | ms per sample | peak RSS so far (GB) |",
             "|---|---|---:|---:|---:|"]
    for t in timings:
        shown = ", ".join(f"{k}={v}" for k, v in t.params.items()) or "defaults"
        lines.append(f"| {t.estimator} | {shown} | {t.seconds:.2f} | {1000 * t.seconds / t.num_train:.2f} | "
                     f"{t.peak_rss_gb:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
