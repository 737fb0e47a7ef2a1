"""The README's command table, rendered from the CLI itself: ``python -m kdbench.cli.reference [--check] [README]``.

Each row is a command: its synopsis (every argument and option, with its metavar) from the Typer app, and what
it does from the command's docstring (all but its first paragraph, which is its line in ``kdbench --help``).
Without ``--check`` the table between the README's markers is rewritten; with it, nothing is written and the exit
code is 1 when the table differs from the CLI, naming the commands whose rows differ, so a new option that the
README does not list fails ``tox -e lint`` (and ``tests/test_cli.py``).
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
from collections.abc import Iterator, Sequence
from itertools import takewhile
from pathlib import Path
from typing import Any

import typer

from kdbench.cli.app import app

START, END = "<!-- commands: start", "<!-- commands: end -->"
MARKER = f"{START} (generated from the CLI by `python -m kdbench.cli.reference`: edit the command docstrings) -->"
HEADER = ["| command | what it does |", "|---|---|"]
COMPLETION = ("Installs tab completion of commands, options and choices for your shell (bash, zsh, fish, PowerShell); "
              "`--show-completion` prints the script instead, to install it by hand.")


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the app, in ``kdbench --help`` order, with its path of names (groups opened)."""
    ctx = group.make_context("kdbench", [], resilient_parsing=True)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if hasattr(command, "list_commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _word(param: Any) -> str:
    """A parameter as the synopsis shows it: ``SUITE``, ``[OUT]``, ``[--force]``, ``[--plugin FILE]...``."""
    if param.param_type_name == "argument":
        word = param.metavar or param.name.upper()
    elif param.is_flag:
        word = max(param.opts, key=len)
    else:
        word = f"{max(param.opts, key=len)} {param.metavar or param.name.upper()}"
    word = word if param.required else f"[{word}]"
    return f"{word}..." if param.multiple else word


def synopsis(path: Sequence[str], command: Any) -> str:
    return " ".join(["kdbench", *path, *(_word(p) for p in command.params if not p.hidden)])


def description(command: Any) -> str:
    """What a command does: its docstring after the first paragraph, as one line."""
    paragraphs = inspect.cleandoc(command.callback.__doc__ or "").split("\n\n")
    return " ".join(" ".join(paragraphs[1:] or paragraphs).split())


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def rows() -> dict[str, str]:
    """The table's rows, keyed by command (``kdbench teacher train``), in order; shell completion (``kdbench``)
    last."""
    root = typer.main.get_command(app)
    table = {" ".join(["kdbench", *path]): _row(synopsis(path, command), description(command))
             for path, command in _commands(root)}
    table["kdbench"] = _row(synopsis((), root), COMPLETION)
    return table


def _row(synopsis: str, description: str) -> str:
    return f"| `{_cell(synopsis)}` | {_cell(description)} |"


def _synopsis_words(row: str) -> list[str]:
    """The words of a row's synopsis (``kdbench``, ``run``, ``SUITE``, ``[--force]``, ...)."""
    parts = row.split("`")
    return re.findall(r"\[[^]]*\](?:\.\.\.)?|\S+", parts[1].replace("\\|", "|")) if len(parts) > 2 else []


def _command_of(row: str) -> str:
    """``kdbench teacher train`` for the row of ``kdbench teacher train SUITE [--plugin FILE]...``."""
    return " ".join(takewhile(lambda word: re.fullmatch(r"[a-z][a-z-]*", word), _synopsis_words(row)))


def render() -> str:
    return "\n".join([MARKER, *HEADER, *rows().values(), END])


def _block(readme: str, where: Path) -> tuple[int, int]:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{where}: no command table between {START} ... --> and {END}")
    return start, end + len(END)


def differences(readme: Path) -> list[str]:
    """How the README's command table differs from what the CLI renders, a line per command (none: in sync)."""
    text = readme.read_text(encoding="utf-8")
    start, end = _block(text, readme)
    shown = {_command_of(line): line for line in text[start:end].splitlines()[1 + len(HEADER):-1]}
    wanted = rows()
    problems = [f"{command}: not in the table" for command in wanted if command not in shown]
    problems += [f"{command}: no such command" for command in shown if command not in wanted]
    for command, row in wanted.items():
        if command not in shown or shown[command] == row:
            continue
        ours, theirs = _synopsis_words(row), _synopsis_words(shown[command])
        missing, extra = [w for w in ours if w not in theirs], [w for w in theirs if w not in ours]
        if missing or extra:
            problems.append(f"{command}: the table lacks {' '.join(missing) or 'nothing'}; it lists "
                            f"{' '.join(extra) or 'nothing'} that the CLI does not have")
        else:
            problems.append(f"{command}: its row differs from the rendered one (option order, or what it does)")
    if not problems and text[start:end] != render():
        problems.append("the markers, the header or the order of the rows differ from the rendered table")
    return problems


def write(readme: Path) -> bool:
    """Rewrite the README's command table; whether it changed."""
    text = readme.read_text(encoding="utf-8")
    start, end = _block(text, readme)
    new = text[:start] + render() + text[end:]
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdbench.cli.reference", description=__doc__.split("\n")[0])
    parser.add_argument("readme", nargs="?", default="README.md", type=Path, help="default: ./README.md")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 when the table is out of date")
    args = parser.parse_args(argv)
    if not args.check:
        print(f"{args.readme}: command table {'rewritten' if write(args.readme) else 'already up to date'}")
        return 0
    problems = differences(args.readme)
    for problem in problems:
        print(f"{args.readme}: {problem}", file=sys.stderr)
    if problems:
        print("run `python -m kdbench.cli.reference` to rewrite the table from the CLI", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
