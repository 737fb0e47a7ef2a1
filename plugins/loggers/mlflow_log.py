"""MLflow: one MLflow run per kdbench run, in an experiment per suite (its teachers in ``<suite>.teachers``).

Params are the resolved spec (flattened to ``method.params.T``-style keys), metrics are every epoch's
numbers under the record's names, and the stored record is the run's ``record.json`` artifact. By
default the tracking store is a SQLite database in the run store (``<runs>/mlflow.db``, artifacts under
``<runs>/mlflow-artifacts``): ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`` opens it.
``tracking_uri`` (or ``$MLFLOW_TRACKING_URI``) points at a shared server instead.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from kdbench.contracts import EpochLog, FinalLog, RunInfo, RunLogger, hookimpl, require_extra

BATCH = 100  # MLflow takes at most 100 params (and 1000 metrics) per log_batch call
PARAM_CHARS = 6000  # and a param value of at most this many characters


class MlflowLogger(RunLogger):
    """One MLflow run per kdbench run: params = resolved spec, metrics per epoch, the record as an artifact."""

    def __init__(self, runs_root: str = "runs", tracking_uri: str | None = None,
                 experiment_prefix: str = "") -> None:
        self.mlflow = require_extra("mlflow", "mlflow", "mlflow")
        self.runs_root = Path(runs_root)
        self.uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
        self.prefix = experiment_prefix
        self._client: Any = None
        self._run_id: str | None = None
        self._finished = False
        self._last_epoch = 0

    def _local(self) -> bool:
        return self.uri is None

    def start(self, run: RunInfo) -> None:
        from mlflow.entities import Param

        uri: str | None
        if self._local():
            self.runs_root.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{(self.runs_root / 'mlflow.db').resolve()}"
        else:
            uri = self.uri
        with _local_lock(self.runs_root if self._local() else None):  # two workers may create the database
            self._client = self.mlflow.MlflowClient(tracking_uri=uri)
            experiment = self._experiment(self.prefix + run.group)
        tags = {"kdbench.kind": run.kind, "kdbench.suite": run.suite, "kdbench.label": run.label,
                "kdbench.pair": run.pair, "kdbench.seed": str(run.seed), "kdbench.key": run.key,
                "kdbench.method": run.method, "kdbench.LR": str(run.revision), "kdbench.DS": str(run.selection),
                **{f"kdbench.tag.{t}": "true" for t in run.tags()}}
        self._run_id = self._client.create_run(experiment, tags=tags, run_name=run.name).info.run_id
        params = [Param(k[:250], str(v)[:PARAM_CHARS]) for k, v in run.flat_params().items()]
        for i in range(0, len(params), BATCH):
            self._client.log_batch(self._run_id, params=params[i:i + BATCH])

    def _experiment(self, name: str) -> str:
        found = self._client.get_experiment_by_name(name)
        experiment_id: str
        if found is not None:
            experiment_id = found.experiment_id
            return experiment_id
        location = None
        if self._local():
            location = (self.runs_root / "mlflow-artifacts").resolve().as_uri()
        try:
            experiment_id = self._client.create_experiment(name, artifact_location=location)
        except self.mlflow.exceptions.MlflowException:  # created by another worker meanwhile
            experiment_id = self._client.get_experiment_by_name(name).experiment_id
        return experiment_id

    def epoch(self, metrics: EpochLog) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, metrics.epoch) for k, v in metrics.scalars().items()]
        self._client.log_batch(self._run_id, metrics=batch)
        self._last_epoch = max(self._last_epoch, metrics.epoch)

    def finish(self, final: FinalLog) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._client.log_batch(self._run_id, metrics=[Metric(k, v, now, self._last_epoch)
                                                          for k, v in final.summary.items()])
        self._client.log_dict(self._run_id, dict(final.record), "record.json")
        self._finished = True

    def close(self) -> None:
        if self._run_id is not None:
            self._client.set_terminated(self._run_id, "FINISHED" if self._finished else "FAILED")
            self._run_id = None


def _local_lock(root: Path | None) -> AbstractContextManager[Any]:
    """A file lock next to the local SQLite store (none for a server): MLflow creates its tables on first use."""
    if root is None:
        return nullcontext()
    from filelock import FileLock

    return FileLock(str(root / "mlflow.db.lock"))


@hookimpl
def kdbench_register_loggers(register: Callable[..., None]) -> None:
    register("mlflow", MlflowLogger)
