"""The doctor's checks, in the order they run: what is installed, then tiny runs through every path a suite
can take (live teacher, teacher-output cache, the pool executor, DDP, a streamed image folder, the CUDA
paths), then the training speed of the standard pair.

Each check returns its rows; an exception inside one is that check's failure row, so one broken path never
hides the others. Tolerances are those the project promises and tests (docs/methods.md §1, §11): on a CPU
the cache and every executor give the same numbers to the last digit (held here to 1e-6), DDP the
one-process numbers within 1e-4; CUDA paths are held to closeness, since GPU kernels are not bitwise
reproducible across batch shapes.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import torch

import kdbench
from kdbench.registry import Registry, load_registry
from kdbench.run.doctor.report import CheckResult, Status
from kdbench.run.doctor.sandbox import (
    PLAIN_NET,
    CheckFailed,
    Execution,
    Sandbox,
    TinySuite,
    largest_difference,
)
from kdbench.run.doctor.speed import STANDARD_CPU, STANDARD_GPU, images_per_second
from kdbench.run.environment import cpu_model
from kdbench.store import RunRecord, kdbench_home

EXACT = 1e-6  # CPU: the cache and the executors reproduce the live serial run to the last digit
DDP_TOLERANCE = 1e-4  # DDP against one process, the gradient sums added in another order (methods.md §1)
CUDA_RELATIVE = 0.05  # CUDA paths: the first epoch's training loss within 5% of the plain fp32 CUDA run
PLAIN_PAIR = {"teacher": "doctor_plain_net", "student": "doctor_plain_net"}
CUDA = Execution(device="cuda", threads=None)  # how the CUDA checks run (tests run their logic on the CPU)


@dataclass(frozen=True)
class DoctorSettings:
    """What the user chose: the device of the CUDA and speed checks (``auto``: CUDA when torch sees it)."""

    device: str = "auto"
    speed: bool = True  # the images/s of CE and KD steps on the standard pair


class Examination:
    """What the checks share: the sandbox, the device, the registry, and the live-teacher reference run that
    the cache, pool and image-folder checks compare with (trained once)."""

    def __init__(self, sandbox: Sandbox, settings: DoctorSettings) -> None:
        self.sandbox = sandbox
        self.settings = settings
        self.cuda = torch.cuda.is_available() and settings.device != "cpu"

    @cached_property
    def registry(self) -> Registry:
        return load_registry()

    @cached_property
    def cuda_fp32(self) -> RunRecord:
        """KD on CUDA without autocast: what the CUDA paths are held to."""
        (record,) = self.sandbox.run(TinySuite("cuda_fp32", recipe={"teacher_cache": "off"}), "cuda_fp32",
                                     replace(CUDA, mixed_precision=False))
        return record

    @cached_property
    def reference(self) -> RunRecord:
        (record,) = self.sandbox.run(TinySuite("live", recipe={"teacher_cache": "off"}), "live")
        return record


Check = Callable[[Examination], list[CheckResult]]


def versions(exam: Examination) -> list[CheckResult]:
    import torchvision

    cuda = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
    return [CheckResult("versions", "pass", f"Python {platform.python_version()}, torch {torch.__version__} "
                        f"({cuda}), torchvision {torchvision.__version__}, kdbench {kdbench.__version__}")]


def devices(exam: Examination) -> list[CheckResult]:
    rows = [CheckResult("CPU", "pass", f"{cpu_model()}, {os.cpu_count()} cores",
                        f"{torch.get_num_threads()} torch threads")]
    if not torch.cuda.is_available():
        rows.append(CheckResult("GPUs", "n/a", "torch sees no CUDA device"))
        return rows
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        rows.append(CheckResult(f"GPU {i}", "pass", props.name, f"{props.total_memory / 2**30:.0f} GiB"))
    return rows


def _extras() -> dict[str, list[str]]:
    """The optional extras of kdbench's metadata and the distributions each installs (``dev`` left out: tools)."""
    extras: dict[str, list[str]] = {}
    for requirement in importlib.metadata.requires("kdbench") or []:
        found = re.match(r"\s*([A-Za-z0-9_.\-]+).*extra\s*==\s*['\"]([^'\"]+)['\"]", requirement)
        if found and found.group(2) != "dev":
            extras.setdefault(found.group(2), []).append(found.group(1))
    return extras


