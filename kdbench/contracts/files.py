"""A temporary file beside its target, for writes that are renamed into place (atomic writes).

``tempfile.mkstemp`` creates its file with mode 0600 whatever the umask, and a rename keeps the mode, so
a table, a record or a download published that way is readable by its owner only. :func:`temporary_beside`
creates the file with mode 0666 and lets the kernel apply the process's umask, as a plain ``open`` would;
it never changes the umask (process-wide state that other threads read).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

_ATTEMPTS = 100


def temporary_beside(target: Path, suffix: str = "") -> tuple[int, Path]:
    """A new, empty file ``.<target name>.<random><suffix>`` in ``target``'s folder, opened for writing:
    its descriptor and path. Created exclusively (never an existing file or a link) with mode 0666 less the
    umask. The caller writes through the descriptor (or closes it and reopens the path), then renames the
    file over ``target`` or removes it."""
    target = Path(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_ATTEMPTS):
        path = target.parent / f".{target.name}.{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target} after {_ATTEMPTS} attempts")
