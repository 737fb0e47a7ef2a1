"""The one owner of paths and writes: run records, teachers, score caches; typed records; atomic writes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kdbench.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and IDEs; at run time a name is imported on first use (kdbench.lazy)
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

__getattr__, __dir__ = lazy_names(__name__, {
    "DetectionRecord": "kdbench.store.records",
    "Environment": "kdbench.store.records",
    "EpochRecord": "kdbench.store.records",
    "FailureRecord": "kdbench.store.records",
    "PublishReport": "kdbench.store.publish",
    "Replacement": "kdbench.store.records",
    "ResumeFile": "kdbench.store.runs",
    "RunRecord": "kdbench.store.records",
    "RunStore": "kdbench.store.runs",
    "SCHEMA_VERSION": "kdbench.store.records",
    "ScoreCache": "kdbench.store.scores",
    "SelectionRecord": "kdbench.store.records",
    "StoredScores": "kdbench.store.scores",
    "SuiteInfo": "kdbench.store.runs",
    "TableWriter": "kdbench.store.teacher_outputs",
    "TeacherCacheRecord": "kdbench.store.records",
    "TeacherCheckpoint": "kdbench.store.records",
    "TeacherOutputStore": "kdbench.store.teacher_outputs",
    "TeacherOutputsMeta": "kdbench.store.teacher_outputs",
    "TeacherRecord": "kdbench.store.records",
    "TeacherStore": "kdbench.store.teachers",
    "check_results_folder": "kdbench.store.publish",
    "default_runs_root": "kdbench.store.home",
    "iter_records": "kdbench.store.runs",
    "kdbench_home": "kdbench.store.home",
    "load_checkpoint": "kdbench.store.teachers",
    "publish_suite": "kdbench.store.publish",
    "published_records": "kdbench.store.published_files",
    "read_run_record": "kdbench.store.runs",
    "read_suite_info": "kdbench.store.runs",
    "scores_key": "kdbench.store.scores",
    "suites_in": "kdbench.store.publish",
    "write_outputs": "kdbench.store.outputs",
})
