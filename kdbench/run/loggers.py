"""The loggers of one run, each behind a guard: trackers watch a run, and none of them can stop it.

A worker builds fresh loggers for every run (and every teacher it trains) from the plain
``LoggerRef``s in its ``RunOptions``, so whichever executor runs a job, the process that trains also
logs. Every call to a logger goes through :class:`RunLoggers`: the first exception a logger raises (a
full disk, a tracking server that is down, a missing library on a worker node) is one warning, and that
logger is dropped for the rest of the run. The run, its record and its key never depend on a logger.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from kdbench.contracts import SCRATCH_METHOD, EpochLog, FinalLog, RunInfo, RunLogger
from kdbench.errors import KdbenchWarning
from kdbench.plan.spec import RunSpec, TeacherSpec
from kdbench.registry import Registry
from kdbench.run.options import LoggerRef
from kdbench.train.callbacks import Callback, EpochEnd
from kdbench.train.outcome import EpochMetrics

#: Numbers of a record that are not results: left out of a tracker's summary.
_NOT_RESULTS = frozenset({"schema_version", "seed", "finished_at", "saved_at", "best_epoch"})


def check_loggers(refs: Sequence[LoggerRef], registry: Registry, runs_root: str,
                  where: Callable[[int], str] = lambda i: "--log") -> None:
    """Build each logger once, here, so that an unknown name, a bad parameter or a missing extra is one line
    and exit 2 before anything trains (building a logger opens nothing)."""
    for i, ref in enumerate(refs):
        registry.get_at(where(i), "logger", ref.name).create(ref.params, where(i), runs_root=runs_root)


def run_info(spec: RunSpec, teacher_cache: bool | None) -> RunInfo:
    """A student run, as trackers see it; a run on noisy labels says so in its label (the runs of one suite
    at several noise rates share label, pair and seed)."""
    noise = spec.dataset.label_noise if spec.dataset.noisy else None
    label = f"{spec.label} @{noise.rate:g} {noise.kind} noise" if noise else spec.label
    return RunInfo(kind="run", suite=spec.suite, label=label, pair=spec.pair, seed=spec.seed, key=spec.key,
                   method=spec.method.name, student=spec.student,
                   teacher=spec.teacher.arch if spec.teacher else None, dataset=spec.dataset.name,
                   revision=spec.revision is not None, selection=spec.selection is not None, spec=spec.to_dict(),
                   teacher_cache=teacher_cache)


def teacher_info(spec: TeacherSpec, suite: str) -> RunInfo:
    """A teacher trained by the harness, as trackers see it: in its own group beside the suite's students."""
    noise = spec.dataset.label_noise if spec.dataset.noisy else None
    label = f"teacher @{noise.rate:g} {noise.kind} noise" if noise else "teacher"
    return RunInfo(kind="teacher", suite=suite, label=label, pair=spec.arch, seed=spec.seed, key=spec.key,
                   method=SCRATCH_METHOD, student=spec.arch, teacher=None, dataset=spec.dataset.name,
                   revision=False, selection=False, spec=spec.to_dict())


class RunLoggers:
    """The guarded loggers of one run. Use as a context manager: ``close`` runs however the run ends."""

    def __init__(self, loggers: Iterable[tuple[str, RunLogger]], info: RunInfo) -> None:
        self._active = dict(loggers)
        self.info = info
        self._logged: set[int] = set()

    @classmethod
    def open(cls, refs: Sequence[LoggerRef], registry: Registry, runs_root: str, info: RunInfo,
             start: bool = True) -> RunLoggers:
        """Build every logger for this run and start it (or leave ``start`` to the caller, who learns more of
        the run first); one that cannot be built is a warning, not an error."""
        built: list[tuple[str, RunLogger]] = []
        for ref in refs:
            try:
                built.append((ref.name, registry.get("logger", ref.name).create(ref.params, runs_root=runs_root)))
            except Exception as exc:  # an unknown name or a missing extra on this node too
                _warn(ref.name, "could not be built", exc, info)
        loggers = cls(built, info)
        if start:
            loggers.start()
        return loggers

    def start(self, teacher_cache: bool | None = None) -> None:
        """Start every logger; ``teacher_cache`` is where the run's teacher logits come from, once known."""
        if teacher_cache is not None:
            self.info = dataclasses.replace(self.info, teacher_cache=teacher_cache)
        self._call("start", self.info)

    def __enter__(self) -> RunLoggers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        """The loggers still active (those that have not failed)."""
        return list(self._active)

    def epoch(self, metrics: EpochMetrics) -> None:
        """One epoch as the record stores it (through :meth:`callback` while the run trains)."""
        self._logged.add(metrics.epoch)
        self._call("epoch", EpochLog(metrics.epoch, metrics.as_dict(), self.info.teacher_cache))

    def callback(self) -> Callback:
        """The training callback that sends every epoch to these loggers."""
        return _LogEpochs(self)

    def finish(self, record: BaseModel) -> None:
        """The stored record. Epochs trained before a resume (in an earlier process) are logged first, so the
        tracker holds every epoch the record holds."""
        data = record.model_dump(mode="json")
        for values in data.get("metrics") or []:
            if values["epoch"] not in self._logged:
                self._logged.add(values["epoch"])
                self._call("epoch", EpochLog(values["epoch"], values, self.info.teacher_cache))
        per_epoch = {k for values in data.get("metrics") or [] for k in values}
        summary = {f"run_{k}" if k in per_epoch else k: float(v) for k, v in data.items()  # run_: the run's mean
                   if isinstance(v, int | float) and not isinstance(v, bool) and k not in _NOT_RESULTS}
        self._call("finish", FinalLog(data, summary))

    def close(self) -> None:
        self._call("close")
        self._active.clear()

    def _call(self, method: str, *args: Any) -> None:
        for name, logger in list(self._active.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as exc:  # any failure of a tracker: the run goes on without it
                del self._active[name]
                _warn(name, f"failed in {method}()", exc, self.info)
                if method != "close":
                    try:
                        logger.close()
                    except Exception:  # already reported; just release what it holds
                        pass


class _LogEpochs(Callback):
    def __init__(self, loggers: RunLoggers) -> None:
        self.loggers = loggers

    def epoch_end(self, end: EpochEnd) -> None:
        self.loggers.epoch(end.metrics)


def _warn(name: str, what: str, exc: BaseException, info: RunInfo) -> None:
    run = f"{info.label} {info.pair} seed {info.seed}"
    warnings.warn(f"logger {name!r} {what} for {run} ({type(exc).__name__}: {exc}); the run goes on without it",
                  KdbenchWarning, stacklevel=3)
