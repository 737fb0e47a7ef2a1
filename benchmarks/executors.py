"""Wall time of one 12-run suite through each executor (speed lives here, never in the timed tests).

    python benchmarks/executors.py                 # CPU: serial vs pool (2 workers × 1 thread)
    python benchmarks/executors.py --gpu           # also runs_per_device 1, 2, 4, 8 on one GPU (resnet8x4 KD)

The teacher is trained once beforehand (in a shared $KDBENCH_HOME) so that only the 12 student runs are
timed; every executor starts from an empty run store. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from kdbench.cli import main

CPU_SUITE = {
    "name": "bench", "dataset": {"name": "synthetic", "params": {"num_train": 2048, "num_test": 256,
                                                                 "num_classes": 10, "image_size": 32}},
    "recipe": {"epochs": 3, "batch_size": 64, "milestones": [2]}, "teacher_recipe": {"epochs": 1},
    "seeds": [0, 1, 2, 3, 4, 5], "pairs": [{"teacher": "resnet20", "student": "resnet8"}], "methods": ["ce", "kd"],
}
GPU_SUITE = {
    "name": "bench", "dataset": {"name": "synthetic", "params": {"num_train": 20000, "num_test": 2000,
                                                                 "num_classes": 100, "image_size": 32}},
    "recipe": {"epochs": 2, "batch_size": 64, "milestones": [1]}, "teacher_recipe": {"epochs": 1},
    "seeds": list(range(8)), "pairs": [{"teacher": "resnet32x4", "student": "resnet8x4"}], "methods": ["kd"],
}


def timed(suite: Path, runs: Path, *args: str) -> float:
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", str(suite), "--quiet", "--runs", str(runs), "--results", str(runs / "none"), *args])
    assert code == 0, code
    return time.perf_counter() - start


def trained_images(runs: Path) -> float:
    """Images every run trained on (throughput × training time, summed over runs and epochs)."""
    records = [json.loads(p.read_text()) for p in (runs / "raw" / "bench").glob("*/record.json")]
    return sum(m["train_images_per_s"] * m["epoch_time_s"] for r in records for m in r["metrics"])


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="measure runs_per_device on one GPU too")
    args = parser.parse_args()
    out: dict[str, object] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["KDBENCH_HOME"] = str(tmp / "home")
        suite = tmp / "cpu.yaml"
        suite.write_text(yaml.safe_dump(CPU_SUITE))
        main(["teacher", "train", str(suite), "--quiet", "--device", "cpu"])  # the teacher, once
        out["cpu_serial_s"] = round(timed(suite, tmp / "serial", "--device", "cpu"), 1)
        out["cpu_serial_1thread_s"] = round(timed(suite, tmp / "serial1", "--device", "cpu", "--threads", "1"), 1)
        out["cpu_pool_2x1_s"] = round(timed(suite, tmp / "pool", "--device", "cpu", "--executor", "pool",
                                            "--param", "devices=2"), 1)
        print(f"12 runs on {out['cores']} cores: serial {out['cpu_serial_s']} s, serial 1 thread "
              f"{out['cpu_serial_1thread_s']} s, pool 2 workers × 1 thread {out['cpu_pool_2x1_s']} s")
        if args.gpu:
            gpu_suite = tmp / "gpu.yaml"
            gpu_suite.write_text(yaml.safe_dump(GPU_SUITE))
            main(["teacher", "train", str(gpu_suite), "--quiet", "--device", "cuda"])
            for per in (1, 2, 4, 8):
                runs = tmp / f"gpu{per}"
                seconds = timed(gpu_suite, runs, "--executor", "pool", "--param", "devices=[0]",
                                "--param", f"runs_per_device={per}")
                images = trained_images(runs)
                out[f"gpu_runs_per_device_{per}"] = {"wall_s": round(seconds, 1),
                                                     "aggregate_images_per_s": round(images / seconds)}
                print(f"resnet8x4 KD, 8 runs, runs_per_device={per}: {seconds:.1f} s, "
                      f"{images / seconds:.0f} images/s in all")
    print(json.dumps(out))


if __name__ == "__main__":
    main_()