#: Distributions whose import name is not their own name.
IMPORT_NAMES = {"traker": "trak"}


def extras(exam: Examination) -> list[CheckResult]:
    """Each extra installed and importable, in a fresh interpreter each (one that crashes on import, as a
    mismatched binary wheel can, fails its own row only)."""
    rows = []
    for extra, dists in _extras().items():
        for dist in dists:
            name = f"extra {extra} ({dist})"
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                rows.append(CheckResult(name, "n/a", f"not installed: pip install 'kdbench[{extra}]'"))
                continue
            module = IMPORT_NAMES.get(dist.lower(), dist.lower().replace("-", "_"))
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True,
                                  timeout=300)
            seconds = time.perf_counter() - started
            if done.returncode == 0:
                rows.append(CheckResult(name, "pass", f"{dist} {version} imports", f"{seconds:.1f} s", seconds))
            else:
                error = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
                rows.append(CheckResult(name, "fail", f"{dist} {version} is installed but fails to import: {error}"))
    return rows


def home(exam: Examination) -> list[CheckResult]:
    """``$KDBENCH_HOME`` (teachers, caches, data) writable, and its free disk."""
    root = kdbench_home()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".doctor-"):
        pass
    free = shutil.disk_usage(root).free / 2**30
    return [CheckResult("KDBENCH_HOME", "pass", f"{root} is writable", f"{free:.0f} GiB free")]


def live_teacher(exam: Examination) -> list[CheckResult]:
    record = exam.reference
    losses = " → ".join(f"{m.train_loss:.3f}" for m in record.metrics)
    return [CheckResult("tiny KD run, live teacher", "pass", f"resnet20 → resnet8 on 150 synthetic 8 px images, "
                        f"{len(record.metrics)} epochs (a check of the path, not of accuracy): training loss {losses}")]


def _same(name: str, reference: RunRecord, other: RunRecord, tolerance: float, what: str,
          figure: str = "") -> CheckResult:
    difference = largest_difference(reference, other)
    if difference == 0.0:
        return CheckResult(name, "pass", f"{what}: the same numbers as the live serial run, bit for bit", figure)
    if difference <= tolerance:
        return CheckResult(name, "pass", f"{what}: within {tolerance:g} of the live serial run",
                           f"largest difference {difference:.1e}")
    return CheckResult(name, "fail", f"{what}: numbers differ from the live serial run by {difference:.3g} "
                       f"(allowed {tolerance:g})", figure)


def teacher_cache(exam: Examination) -> list[CheckResult]:
    (cached,) = exam.sandbox.run(TinySuite("cached", recipe={"teacher_cache": "on"}), "cached")
    if cached.teacher_cache is None or not cached.teacher_cache.used:
        reason = cached.teacher_cache.reason if cached.teacher_cache else "no cache record"
        raise CheckFailed(f"the run did not use the teacher-output cache ({reason})")
    views = cached.teacher_cache.views
    return [_same("teacher-output cache", exam.reference, cached, EXACT, f"KD from a table of {views} views")]


def pool(exam: Examination) -> list[CheckResult]:
    """Two runs in two worker processes. On a CPU their first seed must equal the live serial run to the last
    digit; on a GPU box the pool puts both on GPU 0, so they are held to a serial CUDA run's closeness."""
    suite = TinySuite("pool", recipe={"teacher_cache": "off"}, seeds=(0, 1))
    name, what = "pool executor, 2 slots", "2 runs in 2 worker processes"
    params: dict[str, object] = {"devices": [0], "runs_per_device": 2} if exam.cuda else {"devices": 2, "threads": 1}
    started = time.perf_counter()
    records = exam.sandbox.run(suite, "pool", Execution(executor="pool", params=params))
    seconds = time.perf_counter() - started
    seed0 = next(r for r in records if r.seed == 0)
    if exam.cuda:
        (serial,) = exam.sandbox.run(TinySuite("pool", recipe={"teacher_cache": "off"}), "pool_serial",
                                     Execution(device="cuda", threads=None))
        row = _close_loss(name, f"{what} on GPU 0", serial, seed0, "the serial CUDA run")
    else:
        row = _same(name, exam.reference, seed0, EXACT, what)
    return [CheckResult(row.check, row.status, row.result, row.figure or f"{seconds:.1f} s", seconds)]


