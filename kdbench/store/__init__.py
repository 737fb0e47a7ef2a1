"""The one owner of paths and writes: run records, teachers, score caches; typed records; atomic writes."""

from kdbench.store.home import kdbench_home
from kdbench.store.outputs import write_outputs
from kdbench.store.records import (
    SCHEMA_VERSION,
    EpochRecord,
    FailureRecord,
    RunRecord,
    SelectionRecord,
    TeacherCheckpoint,
    TeacherRecord,
)
from kdbench.store.runs import ResumeFile, RunStore, SuiteInfo, iter_records, read_run_record, read_suite_info
from kdbench.store.scores import ScoreCache, StoredScores, scores_key
from kdbench.store.teachers import TeacherStore, load_checkpoint

__all__ = [
    "SCHEMA_VERSION",
    "EpochRecord",
    "FailureRecord",
    "ResumeFile",
    "RunRecord",
    "RunStore",
    "ScoreCache",
    "SelectionRecord",
    "StoredScores",
    "SuiteInfo",
    "TeacherCheckpoint",
    "TeacherRecord",
    "TeacherStore",
    "iter_records",
    "kdbench_home",
    "load_checkpoint",
    "read_run_record",
    "read_suite_info",
    "scores_key",
    "write_outputs",
]
