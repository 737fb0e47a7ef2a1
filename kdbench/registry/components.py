"""Name → component, per kind, with parameters read from each factory's signature and type hints.

The registry is filled by plugin discovery (``kdbench.registry.discovery``) and is the only place the
rest of the harness looks components up, so an unknown name always fails the same way: one line with
the closest registered names ("did you mean"). A parameter of the wrong name or type fails the same
way, before anything runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

from kdbench.contracts.hookspecs import KINDS
from kdbench.errors import KdbenchError, did_you_mean
from kdbench.registry.kinds import contract_problem, describe_factory, published_weights_of
from kdbench.registry.validation import parameter_hints, short_repr, type_error

if TYPE_CHECKING:  # annotations only: the contracts import torch, and the registry's names are read without it
    from kdbench.contracts.estimators import DataValueEstimator
    from kdbench.contracts.loggers import RunLogger
    from kdbench.contracts.methods import DistillationMethod
    from kdbench.contracts.models import PublishedWeights
    from kdbench.contracts.revisions import LabelRevision

# Parameters a component receives from the harness at run time rather than from the user; they are
# neither listed by `kdbench list` nor accepted in suite files.
CONTEXT_PARAMETERS: Mapping[str, frozenset[str]] = {
    "model": frozenset({"num_classes"}),
    "dataset": frozenset({"root", "download"}),
    "executor": frozenset({"runs_root"}),  # where an executor keeps its logs (the run store)
    "logger": frozenset({"runs_root"}),  # where a logger keeps its local files (the run store)
}

REQUIRED = inspect.Parameter.empty

#: Where a parameter was given, for error messages: a fixed prefix, or one per parameter name.
Where = str | Callable[[str], str]

#: A component's factory: a class or function, as its kind's contract (``kdbench.registry.kinds``) allows.
F = TypeVar("F", bound=Callable[..., Any], covariant=True)


def _prefix(where: Where, key: str | None = None) -> str:
    text = where(key or "") if callable(where) else where
    return f"{text}: " if text else ""


@dataclass(frozen=True)
class Component(Generic[F]):
    """One registered component: its factory plus what is needed to list, validate and key it.

    The factory satisfies its kind's contract (checked at registration), so a method's or an estimator's
    flags are read straight off it: ``registry.get("method", name).factory.uses_teacher``.
    """

    kind: str
    name: str
    factory: F
    description: str
    version: str
    source: str
    #: A model's published weights (weights name → URL), None when it publishes none or is not a model.
    published_weights: PublishedWeights | None = None

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

    def hints(self) -> dict[str, Any]:
        """Type hints of the user-settable parameters (those that have one)."""
        known = self.parameters()
        return {k: v for k, v in parameter_hints(self.factory).items() if k in known}

    def resolve(self, params: Mapping[str, Any] | None, where: Where = "") -> dict[str, Any]:
        """Defaults filled in; unknown, missing or mistyped parameters rejected with one clear line.

        ``where`` locates the parameters for the message: a prefix such as ``suite.yaml:4``, or a
        function of the parameter name that points at its own line.
        """
        params = dict(params or {})
        known = self.parameters()
        for key in params:
            if key not in known:
                raise KdbenchError(
                    f"{_prefix(where, key)}{self.kind} {self.name!r} has no parameter {key!r}"
                    + did_you_mean(key, list(known))
                )
        hints = self.hints()
        for key, value in params.items():
            problem = type_error(hints[key], value) if key in hints else None
            if problem:
                raise KdbenchError(
                    f"{_prefix(where, key)}{self.kind} {self.name!r}: parameter {key!r} {problem}, "
                    f"got {short_repr(value)}"
                )
        resolved = {}
        for key, default in known.items():
            if key in params:
                resolved[key] = params[key]
            elif default is REQUIRED:
                raise KdbenchError(f"{_prefix(where, key)}{self.kind} {self.name!r} needs parameter {key!r}")
            else:
                resolved[key] = default
        return resolved

    def create(self, params: Mapping[str, Any] | None = None, where: Where = "", **context: Any) -> Any:
        """Instantiate with resolved user parameters plus the harness-provided context parameters the factory
        takes (a factory may leave out any of its kind's context parameters)."""
        return self.factory(**self.resolve(params, where), **_taken(self.factory, context))

    def missing_data(self, params: Mapping[str, Any] | None = None, where: Where = "", **context: Any) -> str | None:
        """For a dataset: the line its loader would stop with because its data is not on disk, from the factory's
        optional ``missing_data`` check (``kdbench.contracts.MissingData``), which reads no data; None when the data
        is there, will be downloaded, or the dataset has no such check."""
        check = getattr(self.factory, "missing_data", None)
        if check is None:
            return None
        problem: str | None = check(**self.resolve(params, where), **_taken(check, context))
        return problem


def _taken(function: Callable[..., Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The context parameters ``function`` takes: those it names, or all of them when it takes ``**kwargs``."""
    accepted = inspect.signature(function).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    return {k: v for k, v in context.items() if takes_all or k in accepted}


class Registry:
    """Components by kind and name. Built by ``kdbench.registry.load_registry``; not a global."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component[Callable[..., Any]]]] = {kind: {} for kind in KINDS}

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
        """Add a component, once it is checked against its kind's contract (``kdbench.registry.kinds``)."""
        if kind not in self._components:
            raise KdbenchError(f"unknown component kind {kind!r}" + did_you_mean(kind, KINDS))
        problem = contract_problem(kind, factory)
        if problem is not None:
            plugin = source or getattr(factory, "__module__", None) or "?"
            raise KdbenchError(f"plugin {plugin} registers {kind} {name!r} as {describe_factory(factory)}, {problem}")
        existing = self._components[kind].get(name)
        if existing is not None and existing.factory is not factory:
            raise KdbenchError(
                f"{kind} {name!r} is registered twice (by {existing.source} and by {source}); rename one of them"
            )
        doc = description or inspect.getdoc(factory) or ""
        self._components[kind][name] = Component(
            kind=kind,
            name=name,
            factory=factory,
            description=doc.strip().splitlines()[0] if doc.strip() else "",
            version=str(version),
            source=source,
            published_weights=published_weights_of(factory) if kind == "model" else None,
        )

    # A kind's contract fixes what its factories are, so a literal kind gives a typed component.
    @overload
    def get(self, kind: Literal["method"], name: str) -> Component[type[DistillationMethod]]: ...
    @overload
    def get(self, kind: Literal["estimator"], name: str) -> Component[type[DataValueEstimator]]: ...
    @overload
    def get(self, kind: Literal["revision"], name: str) -> Component[type[LabelRevision]]: ...
    @overload
    def get(self, kind: Literal["logger"], name: str) -> Component[type[RunLogger]]: ...
    @overload
    def get(self, kind: str, name: str) -> Component[Callable[..., Any]]: ...

    def get(self, kind: str, name: str) -> Component[Any]:
        if kind not in self._components:
            raise KdbenchError(f"unknown component kind {kind!r}" + did_you_mean(kind, KINDS))
        if not isinstance(name, str):
            raise KdbenchError(f"a {kind} is named by a string, not {short_repr(name)}")
        try:
            return self._components[kind][name]
        except KeyError:
            raise KdbenchError(f"unknown {kind} {name!r}" + did_you_mean(name, list(self._components[kind]))) from None

    @overload
    def get_at(self, where: str, kind: Literal["method"], name: str) -> Component[type[DistillationMethod]]: ...
    @overload
    def get_at(self, where: str, kind: Literal["estimator"], name: str) -> Component[type[DataValueEstimator]]: ...
    @overload
    def get_at(self, where: str, kind: Literal["revision"], name: str) -> Component[type[LabelRevision]]: ...
    @overload
    def get_at(self, where: str, kind: Literal["logger"], name: str) -> Component[type[RunLogger]]: ...
    @overload
    def get_at(self, where: str, kind: str, name: str) -> Component[Callable[..., Any]]: ...

    def get_at(self, where: str, kind: str, name: str) -> Component[Any]:
        """Like :meth:`get`, with the failing location (``file:line``) in front of the message."""
        try:
            return self.get(kind, name)
        except KdbenchError as exc:
            raise KdbenchError(f"{where}: {exc}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self._components[kind]) if kind in self._components else []

    def __iter__(self) -> Iterator[Component[Callable[..., Any]]]:
        for kind in KINDS:
            yield from (self._components[kind][n] for n in sorted(self._components[kind]))

    def __contains__(self, kind_and_name: tuple[str, str]) -> bool:
        kind, name = kind_and_name
        return name in self._components.get(kind, {})
