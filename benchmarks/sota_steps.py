"""Step time of the field's strongest baselines relative to KD, on the paper's pair (resnet32x4 → resnet8x4).

    python benchmarks/sota_steps.py                  # CPU: batch 64, 3 timed steps per method, one torch thread
    python benchmarks/sota_steps.py --device cuda    # a GPU: 100 steps

Each figure is the second of two epochs through the engine's own loop (``kdbench.run.doctor.speed``: what
``kdbench doctor`` measures for CE and KD), so it holds the augmentation, the teacher's forward pass (twice for
MLKD's strong view), the student's forward and backward, the method's loss and its own modules' step.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from kdbench.registry import load_registry
from kdbench.run.doctor.speed import STANDARD_CPU, STANDARD_GPU, images_per_second

METHODS = [("kd", {}), ("kd+LS", {"logit_std": True}), ("dkd", {}), ("dist", {}), ("nkd", {}), ("mlkd", {}),
           ("reviewkd", {}), ("simkd", {}), ("ce", {})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = STANDARD_GPU if args.device.startswith("cuda") else STANDARD_CPU
    size = replace(size, steps=args.steps or size.steps)
    registry = load_registry()
    rates = {label: images_per_second(registry, label.split("+")[0], args.device, size, params)
             for label, params in METHODS}
    print(f"{size.teacher} → {size.student}, batch {size.batch_size}, {size.steps} steps, {args.device}, "
          f"{args.threads} thread(s)")
    print(f"{'method':<10} {'ms/step':>8} {'× KD':>6}")
    kd_ms = 1000 * size.batch_size / rates["kd"]
    for label, rate in rates.items():
        ms = 1000 * size.batch_size / rate
        print(f"{label:<10} {ms:8.1f} {ms / kd_ms:6.2f}")


if __name__ == "__main__":
    main()
