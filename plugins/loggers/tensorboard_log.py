"""TensorBoard: event files under the run store, one directory per run, the spec through the HParams plugin.

``tensorboard --logdir runs/tensorboard`` shows a suite's runs side by side: every epoch's numbers under
the record's own names (``test_top1``, ``loss_kd``, ``lr``, ...), and in the HParams tab one row per run
with its resolved spec and its best and last top-1. A suite's teachers sit in the same folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kdbench.contracts import EpochLog, FinalLog, RunInfo, RunLogger, hookimpl, require_extra, safe_name

#: The numbers the HParams table shows for each run (scalars of the run, by tag).
HPARAM_METRICS = ("best_top1", "last_top1", "test_top1")


class TensorBoardLogger(RunLogger):
    """TensorBoard event files: ``<runs>/tensorboard/<suite>/<label>__<pair>__seed<N>`` (or ``logdir``)."""

    def __init__(self, runs_root: str = "runs", logdir: str | None = None, hparams: bool = True) -> None:
        require_extra("tensorboard", "tensorboard", "tensorboard")
        self.root = Path(logdir) if logdir else Path(runs_root) / "tensorboard"
        self.hparams = hparams
        self._writer: Any = None
        self._session_end: Any = None
        self._last_epoch = 0

    def start(self, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self._writer = SummaryWriter(log_dir=str(self.root / safe_name(run.suite) / run.name))
        if self.hparams:
            values = {"kind": run.kind, "label": run.label, "pair": run.pair, "seed": run.seed, "method": run.method,
                      "LR": run.revision, "DS": run.selection, **run.flat_params()}
            metrics = dict.fromkeys(HPARAM_METRICS, 0.0)
            summaries = hparams(values, metrics)  # type: ignore[no-untyped-call, unused-ignore]  # untyped in torch
            experiment, session_start, self._session_end = summaries
            self._writer.file_writer.add_summary(experiment)
            self._writer.file_writer.add_summary(session_start)

    def epoch(self, metrics: EpochLog) -> None:
        # new-style float64 scalars: TensorBoard holds the record's numbers, not their float32 roundings
        for name, value in metrics.scalars().items():
            self._writer.add_scalar(name, value, metrics.epoch, new_style=True, double_precision=True)
        self._last_epoch = max(self._last_epoch, metrics.epoch)

    def finish(self, final: FinalLog) -> None:
        for name in ("best_top1", "last_top1"):
            if name in final.summary:
                self._writer.add_scalar(name, final.summary[name], self._last_epoch, new_style=True,
                                        double_precision=True)
        if self._session_end is not None:
            self._writer.file_writer.add_summary(self._session_end)  # the run shows as finished
        self._writer.add_text("record", f"```\n{final.record_json()}\n```", self._last_epoch)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@hookimpl
def kdbench_register_loggers(register: Callable[..., None]) -> None:
    register("tensorboard", TensorBoardLogger)
