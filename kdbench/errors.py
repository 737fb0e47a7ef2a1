"""User-facing errors.

Anything a user can cause (a bad suite file, an unknown component name, a checkpoint that does not
fit, a missing dataset) is raised as :class:`KdbenchError`. The CLI prints its message as one line
and exits with code 2; everything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class KdbenchError(Exception):
    """An error the user caused and can fix; its message is one self-contained line."""

    exit_code = 2


class KdbenchWarning(UserWarning):
    """Something was passed over (a corrupt record, a degenerate estimator): shown as one line, work goes on."""
