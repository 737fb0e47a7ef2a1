"""The ``kdbench`` Typer app: its commands in order, and :func:`main`, which turns every error into an exit code."""

from __future__ import annotations

import functools
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import typer

from kdbench.cli import components, doctor, results, runs, score, submissions, teacher
from kdbench.errors import KdbenchError

INTERRUPTED = "kdbench: interrupted; finished runs are kept, run the same command again to resume"


def one_line(text: str) -> str:
    """Non-printable characters (line breaks in a value) escaped, so a message is always one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    print(f"kdbench: warning: {one_line(str(message))}", file=sys.stderr)


def _guarded(command: Callable[..., int]) -> Callable[..., int]:
    """A command as the app runs it: a ``KdbenchError`` is one line on stderr and its exit code (2), Ctrl-C
    says how to resume and exits 130, a warning is one line. (Ctrl-C is caught here, inside the command:
    Typer would turn it into a silent exit code before :func:`main` saw it.)"""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            try:
                return command(*args, **kwargs)
            except KdbenchError as exc:
                print(f"kdbench: error: {one_line(str(exc))}", file=sys.stderr)
                return exc.exit_code
            except KeyboardInterrupt:
                print(INTERRUPTED, file=sys.stderr)
                return 130

    return run


def _add(group: typer.Typer, name: str, command: Callable[..., int]) -> None:
    """Register a command; the first paragraph of its docstring is its line in ``kdbench --help``, the whole
    docstring its ``--help`` (and its row of the README's command table: ``kdbench.cli.reference``)."""
    summary = inspect.cleandoc(command.__doc__ or "").split("\n\n")[0]
    group.command(name, short_help=summary)(_guarded(command))


# One-line usage errors (no rich panels), Python's own tracebacks on a bug; `-h` as argparse had it.
_SETTINGS: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False,
                             "context_settings": {"help_option_names": ["-h", "--help"]}}

app = typer.Typer(name="kdbench", help="Knowledge-distillation benchmark harness.", **_SETTINGS)
teacher_app = typer.Typer(help="train, list or evaluate teachers", **_SETTINGS)

_add(app, "run", runs.run)
_add(app, "tune", runs.tune)
_add(app, "list", components.list_components)
_add(app, "tables", results.tables)
_add(app, "score", score.score)
app.add_typer(teacher_app, name="teacher")
_add(teacher_app, "train", teacher.train)
_add(teacher_app, "list", teacher.list_teachers)
_add(teacher_app, "eval", teacher.evaluate)
_add(app, "export-folder", components.export_folder)
_add(app, "publish", results.publish)
_add(app, "leaderboard", results.leaderboard)
_add(app, "check-results", submissions.check_results)
_add(app, "verify", submissions.verify)
_add(app, "doctor", doctor.doctor)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kdbench`` with these arguments (default: the command line's); the exit code. A usage error (an
    unknown option, a value out of range, a missing argument) is one line on stderr and exit code 2."""
    command = typer.main.get_command(app)
    try:
        code = command.main(args=None if argv is None else list(argv), prog_name="kdbench", standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors (Typer carries its own Click)
        ctx = getattr(exc, "ctx", None)
        see = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        print(f"kdbench: error: {one_line(exc.format_message())}{see}", file=sys.stderr)
        return exc.exit_code
    return code if isinstance(code, int) else 0
