"""Name → component, per kind, with parameters read from each factory's signature.

The registry is filled by the plugin manager (``kdbench.plugins``) and is the only place the rest of
the harness looks components up, so an unknown name always fails the same way: one line with the
closest registered names ("did you mean").
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from kdbench.errors import KdbenchError

KINDS: tuple[str, ...] = ("method", "estimator", "revision", "model", "dataset", "executor")

# Parameters a component receives from the harness at run time rather than from the user; they are
# neither listed by `kdbench list` nor accepted in suite files.
CONTEXT_PARAMETERS: Mapping[str, frozenset[str]] = {
    "model": frozenset({"num_classes"}),
    "dataset": frozenset({"root", "download"}),
}

REQUIRED = inspect.Parameter.empty


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """A short suffix naming the closest choices, or listing all of them when nothing is close."""
    same_but_case = [c for c in choices if c.lower() == name.lower()]
    close = same_but_case or difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return "; known: " + ", ".join(sorted(choices)) if choices else "; none are registered"


@dataclass(frozen=True)
class Component:
    """One registered component: its factory plus what is needed to list, validate and key it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    version: str
    source: str

    def parameters(self) -> dict[str, Any]:
        """User-settable parameters and their defaults (``REQUIRED`` when there is none)."""
        target = self.factory.__init__ if inspect.isclass(self.factory) else self.factory
        hidden = CONTEXT_PARAMETERS.get(self.kind, frozenset())
        params: dict[str, Any] = {}
        for p in inspect.signature(target).parameters.values():
            if p.name == "self" or p.name in hidden:
                continue
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            params[p.name] = p.default
        return params

    def resolve(self, params: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
        """Defaults filled in, unknown or missing parameters rejected with one clear line."""
        params = dict(params or {})
        known = self.parameters()
        prefix = f"{where}: " if where else ""
        for key in params:
            if key not in known:
                raise KdbenchError(
                    f"{prefix}{self.kind} {self.name!r} has no parameter {key!r}"
                    + did_you_mean(key, list(known))
                )
        resolved = {}
        for key, default in known.items():
            if key in params:
                resolved[key] = params[key]
            elif default is REQUIRED:
                raise KdbenchError(f"{prefix}{self.kind} {self.name!r} needs parameter {key!r}")
            else:
                resolved[key] = default
        return resolved

    def create(self, params: Mapping[str, Any] | None = None, **context: Any) -> Any:
        """Instantiate with resolved user parameters plus harness-provided context parameters."""
        return self.factory(**self.resolve(params), **context)


class Registry:
    """Components by kind and name. Built by ``kdbench.plugins.load_registry``; not a global."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}

    def register(
        self,
        kind: str,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str | None = None,
        version: str = "1",
        source: str = "",
    ) -> None:
        if kind not in self._components:
            raise KdbenchError(f"unknown component kind {kind!r}" + did_you_mean(kind, KINDS))
        existing = self._components[kind].get(name)
        if existing is not None and existing.factory is not factory:
            raise KdbenchError(
                f"{kind} {name!r} is registered twice (by {existing.source} and by {source}); "
                "rename one of them"
            )
        doc = description or inspect.getdoc(factory) or ""
        self._components[kind][name] = Component(
            kind=kind,
            name=name,
            factory=factory,
            description=doc.strip().splitlines()[0] if doc.strip() else "",
            version=str(version),
            source=source,
        )

    def get(self, kind: str, name: str) -> Component:
        if kind not in self._components:
            raise KdbenchError(f"unknown component kind {kind!r}" + did_you_mean(kind, KINDS))
        try:
            return self._components[kind][name]
        except KeyError:
            raise KdbenchError(
                f"unknown {kind} {name!r}" + did_you_mean(name, list(self._components[kind]))
            ) from None

    def get_at(self, where: str, kind: str, name: str) -> Component:
        """Like :meth:`get`, with the failing location (``file:line``) in front of the message."""
        try:
            return self.get(kind, name)
        except KdbenchError as exc:
            raise KdbenchError(f"{where}: {exc}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind]) if kind in self._components else []

    def __iter__(self) -> Iterator[Component]:
        for kind in KINDS:
            yield from (self._components[kind][n] for n in sorted(self._components[kind]))

    def __contains__(self, kind_and_name: tuple[str, str]) -> bool:
        kind, name = kind_and_name
        return name in self._components.get(kind, {})
