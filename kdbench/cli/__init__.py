"""Command line: ``kdbench run | tune | list | tables | score | teacher | export-folder | publish | leaderboard |
check-results | verify | doctor``.

Every error a user can cause arrives here as a ``KdbenchError``, or as a usage error (an unknown option, a
value out of range): one line on stderr, exit code 2. Warnings (a corrupt record skipped, a degenerate
estimator) are one line each too.

Where things go: ``kdbench run``, ``tables`` and ``score`` write to the run store (``--runs``, default
``$KDBENCH_RUNS`` or ``./runs``); only ``kdbench publish`` and ``kdbench leaderboard`` write to the
published results (``--results``, default ``./results``).

The app (``app.py``) lists the commands and imports a command's module only to run it; each command is a
function with its options in its signature, in the module of its group (``runs``, ``components``,
``results``, ``submissions``, ``score``, ``teacher``, ``doctor``), and options several commands share are
defined once (``common``). ``reference`` renders the README's command table from the app.
"""

from kdbench.cli.app import main

__all__ = ["main"]
