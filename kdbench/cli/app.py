"""The ``kdbench`` Typer app: its commands in order, and :func:`main`, which turns every error into an exit code.

A command's module is imported when the app is built, and :func:`main` builds the app with only the command
the line names (the whole app for ``kdbench --help`` or a name it does not know): the training side imports
torch (about 470 MB and 2 s), and ``kdbench leaderboard`` or ``tables``, which read records, never pay for it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import typer

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

#: The commands in ``kdbench --help`` order: name → (module under kdbench.cli, function); ``teacher`` is a group.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("runs", "run"),
    "tune": ("runs", "tune"),
    "list": ("components", "list_components"),
    "tables": ("results", "tables"),
    "score": ("score", "score"),
    "teacher": ("teacher", ""),
    "export-folder": ("components", "export_folder"),
    "publish": ("results", "publish"),
    "leaderboard": ("results", "leaderboard"),
    "check-results": ("submissions", "check_results"),
    "verify": ("submissions", "verify"),
    "doctor": ("doctor", "doctor"),
}
TEACHER_COMMANDS = {"train": "train", "list": "list_teachers", "eval": "evaluate"}


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with the one named ``only`` (its module alone imported). The root always
    has a callback, so even a one-command app parses ``kdbench NAME ...`` as the whole app does."""
    root = typer.Typer(name="kdbench", help="Knowledge-distillation benchmark harness.", **_SETTINGS)
    root.callback()(lambda: None)
    for name, (module_name, function) in COMMANDS.items():
        if only is not None and name != only:
            continue
        module = importlib.import_module(f"kdbench.cli.{module_name}")
        if name == "teacher":
            group = typer.Typer(help="train, list or evaluate teachers", **_SETTINGS)
            for sub_name, sub_function in TEACHER_COMMANDS.items():
                _add(group, sub_name, getattr(module, sub_function))
            root.add_typer(group, name="teacher")
        else:
            _add(root, name, getattr(module, function))
    return root


def __getattr__(name: str) -> Any:
    """``app``: the whole app, built on first use (the README's command table and the tests read it)."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _named_command(args: Sequence[str]) -> str | None:
    """The command a line names, when it names one: its first argument (options come after it)."""
    return args[0] if args and args[0] in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kdbench`` with these arguments (default: the command line's); the exit code. A usage error (an
    unknown option, a value out of range, a missing argument) is one line on stderr and exit code 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(build_app(_named_command(args)))
    try:
        code = command.main(args=args, prog_name="kdbench", standalone_mode=False)
    except typer.TyperException as exc:  # Click's usage errors (Typer carries its own Click)
        ctx = getattr(exc, "ctx", None)
        see = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        print(f"kdbench: error: {one_line(exc.format_message())}{see}", file=sys.stderr)
        return exc.exit_code
    return code if isinstance(code, int) else 0
