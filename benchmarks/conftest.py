"""pytest-benchmark suites of kdbench's speed (``tox -e bench``); ``pytest`` alone never collects them.

    pytest benchmarks --benchmark-enable                                   # CPU, small sizes, a few minutes
    pytest benchmarks --benchmark-enable --benchmark-autosave --benchmark-compare --benchmark-compare-fail=mean:10%
    pytest benchmarks --benchmark-enable --bench-device cuda               # the same suites on a GPU, larger sizes

Saved runs go to ``.benchmarks/<machine>-<device>/`` at the repository root (pytest-benchmark adds a folder
per platform and Python), so a run is only ever compared with earlier runs of the same machine and device:
``<machine>`` is the host name, or ``--bench-machine NAME`` / ``$KDBENCH_BENCH_MACHINE``. The first run
of a machine has nothing to compare with: ``--benchmark-compare`` is then dropped (with
``--benchmark-compare-fail``, which pytest-benchmark would otherwise reject as a usage error) and the run
becomes the baseline.
"""

from __future__ import annotations

import gc
import os
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

DEFAULT_STORAGE = "file://./.benchmarks"  # pytest-benchmark's own default: replaced by the per-machine folder
_NOTE = pytest.StashKey[str | None]()  # what the header says about the comparison


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kdbench benchmarks")
    group.addoption("--bench-device", default="cpu", choices=("cpu", "cuda", "auto"),
                    help="device of the suites (auto: cuda when there is one); cuda also uses larger sizes")
    group.addoption("--bench-threads", type=int, default=1,
                    help="torch threads (default 1: numbers that do not depend on the core count or on another "
                         "process busy on a core; 0: torch's own default, one per core)")
    group.addoption("--bench-machine", default=None,
                    help="the name saved runs are kept under (default: $KDBENCH_BENCH_MACHINE, else the host name)")


def _device(config: pytest.Config) -> str:
    device = config.getoption("--bench-device")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError("--bench-device cuda: torch sees no CUDA device")
    return device


def _machine(config: pytest.Config) -> str:
    name = config.getoption("--bench-machine") or os.environ.get("KDBENCH_BENCH_MACHINE") or platform.node() or "host"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _saved_runs(storage: Path) -> list[Path]:
    """The runs pytest-benchmark would compare with: its own per-platform folder under ``storage``."""
    from pytest_benchmark.utils import get_machine_id

    return sorted((storage / get_machine_id()).glob("[0-9][0-9][0-9][0-9]_*.json"))


def _file_storage(uri: str) -> Path | None:
    """The folder of a ``file://`` storage (pytest-benchmark reads any other non-URI value as a path too)."""
    if uri.startswith("elasticsearch"):
        return None
    return Path(uri.removeprefix("file://")).resolve()


def pytest_configure(config: pytest.Config) -> None:
    # Runs before pytest-benchmark's own pytest_configure (trylast), which reads these options.
    if not hasattr(config.option, "benchmark_storage"):
        return
    threads = config.getoption("--bench-threads")
    if threads > 0:
        torch.set_num_threads(threads)
    if config.option.benchmark_storage == DEFAULT_STORAGE:
        folder = config.rootpath / ".benchmarks" / f"{_machine(config)}-{_device(config)}"
        config.option.benchmark_storage = f"file://{folder}"
    storage = _file_storage(config.option.benchmark_storage)
    note = None
    if config.option.benchmark_compare is True and storage is not None:  # the latest saved run
        saved = _saved_runs(storage)
        if saved:
            note = f"comparing with {saved[-1]}"
        else:
            config.option.benchmark_compare = []
            config.option.benchmark_compare_fail = None
            note = f"no saved run under {storage} yet: nothing to compare with, this run is the baseline" + (
                " (saved by --benchmark-autosave)" if config.option.benchmark_autosave else "")
    config.stash[_NOTE] = note


def pytest_report_header(config: pytest.Config) -> list[str]:
    if not hasattr(config.option, "benchmark_storage"):
        return []
    lines = [f"kdbench benchmarks: device {_device(config)}, {torch.get_num_threads()} torch threads, "
             f"saved runs in {config.option.benchmark_storage.removeprefix('file://')}"]
    note = config.stash.get(_NOTE, None)
    if note:
        lines.append(f"kdbench benchmarks: {note}")
    return lines


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    note = config.stash.get(_NOTE, None)
    if note:  # also under -q, where the header is not shown
        terminalreporter.write_line(f"kdbench benchmarks: {note}")


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """What else decides a speed: a saved run made under other settings is flagged when compared."""
    device = _device(config)
    machine_info["kdbench"] = {
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
    }


@dataclass(frozen=True)
class Bench:
    """The device of the run, and whether it is a GPU (the suites then use larger, realistic sizes)."""

    device: str

    @property
    def gpu(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        """Wait for the device's queued work, so that a timed call includes it."""
        if self.gpu:
            torch.cuda.synchronize()


@pytest.fixture(autouse=True)
def _collected_garbage() -> None:
    """A full garbage collection before each benchmark, untimed: the previous tests' garbage (models,
    records, frames) is not collected in the middle of this one's timed rounds."""
    gc.collect()


@pytest.fixture(scope="session")
def bench(pytestconfig: pytest.Config) -> Bench:
    return Bench(_device(pytestconfig))


@pytest.fixture(scope="session")
def registry():
    from kdbench.registry import load_registry

    return load_registry()
