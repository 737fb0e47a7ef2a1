"""Atomic writes, and reading back the torch files kdbench wrote without ever unpickling an object.

Every file is written to a temporary name in the same directory and renamed over the target: a file killed
mid-write leaves the old content or the new one, never half of one. The temporary file is created under
the user's umask (``kdbench.contracts.temporary_beside``), so a published table reads like any other file.

A run store or ``$KDBENCH_HOME`` may sit on a filesystem others can write to, so a torch file is read back
with ``torch.load(weights_only=True)`` (:func:`load_tensors`): tensors and plain data only, never a pickled
object whose unpickling would run code here. What kdbench saves is made of those alone (:func:`plain`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
import warnings
from collections import OrderedDict
from pathlib import Path, PurePath
from typing import Any

from kdbench.contracts.files import temporary_beside

# What torch.load(weights_only=True) raises for a file that is not a torch file of tensors and plain data:
# a pickled object or foreign bytes (UnpicklingError), a truncated or corrupt archive (RuntimeError, EOFError,
# OSError, struct.error, IndexError, KeyError), text or garbage (UnicodeDecodeError and other ValueErrors).
UNREADABLE_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, LookupError, struct.error)


class UnreadableFile(Exception):
    """A torch file that :func:`load_tensors` did not load; the message is the reason, in a few words."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temporary_beside(path)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The parsed file, or None when it is absent or not JSON (a file being replaced, a foreign file)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_tensors(path: Path, map_location: Any = None) -> Any:
    """The content of a torch file, read with ``torch.load(weights_only=True)``: tensors, dicts, lists, tuples,
    numbers, strings and None. Any other pickled object is refused before it is built, so a planted file
    cannot run code. Raises :class:`UnreadableFile` (with the reason) for a file that does not load that way."""
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on a foreign pickle protocol: the caller says it once
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found:
            raise UnreadableFile(f"it holds a pickled object: {found.group(1)}") from None
        raise UnreadableFile("not a torch file of tensors and plain data") from None
    except UNREADABLE_ERRORS as exc:
        raise UnreadableFile(f"not a readable torch file: {type(exc).__name__}") from None


def plain(value: Any) -> Any:
    """``value`` with what ``torch.load(weights_only=True)`` would refuse turned into plain data: numpy
    scalars into Python numbers, numpy arrays into lists, paths into strings; dicts, lists and tuples are
    walked, tensors and everything else kept. A container that needs no change is returned as it is (a
    state dict keeps its class and its ``_metadata``)."""
    if isinstance(value, PurePath):
        return str(value)
    if type(value).__module__ == "numpy":
        return value.tolist() if hasattr(value, "tolist") else value
    if isinstance(value, dict):
        walked = {k: plain(v) for k, v in value.items()}
        if all(walked[k] is v for k, v in value.items()):
            return value
        new = OrderedDict(walked) if isinstance(value, OrderedDict) else dict(walked)
        if hasattr(value, "__dict__"):
            new.__dict__.update(value.__dict__)
        return new
    if isinstance(value, (list, tuple)):
        items = [plain(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items if isinstance(value, list) else tuple(items)
    return value
