"""What a plugin implements, and the helpers it may use: the only part of kdbench a plugin imports.

    from kdbench.contracts import hookimpl, DistillationMethod, LossTerms, cross_entropy_per_sample

Hooks (``hookspecs``), and one contract per component kind: methods (``methods``, with the loss
helpers in ``losses``), data-value estimators (``estimators``), label revisions (``revisions``),
datasets held in memory (``datasets``) or streamed from disk (``streams``), models (``models``),
executors (``executors``) and experiment-tracker loggers (``loggers``); the resolved training recipe a run
trains under (``recipe``); ``register_folder`` for plugin packages that keep one component per module; and
``temporary_beside`` (``files``), the temporary file of an atomic write, created under the user's umask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
    from kdbench.contracts.datasets import (
        ImageDataset,
        MissingData,
        batched_crop,
        channel_stats,
        checks_data,
        export_folder_name,
        exported_dataset,
        hold_out_validation,
    )
    from kdbench.contracts.estimators import (
        CheckpointOutputs,
        DataValueEstimator,
        Scores,
        ScoringInputs,
        SplitOutputs,
        TeacherNetwork,
    )
    from kdbench.contracts.executors import Executor, Job, require
    from kdbench.contracts.files import temporary_beside
    from kdbench.contracts.hookspecs import hookimpl
    from kdbench.contracts.loggers import EpochLog, FinalLog, RunInfo, RunLogger, require_extra, safe_name
    from kdbench.contracts.losses import (
        LOGIT_STD_EPS,
        cross_entropy_per_sample,
        kl_from_target,
        kl_per_sample,
        standardize_logits,
        upcast,
    )
    from kdbench.contracts.methods import (
        DistillationMethod,
        LossTerms,
        MethodContext,
        PairInfo,
        StepInputs,
        ce_and_kd_terms,
    )
    from kdbench.contracts.models import ModelOutput, classifier_of, feature_shapes
    from kdbench.contracts.names import SCRATCH_METHOD
    from kdbench.contracts.plugin_folders import register_folder
    from kdbench.contracts.recipe import TrainingRecipe, lr_at_epoch
    from kdbench.contracts.revisions import LabelRevision, one_hot_like
    from kdbench.contracts.streams import BatchStream, StreamedBatch, StreamedDataset, StreamRequest

__all__ = [
    "LOGIT_STD_EPS",
    "SCRATCH_METHOD",
    "BatchStream",
    "CheckpointOutputs",
    "DataValueEstimator",
    "DistillationMethod",
    "EpochLog",
    "Executor",
    "FinalLog",
    "ImageDataset",
    "Job",
    "LabelRevision",
    "LossTerms",
    "MethodContext",
    "MissingData",
    "ModelOutput",
    "PairInfo",
    "RunInfo",
    "RunLogger",
    "Scores",
    "ScoringInputs",
    "SplitOutputs",
    "TeacherNetwork",
    "StreamRequest",
    "StreamedBatch",
    "StreamedDataset",
    "StepInputs",
    "TrainingRecipe",
    "batched_crop",
    "ce_and_kd_terms",
    "channel_stats",
    "checks_data",
    "classifier_of",
    "cross_entropy_per_sample",
    "export_folder_name",
    "exported_dataset",
    "feature_shapes",
    "hold_out_validation",
    "hookimpl",
    "kl_from_target",
    "kl_per_sample",
    "lr_at_epoch",
    "one_hot_like",
    "register_folder",
    "require",
    "require_extra",
    "safe_name",
    "standardize_logits",
    "temporary_beside",
    "upcast",
]

__getattr__, __dir__ = lazy_names(__name__, {
    "BatchStream": "kdbench.contracts.streams",
    "CheckpointOutputs": "kdbench.contracts.estimators",
    "DataValueEstimator": "kdbench.contracts.estimators",
    "DistillationMethod": "kdbench.contracts.methods",
    "EpochLog": "kdbench.contracts.loggers",
    "Executor": "kdbench.contracts.executors",
    "FinalLog": "kdbench.contracts.loggers",
    "ImageDataset": "kdbench.contracts.datasets",
    "Job": "kdbench.contracts.executors",
    "LOGIT_STD_EPS": "kdbench.contracts.losses",
    "LabelRevision": "kdbench.contracts.revisions",
    "LossTerms": "kdbench.contracts.methods",
    "MethodContext": "kdbench.contracts.methods",
    "MissingData": "kdbench.contracts.datasets",
    "ModelOutput": "kdbench.contracts.models",
    "PairInfo": "kdbench.contracts.methods",
    "RunInfo": "kdbench.contracts.loggers",
    "RunLogger": "kdbench.contracts.loggers",
    "SCRATCH_METHOD": "kdbench.contracts.names",
    "Scores": "kdbench.contracts.estimators",
    "ScoringInputs": "kdbench.contracts.estimators",
    "SplitOutputs": "kdbench.contracts.estimators",
    "TeacherNetwork": "kdbench.contracts.estimators",
    "StepInputs": "kdbench.contracts.methods",
    "StreamRequest": "kdbench.contracts.streams",
    "StreamedBatch": "kdbench.contracts.streams",
    "StreamedDataset": "kdbench.contracts.streams",
    "TrainingRecipe": "kdbench.contracts.recipe",
    "batched_crop": "kdbench.contracts.datasets",
    "ce_and_kd_terms": "kdbench.contracts.methods",
    "channel_stats": "kdbench.contracts.datasets",
    "checks_data": "kdbench.contracts.datasets",
    "classifier_of": "kdbench.contracts.models",
    "cross_entropy_per_sample": "kdbench.contracts.losses",
    "export_folder_name": "kdbench.contracts.datasets",
    "exported_dataset": "kdbench.contracts.datasets",
    "feature_shapes": "kdbench.contracts.models",
    "hold_out_validation": "kdbench.contracts.datasets",
    "hookimpl": "kdbench.contracts.hookspecs",
    "kl_from_target": "kdbench.contracts.losses",
    "kl_per_sample": "kdbench.contracts.losses",
    "lr_at_epoch": "kdbench.contracts.recipe",
    "one_hot_like": "kdbench.contracts.revisions",
    "register_folder": "kdbench.contracts.plugin_folders",
    "require": "kdbench.contracts.executors",
    "require_extra": "kdbench.contracts.loggers",
    "safe_name": "kdbench.contracts.loggers",
    "standardize_logits": "kdbench.contracts.losses",
    "temporary_beside": "kdbench.contracts.files",
    "upcast": "kdbench.contracts.losses",
})
