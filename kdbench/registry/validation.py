"""Component parameters are validated, not trusted: every value a user gives is checked against the type
hint of its factory's parameter before anything is built or trained.

Suite files and ``--param`` values are plain data (YAML/JSON: numbers, strings, lists, mappings, null),
so they are checked the way pydantic checks JSON in strict mode: an int is a number, but a string is
never a number, ``null`` is only allowed where the hint says ``None``, and a list is a tuple. The value
itself is kept as the user wrote it (so run keys do not change); only its type is judged.
"""

from __future__ import annotations

import functools
import inspect
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

_STRICT = ConfigDict(strict=True)
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false", Path: "a path"}


def parameter_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """Type hints of a factory's parameters; {} when a plugin's hints cannot be resolved."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # a forward reference the plugin never defined: the factory checks its own values
        return {}


@functools.lru_cache(maxsize=256)
def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(hint, config=_STRICT)
    except (PydanticSchemaGenerationError, PydanticUserError, TypeError):
        return None  # a hint pydantic cannot check (a torch type, say): left to the factory


def describe(hint: Any) -> str:
    """A hint in words: ``float | str`` → "a number or a string"."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, set, frozenset) or origin is getattr(typing, "Sequence", None):
        inner = {a for a in args if a is not Ellipsis}
        if len(inner) != 1:
            return "a list"
        return f"a list of {describe(inner.pop()).removeprefix('an ').removeprefix('a ')}s"
    if origin is dict:
        return "a mapping"
    return _NAMES.get(hint, getattr(hint, "__name__", str(hint)))


def type_error(hint: Any, value: Any) -> str | None:
    """Why ``value`` does not fit ``hint`` (a short phrase), or None when it fits or cannot be judged."""
    if hint is Any:
        return None
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        return f"must be plain data (a number, string, list or mapping), not a {type(value).__name__}"
    adapter = _adapter(hint)
    if adapter is None:
        return None
    try:
        adapter.validate_json(text)
    except ValidationError:
        return f"must be {describe(hint)}"
    return None


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