def _close_loss(name: str, what: str, reference: RunRecord, record: RunRecord, against: str) -> CheckResult:
    """CUDA paths: the first epoch's training loss finite and within CUDA_RELATIVE of the reference run's."""
    first, loss = reference.metrics[0].train_loss, record.metrics[0].train_loss
    relative = abs(loss - first) / max(abs(first), 1e-12)
    status: Status = "pass" if math.isfinite(loss) and relative <= CUDA_RELATIVE else "fail"
    return CheckResult(name, status, f"{what}: first-epoch loss {loss:.4f} against {first:.4f} in {against}",
                       f"{relative:.1%} apart")


def _ddp(exam: Examination, name: str, device: str, tolerance: float) -> CheckResult:
    suite = TinySuite(f"ddp_{device}", pair=PLAIN_PAIR, plugins=(str(PLAIN_NET),), recipe={"teacher_cache": "off"})
    one_device = device.split(",")[0]  # the one-process run on the group's first device
    (one,) = exam.sandbox.run(suite, f"ddp_{device}_1",
                              Execution(device=one_device, threads=2 if one_device == "cpu" else None))
    started = time.perf_counter()
    (two,) = exam.sandbox.run(suite, f"ddp_{device}_2", Execution(device=device, nproc=2, threads=None))
    seconds = time.perf_counter() - started
    if two.processes != 2:
        raise CheckFailed(f"the run trained on {two.processes} process(es), not 2")
    difference = largest_difference(one, two)
    status: Status = "pass" if difference <= tolerance else "fail"
    return CheckResult(name, status, f"2 processes against 1, largest difference {difference:.1e} "
                       f"(allowed {tolerance:g})", f"{seconds:.1f} s", seconds)


def ddp(exam: Examination) -> list[CheckResult]:
    rows = [_ddp(exam, "DDP, gloo on the CPU", "cpu", DDP_TOLERANCE)]
    gpus = torch.cuda.device_count() if exam.cuda else 0
    if gpus >= 2:
        rows.append(_ddp(exam, "DDP, NCCL on 2 GPUs", "cuda:0,1", DDP_TOLERANCE * 10))
    else:
        rows.append(CheckResult("DDP, NCCL", "n/a", f"needs 2 GPUs; torch sees {gpus}"))
    return rows


def image_folder(exam: Examination) -> list[CheckResult]:
    """The tiny dataset written as PNG files (as ``kdbench export-folder`` does), then streamed from disk."""
    from kdbench.run.image_export import export_image_folder

    folder = exam.sandbox.data / "doctor_folder"
    params = {k: v for k, v in TinySuite("x").dataset["params"].items() if k != "val_fraction"}
    written = export_image_folder(exam.sandbox.options("export", Execution()), "synthetic", params, folder)
    dataset = {"name": "imagefolder", "params": {"path": str(folder), "image_size": 8}}
    (record,) = exam.sandbox.run(TinySuite("folder", methods=("ce",), dataset=dataset), "folder",
                                 Execution(threads=1, loader_workers=1))
    return [CheckResult("streamed image folder", "pass", f"{written.train_images} + {written.val_images} PNG files "
                        f"decoded from disk for {len(record.metrics)} epochs of CE",
                        f"{record.train_images_per_s:.0f} images/s")]


