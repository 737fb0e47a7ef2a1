"""The one owner of paths and writes: run records, teachers, score caches; typed records; atomic writes."""

from kdbench.store.home import default_runs_root, kdbench_home
from kdbench.store.outputs import write_outputs
from kdbench.store.publish import PublishReport, check_results_folder, publish_suite, suites_in
from kdbench.store.published_files import published_records
from kdbench.store.records import (
    SCHEMA_VERSION,
    DetectionRecord,
    Environment,
    EpochRecord,
    FailureRecord,
    Replacement,
    RunRecord,
    SelectionRecord,
    TeacherCacheRecord,
    TeacherCheckpoint,
    TeacherRecord,
)
from kdbench.store.runs import ResumeFile, RunStore, SuiteInfo, iter_records, read_run_record, read_suite_info
from kdbench.store.scores import ScoreCache, StoredScores, scores_key
from kdbench.store.teacher_outputs import TableWriter, TeacherOutputsMeta, TeacherOutputStore
from kdbench.store.teachers import TeacherStore, load_checkpoint

__all__ = [
    "SCHEMA_VERSION",
    "DetectionRecord",
    "Environment",
    "EpochRecord",
    "FailureRecord",
    "Replacement",
    "PublishReport",
    "ResumeFile",
    "RunRecord",
    "RunStore",
    "ScoreCache",
    "SelectionRecord",
    "StoredScores",
    "SuiteInfo",
    "TableWriter",
    "TeacherCacheRecord",
    "TeacherCheckpoint",
    "TeacherOutputStore",
    "TeacherOutputsMeta",
    "TeacherRecord",
    "TeacherStore",
    "check_results_folder",
    "default_runs_root",
    "iter_records",
    "kdbench_home",
    "load_checkpoint",
    "publish_suite",
    "published_records",
    "read_run_record",
    "read_suite_info",
    "scores_key",
    "suites_in",
    "write_outputs",
]
