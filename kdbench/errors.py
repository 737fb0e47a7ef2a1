"""User-facing errors.

Anything a user can cause (a bad suite file, an unknown component name, a checkpoint that does not
fit, a missing dataset) is raised as :class:`KdbenchError`. The CLI prints its message as one line
and exits with code 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib


class KdbenchError(Exception):
    """An error the user caused and can fix; its message is one self-contained line."""

    exit_code = 2


class KdbenchWarning(UserWarning):
    """Something was passed over (a corrupt record, a degenerate estimator): shown as one line, work goes on."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A short suffix naming the closest choices, or listing all of them when nothing is close."""
    same_but_case = [c for c in choices if c.lower() == name.lower()]
    close = same_but_case or difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "; known: " + ", ".join(sorted(choices)) if choices else "; none are registered"