def _on_cuda(name: str, check: Callable[[Examination], CheckResult]) -> Check:
    """A CUDA check: ``n/a`` without a CUDA device (not a pass), its own row and failure otherwise."""

    def run(exam: Examination) -> list[CheckResult]:
        return [check(exam)] if exam.cuda else [CheckResult(name, "n/a", "no CUDA device")]

    return run


def _bf16(exam: Examination) -> CheckResult:
    (bf16,) = exam.sandbox.run(TinySuite("cuda_bf16", recipe={"teacher_cache": "off"}), "cuda_bf16", CUDA)
    return _close_loss("CUDA bf16 autocast", "KD under bf16 autocast", exam.cuda_fp32, bf16, "fp32")


def _device_cache(exam: Examination) -> CheckResult:
    name = "CUDA teacher-output cache"
    (cached,) = exam.sandbox.run(TinySuite("cuda_cache", recipe={"teacher_cache": "on"}), "cuda_cache", CUDA)
    if cached.teacher_cache is None or not cached.teacher_cache.used:
        return CheckResult(name, "fail", "the run did not use the cache")
    return _close_loss(name, "KD from the table in device memory", exam.cuda_fp32, cached, "fp32")


def _compile(exam: Examination) -> CheckResult:
    name = "CUDA torch.compile"
    (compiled,) = exam.sandbox.run(TinySuite("cuda_compile", recipe={"teacher_cache": "off", "compile": True}),
                                   "cuda_compile", CUDA)
    if not compiled.compiled:
        return CheckResult(name, "fail", "the record says the run was not compiled")
    return _close_loss(name, "KD with the student and loss compiled", exam.cuda_fp32, compiled, "fp32")


def _channels_last(exam: Examination) -> CheckResult:
    """resnet8's logits in channels_last memory format against the default layout (what runs use on CUDA)."""
    torch.manual_seed(0)
    model = exam.registry.get("model", "resnet8").create(num_classes=10).to(CUDA.device).eval()
    x = torch.randn(64, 3, 32, 32, device=CUDA.device)
    with torch.no_grad():
        plain = model(x)
        last = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    difference = float((plain - last).abs().max() / plain.abs().max())
    status: Status = "pass" if difference <= 1e-2 else "fail"
    return CheckResult("CUDA channels_last", status, "resnet8's logits in channels_last against the default layout",
                       f"{difference:.1e} apart")


def speed(exam: Examination) -> list[CheckResult]:
    if not exam.settings.speed:
        return [CheckResult("training speed", "n/a", "skipped (--no-speed)")]
    device = "cuda" if exam.cuda else "cpu"
    size = STANDARD_GPU if exam.cuda else STANDARD_CPU
    rows = []
    for method in ("ce", "kd"):
        started = time.perf_counter()
        rate = images_per_second(exam.registry, method, device, size)
        rows.append(CheckResult(f"{method.upper()} step speed", "pass",
                                f"{size.teacher} → {size.student}, 32 px, batch {size.batch_size} on {device}",
                                f"{rate:,.0f} images/s", time.perf_counter() - started))
    return rows


cuda_bf16 = _on_cuda("CUDA bf16 autocast", _bf16)
cuda_channels_last = _on_cuda("CUDA channels_last", _channels_last)
cuda_cache = _on_cuda("CUDA teacher-output cache", _device_cache)
cuda_compile = _on_cuda("CUDA torch.compile", _compile)

CHECKS: tuple[Check, ...] = (versions, devices, extras, home, live_teacher, teacher_cache, pool, ddp, image_folder,
                             cuda_bf16, cuda_channels_last, cuda_cache, cuda_compile, speed)
NAMES: dict[Check, str] = {versions: "versions", devices: "devices", extras: "extras", home: "KDBENCH_HOME",
                           live_teacher: "tiny KD run, live teacher", teacher_cache: "teacher-output cache",
                           pool: "pool executor, 2 slots", ddp: "DDP", image_folder: "streamed image folder",
                           cuda_bf16: "CUDA bf16 autocast", cuda_channels_last: "CUDA channels_last",
                           cuda_cache: "CUDA teacher-output cache", cuda_compile: "CUDA torch.compile",
                           speed: "training speed"}
